"""Churn reasons and expansion (issue 25, item 5): churn and contraction MRR by the reason recorded in the optional
`churn_reasons` table (an exit survey), expansion MRR split into upsell and cross-sell by the subscriptions'
`plan`, and the expansion candidates shown beside the at-risk list on page 04.

- A churn or contraction movement of month M (mrr_movements, per account) takes the reason recorded for its
  account nearest to M: a reason recorded inside M is at distance 0, one recorded before M's first day or after
  its last day at that many days; the nearest within `churn_reason_window_days` (customer_success.yaml) wins (a
  tie: the later answer, then the reason's name). Otherwise the movement's reason is "no reason recorded".
  Reasons are grouped in lower case with outer spaces trimmed; the input is never changed.
- Upsell and cross-sell split an account's expansion MRR of a month (its MRR rise, the account paying at both
  month ends): cross-sell is the MRR of plans (`subscriptions.plan`) the account did not pay for at the previous
  month end, when it kept every plan it had (a plan added beside the ones it keeps: a new product line), capped
  at the expansion; the rest is upsell (more seats, a higher price, or a new plan that replaced one: an upgrade).
  Without a `plan` column every expansion is upsell.
"""

from __future__ import annotations

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import empty_frame, lookup, month_of, safe_ratio, to_pandas
from ..params import Conventions, SuccessSettings
from ..sources import Tables
from .lifecycle import account_names
from .registry import metric, table
from .revenue import account_movements_lazy, subscription_mrr
from .series import month_series

NO_REASON = "no reason recorded"
REASONS = ("accounts", "subscriptions", "churn_reasons")
TRAILING_MONTHS = 12  # the by-segment table sums the movements of the 12 months to the workbook's month
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation")


# --------------------------------------------------------------------------- per-account movements
@table(
    schema={
        "account_id": "str",
        "month": "datetime",
        "segment": "str",
        "mrr_start": "float64",
        "mrr_end": "float64",
        "new": "float64",
        "expansion": "float64",
        "contraction": "float64",
        "churn": "float64",
        "reactivation": "float64",
    },
    export=False,
)
def account_movements(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Each account's MRR movements in every month it paid at the start or the end of: the rows mrr_movements
    sums (MRR at the end of M-1 and of M, new, expansion, contraction, churn, reactivation), with its segment."""
    acc = account_movements_lazy(tables, calendar, conventions).filter((nw.col("prev") > 0) | (nw.col("mrr") > 0))
    seg = tables.lazy("accounts").select("account_id", "segment")
    out = acc.join(seg, on="account_id", how="left").select(
        "account_id",
        "month",
        "segment",
        nw.col("prev").alias("mrr_start"),
        nw.col("mrr").alias("mrr_end"),
        *MOVEMENTS,
    )
    return to_pandas(out, sort=["month", "account_id"])


# --------------------------------------------------------------------------- churn reasons
def normalised_reason(reason: pd.Series) -> pd.Series:
    """Reasons as they are grouped: lower case, outer spaces trimmed; empty is 'no reason recorded'."""
    text = reason.fillna("").astype(str).str.strip().str.lower()
    return text.where(text != "", NO_REASON)


def recorded_reasons(tables: Tables) -> pd.DataFrame:
    """The churn_reasons rows (account_id, recorded_on, reason normalised, comment); none without the table."""
    cols = {"account_id": "str", "recorded_on": "datetime", "reason": "str", "comment": "str"}
    if not tables.has("churn_reasons"):
        return empty_frame(cols)
    t = tables.lazy("churn_reasons")
    comment = nw.col("comment") if "comment" in t.columns else nw.lit(None, dtype=nw.String)
    out = to_pandas(t.select("account_id", "recorded_on", "reason", comment.alias("comment")))
    out["reason"] = normalised_reason(out.reason)
    out["recorded_on"] = pd.to_datetime(out.recorded_on)
    return out


def match_reasons(moves: pd.DataFrame, reasons: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """For each row of `moves` (account_id, month), the reason recorded for its account nearest to the month within
    `window_days` (reason, comment, recorded_on), aligned with `moves`; 'no reason recorded' where none is."""
    out = pd.DataFrame(
        {"reason": NO_REASON, "comment": pd.Series(np.nan, dtype=object), "recorded_on": pd.NaT}, index=moves.index
    )
    if moves.empty or reasons.empty:
        return out
    pairs = moves[["account_id", "month"]].rename_axis("row").reset_index().merge(reasons, on="account_id")
    first = pd.to_datetime(pairs.month)
    last = first + pd.offsets.MonthEnd(0)
    before = (first - pairs.recorded_on).dt.days.clip(lower=0)
    after = (pairs.recorded_on - last).dt.days.clip(lower=0)
    pairs["distance"] = before + after  # 0 inside the month; at most one of the two is positive
    pairs = pairs[pairs.distance <= window_days]
    pairs = pairs.assign(later=-pairs.recorded_on.astype("int64")).sort_values(["row", "distance", "later", "reason"])
    best = pairs.drop_duplicates("row").set_index("row")
    out.loc[best.index, "reason"] = best.reason
    out.loc[best.index, "comment"] = best.comment
    out.loc[best.index, "recorded_on"] = best.recorded_on
    return out


@table(
    schema={
        "account_id": "str",
        "account_name": "str",
        "month": "datetime",
        "segment": "str",
        "movement": "str",
        "mrr": "float64",
        "reason": "str",
        "comment": "str",
        "recorded_on": "datetime",
    }
)
def churn_reason_movements(
    tables: Tables, success_settings: SuccessSettings, account_movements: pd.DataFrame
) -> pd.DataFrame:
    """Every churn and contraction of MRR (account, month, movement, MRR lost) with the reason recorded for the
    account nearest to its month within churn_reason_window_days (customer_success.yaml), else 'no reason
    recorded'; the customer's comment and the date it was recorded."""
    m = account_movements
    parts = [m[m[kind] > 0].assign(movement=kind, mrr=lambda d, k=kind: d[k]) for kind in ("churn", "contraction")]
    moves = pd.concat(parts, ignore_index=True)[["account_id", "month", "segment", "movement", "mrr"]]
    moves = moves.sort_values(["month", "movement", "account_id"]).reset_index(drop=True)
    found = match_reasons(moves, recorded_reasons(tables), success_settings.churn_reason_window_days)
    moves = pd.concat([moves, found], axis=1)
    moves.insert(1, "account_name", lookup(moves.account_id, account_names(tables)).fillna(moves.account_id))
    return moves


@table(
    schema={
        "month": "datetime",
        "reason": "str",
        "churn_mrr": "float64",
        "contraction_mrr": "float64",
        "lost_mrr": "float64",
        "churned_accounts": "int64",
        "contracted_accounts": "int64",
    }
)
def churn_by_reason(churn_reason_movements: pd.DataFrame) -> pd.DataFrame:
    """Churn and contraction MRR and accounts per month and reason (the months and reasons with a loss); a month's
    churn_mrr over its reasons is mrr_movements' churn, its contraction_mrr the contraction."""
    m = churn_reason_movements
    churn, cut = m.movement == "churn", m.movement == "contraction"
    out = (
        m.assign(
            churn_mrr=m.mrr.where(churn, 0.0),
            contraction_mrr=m.mrr.where(cut, 0.0),
            churned_accounts=churn.astype("int64"),
            contracted_accounts=cut.astype("int64"),
        )
        .groupby(["month", "reason"], as_index=False)[
            ["churn_mrr", "contraction_mrr", "churned_accounts", "contracted_accounts"]
        ]
        .sum()
    )
    out["lost_mrr"] = out.churn_mrr + out.contraction_mrr
    return out[
        ["month", "reason", "churn_mrr", "contraction_mrr", "lost_mrr", "churned_accounts", "contracted_accounts"]
    ]


@table(
    schema={
        "segment": "str",
        "reason": "str",
        "churn_mrr": "float64",
        "contraction_mrr": "float64",
        "lost_mrr": "float64",
        "accounts": "int64",
        "share_of_segment": "float64",
    }
)
def churn_reasons_by_segment(as_of: int, churn_reason_movements: pd.DataFrame) -> pd.DataFrame:
    """Churn and contraction MRR by segment and reason over the 12 months to the workbook's month, the accounts
    that left or cut back for it, and its share of the segment's lost MRR (largest first within a segment)."""
    m = churn_reason_movements
    first = month_of(as_of - TRAILING_MONTHS + 1)
    m = m[(m.month >= first) & (m.month <= month_of(as_of))]
    out = (
        m.assign(
            churn_mrr=m.mrr.where(m.movement == "churn", 0.0),
            contraction_mrr=m.mrr.where(m.movement == "contraction", 0.0),
        )
        .groupby(["segment", "reason"], as_index=False)
        .agg(
            churn_mrr=("churn_mrr", "sum"),
            contraction_mrr=("contraction_mrr", "sum"),
            accounts=("account_id", "nunique"),
        )
    )
    out["lost_mrr"] = out.churn_mrr + out.contraction_mrr
    out["share_of_segment"] = safe_ratio(out.lost_mrr, out.groupby("segment").lost_mrr.transform("sum"))
    out = out.sort_values(["segment", "lost_mrr", "reason"], ascending=[True, False, True]).reset_index(drop=True)
    return out[["segment", "reason", "churn_mrr", "contraction_mrr", "lost_mrr", "accounts", "share_of_segment"]]


@metric(
    label="Lost MRR with a churn reason",
    formula="churn + contraction MRR in M whose account has a reason in churn_reasons within "
    "churn_reason_window_days / churn + contraction MRR in M",
    unit="fraction",
    direction="higher",
    level="operational",
    sources=("C",),
    area="success",
    needs=REASONS,
)
def churn_reason_coverage(churn_reason_movements: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """How much of the MRR lost in the month the exit survey explains (n = churned and contracted accounts)."""
    m = churn_reason_movements
    known = m[m.reason != NO_REASON].groupby("month").mrr.sum()
    lost = m.groupby("month").mrr.sum()
    count = m.groupby("month").size()
    months = mrr_movements.month
    return month_series(
        months,
        safe_ratio(lookup(months, known).fillna(0.0), lookup(months, lost)),
        lookup(months, count).fillna(0),
    )


# --------------------------------------------------------------------------- upsell and cross-sell
@table(schema={"account_id": "str", "month": "datetime", "plan": "str", "mrr": "float64"}, export=False)
def account_plan_mrr(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """MRR of each account on each plan (subscriptions.plan; '' when not given) at each month end where it is
    positive: account_mrr split by plan."""
    months = tables.from_polars(calendar)
    active = (
        subscription_mrr(tables, conventions)
        .with_columns(nw.col("plan").fill_null(""))
        .join(months, how="cross")
        .filter(
            (nw.col("start_date") <= nw.col("month_end"))
            & (nw.col("end_date").is_null() | (nw.col("end_date") > nw.col("month_end")))
        )
    )
    out = (
        active.group_by("account_id", "month", "plan")
        .agg(nw.col("monthly").sum().alias("mrr"))
        .with_columns(nw.col("mrr").round(6))
        .filter(nw.col("mrr") > 0)
    )
    return to_pandas(out, sort=["account_id", "month", "plan"])


def split_expansion(expansion: float, before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """(upsell, cross_sell) of one account's expansion MRR in a month, from its MRR by plan at the previous and
    at this month end: cross-sell is the MRR of plans new to the account when it kept every plan it had, capped
    at the expansion; the rest is upsell."""
    if expansion <= 0:
        return 0.0, 0.0
    kept_all = bool(before) and all(after.get(p, 0.0) > 0 for p in before)
    added = sum(v for p, v in after.items() if p not in before)
    cross = min(added, expansion) if kept_all else 0.0
    return round(expansion - cross, 6), round(cross, 6)


@table(
    schema={
        "account_id": "str",
        "month": "datetime",
        "segment": "str",
        "expansion": "float64",
        "upsell": "float64",
        "cross_sell": "float64",
        "plans_before": "str",
        "plans_after": "str",
    }
)
def expansion_movements(account_movements: pd.DataFrame, account_plan_mrr: pd.DataFrame) -> pd.DataFrame:
    """Every expansion of an account's MRR split into upsell (same plans: more seats, higher price, or an upgrade
    that replaced a plan) and cross-sell (a plan added beside the ones it kept), with its plans before and after."""
    e = account_movements[account_movements.expansion > 0].reset_index(drop=True)
    schema = {
        "account_id": "str",
        "month": "datetime",
        "segment": "str",
        "expansion": "float64",
        "upsell": "float64",
        "cross_sell": "float64",
        "plans_before": "str",
        "plans_after": "str",
    }
    if e.empty:
        return empty_frame(schema)
    previous = e.month - pd.offsets.MonthBegin(1)  # the column at once: a DateOffset per row costs ~20 us
    # the plans of each expanding account in the month of its expansion and the month before, read as Python values
    # once (iterating pandas' columns row by row costs more than the split itself)
    wanted = pd.concat([e[["account_id", "month"]], e[["account_id"]].assign(month=previous)]).drop_duplicates()
    p = account_plan_mrr[["account_id", "month", "plan", "mrr"]].merge(wanted, on=["account_id", "month"])
    plans: dict[tuple, dict[str, float]] = {}
    for account, month, plan, mrr in zip(*(p[c].tolist() for c in ("account_id", "month", "plan", "mrr"))):
        plans.setdefault((account, month), {})[plan] = mrr
    rows = []
    for account, month, last, expansion in zip(
        e.account_id.tolist(), e.month.tolist(), previous.tolist(), e.expansion.tolist()
    ):
        before = plans.get((account, last), {})
        after = plans.get((account, month), {})
        up, cross = split_expansion(expansion, before, after)
        rows.append((up, cross, ", ".join(sorted(before)), ", ".join(sorted(after))))
    parts = pd.DataFrame(rows, columns=["upsell", "cross_sell", "plans_before", "plans_after"], index=e.index)
    return pd.concat([e[["account_id", "month", "segment", "expansion"]], parts], axis=1)[list(schema)]


def _monthly_sum(mrr_movements: pd.DataFrame, frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """`column` of `frame` summed per month of mrr_movements (0 where none), and the accounts with it above 0."""
    months = mrr_movements.month
    positive = frame[frame[column] > 0]
    total = lookup(months, frame.groupby("month")[column].sum()).fillna(0.0)
    accounts = lookup(months, positive.groupby("month").size()).fillna(0)
    return total, accounts


@metric(
    label="Upsell MRR",
    formula="expansion MRR in M from plans the account already paid for (more seats, higher price) or from a "
    "new plan that replaced one (an upgrade); expansion MRR - cross-sell MRR",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S", "C"),
    area="success",
)
def upsell_mrr(expansion_movements: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Expansion MRR within the plans the accounts already had (n = accounts upsold)."""
    total, accounts = _monthly_sum(mrr_movements, expansion_movements, "upsell")
    return month_series(mrr_movements.month, total, accounts)


@metric(
    label="Cross-sell MRR",
    formula="expansion MRR in M from plans new to the account while it kept all its plans, capped at the "
    "account's expansion",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S", "C"),
    area="success",
)
def cross_sell_mrr(expansion_movements: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Expansion MRR from a plan or product line added beside the ones the account kept (n = accounts)."""
    total, accounts = _monthly_sum(mrr_movements, expansion_movements, "cross_sell")
    return month_series(mrr_movements.month, total, accounts)


@metric(
    label="Upsell rate",
    formula="upsell MRR in M / MRR at the end of M-1",
    unit="fraction",
    direction="higher",
    level="operational",
    sources=("S", "C"),
    area="success",
)
def upsell_rate(upsell_mrr: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Upsell MRR as a share of starting MRR (with the cross-sell rate it adds up to the MRR expansion rate)."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(upsell_mrr.value.to_numpy(), m.mrr_start), m.accounts_start)


@metric(
    label="Cross-sell rate",
    formula="cross-sell MRR in M / MRR at the end of M-1",
    unit="fraction",
    direction="higher",
    level="operational",
    sources=("S", "C"),
    area="success",
)
def cross_sell_rate(cross_sell_mrr: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Cross-sell MRR as a share of starting MRR."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(cross_sell_mrr.value.to_numpy(), m.mrr_start), m.accounts_start)


# --------------------------------------------------------------------------- expansion candidates
@table(
    schema={
        "account_id": "str",
        "account_name": "str",
        "segment": "str",
        "csm_id": "str",
        "stage": "str",
        "health": "float64",
        "utilisation": "float64",
        "seats": "float64",
        "arr": "float64",
        "why": "str",
        "term_end": "datetime",
    }
)
def expansion_candidates(
    as_of: int,
    success_settings: SuccessSettings,
    account_health: pd.DataFrame,
    account_stages: pd.DataFrame,
    account_months: pd.DataFrame,
) -> pd.DataFrame:
    """Healthy accounts ready to grow: a health score of at least expansion_min_health, not falling, and in the
    extending lifecycle stage or using at least expansion_utilisation of their seats (customer_success.yaml);
    fullest first, then by ARR."""
    s = success_settings
    h = account_health
    now = account_stages[account_stages.key == as_of].set_index("account_id")
    panel = account_months[account_months.key == as_of].set_index("account_id")
    util = lookup(h.account_id, now.utilisation)
    extending = h.stage == "extending"
    full = util >= s.expansion_utilisation
    healthy = (h.health >= s.expansion_min_health) & ~(h.change <= -s.falling_points)
    picked = h[(healthy & (extending | full)).to_numpy()].copy()
    picked["utilisation"] = util[picked.index]
    picked["seats"] = lookup(picked.account_id, panel.seats)
    picked["term_end"] = lookup(picked.account_id, panel.term_end)
    picked["why"] = [
        "extending stage" if st == "extending" else f"uses {u:.0%} of its seats"
        for st, u in zip(picked.stage, picked.utilisation)
    ]
    cols = [
        "account_id",
        "account_name",
        "segment",
        "csm_id",
        "stage",
        "health",
        "utilisation",
        "seats",
        "arr",
        "why",
        "term_end",
    ]
    return picked.sort_values(["utilisation", "arr"], ascending=[False, False])[cols].reset_index(drop=True)
