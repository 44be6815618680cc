"""Page 01, the acquisition funnel: KPI tiles, alerts, the funnel, conversion trends, time to
convert, channels and segments, sales efficiency, activation and the sales team. Each `show_*` is one section."""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from .. import charts, widgets
from .. import format as fmt
from ..metrics import funnel as f
from ..metrics import registry
from ..metrics.sales import cost_per_lead_totals, in_window, rep_window_totals

AREAS = registry.page_areas("funnel")  # registry areas this page shows: their metrics go to the snapshot's store
TILES = registry.tiles("funnel", ("funnel",))
SALES_TILES = registry.tiles("funnel", ("sales",))
ACTIVATION_TILES = registry.tiles("funnel", ("activation",))
TRENDS = registry.page_metrics(
    "funnel",
    [
        "visitor_to_signup_rate",
        "signup_to_pql_rate",
        "pql_to_customer_rate",
        "lead_conversion_rate",
        "trial_to_paid_conversion",
        "revenue_per_lead",
    ],
)
FUNNEL_STAGES = (f.VISITOR_SIGNUP, f.SIGNUP_PQL, f.PQL_OPP, f.OPP_WON)
BREAKDOWN_STAGES = (f.SIGNUP_PQL, f.PQL_CUSTOMER, f.SIGNUP_CUSTOMER)
TREND_MONTHS = 24
PERIOD_MONTHS = 3  # the funnel and breakdowns sum the last three complete cohort months


def basis_text(wb) -> str:
    """Which conversion basis the page shows, in words."""
    c = wb.conventions
    if c.funnel_basis == "cohort":
        return (
            f"cohort-based: of those entering a stage in a month, the share reaching the next within "
            f"{c.conversion_window_days} days (immature months flagged ○)"
        )
    return "period-based: next-stage count in a month / stage count in the same month"


def _conventions(wb) -> str:
    c = wb.conventions
    return (
        f"Conversion: {basis_text(wb)}. Activation window {c.activation_window_days} days, velocity "
        f"{c.activation_hours} h, new-user churn {c.new_user_churn_days} days. Web traffic has no segment: "
        "visitors are company-wide"
    )


def show_header(wb) -> Any:
    """Segment, month and the conversion conventions in force (with the controls in an app)."""
    return widgets.page_header(wb, _conventions)


def show_kpi_tiles(wb) -> Any:
    """Headline funnel KPIs for the month, with change, target status, n and immaturity."""
    return widgets.tiles_section(wb, TILES, ("leads",), "The acquisition funnel")


def show_alerts(wb) -> Any:
    """Inter-relational alerts declared in parameters/alerts.yaml, as callouts."""
    return widgets.alerts_section(wb)


def mature_months(wb, months: int = PERIOD_MONTHS) -> list[pd.Timestamp]:
    """The last `months` months whose cohorts are mature (all months under the period basis)."""
    table = wb.table("funnel_by_month")
    table = table[(table.month <= wb.month) & (table.stage == f.SIGNUP_PQL)]
    return table[~table.immature].month.tail(months).tolist()


def funnel_stages(wb) -> tuple[pd.DataFrame, str]:
    """Entrants per stage over the last mature months, each with its conversion rate to the next stage."""
    months = mature_months(wb)
    pooled = f.pooled_conversion(wb.table("funnel_by_month"), months, FUNNEL_STAGES).set_index("stage")
    sums = pooled.reindex([s for s in FUNNEL_STAGES if s in pooled.index])
    names = {f.VISITOR_SIGNUP: "visitors", f.SIGNUP_PQL: "signups", f.PQL_OPP: "PQLs", f.OPP_WON: "opportunities"}
    out = pd.DataFrame(
        {
            "stage": [names[s] for s in sums.index],
            "count": sums.entered.to_numpy(),
            "rate": sums.conversion_rate.to_numpy(),
        }
    )
    if f.OPP_WON in sums.index:
        out = pd.concat(
            [
                out,
                pd.DataFrame({"stage": ["won deals"], "count": [sums.loc[f.OPP_WON, "converted"]], "rate": [np.nan]}),
            ],
            ignore_index=True,
        )
    nxt = list(out.stage[1:]) + [""]
    out["label"] = [
        f"{c:,.0f}" + (f"  → {r:.1%} to {n}" if r == r else "") for c, r, n in zip(out["count"], out.rate, nxt)
    ]
    span = f"{months[0]:%b %Y} – {months[-1]:%b %Y}" if months else "no complete month"
    return out, span


def _funnel(wb) -> Any:
    wb.require("leads", what="The funnel")
    stages, span = funnel_stages(wb)
    return widgets.chart(
        charts.funnel(stages, f"Funnel, {span}", basis_text(wb) + "; visitors → signups is period-based"), wb
    )


def show_funnel(wb) -> Any:
    """Stage bars for the last three complete months, annotated with each stage's conversion."""
    return widgets.section(wb, _funnel)


def show_conversion_trends(wb) -> Any:
    """Conversion rates month by month, targets dashed, immature months flagged."""
    return widgets.trends_section(wb, TRENDS, TREND_MONTHS, ("leads",), "Conversion trends")


def convert_days(wb, months: int = 12) -> pd.DataFrame:
    """Histogram bins of days to convert per stage, over the last `months` months' conversions."""
    t = wb.table("funnel_transitions")
    window = wb.conventions.conversion_window_days
    t = t[(t.month <= wb.month) & (t.month > wb.month - pd.DateOffset(months=months)) & t.days.between(0, window)]
    rows = []
    for stage in (f.SIGNUP_PQL, f.PQL_CUSTOMER, f.OPP_WON):
        days = t.days[t.stage == stage].to_numpy()
        if len(days) == 0:
            continue
        counts, edges = np.histogram(days, bins=np.linspace(0, window, 19))
        rows += [
            (f"{stage} (median {np.median(days):.0f} d, n={len(days):,})", lo, hi, int(c))
            for lo, hi, c in zip(edges[:-1], edges[1:], counts)
        ]
    return pd.DataFrame(rows, columns=["stage", "bin_start", "bin_end", "count"])


def show_time_to_convert(wb) -> Any:
    """How many days conversions take, per stage, over the last twelve months."""

    def render(w):
        w.require("leads", what="Time to convert")
        return widgets.chart(
            charts.days_histogram(
                convert_days(w),
                "Days to convert, last 12 months",
                f"conversions within the {w.conventions.conversion_window_days}-day window",
            ),
            w,
        )

    return widgets.section(wb, render)


def breakdown(wb, table: str, group: str) -> pd.DataFrame:
    """Conversion per group and stage, summed over the last mature months."""
    return f.pooled_conversion(wb.table(table), mature_months(wb), BREAKDOWN_STAGES, (group,))


def _breakdowns(wb) -> list[Any]:
    wb.require("leads", what="Channel and segment comparison")
    low = wb.conventions.low_n_threshold
    months = mature_months(wb)
    span = f"{months[0]:%b %Y} – {months[-1]:%b %Y}" if months else "no complete month"
    return [
        widgets.chart(
            charts.rate_by_group(
                breakdown(wb, "funnel_by_channel", "channel"),
                "channel",
                f"Conversion by acquisition channel, {span}",
                low,
            ),
            wb,
        ),
        widgets.chart(
            charts.rate_by_group(
                breakdown(wb, "funnel_by_segment", "segment"), "segment", f"Conversion by segment, {span}", low
            ),
            wb,
        ),
    ]


def show_channels_and_segments(wb) -> Any:
    """Conversion rates by acquisition channel and by segment, n beside every rate."""
    return widgets.section(wb, _breakdowns)


def rep_summary(wb, months: int = 12) -> pd.DataFrame:
    """Per account executive over the last `months` months: created, won, lost, win rate, bookings, FTE now."""
    return f.rep_totals(wb.table("sales_by_rep"), wb.month - pd.DateOffset(months=months), wb.month)


def _sales(wb) -> list[Any]:
    wb.require("opportunities", what="Sales efficiency")
    currency = wb.conventions.reporting_currency
    tiles = widgets.kpi_tiles(wb, wb.available(SALES_TILES))
    pipe = wb.table("pipeline_by_month")
    pipe = pipe[pipe.month <= wb.month].tail(TREND_MONTHS)
    panels = [charts.pipeline(pipe, currency)]
    if wb.has("team"):
        reps = rep_summary(wb)
        if len(reps):
            panels.append(charts.rep_bookings(reps, currency))
    panels.append(widgets.metric_trend(wb, "win_rate", TREND_MONTHS))
    return [tiles, widgets.chart(alt.hconcat(*panels).resolve_scale(color="independent"), wb)]


def show_sales_efficiency(wb) -> Any:
    """Win rate, deal size, cycle, pipeline, capacity and bookings per rep."""
    return widgets.section(wb, _sales)


def _activation(wb) -> list[Any]:
    wb.require("users", what="Activation")
    names = wb.available(ACTIVATION_TILES)
    panels = [
        widgets.metric_trend(wb, n, TREND_MONTHS)
        for n in ("activation_rate", "activation_velocity", "new_user_churn_rate")
        if n in names
    ]
    return [widgets.kpi_tiles(wb, names), widgets.chart(alt.hconcat(*panels), wb)]


def show_activation(wb) -> Any:
    """Activation rate and velocity, time to value, new-user churn and the viral coefficient."""
    return widgets.section(wb, _activation)


# --------------------------------------------------------------------------- sales team (issue 25, item 4)
SALES_TEAM_METRICS = registry.page_metrics(
    "funnel",
    [
        "cost_per_lead",
        "quota_attainment",
        "activities_per_rep",
        "activity_to_opportunity_ratio",
        "demo_calls",
        "trial_starts",
        "rep_turnover",
    ],
)
ADD = {
    "spend": "add a `spend` table (month, category, amount, channel) to see cost per lead by channel",
    "quotas": "add a `quotas` table (member_id, month, quota) to see quota attainment per rep",
    "sales_activities": "add a `sales_activities` table (activity_id, member_id, type call/email/meeting/demo, "
    "occurred_at, lead_id or opportunity_id) to see activity per rep, sales by first touch and demo calls",
    "team": "add a `team` table (member_id, role ae, start_date, end_date, ramp_months) to see the per-rep "
    "tables, the hiring plan and rep turnover",
    "opportunities": "add an `opportunities` table to see quota attainment, contact methods and the hiring plan",
}


def _window_start(wb) -> pd.Timestamp:
    return wb.month - pd.DateOffset(months=wb.conventions.sales_window_months - 1)


def cost_per_lead_html(t: pd.DataFrame, currency: str) -> str:
    """Cost per lead by channel over the window, with the total (`sales.cost_per_lead_totals` of the window's rows)."""
    by = cost_per_lead_totals(t)
    rows = [
        [
            html.escape(str(r.channel)),
            fmt.money(r.sm_spend, currency),
            f"{int(r.leads):,}",
            fmt.money(r.cost_per_lead, currency),
        ]
        for r in by.itertuples()
    ]
    return widgets.html_table(
        ["channel", "S&M spend", "leads", "cost per lead"],
        rows,
        numeric=(1, 2, 3),
        totals=[False] * (len(by) - 1) + [True],
    )


def rep_table(wb) -> pd.DataFrame:
    """Per account executive over the window (`sales.rep_window_totals`)."""
    return rep_window_totals(
        wb.table("sales_capacity"),
        wb.table("quota_attainment_by_rep") if wb.has("quotas", "opportunities") else None,
        wb.table("activities_by_rep") if wb.has("sales_activities") else None,
        _window_start(wb),
        wb.month,
    )


def rep_table_html(reps: pd.DataFrame, currency: str) -> str:
    cols = [("name", "rep", lambda v: html.escape(str(v)))]
    if "quota" in reps:
        cols += [
            ("quota", "quota", lambda v: fmt.money(v, currency)),
            ("attained", "closed won", lambda v: fmt.money(v, currency)),
            ("attainment", "attainment", lambda v: fmt.value(v, "fraction")),
        ]
    if "activities" in reps:
        count = lambda v: "n/a" if pd.isna(v) else f"{int(v):,}"  # noqa: E731
        cols += [(c, c, count) for c in ("calls", "emails", "meetings", "demos", "activities")]
        cols += [
            ("opportunities_created", "opportunities", count),
            ("per_opportunity", "activities / opportunity", lambda v: fmt.value(v, "ratio")),
        ]
    rows = [[f(getattr(r, c)) for c, _, f in cols] for r in reps.itertuples()]
    return widgets.html_table([h for _, h, _ in cols], rows, numeric=tuple(range(1, len(cols))))


def contact_html(t: pd.DataFrame, currency: str) -> str:
    rows = [
        [
            html.escape(str(r.method)),
            f"{r.won:,}",
            fmt.money(r.bookings, currency),
            fmt.value(r.share_of_won, "fraction"),
        ]
        for r in t.itertuples()
    ]
    return widgets.html_table(["contact method", "deals won", "bookings", "share of won"], rows, numeric=(1, 2, 3))


def hiring_html(plan: pd.DataFrame, currency: str, failure: float) -> str:
    rows = [
        [
            f"{r.horizon_months} months",
            fmt.money(r.bookings_target, currency),
            fmt.money(r.bookings_per_fte, currency),
            f"{r.fte_needed:.1f}",
            f"{r.fte_on_team:.1f}",
            f"{r.ramp_at_horizon:.0%}",
            f"{r.reps_to_hire}",
            f"<b>{r.hires_with_failure}</b>",
        ]
        for r in plan.itertuples()
    ]
    return widgets.html_table(
        [
            "horizon",
            "bookings / month to reach",
            "bookings per ramped rep",
            "reps (FTE) needed",
            "FTE on the team then",
            "a hire's ramp then",
            "reps to hire now",
            f"hires with {failure:.0%} failing",
        ],
        rows,
        numeric=tuple(range(1, 8)),
    )


def _caption(text: str) -> str:
    return f'<div class="saaskpi-header"><div class="sub"><b>{html.escape(text)}</b></div></div>'


def _sales_team(wb) -> list[Any]:
    c, cur = wb.conventions, wb.conventions.reporting_currency
    window = f"{_window_start(wb):%b %Y} – {wb.month:%b %Y}"
    names = wb.available(SALES_TEAM_METRICS)
    out: list[Any] = [widgets.kpi_tiles(wb, names)] if names else []
    missing = [ADD[t] for t in ("spend", "quotas", "sales_activities", "team", "opportunities") if not wb.has(t)]
    if wb.has("spend", "leads"):
        cpl = cost_per_lead_html(in_window(wb.table("cost_per_lead_by_channel"), _window_start(wb), wb.month), cur)
        out.append(widgets.styled(_caption(f"Cost per lead by channel, {window}") + cpl))
    if wb.has("team"):
        reps = rep_table(wb)
        if len(reps) and len(reps.columns) > 2:
            out.append(widgets.styled(_caption(f"Account executives, {window}") + rep_table_html(reps, cur)))
    trends = [n for n in ("trial_starts", "demo_calls") if n in names]
    if trends:
        out.append(widgets.chart(alt.hconcat(*(widgets.metric_trend(wb, n, TREND_MONTHS) for n in trends)), wb))
    if wb.has("opportunities"):
        methods = wb.table("sales_by_contact_method")
        if len(methods):
            out.append(widgets.styled(_caption(f"Deals won by contact method, {window}") + contact_html(methods, cur)))
    if wb.has("opportunities", "team"):
        plan = hiring_html(wb.table("sales_hiring_plan"), cur, c.sales_rep_failure_rate)
        out.append(widgets.styled(_caption("Sales hiring plan: account executives to hire now") + plan))
    if wb.has("team"):
        turnover = wb.table("rep_turnover_by_month")
        year = turnover[(turnover.month > wb.month - pd.DateOffset(months=12)) & (turnover.month <= wb.month)]
        out.append(
            widgets.note(
                f"Rep turnover: {int(year.left.sum())} account executive(s) left and {int(year.hired.sum())} joined "
                "in the last 12 months (team.end_date and start_date)."
            )
        )
    basis = {"bookings": "closed-won bookings", "new_arr": "closed-won new ARR"}[c.quota_attainment_basis]
    method = {"first_touch": "the type of the first sales activity", "lead_channel": "the lead's channel"}[
        c.sales_contact_method_basis
    ]
    out.append(
        widgets.note(
            f"Per-rep tables and contact methods: {window} (sales_window_months). Attainment = {basis} / quota "
            f"(quota_attainment_basis); contact method = {method} (sales_contact_method_basis). Hiring plan: "
            f"bookings {c.sales_hiring_bookings_growth:+.0%} in 12 months, {c.sales_rep_failure_rate:.0%} of hires "
            "failing. Trial starts = self-serve signups (leads without a sales opportunity)."
        )
    )
    out += [widgets.note(f"To see more: {m}.") for m in missing]
    return out


def show_sales_team(wb) -> Any:
    """Cost per lead by channel, quota attainment and activity per rep, trial starts and demo calls, sales by
    contact method, the sales hiring plan and rep turnover; says which optional table adds what."""
    return widgets.section(wb, _sales_team)
