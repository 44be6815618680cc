"""Between months (issue 25, item 7): weekly counts of the events a spike alert watches (churned accounts and
their MRR, tickets opened), the monthly ticket volume and the service's uptime from an optional status table.

The spike rule itself (median and MAD of the trailing weeks) is in saaskpi/spikes.py.
"""

from __future__ import annotations

import pandas as pd
import polars as pl

from ..frames import DAY, calendar_months, data_end, month_start, monthly, to_pandas
from ..params import Conventions
from ..sources import Tables
from .registry import metric, table
from .revenue import subscription_mrr
from .series import month_series

WEEKLY = {"metric": "str", "week": "datetime", "value": "float64", "n": "int64"}
# What each weekly count is (saaskpi/spikes.py names them in parameters/alerts.yaml).
WEEKLY_METRICS = {
    "churned_accounts": "accounts that stopped paying (their last subscription ended, none open)",
    "churned_mrr": "MRR of the subscriptions that ended when their account stopped paying",
    "tickets_opened": "support tickets opened",
}


def week_start(stamps: pd.Series) -> pd.Series:
    """The Monday (naive date, UTC) of each timestamp or date's ISO week."""
    s = pd.to_datetime(stamps)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    day = s.dt.normalize()
    return day - pd.to_timedelta(day.dt.day_of_week, unit="D")


def churn_events(tables: Tables, conventions: Conventions) -> pd.DataFrame:
    """Every day an account stopped paying: account_id, date (a subscription's end_date on which no subscription
    of the account is active) and mrr (the monthly value of its subscriptions ending that day)."""
    subs = to_pandas(subscription_mrr(tables, conventions).select("account_id", "start_date", "end_date", "monthly"))
    ends = subs[subs.end_date.notna()]
    ended = ends.groupby(["account_id", "end_date"], as_index=False).monthly.sum()
    both = ended.merge(subs, on="account_id", suffixes=("", "_other"))
    covers = (both.start_date <= both.end_date) & (both.end_date_other.isna() | (both.end_date_other > both.end_date))
    covered = both[covers][["account_id", "end_date"]].drop_duplicates()
    out = ended.merge(covered, on=["account_id", "end_date"], how="left", indicator=True)
    out = out[(out._merge == "left_only") & (out.monthly > 0)]
    return out.rename(columns={"end_date": "date", "monthly": "mrr"})[["account_id", "date", "mrr"]].reset_index(
        drop=True
    )


def _weekly(name: str, weeks: pd.Series, values: pd.Series, all_weeks: pd.DatetimeIndex) -> pd.DataFrame:
    frame = pd.DataFrame({"week": weeks.to_numpy(), "v": values.to_numpy(dtype="float64")})
    g = frame.groupby("week").v
    out = pd.DataFrame({"value": g.sum(), "n": g.size()}).reindex(all_weeks).fillna(0)
    return pd.DataFrame(
        {"metric": name, "week": all_weeks, "value": out.value.to_numpy(), "n": out.n.to_numpy().astype("int64")}
    )


@table(schema=WEEKLY)
def weekly_counts(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Per complete ISO week (Monday to Sunday) of the calendar: churned accounts (value = n = accounts), churned
    MRR (value = MRR lost, n = accounts) and, with support_tickets, tickets opened (value = n = tickets)."""
    end = data_end(calendar).tz_localize(None)
    start = calendar_months(calendar).month.min()
    first = week_start(pd.Series([start])).iloc[0]
    first = first if first >= start else first + 7 * DAY  # the first Monday on or after the calendar's start
    all_weeks = pd.date_range(first, end - 7 * DAY, freq="7D")  # weeks wholly inside the calendar
    churn = churn_events(tables, conventions)
    churn = churn[(churn.date >= first) & (churn.date < end)]
    parts = [
        _weekly("churned_accounts", week_start(churn.date), pd.Series(1.0, index=churn.index), all_weeks),
        _weekly("churned_mrr", week_start(churn.date), churn.mrr, all_weeks),
    ]
    if tables.has("support_tickets"):
        t = to_pandas(tables.lazy("support_tickets").select("created_at"))
        weeks = week_start(t.created_at)
        parts.append(_weekly("tickets_opened", weeks, pd.Series(1.0, index=t.index), all_weeks))
    return pd.concat(parts, ignore_index=True)


@metric(
    label="Tickets opened",
    formula="support tickets created in M",
    unit="count",
    direction="neutral",
    level="operational",
    sources=("C", "U"),
    area="success",
    needs=("accounts", "subscriptions", "support_tickets"),
)
def tickets_opened(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Support ticket volume: tickets opened in the month (its weekly count feeds the spike alerts)."""
    t = to_pandas(tables.lazy("support_tickets").select("created_at"))
    t = t[t.created_at < data_end(calendar)]
    return monthly(calendar, month_start(t.created_at), pd.Series(1.0, index=t.index), "sum")


def downtime_seconds(incidents: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Seconds of [start, end) covered by at least one incident [started_at, ended_at) (overlaps counted once; an
    incident without an end runs to `end`)."""
    spans = sorted(
        (max(s, start), min(e if pd.notna(e) else end, end))
        for s, e in zip(incidents.started_at, incidents.ended_at, strict=True)
    )
    total, cur_s, cur_e = 0.0, None, None
    for s, e in spans:
        if e <= s:
            continue
        if cur_e is None or s > cur_e:
            total += (cur_e - cur_s).total_seconds() if cur_e is not None else 0.0
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    return total + ((cur_e - cur_s).total_seconds() if cur_e is not None else 0.0)


@metric(
    label="Uptime",
    formula="1 - seconds of M inside an incident of service_status (overlaps once) / seconds in M",
    unit="fraction",
    direction="higher",
    level="operational",
    sources=("U",),
    area="success",
    target=0.999,
    target_source="a common SaaS SLA (99.9 %)",
    needs=("accounts", "subscriptions", "service_status"),
    sampled=False,
    tolerance=0.00001,
)
def uptime(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Share of the month the service was up, from the status history (n = incidents touching the month)."""
    inc = to_pandas(tables.lazy("service_status").select("started_at", "ended_at"))
    months = calendar_months(calendar)
    values, counts = [], []
    for m, end in zip(months.month, months.end, strict=True):
        start = m.tz_localize("UTC")
        touching = inc[(inc.started_at < end) & (inc.ended_at.isna() | (inc.ended_at > start))]
        values.append(1 - downtime_seconds(touching, start, end) / (end - start).total_seconds())
        counts.append(len(touching))
    return month_series(months.month, values, counts)
