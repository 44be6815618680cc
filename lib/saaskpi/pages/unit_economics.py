"""Page 03, unit economics: KPI tiles, the segment x channel table, where to hit the accelerator,
trends against guidelines, CAC by channel, the payback curve, a what-if and cash (the J curve, the company's trough,
profit and operating margin). Each `show_*` is one section."""

from __future__ import annotations

import html
import math
from typing import Any

import altair as alt
import ipywidgets as W
import numpy as np
import pandas as pd

from .. import charts, theme, widgets
from .. import format as fmt
from ..metrics import cash, registry
from ..metrics import unit_economics as ue

AREAS = registry.page_areas("unit_economics")  # registry areas this page shows: their metrics go to the snapshot
TILES = registry.tiles("unit_economics")
TRENDS = registry.page_metrics(
    "unit_economics",
    [
        "ltv_to_cac_ratio",
        "cac_payback_months",
        "customer_acquisition_cost",
        "gross_margin",
        "magic_number",
        "burn_multiple",
    ],
)
TREND_MONTHS = 24
LEVERS = (
    ("churn_change", "Churn", -0.5, 1.0, "% change of monthly churn"),
    ("price_change", "Price (ARPA)", -0.3, 0.5, "% change of new-customer ARPA"),
    ("margin_change", "Margin (points)", -0.2, 0.1, "points of gross margin"),
    ("cac_change", "CAC", -0.5, 0.5, "% change of CAC"),
)


def _conventions(wb) -> str:
    c = wb.conventions
    allocation = (
        "split by the month's new customers" if c.untagged_spend_allocation == "new_customers" else "left unallocated"
    )
    return (
        f"CAC: {' + '.join(c.cac_spend_categories)} spend, lag {c.spend_lag_months} months, untagged spend "
        f"{allocation}. LTV:CAC on {c.ltv_to_cac_basis} LTV; gross margin from COGS in the spend table, "
        f"{c.default_gross_margin:.0%} in months without it. Segment x channel table: customers won in the last "
        f"{c.unit_economics_window_months} months; fewer than {c.low_n_threshold} new customers is a small sample"
    )


def show_header(wb) -> Any:
    """Segment, month and the unit-economics conventions in force (with the controls in an app)."""
    return widgets.page_header(wb, _conventions)


def show_kpi_tiles(wb) -> Any:
    """Headline unit-economics KPIs for the month with change, target status and n."""
    return widgets.tiles_section(wb, TILES, ("spend",), "Unit economics")


def table_html(table: pd.DataFrame, targets: dict, currency: str) -> str:
    """The segment x channel table as HTML, LTV:CAC and payback coloured by their status."""
    head = [
        "segment",
        "channel",
        "new customers",
        "CAC",
        "ARPA (new)",
        "monthly churn",
        "LTV",
        "LTV (survival)",
        f"LTV:CAC (≥ {targets['ltv_to_cac_ratio']:g})",
        f"payback (≤ {targets['cac_payback_months']:g} mo)",
    ]
    if (table.level == "segment").sum() == 1:
        table = table[table.level != "total"]  # one segment: its row is the total
    money = lambda v: fmt.money(v, currency)  # noqa: E731
    rows = [
        [
            html.escape(str(r.segment)),
            html.escape(str(r.channel)),
            f"{r.new_customers:,}" + (' <span class="kpi-lown">small sample</span>' if r.low_n else ""),
            money(r.cac),
            money(r.arpa),
            fmt.value(r.monthly_churn, "fraction"),
            money(r.ltv),
            money(r.ltv_survival),
            widgets.status_text(fmt.value(r.ltv_to_cac, "ratio"), r.ltv_to_cac_status),
            widgets.status_text(fmt.value(r.payback_months, "months"), r.payback_status),
        ]
        for r in table.itertuples()
    ]
    return widgets.html_table(head, rows, numeric=tuple(range(2, 10)), totals=(table.level != "pair").tolist())


def _guidelines(wb) -> dict:
    return {n: wb.target(n) for n in ("ltv_to_cac_ratio", "cac_payback_months")}


def _window(wb) -> str:
    start = wb.month - pd.DateOffset(months=wb.conventions.unit_economics_window_months - 1)
    return f"customers won {start:%b %Y} – {wb.month:%b %Y}"


def _segment_channel(wb) -> list[Any]:
    wb.require("spend", what="The segment x channel table")
    accel = wb.table("acceleration")
    pairs = accel[accel.level == "pair"]
    out = []
    if len(pairs):
        g = _guidelines(wb)
        out.append(
            widgets.chart(
                charts.verdict_grid(
                    pairs,
                    "LTV:CAC and payback by segment and channel",
                    f"{_window(wb)}; guidelines LTV:CAC ≥ {g['ltv_to_cac_ratio']:g}, payback ≤ "
                    f"{g['cac_payback_months']:g} months; faded: small sample",
                ),
                wb,
            )
        )
    out.append(
        widgets.note(
            f"The table below takes the {_window(wb)} ({wb.conventions.unit_economics_window_months} "
            f"months); the tiles above take the customers won in {wb.month:%b %Y} alone, so their CAC, "
            "payback and LTV:CAC can differ."
        )
    )
    out.append(
        widgets.styled(table_html(wb.table("unit_economics"), _guidelines(wb), wb.conventions.reporting_currency))
    )
    return out


def show_segment_channel_table(wb) -> Any:
    """Segment x channel: new customers, CAC, ARPA, churn, LTV, LTV:CAC and payback against the guidelines."""
    return widgets.section(wb, _segment_channel)


def accelerator_html(accel: pd.DataFrame) -> str:
    """Where to hit the accelerator: every segment, channel and pair ranked, with verdict and reason."""
    if accel.empty:
        return '<div class="saaskpi-note">No new customers and no S&amp;M spend in the window.</div>'
    where = {"pair": "{s} · {c}", "segment": "{s} (all channels)", "channel": "{c} (all segments)"}
    rows = [
        [
            str(i),
            html.escape(where[r.level].format(s=r.segment, c=r.channel)),
            f'<b style="color:{charts.VERDICT_COLOURS.get(r.verdict, theme.MUTED)}">{html.escape(r.verdict)}</b>',
            html.escape(r.reason),
        ]
        for i, r in enumerate(accel.itertuples(), start=1)
    ]
    return widgets.html_table(["#", "where", "verdict", "why"], rows, numeric=(0,))


def show_accelerator(wb) -> Any:
    """Segments, channels and pairs ranked: those meeting both guidelines first, then what each miss needs."""

    def render(w):
        w.require("spend", what="Where to hit the accelerator")
        return widgets.styled(accelerator_html(w.table("acceleration")))

    return widgets.section(wb, render)


def show_trends(wb) -> Any:
    """LTV:CAC, payback, CAC, gross margin, magic number and burn multiple by month, guidelines dashed."""
    return widgets.trends_section(wb, TRENDS, TREND_MONTHS, ("spend",), "Unit-economics trends")


def show_cac_by_channel(wb) -> Any:
    """CAC per acquisition channel over time (trailing three months)."""

    def render(w):
        w.require("spend", what="CAC by channel")
        t = w.table("cac_by_channel")
        recent = t[t.month <= w.month].groupby("channel").tail(TREND_MONTHS)
        return widgets.chart(charts.cac_by_channel(recent, w.conventions.reporting_currency), w)

    return widgets.section(wb, render)


def show_payback_curve(wb) -> Any:
    """Cumulative gross margin per customer since its first payment, against the segment's CAC."""

    def render(w):
        w.require("spend", what="The payback curve")
        curve = w.table("payback_curve")
        return widgets.chart(
            charts.payback_curve(curve[curve.months_since_start <= 36], w.conventions.reporting_currency), w
        )

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- what-if
def what_if_base(wb) -> dict | None:
    """The window's totals that the what-if starts from (ARPA, CAC, monthly churn, gross margin)."""
    t = wb.table("unit_economics")
    total = t[t.level == "total"]
    if total.empty:
        return None
    r = total.iloc[0]
    return {"arpa": r.arpa, "cac": r.cac, "monthly_churn": r.monthly_churn, "gross_margin": r.gross_margin}


def what_if_html(wb, **changes: float) -> str:
    """Before and after for the given lever changes, and the value of each lever that reaches each guideline."""
    base = what_if_base(wb)
    if base is None or any(v is None or math.isnan(v) for v in base.values()):
        return (
            '<div class="saaskpi-note">The what-if needs new customers, spend and at least one churned '
            "customer in the window.</div>"
        )
    g = _guidelines(wb)
    r = ue.what_if(**base, **changes, ltv_to_cac_target=g["ltv_to_cac_ratio"], payback_target=g["cac_payback_months"])
    cur = wb.conventions.reporting_currency
    units = {"arpa": "currency", "cac": "currency", "monthly_churn": "fraction", "gross_margin": "fraction"}
    names = {"arpa": "ARPA (new)", "cac": "CAC", "monthly_churn": "monthly churn", "gross_margin": "gross margin"}

    def judged(value, target, higher):
        ok = not math.isnan(value) and (value >= target if higher else value <= target)
        return widgets.status_text("n/a" if math.isnan(value) else f"{value:.1f}", "on" if ok else "off")

    goals = (
        ("ltv_to_cac", f"LTV:CAC (≥ {g['ltv_to_cac_ratio']:g})", g["ltv_to_cac_ratio"], True),
        ("payback_months", f"payback months (≤ {g['cac_payback_months']:g})", g["cac_payback_months"], False),
    )
    levers = [[names[k], fmt.value(base[k], units[k], cur), fmt.value(r["inputs"][k], units[k], cur)] for k in names]
    levers += [
        [label, judged(r["before"][key], target, higher), judged(r["after"][key], target, higher)]
        for key, label, target, higher in goals
    ]
    needed = [[names[k]] + [_needed(r["needed"][key][k], units[k], cur, k, key) for key, *_ in goals] for k in names]
    return (
        f'<div class="saaskpi-header"><div class="sub">Starting from the window\'s totals ({html.escape(_window(wb))}).'
        '</div></div><div style="display:flex;gap:28px;flex-wrap:wrap">'
        + widgets.html_table(["lever", "now", "what-if"], levers, numeric=(1, 2))
        + widgets.html_table(
            [
                "lever alone (others at what-if)",
                f"reaches LTV:CAC {g['ltv_to_cac_ratio']:g} at",
                f"reaches payback {g['cac_payback_months']:g} mo at",
            ],
            needed,
            numeric=(1, 2),
        )
        + "</div>"
    )


def _needed(value: float | None, unit: str, currency: str, lever: str, goal: str) -> str:
    if value is not None:
        return fmt.value(value, unit, currency)
    return "does not move it" if (lever, goal) == ("monthly_churn", "payback_months") else "out of reach"


def _what_if(wb) -> Any:
    wb.require("spend", what="The what-if")
    if not wb.interactive:
        return widgets.styled(what_if_html(wb))
    out = W.HTML(widgets.styled(what_if_html(wb)).data)
    sliders = {
        key: W.FloatSlider(
            value=0.0,
            min=lo,
            max=hi,
            step=0.05 if key != "margin_change" else 0.01,
            description=label,
            readout_format="+.0%",
            tooltip=help_text,
            continuous_update=False,
            style={"description_width": "110px"},
        )
        for key, label, lo, hi, help_text in LEVERS
    }

    def update(_=None):
        out.value = widgets.styled(what_if_html(wb, **{k: s.value for k, s in sliders.items()})).data

    for s in sliders.values():
        s.observe(update, names="value")
    reset = W.Button(
        description="Reset",
        tooltip="every lever back to today's value",
        layout=W.Layout(width="110px", margin="6px 0 0 118px"),
    )

    def reset_all(_: W.Button) -> None:
        for s in sliders.values():
            s.value = 0.0

    reset.on_click(reset_all)
    # the levers beside the numbers they move
    return W.HBox(
        [W.VBox([*sliders.values(), reset], layout=W.Layout(min_width="380px")), out],
        layout=W.Layout(align_items="flex-start", gap="18px"),
    )


def show_what_if(wb) -> Any:
    """How LTV:CAC and payback move with churn, price, gross margin and CAC, and what reaches each guideline."""
    return widgets.section(wb, _what_if)


# --------------------------------------------------------------------------- cash (issue 25, item 3)
CASH_TILES = registry.page_metrics("unit_economics", ["operating_margin", "mature_operating_margin"])
GROWTH_RANGE = (-0.05, 0.25)  # the app's slider of monthly new-business growth


def j_curve_chart(curve: pd.DataFrame, currency: str) -> alt.FacetChart:
    """The cohort J curve: cumulative cash of one new customer by month, a panel per segment, 0 as a rule."""
    data = curve.dropna(subset=["cumulative_cash"]).assign(
        basis=lambda d: np.where(d.extrapolated, "extrapolated", "observed")
    )
    base = alt.Chart(data)
    line = base.mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("month:Q", title="months since won (CAC paid in month 0)"),
        y=alt.Y("cumulative_cash:Q", title="cumulative cash per customer", axis=charts.money_axis(currency)),
        opacity=alt.Opacity(
            "basis:N", title=None, scale=alt.Scale(domain=["observed", "extrapolated"], range=[1, 0.35])
        ),
        tooltip=[
            "segment:N",
            "month:Q",
            charts.money_tooltip("cumulative_cash:Q", currency, title="cumulative cash"),
            charts.money_tooltip("cac:Q", currency, title="CAC"),
            alt.Tooltip("customers:Q", title="customers observed"),
            "basis:N",
        ],
    )
    zero = base.mark_rule(color=theme.MUTED).encode(y=alt.datum(0))
    return (
        alt.layer(zero, line)
        .properties(width=280, height=180)
        .facet(facet=alt.Facet("segment:N", title=None), columns=3)
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title(
                "Cash curve of a new customer (J curve)",
                subtitle="CAC paid up front, then gross margin along the observed retention; where the line "
                "crosses 0 the customer has paid back; faded: extrapolated at the segment's churn",
            )
        )
    )


def trough_chart(trough: pd.DataFrame, growth: float, currency: str) -> alt.Chart:
    """The company's new-business cumulative cash by month at a monthly growth rate."""
    data = trough.assign(sign=np.where(trough.cumulative_cash < 0, "negative", "positive"))
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("month:O", title="months from now", axis=alt.Axis(labelAngle=0, values=list(range(0, 400, 6)))),
            y=alt.Y("cumulative_cash:Q", title="cumulative cash of new business", axis=charts.money_axis(currency)),
            color=alt.Color(
                "sign:N",
                legend=None,
                scale=alt.Scale(domain=["negative", "positive"], range=[theme.STATUS["off"], theme.STATUS["on"]]),
            ),
            tooltip=[
                "month:O",
                alt.Tooltip("new_customers:Q", format=".1f", title="new customers"),
                charts.money_tooltip("cash_flow:Q", currency, title="cash flow"),
                charts.money_tooltip("cumulative_cash:Q", currency, title="cumulative cash"),
            ],
        )
    )
    return bars.properties(
        width=430,
        height=230,
        title=alt.Title(
            "The company's cash trough",
            subtitle=f"new customers growing {growth:+.0%} a month from the window's average, each on its J curve",
        ),
    )


def cash_summary_html(summary: pd.DataFrame, currency: str) -> str:
    """Per segment: CAC, break-even month, trough per customer and for a month's cohort, margin and final cash."""
    money = lambda v: fmt.money(v, currency)  # noqa: E731
    rows = [
        [
            html.escape(str(r.segment)),
            money(r.cac),
            "not within the horizon" if math.isnan(r.breakeven_month) else f"{r.breakeven_month:.0f}",
            money(r.trough_per_customer),
            f"{r.new_customers_per_month:.1f}",
            money(r.cohort_trough),
            money(r.cumulative_margin),
            money(r.final_cash),
        ]
        for r in summary.itertuples()
    ]
    head = [
        "segment",
        "CAC",
        "break-even month",
        "trough per customer",
        "new customers / month",
        "trough of a month's cohort",
        "cumulative margin",
        "cash at the horizon",
    ]
    return widgets.html_table(head, rows, numeric=tuple(range(1, 8)))


def trough_text(facts: dict, currency: str, horizon: int) -> str:
    """The company trough in one sentence."""
    if facts["trough_month"] is None or math.isnan(facts["depth"]):
        return "No trough to show: no new customers or no CAC in the window."
    back = (
        f"cash is back above 0 in month {facts['breakeven_month']}"
        if facts["breakeven_month"] is not None
        else f"cash is not back above 0 within {horizon} months"
    )
    return (
        f"Trough {fmt.money(facts['depth'], currency)} in month {facts['trough_month']}; {back}. "
        "Faster growth deepens and delays the trough (SaaS Metrics 2.0)."
    )


def profit_html(profit: pd.DataFrame, currency: str) -> str:
    """Profit margin by segment, channel and plan with the total."""
    money = lambda v: fmt.money(v, currency)  # noqa: E731
    rows = [
        [
            html.escape(r.level),
            html.escape(r.group),
            money(r.revenue),
            money(r.cost_of_service),
            money(r.acquisition_spend),
            money(r.profit),
            fmt.value(r.profit_margin, "fraction"),
        ]
        for r in profit.itertuples()
    ]
    return widgets.html_table(
        ["by", "group", "revenue", "cost of service", "acquisition spend", "profit", "profit margin"],
        rows,
        numeric=(2, 3, 4, 5, 6),
        totals=(profit.level == "total").tolist(),
    )


def _trough_view(wb, growth: float) -> tuple[alt.Chart, str]:
    t = cash.company_trough_at(wb.conventions, wb.table("cash_curve"), wb.table("cash_curve_summary"), growth)
    cur = wb.conventions.reporting_currency
    return trough_chart(t, growth, cur), trough_text(cash.trough_facts(t), cur, wb.conventions.cash_horizon_months)


def _caption(text: str) -> str:
    return f'<div class="saaskpi-header"><div class="sub"><b>{html.escape(text)}</b></div></div>'


def _cash(wb) -> list[Any]:
    wb.require("spend", what="Cash")
    c, cur = wb.conventions, wb.conventions.reporting_currency
    allocation = {
        "new_customers": "charged to the groups of the customers it won",
        "revenue": "spread by revenue",
    }[c.profit_acquisition_allocation]
    out: list[Any] = [widgets.kpi_tiles(wb, wb.available(CASH_TILES))]
    curve = wb.table("cash_curve")
    if curve.empty:
        out.append(widgets.note("No new customers yet: the cash curve needs customers who paid at least once."))
        return out
    out.append(widgets.chart(j_curve_chart(curve, cur), wb))
    summary = cash_summary_html(wb.table("cash_curve_summary"), cur)
    out.append(widgets.styled(_caption("Break-even and trough of a new customer, per segment") + summary))
    if wb.interactive:
        out.append(_trough_app(wb))
    else:
        chart, text = _trough_view(wb, c.cash_growth_rate_monthly)
        out += [widgets.chart(chart, wb), widgets.note(text)]
    profit = profit_html(wb.table("profit_margin"), cur)
    months = f"{wb.month - pd.DateOffset(months=c.unit_economics_window_months - 1):%b %Y} – {wb.month:%b %Y}"
    out.append(widgets.styled(_caption(f"Profit margin by segment, channel and plan, {months}") + profit))
    out.append(
        widgets.note(
            f"Profit margin over {months}: revenue = month-end MRR, cost of service = revenue x (1 - the "
            f"window's gross margin), acquisition spend = S&M {allocation} (profit_acquisition_allocation). "
            "Mature operating margin: spend other than S&M plus only the S&M that replaces the customers lost "
            f"(logos churned x CAC). Horizon {c.cash_horizon_months} months (cash_horizon_months)."
        )
    )
    return out


def _trough_app(wb) -> Any:
    """The trough chart under a slider of monthly new-business growth (starting at cash_growth_rate_monthly)."""
    slider = W.FloatSlider(
        value=wb.conventions.cash_growth_rate_monthly,
        min=GROWTH_RANGE[0],
        max=GROWTH_RANGE[1],
        step=0.01,
        description="Growth / month",
        tooltip="monthly growth of new customers (cash_growth_rate_monthly)",
        readout_format="+.0%",
        continuous_update=False,
        style={"description_width": "110px"},
    )
    box = W.VBox()

    def update(_=None):
        chart, text = _trough_view(wb, slider.value)
        box.children = (slider, widgets.chart(chart, wb), W.HTML(widgets.note(text).data))

    update()
    slider.observe(update, names="value")
    return box


def show_cash(wb) -> Any:
    """The cash curve of a new customer per segment, the company's trough at a growth rate, profit margin by
    segment, channel and plan, and the operating margin now and at the mature stage."""
    return widgets.section(wb, _cash)
