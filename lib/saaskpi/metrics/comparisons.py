"""Comparisons (issue 25, item 6): groups of accounts side by side (segment, region, industry, plan), plan
performance, feature usage by lifecycle stage and by account, engagements by type, and the CSM service
scorecard and trends. Built from tables the workbook already computes (account_mrr, account_plan_mrr,
account_stages, feature_month_activity, account_measures, health_history, ticket_times), so page 08 stays cheap.

- An account's group is its `accounts` column (segment, region, industry); its plan at a month end is its
  primary plan, the plan with the most MRR then (a tie: the first name). MRR and accounts of the groups add up
  to the total; retention is that of the accounts paying 12 months before, in their group then.
- Plan performance follows each plan line (an account's MRR on one plan) over the 12 months to the month:
  MRR added (a line that started: a new account, a cross-sell or a switch in), expansion, contraction and MRR
  ended (a line that stopped: churn or a switch out); gross margin is the month's (COGS is not recorded per
  plan), the customer-success cost of the month is split equally over paying accounts and within an account by
  its plans' MRR.
"""

from __future__ import annotations

from collections.abc import Callable

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import empty_frame, lookup, month_of, safe_ratio, to_pandas
from ..params import SuccessSettings
from ..sources import Tables
from .cs_load import TEAM, _month_end, csms_at
from .lifecycle import STAGES, account_csms, account_names
from .registry import table

BREAKDOWNS = ("segment", "region", "industry", "plan")
TOTAL = "(all)"
NO_PLAN = "(no plan)"
USAGE = ("accounts", "subscriptions", "usage_events")
TOUCHPOINTS = ("accounts", "subscriptions", "cs_touchpoints")


def _key(months: pd.Series) -> pd.Series:
    return (months.dt.year * 12 + months.dt.month - 1).astype("int64")


def primary_plans(account_plan_mrr: pd.DataFrame) -> pd.DataFrame:
    """Each account's primary plan at each month end (account_id, key, plan): the plan with the most MRR."""
    if account_plan_mrr.empty:
        return pd.DataFrame({"account_id": [], "key": pd.Series([], dtype="int64"), "plan": []})
    p = account_plan_mrr.assign(key=_key(account_plan_mrr.month))
    p = p.sort_values(["account_id", "key", "mrr", "plan"], ascending=[True, True, False, True])
    out = p.drop_duplicates(["account_id", "key"])[["account_id", "key", "plan"]]
    return out.assign(plan=out.plan.where(out.plan != "", NO_PLAN)).reset_index(drop=True)


def account_attributes(tables: Tables) -> pd.DataFrame:
    """segment, region and industry of every account, indexed by account_id."""
    acc = to_pandas(tables.lazy("accounts").select("account_id", "segment", "region", "industry"))
    return acc.set_index("account_id").fillna("unknown")


def grouped(mrr: pd.DataFrame, by: str, attrs: pd.DataFrame, plans: pd.DataFrame) -> pd.Series:
    """The group of each row of `mrr` (account_id, key) by breakdown `by`."""
    if by == "plan":
        primary = plans.set_index(["account_id", "key"]).plan
        keys = pd.MultiIndex.from_arrays([mrr.account_id, mrr.key])
        return pd.Series(primary.reindex(keys).fillna(NO_PLAN).to_numpy(), index=mrr.index)
    return pd.Series(lookup(mrr.account_id, attrs[by]).fillna("unknown").to_numpy(), index=mrr.index)


def retention_row(base: pd.Series, now: pd.Series) -> dict:
    """Twelve-month retention of the accounts in `base` (MRR then, by account) given their MRR now."""
    after = lookup(base.index, now).fillna(0.0).to_numpy()
    before = base.to_numpy()
    return {
        "base_accounts": len(base),
        "nrr_12m": float(safe_ratio(after.sum(), before.sum())),
        "grr_12m": float(safe_ratio(np.minimum(before, after).sum(), before.sum())),
        "logo_churn_12m": float(safe_ratio((after == 0).sum(), len(base))),
    }


@table(
    schema={
        "breakdown": "str",
        "group": "str",
        "accounts": "int64",
        "mrr": "float64",
        "mrr_share": "float64",
        "arpa": "float64",
        "base_accounts": "int64",
        "nrr_12m": "float64",
        "grr_12m": "float64",
        "logo_churn_12m": "float64",
        "new_arr_12m": "float64",
    }
)
def group_comparison(
    as_of: int,
    tables: Tables,
    account_mrr: pd.DataFrame,
    account_plan_mrr: pd.DataFrame,
    account_movements: pd.DataFrame,
) -> pd.DataFrame:
    """Segments, regions, industries and primary plans side by side at the month end: paying accounts, MRR, share
    of MRR, ARPA, and over the 12 months since (accounts paying 12 months before, in their group then): NRR, GRR
    and logo churn; new ARR of the 12 months to the month (12 x the MRR of accounts in their first paying month,
    in their group then); one row per breakdown and group, then the total (group '(all)', breakdown 'total')."""
    attrs = account_attributes(tables)
    plans = primary_plans(account_plan_mrr)
    mrr = account_mrr.assign(key=_key(account_mrr.month))
    now = mrr[mrr.key == as_of].reset_index(drop=True)
    base = mrr[mrr.key == as_of - 12].reset_index(drop=True)
    moves = account_movements.assign(key=_key(account_movements.month))
    # accounts in their first paying month within the 12 months to the month (the bridge's `new` movement)
    starts = moves[(moves.new > 0) & (moves.key > as_of - 12) & (moves.key <= as_of)].reset_index(drop=True)
    now_by_account = now.set_index("account_id").mrr
    rows = []
    for by in BREAKDOWNS:
        g_now, g_base, g_new = (grouped(f, by, attrs, plans) for f in (now, base, starts))
        for group in sorted(set(g_now) | set(g_base) | set(g_new)):
            part = now[g_now == group]
            then = base[g_base == group].set_index("account_id").mrr
            rows.append(
                {
                    "breakdown": by,
                    "group": group,
                    "accounts": len(part),
                    "mrr": float(part.mrr.sum()),
                    **retention_row(then, now_by_account),
                    "new_arr_12m": 12 * float(starts.new[g_new == group].sum()),
                }
            )
    rows.append(
        {
            "breakdown": "total",
            "group": TOTAL,
            "accounts": len(now),
            "mrr": float(now.mrr.sum()),
            **retention_row(base.set_index("account_id").mrr, now_by_account),
            "new_arr_12m": 12 * float(starts.new.sum()),
        }
    )
    out = pd.DataFrame(rows)
    out["mrr_share"] = safe_ratio(out.mrr, now.mrr.sum())
    out["arpa"] = safe_ratio(out.mrr, out.accounts)
    cols = ["breakdown", "group", "accounts", "mrr", "mrr_share", "arpa", "base_accounts", "nrr_12m", "grr_12m"]
    return out[[*cols, "logo_churn_12m", "new_arr_12m"]]


@table(schema={"breakdown": "str", "group": "str", "month": "datetime", "mrr": "float64", "accounts": "int64"})
def group_mrr_trend(tables: Tables, account_mrr: pd.DataFrame, account_plan_mrr: pd.DataFrame) -> pd.DataFrame:
    """MRR and paying accounts of each segment, region, industry and primary plan at every month end (the groups
    of a breakdown add up to MRR and paying accounts)."""
    attrs = account_attributes(tables)
    plans = primary_plans(account_plan_mrr)
    mrr = account_mrr.assign(key=_key(account_mrr.month))
    parts = []
    for by in BREAKDOWNS:
        g = mrr.assign(group=grouped(mrr, by, attrs, plans))
        agg = g.groupby(["group", "month"], as_index=False).agg(mrr=("mrr", "sum"), accounts=("account_id", "size"))
        parts.append(agg.assign(breakdown=by))
    if not parts or mrr.empty:
        return empty_frame(
            {"breakdown": "str", "group": "str", "month": "datetime", "mrr": "float64", "accounts": "int64"}
        )
    out = pd.concat(parts, ignore_index=True)
    return out[["breakdown", "group", "month", "mrr", "accounts"]].sort_values(["breakdown", "group", "month"])


# --------------------------------------------------------------------------- plans
def plan_line_movements(account_plan_mrr: pd.DataFrame) -> pd.DataFrame:
    """Each plan line (account x plan) at each month it paid at the start or the end of: mrr_start, mrr_end,
    added, expansion, contraction, ended."""
    if account_plan_mrr.empty:
        return empty_frame(
            {"account_id": "str", "plan": "str", "key": "int64", "mrr_start": "float64", "mrr_end": "float64"}
        ).assign(added=0.0, expansion=0.0, contraction=0.0, ended=0.0)
    p = account_plan_mrr.assign(key=_key(account_plan_mrr.month))
    later = p.assign(key=p.key + 1).rename(columns={"mrr": "mrr_start"})[["account_id", "plan", "key", "mrr_start"]]
    both = p.rename(columns={"mrr": "mrr_end"})[["account_id", "plan", "key", "mrr_end"]].merge(
        later, on=["account_id", "plan", "key"], how="outer"
    )
    both = both[both.key <= p.key.max()].fillna({"mrr_start": 0.0, "mrr_end": 0.0})
    s, e = both.mrr_start, both.mrr_end
    return both.assign(
        added=e.where(s == 0, 0.0),
        expansion=(e - s).where((s > 0) & (e > s), 0.0),
        contraction=(s - e).where((e > 0) & (e < s), 0.0),
        ended=s.where(e == 0, 0.0),
    )


@table(
    schema={
        "plan": "str",
        "accounts": "int64",
        "mrr": "float64",
        "mrr_share": "float64",
        "added_mrr_12m": "float64",
        "expansion_mrr_12m": "float64",
        "contraction_mrr_12m": "float64",
        "ended_mrr_12m": "float64",
        "gross_churn_rate": "float64",
        "gross_margin": "float64",
        "cs_cost": "float64",
        "contribution": "float64",
        "contribution_margin": "float64",
    }
)
def plan_performance(
    as_of: int,
    account_plan_mrr: pd.DataFrame,
    gross_margin_by_month: pd.DataFrame,
    allocated_spend: pd.DataFrame,
) -> pd.DataFrame:
    """Per plan (subscriptions.plan) at the month end: accounts on it, MRR and its share; over the 12 months to the
    month, MRR added, expanded, contracted and ended on the plan and its gross MRR churn rate ((contraction +
    ended) / the plan's MRR at the month starts); the month's gross margin, customer-success cost and contribution
    (MRR x gross margin - CS cost) with its margin."""
    lines = plan_line_movements(account_plan_mrr)
    lines = lines.assign(plan=lines.plan.where(lines.plan != "", NO_PLAN))
    window = lines[(lines.key > as_of - 12) & (lines.key <= as_of)]
    moved = window.groupby("plan")[["added", "expansion", "contraction", "ended", "mrr_start"]].sum()
    p = account_plan_mrr.assign(key=_key(account_plan_mrr.month))
    now = p[p.key == as_of].assign(plan=lambda d: d.plan.where(d.plan != "", NO_PLAN))
    margin = gross_margin_by_month.set_index("month").gross_margin.get(month_of(as_of), np.nan)
    cs = allocated_spend[(allocated_spend.category == "customer_success")]
    cs_month = float(cs[cs.spend_month == month_of(as_of)].amount.sum()) if len(cs) else 0.0
    accounts_now = now.account_id.nunique()
    share_in_account = safe_ratio(now.mrr, now.groupby("account_id").mrr.transform("sum"))
    now = now.assign(cs_cost=safe_ratio(cs_month, accounts_now) * share_in_account)
    at = now.groupby("plan").agg(accounts=("account_id", "nunique"), mrr=("mrr", "sum"), cs_cost=("cs_cost", "sum"))
    out = at.join(moved, how="outer").fillna(0.0)
    out["accounts"] = out.accounts.astype("int64")
    out["mrr_share"] = safe_ratio(out.mrr, out.mrr.sum())
    out["gross_churn_rate"] = safe_ratio(out.contraction + out.ended, out.mrr_start)
    out["gross_margin"] = margin
    out["contribution"] = out.mrr * margin - out.cs_cost
    out["contribution_margin"] = safe_ratio(out.contribution, out.mrr)
    out = out.rename(
        columns={
            "added": "added_mrr_12m",
            "expansion": "expansion_mrr_12m",
            "contraction": "contraction_mrr_12m",
            "ended": "ended_mrr_12m",
        }
    )
    out = out.rename_axis("plan").reset_index().sort_values(["mrr", "plan"], ascending=[False, True])
    cols = ["plan", "accounts", "mrr", "mrr_share", "added_mrr_12m", "expansion_mrr_12m", "contraction_mrr_12m"]
    rest = ["ended_mrr_12m", "gross_churn_rate", "gross_margin", "cs_cost", "contribution", "contribution_margin"]
    return out[[*cols, *rest]].reset_index(drop=True)


# --------------------------------------------------------------------------- feature usage
@table(
    schema={
        "stage": "str",
        "feature": "str",
        "accounts_in_stage": "int64",
        "accounts_using": "int64",
        "share_using": "float64",
        "minutes_per_account": "float64",
    },
    needs=USAGE,
)
def feature_usage_by_stage(
    as_of: int, feature_month_activity: pd.DataFrame, account_stages: pd.DataFrame
) -> pd.DataFrame:
    """Per lifecycle stage and feature in the month: the stage's paying accounts, those that used the feature, their
    share, and minutes in the feature per account of the stage (duration_seconds; 0 when not recorded)."""
    stages = account_stages[account_stages.key == as_of].set_index("account_id").stage
    used = feature_month_activity[
        (feature_month_activity.key == as_of) & feature_month_activity.account_id.isin(stages.index)
    ]
    used = used.assign(stage=lookup(used.account_id, stages).to_numpy())
    features = sorted(used.feature.unique())
    grid = pd.MultiIndex.from_product([list(STAGES), features], names=["stage", "feature"])
    agg = used.groupby(["stage", "feature"]).agg(accounts_using=("account_id", "nunique"), seconds=("seconds", "sum"))
    out = agg.reindex(grid).fillna(0).reset_index()
    out["accounts_in_stage"] = lookup(out.stage, stages.value_counts()).fillna(0).astype("int64").to_numpy()
    out["accounts_using"] = out.accounts_using.astype("int64")
    out["share_using"] = safe_ratio(out.accounts_using, out.accounts_in_stage)
    out["minutes_per_account"] = safe_ratio(out.seconds / 60, out.accounts_in_stage)
    cols = ["stage", "feature", "accounts_in_stage", "accounts_using", "share_using", "minutes_per_account"]
    return out[cols]


@table(
    schema={
        "account_id": "str",
        "account_name": "str",
        "stage": "str",
        "mrr": "float64",
        "feature": "str",
        "minutes": "float64",
        "last_day": "int64",
    },
    needs=USAGE,
)
def feature_usage_by_account(
    as_of: int,
    tables: Tables,
    feature_month_activity: pd.DataFrame,
    account_stages: pd.DataFrame,
    account_months: pd.DataFrame,
) -> pd.DataFrame:
    """Every paying account's use of each feature in the month: minutes (duration_seconds) and the last day of the
    month it was used, with its lifecycle stage and MRR (biggest accounts first)."""
    stages = account_stages[account_stages.key == as_of].set_index("account_id").stage
    mrr = account_months[account_months.key == as_of].set_index("account_id").mrr
    used = feature_month_activity[
        (feature_month_activity.key == as_of) & feature_month_activity.account_id.isin(stages.index)
    ]
    out = pd.DataFrame(
        {
            "account_id": used.account_id.to_numpy(),
            "stage": lookup(used.account_id, stages).to_numpy(),
            "mrr": lookup(used.account_id, mrr).to_numpy(),
            "feature": used.feature.to_numpy(),
            "minutes": (used.seconds / 60).astype("float64").to_numpy(),
            "last_day": used.last_day.astype("int64").to_numpy(),
        }
    )
    out.insert(1, "account_name", lookup(out.account_id, account_names(tables)).fillna(out.account_id).to_numpy())
    return out.sort_values(["mrr", "account_id", "feature"], ascending=[False, True, True]).reset_index(drop=True)


# --------------------------------------------------------------------------- engagements
@table(
    schema={
        "month": "datetime",
        "kind": "str",
        "touchpoints": "int64",
        "accounts": "int64",
        "positive": "int64",
        "negative": "int64",
    },
    needs=TOUCHPOINTS,
)
def engagements_by_type(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Customer-success touchpoints per month and kind (call, meeting, email, qbr; empty kind 'unknown'): how many,
    the accounts touched and those with positive and negative sentiment."""
    t = tables.lazy("cs_touchpoints")
    sentiment = nw.col("sentiment") if "sentiment" in t.columns else nw.lit(None, dtype=nw.String)
    kind = nw.col("kind") if "kind" in t.columns else nw.lit(None, dtype=nw.String)
    keyed = t.select(
        "account_id",
        (
            nw.col("occurred_at").dt.year().cast(nw.Int64) * 12 + nw.col("occurred_at").dt.month().cast(nw.Int64) - 1
        ).alias("key"),
        kind.fill_null("unknown").alias("kind"),
        (sentiment == "positive").fill_null(False).cast(nw.Int64).alias("positive"),
        (sentiment == "negative").fill_null(False).cast(nw.Int64).alias("negative"),
    )
    keys = calendar["month"].to_list()
    keyed = keyed.filter(nw.col("key").is_in(keys))
    agg = keyed.group_by("key", "kind").agg(
        nw.len().alias("touchpoints"),
        nw.col("account_id").n_unique().alias("accounts"),
        nw.col("positive").sum(),
        nw.col("negative").sum(),
    )
    out = to_pandas(agg, sort=["key", "kind"])
    out["month"] = [month_of(k) for k in out.key] if len(out) else pd.Series([], dtype="datetime64[ns]")
    return out[["month", "kind", "touchpoints", "accounts", "positive", "negative"]]


# --------------------------------------------------------------------------- CSMs
@table(
    schema={
        "csm_id": "str",
        "name": "str",
        "accounts": "int64",
        "tickets": "int64",
        "resolution_hours_median": "float64",
        "first_contact_resolution": "float64",
        "engagement_score": "float64",
        "health": "float64",
        "touchpoints_per_account": "float64",
    },
    needs=TEAM,
)
def csm_service(
    as_of: int,
    tables: Tables,
    success_settings: SuccessSettings,
    account_measures: pd.DataFrame,
    health_history: pd.DataFrame,
    compute_if_available: Callable,
) -> pd.DataFrame:
    """Per CSM on the team, over their current book and the window_days to the month end: tickets opened, median
    hours to resolution, first-contact resolution (resolved with one contact / resolved with a contact count),
    mean engagement score and health of the book, and touchpoints per account."""
    from .cs_load import NO_CSM

    owner = account_csms(tables).fillna(NO_CSM)
    m = account_measures[account_measures.key == as_of].assign(csm=lambda d: d.csm_id.fillna(NO_CSM))
    h = health_history[health_history.key == as_of].assign(csm=lambda d: d.csm_id.fillna(NO_CSM))
    tickets = compute_if_available("ticket_times")
    start = month_of(as_of + 1).tz_localize("UTC") - pd.Timedelta(days=success_settings.window_days)
    if tickets is not None:
        tickets = tickets[(tickets.created_at >= start) & (tickets.created_at < month_of(as_of + 1).tz_localize("UTC"))]
        tickets = tickets.assign(csm=lookup(tickets.account_id, owner).fillna(NO_CSM).to_numpy())
    team = csms_at(tables, _month_end(as_of)).set_index("member_id")
    rows = []
    for csm in list(team.index) + ([NO_CSM] if (m.csm == NO_CSM).any() else []):
        book = m[m.csm == csm]
        t = tickets[tickets.csm == csm] if tickets is not None else None
        resolved = t[t.resolution_hours.notna()] if t is not None else None
        counted = resolved[resolved.contacts.notna()] if resolved is not None else None
        rows.append(
            {
                "csm_id": csm,
                "name": team.name.get(csm, csm),
                "accounts": len(book),
                "tickets": len(t) if t is not None else 0,
                "resolution_hours_median": float(resolved.resolution_hours.median())
                if resolved is not None and len(resolved)
                else np.nan,
                "first_contact_resolution": float(safe_ratio((counted.contacts == 1).sum(), len(counted)))
                if counted is not None
                else np.nan,
                "engagement_score": float(book.engagement_score.mean()) if len(book) else np.nan,
                "health": float(h[h.csm == csm].health.mean()) if (h.csm == csm).any() else np.nan,
                "touchpoints_per_account": float(safe_ratio(book.touchpoints.sum(), book.touchpoints.count())),
            }
        )
    return pd.DataFrame(rows)


@table(
    schema={
        "csm_id": "str",
        "month": "datetime",
        "accounts": "int64",
        "arr": "float64",
        "health": "float64",
        "engagement_score": "float64",
        "touchpoints": "float64",
    },
    needs=TEAM,
)
def csm_trends(account_measures: pd.DataFrame, health_history: pd.DataFrame) -> pd.DataFrame:
    """Per CSM (accounts.csm_id: the current owner, so a book's past is its accounts' past) at every month end: paying
    accounts, ARR, mean health score, mean engagement score and touchpoints in the window to the month end."""
    m = account_measures[account_measures.csm_id.notna()]
    h = health_history[health_history.csm_id.notna()].groupby(["csm_id", "month"]).health.mean()
    out = m.groupby(["csm_id", "month"]).agg(
        accounts=("account_id", "size"),
        arr=("mrr", "sum"),
        engagement_score=("engagement_score", "mean"),
        touchpoints=("touchpoints", lambda v: v.sum(min_count=1)),
    )
    out["arr"] *= 12
    out["health"] = h.reindex(out.index).to_numpy()
    out = out.reset_index()
    return out[["csm_id", "month", "accounts", "arr", "health", "engagement_score", "touchpoints"]]
