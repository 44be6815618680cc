"""The metric registry: every KPI declared once, validated at import, read by everything else.

A metric is a pure function named after the value it returns. Its parameters name its inputs:
tables (registered with `@table`) or `conventions`. It returns one row per month with columns
``month`` (Timestamp), ``value`` (float, NaN = n/a) and ``n`` (the denominator or sample size).
Notebooks, the CLI, tests, KPI tiles and `docs/metrics.md` all read `METRICS`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

from ..errors import SaasKpiError

UNITS = {"currency", "fraction", "ratio", "number", "count", "months", "days", "hours", "minutes", "score"}
DIRECTIONS = {"higher", "lower", "neutral"}
LEVELS = ("north_star", "core", "supporting", "operational")
CADENCES = {"daily", "weekly", "monthly", "quarterly"}
SOURCES = {
    "J": "Customer-journey KPIs",
    "U": "B2B SaaS dashboard guide",
    "S": "SaaS metrics collection",
    "C": "Customer-success KPIs",
    "P": "CS metrics talk",
}


@dataclass(frozen=True)
class Metric:
    """A registered KPI: what it is, how it is judged, and the function that computes it."""

    name: str
    label: str
    formula: str
    unit: str
    direction: str
    level: str
    cadence: str
    sources: tuple[str, ...]
    area: str
    func: Callable = field(repr=False, compare=False)
    target: float | None = None
    conventions: tuple[str, ...] = ()
    needs: tuple[str, ...] = ("accounts", "subscriptions")
    proportion: bool = False  # a share of n: gets a Wilson interval
    sampled: bool | None = None  # estimated from its n items (flagged, not judged, below low_n_threshold); None: by unit
    settles: bool = False  # a closed month's value still moves as items open at its end close (tickets, invoices)
    tolerance: float | None = None  # a later run's value within this (absolute) is not a restatement; None: by unit
    description: str = ""

    @property
    def restatement_tolerance(self) -> float:
        """How far a later run's value for a closed month may move before `saaskpi compare` calls it restated:
        `tolerance` when declared, else 0.05 points for fractions, half a cent for money, 0.005 otherwise
        (rounding, not a change of what happened)."""
        if self.tolerance is not None:
            return self.tolerance
        return {"fraction": 0.0005, "currency": 0.005}.get(self.unit, 0.005)

    @property
    def estimate(self) -> bool:
        """Whether the value is estimated from its n items (a rate, an average, a multiple, a duration), so that a
        small n makes it unreliable. Totals and counts (MRR, signups) are exact whatever their n."""
        if self.sampled is not None:
            return self.sampled
        return self.proportion or self.unit not in ("count", "currency")

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.func).parameters)


@dataclass(frozen=True)
class TableSpec:
    """A registered table (`saaskpi table NAME`): a function returning a small pandas frame."""

    name: str
    func: Callable = field(repr=False, compare=False)
    description: str = ""
    needs: tuple[str, ...] = ("accounts", "subscriptions")
    export: bool = True

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.func).parameters)


# Parameters a metric or table function may name besides registered tables and metrics (Workbook._input):
# the segment's tables, the month calendar, the conventions, the month key, the segment's share of the
# company-wide spend allocation, every metric's target in force, a lookup that returns None for a table
# or metric whose input tables are absent, and the customer-success settings (params.SuccessSettings).
FIXED_INPUTS = ("tables", "calendar", "conventions", "as_of", "allocated_spend", "targets_in_force",
                "compute_if_available", "success_settings")

METRICS: dict[str, Metric] = {}
TABLE_FUNCS: dict[str, TableSpec] = {}


def _summary(doc: str) -> str:
    """A docstring's first paragraph on one line (the whole sentence, not its first line)."""
    return " ".join(doc.split("\n\n", 1)[0].split())


class RegistryError(SaasKpiError, ValueError):
    """A metric declaration is incomplete or inconsistent."""

    exit_code = 2


def metric(*, label: str, formula: str, unit: str, direction: str, level: str, cadence: str = "monthly",
           sources: str | tuple[str, ...], area: str, target: float | None = None,
           conventions: tuple[str, ...] = (), needs: tuple[str, ...] = ("accounts", "subscriptions"),
           proportion: bool = False, sampled: bool | None = None, settles: bool = False,
           tolerance: float | None = None):
    """Register the decorated function as a metric named after it.

    `sampled=True` marks a currency or count value that is an average over its n items (CAC, deal size,
    ARPA): like rates, it is flagged as a small sample, not judged, when n is below `low_n_threshold`.
    `settles=True` marks a measure whose value for a closed month keeps moving while the items open at its end
    close (support times, invoices paid): `saaskpi compare` labels such a change as settling, not a restatement.
    `tolerance` is how far a restated value may move before it counts (`Metric.restatement_tolerance`)."""

    def register(func: Callable) -> Callable:
        doc = inspect.getdoc(func) or ""
        m = Metric(name=func.__name__, label=label, formula=formula, unit=unit, direction=direction, level=level,
                   cadence=cadence, sources=(sources,) if isinstance(sources, str) else tuple(sources), area=area,
                   func=func, target=target, conventions=tuple(conventions), needs=tuple(needs),
                   proportion=proportion, sampled=sampled, settles=settles, tolerance=tolerance,
                   description=_summary(doc))
        _check(m)
        METRICS[m.name] = m
        return func

    return register


def table(*, needs: tuple[str, ...] = ("accounts", "subscriptions"), export: bool = True):
    """Register the decorated function as a table named after it."""

    def register(func: Callable) -> Callable:
        if func.__name__ in TABLE_FUNCS or func.__name__ in METRICS:
            raise RegistryError(f"{func.__name__} is registered twice")
        doc = inspect.getdoc(func) or ""
        TABLE_FUNCS[func.__name__] = TableSpec(func.__name__, func, _summary(doc), tuple(needs), export)
        return func

    return register


def _check(m: Metric) -> None:
    problems = []
    if m.name in METRICS or m.name in TABLE_FUNCS:
        problems.append("the name is registered twice")
    if not m.label or not m.formula or not m.description:
        problems.append("label, formula and a one-line docstring are required")
    if m.unit not in UNITS:
        problems.append(f"unit {m.unit!r} not in {sorted(UNITS)}")
    if m.direction not in DIRECTIONS:
        problems.append(f"direction {m.direction!r} not in {sorted(DIRECTIONS)}")
    if m.level not in LEVELS:
        problems.append(f"level {m.level!r} not in {LEVELS}")
    if m.cadence not in CADENCES:
        problems.append(f"cadence {m.cadence!r} not in {sorted(CADENCES)}")
    unknown = [s for s in m.sources if s not in SOURCES]
    if not m.sources or unknown:
        problems.append(f"sources must be among {sorted(SOURCES)}")
    if problems:
        raise RegistryError(f"metric {m.name}: " + "; ".join(problems))


def validate_registry(convention_keys: set[str]) -> None:
    """Check the whole registry at load: inputs resolve, conventions exist, one north star."""
    problems = []
    known_inputs = set(TABLE_FUNCS) | set(METRICS) | set(FIXED_INPUTS)
    specs: list[Metric | TableSpec] = [*METRICS.values(), *TABLE_FUNCS.values()]
    for spec in specs:
        missing = [i for i in spec.inputs if i not in known_inputs]
        if missing:
            problems.append(f"{spec.name}: unknown input(s) {missing}")
    for m in METRICS.values():
        unknown = [c for c in m.conventions if c not in convention_keys]
        if unknown:
            problems.append(f"{m.name}: unknown convention(s) {unknown}")
    if problems:
        raise RegistryError("; ".join(problems))
