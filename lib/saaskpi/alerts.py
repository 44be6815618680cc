"""Inter-relational alerts: rules in `parameters/alerts.yaml`, evaluated on a workbook's series.

The `spikes` block of the same file sets the weekly spike alerts (spikes.py). A condition compares the mean of a metric's last `months` complete months (immature cohort months
are skipped) with the mean of the `months` before them; a rule fires when all its conditions hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .errors import ParameterError
from .params import read_yaml
from .spikes import KEY as SPIKES

TRENDS = ("rising", "falling")


@dataclass(frozen=True)
class Condition:
    metric: str
    trend: str
    months: int = 3
    min_change: float = 0.05


@dataclass(frozen=True)
class Rule:
    name: str
    message: str
    when: tuple[Condition, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Alert:
    """A rule that fired, with the moves that made it fire (metric, earlier mean, recent mean)."""

    rule: str
    message: str
    evidence: tuple[tuple[str, float, float], ...]


def rules(path: Path = paths.PARAMETERS_DIR / "alerts.yaml") -> list[Rule]:
    """The alert rules; unknown keys, metrics or trends are a ParameterError naming the rule."""
    from .metrics import METRICS

    if not path.exists():
        return []
    out = []
    for name, spec in (read_yaml(path) or {}).items():
        if name == SPIKES:  # the spike alerts' settings (spikes.py), not a rule
            continue
        where = f"{path.name}: rule `{name}`"
        if (
            not isinstance(spec, dict)
            or set(spec) - {"when", "message"}
            or not spec.get("when")
            or not spec.get("message")
        ):
            raise ParameterError(f"{where} needs exactly `when` (a list of conditions) and `message`.")
        conditions = []
        for c in spec["when"]:
            if not isinstance(c, dict) or set(c) - {"metric", "trend", "months", "min_change"}:
                raise ParameterError(f"{where}: a condition has keys metric, trend, months, min_change; got {c!r}.")
            if c.get("metric") not in METRICS:
                raise ParameterError(f"{where}: unknown metric {c.get('metric')!r} (see docs/metrics.md).")
            if c.get("trend") not in TRENDS:
                raise ParameterError(f"{where}: trend must be rising or falling, got {c.get('trend')!r}.")
            try:
                conditions.append(
                    Condition(c["metric"], c["trend"], int(c.get("months", 3)), float(c.get("min_change", 0.05)))
                )
            except (TypeError, ValueError):
                raise ParameterError(
                    f"{where}: months must be a whole number and min_change a number, got {c!r}."
                ) from None
        out.append(Rule(name, " ".join(str(spec["message"]).split()), tuple(conditions)))
    return out


def move(series, months: int) -> tuple[float, float]:
    """Mean of the last `months` complete values and of the `months` before them (NaN when too few)."""
    s = series[~series["immature"]] if "immature" in series else series
    values = s.value.dropna().tolist()
    if len(values) < 2 * months:
        return math.nan, math.nan
    recent, earlier = values[-months:], values[-2 * months : -months]
    return sum(earlier) / months, sum(recent) / months


def holds(condition: Condition, earlier: float, recent: float) -> bool:
    """Whether the move from `earlier` to `recent` is the condition's trend by at least min_change."""
    if math.isnan(earlier) or math.isnan(recent):
        return False
    change = (
        (recent - earlier) / abs(earlier) if earlier else (math.inf if recent > 0 else -math.inf if recent < 0 else 0.0)
    )
    return change >= condition.min_change if condition.trend == "rising" else change <= -condition.min_change


def evaluate(wb, rule_list: list[Rule] | None = None) -> list[Alert]:
    """The rules that fire for the workbook's segment and month (rules whose tables are absent are skipped)."""
    from .metrics import METRICS

    fired = []
    for rule in rules() if rule_list is None else rule_list:
        if any(wb.tables.missing(*METRICS[c.metric].needs) for c in rule.when):
            continue
        evidence = []
        for c in rule.when:
            earlier, recent = move(wb.series(c.metric), c.months)
            if not holds(c, earlier, recent):
                break
            evidence.append((c.metric, earlier, recent))
        else:
            fired.append(Alert(rule.name, rule.message, tuple(evidence)))
    return fired
