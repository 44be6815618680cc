"""What both Stripe shapes share: currencies and their minor units, reading files, parsing Stripe's
timestamps, amounts and booleans, flattening nested objects, and collecting every problem at once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from saaskpi.errors import Problem
from saaskpi.importers.billing import UTC  # noqa: F401  (UTC: for the readers)
from saaskpi.importers.reading import ISO_CURRENCIES, ExportError

ROW = "__row"  # the row label column added when a file is read ("line 3" for CSV, "row 2" otherwise)
EXAMPLES = 5

# Stripe's zero-decimal currencies: an API amount of 5000 JPY is 5,000 yen, not 50.00.
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
# Stripe's three-decimal currencies: 5000 KWD (API) is 5.000 dinars.
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


def minor_unit_divisor(currency: str) -> int:
    """How many API (minor-unit) amounts make one unit of `currency` in Stripe: 1, 100 or 1000."""
    code = currency.upper()
    return 1 if code in ZERO_DECIMAL else 1000 if code in THREE_DECIMAL else 100


def divisor_expr(currency: pl.Expr) -> pl.Expr:
    """`minor_unit_divisor` as a Polars expression over an upper-case currency column."""
    return (
        pl.when(currency.is_in(list(ZERO_DECIMAL)))
        .then(pl.lit(1.0))
        .when(currency.is_in(list(THREE_DECIMAL)))
        .then(pl.lit(1000.0))
        .otherwise(pl.lit(100.0))
    )


# --------------------------------------------------------------------------- problems
class StripeExportError(ExportError):
    """A Stripe export that cannot be imported; `problems` lists every failure (exit 2, nothing written)."""

    def __init__(self, problems: list[Problem], source: str = ""):
        super().__init__(problems, source, head=f"The Stripe export in {source or 'the folder'} cannot be imported")


@dataclass
class Problems:
    """Every problem found while reading one Stripe export, reported together."""

    found: list[Problem] = field(default_factory=list)

    def add(
        self,
        code: str,
        table: str,
        column: str | None,
        message: str,
        count: int = 0,
        examples: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.found.append(Problem(code, table, column, message, count, tuple(examples)[:EXAMPLES]))

    def rows(
        self,
        code: str,
        table: str,
        column: str | None,
        message: str,
        frame: pl.DataFrame,
        mask: pl.Series,
        shown: str | None = None,
    ) -> None:
        """Report the rows of `frame` where `mask` holds, with up to five examples of column `shown`."""
        bad = frame.filter(mask.fill_null(False))
        if bad.height:
            self.add(code, table, column, message, bad.height, examples(bad, shown if shown is not None else column))

    def __bool__(self) -> bool:
        return bool(self.found)


def examples(bad: pl.DataFrame, column: str | None) -> list[str]:
    """'line 3: Amount Due='12,5x'' for the first few rows of `bad`."""
    out = []
    for row in bad.head(EXAMPLES).iter_rows(named=True):
        where = row.get(ROW, "?")
        if column is None or column not in row:
            out.append(str(where))
            continue
        value = row[column]
        out.append(f"{where}: {column}=" + ("(empty)" if value is None or value == "" else repr(_short(value))))
    return out


def _short(value) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- reading files
TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson", ".json")


def files_bar(items: list, progress: bool):
    """`items` with a progress bar on stderr while `progress` (large exports take a while to read)."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(items, desc="reading Stripe exports", unit="file", disable=not progress, leave=False, file=sys.stderr)


def read_table(path: Path, table: str, problems: Problems) -> pl.DataFrame | None:
    """The rows of one CSV, Parquet or JSON-lines file (CSV cells as text), with a row label column;
    None (and a problem) when it cannot be read. The file is only read."""
    data = path.read_bytes()
    if not data.strip():
        problems.add(f"{table}.empty_file", path.name, None, "the file is empty (not even a header)")
        return None
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as err:
                problems.add(
                    f"{table}.not_utf8",
                    path.name,
                    None,
                    f"the file is not UTF-8 text (byte {err.start}); export it again as UTF-8 CSV",
                )
                return None
            frame = pl.read_csv(data, infer_schema=False)
            frame = frame.with_columns(pl.col(pl.String).str.strip_chars().replace("", None))
            label = pl.format("line {}", pl.int_range(2, pl.len() + 2))
        elif suffix == ".parquet":
            frame = pl.read_parquet(data)
            label = pl.format("row {}", pl.int_range(1, pl.len() + 1))
        else:
            frame = pl.read_ndjson(data, infer_schema_length=None)
            label = pl.format("line {}", pl.int_range(1, pl.len() + 1))
    except (pl.exceptions.PolarsError, OSError, ValueError) as err:
        kind = "CSV" if suffix == ".csv" else "Parquet" if suffix == ".parquet" else "JSON lines"
        problems.add(
            f"{table}.unreadable", path.name, None, f"could not be read as {kind}: {str(err).splitlines()[0][:160]}"
        )
        return None
    return frame.with_columns(label.alias(ROW))


# --------------------------------------------------------------------------- flattening (API objects)
def flattened(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with nested objects spread into dotted columns: Struct columns and JSON-object text
    (`period` -> `period.start`, `period.end`), and loaders' `__` separators (`period__start`) as dots.
    JSON arrays (discount_amounts, tax_amounts, taxes) stay as they are."""
    frame = frame.rename({c: c.replace("__", ".") for c in frame.columns if "__" in c and c != ROW})
    for _ in range(6):  # nesting depth of Stripe's objects (parent.subscription_item_details.proration_details...)
        changed = False
        for name, dtype in list(frame.schema.items()):
            if name == ROW:
                continue
            if dtype == pl.String:
                objects = _json_objects(frame[name])
                if objects is not None:
                    frame = frame.with_columns(objects)
                    dtype = frame.schema[name]
            if isinstance(dtype, pl.Struct):
                inner = frame[name].struct.unnest()
                inner = inner.rename({c: f"{name}.{c}" for c in inner.columns})
                keep = [c for c in inner.columns if c not in frame.columns]
                frame = pl.concat([frame.drop(name), inner.select(keep)], how="horizontal")
                changed = True
        if not changed:
            break
    return frame


def _json_objects(series: pl.Series) -> pl.Series | None:
    """A column of JSON-object text as a Struct column; None when some value is not a JSON object."""
    text = series.drop_nulls().str.strip_chars()
    if text.is_empty() or not bool(text.str.starts_with("{").all()):
        return None
    decoded = json_column(series)
    return decoded if decoded is not None and isinstance(decoded.dtype, pl.Struct) else None


JSON_SCALAR = r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false'


def json_column(series: pl.Series) -> pl.Series | None:
    """JSON text (objects or arrays) decoded by Polars; None when some value is not JSON. The schema is the
    union of every distinct shape in the column (values blanked, so a key or nested object that only one row
    has is kept), read from one example row per shape; the column itself is decoded in Rust."""
    text = series.str.strip_chars()
    shape = text.str.replace_all(JSON_SCALAR, "0")
    examples = pl.DataFrame({"text": text, "shape": shape}).drop_nulls().unique("shape", keep="first")["text"]
    try:
        parsed = [json.loads(v) for v in examples.to_list()]
        dtype = pl.Series(parsed, strict=False).dtype
        decoded = text.str.json_decode(dtype)
    except (ValueError, TypeError, pl.exceptions.PolarsError):
        return None
    if (decoded.is_null() & text.is_not_null() & (text != "null")).any():
        return None  # a value Polars could not read with the shape's types: the caller reads row by row
    return decoded.alias(series.name)


def metadata_text(frame: pl.DataFrame) -> pl.Series:
    """Each row's metadata as JSON object text (from `metadata.<key>` columns or a `metadata` column)."""
    keys = sorted(c for c in frame.columns if c.startswith("metadata."))
    if keys:
        rows = frame.select(keys).rows()
        names = [k.removeprefix("metadata.") for k in keys]
        return pl.Series(
            "metadata", [_json({n: v for n, v in zip(names, row) if v is not None}) for row in rows], dtype=pl.String
        )
    if "metadata" in frame.columns and frame.schema["metadata"] == pl.String:
        return frame["metadata"].alias("metadata")
    return pl.Series("metadata", [None] * frame.height, dtype=pl.String)


def _json(obj: dict) -> str | None:
    return (
        json.dumps(
            {k: (v if isinstance(v, (str, int, float, bool)) else str(v)) for k, v in obj.items()}, sort_keys=True
        )
        if obj
        else None
    )


def array_sum(series: pl.Series, amount: str = "amount", keep: tuple[str, object] | None = None) -> pl.Series:
    """Per row, the sum of `amount` over a JSON array of objects (text, or a List of Structs from Parquet);
    `keep = (field, value)` counts only the objects whose `field` is `value`. Null arrays sum to 0; None
    where a value is not such an array or an amount is not a number."""
    lists = json_column(series) if series.dtype == pl.String else series
    fast = _list_sum(lists, amount, keep) if lists is not None else None
    return fast if fast is not None else _array_sum_by_row(series, amount, keep)


def _list_sum(lists: pl.Series, amount: str, keep: tuple[str, object] | None) -> pl.Series | None:
    """`array_sum` in Polars over a List of Structs; None when it cannot say (then rows are read one by one)."""
    dtype = lists.dtype
    if isinstance(dtype, pl.List) and dtype.inner == pl.Null:
        return pl.Series(lists.name, [0.0] * lists.len(), dtype=pl.Float64)
    if not (isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)):
        return None
    names = [f.name for f in dtype.inner.fields]
    if amount not in names or (keep is not None and keep[0] not in names):
        return None
    el = pl.element()
    if keep is not None:
        el = el.filter(el.struct.field(keep[0]).cast(pl.String).str.to_lowercase() == str(keep[1]).lower())
    raw = el.struct.field(amount)
    bad = lists.list.eval((raw.is_not_null() & raw.cast(pl.Float64, strict=False).is_null()).any()).list.first()
    if bool(bad.fill_null(False).any()):
        return None
    total = lists.list.eval(raw.cast(pl.Float64, strict=False)).list.sum().fill_null(0.0)
    return (total + 0.0).alias(lists.name)


def _array_sum_by_row(series: pl.Series, amount: str, keep: tuple[str, object] | None) -> pl.Series:
    out: list[float | None] = []
    for value in series.to_list():
        items = value
        if isinstance(value, str):
            try:
                items = json.loads(value)
            except ValueError:
                out.append(None)
                continue
        if items is None:
            out.append(0.0)
            continue
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            out.append(None)
            continue
        total: float | None = 0.0
        for item in items:
            if keep is None or str(item.get(keep[0])).lower() == str(keep[1]).lower():
                number = number_of(item.get(amount))
                if number is None:
                    total = None
                    break
                total = (total or 0.0) + number
        out.append(total)
    return pl.Series(series.name, out, dtype=pl.Float64)


def number_of(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------- parsing values
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%:z",
    "%Y-%m-%d %H:%M%:z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


def timestamps(series: pl.Series) -> pl.Series:
    """Stripe times as UTC date-times: Unix seconds (numbers or digits), ISO text (`Z` or an offset; none
    means UTC), the Dashboard's `2024-01-31 17:05`, or already date-times. Unreadable values become null."""
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        typed = series.dt.replace_time_zone("UTC") if dtype.time_zone is None else series.dt.convert_time_zone("UTC")
        return typed.cast(UTC)
    if dtype == pl.Date:
        return series.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype.is_numeric():
        return _from_epoch(series)
    text = series.cast(pl.String).str.strip_chars()
    epoch = _from_epoch(text.str.replace(r"\.0+$", ""))
    normal = text.str.replace("T", " ").str.replace(r"(?i)Z$", "+00:00").str.replace(r" UTC$", "")
    parsed = [normal.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us") for f in DATETIME_FORMATS]
    return pl.select(pl.coalesce([epoch, *parsed])).to_series().alias(series.name)


def _from_epoch(series: pl.Series) -> pl.Series:
    seconds = series.cast(pl.Int64, strict=False)
    return (seconds * 1_000_000).cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias(series.name)


def unreadable(raw: pl.Series, parsed: pl.Series) -> pl.Series:
    """True where a value was given but could not be parsed."""
    given = raw.is_not_null()
    if raw.dtype == pl.String:
        given = given & (raw.str.strip_chars() != "")
    return given & parsed.is_null()


def numbers(series: pl.Series) -> pl.Series:
    """Decimal numbers from text such as `2000.00` or `-12.5` (a comma or currency sign is not read)."""
    if series.dtype.is_numeric():
        return series.cast(pl.Float64)
    text = series.cast(pl.String).str.strip_chars()
    ok = text.str.contains(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
    return text.cast(pl.Float64, strict=False).zip_with(
        ok.fill_null(False), pl.Series([None] * len(text), dtype=pl.Float64)
    )


MAX_MAJOR = 1e10
"""The largest amount taken as real (ten billion in major units): Stripe's own limits are far below; a larger
value is a wrong column or a corrupted cell, and would overflow the MRR arithmetic downstream."""


def implausible(values: pl.Series, divisor: float = 1.0) -> pl.Series:
    """True where an amount (in minor units when `divisor` > 1) is beyond `MAX_MAJOR` or not finite."""
    return values.is_not_null() & (values.is_infinite() | values.is_nan() | ((values.abs() / divisor) > MAX_MAJOR))


def whole_numbers(series: pl.Series) -> pl.Series:
    """Integers (API amounts in minor units, quantities): `1500`, `1500.0`; anything else null."""
    values = numbers(series)
    return values.zip_with(values == values.round(0), pl.Series([None] * len(values), dtype=pl.Float64))


def booleans(series: pl.Series) -> pl.Series:
    """true/false, t/f, yes/no, 1/0 (any case) as Booleans; anything else null."""
    if series.dtype == pl.Boolean:
        return series
    if series.dtype.is_numeric():
        return series.cast(pl.Int64, strict=False).replace_strict(
            {1: True, 0: False}, default=None, return_dtype=pl.Boolean
        )
    text = series.cast(pl.String).str.strip_chars().str.to_lowercase()
    mapping = {"true": True, "t": True, "yes": True, "1": True, "false": False, "f": False, "no": False, "0": False}
    return text.replace_strict(mapping, default=None, return_dtype=pl.Boolean)


def coalesce_columns(frame: pl.DataFrame, *names: str, dtype: pl.DataType = pl.String) -> pl.Series:
    """The first non-null value among the columns `names` present in `frame` (null when none is present)."""
    present = [
        pl.col(n).cast(dtype, strict=False)
        for n in names
        if n in frame.columns and not isinstance(frame.schema[n], (pl.Struct, pl.List))
    ]
    if not present:
        return pl.Series([None] * frame.height, dtype=dtype)
    return frame.select(pl.coalesce(present)).to_series()


def first_present(frame: pl.DataFrame, *names: str) -> str | None:
    """The first of `names` that is a column of `frame`."""
    return next((n for n in names if n in frame.columns), None)


# --------------------------------------------------------------------------- checked columns (both shapes)
# The API and Dashboard readers read the same values from differently named columns and report the same
# problems; each keeps thin wrappers (`_time`, `_minor` / `_amount`, `_currency`) that name its columns and
# say what its values look like.
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")


def parsed_column(
    frame: pl.DataFrame, table: str, code: str, problems: Problems, column: str, parsed: pl.Series, looks: str
) -> pl.Series:
    """`parsed`, the values of `frame[column]` as read; those given but unreadable are a `<code>.unparseable`
    problem saying what they should look like."""
    problems.rows(f"{code}.unparseable", table, column, looks, frame, unreadable(frame[column], parsed))
    return parsed


def present(
    frame: pl.DataFrame, table: str, code: str, problems: Problems, column: str, parsed: pl.Series, what: str
) -> pl.Series:
    """`parsed` (read from `frame[column]`), with the rows that do not give it at all a `<code>.missing_value`
    problem (`what` they are); values given but unreadable are reported as unparseable, not again here."""
    problems.rows(
        f"{code}.missing_value", table, column, what, frame, parsed.is_null() & ~unreadable(frame[column], parsed)
    )
    return parsed


def times(
    frame: pl.DataFrame, table: str, code: str, problems: Problems, names: tuple[str, ...], looks: str
) -> pl.Series:
    """The first of the columns `names` present as UTC date-times (null when none is), unreadable ones reported."""
    column = first_present(frame, *names)
    if column is None:
        return pl.Series([None] * frame.height, dtype=pl.Datetime("us", "UTC"))
    return parsed_column(frame, table, code, problems, column, timestamps(frame[column]), looks)


def amounts(
    frame: pl.DataFrame,
    table: str,
    code: str,
    problems: Problems,
    column: str,
    parsed: pl.Series,
    looks: str,
    divisor: float = 1.0,
) -> pl.Series:
    """`parsed_column`, and amounts too large to be real (`implausible`, in minor units when `divisor` > 1) a
    `<code>.out_of_range` problem and null."""
    parsed_column(frame, table, code, problems, column, parsed, looks)
    too_big = implausible(parsed, divisor)
    problems.rows(
        f"{code}.out_of_range", table, column, "amounts too large to be real (a wrong column?)", frame, too_big
    )
    return parsed.zip_with(~too_big.fill_null(False), pl.Series([None] * len(parsed), dtype=pl.Float64))


def currencies(frame: pl.DataFrame, table: str, code: str, problems: Problems, column: str) -> pl.Series:
    """Upper-case currency codes of `frame[column]` (null when there is no such column); values that are not ISO
    4217 codes a `<code>.unknown_currency` problem."""
    if column not in frame.columns:
        return pl.Series([None] * frame.height, dtype=pl.String)
    codes = frame[column].cast(pl.String).str.strip_chars().str.to_uppercase()
    problems.rows(
        f"{code}.unknown_currency",
        table,
        column,
        "values are not ISO 4217 currency codes",
        frame,
        codes.is_not_null() & ~codes.is_in(sorted(ISO_CURRENCIES)),
    )
    return codes


def invoice_statuses(frame: pl.DataFrame, table: str, code: str, problems: Problems, column: str) -> pl.Series:
    """Lower-case invoice statuses; any but INVOICE_STATUSES a `<code>.not_allowed` problem."""
    status = coalesce_columns(frame, column).str.to_lowercase()
    problems.rows(
        f"{code}.not_allowed",
        table,
        column,
        f"statuses other than {', '.join(INVOICE_STATUSES)}",
        frame,
        status.is_not_null() & ~status.is_in(INVOICE_STATUSES),
    )
    return status


def currency_of_invoices(invoices: pl.DataFrame) -> dict[str, str]:
    """Invoice id -> the invoice's currency (lines and credit notes without their own take it)."""
    return dict(invoices.select("invoice_id", "currency").drop_nulls("invoice_id").iter_rows())
