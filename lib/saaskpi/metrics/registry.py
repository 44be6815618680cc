"""The metric registry: every KPI declared once, validated at import, read by everything else.

A metric is a pure function named after the value it returns. Its parameters name its inputs:
tables (registered with `@table`) or `conventions`. It returns one row per month with columns
``month`` (Timestamp), ``value`` (float, NaN = n/a) and ``n`` (the denominator or sample size).
Its decorator declares everything else once: label, formula, unit, direction, level, area (and so
its page, `AREAS`), its place among the page's KPI tiles, its target with the target's source, the
conventions it reads and its input tables. Notebooks, the CLI, tests, KPI tiles, snapshots and
`docs/metrics.md` all read `METRICS`, which lists the metrics in catalogue order: by area in the
order of `AREAS` (so by page), then in the order their modules declare them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ..errors import SaasKpiError
from ..frames import SCHEMA_DTYPES, conform, metric_schema
from ..params import Target

UNITS = {"currency", "fraction", "ratio", "number", "count", "months", "days", "hours", "minutes", "score"}
DIRECTIONS = {"higher", "lower", "neutral"}
LEVELS = ("north_star", "core", "supporting", "operational")
CADENCES = {"daily", "weekly", "monthly", "quarterly"}
# Every metric area, in page order, with the page (module in saaskpi.pages, notebook NN_<page>) that shows it.
AREAS = {
    "funnel": "funnel",
    "sales": "funnel",
    "activation": "funnel",
    "revenue": "cohort_retention",
    "usage": "cohort_retention",
    "unit_economics": "unit_economics",
    "success": "cs_load",
}
# The workbook pages that show registry metrics, with their notebook number.
PAGES = {"funnel": "01", "cohort_retention": "02", "unit_economics": "03", "cs_load": "04"}
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
    target_source: str = ""  # where the target comes from (an article, a benchmark)
    long_term_target: float | None = None  # the source's longer-term goal where it gives two
    tile: int | None = None  # place among its page's headline KPI tiles (None: not a headline tile)
    window: str | None = None  # the convention (in days) whose value the label shows: "Renewals due (90 days)"
    conventions: tuple[str, ...] = ()
    needs: tuple[str, ...] = ("accounts", "subscriptions")
    proportion: bool = False  # a share of n: gets a Wilson interval
    sampled: bool | None = (
        None  # estimated from its n items (flagged, not judged, below low_n_threshold); None: by unit
    )
    settles: bool = False  # a closed month's value still moves as items open at its end close (tickets, invoices)
    tolerance: float | None = None  # a later run's value within this (absolute) is not a restatement; None: by unit
    description: str = ""

    def label_in(self, conventions) -> str:
        """The label as people read it under `conventions`: with the window it counts over, when it has one."""
        return self.label if self.window is None else f"{self.label} ({getattr(conventions, self.window)} days)"

    @property
    def page(self) -> str:
        """The page (module in saaskpi.pages) that shows the metric: its area's page."""
        return AREAS[self.area]

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

    def conform(self, series):
        """The series with the dtypes every metric has (frames.metric_schema)."""
        return conform(series, metric_schema(series)) if isinstance(series, pd.DataFrame) else series


@dataclass(frozen=True)
class TableSpec:
    """A registered table (`saaskpi table NAME`): a function returning a small pandas frame whose columns and
    dtypes are `schema` (column -> dtype, see frames.SCHEMA_DTYPES; tests/test_schemas.py checks every table
    against it on every engine)."""

    name: str
    func: Callable = field(repr=False, compare=False)
    description: str = ""
    needs: tuple[str, ...] = ("accounts", "subscriptions")
    export: bool = True
    schema: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.func).parameters)

    def conform(self, frame):
        """The table with its declared dtypes (frames.conform; text as str when it declares no schema)."""
        return conform(frame, self.schema or None)


# Parameters a metric or table function may name besides registered tables and metrics (Workbook._input):
# the segment's tables, the month calendar, the conventions, the month key, the segment's share of the
# company-wide spend allocation, every metric's target in force, a lookup that returns None for a table
# or metric whose input tables are absent, the customer-success settings (params.SuccessSettings) and the
# workbook's segment (params.Segment: the plan and dated goals are kept per segment file).
FIXED_INPUTS = (
    "tables",
    "calendar",
    "conventions",
    "as_of",
    "allocated_spend",
    "targets_in_force",
    "compute_if_available",
    "success_settings",
    "segment",
)

METRICS: dict[str, Metric] = {}
TABLE_FUNCS: dict[str, TableSpec] = {}


def _summary(doc: str) -> str:
    """A docstring's first paragraph on one line (the whole sentence, not its first line)."""
    return " ".join(doc.split("\n\n", 1)[0].split())


class RegistryError(SaasKpiError, ValueError):
    """A metric declaration is incomplete or inconsistent."""

    exit_code = 2


def metric(
    *,
    label: str,
    formula: str,
    unit: str,
    direction: str,
    level: str,
    cadence: str = "monthly",
    sources: str | tuple[str, ...],
    area: str,
    target: float | None = None,
    target_source: str = "",
    long_term_target: float | None = None,
    tile: int | None = None,
    window: str | None = None,
    conventions: tuple[str, ...] = (),
    needs: tuple[str, ...] = ("accounts", "subscriptions"),
    proportion: bool = False,
    sampled: bool | None = None,
    settles: bool = False,
    tolerance: float | None = None,
):
    """Register the decorated function as a metric named after it.

    `area` is one of `AREAS` and decides the page; `tile` places the metric among that page's headline tiles
    (positions are unique per page). `target` is the default target in the metric's unit (segment files may
    override it), `target_source` where it comes from and `long_term_target` the source's longer-term goal.

    `sampled=True` marks a currency or count value that is an average over its n items (CAC, deal size,
    ARPA): like rates, it is flagged as a small sample, not judged, when n is below `low_n_threshold`.
    `settles=True` marks a measure whose value for a closed month keeps moving while the items open at its end
    close (support times, invoices paid): `saaskpi compare` labels such a change as settling, not a restatement.
    `tolerance` is how far a restated value may move before it counts (`Metric.restatement_tolerance`)."""

    def register(func: Callable) -> Callable:
        doc = inspect.getdoc(func) or ""
        m = Metric(
            name=func.__name__,
            label=label,
            formula=formula,
            unit=unit,
            direction=direction,
            level=level,
            cadence=cadence,
            sources=(sources,) if isinstance(sources, str) else tuple(sources),
            area=area,
            func=func,
            target=target,
            target_source=target_source,
            long_term_target=long_term_target,
            tile=tile,
            window=window,
            conventions=tuple(conventions),
            needs=tuple(needs),
            proportion=proportion,
            sampled=sampled,
            settles=settles,
            tolerance=tolerance,
            description=_summary(doc),
        )
        _check(m)
        METRICS[m.name] = m
        return func

    return register


def table(
    *,
    schema: dict[str, str] | None = None,
    needs: tuple[str, ...] = ("accounts", "subscriptions"),
    export: bool = True,
):
    """Register the decorated function as a table named after it, returning the columns of `schema` in its
    order with their dtypes (column -> one of frames.SCHEMA_DTYPES). Every table of the workbook declares one
    (tests/test_schemas.py); a company's own table may leave it out."""

    def register(func: Callable) -> Callable:
        if func.__name__ in TABLE_FUNCS or func.__name__ in METRICS:
            raise RegistryError(f"{func.__name__} is registered twice")
        unknown = {c: t for c, t in (schema or {}).items() if t not in SCHEMA_DTYPES}
        if unknown:
            raise RegistryError(f"table {func.__name__}: schema dtype(s) {unknown} not among {list(SCHEMA_DTYPES)}")
        doc = inspect.getdoc(func) or ""
        spec = TableSpec(func.__name__, func, _summary(doc), tuple(needs), export, dict(schema or {}))
        TABLE_FUNCS[func.__name__] = spec
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
    if m.area not in AREAS:
        problems.append(f"area {m.area!r} not in {list(AREAS)}")
    if m.target is None and (m.target_source or m.long_term_target is not None):
        problems.append("target_source and long_term_target need a target")
    if m.tile is not None and (isinstance(m.tile, bool) or not isinstance(m.tile, int) or m.tile < 1):
        problems.append(f"tile must be a position 1, 2, ..., got {m.tile!r}")
    if m.window is not None and m.window not in m.conventions:
        problems.append(f"window {m.window!r} must be one of its conventions {m.conventions}")
    if m.cadence not in CADENCES:
        problems.append(f"cadence {m.cadence!r} not in {sorted(CADENCES)}")
    unknown = [s for s in m.sources if s not in SOURCES]
    if not m.sources or unknown:
        problems.append(f"sources must be among {sorted(SOURCES)}")
    if problems:
        raise RegistryError(f"metric {m.name}: " + "; ".join(problems))


def validate_registry(convention_keys: set[str], segment_targets: dict[str, set[str]] | None = None) -> None:
    """Check the whole registry at load and put `METRICS` in catalogue order: inputs resolve, conventions exist,
    exactly one north star, tile places unique per page, segment files' targets name registered metrics."""
    problems = []
    unknown_pages = sorted(set(AREAS.values()) - set(PAGES))
    if unknown_pages:
        problems.append(f"AREAS name unknown page(s) {unknown_pages} (pages: {list(PAGES)})")
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
    north_stars = [m.name for m in METRICS.values() if m.level == "north_star"]
    if len(north_stars) != 1:
        problems.append(f"exactly one metric must be the north star, found {len(north_stars)}: {north_stars}")
    places: dict[tuple[str, int], list[str]] = {}
    for m in METRICS.values():
        if m.tile is not None:
            places.setdefault((m.page, m.tile), []).append(m.name)
    for (page, tile), names in places.items():
        if len(names) > 1:
            problems.append(f"page {page}: tile {tile} is declared by {' and '.join(names)}")
    for where, targeted in (segment_targets or {}).items():
        unknown = sorted(set(targeted) - set(METRICS))
        if unknown:
            problems.append(f"{where} sets targets for unknown metric(s) {', '.join(unknown)}")
    if problems:
        raise RegistryError("; ".join(problems))
    order = {area: i for i, area in enumerate(AREAS)}
    ranked = sorted(enumerate(METRICS.values()), key=lambda im: (order[im[1].area], im[0]))
    METRICS.clear()
    METRICS.update((m.name, m) for _, m in ranked)


def tiles(page: str, areas: tuple[str, ...] = ()) -> list[str]:
    """The headline KPI tiles of `page` (only those of `areas` when given), in their declared places."""
    if page not in PAGES:
        raise RegistryError(f"unknown page {page!r} (pages: {list(PAGES)})")
    placed = [
        (m.tile, m.name)
        for m in METRICS.values()
        if m.page == page and m.tile is not None and (not areas or m.area in areas)
    ]
    return [name for _, name in sorted(placed, key=lambda tile_name: tile_name[0])]


def page_areas(page: str) -> tuple[str, ...]:
    """The metric areas `page` shows (a snapshot records their metrics under the page's notebook)."""
    return tuple(area for area, p in AREAS.items() if p == page)


def page_metrics(page: str, names: list[str]) -> list[str]:
    """`names`, checked to be metrics that `page` shows: a page section listing another page's metric (or an
    unknown one) is an error at import, so every metric has one page."""
    wrong = [
        f"{n} (unknown)" if n not in METRICS else f"{n} (page {METRICS[n].page})"
        for n in names
        if n not in METRICS or METRICS[n].page != page
    ]
    if wrong:
        raise RegistryError(f"page {page} lists metric(s) it does not show: {', '.join(wrong)}")
    return list(names)


def targets() -> dict[str, Target]:
    """Every declared target by metric name, with its long-term value and source."""
    return {
        m.name: Target(m.target, m.long_term_target, m.target_source) for m in METRICS.values() if m.target is not None
    }
