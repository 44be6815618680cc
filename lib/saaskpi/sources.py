"""Opening a data source (a folder of CSV/Parquet files, a DuckDB file, a Spark session),
validating it against the contract, and handing its tables to an engine as lazy frames.

Inputs are only ever read. Every table is validated once, here at the boundary; metric code
receives Narwhals lazy frames with contract types and never re-checks them.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import narwhals as nw
import pandas as pd
import polars as pl

from . import paths
from .contract import REQUIRED_TABLES, ROW, TABLES, cross_table_problems, typed_table
from .contract.lazy import LAZY_TABLES, typed_scan
from .contract.native import native_problems, stored_as_contract
from .errors import DataContractError, Problem, SourceError

SUFFIXES = (".csv", ".parquet")
ENGINES = ("polars", "duckdb", "spark")


# --------------------------------------------------------------------------- reading
class Unreadable(Exception):
    """A stored table that cannot be read as a table at all; carries the problem to report."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def _not_utf8(name: str, data: bytes) -> Problem | None:
    """A problem naming the lines with bytes that are not UTF-8, or None when the file is UTF-8."""
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    bad = []
    for number, line in enumerate(data.split(b"\n"), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            bad.append(f"line {number}: bytes {line[err.start:err.start + 3].hex(' ')} at byte {err.start + 1} of the line")
    hint = ("it starts with a UTF-16 byte-order mark" if data[:2] in (b"\xff\xfe", b"\xfe\xff")
            else "probably Latin-1 or Windows-1252")
    return Problem(f"{name}.not_utf8", name, None, f"the file is not UTF-8 text ({hint}): save it as UTF-8", len(bad),
                   tuple(bad[:5]))


def _read_csv(name: str, path: Path) -> pl.DataFrame:
    """A CSV file as text columns (types are parsed by the contract, which reports failures).

    A UTF-8 byte-order mark (Excel's "CSV UTF-8") is accepted; anything that is not a rectangular
    UTF-8 table with distinct column names raises `Unreadable` with the problem to report."""
    data = path.read_bytes()
    if not data:
        raise Unreadable(Problem(f"{name}.empty_file", name, None, f"{path.name} is empty (0 bytes): not even a header", 0))
    problem = _not_utf8(name, data)
    if problem:
        raise Unreadable(problem)
    header = next(csv.reader(io.StringIO(data.decode("utf-8-sig").split("\n", 1)[0])), [])
    names = [h.strip() for h in header]
    twice = sorted({h for h in names if names.count(h) > 1})
    if twice:
        raise Unreadable(Problem(f"{name}.duplicate_column", name, twice[0],
                                 f"the header names {', '.join(f'`{c}`' for c in twice)} more than once", 0,
                                 ("line 1: " + ",".join(header),)))
    try:
        return pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as err:
        raise Unreadable(Problem(f"{name}.unreadable", name, None,
                                 f"{path.name} could not be read as CSV: {str(err).splitlines()[0]}", 0)) from None


def _unreadable_parquet(name: str, err: Exception) -> Problem:
    return Problem(f"{name}.unreadable", name, None, f"{name}.parquet could not be read as Parquet: {str(err).splitlines()[0]}", 0)


@dataclass
class Source:
    """A data source: where the tables are and how to read them."""

    location: str
    kind: str  # "folder" | "duckdb" | "spark"
    handle: Any = None  # duckdb connection or SparkSession

    def table_names(self) -> list[str]:
        """Contract tables present in the source."""
        if self.kind == "folder":
            root = Path(self.location)
            return sorted({p.stem for p in root.iterdir() if p.suffix in SUFFIXES and p.stem in TABLES})
        if self.kind == "duckdb":
            names = {r[0] for r in self.handle.execute("select table_name from information_schema.tables").fetchall()}
        else:
            names = {t.name for t in self.handle.catalog.listTables()}
        return sorted(n for n in names if n in TABLES)

    def ambiguous(self) -> list[Problem]:
        """A problem for each table stored twice (as CSV and as Parquet): which one is meant is unclear."""
        if self.kind != "folder":
            return []
        root = Path(self.location)
        return [Problem("source.both_formats", n, None, f"{n}.csv and {n}.parquet are both in {root}: keep one of them", 0)
                for n in self.table_names() if all((root / f"{n}{s}").exists() for s in SUFFIXES)]

    def read(self, name: str) -> tuple[pl.DataFrame, int]:
        """Table `name` as stored, and the line number of its first row (for error examples)."""
        if self.kind == "folder":
            root = Path(self.location)
            if (root / f"{name}.csv").exists():
                return _read_csv(name, root / f"{name}.csv"), 2
            try:
                return pl.read_parquet(root / f"{name}.parquet"), 1
            except (pl.exceptions.PolarsError, OSError) as err:
                raise Unreadable(_unreadable_parquet(name, err)) from None
        if self.kind == "duckdb":
            return self.handle.table(name).pl(), 1
        return pl.from_arrow(self.handle.table(name).toArrow()), 1

    def parquet_path(self, name: str) -> Path | None:
        """The Parquet file of table `name` in a folder source, if that is how it is stored."""
        path = Path(self.location) / f"{name}.parquet"
        return path if self.kind == "folder" and path.exists() else None

    def native(self, name: str) -> nw.LazyFrame:
        """Table `name` of a Spark source as a lazy frame in the source's session (nothing is read)."""
        return nw.from_native(self.handle.table(name))

    def scan(self, name: str) -> pl.LazyFrame | None:
        """Table `name` as a lazy Polars scan when it is a Parquet file (big tables stay out of memory)."""
        path = self.parquet_path(name)
        return pl.scan_parquet(path) if path else None

    def fingerprint(self) -> str:
        """A short hash of the source's files (name, size, modification time)."""
        h = hashlib.sha256(self.location.encode())
        if self.kind == "folder":
            for p in sorted(Path(self.location).iterdir()):
                if p.suffix in SUFFIXES:
                    st = p.stat()
                    h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()[:12]


def open_source(location: str | Path | Any) -> Source:
    """Open a source: a folder, a ``.duckdb`` file, a SparkSession, or a ``spark://``/``sc://`` URL."""
    if hasattr(location, "catalog") and hasattr(location, "table"):
        return Source("spark-session", "spark", location)
    text = str(location)
    if text.startswith(("spark://", "sc://", "local[")) or text == "spark":
        from pyspark.sql import SparkSession  # optional dependency: pip install saaskpi[spark]

        builder = SparkSession.builder.config("spark.sql.session.timeZone", "UTC")
        builder = builder.remote(text) if text.startswith("sc://") else builder.master("local[2]" if text == "spark" else text)
        return Source(text, "spark", builder.getOrCreate())
    path = paths.resolve(text)
    if path.suffix == ".duckdb":
        if not path.exists():
            raise SourceError(f"DuckDB file {path} does not exist.")
        import duckdb

        return Source(str(path), "duckdb", duckdb.connect(str(path), read_only=True))
    if not path.is_dir():
        hint = " Run `saaskpi demo` to generate the demo data." if path == paths.DEMO_DIR else ""
        raise SourceError(f"Data source {path} is not a folder, a .duckdb file or a Spark URL.{hint}")
    return Source(str(path), "folder")


# --------------------------------------------------------------------------- engines
def _spark_session():
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master("local[2]").appName("saaskpi")
            .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4").getOrCreate())


@dataclass
class Engine:
    """Where lazy frames live: polars (embedded default), duckdb, or spark."""

    name: str = "polars"
    handle: Any = None

    @classmethod
    def for_source(cls, name: str, source: "Source") -> "Engine":
        """Engine `name` for `source`: a Spark source's own session (local, cluster or Spark Connect) runs the
        Spark engine, so that data and work stay where the source is."""
        if name == "spark" and source.kind == "spark":
            source.handle.conf.set("spark.sql.session.timeZone", "UTC")  # months of timestamps in UTC everywhere
            return cls(name, source.handle)
        return cls(name)

    def keeps(self, source: "Source") -> bool:
        """Whether this engine runs where `source` keeps its tables (the source's own Spark session), so that a
        big table can stay there instead of being read into Python."""
        return self.name == "spark" and source.kind == "spark" and self.handle is source.handle

    def __post_init__(self):
        if self.name not in ENGINES:
            raise SourceError(f"Unknown engine {self.name!r}: choose one of {', '.join(ENGINES)}.")
        if self.handle is None and self.name == "duckdb":
            import duckdb

            self.handle = duckdb.connect()
            self.handle.execute("set TimeZone = 'UTC'")  # month keys of timestamps are taken in UTC, as on Polars
            self.handle.execute("set enable_progress_bar = false")
        if self.handle is None and self.name == "spark":
            self.handle = _spark_session()

    def lazy(self, frame: pl.DataFrame) -> nw.LazyFrame:
        """A polars frame as a Narwhals lazy frame on this engine."""
        if self.name == "polars":
            return nw.from_native(frame.lazy())
        arrow = frame.to_arrow()
        if self.name == "duckdb":
            return nw.from_native(self.handle.from_arrow(arrow))
        return nw.from_native(self.handle.createDataFrame(arrow))

    def read_parquet(self, path: Path, columns: list[str]) -> nw.LazyFrame:
        """A Parquet file read by DuckDB or Spark itself (not through Python), with the given columns."""
        if self.name == "duckdb":
            return nw.from_native(self.handle.read_parquet(str(path))).select(columns)
        return nw.from_native(self.handle.read.parquet(str(path))).select(columns)


# --------------------------------------------------------------------------- validated tables
@dataclass
class Tables:
    """The validated tables of one source, served to metric code as lazy frames."""

    source: Source
    frames: dict[str, pl.DataFrame]
    engine: Engine = field(default_factory=Engine)
    reporting_currency: str = "USD"
    scans: dict[str, pl.LazyFrame] = field(default_factory=dict)  # big tables, never loaded whole
    scan_accounts: pl.Series | None = None  # the accounts the scans are restricted to (None: all)
    parent: "Tables | None" = None  # the unrestricted tables these were restricted from
    as_stored: dict[str, list[str]] = field(default_factory=dict)  # big tables' text columns used as stored
    natives: dict[str, nw.LazyFrame] = field(default_factory=dict)  # big tables kept in the source's engine (all accounts)

    def has(self, *names: str) -> bool:
        return all(n in self.frames or n in self.scans or n in self.natives for n in names)

    def missing(self, *names: str) -> list[str]:
        return [n for n in names if not self.has(n)]

    def lazy(self, name: str) -> nw.LazyFrame:
        """Table `name` as a Narwhals lazy frame on the engine."""
        if name not in self._lazy_cache:
            if name in self.natives:
                self._lazy_cache[name] = self._of_accounts(self.natives[name])
            elif name in self.scans and self.engine.name == "polars":
                self._lazy_cache[name] = nw.from_native(self.scans[name])
            elif name in self.scans:
                self._lazy_cache[name] = self._engine_scan(name)
            else:
                self._lazy_cache[name] = self.engine.lazy(self.frames[name])
        return self._lazy_cache[name]

    def _engine_scan(self, name: str) -> nw.LazyFrame:
        """A big table on DuckDB or Spark: its Parquet file read by the engine itself when the file already has
        the contract's types (what `typed_scan` would produce), else the typed Polars scan streamed over."""
        typed = self.scans[name].collect_schema()
        path = self.source.parquet_path(name)
        stored = pl.scan_parquet(path).collect_schema() if path else {}
        if path and all(stored.get(c) == t for c, t in typed.items()):
            return self._of_accounts(self.engine.read_parquet(path, list(typed)))
        return self.engine.lazy(self.scans[name].collect(engine="streaming"))

    def _of_accounts(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        """A big table read by the engine itself, restricted to these tables' accounts (a semi-join in the engine)."""
        if self.scan_accounts is None:
            return frame
        keep = self.engine.lazy(pl.DataFrame({"account_id": self.scan_accounts.unique()}))
        return frame.join(keep, on="account_id", how="semi")

    def aggregate(self, name: str, compute: Callable[["Tables"], pd.DataFrame]) -> pd.DataFrame:
        """`compute(tables)`, an aggregate of the big tables with an account_id column: for a source with big
        tables, computed once over every account and kept in the disk cache (see cache.py) for every kernel
        and segment, then restricted to these tables' accounts."""
        from .cache import cache_dir, cached_frame

        whole = self.parent or self
        if not whole.scans or cache_dir() is None:
            return compute(self)
        key = f"{whole.source.location}|{whole.source.fingerprint()}|{whole.engine.name}"
        frame = cached_frame(name, key, lambda: compute(whole))
        if self.scan_accounts is None:
            return frame
        return frame[frame.account_id.isin(self.scan_accounts.to_list())].reset_index(drop=True)

    def column_max(self, name: str, column: str):
        """Largest value of a column (computed in the engine for big tables)."""
        if name in self.scans:
            return self.scans[name].select(pl.col(column).max()).collect(engine="streaming").item()
        if name in self.natives:
            return self.natives[name].select(nw.col(column).max()).collect().item()
        return self.frames[name][column].max()

    def from_polars(self, frame: pl.DataFrame) -> nw.LazyFrame:
        """A small helper frame (e.g. a month calendar) on the same engine."""
        return self.engine.lazy(frame)

    @cached_property
    def _lazy_cache(self) -> dict[str, nw.LazyFrame]:
        return {}

    def restricted_to(self, account_ids: pl.Series) -> "Tables":
        """The same tables restricted to the given accounts (tables without account_id unchanged)."""
        keep = account_ids.implode()
        # leads and opportunities carry an account only once won: workbook.segment_tables splits them
        frames = {n: (f.filter(pl.col("account_id").is_in(keep)) if "account_id" in f.columns and n not in ("leads", "opportunities")
                      else f) for n, f in self.frames.items()}
        scans = {n: f.filter(pl.col("account_id").is_in(account_ids.to_list())) for n, f in self.scans.items()}
        return Tables(self.source, frames, self.engine, self.reporting_currency, scans, account_ids, self.parent or self,
                      natives=self.natives)


def validated_tables(source: Source, reporting_currency: str = "USD", engine: Engine | None = None,
                     segments: tuple[str, ...] = ()) -> Tables:
    """Every table of `source` typed and checked; raises DataContractError listing every problem.

    `segments`: the accounts.segment values the segment files know (empty: any value is accepted).
    A source with big Parquet tables that passed validation is remembered (cache.py, keyed by its files'
    fingerprint): other kernels opening it then skip the checks over the big tables and across tables."""
    from .cache import cached_json

    if not any(source.parquet_path(n) for n in LAZY_TABLES):
        return _validated_tables(source, reporting_currency, engine, segments, None)
    key = f"{source.location}|{source.fingerprint()}|{reporting_currency}|{','.join(segments)}"
    checked: list = []  # set when this call checks the source (nothing cached)

    def check() -> dict:
        checked.append(_validated_tables(source, reporting_currency, engine, segments, None))
        return checked[0].as_stored

    as_stored = cached_json("validated", key, check)
    return checked[0] if checked else _validated_tables(source, reporting_currency, engine, segments, as_stored)


def _validated_tables(source: Source, reporting_currency: str, engine: Engine | None, segments: tuple[str, ...],
                      as_stored: dict[str, list[str]] | None) -> Tables:
    """validated_tables; with `as_stored` (a big table's text columns kept as stored, from an earlier
    validation of the same files) the big tables and cross-table rules are not checked again."""
    names = source.table_names()
    problems: list[Problem] = [
        Problem("source.missing_table", t, None, f"required table `{t}` is missing (expected {t}.csv or {t}.parquet)", 0)
        for t in REQUIRED_TABLES if t not in names]
    problems += source.ambiguous()
    ambiguous = {p.table for p in problems}
    frames: dict[str, pl.DataFrame] = {}
    scans: dict[str, pl.LazyFrame] = {}
    stored: dict[str, list[str]] = {}
    natives: dict[str, nw.LazyFrame] = {}
    for name in names:
        if name in ambiguous:
            continue
        if name in LAZY_TABLES and engine is not None and engine.keeps(source):
            native = source.native(name)
            if stored_as_contract(name, native):
                natives[name] = native.select(list(TABLES[name].to_schema().columns))
                continue
        scan = source.scan(name) if name in LAZY_TABLES else None
        if scan is not None:
            try:
                typed, found, stored[name] = typed_scan(name, scan, reporting_currency,
                                                        None if as_stored is None else as_stored.get(name))
            except (pl.exceptions.PolarsError, OSError) as err:
                problems.append(_unreadable_parquet(name, err))
                continue
            problems += found
            if not any(p.code.endswith(".missing_column") for p in found):
                scans[name] = typed
            continue
        try:
            raw, offset = source.read(name)
        except Unreadable as err:
            problems.append(err.problem)
            continue
        if raw.height == 0:
            problems.append(Problem(f"{name}.empty", name, None, "the table has a header but no rows", 0))
            continue
        table = typed_table(name, raw, reporting_currency, row_offset=offset)
        problems += table.problems
        if not any(p.code.endswith(".missing_column") for p in table.problems):
            frames[name] = table.frame
    for name, native in natives.items():
        problems += native_problems(name, native, engine.lazy, frames)
    if as_stored is None:
        problems += cross_table_problems({**frames, **scans}, reporting_currency, segments)
    if problems:
        raise DataContractError(problems, source.location)
    clean = {n: f.drop(ROW) for n, f in frames.items()}
    return Tables(source, clean, engine or Engine(), reporting_currency, scans, as_stored=stored, natives=natives)
