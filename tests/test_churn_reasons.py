"""Churn reasons, upsell and cross-sell, expansion candidates (issue 25, item 5): every expectation computed by hand
from the literal source below (as_of April 2024: C9, created Apr 30 without a subscription, ends the data).

  C1 smb        basic   100/mo Jan 1 - Mar 10               -> churn 100 in Mar
  C2 smb        pro     200/mo Jan 1 - Feb 15, 150 from Feb 15 -> contraction 50 in Feb
  C3 enterprise core    1000/mo from Jan 1, + analytics 100 from Mar 1 -> expansion 100 in Mar (kept core: cross-sell)
  C4 enterprise core    500/mo Jan 1 - Mar 1, premium 800 from Mar 1   -> expansion 300 in Mar (core dropped: upsell)
  C5 mid_market core    300/mo Jan 1 - Apr 1                -> churn 300 in Apr
  C6 smb        basic   100/mo Jan 1 - Feb 1                -> churn 100 in Feb
  MRR at the end of Feb = C1 100 + C2 150 + C3 1000 + C4 500 + C5 300 = 2050 (the start of March).

  churn_reasons (window 60 days):
    C1 " Price" on Mar 12 (in March: distance 0) and "missing feature" on Jan 1 (Mar 1 - Jan 1 = 60 days): price wins
    C2 "PRICE" on Feb 20 (in February)
    C5 "Budget cuts" on Mar 5 (Apr 1 - Mar 5 = 27 days before April)
    C6 "price" on 2023-10-01 (Feb 1 - Oct 1 = 123 days > 60): no reason recorded
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import page_html, write_source

from saaskpi.metrics.churn_reasons import NO_REASON, match_reasons, normalised_reason, split_expansion
from saaskpi.pages import cs_load
from saaskpi.workbook import open_workbook

TABLES = {
    "accounts": """
        account_id,segment,created_at,account_name,csm_id
        C1,smb,2024-01-01T00:00:00Z,One,K1
        C2,smb,2024-01-01T00:00:00Z,Two,K1
        C3,enterprise,2024-01-01T00:00:00Z,Three,K1
        C4,enterprise,2024-01-01T00:00:00Z,Four,K1
        C5,mid_market,2024-01-01T00:00:00Z,Five,
        C6,smb,2024-01-01T00:00:00Z,Six,
        C9,smb,2024-04-30T12:00:00Z,End,
    """,
    "subscriptions": """
        subscription_id,account_id,start_date,end_date,amount,billing_period_months,currency,discount_pct,seats,plan
        S1,C1,2024-01-01,2024-03-10,100,1,USD,0,2,basic
        S2,C2,2024-01-01,2024-02-15,200,1,USD,0,4,pro
        S3,C2,2024-02-15,,150,1,USD,0,3,pro
        S4,C3,2024-01-01,,1000,1,USD,0,10,core
        S5,C3,2024-03-01,,100,1,USD,0,10,analytics
        S6,C4,2024-01-01,2024-03-01,500,1,USD,0,5,core
        S7,C4,2024-03-01,,800,1,USD,0,5,premium
        S8,C5,2024-01-01,2024-04-01,300,1,USD,0,3,core
        S9,C6,2024-01-01,2024-02-01,100,1,USD,0,1,basic
    """,
    "team": """
        member_id,role,start_date,name
        K1,csm,2023-01-01,Kim
    """,
    "support_tickets": """
        ticket_id,account_id,created_at,priority,first_response_at,resolved_at,contacts
        T1,C3,2024-04-02T08:00:00Z,normal,2024-04-02T09:00:00Z,2024-04-02T20:00:00Z,1
        T2,C4,2024-04-10T08:00:00Z,normal,2024-04-10T09:00:00Z,2024-04-11T08:00:00Z,2
        T3,C4,2024-04-20T08:00:00Z,normal,2024-04-20T09:00:00Z,,
    """,
    "cs_touchpoints": """
        touchpoint_id,account_id,occurred_at,csm_id,kind,sentiment
        P1,C3,2024-03-05T10:00:00Z,K1,call,positive
        P2,C3,2024-03-20T10:00:00Z,K1,qbr,neutral
        P3,C4,2024-03-21T10:00:00Z,K1,call,negative
        P4,C4,2024-04-02T10:00:00Z,K1,,
    """,
}
REASONS = """
    account_id,subscription_id,recorded_on,reason,comment
    C1,S1,2024-03-12, Price,Too expensive
    C1,,2024-01-01,missing feature,
    C2,S2,2024-02-20,PRICE,
    C5,S8,2024-03-05,Budget cuts,Frozen
    C6,,2023-10-01,price,
"""
FEB, MAR, APR = (pd.Timestamp(f"2024-{m:02d}-01") for m in (2, 3, 4))


@pytest.fixture(scope="module")
def wb(tmp_path_factory):
    folder = write_source(tmp_path_factory.mktemp("churn") / "src", {**TABLES, "churn_reasons": REASONS})
    return open_workbook(str(folder), "all", "2024-04", interactive=False)


@pytest.fixture(scope="module")
def wb_without(tmp_path_factory):
    folder = write_source(tmp_path_factory.mktemp("churn_none") / "src", TABLES)
    return open_workbook(str(folder), "all", "2024-04", interactive=False)


def test_reasons_are_grouped_in_lower_case_trimmed():
    assert normalised_reason(pd.Series([" Price", "PRICE ", "", None])).tolist() == [
        "price",
        "price",
        NO_REASON,
        NO_REASON,
    ]


def test_nearest_reason_within_the_window_wins_and_a_tie_takes_the_later_answer():
    moves = pd.DataFrame({"account_id": ["A", "A", "B"], "month": [MAR, APR, MAR]})
    reasons = pd.DataFrame(
        {
            "account_id": ["A", "A", "B"],
            # A: Feb 20 is 9 days before March (Mar 1 - Feb 20), Apr 5 is 5 days after it (Apr 5 - Mar 31): Apr 5
            # wins for March; for April, Apr 5 is inside (0). B: Jan 1 is 60 days before March: inside a 60-day window
            "recorded_on": pd.to_datetime(["2024-02-20", "2024-04-05", "2024-01-01"]),
            "reason": ["price", "budget", "support"],
            "comment": [None, "cut", None],
        }
    )
    got = match_reasons(moves, reasons, 60)
    assert got.reason.tolist() == ["budget", "budget", "support"]
    assert match_reasons(moves, reasons, 59).reason.tolist() == ["budget", "budget", NO_REASON]
    # a tie (both 0 days: inside the month) takes the later answer
    tie = pd.DataFrame(
        {
            "account_id": ["A", "A"],
            "recorded_on": pd.to_datetime(["2024-03-02", "2024-03-30"]),
            "reason": ["price", "budget"],
            "comment": [None, None],
        }
    )
    assert match_reasons(moves.head(1), tie, 0).reason.tolist() == ["budget"]


def test_churn_and_contraction_mrr_by_reason(wb):
    t = wb.table("churn_by_reason").set_index(["month", "reason"])
    # Feb: C6 churn 100 (its answer is 123 days away: none), C2 contraction 50 (PRICE on Feb 20)
    assert t.loc[(FEB, NO_REASON)].churn_mrr == pytest.approx(100.0)
    assert t.loc[(FEB, "price")].contraction_mrr == pytest.approx(50.0)
    assert t.loc[(FEB, "price")].churn_mrr == 0.0
    # Mar: C1 churn 100; " Price" on Mar 12 (0 days) beats "missing feature" on Jan 1 (60 days)
    assert t.loc[(MAR, "price")].churn_mrr == pytest.approx(100.0)
    assert (MAR, "missing feature") not in t.index
    # Apr: C5 churn 300, "Budget cuts" 27 days before April
    assert t.loc[(APR, "budget cuts")].churn_mrr == pytest.approx(300.0)
    assert t.loc[(APR, "budget cuts")].churned_accounts == 1
    assert len(t) == 4


def test_reasons_add_up_to_the_mrr_bridge(wb):
    """Identity: churn MRR by reason sums to the month's churn MRR, contraction likewise."""
    t = wb.table("churn_by_reason").groupby("month")[["churn_mrr", "contraction_mrr"]].sum()
    m = wb.table("mrr_movements").set_index("month")
    lost = m[(m.churn > 0) | (m.contraction > 0)]
    assert list(t.index) == list(lost.index)
    np.testing.assert_allclose(t.churn_mrr, lost.churn)
    np.testing.assert_allclose(t.contraction_mrr, lost.contraction)


def test_reasons_by_segment_over_twelve_months(wb):
    t = wb.table("churn_reasons_by_segment").set_index(["segment", "reason"])
    # smb: price = C1 churn 100 + C2 contraction 50 = 150 of 250 lost (C6's 100 has no reason): 0.6
    assert t.loc[("smb", "price")].lost_mrr == pytest.approx(150.0)
    assert t.loc[("smb", "price")].accounts == 2
    assert t.loc[("smb", "price")].share_of_segment == pytest.approx(0.6)
    assert t.loc[("smb", NO_REASON)].share_of_segment == pytest.approx(0.4)
    assert t.loc[("mid_market", "budget cuts")].share_of_segment == pytest.approx(1.0)


def test_churn_reason_coverage(wb):
    s = wb.series("churn_reason_coverage").set_index("month")
    assert s.loc[FEB].value == pytest.approx(50 / 150)  # C2's 50 explained, C6's 100 not
    assert s.loc[FEB].n == 2
    assert s.loc[MAR].value == pytest.approx(1.0)
    assert s.loc[APR].value == pytest.approx(1.0)


def test_split_expansion_rules():
    # more seats on the same plan: upsell
    assert split_expansion(50.0, {"pro": 100.0}, {"pro": 150.0}) == (50.0, 0.0)
    # a plan added beside the one kept: cross-sell
    assert split_expansion(100.0, {"core": 1000.0}, {"core": 1000.0, "analytics": 100.0}) == (0.0, 100.0)
    # a plan added (80) while the kept one shrank by 30: expansion 50, cross-sell capped at 50
    assert split_expansion(50.0, {"core": 100.0}, {"core": 70.0, "analytics": 80.0}) == (0.0, 50.0)
    # a plan added (40) and 20 more on the kept one: cross 40, upsell 60 - 40 = 20
    assert split_expansion(60.0, {"core": 100.0}, {"core": 120.0, "analytics": 40.0}) == (20.0, 40.0)
    # a plan replaced by a dearer one (core 500 -> premium 800): an upgrade, upsell
    assert split_expansion(300.0, {"core": 500.0}, {"premium": 800.0}) == (300.0, 0.0)
    assert split_expansion(0.0, {"core": 1.0}, {"core": 1.0}) == (0.0, 0.0)


def test_upsell_and_cross_sell(wb):
    e = wb.table("expansion_movements").set_index("account_id")
    assert e.loc["C3"].cross_sell == pytest.approx(100.0) and e.loc["C3"].upsell == 0.0
    assert e.loc["C3"].plans_after == "analytics, core"
    assert e.loc["C4"].upsell == pytest.approx(300.0) and e.loc["C4"].cross_sell == 0.0
    up = wb.series("upsell_mrr").set_index("month")
    cross = wb.series("cross_sell_mrr").set_index("month")
    assert up.loc[MAR].value == pytest.approx(300.0) and up.loc[MAR].n == 1
    assert cross.loc[MAR].value == pytest.approx(100.0) and cross.loc[MAR].n == 1
    # rates over MRR at the end of Feb, 2050
    assert wb.series("upsell_rate").set_index("month").loc[MAR].value == pytest.approx(300 / 2050)
    assert wb.series("cross_sell_rate").set_index("month").loc[MAR].value == pytest.approx(100 / 2050)


def test_upsell_and_cross_sell_add_up_to_expansion(wb):
    """Identity: upsell + cross-sell = expansion MRR, and their rates add up to the MRR expansion rate."""
    m = wb.table("mrr_movements")
    total = wb.series("upsell_mrr").value + wb.series("cross_sell_mrr").value
    np.testing.assert_allclose(total, m.expansion)
    rates = wb.series("upsell_rate").value + wb.series("cross_sell_rate").value
    np.testing.assert_allclose(rates.dropna(), wb.series("mrr_expansion_rate").value.dropna())


def test_expansion_candidates_follow_the_settings(wb):
    s = wb.success_settings()
    h = wb.table("account_health").set_index("account_id")
    stages = wb.table("lifecycle_stages").set_index("account_id")
    loose = dataclasses.replace(s, expansion_min_health=0.0, expansion_utilisation=0.0, falling_points=1000.0)
    from saaskpi.metrics.churn_reasons import expansion_candidates

    args = (wb.as_of, loose, wb.table("account_health"), wb.table("account_stages"), wb.table("account_months"))
    everyone = expansion_candidates(*args)
    # without usage events utilisation is unknown: only an "extending" account could qualify, and none is
    assert set(everyone.account_id) == set(stages.index[stages.stage == "extending"])
    assert (h.stage == "extending").sum() == 0 and everyone.empty
    assert wb.table("expansion_candidates").empty


def test_csm_service_scorecard(wb):
    card = wb.table("csm_service").set_index("csm_id")
    k = card.loc["K1"]
    assert k.accounts == 3  # C2, C3, C4 pay at the end of April (C1 churned in March)
    assert k.tickets == 3
    assert k.resolution_hours_median == pytest.approx(18.0)  # T1 12 h, T2 24 h; T3 open
    assert k.filter(like="contact").item() == pytest.approx(0.5)  # first-contact resolution: T1 one contact, T2 two


def test_pages_say_what_to_add_without_the_exit_survey(wb_without):
    text = page_html(cs_load.show_churn_reasons, wb_without)
    assert "Add a `churn_reasons` table" in text
    assert "Upsell MRR" in text  # upsell and cross-sell need no survey


def test_page_sections_show_reasons_and_candidates(wb):
    text = page_html(cs_load.show_churn_reasons, wb)
    assert "budget cuts" in text and "MRR lost by reason" in text
    assert "No healthy account" in page_html(cs_load.show_expansion_candidates, wb)
    assert "Kim" in page_html(cs_load.show_csm_service, wb)


def test_expansion_candidates_by_hand(wb):
    """Healthy (>= 70), not falling (a drop of 10+ points), and extending or at >= 80 % of its seats."""
    from saaskpi.metrics.churn_reasons import expansion_candidates

    health = pd.DataFrame(
        {
            "account_id": ["E", "F", "G", "H", "I"],
            "account_name": ["Ext", "Full", "Sick", "Falling", "Idle"],
            "segment": "smb",
            "csm_id": [None, "K1", "K1", "K1", "K1"],
            "stage": ["extending", "renewal", "extending", "adopting", "adopting"],
            "arr": [1200.0, 2400.0, 600.0, 600.0, 600.0],
            "health": [70.0, 90.0, 69.0, 95.0, 95.0],
            "change": [0.0, np.nan, 0.0, -10.0, 0.0],
        }
    )
    stages = pd.DataFrame({"account_id": list("EFGHI"), "key": 24291, "utilisation": [0.5, 0.85, 0.9, 0.9, 0.79]})
    months = pd.DataFrame(
        {"account_id": list("EFGHI"), "key": 24291, "seats": [10.0, 20.0, 5.0, 5.0, 5.0], "term_end": pd.NaT}
    )
    s = dataclasses.replace(wb.success_settings(), expansion_min_health=70.0, expansion_utilisation=0.8)
    got = expansion_candidates(24291, s, health, stages, months)
    # E: extending at health 70 (the edge counts); F: renewal stage but 85 % of its seats; G: health 69;
    # H: fell 10 points (falling_points 10); I: 79 % of its seats, adopting
    assert got.account_id.tolist() == ["F", "E"]  # fullest first
    assert got.why.tolist() == ["uses 85% of its seats", "extending stage"]
    assert got.seats.tolist() == [20.0, 10.0]
