"""Target statuses people can trust: small samples flagged, open cohorts not hiding a long miss."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from conftest import REVENUE_TABLES, write_source

from saaskpi.metrics import METRICS
from saaskpi.workbook import open_workbook


@pytest.fixture
def wb(tmp_path, monkeypatch):
    monkeypatch.setenv("SAASKPI_CACHE_DIR", "off")  # the series are served by `_serve`, not kept in the store
    return open_workbook(str(write_source(tmp_path / "rev", REVENUE_TABLES)), "all", "2024-05", interactive=False)


def _serve(wb, monkeypatch, name, series):
    """Make `wb` compute `series` for metric `name` (whatever tables the literal source has)."""
    monkeypatch.setitem(METRICS, name, dataclasses.replace(METRICS[name], needs=("accounts",)))
    monkeypatch.setattr(wb, "series", lambda _name: series)


@pytest.mark.parametrize(
    "name, value, target_status",
    [
        ("customer_acquisition_cost", 214_000.0, "n/a"),
        ("average_deal_size", 210_500.0, "n/a"),
        ("ltv_to_cac_ratio", 16.6, "on"),
        ("cac_payback_months", 15.5, "off"),
    ],
)
def test_small_sample_rule_on_six_customers(wb, monkeypatch, name, value, target_status):
    # enterprise in the demo: 6 new customers. An average or multiple of 6 items is flagged, never judged on/off
    # (LTV:CAC 16.6x against 3.0x would read "on"; payback 15.5 months against 12 "off").
    for n, low, status in ((6, True, "small sample" if target_status != "n/a" else "n/a"), (20, False, target_status)):
        series = pd.DataFrame(
            {"month": [wb.month - pd.offsets.MonthBegin(1), wb.month], "value": [value, value], "n": [n, n]}
        )
        _serve(wb, monkeypatch, name, series)
        v = wb.value(name)
        assert (v.n, v.low_n, v.status) == (n, low, status), (name, n)
    assert METRICS[name].estimate


def test_totals_and_counts_are_not_samples():
    # MRR of 6 accounts is exact, not an estimate; a rate of 6 is
    assert not METRICS["monthly_recurring_revenue"].estimate and not METRICS["new_customers"].estimate
    assert METRICS["customer_churn_rate"].estimate and METRICS["average_revenue_per_account"].estimate


def test_an_open_cohort_does_not_hide_a_long_miss(wb, monkeypatch):
    # trial-to-paid (target 15 %): Jan-Mar cohorts have a closed window at 8 %, 9 %, 10 %; Apr and May are still
    # open. The tile shows and judges March (10 % < 15 % - 10 % band -> off), not "immature".
    months = pd.date_range("2024-01-01", periods=5, freq="MS")
    series = pd.DataFrame(
        {
            "month": months,
            "value": [0.08, 0.09, 0.10, 0.02, 0.0],
            "n": [300] * 5,
            "immature": [False, False, False, True, True],
        }
    )
    _serve(wb, monkeypatch, "trial_to_paid_conversion", series)
    v = wb.value("trial_to_paid_conversion")
    assert (v.month, v.value, v.status, v.immature) == (pd.Timestamp("2024-03-01"), 0.10, "off", False)
    assert v.change == pytest.approx(0.01)  # March 10 % - February 9 %
    # while no cohort has closed yet, the month is immature and not judged
    _serve(wb, monkeypatch, "trial_to_paid_conversion", series.assign(immature=True))
    assert wb.value("trial_to_paid_conversion").status == "immature"
