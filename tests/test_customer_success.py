"""Customer success: health score, lifecycle, renewals, support, relationship, collections, adoption and CS load,
every expectation computed by hand from the literal sources below (as_of May 2024: data ends Jun 1 00:00 UTC).

CS_TABLES (Jan-May 2024; CSMs M1 smb, M2 enterprise, M3 mid_market starting Jun 1, M4 an AE):
  A1 smb        M1   monthly 100 from Jan 1, 4 seats (first paying month Jan: age 4 in May)
  A2 smb        none monthly  50 from Apr 1, 2 seats (age 1)
  A3 enterprise M2   1200 per 12 months from Apr 1, ends Jun 15, 10 seats -> MRR 100, term end Jun 15 (age 1)
  A4 mid_market M1   monthly 300 from Feb 1, 5 seats (age 3)
  MRR at the ends of Apr and May: 100 + 50 + 100 + 300 = 550.

BOOK_TABLES (May 2023 - May 2024; CSMs K1 smb, K2 enterprise):
  R1 enterprise K2 1200 / 12 months from 2023-05-01, open (MRR 100): term ends 2024-05-01 and continues
  R2 enterprise K2 2400 / 12 months 2023-05-01 - 2024-05-01 (MRR 200): not renewed, churns in May 2024
  R3 smb        K1 100 / month from 2023-05-01, + 50 add-on from 2024-01-01 (expansion of 50 in Jan)
  R4 smb        K1 100 / month 2023-05-01 - 2024-03-01: churns in March 2024
  R5 smb        none 50 / month from 2024-02-01
  R9 smb        none, created 2024-05-31 without a subscription: marks the end of the data (May is complete)
  Touchpoints: R1 and R3 every ~3 months (one in every 90-day window from May 2023 to Feb 2024), R3 again May 10.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import write_source

from saaskpi import params, paths
from saaskpi.errors import ParameterError
from saaskpi.metrics.health import roc_auc
from saaskpi.params import HealthComponent, HealthModel
from saaskpi.workbook import open_workbook

CS_TABLES = {
    "team": """
        member_id,role,start_date,name,segment,end_date
        M1,csm,2023-01-01,Mia,smb,
        M2,csm,2023-01-01,Max,enterprise,
        M3,csm,2024-06-01,Mo,mid_market,
        M4,ae,2023-01-01,Al,,
    """,
    "accounts": """
        account_id,segment,created_at,account_name,csm_id
        A1,smb,2024-01-01T00:00:00Z,Acme,M1
        A2,smb,2024-04-01T00:00:00Z,Beta,
        A3,enterprise,2024-04-01T00:00:00Z,Core,M2
        A4,mid_market,2024-02-01T00:00:00Z,Dyna,M1
    """,
    "subscriptions": """
        subscription_id,account_id,start_date,end_date,amount,billing_period_months,currency,discount_pct,seats
        S1,A1,2024-01-01,,100,1,USD,0,4
        S2,A2,2024-04-01,,50,1,USD,0,2
        S3,A3,2024-04-01,2024-06-15,1200,12,USD,0,10
        S4,A4,2024-02-01,,300,1,USD,0,5
    """,
    "users": """
        user_id,account_id,created_at
        U1,A1,2024-01-01T00:00:00Z
        U2,A1,2024-01-01T00:00:00Z
        U3,A1,2024-01-01T00:00:00Z
        U4,A2,2024-04-01T00:00:00Z
        U5,A4,2024-02-01T00:00:00Z
        U6,A3,2024-04-01T00:00:00Z
    """,
    "usage_events": """
        event_time,user_id,account_id,feature,duration_seconds
        2024-02-10T09:00:00Z,U1,A1,reports,600
        2024-03-30T09:00:00Z,U1,A1,dashboards,1200
        2024-03-31T00:00:00Z,U5,A4,reports,300
        2024-05-01T00:00:00Z,U5,A4,dashboards,600
        2024-05-01T12:00:00Z,U1,A1,dashboards,600
        2024-05-02T00:00:00Z,U2,A1,reports,1200
        2024-05-15T10:00:00Z,U4,A2,alerts,300
        2024-05-20T10:00:00Z,U3,A1,automation,600
        2024-05-31T23:59:59Z,U5,A4,api,900
    """,
    "nps_responses": """
        response_id,account_id,responded_at,score
        N1,A1,2024-05-10T00:00:00Z,10
        N2,A1,2024-05-11T00:00:00Z,3
        N3,A4,2024-02-15T00:00:00Z,9
    """,
    "cs_touchpoints": """
        touchpoint_id,account_id,occurred_at,csm_id,kind,stakeholder_role,sentiment
        P1,A1,2024-05-05T10:00:00Z,M1,call,sponsor,positive
        P2,A1,2024-04-10T10:00:00Z,M1,email,technical,negative
        P3,A1,2024-03-01T10:00:00Z,M1,meeting,decision_maker,positive
        P4,A3,2024-05-20T10:00:00Z,M2,qbr,sponsor,positive
        P5,A3,2024-05-21T10:00:00Z,M2,call,decision_maker,neutral
        P6,A3,2024-05-22T10:00:00Z,M2,email,end_user,
    """,
    "support_tickets": """
        ticket_id,account_id,created_at,priority,first_response_at,resolved_at,contacts,csat
        T1,A1,2024-05-02T00:00:00Z,normal,2024-05-02T02:00:00Z,2024-05-03T00:00:00Z,1,5
        T2,A1,2024-05-10T00:00:00Z,high,2024-05-10T10:00:00Z,2024-05-12T00:00:00Z,2,2
        T3,A4,2024-05-20T00:00:00Z,urgent,,,,
        T4,A3,2024-05-31T20:00:00Z,low,,,,
        T5,A2,2024-05-15T00:00:00Z,normal,2024-05-15T06:00:00Z,2024-05-25T00:00:00Z,1,4
        T6,A3,2024-04-28T00:00:00Z,normal,2024-04-28T04:00:00Z,2024-05-02T00:00:00Z,1,5
    """,
    "invoices": """
        invoice_id,account_id,issued_at,due_date,amount,paid_at
        I1,A1,2024-04-01,2024-04-15,100,2024-04-10
        I2,A1,2024-05-01,2024-05-15,100,2024-05-20
        I3,A4,2024-04-01,2024-04-30,300,
        I4,A4,2024-05-01,2024-05-16,300,
        I5,A3,2024-05-01,2024-05-31,1200,2024-05-31
    """,
    "spend": """
        month,category,amount,segment,channel,item
        2024-04-01,customer_success,100,,,training
        2024-05-01,customer_success,800,,,salaries
        2024-05-01,customer_success,200,smb,,tools
        2024-05-01,marketing,500,,paid_search,
    """,
}

BOOK_TABLES = {
    "team": """
        member_id,role,start_date,name,segment
        K1,csm,2023-01-01,Kim,smb
        K2,csm,2023-01-01,Kai,enterprise
    """,
    "accounts": """
        account_id,segment,created_at,csm_id
        R1,enterprise,2023-05-01T00:00:00Z,K2
        R2,enterprise,2023-05-01T00:00:00Z,K2
        R3,smb,2023-05-01T00:00:00Z,K1
        R4,smb,2023-05-01T00:00:00Z,K1
        R5,smb,2024-02-01T00:00:00Z,
        R9,smb,2024-05-31T12:00:00Z,
    """,
    "subscriptions": """
        subscription_id,account_id,start_date,end_date,amount,billing_period_months,currency,discount_pct
        Q1,R1,2023-05-01,,1200,12,USD,0
        Q2,R2,2023-05-01,2024-05-01,2400,12,USD,0
        Q3,R3,2023-05-01,,100,1,USD,0
        Q4,R3,2024-01-01,,50,1,USD,0
        Q5,R4,2023-05-01,2024-03-01,100,1,USD,0
        Q6,R5,2024-02-01,,50,1,USD,0
    """,
    "cs_touchpoints": """
        touchpoint_id,account_id,occurred_at,csm_id
        P01,R1,2023-05-15T10:00:00Z,K2
        P02,R1,2023-08-10T10:00:00Z,K2
        P03,R1,2023-11-05T10:00:00Z,K2
        P04,R1,2024-02-01T10:00:00Z,K2
        P05,R3,2023-05-15T10:00:00Z,K1
        P06,R3,2023-08-10T10:00:00Z,K1
        P07,R3,2023-11-05T10:00:00Z,K1
        P08,R3,2024-02-01T10:00:00Z,K1
        P09,R3,2024-05-10T10:00:00Z,K1
    """,
}

# Three components with simple ranges: utilisation 0-1, NPS -100..100, touchpoints 0-4.
HEALTH_3 = """
    components:
      adoption: {measure: licence_utilisation, worst: 0, best: 1, weight: 50}
      nps: {measure: account_nps, worst: -100, best: 100, weight: 30}
      relationship: {measure: touchpoints, worst: 0, best: 4, weight: 20}
    bands: {red: 50, yellow: 75}
"""

# One component: any touchpoint in the 90 days -> 100, none (with a CSM) -> 0, no CSM and none -> n/a.
HEALTH_TOUCH = """
    components:
      relationship: {measure: touchpoints, worst: 0, best: 1, weight: 100}
    bands: {red: 50, yellow: 75}
"""


# --------------------------------------------------------------------------- helpers
def write_yaml(path, text):
    path.write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    return path


def settings_with_health(tmp_path, health_text, name="health.yaml"):
    """The default customer_success.yaml with the health model `health_text`."""
    return params.success_settings(paths.CUSTOMER_SUCCESS_FILE, write_yaml(tmp_path / name, health_text))


def by_month(wb, name):
    s = wb.series(name)
    return {m.strftime("%Y-%m"): (v, n) for m, v, n in zip(s.month, s.value, s.n)}


def assert_na(pair):
    value, n = pair
    assert math.isnan(value) and n == 0, pair


@pytest.fixture
def cs_source(tmp_path):
    return write_source(tmp_path / "cs", CS_TABLES)


@pytest.fixture
def wb(cs_source):
    return open_workbook(str(cs_source), "all", "2024-05", interactive=False)


@pytest.fixture
def wb3(wb, tmp_path):
    """The CS workbook with the three-component health model."""
    return wb.with_success(settings_with_health(tmp_path, HEALTH_3))


@pytest.fixture
def book(tmp_path):
    wb = open_workbook(str(write_source(tmp_path / "book", BOOK_TABLES)), "all", "2024-05", interactive=False)
    return wb.with_success(settings_with_health(tmp_path, HEALTH_TOUCH, "touch.yaml"))


# --------------------------------------------------------------------------- 1-3 health score
def test_health_score_rescales_weights_over_the_components_an_account_has(wb3):
    h = wb3.table("account_health").set_index("account_id")
    # A1: utilisation 3/4 -> 75; NPS (1 promoter - 1 detractor) / 2 = 0 -> (0 + 100) / 200 -> 50; 2 touchpoints / 4 -> 50
    #     (75 x 50 + 50 x 30 + 50 x 20) / 100 = 62.5 -> 63 (half up; banker's rounding would give 62)
    assert h.loc["A1", "health"] == 63 and h.loc["A1", "band"] == "yellow" and h.loc["A1", "components_used"] == 3
    assert h.loc["A1", ["score_adoption", "score_nps", "score_relationship"]].tolist() == pytest.approx([75, 50, 50])
    # A2: no NPS answer, no CSM and no touchpoint -> only adoption: 1 user / 2 seats -> 50 (weight 50 of 50) -> 50, red
    assert h.loc["A2", "health"] == 50 and h.loc["A2", "band"] == "red" and h.loc["A2", "components_used"] == 1
    assert math.isnan(h.loc["A2", "score_nps"]) and math.isnan(h.loc["A2", "score_relationship"])
    # A3: utilisation 0 / 10 -> 0 (present, not missing); no NPS in the window; 3 touchpoints -> 75
    #     (0 x 50 + 75 x 20) / (50 + 20) = 1500 / 70 = 21.43 -> 21
    assert h.loc["A3", "health"] == 21 and h.loc["A3", "components_used"] == 2
    # A4: utilisation 1 / 5 -> 20; its only answer (Feb 15) is older than 90 days; CSM but 0 touchpoints -> 0
    #     (20 x 50 + 0 x 20) / 70 = 14.29 -> 14
    assert h.loc["A4", "health"] == 14 and h.loc["A4", "components_used"] == 2
    assert (h.components_possible == 3).all()
    # the account metric carries the score with n = components used
    score = wb3.table("health_score").set_index("account_id")
    assert score.value.to_dict() == {"A1": 63.0, "A2": 50.0, "A3": 21.0, "A4": 14.0}
    assert score.n.to_dict() == {"A1": 3.0, "A2": 1.0, "A3": 2.0, "A4": 2.0}
    # the company average: (63 + 50 + 21 + 14) / 4 = 37, over 4 scored accounts
    assert by_month(wb3, "average_health_score")["2024-05"] == (pytest.approx(37.0), 4)
    # red accounts: A2 (50), A3, A4 of 4 -> 0.75
    assert by_month(wb3, "red_account_share")["2024-05"] == (pytest.approx(0.75), 4)


def test_component_scores_and_band_edges():
    model = HealthModel(components=(), red=50, yellow=75)
    assert model.band([50, 51, 75, 76, 0, 100, np.nan]).tolist() == [
        "red",
        "yellow",
        "yellow",
        "green",
        "red",
        "green",
        "n/a",
    ]
    # lower is better: worst 0.8, best 0.1 -> 0.45 is half way -> 50; beyond the ends clipped to 0 and 100
    sla = HealthComponent("sla", "sla_breach_rate", worst=0.8, best=0.1, weight=5)
    assert sla.score([0.45, 0.9, 0.0, np.nan])[:3].tolist() == pytest.approx([50.0, 0.0, 100.0])
    assert math.isnan(sla.score([np.nan])[0])


def test_segment_overrides_change_the_weights_and_bands_of_that_segment(wb, tmp_path):
    settings = settings_with_health(
        tmp_path,
        HEALTH_3
        + """
    segments:
      smb:
        components:
          adoption: {weight: 20}
          nps: {weight: 60}
        bands: {red: 40}
    """,
        "health_smb.yaml",
    )
    assert [c.weight for c in settings.health_for("smb").components] == [20, 60, 20]
    assert settings.health_for("mid_market") is settings.health
    h = wb.with_success(settings).table("account_health").set_index("account_id")
    # A1 (smb): (75 x 20 + 50 x 60 + 50 x 20) / 100 = 55 -> yellow
    assert h.loc["A1", "health"] == 55 and h.loc["A1", "band"] == "yellow"
    # A2 (smb): adoption only, still 50, but the smb red band ends at 40 -> yellow
    assert h.loc["A2", "health"] == 50 and h.loc["A2", "band"] == "yellow"
    # A4 (mid_market) keeps the base weights: 1000 / 70 -> 14, red; A3 (enterprise) 21, red
    assert h.loc["A4", "health"] == 14 and h.loc["A4", "band"] == "red"
    assert h.loc["A3", "health"] == 21 and h.loc["A3", "band"] == "red"


# --------------------------------------------------------------------------- 4 parameter errors
@pytest.mark.parametrize(
    "text, message",
    [
        (
            """
     components:
       adoption: {measure: licence_utilisation, worst: 0, best: 1, weight: 60}
       nps: {measure: account_nps, worst: -100, best: 100, weight: 30}
     bands: {red: 50, yellow: 75}
     """,
            r"weights must add up to 100, they add up to 90",
        ),
        (
            """
     components:
       adoption: {measure: logins, worst: 0, best: 1, weight: 100}
     bands: {red: 50, yellow: 75}
     """,
            r"component `adoption`: `measure`: input should be 'licence_utilisation', .*got 'logins'",
        ),
        (
            """
     components:
       adoption: {measure: licence_utilisation, worst: 0, best: 1, wieght: 100}
     bands: {red: 50, yellow: 75}
     """,
            r"component `adoption`: unknown key wieght",
        ),
        (
            """
     components:
       adoption: {measure: licence_utilisation, worst: 0, best: 1, weight: 100}
     bands: {red: 50, yellow: 75}
     falling_pionts: 10
     """,
            r"health_bad.yaml: unknown key falling_pionts",
        ),
        (
            """
     components:
       adoption: {measure: licence_utilisation, worst: 0, best: 1, weight: 100}
     bands: {red: 80, yellow: 60}
     """,
            r"bands need whole numbers 0 <= red < yellow < 100, got red=80, yellow=60",
        ),
        (
            """
     components:
       adoption: {measure: licence_utilisation, worst: 0, best: 1, weight: 50}
       nps: {measure: account_nps, worst: -100, best: 100, weight: 50}
     bands: {red: 50, yellow: 75}
     segments:
       smb:
         components:
           adoption: {weight: 70}
     """,
            r"segment `smb`: component weights must add up to 100, they add up to 120",
        ),
    ],
)
def test_health_parameter_errors(tmp_path, text, message):
    bad = write_yaml(tmp_path / "health_bad.yaml", text)
    with pytest.raises(ParameterError, match=message):
        params.success_settings(paths.CUSTOMER_SUCCESS_FILE, bad)


def test_misspelt_customer_success_key_is_an_error(tmp_path):
    text = paths.CUSTOMER_SUCCESS_FILE.read_text(encoding="utf-8").replace("window_days:", "window_day:")
    bad = tmp_path / "cs_bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(
        ParameterError, match=r"cs_bad.yaml: unknown key window_day .known: .*; `window_days` is missing"
    ):
        params.success_settings(bad, paths.HEALTH_SCORE_FILE)


def test_default_parameters_load():
    s = params.success_settings()
    assert s.window_days == 90 and sum(s.sticky_features.values()) == 100
    assert sum(c.weight for c in s.health.components) == 100
    # smb override: relationship 0, adoption 30, engagement 25 -> the other weights stay and the total is 100
    smb = {c.name: c.weight for c in s.health_for("smb").components}
    assert smb["relationship"] == 0 and smb["adoption"] == 30 and sum(smb.values()) == 100
    assert s.capacity("enterprise") == 30 and s.capacity("unknown_segment") == 100


# --------------------------------------------------------------------------- 5 lifecycle
def test_lifecycle_stage_precedence_and_months_in_stage(wb):
    st = wb.table("lifecycle_stages").set_index("account_id")
    # A3 is 1 month old but its term ends Jun 15, 15 days after May 31 (<= 90): renewal wins over onboarding
    # A2 age 1 < 3: onboarding; A1 age 4 and A4 age 3 are in 3 <= age < 6: training
    assert st.stage.to_dict() == {"A1": "training", "A2": "onboarding", "A3": "renewal", "A4": "training"}
    # A1 onboarding Jan-Mar, training Apr-May -> 2; A4 onboarding Feb-Apr, training May -> 1;
    # A2 onboarding Apr-May -> 2; A3 renewal at Apr 30 (46 days) and May 31 (15 days) -> 2
    assert st.months_in_stage.to_dict() == {"A1": 2, "A2": 2, "A3": 2, "A4": 1}
    assert st.utilisation.to_dict() == pytest.approx({"A1": 0.75, "A2": 0.5, "A3": 0.0, "A4": 0.2})

    # a renewal window shorter than 15 days: A3 is onboarding (age 1)
    assert (
        wb.with_conventions(renewal_window_days=10).table("lifecycle_stages").set_index("account_id").stage["A3"]
        == "onboarding"
    )

    young = wb.with_conventions(onboarding_months=1, training_months=2)
    st = young.table("lifecycle_stages").set_index("account_id")
    # A1: Jan onboarding, Feb training, then adopting Mar (util 1/4), Apr (0/4), May (3/4 < 0.8) -> 3 months
    # A4: Feb onboarding, Mar training, Apr and May adopting (1/5 < 0.8) -> 2; A2 age 1: training, 1 month
    assert st.stage.to_dict() == {"A1": "adopting", "A2": "training", "A3": "renewal", "A4": "adopting"}
    assert st.months_in_stage.to_dict() == {"A1": 3, "A2": 1, "A3": 2, "A4": 2}
    # utilisation 0.75 >= 0.7: A1 starts extending in May (1 month)
    ext = young.with_conventions(extending_utilisation=0.7).table("lifecycle_stages").set_index("account_id")
    assert (ext.stage["A1"], ext.months_in_stage["A1"]) == ("extending", 1)
    assert ext.stage["A4"] == "adopting"  # 0.2 < 0.7


def test_lifecycle_by_month(wb):
    lbm = wb.table("lifecycle_by_month")
    may = lbm[lbm.month == pd.Timestamp("2024-05-01")].set_index("stage")
    assert may.accounts.to_dict() == {"onboarding": 1, "training": 2, "adopting": 0, "extending": 0, "renewal": 1}
    # training: A1 2 months, A4 1 month -> 1.5; onboarding: A2 2; renewal: A3 2; empty stages n/a
    assert may.mean_months_in_stage["training"] == pytest.approx(1.5)
    assert may.mean_months_in_stage["onboarding"] == 2 and may.mean_months_in_stage["renewal"] == 2
    assert math.isnan(may.mean_months_in_stage["adopting"])
    jan = lbm[lbm.month == pd.Timestamp("2024-01-01")].set_index("stage")
    assert jan.accounts["onboarding"] == 1 and jan.accounts.sum() == 1  # only A1 pays at Jan 31


# --------------------------------------------------------------------------- 6 renewals
def test_renewals_due_table(wb3, book):
    due = wb3.table("renewals_due")
    # A3 only: term end Jun 15 (contract end before its 12-month term), 15 days after May 31, ARR 100 x 12
    assert due.account_id.tolist() == ["A3"]
    row = due.iloc[0]
    assert row.term_end == pd.Timestamp("2024-06-15") and row.days_to_renewal == 15 and row.arr == pytest.approx(1200)
    assert row.account_name == "Core" and row.health == 21 and row.band == "red"

    april = book.with_choice(month="2024-04").table("renewals_due")
    # R1 and R2: 12-month terms from 2023-05-01 end 2024-05-01, 1 day after Apr 30; ARR 1200 and 2400
    assert april.account_id.tolist() == ["R1", "R2"]
    assert april.term_end.tolist() == [pd.Timestamp("2024-05-01")] * 2 and april.days_to_renewal.tolist() == [1, 1]
    assert april.arr.tolist() == pytest.approx([1200, 2400])
    # health (one touchpoint component): R1 had one on Feb 1, in the 90 days to May 1 -> 100; R2 none -> 0
    assert april.health.tolist() == [100, 0] and april.band.tolist() == ["green", "red"]


def test_renewal_metrics(book):
    count, arr = by_month(book, "renewals_due_count"), by_month(book, "renewals_due_arr")
    # term end 2024-05-01 is 91 days after Jan 31 (29 + 31 + 30 + 1): outside 90; 62 after Feb 29, 31, 1
    assert count["2024-01"] == (0, 0) and count["2024-02"] == (2, 2) and count["2024-04"] == (2, 2)
    assert count["2023-12"] == (0, 0) and count["2024-05"] == (0, 0)  # R1's next term ends 2025-05-01
    assert arr["2024-02"] == (pytest.approx((100 + 200) * 12), 2)
    assert by_month(book.with_conventions(renewal_window_days=91), "renewals_due_count")["2024-01"] == (2, 2)

    rate = by_month(book, "renewal_rate")
    # May: R1 and R2 terms ended; R1 still pays at May 31, R2 does not -> 1 / 2
    assert rate["2024-05"] == (pytest.approx(0.5), 2)
    assert_na(rate["2024-04"])

    rmc = by_month(book, "renewals_minus_churn")
    # May: 1 renewed - 1 churned (R2) = 0, n = 2 due + 1 churned; Mar: 0 - 1 (R4) = -1; Apr: nothing
    assert rmc["2024-05"] == (0, 3) and rmc["2024-03"] == (-1, 1) and rmc["2024-04"] == (0, 0)


# --------------------------------------------------------------------------- 7 NPS of an empty window
def test_nps_of_an_empty_window_is_na(wb):
    nps = wb.table("account_nps").set_index("account_id")
    assert nps.value["A1"] == pytest.approx(0.0) and nps.n["A1"] == 2  # 1 promoter (10), 1 detractor (3) of 2
    for account in ("A2", "A3", "A4"):  # no answer (A4's Feb 15 answer is older than the 90 days to Jun 1)
        assert math.isnan(nps.value[account]) and nps.n[account] == 0, account

    m = wb.table("account_measures")
    a4 = m[m.account_id == "A4"].set_index("month")
    # Apr window (Feb 1 - May 1) holds N3 (9, promoter) -> 100 over 1; May window (Mar 3 - Jun 1) none -> n/a, 0
    assert (
        a4.account_nps[pd.Timestamp("2024-04-01")] == pytest.approx(100) and a4.nps_n[pd.Timestamp("2024-04-01")] == 1
    )
    assert math.isnan(a4.account_nps[pd.Timestamp("2024-05-01")]) and a4.nps_n[pd.Timestamp("2024-05-01")] == 0

    company = by_month(wb, "net_promoter_score")
    assert_na(company["2024-01"])  # window Nov 2 - Feb 1: no answer -> n/a, not 0
    assert company["2024-02"] == (pytest.approx(100.0), 1)  # N3 promoter
    assert company["2024-05"] == (pytest.approx(0.0), 2)  # N1 promoter, N2 detractor; N3 out of the window


# --------------------------------------------------------------------------- 8 support
def test_support_times_and_sla(wb):
    # May tickets: T1 normal 2 h to respond, 24 h to resolve; T2 high 10 h, 48 h; T5 normal 6 h, 240 h;
    # T3 urgent and T4 low unanswered (T6 opened in April)
    frh = by_month(wb, "first_response_hours")
    assert frh["2024-05"] == (pytest.approx(6.0), 3)  # median of 2, 6, 10
    assert by_month(wb, "first_response_hours_p90")["2024-05"] == (pytest.approx(9.2), 3)  # 6 + 0.8 x (10 - 6)
    assert frh["2024-04"] == (pytest.approx(4.0), 1)  # T6
    assert by_month(wb, "resolution_hours")["2024-05"] == (pytest.approx(48.0), 3)  # median of 24, 48, 240
    # breaches: T1 2 <= 24 no; T2 10 > 8 yes; T5 6 <= 24 no; T3 urgent unanswered, 12 days to Jun 1 > 2 h: yes;
    # T4 low opened May 31 20:00, 4 h before the data end < 72 h: not decided -> 2 / 4
    assert by_month(wb, "sla_breach_rate")["2024-05"] == (pytest.approx(0.5), 4)
    # resolved in May with a contact count: T1 (1), T2 (2), T5 (1), T6 (1, opened in April) -> 3 / 4
    assert by_month(wb, "first_contact_resolution")["2024-05"] == (pytest.approx(0.75), 4)


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # priorities without a value are n/a on purpose
def test_support_sla_table(wb):
    sla = wb.table("support_sla").set_index("priority")
    assert sla.tickets.to_dict() == {"low": 1, "normal": 3, "high": 1, "urgent": 1}
    assert sla.sla_hours.to_dict() == {"low": 72, "normal": 24, "high": 8, "urgent": 2}
    # normal: T1 2 h, T6 4 h, T5 6 h -> median 4, p90 4 + 0.8 x 2 = 5.6; resolution 24, 96, 240 -> median 96
    assert sla.response_median["normal"] == pytest.approx(4.0) and sla.response_p90["normal"] == pytest.approx(5.6)
    assert sla.resolution_median["normal"] == pytest.approx(96.0)
    assert sla.breach_rate["normal"] == 0 and sla.first_contact_resolution["normal"] == 1
    assert sla.breach_rate["high"] == 1 and sla.first_contact_resolution["high"] == 0  # T2: 10 h, 2 contacts
    assert sla.breach_rate["urgent"] == 1 and math.isnan(sla.response_median["urgent"])  # T3 unanswered, elapsed
    assert math.isnan(sla.breach_rate["low"])  # T4: SLA not elapsed at the data end


# --------------------------------------------------------------------------- 9 relationship and collections
def test_relationship_metrics(wb):
    # May window Mar 3 - Jun 1: A1 P1 (sponsor, positive), P2 (technical, negative) - P3 on Mar 1 is outside;
    # A3 P4 (sponsor, positive), P5 (decision maker, neutral), P6 (end user, no sentiment); A4 (CSM) none -> 0;
    # A2 has no CSM and no touchpoint: not counted
    assert by_month(wb, "touchpoints_per_account")["2024-05"] == (pytest.approx(5 / 3), 3)  # (2 + 3 + 0) / 3
    assert by_month(wb, "stakeholder_coverage")["2024-05"] == (pytest.approx(5 / 12), 3)  # (2 + 3 + 0) / 3 / 4
    assert by_month(wb, "positive_sentiment_share")["2024-05"] == (pytest.approx(0.5), 4)  # (1 + 1) / (2 + 2)
    m = wb.table("account_measures")
    may = m[m.key == m.key.max()].set_index("account_id")
    assert may.net_sentiment["A1"] == pytest.approx(0.0) and may.net_sentiment["A3"] == pytest.approx(0.5)
    assert math.isnan(may.touchpoints["A2"]) and may.touchpoints["A4"] == 0


def test_collections(wb):
    # due in May: I2 paid May 20 after May 15 (late), I4 unpaid, I5 paid on its due day -> 1 / 3
    assert by_month(wb, "invoices_paid_on_time")["2024-05"] == (pytest.approx(1 / 3), 3)
    assert by_month(wb, "invoices_paid_on_time")["2024-04"] == (pytest.approx(0.5), 2)  # I1 on time, I3 unpaid
    # May 31: A4 owes I3 (due Apr 30) and I4 (due May 16): 300 + 300; one account with an overdue amount
    assert by_month(wb, "overdue_amount")["2024-05"] == (pytest.approx(600.0), 1)
    # Apr 30: I3 is due that very day, not yet overdue
    assert by_month(wb, "overdue_amount")["2024-04"] == (pytest.approx(0.0), 0)
    m = wb.table("account_measures")
    may = m[m.month == pd.Timestamp("2024-05-01")].set_index("account_id")
    # A4: oldest unpaid invoice due Apr 30 -> 31 days at May 31; A1 paid everything by then; A3 I5 paid;
    # A2 has no invoice -> n/a
    assert may.days_overdue["A4"] == 31 and may.days_overdue["A1"] == 0 and may.days_overdue["A3"] == 0
    assert math.isnan(may.days_overdue["A2"])
    assert may.overdue_amount["A4"] == pytest.approx(600)


# --------------------------------------------------------------------------- 10 adoption and usage
def test_adoption_and_usage(wb):
    # May MAU / seats: A1 U1, U2, U3 3/4; A2 1/2; A3 0/10; A4 1/5 -> company (3 + 1 + 0 + 1) / 21
    assert by_month(wb, "licence_utilisation_rate")["2024-05"] == (pytest.approx(5 / 21), 21)
    # engagement (30 days to Jun 1 = from May 2 00:00): A1 reports May 2 (25) + automation (20) = 45, its
    # dashboards May 1 12:00 is 31 days before the month end and does not count; A2 alerts 10; A3, A4 0
    # (A4's dashboards is on May 1, its api is not sticky) -> (45 + 10 + 0 + 0) / 4
    assert by_month(wb, "customer_engagement_score")["2024-05"] == (pytest.approx(13.75), 4)
    m = wb.table("account_measures")
    may = m[m.month == pd.Timestamp("2024-05-01")].set_index("account_id")
    assert may.engagement_score.to_dict() == pytest.approx({"A1": 45, "A2": 10, "A3": 0, "A4": 0})
    # May active accounts A1, A2, A4: dashboards A1, A4 2/3; reports 1/3; automation 1/3; integrations 0;
    # alerts 1/3 -> (2 + 1 + 1 + 0 + 1) / 3 / 5 = 1/3
    assert by_month(wb, "feature_adoption_rate")["2024-05"] == (pytest.approx(1 / 3), 3)
    # 90 days from the first start: A1 Jan 1 -> Mar 31 (in March): reports Feb 10, dashboards Mar 30 -> 2/5;
    # A4 Feb 1 -> May 1 (in May): reports Mar 31 counts, dashboards at May 1 00:00 is too late -> 1/5;
    # A2, A3 (Apr 1 -> Jun 30) are not due yet
    adoption = by_month(wb, "feature_adoption_90_days")
    assert adoption["2024-03"] == (pytest.approx(0.4), 1) and adoption["2024-05"] == (pytest.approx(0.2), 1)
    assert_na(adoption["2024-04"])
    # May minutes: 600 + 1200 + 600 + 300 + 600 + 900 s = 4200 s = 70 min over 5 active users (U1-U5)
    assert by_month(wb, "time_in_product_per_user")["2024-05"] == (pytest.approx(14.0), 5)


# --------------------------------------------------------------------------- 11 health backtest
def test_roc_auc():
    # higher score = more likely positive: the two positives outrank both negatives -> 4 wins of 4 pairs
    assert roc_auc([4, 3, 2, 1], [True, True, False, False]) == pytest.approx(1.0)
    # health scores [1, 2, 3, 4] with the two lowest churning: the backtest ranks by -health -> 1.0;
    # ranked by the raw score the positives lose every pair -> 0.0
    assert roc_auc(-np.array([1, 2, 3, 4]), [True, True, False, False]) == pytest.approx(1.0)
    assert roc_auc([1, 2, 3, 4], [True, True, False, False]) == pytest.approx(0.0)
    # positive 2 vs negatives 2 (tie, 1/2) and 1 (win, 1) -> 1.5 / 2
    assert roc_auc([2, 2, 1], [True, False, False]) == pytest.approx(0.75)
    assert math.isnan(roc_auc([1, 2], [True, True]))  # one class only


def test_health_backtest(book):
    o = book.table("health_outcomes")
    r4 = o[o.account_id == "R4"].set_index("month")
    # R4 pays until Feb 2024: the Nov score sees it paying at Feb 29, the Dec score sees it gone at Mar 31
    assert not r4.churned[pd.Timestamp("2023-11-01")] and r4.churned[pd.Timestamp("2023-12-01")]
    assert r4.band.eq("red").all() and (o.account_id != "R5").all()  # R5: no CSM, no touchpoint -> no score
    bt = book.table("health_backtest").set_index("band")
    # scores May 2023 - Feb 2024 (10 months): R1, R3 100 (green), R2, R4 0 (red) -> 20 + 20 account-months;
    # churned by 3 months later: R4 from Dec, Jan, Feb; R2 from Feb (gone at May 31) -> 4, all red
    assert bt.account_months.to_dict() == {"red": 20, "yellow": 0, "green": 20, "all": 40}
    assert bt.churned.to_dict() == {"red": 4, "yellow": 0, "green": 0, "all": 4}
    assert bt.churn_rate["red"] == pytest.approx(0.2) and bt.churn_rate["green"] == 0
    assert bt.churn_rate["all"] == pytest.approx(0.1) and math.isnan(bt.churn_rate["yellow"])
    assert bt.contracted["all"] == 0
    # AUC: each churned (score 0) beats 20 green and ties 16 red non-churned -> (20 + 16 / 2) / 36 = 7/9
    assert bt.auc["all"] == pytest.approx(7 / 9)
    auc = by_month(book, "health_backtest_auc")
    # May (scores of Feb): churned R2, R4 at 0, stayed R1, R3 at 100 -> 1.0 over 2 churned
    assert auc["2024-05"] == (pytest.approx(1.0), 2)
    # Apr (scores of Jan): churned R4 at 0 vs R2 at 0 (tie), R1, R3 at 100 -> (0.5 + 2) / 3
    assert auc["2024-04"] == (pytest.approx(2.5 / 3), 1)


# --------------------------------------------------------------------------- 12 CS load
def test_csm_load(wb3):
    load = wb3.table("csm_load").set_index("csm_id")
    # M3 starts Jun 1: not on the team at May 31
    assert list(load.index) == ["M1", "M2", "(no CSM)"]
    m1, m2, none = load.loc["M1"], load.loc["M2"], load.loc["(no CSM)"]
    # M1: A1 and A4 (both training), ARR (100 + 300) x 12; red: A4 (14); open tickets: A4's T3; touchpoints 2 + 0
    assert (m1.accounts, m1.arr, m1.training, m1.renewals_due, m1.red_accounts) == (2, 4800, 2, 0, 1)
    assert (m1.open_tickets, m1.touchpoints) == (1, 2)
    assert m1.capacity == 250 and m1.load == pytest.approx(2 / 250)  # smb capacity 250
    # M2: A3, renewal, red (21), open T4, 3 touchpoints; enterprise capacity 30
    assert (m2.accounts, m2.arr, m2.renewal, m2.renewals_due, m2.red_accounts, m2.open_tickets, m2.touchpoints) == (
        1,
        1200,
        1,
        1,
        1,
        1,
        3,
    )
    assert m2.capacity == 30 and m2.load == pytest.approx(1 / 30)
    # no CSM: A2, onboarding, red at 50; no capacity
    assert (none.accounts, none.arr, none.onboarding, none.red_accounts) == (1, 600, 1, 1)
    assert math.isnan(none.capacity) and math.isnan(none.load)


def test_accounts_per_csm_and_capacity(wb):
    # May: A1, A3, A4 have a CSM; M1 and M2 on the team -> 3 / 2; capacity 250 + 30
    apc = by_month(wb, "accounts_per_csm")
    assert apc["2024-05"] == (pytest.approx(1.5), 2)
    assert apc["2024-03"] == (pytest.approx(1.0), 2)  # A1, A4 paying at Mar 31
    assert by_month(wb, "csm_capacity_utilisation")["2024-05"] == (pytest.approx(3 / 280), 280)


def test_capacity_status_shows_the_overloaded_csm(wb):
    # smb capacity 1: in May M1 (smb) looks after A1 and A4 -> load 2 / 1 = 200 %; M2 (enterprise, 30) has A3 -> 1/30.
    # The average (3 accounts / 31 capacity = 9.7 %) looks fine: it is not judged; the share over capacity is.
    settings = dataclasses.replace(params.success_settings(), csm_capacity={"smb": 1, "enterprise": 30, "default": 100})
    w = wb.with_success(settings)
    assert by_month(w, "csm_capacity_utilisation")["2024-05"] == (pytest.approx(3 / 31), 31)
    assert by_month(w, "csms_over_capacity_share")["2024-05"] == (pytest.approx(1 / 2), 2)  # M1 of M1, M2
    assert by_month(w, "max_csm_load")["2024-05"] == (pytest.approx(2.0), 2)
    assert w.value("csm_capacity_utilisation").status == "n/a"
    assert w.value("csms_over_capacity_share").status == "off"  # target 0 CSMs over capacity
    assert w.value("max_csm_load").status == "off"  # 200 % against 100 %


def test_hiring_forecast(wb):
    settings = dataclasses.replace(
        params.success_settings(),
        forecast_history_months=3,
        csm_capacity={"smb": 1, "enterprise": 2, "mid_market": 100, "default": 100},
    )
    f = wb.with_success(settings).table("hiring_forecast").set_index(["segment", "horizon_months"])
    # trend over 3 months: paying at May 31 vs Feb 29
    # smb: A1, A2 now vs A1 -> +1/3 a month; half have a CSM; capacity 1; M1 on the team
    smb = f.loc["smb"]
    assert smb.paying_now.tolist() == [2, 2, 2] and smb.trend_per_month.tolist() == pytest.approx([1 / 3] * 3)
    assert smb.csm_coverage.tolist() == pytest.approx([0.5] * 3)
    # projected 2 + 1/3 h: 7/3, 3, 4 -> to cover x 0.5: 7/6, 1.5, 2 -> ceil(/1): 2, 2, 2 -> hire 2 - 1 = 1
    assert smb.projected_accounts.tolist() == pytest.approx([7 / 3, 3, 4])
    assert smb.accounts_to_cover.tolist() == pytest.approx([7 / 6, 1.5, 2])
    assert smb.csms_needed.tolist() == [2, 2, 2] and smb.csms_now.tolist() == [1, 1, 1]
    assert smb.to_hire.tolist() == [1, 1, 1]
    # enterprise: A3 now, none in Feb -> +1/3; projected 4/3, 2, 3 -> ceil(/2): 1, 1 (exactly 1), 2; M2 -> hire 0, 0, 1
    ent = f.loc["enterprise"]
    assert ent.projected_accounts.tolist() == pytest.approx([4 / 3, 2, 3])
    assert ent.csms_needed.tolist() == [1, 1, 2] and ent.to_hire.tolist() == [0, 0, 1]
    # mid_market: A4 then and now -> flat 1; capacity 100 -> 1 CSM; M3 only starts Jun 1 -> hire 1
    mid = f.loc["mid_market"]
    assert mid.trend_per_month.tolist() == [0, 0, 0] and mid.csms_needed.tolist() == [1, 1, 1]
    assert mid.csms_now.tolist() == [0, 0, 0] and mid.to_hire.tolist() == [1, 1, 1]


def test_cost_to_serve(wb):
    # customer_success spend: Apr 100; May 800 (untagged, split by MRR share) + 200 (smb); the 500 marketing
    # does not count. 4 paying accounts and MRR 550 at both month ends.
    per_account = by_month(wb, "cost_to_serve_per_account")
    assert per_account["2024-05"] == (pytest.approx(250.0), 4)  # 1000 / 4
    assert per_account["2024-04"] == (pytest.approx(25.0), 4)  # 100 / 4
    assert math.isnan(per_account["2024-03"][0])  # no CS spend: unknown
    # 1000 x 12 / (550 x 12) = 20/11
    assert by_month(wb, "cost_to_serve_per_arr")["2024-05"] == (pytest.approx(20 / 11), 4)
    cts = wb.table("cost_to_serve").set_index("segment")
    assert cts.cs_spend.sum() == pytest.approx(1000)
    # smb has MRR 150 of 550: 800 x 150 / 550 + 200 tagged, over A1 and A2
    assert cts.cs_spend["smb"] == pytest.approx(800 * 150 / 550 + 200)
    assert cts.accounts["smb"] == 2 and cts.per_account["smb"] == pytest.approx((800 * 150 / 550 + 200) / 2)
    # by item: salaries (untagged) by MRR share, enterprise 100 of 550; tools tagged smb only
    assert cts.salaries["enterprise"] == pytest.approx(800 * 100 / 550) and cts.salaries.sum() == pytest.approx(800)
    assert cts.tools.to_dict() == pytest.approx({"enterprise": 0, "mid_market": 0, "smb": 200})
    # per $ of ARR: smb 418.18 x 12 / 1800
    assert cts.per_arr_dollar["smb"] == pytest.approx((800 * 150 / 550 + 200) * 12 / 1800)


def test_csm_scorecard(book):
    sc = book.table("csm_scorecard").set_index("csm_id")
    assert list(sc.index) == ["K1", "K2", "(no CSM)"]
    k1, k2 = sc.loc["K1"], sc.loc["K2"]
    # K1 (R3, R4 paying May 2023 at 100 each): May 2024 R3 150, R4 0 -> NRR 150 / 200; 1 of 2 logos lost
    assert k1.nrr_12m == pytest.approx(0.75) and k1.logo_churn_12m == pytest.approx(0.5)
    # book now: R3 only, ARR 150 x 12; upsell: R3 +50 in Jan 2024; 1 touchpoint (May 10) in the window
    assert (k1.accounts, k1.arr, k1.upsell_mrr_12m, k1.touchpoints) == (1, 1800, 50, 1)
    # K2 (R1 100, R2 200): May 2024 R1 100, R2 0 -> 100 / 300; 1 of 2 lost; book R1, ARR 1200; no upsell
    assert k2.nrr_12m == pytest.approx(1 / 3) and k2.logo_churn_12m == pytest.approx(0.5)
    assert (k2.accounts, k2.arr, k2.upsell_mrr_12m, k2.touchpoints) == (1, 1200, 0, 0)
    # no CSM: R5 (50 a month), not paying 12 months ago -> NRR n/a
    assert sc.loc["(no CSM)", "accounts"] == 1 and sc.loc["(no CSM)", "arr"] == 600
    assert math.isnan(sc.loc["(no CSM)", "nrr_12m"])


# --------------------------------------------------------------------------- demo company
def test_health_predicts_churn_on_the_demo_company(demo_source):
    wb = open_workbook(str(demo_source), "all", "", interactive=False)
    bt = wb.table("health_backtest").set_index("band")
    assert bt.auc["all"] > 0.6
    assert bt.churn_rate["red"] > bt.churn_rate["green"]
    for segment in ("smb", "mid_market", "enterprise"):
        seg = wb.with_choice(segment=segment).table("health_backtest").set_index("band")
        assert seg.auc["all"] > 0.55, segment


def test_health_change_and_at_risk_list(wb3):
    h = wb3.table("account_health").set_index("account_id")
    # Feb (3 months back) A4: utilisation 0/5 -> 0; NPS N3 (Feb 15, promoter) -> 100 -> 100; 0 touchpoints -> 0
    #   (0 x 50 + 100 x 30 + 0 x 20) / 100 = 30; May 14 -> change -16
    # Feb A1: 1 user (U1 Feb 10) / 4 -> 25; no NPS; 0 touchpoints -> (25 x 50 + 0) / 70 = 17.86 -> 18; May 63 -> +45
    assert h.change["A4"] == -16 and h.change["A1"] == 45
    assert math.isnan(h.change["A2"])  # not paying in Feb
    risk = wb3.table("at_risk_accounts")
    # red: A4 14, A3 21, A2 50 (lowest first); A1 is yellow and rising
    assert risk.account_id.tolist() == ["A4", "A3", "A2"] and (risk.reason == "red").all()
    # A4's components under 50, lowest first: relationship 0, adoption 20
    assert risk.pulled_down_by.iloc[0] == "relationship 0, adoption 20"
    assert risk.term_end.iloc[1] == pd.Timestamp("2024-06-15")  # A3's term end
