"""From a table as stored to a typed, validated polars frame, with every problem reported.

CSV tables arrive as text; each column is parsed to its contract type and a value that does not
parse is a problem (never silently null). Parquet/DuckDB/Spark tables arrive typed and are cast.
Absent optional columns get their documented default. Then the pandera schema runs with
``lazy=True`` so that every failure is collected at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from ..errors import Problem
from .tables import REPORTING_CURRENCY, TABLES, Table

ROW = "__row"  # line number in the source file (CSV: header is line 1), carried for examples
MAX_EXAMPLES = 5
MAX_FIELD_CHARS = 10_000  # a longer text value is an unclosed quote or a pasted blob, not an identifier or a name

# Every rule code a table or the source can break, besides each schema's column rules and the cross-table rules.
RULE_CODES = {
    "source.missing_table": "a required table (accounts, subscriptions) is not in the source",
    "source.both_formats": "a table is stored twice, as <table>.csv and <table>.parquet",
    "<table>.empty_file": "the file has 0 bytes, not even a header",
    "<table>.not_utf8": "the file is not UTF-8 text (Latin-1, Windows-1252, UTF-16); a UTF-8 byte-order mark is accepted",
    "<table>.unreadable": "the file is not a rectangular CSV (e.g. an unclosed quote, a row with extra fields) or not Parquet",
    "<table>.duplicate_column": "the header names a column more than once",
    "<table>.empty": "the table has a header but no rows",
    "<table>.missing_column": "a required column is absent",
    "<table>.unparseable": "a value cannot be read as the column's type (number, date, date-time)",
    "<table>.mixed_time_zones": "the date-times of a column use more than one UTC offset",
    "<table>.huge_value": f"a text value is longer than {MAX_FIELD_CHARS:,} characters",
    "<table>.duplicate": "an identifier that must be unique is repeated",
    "<table>.missing_value": "a required value is empty",
    "<table>.out_of_range": "a number is outside its allowed range (e.g. a negative amount, NPS 11, CSAT 0)",
    "<table>.not_allowed": "a value is not one of the column's allowed values",
    "<table>.bad_length": "a value has the wrong length (e.g. a currency code that is not 3 letters)",
}
_TZ_SUFFIX = r"(Z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class TypedTable:
    """A table with contract types plus the problems found while typing and validating it."""

    name: str
    frame: pl.DataFrame
    problems: tuple[Problem, ...]


def key_column(model: type[Table]) -> str:
    """The first column of a table's schema, used to name rows in examples."""
    return next(iter(model.to_schema().columns))


def examples(
    frame: pl.DataFrame,
    key: str,
    value_column: str | None,
    mask: pl.Expr | None = None,
    rows: pl.DataFrame | None = None,
) -> tuple[str, ...]:
    """Up to five 'row N (key=..): column=value' strings for the failing rows."""
    bad = rows if rows is not None else frame.filter(mask)
    out = []
    for rec in bad.head(MAX_EXAMPLES).iter_rows(named=True):
        parts = [f"row {rec[ROW]}"] if ROW in rec else []
        if key in rec and key != value_column:
            parts.append(f"({key}={rec[key]})" if parts else f"{key}={rec[key]}")
        text = " ".join(parts)
        if value_column is not None and value_column in rec:
            text += (": " if text else "") + f"{value_column}={_show(rec[value_column])}"
        out.append(text)
    return tuple(out)


def _show(value) -> str:
    """A cell value as a person would write it (dates ISO, text quoted, missing as empty)."""
    if value is None:
        return "(empty)"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:40]) + f"... ({len(value):,} characters)"
    return repr(value) if isinstance(value, str) else str(value)


def _parse_any_datetime(col: str) -> pl.Expr:
    """ISO 8601 text with a date only, a space or T, fractions of a second, Z, an offset or none (UTC)."""
    s = pl.col(col).cast(pl.String).str.strip_chars().str.replace(" ", "T")
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2})$", "${1}T00:00:00").str.replace(r"Z$", "+00:00")
    s = pl.when(s.str.contains(r"[+-]\d{2}:?\d{2}$")).then(s).otherwise(s + "+00:00")
    return s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_unit="us", time_zone="UTC", strict=False)


def _parse_datetime(col: str) -> pl.Expr:
    """`_parse_any_datetime`, with the form the workbook writes (2024-01-31T09:30:00Z) read directly: a column
    all in that form skips the general path's four text passes (Polars leaves a branch no row takes
    unevaluated; the small tables at 50M events: 0.8 -> 0.3 s)."""
    canonical = (
        pl.col(col).cast(pl.String).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC", strict=False)
    )
    return pl.when(canonical.is_not_null()).then(canonical).otherwise(_parse_any_datetime(col))


def _parse_expr(col: str, dtype: pl.DataType, source_dtype: pl.DataType) -> pl.Expr:
    """Expression parsing column `col` (of `source_dtype`) into the contract `dtype`."""
    c = pl.col(col)
    text = source_dtype == pl.String
    if source_dtype == dtype and not text:  # as stored: a filter on the column then reaches the file's statistics
        return c
    if isinstance(dtype, pl.Datetime):
        if text:
            return _parse_datetime(col)
        if isinstance(source_dtype, pl.Datetime):
            base = c if source_dtype.time_zone else c.dt.replace_time_zone("UTC")
            return base.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        return c.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype == pl.Date:
        if text:
            return c.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
        return c.cast(pl.Date, strict=False)
    if dtype == pl.Int64:
        if text:
            f = c.str.strip_chars().cast(pl.Float64, strict=False)
            return pl.when(f == f.floor()).then(f).cast(pl.Int64, strict=False)
        return c.cast(pl.Int64, strict=False)
    if dtype == pl.Float64:
        return (c.str.strip_chars() if text else c).cast(pl.Float64, strict=False)
    return c.cast(pl.String).str.strip_chars() if text else c.cast(pl.String)


def _type_name(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "a date-time (ISO 8601, e.g. 2024-01-31T09:30:00Z)"
    return {pl.Date: "a date (YYYY-MM-DD)", pl.Int64: "a whole number", pl.Float64: "a number"}.get(dtype, "text")


def _shown(column: str) -> str:
    """A column name as a message shows it: quoted with its escapes when it holds a control character (a stray
    carriage return in a header would otherwise rewrite the terminal line)."""
    return column if column.isprintable() else repr(column)


def typed_table(name: str, raw: pl.DataFrame, reporting_currency: str = "USD", row_offset: int = 2) -> TypedTable:
    """Parse `raw` into the contract types of table `name`; report what cannot be parsed."""
    model = TABLES[name]
    schema = model.to_schema()
    key = key_column(model)
    problems: list[Problem] = []
    frame = raw.with_row_index(ROW, offset=row_offset).with_columns(pl.col(ROW).cast(pl.Int64))

    missing = [c for c, col in schema.columns.items() if col.required and c not in frame.columns]
    for col in missing:
        problems.append(
            Problem(
                f"{name}.missing_column",
                name,
                col,
                f"required column `{col}` is missing (columns found: {', '.join(map(_shown, raw.columns)) or 'none'})",
                frame.height,
            )
        )
    if missing:
        return TypedTable(name, frame, tuple(problems))

    parsed, tz_checks = [], []
    for col, spec in schema.columns.items():
        dtype = spec.dtype.type
        if col not in frame.columns:
            default = (spec.metadata or {}).get("default")
            if default == REPORTING_CURRENCY:
                default = reporting_currency
            parsed.append(pl.lit(default, dtype=dtype).alias(col))
            continue
        src = frame.schema[col]
        parsed.append(_parse_expr(col, dtype, src).alias(col))
        if isinstance(dtype, pl.Datetime) and src == pl.String:
            tz_checks.append(col)

    typed = frame.with_columns(parsed)
    for col in tz_checks:
        zones = (
            frame.select(
                pl.col(col)
                .str.strip_chars()
                .str.extract(_TZ_SUFFIX, 1)
                .str.replace("^Z$", "+00:00")
                .str.replace(r"^([+-]\d{2})(\d{2})$", "${1}:${2}")
                .fill_null("none")
                .alias("tz"),
                pl.col(col).is_not_null().alias("present"),
            )
            .filter(pl.col("present") & typed[col].is_not_null())
            .get_column("tz")
            .unique()
            .sort()
            .to_list()
        )
        if len(zones) > 1:
            problems.append(
                Problem(
                    f"{name}.mixed_time_zones",
                    name,
                    col,
                    f"date-times must all be in one time zone, found offsets {', '.join(zones)} "
                    "('none' = no offset given)",
                    frame.height,
                    (),
                )
            )

    for col in (c for c in raw.columns if raw.schema[c] == pl.String):
        huge = frame.filter(pl.col(col).str.len_chars() > MAX_FIELD_CHARS)
        if huge.height:
            problems.append(
                Problem(
                    f"{name}.huge_value",
                    name,
                    col,
                    f"text longer than {MAX_FIELD_CHARS:,} characters (an unclosed quote or a pasted blob?)",
                    huge.height,
                    examples(huge, key, col, rows=huge),
                )
            )

    for col, spec in schema.columns.items():
        if col not in frame.columns:
            continue
        bad = frame[col].is_not_null() & typed[col].is_null()
        if frame.schema[col] == pl.String:
            bad = bad & (frame[col].str.strip_chars() != "")
        n = int(bad.sum())
        if n:
            problems.append(
                Problem(
                    f"{name}.unparseable",
                    name,
                    col,
                    f"{n} value{'s' if n > 1 else ''} could not be read as {_type_name(spec.dtype.type)}",
                    n,
                    examples(frame.filter(bad), key, col, rows=frame.filter(bad)),
                )
            )
    typed = typed.select([ROW, *schema.columns.keys()])
    unparseable = {p.column for p in problems if p.code.endswith(".unparseable")}
    problems += [
        p
        for p in _schema_problems(name, model, typed, key)
        if not (
            p.code.endswith(".missing_value")
            and p.column in unparseable
            and p.column is not None
            and _only_unparsed(frame, p.column)
        )
    ]
    return TypedTable(name, typed, tuple(problems))


def _only_unparsed(raw: pl.DataFrame, column: str) -> bool:
    """True when every empty value of `column` after typing was a value that did not parse (already reported)."""
    return not bool(raw[column].is_null().any())


_CHECK_WORDS = {
    "field_uniqueness": ("duplicate", "values must be unique"),
    "not_nullable": ("missing_value", "a value is required"),
    "greater_than_or_equal_to": ("out_of_range", "must be at least {arg}"),
    "greater_than": ("out_of_range", "must be greater than {arg}"),
    "less_than_or_equal_to": ("out_of_range", "must be at most {arg}"),
    "in_range": ("out_of_range", "must be between {arg}"),
    "isin": ("not_allowed", "must be one of {arg}"),
    "str_length": ("bad_length", "has the wrong length ({arg})"),
}


def _check_words(check: str) -> tuple[str, str]:
    name, _, arg = check.partition("(")
    code, text = _CHECK_WORDS.get(name, (name, check))
    return code, text.format(arg=arg.rstrip(")"))


def _schema_problems(name: str, model: type[Table], typed: pl.DataFrame, key: str) -> list[Problem]:
    try:
        model.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return []
    problems = []
    for (col, check), group in cases.group_by(["column", "check"], maintain_order=True):
        if check == "not_nullable" and col is not None:
            idx = typed.with_row_index("__i").filter(pl.col(col).is_null()).get_column("__i")
        else:
            idx = group.get_column("index").drop_nulls()
        code, text = _check_words(check)
        rows = typed[idx.cast(pl.UInt32).unique().sort().to_list()] if len(idx) else typed.head(0)
        count = rows.height if rows.height else group.height
        problems.append(Problem(f"{name}.{code}", name, col, f"{text}", count, examples(rows, key, col, rows=rows)))
    return problems
