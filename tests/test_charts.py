"""Charts are values: tested through their Vega-Lite spec, never pixels."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from saaskpi import charts, theme  # noqa: F401 (theme registers on import)


def layers(spec: dict) -> list[dict]:
    out = []
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in spec.get(key, []):
            out += layers(sub)
    return out or [spec]


def marks(chart: alt.TopLevelMixin) -> list:
    return [
        layer["mark"] if isinstance(layer["mark"], str) else layer["mark"]["type"] for layer in layers(chart.to_dict())
    ]


def test_theme_is_enabled():
    assert alt.theme.active == "saaskpi"
    assert theme.saaskpi_theme()["config"]["style"]["target"]["strokeDash"] == [6, 4]


def test_mrr_bridge_steps_add_up(revenue_wb):
    movements = revenue_wb.table("mrr_movements")
    chart = charts.mrr_bridge(movements, pd.Timestamp("2024-04-01"))
    data = pd.DataFrame(chart.to_dict()["datasets"][next(iter(chart.to_dict()["datasets"]))])
    steps = dict(zip(data.step, data.amount))
    # April: 700 start, +60 reactivation, -100 churn -> 660 end
    assert steps == {
        "MRR start": 700,
        "New": 0,
        "Expansion": 0,
        "Reactivation": 60,
        "Contraction": 0,
        "Churn": -100,
        "MRR end": 660,
    }
    assert data.loc[data.step == "Churn", ["from", "to"]].values.tolist() == [[660, 760]]
    assert marks(chart) == ["bar", "text"]


def test_trend_has_dashed_target_and_flags_low_n():
    series = pd.DataFrame(
        {
            "month": pd.date_range("2024-01-01", periods=4, freq="MS"),
            "value": [0.01, 0.02, float("nan"), 0.03],
            "n": [100, 5, 0, 100],
        }
    )
    chart = charts.trend(series, "Net MRR churn", "fraction", target=0.02, low_n=20, long_term=0.01)
    spec = chart.to_dict()
    assert marks(chart) == ["line", "point", "rule"]
    rule = [
        layer
        for layer in layers(spec)
        if (layer["mark"] if isinstance(layer["mark"], str) else layer["mark"]["type"]) == "rule"
    ][0]
    assert rule["mark"]["style"] == "target"
    rows = next(iter(spec["datasets"].values()))
    assert len(rows) == 3  # the n/a month is left out, not drawn as zero
    assert "small sample" in spec["title"]["subtitle"]


def test_trend_without_target_has_no_rule():
    series = pd.DataFrame(
        {"month": pd.date_range("2024-01-01", periods=2, freq="MS"), "value": [1.0, 2.0], "n": [1, 1]}
    )
    assert "rule" not in marks(charts.trend(series, "MRR", "currency"))


def test_heatmap_and_survival(revenue_wb):
    heat = charts.cohort_heatmap(revenue_wb.table("cohort_logo_retention"), "retention_rate", "Logo")
    spec = heat.to_dict()
    assert spec["mark"]["type"] == "rect" and spec["encoding"]["color"]["field"] == "retention_rate"
    surv = charts.survival_curves(revenue_wb.table("logo_survival"))
    assert marks(surv) == ["area", "line"]


def test_charts_refuse_raw_rows():
    big = pd.DataFrame({"month": pd.Timestamp("2024-01-01"), "value": range(6000), "n": 1})
    with pytest.raises(ValueError, match="aggregate first"):
        charts.trend(big, "x", "count")


def test_lifecycle_dormant_is_negative():
    life = pd.DataFrame(
        {"month": [pd.Timestamp("2024-02-01")], "new": [1], "returning": [1], "resurrecting": [0], "dormant": [2]}
    )
    rows = next(iter(charts.user_lifecycle(life).to_dict()["datasets"].values()))
    assert {r["status"]: r["users"] for r in rows}["dormant"] == -2


def formats(spec) -> list[str]:
    """Every number format and label expression in a chart spec (axes, tooltips, text)."""
    if isinstance(spec, dict):
        own = [v for k, v in spec.items() if k in ("format", "labelExpr") and isinstance(v, str)]
        return own + [f for v in spec.values() for f in formats(v)]
    if isinstance(spec, list):
        return [f for v in spec for f in formats(v)]
    return []


def test_money_follows_the_reporting_currency(revenue_wb):
    movements = revenue_wb.table("mrr_movements")
    series = pd.DataFrame({"month": pd.date_range("2024-01-01", periods=3, freq="MS"), "value": [1.0, 2.0, 3.0]})
    series["n"] = 10
    built = [
        charts.mrr_bridge(movements, pd.Timestamp("2024-04-01"), "EUR"),
        charts.movements_over_time(movements, "EUR"),
        charts.revenue_overview(movements, "EUR"),
        charts.trend(series, "MRR", "currency", target=2.5, currency="EUR"),
    ]
    for chart in built:
        found = formats(chart.to_dict())
        assert found and not [f for f in found if "$" in f], found  # no dollar sign for euros
        assert any("'€'" in f for f in found), found  # the axis labels carry the euro sign
    usd = formats(charts.mrr_bridge(movements, pd.Timestamp("2024-04-01")).to_dict())
    assert "$,.3~s" in usd and not [f for f in usd if "€" in f]
    tooltip = charts.money_tooltip("amount:Q", "EUR")
    assert tooltip.to_dict() == {"field": "amount", "type": "quantitative", "format": ",.0f", "title": "amount (€)"}
    assert charts.money_axis("CHF").to_dict()["labelExpr"].startswith("(datum.value < 0 ? '−' : '') + 'CHF '")


def test_the_month_axis_labels_months_of_the_data_only():
    # 24 months Nov 2024 .. Oct 2026: labels every 2nd month counted back from the last (Oct 2026, Aug 2026, ...),
    # never Nov 2026, where the last month's bar ends and a default time axis would put a label
    months = pd.Series(pd.date_range("2024-11-01", "2026-10-01", freq="MS"))
    values = charts.month_axis(months).to_dict()["values"]
    shown = [(v["year"], v["month"]) for v in values]
    assert len(shown) == 12 and shown[-1] == (2026, 10) and shown[0] == (2024, 12)
    assert all(v["date"] == 15 for v in values)  # mid-month: under the month's bar
    assert (2026, 11) not in shown
    # a short series is labelled at every month
    assert len(charts.month_axis(months.tail(5)).to_dict()["values"]) == 5


@pytest.mark.parametrize(("width", "step"), [(560, 3), (360, 4), (260, 6), (1400, 2), (2000, 1)])
def test_trend_labels_every_few_months_ending_at_the_last(width, step):
    # 24 months (Nov 2024 - Oct 2026) x 60 px a label: 1,440 px needed; 560 px -> 2.6 -> every 3 months; 360 -> 4;
    # 260 -> 5.5 -> 6; 1,400 -> 1.03 -> 2; 2,000 -> 1. Every month keeps its tick; the last month is labelled
    import re

    from saaskpi.widgets import chart_svg

    months = pd.date_range("2024-11-01", periods=24, freq="MS")
    series = pd.DataFrame({"month": months, "value": range(24), "n": 50.0})
    chart = charts.trend(series, "Paying accounts", "count", width=width)
    axis = chart.to_dict()["layer"][0]["encoding"]["x"]["axis"]
    # Oct 2026 is month key 2026 x 12 + 9 = 24321; 24321 % 3 = 0, % 4 = 1, % 6 = 3, % 2 = 1, % 1 = 0
    assert axis["labelExpr"].startswith(f"(year(datum.value) * 12 + month(datum.value)) % {step} == {24321 % step} ?")
    assert axis["tickCount"] == {"interval": "month", "step": 1} and axis["labelOverlap"] is False
    shown = re.findall(r">([A-Z][a-z]{2} \d{4})</text>", chart_svg(chart))
    assert shown[-1] == "Oct 2026" and len(shown) == 24 // step


def test_a_static_chart_is_displayed_as_the_svg_vl_convert_drew():
    from types import SimpleNamespace

    from IPython.core.formatters import DisplayFormatter

    from saaskpi.widgets import chart, chart_svg, markup

    spec = alt.Chart(pd.DataFrame({"x": [1, 2], "y": [3, 4]})).mark_line().encode(x="x", y="y")
    shown = chart(spec, SimpleNamespace(interactive=False))
    data, _ = DisplayFormatter().format(shown)
    svg = chart_svg(spec)
    assert svg.startswith("<svg") and data["image/svg+xml"] == svg == markup(shown)


def test_charts_drawn_in_tests_are_checked_against_the_vega_lite_schema():
    # a render does not check its spec (0.03-0.15 s a chart); tests do (conftest.py), so a page's chart that breaks
    # the schema fails its test instead of drawing whatever vl-convert makes of it
    from altair.utils.schemapi import SchemaValidationError

    from saaskpi import widgets

    chart = alt.Chart(pd.DataFrame({"a": [1]})).mark_point().encode(x="a:Q")
    chart.mark = {"type": "point", "size": "big"}  # set after the constructor's own check
    assert widgets.CHECK_SPECS  # SAASKPI_CHECK_CHARTS=1, set by conftest.py before saaskpi is imported
    with pytest.raises(SchemaValidationError, match="'big' is an invalid value for `size`"):
        widgets.chart_svg(chart)


@pytest.mark.parametrize("columns", [2, 3, 4])
def test_a_row_of_trends_fits_a_1280_pixel_window(demo_source, columns):
    # a row of `columns` trends is one SVG about widgets.ROW_PX (1,200) wide, give or take its y axes' labels; with
    # the page's margins (20 px a side) it fits a 1,280 px window. Four panels of 260 px were 1,401 px: the plan
    # row's fourth chart (CAC) was cut off at the window's edge
    import re

    from saaskpi.widgets import trends
    from saaskpi.workbook import open_workbook

    wb = open_workbook(str(demo_source), "enterprise", "", interactive=False)
    names = ["monthly_recurring_revenue", "customer_churn_rate", "net_revenue_retention", "customer_acquisition_cost"]
    names = names[:columns]
    svg = trends(wb, names, 24, columns=columns)[0].data
    width = float(re.search(r'<svg[^>]*width="([\d.]+)"', svg).group(1))
    assert width <= 1280 - 2 * 20


def test_the_growth_chart_labels_as_many_months_as_fit():
    import re

    from saaskpi.widgets import chart_svg

    # 24 months at 560 px: 24 x 60 px / 560 = 2.6 -> a label every 3rd month, 8 labels ending at the last month
    months = pd.date_range("2024-11-01", periods=24, freq="MS")
    growth = pd.DataFrame({"month": months, "arr_yoy": 0.5, "t12m_growth": 0.4})
    shown = re.findall(r">([A-Z][a-z]{2} \d{4})</text>", chart_svg(charts.growth_lines(growth, width=560)))
    assert len(shown) == 8 and shown[-1] == "Oct 2026"
