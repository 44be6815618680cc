"""Opening a data source (a folder of CSV/Parquet files, a DuckDB file, a Spark session),
validating it against the contract, and handing its tables to an engine as lazy frames.

Inputs are only ever read. Every table is validated once, here at the boundary; metric code
receives Narwhals lazy frames with contract types and never re-checks them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl

from . import paths
from .contract import REQUIRED_TABLES, ROW, TABLES, cross_table_problems, typed_table
from .contract.lazy import LAZY_TABLES, typed_scan
from .errors import DataContractError, Problem, SourceError

SUFFIXES = (".csv", ".parquet")
ENGINES = ("polars", "duckdb", "spark")


# --------------------------------------------------------------------------- reading
def _read_csv(path: Path) -> pl.DataFrame:
    """A CSV file as text columns (types are parsed by the contract, which reports failures)."""
    try:
        return pl.read_csv(path, infer_schema=False, encoding="utf8")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, UnicodeDecodeError) as err:
        raise SourceError(f"{path.name} could not be read as UTF-8 CSV: {str(err).splitlines()[0]}") from None


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
            found = {p.stem for p in root.iterdir() if p.suffix in SUFFIXES and p.stem in TABLES}
            twice = sorted(n for n in found if all((root / f"{n}{s}").exists() for s in SUFFIXES))
            if twice:
                raise SourceError(f"{', '.join(twice)} present as both CSV and Parquet in {root}: keep one of each.")
            return sorted(found)
        if self.kind == "duckdb":
            names = {r[0] for r in self.handle.execute("select table_name from information_schema.tables").fetchall()}
        else:
            names = {t.name for t in self.handle.catalog.listTables()}
        return sorted(n for n in names if n in TABLES)

    def read(self, name: str) -> tuple[pl.DataFrame, int]:
        """Table `name` as stored, and the line number of its first row (for error examples)."""
        if self.kind == "folder":
            root = Path(self.location)
            csv = root / f"{name}.csv"
            if csv.exists():
                return _read_csv(csv), 2
            return pl.read_parquet(root / f"{name}.parquet"), 1
        if self.kind == "duckdb":
            return self.handle.table(name).pl(), 1
        return pl.from_arrow(self.handle.table(name).toArrow()), 1

    def scan(self, name: str) -> pl.LazyFrame | None:
        """Table `name` as a lazy Polars scan when it is a Parquet file (big tables stay out of memory)."""
        if self.kind == "folder":
            path = Path(self.location) / f"{name}.parquet"
            if path.exists():
                return pl.scan_parquet(path)
        return None

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

    def __post_init__(self):
        if self.name not in ENGINES:
            raise SourceError(f"Unknown engine {self.name!r}: choose one of {', '.join(ENGINES)}.")
        if self.handle is None and self.name == "duckdb":
            import duckdb

            self.handle = duckdb.connect()
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


# --------------------------------------------------------------------------- validated tables
@dataclass
class Tables:
    """The validated tables of one source, served to metric code as lazy frames."""

    source: Source
    frames: dict[str, pl.DataFrame]
    engine: Engine = field(default_factory=Engine)
    reporting_currency: str = "USD"
    scans: dict[str, pl.LazyFrame] = field(default_factory=dict)  # big tables, never loaded whole

    def has(self, *names: str) -> bool:
        return all(n in self.frames or n in self.scans for n in names)

    def missing(self, *names: str) -> list[str]:
        return [n for n in names if not self.has(n)]

    def lazy(self, name: str) -> nw.LazyFrame:
        """Table `name` as a Narwhals lazy frame on the engine."""
        if name not in self._lazy_cache:
            if name in self.scans and self.engine.name == "polars":
                self._lazy_cache[name] = nw.from_native(self.scans[name])
            else:
                frame = self.frames[name] if name in self.frames else self.scans[name].collect(engine="streaming")
                self._lazy_cache[name] = self.engine.lazy(frame)
        return self._lazy_cache[name]

    def column_max(self, name: str, column: str):
        """Largest value of a column (computed in the engine for big tables)."""
        if name in self.scans:
            return self.scans[name].select(pl.col(column).max()).collect(engine="streaming").item()
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
        return Tables(self.source, frames, self.engine, self.reporting_currency, scans)


def validated_tables(source: Source, reporting_currency: str = "USD", engine: Engine | None = None) -> Tables:
    """Every table of `source` typed and checked; raises DataContractError listing every problem."""
    names = source.table_names()
    problems: list[Problem] = [
        Problem("source.missing_table", t, None, f"required table `{t}` is missing (expected {t}.csv or {t}.parquet)", 0)
        for t in REQUIRED_TABLES if t not in names]
    frames: dict[str, pl.DataFrame] = {}
    scans: dict[str, pl.LazyFrame] = {}
    for name in names:
        scan = source.scan(name) if name in LAZY_TABLES else None
        if scan is not None:
            typed, found = typed_scan(name, scan, reporting_currency)
            problems += found
            if not any(p.code.endswith(".missing_column") for p in found):
                scans[name] = typed
            continue
        raw, offset = source.read(name)
        if raw.height == 0:
            problems.append(Problem(f"{name}.empty", name, None, "the table has no rows", 0))
            continue
        table = typed_table(name, raw, reporting_currency, row_offset=offset)
        problems += table.problems
        if not any(p.code.endswith(".missing_column") for p in table.problems):
            frames[name] = table.frame
    problems += cross_table_problems({**frames, **scans}, reporting_currency)
    if problems:
        raise DataContractError(problems, source.location)
    clean = {n: f.drop(ROW) for n, f in frames.items()}
    return Tables(source, clean, engine or Engine(), reporting_currency, scans)
