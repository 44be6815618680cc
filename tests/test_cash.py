"""Cash (metrics/cash.py) on the unit-economics literal source, every expectation by hand.

The story (tests/test_unit_economics.py): month-end MRR Jan 570, Feb 650, Mar 700, Apr 660, May 560; the gross
margin is 0.8 in every month (COGS 114/570, 130/650, 140/700, the 0.8 convention in April, 112/560).
smb's new customers A1, A2, A5 all start in January; their MRR by age 0..4 (Jan..May):
  A1 100 100 150 150 150 | A2 50 0 0 60 60 | A5 120 150 150 150 150
  sums 270 250 300 360 360 -> margin per customer x 0.8 / 3 = 72, 66.667, 80, 96, 96
smb's CAC over the 12-month window = (1200 + 350) / 3 = 516.667 and its monthly churn 1 / 10 = 0.1
(A2 churned once in 10 exposed months).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import REVENUE_TABLES, page_html, write_source
from test_unit_economics import SPEND

from saaskpi.metrics import cash
from saaskpi.workbook import open_workbook

CAC = 1550 / 3  # 516.667


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_source(tmp_path_factory.mktemp("cash") / "ue", {**REVENUE_TABLES, "spend": SPEND})


@pytest.fixture(scope="module")
def wb(source):
    return open_workbook(str(source), "all", "2024-05", interactive=False).with_conventions(cash_horizon_months=8)


def values(wb, name):
    s = wb.series(name)
    return dict(zip(s.month.dt.strftime("%Y-%m"), s.value))


def test_cohort_cash_curve_pays_cac_up_front_then_earns_margin(wb):
    smb = wb.table("cash_curve").query("segment == 'smb'").set_index("month")
    # month 0: -CAC; months 1..5: the observed margins 72, 66.667, 80, 96, 96
    expected = [-CAC, -CAC + 72, -CAC + 138.667, -CAC + 218.667, -CAC + 314.667, -CAC + 410.667]
    assert smb.cumulative_cash.iloc[:6].tolist() == pytest.approx(expected, abs=1e-3)
    # months 6..8 extrapolated: 96 x 0.9, 96 x 0.81, 96 x 0.729 (the last observed margin at smb's churn 0.1)
    assert smb.margin_per_customer.loc[6:8].tolist() == pytest.approx([86.4, 77.76, 69.984])
    assert smb.extrapolated.tolist() == [False] * 6 + [True] * 3
    assert (smb.customers.iloc[1:6] == 3).all()


def test_cash_curve_summary_break_even_trough_and_identity(wb):
    s = wb.table("cash_curve_summary").set_index("segment").loc["smb"]
    # month 5: -516.667 + 410.667 = -106; month 6: -106 + 86.4 = -19.6; month 7: -19.6 + 77.76 = 58.16 >= 0
    assert s.breakeven_month == 7
    assert s.trough_per_customer == pytest.approx(-CAC)  # the deepest point is month 0: CAC paid, nothing earned
    assert s.new_customers_per_month == pytest.approx(3 / 12)  # 3 new smb customers in the 12-month window
    assert s.cohort_trough == pytest.approx(-CAC / 4)
    # identity: the curve's final value = cumulative margin - CAC (72 + 66.667 + 80 + 96 + 96 + 86.4 + 77.76 + 69.984)
    assert s.cumulative_margin == pytest.approx(644.811, abs=1e-3)
    assert s.final_cash == pytest.approx(s.cumulative_margin - s.cac)
    for r in wb.table("cash_curve_summary").itertuples():  # the identity holds for every segment
        assert r.final_cash == pytest.approx(r.cumulative_margin - r.cac)


def test_company_trough_from_literal_curves():
    curve = {"a": np.array([-100.0, -50.0, 0.0, 50.0])}
    t = cash.company_trough(curve, {"a": 2.0}, 0.5, 3)
    # new customers 2, 3, 4.5, 6.75; cumulative cash at t = sum over s <= t of n_s x curve(t - s):
    # t0: 2 x -100 = -200; t1: 2 x -50 + 3 x -100 = -400; t2: 0 - 150 - 450 = -600; t3: 100 + 0 - 225 - 675 = -800
    assert t.new_customers.tolist() == pytest.approx([2, 3, 4.5, 6.75])
    assert t.cumulative_cash.tolist() == pytest.approx([-200, -400, -600, -800])
    assert t.cash_flow.sum() == pytest.approx(t.cumulative_cash.iloc[-1])  # flows add up to the cumulative cash
    flat = cash.company_trough(curve, {"a": 2.0}, 0.0, 3)
    # no growth: -200, -300, -300, -200: the trough is -300 in month 1, not yet back above 0
    assert flat.cumulative_cash.tolist() == pytest.approx([-200, -300, -300, -200])
    assert cash.trough_facts(flat) == {"depth": -300.0, "trough_month": 1, "breakeven_month": None}
    # faster growth digs deeper (SaaS Metrics 2.0)
    assert t.cumulative_cash.min() < flat.cumulative_cash.min()
    # two segments add up: the company is the sum of its segments
    two = cash.company_trough({"a": curve["a"], "b": curve["a"] * 2}, {"a": 2.0, "b": 1.0}, 0.5, 3)
    b = cash.company_trough({"b": curve["a"] * 2}, {"b": 1.0}, 0.5, 3)
    assert two.cumulative_cash.tolist() == pytest.approx((t.cumulative_cash + b.cumulative_cash).tolist())


def test_company_trough_table_uses_the_growth_convention(wb):
    t = wb.table("company_cash_trough")
    assert len(t) == 9  # months 0..8
    # month 0: every segment's month-0 cohort pays its CAC: sum of new customers a month x -CAC
    summary = wb.table("cash_curve_summary")
    assert t.cumulative_cash.iloc[0] == pytest.approx((summary.new_customers_per_month * -summary.cac).sum())
    assert t.new_customers.iloc[1] == pytest.approx(t.new_customers.iloc[0] * 1.05)  # cash_growth_rate_monthly


def test_profit_margin_by_segment_channel_and_plan(wb):
    p = wb.table("profit_margin").set_index(["level", "group"])
    # revenue (sum of month-end MRR, Jan-May): smb 650 + 170 + 720 = 1540, mid_market 300 x 4 + 200 = 1400,
    # enterprise 100 x 2 = 200; cost of service = 20 % of revenue (gross margin 0.8)
    # acquisition (S&M cells): smb 1200 + 100 + 250 = 1550, mid_market 600 + 100 = 700, enterprise 300 + 200 = 500;
    # April's 120 reached no segment (no new customer that month): "not attributed"
    smb = p.loc[("segment", "smb")]
    assert (smb.revenue, smb.cost_of_service, smb.acquisition_spend) == pytest.approx((1540, 308, 1550))
    assert smb.profit == pytest.approx(1540 - 308 - 1550)  # -318
    assert smb.profit_margin == pytest.approx(-318 / 1540)
    assert p.loc[("segment", "mid_market")].profit_margin == pytest.approx((1400 - 280 - 700) / 1400)  # 0.3
    assert p.loc[("segment", "enterprise")].profit == pytest.approx(200 - 40 - 500)  # -340
    assert p.loc[("segment", cash.UNATTRIBUTED)].acquisition_spend == pytest.approx(120)
    assert p.loc[("channel", "outbound")].acquisition_spend == pytest.approx(1200)  # 700 + 500
    assert p.loc[("plan", "no plan")].acquisition_spend == pytest.approx(2750)  # no plan column: one group
    total = p.loc[("total", "all")]
    # 3140 - 628 - 2870 = -358
    assert (total.revenue, total.acquisition_spend, total.profit) == pytest.approx((3140, 2870, -358))
    for level in ("segment", "channel", "plan"):  # identity: each level adds up to the total
        assert p.loc[level].profit.sum() == pytest.approx(total.profit)
        assert p.loc[level].revenue.sum() == pytest.approx(total.revenue)


def test_profit_margin_spread_by_revenue(wb):
    p = (
        wb.with_conventions(profit_acquisition_allocation="revenue")
        .table("profit_margin")
        .set_index(["level", "group"])
    )
    # S&M 2870 spread by revenue: smb 1540 / 3140 x 2870 = 1407.58
    assert p.loc[("segment", "smb")].acquisition_spend == pytest.approx(1540 / 3140 * 2870)
    assert p.loc["segment"].acquisition_spend.sum() == pytest.approx(2870)


def test_operating_margin_now_and_mature(wb):
    om = values(wb, "operating_margin")
    # total spend by month: Jan 1000 + 600 + 400 + 114 + 500 + 100 = 2714, Feb 630, Mar 390, Apr 120, May 112
    # Mar: (570 + 650 + 700 - (2714 + 630 + 390)) / 1920 = -0.9448; May: (1920 - 622) / 1920 = 0.6760
    assert om["2024-03"] == pytest.approx((1920 - 3734) / 1920)
    assert om["2024-05"] == pytest.approx((1920 - 622) / 1920)
    assert math.isnan(om["2024-02"])  # fewer than three months
    mature = values(wb, "mature_operating_margin")
    # May: spend other than S&M Mar-May 140 + 0 + 112 = 252; one logo churned (A3 in Apr) x CAC through Apr
    # (2000 + 500 + 250 + 120) / 5 = 574 -> (1920 - 252 - 574) / 1920 = 0.5698
    assert mature["2024-05"] == pytest.approx((1920 - 252 - 574) / 1920)


def test_operating_margin_needs_every_spend_category(tmp_path):
    partial = "\n".join(line for line in SPEND.splitlines() if "rnd" not in line)
    source = write_source(tmp_path / "partial", {**REVENUE_TABLES, "spend": partial})
    wb = open_workbook(str(source), "all", "2024-05", interactive=False)
    assert wb.series("operating_margin").value.isna().all()  # no R&D: total spend is not known


def test_cash_section_renders_and_says_what_is_missing(wb, revenue_wb):
    from saaskpi.pages import unit_economics as page

    html = page_html(page.show_cash, wb)
    assert "Cash curve of a new customer" in html and "not attributed" in html and "break-even month" in html
    assert "Trough" in html
    assert "needs the `spend` table" in page_html(page.show_cash, revenue_wb)


def test_trough_text():
    from saaskpi.pages import unit_economics as page

    facts = cash.trough_facts(pd.DataFrame({"month": [0, 1, 2], "cumulative_cash": [-5.0, -8.0, 1.0]}))
    assert facts == {"depth": -8.0, "trough_month": 1, "breakeven_month": 2}
    assert "in month 1; cash is back above 0 in month 2" in page.trough_text(facts, "USD", 36)


def test_growth_slider_redraws_the_trough_in_an_app(source):
    from saaskpi.pages import unit_economics as page

    app = open_workbook(str(source), "all", "2024-05", interactive=True).with_conventions(cash_horizon_months=8)
    box = page._trough_app(app)
    slider, _, note = box.children
    assert slider.value == pytest.approx(0.05)  # cash_growth_rate_monthly
    before = note.value
    slider.value = 0.2
    assert box.children[2].value != before and "Trough" in box.children[2].value
