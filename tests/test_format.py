"""Number formatting by unit: literal inputs, literal strings."""
from __future__ import annotations

import math

from saaskpi import format as fmt


def test_values_by_unit():
    assert fmt.value(3_922_238.0, "currency") == "$3.9M"
    assert fmt.value(35_400.0, "currency") == "$35.4k"
    assert fmt.value(980.4, "currency") == "$980"
    assert fmt.value(-1200.0, "currency", "EUR") == "-€1.2k"
    assert fmt.value(0.0207, "fraction") == "2.1%"
    assert fmt.value(10.359, "ratio") == "10.4x"
    assert fmt.value(1207.0, "count") == "1,207"
    assert fmt.value(5.49, "count") == "5.5"
    assert fmt.value(14.25, "months") == "14.2 months"


def test_undefined_is_never_nan_or_infinity():
    for unit in ("currency", "fraction", "ratio", "count", "months"):
        assert fmt.value(float("nan"), unit) == "n/a"
        assert fmt.value(math.inf, unit) == "n/a"
        assert fmt.change(float("nan"), unit) == "n/a"
    assert fmt.value(None, "ratio") == "n/a"


def test_changes_are_signed():
    assert fmt.change(0.026, "fraction") == "+2.6 pts"
    assert fmt.change(-0.005, "fraction") == "−0.5 pts"
    assert fmt.change(179_300.0, "currency") == "+$179.3k"
    assert fmt.change(0.0, "ratio") == "±0.0x"
    assert fmt.count(1144) == "n=1,144"
