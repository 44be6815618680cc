"""The forecast, its backtest and the driver decomposition (issue 22): literal panels with hand arithmetic, the
no-look-ahead proof on a truncated source, and parameter errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import write_source

from saaskpi import params
from saaskpi.errors import ParameterError
from saaskpi.metrics import drivers as dr
from saaskpi.metrics import forecast as fc
from saaskpi.pages import forecast as page
from saaskpi.workbook import open_workbook

SETTINGS = params.forecast_settings().model_copy(
    update={
        "age_buckets": [0, 2],
        "min_exposure_accounts": 0,
        "lookback_months": 12,
        "run_rate_months": 3,
        "pipeline_months": 0,
        "horizon_months": 3,
    }
)


# Three cohorts, one segment, months 0..3 (keys 24288.. = Jan-Apr 2024); the forecast is made at month 3.
#   a  cohort 0: 100, 100, 110, 110   (expansion +10 at age 1)
#   b  cohort 0: 100,   0,   0,   0   (churns at age 0)
#   c  cohort 1:   0, 200, 200, 180   (contraction -20 at age 1)
#   d  cohort 2:   0,   0, 100, 100
# Transitions from ages 0-1 (band A): a 0->1, b 0->1, a 1->2, c 0->1, c 1->2, d 0->1: base 100+100+100+200+200+100
# = 800, churned 100, contracted 20, expanded 10, 6 account-months, 1 churned. Ages 2+ (band B): a 2->3, base 110,
# nothing moves.
BOOK = np.array(
    [
        [100.0, 100.0, 110.0, 110.0],
        [100.0, 0.0, 0.0, 0.0],
        [0.0, 200.0, 200.0, 180.0],
        [0.0, 0.0, 100.0, 100.0],
    ]
)
JAN_2024 = 2024 * 12


def book_inputs() -> fc.ForecastInputs:
    keys = np.arange(JAN_2024, JAN_2024 + 4)
    return fc.panel_inputs(keys, BOOK, np.zeros(4, dtype="int64"), ("smb",), bands=(0, 2))


def test_rates_by_cohort_age_are_computed_by_hand():
    rates = fc.rates_at(book_inputs(), JAN_2024 + 3, SETTINGS)
    monthly = fc.MONTHLY
    assert rates.churn[monthly, 0, 0] == pytest.approx(0.125)  # 100 / 800
    assert rates.contraction[monthly, 0, 0] == pytest.approx(0.025)  # 20 / 800
    assert rates.expansion[monthly, 0, 0] == pytest.approx(0.0125)  # 10 / 800
    assert rates.logo_churn[monthly, 0, 0] == pytest.approx(1 / 6)  # 1 of 6 account-months
    assert rates.churn[monthly, 0, 1] == 0 and rates.expansion[monthly, 0, 1] == 0  # band B: 110 kept


def test_book_of_three_cohorts_decays_as_computed_by_hand():
    out = fc.project(book_inputs(), JAN_2024 + 3, SETTINGS)
    # band A keeps 1 - 0.125 - 0.025 + 0.0125 = 0.8625 a month, band B 1.0. At the forecast month a is 3 months
    # old (B, 110), c 2 (B, 180), d 1 (A, 100): month 1: 110 + 180 + 100 x 0.8625 = 376.25; then d is in B too.
    assert out.book_mrr.tolist() == pytest.approx([376.25, 376.25, 376.25])
    # accounts: 1 + 1 + (1 - 1/6)
    assert out.book_accounts.tolist() == pytest.approx([17 / 6, 17 / 6, 17 / 6])
    # new business: (200 new in month 1 + 100 in month 2 + 0 in month 3) / 3 = 100 a month, 2/3 of an account;
    # each month's new business then ages like a new cohort (band A: x 0.8625, accounts x 5/6)
    assert out.new_mrr.tolist() == pytest.approx([100, 100 * 0.8625 + 100, (100 * 0.8625 + 100) * 0.8625 + 100])
    assert out.new_accounts.tolist() == pytest.approx(
        [2 / 3, 2 / 3 * 5 / 6 + 2 / 3, (2 / 3 * 5 / 6 + 2 / 3) * 5 / 6 + 2 / 3]
    )
    assert (out.mrr == out.book_mrr + out.new_mrr).all()


def test_scenario_scales_churn_expansion_and_new_business():
    out = fc.project(book_inputs(), JAN_2024 + 3, SETTINGS, fc.Scenario(new_business=0.5, churn=-1.0, expansion=1.0))
    # churn -100 %: no churn or contraction; expansion x 2: d keeps 1 + 2 x 0.0125 = 1.025
    assert out.book_mrr.iloc[0] == pytest.approx(110 + 180 + 100 * 1.025)
    assert out.new_mrr.iloc[0] == pytest.approx(150)  # 100 x 1.5


def test_contract_accounts_churn_only_at_renewal():
    # one annual contract account paying 100 from month 0, renewal due in month 12; three months of history
    keys = np.arange(JAN_2024, JAN_2024 + 3)
    mrr = np.array([[100.0, 100.0, 100.0], [50.0, 50.0, 0.0]])
    renewal = np.array([[JAN_2024 + 12] * 3, [-1, -1, -1]])
    period = np.array([[12] * 3, [0, 0, 0]])
    inputs = fc.panel_inputs(keys, mrr, np.zeros(2, dtype="int64"), ("smb",), renewal, period)
    settings = SETTINGS.model_copy(update={"horizon_months": 12, "age_buckets": [0]})
    out = fc.project(inputs, JAN_2024 + 2, settings)
    # mid-term months have no churn seen (2 account-months, nothing lost); the renewal month has no history of its
    # own, so it takes the monthly rates: 1 churn of 2 account-months, 50 of 100 MRR lost -> 100 x 0.5 in month 12
    assert out.book_mrr.iloc[:9].tolist() == pytest.approx([100.0] * 9)
    assert out.book_mrr.iloc[9] == pytest.approx(50.0)


def test_scheduled_end_removes_the_account_in_its_month(tmp_path):
    keys = np.arange(JAN_2024, JAN_2024 + 3)
    mrr = np.array([[100.0, 100.0, 100.0]])
    subs = pd.DataFrame(
        {
            "account": [0],
            "start": [pd.Timestamp("2024-01-01")],
            "end": [pd.Timestamp("2024-05-01")],
            "period": [1],
        }
    )
    inputs = fc.panel_inputs(keys, mrr, np.zeros(1, dtype="int64"), ("smb",), subscriptions=subs)
    # ends May 1st: pays at the end of April (month 1 ahead), not at the end of May (month 2)
    out = fc.project(inputs, JAN_2024 + 2, SETTINGS, scheduled=True)
    assert out.book_mrr.tolist() == [100.0, 0.0, 0.0]
    assert fc.project(inputs, JAN_2024 + 2, SETTINGS, scheduled=False).book_mrr.tolist() == [100.0] * 3


def test_backtest_on_a_known_trend():
    # one account whose MRR grows 10 % a month for 20 months: the model (expansion 10 % a month) and the trailing
    # growth baseline are exact; "no change" misses by 1 / 1.1^h - 1
    keys = np.arange(JAN_2024, JAN_2024 + 20)
    mrr = 100 * 1.1 ** np.arange(20)[None, :]
    inputs = fc.panel_inputs(keys, mrr, np.zeros(1, dtype="int64"), ("smb",))
    settings = SETTINGS.model_copy(update={"age_buckets": [0], "horizon_months": 6, "backtest_origins": 12})
    errors = fc.backtest_forecasts(inputs, JAN_2024 + 19, settings)
    assert errors.origin.min() == pd.Timestamp("2024-08-01")  # 12 month ends before the last
    summary = fc.backtest_summary(errors, [1, 3, 6])
    assert summary.n.tolist() == [12, 10, 7]  # origins with h months of actuals after them
    assert summary.model_error.tolist() == pytest.approx([0, 0, 0], abs=1e-12)
    assert summary.trailing_growth_error.tolist() == pytest.approx([0, 0, 0], abs=1e-12)
    assert summary.no_change_error.tolist() == pytest.approx([1 - 1 / 1.1, 1 - 1 / 1.1**3, 1 - 1 / 1.1**6])
    assert summary.no_change_bias.tolist() == pytest.approx([1 / 1.1 - 1, 1 / 1.1**3 - 1, 1 / 1.1**6 - 1])
    assert summary.best.tolist() == ["model"] * 3
    assert page.backtest_verdict(summary) == "The forecast beat both baselines at every horizon tested."


def test_interval_is_the_quantiles_of_past_errors():
    errors = pd.DataFrame(
        {
            "horizon": [1] * 5 + [2] * 2,
            "method": "model",
            "forecast": 100.0,
            "actual": [90.0, 95.0, 100.0, 105.0, 120.0, 100.0, 100.0],
        }
    )
    settings = SETTINGS.model_copy(update={"horizon_months": 2, "interval": (0.25, 0.75), "min_interval_errors": 3})
    q = fc.interval_quantiles(errors, settings)
    # actual / forecast - 1 = -0.10, -0.05, 0, 0.05, 0.20: the 25th and 75th percentiles are -0.05 and 0.05
    assert q.low.iloc[0] == pytest.approx(-0.05) and q.high.iloc[0] == pytest.approx(0.05)
    assert q.errors.tolist() == [5, 2] and np.isnan(q.low.iloc[1])  # 2 errors < 3: no interval, never assumed


def test_target_month():
    f = pd.DataFrame(
        {"segment": "total", "month": pd.date_range("2025-01-01", periods=3, freq="MS"), "arr": [90.0, 100.0, 110.0]}
    )
    assert fc.target_month(f, 100.0) == pd.Timestamp("2025-02-01")
    assert fc.target_month(f, 200.0) is None and fc.target_month(f, None) is None


# --------------------------------------------------------------------------- decomposition
def test_two_segment_decomposition_sums_and_splits_by_hand():
    before = pd.DataFrame({"group": ["A", "B"], "num": [90.0, 40.0], "den": [100.0, 100.0]})
    now = pd.DataFrame({"group": ["A", "B"], "num": [180.0, 50.0], "den": [200.0, 100.0]})
    out = dr.mix_rate_effects(before, now).set_index("group")
    # R0 = 130 / 200 = 0.65, R1 = 230 / 300 = 0.7667; shares 1/2, 1/2 -> 2/3, 1/3; mean rate 0.708333
    # A: mix (2/3 - 1/2) x (0.9 - 0.708333) = 0.031944, rate (0.9 - 0.9) x ... = 0
    # B: mix (1/3 - 1/2) x (0.45 - 0.708333) = 0.043056, rate (0.5 - 0.4) x (1/2 + 1/3) / 2 = 0.041667
    assert out.loc["A", "mix"] == pytest.approx(0.0319444, abs=1e-7)
    assert out.loc["A", "rate"] == pytest.approx(0.0)
    assert out.loc["B", "mix"] == pytest.approx(0.0430556, abs=1e-7)
    assert out.loc["B", "rate"] == pytest.approx(0.0416667, abs=1e-7)
    assert (out.mix + out.rate).sum() == pytest.approx(230 / 300 - 130 / 200)  # exactly the change


def test_a_new_group_is_all_mix():
    before = pd.DataFrame({"group": ["A"], "num": [50.0], "den": [100.0]})
    now = pd.DataFrame({"group": ["A", "B"], "num": [50.0, 100.0], "den": [100.0, 100.0]})
    out = dr.mix_rate_effects(before, now).set_index("group")
    # R0 0.5, R1 0.75: B (rate 1.0) arrives with half the base: mix 0.5 x (1.0 - 0.625) = 0.1875; A's share halves:
    # mix -0.5 x (0.5 - 0.625) = 0.0625; no rate effect anywhere
    assert out.loc["B", "mix"] == pytest.approx(0.1875) and out.loc["A", "mix"] == pytest.approx(0.0625)
    assert out.rate.abs().sum() == 0 and out.mix.sum() == pytest.approx(0.25)


def test_driver_sentence_names_the_largest_contributions():
    rows = pd.DataFrame(
        {
            "rate_name": "nrr",
            "comparison": "previous_month",
            "by": "segment",
            "group": ["enterprise", "smb", "mid_market"],
            "unit": "fraction",
            "label": "NRR (trailing 12 months)",
            "value_before": 1.05,
            "value_now": 1.029,
            "share_before": [0.5, 0.2, 0.3],
            "share_now": [0.5, 0.25, 0.25],
            "rate_before": [1.1, 0.9, 1.0],
            "rate_now": [1.072, 0.9, 1.0],
            "mix": [0.0, -0.005, -0.002],
            "rate": [-0.014, 0.0, 0.0],
        }
    )
    settings = SETTINGS.model_copy(update={"summary_contributions": 2})
    assert page.driver_sentence(rows, settings) == (
        "NRR (trailing 12 months) fell 2.1 points from last month: enterprise's own rate fell (-1.4), "
        "and smb grew as a share of the base (-0.5)."
    )


def test_drivers_match_the_registered_metrics(revenue_wb):
    d = revenue_wb.table("drivers")
    for name, metric in (("mrr_growth", "mrr_growth_rate"), ("logo_churn", "customer_churn_rate")):
        rows = d[(d.rate_name == name) & (d.comparison == "previous_month")]
        series = revenue_wb.series(metric).set_index("month").value
        assert rows.value_now.unique() == pytest.approx([series[pd.Timestamp("2024-05-01")]])
        assert rows.value_before.unique() == pytest.approx([series[pd.Timestamp("2024-04-01")]])
        for _, split in rows.groupby("by"):
            assert split.contribution.sum() == pytest.approx(split.value_now.iloc[0] - split.value_before.iloc[0])
    # May: A4 contracts 300 -> 200 (mid_market, outbound); everything else flat. MRR change by movement sums to it.
    change = revenue_wb.table("mrr_change_drivers")
    by_segment = change[change.by == "segment"].groupby("movement").amount.sum()
    mm = revenue_wb.table("mrr_movements").set_index("month").loc[pd.Timestamp("2024-05-01")]
    assert by_segment.sum() == pytest.approx(mm.mrr_end - mm.mrr_start)


# --------------------------------------------------------------------------- no look-ahead
# Nine accounts over Jan-Aug 2024; the forecast is made at the end of May. Rows after May: D's subscription and
# E's account (June), F's opportunity (July), I (created on the last day of August, so August is complete); B's
# opportunity was created in April and closes won in June.
LOOKAHEAD = {
    "accounts": """
        account_id,segment,created_at,acquisition_channel
        A,smb,2024-01-01T00:00:00Z,organic
        B,enterprise,2024-01-05T00:00:00Z,outbound
        C,smb,2024-02-01T00:00:00Z,organic
        G,smb,2024-03-01T00:00:00Z,paid_search
        H,smb,2024-05-31T12:00:00Z,organic
        D,smb,2024-04-01T00:00:00Z,organic
        E,smb,2024-06-10T00:00:00Z,organic
        F,enterprise,2024-07-01T00:00:00Z,outbound
        I,smb,2024-08-31T12:00:00Z,organic
    """,
    "subscriptions": """
        subscription_id,account_id,start_date,end_date,amount,billing_period_months,currency,discount_pct
        S1,A,2024-01-01,2024-03-01,100,1,USD,0
        S2,A,2024-03-01,,150,1,USD,0
        S3,B,2024-01-10,,12000,12,USD,0
        S4,C,2024-02-01,2024-07-01,80,1,USD,0
        S5,G,2024-03-01,2024-05-01,60,1,USD,0
        S6,D,2024-06-01,,90,1,USD,0
        S7,E,2024-06-15,,70,1,USD,0
        S8,B,2024-06-20,,2400,12,USD,0
    """,
    "opportunities": """
        opportunity_id,account_id,created_at,closed_at,stage,amount
        O1,B,2023-11-15T00:00:00Z,2024-01-09T00:00:00Z,won,12000
        O2,B,2024-04-15T00:00:00Z,2024-06-18T00:00:00Z,won,2400
        O3,F,2024-07-01T00:00:00Z,,proposal,24000
    """,
}


def _truncated(tables: dict[str, str], end: str) -> dict[str, str]:
    """`tables` with every row dated after `end` removed (accounts by created_at, subscriptions by start_date,
    opportunities by created_at); the rows kept are unchanged."""
    dates = {"accounts": "created_at", "subscriptions": "start_date", "opportunities": "created_at"}
    out = {}
    for name, text in tables.items():
        lines = [line.strip() for line in text.strip().splitlines()]
        col = lines[0].split(",").index(dates[name])
        out[name] = "\n".join([lines[0], *[x for x in lines[1:] if x.split(",")[col][:10] <= end]])
    return out


def test_a_forecast_made_at_m_is_unchanged_when_every_row_after_m_is_removed(tmp_path):
    full = open_workbook(str(write_source(tmp_path / "full", LOOKAHEAD)), "all", "2024-08", interactive=False)
    cut = open_workbook(
        str(write_source(tmp_path / "cut", _truncated(LOOKAHEAD, "2024-05-31"))), "all", "", interactive=False
    )
    assert cut.month_label == "2024-05"
    settings = SETTINGS.model_copy(update={"pipeline_months": 3, "horizon_months": 6, "backtest_origins": 3})
    may = JAN_2024 + 4
    a, b = fc.model_of(full), fc.model_of(cut)
    for scheduled in (True, False):
        pd.testing.assert_frame_equal(
            fc.project(a, may, settings, scheduled=scheduled), fc.project(b, may, settings, scheduled=scheduled)
        )
    # the pipeline open at the end of May holds O2 (closed only in June, so its stage then is unknown: the win rate
    # of the deals closed in the lookback, O1 won -> 1.0): 2,400 / 12 = 200 MRR landing at Apr 15 + 55 days (O1's
    # cycle) = June, one month ahead, for enterprise
    assert fc.pipeline_landing(a, may, settings, 12)[0].tolist() == [[200.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    pd.testing.assert_frame_equal(
        fc.backtest_forecasts(a, may, settings), fc.backtest_forecasts(b, may, settings), check_dtype=False
    )
    # and the registered table of the cut source is the full source's forecast made at May
    table = cut.table("forecast")
    default = params.forecast_settings()
    rebuilt = fc.forecast_frame(a, may, default, fc.interval_quantiles(fc.backtest_forecasts(a, may, default), default))
    pd.testing.assert_frame_equal(table.reset_index(drop=True), rebuilt, check_dtype=False)


# --------------------------------------------------------------------------- parameters and page
def test_forecast_parameters_are_checked(tmp_path):
    good = params.paths.FORECAST_FILE.read_text()
    bad = tmp_path / "forecast.yaml"
    bad.write_text(
        good.replace("age_buckets: [0, 3, 6, 12, 24]", "age_buckets: [3, 1]").replace(
            "horizon_months: 12", "horizon_month: 12"
        )
    )
    with pytest.raises(ParameterError) as err:
        params.forecast_settings(bad)
    assert "unknown key horizon_month" in str(err.value) and "forecast.yaml" in str(err.value)
    bad.write_text(good.replace("age_buckets: [0, 3, 6, 12, 24]", "age_buckets: [3, 1]"))
    with pytest.raises(ParameterError, match="age_buckets"):
        params.forecast_settings(bad)


def test_page_sections_render_without_a_failure(revenue_wb):
    from conftest import page_html

    for show in (page.show_headline, page.show_forecast, page.show_backtest, page.show_drivers, page.show_mrr_change):
        html = page_html(show, revenue_wb)
        assert "saaskpi-error" not in html.split("</style>")[-1]
    assert "No ARR target is set" in page_html(page.show_forecast, revenue_wb)


def test_target_text_uses_the_segment_target(revenue_wb):
    wb = replace(revenue_wb)
    wb.segment = wb.segment.model_copy(update={"targets": {"annual_recurring_revenue": 1.0}})
    assert "already at or above its target" in page.target_text(wb, wb.table("forecast"))
    wb.segment = wb.segment.model_copy(update={"targets": {"annual_recurring_revenue": 1e9}})
    assert "does not reach its target" in page.target_text(wb, wb.table("forecast"))


def test_funnel_conversion_is_compared_at_the_latest_mature_cohort():
    funnel = pd.DataFrame(
        {
            "month": pd.to_datetime(["2024-03-01", "2024-04-01", "2024-05-01", "2024-05-01"]),
            "stage": ["signup → customer", "signup → customer", "signup → customer", "signup → PQL"],
            "immature": [False, False, True, False],
        }
    )
    # May's signup -> customer cohort is still open: April is the latest mature one
    assert dr._latest_mature(funnel, JAN_2024 + 4) == JAN_2024 + 3
    assert dr._latest_mature(funnel[funnel.month > "2024-04-01"], JAN_2024 + 4) is None
