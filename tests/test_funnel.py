"""Acquisition funnel, sales and activation metrics on a literal source, every expectation by hand.

The revenue story of conftest (accounts A1-A6, Jan-May 2024) plus the funnel below. The workbook's
month is May 2024, so data ends at 2024-06-01 00:00 UTC. With the default 90-day window a cohort
month M is mature when (first day after M) + 90 days <= 2024-06-01: Jan (May 1) and Feb (May 30)
are mature, Mar (Jun 30), Apr and May are immature.

Leads (all UTC):
  L1 smb  organic    signup Jan 10, PQL Jan 15, customer (A1) Apr 9 00:00:00  = signup + 90 d exactly
  L2 smb  paid       signup Jan 10, no PQL (skipped stage), customer (A2) Apr 9 00:00:01 = 1 s too late
  L3 ent  organic    signup Jan 20, customer (A3) Feb 1, PQL Feb 10: PQL after customer (out of order)
  L4 mid  outbound   signup Feb 1, PQL Feb 5; two attempts: O1 (Feb 6, lost Mar 1), O2 (Mar 10, won Apr 1)
  L5 smb  organic    signup Feb 15, nothing after
  L6 ent  partner    signup Apr 2, PQL Apr 3, O3 opened Apr 5, still open at proposal
  (no signup in March: the empty month)
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import REVENUE_TABLES, write_source

from saaskpi import alerts
from saaskpi.errors import ParameterError
from saaskpi.metrics import funnel as f
from saaskpi.workbook import open_workbook

FUNNEL_TABLES = {
    **REVENUE_TABLES,
    "leads": """
        lead_id,created_at,channel,segment,pql_at,account_id,converted_at
        L1,2024-01-10T00:00:00Z,organic,smb,2024-01-15T00:00:00Z,A1,2024-04-09T00:00:00Z
        L2,2024-01-10T00:00:00Z,paid_search,smb,,A2,2024-04-09T00:00:01Z
        L3,2024-01-20T00:00:00Z,organic,enterprise,2024-02-10T00:00:00Z,A3,2024-02-01T00:00:00Z
        L4,2024-02-01T00:00:00Z,outbound,mid_market,2024-02-05T00:00:00Z,A4,
        L5,2024-02-15T00:00:00Z,organic,smb,,,
        L6,2024-04-02T00:00:00Z,partner,enterprise,2024-04-03T00:00:00Z,,
    """,
    "opportunities": """
        opportunity_id,created_at,stage,amount,lead_id,account_id,owner_id,closed_at
        O1,2024-02-06T00:00:00Z,lost,8000,L4,,T1,2024-03-01T00:00:00Z
        O2,2024-03-10T00:00:00Z,won,12000,L4,A4,T2,2024-04-01T00:00:00Z
        O3,2024-04-05T00:00:00Z,proposal,50000,L6,,T2,
    """,
    "web_traffic": """
        month,channel,unique_visitors
        2024-01-01,organic,100
        2024-01-01,paid_search,50
        2024-02-01,organic,80
    """,
    # T1 ramps over 3 months from Jan; T2 joins Mar 15 without ramp; T3 leaves on Apr 1; T4 is a CSM
    "team": """
        member_id,role,start_date,name,segment,end_date,ramp_months,monthly_cost
        T1,ae,2024-01-01,Ann,smb,,3,9000
        T2,ae,2024-03-15,Bob,enterprise,,0,16000
        T3,ae,2023-01-01,Cy,mid_market,2024-04-01,2,12000
        T4,csm,2023-01-01,Di,smb,,0,8000
    """,
    "users": """
        user_id,account_id,created_at,activated_at,referred_by
        U1,A1,2024-01-05T10:00:00Z,2024-01-06T09:00:00Z,
        U2,A1,2024-01-20T00:00:00Z,2024-03-01T00:00:00Z,
        U3,A3,2024-02-03T00:00:00Z,,
        U4,A4,2024-01-01T12:00:00Z,2024-01-02T12:00:00Z,
        U5,A4,2024-02-10T00:00:00Z,2024-02-12T00:00:00Z,U1
        U6,A5,2024-05-09T00:00:00Z,2024-05-10T00:00:00Z,
    """,
    "usage_events": """
        event_time,user_id,account_id,feature,duration_seconds
        2024-01-03T10:00:00Z,U4,A4,reports,60
        2024-01-07T10:00:00Z,U1,A1,reports,60
        2024-01-20T10:00:00Z,U1,A1,dashboards,60
        2024-02-13T10:00:00Z,U5,A4,reports,60
        2024-03-02T10:00:00Z,U2,A1,reports,60
        2024-03-15T10:00:00Z,U4,A4,api,60
        2024-05-12T10:00:00Z,U6,A5,reports,60
        2024-05-20T10:00:00Z,U2,A1,reports,60
    """,
}
JAN, FEB, MAR, APR, MAY = (pd.Timestamp(f"2024-0{m}-01") for m in range(1, 6))


@pytest.fixture
def source(tmp_path):
    return write_source(tmp_path / "funnel", FUNNEL_TABLES)


@pytest.fixture
def wb(source):
    return open_workbook(str(source), "all", "2024-05", interactive=False)


def row(table, month, stage, **by):
    r = table[(table.month == month) & (table.stage == stage)]
    for k, v in by.items():
        r = r[r[k] == v]
    assert len(r) == 1, (month, stage, by)
    return r.iloc[0]


def value(wb, name, month):
    s = wb.series(name)
    return s[s.month == month].iloc[0]


def test_window_boundary_skipped_stage_and_out_of_order(wb):
    t = wb.table("funnel_by_month")
    # Jan signups L1, L2, L3. Signup -> customer: L1 at exactly 90 d counts, L2 at 90 d + 1 s does not,
    # L3 after 12 d counts -> 2 / 3; median days median(90, 12) = 51
    jan = row(t, JAN, f.SIGNUP_CUSTOMER)
    assert (jan.entered, jan.converted) == (3, 2) and jan.conversion_rate == pytest.approx(2 / 3)
    assert jan.median_days == pytest.approx(51) and not jan.immature
    # signup -> PQL in Jan: L1 (5 d) and L3 (21 d); L2 skipped the PQL stage -> 2 / 3, median 13 d
    pql = row(t, JAN, f.SIGNUP_PQL)
    assert (pql.entered, pql.converted, pql.median_days) == (3, 2, 13)
    # PQL -> customer, Feb PQLs: L3 (PQL Feb 10 after becoming a customer Feb 1: out of order, not a
    # conversion) and L4 (Feb 5 -> won Apr 1, 56 d) -> 1 / 2 with one out-of-order entity
    feb = row(t, FEB, f.PQL_CUSTOMER)
    assert (feb.entered, feb.converted, feb.out_of_order) == (2, 1, 1)
    # L2, which skipped the PQL stage, is in no PQL cohort: Jan PQLs are L1 only (converted after 85 d)
    assert (row(t, JAN, f.PQL_CUSTOMER).entered, row(t, JAN, f.PQL_CUSTOMER).converted) == (1, 1)


def test_window_boundary_moves_with_the_window(wb):
    # with an 89-day window L1 (90 d) no longer converts: Jan signup -> customer = L3 only -> 1 / 3
    narrow = wb.with_conventions(conversion_window_days=89).table("funnel_by_month")
    assert row(narrow, JAN, f.SIGNUP_CUSTOMER).converted == 1


def test_repeated_attempts_by_one_lead(wb):
    t = wb.table("funnel_by_month")
    # L4: PQL Feb 5 -> first opportunity O1 Feb 6 (1 d): PQL -> opportunity Feb = L4 of {L3, L4} -> 1 / 2
    assert (row(t, FEB, f.PQL_OPP).entered, row(t, FEB, f.PQL_OPP).converted) == (2, 1)
    # each opportunity is its own attempt: O1 (Feb) lost -> 0 / 1; O2 (Mar) won after 22 d -> 1 / 1
    assert (row(t, FEB, f.OPP_WON).entered, row(t, FEB, f.OPP_WON).converted) == (1, 0)
    assert row(t, MAR, f.OPP_WON).median_days == 22
    # the lead itself converts once: Feb signups L4 (won Apr 1 = 60 d) and L5 -> 1 / 2
    assert row(t, FEB, f.SIGNUP_CUSTOMER).converted == 1


def test_empty_month_is_na_and_immaturity(wb):
    t = wb.table("funnel_by_month")
    mar = row(t, MAR, f.SIGNUP_PQL)  # no signup in March: n/a, never 0
    assert mar.entered == 0 and math.isnan(mar.conversion_rate) and mar.immature
    # Feb: Mar 1 + 90 d = May 30 <= Jun 1 -> mature; Apr: May 1 + 90 d > Jun 1 -> immature
    assert not row(t, FEB, f.SIGNUP_PQL).immature and row(t, APR, f.SIGNUP_PQL).immature
    # at April's end only January's window (Jan 31 + 90 d) has elapsed: the value shown and judged is January's
    v = wb.with_choice(month="2024-04").value("signup_to_pql_rate")
    assert not v.immature and v.month == JAN and v.value == pytest.approx(2 / 3)


def test_rate_metrics(wb):
    assert value(wb, "signups", JAN).value == 3
    assert value(wb, "signup_to_pql_rate", FEB).value == pytest.approx(1 / 2)  # L4 yes, L5 no
    assert value(wb, "lead_conversion_rate", JAN).value == pytest.approx(2 / 3)
    assert value(wb, "pql_to_customer_rate", FEB).value == pytest.approx(1 / 2)
    # self-serve signups (no opportunity ever): Jan L1, L2, L3 -> L1 and L3 paid -> 2 / 3
    assert value(wb, "trial_to_paid_conversion", JAN).value == pytest.approx(2 / 3)
    # visitors: Jan 100 + 50 = 150, 3 signups -> 0.02; Feb 2 / 80 = 0.025; Mar no traffic -> n/a
    assert value(wb, "unique_visitors", JAN).value == 150
    assert value(wb, "visitor_to_signup_rate", JAN).value == pytest.approx(3 / 150)
    assert value(wb, "visitor_to_signup_rate", FEB).value == pytest.approx(2 / 80)
    assert math.isnan(value(wb, "visitor_to_signup_rate", MAR).value)


def test_pqls_time_to_pql_and_growth(wb):
    # PQLs by PQL month: Jan L1 (5 d); Feb L3 (21 d), L4 (4 d); Apr L6 (1 d)
    assert value(wb, "qualified_leads", JAN).value == 1 and value(wb, "qualified_leads", FEB).value == 2
    assert value(wb, "time_to_pql_median_days", FEB).value == pytest.approx(12.5)  # median(21, 4)
    assert value(wb, "time_to_pql_mean_days", FEB).value == pytest.approx(12.5)
    assert value(wb, "qualified_lead_growth", FEB).value == pytest.approx(1.0)  # 2 / 1 - 1
    assert math.isnan(value(wb, "qualified_lead_growth", APR).value)  # Mar had 0 PQLs: n/a, not infinity


def test_revenue_per_lead(wb):
    # Jan cohort: L1 -> A1 first MRR 100 -> ARR 1,200; L3 -> A3 first MRR 1,200/12 = 100 -> 1,200;
    # (2,400) / 3 leads = 800. Feb: L4 -> A4 first MRR 400 x 0.75 = 300 -> 3,600 / 2 leads = 1,800
    assert value(wb, "revenue_per_lead", JAN).value == pytest.approx(800)
    assert value(wb, "revenue_per_lead", FEB).value == pytest.approx(1800)
    assert math.isnan(value(wb, "revenue_per_lead", MAR).value)


def test_period_basis(wb):
    p = wb.with_conventions(funnel_basis="period")
    t = p.table("funnel_by_month")
    # signup -> PQL by PQL date: Jan L1 -> 1 / 3 signups; Feb L3 and L4 -> 2 / 2 signups; never immature
    assert row(t, JAN, f.SIGNUP_PQL).conversion_rate == pytest.approx(1 / 3)
    assert row(t, FEB, f.SIGNUP_PQL).conversion_rate == pytest.approx(1.0)
    assert not t.immature.any() and set(t.basis) == {"period"}
    assert p.value("signup_to_pql_rate").status != "immature"


def test_sales_metrics(wb):
    # closed in Mar: O1 lost -> win rate 0 / 1; Apr: O2 won -> 1 / 1, deal size 12,000, cycle Mar 10 -> Apr 1 = 22 d
    assert value(wb, "win_rate", MAR).value == 0 and value(wb, "win_rate", APR).value == 1
    assert value(wb, "average_deal_size", APR).value == 12000
    assert value(wb, "sales_cycle_median_days", APR).value == 22
    assert value(wb, "sales_cycle_mean_days", APR).value == 22
    assert math.isnan(value(wb, "average_deal_size", MAY).value)
    assert value(wb, "opportunities_created", FEB).value == 1


def test_pipeline_raw_and_weighted(wb):
    pipe = wb.table("pipeline_by_month").set_index("month")
    # Feb end: O1 open (closes Mar 1) -> 8,000; weighted at its outcome (lost = 0) -> 0
    assert tuple(pipe.loc[FEB, ["pipeline_value", "weighted_pipeline_value"]]) == (8000, 0)
    # Mar end: O2 open (closes Apr 1) -> 12,000, since won -> weight 1 -> 12,000
    assert tuple(pipe.loc[MAR, ["pipeline_value", "weighted_pipeline_value"]]) == (12000, 12000)
    # Apr and May end: O3 at proposal -> 50,000 x 0.5 = 25,000
    assert tuple(pipe.loc[MAY, ["pipeline_value", "weighted_pipeline_value"]]) == (50000, 25000)
    assert pipe.loc[JAN, "pipeline_value"] == 0
    with pytest.raises(ParameterError, match="proposal"):
        wb.with_conventions(pipeline_stage_weights={"won": 1.0, "lost": 0.0}).table("pipeline_by_month")


def test_sales_capacity_counts_ramping_reps_by_fraction(wb):
    fte = wb.series("sales_capacity_fte").set_index("month").value
    # Jan: T1 1/3 + T3 1 = 1.333; Feb: 2/3 + 1; Mar: T1 1 + T2 1 + T3 1 = 3; Apr: T3 left Apr 1 -> 2
    assert fte[JAN] == pytest.approx(4 / 3) and fte[FEB] == pytest.approx(5 / 3)
    assert fte[MAR] == 3 and fte[APR] == 2
    # Apr bookings 12,000 / 2 FTE = 6,000 per rep
    assert value(wb, "revenue_per_rep", APR).value == pytest.approx(6000)
    reps = wb.table("sales_by_rep")
    bob = reps[(reps.month == APR) & (reps.member_id == "T2")].iloc[0]
    assert (bob.won, bob.lost, bob.bookings, bob.win_rate) == (1, 0, 12000, 1.0)


def test_activation(wb):
    # Jan new users U1 (activated after 23 h), U2 (after 41 d > 30-d window), U4 (24 h) -> 2 / 3
    assert value(wb, "activation_rate", JAN).value == pytest.approx(2 / 3)
    assert value(wb, "activation_rate", FEB).value == pytest.approx(1 / 2)  # U3 never, U5 after 2 d
    # accounts created in Jan: A1 (first activation after 129 h), A2, A3 (none), A4 (36 h), A5 (none) -> 1 / 5
    assert value(wb, "activation_velocity", JAN).value == pytest.approx(1 / 5)
    assert wb.with_conventions(activation_hours=130).series("activation_velocity").value.iloc[0] == pytest.approx(2 / 5)
    # time to value, accounts first activated in Jan: A1 5.375 d, A4 1.5 d -> median 3.4375
    assert value(wb, "time_to_value_days", JAN).value == pytest.approx(3.4375)


def test_new_user_churn_and_viral_coefficient(wb):
    # Jan activations: U1 (last seen Jan 20, within 30 d of Jan 6: churned), U4 (seen Mar 15: stayed) -> 1 / 2
    assert value(wb, "new_user_churn_rate", JAN).value == pytest.approx(1 / 2)
    assert value(wb, "new_user_churn_rate", FEB).value == 1  # U5 last seen the day after activation
    assert value(wb, "new_user_churn_rate", MAR).value == 0  # U2 seen again May 20
    # May: U6 last seen May 12, only 20 days of data follow -> undecided -> n/a with n = 0
    may = value(wb, "new_user_churn_rate", MAY)
    assert math.isnan(may.value) and may.n == 0 and may.immature
    # Feb referred signups: U5 -> 1 / Jan monthly active users (U1, U4) = 0.5
    assert value(wb, "viral_coefficient", FEB).value == pytest.approx(0.5)


def test_segment_workbook_keeps_its_leads_and_opportunities(source):
    ent = open_workbook(str(source), "enterprise", "2024-05", interactive=False)
    # enterprise: L3 (account A3) and L6 (no account yet, lead segment enterprise); O3 via L6
    assert sorted(ent.table("lead_journey").lead_id) == ["L3", "L6"]
    assert ent.table("pipeline_by_month").set_index("month").loc[MAY, "pipeline_value"] == 50000
    assert value(ent, "signups", JAN).value == 1
    # team: the enterprise AE only (T2 from Mar)
    assert value(ent, "sales_capacity_fte", MAR).value == 1


def test_breakdown_tables(wb):
    ch = wb.table("funnel_by_channel")
    # Jan signup -> customer by channel: organic L1, L3 -> 2 / 2; paid_search L2 -> 0 / 1
    assert row(ch, JAN, f.SIGNUP_CUSTOMER, channel="organic").conversion_rate == 1
    assert row(ch, JAN, f.SIGNUP_CUSTOMER, channel="paid_search").conversion_rate == 0
    assert row(ch, JAN, f.VISITOR_SIGNUP, channel="organic").entered == 100
    seg = wb.table("funnel_by_segment")
    assert row(seg, FEB, f.SIGNUP_PQL, segment="mid_market").converted == 1


def test_missing_funnel_tables_are_one_sentence(tmp_path):
    wb = open_workbook(str(write_source(tmp_path / "rev", REVENUE_TABLES)), "all", "2024-05", interactive=False)
    v = wb.value("signups")
    assert math.isnan(v.value) and v.note == "needs leads"


# --------------------------------------------------------------------------- alerts
def test_alert_moves_and_conditions():
    s = pd.DataFrame(
        {
            "month": pd.date_range("2024-01-01", periods=7, freq="MS"),
            "value": [0.10, 0.10, 0.10, 0.12, 0.12, 0.12, 0.5],
            "n": 1,
            "immature": [False] * 6 + [True],
        }
    )
    # the immature last month is skipped: earlier mean 0.10, recent mean 0.12 -> +20 %
    earlier, recent = alerts.move(s, 3)
    assert (earlier, recent) == pytest.approx((0.10, 0.12))
    assert alerts.holds(alerts.Condition("x", "rising"), earlier, recent)
    assert not alerts.holds(alerts.Condition("x", "falling"), earlier, recent)
    assert not alerts.holds(alerts.Condition("x", "rising", min_change=0.25), earlier, recent)
    assert math.isnan(alerts.move(s.head(4), 3)[0])  # too few months: never fires


def test_alert_rules_are_validated(tmp_path):
    good = alerts.rules()
    assert {r.name for r in good} >= {"signups_outpace_qualification", "faster_qualification_weaker_close"}
    bad = tmp_path / "alerts.yaml"
    bad.write_text("r1:\n  when:\n    - {metric: no_such_metric, trend: rising}\n  message: hi\n")
    with pytest.raises(ParameterError, match="no_such_metric"):
        alerts.rules(bad)
    bad.write_text("r1:\n  when:\n    - {metric: signups, trend: up}\n  message: hi\n")
    with pytest.raises(ParameterError, match="rising or falling"):
        alerts.rules(bad)


def test_alert_fires_on_the_workbook(wb):
    rule = alerts.Rule("t", "signups rose", (alerts.Condition("signups", "rising", months=1),))
    # signups: Apr 1 (L6), May 0 -> falling, so a rising rule does not fire; a falling one does
    assert alerts.evaluate(wb, [rule]) == []
    falling = alerts.Rule("t", "signups fell", (alerts.Condition("signups", "falling", months=1),))
    fired = alerts.evaluate(wb, [falling])
    assert fired[0].evidence == (("signups", 1.0, 0.0),)


# --------------------------------------------------------------------------- the demo company
def test_demo_funnel_recovers_configured_rates_and_cycles(demo_source):
    """The generator's lead-to-PQL and PQL-to-customer rates and median sales cycles come back from
    the data: with a 365-day window every configured conversion falls inside it, and mature cohorts
    from the seventh month on are summed (the first months hold leads of pre-period customers)."""
    import json

    truth = json.loads((demo_source / "ground_truth.json").read_text())["segments"]
    wb = open_workbook(str(demo_source), "all", interactive=False).with_conventions(conversion_window_days=365)
    t = wb.table("funnel_by_segment")
    t = t[~t.immature & (t.month >= t.month.min() + pd.DateOffset(months=6))]
    sums = t.groupby(["segment", "stage"])[["entered", "converted"]].sum()
    rate = sums.converted / sums.entered
    for segment, cfg in truth.items():
        assert rate[(segment, f.SIGNUP_PQL)] == pytest.approx(cfg["lead_to_pql_rate"], abs=0.04), segment
        assert rate[(segment, f.PQL_CUSTOMER)] == pytest.approx(cfg["pql_to_customer_rate"], abs=0.04), segment
        if segment != "smb":  # self-serve: no sales opportunities
            seg = open_workbook(str(demo_source), segment, interactive=False)
            won = seg.table("opportunity_outcomes").query("outcome == 'won'")
            assert won.cycle_days.median() == pytest.approx(cfg["sales_cycle_median_days"], rel=0.15), segment
