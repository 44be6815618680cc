"""The workbook context: one validated source, one segment, one month; every table and metric
computed on demand from the registry and cached. Notebooks call `open_workbook` once."""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import polars as pl

from . import cache, params, theme  # noqa: F401  (theme: every chart drawn after open_workbook has the workbook's look)
from .app import APP_ENGINE, APP_SOURCE
from .errors import MissingTablesError, ParameterError, SaasKpiError
from .frames import key_of, lookup, month_label, month_of
from .metrics import METRICS, TABLE_FUNCS, registry
from .params import Conventions, Segment, Target
from .sources import KEPT_SOURCES, Engine, Tables, open_source, shown, validated_tables
from .stats import target_status, wilson_interval

RUN_ENV = "SAASKPI_SNAPSHOT_RUN"  # snapshot.RUN_ENV (not imported: the snapshot module loads papermill's helpers)


@dataclass(frozen=True)
class MetricValue:
    """A metric's value for one month, with its change, sample size, target and status."""

    name: str
    month: pd.Timestamp | None
    value: float
    previous: float
    n: float
    target: float | None
    status: str
    low_n: bool
    interval: tuple[float, float]
    note: str = ""
    immature: bool = False  # a cohort whose conversion window has not elapsed: shown, flagged, not judged

    @property
    def change(self) -> float:
        """Month-over-month change (value minus last month's value)."""
        return self.value - self.previous


def _value_record(value: MetricValue) -> dict:
    """A MetricValue as JSON values (the month as ISO text)."""
    record = dataclasses.asdict(value)
    record["month"] = None if value.month is None else value.month.isoformat()
    return record


def _value_from_record(record: dict) -> MetricValue:
    month = record["month"]
    return MetricValue(
        **{
            **record,
            "month": None if month is None else pd.Timestamp(month),
            "interval": tuple(record["interval"]),
        }
    )


_VALIDATED: OrderedDict[tuple, Tables] = OrderedDict()  # the last few sources validated in this process
_KEEP = 8


def load_tables(source, conventions: Conventions, engine: str = "polars") -> Tables:
    """The validated tables of `source`, opened once (kept while its fingerprint and the segment files do
    not change; a source given as an object rather than a path or URL is validated each time)."""
    segments = params.known_segments()
    opened = open_source(source)
    if not isinstance(source, (str, Path)):
        return validated_tables(opened, conventions.reporting_currency, Engine.for_source(engine, opened), segments)
    key = (opened.location, opened.fingerprint(), conventions.reporting_currency, engine, segments)
    if key not in _VALIDATED:
        _VALIDATED[key] = validated_tables(
            opened, conventions.reporting_currency, Engine.for_source(engine, opened), segments
        )
        while len(_VALIDATED) > _KEEP:
            _VALIDATED.popitem(last=False)
    _VALIDATED.move_to_end(key)
    return _VALIDATED[key]


def last_complete_month(tables: Tables) -> int:
    """Month key of the last complete month: the month of the latest activity if it is that month's last day, else the one before."""
    stamps = [tables.frames["subscriptions"]["start_date"].max(), tables.frames["accounts"]["created_at"].max().date()]
    if tables.has("usage_events"):
        stamps.append(tables.column_max("usage_events", "event_time").date())
    latest = pd.Timestamp(max(s for s in stamps if s is not None))
    key = key_of(latest)
    return key if latest.is_month_end else key - 1


def first_paying_month(tables: Tables) -> int | None:
    """Month key of the first month end at which some account pays (a subscription with an amount above
    zero after its discount is open on that day: start <= month end < end); None when no month has one."""
    subs = tables.frames["subscriptions"]
    discount = pl.col("discount_pct").fill_null(0) if "discount_pct" in subs.columns else pl.lit(0.0)
    ends = (
        subs.filter((pl.col("amount") * (1 - discount)) > 0)
        .select(pl.col("start_date"), pl.col("end_date"), pl.col("start_date").dt.month_end().alias("month_end"))
        .filter(pl.col("end_date").is_null() | (pl.col("end_date") > pl.col("month_end")))
    )
    first = ends.get_column("month_end").min()
    return None if first is None else key_of(first)


@dataclass(frozen=True)
class Coverage:
    """The months a source has numbers for: from its first paying customer to its last complete month."""

    first: int | None
    last: int

    @property
    def _first(self) -> int:
        assert self.first is not None, "asked for the first month of an empty coverage"
        return self.first

    @classmethod
    def of(cls, tables: Tables) -> Coverage:
        return cls(first_paying_month(tables), last_complete_month(tables))

    @property
    def empty(self) -> bool:
        return self.first is None or self.first > self.last

    def describe(self) -> str:
        if self.empty:
            return "no complete month with a paying customer"
        return f"{month_label(month_of(self._first))} to {month_label(month_of(self.last))}"

    def months(self) -> list[str]:
        """Every covered month as YYYY-MM, newest first."""
        return [] if self.empty else [month_label(month_of(k)) for k in range(self.last, self._first - 1, -1)]

    def check(self, key: int, what: str = "Month") -> None:
        """Raise ParameterError unless month `key` is covered, naming the months the data covers."""
        label = month_label(month_of(key))
        covers = f"the data covers {self.describe()} (from the first month a customer pays to the last complete month)"
        if self.empty:
            raise ParameterError(f"{what} {label}: the data has {self.describe()}, so no month has numbers.")
        if key > self.last:
            raise ParameterError(
                f"{what} {label} is after the data: {covers}. Choose a month up to {month_label(month_of(self.last))}."
            )
        if key < self._first:
            raise ParameterError(
                f"{what} {label} is before the first paying customer: {covers}. Choose a month "
                f"from {month_label(month_of(self._first))}."
            )


def source_coverage(tables: Tables) -> Coverage:
    """`Coverage.of(tables)`, kept in the cache (cache.py) for a source whose fingerprint changes with its data:
    finding the last complete month reads a column of every usage event, which a kernel opening an unchanged
    source need not do again."""
    source = tables.source
    if tables.parent is not None or source.kind not in KEPT_SOURCES or cache.cache_dir() is None:
        return Coverage.of(tables)
    first, last = cache.cached_json(
        "coverage", f"{source.location}|{source.fingerprint()}", lambda: list(dataclasses.astuple(Coverage.of(tables)))
    )
    return Coverage(first, last)


def month_coverage(tables: Tables, shared: dict | None = None) -> Coverage:
    """The `Coverage` of `tables` (kept in `shared`, a workbook's company-wide results, when given)."""
    if shared is None:
        return source_coverage(tables)
    if "coverage" not in shared:
        shared["coverage"] = source_coverage(tables)
    return shared["coverage"]


def month_calendar(first: int, last: int) -> pl.DataFrame:
    """Month keys from `first` to `last` with each month's last day."""
    keys = list(range(first, last + 1))
    ends = [(month_of(k) + pd.offsets.MonthEnd(0)).date() for k in keys]
    return pl.DataFrame({"month": keys, "month_end": ends}, schema={"month": pl.Int64, "month_end": pl.Date})


def segment_account_ids(tables: Tables, segment: Segment) -> pl.Series:
    """Account ids selected by the segment's filter; an unknown column or an empty selection is an error."""
    accounts = tables.frames["accounts"]
    keep = pl.lit(True)
    for column, values in segment.filter.items():
        if column not in accounts.columns:
            raise ParameterError(f"Segment {segment.name!r} filters on accounts.{column}, which does not exist.")
        keep = keep & pl.col(column).is_in(values)
    ids = accounts.filter(keep).get_column("account_id")
    if ids.is_empty():
        present = ", ".join(sorted(accounts.get_column("segment").unique().to_list()))
        raise ParameterError(
            f"Segment {segment.name!r} selects no accounts (filter {segment.filter}; segments in the data: {present})."
        )
    return ids


def segment_tables(tables: Tables, segment: Segment) -> Tables:
    """The tables of one segment. Tables with account_id keep the segment's accounts; leads keep those
    whose account is in it or, before they have an account, whose own columns match the filter;
    opportunities follow their account or lead; team members their `segment` column. web_traffic
    has no segment and stays company-wide."""
    ids = segment_account_ids(tables, segment)
    out = tables.restricted_to(ids)
    frames = dict(out.frames)
    if "leads" in frames:
        leads = frames["leads"]
        # a lead without an account belongs to the segment when its own columns match the whole filter
        own = (
            pl.all_horizontal(pl.col(c).is_in(v) for c, v in segment.filter.items())
            if all(c in leads.columns for c in segment.filter)
            else pl.lit(False)
        )
        frames["leads"] = leads.filter(
            pl.col("account_id").is_in(ids.implode()) | (pl.col("account_id").is_null() & own)
        )
    if "opportunities" in frames:
        lead_ids = frames["leads"].get_column("lead_id") if "leads" in frames else pl.Series([], dtype=pl.String)
        opps = frames["opportunities"]
        frames["opportunities"] = opps.filter(
            pl.col("account_id").is_in(ids.implode())
            | (pl.col("account_id").is_null() & pl.col("lead_id").is_in(lead_ids.implode()))
        )
    if "team" in frames and "segment" in segment.filter:
        frames["team"] = frames["team"].filter(pl.col("segment").is_in(segment.filter["segment"]))
    return dataclasses.replace(out, frames=frames)


@dataclass
class Workbook:
    """Everything a page needs: validated tables for one segment, the month, conventions and targets."""

    all_tables: Tables
    segment: Segment
    as_of: int
    conventions: Conventions
    targets: dict[str, Target]
    interactive: bool = True
    source_label: str = ""
    shared: dict = field(
        default_factory=dict, repr=False
    )  # company-wide results, shared by with_choice/with_conventions
    success: params.SuccessSettings | None = None  # customer_success.yaml + health_score.yaml (read when first needed)
    _cache: dict = field(default_factory=dict, repr=False)
    stored: bool = field(default=True, repr=False)  # results kept in the results store (cache.py); not for where()

    def __post_init__(self):
        self.tables = self.all_tables if not self.segment.filter else segment_tables(self.all_tables, self.segment)
        first = key_of(self.all_tables.frames["subscriptions"]["start_date"].min())
        self.coverage.check(self.as_of)  # no number for a month the data does not cover
        self.calendar = month_calendar(first, self.as_of)

    # -- navigation
    @property
    def coverage(self) -> Coverage:
        """The months this source has numbers for (first paying customer to last complete month)."""
        return month_coverage(self.all_tables, self.shared)

    @property
    def month(self) -> pd.Timestamp:
        return month_of(self.as_of)

    @property
    def month_label(self) -> str:
        return month_label(self.month)

    def with_choice(self, segment: str | None = None, month: str | None = None) -> Workbook:
        """The same workbook for another segment or month (tables are not re-read)."""
        seg = params.segment(segment) if segment else self.segment
        key = key_of(month) if month else self.as_of
        return Workbook(
            self.all_tables,
            seg,
            key,
            self.conventions,
            self.targets,
            self.interactive,
            self.source_label,
            self.shared,
            self.success,
            stored=self.stored,
        )

    def with_conventions(self, **changes) -> Workbook:
        """The same workbook under other conventions (nothing cached is reused)."""
        conv = self.conventions.replaced(**changes)
        return Workbook(
            self.all_tables,
            self.segment,
            self.as_of,
            conv,
            self.targets,
            self.interactive,
            self.source_label,
            self.shared,
            self.success,
            stored=self.stored,
        )

    def with_success(self, settings: params.SuccessSettings) -> Workbook:
        """The same workbook under other customer-success and health-score settings (nothing cached is reused)."""
        return Workbook(
            self.all_tables,
            self.segment,
            self.as_of,
            self.conventions,
            self.targets,
            self.interactive,
            self.source_label,
            self.shared,
            settings,
            stored=self.stored,
        )

    def months(self) -> list[str]:
        """Every month with numbers, as YYYY-MM, newest first: from the last complete month back to the first
        month a customer pays (the apps' month picker offers exactly these)."""
        return self.coverage.months()

    # -- computation
    def has(self, *tables: str) -> bool:
        return self.tables.has(*tables)

    def available(self, names: list[str]) -> list[str]:
        """The metrics among `names` whose tables this source has."""
        return [n for n in names if not self.tables.missing(*METRICS[n].needs)]

    def require(self, *tables: str, what: str = "This section") -> None:
        """Raise MissingTablesError (shown as one sentence) when a needed table is absent."""
        missing = self.tables.missing(*tables)
        if missing:
            raise MissingTablesError(missing, what)

    def compute(self, name: str):
        """Table or metric series `name`, computing its inputs by name first (cached)."""
        if name in self._cache:
            return self._cache[name]
        spec = TABLE_FUNCS.get(name) or METRICS.get(name)
        if spec is None:
            raise ParameterError(
                f"Unknown table or metric {name!r}{_suggest(name, [*TABLE_FUNCS, *METRICS])}; "
                "ctx.names() lists them all."
            )
        self.require(*spec.needs, what=f"`{name}`")

        def run():  # a result leaves with its declared dtypes, stored or not (docs/architecture.md)
            return spec.conform(spec.func(**{p: self._input(p) for p in inspect.signature(spec.func).parameters}))

        result = cache.cached_result(name, self._store_key, run) if self._store_key else run()
        self._cache[name] = result
        return result

    STORED_SOURCES = ("folder", "duckdb", "postgres")  # sources whose fingerprint changes with their data

    @cached_property
    def _store_key(self) -> str:
        """What this workbook's results depend on besides the code (cache.code_hash): the source and its
        fingerprint, the engine, the segment, the month and every parameter, in memory and on disk. Empty when
        results are not stored: the cache is off, a `where()` subset, a Spark catalog (no change marker)."""
        source = self.all_tables.source
        if not self.stored or source.kind not in self.STORED_SOURCES or cache.cache_dir() is None:
            return ""
        return "|".join(
            map(
                str,
                (
                    source.location,
                    source.fingerprint(),
                    self.tables.engine.name,
                    self.segment,
                    self.as_of,
                    self.conventions,
                    self.targets,
                    self.success_settings(),
                    cache.parameters_hash(),
                ),
            )
        )

    def _input(self, name: str):
        """A function parameter's value: one of registry.FIXED_INPUTS, else the table or metric of that name."""
        fixed = {
            "tables": lambda: self.tables,
            "calendar": lambda: self.calendar,
            "conventions": lambda: self.conventions,
            "as_of": lambda: self.as_of,
            "allocated_spend": self._allocated_spend,
            "targets_in_force": lambda: {m: self.target(m) for m in METRICS},
            "compute_if_available": lambda: self.compute_if_available,
            "success_settings": self.success_settings,
            "segment": lambda: self.segment,
        }
        return fixed[name]() if name in fixed else self.compute(name)

    def success_settings(self) -> params.SuccessSettings:
        """The customer-success settings in force (parameters/customer_success.yaml, health_score.yaml)."""
        return self.success or params.success_settings()

    def is_stored(self, name: str) -> bool:
        """Whether table or metric `name` of this workbook is in the results store (computed by an earlier kernel:
        the month's snapshot, `saaskpi fill`, an earlier visit)."""
        return bool(self._store_key) and cache.is_stored(name, self._store_key)

    def compute_if_available(self, name: str):
        """Table or metric `name`, or None when a table it needs is absent."""
        spec = TABLE_FUNCS.get(name) or METRICS[name]
        return None if self.tables.missing(*spec.needs) else self.compute(name)

    def _allocated_spend(self) -> pd.DataFrame:
        """Spend allocated company-wide (see metrics.unit_economics), then this segment's share of it."""
        from .metrics import unit_economics as ue
        from .metrics.revenue import account_mrr

        key = ("allocated_spend", self.as_of, repr(self.conventions))
        if key not in self.shared:
            company_mrr = (
                self.compute("account_mrr")
                if not self.segment.filter
                else account_mrr(self.all_tables, self.calendar, self.conventions)
            )
            drivers = ue.acquisition_drivers(self.all_tables, company_mrr)
            spend = ue.spend_in_reporting_currency(self.all_tables, self.conventions)
            self.shared[key] = (drivers, ue.allocate_spend(spend, *drivers, self.conventions))
        drivers, allocated = self.shared[key]
        if not self.segment.filter:
            return allocated
        own = ue.acquisition_drivers(self.tables, self.compute("account_mrr"))
        return ue.select_spend(allocated, drivers, own, self.segment.filter.get("segment"), self.conventions)

    def table(self, name: str, polars: bool = False) -> pd.DataFrame | pl.DataFrame:
        """Registered table `name` for this segment (`ctx.names()` lists them), as pandas or, with `polars=True`,
        as a Polars frame."""
        frame = self.compute(name)
        return pl.from_pandas(frame) if polars else frame

    def series(self, name: str) -> pd.DataFrame:
        """Monthly series (month, value, n) of metric `name`, up to the workbook's month."""
        s = self.compute(name)
        return s[s.month <= self.month].reset_index(drop=True)

    def target(self, name: str) -> float | None:
        """Target of metric `name`: the segment file's override, else the one its metric declares."""
        if name in self.segment.targets:
            return self.segment.targets[name]
        if name in self.targets:
            return self.targets[name].value
        return METRICS[name].target

    def value(self, name: str) -> MetricValue:
        """Metric `name` for the workbook's month, with change, n, status and interval (kept in the results
        store beside the series it comes from, under the same key: `_metric_value`)."""
        if not self._store_key:
            return self._metric_value(name)
        return _value_from_record(self.kept(f"value-{name}", lambda: _value_record(self._metric_value(name))))

    def kept(self, name: str, compute: Callable[[], dict]) -> dict:
        """The small record `name` (a dict of JSON values) computed from this workbook, kept in the results store
        under the workbook's key when results are stored (`cache.cached_record`): a value or sentence a page shows,
        read back by every later kernel for the same source, segment, month and parameters."""
        return cache.cached_record(name, self._store_key, compute) if self._store_key else compute()

    def _metric_value(self, name: str) -> MetricValue:
        """Metric `name` for the workbook's month, with change, n, status and interval.

        A cohort value whose window is still open at the month (immature) is not judged: the value shown and
        judged is the latest cohort whose window has elapsed (its `month` says which), so that a rate below
        target for months does not hide behind "immature". A value estimated from fewer than
        `low_n_threshold` items (`Metric.estimate`) is flagged as a small sample and not judged either."""
        m = METRICS[name]
        missing = self.tables.missing(*m.needs)
        if missing:
            return MetricValue(
                name,
                self.month,
                math.nan,
                math.nan,
                0,
                self.target(name),
                "n/a",
                False,
                (math.nan, math.nan),
                f"needs {', '.join(missing)}",
            )
        s = self.series(name)
        month = self.month
        immature = "immature" in s and bool(s.loc[s.month == month, "immature"].astype(bool).any())
        if immature:
            mature = s[~s.immature.astype(bool) & s.value.notna()]
            if len(mature):
                month, immature = mature.month.iloc[-1], False
        row = s[s.month == month]
        prev = s[s.month == month - pd.offsets.MonthBegin(1)]
        value = float(row.value.iloc[0]) if len(row) else math.nan
        n = float(row.n.iloc[0]) if len(row) else 0.0
        target = self.target(name)
        low_n = m.estimate and not math.isnan(value) and n < self.conventions.low_n_threshold
        status = target_status(value, target, m.direction, self.conventions.status_near_band, immature)
        if low_n and status in ("on", "near", "off"):
            status = "small sample"
        interval = wilson_interval(value, n) if m.proportion else (math.nan, math.nan)
        return MetricValue(
            name,
            month,
            value,
            float(prev.value.iloc[0]) if len(prev) else math.nan,
            n,
            target,
            status,
            low_n,
            interval,
            immature=immature,
        )

    # -- for analysts (docs/analysts.md)
    def __repr__(self) -> str:
        tables = ", ".join(self.tables.frames)
        return (
            f"<Workbook {self.segment.label} · {self.month:%B %Y} · source {self.source_label} · engine "
            f"{self.tables.engine.name}: source tables {tables}; {len(TABLE_FUNCS)} tables and {len(METRICS)} "
            "metrics, see .names()>"
        )

    def names(self, kind: str = "") -> pd.DataFrame:
        """Every registered table and metric ("table" or "metric" for one kind): name, kind, what it is, unit,
        and whether this source has what it needs."""
        rows = [
            {
                "name": n,
                "kind": "metric",
                "label": m.label,
                "unit": m.unit,
                "description": m.description,
                "available": not self.tables.missing(*m.needs),
            }
            for n, m in METRICS.items()
        ]
        rows += [
            {
                "name": n,
                "kind": "table",
                "label": "",
                "unit": "",
                "description": t.description,
                "available": not self.tables.missing(*t.needs),
            }
            for n, t in TABLE_FUNCS.items()
            if t.export
        ]
        out = pd.DataFrame(rows)
        return out[out.kind == kind].reset_index(drop=True) if kind else out

    def source_table(self, name: str, polars: bool = False) -> pd.DataFrame | pl.DataFrame:
        """A validated source table (docs/data-contract.md) restricted to this workbook's accounts; big tables
        (usage_events) are not loaded here: aggregate them with the registered tables instead."""
        frames = self.tables.frames
        if name not in frames:
            where = "is not in this source" if name in _contract_tables() else "is not a source table"
            raise ParameterError(
                f"{name!r} {where}{_suggest(name, list(frames))}; this source has {', '.join(frames)}."
            )
        return frames[name] if polars else frames[name].to_pandas()

    def accounts(self) -> pd.DataFrame:
        """One row per account of this workbook: the `accounts` columns, `plan` (the plan of its latest
        subscription), `cohort` (its first paying month, YYYY-MM, as in the cohort tables; empty if it never
        paid) and `paying` (paying at the workbook's month end)."""
        acc = self.tables.frames["accounts"].to_pandas()
        subs = self.tables.frames["subscriptions"].to_pandas()
        if "plan" in subs:
            latest = subs.sort_values(["start_date", "subscription_id"]).groupby("account_id").plan.last()
            acc["plan"] = acc.account_id.map(latest)
        mrr = self.compute("account_mrr")
        first = mrr[mrr.mrr > 0].groupby("account_id").month.min()
        acc["cohort"] = lookup(acc.account_id, first).dt.strftime("%Y-%m")
        now = mrr[(mrr.month == self.month) & (mrr.mrr > 0)].account_id
        acc["paying"] = acc.account_id.isin(now)
        return acc

    def where(self, **conditions) -> Workbook:
        """This workbook restricted to the accounts whose `accounts()` columns match every condition: a value or a
        list of values, e.g. `ctx.where(plan="Pro")`, `ctx.where(acquisition_channel=["organic", "referral"],
        cohort="2025-01")`. Every table and metric is then computed for those accounts only (leads and
        opportunities follow their account). An unknown column or a selection of no account is an error."""
        acc = self.accounts()
        keep = pd.Series(True, index=acc.index)
        for column, wanted in conditions.items():
            if column not in acc.columns:
                raise ParameterError(
                    f"where(): no account column {column!r}{_suggest(column, list(acc.columns))}; "
                    f"the columns are {', '.join(acc.columns)}."
                )
            keep &= acc[column].isin(wanted if isinstance(wanted, (list, tuple, set)) else [wanted])
        ids = pl.Series("account_id", acc.account_id[keep].tolist(), dtype=pl.String)
        if ids.is_empty():
            raise ParameterError(f"where({_conditions_text(conditions)}) selects no account of {self.segment.label}.")
        label = f"{self.segment.label} · {_conditions_text(conditions)}"
        subset = Workbook(
            self.all_tables,
            self.segment.model_copy(update={"label": label}),
            self.as_of,
            self.conventions,
            self.targets,
            self.interactive,
            self.source_label,
            self.shared,
            self.success,
            stored=False,
        )
        subset.tables = _restricted(self.tables, ids)
        return subset

    def convention_text(self, name: str) -> str:
        """The conventions behind metric `name`, as key=value pairs."""
        return "; ".join(f"{k}={getattr(self.conventions, k)}" for k in METRICS[name].conventions)

    def metrics_frame(self) -> pd.DataFrame:
        """One row per registered metric for the workbook's month: the `saaskpi metrics` output."""
        rows = []
        for name, m in METRICS.items():
            v = self.value(name)
            rows.append(
                {
                    "metric": name,
                    "label": m.label_in(self.conventions),
                    "value": v.value,
                    "unit": m.unit,
                    "n": v.n,
                    "target": v.target,
                    "status": v.status,
                    "convention": self.convention_text(name),
                }
            )
        return pd.DataFrame(rows)


def open_workbook(
    source: str = "data/demo", segment: str = "all", as_of: str = "", interactive: bool = True, engine: str = "polars"
) -> Workbook:
    """Validate `source`, pick the segment and month, and return the workbook context for a notebook.

    Bad data or parameters raise a SaasKpiError; interactively (JupyterLab, Voila, where tracebacks are
    hidden) its message is also shown as a readable panel. In a kernel of `saaskpi app --source`, the app's
    source and engine replace the notebook's (app.APP_SOURCE)."""
    if interactive and os.environ.get(APP_SOURCE):
        source, engine = os.environ[APP_SOURCE], os.environ.get(APP_ENGINE) or engine
    try:
        wb = _open(source, segment, as_of, interactive, engine)
        if not interactive and os.environ.get(RUN_ENV):  # executed by `saaskpi snapshot`: the page records its rows
            from .snapshot import write_page_records

            write_page_records(wb)
        return wb
    except SaasKpiError as err:
        if interactive:
            from IPython.display import display

            from .widgets import error_panel

            display(error_panel(err))
            err.shown = True
        raise


def _open(source: str, segment: str, as_of: str, interactive: bool, engine: str) -> Workbook:
    conventions = params.conventions()
    targets = registry.targets()
    seg = params.segment(segment)
    unknown = sorted(set(seg.targets) - set(METRICS))
    if unknown:
        raise ParameterError(
            f"segments/{seg.name}.yaml names unknown metric(s) {', '.join(unknown)}; see docs/metrics.md for the names."
        )
    params.targets_file(known=set(METRICS))  # dated goals (parameters/targets.yaml): checked before any page runs
    tables = load_tables(source, conventions, engine)
    shared = {"coverage": source_coverage(tables)}  # a workbook's company-wide results
    if as_of:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", as_of):
            raise ParameterError(f"as_of must be a month as YYYY-MM (e.g. 2026-10), got {as_of!r}.")
        key = key_of(as_of)
    else:
        key = shared["coverage"].last
    return Workbook(tables, seg, key, conventions, targets, interactive, shown(source), shared)  # checks the month


def _suggest(name: str, valid: list[str]) -> str:
    """ " (did you mean 'a' or 'b'?)" for the valid names closest to a misspelt one (empty when none is close)."""
    import difflib

    close = (
        difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
        or [v for v in valid if any(difflib.SequenceMatcher(None, name, part).ratio() >= 0.8 for part in v.split("_"))][
            :3
        ]
    )
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _contract_tables() -> list[str]:
    from .contract import TABLES

    return list(TABLES)


def _conditions_text(conditions: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in conditions.items())


def _restricted(tables: Tables, ids: pl.Series) -> Tables:
    """`tables` restricted to the accounts `ids`: leads and opportunities keep those of these accounts."""
    out = tables.restricted_to(ids)
    frames = dict(out.frames)
    if "leads" in frames:
        frames["leads"] = frames["leads"].filter(pl.col("account_id").is_in(ids.implode()))
    if "opportunities" in frames:
        frames["opportunities"] = frames["opportunities"].filter(pl.col("account_id").is_in(ids.implode()))
    return dataclasses.replace(out, frames=frames)
