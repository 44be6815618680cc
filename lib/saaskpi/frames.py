"""The dataframe boundary: metric code reads the source tables on the engine (`Tables.lazy`, Narwhals over
Polars, DuckDB or Spark) and its results leave the engine through one exit, `to_pandas`, as small pandas
tables with one set of dtypes whatever the engine (docs/architecture.md, "The dataframe boundary").

Engines return their own dtypes (DuckDB int64 where Polars has int32, Decimal sums, Spark's timestamps...);
`to_pandas` normalises them so that tests and charts see the same table from every engine, and `conform`
casts a frame to a registered table's declared schema (`registry.table(schema=...)`).
Months travel through the engines as an integer key (year * 12 + month - 1), see `month_key`.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from functools import lru_cache

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

MONTH_KEY_COLUMNS = ("month", "cohort_month")
DAY = pd.Timedelta(days=1)


def month_key(expr: nw.Expr) -> nw.Expr:
    """Integer month key (year * 12 + month - 1) of a date or datetime expression."""
    return expr.dt.year().cast(nw.Int64) * 12 + expr.dt.month().cast(nw.Int64) - 1


def utc_wall_time(frame: nw.LazyFrame, column: str = "event_time") -> nw.Expr:
    """A UTC date-time column of `frame` for taking its date parts (month key, day, date). On DuckDB the UTC wall
    time as a TIMESTAMP (the workbook's sessions are in UTC): DuckDB takes date parts of a TIMESTAMP WITH TIME ZONE
    through ICU's calendar, of a TIMESTAMP by arithmetic (the feature-month aggregate at 50M events: 8.2 -> 5.6
    s); other engines take them as they are."""
    time = nw.col(column)
    return time.dt.replace_time_zone(None) if frame.implementation.is_duckdb() else time


# the calendar `month_and_day` reads from: every day from 1970 to 2099, by days since 1970-01-01
_CALENDAR_FROM, _CALENDAR_DAYS = dt.date(1970, 1, 1), (dt.date(2100, 1, 1) - dt.date(1970, 1, 1)).days


@lru_cache(maxsize=1)
def _calendar() -> tuple[pl.Series, pl.Series]:
    """Month keys and days of the month of the calendar's days, with a null before and after it."""
    days = pd.date_range(_CALENDAR_FROM, periods=_CALENDAR_DAYS, freq="D")
    # narrow types: at 50M events, held in memory, Int64 columns would take 0.55 GB more
    return (
        pl.Series([None, *(days.year * 12 + days.month - 1).tolist(), None], dtype=pl.Int32),
        pl.Series([None, *days.day.tolist(), None], dtype=pl.Int8),
    )


def month_and_day(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Month key (as `month_key`, an Int32) and day of the month (an Int8) of a Polars date or UTC date-time
    expression, read from a calendar of every day from 1970 to 2099 by the day's number: at 50M events 0.8 s,
    against 1.8 s for `dt.year`, `dt.month` and `dt.day` (three calendar conversions per row). Both are null for a
    day outside the calendar: a caller that finds a null key where the expression is not null uses `month_key`
    instead. For queries collected in memory (the usage aggregates): Polars' streaming engine does not stream a
    query with this lookup, it reads the whole input first."""
    keys, days = _calendar()
    at = expr.dt.epoch("d").clip(-1, _CALENDAR_DAYS) + 1
    return pl.lit(keys).gather(at), pl.lit(days).gather(at)


def key_of(month: pd.Timestamp | dt.date | str) -> int:
    """Integer month key of a month (a date in it, or "YYYY-MM")."""
    p = pd.Period(month, freq="M")
    return p.year * 12 + p.month - 1


def month_of(key: int) -> pd.Timestamp:
    """First day of the month with integer key `key`."""
    return pd.Timestamp(year=int(key) // 12, month=int(key) % 12 + 1, day=1)


def months_of(keys: pd.Series) -> pd.Series:
    """First day of the month of each integer month key (vectorised `month_of`)."""
    if not len(keys):
        return pd.Series([], dtype="datetime64[ns]", index=keys.index)
    return pd.to_datetime({"year": keys // 12, "month": keys % 12 + 1, "day": 1})


def month_label(month) -> str:
    """A month as YYYY-MM."""
    return pd.Timestamp(month).strftime("%Y-%m")


def seconds_between(later: nw.Expr, earlier: nw.Expr, engine: str) -> nw.Expr:
    """`later - earlier` in seconds, on any engine. Narwhals has no durations on Spark: there timestamps are
    cast to epoch seconds (Spark's own cast), elsewhere the duration's seconds are taken."""
    if engine == "spark":  # a timestamp without time zone casts to epoch seconds once it is one in UTC
        utc = nw.Datetime("us", "UTC")
        return later.cast(utc).cast(nw.Float64) - earlier.cast(utc).cast(nw.Float64)
    return (later - earlier).dt.total_seconds()


def to_pandas(
    frame: nw.LazyFrame | nw.DataFrame,
    *,
    sort: list[str] | None = None,
    schema: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """The one exit from the engine: collect `frame` and normalise dtypes (month keys to Timestamps, ints to
    int64 (float64 with gaps), floats and DuckDB's Decimal sums to float64, timestamps to UTC, dates to
    datetime64), sorted by `sort` and cast to `schema` (`conform`) when given."""
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    df = frame.to_pandas()
    for col in df.columns:
        s = df[col]
        if col in MONTH_KEY_COLUMNS and pd.api.types.is_integer_dtype(s):
            df[col] = months_of(s)
        elif pd.api.types.is_bool_dtype(s):
            df[col] = s.astype(bool)
        elif pd.api.types.is_integer_dtype(s):
            df[col] = s.astype("int64") if not s.isna().any() else s.astype("float64")
        elif pd.api.types.is_float_dtype(s) or str(s.dtype).startswith("decimal"):
            df[col] = s.astype("float64")
        elif pd.api.types.is_datetime64_any_dtype(s):
            df[col] = s.dt.tz_convert("UTC") if getattr(s.dt, "tz", None) is not None else s
        elif s.dtype == object and s.notna().any() and isinstance(s.dropna().iloc[0], decimal.Decimal):
            df[col] = s.astype("float64")  # DuckDB sums of integers are HUGEINT -> Decimal
        elif s.dtype == object and s.notna().any() and isinstance(s.dropna().iloc[0], dt.date):
            df[col] = pd.to_datetime(s)
        elif str(s.dtype) in ("string", "large_string", "string[pyarrow]"):
            df[col] = s.astype(object)
    if sort:
        df = df.sort_values(sort, kind="stable").reset_index(drop=True)
    return conform(df, schema) if schema is not None else df


# The dtypes a table schema may declare (registry.table(schema=...)), with what they hold.
SCHEMA_DTYPES = {
    "str": "text: pandas' str dtype, missing values NaN",
    "int64": "whole numbers without gaps",
    "float64": "numbers, NaN = n/a (also counts that can be missing)",
    "bool": "True / False",
    "object": "Python objects: True / False / None for a flag still undecided",
    "datetime": "a naive timestamp (UTC wall time) or a date, datetime64 of any resolution",
    "datetime_utc": "a UTC timestamp, datetime64 of any resolution with tz UTC",
}
# What every metric series is (registry.metric): one row per month; a conversion metric whose window has not
# elapsed for the last months flags them `immature` (metrics/funnel.py).
METRIC_SCHEMA = {"month": "datetime", "value": "float64", "n": "float64"}
IMMATURE = {"immature": "bool"}


def metric_schema(series: pd.DataFrame) -> dict[str, str]:
    """The schema a metric series must have: `METRIC_SCHEMA`, with `immature` when it flags months."""
    return {**METRIC_SCHEMA, **(IMMATURE if "immature" in series.columns else {})}


def dtype_matches(series: pd.Series, declared: str) -> bool:
    """Whether `series` has the declared schema dtype (`SCHEMA_DTYPES`)."""
    actual = series.dtype
    if declared in ("datetime", "datetime_utc"):
        tz = getattr(actual, "tz", None)
        return pd.api.types.is_datetime64_any_dtype(actual) and (
            str(tz) == "UTC" if declared == "datetime_utc" else tz is None
        )
    if declared == "str":
        return isinstance(actual, pd.StringDtype)
    return str(actual) == declared


def schema_problems(frame: pd.DataFrame, schema: Mapping[str, str]) -> list[str]:
    """How `frame` differs from `schema` (columns in order, each with its dtype): one sentence per difference."""
    problems = []
    if list(frame.columns) != list(schema):
        problems.append(f"columns {list(frame.columns)}, declared {list(schema)}")
    for col, declared in schema.items():
        if col in frame.columns and not dtype_matches(frame[col], declared):
            problems.append(f"column {col!r} is {frame[col].dtype}, declared {declared}")
    return problems


def _datetime_unit(dtype) -> str:
    """ "s", "ms", "us" or "ns" for a datetime dtype (numpy or tz-aware pandas), else ""."""
    if isinstance(dtype, pd.DatetimeTZDtype):
        return dtype.unit
    return np.datetime_data(dtype)[0] if getattr(dtype, "kind", "") == "M" else ""


def _no_seconds_unit(stamps: pd.Series) -> pd.Series:
    """Datetimes of seconds resolution (an empty column, dates built from their parts) in milliseconds: Parquet has
    no seconds unit, so the results store would give them back as milliseconds."""
    if _datetime_unit(stamps.dtype) != "s":
        return stamps
    return stamps.astype(str(stamps.dtype).replace("[s", "[ms"))


def conform(frame: pd.DataFrame, schema: Mapping[str, object] | None) -> pd.DataFrame:
    """`frame` with its columns cast to their declared dtypes where they differ (`SCHEMA_DTYPES`): text held as
    object (None after a merge, say) to str with NaN, whole numbers of another width to int64, dates to
    datetime (seconds resolution to milliseconds, which the results store keeps). Without a schema (a company's own table), text columns held as object become str. A column
    whose values cannot take the declared dtype (a gap in whole numbers) is left as it is for the schema test
    to report; anything but a DataFrame is returned as it is."""
    if not isinstance(frame, pd.DataFrame):
        return frame
    if schema is None:
        schema = {c: "str" for c in frame.columns if frame[c].dtype == object}
    casts: dict[str, pd.Series] = {}
    for col, declared in schema.items():
        if (
            declared in ("datetime", "datetime_utc")
            and col in frame.columns
            and _datetime_unit(frame[col].dtype) == "s"
        ):  # pd.Timestamp(year, month, day) columns: Parquet has no seconds unit and gives them back as ms
            casts[col] = _no_seconds_unit(frame[col])
            continue
        if (
            col not in frame.columns
            or not isinstance(frame[col], pd.Series)
            or dtype_matches(frame[col], str(declared))
        ):
            continue
        s = frame[col]
        if declared == "str":
            if s.dropna().map(lambda v: isinstance(v, str)).all():
                casts[col] = s.astype("str")
        elif declared in ("int64", "bool"):
            if not s.isna().any():
                casts[col] = s.astype(declared)
        elif declared == "float64":
            casts[col] = s.astype("float64")
        elif declared in ("datetime", "datetime_utc"):
            stamps = pd.to_datetime(s, utc=declared == "datetime_utc")
            if declared == "datetime" and getattr(stamps.dtype, "tz", None) is not None:
                stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
            casts[col] = _no_seconds_unit(stamps)
    return frame.assign(**casts) if casts else frame


def lookup(keys: pd.Series | pd.Index, values: pd.Series | dict) -> pd.Series:
    """`values` (a Series indexed by key, or a dict) at each of `keys`, missing where a key has none, aligned with
    `keys` and in the values' dtype: `keys.map(values)` as pandas 2 did it. pandas 3's `map` gives a result for no
    keys the keys' dtype (str, whose sum is '') and cannot map through an empty datetime Series."""
    values = values if isinstance(values, pd.Series) else pd.Series(values, dtype=None if values else object)
    found = values.reindex(pd.Index(keys))
    # relabelled, not rebuilt from `to_numpy()`: that turns time-zone-aware times into Timestamp objects and back
    # (0.3 s for 130k users)
    return found.set_axis(keys.index if isinstance(keys, pd.Series) else keys).rename(None)


EMPTY_DTYPES = {"datetime": "datetime64[ns]", "datetime_utc": "datetime64[ns, UTC]"}


def empty_frame(dtypes: Mapping[str, object]) -> pd.DataFrame:
    """A frame with no rows but the given column types (what later merges and `.dt` accessors expect): pandas
    dtypes, or a table's schema (`SCHEMA_DTYPES` names)."""
    return pd.DataFrame({c: pd.Series(dtype=EMPTY_DTYPES.get(str(t), t)) for c, t in dtypes.items()})


def safe_ratio(numerator, denominator):
    """numerator / denominator, NaN (shown as n/a) where the denominator is 0 or missing."""
    num = np.asarray(numerator, dtype="float64")
    den = np.asarray(denominator, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((den == 0) | np.isnan(den), np.nan, num / np.where(den == 0, 1, den))
    return out if out.ndim else float(out)


# --------------------------------------------------------------------------- calendar months (pandas)
def data_end(calendar: pl.DataFrame) -> pd.Timestamp:
    """The first instant after the workbook's last month (UTC): nothing at or after it is counted."""
    return pd.Timestamp(calendar["month_end"].max()).tz_localize("UTC") + DAY


def calendar_months(calendar: pl.DataFrame) -> pd.DataFrame:
    """Every calendar month (month, month_end as the first instant after it)."""
    cal = calendar.to_pandas()
    starts = pd.to_datetime({"year": cal.month // 12, "month": cal.month % 12 + 1, "day": 1})
    return pd.DataFrame({"month": starts, "end": pd.to_datetime(cal.month_end).dt.tz_localize("UTC") + DAY})


def month_start(stamps: pd.Series) -> pd.Series:
    """First day of each timestamp's month (naive, like every metric's `month`)."""
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M").dt.to_timestamp()


def monthly(
    calendar: pl.DataFrame, months: pd.Series, values: pd.Series, how: str | Callable[[pd.Series], float]
) -> pd.DataFrame:
    """Aggregate `values` by `months` over the calendar: value = `how` of the values, n = their count; empty months n/a."""
    frame = pd.DataFrame({"month": months.to_numpy(), "v": values.to_numpy(dtype="float64")})
    grouped = frame.groupby("month").v
    agg = pd.DataFrame({"value": grouped.agg(how) if how != "size" else grouped.size(), "n": grouped.size()})
    out = calendar_months(calendar)[["month"]].join(agg, on="month")
    out["n"] = out.n.fillna(0)
    if how in ("sum", "size"):
        out["value"] = out.value.fillna(0)
    return out.reset_index(drop=True)
