"""Customer-success load and cost (catalog section 5): each CSM's book against capacity, the hiring forecast,
the cost to serve, and the CSM effectiveness scorecard. CSMs are `team` members with role `csm`; an
account's CSM is `accounts.csm_id` (the current owner: the book has no assignment history).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import lookup, month_of, safe_ratio, to_pandas
from ..params import Conventions, SuccessSettings
from ..sources import Tables
from .lifecycle import STAGES, account_csms
from .registry import metric, table
from .series import month_series

NO_CSM = "(no CSM)"
TEAM = ("accounts", "subscriptions", "team")
SPEND = ("accounts", "subscriptions", "spend")
HORIZONS = (1, 3, 6)


def csms_at(tables: Tables, month_end) -> pd.DataFrame:
    """CSMs on the team at a month end (started by it, not yet left): member_id, name, segment."""
    day = pd.Timestamp(month_end).date()
    on = tables.lazy("team").filter(
        (nw.col("role") == "csm")
        & (nw.col("start_date") <= day)
        & (nw.col("end_date").is_null() | (nw.col("end_date") > day))
    )
    out = to_pandas(on.select("member_id", "name", "segment"))
    out["name"] = out.name.where(out.name.fillna("") != "", out.member_id)
    return out


def _month_end(key: int) -> pd.Timestamp:
    return month_of(key) + pd.offsets.MonthEnd(0)


@table(
    schema={
        "csm_id": "str",
        "name": "str",
        "segment": "str",
        "accounts": "int64",
        "arr": "float64",
        "onboarding": "int64",
        "training": "int64",
        "adopting": "int64",
        "extending": "int64",
        "renewal": "int64",
        "renewals_due": "int64",
        "red_accounts": "int64",
        "open_tickets": "float64",
        "touchpoints": "float64",
        "capacity": "float64",
        "load": "float64",
    },
    needs=TEAM,
)
def csm_load(
    as_of: int,
    conventions: Conventions,
    success_settings: SuccessSettings,
    tables: Tables,
    account_stages: pd.DataFrame,
    account_months: pd.DataFrame,
    account_measures: pd.DataFrame,
    health_history: pd.DataFrame,
) -> pd.DataFrame:
    """Per CSM on the team at the month end (and the accounts without one): accounts, ARR, accounts per
    lifecycle stage, renewals within renewal_window_days, red accounts, open tickets, touchpoints in the window,
    capacity (csm_capacity of the CSM's segment) and load = accounts / capacity."""
    book = account_stages[account_stages.key == as_of][["account_id", "csm_id", "stage"]]
    now = account_months[account_months.key == as_of].set_index("account_id")
    measures = account_measures[account_measures.key == as_of].set_index("account_id")
    health = health_history[health_history.key == as_of].set_index("account_id")
    book = book.assign(
        csm=book.csm_id.fillna(NO_CSM),
        arr=lookup(book.account_id, now.mrr) * 12,
        renewal=book.account_id.map(now.days_to_renewal).le(conventions.renewal_window_days),
        red=book.account_id.map(health.band).eq("red"),
        open_tickets=book.account_id.map(measures.open_tickets),
        touchpoints=book.account_id.map(measures.touchpoints),
    )
    agg = book.groupby("csm").agg(
        accounts=("account_id", "size"),
        arr=("arr", "sum"),
        renewals_due=("renewal", "sum"),
        red_accounts=("red", "sum"),
        open_tickets=("open_tickets", "sum"),
        touchpoints=("touchpoints", "sum"),
    )
    stages = book.pivot_table(index="csm", columns="stage", values="account_id", aggfunc="size").reindex(columns=STAGES)
    agg = agg.join(stages.fillna(0).astype("int64"))
    team = csms_at(tables, _month_end(as_of)).set_index("member_id")
    rows = agg.reindex(list(team.index) + [c for c in agg.index if c not in team.index]).fillna(0)
    rows["name"] = [team.name.get(c, c) for c in rows.index]
    rows["segment"] = [team.segment.get(c) for c in rows.index]
    rows["capacity"] = [
        success_settings.capacity(team.segment.get(c)) if c in team.index else np.nan for c in rows.index
    ]
    rows["load"] = safe_ratio(rows.accounts, rows.capacity)
    rows.index.name = "csm_id"
    cols = [
        "name",
        "segment",
        "accounts",
        "arr",
        *STAGES,
        "renewals_due",
        "red_accounts",
        "open_tickets",
        "touchpoints",
        "capacity",
        "load",
    ]
    out = rows[cols].reset_index()
    return out.astype({c: "int64" for c in ["accounts", *STAGES, "renewals_due", "red_accounts"]})


@table(
    schema={
        "month": "datetime",
        "covered": "int64",
        "csms": "int64",
        "capacity": "float64",
        "over_capacity": "int64",
        "max_load": "float64",
    },
    export=False,
    needs=TEAM,
)
def csm_load_by_month(
    account_months: pd.DataFrame, tables: Tables, success_settings: SuccessSettings, calendar: pl.DataFrame
) -> pd.DataFrame:
    """Per month: paying accounts with a CSM, CSMs on the team, their capacity, how many of them carry more
    accounts than the capacity of their segment, and the load (accounts / capacity) of the most loaded one
    (one table for the four CS capacity metrics)."""
    rows = []
    for key in calendar["month"].to_list():
        now = account_months[account_months.key == key]
        team = csms_at(tables, _month_end(key))
        book = now.csm_id.value_counts()
        loads = [
            book.get(member, 0) / success_settings.capacity(segment)
            for member, segment in zip(team.member_id, team.segment)
        ]
        rows.append(
            (
                month_of(key),
                int(now.csm_id.notna().sum()),
                len(team),
                sum(success_settings.capacity(s) for s in team.segment),
                sum(load > 1 for load in loads),
                max(loads, default=math.nan),
            )
        )
    return pd.DataFrame(rows, columns=["month", "covered", "csms", "capacity", "over_capacity", "max_load"])


@metric(
    label="Accounts per CSM",
    formula="paying accounts with a CSM / CSMs on the team at the month end",
    unit="count",
    direction="neutral",
    level="operational",
    sources=("P",),
    area="success",
    needs=TEAM,
)
def accounts_per_csm(csm_load_by_month: pd.DataFrame) -> pd.DataFrame:
    """How many accounts each CSM looks after on average."""
    c = csm_load_by_month
    return month_series(c.month, safe_ratio(c.covered, c.csms), c.csms)


@metric(
    label="CS capacity used",
    formula="paying accounts with a CSM / sum over CSMs on the team of csm_capacity "
    "of their segment (an average: judged through CSMs over capacity)",
    unit="fraction",
    direction="neutral",
    level="supporting",
    sources=("P",),
    area="success",
    needs=TEAM,
    tile=10,
)
def csm_capacity_utilisation(csm_load_by_month: pd.DataFrame) -> pd.DataFrame:
    """How full the CS team's books are on average against the capacity ratio (above 1 = overloaded)."""
    c = csm_load_by_month
    return month_series(c.month, safe_ratio(c.covered, c.capacity), c.capacity)


@metric(
    label="CSMs over capacity",
    formula="CSMs on the team at the month end whose accounts exceed csm_capacity of their segment / CSMs on the team",
    unit="fraction",
    direction="lower",
    level="supporting",
    sources=("P",),
    area="success",
    target=0.0,
    needs=TEAM,
    proportion=True,
    sampled=False,
    tile=11,
)
def csms_over_capacity_share(csm_load_by_month: pd.DataFrame) -> pd.DataFrame:
    """Share of CSMs whose book is larger than their segment's capacity: what an average load can hide."""
    c = csm_load_by_month
    return month_series(c.month, safe_ratio(c.over_capacity, c.csms), c.csms)


@metric(
    label="Most loaded CSM",
    formula="max over CSMs on the team of accounts / csm_capacity of their segment",
    unit="fraction",
    direction="lower",
    level="operational",
    sources=("P",),
    area="success",
    target=1.0,
    needs=TEAM,
    sampled=False,
    tile=12,
)
def max_csm_load(csm_load_by_month: pd.DataFrame) -> pd.DataFrame:
    """The load of the CSM with the largest book against capacity (above 1 = overloaded)."""
    c = csm_load_by_month
    return month_series(c.month, c.max_load, c.csms)


@table(
    schema={
        "segment": "str",
        "horizon_months": "int64",
        "paying_now": "int64",
        "trend_per_month": "float64",
        "projected_accounts": "float64",
        "csm_coverage": "float64",
        "accounts_to_cover": "float64",
        "capacity_per_csm": "float64",
        "csms_needed": "int64",
        "csms_now": "int64",
        "to_hire": "int64",
    },
    needs=TEAM,
)
def hiring_forecast(
    as_of: int, success_settings: SuccessSettings, tables: Tables, account_months: pd.DataFrame
) -> pd.DataFrame:
    """Per account segment and horizon (1, 3, 6 months): paying accounts projected on their trend over
    forecast_history_months, the share with a CSM today, the accounts to cover, CSMs needed at the segment's
    capacity (rounded up), CSMs on the team and the gap to hire."""
    k = success_settings.forecast_history_months
    now = account_months[account_months.key == as_of]
    then = account_months[account_months.key == as_of - k]
    team = csms_at(tables, _month_end(as_of))
    rows = []
    for segment in sorted(now.segment.dropna().unique()):
        seg_now = now[now.segment == segment]
        paying, before = len(seg_now), int((then.segment == segment).sum())
        slope = (paying - before) / k
        coverage = seg_now.csm_id.notna().mean()
        capacity = success_settings.capacity(segment)
        on_team = int((team.segment == segment).sum())
        for h in HORIZONS:
            projected = max(0.0, paying + slope * h)
            covered = projected * coverage
            needed = math.ceil(covered / capacity - 1e-9)
            rows.append(
                {
                    "segment": segment,
                    "horizon_months": h,
                    "paying_now": paying,
                    "trend_per_month": slope,
                    "projected_accounts": projected,
                    "csm_coverage": coverage,
                    "accounts_to_cover": covered,
                    "capacity_per_csm": capacity,
                    "csms_needed": needed,
                    "csms_now": on_team,
                    "to_hire": max(0, needed - on_team),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- cost to serve
def _cs_spend(allocated_spend: pd.DataFrame) -> pd.DataFrame:
    s = allocated_spend[allocated_spend.category == "customer_success"]
    return s.assign(item=s["item"].fillna("other"))


@metric(
    sampled=True,
    label="Cost to serve per account",
    formula="customer_success spend in M / paying accounts at the end of M",
    unit="currency",
    direction="lower",
    level="supporting",
    sources=("C",),
    area="success",
    needs=SPEND,
    tile=13,
)
def cost_to_serve_per_account(allocated_spend: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """What customer success costs per paying account per month."""
    spend = _cs_spend(allocated_spend).groupby("spend_month").amount.sum()
    m = mrr_movements.assign(spend=mrr_movements.month.map(spend))
    return month_series(m.month, safe_ratio(m.spend, m.accounts_end), m.accounts_end)


@metric(
    label="Cost to serve per $ of ARR",
    formula="customer_success spend in M x 12 / ARR at the end of M",
    unit="number",
    direction="lower",
    level="supporting",
    sources=("C",),
    area="success",
    needs=SPEND,
)
def cost_to_serve_per_arr(allocated_spend: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Dollars of customer-success cost per dollar of recurring revenue, annualised."""
    spend = _cs_spend(allocated_spend).groupby("spend_month").amount.sum()
    m = mrr_movements.assign(spend=mrr_movements.month.map(spend))
    return month_series(m.month, safe_ratio(m.spend * 12, m.mrr_end * 12), m.accounts_end)


@table(
    schema={
        "segment": "str",
        "accounts": "int64",
        "arr": "float64",
        "programs": "float64",
        "salaries_and_benefits": "float64",
        "tools": "float64",
        "training": "float64",
        "cs_spend": "float64",
        "per_account": "float64",
        "per_arr_dollar": "float64",
    },
    needs=SPEND,
)
def cost_to_serve(as_of: int, allocated_spend: pd.DataFrame, account_months: pd.DataFrame) -> pd.DataFrame:
    """Customer-success spend of the month by segment and item (salaries and benefits, training, tools,
    programs; untagged spend split by MRR share), per paying account and per $ of ARR."""
    s = _cs_spend(allocated_spend)
    s = s[s.spend_month == month_of(as_of)]
    wide = s.pivot_table(index="segment", columns="item", values="amount", aggfunc="sum").fillna(0.0)
    now = (
        account_months[account_months.key == as_of]
        .groupby("segment")
        .agg(accounts=("account_id", "size"), arr=("mrr", "sum"))
    )
    now["arr"] *= 12
    out = now.join(wide, how="outer").fillna(0.0)
    items = list(wide.columns)
    out["cs_spend"] = out[items].sum(axis=1) if items else 0.0
    out["per_account"] = safe_ratio(out.cs_spend, out.accounts)
    out["per_arr_dollar"] = safe_ratio(out.cs_spend * 12, out.arr)
    return out.rename_axis("segment").reset_index()


# --------------------------------------------------------------------------- scorecard
@table(
    schema={
        "csm_id": "str",
        "name": "str",
        "accounts": "int64",
        "arr": "float64",
        "nrr_12m": "float64",
        "logo_churn_12m": "float64",
        "csat": "float64",
        "nps": "float64",
        "response_hours_median": "float64",
        "touchpoints": "float64",
        "upsell_mrr_12m": "float64",
    },
    needs=TEAM,
)
def csm_scorecard(
    as_of: int,
    tables: Tables,
    account_mrr: pd.DataFrame,
    account_measures: pd.DataFrame,
    compute_if_available: Callable,
    success_settings: SuccessSettings,
) -> pd.DataFrame:
    """Per CSM on the team (and the accounts without one), over their current book: trailing-12-month NRR and
    logo churn of the accounts paying 12 months ago, CSAT and NPS in the window, median first-response hours,
    touchpoints in the window, and upsell (expansion MRR added over the last 12 months)."""
    owner = account_csms(tables).fillna(NO_CSM)
    mrr = account_mrr.assign(key=account_mrr.month.dt.year * 12 + account_mrr.month.dt.month - 1)
    mrr["csm"] = mrr.account_id.map(owner).fillna(NO_CSM)
    start = mrr[mrr.key == as_of - 12].set_index("account_id")
    end = mrr[mrr.key == as_of].set_index("account_id").mrr
    start = start.assign(after=lookup(start.index, end).fillna(0.0))
    wide = mrr[(mrr.key > as_of - 13) & (mrr.key <= as_of)].pivot_table(index="account_id", columns="key", values="mrr")
    rises = wide.diff(axis=1).clip(lower=0).where(wide.shift(axis=1).notna()).sum(axis=1)  # paid both months
    m = account_measures[account_measures.key == as_of].assign(csm=lambda d: d.csm_id.fillna(NO_CSM))
    tickets = compute_if_available("ticket_times")
    window_start = month_of(as_of + 1).tz_localize("UTC") - pd.Timedelta(days=success_settings.window_days)
    team = csms_at(tables, _month_end(as_of)).set_index("member_id")
    rows = []
    for csm in list(team.index) + ([NO_CSM] if (m.csm == NO_CSM).any() else []):
        book = m[m.csm == csm]
        s = start[start.csm == csm]
        ids = set(owner.index[owner == csm])
        t = (
            tickets[tickets.account_id.isin(ids) & (tickets.created_at >= window_start)]
            if tickets is not None
            else None
        )
        rows.append(
            {
                "csm_id": csm,
                "name": team.name.get(csm, csm),
                "accounts": len(book),
                "arr": book.mrr.sum() * 12,
                "nrr_12m": safe_ratio(s.after.sum(), s.mrr.sum()),
                "logo_churn_12m": safe_ratio((s.after == 0).sum(), len(s)),
                "csat": safe_ratio((book.csat * book.csat_n).sum(), book.csat_n.sum()),
                "nps": safe_ratio((book.account_nps * book.nps_n).sum(), book.nps_n.sum()),
                "response_hours_median": t.response_hours.median() if t is not None and len(t) else np.nan,
                "touchpoints": book.touchpoints.sum(min_count=1),
                "upsell_mrr_12m": float(rises.reindex(list(ids)).sum()),
            }
        )
    return pd.DataFrame(rows)
