"""Small helpers every metric module shares: a metric's monthly series frame, monthly sums over the calendar, and
trailing sums."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from ..frames import monthly


def month_series(months, value, n) -> pd.DataFrame:
    """A metric's series as the registry expects it: month, value and n (how many items each value is estimated
    from), value and n as floats."""
    return pd.DataFrame(
        {
            "month": pd.to_datetime(pd.Series(months)).to_numpy(),
            "value": np.asarray(value, dtype="float64"),
            "n": np.asarray(n, dtype="float64"),
        }
    )


def monthly_sum(calendar: pl.DataFrame, frame: pd.DataFrame, column: str, month: str = "month") -> pd.Series:
    """`column` summed per calendar month (0 where nothing), indexed by month."""
    summed = monthly(calendar, frame[month], frame[column], "sum")
    return pd.Series(summed.value.to_numpy(), index=summed.month)


def trailing_sum(values: pd.Series, months: int, shift: int = 0) -> pd.Series:
    """The sum of the `months` values ending `shift` months before each month (NaN until there are that many)."""
    return values.shift(shift).rolling(months, min_periods=months).sum()
