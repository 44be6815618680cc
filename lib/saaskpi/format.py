"""Numbers as people read them, by the metric's unit; `n/a` for anything undefined."""
from __future__ import annotations

import math

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def _bad(value) -> bool:
    return value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def money(value: float, currency: str = "USD") -> str:
    """$1.2M, $35.4k, $980: the reporting currency with a short suffix."""
    if _bad(value):
        return "n/a"
    sym = SYMBOLS.get(currency, currency + " ")
    sign = "-" if value < 0 else ""
    v = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= limit:
            return f"{sign}{sym}{v / limit:.1f}{suffix}"
    return f"{sign}{sym}{v:,.0f}"


def value(v: float, unit: str, currency: str = "USD") -> str:
    """A metric value formatted for its unit."""
    if _bad(v):
        return "n/a"
    if unit == "currency":
        return money(v, currency)
    if unit == "fraction":
        return f"{v * 100:.1f}%"
    if unit == "ratio":
        return f"{v:.1f}x" if abs(v) >= 0.1 or v == 0 else f"{v:.2g}x"
    if unit == "count":
        return f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:,.1f}"
    if unit in ("months", "days", "hours", "minutes"):
        return f"{v:,.1f} {unit}"
    return f"{v:,.1f}"


def change(delta: float, unit: str, currency: str = "USD") -> str:
    """A signed month-over-month change: +2.1 pts for fractions, +$3.4k for money."""
    if _bad(delta):
        return "n/a"
    sign = "+" if delta > 0 else ("−" if delta < 0 else "±")
    mag = abs(delta)
    if unit == "fraction":
        return f"{sign}{mag * 100:.1f} pts"
    if unit == "currency":
        return sign + money(mag, currency)
    return sign + value(mag, unit, currency)


def count(n: float) -> str:
    """A sample size: n=1,234."""
    return "n=–" if _bad(n) else f"n={n:,.0f}"


def ordinal(n: float) -> str:
    """1st, 2nd, 3rd, 11th, 22nd, 53rd, 100th."""
    k = int(round(n))
    suffix = "th" if 11 <= k % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"
