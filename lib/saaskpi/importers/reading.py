"""Reading export files at the boundary: text columns in, typed billing tables out, every problem collected.

Shared by the importers (the generic invoice CSV, Stripe, column mappings): a file is read as text
(`read_text_table`), typed column by column against a schema (`typed_columns`), and checked (required values,
allowed values, ISO currencies, unique ids, references between tables). Problems carry the file's line numbers
(the header is line 1) and up to five examples; nothing is raised until all are known.
"""

from __future__ import annotations

import atexit
import csv
import io
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..contract.load import ROW, _parse_datetime, examples
from ..errors import DataContractError, Problem
from ..sources import Unreadable, _read_csv, _unreadable_parquet
from .billing import (
    DISCOUNT_DURATIONS,
    IDS,
    INTERVAL_UNITS,
    INVOICE_STATUSES,
    LINE_TYPES,
    REQUIRED,
    SCHEMAS,
    TRANSACTION_RESULTS,
    TRANSACTION_TYPES,
)

# ISO 4217 codes in use (and a few recently retired ones that old invoices carry: HRK, SLL, ZWL)
ISO_CURRENCIES = frozenset(
    """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF
CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK
HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON
RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
""".split()
)

ALLOWED: dict[tuple[str, str], tuple[str, ...]] = {
    ("plans", "interval_unit"): INTERVAL_UNITS,
    ("invoices", "status"): INVOICE_STATUSES,
    ("line_items", "type"): LINE_TYPES,
    ("line_items", "discount_duration"): DISCOUNT_DURATIONS,
    ("transactions", "type"): TRANSACTION_TYPES,
    ("transactions", "result"): TRANSACTION_RESULTS,
}
"""The values a text column of the billing model may take (compared in lower case)."""

NON_NEGATIVE = {("line_items", "discount_amount"), ("transactions", "amount")}
AT_LEAST_ONE = {("plans", "interval_count")}

REFERENCES = (  # (table, column, referenced table): every non-empty value must exist there
    ("invoices", "customer_id", "customers"),
    ("line_items", "invoice_id", "invoices"),
    ("line_items", "plan_id", "plans"),
    ("transactions", "invoice_id", "invoices"),
    ("subscriptions", "customer_id", "customers"),
)

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0", "")


class ExportError(DataContractError):
    """Exports (or the tables made from them) that cannot be imported; `problems` lists every failure (exit 2)."""

    def __init__(self, problems: list[Problem], source: str = "", head: str = "", hint: str = ""):
        super().__init__(problems, source)
        n = len(self.problems)
        head = head or f"The exports in {source or 'the folder'} cannot be imported"
        lines = [f"{head}: {n} problem{'s' if n != 1 else ''}."]
        lines += [f"  {i}. {p}" for i, p in enumerate(self.problems, 1)]
        if hint:
            lines.append(hint)
        lines.append(
            "Nothing was written and the exports were not modified; fix them (or the mapping or settings) "
            "and run `saaskpi import` again."
        )
        self.args = ("\n".join(lines),)

    def __str__(self) -> str:
        return self.args[0]


def scratch_folder(prefix: str) -> Path:
    """A new private folder, removed when the command ends."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def is_zip(path: Path) -> bool:
    """Whether `path` names a zip archive (by its suffix: what `unpacked` unpacks)."""
    return path.suffix.lower() == ".zip"


# what `unpacked` wrote, as messages name it: a member -> "archive.zip/member", its folder -> the archive as given
_FROM_ZIP: dict[Path, str] = {}


def shown_name(path: Path) -> str:
    """How messages name file `path`: its name, or for a member of a zip archive `unpacked` wrote out, the archive's
    name and the member's path in it (`export.zip/2026/events.json`: the file a person can find)."""
    return _FROM_ZIP.get(path, path.name)


def shown_path(path: Path) -> str:
    """How messages name `path` in full: itself, or what `unpacked` wrote named as above (its scratch folder: the
    archive as given; a member: `export.zip/2026/events.json`)."""
    return _FROM_ZIP.get(path, str(path))


def unpacked(source: Path, keep: Callable[[Path], bool]) -> Path:
    """`source` itself, or when it is a zip archive file (as Salesforce's data export, HubSpot's export of several
    objects and Amplitude's Export API download) a folder named after it in a scratch folder: the members `keep`
    accepts, written streaming in the order of their paths, each under its own file name (never a path the archive
    names; the second of two alike as `2-name`). A broken archive is an ExportError; nothing is written beside it."""
    if not (source.is_file() and is_zip(source)):
        return source
    try:
        with zipfile.ZipFile(source) as archive:
            folder = scratch_folder("saaskpi-zip-") / source.name
            folder.mkdir()
            _FROM_ZIP[folder] = str(source)
            for member in sorted(archive.infolist(), key=lambda m: m.filename):
                name = Path(member.filename).name
                if member.is_dir() or name.startswith(".") or "__MACOSX" in member.filename or not keep(Path(name)):
                    continue
                target, n = folder / name, 1
                while target.exists():
                    n += 1
                    target = folder / f"{n}-{name}"
                with archive.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                _FROM_ZIP[target] = f"{source.name}/{member.filename}"
            return folder
    except (zipfile.BadZipFile, EOFError, zlib.error) as err:  # not a zip, or a truncated or damaged one
        problem = Problem("source.unreadable", source.name, None, f"{source.name} is not a zip archive ({err})", 0)
        raise ExportError([problem], str(source)) from None


@dataclass(frozen=True)
class FileRead:
    """One file (or database table) an importer read, for the import report."""

    file: str
    table: str
    rows: int


def read_text_table(path: Path, table: str) -> pl.DataFrame:
    """A CSV or Parquet file as a frame (CSV: every column text). Raises `Unreadable` with the problem to report."""
    if path.suffix == ".parquet":
        try:
            return pl.read_parquet(path)
        except Exception as err:  # noqa: BLE001  (any Arrow/Polars error means: not Parquet)
            raise Unreadable(_unreadable_parquet(table, err)) from None
    frame = _read_csv_once(table, path)
    return frame.rename({c: c.strip() for c in frame.columns})


def _read_csv_once(table: str, path: Path) -> pl.DataFrame:
    """`sources._read_csv` (same problems, same messages) without decoding the whole file in Python first:
    Polars checks the UTF-8 itself, and only a file it refuses is decoded again to say where it is wrong."""
    data = path.read_bytes()
    head = data[:65536].split(b"\n", 1)[0]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return _read_csv(table, path)  # not UTF-8 (or UTF-16): the shared reader names the lines
    if not data or b"\0" in head:
        return _read_csv(table, path)
    try:
        names = next(csv.reader(io.StringIO(head.decode("utf-8-sig"))), [])
        if len({n.strip() for n in names}) != len(names):
            return _read_csv(table, path)  # a header naming a column twice: reported there
        return pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError):
        return _read_csv(table, path)  # bad UTF-8 further down, or not a rectangular CSV: reported there


def looks_like(columns: list[str], shapes: dict[str, tuple[str, ...]], expected: str) -> str | None:
    """The shape (other than `expected`) whose columns `columns` share most, when it shares more (and at least
    two) than `expected` does; else None. Says that a customers file was given where invoices belong."""
    have = {c.strip().lower() for c in columns}
    score = {name: len(have & {c.lower() for c in cols}) for name, cols in shapes.items()}
    best = max((n for n in score if n != expected), key=lambda n: (score[n], n), default=None)
    return best if best is not None and score[best] >= 2 and score[best] > score.get(expected, 0) else None


def _parse(column: str, dtype: pl.DataType, source: pl.DataType) -> pl.Expr:
    c = pl.col(column)
    if source != pl.String:
        if isinstance(dtype, pl.Datetime):
            if isinstance(source, pl.Datetime):
                base = c if source.time_zone else c.dt.replace_time_zone("UTC")
                return base.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
            return c.cast(pl.Datetime("us"), strict=False).dt.replace_time_zone("UTC")
        return c.cast(dtype, strict=False)
    text = c.str.strip_chars()
    if isinstance(dtype, pl.Datetime):
        return _parse_datetime(column)
    if dtype == pl.Float64:
        return text.str.replace_all(",", "").cast(pl.Float64, strict=False)
    if dtype == pl.Int64:
        f = text.cast(pl.Float64, strict=False)
        return pl.when(f == f.floor()).then(f).cast(pl.Int64, strict=False)
    if dtype == pl.Boolean:
        low = text.str.to_lowercase()
        return pl.when(low.is_in(TRUE_WORDS)).then(True).when(low.is_in(FALSE_WORDS)).then(False)
    return pl.when(text == "").then(None).otherwise(text)


FAST_DATETIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d")  # what exports mostly hold: parsed 20x faster


def _datetimes(raw: pl.DataFrame, column: str) -> pl.Series:
    """A text column as UTC date-times: by one fixed ISO format when every value has it, else value by value
    (offsets, fractions, spaces; `contract.load._parse_datetime`)."""
    text = raw.get_column(column).str.strip_chars()
    given = text.is_not_null() & (text != "")
    for fmt in FAST_DATETIME_FORMATS:
        fast = text.str.to_datetime(fmt, strict=False, time_unit="us")
        if not (fast.is_null() & given).any():
            return fast.dt.replace_time_zone("UTC").alias(column)
    return raw.select(_parse_datetime(column)).to_series().alias(column)


def _type_name(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "a date-time (ISO 8601, e.g. 2024-01-31T09:30:00Z, or a date)"
    return {pl.Float64: "a number", pl.Int64: "a whole number", pl.Boolean: "true or false"}.get(dtype, "text")


def typed_columns(
    table: str, raw: pl.DataFrame, schema: dict[str, pl.DataType], key: str, required: tuple[str, ...] = ()
) -> tuple[pl.DataFrame, list[Problem]]:
    """`raw` (with a ROW column) typed to `schema` (columns it lacks become null); a value that does not parse
    is a problem, never a silent null. Required columns must be present (else nothing is typed)."""
    problems = []
    missing = [c for c in required if c not in raw.columns]
    if missing:
        return raw, [
            Problem(
                f"{table}.missing_column",
                table,
                c,
                f"required column `{c}` is missing (columns found: {', '.join(x for x in raw.columns if x != ROW) or 'none'})",
                raw.height,
            )
            for c in missing
        ]
    present = [c for c in schema if c in raw.columns]
    typed = raw.with_columns(
        [
            _parse(c, schema[c], raw.schema[c]).alias(c)
            for c in present
            if not (isinstance(schema[c], pl.Datetime) and raw.schema[c] == pl.String)
        ]
        + [_datetimes(raw, c) for c in present if isinstance(schema[c], pl.Datetime) and raw.schema[c] == pl.String]
        + [pl.lit(None, dtype=d).alias(c) for c, d in schema.items() if c not in raw.columns]
    )
    both = raw.hstack(typed.select([pl.col(c).alias(f"__typed_{c}") for c in present if schema[c] != pl.String]))
    masks = {}
    for c in (c for c in present if schema[c] != pl.String):  # text is never unparseable
        given = pl.col(c).is_not_null()
        if raw.schema[c] == pl.String and schema[c] != pl.Boolean:  # an empty cell is a missing value, not a bad one
            given = given & (pl.col(c).str.strip_chars() != "")
        masks[c] = given & pl.col(f"__typed_{c}").is_null()
    counts = both.select([m.sum().alias(c) for c, m in masks.items()]).row(0, named=True) if masks else {}
    for c, n in counts.items():  # one pass counts every column; only the bad ones are looked at again
        if n:
            rows = both.filter(masks[c]).select(raw.columns)
            problems.append(
                Problem(
                    f"{table}.unparseable",
                    table,
                    c,
                    f"{n:,} value{'s' if n > 1 else ''} could not be read as {_type_name(schema[c])}",
                    n,
                    examples(rows, key, c, rows=rows),
                )
            )
    return typed.select(ROW, *schema), problems


def checked_billing_table(table: str, typed: pl.DataFrame, raw: pl.DataFrame | None = None) -> list[Problem]:
    """Required values, allowed values, ranges, ISO currencies and unique ids of one typed billing table
    (`raw`, the text it was typed from: a value that did not parse is reported once, not also as missing)."""
    key = IDS[table]
    frame = typed
    checks: list[tuple[str, str, pl.Expr, str]] = []  # (code, column, failing rows, message)
    for column in REQUIRED[table]:
        empty = pl.col(column).is_null()
        if raw is not None and column in raw.columns and raw.schema[column] == pl.String:
            frame = frame.with_columns(raw.get_column(column).alias(f"__raw_{column}"))
            empty = empty & (pl.col(f"__raw_{column}").str.strip_chars().fill_null("") == "")
        checks.append(("missing_value", column, empty, "a value is required"))
    for (t, column), allowed in ALLOWED.items():
        if t == table:
            checks.append(
                (
                    "not_allowed",
                    column,
                    pl.col(column).is_not_null() & ~pl.col(column).str.to_lowercase().is_in(allowed),
                    f"must be one of {', '.join(allowed)}",
                )
            )
    checks += [
        ("out_of_range", column, pl.col(column) < 0, "must be at least 0") for t, column in NON_NEGATIVE if t == table
    ]
    checks += [
        ("out_of_range", column, pl.col(column) < 1, "must be at least 1") for t, column in AT_LEAST_ONE if t == table
    ]
    if "currency" in typed.columns:
        checks.append(
            (
                "unknown_currency",
                "currency",
                pl.col("currency").is_not_null() & ~pl.col("currency").str.to_uppercase().is_in(sorted(ISO_CURRENCIES)),
                "not an ISO 4217 currency code (e.g. USD, EUR, GBP)",
            )
        )
    if table == "line_items":
        checks.append(
            (
                "end_before_start",
                "service_period_end",
                pl.col("service_period_end") <= pl.col("service_period_start"),
                "a service period must end after it starts",
            )
        )
        checks.append(
            (
                "missing_value",
                "subscription_id",
                (pl.col("type").str.to_lowercase() == "subscription") & pl.col("subscription_id").is_null(),
                "a subscription line needs its subscription_id",
            )
        )
    checks.append(
        ("duplicate", key, pl.col(key).is_not_null() & pl.col(key).is_duplicated(), "identifiers must be unique")
    )
    counts = frame.select([mask.sum().alias(str(i)) for i, (_, _, mask, _) in enumerate(checks)]).row(0)
    problems = []
    for (code, column, mask, message), n in zip(checks, counts):  # one pass counts every rule
        if n:
            rows = frame.filter(mask).select(typed.columns)
            problems.append(
                Problem(f"{table}.{code}", table, column, message, n, examples(rows, key, column, rows=rows))
            )
    return problems


def normalised(table: str, typed: pl.DataFrame) -> pl.DataFrame:
    """Allowed values in lower case and currencies in upper case, as the billing model has them."""
    fixes = [pl.col(c).str.to_lowercase() for (t, c) in ALLOWED if t == table]
    if "currency" in typed.columns:
        fixes.append(pl.col("currency").str.to_uppercase())
    return typed.with_columns(fixes) if fixes else typed


def reference_problems(tables: dict[str, pl.DataFrame]) -> list[Problem]:
    """Every reference between billing tables that points at nothing (a line item whose invoice is missing...)."""
    problems = []
    for table, column, target in REFERENCES:
        if table not in tables or target not in tables:
            continue
        frame, ids = tables[table], tables[target].get_column(IDS[target])
        rows = frame.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(ids.implode()))
        if rows.height:
            problems.append(
                Problem(
                    f"{table}.{column}.orphan",
                    table,
                    column,
                    f"names {_a(target[:-1].replace('_', ' '))} that is not in {target}",
                    rows.height,
                    examples(rows, IDS[table], column, rows=rows),
                )
            )
    return problems


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def billing_shapes() -> dict[str, tuple[str, ...]]:
    """Column names of every billing table (to say what a misplaced file looks like)."""
    return {name: tuple(schema) for name, schema in SCHEMAS.items()}
