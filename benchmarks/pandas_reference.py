"""The same numbers in plain pandas 3, as a good pandas user would write them (vectorised, no row loops, the
events' ids read as a dictionary so that nothing hashes 50M strings): monthly MRR and its movements, and monthly
DAU, MAU and DAU/MAU. Used only to benchmark against, on the same input files as the workbook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def mrr_bridge(source: Path, months: pd.PeriodIndex) -> pd.DataFrame:
    """MRR at each month end and the new / expansion / contraction / churn / reactivation movements."""
    subs = pd.read_csv(source / "subscriptions.csv", parse_dates=["start_date", "end_date"])
    subs["mrr"] = subs.amount / subs.get("billing_period_months", 1) * (1 - subs.get("discount_pct", 0))
    ends = months.to_timestamp(how="end").normalize()
    rows = []
    for end in ends:  # one vectorised filter per month (36 months)
        on = (subs.start_date <= end) & (subs.end_date.isna() | (subs.end_date > end))
        rows.append(subs[on].groupby("account_id").mrr.sum().rename(end))
    wide = pd.concat(rows, axis=1).fillna(0.0).round(6)
    prev = wide.shift(1, axis=1).fillna(0.0)
    paid_before = (wide > 0).cumsum(axis=1).shift(1, axis=1).fillna(0) > 0
    gain = (prev == 0) & (wide > 0)
    return pd.DataFrame(
        {
            "month": months.to_timestamp(),
            "mrr_start": prev.sum().to_numpy(),
            "mrr_end": wide.sum().to_numpy(),
            "new": wide.where(gain & ~paid_before, 0).sum().to_numpy(),
            "reactivation": wide.where(gain & paid_before, 0).sum().to_numpy(),
            "expansion": (wide - prev).where((prev > 0) & (wide > prev), 0).sum().to_numpy(),
            "contraction": (prev - wide).where((wide > 0) & (wide < prev), 0).sum().to_numpy(),
            "churn": prev.where((prev > 0) & (wide == 0), 0).sum().to_numpy(),
        }
    )


def dau_mau(source: Path) -> pd.DataFrame:
    """Mean DAU (user-days / days in month), MAU and DAU/MAU per month."""
    # user ids as pandas categoricals straight from Parquet's dictionary pages (pyarrow's read_dictionary), so
    # the distinct user-days are distinct integers: user code * 1e6 + day number (days since 1970, UTC)
    ev = pd.read_parquet(
        source / "usage_events.parquet", columns=["user_id", "event_time"], read_dictionary=["user_id"]
    )
    user = ev.user_id.cat.codes.to_numpy().astype("int64")
    day = ev.event_time.dt.tz_convert(None).to_numpy().astype("datetime64[D]").astype("int64")
    users, days = np.divmod(pd.unique(user * 1_000_000 + day), 1_000_000)
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    per = (
        pd.DataFrame({"user": users, "month": months})
        .groupby("month")
        .agg(user_days=("user", "size"), mau=("user", "nunique"))
    )
    per["dau"] = per.user_days / per.index.days_in_month
    per["dau_mau"] = per.dau / per.mau
    return per.reset_index()[["month", "dau", "mau", "dau_mau"]]


def run(source: Path, first: str, last: str) -> dict[str, pd.DataFrame]:
    months = pd.period_range(first, last, freq="M")
    return {"mrr": mrr_bridge(source, months), "usage": dau_mau(source)}


__all__ = ["run"]
