"""Product stickiness and user retention (catalog section 3): DAU, WAU, MAU, DAU/MAU, user
cohorts and the user lifecycle. Usage events stay lazy in the engine until they are aggregated
to one row per user and day or month; only monthly aggregates are collected.
"""
from __future__ import annotations

import narwhals as nw
import pandas as pd
import polars as pl

from ..frames import month_key, month_of, safe_ratio, to_pandas
from ..sources import Tables
from .registry import metric, table
from .revenue import _series

USAGE = ("accounts", "subscriptions", "usage_events")


def _in_calendar(frame: nw.LazyFrame, calendar: pl.DataFrame) -> nw.LazyFrame:
    lo, hi = int(calendar["month"].min()), int(calendar["month"].max())
    return frame.filter((nw.col("month") >= lo) & (nw.col("month") <= hi))


def user_days(tables: Tables, calendar: pl.DataFrame) -> nw.LazyFrame:
    """One row per user and day with at least one usage event (month key and day of month)."""
    ev = tables.lazy("usage_events").select("user_id", "event_time")
    days = ev.with_columns(day=nw.col("event_time").dt.date()).select("user_id", "day").unique()
    days = days.with_columns(month=month_key(nw.col("day")), day_of_month=nw.col("day").dt.day())
    return _in_calendar(days, calendar)


def user_months(tables: Tables, calendar: pl.DataFrame) -> nw.LazyFrame:
    """One row per user and month with at least one usage event."""
    ev = tables.lazy("usage_events").select("user_id", month=month_key(nw.col("event_time")))
    return _in_calendar(ev.unique(), calendar)


def days_in_month(calendar: pl.DataFrame) -> pd.DataFrame:
    """Each calendar month with its number of days."""
    return to_pandas(nw.from_native(calendar.with_columns(days=pl.col("month_end").dt.day().cast(pl.Int64))
                                    .select("month", "days")), sort=["month"])


@table(needs=USAGE)
def active_users(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Per month: mean daily active users over all its days, mean weekly active users over the blocks days 1-7, 8-14, 15-21, 22-28, and monthly active users."""
    ev = tables.lazy("usage_events").select("user_id", month=month_key(nw.col("event_time")),
                                            day=nw.col("event_time").dt.day())
    ev = _in_calendar(ev, calendar).with_columns(block=(nw.col("day") - 1) // 7)  # block 4 = days 29-31
    # one pass: per user and month, distinct active days and distinct 7-day blocks among the first four
    per_user = ev.group_by("month", "user_id").agg(
        nw.col("day").n_unique().alias("days_active"),
        (nw.col("block").n_unique() - (nw.col("block") == 4).cast(nw.Int64).max()).alias("blocks_active"))
    monthly = to_pandas(per_user.group_by("month").agg(
        nw.col("days_active").sum().alias("user_days"), nw.col("blocks_active").sum().alias("user_weeks"),
        nw.len().alias("mau")))
    out = days_in_month(calendar).merge(monthly, on="month", how="left").fillna(0)
    out["dau"] = out.user_days / out.days
    out["wau"] = out.user_weeks / 4
    out["mau"] = out.mau.astype("int64")
    return out[["month", "dau", "wau", "mau", "days"]]


@metric(label="DAU", formula="mean over the month's days of users with at least one event that day",
        unit="count", direction="higher", level="operational", cadence="daily", sources=("U",), area="usage",
        needs=USAGE)
def daily_active_users(active_users: pd.DataFrame) -> pd.DataFrame:
    """Average daily active users in the month."""
    return _series(active_users.month, active_users.dau, active_users.days)


@metric(label="WAU", formula="mean over the blocks days 1-7, 8-14, 15-21, 22-28 of users active in the block",
        unit="count", direction="higher", level="operational", cadence="weekly", sources=("U",), area="usage",
        needs=USAGE)
def weekly_active_users(active_users: pd.DataFrame) -> pd.DataFrame:
    """Average weekly active users in the month."""
    return _series(active_users.month, active_users.wau, active_users.mau)


@metric(label="MAU", formula="users with at least one event in the month", unit="count", direction="higher",
        level="supporting", sources=("U",), area="usage", needs=USAGE)
def monthly_active_users(active_users: pd.DataFrame) -> pd.DataFrame:
    """Users active at least once in the month."""
    return _series(active_users.month, active_users.mau, active_users.mau)


@metric(label="DAU/MAU", formula="mean DAU / MAU of the month", unit="fraction", direction="higher",
        level="core", sources=("U",), area="usage", target=0.6, needs=USAGE)
def dau_mau_ratio(active_users: pd.DataFrame) -> pd.DataFrame:
    """Product stickiness: the share of monthly users active on an average day."""
    a = active_users
    return _series(a.month, safe_ratio(a.dau, a.mau), a.mau)


@table(needs=USAGE)
def user_cohort_retention(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """User retention triangle: users by month of first activity, share active k months later."""
    um = user_months(tables, calendar)
    um = um.with_columns(cohort_month=nw.col("month").min().over("user_id"))
    um = um.with_columns(months_since_start=nw.col("month") - nw.col("cohort_month"))
    counts = to_pandas(um.group_by("cohort_month", "months_since_start").agg(nw.len().alias("active_users")))
    cols = ["cohort_month", "months_since_start", "cohort_users", "active_users", "retention_rate"]
    if counts.empty:
        return pd.DataFrame(columns=cols)
    size = counts[counts.months_since_start == 0].set_index("cohort_month").active_users.rename("cohort_users")
    last = month_of(int(calendar["month"].max()))
    full = pd.DataFrame([(c, k) for c in size.index for k in range((last.year - c.year) * 12 + last.month - c.month + 1)],
                        columns=["cohort_month", "months_since_start"])
    out = full.join(size, on="cohort_month").merge(counts, on=["cohort_month", "months_since_start"], how="left")
    out["active_users"] = out.active_users.fillna(0).astype("int64")
    out["cohort_users"] = out.cohort_users.astype("int64")
    out["retention_rate"] = safe_ratio(out.active_users, out.cohort_users)
    return out.sort_values(["cohort_month", "months_since_start"]).reset_index(drop=True)[cols]


@table(needs=USAGE)
def user_lifecycle(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Per month: users new (first active month), returning (active last month too), resurrecting (back after a gap) and dormant (active last month, not this one)."""
    um = user_months(tables, calendar)
    order = {"order_by": "month"}
    um = um.with_columns(prev=nw.col("month").shift(1).over("user_id", **order), next=nw.col("month").shift(-1).over("user_id", **order))
    status = (nw.when(nw.col("prev").is_null()).then(nw.lit("new"))
              .when(nw.col("prev") == nw.col("month") - 1).then(nw.lit("returning")).otherwise(nw.lit("resurrecting")))
    active = to_pandas(um.with_columns(status=status).group_by("month", "status").agg(nw.len().alias("users")))
    last = int(calendar["month"].max())
    dormant = um.filter((nw.col("next").is_null() | (nw.col("next") > nw.col("month") + 1)) & (nw.col("month") < last))
    dormant = to_pandas(dormant.select(month=nw.col("month") + 1).group_by("month").agg(nw.len().alias("users")))
    dormant["status"] = "dormant"
    wide = pd.concat([active, dormant]).pivot_table(index="month", columns="status", values="users", aggfunc="sum")
    wide = wide.reindex(columns=["new", "returning", "resurrecting", "dormant"]).fillna(0).astype("int64")
    return wide.reset_index().sort_values("month").reset_index(drop=True)
