"""Growth (metrics/growth.py) and plan vs actual with dated goals (metrics/plan.py), issue 25: literal data,
hand arithmetic in the comments, identities."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import REVENUE_TABLES, page_html, write_source

from saaskpi import params, paths
from saaskpi.errors import ParameterError
from saaskpi.metrics import METRICS, growth, plan
from saaskpi.pages import executive_summary as ex
from saaskpi.workbook import open_workbook

CONV = params.conventions()
MONTHS = pd.date_range("2022-01-01", periods=25, freq="MS")


def bridge(mrr_end: list[float], **movements: list[float]) -> pd.DataFrame:
    """An MRR bridge with the given month-end MRR (start = the month before's end) and movements (default 0)."""
    n = len(mrr_end)
    out = pd.DataFrame({"month": MONTHS[:n], "mrr_end": [float(v) for v in mrr_end]})
    out["mrr_start"] = out.mrr_end.shift(1).fillna(0.0)
    for name in ("new", "expansion", "contraction", "churn", "reactivation"):
        out[name] = [float(v) for v in movements.get(name, [0.0] * n)]
    out["accounts_end"] = 10
    return out


# --------------------------------------------------------------------------- year over year
def test_year_over_year_and_trailing_twelve_month_growth_by_hand():
    # MRR 100 for 12 months, 150 for the next 12, then 180
    g = growth.growth_yoy(bridge([100] * 12 + [150] * 12 + [180]))
    assert g.mrr_yoy.iloc[:12].isna().all()  # no month a year before
    assert g.mrr_yoy.iloc[12] == pytest.approx(0.5)  # 150 / 100 - 1
    assert g.mrr_yoy.iloc[24] == pytest.approx(0.2)  # 180 / 150 - 1
    assert g.t12m_growth.iloc[:23].isna().all()  # needs 24 months
    assert g.t12m_growth.iloc[23] == pytest.approx(0.5)  # (12 x 150) / (12 x 100) - 1
    # months 13-24: 11 x 150 + 180 = 1830; months 1-12: 11 x 100 + 150 = 1250; 1830 / 1250 - 1 = 0.464
    assert g.t12m_growth.iloc[24] == pytest.approx(0.464)


def test_net_new_mrr_year_over_year_by_hand():
    # net new MRR = new + expansion + reactivation - contraction - churn
    n = 25
    new = [100] * 12 + [150] * 12 + [0]
    churn = [20] * 12 + [25] * 12 + [40]
    expansion = [0] * n
    expansion[0], expansion[12] = 10, 30  # month 1: 100 + 10 - 20 = 90; month 13: 150 + 30 - 25 = 155
    g = growth.growth_yoy(bridge([1000] * n, new=new, churn=churn, expansion=expansion))
    assert g.net_new_mrr.iloc[1] == 80  # 100 - 20
    assert g.net_new_mrr_yoy.iloc[:12].isna().all()  # no month a year before
    assert g.net_new_mrr_yoy.iloc[12] == pytest.approx(155 / 90 - 1)  # 0.7222
    assert g.net_new_mrr_yoy.iloc[13] == pytest.approx(125 / 80 - 1)  # (150 - 25) / (100 - 20) - 1 = 0.5625
    # month 25: 0 - 40 = -40 against month 13's 155: (-40 - 155) / 155 = -1.258 (fell, and below zero)
    assert g.net_new_mrr_yoy.iloc[24] == pytest.approx(-195 / 155)
    # a year before without a gain: n/a (a loss of 40 followed by a gain is not a growth rate)
    flipped = growth.growth_yoy(bridge([1000] * n, new=[0] * 12 + [50] * 13, churn=[40] * n))
    assert flipped.net_new_mrr_yoy.iloc[12:24].isna().all()
    assert flipped.net_new_mrr_yoy.iloc[24] == 0.0  # month 25's 10 against month 13's 10


def test_year_over_year_identities():
    mrr = [100 * 1.03**k + (k % 5) for k in range(25)]
    g = growth.growth_yoy(bridge(mrr))
    # ARR is 12 x MRR, so ARR grows at MRR's rate
    pd.testing.assert_series_equal(g.arr_yoy, g.mrr_yoy, check_names=False)
    assert (g.arr - 12 * g.mrr).abs().max() < 1e-9
    # the trailing sum is the sum of the monthly values, and its growth compares it with the one 12 months up
    assert g.mrr_t12m.iloc[24] == pytest.approx(sum(mrr[13:25]))
    assert g.t12m_growth.iloc[24] == pytest.approx(sum(mrr[13:25]) / sum(mrr[1:13]) - 1)


def test_natural_rate_of_growth_by_hand():
    # ARR grows 50 % in the year; organic channels brought 100 of each month's 400 new ARR: 0.5 x 100/400 = 0.125
    months = MONTHS[:12]
    split = pd.DataFrame(
        {
            "month": months,
            "new_arr": 400.0,
            "plg_new_arr": 250.0,
            "sales_led_new_arr": 150.0,
            "organic_new_arr": 100.0,
            "new_accounts": 2,
        }
    )
    yoy = pd.DataFrame({"month": months, "value": [math.nan] * 11 + [0.5], "n": 10.0})
    nrg = growth.natural_rate_of_growth(yoy, split)
    assert nrg.value.iloc[:11].isna().all()  # twelve months of new ARR needed
    assert nrg.value.iloc[11] == pytest.approx(0.125)
    assert nrg.n.iloc[11] == 24  # 12 months x 2 new customers


# --------------------------------------------------------------------------- new ARR by motion
def test_new_arr_by_channel_and_plg_split_by_hand(revenue_wb):
    # Jan: A1 100 + A5 120 organic, A2 50 paid_search, A4 300 outbound (x 12); Feb: A3 100 outbound; then none
    c = revenue_wb.table("new_arr_by_channel")
    jan = c[c.month == "2024-01-01"].set_index("channel").new_arr.to_dict()
    assert jan == {"organic": 2640.0, "outbound": 3600.0, "paid_search": 600.0}
    s = revenue_wb.table("new_arr_split").set_index("month")
    # plg_channels = organic, paid_search: 2640 + 600 = 3240; sales-led 3600
    assert s.loc["2024-01-01", ["plg_new_arr", "sales_led_new_arr", "organic_new_arr", "new_arr"]].tolist() == [
        3240,
        3600,
        2640,
        6840,
    ]
    assert s.loc["2024-02-01", ["plg_new_arr", "sales_led_new_arr"]].tolist() == [0, 1200]
    # identities: PLG + sales-led = new ARR = 12 x the bridge's new MRR, every month
    m = revenue_wb.table("mrr_movements").set_index("month")
    assert ((s.plg_new_arr + s.sales_led_new_arr - s.new_arr).abs() < 1e-9).all()
    assert ((s.new_arr - 12 * m.new).abs() < 1e-9).all()
    share = revenue_wb.series("plg_share_of_new_arr").set_index("month").value
    assert share["2024-01-01"] == pytest.approx(3240 / 6840)  # 0.4737
    assert share["2024-02-01"] == 0.0
    assert math.isnan(share["2024-03-01"])  # no new ARR


def test_new_mrr_is_the_bridge_new_movement(revenue_wb):
    s = revenue_wb.series("new_mrr").set_index("month")
    assert s.loc["2024-01-01", ["value", "n"]].tolist() == [570, 4]  # 100 + 50 + 300 + 120, four new accounts
    assert s.loc["2024-02-01", "value"] == 100  # A3: 1200 / 12


def test_growth_metrics_are_their_tables_columns(revenue_wb):
    """Each growth metric reads its table: the series by name equals the table's column, month by month."""
    wb = revenue_wb
    pairs = {
        "arr_growth_yoy": ("growth_yoy", "arr_yoy"),
        "trailing_twelve_month_growth": ("growth_yoy", "t12m_growth"),
        "net_new_mrr_growth_yoy": ("growth_yoy", "net_new_mrr_yoy"),
        "growth_ceiling_arr": ("growth_ceiling", "ceiling_arr"),
        "months_to_growth_ceiling": ("growth_ceiling", "months_to_ceiling"),
        "months_up_front": ("months_up_front_by_month", "months_plain"),
        "months_up_front_weighted": ("months_up_front_by_month", "months_weighted"),
    }
    for name, (table, column) in pairs.items():
        series, frame = wb.series(name), wb.table(table)
        frame = frame[frame.month <= wb.month]
        pd.testing.assert_series_equal(series.value, frame[column].reset_index(drop=True), check_names=False)
    # five months: no year-over-year value; May's ceiling from Mar-May (new 0 + 0 + 0: a ceiling of 0 ARR)
    assert wb.series("arr_growth_yoy").value.isna().all()
    # Mar-May: new 0, lost 0 + 100 + 100 = 200 of 650 + 700 + 660 = 2010 started; ceiling 0, ARR 6720 above it
    assert wb.value("growth_ceiling_arr").value == 0.0
    assert wb.value("months_to_growth_ceiling").value == 0.0
    # months up front in January: A1, A2, A4, A5 sign monthly plans (1 month each); February: A3's 12 months
    assert wb.series("months_up_front").set_index("month").value["2024-02-01"] == 12


# --------------------------------------------------------------------------- growth ceiling
def test_growth_ceiling_by_hand():
    # each month: new 150, churn 50; start 1000, 1100, 1200 -> end 1100, 1200, 1300
    b = bridge([1100, 1200, 1300], new=[150] * 3, churn=[50] * 3)
    b["mrr_start"] = [1000.0, 1100.0, 1200.0]
    g = growth.growth_ceiling(b, CONV).iloc[-1]
    assert CONV.growth_rate_months == 3
    assert g.new_arr_per_month == pytest.approx(1800)  # 12 x 450 / 3
    assert g.churn_rate == pytest.approx(150 / 3300)  # 0.04545
    assert g.ceiling_arr == pytest.approx(39600)  # 1800 / (150 / 3300)
    assert g.net_new_arr_per_month == pytest.approx(1200)  # 12 x (150 - 50)
    assert g.months_to_ceiling == pytest.approx(20)  # (39600 - 12 x 1300) / 1200 = 24000 / 1200
    # identity: at the ceiling, the ARR churned each month equals the new ARR won
    assert g.ceiling_arr * g.churn_rate == pytest.approx(g.new_arr_per_month)
    assert growth.growth_ceiling(b, CONV).ceiling_arr.iloc[:2].isna().all()  # three months needed


def test_no_ceiling_without_churn_and_zero_months_above_it():
    flat = bridge([1100, 1200, 1300], new=[100] * 3)
    flat["mrr_start"] = [1000.0, 1100.0, 1200.0]
    g = growth.growth_ceiling(flat, CONV).iloc[-1]
    assert math.isnan(g.ceiling_arr) and math.isnan(g.months_to_ceiling)
    # new 10 a month, churn 100 of 1000 a month (10 %): ceiling 12 x 10 / 0.1 = 1200 ARR, below ARR 12 x 910
    down = bridge([910, 820, 730], new=[10] * 3, churn=[100] * 3)
    down["mrr_start"] = [1000.0, 910.0, 820.0]
    d = growth.growth_ceiling(down, CONV).iloc[-1]
    assert d.ceiling_arr == pytest.approx(120 / (300 / 2730))  # 12 x 30 / 3 over 300 lost of 2730 started
    assert d.months_to_ceiling == 0.0  # ARR 8760 is above the ceiling


# --------------------------------------------------------------------------- months up front
def test_months_up_front_plain_and_weighted_by_hand(tmp_path):
    # B1 pays 1200 for 12 months (MRR 100), B2 300 for 1 month (MRR 300), both signed in January;
    # B2 adds a 12-month add-on in February: not a signing. B3 makes January complete.
    source = write_source(
        tmp_path / "upfront",
        {
            "accounts": """
                account_id,segment,created_at
                B1,smb,2024-01-01T00:00:00Z
                B2,smb,2024-01-01T00:00:00Z
                B3,smb,2024-02-29T12:00:00Z
            """,
            "subscriptions": """
                subscription_id,account_id,start_date,end_date,amount,billing_period_months
                T1,B1,2024-01-01,,1200,12
                T2,B2,2024-01-10,,300,1
                T3,B2,2024-02-01,,1200,12
            """,
        },
    )
    wb = open_workbook(str(source), "all", "2024-02", interactive=False)
    u = wb.table("months_up_front_by_month").set_index("month")
    assert u.loc["2024-01-01", "n"] == 2
    assert u.loc["2024-01-01", "months_plain"] == pytest.approx(6.5)  # (12 + 1) / 2
    assert u.loc["2024-01-01", "months_weighted"] == pytest.approx(3.75)  # (12 x 100 + 1 x 300) / 400
    assert u.loc["2024-02-01", "n"] == 0 and math.isnan(u.loc["2024-02-01", "months_plain"])
    assert wb.with_choice(month="2024-01").value("months_up_front_weighted").value == pytest.approx(3.75)


# --------------------------------------------------------------------------- plan vs actual
PLAN = """
    metric,segment,month,value
    monthly_recurring_revenue,all,2024-04-01,650
    monthly_recurring_revenue,all,2024-05-01,600
    monthly_recurring_revenue,all,2024-08-01,700
    monthly_recurring_revenue,smb,2024-05-01,300
    customer_churn_rate,all,2024-05-01,0.10
"""


@pytest.fixture
def plan_source(tmp_path):
    return write_source(tmp_path / "planned", {**REVENUE_TABLES, "plan": PLAN})


def test_plan_vs_actual_by_hand(plan_source):
    wb = open_workbook(str(plan_source), "all", "2024-05", interactive=False)
    t = wb.table("plan_vs_actual").set_index(["metric", "month"])
    may = t.loc[("monthly_recurring_revenue", pd.Timestamp("2024-05-01"))]
    # May MRR 560 against 600: variance -40, 560 / 600 = 93.3 % of plan, behind
    assert (may.actual, may.variance, may.status) == (560, -40, "behind")
    assert may.pct_of_plan == pytest.approx(560 / 600)
    apr = t.loc[("monthly_recurring_revenue", pd.Timestamp("2024-04-01"))]
    assert (apr.variance, apr.status) == (10, "on plan")  # 660 vs 650: within 2 %
    churn = t.loc[("customer_churn_rate", pd.Timestamp("2024-05-01"))]
    assert (churn.actual, churn.status) == (0.0, "ahead")  # nobody churned in May: below plan is better
    assert pd.Timestamp("2024-08-01") not in t.index.get_level_values("month")  # after the month shown
    # identity: variance = actual - plan, % of plan = actual / plan
    assert ((t.actual - t.plan - t.variance).abs() < 1e-9).all()
    assert ((t.actual / t.plan - t.pct_of_plan).abs() < 1e-9).all()


def test_a_segment_sees_its_own_plan(plan_source):
    smb = open_workbook(str(plan_source), "smb", "2024-05", interactive=False)
    t = smb.table("plan_vs_actual")
    # smb in May: A1 150 + A2 60 + A5 120 + 30 = 360 against 300: 120 %, ahead
    assert t[["metric", "plan", "actual", "status"]].values.tolist() == [
        ["monthly_recurring_revenue", 300, 360, "ahead"]
    ]


def test_tiles_and_trends_show_the_plan(plan_source):
    wb = open_workbook(str(plan_source), "all", "2024-05", interactive=False)
    html = page_html(ex.show_plan, wb)
    assert "plan $600 · 93% of plan · −$40" in html and "behind" in html
    assert "dotted: plan" in html  # the trend draws the plan beside the target
    assert "90 days" in html  # the plan for August (3 months on) is a 90-day goal


def test_plan_status_and_pace_rules():
    assert plan.plan_status(102, 100, "higher") == "on plan"  # within 2 %
    assert plan.plan_status(110, 100, "higher") == "ahead"
    assert plan.plan_status(0.03, 0.02, "lower") == "behind"
    assert plan.plan_status(math.nan, 100, "higher") == "n/a"
    assert plan.required_growth(100, 121, 2) == pytest.approx(0.1)  # 121 / 100 = 1.1^2
    s = pd.DataFrame({"month": MONTHS[:3], "value": [100.0, 110.0, 121.0]})
    assert plan.trailing_growth(s, MONTHS[2], 2) == pytest.approx(0.1)
    assert plan.pace_status(100, 121, 2, 0.1, 0.12, "higher") == "on pace"
    assert plan.pace_status(100, 121, 2, 0.1, 0.05, "higher") == "behind"
    assert plan.pace_status(130, 121, 2, math.nan, 0.05, "higher") == "reached"
    assert plan.pace_status(100, 121, 0, math.nan, 0.05, "higher") == "missed"
    assert plan.pace_status(0.03, 0.02, 4, -0.1, -0.05, "lower") == "behind"  # falling too slowly
    assert [plan.horizon_of(k) for k in (0, 3, 4, 12, 13)] == ["past", "90 days", "12 months", "12 months", "later"]


def test_goal_pace_by_hand(plan_source, tmp_path, monkeypatch):
    goals = tmp_path / "targets.yaml"
    goals.write_text(
        "goals:\n"
        "  - {metric: monthly_recurring_revenue, value: 677.6, deadline: 2024-07, label: MRR 677.6}\n"
        "  - {metric: monthly_recurring_revenue, value: 300, deadline: 2024-07, segment: smb}\n"
    )
    monkeypatch.setattr(paths, "TARGETS_FILE", goals)
    wb = open_workbook(str(plan_source), "all", "2024-05", interactive=False)
    g = plan.goal_pace(wb.as_of, wb.segment, wb.conventions, wb.compute_if_available).set_index("goal")
    assert list(g.index) == ["MRR 677.6", "MRR: plan for Aug 2024"]  # smb's goal is not the company's
    mid_market = open_workbook(str(plan_source), "mid_market", "2024-05", interactive=False)
    html = page_html(ex.show_plan, mid_market)
    assert "No dated goal for Mid-market in parameters/targets.yaml." in html
    assert "The plan has no rows for Mid-market." in html
    row = g.loc["MRR 677.6"]
    # 560 now, 677.6 two months on: (677.6 / 560)^(1/2) - 1 = 1.21^0.5 - 1 = 10 % a month
    assert (row.current, row.months_left, row.horizon) == (560, 2, "90 days")
    assert row.required_growth == pytest.approx(0.1)
    # the last 3 months: 650 in February to 560 in May, (560 / 650)^(1/3) - 1 = -4.8 % a month: behind
    assert row.trailing_growth == pytest.approx((560 / 650) ** (1 / 3) - 1)
    assert row.status == "behind"
    aug = g.loc["MRR: plan for Aug 2024"]
    assert (aug.source, aug.goal_value, aug.months_left) == ("plan", 700, 3)
    assert aug.required_growth == pytest.approx((700 / 560) ** (1 / 3) - 1)


def test_bad_goals_are_parameter_errors(tmp_path):
    bad = tmp_path / "targets.yaml"
    bad.write_text("goals:\n  - {metric: mrr, value: 1, deadline: 2027-13, segment: emea}\n")
    with pytest.raises(ParameterError, match=r"deadline"):
        params.targets_file(bad, known=set(METRICS))
    bad.write_text("goals:\n  - {metric: mrr, value: 1, deadline: 2027-06, segment: emea}\n")
    with pytest.raises(ParameterError, match=r"goals.0.metric.*'mrr'.*goals.0.segment.*'emea'"):
        params.targets_file(bad, known=set(METRICS))
    bad.write_text("goals:\n  - {metric: monthly_recurring_revenue, value: 1, deadline: 2027-06-01}\n")
    assert params.targets_file(bad, known=set(METRICS)).goals[0].deadline == "2027-06"  # a month's first day


def test_the_page_says_what_to_add_without_a_plan(revenue_wb, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "TARGETS_FILE", tmp_path / "none.yaml")
    html = page_html(ex.show_plan, revenue_wb)
    assert "Add a `plan` table (docs/data-contract.md) to see plan vs actual." in html
    assert "Add dated goals to parameters/targets.yaml" in html
    assert "plan $" not in html
    growth_html = page_html(ex.show_growth, revenue_wb)
    assert "Year-over-year growth needs 13 months of revenue." in growth_html
    assert "Growth ceiling" in growth_html  # five months of revenue give a ceiling (three-month averages)
    rows = ["ARR growth (year over year)", "Net new MRR growth (year over year)", "PLG share", "product-led / sales"]
    at = [growth_html.find(label) for label in rows]
    assert -1 not in at and at == sorted(at), at  # the motion split right after the PLG share


def test_growth_and_plan_tables_agree_on_duckdb(plan_source):
    """The tables that read the source through the engine give the same frames on DuckDB as on Polars."""
    polars_wb = open_workbook(str(plan_source), "all", "2024-05", interactive=False)
    duckdb_wb = open_workbook(str(plan_source), "all", "2024-05", interactive=False, engine="duckdb")
    for name in ("new_arr_by_channel", "new_arr_split", "months_up_front_by_month", "plan_values", "plan_vs_actual"):
        pd.testing.assert_frame_equal(
            polars_wb.table(name), duckdb_wb.table(name), check_dtype=False, check_exact=False, rtol=1e-9
        )
