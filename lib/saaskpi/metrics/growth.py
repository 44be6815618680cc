"""Growth (issue 25): year-over-year ARR growth, trailing-twelve-month growth, the natural rate of growth, the
growth ceiling, months up front and the product-led / sales-led split of new ARR.

Everything but new ARR by channel and months up front is arithmetic on the MRR bridge (`mrr_movements`, one
row per month, its months contiguous from the first subscription), so "12 months before" is 12 rows up.
New ARR is 12 x new MRR: the MRR of accounts in their first paying month (the bridge's `new` movement).
"""

from __future__ import annotations

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import calendar_months, month_key, safe_ratio, to_pandas
from ..params import Conventions
from ..sources import Tables
from .registry import metric, table
from .revenue import account_movements_lazy, net_new, subscription_mrr
from .series import month_series, trailing_sum

YEAR = 12


# --------------------------------------------------------------------------- tables
@table(
    schema={
        "month": "datetime",
        "mrr": "float64",
        "arr": "float64",
        "mrr_yoy": "float64",
        "arr_yoy": "float64",
        "mrr_t12m": "float64",
        "t12m_growth": "float64",
        "net_new_mrr": "float64",
        "net_new_mrr_yoy": "float64",
    }
)
def growth_yoy(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Year-over-year growth per month: MRR and ARR against the same month a year before (the same rate: ARR is
    12 x MRR), the sum of the trailing twelve months' MRR against the twelve before (n/a until the data
    has 13, resp. 24 months), and the month's net new MRR against the same month's a year before (n/a when
    that was not a gain: a growth rate of a loss or of nothing says nothing)."""
    m = mrr_movements.reset_index(drop=True)
    mrr = m.mrr_end.astype("float64")
    year_ago = mrr.shift(YEAR)
    t12m = trailing_sum(mrr, YEAR)
    net = net_new(m)
    net_ago = net.shift(YEAR)
    return pd.DataFrame(
        {
            "month": m.month,
            "mrr": mrr,
            "arr": 12 * mrr,
            "mrr_yoy": safe_ratio(mrr - year_ago, year_ago),
            "arr_yoy": safe_ratio(12 * mrr - 12 * year_ago, 12 * year_ago),
            "mrr_t12m": t12m,
            "t12m_growth": safe_ratio(t12m - t12m.shift(YEAR), t12m.shift(YEAR)),
            "net_new_mrr": net,
            "net_new_mrr_yoy": safe_ratio(net - net_ago, net_ago.where(net_ago > 0)),
        }
    )


@table(schema={"month": "datetime", "channel": "str", "new_arr": "float64", "new_accounts": "int64"})
def new_arr_by_channel(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """New ARR (12 x the MRR of accounts in their first paying month) and new accounts per month and
    acquisition channel (an account without one: "unknown")."""
    moves = account_movements_lazy(tables, calendar, conventions).filter(nw.col("new") > 0)
    channels = tables.lazy("accounts").select(
        "account_id", nw.col("acquisition_channel").fill_null("unknown").alias("channel")
    )
    grouped = (
        moves.join(channels, on="account_id", how="left")
        .with_columns(nw.col("channel").fill_null("unknown"))
        .group_by("month", "channel")
        .agg((nw.col("new") * 12).sum().alias("new_arr"), nw.col("account_id").count().alias("new_accounts"))
    )
    return to_pandas(grouped, sort=["month", "channel"])


@table(
    schema={
        "month": "datetime",
        "new_arr": "float64",
        "plg_new_arr": "float64",
        "sales_led_new_arr": "float64",
        "organic_new_arr": "float64",
        "new_accounts": "int64",
    }
)
def new_arr_split(new_arr_by_channel: pd.DataFrame, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """New ARR per month split by motion: product-led (channels in `plg_channels`) and sales-led (every other
    channel, so the two add up to new ARR), and the organic part (channels in `organic_channels`)."""
    c = new_arr_by_channel
    plg = c.channel.isin(conventions.plg_channels)
    organic = c.channel.isin(conventions.organic_channels)
    by_month = pd.DataFrame(
        {
            "month": c.month,
            "new_arr": c.new_arr,
            "plg_new_arr": c.new_arr.where(plg, 0.0),
            "sales_led_new_arr": c.new_arr.where(~plg, 0.0),
            "organic_new_arr": c.new_arr.where(organic, 0.0),
            "new_accounts": c.new_accounts,
        }
    )
    sums = by_month.groupby("month").sum()
    out = calendar_months(calendar)[["month"]].join(sums, on="month").fillna(0.0)
    out["new_accounts"] = out.new_accounts.astype("int64")
    return out.reset_index(drop=True)


@table(
    schema={
        "month": "datetime",
        "arr": "float64",
        "new_arr_per_month": "float64",
        "churn_rate": "float64",
        "net_new_arr_per_month": "float64",
        "ceiling_arr": "float64",
        "months_to_ceiling": "float64",
    }
)
def growth_ceiling(mrr_movements: pd.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """The growth ceiling per month (SaaS Metrics 2.0): the ARR at which the ARR lost each month (churn and
    contraction, at the current monthly churn rate) equals the new ARR won each month, and the months to get
    there at the current net new ARR. "Current" is the average over `growth_rate_months` months up to the month;
    no ceiling (n/a) while that churn rate is 0; months n/a when net new ARR is not positive, 0 at or above it."""
    m = mrr_movements.reset_index(drop=True)
    k = conventions.growth_rate_months
    new = trailing_sum(12 * m.new, k) / k
    lost = trailing_sum(m.churn + m.contraction, k)
    start = trailing_sum(m.mrr_start, k)
    rate = pd.Series(safe_ratio(lost, start))
    net = trailing_sum(12 * net_new(m), k) / k
    ceiling = pd.Series(safe_ratio(new, rate))  # churn rate 0: no ceiling (NaN)
    arr = 12 * m.mrr_end
    gap = ceiling - arr
    months = pd.Series(np.where(gap <= 0, 0.0, safe_ratio(gap, net.where(net > 0))))
    months = months.where(ceiling.notna())
    return pd.DataFrame(
        {
            "month": m.month,
            "arr": arr,
            "new_arr_per_month": new,
            "churn_rate": rate,
            "net_new_arr_per_month": net,
            "ceiling_arr": ceiling,
            "months_to_ceiling": months,
        }
    )


@table(schema={"month": "datetime", "months_plain": "float64", "months_weighted": "float64", "n": "int64"})
def months_up_front_by_month(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Months paid up front at signing, per month: the billing_period_months of each new customer's first paid
    subscriptions (those starting on its first paid start date), averaged plainly and weighted by their MRR;
    months without a new customer are n/a."""
    subs = subscription_mrr(tables, conventions).filter(nw.col("monthly") > 0)
    first = subs.group_by("account_id").agg(nw.col("start_date").min().alias("first_start"))
    signed = (
        subs.join(first, on="account_id")
        .filter(nw.col("start_date") == nw.col("first_start"))
        .with_columns(month_key(nw.col("start_date")).alias("month"))
        .with_columns((nw.col("billing_period_months") * nw.col("monthly")).alias("weighted"))
    )
    grouped = signed.group_by("month").agg(
        nw.col("billing_period_months").cast(nw.Float64).sum().alias("periods"),
        nw.col("weighted").sum(),
        nw.col("monthly").sum(),
        nw.col("account_id").count().alias("n"),
    )
    got = to_pandas(grouped, sort=["month"])
    out = calendar_months(calendar)[["month"]].merge(got, on="month", how="left")
    n = out.n.fillna(0)
    return pd.DataFrame(
        {
            "month": out.month,
            "months_plain": safe_ratio(out.periods, n),
            "months_weighted": safe_ratio(out.weighted, out.monthly),
            "n": n.astype("int64"),
        }
    )


# --------------------------------------------------------------------------- metrics
@metric(
    label="New MRR",
    formula="MRR at the end of M of accounts paying for the first time (the bridge's new movement)",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def new_mrr(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """MRR won from new customers in the month (n: new customers)."""
    m = mrr_movements
    return month_series(m.month, m.new, m.new_accounts)


def _against_a_year_before(growth_yoy: pd.DataFrame, column: str, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """A year-over-year column of growth_yoy as a metric series, n: the accounts paying a year before."""
    return month_series(growth_yoy.month, growth_yoy[column], mrr_movements.accounts_end.shift(YEAR).fillna(0))


@metric(
    label="Net new MRR growth (year over year)",
    formula="(net new MRR_M - net new MRR_M-12) / net new MRR_M-12; n/a for the first 12 months and when "
    "net new MRR_M-12 was not positive",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def net_new_mrr_growth_yoy(growth_yoy: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """The month's net new MRR against the same month's a year before ("net new MRR is up 25 % over June of last
    year"; n: paying accounts a year before)."""
    return _against_a_year_before(growth_yoy, "net_new_mrr_yoy", mrr_movements)


@metric(
    label="ARR growth (year over year)",
    formula="(ARR_M - ARR_M-12) / ARR_M-12 (= MRR growth year over year, as ARR = 12 x MRR); n/a for the "
    "first 12 months",
    unit="fraction",
    direction="higher",
    level="core",
    sources=("S",),
    area="revenue",
)
def arr_growth_yoy(growth_yoy: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """ARR at month end against the same month a year before (n: paying accounts a year before)."""
    return _against_a_year_before(growth_yoy, "arr_yoy", mrr_movements)


@metric(
    label="Trailing-12-month MRR growth",
    formula="sum of MRR over M-11..M / sum of MRR over M-23..M-12 - 1; n/a until 24 months of data",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def trailing_twelve_month_growth(growth_yoy: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Recurring revenue of the last twelve months against the twelve before (smooths a single month's swing)."""
    g = growth_yoy
    return month_series(g.month, g.t12m_growth, mrr_movements.accounts_end)


@metric(
    label="Natural rate of growth",
    formula="ARR growth year over year x organic new ARR over M-11..M / new ARR over M-11..M; organic = "
    "accounts whose acquisition_channel is in organic_channels",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
    conventions=("organic_channels",),
)
def natural_rate_of_growth(arr_growth_yoy: pd.DataFrame, new_arr_split: pd.DataFrame) -> pd.DataFrame:
    """The part of the year's ARR growth that organic channels brought, the growth without paid acquisition or
    sales (n: new customers in the twelve months)."""
    s = new_arr_split
    organic = trailing_sum(s.organic_new_arr, YEAR)
    total = trailing_sum(s.new_arr, YEAR)
    share = pd.Series(safe_ratio(organic, total))
    return month_series(s.month, arr_growth_yoy.value.to_numpy() * share, trailing_sum(s.new_accounts, YEAR).fillna(0))


@metric(
    label="PLG share of new ARR",
    formula="new ARR of accounts whose acquisition_channel is in plg_channels / new ARR, in M "
    "(the rest is sales-led); n/a without new ARR",
    unit="fraction",
    direction="neutral",
    level="supporting",
    sources=("S",),
    area="revenue",
    conventions=("plg_channels",),
)
def plg_share_of_new_arr(new_arr_split: pd.DataFrame) -> pd.DataFrame:
    """How much of the month's new ARR came product-led (self-serve) rather than sales-led (n: new customers)."""
    s = new_arr_split
    return month_series(s.month, safe_ratio(s.plg_new_arr, s.new_arr), s.new_accounts)


@metric(
    label="Growth ceiling (ARR)",
    formula="new ARR per month / monthly churn rate, both averaged over growth_rate_months; monthly churn rate = "
    "(churn + contraction) / MRR at start; n/a (no ceiling) when that rate is 0",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
    conventions=("growth_rate_months",),
)
def growth_ceiling_arr(growth_ceiling: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """The ARR at which the ARR churned each month equals the new ARR won each month, at current rates: growth
    stalls there unless new ARR grows or churn falls (n: paying accounts)."""
    g = growth_ceiling
    return month_series(g.month, g.ceiling_arr, mrr_movements.accounts_end)


@metric(
    label="Months to the growth ceiling",
    formula="(growth ceiling - ARR) / net new ARR per month averaged over growth_rate_months; 0 at or above the "
    "ceiling; n/a without a ceiling or when net new ARR is not positive",
    unit="months",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
    conventions=("growth_rate_months",),
)
def months_to_growth_ceiling(growth_ceiling: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Months until ARR reaches its growth ceiling if it kept growing by the current net new ARR each month
    (a straight line: the real approach slows as churn grows with ARR, so this is the soonest)."""
    g = growth_ceiling
    return month_series(g.month, g.months_to_ceiling, mrr_movements.accounts_end)


@metric(
    sampled=True,
    label="Months up front",
    formula="mean billing_period_months of new customers' first paid subscriptions starting in M",
    unit="months",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def months_up_front(months_up_front_by_month: pd.DataFrame) -> pd.DataFrame:
    """Average months a new customer pays for at signing (n: new subscriptions); more up front funds growth."""
    u = months_up_front_by_month
    return month_series(u.month, u.months_plain, u.n)


@metric(
    sampled=True,
    label="Months up front (MRR-weighted)",
    formula="sum of billing_period_months x MRR / sum of MRR, over new customers' first paid subscriptions "
    "starting in M",
    unit="months",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def months_up_front_weighted(months_up_front_by_month: pd.DataFrame) -> pd.DataFrame:
    """Months paid up front at signing, weighted by each new subscription's MRR (what the cash actually does)."""
    u = months_up_front_by_month
    return month_series(u.month, u.months_weighted, u.n)
