"""Recurring revenue (catalog section 1): MRR, its movements, churn, retention, quick ratio, LTV.

The heavy step (subscriptions x month ends -> MRR per account and month, then each account's
movement) is Narwhals lazy code, identical on Polars, DuckDB and Spark. What leaves the engine
is one row per account and month (`account_mrr`) and one row per month (`mrr_movements`); the
ratios below are plain arithmetic on those small tables.
"""

from __future__ import annotations

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import safe_ratio, to_pandas
from ..params import Conventions
from ..sources import Tables
from .registry import metric, table
from .series import month_series

MRR_DECIMALS = 6  # account MRR is rounded so that engines' float sums compare equal


def reference_fx_rates(tables: Tables, conventions: Conventions) -> pl.DataFrame:
    """One reference rate per currency (the latest or earliest month in fx_rates); reporting currency = 1."""
    own = pl.DataFrame({"currency": [conventions.reporting_currency], "rate": [1.0]})
    if not tables.has("fx_rates"):
        return own
    fx = tables.frames["fx_rates"].filter(pl.col("currency") != conventions.reporting_currency)
    pick = pl.col("month").max() if conventions.fx_reference == "latest" else pl.col("month").min()
    ref = (
        fx.filter(pl.col("month") == pick.over("currency"))
        .group_by("currency")
        .agg(pl.col("rate_to_reporting").first().alias("rate"))
    )
    return pl.concat([own, ref]).sort("currency")


def subscription_mrr(tables: Tables, conventions: Conventions) -> nw.LazyFrame:
    """Each subscription with its monthly value in the reporting currency (`monthly`)."""
    fx = tables.from_polars(reference_fx_rates(tables, conventions))
    subs = tables.lazy("subscriptions").join(fx, on="currency", how="left")
    monthly = nw.col("amount") / nw.col("billing_period_months") * (1 - nw.col("discount_pct")) * nw.col("rate")
    return subs.with_columns(monthly=monthly)


def account_mrr_lazy(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> nw.LazyFrame:
    """MRR per account at each month end where it is positive (lazy)."""
    months = tables.from_polars(calendar)
    active = (
        subscription_mrr(tables, conventions)
        .join(months, how="cross")
        .filter(
            (nw.col("start_date") <= nw.col("month_end"))
            & (nw.col("end_date").is_null() | (nw.col("end_date") > nw.col("month_end")))
        )
    )
    return (
        active.group_by("account_id", "month")
        .agg(nw.col("monthly").sum().alias("mrr"))
        .with_columns(nw.col("mrr").round(MRR_DECIMALS))
        .filter(nw.col("mrr") > 0)
    )


def account_movements_lazy(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> nw.LazyFrame:
    """Every paying-at-some-point account x month with MRR now and before, and its movement amounts."""
    mrr = account_mrr_lazy(tables, calendar, conventions)
    grid = mrr.select("account_id").unique().join(tables.from_polars(calendar.select("month")), how="cross")
    by_account = {"order_by": "month"}
    acc = (
        grid.join(mrr, on=["account_id", "month"], how="left")
        .with_columns(nw.col("mrr").fill_null(0.0))
        .with_columns(paying=(nw.col("mrr") > 0).cast(nw.Int64))
        .with_columns(
            prev=nw.col("mrr").shift(1).over("account_id", **by_account).fill_null(0.0),
            paid_months=nw.col("paying").cum_sum().over("account_id", **by_account),
        )
    )
    gain = (nw.col("prev") == 0) & (nw.col("mrr") > 0)
    paid_before = (nw.col("paid_months") - nw.col("paying")) > 0
    zero = nw.lit(0.0)
    return acc.with_columns(
        new=nw.when(gain & ~paid_before).then(nw.col("mrr")).otherwise(zero),
        reactivation=nw.when(gain & paid_before).then(nw.col("mrr")).otherwise(zero),
        expansion=nw.when((nw.col("prev") > 0) & (nw.col("mrr") > nw.col("prev")))
        .then(nw.col("mrr") - nw.col("prev"))
        .otherwise(zero),
        contraction=nw.when((nw.col("mrr") > 0) & (nw.col("mrr") < nw.col("prev")))
        .then(nw.col("prev") - nw.col("mrr"))
        .otherwise(zero),
        churn=nw.when((nw.col("prev") > 0) & (nw.col("mrr") == 0)).then(nw.col("prev")).otherwise(zero),
    )


@table(schema={"account_id": "str", "month": "datetime", "mrr": "float64"})
def account_mrr(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """MRR of each account at each month end where it pays (account_id, month, mrr)."""
    return to_pandas(account_mrr_lazy(tables, calendar, conventions), sort=["account_id", "month"])


@table(
    schema={
        "month": "datetime",
        "mrr_start": "float64",
        "new": "float64",
        "expansion": "float64",
        "contraction": "float64",
        "churn": "float64",
        "reactivation": "float64",
        "mrr_end": "float64",
        "accounts_start": "int64",
        "new_accounts": "int64",
        "churned_accounts": "int64",
        "reactivated_accounts": "int64",
        "expansion_accounts": "int64",
        "contraction_accounts": "int64",
        "accounts_end": "int64",
    }
)
def mrr_movements(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """The MRR bridge per month: start, new, expansion, contraction, churn, reactivation, end, and account counts."""
    acc = account_movements_lazy(tables, calendar, conventions)
    count = lambda cond: cond.cast(nw.Int64).sum()  # noqa: E731
    bridge = acc.group_by("month").agg(
        nw.col("prev").sum().alias("mrr_start"),
        nw.col("new").sum(),
        nw.col("expansion").sum(),
        nw.col("contraction").sum(),
        nw.col("churn").sum(),
        nw.col("reactivation").sum(),
        nw.col("mrr").sum().alias("mrr_end"),
        count(nw.col("prev") > 0).alias("accounts_start"),
        count(nw.col("new") > 0).alias("new_accounts"),
        count(nw.col("churn") > 0).alias("churned_accounts"),
        count(nw.col("reactivation") > 0).alias("reactivated_accounts"),
        count(nw.col("expansion") > 0).alias("expansion_accounts"),
        count(nw.col("contraction") > 0).alias("contraction_accounts"),
        count(nw.col("mrr") > 0).alias("accounts_end"),
    )
    out = to_pandas(bridge, sort=["month"])
    full = pd.DataFrame(
        {
            "month": pd.to_datetime(
                {"year": calendar["month"].to_numpy() // 12, "month": calendar["month"].to_numpy() % 12 + 1, "day": 1}
            )
        }
    )
    out = full.merge(out, on="month", how="left").fillna(0)
    money = ["mrr_start", "new", "expansion", "contraction", "churn", "reactivation", "mrr_end"]
    counts = [c for c in out.columns if c.endswith("accounts") or c.startswith("accounts")]
    out[counts] = out[counts].astype("int64")
    return out[
        [
            "month",
            *money,
            "accounts_start",
            "new_accounts",
            "churned_accounts",
            "reactivated_accounts",
            "expansion_accounts",
            "contraction_accounts",
            "accounts_end",
        ]
    ]


# --------------------------------------------------------------------------- size
@metric(
    label="MRR",
    formula="sum over paying accounts of month-end MRR; MRR of a subscription = amount / "
    "billing_period_months x (1 - discount_pct) x reference FX rate",
    unit="currency",
    direction="higher",
    level="core",
    sources=("S", "U"),
    area="revenue",
    conventions=("reporting_currency", "fx_reference"),
    tile=1,
)
def monthly_recurring_revenue(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Monthly recurring revenue at month end, in the reporting currency."""
    return month_series(mrr_movements.month, mrr_movements.mrr_end, mrr_movements.accounts_end)


@metric(
    label="ARR",
    formula="12 x MRR",
    unit="currency",
    direction="higher",
    level="core",
    sources=("S",),
    area="revenue",
    conventions=("reporting_currency",),
    tile=2,
)
def annual_recurring_revenue(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Annual recurring revenue at month end (12 x MRR)."""
    return month_series(mrr_movements.month, 12 * mrr_movements.mrr_end, mrr_movements.accounts_end)


@metric(
    label="Paying accounts",
    formula="accounts with MRR > 0 at month end",
    unit="count",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def paying_accounts(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Accounts paying at month end."""
    return month_series(mrr_movements.month, mrr_movements.accounts_end, mrr_movements.accounts_end)


@metric(
    sampled=True,
    label="ARPA",
    formula="MRR / paying accounts",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def average_revenue_per_account(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Average MRR per paying account at month end."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(m.mrr_end, m.accounts_end), m.accounts_end)


@metric(
    label="MRR growth",
    formula="(MRR_M - MRR_M-1) / MRR_M-1",
    unit="fraction",
    direction="higher",
    level="core",
    sources=("U",),
    area="revenue",
    target=0.15,
    target_source="U: B2B SaaS dashboard guide (MRR growth 15 % short term)",
)
def mrr_growth_rate(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Month-over-month growth of MRR."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(m.mrr_end - m.mrr_start, m.mrr_start), m.accounts_start)


@metric(
    label="Net new MRR",
    formula="new + expansion + reactivation - contraction - churn",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def net_new_mrr(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Change of MRR over the month, the sum of the bridge's movements."""
    m = mrr_movements
    return month_series(m.month, net_new(m), m.accounts_end)


def net_new(movements: pd.DataFrame) -> pd.Series:
    """Net new MRR of each row of an MRR bridge: new + expansion + reactivation - contraction - churn."""
    m = movements
    return (m.new + m.expansion + m.reactivation - m.contraction - m.churn).astype("float64")


# --------------------------------------------------------------------------- churn
@metric(
    label="Logo churn (monthly)",
    formula="accounts with a churn movement in M / paying accounts at end of M-1",
    unit="fraction",
    direction="lower",
    level="core",
    sources=("S", "J"),
    area="revenue",
    proportion=True,
    tile=5,
)
def customer_churn_rate(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Share of the accounts paying at the start of the month that stopped paying in it."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(m.churned_accounts, m.accounts_start), m.accounts_start)


@metric(
    label="Logo churn (annualised)",
    formula="1 - (1 - monthly logo churn)^12",
    unit="fraction",
    direction="lower",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def annualised_customer_churn_rate(customer_churn_rate: pd.DataFrame) -> pd.DataFrame:
    """Monthly logo churn compounded over twelve months."""
    c = customer_churn_rate
    return month_series(c.month, 1 - (1 - c.value) ** 12, c.n)


@metric(
    label="Gross MRR churn",
    formula="(churn + contraction) / MRR at end of M-1",
    unit="fraction",
    direction="lower",
    level="core",
    sources=("S",),
    area="revenue",
)
def gross_mrr_churn_rate(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """MRR lost to churn and contraction, as a share of starting MRR."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(m.churn + m.contraction, m.mrr_start), m.accounts_start)


def _net_churn_amount(m: pd.DataFrame, conventions: Conventions) -> pd.Series:
    offset = m.reactivation if conventions.reactivation_offsets_churn else 0.0
    return m.churn + m.contraction - m.expansion - offset


@metric(
    label="Net MRR churn",
    formula="(churn + contraction - expansion - reactivation) / MRR at end of M-1; "
    "reactivation left out when reactivation_offsets_churn is false",
    unit="fraction",
    direction="lower",
    level="core",
    sources=("S", "J"),
    area="revenue",
    target=0.02,
    conventions=("reactivation_offsets_churn",),
    target_source="S: SaaS Metrics 2.0 (net MRR churn below 2 % a month)",
    tile=6,
)
def net_mrr_churn_rate(mrr_movements: pd.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """MRR lost net of expansion, as a share of starting MRR (negative = net negative churn)."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(_net_churn_amount(m, conventions), m.mrr_start), m.accounts_start)


@metric(
    label="Net negative churn",
    formula="expansion + reactivation - churn - contraction (MRR); positive = existing customers grew",
    unit="currency",
    direction="higher",
    level="core",
    sources=("J",),
    area="revenue",
    target=0.0,
    conventions=("reactivation_offsets_churn",),
)
def net_negative_churn(mrr_movements: pd.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """MRR gained from existing customers net of what they took away; above zero is net negative churn."""
    m = mrr_movements
    return month_series(m.month, -_net_churn_amount(m, conventions), m.accounts_start)


@metric(
    label="MRR expansion rate",
    formula="expansion / MRR at end of M-1",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("J",),
    area="revenue",
)
def mrr_expansion_rate(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Expansion MRR as a share of starting MRR."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(m.expansion, m.mrr_start), m.accounts_start)


@metric(
    label="Expansion revenue",
    formula="expansion MRR x 12",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="revenue",
)
def expansion_revenue(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Annualised revenue added by existing customers' upgrades in the month."""
    m = mrr_movements
    return month_series(m.month, 12 * m.expansion, m.expansion_accounts)


@metric(
    label="Expansion share of ARR",
    formula="expansion MRR x 12 / ARR",
    unit="fraction",
    direction="higher",
    level="operational",
    sources=("S",),
    area="revenue",
)
def expansion_share_of_arr(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Expansion revenue as a share of ARR at month end."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(m.expansion, m.mrr_end), m.accounts_end)


# --------------------------------------------------------------------------- retention
@metric(
    label="NRR (monthly)",
    formula="(MRR_start + expansion - contraction - churn) / MRR_start",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S", "C"),
    area="revenue",
    target=1.0,
)
def net_revenue_retention_monthly(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Share of starting MRR kept by the same accounts one month later, expansion included."""
    m = mrr_movements
    return month_series(
        m.month, safe_ratio(m.mrr_start + m.expansion - m.contraction - m.churn, m.mrr_start), m.accounts_start
    )


@metric(
    label="GRR (monthly)",
    formula="(MRR_start - contraction - churn) / MRR_start",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S", "C"),
    area="revenue",
)
def gross_revenue_retention_monthly(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Share of starting MRR kept one month later, expansion excluded."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(m.mrr_start - m.contraction - m.churn, m.mrr_start), m.accounts_start)


def trailing_twelve_month_retention(account_mrr: pd.DataFrame) -> pd.DataFrame:
    """Per month M: base MRR at M-12 of the accounts paying then, their MRR at M, and the min of both."""
    if account_mrr.empty:
        return pd.DataFrame(columns=["month", "base_mrr", "mrr_now", "kept_mrr", "base_accounts"])
    wide = account_mrr.pivot_table(index="account_id", columns="month", values="mrr", aggfunc="sum")
    months = pd.date_range(wide.columns.min(), wide.columns.max(), freq="MS")
    wide = wide.reindex(columns=months).fillna(0.0).to_numpy()
    rows = []
    for j in range(12, len(months)):
        base, now = wide[:, j - 12], wide[:, j]
        cohort = base > 0
        rows.append(
            (months[j], base[cohort].sum(), now[cohort].sum(), np.minimum(base, now)[cohort].sum(), cohort.sum())
        )
    return pd.DataFrame(rows, columns=["month", "base_mrr", "mrr_now", "kept_mrr", "base_accounts"])


@metric(
    label="NRR (trailing 12 months)",
    formula="MRR at end of M of the accounts paying at end of M-12 / their MRR at end of M-12",
    unit="fraction",
    direction="higher",
    level="north_star",
    sources=("S", "C", "J"),
    area="revenue",
    target=1.0,
    tile=3,
)
def net_revenue_retention(account_mrr: pd.DataFrame) -> pd.DataFrame:
    """Net revenue retention over twelve months: what last year's customers pay now per dollar they paid then."""
    t = trailing_twelve_month_retention(account_mrr)
    return month_series(t.month, safe_ratio(t.mrr_now, t.base_mrr), t.base_accounts)


@metric(
    label="GRR (trailing 12 months)",
    formula="sum of min(MRR_M, MRR_M-12) over accounts paying at end of M-12 / their MRR at end of M-12",
    unit="fraction",
    direction="higher",
    level="core",
    sources=("S", "C"),
    area="revenue",
    target=0.9,
    tile=4,
)
def gross_revenue_retention(account_mrr: pd.DataFrame) -> pd.DataFrame:
    """Gross revenue retention over twelve months: last year's revenue kept, upgrades not counted."""
    t = trailing_twelve_month_retention(account_mrr)
    return month_series(t.month, safe_ratio(t.kept_mrr, t.base_mrr), t.base_accounts)


@metric(
    label="SaaS quick ratio",
    formula="(new + expansion + reactivation) / (churn + contraction); n/a when nothing was lost",
    unit="ratio",
    direction="higher",
    level="supporting",
    sources=("C", "S"),
    area="revenue",
    target=4.0,
    conventions=("quick_ratio_includes_reactivation",),
    tile=7,
)
def saas_quick_ratio(mrr_movements: pd.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """MRR gained per unit of MRR lost in the month."""
    m = mrr_movements
    gained = m.new + m.expansion + (m.reactivation if conventions.quick_ratio_includes_reactivation else 0.0)
    return month_series(m.month, safe_ratio(gained, m.churn + m.contraction), m.accounts_start)


# --------------------------------------------------------------------------- lifetime value
@metric(
    sampled=True,
    label="LTV",
    formula="ARPA of M x gross margin of M / the mean monthly logo churn of the "
    "ltv_churn_window_months months M-w+1..M (ltv_churn_window_includes_current true) or M-w..M-1 (false, "
    "ChartMogul's trailing average); n/a when that churn is 0 or the data has fewer months; gross margin from "
    "COGS, default_gross_margin without COGS",
    unit="currency",
    direction="higher",
    level="core",
    sources=("S", "C"),
    area="unit_economics",
    conventions=("ltv_churn_window_months", "ltv_churn_window_includes_current", "default_gross_margin"),
    tile=4,
)
def customer_lifetime_value(
    mrr_movements: pd.DataFrame,
    customer_churn_rate: pd.DataFrame,
    gross_margin_by_month: pd.DataFrame,
    conventions: Conventions,
) -> pd.DataFrame:
    """Gross margin an average account brings over its expected life (simple formula)."""
    m = mrr_movements
    w = conventions.ltv_churn_window_months
    lag = 0 if conventions.ltv_churn_window_includes_current else 1
    churn = customer_churn_rate.value.rolling(w, min_periods=w).mean().shift(lag)
    exposed = m.accounts_start.rolling(w, min_periods=w).sum().shift(lag)
    arpa = safe_ratio(m.mrr_end, m.accounts_end)
    return month_series(
        m.month, safe_ratio(arpa * gross_margin_by_month.gross_margin.to_numpy(), churn), exposed.fillna(0)
    )
