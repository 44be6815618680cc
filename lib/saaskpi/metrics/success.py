"""Customer success (catalog section 5): voice of the customer. NPS over a trailing window, CSAT."""
from __future__ import annotations

import pandas as pd
import polars as pl

from ..frames import calendar_months, month_start, monthly, safe_ratio
from ..params import Conventions
from ..sources import Tables
from .registry import metric
from .revenue import _series


def nps_counts(tables: Tables, start: pd.Timestamp, end: pd.Timestamp, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """NPS answers given in [start, end) (UTC): n, promoters (9-10), detractors (0-6) and nps, per `by` columns."""
    answers = tables.frames["nps_responses"].filter(
        (pl.col("responded_at") >= start.to_pydatetime()) & (pl.col("responded_at") < end.to_pydatetime()))
    counts = [pl.len().cast(pl.Int64).alias("n"), (pl.col("score") >= 9).cast(pl.Int64).sum().alias("promoters"),
              (pl.col("score") <= 6).cast(pl.Int64).sum().alias("detractors")]
    out = (answers.group_by(list(by)).agg(counts) if by else answers.select(counts)).to_pandas()
    out["nps"] = safe_ratio(100 * (out.promoters - out.detractors), out.n)
    return out


@metric(label="NPS", formula="100 x (promoters (9-10) - detractors (0-6)) / responses, over responses in the "
        "nps_window_days ending at the month end; n/a without responses", unit="score", direction="higher",
        level="core", sources=("C", "P", "J"), area="success", conventions=("nps_window_days",),
        needs=("accounts", "subscriptions", "nps_responses"))
def net_promoter_score(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Net Promoter Score of the answers given in the trailing window."""
    window = pd.Timedelta(days=conventions.nps_window_days)
    months = calendar_months(calendar)
    counts = pd.concat([nps_counts(tables, end - window, end) for end in months.end], ignore_index=True)
    return _series(months.month, counts.nps, counts.n)


@metric(label="CSAT", formula="rated tickets scoring 4-5 of 5 / rated tickets, tickets opened in M", unit="fraction",
        direction="higher", level="core", sources=("C", "P", "J"), area="success", proportion=True,
        needs=("accounts", "subscriptions", "support_tickets"))
def customer_satisfaction(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Share of the month's rated support tickets that the customer rated satisfied (4 or 5)."""
    t = tables.frames["support_tickets"]
    if "csat" not in t.columns:
        return monthly(calendar, pd.Series([], dtype="datetime64[ns]"), pd.Series([], dtype="float64"), "mean")
    rated = t.filter(pl.col("csat").is_not_null()).select("created_at", "csat").to_pandas()
    return monthly(calendar, month_start(rated.created_at), rated.csat >= 4, "mean")
