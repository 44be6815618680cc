"""Comparisons (issue 25, item 6), computed by hand from the literal source of test_churn_reasons.py (as_of April
2024; no spend table, so gross margin is default_gross_margin 0.8 and the CS cost 0):

  At the end of April: C2 pro 150; C3 core 1000 + analytics 100; C4 premium 800 (C1, C5, C6 have churned).
  MRR 2050 over 3 accounts; segments smb C2 150, enterprise C3 + C4 1900; primary plans pro, core (1000 > 100),
  premium.
  Plan lines Jan-Apr: core C3 1000 from Jan, C4 500 Jan-Feb (ended in Mar), C5 300 Jan-Mar (ended in Apr);
  basic C1 100 Jan-Feb (ended Mar), C6 100 Jan (ended Feb); pro C2 200 Jan, 150 from Feb (contraction 50 in Feb);
  analytics 100 from Mar; premium 800 from Mar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import page_html, write_source
from test_churn_reasons import TABLES

from saaskpi.metrics.comparisons import TOTAL, primary_plans, retention_row
from saaskpi.pages import comparisons
from saaskpi.workbook import open_workbook

MAR, APR = pd.Timestamp("2024-03-01"), pd.Timestamp("2024-04-01")


@pytest.fixture(scope="module")
def wb(tmp_path_factory):
    folder = write_source(tmp_path_factory.mktemp("compare") / "src", TABLES)
    return open_workbook(str(folder), "all", "2024-04", interactive=False)


def test_retention_row_by_hand():
    base = pd.Series({"a": 100.0, "b": 200.0, "c": 50.0})
    now = pd.Series({"a": 150.0, "c": 50.0, "d": 999.0})  # b left; d was not paying 12 months ago
    r = retention_row(base, now)
    assert r["base_accounts"] == 3
    assert r["nrr_12m"] == pytest.approx((150 + 0 + 50) / 350)
    assert r["grr_12m"] == pytest.approx((100 + 0 + 50) / 350)  # min(100, 150) + min(200, 0) + min(50, 50)
    assert r["logo_churn_12m"] == pytest.approx(1 / 3)


def test_primary_plan_is_the_one_with_most_mrr_then_the_first_name():
    p = pd.DataFrame(
        {
            "account_id": ["A", "A", "B", "B", "C"],
            "month": pd.to_datetime(["2024-01-01"] * 5),
            "plan": ["core", "analytics", "zeta", "alpha", ""],
            "mrr": [1000.0, 100.0, 50.0, 50.0, 10.0],
        }
    )
    got = primary_plans(p).set_index("account_id").plan
    assert got.to_dict() == {"A": "core", "B": "alpha", "C": "(no plan)"}


def test_group_comparison_by_hand(wb):
    t = wb.table("group_comparison").set_index(["breakdown", "group"])
    assert t.loc[("segment", "enterprise")].mrr == pytest.approx(1900.0)
    assert t.loc[("segment", "enterprise")].accounts == 2
    assert t.loc[("segment", "enterprise")].arpa == pytest.approx(950.0)
    assert t.loc[("segment", "smb")].mrr_share == pytest.approx(150 / 2050)
    assert t.loc[("plan", "core")].mrr == pytest.approx(1100.0)  # C3's analytics add-on counts under its primary plan
    assert t.loc[("plan", "premium")].accounts == 1
    assert t.loc[("region", "unknown")].accounts == 3  # no region column: the contract's default
    assert t.loc[("total", TOTAL)].mrr == pytest.approx(2050.0)
    assert np.isnan(t.loc[("total", TOTAL)].nrr_12m)  # nobody paid 12 months before April 2024


def test_new_arr_by_group_by_hand(wb):
    t = wb.table("group_comparison").set_index(["breakdown", "group"]).new_arr_12m
    # every account's first paying month is January 2024 (in the 12 months to April): C1 100, C2 200, C3 1000,
    # C4 500, C5 300, C6 100 -> 2,200 x 12 = 26,400
    assert t[("total", TOTAL)] == pytest.approx(26_400)
    # smb C1 + C2 + C6 = 400 x 12; enterprise C3 + C4 = 1,500 x 12; mid_market C5 300 x 12, a group with no account
    # paying now nor 12 months before, still shown
    assert t["segment"].to_dict() == pytest.approx({"enterprise": 18_000, "mid_market": 3_600, "smb": 4_800})
    # by the primary plan in January: basic C1 + C6 200, pro C2 200, core C3 + C4 + C5 1,800
    assert t["plan"].reindex(["basic", "pro", "core"]).tolist() == pytest.approx([2_400, 2_400, 21_600])


def test_groups_add_up_to_the_total(wb):
    """Identity: in every breakdown, the groups' accounts and MRR add up to the total; the trend's to MRR."""
    t = wb.table("group_comparison")
    total = t[t.breakdown == "total"].iloc[0]
    for by, part in t[t.breakdown != "total"].groupby("breakdown"):
        assert part.accounts.sum() == total.accounts, by
        assert part.mrr.sum() == pytest.approx(total.mrr), by
        assert part.mrr_share.sum() == pytest.approx(1.0), by
        assert part.new_arr_12m.sum() == pytest.approx(total.new_arr_12m), by
    # and the total is the growth page's new ARR over the same 12 months
    by_channel = wb.table("new_arr_by_channel")
    recent = by_channel[(by_channel.month > APR - pd.DateOffset(months=12)) & (by_channel.month <= APR)]
    assert total.new_arr_12m == pytest.approx(recent.new_arr.sum())
    trend = wb.table("group_mrr_trend")
    m = wb.table("mrr_movements").set_index("month")
    for _by, part in trend.groupby("breakdown"):
        sums = part.groupby("month")[["mrr", "accounts"]].sum()
        np.testing.assert_allclose(sums.mrr, m.mrr_end.reindex(sums.index))
        np.testing.assert_array_equal(sums.accounts, m.accounts_end.reindex(sums.index))


def test_plan_performance_by_hand(wb):
    p = wb.table("plan_performance").set_index("plan")
    core = p.loc["core"]
    assert core.accounts == 1 and core.mrr == pytest.approx(1000.0)
    assert core.added_mrr_12m == pytest.approx(1800.0)  # C3 1000 + C4 500 + C5 300 started in January
    assert core.ended_mrr_12m == pytest.approx(800.0)  # C4 500 (switched to premium in Mar) + C5 300 (churned Apr)
    # core's MRR at the month starts: Jan 0, Feb 1800, Mar 1800, Apr 1000 + 300 = 1300 -> 4900
    assert core.gross_churn_rate == pytest.approx(800 / 4900)
    assert p.loc["pro"].contraction_mrr_12m == pytest.approx(50.0)
    assert p.loc["premium"].added_mrr_12m == pytest.approx(800.0)
    assert p.loc["basic"].accounts == 0 and p.loc["basic"].ended_mrr_12m == pytest.approx(200.0)
    assert core.gross_margin == pytest.approx(0.8) and core.cs_cost == 0.0
    assert core.contribution == pytest.approx(800.0) and core.contribution_margin == pytest.approx(0.8)
    assert p.mrr.sum() == pytest.approx(2050.0)  # identity: plans add up to MRR
    assert p.mrr_share.sum() == pytest.approx(1.0)


def test_engagements_by_type(wb):
    t = wb.table("engagements_by_type").set_index(["month", "kind"])
    assert t.loc[(MAR, "call")].touchpoints == 2 and t.loc[(MAR, "call")].accounts == 2
    assert t.loc[(MAR, "call")].positive == 1 and t.loc[(MAR, "call")].negative == 1
    assert t.loc[(MAR, "qbr")].touchpoints == 1
    assert t.loc[(APR, "unknown")].touchpoints == 1  # P4 has no kind
    assert t.touchpoints.sum() == 4  # identity: every touchpoint in the calendar once


def test_csm_trends(wb):
    t = wb.table("csm_trends").set_index(["csm_id", "month"])
    # K1 owns C1-C4: at the end of March C2, C3, C4 pay (C1 left on Mar 10): 150 + 1100 + 800 = 2050 MRR
    assert t.loc[("K1", MAR)].accounts == 3
    assert t.loc[("K1", MAR)].arr == pytest.approx(2050 * 12)


def test_page_without_optional_tables_says_what_to_add(wb):
    assert "Feature usage needs" in page_html(comparisons.show_feature_usage, wb) or "usage_events" in page_html(
        comparisons.show_feature_usage, wb
    )
    html = page_html(comparisons.show_groups, wb, "plan")
    assert "premium" in html and "(all)" in html
    assert "core" in page_html(comparisons.show_plans, wb)
    assert "touchpoints by type" in page_html(comparisons.show_engagements, wb)
    assert "No breakdown" in page_html(comparisons.show_groups, wb, "colour")


def test_a_one_segment_page_compares_regions_first(wb):
    # the company compares its segments; on the enterprise page the segments would be one row, so regions come first
    assert comparisons.first_breakdown(wb) == "segment"
    assert comparisons.first_breakdown(wb.with_choice(segment="enterprise")) == "region"
