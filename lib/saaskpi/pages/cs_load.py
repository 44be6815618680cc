"""Page 04, customer success: lifecycle, renewals, adoption, voice of the customer and support,
relationship and collections, account health with its backtest, the at-risk list, one CSM's book of
business (a CSM picker in an app), CS load and hiring, cost to serve and the CSM scorecard.
Settings: parameters/customer_success.yaml and parameters/health_score.yaml."""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import pandas as pd

from .. import charts, theme, widgets
from .. import format as fmt
from ..errors import ParameterError
from ..metrics import registry
from ..metrics.cs_load import NO_CSM
from ..metrics.lifecycle import STAGES, account_names

AREAS = registry.page_areas("cs_load")  # registry areas this page shows: their metrics go to the snapshot
TREND_MONTHS = 24
TOP_ROWS = 15
HEADLINE = registry.tiles("cs_load")
_SECTION = registry.page_metrics  # each section's metrics, checked to be this page's at import
RENEWALS = _SECTION("cs_load", ["renewals_due_count", "renewals_due_arr", "renewal_rate", "renewals_minus_churn"])
ADOPTION = _SECTION(
    "cs_load",
    [
        "licence_utilisation_rate",
        "customer_engagement_score",
        "feature_adoption_rate",
        "feature_adoption_90_days",
        "feature_adoption_12_months",
        "time_in_product_per_user",
    ],
)
SUPPORT = _SECTION(
    "cs_load",
    [
        "net_promoter_score",
        "customer_satisfaction",
        "first_contact_resolution",
        "first_response_hours",
        "first_response_hours_p90",
        "resolution_hours",
        "resolution_hours_p90",
        "sla_breach_rate",
    ],
)
RELATIONSHIP = _SECTION(
    "cs_load",
    [
        "touchpoints_per_account",
        "stakeholder_coverage",
        "positive_sentiment_share",
        "invoices_paid_on_time",
        "overdue_amount",
    ],
)
LOAD = _SECTION(
    "cs_load",
    [
        "accounts_per_csm",
        "csm_capacity_utilisation",
        "csms_over_capacity_share",
        "max_csm_load",
        "cost_to_serve_per_account",
        "cost_to_serve_per_arr",
    ],
)
TRENDS = _SECTION(
    "cs_load",
    [
        "renewal_rate",
        "average_health_score",
        "red_account_share",
        "health_backtest_auc",
        "licence_utilisation_rate",
        "customer_engagement_score",
        "net_promoter_score",
        "customer_satisfaction",
        "sla_breach_rate",
        "csm_capacity_utilisation",
        "max_csm_load",
    ],
)
BAND_MARK = {"red": "●", "yellow": "●", "green": "●", "n/a": "○"}


def csm_name(csm_id) -> str:
    """A CSM id as the tables show it: "no CSM" for an account without one (empty, None or NaN, never "nan")."""
    return csm_id if isinstance(csm_id, str) and csm_id else NO_CSM


def _conventions(wb) -> str:
    c, s = wb.conventions, wb.success_settings()
    return (
        f"Lifecycle: renewal within {c.renewal_window_days} days wins, onboarding < {c.onboarding_months} months, "
        f"training < {c.training_months} months, extending at {c.extending_utilisation:.0%} licence utilisation; "
        f"health bands red ≤ {s.health.red}, yellow ≤ {s.health.yellow}, green above (health_score.yaml); "
        f"support, touchpoints and sentiment over the {s.window_days} days to the month end, NPS over "
        f"{c.nps_window_days} days (customer_success.yaml)"
    )


def show_header(wb) -> Any:
    """Segment and month (with the controls in an app) and the rules behind the page's numbers."""
    return widgets.page_header(wb, _conventions)


def show_kpis(wb) -> Any:
    """The customer-success headline: renewals, health and its backtest, adoption, voice of the customer, load."""
    return widgets.tiles_section(wb, HEADLINE)


# --------------------------------------------------------------------------- lifecycle and renewals
def _band(band: str) -> str:
    colour = theme.BAND.get(band, theme.STATUS["n/a"])
    return f'<span style="color:{colour}">{BAND_MARK.get(band, "○")}</span> {html.escape(band)}'


def _int(v) -> str:
    """A whole number with thousands separators (n/a when missing)."""
    return "n/a" if v is None or pd.isna(v) else f"{int(round(v)):,}"


def _num(v: float, unit: str, cur: str = "USD") -> str:
    return "n/a" if v is None or pd.isna(v) else fmt.value(v, unit, cur)


def lifecycle_html(wb) -> str:
    """Accounts and mean months in stage per lifecycle stage at the month end."""
    t = wb.table("lifecycle_by_month")
    now = t[t.month == wb.month].set_index("stage").reindex(list(STAGES))
    rows = [
        [
            html.escape(stage),
            _int(r.accounts if r.accounts == r.accounts else 0),
            _num(r.mean_months_in_stage, "months"),
        ]
        for stage, r in now.iterrows()
    ]
    return widgets.html_table(["stage", "accounts", "months in stage (mean)"], rows, numeric=(1, 2))


def show_lifecycle(wb) -> Any:
    """Paying accounts per lifecycle stage by month, and the count and time in each stage now."""

    def render(w):
        out: list[Any] = []
        t = w.table("lifecycle_by_month")
        t = t[(t.month <= w.month) & (t.month > w.month - pd.DateOffset(months=TREND_MONTHS))]
        out.append(widgets.chart(charts.lifecycle_stack(t), w))
        out.append(widgets.styled(lifecycle_html(w)))
        return out

    return widgets.section(wb, render)


def renewals_html(due: pd.DataFrame, currency: str, limit: int = TOP_ROWS) -> str:
    """Renewals due: account, CSM, term end, days to it, ARR and health."""
    if due.empty:
        return '<div class="saaskpi-note">No contract term ends within the renewal window.</div>'
    rows = [
        [
            html.escape(str(r.account_name)),
            html.escape(csm_name(r.csm_id)),
            f"{r.term_end:%Y-%m-%d}",
            _int(r.days_to_renewal),
            fmt.money(r.arr, currency),
            _num(r.health, "score"),
            _band(r.band),
        ]
        for r in due.head(limit).itertuples()
    ]
    more = (
        f'<div class="saaskpi-note">{len(due) - limit} more in `saaskpi table renewals_due`.</div>'
        if len(due) > limit
        else ""
    )
    return (
        widgets.html_table(["account", "CSM", "term ends", "days", "ARR", "health", "band"], rows, numeric=(3, 4, 5))
        + more
    )


def show_renewals(wb) -> Any:
    """Renewals due within the window (count, ARR, health), renewal rate and renewals minus churn."""

    def render(w):
        out: list[Any] = []
        out.append(widgets.kpi_tiles(w, RENEWALS))
        out.append(widgets.styled(renewals_html(w.table("renewals_due"), w.conventions.reporting_currency)))
        return out

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- adoption, support, relationship
def show_adoption(wb) -> Any:
    """Licence utilisation, engagement score, feature adoption (now, at 90 days, at 12 months), time in product."""

    def render(w):
        out: list[Any] = []
        w.require("usage_events", what="Adoption and usage")
        out.append(widgets.kpi_tiles(w, ADOPTION))
        f = w.table("feature_adoption")
        t = w.table("time_in_product")
        panels = [charts.feature_bars(f[f.month == w.month])]
        if len(t):
            now = t[t.month == w.month]
            panels.append(
                alt.Chart(now)
                .mark_bar()
                .encode(
                    y=alt.Y("feature:N", sort="-x", title=None),
                    x=alt.X("minutes_per_active_user:Q", title="minutes per active user"),
                    tooltip=[
                        "feature:N",
                        alt.Tooltip("minutes_per_active_user:Q", format=".1f"),
                        alt.Tooltip("minutes:Q", format=",.0f"),
                    ],
                )
                .properties(
                    width=300,
                    height=alt.Step(20),
                    title=alt.Title("Time in product by feature area", subtitle="this month"),
                )
            )
        out.append(widgets.chart(alt.hconcat(*panels), w))
        return out

    return widgets.section(wb, render)


def support_html(sla: pd.DataFrame) -> str:
    """Per priority: tickets, SLA, first response and resolution hours (median, p90), breaches, FCR."""
    h = lambda v: _num(v, "hours")  # noqa: E731
    rows = [
        [
            html.escape(r.priority),
            _int(r.tickets),
            h(r.sla_hours),
            h(r.response_median),
            h(r.response_p90),
            h(r.resolution_median),
            h(r.resolution_p90),
            _num(r.breach_rate, "fraction"),
            _num(r.first_contact_resolution, "fraction"),
        ]
        for r in sla.itertuples()
    ]
    return widgets.html_table(
        [
            "priority",
            "tickets",
            "SLA",
            "response median",
            "response p90",
            "resolution median",
            "resolution p90",
            "SLA breached",
            "first-contact resolution",
        ],
        rows,
        numeric=tuple(range(1, 9)),
    )


def show_support(wb) -> Any:
    """NPS, CSAT, first-contact resolution, response and resolution times and SLA breaches by priority."""

    def render(w):
        out: list[Any] = []
        out.append(widgets.kpi_tiles(w, w.available(SUPPORT)))
        if w.has("support_tickets"):
            s = w.success_settings()
            out.append(
                widgets.styled(
                    f'<div class="saaskpi-note">Tickets opened in the {s.window_days} days to the '
                    "month end, by priority (SLA hours in customer_success.yaml)</div>"
                    + support_html(w.table("support_sla"))
                )
            )
        return out

    return widgets.section(wb, render)


def show_relationship(wb) -> Any:
    """Touchpoints, stakeholder coverage and sentiment of CS conversations; invoices paid on time and overdue."""

    def render(w):
        out: list[Any] = []
        out.append(widgets.kpi_tiles(w, w.available(RELATIONSHIP)))
        if w.has("cs_touchpoints"):
            mix = w.table("sentiment_mix")
            long = mix.melt(
                id_vars=["segment"],
                value_vars=["positive", "neutral", "negative"],
                var_name="sentiment",
                value_name="count",
            )
            out.append(
                widgets.chart(
                    alt.Chart(long)
                    .mark_bar()
                    .encode(
                        y=alt.Y("segment:N", title=None),
                        x=alt.X("count:Q", stack="normalize", title=None, axis=alt.Axis(format="%")),
                        color=alt.Color("sentiment:N", scale=theme.scale(theme.SENTIMENT), title=None),
                        order=alt.Order("order:Q"),
                        tooltip=["segment:N", "sentiment:N", alt.Tooltip("count:Q", title="touchpoints")],
                    )
                    .transform_calculate(order="indexof(['positive', 'neutral', 'negative'], datum.sentiment)")
                    .properties(
                        width=420,
                        height=alt.Step(24),
                        title=alt.Title("Sentiment mix", subtitle="touchpoints in the window by sentiment"),
                    ),
                    w,
                )
            )
        return out

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- health
def components_note(health: pd.DataFrame) -> str:
    """How many components the scores used: 'components used: 8 of 8 for 410 accounts, 6 of 8 for 200, ...'."""
    counts = health.groupby(["components_used", "components_possible"]).size().sort_index(ascending=False)
    parts = [f"{int(u)} of {int(p)} for {n} account{'s' if n != 1 else ''}" for (u, p), n in counts.items()]
    return (
        (
            "Components used (a component without data is skipped and the other weights re-scaled): "
            + "; ".join(parts)
            + "."
        )
        if parts
        else "No account has a health score."
    )


def show_health(wb) -> Any:
    """Health bands by segment, lifecycle stage and CSM, the portfolio's mean, and components used."""

    def render(w):
        out: list[Any] = []
        r = w.table("health_rollup")
        if r.empty:
            out.append(widgets.note("No paying account has a health score this month."))
            return out
        panels = [
            charts.band_shares(r[r.level == level], title, "share of accounts per band")
            for level, title in (
                ("portfolio", "Portfolio"),
                ("segment", "By segment"),
                ("stage", "By lifecycle stage"),
                ("csm", "By CSM"),
            )
        ]
        out.append(widgets.chart(alt.vconcat(alt.hconcat(panels[0], panels[1]), alt.hconcat(panels[2], panels[3])), w))
        out.append(widgets.note(components_note(w.table("account_health"))))
        return out

    return widgets.section(wb, render)


def show_backtest(wb) -> Any:
    """Churn and contraction in the 3 months after a score by band, and the ROC AUC of health against churn."""

    def render(w):
        out: list[Any] = []
        b = w.table("health_backtest")
        out.append(
            widgets.chart(
                alt.hconcat(
                    charts.backtest_bars(b),
                    widgets.metric_trend(w, "health_backtest_auc", TREND_MONTHS),
                ),
                w,
            )
        )
        out.append(widgets.note(backtest_note(b, w.series("health_backtest_auc"))))
        return out

    return widgets.section(wb, render)


def backtest_note(backtest: pd.DataFrame, trend: pd.DataFrame) -> str:
    """The pooled ROC AUC of the backtest in words and, for the months at the end of the trend without one, why:
    the AUC of a month needs an account scored 3 months before it that churned and one that stayed."""
    total = backtest[backtest.band == "all"].iloc[0]
    auc = total.auc
    text = (
        f"ROC AUC of the score 3 months earlier against churn since: {'n/a' if auc != auc else f'{auc:.2f}'} over "
        f"{_int(total.account_months)} account-months with {_int(total.churned)} churns "
        "(0.5 = no better than chance, 1 = every churner scored below every stayer). Adjust the weights in "
        "parameters/health_score.yaml and watch this number."
    )
    # the months at the end of the trend without a value, each explained (a month's AUC needs a churner and a stayer)
    first = len(trend)
    while first and pd.isna(trend.value.iloc[first - 1]):
        first -= 1
    gap = trend.iloc[first:]
    if len(gap):
        whys = [
            f"{'no' if n == 0 else 'every'} account scored in {month - pd.DateOffset(months=3):%Y-%m} churned by "
            f"{month:%Y-%m}"
            for month, n in zip(pd.to_datetime(gap.month), gap.n)
        ]
        months = f"{gap.month.iloc[0]:%Y-%m}" + (f" to {gap.month.iloc[-1]:%Y-%m}" if len(gap) > 1 else "")
        text += (
            f" The trend has no value for {months}: {'; '.join(whys)}, and a month's AUC needs a churner and a stayer."
        )
    return text


def at_risk_html(risky: pd.DataFrame, currency: str, limit: int = TOP_ROWS) -> str:
    """Red or falling accounts with what pulled them down, renewal date, ARR and owner."""
    if risky.empty:
        return '<div class="saaskpi-note">No red or falling account this month.</div>'
    rows = [
        [
            html.escape(str(r.account_name)),
            html.escape(csm_name(r.csm_id)),
            _band(r.band),
            _num(r.health, "score"),
            _num(r.change, "score"),
            html.escape(r.pulled_down_by),
            f"{r.term_end:%Y-%m-%d}" if pd.notna(r.term_end) else "monthly",
            fmt.money(r.arr, currency),
            html.escape(str(r.stage)),
            *([html.escape(str(r.override))] if "override" in risky else []),
        ]
        for r in risky.head(limit).itertuples()
    ]
    more = (
        f'<div class="saaskpi-note">{len(risky) - limit} more in `saaskpi table at_risk_accounts`.</div>'
        if len(risky) > limit
        else ""
    )
    return (
        widgets.html_table(
            ["account", "CSM", "band", "health", "change", "pulled down by", "term ends", "ARR", "stage"]
            + (["CSM override"] if "override" in risky else []),
            rows,
            numeric=(3, 4, 7),
        )
        + more
    )


def show_at_risk(wb) -> Any:
    """Red and falling accounts, riskiest first, with the components that pulled them down."""

    def render(w):
        out: list[Any] = []
        s = w.success_settings()
        out.append(
            widgets.styled(
                f'<div class="saaskpi-note">Red, or down {s.falling_points:g}+ points in '
                f"{s.falling_months} months; components below 50 listed lowest first</div>"
                + at_risk_html(with_overrides(w, w.table("at_risk_accounts")), w.conventions.reporting_currency)
            )
        )
        return out

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- one CSM's book
def csm_choices(wb) -> list[tuple[str, str]]:
    """(label, csm_id) of the CSMs on the team (or owning accounts), most accounts first; accounts without a CSM last."""
    load = wb.table("csm_load") if wb.has("team") else pd.DataFrame(columns=["csm_id", "name", "accounts"])
    load = load.assign(unowned=load.csm_id == NO_CSM).sort_values(
        ["unowned", "accounts", "csm_id"], ascending=[True, False, True]
    )
    return [(f"{r.name} · {int(r.accounts)} accounts", r.csm_id) for r in load.itertuples()]


def book_view(wb, csm_id: str) -> list[Any]:
    """One CSM's book: load line, renewals due, red and falling accounts with their health trend, activity heatmap."""
    out: list[Any] = []
    health = wb.table("account_health")
    if csm_id not in [c[1] for c in csm_choices(wb)]:
        raise ParameterError(
            f"CSM {csm_id!r} is not on the team of {wb.segment.label} at the end of {wb.month_label} "
            "and owns no paying account; pick one from the list (team.member_id)."
        )
    mine = health[health.csm_id.fillna(NO_CSM) == csm_id]
    cur = wb.conventions.reporting_currency
    counts = mine.band.value_counts()
    out.append(
        widgets.styled(
            f'<div class="saaskpi-header"><b>{html.escape(csm_id)}</b> · {len(mine)} paying accounts · '
            f"{fmt.money(mine.arr.sum(), cur)} ARR · "
            + " ".join(f"{_band(b)} {counts.get(b, 0)}" for b in ("red", "yellow", "green"))
            + "</div>"
        )
    )
    due = wb.table("renewals_due")
    out.append(widgets.styled("<b>Renewals due</b>" + renewals_html(due[due.csm_id.fillna(NO_CSM) == csm_id], cur)))
    risky = wb.table("at_risk_accounts")
    risky = risky[risky.csm_id.fillna(NO_CSM) == csm_id]
    out.append(widgets.styled("<b>Red and falling</b>" + at_risk_html(with_overrides(wb, risky), cur, 10)))
    names = account_names(wb.tables).to_dict()
    if len(risky):
        trend = wb.table("health_trend")
        trend = trend[
            trend.account_id.isin(risky.account_id.head(6))
            & (trend.month > wb.month - pd.DateOffset(months=12))
            & (trend.month <= wb.month)
        ]
        out.append(widgets.chart(charts.health_trends(trend, names), wb))
    if wb.has("usage_events"):
        act = wb.table("account_weekly_activity")
        ids = mine.sort_values("arr", ascending=False).account_id.head(25)
        act = act[act.account_id.isin(ids)]
        if len(act):
            out.append(widgets.chart(charts.activity_heatmap(act, names), wb))
    return out


def show_book_of_business(wb, csm: str = "") -> Any:
    """One CSM's book of business (the CSM with most accounts unless one is named; a CSM picker in an app)."""

    def render(w):
        out: list[Any] = []
        choices = csm_choices(w)
        if not choices:
            out.append(widgets.note("No CSM: the source has no team table or no paying account with a CSM."))
            return out
        out.append(widgets.picked_view(w, choices, csm, book_view, "CSM"))
        return out

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- load, hiring, cost, scorecard
def load_html(load: pd.DataFrame, currency: str) -> str:
    rows = [
        [
            html.escape(str(r.name)),
            html.escape(str(r.segment or "")),
            _int(r.accounts),
            fmt.money(r.arr, currency),
            *[_int(getattr(r, s)) for s in STAGES],
            _int(r.renewals_due),
            _int(r.red_accounts),
            _int(r.open_tickets),
            _int(r.touchpoints),
            _int(r.capacity),
            widgets.status_text(_num(r.load, "fraction"), "off" if r.load > 1 else "on") if r.load == r.load else "n/a",
        ]
        for r in load.itertuples()
    ]
    return widgets.html_table(
        [
            "CSM",
            "segment",
            "accounts",
            "ARR",
            *STAGES,
            "renewals due",
            "red",
            "open tickets",
            "touchpoints",
            "capacity",
            "load",
        ],
        rows,
        numeric=tuple(range(2, 16)),
    )


def hiring_html(forecast: pd.DataFrame) -> str:
    rows = [
        [
            html.escape(r.segment),
            f"+{r.horizon_months} mo",
            _int(r.paying_now),
            f"{r.trend_per_month:+.1f}",
            _int(round(r.projected_accounts)),
            _num(r.csm_coverage, "fraction"),
            _int(r.capacity_per_csm),
            _int(r.csms_needed),
            _int(r.csms_now),
            widgets.status_text(_int(r.to_hire), "off" if r.to_hire > 0 else "on"),
        ]
        for r in forecast.itertuples()
    ]
    return widgets.html_table(
        [
            "segment",
            "horizon",
            "paying now",
            "trend / month",
            "projected",
            "with a CSM",
            "capacity / CSM",
            "CSMs needed",
            "CSMs now",
            "to hire",
        ],
        rows,
        numeric=tuple(range(2, 10)),
    )


def show_cs_load(wb) -> Any:
    """Per CSM: accounts, ARR, stages, renewals, red accounts, tickets, touchpoints, load against capacity; and the
    CSMs needed in 1, 3 and 6 months."""

    def render(w):
        out: list[Any] = []
        w.require("team", what="CS load")
        out.append(widgets.kpi_tiles(w, w.available(LOAD)))
        load = w.table("csm_load")
        out.append(widgets.chart(charts.load_vs_capacity(load), w))
        cur = w.conventions.reporting_currency
        s = w.success_settings()
        out.append(
            widgets.styled(
                load_html(load, cur) + f'<div class="saaskpi-note">Hiring forecast: paying accounts '
                f"projected on their trend over the last {s.forecast_history_months} months; CSMs needed "
                "= accounts to cover / capacity, rounded up (csm_capacity in customer_success.yaml)</div>"
                + hiring_html(w.table("hiring_forecast"))
            )
        )
        return out

    return widgets.section(wb, render)


def scorecard_html(card: pd.DataFrame, currency: str) -> str:
    rows = [
        [
            html.escape(str(r.name)),
            _int(r.accounts),
            fmt.money(r.arr, currency),
            _num(r.nrr_12m, "fraction"),
            _num(r.logo_churn_12m, "fraction"),
            _num(r.csat, "fraction"),
            _num(r.nps, "score"),
            _num(r.response_hours_median, "hours"),
            _int(r.touchpoints),
            fmt.money(r.upsell_mrr_12m, currency),
        ]
        for r in card.itertuples()
    ]
    return widgets.html_table(
        [
            "CSM",
            "accounts",
            "ARR",
            "NRR 12m",
            "logo churn 12m",
            "CSAT",
            "NPS",
            "first response (median)",
            "touchpoints",
            "upsell MRR 12m",
        ],
        rows,
        numeric=tuple(range(1, 10)),
    )


def show_cost_and_scorecard(wb) -> Any:
    """Cost to serve per account and per $ of ARR by segment and item, and the CSM effectiveness scorecard."""

    def render(w):
        out: list[Any] = []
        cur = w.conventions.reporting_currency
        if w.has("spend"):
            cost = w.table("cost_to_serve")
            if len(cost):
                out.append(widgets.chart(charts.cost_stack(cost, cur), w))
                rows = [
                    [
                        html.escape(r.segment),
                        _int(r.accounts),
                        fmt.money(r.cs_spend, cur),
                        fmt.money(r.per_account, cur),
                        _num(r.per_arr_dollar, "number"),
                    ]
                    for r in cost.itertuples()
                ]
                out.append(
                    widgets.styled(
                        widgets.html_table(
                            [
                                "segment",
                                "paying accounts",
                                "CS spend (month)",
                                "per account",
                                "per $ of ARR (annualised)",
                            ],
                            rows,
                            numeric=(1, 2, 3, 4),
                        )
                    )
                )
        if w.has("team"):
            out.append(
                widgets.styled(
                    '<div class="saaskpi-note">CSM scorecard: each CSM\'s current book; NRR and logo '
                    "churn of the accounts paying 12 months ago; CSAT, NPS, response time and touchpoints "
                    "in the window; upsell = expansion MRR added in the last 12 months</div>"
                    + scorecard_html(w.table("csm_scorecard"), cur)
                )
            )
        if not out:
            out.append(
                widgets.note(
                    "Cost to serve needs the `spend` table and the CSM scorecard the `team` table; this data source "
                    "has neither (or no cost to serve this month)."
                )
            )
        return out

    return widgets.section(wb, render)


def show_trends(wb) -> Any:
    """Customer-success KPIs by month with their targets dashed."""
    return widgets.trends_section(wb, TRENDS, TREND_MONTHS)


# --------------------------------------------------------------------------- issue 25: service, voice, overrides
SERVICE = _SECTION("cs_load", ["tickets_opened", "uptime"])
VOICE = _SECTION("cs_load", ["nps_comment_share", "health_override_share"])
COMMENT_ROWS = 8


def show_service(wb) -> Any:
    """Ticket volume and uptime (optional service_status table) beside the support SLA, and the week's ticket
    spike against its usual range (spikes in parameters/alerts.yaml)."""
    from .. import spikes

    def render(w):
        out: list[Any] = [widgets.kpi_tiles(w, w.available(SERVICE))]
        if not w.has("service_status"):
            out.append(widgets.note("Add a `service_status` table (incident_id, started_at, ended_at) to see uptime."))
        if w.has("support_tickets"):
            s = spikes.settings()
            found = spikes.evaluate(w, "cs_load", s)
            out.append(widgets.styled(spikes.spikes_html(found, w.conventions.reporting_currency, s.weeks)))
        return out

    return widgets.section(wb, render)


def themes_html(themes: pd.DataFrame) -> str:
    """Per segment: each theme, its comments, their share of the segment's comments, the share with a low
    score, and the latest comment holding it."""
    rows = [
        [
            html.escape(str(r.segment)),
            html.escape(str(r.theme)),
            _int(r.comments),
            _num(r.share, "fraction"),
            _num(r.low_share, "fraction"),
            html.escape(str(r.example)),
        ]
        for r in themes.itertuples()
    ]
    return widgets.html_table(
        ["segment", "theme", "comments", "of the segment's", "with a low score", "latest comment"],
        rows,
        numeric=(2, 3, 4),
    )


def comments_html(comments: pd.DataFrame, limit: int = COMMENT_ROWS) -> str:
    """The month's newest survey comments with the score they came with."""
    rows = [
        [
            f"{r.answered_at:%Y-%m-%d}",
            "NPS" if r.survey == "nps" else "CSAT",
            _num(r.score, "score"),
            html.escape(str(r.account_name)),
            html.escape(str(r.comment)),
        ]
        for r in comments.head(limit).itertuples()
    ]
    return widgets.html_table(["date", "survey", "score", "account", "comment"], rows, numeric=(2,))


def show_voice(wb) -> Any:
    """Survey comments beside NPS and CSAT: the most frequent themes per segment and the month's newest comments
    (optional survey_comments table; settings in parameters/voice.yaml)."""
    from ..metrics.voice import voice_settings

    def render(w):
        if not w.has("survey_comments"):
            return [
                widgets.note(
                    "Add a `survey_comments` table (survey_id, survey nps or csat, comment) to see what customers "
                    "say beside NPS and CSAT, and its themes per segment."
                )
            ]
        s = voice_settings()
        out: list[Any] = [widgets.kpi_tiles(w, w.available(["nps_comment_share"]))]
        themes = w.table("comment_themes")
        out.append(
            widgets.styled(
                f'<div class="saaskpi-note">Themes: the most frequent phrases of the comments given in the '
                f"{s.window_months} months to the month end, per segment (a comment counts once; low score = "
                "NPS 0-6 or CSAT 1-2)</div>"
                + (themes_html(themes) if len(themes) else '<div class="saaskpi-note">No comment in the window.</div>')
            )
        )
        latest = w.table("latest_comments")
        out.append(
            widgets.styled(
                f'<div class="saaskpi-note">Newest comments of the month ({len(latest):,} in all)</div>'
                + comments_html(latest)
            )
        )
        return out

    return widgets.section(wb, render)


def with_overrides(wb, accounts: pd.DataFrame) -> pd.DataFrame:
    """`accounts` with an `override` column (the CSM's band and score, or empty) when the source has
    health_overrides; unchanged without it."""
    if not wb.has("health_overrides"):
        return accounts
    over = wb.table("health_overrides_in_force").set_index("account_id")
    text = {
        r.Index: " ".join(
            p
            for p in (r.override_band if isinstance(r.override_band, str) else "", _num(r.override_score, "score"))
            if p and p != "n/a"
        )
        for r in over.itertuples()
    }
    return accounts.assign(override=accounts.account_id.map(text).fillna(""))


def overrides_html(over: pd.DataFrame, currency: str, limit: int = TOP_ROWS) -> str:
    """Accounts whose CSM overrides the computed health: computed score and band beside the override."""
    rows = [
        [
            html.escape(str(r.account_name)),
            html.escape(csm_name(r.csm_id)),
            f"{_band(r.band)} {_num(r.health, 'score')}",
            " ".join(
                p
                for p in (
                    _band(r.override_band) if isinstance(r.override_band, str) else "",
                    "" if pd.isna(r.override_score) else _num(r.override_score, "score"),
                )
                if p
            ),
            html.escape(str(r.reason)),
            html.escape(str(r.set_by)) if isinstance(r.set_by, str) else "",
            f"{r.since:%Y-%m-%d}",
            fmt.money(r.arr, currency),
        ]
        for r in over.head(limit).itertuples()
    ]
    more = (
        f'<div class="saaskpi-note">{len(over) - limit} more in `saaskpi table health_overrides_in_force`.</div>'
        if len(over) > limit
        else ""
    )
    return (
        widgets.html_table(
            ["account", "CSM", "computed", "CSM override", "reason", "set by", "since", "ARR"], rows, numeric=(2, 3, 7)
        )
        + more
    )


def show_health_overrides(wb) -> Any:
    """CSM overrides of the computed health in force at the month end, next to the computed score (optional
    health_overrides table; the computed score is never changed)."""

    def render(w):
        if not w.has("health_overrides"):
            return [
                widgets.note(
                    "Add a `health_overrides` table (account_id, date, score or band, reason, csm) to show a CSM's "
                    "judgement next to the computed health."
                )
            ]
        over = w.table("health_overrides_in_force")
        out: list[Any] = [widgets.kpi_tiles(w, w.available(["health_override_share"]))]
        if over.empty:
            out.append(widgets.note("No CSM override in force at the month end."))
        else:
            out.append(widgets.styled(overrides_html(over, w.conventions.reporting_currency)))
        return out

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- issue 25: expansion, churn reasons, CSMs
EXPANSION = _SECTION("cs_load", ["upsell_mrr", "cross_sell_mrr", "upsell_rate", "cross_sell_rate"])


def candidates_html(picked: pd.DataFrame, currency: str, limit: int = TOP_ROWS) -> str:
    """Expansion candidates: account, CSM, stage, health, seat utilisation, seats, ARR, why, term end."""
    if picked.empty:
        return '<div class="saaskpi-note">No healthy account is extending or near its seat limit this month.</div>'
    rows = [
        [
            html.escape(str(r.account_name)),
            html.escape(csm_name(r.csm_id)),
            html.escape(str(r.stage)),
            _num(r.health, "score"),
            _num(r.utilisation, "fraction"),
            _int(r.seats),
            fmt.money(r.arr, currency),
            html.escape(r.why),
            f"{r.term_end:%Y-%m-%d}" if pd.notna(r.term_end) else "monthly",
        ]
        for r in picked.head(limit).itertuples()
    ]
    more = (
        f'<div class="saaskpi-note">{len(picked) - limit} more in `saaskpi table expansion_candidates`.</div>'
        if len(picked) > limit
        else ""
    )
    head = ["account", "CSM", "stage", "health", "seats used", "seats", "ARR", "why", "term ends"]
    return widgets.html_table(head, rows, numeric=(3, 4, 5, 6)) + more


def show_expansion_candidates(wb) -> Any:
    """Healthy accounts ready to grow (beside the at-risk list): extending, or near their seat limit."""

    def render(w):
        s = w.success_settings()
        picked = w.table("expansion_candidates")
        lead = (
            f'<div class="saaskpi-note">{len(picked)} accounts with health ≥ {s.expansion_min_health:g}, not falling, '
            f"in the extending stage or using ≥ {s.expansion_utilisation:.0%} of their seats (MAU / seats; "
            "customer_success.yaml); fullest first</div>"
        )
        out: list[Any] = [widgets.styled(lead + candidates_html(picked, w.conventions.reporting_currency))]
        if not w.has("usage_events"):
            out.append(
                widgets.note("Seat utilisation needs a `usage_events` table: add it to find accounts near their limit.")
            )
        return out

    return widgets.section(wb, render)


def reason_colours(reasons: list[str]) -> alt.Scale:
    """One palette colour per reason, grey for 'no reason recorded'."""
    from ..metrics.churn_reasons import NO_REASON

    named = [r for r in reasons if r != NO_REASON]
    colours = [theme.PALETTE[i % len(theme.PALETTE)] for i in range(len(named))]
    return alt.Scale(domain=[*named, NO_REASON], range=[*colours, theme.OTHER])


def month_bars_axis(months: pd.DatetimeIndex) -> alt.X:
    """An x of one bar per month of `months` (every month shown, a month without a bar too), labelled 'Jan 25'."""
    labels = [f"{m:%b %y}" for m in months]
    shown = labels[::-1][::3][::-1]  # every third month, the last one always
    return alt.X(
        "label:O", title=None, sort=labels, scale=alt.Scale(domain=labels), axis=alt.Axis(labelAngle=0, values=shown)
    )


def window_months(wb) -> pd.DatetimeIndex:
    """The TREND_MONTHS months to the workbook's month."""
    return pd.date_range(end=wb.month, periods=TREND_MONTHS, freq="MS")


def reasons_chart(by_reason: pd.DataFrame, currency: str, months: pd.DatetimeIndex) -> alt.Chart:
    """Churn and contraction MRR per month, stacked by reason (largest reasons at the bottom)."""
    order = by_reason.groupby("reason").lost_mrr.sum().sort_values(ascending=False).index.tolist()
    data = by_reason.assign(
        rank=by_reason.reason.map({r: i for i, r in enumerate(order)}), label=by_reason.month.dt.strftime("%b %y")
    )
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=month_bars_axis(months),
            y=alt.Y("sum(lost_mrr):Q", title="MRR lost (churn + contraction)", axis=charts.money_axis(currency)),
            color=alt.Color("reason:N", title=None, scale=reason_colours(order), legend=alt.Legend(orient="right")),
            order=alt.Order("rank:Q", sort="ascending"),
            tooltip=[
                alt.Tooltip("month:T", format="%b %Y"),
                "reason:N",
                charts.money_tooltip("churn_mrr:Q", currency, title="churn MRR"),
                charts.money_tooltip("contraction_mrr:Q", currency, title="contraction MRR"),
                "churned_accounts:Q",
                "contracted_accounts:Q",
            ],
        )
        .properties(
            width=760,
            height=240,
            title=alt.Title("MRR lost by reason", subtitle="churn and contraction, by the reason recorded nearest"),
        )
    )


def reasons_by_segment_html(t: pd.DataFrame, currency: str) -> str:
    rows = [
        [
            html.escape(str(r.segment)),
            html.escape(str(r.reason)),
            fmt.money(r.churn_mrr, currency),
            fmt.money(r.contraction_mrr, currency),
            _int(r.accounts),
            _num(r.share_of_segment, "fraction"),
        ]
        for r in t.itertuples()
    ]
    head = ["segment", "reason", "churn MRR", "contraction MRR", "accounts", "share of the segment's loss"]
    return widgets.html_table(head, rows, numeric=(2, 3, 4, 5))


def expansion_chart(moves: pd.DataFrame, currency: str, months: pd.DatetimeIndex) -> alt.Chart:
    """Expansion MRR per month, split into upsell and cross-sell."""
    long = moves.melt(id_vars="month", value_vars=["upsell", "cross_sell"], var_name="kind", value_name="mrr")
    long["kind"] = long.kind.map({"upsell": "upsell", "cross_sell": "cross-sell"})
    long["label"] = long.month.dt.strftime("%b %y")
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=month_bars_axis(months),
            y=alt.Y("sum(mrr):Q", title="expansion MRR", axis=charts.money_axis(currency)),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=["upsell", "cross-sell"], range=[theme.PALETTE[0], theme.PALETTE[1]]),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[alt.Tooltip("month:T", format="%b %Y"), "kind:N", charts.money_tooltip("sum(mrr):Q", currency)],
        )
        .properties(
            width=760,
            height=200,
            title=alt.Title(
                "Upsell and cross-sell",
                subtitle="cross-sell: a plan added beside the ones the account kept; upsell: the rest of expansion",
            ),
        )
    )


def show_churn_reasons(wb) -> Any:
    """Churn and contraction MRR by reason over time and by segment (the exit survey, churn_reasons), and
    expansion split into upsell and cross-sell."""

    def render(w):
        out: list[Any] = []
        cur = w.conventions.reporting_currency
        start = w.month - pd.DateOffset(months=TREND_MONTHS)
        if w.has("churn_reasons"):
            s = w.success_settings()
            t = w.table("churn_by_reason")
            t = t[(t.month > start) & (t.month <= w.month)]
            out.append(widgets.kpi_tiles(w, ["churn_reason_coverage"]))
            if len(t):
                out.append(widgets.chart(reasons_chart(t, cur, window_months(w)), w))
            seg = w.table("churn_reasons_by_segment")
            out.append(
                widgets.styled(
                    '<div class="saaskpi-note">The 12 months to the month end, by segment; a loss takes the reason '
                    f"recorded for its account within {s.churn_reason_window_days} days of its month "
                    "(churn_reason_window_days), reasons in lower case</div>" + reasons_by_segment_html(seg, cur)
                )
            )
        else:
            out.append(
                widgets.note(
                    "Add a `churn_reasons` table (an exit survey: account_id, recorded_on, reason) to see churn and "
                    "contraction MRR by reason."
                )
            )
        out.append(widgets.kpi_tiles(w, EXPANSION))
        moves = w.table("expansion_movements")
        moves = moves[(moves.month > start) & (moves.month <= w.month)]
        if len(moves):
            out.append(widgets.chart(expansion_chart(moves, cur, window_months(w)), w))
        return out

    return widgets.section(wb, render)


def _whole(v: float) -> str:
    """A score rounded to a whole number (n/a when missing)."""
    return "n/a" if v is None or pd.isna(v) else f"{v:.0f}"


def csm_service_html(card: pd.DataFrame) -> str:
    rows = [
        [
            html.escape(str(r.name)),
            _int(r.accounts),
            _int(r.tickets),
            _num(r.resolution_hours_median, "hours"),
            _num(r.first_contact_resolution, "fraction"),
            _whole(r.engagement_score),
            _whole(r.health),
            _num(r.touchpoints_per_account, "number"),
        ]
        for r in card.itertuples()
    ]
    head = [
        "CSM",
        "accounts",
        "tickets",
        "resolution (median)",
        "first-contact resolution",
        "engagement",
        "health",
        "touchpoints / account",
    ]
    return widgets.html_table(head, rows, numeric=tuple(range(1, 8)))


def csm_trend_chart(trends: pd.DataFrame, names: dict[str, str]) -> alt.Chart:
    """Mean health score and ARR of each CSM's book by month."""
    data = trends.assign(csm=trends.csm_id.map(names).fillna(trends.csm_id))
    base = alt.Chart(data).encode(
        x=alt.X("month:T", title=None, axis=charts.month_axis(data.month, 6)),
        color=alt.Color("csm:N", title=None, scale=alt.Scale(range=theme.PALETTE)),
        tooltip=["csm:N", alt.Tooltip("month:T", format="%b %Y"), "accounts:Q", alt.Tooltip("health:Q", format=".0f")],
    )
    health = base.mark_line(point=True).encode(y=alt.Y("health:Q", title="mean health", scale=alt.Scale(zero=False)))
    accounts = base.mark_line(point=True).encode(y=alt.Y("accounts:Q", title="paying accounts"))
    return alt.hconcat(
        health.properties(width=380, height=200, title="Health of each CSM's book"),
        accounts.properties(width=380, height=200, title="Accounts in each CSM's book"),
    )


def show_csm_service(wb) -> Any:
    """A fuller CSM scorecard (tickets, resolution time, first-contact resolution, engagement, health,
    touchpoints) and each CSM's book over the last 12 months."""

    def render(w):
        w.require("team", what="The CSM service scorecard")
        s = w.success_settings()
        out: list[Any] = [
            widgets.styled(
                f'<div class="saaskpi-note">Each CSM\'s current book; tickets over the {s.window_days} days to the month '
                "end (resolution and first-contact resolution of those resolved), mean engagement score and health "
                "now, touchpoints in the window per account</div>" + csm_service_html(w.table("csm_service"))
            )
        ]
        trends = w.table("csm_trends")
        trends = trends[(trends.month > w.month - pd.DateOffset(months=12)) & (trends.month <= w.month)]
        if len(trends):
            team = w.table("csm_service").set_index("csm_id").name.to_dict()
            out.append(widgets.chart(csm_trend_chart(trends, team), w))
        return out

    return widgets.section(wb, render)
