"""Cash (issue 25, item 3; page 03's "Cash" section): the cash-flow trough of a cohort of new customers (the
"J curve" of SaaS Metrics 2.0), the company's trough when new business grows at a chosen rate, profit margin by
segment, channel and plan, and the operating margin now and at the mature stage.

Built from the unit-economics ingredients (metrics/unit_economics.py): a segment's CAC over the trailing
unit_economics_window_months, its gross margin per customer by months since the first payment along the
observed revenue retention (`payback_curve`, churned customers counting 0) and its monthly churn.

The cohort cash curve of one new customer: month 0 pays the CAC; month k >= 1 receives the gross margin of the
customer's k-th paying month, so cumulative cash at k = sum of margins of months 1..k - CAC. Beyond the ages
the data has seen, the last observed margin decays at the segment's monthly churn (flagged `extrapolated`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl

from ..frames import empty_frame, month_of, safe_ratio, to_pandas
from ..params import Conventions
from ..sources import Tables
from .registry import metric, table
from .series import month_series, monthly_sum, trailing_sum
from .unit_economics import TOTAL_SPEND_CATEGORIES

SPEND = ("accounts", "subscriptions", "spend")
CURVE_SCHEMA = {
    "segment": "str",
    "month": "int64",
    "customers": "int64",
    "margin_per_customer": "float64",
    "cumulative_cash": "float64",
    "cac": "float64",
    "extrapolated": "bool",
}
SUMMARY_SCHEMA = {
    "segment": "str",
    "cac": "float64",
    "new_customers_per_month": "float64",
    "cumulative_margin": "float64",
    "final_cash": "float64",
    "trough_per_customer": "float64",
    "cohort_trough": "float64",
    "breakeven_month": "float64",
    "observed_months": "int64",
}
TROUGH_SCHEMA = {
    "month": "int64",
    "new_customers": "float64",
    "cash_flow": "float64",
    "cumulative_cash": "float64",
}


# --------------------------------------------------------------------------- cohort J curve
def j_curve(cac: float, margins: np.ndarray) -> np.ndarray:
    """Cumulative cash of one customer at months 0..len(margins): -CAC, then + the margin of each month."""
    return -cac + np.concatenate([[0.0], np.cumsum(margins)])


def extended_margins(observed: np.ndarray, monthly_churn: float, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Margins of months 1..horizon: the observed ones, then the last observed decaying by (1 - churn) a month
    (churn n/a counts as 0); and which months are extrapolated."""
    observed = np.asarray(observed, dtype="float64")[:horizon]
    extra = horizon - len(observed)
    churn = 0.0 if monthly_churn is None or math.isnan(monthly_churn) else min(max(monthly_churn, 0.0), 1.0)
    last = observed[-1] if len(observed) else 0.0
    tail = last * (1 - churn) ** np.arange(1, extra + 1)
    return np.concatenate([observed, tail]), np.arange(horizon) >= len(observed)


@table(schema=CURVE_SCHEMA, needs=SPEND)
def cash_curve(conventions: Conventions, payback_curve: pd.DataFrame, unit_economics: pd.DataFrame) -> pd.DataFrame:
    """Per segment and month 0..cash_horizon_months: cumulative cash of one new customer (CAC paid in month 0,
    gross margin received monthly along the observed revenue retention), customers observed at that age."""
    h = conventions.cash_horizon_months
    seg = unit_economics[unit_economics.level == "segment"].set_index("segment")
    parts = []
    for segment, c in payback_curve.groupby("segment"):
        c = c.sort_values("months_since_start")
        churn = float(seg.monthly_churn.get(segment, np.nan))
        cac = float(seg.cac.get(segment, np.nan))
        margins, extrapolated = extended_margins(c.margin_per_customer.fillna(0.0).to_numpy(), churn, h)
        customers = np.zeros(h + 1, dtype="int64")
        seen = c.customers.to_numpy()[:h]
        customers[1 : len(seen) + 1] = seen
        customers[0] = seen[0] if len(seen) else 0
        parts.append(
            pd.DataFrame(
                {
                    "segment": segment,
                    "month": np.arange(h + 1),
                    "customers": customers,
                    "margin_per_customer": np.concatenate([[0.0], margins]),
                    "cumulative_cash": j_curve(cac, margins),
                    "cac": cac,
                    "extrapolated": np.concatenate([[False], extrapolated]),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else empty_frame(CURVE_SCHEMA)


@table(
    schema=SUMMARY_SCHEMA,
    needs=SPEND,
)
def cash_curve_summary(
    conventions: Conventions, cash_curve: pd.DataFrame, unit_economics: pd.DataFrame
) -> pd.DataFrame:
    """Per segment: CAC, new customers a month (window average), cumulative margin per customer over the horizon,
    the curve's final value (= cumulative margin - CAC), its trough per customer and for a month's cohort, the
    break-even month (first month the cumulative cash is >= 0; n/a within the horizon) and months observed."""
    w = conventions.unit_economics_window_months
    seg = unit_economics[unit_economics.level == "segment"].set_index("segment")
    rows = []
    for segment, c in cash_curve.groupby("segment"):
        cash = c.sort_values("month").cumulative_cash.to_numpy()
        per_month = float(seg.new_customers.get(segment, 0)) / w
        even = np.flatnonzero(cash >= 0)
        trough = float(np.nanmin(cash)) if not np.isnan(cash).all() else math.nan
        rows.append(
            {
                "segment": segment,
                "cac": float(c.cac.iloc[0]),
                "new_customers_per_month": per_month,
                "cumulative_margin": float(c.margin_per_customer.sum()),
                "final_cash": float(cash[-1]),
                "trough_per_customer": trough,
                "cohort_trough": trough * per_month,
                "breakeven_month": float(even[0]) if len(even) else math.nan,
                "observed_months": int((~c.extrapolated).sum() - 1),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_SCHEMA))


# --------------------------------------------------------------------------- company trough
def company_trough(
    curves: dict[str, np.ndarray], starts: dict[str, float], growth: float, horizon: int
) -> pd.DataFrame:
    """The company's new-business cash over months 0..horizon when each segment wins starts[s] x (1 + growth)^t
    new customers in month t, each following its cumulative cash curve curves[s] (months 0..horizon):
    cumulative cash at t = sum over segments and s <= t of n_s(s) x curve_s(t - s)."""
    t = np.arange(horizon + 1)
    total_new = np.zeros(horizon + 1)
    cumulative = np.zeros(horizon + 1)
    for segment, curve in curves.items():
        curve = np.nan_to_num(np.asarray(curve, dtype="float64")[: horizon + 1])
        n = starts.get(segment, 0.0) * (1 + growth) ** t
        total_new += n
        cumulative += np.convolve(n, curve)[: horizon + 1]
    flow = np.diff(cumulative, prepend=0.0)
    return pd.DataFrame({"month": t, "new_customers": total_new, "cash_flow": flow, "cumulative_cash": cumulative})


def trough_facts(trough: pd.DataFrame) -> dict:
    """Depth and month of the trough, and the first month after it when cumulative cash is back to >= 0 (None
    within the horizon)."""
    if trough.empty:
        return {"depth": math.nan, "trough_month": None, "breakeven_month": None}
    cash = trough.cumulative_cash.to_numpy()
    low = int(np.argmin(cash))
    back = [int(m) for m in trough.month.to_numpy()[low:][cash[low:] >= 0] if m > 0]
    return {
        "depth": float(cash[low]),
        "trough_month": int(trough.month.iloc[low]),
        "breakeven_month": back[0] if back else None,
    }


def company_trough_at(
    conventions: Conventions, cash_curve: pd.DataFrame, summary: pd.DataFrame, growth: float
) -> pd.DataFrame:
    """`company_trough` from the segments' cash curves and window new customers, at monthly `growth`."""
    h = conventions.cash_horizon_months
    curves = {s: c.sort_values("month").cumulative_cash.to_numpy() for s, c in cash_curve.groupby("segment")}
    starts = dict(zip(summary.segment, summary.new_customers_per_month))
    return company_trough(curves, starts, growth, h)


@table(schema=TROUGH_SCHEMA, needs=SPEND)
def company_cash_trough(
    conventions: Conventions, cash_curve: pd.DataFrame, cash_curve_summary: pd.DataFrame
) -> pd.DataFrame:
    """Month by month over cash_horizon_months: new customers growing at cash_growth_rate_monthly from the
    window's monthly average, the new business's cash flow and cumulative cash (the company's trough)."""
    return company_trough_at(conventions, cash_curve, cash_curve_summary, conventions.cash_growth_rate_monthly)


# --------------------------------------------------------------------------- profit margin
PROFIT_SCHEMA = {
    "level": "str",
    "group": "str",
    "revenue": "float64",
    "cost_of_service": "float64",
    "acquisition_spend": "float64",
    "profit": "float64",
    "profit_margin": "float64",
}
UNATTRIBUTED = "not attributed"


def _account_plans(tables: Tables) -> pd.Series:
    """Each account's plan: that of its latest subscription ("" without a plan column)."""
    subs = tables.lazy("subscriptions")
    if "plan" not in subs.columns:
        return pd.Series(dtype=object)
    s = to_pandas(subs.select("account_id", "start_date", "subscription_id", "plan"))
    latest = s.sort_values(["start_date", "subscription_id"]).groupby("account_id").plan.last()
    return latest.fillna("").replace("", "no plan").astype(object)


@table(schema=PROFIT_SCHEMA, needs=SPEND)
def profit_margin(
    tables: Tables,
    as_of: int,
    conventions: Conventions,
    allocated_spend: pd.DataFrame,
    account_mrr: pd.DataFrame,
    new_customer_accounts: pd.DataFrame,
    gross_margin_by_month: pd.DataFrame,
) -> pd.DataFrame:
    """Over the trailing unit_economics_window_months, by segment, channel and plan (and the total): revenue (sum
    of month-end MRR), cost of service (revenue x (1 - the window's gross margin): COGS by revenue), acquisition
    spend (S&M attributed to the window, per profit_acquisition_allocation), profit and profit margin = profit /
    revenue. S&M that no group's customer received is its own "not attributed" row, so each level adds up to the
    total."""
    w = conventions.unit_economics_window_months
    window = [month_of(k) for k in range(as_of - w + 1, as_of + 1)]
    g = gross_margin_by_month[gross_margin_by_month.month.isin(window)]
    margin = float(safe_ratio((g.gross_margin * g.revenue).sum(), g.revenue.sum()))
    if math.isnan(margin):
        margin = conventions.default_gross_margin
    owners = new_customer_accounts[["account_id", "segment", "channel"]].copy()
    owners["plan"] = owners.account_id.map(_account_plans(tables)).fillna("no plan").astype(object)
    rev = account_mrr[account_mrr.month.isin(window)].merge(owners, on="account_id", how="left")
    sm = allocated_spend[
        allocated_spend.category.isin(conventions.cac_spend_categories) & allocated_spend.month.isin(window)
    ]
    total_sm = float(sm.amount.sum())
    new = new_customer_accounts[new_customer_accounts.month.isin(window)].merge(
        owners[["account_id", "plan"]], on="account_id"
    )
    rows = []
    for level in ("segment", "channel", "plan"):
        revenue = rev.groupby(level).mrr.sum()
        if conventions.profit_acquisition_allocation == "revenue":
            acq = revenue / revenue.sum() * total_sm if revenue.sum() > 0 else revenue * 0.0
        else:
            acq = _acquisition_by(level, sm, new)
        groups = sorted(set(revenue.index) | set(acq.index))
        for group in groups:
            r, a = float(revenue.get(group, 0.0)), float(acq.get(group, 0.0))
            if r or abs(a) > 1e-9:  # a segment workbook's spend rows of other segments are kept at 0
                rows.append(_profit_row(level, group, r, margin, a))
        rest = total_sm - float(acq.sum())
        if abs(rest) > 1e-6:
            rows.append(_profit_row(level, UNATTRIBUTED, 0.0, margin, rest))
    rows.append(_profit_row("total", "all", float(rev.mrr.sum()), margin, total_sm))
    return pd.DataFrame(rows, columns=list(PROFIT_SCHEMA))


def _acquisition_by(level: str, sm: pd.DataFrame, new: pd.DataFrame) -> pd.Series:
    """S&M charged to the groups of `level`: segment and channel keep the cell the spend was tagged or allocated to
    (as the segment x channel table does); plan splits each segment x channel cell's window spend by the plans of
    the cell's new customers in the window (a cell without one leaves its spend not attributed)."""
    if level in ("segment", "channel"):
        return sm.dropna(subset=[level]).groupby(level).amount.sum()
    cells = sm.dropna(subset=["segment", "channel"]).groupby(["segment", "channel"], as_index=False).amount.sum()
    share = new.groupby(["segment", "channel", "plan"]).size().rename("n").reset_index()
    share["share"] = share.n / share.groupby(["segment", "channel"]).n.transform("sum")
    paid = cells.merge(share, on=["segment", "channel"])
    return (paid.amount * paid.share).groupby(paid.plan).sum()


def _profit_row(level: str, group: str, revenue: float, margin: float, acquisition: float) -> dict:
    cost = revenue * (1 - margin)
    profit = revenue - cost - acquisition
    return {
        "level": level,
        "group": str(group),
        "revenue": revenue,
        "cost_of_service": cost,
        "acquisition_spend": acquisition,
        "profit": profit,
        "profit_margin": float(safe_ratio(profit, revenue)),
    }


# --------------------------------------------------------------------------- operating margin
@metric(
    label="Operating margin",
    formula="(revenue - total spend) / revenue over the trailing three months; revenue = month-end MRR; n/a "
    "unless marketing, sales, COGS, R&D and G&A spend are all in the data",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="unit_economics",
    needs=SPEND,
)
def operating_margin(
    calendar: pl.DataFrame, allocated_spend: pd.DataFrame, mrr_movements: pd.DataFrame
) -> pd.DataFrame:
    """What is left of revenue after every cost, growth spend included."""
    spent = monthly_sum(calendar, allocated_spend, "amount", month="spend_month")
    revenue = pd.Series(mrr_movements.mrr_end.to_numpy(), index=spent.index)
    known = set(TOTAL_SPEND_CATEGORIES) <= set(allocated_spend.category)
    value = safe_ratio(trailing_sum(revenue, 3) - trailing_sum(spent, 3), trailing_sum(revenue, 3))
    return month_series(spent.index, value if known else np.full(len(spent), np.nan), mrr_movements.accounts_end)


@metric(
    label="Operating margin (mature)",
    formula="(revenue - spend other than S&M - logos churned x CAC) / revenue over the trailing three months; "
    "CAC over unit_economics_window_months; n/a unless marketing, sales, COGS, R&D and G&A are all in the data",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="unit_economics",
    needs=SPEND,
    conventions=("cac_spend_categories", "unit_economics_window_months"),
)
def mature_operating_margin(
    calendar: pl.DataFrame,
    conventions: Conventions,
    allocated_spend: pd.DataFrame,
    mrr_movements: pd.DataFrame,
    acquisition_by_month: pd.DataFrame,
) -> pd.DataFrame:
    """The operating margin at the mature stage: growth spend cut to what replaces the customers lost."""
    sm = allocated_spend.category.isin(conventions.cac_spend_categories)
    other = monthly_sum(calendar, allocated_spend[~sm], "amount", month="spend_month")
    revenue = pd.Series(mrr_movements.mrr_end.to_numpy(), index=other.index)
    w = conventions.unit_economics_window_months
    a = acquisition_by_month.set_index("month").reindex(other.index)
    cac = pd.Series(
        safe_ratio(
            a.sm_spend.rolling(w, min_periods=1).sum(), a.new_customers.astype(float).rolling(w, min_periods=1).sum()
        ),
        index=other.index,
    )
    replace = pd.Series(mrr_movements.churned_accounts.to_numpy(dtype="float64"), index=other.index) * cac
    known = set(TOTAL_SPEND_CATEGORIES) <= set(allocated_spend.category)
    value = safe_ratio(
        trailing_sum(revenue, 3) - trailing_sum(other, 3) - trailing_sum(replace, 3), trailing_sum(revenue, 3)
    )
    return month_series(other.index, value if known else np.full(len(other), np.nan), mrr_movements.accounts_end)
