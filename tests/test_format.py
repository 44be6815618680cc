"""Number formatting by unit: literal inputs, literal strings."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from saaskpi import format as fmt
from saaskpi.metrics import METRICS
from saaskpi.metrics.registry import UNITS


def test_values_by_unit():
    assert fmt.value(3_922_238.0, "currency") == "$3.9M"
    assert fmt.value(35_400.0, "currency") == "$35.4k"
    assert fmt.value(980.4, "currency") == "$980"
    assert fmt.value(-1200.0, "currency", "EUR") == "−€1.2k"  # the minus sign, as in changes and on chart axes
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


def test_plain_numbers_counts_and_scores():
    assert fmt.value(0.6874, "number") == "0.69"  # an AUC is a number, not 68.7 %
    assert fmt.value(0.0024, "number") == "0.0024"  # viral coefficient: no "x"
    assert fmt.value(89.5, "count") == "89.5"  # an average count: no "x"
    assert fmt.value(31.0, "score") == "31"  # a whole score without ".0"
    assert fmt.value(-26.4, "score") == "−26.4"


def test_negative_zero_is_never_rendered():
    assert fmt.change(-0.00001, "fraction") == "±0.0 pts"  # not "−0.0 pts"
    assert fmt.change(-0.3, "count") == "−0.3"
    assert fmt.change(-0.01, "count") == "±0"
    assert fmt.value(-0.0001, "fraction") == "0.0%"
    assert fmt.value(-0.4, "currency") == "$0"
    assert fmt.value(-0.0, "score") == "0"
    # a fraction beyond a float once a percentage (found by the property below): 1.8e306 x 100 overflows
    assert fmt.value(1.797693134862316e306, "fraction") == "n/a"
    assert fmt.change(-1.797693134862316e306, "fraction") == "n/a"


@given(st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from(sorted(UNITS)))
def test_formatter_property(v, unit):
    text, delta = fmt.value(v, unit), fmt.change(v, unit)
    for out in (text, delta):
        assert "nan" not in out.lower() and "inf" not in out.lower() and "e+" not in out and "e-" not in out
        if "-" in out or "−" in out:  # a minus sign only where a digit is not zero
            assert any(ch in "123456789" for ch in out), out
    assert text.endswith("x") == (unit == "ratio" and text != "n/a")  # "x" only for multiples


def test_every_multiple_is_a_ratio():
    # units that read "x" are multiples; coefficients, AUC and per-account averages are not
    for name in ("viral_coefficient", "health_backtest_auc", "cost_to_serve_per_arr"):
        assert METRICS[name].unit == "number", name
    for name in ("accounts_per_csm", "touchpoints_per_account"):
        assert METRICS[name].unit == "count", name
    for name in ("ltv_to_cac_ratio", "saas_quick_ratio", "magic_number", "burn_multiple"):
        assert METRICS[name].unit == "ratio", name
