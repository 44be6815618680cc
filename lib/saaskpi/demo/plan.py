"""The demo company's plan (issue 25): a budget made at the start of the demo's last year, for that year's twelve
months, per segment and for the company ("all"): MRR, new MRR, logo churn and CAC. The company's MRR and new MRR
plans are the segments' added up.

The budget is what a finance team would have written from the year before it: MRR growing from its last actual
at the recent monthly growth rate, new MRR at the recent average growing alike, logo churn a little better
than the year's average, CAC at the year's. Each month's step is drawn around those rates, so the year's actuals
come out above plan in some months and below in others. The plan has its own random stream
(`np.random.default_rng([seed, 25])`): every other demo table stays byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .company import period_months
from .config import SEGMENTS, DemoScale

PLAN_MONTHS = 12  # the budget covers the demo's last twelve months
GROWTH_MONTHS = 6  # recent growth: the six months before the budget
STREAM = 25  # the plan's own random stream (issue 25)
MONEY = ("monthly_recurring_revenue", "new_mrr", "customer_acquisition_cost")


def _monthly_values(subs: pd.DataFrame, fx: pd.DataFrame, months: pd.PeriodIndex) -> pd.DataFrame:
    """MRR per account at each month end (columns: months), with the reference (latest) FX rates."""
    latest = fx.sort_values("month").groupby("currency").rate_to_reporting.last().to_dict() | {"USD": 1.0}
    mrr = subs.amount / subs.billing_period_months * (1 - subs.discount_pct) * subs.currency.map(latest)
    start, end = pd.to_datetime(subs.start_date), pd.to_datetime(subs.end_date)
    out = {}
    for m in months:
        day = m.end_time.normalize()
        on = (start <= day) & (end.isna() | (end > day))
        out[m] = mrr[on].groupby(subs.account_id[on]).sum()
    return pd.DataFrame(out).fillna(0.0)


def _actuals(accounts, subs, fx, spend, months) -> dict[str, pd.DataFrame]:
    """Per segment ("all" included): MRR, new MRR, logo churn and CAC by month (index: months)."""
    segment_of = accounts.set_index("account_id").segment
    per_account = _monthly_values(subs, fx, months)
    paying = per_account > 0
    ever = paying.cummax(axis=1)
    first = paying & ~ever.shift(1, axis=1, fill_value=False)
    churned = paying.shift(1, axis=1, fill_value=False) & ~paying
    sm = spend[spend.category.isin(["marketing", "sales"])].copy()
    sm["period"] = pd.to_datetime(sm.month).dt.to_period("M")
    out = {}
    for seg in ["all", *(s.name for s in SEGMENTS)]:
        rows = per_account.index if seg == "all" else per_account.index[segment_of.reindex(per_account.index) == seg]
        spent = (sm if seg == "all" else sm[sm.segment == seg]).groupby("period").amount.sum().reindex(months)
        new_accounts = first.loc[rows].sum()
        out[seg] = pd.DataFrame(
            {
                "mrr": per_account.loc[rows].sum(),
                "new_mrr": per_account.loc[rows].where(first.loc[rows], 0.0).sum(),
                "churn": churned.loc[rows].sum() / paying.loc[rows].shift(1, axis=1, fill_value=False).sum(),
                "new_accounts": new_accounts,
                "spend": spent.fillna(0.0).to_numpy(),
            },
            index=months,
        )
    return out


def plan_frame(
    accounts: pd.DataFrame, subs: pd.DataFrame, fx: pd.DataFrame, spend: pd.DataFrame, sc: DemoScale, seed: int
) -> pd.DataFrame:
    """The plan table (metric, segment, month, value) for the demo's last PLAN_MONTHS months."""
    rng = np.random.default_rng([seed, STREAM])
    months = period_months(sc)
    actual = _actuals(accounts, subs, fx, spend, months)
    n = min(PLAN_MONTHS, len(months) // 2)  # a short demo (the tests' tiny one) plans its second half
    budget_months, before = months[-n:], months[:-n]
    year, k = before[-12:], min(GROWTH_MONTHS, len(before) - 1)
    rows = []
    totals = np.zeros((2, n))  # the company's MRR and new MRR plans: the segments' plans added up
    for seg in [*(s.name for s in SEGMENTS), "all"]:
        a = actual[seg]
        base = a.loc[before]
        last = float(base.mrr.iloc[-1])
        first = float(base.mrr.iloc[-1 - k])
        growth = (last / first) ** (1 / k) - 1 if first > 0 and last > 0 else 0.0
        new_base = float(base.new_mrr.iloc[-k:].mean())
        churn = float(a.loc[year].churn.fillna(0).mean()) * 0.9  # the budget expects churn to improve by a tenth
        cac = float(a.loc[year].spend.sum() / max(a.loc[year].new_accounts.sum(), 1))
        steps = growth * rng.uniform(0.85, 1.25, n)
        mrr = last * np.cumprod(1 + steps)
        new = new_base * np.cumprod(1 + steps) * rng.uniform(0.9, 1.1, n)
        if seg == "all":
            mrr, new = totals
        else:
            totals += (mrr, new)
        for i, m in enumerate(budget_months):
            month = m.start_time.strftime("%Y-%m-%d")
            rows += [
                ("monthly_recurring_revenue", seg, month, mrr[i]),
                ("new_mrr", seg, month, new[i]),
                ("customer_churn_rate", seg, month, churn * rng.uniform(0.9, 1.1)),
                ("customer_acquisition_cost", seg, month, cac * rng.uniform(0.92, 1.05)),
            ]
    return pd.DataFrame(rows, columns=["metric", "segment", "month", "value"])


def write_plan(
    folder: Path, accounts: pd.DataFrame, subs: pd.DataFrame, fx: pd.DataFrame, spend: pd.DataFrame, sc, seed: int
) -> None:
    """Write plan.csv into `folder` (money to the cent, rates to four decimals)."""
    plan = plan_frame(accounts, subs, fx, spend, sc, seed)
    text = [f"{v:.2f}" if m in MONEY else f"{v:.4f}" for m, v in zip(plan.metric, plan.value)]
    plan.assign(value=text).to_csv(folder / "plan.csv", index=False, lineterminator="\n")
