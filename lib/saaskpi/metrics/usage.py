"""Product stickiness and user retention (catalog section 3): DAU, WAU, MAU, DAU/MAU, user
cohorts and the user lifecycle.

Usage events stay in the engine. Two aggregates are collected from them, each in one pass over the
events, and every usage measure of every page is computed from those (not from the events again):
`user_month_activity` (one row per user and month) and `feature_month_activity` (one row per account,
feature and month).
"""

from __future__ import annotations

from collections.abc import Callable

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import month_and_day, month_key, month_of, months_of, safe_ratio, to_pandas, utc_wall_time
from ..params import Conventions
from ..sources import Tables
from .registry import metric, table
from .series import month_series

USAGE = ("accounts", "subscriptions", "usage_events")


def in_calendar(frame: pd.DataFrame, calendar: pl.DataFrame, key: str = "key") -> pd.DataFrame:
    """The rows of `frame` whose month `key` is one of the calendar's months."""
    lo, hi = int(calendar["month"].min()), int(calendar["month"].max())
    return frame[(frame[key] >= lo) & (frame[key] <= hi)]


@table(
    schema={
        "user_id": "str",
        "account_id": "str",
        "key": "int64",
        "days_active": "int64",
        "blocks_active": "int64",
        "day_bits": "int64",
        "last_event": "datetime_utc",
    },
    export=False,
    needs=USAGE,
)
def user_month_activity(tables: Tables) -> pd.DataFrame:
    """One row per user, account and month key with an event: distinct days active, distinct 7-day blocks
    active among days 1-7, 8-14, 15-21, 22-28, the days active as bits (bit d - 1 for day d of the month: the
    account heatmap's weeks cross month ends), and the time of the last event (one pass over the events)."""
    return tables.aggregate(
        "user_month_activity",
        lambda t: _per_user_month(t, "account_id", last_event=True),
        sql=USER_MONTH_SQL,
        sort=("user_id", "key", "account_id"),
    )


# the same aggregate in SQL, for a source that runs it in its database (PostgreSQL; session time zone UTC):
# one row per user-day first (date_trunc is cheap per event; date_part, a double, is cheaper than extract's
# numeric), so that both counts are plain hash aggregates (no count(distinct) sorts)
USER_MONTH_SQL = """
select user_id, account_id, (date_part('year', d) * 12 + date_part('month', d) - 1)::bigint as key,
       count(*) as days_active,
       max((date_part('day', d) between 1 and 7)::int) + max((date_part('day', d) between 8 and 14)::int)
       + max((date_part('day', d) between 15 and 21)::int) + max((date_part('day', d) between 22 and 28)::int)
       as blocks_active,
       sum(1::bigint << (date_part('day', d)::int - 1))::bigint as day_bits,
       max(last_event)::timestamptz as last_event
from (select user_id, account_id, date_trunc('day', event_time) as d, max(event_time) as last_event
      from {usage_events} group by 1, 2, 3) user_days
group by 1, 2, 3
"""


# bits of days 1-7, 8-14, 15-21 and 22-28 of a month (days 29-31 are not a week of their own)
WEEK_BITS = [((1 << 7) - 1) << (7 * week) for week in range(4)]


def _per_user_month(tables: Tables, *by: str, last_event: bool = False) -> pd.DataFrame:
    """Per user (and `by`) and month key: the days active as bits (bit d - 1 for day d), and from them the
    distinct days active and the distinct 7-day blocks active among days 1-7, 8-14, 15-21, 22-28; optionally the
    last event's time. The engine only ors the bits: counting distinct days per group costs twice as much."""

    def per(ev: nw.LazyFrame) -> pd.DataFrame:
        if ev.implementation.is_polars():
            # one group-by with a native bitwise or (Narwhals has no bitwise aggregate): at 50M events of 100k
            # users 7.7 s and 3.6 GB, against 14.4 s and 4.3 GB counting distinct days and blocks per group
            aggs = [(pl.lit(2, pl.Int64) ** (pl.col("day").cast(pl.Int64) - 1)).bitwise_or().alias("day_bits")]
            aggs += [pl.col("event_time").max().alias("last_event")] if last_event else []
            grouped = ev.to_native().group_by("user_id", *by, "key").agg(aggs)
            # sorted in Polars (group keys are unique: any sort gives the one order, missing values last as in
            # pandas): at 50M events 0.3 s, against 0.6-0.75 s for pandas' sort of 1.8M rows by string ids
            return to_pandas(nw.from_native(grouped.sort("user_id", "key", *by, nulls_last=True).collect()))
        elif ev.implementation.is_duckdb():
            # the same group-by with DuckDB's bit_or: at 50M events 5.4-5.9 s, against 8.4-8.6 s for a group-by
            # per user-day and then one per user-month (below)
            keys = ", ".join(f'"{c}"' for c in ("user_id", *by, "key"))
            aggs = ['bit_or(1::BIGINT << ("day" - 1)::INTEGER) AS day_bits']
            aggs += ['max("event_time") AS last_event'] if last_event else []
            grouped = nw.from_native(ev.to_native().aggregate(f"{keys}, {', '.join(aggs)}", keys))
        else:
            # Spark: one row per user-day first, then a sum of distinct bits (as DuckDB did before bit_or: 11.5 s at
            # 50M so, 18.3 s counting distinct days per user-month)
            days = ev.group_by("user_id", *by, "key", "day").agg(nw.col("event_time").max().alias("last_event"))
            aggs = [(nw.lit(2, nw.Int64) ** (nw.col("day") - 1)).sum().cast(nw.Int64).alias("day_bits")]
            aggs += [nw.col("last_event").max()] if last_event else []
            grouped = days.group_by("user_id", *by, "key").agg(aggs)
        return to_pandas(grouped, sort=["user_id", "key", *by])

    out = by_month_and_day(tables.lazy("usage_events"), per)
    bits = out.day_bits.to_numpy()
    out.insert(len(by) + 2, "days_active", np.bitwise_count(bits).astype("int64"))
    out.insert(len(by) + 3, "blocks_active", sum(((bits & week) != 0).astype("int64") for week in WEEK_BITS))
    return out


def by_month_and_day(events: nw.LazyFrame, aggregate: Callable[[nw.LazyFrame], pd.DataFrame]) -> pd.DataFrame:
    """`aggregate` of the events with each event's month `key` and `day` of the month. On Polars both are read
    from a calendar (`month_and_day`: 1.0 s less per pass at 50M events than computing them per event), and
    computed per event only when an event falls outside the calendar (its key is null: the aggregate is made
    again). `aggregate` returns a pandas table with a `key` column."""
    time = utc_wall_time(events)
    per_event = {"key": month_key(time), "day": time.dt.day()}
    if not events.implementation.is_polars():
        return aggregate(events.with_columns(**per_event))
    key, day = month_and_day(pl.col("event_time"))
    out = aggregate(nw.from_native(events.to_native().with_columns(key=key, day=day)))
    return aggregate(events.with_columns(**per_event)) if out["key"].isna().any() else out


@table(
    schema={
        "account_id": "str",
        "feature": "str",
        "key": "int64",
        "first_event": "datetime_utc",
        "last_day": "int64",
        "seconds": "int64",
    },
    export=False,
    needs=USAGE,
)
def feature_month_activity(tables: Tables) -> pd.DataFrame:
    """One row per account, feature and month key with an event: its first event, the last day of the month
    it was used, and the seconds spent (duration_seconds; 0 when not recorded) (one pass over the events)."""
    return tables.aggregate(
        "feature_month_activity", _per_feature_month, sql=FEATURE_MONTH_SQL, sort=("account_id", "feature", "key")
    )


FEATURE_MONTH_SQL = """
select account_id, feature, (date_part('year', event_time) * 12 + date_part('month', event_time) - 1)::bigint as key,
       min(event_time)::timestamptz as first_event, max(date_part('day', event_time))::bigint as last_day,
       coalesce(sum(duration_seconds), 0)::bigint as seconds
from {usage_events}
group by 1, 2, 3
"""


def _per_feature_month(tables: Tables) -> pd.DataFrame:
    return by_month_and_day(
        tables.lazy("usage_events"),
        lambda ev: to_pandas(
            ev.group_by("account_id", "feature", "key").agg(
                nw.col("event_time").min().alias("first_event"),
                nw.col("day").cast(nw.Int64).max().alias("last_day"),
                nw.col("duration_seconds").sum().alias("seconds"),
            ),
            sort=["account_id", "feature", "key"],
        ),
    )


def user_months(user_month_activity: pd.DataFrame, calendar: pl.DataFrame) -> pl.DataFrame:
    """One row per user and month (key) with at least one usage event, in the calendar, sorted by user and month
    (a Polars frame). user_month_activity is stored in this order (one row per user, account and month), so the
    sort finds it sorted, and a user active in two accounts that month is a repeat of the row before: at 50M
    events 0.03 s, against 0.2-0.4 s for a hashed unique or pandas' drop_duplicates of 1.8M string ids."""
    users = pl.from_pandas(in_calendar(user_month_activity, calendar)[["user_id", "key"]]).sort("user_id", "key")
    user, key = pl.col("user_id"), pl.col("key")
    return users.filter(~((user == user.shift(1)) & (key == key.shift(1))).fill_null(False))


def days_in_month(calendar: pl.DataFrame) -> pd.DataFrame:
    """Each calendar month with its number of days."""
    return to_pandas(
        nw.from_native(calendar.with_columns(days=pl.col("month_end").dt.day().cast(pl.Int64)).select("month", "days")),
        sort=["month"],
    )


@table(schema={"month": "datetime", "dau": "float64", "wau": "float64", "mau": "int64", "days": "int64"}, needs=USAGE)
def active_users(tables: Tables, user_month_activity: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """Per month: mean daily active users over all its days, mean weekly active users over the blocks days 1-7, 8-14, 15-21, 22-28, and monthly active users."""
    per_user = in_calendar(user_month_activity, calendar)
    if user_months(user_month_activity, calendar).height < len(per_user):
        # a user active in two accounts in one month: days per account do not add up, count them over the events
        per_user = in_calendar(_per_user_month(tables), calendar)
    g = per_user.groupby("key")
    monthly = pd.DataFrame({"user_days": g.days_active.sum(), "user_weeks": g.blocks_active.sum(), "mau": g.size()})
    monthly = monthly.reset_index().assign(month=lambda f: months_of(f.key))
    out = days_in_month(calendar).merge(monthly.drop(columns="key"), on="month", how="left").fillna(0)
    out["dau"] = out.user_days / out.days
    out["wau"] = out.user_weeks / 4
    out["mau"] = out.mau.astype("int64")
    return out[["month", "dau", "wau", "mau", "days"]]


@metric(
    label="DAU",
    formula="mean over the month's days of users with at least one event that day",
    unit="count",
    direction="higher",
    level="operational",
    cadence="daily",
    sources=("U",),
    area="usage",
    needs=USAGE,
)
def daily_active_users(active_users: pd.DataFrame) -> pd.DataFrame:
    """Average daily active users in the month."""
    return month_series(active_users.month, active_users.dau, active_users.days)


@metric(
    label="WAU",
    formula="mean over the blocks days 1-7, 8-14, 15-21, 22-28 of users active in the block",
    unit="count",
    direction="higher",
    level="operational",
    cadence="weekly",
    sources=("U",),
    area="usage",
    needs=USAGE,
)
def weekly_active_users(active_users: pd.DataFrame) -> pd.DataFrame:
    """Average weekly active users in the month."""
    return month_series(active_users.month, active_users.wau, active_users.mau)


@metric(
    label="MAU",
    formula="users with at least one event in the month",
    unit="count",
    direction="higher",
    level="supporting",
    sources=("U",),
    area="usage",
    needs=USAGE,
)
def monthly_active_users(active_users: pd.DataFrame) -> pd.DataFrame:
    """Users active at least once in the month."""
    return month_series(active_users.month, active_users.mau, active_users.mau)


@metric(
    label="DAU/MAU",
    formula="mean DAU / MAU of the month",
    unit="fraction",
    direction="higher",
    level="core",
    sources=("U",),
    area="usage",
    target=0.6,
    needs=USAGE,
    long_term_target=0.8,
    target_source="U: B2B SaaS dashboard guide (DAU/MAU 60 % then 80 %)",
    tile=8,
)
def dau_mau_ratio(active_users: pd.DataFrame) -> pd.DataFrame:
    """Product stickiness: the share of monthly users active on an average day."""
    a = active_users
    return month_series(a.month, safe_ratio(a.dau, a.mau), a.mau)


@table(
    schema={
        "cohort_month": "datetime",
        "months_since_start": "int64",
        "cohort_users": "int64",
        "active_users": "int64",
        "retention_rate": "float64",
    },
    needs=USAGE,
)
def user_cohort_retention(user_month_activity: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """User retention triangle: users by month of first activity, share active k months later."""
    # a user's cohort is the month of their first row in the sorted user-months (0.45 -> 0.1 s at 50M events
    # against pandas' drop_duplicates and a group-by of string ids)
    um = user_months(user_month_activity, calendar)
    user, key = pl.col("user_id"), pl.col("key")
    cohort = pl.when((user != user.shift(1)).fill_null(True)).then(key).forward_fill()
    counts = (
        um.group_by(cohort.alias("cohort_month"), (key - cohort).alias("months_since_start"))
        .agg(pl.len().cast(pl.Int64).alias("active_users"))
        .sort("cohort_month", "months_since_start")
        .to_pandas()
    )
    counts["cohort_month"] = months_of(counts.cohort_month)
    cols = ["cohort_month", "months_since_start", "cohort_users", "active_users", "retention_rate"]
    if counts.empty:
        return pd.DataFrame(columns=cols)
    size = counts[counts.months_since_start == 0].set_index("cohort_month").active_users.rename("cohort_users")
    last = month_of(int(calendar["month"].max()))
    full = pd.DataFrame(
        [(c, k) for c in size.index for k in range((last.year - c.year) * 12 + last.month - c.month + 1)],
        columns=["cohort_month", "months_since_start"],
    )
    out = full.join(size, on="cohort_month").merge(counts, on=["cohort_month", "months_since_start"], how="left")
    out["active_users"] = out.active_users.fillna(0).astype("int64")
    out["cohort_users"] = out.cohort_users.astype("int64")
    out["retention_rate"] = safe_ratio(out.active_users, out.cohort_users)
    return out.sort_values(["cohort_month", "months_since_start"]).reset_index(drop=True)[cols]


@table(
    schema={"month": "datetime", "new": "int64", "returning": "int64", "resurrecting": "int64", "dormant": "int64"},
    needs=USAGE,
)
def user_lifecycle(user_month_activity: pd.DataFrame, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Per month: users new (first active month), returning (active within the dormant_after_months before),
    resurrecting (back after being dormant) and gone dormant (inactive for dormant_after_months months since a
    month they were active in; counted in the month that makes it that many)."""
    n = conventions.dormant_after_months
    # each user's months in order with the months before and after, from neighbouring rows (pandas took 1.0 s at
    # 50M events to drop duplicate user-months, sort 1.8M string ids and shift per user; a Polars unique and
    # `over` 1.0 s too)
    um = user_months(user_month_activity, calendar)
    user, key = pl.col("user_id"), pl.col("key")
    prev = pl.when(user == user.shift(1)).then(key.shift(1))
    nxt = pl.when(user == user.shift(-1)).then(key.shift(-1))
    um = um.with_columns(prev=prev, nxt=nxt)
    status = pl.when(pl.col("prev").is_null()).then(pl.lit("new"))
    status = status.when(pl.col("prev") >= key - n).then(pl.lit("returning")).otherwise(pl.lit("resurrecting"))
    active = um.group_by("key", status.alias("status")).agg(pl.len().alias("users"))
    last = int(calendar["month"].max())
    gone = (pl.col("nxt").is_null() | (pl.col("nxt") > key + n)) & (key + n <= last)
    dormant = um.filter(gone).group_by(key + n).agg(pl.len().alias("users")).with_columns(status=pl.lit("dormant"))
    both = pl.concat([active, dormant.select(active.columns)]).to_pandas()
    both["month"] = months_of(both.key)
    wide = both.pivot_table(index="month", columns="status", values="users", aggfunc="sum")
    wide = wide.reindex(columns=["new", "returning", "resurrecting", "dormant"]).fillna(0).astype("int64")
    return wide.reset_index().sort_values("month").reset_index(drop=True)
