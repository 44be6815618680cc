"""Page 08, comparisons: segments, regions, industries and plans side by side (a breakdown picker in an app),
plan performance, feature usage by lifecycle stage and by account, and customer-success engagements by type.
Each `show_*` is one section; the tables come from metrics/comparisons.py."""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import pandas as pd

from .. import charts, theme, widgets
from .. import format as fmt
from ..metrics.comparisons import BREAKDOWNS, TOTAL

TREND_MONTHS = 24
TOP_ACCOUNTS = 20
BREAKDOWN_LABELS = {"segment": "segment", "region": "region", "industry": "industry", "plan": "primary plan"}


def _conventions(wb) -> str:
    return (
        "Groups from the accounts' segment, region and industry, and an account's primary plan (the plan with the "
        "most MRR at the month end; subscriptions.plan); NRR, GRR and logo churn over 12 months of the accounts "
        "paying 12 months before, in their group then; plan lines over the 12 months to the month end"
    )


def show_header(wb):
    """Segment, month and how the page groups accounts (with the controls in an app)."""
    return widgets.page_header(wb, _conventions)


# --------------------------------------------------------------------------- groups side by side
def breakdown_choices() -> list[tuple[str, str]]:
    return [(f"by {BREAKDOWN_LABELS[b]}", b) for b in BREAKDOWNS]


def groups_html(t: pd.DataFrame, total: pd.Series, currency: str, trend: pd.DataFrame | None = None) -> str:
    """One row per group and the total: accounts, MRR with its last 12 month ends as a sparkline and its share, ARPA,
    12-month NRR, GRR and logo churn, and the new ARR of the 12 months."""
    lines: dict[str, list[float]] = {}
    if trend is not None and len(trend):
        recent = trend[trend.month > trend.month.max() - pd.DateOffset(months=12)]
        lines = {str(g): part.sort_values("month").mrr.tolist() for g, part in recent.groupby("group")}
        lines[TOTAL] = recent.groupby("month").mrr.sum().sort_index().tolist()
    rows, totals = [], []
    for r in [*t.itertuples(), total]:
        rows.append(
            [
                html.escape(str(r.group)),
                f"{int(r.accounts):,}",
                fmt.money(r.mrr, currency),
                widgets.sparkline_svg(lines.get(str(r.group), []), width=80, height=18),
                fmt.value(r.mrr_share, "fraction"),
                fmt.value(r.arpa, "currency", currency),
                f"{int(r.base_accounts):,}",
                fmt.value(r.nrr_12m, "fraction"),
                fmt.value(r.grr_12m, "fraction"),
                fmt.value(r.logo_churn_12m, "fraction"),
                fmt.money(r.new_arr_12m, currency),
            ]
        )
        totals.append(r.group == TOTAL)
    head = ["group", "accounts", "MRR", "12 months", "share", "ARPA", "paying 12m ago", "NRR 12m", "GRR 12m"]
    head += ["logo churn 12m", "new ARR 12m"]
    return widgets.html_table(head, rows, numeric=(1, 2, 4, 5, 6, 7, 8, 9, 10), totals=totals)


def trend_chart(trend: pd.DataFrame, label: str, currency: str) -> alt.Chart:
    """MRR of each group by month (stacked: the groups add up to MRR)."""
    return (
        alt.Chart(trend)
        .mark_area()
        .encode(
            x=alt.X("month:T", title=None, axis=charts.month_axis(trend.month, 6)),
            y=alt.Y("mrr:Q", title="MRR", stack=True, axis=charts.money_axis(currency)),
            color=alt.Color(
                "group:N", title=None, scale=alt.Scale(range=theme.PALETTE), legend=alt.Legend(orient="right")
            ),
            tooltip=[
                "group:N",
                alt.Tooltip("month:T", format="%b %Y"),
                charts.money_tooltip("mrr:Q", currency, title="MRR"),
                "accounts:Q",
            ],
        )
        .properties(width=520, height=220, title=alt.Title(f"MRR by {label}", subtitle="month ends, stacked"))
    )


def retention_chart(t: pd.DataFrame, label: str) -> alt.Chart:
    """NRR and GRR over 12 months of each group, side by side, with 100 % marked."""
    long = t.melt(id_vars="group", value_vars=["nrr_12m", "grr_12m"], var_name="measure", value_name="rate")
    long["measure"] = long.measure.map({"nrr_12m": "NRR", "grr_12m": "GRR"})
    bars = (
        alt.Chart(long.dropna())
        .mark_bar()
        .encode(
            y=alt.Y("group:N", title=None),
            x=alt.X("rate:Q", title="over 12 months", axis=alt.Axis(format="%")),
            yOffset=alt.YOffset("measure:N"),
            color=alt.Color(
                "measure:N",
                title=None,
                scale=alt.Scale(domain=["NRR", "GRR"], range=[theme.PALETTE[0], theme.PALETTE[2]]),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=["group:N", "measure:N", alt.Tooltip("rate:Q", format=".1%")],
        )
    )
    rule = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(color=theme.INK, strokeDash=[4, 3]).encode(x="x:Q")
    return (bars + rule).properties(width=300, height=alt.Step(14), title=f"Retention by {label}")


def groups_view(wb, by: str) -> list[Any]:
    label = BREAKDOWN_LABELS.get(by)
    if label is None:
        return [widgets.note(f"No breakdown {by!r} (breakdowns: {', '.join(BREAKDOWNS)}).")]
    cur = wb.conventions.reporting_currency
    t = wb.table("group_comparison")
    total = next(t[t.breakdown == "total"].itertuples())
    t = t[t.breakdown == by]
    trend = wb.table("group_mrr_trend")
    trend = trend[
        (trend.breakdown == by)
        & (trend.month > wb.month - pd.DateOffset(months=TREND_MONTHS))
        & (trend.month <= wb.month)
    ]
    out: list[Any] = [widgets.styled(groups_html(t, total, cur, trend))]
    charts_: list[alt.Chart] = []
    if len(trend):
        charts_.append(trend_chart(trend, label, cur))
    if t.nrr_12m.notna().any():
        charts_.append(retention_chart(t, label))
    if charts_:
        out.append(widgets.chart(alt.hconcat(*charts_).resolve_scale(color="independent"), wb))
    low = wb.conventions.low_n_threshold
    few = t[t.base_accounts < low].group.tolist()
    if few:
        out.append(
            widgets.note(
                f"Fewer than {low:g} accounts paying 12 months ago in: {', '.join(map(str, few))} (read with care)."
            )
        )
    return out


def first_breakdown(wb) -> str:
    """The groups compared first: segments for the company or several segments, regions on a one-segment page
    (where segments side by side would be one row)."""
    return "region" if len(wb.segment.filter.get("segment", [])) == 1 else "segment"


def show_groups(wb, breakdown: str = ""):
    """Segments, regions, industries or primary plans side by side (`first_breakdown` unless one is named; a
    picker in an app): accounts, MRR, ARPA, NRR, GRR and logo churn, and MRR by group over time."""
    return widgets.section(
        wb,
        lambda w: widgets.picked_view(
            w, breakdown_choices(), breakdown or first_breakdown(w), groups_view, "Compare", "260px"
        ),
    )


# --------------------------------------------------------------------------- plans
def plans_html(p: pd.DataFrame, currency: str) -> str:
    rows = [
        [
            html.escape(str(r.plan)),
            f"{int(r.accounts):,}",
            fmt.money(r.mrr, currency),
            fmt.value(r.mrr_share, "fraction"),
            fmt.money(r.added_mrr_12m, currency),
            fmt.money(r.expansion_mrr_12m, currency),
            fmt.money(r.contraction_mrr_12m, currency),
            fmt.money(r.ended_mrr_12m, currency),
            fmt.value(r.gross_churn_rate, "fraction"),
            fmt.money(r.cs_cost, currency),
            fmt.value(r.contribution_margin, "fraction"),
        ]
        for r in p.itertuples()
    ]
    head = [
        "plan",
        "accounts",
        "MRR",
        "share",
        "added 12m",
        "expansion 12m",
        "contraction 12m",
        "ended 12m",
        "gross MRR churn / month",
        "CS cost (month)",
        "contribution margin",
    ]
    return widgets.html_table(head, rows, numeric=tuple(range(1, 11)))


def show_plans(wb):
    """Each plan's MRR, movements over 12 months, gross MRR churn, customer-success cost and contribution margin."""

    def render(w):
        p = w.table("plan_performance")
        if p.empty:
            return widgets.note("No paying account this month.")
        margin = p.gross_margin.iloc[0]
        lead = (
            '<div class="saaskpi-note">Plan lines (an account\'s MRR on one plan): added = a line that started (new '
            "account, cross-sell, switch in), ended = a line that stopped (churn, switch out); gross MRR churn = "
            "(contraction + ended) / the plan's MRR at the month starts; contribution = MRR x gross margin "
            f"({fmt.value(margin, 'fraction')} this month, the same for every plan: COGS is not recorded per plan) - CS cost "
            "(the month's customer-success spend split equally over paying accounts)</div>"
        )
        out: list[Any] = [widgets.styled(lead + plans_html(p, w.conventions.reporting_currency))]
        if (p.plan == "(no plan)").all():
            out.append(widgets.note("Add a `plan` column to subscriptions to compare plans."))
        return out

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- feature usage
def stage_heatmap(t: pd.DataFrame) -> alt.Chart:
    from ..metrics.lifecycle import STAGES

    data = t.assign(label=[f"{v:.0%}" if v == v else "" for v in t.share_using])
    base = alt.Chart(data).encode(
        x=alt.X("feature:N", title=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("stage:N", title=None, sort=list(STAGES)),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(
            "share_using:Q",
            title="accounts using",
            scale=alt.Scale(scheme=theme.HEAT, domain=[0, 1]),
            legend=alt.Legend(format="%"),
        ),
        tooltip=[
            "stage:N",
            "feature:N",
            "accounts_in_stage:Q",
            "accounts_using:Q",
            alt.Tooltip("share_using:Q", format=".0%"),
            alt.Tooltip("minutes_per_account:Q", format=".0f"),
        ],
    )
    text = base.mark_text(fontSize=10).encode(
        text="label:N", color=alt.condition(alt.datum.share_using > 0.5, alt.value("white"), alt.value(theme.INK))
    )
    return (rect + text).properties(
        width=alt.Step(58),
        height=alt.Step(24),
        title=alt.Title(
            "Feature use by lifecycle stage", subtitle="share of the stage's paying accounts that used it in the month"
        ),
    )


def account_heatmap(t: pd.DataFrame) -> alt.Chart:
    data = t.assign(account=[f"{n} ({s})" for n, s in zip(t.account_name, t.stage)])
    order = data.drop_duplicates("account_id").account.tolist()
    return (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X("feature:N", title=None, axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("account:N", title=None, sort=order),
            color=alt.Color("minutes:Q", title="minutes", scale=alt.Scale(scheme=theme.HEAT)),
            tooltip=["account:N", "feature:N", alt.Tooltip("minutes:Q", format=",.0f"), "last_day:Q"],
        )
        .properties(
            width=alt.Step(58),
            height=alt.Step(14),
            title=alt.Title(f"Feature use of the {TOP_ACCOUNTS} biggest accounts", subtitle="minutes in the month"),
        )
    )


def show_feature_usage(wb):
    """Which features each lifecycle stage uses, and the biggest accounts' use of each feature, in the month."""

    def render(w):
        w.require("usage_events", what="Feature usage")
        t = w.table("feature_usage_by_stage")
        if t.empty:
            return widgets.note("No usage event in the month.")
        acc = w.table("feature_usage_by_account")
        top = acc.drop_duplicates("account_id").account_id.head(TOP_ACCOUNTS)
        out = [widgets.chart(stage_heatmap(t), w)]
        if len(top):
            out.append(widgets.chart(account_heatmap(acc[acc.account_id.isin(top)]), w))
        return out

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- engagements
def engagement_chart(t: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(t)
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month):O", title=None, axis=alt.Axis(format="%b %Y", labelAngle=0)),
            y=alt.Y("touchpoints:Q", title="touchpoints"),
            color=alt.Color(
                "kind:N", title=None, scale=alt.Scale(range=theme.PALETTE), legend=alt.Legend(orient="top")
            ),
            tooltip=[alt.Tooltip("month:T", format="%b %Y"), "kind:N", "touchpoints:Q", "accounts:Q"],
        )
        .properties(width=640, height=200, title="Customer-success touchpoints by type")
    )


def engagements_html(t: pd.DataFrame) -> str:
    agg = t.groupby("kind")[["touchpoints", "positive", "negative"]].sum().sort_values("touchpoints", ascending=False)
    total = agg.touchpoints.sum()
    rows = [
        [
            html.escape(str(kind)),
            f"{int(r.touchpoints):,}",
            fmt.value(r.touchpoints / total if total else float("nan"), "fraction"),
            fmt.value(r.positive / r.touchpoints if r.touchpoints else float("nan"), "fraction"),
            fmt.value(r.negative / r.touchpoints if r.touchpoints else float("nan"), "fraction"),
        ]
        for kind, r in agg.iterrows()
    ]
    return widgets.html_table(["type", "touchpoints 12m", "share", "positive", "negative"], rows, numeric=(1, 2, 3, 4))


def show_engagements(wb):
    """Customer-success touchpoints by type (call, meeting, email, qbr) over the last 12 months, with sentiment."""

    def render(w):
        w.require("cs_touchpoints", what="Engagements by type")
        t = w.table("engagements_by_type")
        t = t[(t.month > w.month - pd.DateOffset(months=12)) & (t.month <= w.month)]
        if t.empty:
            return widgets.note("No touchpoint in the last 12 months.")
        return [widgets.chart(engagement_chart(t), w), widgets.styled(engagements_html(t))]

    return widgets.section(wb, render)
