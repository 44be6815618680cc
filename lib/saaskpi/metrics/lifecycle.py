"""Customer success (catalog section 5): every paying account at every month end, its lifecycle stage
and its renewals. `account_months` is the panel the health score, the CS load and the account
benchmarks are built on: one row per account paying at a month end.
"""

from __future__ import annotations

from collections.abc import Callable

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import empty_frame, lookup, month_of, safe_ratio, to_pandas
from ..params import Conventions
from ..sources import Tables
from .registry import metric, table
from .series import month_series

STAGES = ("onboarding", "training", "adopting", "extending", "renewal")


def _add_months(dates: pd.Series, months: np.ndarray) -> pd.Series:
    """`dates` plus whole `months`, the day clipped to the target month's length (like pd.DateOffset)."""
    index = dates.dt.year.to_numpy() * 12 + dates.dt.month.to_numpy() - 1 + months
    first = pd.to_datetime({"year": index // 12, "month": index % 12 + 1, "day": 1})
    day = np.minimum(dates.dt.day.to_numpy(), first.dt.days_in_month.to_numpy())
    return pd.Series((first + pd.to_timedelta(day - 1, unit="D")).to_numpy(), index=dates.index)


def subscriptions_at_month_ends(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Every subscription active at every month end (month key, month_end as a date), with its seats."""
    subs = tables.lazy("subscriptions")
    seats = nw.col("seats") if "seats" in subs.columns else nw.lit(None, dtype=nw.Int64)
    active = (
        subs.select("account_id", "start_date", "end_date", "billing_period_months", seats.alias("seats"))
        .join(tables.from_polars(calendar.rename({"month": "key"})), how="cross")
        .filter(
            (nw.col("start_date") <= nw.col("month_end"))
            & (nw.col("end_date").is_null() | (nw.col("end_date") > nw.col("month_end")))
        )
    )
    out = to_pandas(active).rename(columns={"key": "month"})
    for col in ("start_date", "end_date", "month_end"):
        out[col] = pd.to_datetime(out[col])
    return out


def term_ends(active: pd.DataFrame) -> pd.Series:
    """End of the current term (exclusive) of each active contract at its month end: start + k x period
    months, the first such date after the month end (the month after the end's month at the earliest), or the
    contract's end date when that comes first."""
    start, end = active.start_date, active.month_end
    period = active.billing_period_months.to_numpy().astype("int64")
    elapsed = (end.dt.year - start.dt.year).to_numpy() * 12 + (end.dt.month - start.dt.month).to_numpy()
    terms = elapsed // period + 1
    due = _add_months(start, terms * period)
    return due.where(active.end_date.isna() | (active.end_date >= due), active.end_date)


@table(
    schema={
        "account_id": "str",
        "month": "datetime",
        "key": "int64",
        "segment": "str",
        "csm_id": "str",
        "mrr": "float64",
        "seats": "float64",
        "age_months": "int64",
        "term_end": "datetime",
        "days_to_renewal": "float64",
    },
    export=False,
)
def account_months(
    tables: Tables,
    calendar: pl.DataFrame,
    conventions: Conventions,
    account_mrr: pd.DataFrame,
    new_customer_accounts: pd.DataFrame,
) -> pd.DataFrame:
    """Every account paying at a month end: segment, CSM, MRR, seats, months since its first paying month,
    and the end of its current term when it has a contract of 12 months or more (days from the month end)."""
    cols = [
        "account_id",
        "month",
        "key",
        "segment",
        "csm_id",
        "mrr",
        "seats",
        "age_months",
        "term_end",
        "days_to_renewal",
    ]
    if account_mrr.empty:  # nobody pays: an empty panel with the column types the other tables expect
        return empty_frame(
            {
                "account_id": object,
                "month": "datetime64[ns]",
                "key": "int64",
                "segment": object,
                "csm_id": object,
                "mrr": "float64",
                "seats": "float64",
                "age_months": "int64",
                "term_end": "datetime64[ns]",
                "days_to_renewal": "float64",
            }
        )
    out = account_mrr[["account_id", "month", "mrr"]].copy()
    out["key"] = (out.month.dt.year * 12 + out.month.dt.month - 1).astype("int64")
    first = new_customer_accounts.set_index("account_id")
    out["segment"] = out.account_id.map(first.segment)
    first_key = first.month.dt.year * 12 + first.month.dt.month - 1
    out["age_months"] = (out.key - lookup(out.account_id, first_key)).astype("int64")
    out["csm_id"] = out.account_id.map(account_csms(tables)).astype(object)
    active = subscriptions_at_month_ends(tables, calendar)
    seats = active.groupby(["account_id", "month"]).seats.sum(min_count=1).rename("seats")
    long = active[active.billing_period_months >= 12]
    if len(long):
        long = long.assign(term_end=term_ends(long))
        terms = long.groupby(["account_id", "month"]).agg(
            term_end=("term_end", "min"), month_end=("month_end", "first")
        )
    else:
        terms = pd.DataFrame(
            columns=["term_end", "month_end"], index=pd.MultiIndex.from_tuples([], names=["account_id", "month"])
        )
    keyed = out.set_index(["account_id", "key"])
    keyed = keyed.join(seats.rename_axis(["account_id", "key"])).join(terms.rename_axis(["account_id", "key"]))
    keyed["days_to_renewal"] = (pd.to_datetime(keyed.term_end) - pd.to_datetime(keyed.month_end)).dt.days
    out = keyed.reset_index()
    out["seats"] = out.seats.astype("float64")
    out["term_end"] = pd.to_datetime(out.term_end)
    return out[cols].sort_values(["key", "account_id"]).reset_index(drop=True)


def account_months_at(account_months: pd.DataFrame, key: int) -> pd.DataFrame:
    """The panel's rows for one month key."""
    return account_months[account_months.key == key].reset_index(drop=True)


# --------------------------------------------------------------------------- lifecycle
@table(
    schema={
        "account_id": "str",
        "key": "int64",
        "month": "datetime",
        "segment": "str",
        "csm_id": "str",
        "stage": "str",
        "age_months": "int64",
        "utilisation": "float64",
        "months_in_stage": "int64",
    },
    export=False,
)
def account_stages(
    conventions: Conventions, account_months: pd.DataFrame, account_measures: pd.DataFrame
) -> pd.DataFrame:
    """Each paying account's lifecycle stage at each month end, and the months it has been in that stage:
    renewal (a contract term ends within renewal_window_days) wins; else onboarding and training by months
    since the first paying month, extending when licence utilisation reaches extending_utilisation, else adopting."""
    c = conventions
    p = account_months
    utilisation = (
        p[["account_id", "key"]]
        .merge(account_measures[["account_id", "key", "licence_utilisation"]], on=["account_id", "key"], how="left")
        .licence_utilisation
    )
    stage = np.select(
        [
            p.days_to_renewal.le(c.renewal_window_days).to_numpy(),
            (p.age_months < c.onboarding_months).to_numpy(),
            (p.age_months < c.training_months).to_numpy(),
            (utilisation >= c.extending_utilisation).to_numpy(),
        ],
        ["renewal", "onboarding", "training", "extending"],
        default="adopting",
    )
    out = pd.DataFrame(
        {
            "account_id": p.account_id,
            "key": p.key,
            "month": p.month,
            "segment": p.segment,
            "csm_id": p.csm_id,
            "stage": stage,
            "age_months": p.age_months,
            "utilisation": utilisation.to_numpy(),
        }
    ).sort_values(["account_id", "key"])
    # months in the current stage: a run continues while the account pays in consecutive months in one stage
    new_run = (
        (out.account_id != out.account_id.shift()) | (out.key != out.key.shift() + 1) | (out.stage != out.stage.shift())
    )
    out["months_in_stage"] = out.groupby(new_run.cumsum()).cumcount() + 1
    return out.sort_values(["key", "account_id"]).reset_index(drop=True)


@table(
    schema={
        "account_id": "str",
        "segment": "str",
        "csm_id": "str",
        "stage": "str",
        "age_months": "int64",
        "utilisation": "float64",
        "months_in_stage": "int64",
    }
)
def lifecycle_stages(as_of: int, account_stages: pd.DataFrame) -> pd.DataFrame:
    """Each paying account's lifecycle stage at the workbook's month end, with months in that stage."""
    cols = ["account_id", "segment", "csm_id", "stage", "age_months", "utilisation", "months_in_stage"]
    return account_stages[account_stages.key == as_of][cols].reset_index(drop=True)


@table(schema={"month": "datetime", "stage": "str", "accounts": "int64", "mean_months_in_stage": "float64"})
def lifecycle_by_month(account_stages: pd.DataFrame) -> pd.DataFrame:
    """Per month and lifecycle stage: paying accounts in it and their mean months in the stage so far."""
    grid = pd.MultiIndex.from_product([sorted(account_stages.month.unique()), STAGES], names=["month", "stage"])
    agg = account_stages.groupby(["month", "stage"]).agg(
        accounts=("account_id", "size"), mean_months_in_stage=("months_in_stage", "mean")
    )
    out = agg.reindex(grid).reset_index()
    out["accounts"] = out.accounts.fillna(0).astype("int64")
    return out


# --------------------------------------------------------------------------- renewals
@table(
    schema={
        "account_id": "str",
        "account_name": "str",
        "segment": "str",
        "csm_id": "str",
        "term_end": "datetime",
        "days_to_renewal": "float64",
        "arr": "float64",
        "health": "float64",
        "band": "str",
    }
)
def renewals_due(
    as_of: int, conventions: Conventions, account_months: pd.DataFrame, compute_if_available: Callable, tables: Tables
) -> pd.DataFrame:
    """Accounts whose contract term ends within renewal_window_days of the month end: term end, days to it,
    ARR, CSM, and their health score and band when the health score can be computed."""
    now = account_months_at(account_months, as_of)
    due = now[now.days_to_renewal <= conventions.renewal_window_days].copy()
    due["arr"] = due.mrr * 12
    health = compute_if_available("account_health")
    if health is not None and len(health):
        h = health.set_index("account_id")
        due["health"], due["band"] = due.account_id.map(h.health), due.account_id.map(h.band)
    else:
        due["health"], due["band"] = np.nan, "n/a"
    names = account_names(tables)
    due["account_name"] = due.account_id.map(names).fillna(due.account_id)
    cols = ["account_id", "account_name", "segment", "csm_id", "term_end", "days_to_renewal", "arr", "health", "band"]
    return due.sort_values(["days_to_renewal", "account_id"])[cols].reset_index(drop=True)


def account_names(tables: Tables) -> pd.Series:
    """Display name of each account (its id when the name is missing), indexed by account_id."""
    acc = tables.lazy("accounts")
    name = nw.coalesce("account_name", "account_id") if "account_name" in acc.columns else nw.col("account_id")
    return to_pandas(acc.select("account_id", name.alias("name"))).set_index("account_id").name


def account_csms(tables: Tables) -> pd.Series:
    """Each account's CSM (`accounts.csm_id`, missing without one), indexed by account_id; empty without the
    column."""
    acc = tables.lazy("accounts")
    if "csm_id" not in acc.columns:
        return pd.Series(dtype=object)
    return to_pandas(acc.select("account_id", "csm_id")).set_index("account_id").csm_id


@table(schema={"month": "datetime", "due": "int64", "renewed": "int64"}, export=False)
def renewal_outcomes(account_months: pd.DataFrame) -> pd.DataFrame:
    """Per month: accounts whose contract term ended in it (they paid at the month end before and their
    term end falls in this month) and how many of them still paid at this month end (renewed)."""
    p = account_months
    ends = p.dropna(subset=["term_end"])
    ends = ends[ends.term_end.dt.year * 12 + ends.term_end.dt.month - 1 == ends.key + 1]  # ends in the next month
    paying = pd.MultiIndex.from_arrays([p.account_id, p.key])
    renewed = pd.MultiIndex.from_arrays([ends.account_id, ends.key + 1]).isin(paying)
    out = pd.DataFrame({"key": ends.key + 1, "due": 1, "renewed": renewed.astype("int64")})
    keys = sorted(p.key.unique())
    agg = out.groupby("key")[["due", "renewed"]].sum().reindex(keys, fill_value=0)
    agg.index = [month_of(k) for k in agg.index]
    return agg.rename_axis("month").reset_index()


@metric(
    label="Renewals due",
    formula="paying accounts whose contract term ends within renewal_window_days of the month end",
    unit="count",
    direction="neutral",
    level="operational",
    sources=("P",),
    area="success",
    conventions=("renewal_window_days",),
    window="renewal_window_days",
    tile=2,
)
def renewals_due_count(conventions: Conventions, account_months: pd.DataFrame) -> pd.DataFrame:
    """Accounts up for renewal soon, so that CSMs can plan for them."""
    due = account_months[account_months.days_to_renewal <= conventions.renewal_window_days]
    months = sorted(account_months.month.unique())
    count = due.groupby("month").size().reindex(months, fill_value=0)
    return month_series(months, count.to_numpy(), count.to_numpy())


@metric(
    label="ARR up for renewal",
    formula="12 x MRR of the accounts whose contract term ends within renewal_window_days",
    unit="currency",
    direction="neutral",
    level="operational",
    sources=("P",),
    area="success",
    conventions=("renewal_window_days",),
    window="renewal_window_days",
)
def renewals_due_arr(conventions: Conventions, account_months: pd.DataFrame) -> pd.DataFrame:
    """Annual recurring revenue whose renewal comes up soon."""
    due = account_months[account_months.days_to_renewal <= conventions.renewal_window_days]
    months = sorted(account_months.month.unique())
    arr = (due.groupby("month").mrr.sum() * 12).reindex(months, fill_value=0.0)
    count = due.groupby("month").size().reindex(months, fill_value=0)
    return month_series(months, arr.to_numpy(), count.to_numpy())


@metric(
    label="Renewal rate",
    formula="accounts paying at the end of M whose contract term ended in M / accounts whose term ended in M",
    unit="fraction",
    direction="higher",
    level="core",
    sources=("P",),
    area="success",
    proportion=True,
    tile=1,
)
def renewal_rate(renewal_outcomes: pd.DataFrame) -> pd.DataFrame:
    """Share of contracts up for renewal in the month that renewed."""
    r = renewal_outcomes
    return month_series(r.month, safe_ratio(r.renewed, r.due), r.due)


@metric(
    label="Renewals minus churn",
    formula="renewed accounts in M - churned accounts in M",
    unit="count",
    direction="higher",
    level="supporting",
    sources=("P",),
    area="success",
)
def renewals_minus_churn(renewal_outcomes: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """The CS team's retention KPI: renewals won less logos lost in the month."""
    m = mrr_movements.merge(renewal_outcomes, on="month", how="left").fillna({"renewed": 0, "due": 0})
    return month_series(m.month, m.renewed - m.churned_accounts, m.due + m.churned_accounts)
