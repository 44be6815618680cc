"""Voice of the customer on a literal source, every expectation by hand (as_of May 2024, window 90 days).

NPS answers (UTC): R5 Feb 1 score 0; R6 Mar 3 00:00 score 10; R1 Mar 5 score 10; R2 Apr 10 score 9;
R3 May 20 score 6; R4 May 31 23:59:59 score 8 (passive).
The May window runs from Mar 3 00:00 (Jun 1 - 90 days, inclusive) to Jun 1 (exclusive).
"""

from __future__ import annotations

import math

import pytest
from conftest import REVENUE_TABLES, write_source

from saaskpi.workbook import open_workbook

VOC_TABLES = {
    **REVENUE_TABLES,
    "nps_responses": """
        response_id,account_id,responded_at,score
        R5,A3,2024-02-01T00:00:00Z,0
        R6,A1,2024-03-03T00:00:00Z,10
        R1,A1,2024-03-05T00:00:00Z,10
        R2,A2,2024-04-10T00:00:00Z,9
        R3,A4,2024-05-20T00:00:00Z,6
        R4,A5,2024-05-31T23:59:59Z,8
    """,
    "support_tickets": """
        ticket_id,account_id,created_at,priority,first_response_at,resolved_at,contacts,csat
        T1,A1,2024-05-02T00:00:00Z,normal,2024-05-02T01:00:00Z,2024-05-03T00:00:00Z,1,5
        T2,A2,2024-05-10T00:00:00Z,high,2024-05-10T02:00:00Z,2024-05-11T00:00:00Z,2,4
        T3,A4,2024-05-11T00:00:00Z,low,,,1,3
        T4,A5,2024-05-12T00:00:00Z,urgent,,,,
        T5,A1,2024-04-30T23:00:00Z,normal,,,1,1
    """,
}


@pytest.fixture
def wb(tmp_path):
    return open_workbook(str(write_source(tmp_path / "voc", VOC_TABLES)), "all", "2024-05", interactive=False)


def by_month(wb, name):
    s = wb.series(name)
    return {m.strftime("%Y-%m"): (v, n) for m, v, n in zip(s.month, s.value, s.n)}


def test_nps_over_a_trailing_window(wb):
    nps = by_month(wb, "net_promoter_score")
    # May: R6, R1, R2 promoters, R3 detractor, R4 passive -> 100 x (3 - 1) / 5 = 40; R5 (Feb 1) is outside
    assert nps["2024-05"] == (pytest.approx(40.0), 5)
    # Apr (window Jan 31 - May 1): R5 detractor, R6, R1, R2 promoters -> 100 x (3 - 1) / 4 = 50
    assert nps["2024-04"] == (pytest.approx(50.0), 4)
    # Feb: only R5 -> -100; Jan: no answer -> n/a, not 0
    assert nps["2024-02"] == (pytest.approx(-100.0), 1)
    assert math.isnan(nps["2024-01"][0]) and nps["2024-01"][1] == 0


def test_nps_window_is_a_convention(wb):
    short = wb.with_conventions(nps_window_days=30)  # May window from May 2: R3 detractor, R4 passive -> -50
    assert by_month(short, "net_promoter_score")["2024-05"] == (pytest.approx(-50.0), 2)


def test_csat_counts_rated_tickets_of_the_month(wb):
    csat = by_month(wb, "customer_satisfaction")
    assert csat["2024-05"] == (pytest.approx(2 / 3), 3)  # T1 5 and T2 4 satisfied, T3 3 not, T4 unrated
    assert csat["2024-04"] == (pytest.approx(0.0), 1)  # T5 rated 1 (Apr 30 23:00 UTC is April)
    assert math.isnan(csat["2024-03"][0])
    v = wb.value("customer_satisfaction")
    assert v.low_n and v.interval[0] < 2 / 3 < v.interval[1]  # 3 ratings: small sample, Wilson interval


def test_without_survey_tables_the_metrics_say_so(revenue_wb):
    assert revenue_wb.value("net_promoter_score").note == "needs nps_responses"
    assert revenue_wb.value("customer_satisfaction").note == "needs support_tickets"
