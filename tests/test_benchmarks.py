"""Peer benchmarks: percentiles and peer medians by hand (ties, too few peers), lifecycle stages and the
account metrics on a literal source (month: May 2024, 31 days; data ends Jun 1 00:00 UTC).

  B1 smb  paying since Jan (age 4 months), 4 seats, users U1-U4: U1 active May 1 and 2, U2 May 1, U3 May 3
  B2 smb  paying since Apr (age 1 month: onboarding), 2 seats, U5 active May 5
  B3 smb  annual contract from 2023-06-15 (term ends 2024-06-15, 15 days after May 31: renewal), 10 seats,
          U6 and U7 active May 10
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import page_html, write_source

from saaskpi.pages import benchmarks as page
from saaskpi.stats import peer_stats
from saaskpi.workbook import open_workbook

TABLES = {
    "accounts": """
        account_id,segment,created_at,account_name
        B1,smb,2024-01-01T00:00:00Z,Bee One
        B2,smb,2024-04-01T00:00:00Z,Bee Two
        B3,smb,2023-06-01T00:00:00Z,Bee Three
    """,
    "subscriptions": """
        subscription_id,account_id,start_date,end_date,amount,billing_period_months,seats
        S1,B1,2024-01-01,,100,1,4
        S2,B2,2024-04-01,,100,1,2
        S3,B3,2023-06-15,,1200,12,10
    """,
    "users": """
        user_id,account_id,created_at
        U1,B1,2024-01-01T00:00:00Z
        U2,B1,2024-01-01T00:00:00Z
        U3,B1,2024-01-01T00:00:00Z
        U4,B1,2024-01-01T00:00:00Z
        U5,B2,2024-04-01T00:00:00Z
        U6,B3,2023-06-15T00:00:00Z
        U7,B3,2023-06-15T00:00:00Z
    """,
    "usage_events": """
        event_time,user_id,account_id,feature
        2024-05-01T09:00:00Z,U1,B1,reports
        2024-05-01T10:00:00Z,U1,B1,reports
        2024-05-02T09:00:00Z,U1,B1,api
        2024-05-01T09:00:00Z,U2,B1,reports
        2024-05-03T09:00:00Z,U3,B1,reports
        2024-04-30T23:59:59Z,U4,B1,reports
        2024-05-05T09:00:00Z,U5,B2,reports
        2024-05-10T09:00:00Z,U6,B3,reports
        2024-05-10T09:00:00Z,U7,B3,reports
        2024-05-31T23:00:00Z,U7,B3,reports
    """,
    "nps_responses": """
        response_id,account_id,responded_at,score
        N1,B1,2024-05-10T00:00:00Z,10
        N2,B1,2024-05-11T00:00:00Z,3
        N3,B3,2024-04-01T00:00:00Z,9
    """,
    "support_tickets": """
        ticket_id,account_id,created_at,priority
        T1,B1,2024-04-20T00:00:00Z,normal
        T2,B1,2024-05-20T00:00:00Z,high
        T3,B3,2024-02-01T00:00:00Z,low
    """,
}


@pytest.fixture
def wb(tmp_path):
    return open_workbook(str(write_source(tmp_path / "b", TABLES)), "all", "2024-05", interactive=False)


def test_peer_stats_with_ties_and_too_few_peers():
    frame = pd.DataFrame({"group": ["a"] * 5 + ["b"] * 2 + ["a"], "value": [1, 2, 2, 4, 5, 7, 8, None]})
    out = peer_stats(frame, min_peers=5)
    a = out.iloc[:5]
    # group a: 1, 2, 2, 4, 5 -> p25 2, median 2, p75 4 (linear interpolation)
    assert a.p25.tolist() == [2.0] * 5 and a["median"].tolist() == [2.0] * 5 and a.p75.tolist() == [4.0] * 5
    # mid-rank percentiles: 1 -> (0 + 0.5) / 5 = 10; the two 2s -> (1 + 1) / 5 = 40 each; 4 -> 70; 5 -> 90
    assert a.percentile.tolist() == pytest.approx([10, 40, 40, 70, 90])
    assert a.gap.tolist() == [-1.0, 0.0, 0.0, 2.0, 3.0]
    b = out.iloc[5:7]  # two peers < 5: flagged, not compared
    assert (~b.compared).all() and b["median"].isna().all() and b.peers.tolist() == [2, 2]
    assert out.iloc[7].peers == 0 and not out.iloc[7].compared  # no value: not a peer


def test_account_metrics(wb):
    def values(name):
        return wb.table(name).set_index("account_id").value

    util = values("licence_utilisation")
    # B1: U1, U2, U3 active in May (U4's event is Apr 30) -> 3 / 4 seats; B2 1 / 2; B3 2 / 10
    assert util.to_dict() == pytest.approx({"B1": 0.75, "B2": 0.5, "B3": 0.2})
    # B1 user-days 2 + 1 + 1 = 4 -> mean DAU 4 / 31, over MAU 3
    assert values("account_dau_mau")["B1"] == pytest.approx(4 / 31 / 3)
    nps = values("account_nps")
    assert nps["B1"] == pytest.approx(0.0)  # one promoter, one detractor
    assert nps["B3"] == pytest.approx(100.0)  # Apr 1 is inside the 90 days to Jun 1
    assert math.isnan(nps["B2"])  # no answer: n/a
    tickets = values("tickets_per_seat")
    assert tickets["B1"] == pytest.approx(0.5) and tickets["B3"] == 0.0  # T3 (Feb 1) is older than 90 days


def test_lifecycle_stages(wb):
    stages = wb.table("lifecycle_stages").set_index("account_id").stage
    # B3's term ends 15 days after the month end: renewal wins over everything
    assert stages.to_dict() == {"B1": "training", "B2": "onboarding", "B3": "renewal"}
    later = wb.with_conventions(onboarding_months=1, training_months=2, extending_utilisation=0.7)
    assert later.table("lifecycle_stages").set_index("account_id").stage.to_dict() == {
        "B1": "extending",
        "B2": "training",
        "B3": "renewal",
    }  # B1 age 4, 0.75 >= 0.7; B2 age 1: 1 <= 1 < 2
    renewals = wb.table("renewals_due")
    assert renewals.term_end.tolist() == [pd.Timestamp("2024-06-15")] and renewals.days_to_renewal.tolist() == [15]


def test_peer_benchmarks_flag_small_groups(wb):
    pb = wb.table("peer_benchmarks")
    assert set(pb.metric) == {
        "licence_utilisation",
        "account_dau_mau",
        "account_nps",
        "tickets_per_seat",
        "engagement_score",
        "health_score",
    }
    assert not pb.compared.any()  # every group has one account < min_peers 5
    alone = wb.with_conventions(min_peers=1).table("peer_benchmarks")
    row = alone[(alone.account_id == "B1") & (alone.metric == "licence_utilisation")].iloc[0]
    assert row.compared and row.percentile == pytest.approx(50) and row["median"] == pytest.approx(0.75)


def test_sentences_and_sections(wb):
    head, panels = page.account_view(wb, "B1")
    assert "Bee One" in head and "only 1 smb accounts in training have a value" in head and panels == []
    with pytest.raises(Exception, match="not a paying account"):
        page.account_view(wb, "NOPE")
    row = pd.Series(
        {
            "value": 0.3,
            "compared": True,
            "percentile": 62.0,
            "peers": 40,
            "segment": "mid_market",
            "stage": "onboarding",
            "median": 0.3,
            "p25": 0.2,
            "p75": 0.41,
        }
    )
    assert page.sentence(row, "Licence utilisation", "fraction") == (
        "Licence utilisation 30.0% is the 62nd percentile of 40 mid_market accounts in onboarding "
        "(median 30.0%, middle half 20.0%–41.0%)."
    )
    for func in (
        page.show_header,
        page.show_account_vs_peers,
        page.show_peer_groups,
        page.show_targets,
        page.show_trends,
    ):
        assert "Something went wrong" not in page_html(func, wb), func.__name__
