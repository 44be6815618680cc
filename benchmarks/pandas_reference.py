"""The same numbers in plain pandas, as a competent analyst would write them (vectorised, no row loops):
monthly MRR and its movements, and monthly DAU, MAU and DAU/MAU. Used only to benchmark against."""

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
    ev = pd.read_parquet(source / "usage_events.parquet", columns=["user_id", "event_time"])
    ev["day"] = ev.event_time.dt.floor("D")
    days = ev[["user_id", "day"]].drop_duplicates()
    days["month"] = days.day.dt.tz_localize(None).dt.to_period("M")
    per = days.groupby("month").agg(user_days=("user_id", "size"), mau=("user_id", "nunique"))
    per["dau"] = per.user_days / per.index.days_in_month
    per["dau_mau"] = per.dau / per.mau
    return per.reset_index().assign(month=lambda d: d.month.dt.to_timestamp())[["month", "dau", "mau", "dau_mau"]]


def run(source: Path, first: str, last: str) -> dict[str, pd.DataFrame]:
    months = pd.period_range(first, last, freq="M")
    return {"mrr": mrr_bridge(source, months), "usage": dau_mau(source)}


__all__ = ["run", "np"]
