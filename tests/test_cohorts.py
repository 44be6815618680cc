"""Cohort triangles and survival on the hand-built accounts of conftest.REVENUE_TABLES."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from saaskpi.metrics.cohorts import (
    cohort_triangle,
    expected_lifetime_months,
    kaplan_meier,
    survival_curve,
    weighted_average_retention,
)


def triangle(frame: pd.DataFrame, value: str) -> dict:
    return {(c.strftime("%Y-%m"), k): v for c, k, v in zip(frame.cohort_month, frame.months_since_start, frame[value])}


def test_logo_retention_triangle(revenue_wb):
    t = revenue_wb.table("cohort_logo_retention")
    # January cohort: A1, A2, A4, A5 (first paid at end of Jan). February cohort: A3.
    # Jan cohort paying at k=0..4: 4, 3 (A2 gone), 3, 4 (A2 back), 4
    assert triangle(t, "retained_accounts") == {
        ("2024-01", 0): 4,
        ("2024-01", 1): 3,
        ("2024-01", 2): 3,
        ("2024-01", 3): 4,
        ("2024-01", 4): 4,
        ("2024-02", 0): 1,
        ("2024-02", 1): 1,
        ("2024-02", 2): 0,
        ("2024-02", 3): 0,
    }
    assert triangle(t, "retention_rate")[("2024-01", 1)] == pytest.approx(0.75)  # 3 / 4
    assert set(t.cohort_accounts[t.cohort_month == pd.Timestamp("2024-02")]) == {1}


def test_revenue_retention_triangle(revenue_wb):
    t = revenue_wb.table("cohort_revenue_retention")
    mrr = triangle(t, "mrr")
    # Jan cohort MRR: 570 at start; Feb 100 + 300 + 150 = 550; Mar 150 + 300 + 150 = 600;
    # Apr 150 + 60 + 300 + 150 = 660; May 150 + 60 + 200 + 150 = 560
    assert [mrr[("2024-01", k)] for k in range(5)] == pytest.approx([570, 550, 600, 660, 560])
    assert triangle(t, "revenue_retention")[("2024-01", 3)] == pytest.approx(660 / 570)  # above 100 %


def test_weighted_average_row(revenue_wb):
    t = revenue_wb.table("cohort_logo_retention")
    w = weighted_average_retention(t).set_index("months_since_start")
    # k=1: (3 + 1) / (4 + 1) = 0.8; k=2: (3 + 0) / (4 + 1) = 0.6; k=4: only the Jan cohort: 4 / 4
    assert w.loc[1, "retention_rate"] == pytest.approx(0.8)
    assert w.loc[2, "retention_rate"] == pytest.approx(0.6)
    assert w.loc[4, "retention_rate"] == pytest.approx(1.0)


def test_triangle_by_segment(revenue_wb):
    accounts = revenue_wb.tables.frames["accounts"].to_pandas()
    t = cohort_triangle(revenue_wb.table("account_mrr"), revenue_wb.as_of, accounts, by="segment")
    smb = t[(t.segment == "smb") & (t.cohort_month == pd.Timestamp("2024-01"))]
    # smb January cohort: A1, A2, A5; A2 gone in Feb and Mar
    assert smb.retained_accounts.tolist() == [3, 2, 2, 3, 3]
    assert set(t.segment) == {"smb", "mid_market", "enterprise"}


def test_kaplan_meier_survival_by_segment(revenue_wb):
    s = revenue_wb.table("logo_survival")
    smb = s[s.segment == "smb"].set_index("months")
    # smb spells: A1 5 censored, A2 1 churned, A5 5 censored -> S(1) = 2/3, then flat
    assert smb.loc[1, "survival"] == pytest.approx(2 / 3)
    assert smb.loc[5, "survival"] == pytest.approx(2 / 3)
    ent = s[s.segment == "enterprise"].set_index("months")
    assert ent.loc[2, "survival"] == pytest.approx(0.0)  # A3 churned after 2 months
    assert (s.lower <= s.survival).all() and (s.survival <= s.upper).all()


def spells(durations: list[int], churned: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"duration": durations, "churned": [bool(c) for c in churned]})


def test_kaplan_meier_by_hand():
    # 10 spells; churned at 1, 1, 2, 3, 4, 6; still paying (censored) at 3, 5, 5, 6
    km = kaplan_meier(spells([5, 1, 5, 2, 3, 3, 4, 1, 6, 6], [0, 1, 0, 1, 1, 0, 1, 1, 0, 1])).set_index("months")
    # S(1) = 8/10; S(2) = .8 x 7/8 = .7; S(3) = .7 x 6/7 = .6; S(4) = .6 x 4/5 = .48; S(5) = .48 (no churn);
    # S(6) = .48 x 1/2 = .24
    assert km.survival.tolist() == pytest.approx([1, 0.8, 0.7, 0.6, 0.48, 0.48, 0.24])
    assert km.at_risk.tolist() == [10, 10, 8, 7, 5, 4, 2]  # spells lasting at least t months
    # the exponential Greenwood ("log-log") band, as lifelines 0.30 computed it on the same spells
    assert km.lower.tolist() == pytest.approx([1, 0.408691, 0.328717, 0.252669, 0.160855, 0.160855, 0.015055], abs=1e-6)
    assert km.upper.tolist() == pytest.approx([1, 0.945873, 0.891949, 0.827221, 0.744666, 0.744666, 0.615465], abs=1e-6)


def test_kaplan_meier_band_collapses_where_survival_is_one_or_zero():
    # churned at 2, still paying at 1, 2 and churned at 5: S = 1, 1, 2/3, 0 (lifelines' numbers for the band)
    km = kaplan_meier(spells([1, 2, 2, 5], [0, 1, 0, 1])).set_index("months")
    assert km.survival.tolist() == pytest.approx([1, 1, 2 / 3, 0])
    assert km.lower.tolist() == pytest.approx([1, 1, 0.054073, 0], abs=1e-6)
    assert km.upper.tolist() == pytest.approx([1, 1, 0.945206, 0], abs=1e-6)
    censored = kaplan_meier(spells([1, 3, 3], [0, 0, 0]))
    assert censored.survival.tolist() == censored.lower.tolist() == censored.upper.tolist() == [1, 1, 1]


def test_the_curve_without_scipy_is_scipys_estimate():
    # identity: the product-limit estimate by hand (survival_curve, what a lifetime needs) and scipy's (kaplan_meier's
    # band comes from it) agree on spells with ties, censoring at churn times, and churn in month 0
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        s = spells(rng.integers(0, 12, n).tolist(), rng.integers(0, 2, n).tolist())
        fit = stats.ecdf(
            stats.CensoredData(
                uncensored=s.duration[s.churned].to_numpy(float), right=s.duration[~s.churned].to_numpy(float)
            )
        ).sf
        curve = survival_curve(s)
        assert curve.survival.to_numpy() == pytest.approx(fit.evaluate(curve.months.to_numpy(float)), abs=1e-12)
        assert kaplan_meier(s).survival.tolist() == curve.survival.tolist()


def test_expected_lifetime_is_the_area_under_the_curve():
    s = spells([5, 1, 5, 2, 3, 3, 4, 1, 6, 6], [0, 1, 0, 1, 1, 0, 1, 1, 0, 1])
    assert expected_lifetime_months(s, 4) == pytest.approx(3.1)  # 1 + .8 + .7 + .6
    assert expected_lifetime_months(s, 60) == pytest.approx(17.02)  # 3.1 + .48 + .48 + .24 x 54 (last value carries on)
    assert expected_lifetime_months(spells([1, 3], [0, 0]), 60) == pytest.approx(60)  # nobody churned: the horizon
    assert expected_lifetime_months(spells([0, 0, 1, 2], [1, 0, 1, 0]), 3) == pytest.approx(1.5)  # .75 + .375 x 2
    assert math.isnan(expected_lifetime_months(spells([], []), 60))
