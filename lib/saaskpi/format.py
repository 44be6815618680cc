"""Numbers as people read them, by the metric's unit; `n/a` for anything undefined.

Units: `currency` ($1.2M), `fraction` (12.3%), `ratio` (a multiple: 3.2x), `number` (a plain decimal
such as a coefficient or an AUC: 0.69), `count` (1,234; an average count keeps one decimal: 47.5),
`score` (31, or 31.5 when not whole), and durations (`months`, `days`, `hours`, `minutes`).
A negative value takes the minus sign (−, U+2212), as changes and the charts' axes (d3-format) do; a value that
rounds to zero is shown as zero, never as "-0".
"""

from __future__ import annotations

import math

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
MINUS = "−"  # U+2212


def _bad(value) -> bool:
    return value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def _unsigned_zero(text: str) -> str:
    """`text` without a minus sign when every digit in it is 0 ("-0.0" -> "0.0", "-$0" -> "$0")."""
    if text[:1] in "-−" and not any(ch in "123456789" for ch in text):
        return text[1:]
    return text


def money(value: float, currency: str = "USD") -> str:
    """$1.2M, $35.4k, $980: the reporting currency with a short suffix."""
    if _bad(value):
        return "n/a"
    sym = SYMBOLS.get(currency, currency + " ")
    sign = MINUS if value < 0 else ""
    v = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= limit or (limit > 1e3 and v >= limit * 0.99995):  # $999,960 is $1.0M, not $1000.0k
            return _unsigned_zero(f"{sign}{sym}{v / limit:.1f}{suffix}")
    return _unsigned_zero(f"{sign}{sym}{v:,.0f}")


def _decimal(v: float) -> str:
    """A plain number with two significant decimals where it is small: 0.69, 0.0024, 12.3."""
    if v == 0 or abs(v) >= 10:
        return f"{v:,.1f}"
    if abs(v) >= 0.1:
        return f"{v:.2f}"
    return f"{v:.2g}" if abs(v) >= 0.001 else f"{v:.4f}"  # never scientific notation


def value(v: float, unit: str, currency: str = "USD") -> str:
    """A metric value formatted for its unit."""
    if _bad(v):
        return "n/a"
    text = _unsigned_zero(_value(float(v), unit, currency))
    return MINUS + text[1:] if text.startswith("-") else text


def _value(v: float, unit: str, currency: str) -> str:
    if unit == "currency":
        return money(v, currency)
    if unit == "fraction":
        percent = v * 100
        return f"{percent:.1f}%" if math.isfinite(percent) else "n/a"  # n/a: beyond a float as a percentage
    if unit == "ratio":
        return f"{v:,.1f}x" if abs(v) >= 0.1 or v == 0 else f"{_decimal(v)}x"
    if unit == "number":
        return _decimal(v)
    if unit in ("count", "score"):
        return f"{v:,.0f}" if abs(v) >= 100 or round(v, 1).is_integer() else f"{v:,.1f}"
    if unit in ("months", "days", "hours", "minutes"):
        return f"{v:,.1f} {unit}"
    return f"{v:,.1f}"


def change(delta: float, unit: str, currency: str = "USD") -> str:
    """A signed month-over-month change: +2.1 pts for fractions, +$3.4k for money."""
    if _bad(delta):
        return "n/a"
    mag = abs(delta)
    text = value(mag, unit, currency).replace("%", " pts") if unit == "fraction" else value(mag, unit, currency)
    if text == "n/a":
        return text
    if not any(ch in "123456789" for ch in text):  # rounds to nothing: no sign, never "-0.0 pts"
        return "±" + text
    return ("+" if delta > 0 else MINUS) + text


def count(n: float) -> str:
    """A sample size: n=1,234."""
    return "n=–" if _bad(n) else f"n={n:,.0f}"


def ordinal(n: float) -> str:
    """1st, 2nd, 3rd, 11th, 22nd, 53rd, 100th."""
    k = int(round(n))
    suffix = "th" if 11 <= k % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"
