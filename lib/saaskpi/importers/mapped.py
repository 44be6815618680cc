"""Column mappings (`saaskpi import mapped --mapping parameters/sources/<name>.yaml`): any CSV or Parquet file's
columns mapped onto a contract table.

A mapping names, per contract table, the file to read and, per contract column, where its value comes from:

    tables:
      subscriptions:
        file: docs/examples/subscriptions.csv      # relative to the project folder, or absolute
        filter: [{column: Status, not_in: [test]}] # rows kept: every condition holds (on the file's text)
        distinct_on: null                          # or a contract column: keep the first row per value
        columns:
          subscription_id: Subscription            # a plain name: the file's column, as is
          start_date: {from: Start, format: "%d/%m/%Y"}               # strptime format of a date / date-time
          created_at: {from: Signed up, format: "%d/%m/%Y %H:%M", time_zone: Europe/Berlin}  # local -> UTC
          amount: {from: Price (cents), cents: true}                  # minor units -> major units
          plan: {from: Plan, values: {Basic: starter, Pro: growth}}   # value map (every value must be mapped)
          currency: {constant: USD}                                   # the same value on every row
          end_date: {from: End, default: null}                        # the value of an empty cell

The mapping is validated (unknown keys, tables, columns; a required contract column left unmapped) and so is
every file against it (a column it names that the file lacks, a value that does not parse with the format, a
value the value map does not know): every problem at once, nothing written. The tables written are then
validated like any source.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .. import paths
from ..contract.load import ROW, _parse_datetime, examples
from ..contract.tables import TABLES
from ..errors import ParameterError, Problem
from ..params import read_yaml
from ..sources import Unreadable
from . import Imported, Importer
from .billing import SetAside
from .reading import ExportError, FileRead, read_text_table

SOURCES_DIR = paths.PARAMETERS_DIR / "sources"
CURRENCY_SIGNS = r"[$€£¥\s]"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _EitherOr(_Strict):
    """A model that takes exactly one of two fields: EITHER_OR names them, and how the error message says them."""

    EITHER_OR: ClassVar[tuple[str, str, str]]

    @model_validator(mode="after")
    def _exactly_one(self):
        first, second, names = self.EITHER_OR
        if (getattr(self, first) is None) == (getattr(self, second) is None):
            raise ValueError(f"give exactly one of {names}")
        return self


class ColumnMap(_EitherOr):
    """Where one contract column's values come from."""

    EITHER_OR = ("source", "constant", "`from` (a column of the file) or `constant`")
    source: str | None = Field(default=None, alias="from")
    constant: str | int | float | bool | None = None
    format: str | None = None
    time_zone: str | None = None
    values: dict[str, str | int | float | bool | None] | None = None
    cents: bool = False
    default: str | int | float | bool | None = None


class Condition(_EitherOr):
    """A row filter: the file's `column` (as text) is in `in`, or not in `not_in`."""

    EITHER_OR = ("is_in", "not_in", "`in` or `not_in`")
    column: str
    is_in: tuple[str, ...] | None = Field(default=None, alias="in")
    not_in: tuple[str, ...] | None = None


class TableMap(_Strict):
    """One contract table from one file."""

    file: str
    columns: dict[str, ColumnMap]
    filter: tuple[Condition, ...] = ()
    distinct_on: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_names(cls, data):
        if isinstance(data, dict) and isinstance(data.get("columns"), dict):
            data = {
                **data,
                "columns": {k: {"from": v} if isinstance(v, str) else v for k, v in data["columns"].items()},
            }
        return data


class Mapping(_Strict):
    """A whole mapping file: a description and the contract tables it makes."""

    description: str = ""
    tables: dict[str, TableMap]


def load_mapping(path: Path) -> Mapping:
    """The mapping in `path`, validated against the contract (every problem named by its key)."""
    try:
        mapping = Mapping.model_validate(read_yaml(path))
    except ValidationError as err:
        lines = [f"  `{'.'.join(str(p) for p in e['loc'])}`: {e['msg']}" for e in err.errors()]
        raise ParameterError(
            f"{path.name}: {len(lines)} problem{'s' if len(lines) > 1 else ''}:\n" + "\n".join(lines)
        ) from None
    problems = []
    for table, spec in mapping.tables.items():
        if table not in TABLES:
            problems.append(f"  `tables.{table}`: not a contract table (known: {', '.join(TABLES)})")
            continue
        columns = TABLES[table].to_schema().columns
        problems += [
            f"  `tables.{table}.columns.{c}`: not a column of {table} (known: {', '.join(columns)})"
            for c in spec.columns
            if c not in columns
        ]
        problems += [
            f"  `tables.{table}.columns`: the required column `{c}` is not mapped"
            for c, col in columns.items()
            if col.required and c not in spec.columns
        ]
        if spec.distinct_on is not None and spec.distinct_on not in spec.columns:
            problems.append(f"  `tables.{table}.distinct_on`: `{spec.distinct_on}` is not one of the mapped columns")
    if problems:
        raise ParameterError(
            f"{path.name}: {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n" + "\n".join(problems)
        )
    return mapping


def _typed(expr: pl.Expr, dtype: pl.DataType, spec: ColumnMap, source_dtype: pl.DataType) -> pl.Expr:
    """`expr` (the mapped values) parsed into the contract type `dtype` as `spec` says."""
    if source_dtype != pl.String and spec.values is None and spec.constant is None:
        if dtype == pl.Date:
            return expr.cast(pl.Date, strict=False)
        if isinstance(dtype, pl.Datetime):
            zone = getattr(source_dtype, "time_zone", None)
            base = expr.cast(pl.Datetime("us"), strict=False)
            base = base if zone else base.dt.replace_time_zone(spec.time_zone or "UTC")
            return base.dt.convert_time_zone("UTC")
        return (expr / 100 if spec.cents else expr).cast(dtype, strict=False)
    text = expr.cast(pl.String).str.strip_chars()
    if dtype == pl.Date:
        return text.str.to_date(spec.format or "%Y-%m-%d", strict=False)
    if isinstance(dtype, pl.Datetime):
        if spec.format is None and spec.time_zone is None:
            return _parse_datetime("__text")  # placeholder, replaced by the caller (ISO with offsets)
        naive = text.str.to_datetime(spec.format or "%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us")
        return naive.dt.replace_time_zone(spec.time_zone or "UTC").dt.convert_time_zone("UTC")
    if dtype in (pl.Float64, pl.Int64):
        number = text.str.replace_all(CURRENCY_SIGNS, "").str.replace_all(",", "").cast(pl.Float64, strict=False)
        if spec.cents:
            number = number / 100
        if dtype == pl.Int64:
            return pl.when(number == number.floor()).then(number).cast(pl.Int64, strict=False)
        return number
    return pl.when(text == "").then(None).otherwise(text)


def _missing_columns(mapping_path: Path, table: str, spec: TableMap, path: Path, columns: list[str]) -> list[Problem]:
    named = [(f"columns.{c}.from", m.source) for c, m in spec.columns.items() if m.source is not None]
    named += [(f"filter[{i}].column", cond.column) for i, cond in enumerate(spec.filter)]
    return [
        Problem(
            "mapping.missing_column",
            table,
            column,
            f"{path.name} has no column `{column}` (named by tables.{table}.{key} in {mapping_path.name}); "
            f"its columns: {', '.join(columns)}",
            0,
        )
        for key, column in named
        if column not in columns
    ]


def _mapped_table(
    table: str, spec: TableMap, raw: pl.DataFrame, path: Path
) -> tuple[pl.DataFrame, list[Problem], list[SetAside]]:
    """The contract table `table` from the file's rows (with ROW line numbers), its problems and the rows left out."""
    schema = TABLES[table].to_schema().columns
    aside = []
    keep = pl.lit(True)
    for cond in spec.filter:
        text = pl.col(cond.column).cast(pl.String).str.strip_chars().fill_null("")
        keep = keep & (text.is_in(list(cond.is_in)) if cond.is_in is not None else ~text.is_in(list(cond.not_in or ())))
    dropped = raw.filter(~keep)
    if dropped.height:
        aside.append(
            SetAside(
                "filtered",
                table,
                dropped.height,
                tuple(f"row {r}" for r in dropped[ROW].head(5)),
                "left out by the mapping's row filter",
            )
        )
    rows = raw.filter(keep)
    problems = []
    out = {ROW: rows[ROW]}
    for column, spec_col in spec.columns.items():
        dtype = schema[column].dtype.type
        if spec_col.constant is not None:
            values = pl.repeat(pl.lit(str(spec_col.constant)), rows.height, eager=True).alias("__value")
            source_dtype = pl.String
        else:
            values = rows.get_column(spec_col.source).alias("__value")
            source_dtype = values.dtype
        frame = pl.DataFrame({ROW: rows[ROW], "__value": values})
        if spec_col.values is not None:
            known = {str(k): (None if v is None else str(v)) for k, v in spec_col.values.items()}
            text = pl.col("__value").cast(pl.String).str.strip_chars()
            unknown = frame.filter(text.is_not_null() & (text != "") & ~text.is_in(list(known)))
            if unknown.height:
                found = ", ".join(
                    repr(v) for v in unknown["__value"].cast(pl.String).unique(maintain_order=True).head(10)
                )
                problems.append(
                    Problem(
                        "mapping.unmapped_value",
                        table,
                        column,
                        f"{path.name} column `{spec_col.source}` has values the value map does not know: {found}",
                        unknown.height,
                        tuple(
                            f"row {r[ROW]}: {spec_col.source}={r['__value']!r}"
                            for r in unknown.head(5).iter_rows(named=True)
                        ),
                    )
                )
            frame = frame.with_columns(
                text.replace_strict(known, default=None, return_dtype=pl.String).alias("__value")
            )
            source_dtype = pl.String
        if spec_col.default is not None:
            frame = frame.with_columns(
                pl.when(pl.col("__value").cast(pl.String).str.strip_chars().fill_null("") == "")
                .then(pl.lit(str(spec_col.default)))
                .otherwise(pl.col("__value").cast(pl.String))
                .alias("__value")
            )
            source_dtype = pl.String
        expr = _typed(pl.col("__value"), dtype, spec_col, source_dtype)
        if (
            isinstance(dtype, pl.Datetime)
            and source_dtype == pl.String
            and spec_col.format is None
            and spec_col.time_zone is None
        ):
            expr = _parse_datetime("__value")
        typed = frame.select(ROW, "__value", expr.alias("__typed"))
        given = pl.col("__value").is_not_null()
        if source_dtype == pl.String:
            given = given & (pl.col("__value").str.strip_chars() != "")
        bad = typed.filter(given & pl.col("__typed").is_null())
        if bad.height:
            how = f" with the format {spec_col.format!r}" if spec_col.format else ""
            problems.append(
                Problem(
                    "mapping.unparseable",
                    table,
                    column,
                    f"{bad.height:,} value{'s' if bad.height > 1 else ''} of {path.name} column "
                    f"`{spec_col.source}` could not be read as {_kind(dtype)}{how}",
                    bad.height,
                    tuple(
                        f"row {r[ROW]}: {spec_col.source}={r['__value']!r}" for r in bad.head(5).iter_rows(named=True)
                    ),
                )
            )
        out[column] = typed["__typed"]
    frame = pl.DataFrame(out)
    if spec.distinct_on is not None:
        merged = frame.filter(pl.col(spec.distinct_on).is_duplicated() & ~pl.col(spec.distinct_on).is_first_distinct())
        if merged.height:
            aside.append(
                SetAside(
                    "merged",
                    table,
                    merged.height,
                    examples(merged, spec.distinct_on, None, rows=merged),
                    f"a later row of the same {spec.distinct_on} (distinct_on keeps the first)",
                )
            )
        frame = frame.unique(spec.distinct_on, keep="first", maintain_order=True)
    return frame, problems, aside


def _kind(dtype) -> str:
    if isinstance(dtype, pl.Datetime):
        return "a date-time"
    return {pl.Date: "a date", pl.Float64: "a number", pl.Int64: "a whole number"}.get(dtype, "text")


def read_mapped(mapping_path: Path, progress: bool = False) -> Imported:
    """The contract tables a mapping makes from its files; every problem of every file raised at once."""
    mapping = load_mapping(mapping_path)
    problems: list[Problem] = []
    tables, files, aside = {}, [], []
    cache: dict[Path, pl.DataFrame] = {}
    for table, spec in mapping.tables.items():
        path = paths.resolve(spec.file)
        if not path.is_file():
            problems.append(
                Problem(
                    "mapping.missing_file",
                    table,
                    None,
                    f"{spec.file} (tables.{table}.file in {mapping_path.name}) does not exist",
                    0,
                )
            )
            continue
        try:
            if path not in cache:
                raw = read_text_table(path, table)
                cache[path] = raw.with_row_index(ROW, offset=2).with_columns(pl.col(ROW).cast(pl.Int64))
            raw = cache[path]
        except Unreadable as err:
            problems.append(err.problem)
            continue
        files.append(FileRead(spec.file, table, raw.height))
        missing = _missing_columns(mapping_path, table, spec, path, [c for c in raw.columns if c != ROW])
        if missing:
            problems += missing
            continue
        frame, found, left = _mapped_table(table, spec, raw, path)
        problems += found
        aside += left
        tables[table] = frame.drop(ROW)
    if problems:
        raise ExportError(
            problems, str(mapping_path), head=f"The files of the mapping {mapping_path.name} cannot be imported"
        )
    return Imported(
        source=str(mapping_path),
        files=tuple(files),
        tables=tables,
        set_aside=tuple(aside),
        details={"mapping": mapping.model_dump(mode="json", by_alias=True, exclude_defaults=True)},
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mapping", required=True, help="a mapping file, e.g. parameters/sources/example_subscriptions.yaml"
    )


def _read(args: argparse.Namespace) -> Imported:
    path = paths.resolve(args.mapping)
    if not path.is_file():
        raise ParameterError(f"--mapping {args.mapping}: no such file (mappings live in parameters/sources/).")
    imported = read_mapped(path, getattr(args, "progress", False))
    return dataclasses.replace(imported, source=args.mapping)


IMPORTER = Importer(
    name="mapped",
    help="any CSV or Parquet file mapped onto contract tables by parameters/sources/<name>.yaml",
    read=_read,
    arguments=_arguments,
)
