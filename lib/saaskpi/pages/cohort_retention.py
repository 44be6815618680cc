"""Page 02, cohort retention and revenue: KPI tiles, the MRR bridge, cohort heatmaps, survival,
trends against targets, and product stickiness. Each `show_*` is one notebook section."""

from __future__ import annotations

from typing import Any

import altair as alt

from .. import charts, widgets
from ..metrics import METRICS, registry
from ..metrics.cohorts import cohort_triangle, weighted_average_retention

AREAS = registry.page_areas("cohort_retention")  # registry areas this page shows: their metrics go to the snapshot
TILES = registry.tiles("cohort_retention")
TRENDS = registry.page_metrics(
    "cohort_retention",
    [
        "net_revenue_retention",
        "gross_revenue_retention",
        "net_mrr_churn_rate",
        "customer_churn_rate",
        "mrr_growth_rate",
        "saas_quick_ratio",
    ],
)
TREND_MONTHS = 24


def _conventions(wb) -> str:
    used = sorted({c for name in TILES + TRENDS for c in METRICS[name].conventions})
    return "; ".join(f"{c} = {getattr(wb.conventions, c)}" for c in used)


def show_header(wb) -> Any:
    """Title, segment and month (with the controls in an app) and the conventions in force."""
    return widgets.page_header(wb, lambda w: f"Conventions: {_conventions(w)}")


def show_kpi_tiles(wb) -> Any:
    """Headline revenue and retention KPIs for the month, with change, target status and n."""
    return widgets.section(wb, lambda w: widgets.kpi_tiles(w, TILES))


def _bridge(wb) -> list[Any]:
    movements = wb.table("mrr_movements")
    currency = wb.conventions.reporting_currency
    recent = movements[movements.month <= wb.month].tail(TREND_MONTHS)
    return [
        widgets.chart(charts.mrr_bridge(movements, wb.month, currency), wb),
        widgets.chart(charts.movements_over_time(recent, currency), wb),
    ]


def show_mrr_bridge(wb) -> Any:
    """How MRR moved this month (waterfall) and over the last two years."""
    return widgets.section(wb, _bridge)


def _heatmaps(wb) -> list[Any]:
    logo, revenue = wb.table("cohort_logo_retention"), wb.table("cohort_revenue_retention")
    logo_chart = charts.cohort_heatmap(
        logo,
        "retention_rate",
        "Logo retention: share of each cohort still paying",
        tooltip=("cohort_accounts", "retained_accounts"),
    )
    revenue_chart = charts.cohort_heatmap(
        revenue, "revenue_retention", "Revenue retention: cohort MRR / starting MRR", tooltip=("cohort_mrr", "mrr")
    )
    out = [widgets.chart(alt.hconcat(logo_chart, revenue_chart).resolve_scale(color="independent"), wb)]
    counts = charts.cohort_heatmap(logo, "retained_accounts", "Accounts still paying (count)", percent=False)
    averages = weighted_average_retention(logo).assign(measure="logo")
    rev_avg = weighted_average_retention(revenue, "revenue_retention").rename(
        columns={"revenue_retention": "retention_rate"}
    )
    both = alt.layer(
        charts.weighted_average_line(averages, "retention_rate", ""),
        charts.weighted_average_line(rev_avg.assign(measure="revenue"), "retention_rate", ""),
    )
    out.append(
        widgets.chart(
            alt.hconcat(
                counts,
                both.encode(color=alt.Color("measure:N", title=None)).properties(
                    title=alt.Title(
                        "Weighted average over cohorts", subtitle="sum retained / sum cohort size at each age"
                    )
                ),
            ).resolve_scale(color="independent"),
            wb,
        )
    )
    accounts = wb.source_table("accounts")
    by = []
    for column, label in (("segment", "segment"), ("acquisition_channel", "channel")):
        t = cohort_triangle(wb.table("account_mrr"), wb.as_of, accounts, by=column)
        avg = weighted_average_retention(t, by=column).rename(columns={column: label})
        by.append(
            charts.weighted_average_line(avg, "retention_rate", f"Logo retention by {label}").encode(
                color=alt.Color(f"{label}:N", title=None)
            )
        )
    out.append(widgets.chart(alt.hconcat(*by).resolve_scale(color="independent"), wb))
    return out


def show_cohort_heatmaps(wb) -> Any:
    """Logo and revenue retention triangles (% and counts), the weighted average, and breakdowns."""
    return widgets.section(wb, _heatmaps)


def show_survival(wb) -> Any:
    """Kaplan-Meier logo survival per segment."""
    return widgets.section(wb, lambda w: widgets.chart(charts.survival_curves(w.table("logo_survival")), w))


def show_trends(wb) -> Any:
    """Headline KPIs month by month with their targets dashed."""
    return widgets.trends_section(wb, TRENDS, TREND_MONTHS)


def _stickiness(wb) -> list[Any]:
    wb.require("usage_events", what="Product stickiness")
    active = wb.table("active_users")
    active = active[active.month <= wb.month].tail(TREND_MONTHS)
    ratio = widgets.metric_trend(wb, "dau_mau_ratio", TREND_MONTHS)
    users = wb.table("user_cohort_retention")
    life = wb.table("user_lifecycle")
    return [
        widgets.chart(alt.hconcat(charts.active_users(active), ratio).resolve_scale(color="independent"), wb),
        widgets.chart(
            alt.hconcat(
                charts.cohort_heatmap(
                    users,
                    "retention_rate",
                    "User retention by month of first activity",
                    tooltip=("cohort_users", "active_users"),
                ),
                charts.user_lifecycle(life[life.month <= wb.month].tail(TREND_MONTHS)),
            ).resolve_scale(color="independent"),
            wb,
        ),
    ]


def show_stickiness(wb) -> Any:
    """DAU, WAU, MAU and DAU/MAU against target, user cohorts and the user lifecycle."""
    return widgets.section(wb, _stickiness)


def show_churn_spikes(wb) -> Any:
    """Churned accounts and churned MRR in the latest complete week of the month against their usual range (spike
    alerts between months: spikes in parameters/alerts.yaml)."""
    from .. import spikes

    return spikes.show(wb, "cohort_retention")
