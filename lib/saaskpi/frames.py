"""Collecting lazy results into small pandas tables with one set of dtypes, whatever the engine.

Engines return their own dtypes (DuckDB int64 where Polars has int32, Spark's timestamps...);
`to_pandas` normalises them so that tests and charts see the same table from every engine.
Months travel through the engines as an integer key (year * 12 + month - 1), see `month_key`.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

MONTH_KEY_COLUMNS = ("month", "cohort_month")
DAY = pd.Timedelta(days=1)


def month_key(expr: nw.Expr) -> nw.Expr:
    """Integer month key (year * 12 + month - 1) of a date or datetime expression."""
    return expr.dt.year().cast(nw.Int64) * 12 + expr.dt.month().cast(nw.Int64) - 1


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


def to_pandas(frame: nw.LazyFrame | nw.DataFrame, *, sort: list[str] | None = None) -> pd.DataFrame:
    """Collect `frame` and normalise dtypes: month keys to Timestamps, ints to int64, floats to float64."""
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
    return df


def lookup(keys: pd.Series | pd.Index, values: pd.Series | dict) -> pd.Series:
    """`values` (a Series indexed by key, or a dict) at each of `keys`, missing where a key has none, aligned with
    `keys` and in the values' dtype: `keys.map(values)` as pandas 2 did it. pandas 3's `map` gives a result for no
    keys the keys' dtype (str, whose sum is '') and cannot map through an empty datetime Series."""
    values = values if isinstance(values, pd.Series) else pd.Series(values, dtype=None if values else object)
    found = values.reindex(pd.Index(keys))
    return pd.Series(found.to_numpy(), index=keys.index if isinstance(keys, pd.Series) else keys, dtype=found.dtype)


def empty_frame(dtypes: dict[str, object]) -> pd.DataFrame:
    """A frame with no rows but the given column types (what later merges and `.dt` accessors expect)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


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
