"""Revenue metrics on five hand-built accounts (see REVENUE_TABLES in conftest.py for the story)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import write_source

from saaskpi.workbook import open_workbook


def at(series: pd.DataFrame, month: str) -> float:
    return float(series.loc[series.month == pd.Timestamp(month), "value"].iloc[0])


def test_mrr_bridge_by_hand(revenue_wb):
    m = revenue_wb.table("mrr_movements").set_index(revenue_wb.table("mrr_movements").month.dt.strftime("%Y-%m"))
    # Jan: A1 100 + A2 50 + A4 400*(1-0.25)=300 + A5 EUR 100*1.20=120 -> 570, all new
    assert m.loc["2024-01", ["mrr_start", "new", "mrr_end", "new_accounts", "accounts_end"]].tolist() == [
        0,
        570,
        570,
        4,
        4,
    ]
    # Feb: A3 new 1200/12=100, A5 add-on +30, A2 churns 50: 570 + 100 + 30 - 50 = 650
    assert m.loc["2024-02", ["new", "expansion", "churn", "mrr_end", "churned_accounts"]].tolist() == [
        100,
        30,
        50,
        650,
        1,
    ]
    # Mar: A1 100 -> 150 (+50); A6's mid-month subscription never counts: 650 + 50 = 700
    assert m.loc["2024-03", ["expansion", "new", "mrr_end", "accounts_end"]].tolist() == [50, 0, 700, 4]
    # Apr: A3 churns 100, A2 comes back at 60: 700 - 100 + 60 = 660
    assert m.loc["2024-04", ["churn", "reactivation", "mrr_end", "reactivated_accounts", "new_accounts"]].tolist() == [
        100,
        60,
        660,
        1,
        0,
    ]
    # May: A4 300 -> 200: 660 - 100 = 560
    assert m.loc["2024-05", ["contraction", "mrr_end", "contraction_accounts"]].tolist() == [100, 560, 1]


def test_bridge_identity_holds_every_month(revenue_wb):
    m = revenue_wb.table("mrr_movements")
    rebuilt = m.mrr_start + m.new + m.reactivation + m.expansion - m.contraction - m.churn
    assert (rebuilt - m.mrr_end).abs().max() < 1e-6
    assert (m.mrr_start.iloc[1:].to_numpy() == m.mrr_end.iloc[:-1].to_numpy()).all()


def test_size_metrics(revenue_wb):
    wb = revenue_wb
    assert wb.value("monthly_recurring_revenue").value == 560
    assert wb.value("annual_recurring_revenue").value == 6720  # 12 x 560
    assert wb.value("average_revenue_per_account").value == 140  # 560 / 4 paying
    assert wb.value("mrr_growth_rate").value == pytest.approx(-100 / 660)  # (560 - 660) / 660
    assert wb.value("net_new_mrr").value == -100


def test_churn_rates(revenue_wb):
    wb = revenue_wb
    churn = wb.series("customer_churn_rate")
    assert at(churn, "2024-04") == pytest.approx(0.25)  # A3 of the 4 paying at end of March
    assert math.isnan(at(churn, "2024-01"))  # nobody paid before January: n/a, not 0
    annual = wb.series("annualised_customer_churn_rate")
    assert at(annual, "2024-04") == pytest.approx(1 - 0.75**12)
    assert wb.value("gross_mrr_churn_rate").value == pytest.approx(100 / 660)  # May contraction / start
    net = wb.series("net_mrr_churn_rate")
    assert at(net, "2024-04") == pytest.approx((100 - 60) / 700)  # churn minus reactivation
    assert at(net, "2024-02") == pytest.approx((50 - 30) / 570)  # churn minus expansion
    assert at(wb.series("net_negative_churn"), "2024-03") == pytest.approx(50)  # expansion, nothing lost
    assert at(wb.series("mrr_expansion_rate"), "2024-03") == pytest.approx(50 / 650)
    assert at(wb.series("expansion_revenue"), "2024-03") == pytest.approx(600)  # 50 x 12
    assert at(wb.series("expansion_share_of_arr"), "2024-03") == pytest.approx(600 / 8400)  # 600 / (12 x 700)


def test_net_churn_convention_without_reactivation(revenue_source):
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=False).with_conventions(
        reactivation_offsets_churn=False, quick_ratio_includes_reactivation=False
    )
    assert at(wb.series("net_mrr_churn_rate"), "2024-04") == pytest.approx(100 / 700)
    assert at(wb.series("saas_quick_ratio"), "2024-04") == pytest.approx(
        0.0
    )  # 0 gained without reactivation / 100 lost


def test_monthly_retention_and_quick_ratio(revenue_wb):
    wb = revenue_wb
    assert at(wb.series("net_revenue_retention_monthly"), "2024-04") == pytest.approx(600 / 700)  # (700 - 100) / 700
    assert at(wb.series("gross_revenue_retention_monthly"), "2024-02") == pytest.approx(520 / 570)  # (570 - 50) / 570
    assert at(wb.series("net_revenue_retention_monthly"), "2024-02") == pytest.approx(
        550 / 570
    )  # (570 + 30 - 50) / 570
    quick = wb.series("saas_quick_ratio")
    assert at(quick, "2024-02") == pytest.approx(2.6)  # (100 new + 30 expansion) / 50 churn
    assert at(quick, "2024-04") == pytest.approx(0.6)  # 60 reactivation / 100 churn
    assert math.isnan(at(quick, "2024-03"))  # nothing lost: n/a, never infinity
    assert wb.value("saas_quick_ratio").status == "small sample"  # movements of 4 accounts: flagged, not judged


def test_simple_ltv_uses_trailing_average_churn(revenue_source):
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    assert math.isnan(wb.value("customer_lifetime_value").value)  # only 4 months of churn: window of 6 incomplete
    wb = wb.with_conventions(ltv_churn_window_months=3)
    # churn Mar 0/4, Apr 1/4, May 0/4 -> mean 1/12; ARPA 140; margin 0.8 -> 140 x 0.8 x 12 = 1344
    assert wb.value("customer_lifetime_value").value == pytest.approx(1344)


def test_simple_ltv_churn_window_without_the_current_month(revenue_source):
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=False).with_conventions(
        ltv_churn_window_months=3, ltv_churn_window_includes_current=False
    )
    # ChartMogul's trailing average leaves May out: churn Feb 1/4 (A2), Mar 0/4, Apr 1/4 (A3) -> mean 1/6;
    # ARPA of May 140 x margin 0.8 = 112 -> 112 / (1/6) = 672
    assert wb.value("customer_lifetime_value").value == pytest.approx(672)
    # its n: accounts paying at the start of Feb, Mar and Apr, 4 + 4 + 4 = 12 account-months
    assert wb.value("customer_lifetime_value").n == 12
    # April's value needs Jan-Mar, and January has no month before it: n/a
    assert math.isnan(at(wb.series("customer_lifetime_value"), "2024-04"))


def test_simple_ltv_is_na_without_churn(tmp_path):
    src = write_source(
        tmp_path / "s",
        {
            # Z, created on Sep 30 without a subscription, marks the end of the data: September is complete
            "accounts": "account_id,segment,created_at\nA,smb,2024-01-01T00:00:00Z\nZ,smb,2024-09-30T12:00:00Z",
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS,A,2024-01-01,,100",
        },
    )
    wb = open_workbook(str(src), "all", "2024-09", interactive=False)
    assert math.isnan(wb.value("customer_lifetime_value").value)  # churn 0 -> n/a, not infinity


def test_survival_ltv_by_hand(revenue_wb):
    # first spells: A1 5 months censored, A2 1 month churned, A3 2 months churned, A4 and A5 5 censored.
    # Kaplan-Meier: S(1) = 4/5 = 0.8, S(2) = 0.8 x 3/4 = 0.6, flat to the 60-month horizon.
    # expected lifetime = 1 x 1 + 1 x 0.8 + 58 x 0.6 = 36.6 months; x ARPA 140 x margin 0.8 = 4099.2
    assert revenue_wb.value("survival_lifetime_value").value == pytest.approx(4099.2)


def test_trailing_twelve_month_retention(tmp_path):
    src = write_source(
        tmp_path / "t12",
        {
            "accounts": """
            account_id,segment,created_at
            A,smb,2024-01-01T00:00:00Z
            B,smb,2024-01-01T00:00:00Z
            C,smb,2024-06-01T00:00:00Z
            D,smb,2024-01-01T00:00:00Z
            Z,smb,2025-01-31T12:00:00Z
        """,
            "subscriptions": """
            subscription_id,account_id,start_date,end_date,amount
            A1,A,2024-01-01,2024-07-01,100
            A2,A,2024-07-01,,150
            B1,B,2024-01-01,2024-05-01,100
            C1,C,2024-06-01,,500
            D1,D,2024-01-01,2024-03-01,200
            D2,D,2024-03-01,,100
        """,
        },
    )
    wb = open_workbook(str(src), "all", "2025-01", interactive=False)
    # paying at end of Jan 2024: A 100, B 100, D 200 = 400; C (new since) is left out
    # NRR Jan 2025 = (A 150 + B 0 + D 100) / 400 = 0.625; GRR = (min 100 + 0 + min 100) / 400 = 0.5
    nrr = wb.value("net_revenue_retention")
    assert nrr.value == pytest.approx(0.625) and nrr.n == 3
    assert wb.value("gross_revenue_retention").value == pytest.approx(0.5)
    assert wb.series("net_revenue_retention").month.min() == pd.Timestamp("2025-01")  # needs 12 months of history


def test_segment_file_restricts_accounts(revenue_source):
    wb = open_workbook(str(revenue_source), "smb", "2024-05", interactive=False)
    # smb = A1 150 + A2 60 + A5 120 + 30 = 360 at end of May
    assert wb.value("monthly_recurring_revenue").value == pytest.approx(360)
    ent = open_workbook(str(revenue_source), "enterprise", "2024-03", interactive=False)
    assert ent.value("monthly_recurring_revenue").value == pytest.approx(100)
    assert ent.target("net_mrr_churn_rate") == 0.01  # enterprise.yaml overrides the target


def test_fx_moves_are_not_mrr_movements(revenue_wb):
    acc = revenue_wb.table("account_mrr")
    a5 = acc[acc.account_id == "A5"].mrr.tolist()
    assert a5 == [120, 150, 150, 150, 150]  # EUR always at the latest reference rate 1.20; +30 USD add-on
