"""Opening a data source (a folder of CSV/Parquet files, a DuckDB file, a Spark session),
validating it against the contract, and handing its tables to an engine as lazy frames.

Inputs are only ever read. Every table is validated once, here at the boundary; metric code
receives Narwhals lazy frames with contract types and never re-checks them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import narwhals as nw
import pandas as pd
import polars as pl

from . import paths
from .contract import REQUIRED_TABLES, ROW, TABLES, cross_table_problems, typed_table
from .contract.lazy import LAZY_TABLES, typed_scan
from .contract.native import as_contract, native_problems, stored_as_contract
from .contract.rules import pass_rules
from .contract.tables import absent_as_null
from .errors import DataContractError, Problem, SourceError
from .frames import to_pandas

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
            bad.append(
                f"line {number}: bytes {line[err.start : err.start + 3].hex(' ')} at byte {err.start + 1} of the line"
            )
    hint = (
        "it starts with a UTF-16 byte-order mark"
        if data[:2] in (b"\xff\xfe", b"\xfe\xff")
        else "probably Latin-1 or Windows-1252"
    )
    return Problem(
        f"{name}.not_utf8",
        name,
        None,
        f"the file is not UTF-8 text ({hint}): save it as UTF-8",
        len(bad),
        tuple(bad[:5]),
    )


def _read_csv(name: str, path: Path) -> pl.DataFrame:
    """A CSV file as text columns (types are parsed by the contract, which reports failures).

    A UTF-8 byte-order mark (Excel's "CSV UTF-8") is accepted; anything that is not a rectangular
    UTF-8 table with distinct column names raises `Unreadable` with the problem to report."""
    data = path.read_bytes()
    if not data:
        raise Unreadable(
            Problem(f"{name}.empty_file", name, None, f"{path.name} is empty (0 bytes): not even a header", 0)
        )
    problem = _not_utf8(name, data)
    if problem:
        raise Unreadable(problem)
    # the first record as the csv module reads it (newline="": a lone carriage return ends a line, as in Polars,
    # instead of raising csv.Error)
    header = next(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")), [])
    names = [h.strip() for h in header]
    twice = sorted({h for h in names if names.count(h) > 1})
    if twice:
        raise Unreadable(
            Problem(
                f"{name}.duplicate_column",
                name,
                twice[0],
                f"the header names {', '.join(f'`{c}`' for c in twice)} more than once",
                0,
                ("line 1: " + ",".join(header),),
            )
        )
    try:
        return pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as err:
        raise Unreadable(
            Problem(
                f"{name}.unreadable", name, None, f"{path.name} could not be read as CSV: {str(err).splitlines()[0]}", 0
            )
        ) from None


def _unreadable_parquet(name: str, err: Exception) -> Problem:
    return Problem(
        f"{name}.unreadable", name, None, f"{name}.parquet could not be read as Parquet: {str(err).splitlines()[0]}", 0
    )


class Source(ABC):
    """A data source: where the tables are and how to read them. Each kind of source (a folder, a DuckDB
    file, a Spark catalog, a PostgreSQL schema) implements this one interface; validation and the workbook
    never ask which kind they have."""

    location: str  # shown in messages (never with a password)
    kind: str = ""
    session: Any = None  # the SparkSession a Spark source's tables live in (see Engine.for_source)

    @abstractmethod
    def table_names(self) -> list[str]:
        """Contract tables present in the source."""

    @abstractmethod
    def read(self, name: str) -> tuple[pl.DataFrame, int]:
        """Table `name` as stored, and the line number of its first row (for error examples); raises
        `Unreadable` for a table that cannot be read as a table."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A short hash that changes when the source's data changes (keys the caches)."""

    def expected(self, name: str) -> str:
        """How table `name` is looked for (said when a required table is missing)."""
        return f"a table `{name}`"

    def problems(self) -> list[Problem]:
        """Problems of the source as a whole (e.g. a table stored twice), found before any table is read."""
        return []

    def locate(self, problem: Problem) -> Problem:
        """`problem` naming its table as the source does (e.g. schema.table)."""
        return problem

    def scan(self, name: str, accounts: pl.Series | None = None) -> pl.LazyFrame | None:
        """Big table `name` as a lazy Polars frame (nothing is read yet), restricted at the source to `accounts`
        where the source can do so (callers filter again), or None: the table is then read whole."""
        return None

    def parquet_path(self, name: str) -> Path | None:
        """The Parquet file of table `name`, if that is how it is stored (DuckDB and Spark engines read it)."""
        return None

    def native(self, name: str) -> nw.LazyFrame:
        """Table `name` as a lazy frame in the source's own session (only for a source with a `session`)."""
        raise NotImplementedError(f"{type(self).__name__} has no session of its own")

    def can_run(self, sql: str) -> bool:
        """Whether `query(sql)` runs in the source's database and gives what the contract's typed tables would."""
        return False

    def query(self, sql: str) -> pl.DataFrame:
        """The result of `sql` (table names as ``{name}`` placeholders) run in the source's database."""
        raise NotImplementedError(f"{type(self).__name__} does not run SQL")

    def column_max(self, name: str, column: str) -> Any:
        """Largest value of a column computed by the source itself, or None when it cannot."""
        return None


class FolderSource(Source):
    """A folder of CSV and Parquet files, one per table."""

    kind = "folder"

    def __init__(self, location: str):
        self.location = location
        self.root = Path(location)

    def table_names(self) -> list[str]:
        return sorted({p.stem for p in self.root.iterdir() if p.suffix in SUFFIXES and p.stem in TABLES})

    def expected(self, name: str) -> str:
        return f"{name}.csv or {name}.parquet"

    def problems(self) -> list[Problem]:
        """A problem for each table stored twice (as CSV and as Parquet): which one is meant is unclear."""
        return [
            Problem(
                "source.both_formats", n, None, f"{n}.csv and {n}.parquet are both in {self.root}: keep one of them", 0
            )
            for n in self.table_names()
            if all((self.root / f"{n}{s}").exists() for s in SUFFIXES)
        ]

    def read(self, name: str) -> tuple[pl.DataFrame, int]:
        if (self.root / f"{name}.csv").exists():
            return _read_csv(name, self.root / f"{name}.csv"), 2
        try:
            return pl.read_parquet(self.root / f"{name}.parquet"), 1
        except (pl.exceptions.PolarsError, OSError) as err:
            raise Unreadable(_unreadable_parquet(name, err)) from None

    def parquet_path(self, name: str) -> Path | None:
        path = self.root / f"{name}.parquet"
        return path if path.exists() else None

    def scan(self, name: str, accounts: pl.Series | None = None) -> pl.LazyFrame | None:
        """A Parquet file as a lazy scan (big tables stay out of memory; the callers' filters skip row groups)."""
        path = self.parquet_path(name)
        return pl.scan_parquet(path) if path else None

    def fingerprint(self) -> str:
        """A short hash of the source's files (name, size, modification time)."""
        h = hashlib.sha256(self.location.encode())
        for p in sorted(self.root.iterdir()):
            if p.suffix in SUFFIXES:
                st = p.stat()
                h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()[:12]


class DuckDBSource(Source):
    """A DuckDB database file, opened read-only."""

    kind = "duckdb"

    def __init__(self, location: str, connection: Any):
        self.location = location
        self.handle = connection

    def table_names(self) -> list[str]:
        names = {r[0] for r in self.handle.execute("select table_name from information_schema.tables").fetchall()}
        return sorted(n for n in names if n in TABLES)

    def read(self, name: str) -> tuple[pl.DataFrame, int]:
        return self.handle.table(name).pl(), 1

    def fingerprint(self) -> str:
        """A short hash of the file's path, size and modification time."""
        st = Path(self.location).stat()
        return hashlib.sha256(f"{self.location}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]


class SparkSource(Source):
    """The tables of a Spark catalog (a local session, a cluster or Spark Connect)."""

    kind = "spark"

    def __init__(self, location: str, session: Any):
        self.location = location
        self.session = self.handle = session

    def table_names(self) -> list[str]:
        return sorted(n for n in {t.name for t in self.session.catalog.listTables()} if n in TABLES)

    def read(self, name: str) -> tuple[pl.DataFrame, int]:
        return pl.from_arrow(self.session.table(name).toArrow()), 1

    def native(self, name: str) -> nw.LazyFrame:
        """Table `name` as a lazy frame in the source's session (nothing is read)."""
        return nw.from_native(self.session.table(name))

    def fingerprint(self) -> str:
        """The session's address only: a Spark catalog has no cheap change marker (see docs/spark.md)."""
        return hashlib.sha256(self.location.encode()).hexdigest()[:12]


def shown(location: Any) -> str:
    """A source as it may be shown: a URL without its password (a folder or file path as given)."""
    text = str(location)
    if "://" not in text:
        return text
    text = re.sub(r"(://[^/@:]*):[^/@]*@", r"\1@", text)
    return re.sub(r"([?&])password=[^&]*&?", r"\1", text).rstrip("?&")


def open_source(location: str | Path | Any) -> Source:
    """Open a source: a folder, a ``.duckdb`` file, a SparkSession, a ``spark://``/``sc://`` URL, or a
    ``postgresql://`` URL (see postgres.py)."""
    if isinstance(location, Source):
        return location
    if hasattr(location, "catalog") and hasattr(location, "table"):
        return SparkSource("spark-session", location)
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresSource
        except ModuleNotFoundError as err:
            raise SourceError(
                f"A PostgreSQL source needs the `postgres` extra ({err.name} is missing): "
                "pip install 'saaskpi[postgres]'."
            ) from None
        return PostgresSource.open(text)
    if text.startswith(("spark://", "sc://", "local[")) or text == "spark":
        from pyspark.sql import SparkSession  # optional dependency: pip install saaskpi[spark]

        _quiet_pyspark()

        builder = SparkSession.builder.config("spark.sql.session.timeZone", "UTC")
        builder = (
            builder.remote(text)
            if text.startswith("sc://")
            else builder.master("local[2]" if text == "spark" else text)
        )
        return SparkSource(text, builder.getOrCreate())
    path = paths.resolve(text)
    if path.suffix == ".duckdb":
        if not path.exists():
            raise SourceError(f"DuckDB file {path} does not exist.")
        import duckdb

        return DuckDBSource(str(path), duckdb.connect(str(path), read_only=True))
    if not path.is_dir():
        hint = " Run `saaskpi demo` to generate the demo data." if path == paths.DEMO_DIR else ""
        raise SourceError(
            f"Data source {path} is not a folder, a .duckdb file, a Spark URL or a postgresql:// URL.{hint}"
        )
    return FolderSource(str(path))


# --------------------------------------------------------------------------- engines
def _quiet_pyspark() -> None:
    """PySpark 4 warns at each pandas conversion that it does not fully support pandas 3 yet; the Spark engine's
    results are held to the Polars engine's by the parity tests, so the warning says nothing to a user."""
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)


def _spark_session():
    from pyspark.sql import SparkSession

    _quiet_pyspark()

    return (
        SparkSession.builder.master("local[2]")
        .appName("saaskpi")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )


@dataclass
class Engine:
    """Where lazy frames live: polars (embedded default), duckdb, or spark."""

    name: str = "polars"
    handle: Any = None

    @classmethod
    def for_source(cls, name: str, source: Source) -> Engine:
        """Engine `name` for `source`: a Spark source's own session (local, cluster or Spark Connect) runs the
        Spark engine, so that data and work stay where the source is."""
        if name == "spark" and source.session is not None:
            _quiet_pyspark()
            source.session.conf.set("spark.sql.session.timeZone", "UTC")  # months of timestamps in UTC everywhere
            return cls(name, source.session)
        return cls(name)

    def keeps(self, source: Source) -> bool:
        """Whether this engine runs where `source` keeps its tables (the source's own Spark session), so that a
        big table can stay there instead of being read into Python."""
        return self.name == "spark" and source.session is not None and self.handle is source.session

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
    parent: Tables | None = None  # the unrestricted tables these were restricted from
    as_stored: dict[str, list[str]] = field(default_factory=dict)  # big tables' text columns used as stored
    # (table, column): largest value of a big table's date-time column, counted while it was validated
    maxima: dict[tuple[str, str], Any] = field(default_factory=dict)
    natives: dict[str, nw.LazyFrame] = field(
        default_factory=dict
    )  # big tables kept in the source's engine (all accounts)

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
        if path and all(stored.get(c) == t or (c not in stored and absent_as_null(name, c)) for c, t in typed.items()):
            read = self.engine.read_parquet(path, [c for c in typed if c in stored])
            return self._of_accounts(as_contract(name, read))
        return self.engine.lazy(self.scans[name].collect(engine="streaming"))

    def _of_accounts(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        """A big table read by the engine itself, restricted to these tables' accounts (a semi-join in the engine)."""
        if self.scan_accounts is None:
            return frame
        keep = self.engine.lazy(pl.DataFrame({"account_id": self.scan_accounts.unique()}))
        return frame.join(keep, on="account_id", how="semi")

    def aggregate(
        self, name: str, compute: Callable[[Tables], pd.DataFrame], sql: str = "", sort: tuple[str, ...] = ()
    ) -> pd.DataFrame:
        """`compute(tables)`, an aggregate of the big tables with an account_id column: for a source with big
        tables, computed once over every account and kept in the disk cache (see cache.py) for every kernel
        and segment, then restricted to these tables' accounts. `sql` is the same aggregate in SQL (sorted
        by `sort` once collected): a source that runs SQL (PostgreSQL) computes it in its database, so that
        the big table is never read into Python."""
        from .cache import cache_dir, cached_frame

        whole = self.parent or self
        pushed = bool(sql) and bool(whole.scans) and whole.source.can_run(sql) and whole._text_as_stored()
        if not pushed and (not whole.scans or cache_dir() is None):
            return compute(self)

        def over_all_accounts() -> pd.DataFrame:
            if pushed:
                return to_pandas(nw.from_native(whole.source.query(sql)), sort=list(sort))
            return compute(whole)

        key = f"{whole.source.location}|{whole.source.fingerprint()}|{'sql' if pushed else whole.engine.name}"
        frame = over_all_accounts() if cache_dir() is None else cached_frame(name, key, over_all_accounts)
        if self.scan_accounts is None:
            return frame
        return frame[frame.account_id.isin(self.scan_accounts.to_list())].reset_index(drop=True)

    def column_max(self, name: str, column: str):
        """Largest value of a column (computed in the engine for big tables, or known from their validation)."""
        if self.scan_accounts is None and (name, column) in self.maxima:
            return self.maxima[(name, column)]
        pushed = self.source.column_max(name, column) if self.scan_accounts is None and name in self.scans else None
        if pushed is not None:
            return pushed
        if name in self.scans:
            return self.scans[name].select(pl.col(column).max()).collect(engine="streaming").item()
        if name in self.natives:
            return self.natives[name].select(nw.col(column).max()).collect().item()
        return self.frames[name][column].max()

    def from_polars(self, frame: pl.DataFrame) -> nw.LazyFrame:
        """A small helper frame (e.g. a month calendar) on the same engine."""
        return self.engine.lazy(frame)

    def _text_as_stored(self) -> bool:
        """Whether no text value of the big tables has surrounding spaces (SQL over them then groups and joins
        as the typed tables would)."""
        return all(
            set(self.as_stored.get(n, []))
            >= {c for c, s in TABLES[n].to_schema().columns.items() if s.dtype.type == pl.String}
            for n in self.scans
        )

    def _scan_of(self, name: str, account_ids: pl.Series) -> pl.LazyFrame:
        """Big table `name` typed as validated, restricted at the source to the accounts where it can (when
        its account ids are stored as they are used, without surrounding spaces)."""
        stored = self.as_stored.get(name, [])
        raw = self.source.scan(name, account_ids) if "account_id" in stored else None
        return self.scans[name] if raw is None else typed_scan(name, raw, self.reporting_currency, stored).frame

    @cached_property
    def _lazy_cache(self) -> dict[str, nw.LazyFrame]:
        return {}

    def restricted_to(self, account_ids: pl.Series) -> Tables:
        """The same tables restricted to the given accounts (tables without account_id unchanged)."""
        keep = account_ids.implode()
        # leads and opportunities carry an account only once won: workbook.segment_tables splits them
        frames = {
            n: (
                f.filter(pl.col("account_id").is_in(keep))
                if "account_id" in f.columns and n not in ("leads", "opportunities", "sales_activities")
                else f
            )
            for n, f in self.frames.items()
        }
        scans = {
            n: self._scan_of(n, account_ids).filter(pl.col("account_id").is_in(account_ids.to_list()))
            for n in self.scans
        }
        return Tables(
            self.source,
            frames,
            self.engine,
            self.reporting_currency,
            scans,
            account_ids,
            self.parent or self,
            natives=self.natives,
        )


KEPT_SOURCES = ("folder", "duckdb", "postgres")  # sources whose fingerprint changes with their data
TYPED_COPIES = ("folder", "duckdb")  # files already on this machine: a database's rows are not copied to disk


def validated_tables(
    source: Source, reporting_currency: str = "USD", engine: Engine | None = None, segments: tuple[str, ...] = ()
) -> Tables:
    """Every table of `source` typed and checked; raises DataContractError listing every problem.

    `segments`: the accounts.segment values the segment files know (empty: any value is accepted).
    A source whose fingerprint changes with its data (a folder, a DuckDB file, a PostgreSQL schema) that passed
    validation is kept in the cache (cache.py, keyed by its fingerprint, the currency, the segments and the code):
    which text columns of its big tables are used as stored and, for files (a folder, a DuckDB file), its small
    tables as typed Parquet. Other kernels opening the same unchanged source then do not check its big tables and
    the rules across tables again, and read the typed files instead of reading, typing and checking the small
    tables again (a PostgreSQL schema's small tables are read from the database each time)."""
    from . import cache

    if source.kind not in KEPT_SOURCES or cache.cache_dir() is None:
        return _validated_tables(source, reporting_currency, engine, segments, None)
    key = f"{source.location}|{source.fingerprint()}|{reporting_currency}|{','.join(segments)}"
    checked: list[Tables] = []  # set when this call checks the source (nothing kept yet)

    def check() -> dict:
        checked.append(_validated_tables(source, reporting_currency, engine, segments, None))
        copied = list(checked[0].frames) if source.kind in TYPED_COPIES else []
        for name in copied:
            path = _kept_frame(key, name)
            if path is not None:
                paths.atomic_write(path, checked[0].frames[name].write_parquet)
        return {"as_stored": checked[0].as_stored, "frames": copied}

    kept = cache.cached_json("typed", key, check)
    if checked:
        return checked[0]
    try:
        frames = {name: pl.read_parquet(_kept_frame(key, name)) for name in kept["frames"]} or None
    except Exception:  # noqa: BLE001 - a kept table damaged or pruned: the source is checked again
        entry = cache._entry("typed", key, ".json")
        if entry is not None:
            entry.unlink(missing_ok=True)
        return validated_tables(source, reporting_currency, engine, segments)
    return _validated_tables(source, reporting_currency, engine, segments, kept["as_stored"], frames)


def _kept_frame(key: str, name: str) -> Path | None:
    """Where the typed table `name` of a validated source (`key`) is kept in the cache."""
    from . import cache

    return cache._entry(f"typed-{name}", key, ".parquet")


def _validated_tables(
    source: Source,
    reporting_currency: str,
    engine: Engine | None,
    segments: tuple[str, ...],
    as_stored: dict[str, list[str]] | None,
    kept: dict[str, pl.DataFrame] | None = None,
) -> Tables:
    """validated_tables; with `as_stored` (a big table's text columns kept as stored, from an earlier
    validation of the same files) the big tables and cross-table rules are not checked again, and with `kept`
    (the small tables as that validation typed them) the small tables are not read again."""
    names = source.table_names()
    problems: list[Problem] = [
        Problem("source.missing_table", t, None, f"required table `{t}` is missing (expected {source.expected(t)})", 0)
        for t in REQUIRED_TABLES
        if t not in names
    ]
    problems += source.problems()
    ambiguous = {p.table for p in problems}
    frames: dict[str, pl.DataFrame] = {}
    scans: dict[str, pl.LazyFrame] = {}
    stored: dict[str, list[str]] = {}
    natives: dict[str, nw.LazyFrame] = {}
    maxima: dict[tuple[str, str], Any] = {}
    for name in sorted(names, key=lambda n: n in LAZY_TABLES):  # the big tables last: their rules need the others
        if name in ambiguous:
            continue
        if kept is not None and name in kept:
            frames[name] = kept[name]
            continue
        if name in LAZY_TABLES and engine is not None and engine.keeps(source):
            native = source.native(name)
            if stored_as_contract(name, native):
                natives[name] = as_contract(name, native)
                continue
        scan = source.scan(name) if name in LAZY_TABLES else None
        if scan is not None:
            try:
                typed, found, stored[name], largest = typed_scan(
                    name,
                    scan,
                    reporting_currency,
                    None if as_stored is None else as_stored.get(name),
                    pass_rules(name, frames, reporting_currency, segments),
                )
            except (pl.exceptions.PolarsError, OSError) as err:
                problems.append(_unreadable_parquet(name, err))
                continue
            problems += found
            if not any(p.code.endswith(".missing_column") for p in found):
                scans[name] = typed
                maxima |= {(name, column): value for column, value in largest.items()}
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
    for name, native in natives.items():  # only when an engine keeps the source's tables
        assert engine is not None
        problems += native_problems(name, native, engine.lazy, frames)
    if as_stored is None:
        problems += cross_table_problems(frames | scans, reporting_currency, segments, checked=frozenset(scans))
    if problems:
        raise DataContractError([source.locate(p) for p in problems], source.location)
    clean = {n: f.drop(ROW) if ROW in f.columns else f for n, f in frames.items()}
    return Tables(
        source, clean, engine or Engine(), reporting_currency, scans, as_stored=stored, natives=natives, maxima=maxima
    )
