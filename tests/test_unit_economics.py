"""Unit economics on a literal source, every expectation by hand.

The revenue story of conftest (Jan-May 2024; month-end MRR Jan 570, Feb 650, Mar 700, Apr 660, May 560)
has these new customers (first paying month end):
  Jan: A1 smb organic 100, A2 smb paid_search 50, A4 mid_market outbound 300, A5 smb organic 120
  Feb: A3 enterprise outbound 100
  Mar, Apr, May: none (A2 comes back in Apr: a reactivation, not a new customer)

Spend (USD unless noted):
  Jan: marketing 1000 tagged smb + organic; sales 600 tagged outbound only; marketing 400 untagged;
       cogs 114, rnd 500, g_and_a 100 untagged
  Feb: marketing 300 untagged; sales 200 tagged enterprise only; cogs 130
  Mar: marketing 250 tagged smb + paid_search (no new customer that month); cogs 140
  Apr: marketing EUR 100 untagged (x 1.20 = 120 USD); no COGS recorded
  May: cogs 112
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import REVENUE_TABLES, page_html, write_source

from saaskpi.errors import MissingTablesError
from saaskpi.metrics import unit_economics as ue
from saaskpi.params import conventions
from saaskpi.workbook import month_calendar, open_workbook

SPEND = """
    month,category,amount,channel,segment,currency
    2024-01-01,marketing,1000,organic,smb,USD
    2024-01-01,sales,600,outbound,,USD
    2024-01-01,marketing,400,,,USD
    2024-01-01,cogs,114,,,USD
    2024-01-01,rnd,500,,,USD
    2024-01-01,g_and_a,100,,,USD
    2024-02-01,marketing,300,,,USD
    2024-02-01,sales,200,,enterprise,USD
    2024-02-01,cogs,130,,,USD
    2024-03-01,marketing,250,paid_search,smb,USD
    2024-03-01,cogs,140,,,USD
    2024-04-01,marketing,100,,,EUR
    2024-05-01,cogs,112,,,USD
"""


@pytest.fixture
def ue_source(tmp_path):
    return write_source(tmp_path / "ue", {**REVENUE_TABLES, "spend": SPEND})


@pytest.fixture
def wb(ue_source):
    return open_workbook(str(ue_source), "all", "2024-05", interactive=False)


def values(wb, name):
    s = wb.series(name)
    return dict(zip(s.month.dt.strftime("%Y-%m"), s.value))


def test_blended_cac_arpa_margin_and_payback(wb):
    cac = values(wb, "customer_acquisition_cost")
    # Jan: (1000 + 600 + 400) / 4 new = 500; Feb: (300 + 200) / 1 = 500
    assert cac["2024-01"] == pytest.approx(500.0)
    assert cac["2024-02"] == pytest.approx(500.0)
    # Mar: 250 spent, no new customer -> n/a, never infinity; Apr and May: no new customer either
    assert all(math.isnan(cac[m]) for m in ("2024-03", "2024-04", "2024-05"))
    assert values(wb, "sales_marketing_spend")["2024-04"] == pytest.approx(120.0)  # EUR 100 x 1.20
    arpa = values(wb, "new_customer_arpa")
    assert arpa["2024-01"] == pytest.approx(142.5)  # (100 + 50 + 300 + 120) / 4
    gm = values(wb, "gross_margin")
    assert gm["2024-01"] == pytest.approx(0.8)  # (570 - 114) / 570
    assert gm["2024-02"] == pytest.approx(0.8)  # (650 - 130) / 650
    assert math.isnan(gm["2024-04"])  # no COGS recorded: not measured
    payback = values(wb, "cac_payback_months")
    assert payback["2024-01"] == pytest.approx(500 / (142.5 * 0.8))  # 4.386
    assert payback["2024-02"] == pytest.approx(6.25)  # 500 / (100 x 0.8)
    margin = wb.table("gross_margin_by_month").set_index(pd.Index(["01", "02", "03", "04", "05"]))
    assert margin.loc["04", "basis"] == "convention" and margin.loc["04", "gross_margin"] == pytest.approx(0.8)
    assert margin.loc["05", "basis"] == "cogs" and margin.loc["05", "gross_margin"] == pytest.approx((560 - 112) / 560)


def test_ltv_to_cac_uses_the_registered_ltv(wb):
    ltv = values(wb, "customer_lifetime_value")
    ratio = values(wb, "ltv_to_cac_ratio")
    for month in ("2024-01", "2024-02"):
        assert ratio[month] == pytest.approx(ltv[month] / 500) or (math.isnan(ratio[month]) and math.isnan(ltv[month]))
    survival = wb.with_conventions(ltv_to_cac_basis="survival")
    s_ltv, s_ratio = values(survival, "survival_lifetime_value"), values(survival, "ltv_to_cac_ratio")
    assert s_ratio["2024-02"] == pytest.approx(s_ltv["2024-02"] / 500)


def test_untagged_spend_is_allocated_by_new_customers(wb):
    spend = wb.table("cac_by_channel")
    jan = spend[spend.month == "2024-01-01"].set_index("channel")
    # Jan cells: the untagged 400 splits 2:1:1 over smb/organic (A1, A5), smb/paid_search (A2), mid/outbound (A4);
    # the outbound-only 600 goes to the only outbound newcomer's segment (mid_market)
    assert jan.loc["organic", "sm_spend"] == pytest.approx(1000 + 200)
    assert jan.loc["paid_search", "sm_spend"] == pytest.approx(100)
    assert jan.loc["outbound", "sm_spend"] == pytest.approx(600 + 100)
    assert jan.loc["organic", "cac"] == pytest.approx(600)  # 1200 / 2
    # April's 120 cannot be placed (no new customer that month): it stays unallocated, in blended CAC only
    allocated = wb._allocated_spend()
    apr = allocated[allocated.month == "2024-04-01"]
    assert apr.basis.tolist() == ["unallocated"] and apr.amount.sum() == pytest.approx(120)
    # money is conserved: allocation only moves it
    assert allocated.amount.sum() == pytest.approx(
        1000 + 600 + 400 + 114 + 500 + 100 + 300 + 200 + 130 + 250 + 140 + 120 + 112
    )


def test_segments_get_their_share_and_add_up(wb):
    smb, ent, mid = (wb.with_choice(s) for s in ("smb", "enterprise", "mid_market"))
    assert values(smb, "customer_acquisition_cost")["2024-01"] == pytest.approx((1200 + 100) / 3)
    assert values(mid, "customer_acquisition_cost")["2024-01"] == pytest.approx(700)
    assert values(ent, "customer_acquisition_cost")["2024-02"] == pytest.approx(500)  # 300 untagged + 200 tagged
    # COGS splits by MRR share, so every segment's margin is the company's: Feb enterprise (100 - 130 x 100/650) / 100
    assert values(ent, "gross_margin")["2024-02"] == pytest.approx(0.8)
    for month in ("2024-01", "2024-02", "2024-03"):
        parts = sum(values(s, "sales_marketing_spend")[month] for s in (smb, ent, mid))
        assert parts == pytest.approx(values(wb, "sales_marketing_spend")[month])


def test_unallocated_rule_keeps_untagged_spend_out_of_segments(wb):
    raw = wb.with_conventions(untagged_spend_allocation="unallocated")
    assert values(raw, "customer_acquisition_cost")["2024-01"] == pytest.approx(500)  # blended is unchanged
    assert values(raw.with_choice("smb"), "customer_acquisition_cost")["2024-01"] == pytest.approx(1000 / 3)


def test_spend_lag_moves_spend_to_later_customers(wb):
    lagged = wb.with_conventions(spend_lag_months=1)
    cac = values(lagged, "customer_acquisition_cost")
    assert math.isnan(cac["2024-01"])  # December's spend is not in the data: unknown, not zero
    assert cac["2024-02"] == pytest.approx(2000)  # January's 1000 + 600 + 400 for February's one newcomer
    assert math.isnan(cac["2024-03"])  # February's 500 lands in March, which won no customer
    # the magic number keeps using the month money was spent
    assert values(lagged, "sales_marketing_spend")["2024-02"] == pytest.approx(2000)


def test_segment_channel_table(wb):
    t = wb.table("unit_economics").set_index(["segment", "channel"])
    so = t.loc[("smb", "organic")]
    # A1 (100) and A5 (120): CAC 1200 / 2 = 600, ARPA 110, payback 600 / (110 x 0.8) = 6.82
    assert (so.new_customers, so.cac, so.arpa) == (2, pytest.approx(600), pytest.approx(110))
    assert so.payback_months == pytest.approx(600 / 88)
    # no churn in 8 exposed months (A1, A5 in Feb-May): simple LTV n/a; survival LTV = 60-month horizon x 110 x 0.8
    assert (so.exposed_months, so.churned) == (8, 0) and math.isnan(so.ltv)
    assert so.ltv_survival == pytest.approx(60 * 110 * 0.8)
    assert so.ltv_to_cac_status == "n/a" and so.payback_status == "on"
    sp = t.loc[("smb", "paid_search")]
    # A2: spend 100 (Jan share) + 250 (Mar) = 350; churned in Feb of 2 exposed months (Feb, May): churn 0.5
    # LTV 50 x 0.8 / 0.5 = 80; LTV:CAC 80 / 350 = 0.229 (off); payback 350 / 40 = 8.75 (on)
    assert sp.cac == pytest.approx(350) and sp.monthly_churn == pytest.approx(0.5)
    assert sp.ltv == pytest.approx(80) and sp.ltv_to_cac == pytest.approx(80 / 350)
    assert (sp.ltv_to_cac_status, sp.payback_status, sp.low_n) == ("off", "on", True)
    eo = t.loc[("enterprise", "outbound")]
    # A3: CAC 500, ARPA 100, churn 1 of 2 (Mar kept, Apr lost) -> LTV 100 x 0.8 / 0.5 = 160, ratio 0.32
    assert eo.ltv_to_cac == pytest.approx(0.32) and eo.payback_months == pytest.approx(6.25)
    total = t.loc[("all", "all")]
    # 5 new customers; S&M 2000 + 500 + 250 + 120 (the unallocated April spend counts here) = 2870
    assert total.new_customers == 5 and total.cac == pytest.approx(2870 / 5)
    seg = t.loc[("smb", "all")]
    assert seg.cac == pytest.approx((1200 + 350) / 3)  # smb cells' spend over A1, A2, A5


def test_zero_new_customers_is_na_not_infinity(wb):
    may = wb.with_conventions(unit_economics_window_months=2)  # Apr-May: nobody new, 120 spent
    t = may.table("unit_economics")
    total = t[t.level == "total"].iloc[0]
    assert total.new_customers == 0 and total.sm_spend == pytest.approx(120)
    assert math.isnan(total.cac) and math.isnan(total.payback_months) and total.ltv_to_cac_status == "n/a"


def test_acceleration_ranks_and_explains(wb):
    a = wb.table("acceleration")
    pairs = a[a.level == "pair"].set_index(["segment", "channel"])
    assert pairs.loc[("smb", "paid_search"), "verdict"] == "fix retention"  # payback 8.75 ok, LTV:CAC 0.23 not
    assert pairs.loc[("smb", "organic"), "verdict"] == "too early"  # no churn yet: LTV undefined
    assert "LTV:CAC 0.2 vs >= 3, payback 8.8 months vs <= 12" in pairs.loc[("smb", "paid_search"), "reason"]
    assert "low confidence" in pairs.loc[("smb", "paid_search"), "reason"]
    order = a.verdict.tolist()
    assert order.index("fix retention") < order.index("too early")


def test_payback_curve(wb):
    c = wb.table("payback_curve")
    smb = c[c.segment == "smb"].set_index("months_since_start")
    # A1, A2, A5 start in Jan. Month 1: (100 + 50 + 120) x 0.8 / 3 = 72; month 2 (Feb): (100 + 0 + 150) x 0.8 / 3
    assert smb.loc[1, "margin_per_customer"] == pytest.approx(72)
    assert smb.loc[2, "cumulative_margin"] == pytest.approx(72 + 250 * 0.8 / 3)
    assert (smb.customers == 3).all() and smb.cac.iloc[0] == pytest.approx((1200 + 350) / 3)


def test_magic_number_and_burn_multiple_from_literal_frames():
    calendar = month_calendar(24288, 24293)  # Jan-Jun 2024
    months = pd.date_range("2024-01-01", periods=6, freq="MS")
    mrr = pd.DataFrame(
        {
            "month": months,
            "mrr_end": [100.0, 100, 100, 150, 200, 250],
            "new_accounts": [1, 0, 0, 1, 1, 1],
            "accounts_end": [1, 1, 1, 2, 3, 4],
        }
    )
    rows = []
    for m in months:
        rows += [
            (m, m, "marketing", 60.0),
            (m, m, "sales", 40.0),
            (m, m, "cogs", 20.0),
            (m, m, "rnd", 200.0),
            (m, m, "g_and_a", 30.0),
        ]
    spend = pd.DataFrame(rows, columns=["month", "spend_month", "category", "amount"]).assign(
        segment="smb", channel=None
    )
    magic = ue.magic_number(calendar, conventions(), spend, mrr).set_index("month").value
    # Jun: net new ARR 12 x (250 - 100 [Mar]) = 1800 over S&M of Jan-Mar 3 x 100 = 300 -> 6.0; before Jun: n/a
    assert magic[months[5]] == pytest.approx(6.0) and magic[:5].isna().all()
    burn = ue.burn_multiple(calendar, spend, mrr).set_index("month").value
    # Jun: spend Apr-Jun 3 x 350 = 1050, revenue 150 + 200 + 250 = 600 -> burn 450 / 1800 = 0.25
    assert burn[months[5]] == pytest.approx(0.25)
    # Mar: ARR did not grow over Dec-Mar (Dec unknown) -> n/a
    assert math.isnan(burn[months[2]])
    partial = ue.burn_multiple(calendar, spend[spend.category != "rnd"], mrr).set_index("month").value
    assert partial.isna().all()  # total spend is not known without R&D


def test_what_if_and_the_change_that_reaches_each_guideline():
    w = ue.what_if(arpa=100, cac=1000, monthly_churn=0.02, gross_margin=0.8)
    # LTV 100 x 0.8 / 0.02 = 4000 -> LTV:CAC 4; payback 1000 / 80 = 12.5
    assert w["before"]["ltv_to_cac"] == pytest.approx(4) and w["before"]["payback_months"] == pytest.approx(12.5)
    need = w["needed"]["payback_months"]
    assert need["arpa"] == pytest.approx(1000 / 9.6) and need["cac"] == pytest.approx(960)
    assert need["gross_margin"] == pytest.approx(1000 / 1200) and need["monthly_churn"] is None
    w = ue.what_if(arpa=100, cac=1000, monthly_churn=0.02, gross_margin=0.8, cac_change=0.5)
    # CAC 1500 -> LTV:CAC 4000 / 1500 = 2.67; to get 3: churn <= 80 / 4500, ARPA >= 3 x 1500 x 0.02 / 0.8 = 112.5,
    # margin >= 90 / 100 = 0.9, CAC <= 80 / 0.06 = 1333.3
    assert w["after"]["ltv_to_cac"] == pytest.approx(4000 / 1500)
    need = w["needed"]["ltv_to_cac"]
    assert need["monthly_churn"] == pytest.approx(80 / 4500) and need["arpa"] == pytest.approx(112.5)
    assert need["gross_margin"] == pytest.approx(0.9) and need["cac"] == pytest.approx(80 / 0.06)
    hopeless = ue.what_if(arpa=10, cac=1000, monthly_churn=0.05, gross_margin=0.8)
    assert hopeless["needed"]["ltv_to_cac"]["gross_margin"] is None  # would need a margin above 100 %


def test_without_spend_the_page_says_so(revenue_wb):
    assert math.isnan(revenue_wb.value("customer_acquisition_cost").value)
    assert revenue_wb.value("customer_acquisition_cost").note == "needs spend"
    with pytest.raises(MissingTablesError):
        revenue_wb.table("unit_economics")
    # LTV keeps working on the convention's margin
    assert revenue_wb.table("gross_margin_by_month").basis.eq("convention").all()


def test_demo_pairs_meet_or_miss_the_guidelines_by_design(demo_source):
    import json

    truth = json.loads((demo_source / "ground_truth.json").read_text())["unit_economics_verdicts"]
    wb = open_workbook(str(demo_source), "all", interactive=False).with_conventions(unit_economics_window_months=36)
    pairs = wb.table("acceleration").query("level == 'pair' and not low_n")
    assert len(pairs) >= 12
    found = {(r.segment, r.channel): r.verdict for r in pairs.itertuples()}
    assert found == {k: truth[k[0]][k[1]] for k in found}
    # every segment's S&M spend adds up to the company's (the brand budget is allocated, nothing is lost)
    all_spend = wb.series("sales_marketing_spend").value
    parts = sum(wb.with_choice(s).series("sales_marketing_spend").value for s in ("smb", "mid_market", "enterprise"))
    assert np.allclose(parts, all_spend)


def test_every_section_renders_and_says_what_is_missing(wb, revenue_wb):
    from saaskpi.pages import unit_economics as page

    sections = [
        page.show_header,
        page.show_kpi_tiles,
        page.show_segment_channel_table,
        page.show_accelerator,
        page.show_trends,
        page.show_cac_by_channel,
        page.show_payback_curve,
        page.show_what_if,
    ]
    for func in sections:
        assert "Something went wrong" not in page_html(func, wb), func.__name__
    tiles = page_html(page.show_kpi_tiles, wb)
    assert "n/a" in tiles and "nan" not in tiles.replace("nan-", "")
    table = page_html(page.show_segment_channel_table, wb)
    assert "small sample" in table and "$600" in table  # smb/organic CAC
    assert "Unit economics needs the `spend` table, which this data source does not have." in page_html(
        page.show_kpi_tiles, revenue_wb
    )


def test_what_if_text_for_the_window(wb):
    from saaskpi.pages import unit_economics as page

    # window totals: ARPA 134, CAC 574, margin 0.8; churn 2 (A2 in Feb, A3 in Apr) of 16 exposed months
    # (A1, A4, A5: Feb-May 4 each; A2: Feb, May; A3: Mar, Apr) = 12.5 %
    text = page.what_if_html(wb)
    assert "$574" in text and "12.5%" in text
    assert "does not move it" in text  # churn cannot reach the payback guideline
    assert "$545" in page.what_if_html(wb, cac_change=-0.05)  # 574 x 0.95 = 545.3 in the what-if column
