"""Customer success (catalog section 5), company-level series: voice of the customer (NPS over a trailing
window, CSAT), adoption and usage, support times and SLA, relationship and collections."""

from __future__ import annotations

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import calendar_months, data_end, key_of, lookup, month_of, month_start, monthly, safe_ratio, to_pandas
from ..params import Conventions, SuccessSettings
from ..sources import Tables
from .registry import metric, table
from .series import month_series
from .usage import in_calendar, user_months

NPS_COUNTS = [
    nw.len().cast(nw.Int64).alias("n"),
    (nw.col("score") >= 9).cast(nw.Int64).sum().alias("promoters"),
    (nw.col("score") <= 6).cast(nw.Int64).sum().alias("detractors"),
]


def _with_nps(out: pd.DataFrame) -> pd.DataFrame:
    out["nps"] = safe_ratio(100 * (out.promoters - out.detractors), out.n)
    return out


def nps_counts(tables: Tables, start: pd.Timestamp, end: pd.Timestamp, by: tuple[str, ...]) -> pd.DataFrame:
    """NPS answers given in [start, end) (UTC): n, promoters (9-10), detractors (0-6) and nps, per `by` columns."""
    answers = tables.lazy("nps_responses").filter(
        (nw.col("responded_at") >= start.to_pydatetime()) & (nw.col("responded_at") < end.to_pydatetime())
    )
    return _with_nps(to_pandas(answers.group_by(*by).agg(*NPS_COUNTS)))


def nps_by_month(tables: Tables, calendar: pl.DataFrame, window_days: int) -> pd.DataFrame:
    """Per calendar month: the NPS answers given in the `window_days` ending at the month end (n, promoters,
    detractors, nps; n = 0 and nps n/a without answers). The windows are a small frame joined on the engine."""
    months = calendar_months(calendar)
    windows = pl.DataFrame(
        {"i": range(len(months)), "start": months.end - pd.Timedelta(days=window_days), "end": months.end}
    ).with_columns(pl.col("start", "end").cast(pl.Datetime("us", "UTC")))
    answers = (
        tables.lazy("nps_responses")
        .join(tables.from_polars(windows), how="cross")
        .filter((nw.col("responded_at") >= nw.col("start")) & (nw.col("responded_at") < nw.col("end")))
    )
    counts = to_pandas(answers.group_by("i").agg(*NPS_COUNTS)).set_index("i")
    out = counts.reindex(range(len(months))).fillna(0).astype("int64").reset_index(drop=True)
    return _with_nps(out.assign(month=months.month))


@metric(
    label="NPS",
    formula="100 x (promoters (9-10) - detractors (0-6)) / responses, over responses in the "
    "nps_window_days ending at the month end; n/a without responses",
    unit="score",
    direction="higher",
    level="core",
    sources=("C", "P", "J"),
    area="success",
    conventions=("nps_window_days",),
    needs=("accounts", "subscriptions", "nps_responses"),
    tile=7,
)
def net_promoter_score(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Net Promoter Score of the answers given in the trailing window."""
    counts = nps_by_month(tables, calendar, conventions.nps_window_days)
    return month_series(counts.month, counts.nps, counts.n)


@metric(
    settles=True,
    label="CSAT",
    formula="rated tickets scoring 4-5 of 5 / rated tickets, tickets opened in M",
    unit="fraction",
    direction="higher",
    level="core",
    sources=("C", "P", "J"),
    area="success",
    proportion=True,
    needs=("accounts", "subscriptions", "support_tickets"),
    tile=8,
)
def customer_satisfaction(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Share of the month's rated support tickets that the customer rated satisfied (4 or 5)."""
    t = tables.lazy("support_tickets")
    if "csat" not in t.columns:
        return monthly(calendar, pd.Series([], dtype="datetime64[ns]"), pd.Series([], dtype="float64"), "mean")
    rated = to_pandas(t.filter(~nw.col("csat").is_null()).select("created_at", "csat"))
    return monthly(calendar, month_start(rated.created_at), rated.csat >= 4, "mean")


# --------------------------------------------------------------------------- adoption and usage
USAGE = ("accounts", "subscriptions", "usage_events")


@metric(
    label="Licence utilisation",
    formula="monthly active users of paying accounts with seats / their licensed seats, at the month end",
    unit="fraction",
    direction="higher",
    level="core",
    sources=("P",),
    area="success",
    needs=USAGE,
    tile=6,
)
def licence_utilisation_rate(account_measures: pd.DataFrame) -> pd.DataFrame:
    """How much of what customers bought they use: active users per licensed seat."""
    m = account_measures[account_measures.seats > 0]
    g = m.groupby("month")
    return month_series(g.size().index, safe_ratio(g.mau.sum(), g.seats.sum()), g.seats.sum())


@metric(
    label="Customer engagement score",
    formula="mean over paying accounts of points for sticky features used in "
    "the 30 days to the month end / all points x 100 (customer_success.yaml)",
    unit="score",
    direction="higher",
    level="core",
    sources=("S",),
    area="success",
    needs=USAGE,
)
def customer_engagement_score(account_measures: pd.DataFrame) -> pd.DataFrame:
    """How many of the sticky features the average paying account used lately, 0-100."""
    g = account_measures.groupby("month").engagement_score
    return month_series(g.size().index, g.mean(), g.count())


@table(
    schema={
        "month": "datetime",
        "feature": "str",
        "sticky": "bool",
        "accounts": "int64",
        "active_accounts": "int64",
        "rate": "float64",
    },
    needs=USAGE,
)
def feature_adoption(
    feature_month_activity: pd.DataFrame, calendar: pl.DataFrame, success_settings: SuccessSettings
) -> pd.DataFrame:
    """Per month and feature: accounts that used it, accounts active at all, the adoption rate, and whether the
    feature is sticky (customer_success.yaml)."""
    f = in_calendar(feature_month_activity, calendar)
    using = f.groupby(["key", "feature"]).size().rename("accounts").reset_index()
    active = f.groupby("key").account_id.nunique().rename("active_accounts").reset_index()
    out = using.merge(active, on="key")
    out["rate"] = safe_ratio(out.accounts, out.active_accounts)
    out["sticky"] = out.feature.isin(list(success_settings.sticky_features))
    out["month"] = [month_of(k) for k in out.key]
    return out.sort_values(["key", "feature"])[
        ["month", "feature", "sticky", "accounts", "active_accounts", "rate"]
    ].reset_index(drop=True)


@metric(
    label="Feature adoption",
    formula="mean over sticky features f of accounts using f in M / accounts active in M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("U", "P"),
    area="success",
    needs=USAGE,
    proportion=True,
)
def feature_adoption_rate(
    feature_adoption: pd.DataFrame, success_settings: SuccessSettings, calendar: pl.DataFrame
) -> pd.DataFrame:
    """Share of active accounts using the sticky features, averaged over those features."""
    f = feature_adoption
    sticky = f[f.sticky]
    wide = (
        sticky.pivot_table(index="month", columns="feature", values="rate")
        .reindex(columns=list(success_settings.sticky_features))
        .fillna(0.0)
    )
    active = f.groupby("month").active_accounts.first()
    months = calendar_months(calendar).month
    return month_series(
        months, wide.mean(axis=1).reindex(months).to_numpy(), active.reindex(months).fillna(0).to_numpy()
    )


@table(schema={"account_id": "str", "feature": "str", "first_use": "datetime_utc"}, export=False, needs=USAGE)
def first_feature_use(feature_month_activity: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """When each account first used each feature (UTC)."""
    f = in_calendar(feature_month_activity, calendar)
    return f.groupby(["account_id", "feature"]).first_event.min().rename("first_use").reset_index()


def _adoption_within(
    tables: Tables, calendar: pl.DataFrame, first_feature_use: pd.DataFrame, settings: SuccessSettings, days: int
) -> pd.DataFrame:
    """Per month: accounts whose first `days` days since their first subscription start end in it, and the
    share of (account, sticky feature) pairs used within those days."""
    subs = to_pandas(tables.lazy("subscriptions").group_by("account_id").agg(nw.col("start_date").min().alias("start")))
    subs["start"] = pd.to_datetime(subs.start).dt.tz_localize("UTC")
    subs["due"] = subs.start + pd.Timedelta(days=days)
    months = calendar_months(calendar)
    subs = subs[subs.due < months.end.max()]
    sticky = list(settings.sticky_features)
    uses = first_feature_use[first_feature_use.feature.isin(sticky)].merge(subs, on="account_id")
    adopted = uses[uses.first_use < uses.due].groupby("account_id").size()
    subs["share"] = lookup(subs.account_id, adopted).fillna(0) / len(sticky)
    subs["month"] = month_start(subs.due)
    return monthly(calendar, subs.month, subs.share, "mean")


@metric(
    label="Feature adoption at 90 days",
    formula="share of sticky features an account used within adoption_days."
    "early (90) days of its first subscription start, averaged over the accounts whose 90 days end in M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("U",),
    area="success",
    target=0.4,
    needs=USAGE,
)
def feature_adoption_90_days(
    tables: Tables, calendar: pl.DataFrame, first_feature_use: pd.DataFrame, success_settings: SuccessSettings
) -> pd.DataFrame:
    """How much of the sticky product a new account has taken up by the end of its first quarter."""
    return _adoption_within(
        tables, calendar, first_feature_use, success_settings, success_settings.adoption_days["early"]
    )


@metric(
    label="Feature adoption at 12 months",
    formula="share of sticky features an account used within "
    "adoption_days.mature (365) days of its first subscription start, averaged over the accounts whose year "
    "ends in M",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("U",),
    area="success",
    target=0.75,
    needs=USAGE,
)
def feature_adoption_12_months(
    tables: Tables, calendar: pl.DataFrame, first_feature_use: pd.DataFrame, success_settings: SuccessSettings
) -> pd.DataFrame:
    """How much of the sticky product an account has taken up in its first year."""
    return _adoption_within(
        tables, calendar, first_feature_use, success_settings, success_settings.adoption_days["mature"]
    )


@table(
    schema={
        "month": "datetime",
        "feature": "str",
        "minutes": "float64",
        "active_users": "int64",
        "minutes_per_active_user": "float64",
    },
    needs=USAGE,
)
def time_in_product(
    feature_month_activity: pd.DataFrame, user_month_activity: pd.DataFrame, calendar: pl.DataFrame
) -> pd.DataFrame:
    """Per month and feature area: minutes spent (duration_seconds) and minutes per monthly active user."""
    f = in_calendar(feature_month_activity, calendar)
    cols = ["month", "feature", "minutes", "active_users", "minutes_per_active_user"]
    minutes = (f.groupby(["key", "feature"]).seconds.sum() / 60).rename("minutes").reset_index()
    users = (
        user_months(user_month_activity, calendar).group_by("key").agg(pl.len().cast(pl.Int64).alias("active_users"))
    )
    out = minutes.merge(users.to_pandas(), on="key")
    out["minutes_per_active_user"] = safe_ratio(out.minutes, out.active_users)
    out["month"] = [month_of(k) for k in out.key]
    return out.sort_values(["key", "feature"])[cols].reset_index(drop=True)


@metric(
    label="Time in product",
    formula="minutes of usage (duration_seconds) in M / monthly active users",
    unit="minutes",
    direction="higher",
    level="operational",
    sources=("U",),
    area="success",
    needs=USAGE,
)
def time_in_product_per_user(time_in_product: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """Minutes a monthly active user spends in the product."""
    g = time_in_product.groupby("month").agg(minutes=("minutes", "sum"), users=("active_users", "first"))
    months = calendar_months(calendar).month
    g = g.reindex(months)
    return month_series(months, safe_ratio(g.minutes, g.users), g.users.fillna(0))


# --------------------------------------------------------------------------- support
SUPPORT = ("accounts", "subscriptions", "support_tickets")


@table(
    schema={
        "ticket_id": "str",
        "account_id": "str",
        "created_at": "datetime_utc",
        "month": "datetime",
        "priority": "str",
        "response_hours": "float64",
        "resolution_hours": "float64",
        "resolved_month": "datetime",
        "contacts": "float64",
        "sla_hours": "float64",
        "breach": "object",
    },
    export=False,
    needs=SUPPORT,
)
def ticket_times(tables: Tables, calendar: pl.DataFrame, success_settings: SuccessSettings) -> pd.DataFrame:
    """Every ticket opened in the calendar: hours to first response and to resolution (known by the data's end),
    its SLA hours, breach (True / False, None while undecided at the data's end) and contacts."""
    end = data_end(calendar)
    t = to_pandas(tables.lazy("support_tickets"))
    for col in ("first_response_at", "resolved_at", "contacts"):
        if col not in t:
            t[col] = pd.NaT if col.endswith("_at") else np.nan
    t = t[(t.created_at >= calendar_months(calendar).end.min() - pd.DateOffset(months=1)) & (t.created_at < end)]
    first = t.first_response_at.where(t.first_response_at < end)
    resolved = t.resolved_at.where(t.resolved_at < end)
    hours = lambda a: (a - t.created_at).dt.total_seconds() / 3600  # noqa: E731
    out = pd.DataFrame(
        {
            "ticket_id": t.ticket_id,
            "account_id": t.account_id,
            "created_at": t.created_at,
            "month": month_start(t.created_at),
            "priority": t.priority,
            "response_hours": hours(first),
            "resolution_hours": hours(resolved),
            "resolved_month": month_start(resolved.dropna()).reindex(t.index),
            "contacts": t.contacts.astype("float64"),
        }
    )
    out["sla_hours"] = out.priority.map(success_settings.sla_hours).astype("float64")
    elapsed = (end - t.created_at).dt.total_seconds() / 3600
    overdue = np.where(elapsed > out.sla_hours, True, None)  # type: ignore[call-overload]  # unanswered, not yet late: None
    out["breach"] = np.where(out.response_hours.notna(), out.response_hours > out.sla_hours, overdue)
    return out.reset_index(drop=True)


def _quantile_series(calendar: pl.DataFrame, t: pd.DataFrame, column: str, q: float) -> pd.DataFrame:
    known = t[t[column].notna()]
    return monthly(calendar, known.month, known[column], lambda v: v.quantile(q))


@metric(
    settles=True,
    label="First response time (median)",
    formula="median hours from opening to first response of the tickets opened in M",
    unit="hours",
    direction="lower",
    level="operational",
    sources=("P", "U"),
    area="success",
    needs=SUPPORT,
)
def first_response_hours(ticket_times: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """How long a customer typically waits for the first answer."""
    return _quantile_series(calendar, ticket_times, "response_hours", 0.5)


@metric(
    settles=True,
    label="First response time (p90)",
    formula="90th percentile of hours to first response, tickets opened in M",
    unit="hours",
    direction="lower",
    level="operational",
    sources=("P", "U"),
    area="success",
    needs=SUPPORT,
)
def first_response_hours_p90(ticket_times: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """How long the slowest tenth of customers wait for a first answer."""
    return _quantile_series(calendar, ticket_times, "response_hours", 0.9)


@metric(
    settles=True,
    label="Resolution time (median)",
    formula="median hours from opening to resolution of the tickets opened in M and resolved",
    unit="hours",
    direction="lower",
    level="operational",
    sources=("P", "U"),
    area="success",
    needs=SUPPORT,
)
def resolution_hours(ticket_times: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """How long a ticket typically stays open."""
    return _quantile_series(calendar, ticket_times, "resolution_hours", 0.5)


@metric(
    settles=True,
    label="Resolution time (p90)",
    formula="90th percentile of hours to resolution, tickets opened in M",
    unit="hours",
    direction="lower",
    level="operational",
    sources=("P", "U"),
    area="success",
    needs=SUPPORT,
)
def resolution_hours_p90(ticket_times: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """How long the slowest tenth of tickets stay open."""
    return _quantile_series(calendar, ticket_times, "resolution_hours", 0.9)


@metric(
    settles=True,
    label="SLA breach rate",
    formula="tickets opened in M whose first response took longer than the SLA hours "
    "of their priority (or none came and the SLA elapsed) / tickets decided",
    unit="fraction",
    direction="lower",
    level="supporting",
    sources=("P", "U"),
    area="success",
    needs=SUPPORT,
    proportion=True,
    target=0.1,
    tile=9,
)
def sla_breach_rate(ticket_times: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """Share of tickets that waited longer than promised for a first response."""
    decided = ticket_times[ticket_times.breach.notna()]
    return monthly(calendar, decided.month, decided.breach.astype(bool), "mean")


@metric(
    settles=True,
    label="First-contact resolution",
    formula="tickets resolved in M with one contact / tickets resolved in M with a contact count",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources=("C",),
    area="success",
    needs=SUPPORT,
    proportion=True,
)
def first_contact_resolution(ticket_times: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """Share of resolved tickets solved at the first contact."""
    r = ticket_times[ticket_times.resolved_month.notna() & ticket_times.contacts.notna()]
    return monthly(calendar, r.resolved_month, r.contacts == 1, "mean")


@table(
    schema={
        "priority": "str",
        "tickets": "int64",
        "sla_hours": "float64",
        "response_median": "float64",
        "response_p90": "float64",
        "resolution_median": "float64",
        "resolution_p90": "float64",
        "breach_rate": "float64",
        "first_contact_resolution": "float64",
    },
    needs=SUPPORT,
)
def support_sla(as_of: int, ticket_times: pd.DataFrame, success_settings: SuccessSettings) -> pd.DataFrame:
    """Per priority, tickets opened in the window_days to the month end: count, SLA hours, median and p90 hours
    to first response and to resolution, breach rate and first-contact resolution."""
    end = month_of(as_of + 1).tz_localize("UTC")
    t = ticket_times[
        (ticket_times.created_at < end)
        & (ticket_times.created_at >= end - pd.Timedelta(days=success_settings.window_days))
    ]
    rows = []
    for prio in success_settings.sla_hours:
        g = t[t.priority == prio]
        decided = g[g.breach.notna()]
        resolved = g[g.resolution_hours.notna() & g.contacts.notna()]
        rows.append(
            {
                "priority": prio,
                "tickets": len(g),
                "sla_hours": success_settings.sla_hours[prio],
                "response_median": g.response_hours.median(),
                "response_p90": g.response_hours.quantile(0.9),
                "resolution_median": g.resolution_hours.median(),
                "resolution_p90": g.resolution_hours.quantile(0.9),
                "breach_rate": decided.breach.astype(bool).mean() if len(decided) else np.nan,
                "first_contact_resolution": (resolved.contacts == 1).mean() if len(resolved) else np.nan,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- relationship and collections
TOUCH = ("accounts", "subscriptions", "cs_touchpoints")


def _with_csm(account_measures: pd.DataFrame) -> pd.DataFrame:
    return account_measures[account_measures.touchpoints.notna()]


@metric(
    label="Touchpoints per account (90 days)",
    formula="CS touchpoints in the window_days to the month end per paying account with a CSM (or with touchpoints)",
    unit="count",
    direction="higher",
    level="operational",
    sources=("P",),
    area="success",
    needs=TOUCH,
)
def touchpoints_per_account(account_measures: pd.DataFrame) -> pd.DataFrame:
    """How often CSMs talk to the accounts they look after."""
    g = _with_csm(account_measures).groupby("month").touchpoints
    return month_series(g.size().index, g.mean(), g.size())


@metric(
    label="Stakeholder coverage",
    formula="mean over paying accounts with a CSM of stakeholder roles (sponsor, "
    "decision maker, technical, end user) met in the window / 4",
    unit="fraction",
    direction="higher",
    level="operational",
    sources=("P",),
    area="success",
    needs=TOUCH,
)
def stakeholder_coverage(account_measures: pd.DataFrame) -> pd.DataFrame:
    """How many of the four stakeholder roles CSMs reach in their accounts."""
    g = _with_csm(account_measures).groupby("month").roles_covered
    return month_series(g.size().index, g.mean() / 4, g.size())


@metric(
    label="Positive sentiment",
    formula="touchpoints with positive sentiment / touchpoints with a sentiment, in the window to the month end",
    unit="fraction",
    direction="higher",
    level="operational",
    sources=("P",),
    area="success",
    needs=TOUCH,
    proportion=True,
)
def positive_sentiment_share(account_measures: pd.DataFrame) -> pd.DataFrame:
    """Share of recent CS conversations that went well."""
    g = _with_csm(account_measures).groupby("month")[["positive", "with_sentiment"]].sum()
    return month_series(g.index, safe_ratio(g.positive, g.with_sentiment), g.with_sentiment)


@table(
    schema={
        "segment": "str",
        "touchpoints": "float64",
        "positive": "float64",
        "neutral": "float64",
        "negative": "float64",
    },
    needs=TOUCH,
)
def sentiment_mix(as_of: int, account_measures: pd.DataFrame) -> pd.DataFrame:
    """Touchpoints in the window to the month end by sentiment and segment (positive, neutral, negative)."""
    m = _with_csm(account_measures[account_measures.key == as_of])
    g = m.groupby("segment")[["positive", "negative", "with_sentiment", "touchpoints"]].sum()
    g["neutral"] = g.with_sentiment - g.positive - g.negative
    return g.reset_index()[["segment", "touchpoints", "positive", "neutral", "negative"]]


INVOICES = ("accounts", "subscriptions", "invoices")


@metric(
    settles=True,
    label="Invoices paid on time",
    formula="invoices due in M paid by their due date / invoices due in M",
    unit="fraction",
    direction="higher",
    level="operational",
    sources=("P",),
    area="success",
    needs=INVOICES,
    proportion=True,
)
def invoices_paid_on_time(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Share of the month's invoices that customers paid by the due date."""
    inv = to_pandas(tables.lazy("invoices").select("due_date", "paid_at"))
    due = pd.to_datetime(inv.due_date)
    on_time = pd.to_datetime(inv.paid_at).le(due)
    return monthly(calendar, due.dt.to_period("M").dt.to_timestamp(), on_time, "mean")


@metric(
    settles=True,
    label="Overdue amount",
    formula="invoices due by the month's last day and unpaid at it, in the reporting currency (reference FX rate)",
    unit="currency",
    direction="lower",
    level="operational",
    sources=("P",),
    area="success",
    needs=INVOICES,
)
def overdue_amount(account_measures: pd.DataFrame) -> pd.DataFrame:
    """Money customers owe past its due date at the month end (paying accounts)."""
    g = account_measures.groupby("month").overdue_amount
    return month_series(
        g.size().index, g.sum(), (account_measures.overdue_amount > 0).groupby(account_measures.month).sum()
    )


HEATMAP_WEEKS = 13


@table(
    schema={"account_id": "str", "weeks_ago": "int64", "active_users": "int64", "week_start": "datetime"}, needs=USAGE
)
def account_weekly_activity(user_month_activity: pd.DataFrame, as_of: int) -> pd.DataFrame:
    """Active users per account in each of the 13 seven-day weeks ending at the month end (week 0 = the last
    seven days; weeks without activity are absent), with each week's first day."""
    # from the days each user was active in each month (`day_bits`), not from the events: a user counts in a
    # week when active on one of its days, in either of the months it spans (at 50M events 0.21-0.28 s in Polars,
    # against 0.55-1.0 s for a pandas frame per week and a drop_duplicates of string pairs)
    end = month_of(as_of + 1)
    first = end - pd.Timedelta(days=7 * HEATMAP_WEEKS)
    masks = []  # (month key, weeks ago, the bits of the month's days in that week of the window)
    for key in range(key_of(first), as_of + 1):
        start = month_of(key)
        by_week: dict[int, int] = {}
        for day in range(start.days_in_month):
            days_ago = (end - start).days - 1 - day  # 0 for the month end's last day
            if 0 <= days_ago < 7 * HEATMAP_WEEKS:
                by_week[days_ago // 7] = by_week.get(days_ago // 7, 0) | 1 << day
        masks += [(key, weeks_ago, mask) for weeks_ago, mask in by_week.items()]
    weeks = pl.DataFrame(masks, schema={"key": pl.Int64, "weeks_ago": pl.Int64, "mask": pl.Int64}, orient="row")
    rows = user_month_activity[user_month_activity.key.between(key_of(first), as_of)]
    active = (
        pl.from_pandas(rows[["account_id", "user_id", "key", "day_bits"]], schema_overrides={"key": pl.Int64})
        .join(weeks, on="key")
        .filter((pl.col("day_bits") & pl.col("mask")) != 0)
        .group_by("account_id", "weeks_ago")
        .agg(pl.col("user_id").n_unique().cast(pl.Int64).alias("active_users"))
    )
    out = active.to_pandas()
    out["week_start"] = end - pd.to_timedelta(7 * (out.weeks_ago + 1), unit="D")
    return out.sort_values(["account_id", "weeks_ago"]).reset_index(drop=True)
