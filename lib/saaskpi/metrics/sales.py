"""The sales team (issue 25, item 4; page 01's "Sales team" section): cost per lead by channel, quota and
attainment per rep, a sales hiring plan, activity per rep and the activity-to-opportunity ratio, sales by
contact method, rep turnover, trial starts and demo calls.

Quotas and activities come from the optional `quotas` and `sales_activities` tables (docs/data-contract.md).
Per-rep tables count the account executives of `sales_capacity` (the segment's AEs on the team at each month's
last day); activities and quotas of other members are left out. The choices are conventions:
`quota_attainment_basis`, `sales_window_months`, `sales_contact_method_basis`, `sales_hiring_bookings_growth`,
`sales_rep_failure_rate` (parameters/conventions.yaml, docs/decisions.md).
"""

from __future__ import annotations

import math

import pandas as pd
import polars as pl

from ..frames import calendar_months, data_end, empty_frame, month_of, month_start, monthly, safe_ratio, to_pandas
from ..params import Conventions
from ..sources import Tables
from .funnel import LEADS, OPPS, SALES_TEAM, _won
from .registry import metric, table

SPEND_LEADS = ("accounts", "subscriptions", "spend", "leads")
QUOTAS = ("accounts", "subscriptions", "opportunities", "team", "quotas")
ACTIVITIES = ("accounts", "subscriptions", "team", "sales_activities")
ACTIVITY_TYPES = ("call", "email", "meeting", "demo")
UNTAGGED = "untagged"
HIRING_HORIZONS = (3, 6, 12)


# --------------------------------------------------------------------------- cost per lead
@table(
    schema={
        "month": "datetime",
        "channel": "str",
        "sm_spend": "float64",
        "leads": "int64",
        "cost_per_lead": "float64",
    },
    needs=SPEND_LEADS,
)
def cost_per_lead_by_channel(
    calendar: pl.DataFrame, conventions: Conventions, allocated_spend: pd.DataFrame, lead_journey: pd.DataFrame
) -> pd.DataFrame:
    """Per month (the month the money was spent) and acquisition channel: S&M spend, leads created and cost per
    lead; spend without a channel after allocation is its own `untagged` row (no leads)."""
    sm = allocated_spend[allocated_spend.category.isin(conventions.cac_spend_categories)]
    sm = sm.assign(channel=sm.channel.fillna(UNTAGGED), month=sm.spend_month)
    months = calendar_months(calendar).month
    leads = lead_journey.assign(month=month_start(lead_journey.created_at))
    channels = sorted(set(sm.channel[sm.amount > 0].unique()) | set(leads.channel.dropna().unique()))
    grid = pd.MultiIndex.from_product([months, channels], names=["month", "channel"])
    spend = sm.groupby(["month", "channel"]).amount.sum().reindex(grid, fill_value=0.0)
    count = leads.groupby(["month", "channel"]).size().reindex(grid, fill_value=0)
    out = pd.DataFrame({"sm_spend": spend, "leads": count.astype("int64")}).reset_index()
    out["cost_per_lead"] = safe_ratio(out.sm_spend, out.leads)
    return out


@metric(
    sampled=True,
    label="Cost per lead",
    formula="S&M spend (cac_spend_categories) spent in M / leads created in M",
    unit="currency",
    direction="lower",
    level="operational",
    sources=("J", "S"),
    area="sales",
    needs=SPEND_LEADS,
    conventions=("cac_spend_categories", "untagged_spend_allocation"),
)
def cost_per_lead(calendar: pl.DataFrame, cost_per_lead_by_channel: pd.DataFrame) -> pd.DataFrame:
    """Sales and marketing spend of the month per lead (signup) created in it."""
    t = cost_per_lead_by_channel.groupby("month", as_index=False)[["sm_spend", "leads"]].sum()
    out = calendar_months(calendar)[["month"]].merge(t, on="month", how="left").fillna(0.0)
    return pd.DataFrame({"month": out.month, "value": safe_ratio(out.sm_spend, out.leads), "n": out.leads})


# --------------------------------------------------------------------------- quotas
def _won_value(conventions: Conventions, opportunity_outcomes: pd.DataFrame, account_mrr: pd.DataFrame) -> pd.DataFrame:
    """Won opportunities with the value attainment counts (quota_attainment_basis): the amount (bookings) or the
    won account's first paying MRR x 12 (new ARR; 0 until it pays)."""
    won = _won(opportunity_outcomes)
    if conventions.quota_attainment_basis == "bookings":
        return won.assign(value=won.amount)
    first = account_mrr.sort_values("month").groupby("account_id").mrr.first() * 12
    return won.assign(value=won.account_id.map(first).fillna(0.0).astype("float64"))


@table(
    schema={
        "month": "datetime",
        "member_id": "str",
        "name": "str",
        "quota": "float64",
        "attained": "float64",
        "attainment": "float64",
    },
    needs=QUOTAS,
)
def quota_attainment_by_rep(
    tables: Tables,
    conventions: Conventions,
    sales_capacity: pd.DataFrame,
    opportunity_outcomes: pd.DataFrame,
    account_mrr: pd.DataFrame,
) -> pd.DataFrame:
    """Per month and account executive on the team: quota (several rows of one rep and month add up), closed-won
    value (quota_attainment_basis) and attainment = attained / quota (n/a without a quota)."""
    q = to_pandas(tables.lazy("quotas"))
    q["month"] = pd.to_datetime(q.month).astype("datetime64[ns]")
    quota = q.groupby(["month", "member_id"]).quota.sum()
    won = _won_value(conventions, opportunity_outcomes, account_mrr)
    attained = won.groupby(["closed_month", "owner_id"]).value.sum().rename_axis(["month", "member_id"])
    base = sales_capacity[["month", "member_id", "name"]].assign(month=lambda d: d.month.astype("datetime64[ns]"))
    out = base.join(quota, on=["month", "member_id"]).join(attained.rename("attained"), on=["month", "member_id"])
    out["attained"] = out.attained.fillna(0.0)
    out["attainment"] = safe_ratio(out.attained, out.quota)
    return out[["month", "member_id", "name", "quota", "attained", "attainment"]].reset_index(drop=True)


@metric(
    label="Quota attainment",
    formula="sum over AEs of closed-won value in M (quota_attainment_basis) / sum of their quotas for M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="sales",
    needs=QUOTAS,
    conventions=("quota_attainment_basis",),
    target=1.0,
    target_source="S: SaaS metrics collection (reps are measured against their quota: 100 % is on plan)",
)
def quota_attainment(calendar: pl.DataFrame, quota_attainment_by_rep: pd.DataFrame) -> pd.DataFrame:
    """The team's closed-won value against its quota: the quota-weighted mean of the reps' attainment."""
    q = quota_attainment_by_rep[quota_attainment_by_rep.quota.notna()]
    t = q.groupby("month", as_index=False)[["quota", "attained"]].sum()
    out = calendar_months(calendar)[["month"]].merge(t, on="month", how="left")
    reps = q.groupby("month").size()
    return pd.DataFrame(
        {
            "month": out.month,
            "value": safe_ratio(out.attained, out.quota),
            "n": out.month.map(reps).fillna(0).astype("float64"),
        }
    )


# --------------------------------------------------------------------------- activities
def _activities(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """The sales activities before the workbook's data end, with their month."""
    a = to_pandas(tables.lazy("sales_activities"), sort=["activity_id"])
    a = a[a.occurred_at < data_end(calendar)]
    return a.assign(month=month_start(a.occurred_at))


@table(
    schema={
        "month": "datetime",
        "member_id": "str",
        "name": "str",
        "calls": "int64",
        "emails": "int64",
        "meetings": "int64",
        "demos": "int64",
        "activities": "int64",
        "opportunities_created": "int64",
        "activity_to_opportunity": "float64",
    },
    needs=ACTIVITIES,
)
def activities_by_rep(
    tables: Tables, calendar: pl.DataFrame, sales_capacity: pd.DataFrame, opportunity_outcomes: pd.DataFrame
) -> pd.DataFrame:
    """Per month and account executive on the team: calls, emails, meetings, demos, all activities, the
    opportunities they created and activities per opportunity created (n/a without one)."""
    a = _activities(tables, calendar)
    counts = a.groupby(["month", "member_id", "type"]).size().unstack("type", fill_value=0)
    counts = counts.reindex(columns=list(ACTIVITY_TYPES), fill_value=0)
    created = opportunity_outcomes.groupby(["created_month", "owner_id"]).size().rename_axis(["month", "member_id"])
    base = sales_capacity[["month", "member_id", "name"]].assign(month=lambda d: d.month.astype("datetime64[ns]"))
    out = base.join(counts, on=["month", "member_id"]).join(created.rename("opps"), on=["month", "member_id"])
    out = out.fillna({c: 0 for c in (*ACTIVITY_TYPES, "opps")})
    plural = {"call": "calls", "email": "emails", "meeting": "meetings", "demo": "demos"}
    for kind, column in plural.items():
        out[column] = out[kind].astype("int64")
    out["activities"] = out[list(plural.values())].sum(axis=1).astype("int64")
    out["opportunities_created"] = out.opps.astype("int64")
    out["activity_to_opportunity"] = safe_ratio(out.activities, out.opportunities_created)
    return out[
        [
            "month",
            "member_id",
            "name",
            "calls",
            "emails",
            "meetings",
            "demos",
            "activities",
            "opportunities_created",
            "activity_to_opportunity",
        ]
    ].reset_index(drop=True)


def in_window(t: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The rows of a monthly table whose month is from `start` to `end` (both included)."""
    return t[(t.month >= start) & (t.month <= end)]


def cost_per_lead_totals(cost_per_lead_by_channel: pd.DataFrame) -> pd.DataFrame:
    """S&M spend, leads and cost per lead (n/a without a lead) of each channel over the months of
    `cost_per_lead_by_channel` given, channels with neither left out, then the total (channel 'all')."""
    by = cost_per_lead_by_channel.groupby("channel", as_index=False)[["sm_spend", "leads"]].sum()
    by = by[(by.sm_spend != 0) | (by.leads > 0)]  # a channel with neither in the window says nothing
    by = pd.concat([by, pd.DataFrame([{"channel": "all", **by[["sm_spend", "leads"]].sum()}])], ignore_index=True)
    return by.assign(cost_per_lead=safe_ratio(by.sm_spend, by.leads))


def rep_window_totals(
    sales_capacity: pd.DataFrame,
    quota_attainment_by_rep: pd.DataFrame | None,
    activities_by_rep: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """Per account executive on the team in a month from `start` to `end` (both included): quota and attained
    summed over the window and their attainment (n/a without any quota), activities by type, opportunities
    created and activities per opportunity created (n/a without one); the quota and activity columns only when
    their table is given (page 01's per-rep table over `sales_window_months`)."""
    reps = in_window(sales_capacity, start, end)[["member_id", "name"]].drop_duplicates()
    reps = reps.sort_values(["member_id", "name"]).reset_index(drop=True)
    if quota_attainment_by_rep is not None:
        q = (
            in_window(quota_attainment_by_rep, start, end)
            .groupby("member_id", as_index=False)
            .agg(quota=("quota", lambda v: v.sum(min_count=1)), attained=("attained", "sum"))
        )  # a rep without any quota in the window: n/a, not 0
        q["attainment"] = safe_ratio(q.attained, q.quota.where(q.quota > 0))
        reps = reps.merge(q, on="member_id", how="left")
    if activities_by_rep is not None:
        cols = ["calls", "emails", "meetings", "demos", "activities", "opportunities_created"]
        a = in_window(activities_by_rep, start, end).groupby("member_id", as_index=False)[cols].sum()
        a["per_opportunity"] = safe_ratio(a.activities, a.opportunities_created)
        reps = reps.merge(a, on="member_id", how="left")
    return reps


def _team_month(calendar: pl.DataFrame, activities_by_rep: pd.DataFrame) -> pd.DataFrame:
    t = activities_by_rep.groupby("month").agg(
        activities=("activities", "sum"),
        demos=("demos", "sum"),
        opportunities=("opportunities_created", "sum"),
        reps=("member_id", "size"),
    )
    return calendar_months(calendar)[["month"]].join(t, on="month").fillna(0.0)


@metric(
    sampled=True,
    label="Activities per rep",
    formula="calls + emails + meetings + demos of AEs in M / AEs on the team at the end of M",
    unit="number",
    direction="neutral",
    level="operational",
    sources=("S",),
    area="sales",
    needs=ACTIVITIES,
)
def activities_per_rep(calendar: pl.DataFrame, activities_by_rep: pd.DataFrame) -> pd.DataFrame:
    """How active the account executives are: sales activities per rep in the month."""
    t = _team_month(calendar, activities_by_rep)
    return pd.DataFrame({"month": t.month, "value": safe_ratio(t.activities, t.reps), "n": t.reps})


@metric(
    sampled=True,
    label="Activities per opportunity",
    formula="activities of AEs in M / opportunities they created in M",
    unit="ratio",
    direction="lower",
    level="operational",
    sources=("S",),
    area="sales",
    needs=("accounts", "subscriptions", "opportunities", "team", "sales_activities"),
)
def activity_to_opportunity_ratio(calendar: pl.DataFrame, activities_by_rep: pd.DataFrame) -> pd.DataFrame:
    """Calls, emails, meetings and demos it takes to create one opportunity (fewer is more efficient)."""
    t = _team_month(calendar, activities_by_rep)
    return pd.DataFrame({"month": t.month, "value": safe_ratio(t.activities, t.opportunities), "n": t.opportunities})


@metric(
    label="Demo calls",
    formula="sales activities of type demo by AEs in M",
    unit="count",
    direction="higher",
    level="operational",
    sources=("S",),
    area="sales",
    needs=ACTIVITIES,
)
def demo_calls(calendar: pl.DataFrame, activities_by_rep: pd.DataFrame) -> pd.DataFrame:
    """Product demos the account executives gave in the month."""
    t = _team_month(calendar, activities_by_rep)
    return pd.DataFrame({"month": t.month, "value": t.demos, "n": t.demos})


@metric(
    label="Trial starts",
    formula="self-serve signups created in M (leads without a sales opportunity: the funnel's trial notion)",
    unit="count",
    direction="higher",
    level="operational",
    sources=("S",),
    area="sales",
    needs=LEADS,
)
def trial_starts(calendar: pl.DataFrame, lead_journey: pd.DataFrame) -> pd.DataFrame:
    """Free trials started in the month: signups that did not go through a sales opportunity."""
    trials = lead_journey[lead_journey.self_serve]
    out = monthly(calendar, month_start(trials.created_at), trials.self_serve.astype(float), "size")
    return out.assign(n=out.value)


# --------------------------------------------------------------------------- contact method
@table(
    schema={"method": "str", "won": "int64", "bookings": "float64", "share_of_won": "float64"},
    needs=OPPS,
)
def sales_by_contact_method(
    tables: Tables,
    calendar: pl.DataFrame,
    as_of: int,
    conventions: Conventions,
    opportunity_outcomes: pd.DataFrame,
    compute_if_available,
) -> pd.DataFrame:
    """Deals won in the trailing sales_window_months by contact method (sales_contact_method_basis): the type of
    the first sales activity on the deal or its lead ("no activity" without one), or the lead's channel."""
    start = month_of(as_of - conventions.sales_window_months + 1)
    won = _won(opportunity_outcomes)
    won = won[(won.closed_month >= start) & (won.closed_month <= month_of(as_of))]
    if conventions.sales_contact_method_basis == "lead_channel":
        journey = compute_if_available("lead_journey")
        channel = journey.set_index("lead_id").channel if journey is not None else pd.Series(dtype=object)
        method = won.lead_id.map(channel)
        missing = "no lead"
    elif tables.has("sales_activities"):
        a = _activities(tables, calendar).sort_values(["occurred_at", "activity_id"])
        by_opp = a.dropna(subset=["opportunity_id"]).groupby("opportunity_id")[["occurred_at", "type"]].first()
        by_lead = a.dropna(subset=["lead_id"]).groupby("lead_id")[["occurred_at", "type"]].first()
        o, le = won.opportunity_id.map(by_opp.occurred_at), won.lead_id.map(by_lead.occurred_at)
        use_lead = le.notna() & (o.isna() | (le < o))
        method = won.opportunity_id.map(by_opp.type).where(~use_lead, won.lead_id.map(by_lead.type))
        missing = "no activity"
    else:
        return empty_frame({"method": "str", "won": "int64", "bookings": "float64", "share_of_won": "float64"})
    won = won.assign(method=method.fillna(missing).astype(object))
    out = won.groupby("method", as_index=False).agg(won=("opportunity_id", "size"), bookings=("amount", "sum"))
    out["share_of_won"] = safe_ratio(out.won, out.won.sum())
    return out.sort_values(["won", "method"], ascending=[False, True]).reset_index(drop=True)


# --------------------------------------------------------------------------- turnover
@table(
    schema={"month": "datetime", "reps_start": "int64", "hired": "int64", "left": "int64", "turnover": "float64"},
    needs=SALES_TEAM,
)
def rep_turnover_by_month(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Per month: account executives on the team at its start, hired in it (start_date in M), left in it
    (end_date in M: the first day no longer on the team) and turnover = left / reps at the start."""
    team = to_pandas(tables.lazy("team"))
    aes = team[team.role == "ae"]
    months = calendar_months(calendar)
    start = pd.to_datetime(aes.start_date)
    end = pd.to_datetime(aes.end_date) if "end_date" in aes else pd.Series(pd.NaT, index=aes.index)
    rows = []
    for m, nxt in zip(months.month, months.month + pd.DateOffset(months=1)):
        on = ((start < m) & (end.isna() | (end >= m))).sum()  # on the team on M's first day (arrived before it)
        hired = ((start >= m) & (start < nxt)).sum()
        left = ((end >= m) & (end < nxt) & (start < end)).sum()
        rows.append((m, int(on), int(hired), int(left)))
    out = pd.DataFrame(rows, columns=["month", "reps_start", "hired", "left"])
    out["turnover"] = safe_ratio(out.left, out.reps_start)
    return out


@metric(
    label="Rep turnover",
    formula="account executives whose end_date falls in M / AEs on the team on the first day of M",
    unit="fraction",
    direction="lower",
    level="operational",
    sources=("S",),
    area="sales",
    needs=SALES_TEAM,
    proportion=True,
)
def rep_turnover(rep_turnover_by_month: pd.DataFrame) -> pd.DataFrame:
    """Share of the account executives who left the team in the month (team.end_date)."""
    t = rep_turnover_by_month
    return pd.DataFrame({"month": t.month, "value": t.turnover, "n": t.reps_start.astype("float64")})


# --------------------------------------------------------------------------- hiring plan
@table(
    schema={
        "horizon_months": "int64",
        "bookings_now": "float64",
        "bookings_target": "float64",
        "bookings_per_fte": "float64",
        "fte_needed": "float64",
        "fte_on_team": "float64",
        "ramp_months": "int64",
        "ramp_at_horizon": "float64",
        "reps_to_hire": "int64",
        "hires_with_failure": "int64",
    },
    needs=("accounts", "subscriptions", "opportunities", "team"),
)
def sales_hiring_plan(
    as_of: int,
    conventions: Conventions,
    tables: Tables,
    sales_capacity: pd.DataFrame,
    sales_by_rep: pd.DataFrame,
) -> pd.DataFrame:
    """Account executives to hire now for a bookings target, per horizon (3, 6, 12 months), like the CSM hiring
    forecast. Bookings now = mean monthly bookings over sales_window_months; the target grows linearly to
    bookings now x (1 + sales_hiring_bookings_growth) at 12 months; a fully ramped AE books the trailing bookings
    per FTE; FTE needed = target / that; the team's FTE at the horizon ramps today's reps further; a hire made
    now reaches min(1, h / ramp_months) of a rep at h; hires = ceil(gap / that ramp) and with failure
    ceil(hires / (1 - sales_rep_failure_rate))."""
    w = conventions.sales_window_months
    window = [month_of(k) for k in range(as_of - w + 1, as_of + 1)]
    recent = sales_by_rep[sales_by_rep.month.isin(window)]
    bookings_now = float(recent.bookings.sum()) / w
    fte = float(recent.ramp_fraction.sum())
    per_fte = bookings_now * w / fte if fte > 0 else math.nan
    team = to_pandas(tables.lazy("team"))
    ramps = team.loc[team.role == "ae", "ramp_months"].dropna()
    ramp = int(ramps.median()) if len(ramps) else 0
    now = sales_capacity[sales_capacity.month == month_of(as_of)].merge(
        team[["member_id", "start_date", "ramp_months"]], on="member_id", how="left"
    )
    rows = []
    for h in HIRING_HORIZONS:
        target = bookings_now * (1 + conventions.sales_hiring_bookings_growth * h / 12)
        needed = target / per_fte if per_fte > 0 else math.nan
        at_h = sum(_ramp_at(r.start_date, r.ramp_months, month_of(as_of + h)) for r in now.itertuples())
        ramp_h = min(1.0, h / ramp) if ramp > 0 else 1.0
        gap = max(0.0, needed - at_h) if not math.isnan(needed) else math.nan
        hires = math.ceil(gap / ramp_h - 1e-9) if not math.isnan(gap) else 0
        rows.append(
            {
                "horizon_months": h,
                "bookings_now": bookings_now,
                "bookings_target": target,
                "bookings_per_fte": per_fte,
                "fte_needed": needed,
                "fte_on_team": float(at_h),
                "ramp_months": ramp,
                "ramp_at_horizon": ramp_h,
                "reps_to_hire": hires,
                "hires_with_failure": math.ceil(hires / (1 - conventions.sales_rep_failure_rate) - 1e-9),
            }
        )
    return pd.DataFrame(rows)


def _ramp_at(start_date, ramp_months, month: pd.Timestamp) -> float:
    """A rep's ramp fraction in `month`: min(1, n / ramp_months) in their n-th month (1 without ramp)."""
    start = pd.Timestamp(start_date)
    nth = (month.year - start.year) * 12 + month.month - start.month + 1
    ramp = 0 if ramp_months is None or (isinstance(ramp_months, float) and math.isnan(ramp_months)) else ramp_months
    return min(1.0, nth / ramp) if ramp > 0 else 1.0
