"""Customer success (catalog section 5): voice of the customer. NPS over a trailing window, CSAT."""
from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from ..params import Conventions
from ..sources import Tables
from .registry import metric
from .revenue import _series


def _month_ends(calendar: pl.DataFrame) -> pd.Series:
    return pd.to_datetime(pd.Series(calendar["month_end"].to_list())) + pd.Timedelta(days=1)  # exclusive ends


def _months(calendar: pl.DataFrame) -> pd.Series:
    ends = pd.to_datetime(pd.Series(calendar["month_end"].to_list()))
    return ends - pd.offsets.MonthBegin(1)


@metric(label="NPS", formula="100 x (promoters (9-10) - detractors (0-6)) / responses, over responses in the "
        "nps_window_days ending at the month end; n/a without responses", unit="score", direction="higher",
        level="core", sources=("C", "P", "J"), area="success", conventions=("nps_window_days",),
        needs=("accounts", "subscriptions", "nps_responses"))
def net_promoter_score(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Net Promoter Score of the answers given in the trailing window."""
    r = tables.frames["nps_responses"].select(
        pl.col("responded_at").dt.replace_time_zone(None).cast(pl.Datetime("ns")).alias("at"), "score").to_pandas()
    at, score = r["at"].to_numpy(), r["score"].to_numpy()
    order = np.argsort(at)
    at, score = at[order], score[order]
    promoter = np.concatenate([[0], np.cumsum(score >= 9)])
    detractor = np.concatenate([[0], np.cumsum(score <= 6)])
    ends = _month_ends(calendar).to_numpy()
    starts = ends - np.timedelta64(conventions.nps_window_days, "D")
    hi, lo = np.searchsorted(at, ends, side="left"), np.searchsorted(at, starts, side="left")
    n = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(n > 0, 100.0 * ((promoter[hi] - promoter[lo]) - (detractor[hi] - detractor[lo])) / n, np.nan)
    return _series(_months(calendar), value, n)


@metric(label="CSAT", formula="rated tickets scoring 4-5 of 5 / rated tickets, tickets opened in M", unit="fraction",
        direction="higher", level="core", sources=("C", "P", "J"), area="success", proportion=True,
        needs=("accounts", "subscriptions", "support_tickets"))
def customer_satisfaction(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Share of the month's rated support tickets that the customer rated satisfied (4 or 5)."""
    t = tables.frames["support_tickets"]
    if "csat" not in t.columns:
        t = t.with_columns(pl.lit(None, dtype=pl.Int64).alias("csat"))
    rated = (t.filter(pl.col("csat").is_not_null())
             .with_columns(pl.col("created_at").dt.replace_time_zone(None).dt.truncate("1mo").cast(pl.Datetime("ns"))
                           .alias("month"))
             .group_by("month").agg(pl.len().alias("n"), (pl.col("csat") >= 4).sum().alias("satisfied"))
             .to_pandas().set_index("month"))
    months = _months(calendar)
    n = rated.n.reindex(months).fillna(0).to_numpy()
    satisfied = rated.satisfied.reindex(months).fillna(0).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return _series(months, np.where(n > 0, satisfied / np.where(n > 0, n, 1), np.nan), n)
