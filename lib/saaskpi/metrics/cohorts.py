"""Cohort retention (catalog section 3): logo and revenue triangles, Kaplan-Meier survival, survival LTV.

Everything here starts from `account_mrr` (one row per paying account and month), already
collected from the engine; triangles are built on that small long table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..frames import key_of, month_of, safe_ratio, to_pandas
from ..params import Conventions
from ..sources import Tables
from .registry import metric, table
from .series import month_series


def _keyed(account_mrr: pd.DataFrame) -> pd.DataFrame:
    out = account_mrr.copy()
    out["k"] = out.month.dt.year * 12 + out.month.dt.month - 1
    return out


def first_spells(account_mrr: pd.DataFrame, as_of: int) -> pd.DataFrame:
    """Each paying account's first unbroken run of paying month ends: cohort key and last paying month key."""
    if account_mrr.empty:
        return pd.DataFrame(columns=["account_id", "cohort", "last"])
    a = _keyed(account_mrr[account_mrr.month <= month_of(as_of)]).sort_values(["account_id", "k"])
    first = a.groupby("account_id").k.transform("min")
    # a spell continues while months are consecutive: month key - row number == first month key
    spell = a[a.k - a.groupby("account_id").cumcount() == first]
    return spell.groupby("account_id").agg(cohort=("k", "min"), last=("k", "max")).reset_index()


def spells_at(spells: pd.DataFrame, as_of: int) -> pd.DataFrame:
    """First spells as seen at month `as_of`: months paid until first churn, churned or still paying (censored)."""
    seen = spells[spells.cohort <= as_of]
    return pd.DataFrame(
        {
            "account_id": seen.account_id,
            "cohort": seen.cohort,
            "duration": np.minimum(seen["last"], as_of) - seen.cohort + 1,
            "churned": seen["last"] < as_of,
        }
    )


def account_spells(account_mrr: pd.DataFrame, as_of: int) -> pd.DataFrame:
    """Each paying account's first spell at `as_of`: cohort key, months paid until its first churn, churned or censored."""
    return spells_at(first_spells(account_mrr, as_of), as_of)


def _triangle(account_mrr: pd.DataFrame, as_of: int, groups: pd.DataFrame | None) -> pd.DataFrame:
    a = _keyed(account_mrr[account_mrr.month <= month_of(as_of)])
    start = a.groupby("account_id").k.min().rename("cohort")
    a = a.join(start, on="account_id")
    a["months_since_start"] = a.k - a.cohort
    start_mrr = a[a.months_since_start == 0].set_index("account_id").mrr.rename("start_mrr")
    a = a.join(start_mrr, on="account_id")
    keys = ["cohort"]
    if groups is not None:
        a = a.merge(groups, on="account_id", how="left")
        keys = [groups.columns[1], "cohort"]
    size = (
        a[a.months_since_start == 0]
        .groupby(keys)
        .agg(cohort_accounts=("account_id", "nunique"), cohort_mrr=("mrr", "sum"))
    )
    alive = (
        a.groupby([*keys, "months_since_start"])
        .agg(retained_accounts=("account_id", "nunique"), mrr=("mrr", "sum"))
        .reset_index()
    )
    # every (cohort, k) up to as_of, zero where nobody was left
    full = size.reset_index()
    full = full.loc[full.index.repeat(as_of - full.cohort + 1)].copy()
    full["months_since_start"] = full.groupby(keys).cumcount()
    out = full.merge(alive, on=[*keys, "months_since_start"], how="left").fillna({"retained_accounts": 0, "mrr": 0.0})
    out["cohort_month"] = [month_of(k) for k in out.cohort]
    out["retained_accounts"] = out.retained_accounts.astype("int64")
    out["cohort_accounts"] = out.cohort_accounts.astype("int64")
    out["retention_rate"] = safe_ratio(out.retained_accounts, out.cohort_accounts)
    out["revenue_retention"] = safe_ratio(out.mrr, out.cohort_mrr)
    return (
        out.drop(columns="cohort")
        .sort_values([*keys[:-1], "cohort_month", "months_since_start"])
        .reset_index(drop=True)
    )


def cohort_triangle(
    account_mrr: pd.DataFrame, as_of: int, accounts: pd.DataFrame | None = None, by: str | None = None
) -> pd.DataFrame:
    """Long cohort table (optionally per `by` column of accounts): counts, MRR and both retention rates."""
    cols = [
        "cohort_month",
        "months_since_start",
        "cohort_accounts",
        "retained_accounts",
        "retention_rate",
        "cohort_mrr",
        "mrr",
        "revenue_retention",
    ]
    if by is not None:
        cols = [by, *cols]
    if account_mrr.empty:
        return pd.DataFrame(columns=cols)
    groups = accounts[["account_id", by]] if by is not None and accounts is not None else None
    return _triangle(account_mrr, as_of, groups)[cols]


def weighted_average_retention(
    triangle: pd.DataFrame, rate: str = "retention_rate", by: str | None = None
) -> pd.DataFrame:
    """The cohort-size-weighted average row (per `by` group): per months_since_start, sum retained / sum cohort size."""
    num, den = ("retained_accounts", "cohort_accounts") if rate == "retention_rate" else ("mrr", "cohort_mrr")
    keys = [by, "months_since_start"] if by else ["months_since_start"]
    g = triangle.groupby(keys)[[num, den]].sum().reset_index()
    g[rate] = safe_ratio(g[num], g[den])
    return g


@table(
    schema={
        "cohort_month": "datetime",
        "months_since_start": "int64",
        "cohort_accounts": "int64",
        "retained_accounts": "int64",
        "retention_rate": "float64",
    }
)
def cohort_logo_retention(account_mrr: pd.DataFrame, as_of: int) -> pd.DataFrame:
    """Logo retention triangle: share of each first-paid-month cohort still paying k months later."""
    t = cohort_triangle(account_mrr, as_of)
    return t[["cohort_month", "months_since_start", "cohort_accounts", "retained_accounts", "retention_rate"]]


@table(
    schema={
        "cohort_month": "datetime",
        "months_since_start": "int64",
        "cohort_accounts": "int64",
        "cohort_mrr": "float64",
        "mrr": "float64",
        "revenue_retention": "float64",
    }
)
def cohort_revenue_retention(account_mrr: pd.DataFrame, as_of: int) -> pd.DataFrame:
    """Revenue retention triangle: cohort MRR k months after start over its starting MRR (can exceed 100 %)."""
    t = cohort_triangle(account_mrr, as_of)
    return t[["cohort_month", "months_since_start", "cohort_accounts", "cohort_mrr", "mrr", "revenue_retention"]]


def survival_curve(spells: pd.DataFrame) -> pd.DataFrame:
    """Kaplan-Meier (product-limit) estimate of months paid until first churn, censored when still paying: one row
    per month 0 and per distinct spell length with `survival` S(t) after the churns at t, the product of
    1 - churned at t / at risk at t over every t up to it, and `at_risk` (spells lasting at least t). The point
    estimate alone, without scipy (1 s to import in every kernel that only needs a lifetime); `kaplan_meier` adds
    the band."""
    duration = spells.duration.to_numpy(dtype="float64")
    churned = spells.churned.to_numpy(dtype=bool)
    months = np.unique(np.r_[0.0, duration])
    at_risk = (duration[None, :] >= months[:, None]).sum(axis=1)
    ended = (churned[None, :] & (duration[None, :] == months[:, None])).sum(axis=1)
    survival = np.cumprod(1 - ended / np.maximum(at_risk, 1))
    return pd.DataFrame({"months": months.astype("int64"), "survival": survival, "at_risk": at_risk.astype("int64")})


def kaplan_meier(spells: pd.DataFrame) -> pd.DataFrame:
    """`survival_curve` with its 95 % band (exponential Greenwood, "log-log", from scipy). scipy leaves the band
    undefined where S is 1 or 0; it collapses onto the estimate there (as lifelines, the former oracle, did)."""
    from scipy import stats  # imported when a curve is drawn: an app kernel showing other pages does without it

    curve = survival_curve(spells)
    duration = spells.duration.to_numpy(dtype="float64")
    churned = spells.churned.to_numpy(dtype=bool)
    months, survival = curve.months.to_numpy(dtype="float64"), curve.survival.to_numpy()
    fit = stats.ecdf(stats.CensoredData(uncensored=duration[churned], right=duration[~churned])).sf
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The confidence interval is undefined", RuntimeWarning)
        band = fit.confidence_interval(0.95, method="log-log")
    return curve.assign(
        lower=np.where(np.isnan(low := band.low.evaluate(months)), survival, low),
        upper=np.where(np.isnan(high := band.high.evaluate(months)), survival, high),
    )[["months", "survival", "lower", "upper", "at_risk"]]


def restricted_mean(curve: pd.DataFrame, horizon: float) -> float:
    """Area under the survival step function from 0 to `horizon` (the last value carries on to it)."""
    starts = curve.months.to_numpy(dtype="float64")
    ends = np.minimum(np.r_[starts[1:], np.inf], horizon)
    return float(np.sum(curve.survival.to_numpy() * np.clip(ends - starts, 0, None)))


@table(
    schema={
        "segment": "str",
        "months": "int64",
        "survival": "float64",
        "lower": "float64",
        "upper": "float64",
        "at_risk": "int64",
    }
)
def logo_survival(account_mrr: pd.DataFrame, tables: Tables, as_of: int) -> pd.DataFrame:
    """Kaplan-Meier share of accounts still paying after k months, per segment, with a 95 % band."""
    spells = account_spells(account_mrr, as_of).merge(
        to_pandas(tables.lazy("accounts").select("account_id", "segment")), on="account_id", how="left"
    )
    parts = [kaplan_meier(group).assign(segment=segment) for segment, group in spells.groupby("segment", sort=True)]
    cols = ["segment", "months", "survival", "lower", "upper", "at_risk"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def expected_lifetime_months(spells: pd.DataFrame, horizon: int) -> float:
    """Kaplan-Meier expected months paid, truncated at `horizon` (restricted mean survival time)."""
    return float("nan") if spells.empty else restricted_mean(survival_curve(spells), horizon)


@metric(
    sampled=True,
    label="LTV (survival)",
    formula="Kaplan-Meier expected lifetime in months (truncated at ltv_horizon_months) "
    "x ARPA x gross margin (of the month, from COGS or default_gross_margin)",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S", "C"),
    area="unit_economics",
    conventions=("ltv_horizon_months", "default_gross_margin"),
    tile=5,
)
def survival_lifetime_value(
    account_mrr: pd.DataFrame,
    mrr_movements: pd.DataFrame,
    gross_margin_by_month: pd.DataFrame,
    conventions: Conventions,
) -> pd.DataFrame:
    """Gross margin an average account brings over its Kaplan-Meier expected life, truncated at the horizon."""
    m = mrr_movements
    spells = first_spells(account_mrr, key_of(m.month.max())) if len(m) else first_spells(account_mrr, 0)
    values, ns = [], []
    for month in m.month:
        seen = spells_at(spells, key_of(month))
        values.append(expected_lifetime_months(seen, conventions.ltv_horizon_months))
        ns.append(len(seen))
    arpa = safe_ratio(m.mrr_end, m.accounts_end)
    return month_series(m.month, np.asarray(values) * arpa * gross_margin_by_month.gross_margin.to_numpy(), ns)
