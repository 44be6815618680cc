"""The hand-written statistics agree with scipy's on small literal samples (and with the arithmetic)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp

from saaskpi.metrics.health import roc_auc
from saaskpi.stats import peer_stats, wilson_interval


@pytest.mark.parametrize(("k", "n"), [(0, 20), (1, 7), (5, 10), (13, 40), (40, 40), (3, 1000)])
def test_wilson_interval_matches_scipy(k, n):
    expected = sp.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k / n, n) == pytest.approx((expected.low, expected.high), abs=1e-6)


def test_mid_rank_percentile_matches_scipy():
    # group a: 10, 20, 20, 30, 40 -> 20 has 1 below and 2 equal: (1 + 0.5 x 2) / 5 = 40
    values = pd.DataFrame({"group": ["a"] * 5 + ["b"] * 5, "value": [10, 20, 20, 30, 40, 5, 5, 5, 6, 9]})
    out = peer_stats(values, min_peers=5)
    assert out.percentile.iloc[1] == pytest.approx(40)
    for group, rows in out.groupby("group"):
        sample = rows.value.to_numpy()
        expected = [sp.percentileofscore(sample, v, kind="mean") for v in sample]
        assert rows.percentile.tolist() == pytest.approx(expected), group
        assert rows["median"].iloc[0] == pytest.approx(np.quantile(sample, 0.5))


def test_roc_auc_by_hand_and_against_the_rank_formula():
    scores = np.array([0.9, 0.8, 0.8, 0.3, 0.2, 0.1])
    positive = np.array([True, True, False, True, False, False])
    # pairs (pos, neg) ranked right: 0.9 beats 3, 0.8 beats 2 and ties 1 (half), 0.3 beats 2 -> 7.5 of 9
    assert roc_auc(scores, positive) == pytest.approx(7.5 / 9)
    ranks = sp.rankdata(scores)  # the Mann-Whitney rank-sum form
    n_pos, n_neg = positive.sum(), (~positive).sum()
    assert roc_auc(scores, positive) == pytest.approx(
        (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    )
    assert np.isnan(roc_auc(scores, np.ones(6, dtype=bool)))


def test_roc_auc_is_scipys_mann_whitney_u():
    # identity on random samples with many ties: U / (n_pos x n_neg)
    rng = np.random.default_rng(3)
    for _ in range(20):
        scores, positive = rng.integers(0, 8, 50).astype(float), rng.random(50) < 0.3
        u = sp.mannwhitneyu(scores[positive], scores[~positive]).statistic
        assert roc_auc(scores, positive) == pytest.approx(u / (positive.sum() * (~positive).sum()), abs=1e-12)
