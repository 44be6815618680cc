"""Page 05, benchmarks: one account against its peers (same segment x lifecycle stage), the peer
groups of every benchmarkable account metric, targets and guidelines with their sources, and every
headline KPI against its target. Everything comes from the registry (targets are declared on the metrics)."""

from __future__ import annotations

import html
import math
from typing import Any

import altair as alt
import pandas as pd

from .. import charts, widgets
from .. import format as fmt
from ..errors import ParameterError
from ..metrics import METRICS
from ..metrics.accounts import ACCOUNT_METRICS

AREAS: tuple[str, ...] = ()
TREND_MONTHS = 24


def _conventions(wb) -> str:
    c = wb.conventions
    return (
        f"Peers: paying accounts of the same segment x lifecycle stage at the month end, compared when a group "
        f"has at least {c.min_peers} accounts with a value; lifecycle: renewal within {c.renewal_window_days} "
        f"days wins, onboarding < {c.onboarding_months} months, training < {c.training_months} months, "
        f"extending at {c.extending_utilisation:.0%} licence utilisation"
    )


def show_header(wb) -> Any:
    """Segment and month (with the controls in an app) and how peers are formed."""
    return widgets.page_header(wb, _conventions)


def account_choices(wb) -> list[tuple[str, str]]:
    """(label, account_id) of the paying accounts, largest MRR first."""
    p = wb.table("paying_accounts_now").sort_values(["mrr", "account_id"], ascending=[False, True])
    stages = wb.table("lifecycle_stages").set_index("account_id").stage
    cur = wb.conventions.reporting_currency
    return [
        (
            f"{r.account_name} · {r.segment} · {stages.get(r.account_id, '?')} · {fmt.money(r.mrr, cur)} MRR",
            r.account_id,
        )
        for r in p.itertuples()
    ]


def sentence(row: pd.Series, label: str, unit: str, currency: str = "USD") -> str:
    """The plain-language comparison: 'Licence utilisation 45% is the 62nd percentile of 40 mid_market accounts in
    onboarding (median 30%, middle half 20%-41%).' Money in `currency`."""

    def v_(x: float) -> str:
        return fmt.value(x, unit, currency)

    v = v_(row.value)
    if math.isnan(row.value):
        return f"{label}: no value this month."
    group = f"{row.segment} accounts in {row.stage}"
    if not row.compared:
        return f"{label} {v}: only {int(row.peers)} {group} have a value, fewer than needed to compare."
    return (
        f"{label} {v} is the {fmt.ordinal(row.percentile)} percentile of {int(row.peers)} {group} (median "
        f"{v_(row['median'])}, middle half {v_(row.p25)}–{v_(row.p75)})."
    )


def account_view(wb, account_id: str) -> tuple[str, list[alt.Chart]]:
    """The sentences and charts comparing one account with its peers."""
    pb = wb.table("peer_benchmarks")
    rows = pb[pb.account_id == account_id]
    if rows.empty:
        raise ParameterError(
            f"Account {account_id!r} is not a paying account of {wb.segment.label} at the end of "
            f"{wb.month_label}; pick one from the list."
        )
    lines, panels = [], []
    for row in rows.itertuples(index=False):
        spec = ACCOUNT_METRICS[row.metric]
        r = pd.Series(row._asdict())
        lines.append(f"<li>{html.escape(sentence(r, spec.label, spec.unit, wb.conventions.reporting_currency))}</li>")
        if r.compared and not math.isnan(r.value):
            panels.append(charts.peer_position(r, spec.label, spec.unit, "", wb.conventions.reporting_currency))
    first = rows.iloc[0]
    head = (
        f'<div class="saaskpi-header"><b>{html.escape(str(first.account_name))}</b> · {html.escape(first.segment)} · '
        f'{html.escape(first.stage)}</div><ul class="saaskpi-note">{"".join(lines)}</ul>'
    )
    return head, panels


def _show_account(wb, account_id: str) -> list[Any]:
    out: list[Any] = []
    head, panels = account_view(wb, account_id)
    out.append(widgets.styled(head))
    if panels:
        out.append(
            widgets.chart(
                alt.vconcat(*panels).properties(
                    title=alt.Title(
                        "This account (point) against its peers",
                        subtitle="band: middle half of the peers; tick: their median",
                    )
                ),
                wb,
            )
        )
    return out


def show_account_vs_peers(wb, account: str = "") -> Any:
    """One account against its peers on every benchmarkable metric (the largest account unless one is named; an
    account picker in an app)."""

    def render(w):
        out: list[Any] = []
        choices = account_choices(w)
        if not choices:
            out.append(widgets.note("No paying account at this month end."))
            return out
        out.append(widgets.picked_view(w, choices, account, _show_account, "Account", "560px"))
        return out

    return widgets.section(wb, render)


def peer_groups(wb) -> pd.DataFrame:
    """Per benchmarkable metric and segment x lifecycle stage: peers and their p25, median and p75."""
    pb = wb.table("peer_benchmarks")
    return pb.groupby(["metric", "segment", "stage"], as_index=False).agg(
        peers=("peers", "max"), p25=("p25", "first"), median=("median", "first"), p75=("p75", "first")
    )


def show_peer_groups(wb) -> Any:
    """The peer range of every benchmarkable metric per segment x lifecycle stage; small groups flagged."""

    def render(w):
        out: list[Any] = []
        groups = peer_groups(w)
        if groups.empty:
            out.append(widgets.note("No account metric can be computed from this source."))
            return out
        panels = [
            charts.peer_ranges(
                g,
                ACCOUNT_METRICS[m].label,
                ACCOUNT_METRICS[m].unit,
                w.conventions.min_peers,
                w.conventions.reporting_currency,
            )
            for m, g in groups.groupby("metric", sort=False)
            if g["median"].notna().any()
        ]
        if panels:
            out.append(
                widgets.chart(
                    alt.concat(*panels, columns=2).properties(
                        title=alt.Title(
                            "Peer ranges by segment and lifecycle stage", subtitle="bar: p25-p75; tick: median"
                        )
                    ),
                    w,
                )
            )
        small = groups[groups.peers < w.conventions.min_peers]
        if len(small):
            names = ", ".join(
                sorted(
                    {
                        f"{r.segment} · {r.stage} ({ACCOUNT_METRICS[r.metric].label}: {r.peers})"
                        for r in small.itertuples()
                    }
                )
            )
            out.append(widgets.note(f"Too few peers to compare (fewer than {w.conventions.min_peers}): {names}."))
        return out

    return widgets.section(wb, render)


def targets_html(wb) -> str:
    """Every target and guideline: value now, target, long-term target, status and source."""
    cur = wb.conventions.reporting_currency
    rows = []
    for name in [n for n in METRICS if wb.target(n) is not None]:
        m, v, t = METRICS[name], wb.value(name), wb.targets.get(name)
        source = (t.source if t else "") or f"registry default ({', '.join(m.sources)})"
        if name in wb.segment.targets:
            source = f"segment file {wb.segment.name}.yaml; " + source
        rows.append(
            [
                html.escape(m.label),
                html.escape(v.note or fmt.value(v.value, m.unit, cur)),
                f"{'≥' if m.direction == 'higher' else '≤'} {fmt.value(v.target, m.unit, cur)}",
                fmt.value(t.long_term, m.unit, cur) if t and t.long_term is not None else "",
                widgets.status_text(v.status, v.status),
                html.escape(source),
            ]
        )
    return widgets.html_table(["KPI", "now", "target", "long term", "status", "source"], rows, numeric=(1, 2, 3))


def show_targets(wb) -> Any:
    """Every KPI with a target as a tile (value, change, status, n), then the targets and guidelines from
    the metric declarations (and segment overrides) with their sources."""

    def render(w):
        out: list[Any] = []
        out.append(widgets.kpi_tiles(w, [n for n in METRICS if w.target(n) is not None]))
        out.append(widgets.styled(targets_html(w)))
        return out

    return widgets.section(wb, render)


def show_trends(wb) -> Any:
    """Every headline KPI (north star and core) by month with its target dashed."""
    headline = [n for n, m in METRICS.items() if m.level in ("north_star", "core")]
    return widgets.trends_section(wb, headline, TREND_MONTHS)


# --------------------------------------------------------------------------- practices (issue 25)
BEHIND_ROWS = 10


def review_html(cycle: pd.DataFrame) -> str:
    """The three reviews: what each covers, cadence, last done, next due and status."""
    rows = [
        [
            html.escape(r.review),
            html.escape(r.covers),
            f"{int(r.metrics)}",
            f"{int(r.every_months)} month{'s' if r.every_months != 1 else ''}",
            "never" if pd.isna(r.last_done) else f"{r.last_done:%Y-%m-%d}",
            "now" if pd.isna(r.next_due) else f"{r.next_due:%Y-%m-%d}",
            f"<b>{html.escape(r.status)}</b>" if r.status != "on schedule" else html.escape(r.status),
        ]
        for r in cycle.itertuples()
    ]
    return widgets.html_table(
        ["review", "covers", "metrics", "every", "last done", "next due", "status"], rows, numeric=(2,)
    )


def stale_html(targets: pd.DataFrame, currency: str = "USD") -> str:
    """Every target in force with when it was last reviewed; stale ones first."""
    rows = [
        [
            html.escape(METRICS[r.metric].label),
            html.escape(r.page),
            fmt.value(r.target, METRICS[r.metric].unit, currency),
            "never" if pd.isna(r.reviewed) else f"{r.reviewed:%Y-%m-%d}",
            "" if pd.isna(r.months_since) else f"{int(r.months_since)}",
            "<b>stale</b>" if r.stale else "current",
        ]
        for r in targets.itertuples()
    ]
    return widgets.html_table(["metric", "page", "target", "reviewed", "months ago", "status"], rows, numeric=(2, 4))


def show_review_cycle(wb) -> Any:
    """The metric review cycle (monthly audit, quarterly alignment, annual overhaul): which reviews are due at the
    month end and which targets are stale (parameters/reviews.yaml)."""

    def render(w):
        cycle, targets = w.table("review_cycle"), w.table("target_reviews")
        stale = int(targets.stale.sum())
        due = cycle[cycle.status != "on schedule"].review.tolist()
        head = (
            f'<div class="saaskpi-note">{"Due: " + ", ".join(due) if due else "Every review is on schedule"}; '
            f"{stale} of {len(targets)} targets stale (not reviewed in the alignment's cadence) at the end of "
            f"{w.month_label} (parameters/reviews.yaml)</div>"
        )
        return [
            widgets.styled(head + review_html(cycle)),
            widgets.styled(stale_html(targets, w.conventions.reporting_currency)),
        ]

    return widgets.section(wb, render)


def behind_html(metric: str, rows: pd.DataFrame, currency: str, limit: int = BEHIND_ROWS) -> str:
    """The largest accounts behind one tile: account, segment, amount and detail."""
    from ..metrics.review import DRILLDOWN

    head = f'<div class="saaskpi-note"><b>{html.escape(METRICS[metric].label)}</b>: {len(rows):,} '
    if rows.empty:
        return head + f"{html.escape(DRILLDOWN[metric])}</div>"
    cells = [
        [
            html.escape(str(r.account_name)),
            html.escape(str(r.segment)),
            fmt.money(r.amount, currency),
            html.escape(str(r.detail)),
        ]
        for r in rows.head(limit).itertuples()
    ]
    more = f" ({len(rows) - limit} more in `saaskpi table accounts_behind_tiles`)" if len(rows) > limit else ""
    return (
        head
        + f"{html.escape(DRILLDOWN[metric])}{more}</div>"
        + widgets.html_table(["account", "segment", "amount", "detail"], cells, numeric=(2,))
    )


def behind_view(wb, metric: str) -> list[Any]:
    """The accounts behind one account-based tile, with the tile itself."""
    from ..metrics.review import DRILLDOWN

    if metric not in DRILLDOWN:
        raise ParameterError(f"No account list behind {metric!r}; pick one of {', '.join(DRILLDOWN)}.")
    rows = wb.table("accounts_behind_tiles")
    return [
        widgets.kpi_tiles(wb, wb.available([metric])),
        widgets.styled(behind_html(metric, rows[rows.metric == metric], wb.conventions.reporting_currency)),
    ]


def show_accounts_behind_tiles(wb, metric: str = "") -> Any:
    """The accounts behind the account-based tiles (logo churn, new customers, red accounts): pick a tile in an
    app; a static report lists the largest accounts of each."""
    from ..metrics.review import DRILLDOWN

    def render(w):
        names = w.available(list(DRILLDOWN))
        rows = w.table("accounts_behind_tiles")
        if not w.interactive:
            return [
                widgets.styled(behind_html(n, rows[rows.metric == n], w.conventions.reporting_currency)) for n in names
            ]
        counts = rows.metric.value_counts()
        choices = [(f"{METRICS[n].label} · {int(counts.get(n, 0))} accounts", n) for n in names]
        return [widgets.picked_view(w, choices, metric, behind_view, "Tile")]

    return widgets.section(wb, render)
