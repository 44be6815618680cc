"""Cohort triangles and survival on the hand-built accounts of conftest.REVENUE_TABLES."""
from __future__ import annotations

import pandas as pd
import pytest

from saaskpi.metrics.cohorts import cohort_triangle, weighted_average_retention


def triangle(frame: pd.DataFrame, value: str) -> dict:
    return {(c.strftime("%Y-%m"), k): v for c, k, v in zip(frame.cohort_month, frame.months_since_start, frame[value])}


def test_logo_retention_triangle(revenue_wb):
    t = revenue_wb.table("cohort_logo_retention")
    # January cohort: A1, A2, A4, A5 (first paid at end of Jan). February cohort: A3.
    # Jan cohort paying at k=0..4: 4, 3 (A2 gone), 3, 4 (A2 back), 4
    assert triangle(t, "retained_accounts") == {
        ("2024-01", 0): 4, ("2024-01", 1): 3, ("2024-01", 2): 3, ("2024-01", 3): 4, ("2024-01", 4): 4,
        ("2024-02", 0): 1, ("2024-02", 1): 1, ("2024-02", 2): 0, ("2024-02", 3): 0,
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
