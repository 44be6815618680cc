"""Small-sample honesty: Wilson intervals and target status."""

from __future__ import annotations

import math


def wilson_interval(share: float, n: float, z: float = 1.959964) -> tuple[float, float]:
    """Wilson 95 % interval of a proportion `share` observed over `n` trials; (nan, nan) when n is 0 or share is not in [0, 1]."""
    if not n or n <= 0 or share is None or math.isnan(share) or not 0 <= share <= 1:
        return (float("nan"), float("nan"))
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def target_status(
    value: float, target: float | None, direction: str, near_band: float = 0.1, immature: bool = False
) -> str:
    """'on', 'near' or 'off' target given the metric's direction; 'n/a' without a value, target or direction;
    'immature' for a cohort value whose window is still open (shown, never judged)."""
    if immature:
        return "immature"
    if target is None or value is None or math.isnan(value) or direction == "neutral":
        return "n/a"
    gap = (value - target) if direction == "higher" else (target - value)
    if gap >= 0:
        return "on"
    tolerance = abs(target) * near_band if target else near_band
    return "near" if -gap <= tolerance else "off"


def peer_stats(values, min_peers: int = 5):
    """Peer benchmarks of one metric within groups.

    `values`: a pandas frame with `group` (any hashable) and `value` (NaN = no value, not a peer).
    Returns the frame with, per row, `peers` (accounts of its group with a value, itself included),
    `p25`, `median`, `p75` (linear interpolation), `percentile` (mid-rank: share of the group below
    plus half of those equal, x 100, so ties share one percentile) and `gap` (value - median);
    `compared` is False, and the statistics NaN, when the group has fewer than `min_peers`.
    """
    import numpy as np

    out = values.copy()
    has = out.value.notna()
    grouped = out[has].groupby("group").value
    size = grouped.transform("size")
    out["peers"] = size.reindex(out.index).fillna(0).astype("int64")
    for name, q in (("p25", 0.25), ("median", 0.5), ("p75", 0.75)):
        out[name] = grouped.transform(lambda s, q=q: float(np.quantile(s.to_numpy(), q))).reindex(out.index)
    below = grouped.rank(method="min") - 1  # accounts strictly below
    equal = grouped.transform(lambda s: s.map(s.value_counts()))  # accounts with the same value, itself included
    out["percentile"] = (100 * (below + 0.5 * equal) / size).reindex(out.index)
    out["gap"] = out.value - out["median"]
    out["compared"] = out.peers >= min_peers
    out.loc[~out.compared, ["p25", "median", "p75", "percentile", "gap"]] = float("nan")
    return out
