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


def target_status(value: float, target: float | None, direction: str, near_band: float = 0.1,
                  immature: bool = False) -> str:
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
