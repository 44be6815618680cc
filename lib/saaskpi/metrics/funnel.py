"""Acquisition funnel (catalog section 2): visitors, signups, PQLs, opportunities, customers.

Stages run visitor -> signup -> PQL -> opportunity -> customer. A *transition* is one entity
(a lead, or an opportunity) entering stage k at `entered_at` and perhaps reaching stage k+1 at
`reached_at`. Conversion is cohort-based by default: of the entities entering stage k in month M,
the share reaching stage k+1 within the conversion window (boundary inclusive); a cohort whose
window has not elapsed by the end of the workbook's month is immature (shown, flagged, kept out
of targets). `funnel_basis: period` gives the labelled alternative: stage k+1 count in M / stage
k count in M. Funnel tables are small (one row per lead or opportunity), so they are collected
from the engine once and the arithmetic is pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from ..errors import ParameterError
from ..frames import DAY, calendar_months, data_end, lookup, month_start, monthly, safe_ratio, to_pandas
from ..params import Conventions
from ..sources import Tables
from .registry import metric, table

LEADS = ("accounts", "subscriptions", "leads")
OPPS = ("accounts", "subscriptions", "opportunities")
TRAFFIC = ("accounts", "subscriptions", "web_traffic", "leads")
FUNNEL_CONVENTIONS = ("funnel_basis", "conversion_window_days")

VISITOR_SIGNUP, SIGNUP_PQL, PQL_OPP, OPP_WON = (
    "visitor → signup",
    "signup → PQL",
    "PQL → opportunity",
    "opportunity → won",
)
PQL_CUSTOMER, SIGNUP_CUSTOMER, TRIAL_PAID = "PQL → customer", "signup → customer", "self-serve signup → paid"
STAGES = (VISITOR_SIGNUP, SIGNUP_PQL, PQL_OPP, OPP_WON, PQL_CUSTOMER, SIGNUP_CUSTOMER, TRIAL_PAID)


# --------------------------------------------------------------------------- transitions
OPPORTUNITY_COLUMNS = [
    "opportunity_id",
    "created_at",
    "stage",
    "amount",
    "lead_id",
    "account_id",
    "owner_id",
    "closed_at",
    "outcome",
    "cycle_days",
    "created_month",
    "closed_month",
]


@table(
    schema={
        "opportunity_id": "str",
        "created_at": "datetime_utc",
        "stage": "str",
        "amount": "float64",
        "lead_id": "str",
        "account_id": "str",
        "owner_id": "str",
        "closed_at": "datetime_utc",
        "outcome": "str",
        "cycle_days": "float64",
        "created_month": "datetime",
        "closed_month": "datetime",
    },
    needs=("accounts", "subscriptions"),
    export=False,
)
def opportunity_outcomes(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Opportunities as of the end of the workbook's month: created, closed (won or lost) and cycle days (empty without the table)."""
    if not tables.has("opportunities"):
        return pd.DataFrame({c: [] for c in OPPORTUNITY_COLUMNS})
    end = data_end(calendar)
    opps = to_pandas(tables.lazy("opportunities"), sort=["opportunity_id"])
    opps = opps[opps.created_at < end].copy()
    closed = opps.closed_at.notna() & (opps.closed_at < end) & opps.stage.isin(["won", "lost"])
    opps["outcome"] = opps.stage.where(closed, "open")
    opps["closed_at"] = opps.closed_at.where(closed)
    opps["cycle_days"] = (opps.closed_at - opps.created_at) / DAY
    opps["created_month"] = month_start(opps.created_at)
    opps["closed_month"] = month_start(opps.closed_at)
    return opps[OPPORTUNITY_COLUMNS].reset_index(drop=True)


@table(
    schema={
        "lead_id": "str",
        "channel": "str",
        "segment": "str",
        "account_id": "str",
        "created_at": "datetime_utc",
        "pql_at": "datetime_utc",
        "opportunity_at": "datetime_utc",
        "converted_at": "datetime_utc",
        "self_serve": "bool",
    },
    needs=LEADS,
    export=False,
)
def lead_journey(tables: Tables, calendar: pl.DataFrame, opportunity_outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per lead: channel, segment, account and when it signed up, became a PQL, got its first opportunity and became a customer."""
    end = data_end(calendar)
    leads = to_pandas(tables.lazy("leads"), sort=["lead_id"])
    leads = leads[leads.created_at < end].copy()
    for column in ("pql_at", "converted_at"):
        leads[column] = leads[column].where(leads[column] < end)
    stamp = leads.created_at.dtype
    opps = opportunity_outcomes[opportunity_outcomes.lead_id.notna()]
    won = opps[opps.outcome == "won"].groupby("lead_id").closed_at.min()
    leads["opportunity_at"] = lookup(leads.lead_id, opps.groupby("lead_id").created_at.min()).astype(stamp)
    leads["converted_at"] = leads.converted_at.fillna(lookup(leads.lead_id, won).astype(stamp))
    leads["self_serve"] = ~leads.lead_id.isin(opps.lead_id)
    return leads[
        [
            "lead_id",
            "channel",
            "segment",
            "account_id",
            "created_at",
            "pql_at",
            "opportunity_at",
            "converted_at",
            "self_serve",
        ]
    ].reset_index(drop=True)


@table(
    schema={
        "stage": "str",
        "entity": "str",
        "channel": "str",
        "segment": "str",
        "entered_at": "datetime_utc",
        "reached_at": "datetime_utc",
        "days": "float64",
        "month": "datetime",
    },
    needs=LEADS,
    export=False,
)
def funnel_transitions(lead_journey: pd.DataFrame, opportunity_outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per entity and funnel transition: stage, entity, channel, segment, entered_at, reached_at (empty = not reached)."""
    j = lead_journey
    pairs = [
        (SIGNUP_PQL, j, "created_at", "pql_at"),
        (PQL_OPP, j, "pql_at", "opportunity_at"),
        (PQL_CUSTOMER, j, "pql_at", "converted_at"),
        (SIGNUP_CUSTOMER, j, "created_at", "converted_at"),
        (TRIAL_PAID, j[j.self_serve], "created_at", "converted_at"),
    ]
    parts = [
        pd.DataFrame(
            {
                "stage": stage,
                "entity": f.lead_id,
                "channel": f.channel,
                "segment": f.segment,
                "entered_at": f[start],
                "reached_at": f[stop],
            }
        )
        for stage, f, start, stop in pairs
    ]
    # each opportunity is its own attempt, with the channel and segment of its lead
    o = opportunity_outcomes.join(j.set_index("lead_id")[["channel", "segment"]], on="lead_id")
    parts.append(
        pd.DataFrame(
            {
                "stage": OPP_WON,
                "entity": o.opportunity_id,
                "channel": o.channel,
                "segment": o.segment,
                "entered_at": o.created_at,
                "reached_at": o.closed_at.where(o.outcome == "won"),
            }
        )
    )
    out = pd.concat([p for p in parts if len(p)], ignore_index=True)
    out = out[out.entered_at.notna()].copy()
    out["days"] = (out.reached_at - out.entered_at) / DAY
    out["month"] = month_start(out.entered_at)
    return out.reset_index(drop=True)


def converted(transitions: pd.DataFrame, conventions: Conventions) -> tuple[pd.Series, pd.Series]:
    """Which transitions count as conversions under the basis, and the month each is counted in.

    Cohort: reached at most `conversion_window_days` after entering (0 <= days <= window; a next
    stage dated before the entry is out of order), counted in the entry month. Period: reached at
    all (in order), counted in the month it was reached.
    """
    if conventions.funnel_basis == "cohort":
        return transitions.days.between(0, conventions.conversion_window_days), transitions.month
    return transitions.days >= 0, month_start(transitions.reached_at)


def conversion_table(
    transitions: pd.DataFrame, calendar: pl.DataFrame, conventions: Conventions, by: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Entered, converted, conversion_rate, median_days and immature per month, stage and `by`.

    Cohort basis: converted = entrants of month M that reached the next stage at most
    `conversion_window_days` after entering (0 <= days <= window; a next stage dated before the
    entry is out of order and does not count). Period basis: converted = next-stage arrivals
    dated in M. Months without entrants have conversion_rate NaN (n/a), never 0.
    """
    t = transitions
    keys = ["stage", *by]
    hit, when = converted(t, conventions)
    entered = (
        t.assign(out_of_order=t.days < 0)
        .groupby(["month", *keys], dropna=False)
        .agg(entered=("entity", "size"), out_of_order=("out_of_order", "sum"))
    )
    conversions = t[hit].assign(month=when[hit])
    reached = conversions.groupby(["month", *keys], dropna=False).agg(
        converted=("entity", "size"), median_days=("days", "median")
    )
    out = pd.concat([entered, reached], axis=1).reset_index()
    months = calendar_months(calendar)
    present = out[keys].drop_duplicates() if len(out) else pd.DataFrame({k: [] for k in keys})
    grid = months[["month", "end"]].merge(present, how="cross")
    out = grid.merge(out, on=["month", *keys], how="left")
    out[["entered", "converted", "out_of_order"]] = (
        out[["entered", "converted", "out_of_order"]].fillna(0).astype("int64")
    )
    out["conversion_rate"] = conversion_rate(out.converted, out.entered)
    window = pd.Timedelta(days=conventions.conversion_window_days)
    out["immature"] = (out.end + window > months.end.max()) if conventions.funnel_basis == "cohort" else False
    out["basis"] = conventions.funnel_basis
    return (
        out[
            [
                "month",
                *keys,
                "entered",
                "converted",
                "conversion_rate",
                "median_days",
                "immature",
                "out_of_order",
                "basis",
            ]
        ]
        .sort_values(["month", *keys], kind="stable")
        .reset_index(drop=True)
    )


def conversion_rate(converted, entered):
    """Share of a stage's entrants who reached the next stage (n/a without entrants): the conversion formula of
    every funnel metric and table, for one month or pooled over several."""
    return safe_ratio(converted, entered)


def pooled_conversion(
    funnel_table: pd.DataFrame, months: list[pd.Timestamp], stages: tuple[str, ...], by: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Entrants, conversions and their conversion rate per stage (and `by` group), summed over `months`."""
    rows = funnel_table[funnel_table.month.isin(months) & funnel_table.stage.isin(stages)]
    out = rows.groupby([*by, "stage"], as_index=False)[["entered", "converted"]].sum()
    out["conversion_rate"] = conversion_rate(out.converted, out.entered)
    return out


def _visitor_rows(tables: Tables, calendar: pl.DataFrame, journey: pd.DataFrame, by: tuple[str, ...]) -> pd.DataFrame:
    """Visitor -> signup per month (period-based by nature: traffic is counted per month, not per visitor)."""
    months = calendar_months(calendar)[["month"]]
    web = to_pandas(tables.lazy("web_traffic"))
    web["month"] = pd.to_datetime(web.month)
    keys = [k for k in by if k == "channel"]
    visitors = web.groupby(["month", *keys]).unique_visitors.sum().rename("entered")
    signups = journey.assign(month=month_start(journey.created_at)).groupby(["month", *keys]).size().rename("converted")
    out = months.merge(pd.concat([visitors, signups], axis=1).reset_index(), on="month", how="left")
    out = out[out.month.isin(months.month)]
    out[["entered", "converted"]] = out[["entered", "converted"]].fillna(0).astype("int64")
    out["stage"] = VISITOR_SIGNUP
    out["conversion_rate"] = conversion_rate(out.converted, out.entered)
    out["median_days"], out["immature"], out["out_of_order"], out["basis"] = np.nan, False, 0, "period"
    return out


@table(
    schema={
        "month": "datetime",
        "stage": "str",
        "entered": "int64",
        "converted": "int64",
        "conversion_rate": "float64",
        "median_days": "float64",
        "immature": "bool",
        "out_of_order": "int64",
        "basis": "str",
    },
    needs=LEADS,
)
def funnel_by_month(
    tables: Tables,
    calendar: pl.DataFrame,
    conventions: Conventions,
    funnel_transitions: pd.DataFrame,
    lead_journey: pd.DataFrame,
) -> pd.DataFrame:
    """Per month and funnel stage: entered, converted, conversion_rate, median_days to convert, immature, basis."""
    out = conversion_table(funnel_transitions, calendar, conventions)
    if tables.has("web_traffic"):
        out = pd.concat([_visitor_rows(tables, calendar, lead_journey, ()), out], ignore_index=True)
    out["stage"] = pd.Categorical(out.stage, categories=STAGES, ordered=True)
    out = out.sort_values(["month", "stage"], kind="stable").reset_index(drop=True)
    out["stage"] = out.stage.astype(str)
    return out[
        [
            "month",
            "stage",
            "entered",
            "converted",
            "conversion_rate",
            "median_days",
            "immature",
            "out_of_order",
            "basis",
        ]
    ]


@table(
    schema={
        "month": "datetime",
        "channel": "str",
        "stage": "str",
        "entered": "int64",
        "converted": "int64",
        "conversion_rate": "float64",
        "median_days": "float64",
        "immature": "bool",
        "basis": "str",
    },
    needs=LEADS,
)
def funnel_by_channel(
    tables: Tables,
    calendar: pl.DataFrame,
    conventions: Conventions,
    funnel_transitions: pd.DataFrame,
    lead_journey: pd.DataFrame,
) -> pd.DataFrame:
    """Per month, acquisition channel and funnel stage: entered, converted, conversion_rate, median_days, immature."""
    out = conversion_table(funnel_transitions, calendar, conventions, by=("channel",))
    if tables.has("web_traffic"):
        out = pd.concat([_visitor_rows(tables, calendar, lead_journey, ("channel",)), out], ignore_index=True)
    return out.sort_values(["month", "channel", "stage"], kind="stable").reset_index(drop=True)[
        ["month", "channel", "stage", "entered", "converted", "conversion_rate", "median_days", "immature", "basis"]
    ]


@table(
    schema={
        "month": "datetime",
        "segment": "str",
        "stage": "str",
        "entered": "int64",
        "converted": "int64",
        "conversion_rate": "float64",
        "median_days": "float64",
        "immature": "bool",
        "basis": "str",
    },
    needs=LEADS,
)
def funnel_by_segment(
    calendar: pl.DataFrame, conventions: Conventions, funnel_transitions: pd.DataFrame
) -> pd.DataFrame:
    """Per month, lead segment and funnel stage: entered, converted, conversion_rate, median_days, immature."""
    t = funnel_transitions.assign(segment=funnel_transitions.segment.fillna("unknown"))
    return conversion_table(t, calendar, conventions, by=("segment",))[
        ["month", "segment", "stage", "entered", "converted", "conversion_rate", "median_days", "immature", "basis"]
    ]


def stage_series(
    funnel_by_month: pd.DataFrame, stage: str, column: str = "conversion_rate", n: str = "entered"
) -> pd.DataFrame:
    """One funnel stage as a metric series (month, value, n, immature)."""
    rows = funnel_by_month[funnel_by_month.stage == stage]
    return pd.DataFrame(
        {
            "month": rows.month.to_numpy(),
            "value": rows[column].to_numpy(dtype="float64"),
            "n": rows[n].to_numpy(dtype="float64"),
            "immature": rows.immature.to_numpy(dtype=bool),
        }
    )


# --------------------------------------------------------------------------- top of the funnel
@metric(
    label="Unique visitors",
    formula="sum over channels of web_traffic.unique_visitors in the month (company-wide: traffic has no segment)",
    unit="count",
    direction="higher",
    level="operational",
    sources=("J", "U"),
    area="funnel",
    needs=TRAFFIC,
    tile=2,
)
def unique_visitors(funnel_by_month: pd.DataFrame) -> pd.DataFrame:
    """Unique website visitors in the month."""
    s = stage_series(funnel_by_month, VISITOR_SIGNUP, "entered")
    return s.assign(value=s.n)


@metric(
    label="Visitor-to-signup rate",
    formula="signups in M / unique visitors in M (period-based by nature; in a "
    "segment workbook: that segment's signups / all visitors)",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("J", "U"),
    area="funnel",
    needs=TRAFFIC,
    proportion=True,
    tile=3,
)
def visitor_to_signup_rate(funnel_by_month: pd.DataFrame) -> pd.DataFrame:
    """Share of the month's unique visitors who signed up."""
    return stage_series(funnel_by_month, VISITOR_SIGNUP)


@metric(
    label="Signups",
    formula="leads created in M",
    unit="count",
    direction="higher",
    level="operational",
    sources=("J", "S"),
    area="funnel",
    needs=LEADS,
    tile=1,
)
def signups(funnel_by_month: pd.DataFrame) -> pd.DataFrame:
    """New signups (leads) in the month."""
    s = stage_series(funnel_by_month, SIGNUP_PQL, "entered")
    return s.assign(value=s.n, immature=False)


@metric(
    label="Signup-to-PQL rate",
    formula="cohort: signups of M that became a PQL within the conversion window / "
    "signups of M (period: PQLs in M / signups in M)",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("J", "S"),
    area="funnel",
    needs=LEADS,
    conventions=FUNNEL_CONVENTIONS,
    proportion=True,
    tile=4,
)
def signup_to_pql_rate(funnel_by_month: pd.DataFrame) -> pd.DataFrame:
    """Share of signups who became product-qualified leads."""
    return stage_series(funnel_by_month, SIGNUP_PQL)


def _pqls(lead_journey: pd.DataFrame) -> pd.DataFrame:
    j = lead_journey[lead_journey.pql_at.notna() & (lead_journey.pql_at >= lead_journey.created_at)]
    return j.assign(month=month_start(j.pql_at), days=(j.pql_at - j.created_at) / DAY)


@metric(
    label="Time to PQL (median)",
    formula="median over leads that became a PQL in M of days from signup to PQL",
    unit="days",
    direction="lower",
    level="operational",
    sources=("J",),
    area="funnel",
    needs=LEADS,
    tile=6,
)
def time_to_pql_median_days(calendar: pl.DataFrame, lead_journey: pd.DataFrame) -> pd.DataFrame:
    """Median days from signup to PQL, for the month's new PQLs."""
    p = _pqls(lead_journey)
    return monthly(calendar, p.month, p.days, "median")


@metric(
    label="Time to PQL (mean)",
    formula="mean over leads that became a PQL in M of days from signup to PQL",
    unit="days",
    direction="lower",
    level="operational",
    sources=("J",),
    area="funnel",
    needs=LEADS,
)
def time_to_pql_mean_days(calendar: pl.DataFrame, lead_journey: pd.DataFrame) -> pd.DataFrame:
    """Mean days from signup to PQL, for the month's new PQLs."""
    p = _pqls(lead_journey)
    return monthly(calendar, p.month, p.days, "mean")


@metric(
    label="Qualified leads (PQLs)",
    formula="leads that became a product-qualified lead in M",
    unit="count",
    direction="higher",
    level="core",
    sources=("J",),
    area="funnel",
    needs=LEADS,
    tile=5,
)
def qualified_leads(calendar: pl.DataFrame, lead_journey: pd.DataFrame) -> pd.DataFrame:
    """New product-qualified leads in the month (journey top-7: growing qualified leads)."""
    p = _pqls(lead_journey)
    out = monthly(calendar, p.month, p.days, "size")
    return out.assign(n=out.value)


@metric(
    label="Qualified-lead growth",
    formula="PQLs in M / PQLs in M-1 - 1 (n = PQLs in M-1)",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("J",),
    area="funnel",
    needs=LEADS,
)
def qualified_lead_growth(qualified_leads: pd.DataFrame) -> pd.DataFrame:
    """Month-over-month growth of the PQL count."""
    prev = qualified_leads.value.shift(1)
    return pd.DataFrame(
        {"month": qualified_leads.month, "value": safe_ratio(qualified_leads.value, prev) - 1, "n": prev.fillna(0)}
    )


@metric(
    label="PQL-to-customer rate",
    formula="cohort: PQLs of M that became paying customers within the conversion window / PQLs of M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("J", "S"),
    area="funnel",
    needs=LEADS,
    conventions=FUNNEL_CONVENTIONS,
    proportion=True,
    tile=7,
)
def pql_to_customer_rate(funnel_by_month: pd.DataFrame) -> pd.DataFrame:
    """Share of product-qualified leads who became paying customers."""
    return stage_series(funnel_by_month, PQL_CUSTOMER)


@metric(
    label="Lead conversion rate",
    formula="cohort: leads of M that became customers within the conversion window / leads of M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("J", "U"),
    area="funnel",
    needs=LEADS,
    conventions=FUNNEL_CONVENTIONS,
    proportion=True,
    tile=8,
)
def lead_conversion_rate(funnel_by_month: pd.DataFrame) -> pd.DataFrame:
    """Share of leads who became paying customers."""
    return stage_series(funnel_by_month, SIGNUP_CUSTOMER)


@metric(
    label="Trial-to-paid conversion",
    formula="cohort: self-serve signups of M (leads without a sales "
    "opportunity) that became paying within the conversion window / self-serve signups of M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="funnel",
    target=0.15,
    needs=LEADS,
    conventions=FUNNEL_CONVENTIONS,
    proportion=True,
    long_term_target=0.2,
    tile=9,
    target_source="S: SaaS metrics collection (free-to-paid conversion healthy around 15-20 %)",
)
def trial_to_paid_conversion(funnel_by_month: pd.DataFrame) -> pd.DataFrame:
    """Free-to-paid conversion of self-serve signups (healthy around 15-20 %)."""
    return stage_series(funnel_by_month, TRIAL_PAID)


@metric(
    sampled=True,
    label="Revenue per lead",
    formula="cohort: new ARR (first paying month's MRR x 12) of leads of M that became "
    "customers within the conversion window / leads of M (period: new ARR of leads converted in M / leads of M)",
    unit="currency",
    direction="higher",
    level="core",
    sources=("J",),
    area="funnel",
    needs=LEADS,
    conventions=("reporting_currency", *FUNNEL_CONVENTIONS),
    tile=10,
)
def revenue_per_lead(
    calendar: pl.DataFrame,
    conventions: Conventions,
    lead_journey: pd.DataFrame,
    funnel_transitions: pd.DataFrame,
    funnel_by_month: pd.DataFrame,
    account_mrr: pd.DataFrame,
) -> pd.DataFrame:
    """New ARR won from a month's lead cohort divided by the leads in it."""
    first_arr = account_mrr.sort_values("month").groupby("account_id").mrr.first() * 12
    t = funnel_transitions[funnel_transitions.stage == SIGNUP_CUSTOMER]
    arr = t.entity.map(lead_journey.set_index("lead_id").account_id).map(first_arr).fillna(0.0)
    hit, when = converted(t, conventions)
    revenue = monthly(calendar, when[hit], arr[hit], "sum").set_index("month").value
    base = stage_series(funnel_by_month, SIGNUP_CUSTOMER)
    return base.assign(value=safe_ratio(base.month.map(revenue).fillna(0.0), base.n))


# --------------------------------------------------------------------------- sales
def _won(o: pd.DataFrame) -> pd.DataFrame:
    return o[o.outcome == "won"]


@metric(
    label="Opportunities created",
    formula="opportunities created in M",
    unit="count",
    direction="higher",
    level="operational",
    sources=("S",),
    area="sales",
    needs=OPPS,
    tile=11,
)
def opportunities_created(calendar: pl.DataFrame, opportunity_outcomes: pd.DataFrame) -> pd.DataFrame:
    """New sales opportunities in the month."""
    o = opportunity_outcomes
    out = monthly(calendar, o.created_month, o.amount, "size")
    return out.assign(n=out.value)


@metric(
    label="Win rate",
    formula="won / (won + lost) among opportunities closed in M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S", "J"),
    area="sales",
    needs=OPPS,
    proportion=True,
    tile=12,
)
def win_rate(calendar: pl.DataFrame, opportunity_outcomes: pd.DataFrame) -> pd.DataFrame:
    """Share of the month's closed opportunities that were won."""
    closed = opportunity_outcomes[opportunity_outcomes.outcome != "open"]
    return monthly(calendar, closed.closed_month, (closed.outcome == "won").astype(float), "mean")


@metric(
    sampled=True,
    label="Average deal size",
    formula="sum of first-year contract value of opportunities won in M / deals won in M",
    unit="currency",
    direction="higher",
    level="core",
    sources=("J", "S"),
    area="sales",
    needs=OPPS,
    conventions=("reporting_currency",),
    tile=13,
)
def average_deal_size(calendar: pl.DataFrame, opportunity_outcomes: pd.DataFrame) -> pd.DataFrame:
    """Mean first-year contract value of the month's won deals."""
    won = _won(opportunity_outcomes)
    return monthly(calendar, won.closed_month, won.amount, "mean")


@metric(
    label="Sales cycle (median)",
    formula="median over opportunities won in M of days from creation to close",
    unit="days",
    direction="lower",
    level="operational",
    sources=("S", "J"),
    area="sales",
    needs=OPPS,
    tile=14,
)
def sales_cycle_median_days(calendar: pl.DataFrame, opportunity_outcomes: pd.DataFrame) -> pd.DataFrame:
    """Median days from opportunity creation to closed-won."""
    won = _won(opportunity_outcomes)
    return monthly(calendar, won.closed_month, won.cycle_days, "median")


@metric(
    label="Sales cycle (mean)",
    formula="mean over opportunities won in M of days from creation to close",
    unit="days",
    direction="lower",
    level="operational",
    sources=("S", "J"),
    area="sales",
    needs=OPPS,
)
def sales_cycle_mean_days(calendar: pl.DataFrame, opportunity_outcomes: pd.DataFrame) -> pd.DataFrame:
    """Mean days from opportunity creation to closed-won."""
    won = _won(opportunity_outcomes)
    return monthly(calendar, won.closed_month, won.cycle_days, "mean")


@table(
    schema={
        "month": "datetime",
        "open_opportunities": "int64",
        "pipeline_value": "float64",
        "weighted_pipeline_value": "float64",
    },
    needs=OPPS,
)
def pipeline_by_month(
    calendar: pl.DataFrame, conventions: Conventions, opportunity_outcomes: pd.DataFrame
) -> pd.DataFrame:
    """Open pipeline at each month end: open opportunities, their amount, and the stage-weighted amount."""
    o = opportunity_outcomes
    weights = conventions.pipeline_stage_weights
    unknown = sorted(set(o.stage) - set(weights))
    if unknown:
        raise ParameterError(
            f"conventions.yaml: `pipeline_stage_weights` has no weight for stage(s) {', '.join(unknown)}."
        )
    # the stage a past month-end saw is not recorded: opportunities closed since count at their outcome
    weight = o.stage.map(weights).astype("float64")
    rows = []
    for month, end in calendar_months(calendar).itertuples(index=False):
        open_then = (o.created_at < end) & (o.closed_at.isna() | (o.closed_at >= end))
        rows.append(
            (month, int(open_then.sum()), float(o.amount[open_then].sum()), float((o.amount * weight)[open_then].sum()))
        )
    return pd.DataFrame(rows, columns=["month", "open_opportunities", "pipeline_value", "weighted_pipeline_value"])


@metric(
    label="Pipeline value",
    formula="sum of amounts of opportunities open at the month end",
    unit="currency",
    direction="higher",
    level="operational",
    sources=("S",),
    area="sales",
    needs=OPPS,
    conventions=("reporting_currency",),
    tile=15,
)
def pipeline_value(pipeline_by_month: pd.DataFrame) -> pd.DataFrame:
    """Open pipeline at the month end."""
    p = pipeline_by_month
    return pd.DataFrame({"month": p.month, "value": p.pipeline_value, "n": p.open_opportunities.astype(float)})


@metric(
    label="Weighted pipeline",
    formula="sum over opportunities open at the month end of amount x stage weight",
    unit="currency",
    direction="higher",
    level="operational",
    sources=("S",),
    area="sales",
    needs=OPPS,
    conventions=("reporting_currency", "pipeline_stage_weights"),
    tile=16,
)
def weighted_pipeline_value(pipeline_by_month: pd.DataFrame) -> pd.DataFrame:
    """Open pipeline at the month end, weighted by each stage's probability."""
    p = pipeline_by_month
    return pd.DataFrame({"month": p.month, "value": p.weighted_pipeline_value, "n": p.open_opportunities.astype(float)})


SALES_TEAM = ("accounts", "subscriptions", "team")


@table(schema={"month": "datetime", "member_id": "str", "name": "str", "ramp_fraction": "float64"}, needs=SALES_TEAM)
def sales_capacity(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Account executives on the team on each month's last day, with their ramp fraction min(1, n / ramp_months) in their n-th month (1 without ramp)."""
    team = to_pandas(tables.lazy("team"))
    aes = team.loc[team.role == "ae", ["member_id", "name", "start_date", "end_date", "ramp_months"]]
    grid = calendar_months(calendar).merge(aes, how="cross")
    last_day = (grid.end - DAY).dt.tz_localize(None)
    on_team = (grid.start_date <= last_day) & (grid.end_date.isna() | (grid.end_date > last_day))
    grid = grid[on_team]
    nth = (grid.month.dt.year - grid.start_date.dt.year) * 12 + grid.month.dt.month - grid.start_date.dt.month + 1
    ramp = grid.ramp_months.fillna(0)
    fraction = np.where(ramp > 0, np.minimum(1.0, nth / ramp.where(ramp > 0, 1)), 1.0)
    return pd.DataFrame(
        {"month": grid.month, "member_id": grid.member_id, "name": grid.name, "ramp_fraction": fraction}
    ).reset_index(drop=True)


@metric(
    label="Sales capacity (FTE)",
    formula="sum over account executives on the team at the month end of their ramp "
    "fraction min(1, (months since start + 1) / ramp_months)",
    unit="count",
    direction="higher",
    level="operational",
    sources=("S",),
    area="sales",
    needs=SALES_TEAM,
    tile=17,
)
def sales_capacity_fte(calendar: pl.DataFrame, sales_capacity: pd.DataFrame) -> pd.DataFrame:
    """Quota-carrying capacity in full-time equivalents, ramping reps counted by their ramp fraction."""
    return monthly(calendar, sales_capacity.month, sales_capacity.ramp_fraction, "sum")


@metric(
    sampled=True,
    label="Revenue per rep",
    formula="first-year contract value won in M / sales capacity (FTE) in M",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="sales",
    needs=("accounts", "subscriptions", "opportunities", "team"),
    conventions=("reporting_currency",),
    tile=18,
)
def revenue_per_rep(
    calendar: pl.DataFrame, opportunity_outcomes: pd.DataFrame, sales_capacity_fte: pd.DataFrame
) -> pd.DataFrame:
    """Bookings per full-time-equivalent account executive."""
    won = _won(opportunity_outcomes)
    bookings = monthly(calendar, won.closed_month, won.amount, "sum")
    return pd.DataFrame(
        {
            "month": bookings.month,
            "value": safe_ratio(bookings.value, sales_capacity_fte.value),
            "n": sales_capacity_fte.value,
        }
    )


@table(
    schema={
        "month": "datetime",
        "member_id": "str",
        "name": "str",
        "ramp_fraction": "float64",
        "created": "int64",
        "won": "int64",
        "lost": "int64",
        "win_rate": "float64",
        "bookings": "float64",
    },
    needs=("accounts", "subscriptions", "opportunities", "team"),
)
def sales_by_rep(
    calendar: pl.DataFrame, opportunity_outcomes: pd.DataFrame, sales_capacity: pd.DataFrame
) -> pd.DataFrame:
    """Per month and account executive: opportunities created, won, lost, win rate, bookings and ramp fraction."""
    o = opportunity_outcomes
    created = o.groupby(["created_month", "owner_id"]).size().rename("created").rename_axis(["month", "member_id"])
    closed = o[o.outcome != "open"]
    won = closed.outcome == "won"
    outcome = (
        closed.assign(won=won, lost=~won, bookings=closed.amount.where(won, 0.0))
        .groupby(["closed_month", "owner_id"])[["won", "lost", "bookings"]]
        .sum()
        .rename_axis(["month", "member_id"])
    )
    out = sales_capacity.set_index(["month", "member_id"]).join(pd.concat([created, outcome], axis=1), how="left")
    out[["created", "won", "lost"]] = out[["created", "won", "lost"]].fillna(0).astype("int64")
    out["bookings"] = out.bookings.fillna(0.0)
    out["win_rate"] = closed_win_rate(out.won, out.lost)
    return out.reset_index()[
        ["month", "member_id", "name", "ramp_fraction", "created", "won", "lost", "win_rate", "bookings"]
    ]


def closed_win_rate(won, lost):
    """Share of closed opportunities that were won (n/a when none closed): the win-rate formula, for any grouping."""
    return safe_ratio(won, won + lost)


def rep_totals(sales_by_rep: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per account executive over the months in (start, end]: created, won, lost, bookings, their win rate, and
    the ramp fraction in `end`."""
    recent = sales_by_rep[(sales_by_rep.month <= end) & (sales_by_rep.month > start)]
    out = recent.groupby(["member_id", "name"], as_index=False)[["created", "won", "lost", "bookings"]].sum()
    out["win_rate"] = closed_win_rate(out.won, out.lost)
    now = sales_by_rep[sales_by_rep.month == end].set_index("member_id").ramp_fraction
    out["ramp_fraction"] = out.member_id.map(now).fillna(0.0)
    return out


# --------------------------------------------------------------------------- activation
USERS = ("accounts", "subscriptions", "users")


def _users(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    end = data_end(calendar)
    users = to_pandas(tables.lazy("users"), sort=["user_id"])
    users = users[users.created_at < end].copy()
    users["activated_at"] = users.activated_at.where(users.activated_at < end)
    return users


@metric(
    label="Activation rate",
    formula="users created in M who reached the activation milestone within "
    "activation_window_days / users created in M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S", "C"),
    area="activation",
    needs=USERS,
    conventions=("activation_window_days",),
    proportion=True,
    tile=19,
)
def activation_rate(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Share of the month's new users who activated."""
    u = _users(tables, calendar)
    window = conventions.activation_window_days
    days = (u.activated_at - u.created_at) / DAY
    out = monthly(calendar, month_start(u.created_at), days.between(0, window).astype(float), "mean")
    out["immature"] = calendar_months(calendar).end + pd.Timedelta(days=window) > data_end(calendar)
    return out


@table(
    schema={"account_id": "str", "created_at": "datetime_utc", "activated_at": "datetime_utc", "days": "float64"},
    needs=USERS,
    export=False,
)
def account_activation(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Per account: signup (accounts.created_at) and its first user activation (the activation milestone)."""
    u = _users(tables, calendar)
    first = u.groupby("account_id").activated_at.min()
    accounts = to_pandas(tables.lazy("accounts").select("account_id", "created_at"), sort=["account_id"])
    accounts = accounts[accounts.created_at < data_end(calendar)].copy()
    accounts["activated_at"] = lookup(accounts.account_id, first).astype(accounts.created_at.dtype)
    accounts["days"] = (accounts.activated_at - accounts.created_at) / DAY
    return accounts


@metric(
    label="Activation velocity",
    formula="accounts created in M whose first user activated within activation_hours "
    "of the account's signup / accounts created in M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="activation",
    needs=USERS,
    conventions=("activation_hours",),
    proportion=True,
    tile=20,
)
def activation_velocity(
    calendar: pl.DataFrame, conventions: Conventions, account_activation: pd.DataFrame
) -> pd.DataFrame:
    """Share of new accounts activated within the activation hours (default 48) of signup."""
    a = account_activation
    fast = (a.days * 24).between(0, conventions.activation_hours).astype(float)
    out = monthly(calendar, month_start(a.created_at), fast, "mean")
    out["immature"] = calendar_months(calendar).end + pd.Timedelta(hours=conventions.activation_hours) > data_end(
        calendar
    )
    return out


@metric(
    label="Time to value (median)",
    formula="median over accounts first activated in M of days from account signup to first activation",
    unit="days",
    direction="lower",
    level="operational",
    sources=("C",),
    area="activation",
    needs=USERS,
    tile=21,
)
def time_to_value_days(calendar: pl.DataFrame, account_activation: pd.DataFrame) -> pd.DataFrame:
    """Median days from an account's signup to its activation milestone."""
    a = account_activation[account_activation.days >= 0]
    return monthly(calendar, month_start(a.activated_at), a.days, "median")


@metric(
    label="New-user churn rate",
    formula="users activated in M whose last activity falls within new_user_churn_days "
    "of activation / users activated in M whose outcome is decided (that many days of data follow their last "
    "activity, or they were active later than that)",
    unit="fraction",
    direction="lower",
    level="supporting",
    sources=("S",),
    area="activation",
    needs=(*USERS, "usage_events"),
    conventions=("new_user_churn_days",),
    proportion=True,
    tile=22,
)
def new_user_churn_rate(
    tables: Tables, calendar: pl.DataFrame, conventions: Conventions, user_month_activity: pd.DataFrame
) -> pd.DataFrame:
    """Share of newly activated users who stopped using the product soon after activation."""
    end = data_end(calendar)
    u = _users(tables, calendar)
    u = u[u.activated_at.notna()]
    # the data ends with the calendar's last month: the last event before it is the last of its months
    a = user_month_activity
    last = a[a.key <= int(calendar["month"].max())].groupby("user_id").last_event.max()
    last_seen = lookup(u.user_id, last).astype(u.activated_at.dtype)
    last_seen = last_seen.where(last_seen > u.activated_at, u.activated_at)
    limit = pd.Timedelta(days=conventions.new_user_churn_days)
    churned = last_seen <= u.activated_at + limit
    decided = ~churned | (end - last_seen >= limit)
    out = monthly(calendar, month_start(u.activated_at[decided]), churned[decided].astype(float), "mean")
    # a user activated at the end of M is decided at most 2 x new_user_churn_days later
    out["immature"] = calendar_months(calendar).end + 2 * limit > end
    return out


@metric(
    label="Viral coefficient",
    formula="users created in M referred by an existing user / monthly active users in M-1",
    unit="number",
    direction="higher",
    level="operational",
    sources=("C",),
    area="activation",
    needs=(*USERS, "usage_events"),
    tile=23,
)
def viral_coefficient(tables: Tables, calendar: pl.DataFrame, active_users: pd.DataFrame) -> pd.DataFrame:
    """Referred signups per active user of the month before."""
    u = _users(tables, calendar)
    referred = u[u.referred_by.notna()]
    counts = monthly(calendar, month_start(referred.created_at), pd.Series(1.0, index=referred.index), "size")
    prev_mau = active_users.set_index("month").mau.reindex(counts.month - pd.offsets.MonthBegin(1))
    return pd.DataFrame(
        {
            "month": counts.month,
            "value": safe_ratio(counts.value, prev_mau.to_numpy()),
            "n": prev_mau.fillna(0).to_numpy(dtype="float64"),
        }
    )
