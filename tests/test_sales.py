"""The sales team (metrics/sales.py) on a literal source, every expectation by hand.

The revenue story of conftest (Jan-May 2024) and the unit-economics spend (tests/test_unit_economics.py), plus:
  team: T1 AE from 2023 (no ramp); T2 AE from Feb 2024 with a 2-month ramp, leaving May 10; T3 a CSM
    capacity: Jan T1; Feb T1 + T2 (ramp 0.5); Mar, Apr T1 + T2 (1.0); May T1 (T2 gone at the month end)
  leads: L1 Jan organic (self-serve), L2 Jan paid_search, L3 Feb outbound, L4 Mar organic, L5 Mar outbound,
    L6 Mar organic (self-serve)
  opportunities: O1 T1 created Feb, won Mar 4000 (A4: first MRR 300 -> new ARR 3600); O2 T2 created Mar, won Apr
    1500 (A3: first MRR 100 -> new ARR 1200); O3 T1 created Apr, lost May; O4 T1 created May, open
  quotas: T1 Mar 3000 + 1000 (two rows add up), Apr 4000, May 4000; T2 Apr 1000, May 1000
  activities: L3 email (Feb 1) then O1 call (Feb 6) and demo (Feb 20) by T1; L5 call (Mar 21) then O2 meeting
    (Mar 25) and demo (Mar 28) by T2; L2 call by T1 (Mar 30); a CSM's call (not counted); one in June (after
    the data)
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import REVENUE_TABLES, page_html, write_source
from test_unit_economics import SPEND

from saaskpi.workbook import open_workbook

SALES_TABLES = {
    "team": """
        member_id,role,start_date,end_date,name,ramp_months,segment
        T1,ae,2023-01-01,,Ann,0,smb
        T2,ae,2024-02-01,2024-05-10,Bob,2,smb
        T3,csm,2023-01-01,,Cat,0,smb
    """,
    "leads": """
        lead_id,created_at,channel,segment,pql_at,account_id,converted_at
        L1,2024-01-05T00:00:00Z,organic,smb,,A1,2024-01-10T00:00:00Z
        L2,2024-01-20T00:00:00Z,paid_search,smb,,,
        L3,2024-02-03T00:00:00Z,outbound,mid_market,,A4,
        L4,2024-03-15T00:00:00Z,organic,smb,,,
        L5,2024-03-20T00:00:00Z,outbound,enterprise,,A3,
        L6,2024-03-02T00:00:00Z,organic,smb,,,
    """,
    "opportunities": """
        opportunity_id,created_at,stage,amount,lead_id,account_id,owner_id,closed_at
        O1,2024-02-05T00:00:00Z,won,4000,L3,A4,T1,2024-03-10T00:00:00Z
        O2,2024-03-22T00:00:00Z,won,1500,L5,A3,T2,2024-04-15T00:00:00Z
        O3,2024-04-02T00:00:00Z,lost,500,L2,,T1,2024-05-03T00:00:00Z
        O4,2024-05-06T00:00:00Z,proposal,800,L4,,T1,
    """,
    "quotas": """
        member_id,month,quota
        T1,2024-03-01,3000
        T1,2024-03-01,1000
        T1,2024-04-01,4000
        T2,2024-04-01,1000
        T1,2024-05-01,4000
        T2,2024-05-01,1000
    """,
    "sales_activities": """
        activity_id,member_id,type,occurred_at,lead_id,opportunity_id,account_id
        SA1,T1,email,2024-02-01T10:00:00Z,L3,,
        SA2,T1,call,2024-02-06T10:00:00Z,,O1,A4
        SA3,T1,demo,2024-02-20T10:00:00Z,,O1,A4
        SA4,T2,call,2024-03-21T10:00:00Z,L5,,
        SA5,T2,meeting,2024-03-25T10:00:00Z,,O2,A3
        SA6,T2,demo,2024-03-28T10:00:00Z,,O2,
        SA7,T1,call,2024-03-30T10:00:00Z,L2,,
        SA8,T3,call,2024-03-05T10:00:00Z,,,A1
        SA9,T1,email,2024-06-02T10:00:00Z,,,
    """,
}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_source(tmp_path_factory.mktemp("sales") / "s", {**REVENUE_TABLES, "spend": SPEND, **SALES_TABLES})


@pytest.fixture(scope="module")
def wb(source):
    return open_workbook(str(source), "all", "2024-05", interactive=False)


def values(wb, name):
    s = wb.series(name)
    return dict(zip(s.month.dt.strftime("%Y-%m"), s.value))


def test_cost_per_lead_by_channel_and_blended(wb):
    t = wb.table("cost_per_lead_by_channel").set_index(["month", "channel"])
    jan = t.loc["2024-01-01"]
    # January S&M after allocation: organic 1000 + 200 (its two new customers' share of the untagged 400),
    # outbound 600 + 100, paid_search 100; leads: L1 organic, L2 paid_search
    assert jan.loc["organic"].cost_per_lead == pytest.approx(1200)
    assert jan.loc["paid_search"].cost_per_lead == pytest.approx(100)
    assert jan.loc["outbound"].sm_spend == pytest.approx(700) and math.isnan(jan.loc["outbound"].cost_per_lead)
    # April's 120 reached no channel (no new customer): its own untagged row
    assert t.loc[("2024-04-01", "untagged")].sm_spend == pytest.approx(120)
    cpl = values(wb, "cost_per_lead")
    assert cpl["2024-01"] == pytest.approx(2000 / 2)
    assert cpl["2024-02"] == pytest.approx(500 / 1)  # L3
    assert cpl["2024-03"] == pytest.approx(250 / 3)  # L4, L5, L6
    assert math.isnan(cpl["2024-04"])  # 120 spent, no lead
    # identity: the channels' spend adds up to the S&M spend of the month
    assert t.sm_spend.groupby(level="month").sum().sum() == pytest.approx(2870)


def test_quota_attainment_per_rep_and_team(wb):
    q = wb.table("quota_attainment_by_rep").set_index(["month", "member_id"])
    mar = q.loc[("2024-03-01", "T1")]
    assert (mar.quota, mar.attained, mar.attainment) == (4000, 4000, 1.0)  # 3000 + 1000; O1 won 4000
    assert math.isnan(q.loc[("2024-03-01", "T2")].quota)  # no quota: attainment n/a
    assert q.loc[("2024-04-01", "T2")].attainment == pytest.approx(1.5)  # O2 1500 / 1000
    assert q.loc[("2024-04-01", "T1")].attainment == 0.0
    assert ("2024-05-01", "T2") not in q.index  # gone by the end of May: the quota row is not counted
    team = values(wb, "quota_attainment")
    # April: (0 + 1500) / (4000 + 1000) = 0.3 = the quota-weighted mean (4000 x 0 + 1000 x 1.5) / 5000
    assert team["2024-04"] == pytest.approx(0.3)
    assert team["2024-05"] == 0.0 and team["2024-03"] == 1.0
    assert math.isnan(team["2024-02"])  # no quota yet
    apr = q.loc["2024-04-01"]
    assert team["2024-04"] == pytest.approx((apr.quota * apr.attainment).sum() / apr.quota.sum())


def test_quota_attainment_on_new_arr(wb):
    q = wb.with_conventions(quota_attainment_basis="new_arr").table("quota_attainment_by_rep")
    q = q.set_index(["month", "member_id"])
    assert q.loc[("2024-03-01", "T1")].attainment == pytest.approx(3600 / 4000)  # A4's first MRR 300 x 12
    assert q.loc[("2024-04-01", "T2")].attainment == pytest.approx(1200 / 1000)  # A3's 100 x 12


def test_activities_per_rep_and_per_opportunity(wb):
    a = wb.table("activities_by_rep").set_index(["month", "member_id"])
    feb = a.loc[("2024-02-01", "T1")]
    # T1 in Feb: an email, a call and a demo; O1 created -> 3 activities per opportunity
    assert (feb.emails, feb.calls, feb.demos, feb.activities, feb.opportunities_created) == (1, 1, 1, 3, 1)
    assert feb.activity_to_opportunity == 3.0
    assert math.isnan(a.loc[("2024-03-01", "T1")].activity_to_opportunity)  # a call, no opportunity created
    assert a.loc[("2024-03-01", "T2")].meetings == 1
    assert "T3" not in a.index.get_level_values("member_id")  # the CSM's call is not sales activity of an AE
    assert a.activities.sum() == 7  # SA1-SA7: the CSM's call and June's email are left out
    per_rep = values(wb, "activities_per_rep")
    assert per_rep["2024-02"] == pytest.approx(3 / 2)  # T1 3, T2 0
    assert per_rep["2024-03"] == pytest.approx(4 / 2)  # T1 1, T2 3
    ratio = values(wb, "activity_to_opportunity_ratio")
    assert ratio["2024-03"] == pytest.approx(4 / 1)  # O2
    assert ratio["2024-04"] == 0.0  # O3 created with no activity that month
    assert values(wb, "demo_calls") == pytest.approx(
        {"2024-01": 0, "2024-02": 1, "2024-03": 1, "2024-04": 0, "2024-05": 0}
    )


def test_trial_starts_are_self_serve_signups(wb):
    # leads without a sales opportunity: L1 (Jan) and L6 (Mar)
    assert values(wb, "trial_starts") == {"2024-01": 1, "2024-02": 0, "2024-03": 1, "2024-04": 0, "2024-05": 0}


def test_sales_by_contact_method(wb):
    t = wb.table("sales_by_contact_method").set_index("method")
    # won Mar-May: O1 first touched by the email on its lead L3 (Feb 1, before the call on O1), O2 by the call
    # on L5 (Mar 21, before the meeting on O2)
    assert t.won.to_dict() == {"call": 1, "email": 1}
    assert t.loc["email"].bookings == 4000 and t.share_of_won.sum() == pytest.approx(1.0)
    by_channel = wb.with_conventions(sales_contact_method_basis="lead_channel").table("sales_by_contact_method")
    assert by_channel.set_index("method").won.to_dict() == {"outbound": 2}  # L3 and L5


def test_rep_turnover(wb):
    t = wb.table("rep_turnover_by_month").set_index("month")
    # May: T1 and T2 on the team on May 1, T2 leaves May 10 -> 1 / 2
    assert (t.loc["2024-05-01"].reps_start, t.loc["2024-05-01"].left) == (2, 1)
    assert t.loc["2024-02-01"].hired == 1 and t.loc["2024-02-01"].reps_start == 1
    assert values(wb, "rep_turnover")["2024-05"] == 0.5
    assert values(wb, "rep_turnover")["2024-04"] == 0.0


def test_sales_hiring_plan(wb):
    p = wb.table("sales_hiring_plan").set_index("horizon_months")
    # bookings Mar-May 4000 + 1500 + 0 = 5500: 1833.33 a month; FTE Mar 2 + Apr 2 + May 1 = 5 -> 1100 per FTE
    # median AE ramp (0, 2) = 1 month; on the team in May: T1 (1.0 at every horizon)
    h3 = p.loc[3]
    assert h3.bookings_now == pytest.approx(5500 / 3) and h3.bookings_per_fte == pytest.approx(1100)
    # 3 months: target 1833.33 x (1 + 0.5 x 3 / 12) = 2062.5 -> 1.875 FTE; gap 0.875 -> 1 hire; / 0.75 -> 2
    assert h3.bookings_target == pytest.approx(2062.5) and h3.fte_needed == pytest.approx(1.875)
    assert (h3.fte_on_team, h3.reps_to_hire, h3.hires_with_failure) == (1.0, 1, 2)
    # 12 months: 2750 -> 2.5 FTE; gap 1.5 -> 2 hires; 2 / 0.75 = 2.67 -> 3
    assert (p.loc[12].fte_needed, p.loc[12].reps_to_hire, p.loc[12].hires_with_failure) == (2.5, 2, 3)


def test_sales_team_section_with_and_without_the_optional_tables(wb, tmp_path, revenue_wb):
    from saaskpi.pages import funnel as page

    html = page_html(page.show_sales_team, wb)
    assert "cost per lead" in html and "attainment" in html and "activities / opportunity" in html
    assert "reps to hire now" in html and "Rep turnover: 1 account executive(s) left" in html
    assert "To see more" not in html
    # without quotas and activities: the rest shows, and the section says what to add
    bare = {k: v for k, v in SALES_TABLES.items() if k not in ("quotas", "sales_activities")}
    source = write_source(tmp_path / "bare", {**REVENUE_TABLES, "spend": SPEND, **bare})
    html = page_html(page.show_sales_team, open_workbook(str(source), "all", "2024-05", interactive=False))
    assert "add a `quotas` table" in html and "add a `sales_activities` table" in html
    assert "reps to hire now" in html and "cost per lead" in html
    # the revenue source alone: only trial-free notes, no error
    html = page_html(page.show_sales_team, revenue_wb)
    assert "add a `team` table" in html and "saaskpi-error" not in html.split("</style>")[-1]


def test_rep_totals_over_the_sales_window(wb):
    from saaskpi.metrics.sales import rep_window_totals

    start, end = pd.Timestamp("2024-03-01"), pd.Timestamp("2024-05-01")  # sales_window_months 3, ending May
    t = rep_window_totals(
        wb.table("sales_capacity"), wb.table("quota_attainment_by_rep"), wb.table("activities_by_rep"), start, end
    ).set_index("member_id")
    assert list(t.index) == ["T1", "T2"]  # the AEs on the team in Mar-May (T3 is a CSM)
    # T1: quotas Mar 3000 + 1000, Apr 4000, May 4000 = 12,000; won O1 4000 (Mar) -> 4000 / 12000
    assert (t.loc["T1"].quota, t.loc["T1"].attained) == (12000, 4000)
    assert t.loc["T1"].attainment == pytest.approx(1 / 3)
    # T2: quota Apr 1000 (May's is not counted: T2 left on May 10, not on the team at May's end); won O2 1500
    assert (t.loc["T2"].quota, t.loc["T2"].attained, t.loc["T2"].attainment) == (1000, 1500, 1.5)
    # activities: T1 the call on L2 (Mar 30), opportunities O3 (Apr) and O4 (May) -> 1 / 2; T2 the call on L5,
    # O2's meeting and demo (Mar), O2 created -> 3 / 1
    assert (t.loc["T1"].activities, t.loc["T1"].opportunities_created, t.loc["T1"].per_opportunity) == (1, 2, 0.5)
    assert (t.loc["T2"].activities, t.loc["T2"].opportunities_created, t.loc["T2"].per_opportunity) == (3, 1, 3.0)
    bare = rep_window_totals(wb.table("sales_capacity"), None, None, start, end)
    assert list(bare.columns) == ["member_id", "name"]  # no quota or activity columns without their tables


def test_cost_per_lead_totals_over_a_window():
    from saaskpi.metrics.sales import cost_per_lead_totals, in_window

    t = pd.DataFrame(
        {
            "month": pd.to_datetime(["2024-02-01", "2024-03-01", "2024-03-01", "2024-04-01", "2024-04-01"]),
            "channel": ["organic", "organic", "paid_search", "paid_search", "events"],
            "sm_spend": [500.0, 300.0, 1000.0, 2000.0, 0.0],
            "leads": [10, 6, 4, 0, 0],
        }
    )
    got = cost_per_lead_totals(in_window(t, pd.Timestamp("2024-03-01"), pd.Timestamp("2024-04-01")))
    # Mar-Apr: organic 300 / 6 = 50; paid_search (1000 + 2000) / 4 = 750; events (no spend, no lead) left out;
    # all 3300 / 10 = 330 (February outside the window)
    assert got.channel.tolist() == ["organic", "paid_search", "all"]
    assert got.cost_per_lead.tolist() == pytest.approx([50.0, 750.0, 330.0])
    assert got.leads.tolist() == [6, 4, 10]
