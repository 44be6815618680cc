"""One pandera schema per input table: columns, types, ranges, defaults of optional columns.

Columns are referenced through these classes (`Accounts.account_id`), never typed as strings
elsewhere. An optional column (``Optional[...]``) that is absent is filled with the default in
its ``metadata``; "reporting currency" defaults resolve to the `reporting_currency` convention.
"""

from __future__ import annotations

from typing import Optional

import pandera.polars as pa
import polars as pl

UTC = pl.Datetime(time_unit="us", time_zone="UTC")
REPORTING_CURRENCY = "<reporting currency>"


def _field(description: str, *, default=None, **checks):
    metadata = {"default": default} if default is not None else None
    return pa.Field(description=description, metadata=metadata, **checks)


class Table(pa.DataFrameModel):
    """Base of every input table schema."""

    class Config:
        strict = False  # extra columns are allowed and ignored
        coerce = False  # types are set by the loader, which reports what it cannot parse


class Accounts(Table):
    """Customers (and prospects that became customers): one row per account. Required."""

    account_id: str = _field("Account identifier.", unique=True)
    segment: str = _field("Customer segment, e.g. smb, mid_market, enterprise (segment files filter on it).")
    created_at: UTC = _field("When the account was created (signup), UTC.")
    account_name: Optional[str] = _field("Display name.", nullable=True, default="")
    region: Optional[str] = _field("Sales region.", nullable=True, default="unknown")
    industry: Optional[str] = _field("Industry.", nullable=True, default="unknown")
    acquisition_channel: Optional[str] = _field("Channel that acquired the account.", nullable=True, default="unknown")
    csm_id: Optional[str] = _field("Customer success manager (team.member_id).", nullable=True)
    domain: Optional[str] = _field(
        "The company's web or e-mail domain (acme.com): other systems' records are matched "
        "to the account by it when imported.",
        nullable=True,
    )


class Subscriptions(Table):
    """Recurring contracts: the source of MRR. Required."""

    subscription_id: str = _field("Subscription identifier.", unique=True)
    account_id: str = _field("Owning account (accounts.account_id).")
    start_date: pl.Date = _field("First day the subscription is active (inclusive).")
    end_date: pl.Date = _field("First day it is no longer active (exclusive); empty = open.", nullable=True)
    amount: float = _field("Price per billing period, in `currency`, before discount.", ge=0)
    billing_period_months: Optional[int] = _field("Months one `amount` pays for.", ge=1, le=120, default=1)
    currency: Optional[str] = _field(
        "ISO currency of `amount`.", str_length={"min_value": 3, "max_value": 3}, default=REPORTING_CURRENCY
    )
    seats: Optional[int] = _field("Licensed seats.", ge=0, nullable=True)
    discount_pct: Optional[float] = _field("Discount as a fraction of `amount` (0.2 = 20 %).", ge=0, le=1, default=0.0)
    plan: Optional[str] = _field("Plan name.", nullable=True, default="")


class FxRates(Table):
    """Monthly exchange rates into the reporting currency."""

    month: pl.Date = _field("First day of the month.")
    currency: str = _field("ISO currency.", str_length={"min_value": 3, "max_value": 3})
    rate_to_reporting: float = _field("Reporting-currency units for one unit of `currency`.", gt=0)


class WebTraffic(Table):
    """Unique website visitors per month and channel."""

    month: pl.Date = _field("First day of the month.")
    channel: str = _field("Acquisition channel.")
    unique_visitors: int = _field("Unique visitors in the month.", ge=0)


class Leads(Table):
    """Signups (leads) and how far they got in the funnel."""

    lead_id: str = _field("Lead identifier.", unique=True)
    created_at: UTC = _field("Signup time, UTC.")
    channel: str = _field("Acquisition channel.")
    segment: Optional[str] = _field("Expected segment.", nullable=True)
    pql_at: Optional[UTC] = _field("When the lead became a product-qualified lead.", nullable=True)
    account_id: Optional[str] = _field("Account the lead became, once a customer.", nullable=True)
    converted_at: Optional[UTC] = _field("When the lead became a paying customer.", nullable=True)


class Opportunities(Table):
    """Sales opportunities."""

    opportunity_id: str = _field("Opportunity identifier.", unique=True)
    created_at: UTC = _field("When the opportunity was created, UTC.")
    stage: str = _field("Pipeline stage.", isin=["prospecting", "discovery", "proposal", "negotiation", "won", "lost"])
    amount: float = _field("First-year contract value in the reporting currency.", ge=0)
    lead_id: Optional[str] = _field("Lead it came from.", nullable=True)
    account_id: Optional[str] = _field("Account, once won.", nullable=True)
    owner_id: Optional[str] = _field("Account executive (team.member_id).", nullable=True)
    closed_at: Optional[UTC] = _field("When it was won or lost; empty while open.", nullable=True)


class Users(Table):
    """Product users."""

    user_id: str = _field("User identifier.", unique=True)
    account_id: str = _field("Account the user belongs to.")
    created_at: UTC = _field("When the user signed up, UTC.")
    activated_at: Optional[UTC] = _field("When the user reached the activation milestone.", nullable=True)
    referred_by: Optional[str] = _field("User who referred this user.", nullable=True)


class UsageEvents(Table):
    """Product usage events (the big table: stays lazy until aggregated)."""

    event_time: UTC = _field("When it happened, UTC.")
    user_id: str = _field("Acting user.")
    account_id: str = _field("Account of the user.")
    feature: str = _field("Feature or product area used.")
    duration_seconds: Optional[int] = _field("Time spent.", ge=0, nullable=True)
    event: Optional[str] = _field(
        "Event name (signed_up, created_project ...) for product funnels; empty or absent: the feature.", nullable=True
    )
    properties: Optional[str] = _field(
        'Event properties as a JSON object in text ({"plan": "pro"}), read by product funnel step filters.',
        nullable=True,
    )


class UserAliases(Table):
    """Identity merges the source declares: an anonymous or device id used in usage_events linked to a user."""

    alias_id: str = _field("The id events carry (usage_events.user_id) before the person was identified.", unique=True)
    user_id: str = _field("The user it belongs to (users.user_id).")


class SupportTickets(Table):
    """Support tickets."""

    ticket_id: str = _field("Ticket identifier.", unique=True)
    account_id: str = _field("Account that raised it.")
    created_at: UTC = _field("When it was opened, UTC.")
    priority: str = _field("Priority.", isin=["low", "normal", "high", "urgent"])
    first_response_at: Optional[UTC] = _field("First response from support.", nullable=True)
    resolved_at: Optional[UTC] = _field("When it was resolved; empty while open.", nullable=True)
    contacts: Optional[int] = _field("Contacts needed to resolve it.", ge=1, nullable=True)
    csat: Optional[int] = _field("Satisfaction rating 1-5.", ge=1, le=5, nullable=True)


class NpsResponses(Table):
    """Net Promoter Score survey answers."""

    response_id: str = _field("Response identifier.", unique=True)
    account_id: str = _field("Account of the respondent.")
    responded_at: UTC = _field("When the answer was given, UTC.")
    score: int = _field("Likelihood to recommend, 0-10.", ge=0, le=10)
    user_id: Optional[str] = _field("Respondent.", nullable=True)


class CsTouchpoints(Table):
    """Customer-success interactions."""

    touchpoint_id: str = _field("Touchpoint identifier.", unique=True)
    account_id: str = _field("Account.")
    occurred_at: UTC = _field("When it happened, UTC.")
    csm_id: Optional[str] = _field("CSM (team.member_id).", nullable=True)
    kind: Optional[str] = _field("call, meeting, email, qbr.", nullable=True)
    stakeholder_role: Optional[str] = _field(
        "sponsor, decision_maker, technical, end_user.",
        nullable=True,
        isin=["sponsor", "decision_maker", "technical", "end_user"],
    )
    sentiment: Optional[str] = _field(
        "positive, neutral, negative.", nullable=True, isin=["positive", "neutral", "negative"]
    )


class Team(Table):
    """Go-to-market and customer-success team members."""

    member_id: str = _field("Team member identifier.", unique=True)
    role: str = _field("csm, ae, sdr, manager.")
    start_date: pl.Date = _field("First day on the team.")
    name: Optional[str] = _field("Name.", nullable=True, default="")
    segment: Optional[str] = _field("Segment covered.", nullable=True)
    end_date: Optional[pl.Date] = _field("First day no longer on the team; empty = current.", nullable=True)
    ramp_months: Optional[int] = _field("Months to full productivity.", ge=0, default=0)
    monthly_cost: Optional[float] = _field("Fully loaded monthly cost, reporting currency.", ge=0, nullable=True)


class Spend(Table):
    """Monthly spend by category, optionally tagged to a channel or segment."""

    month: pl.Date = _field("First day of the month.")
    category: str = _field(
        "marketing, sales, cogs, customer_success, rnd, g_and_a.",
        isin=["marketing", "sales", "cogs", "customer_success", "rnd", "g_and_a"],
    )
    amount: float = _field("Amount spent.", ge=0)
    channel: Optional[str] = _field("Channel it was spent on; empty = untagged.", nullable=True)
    segment: Optional[str] = _field("Segment it was spent on; empty = untagged.", nullable=True)
    currency: Optional[str] = _field("ISO currency.", default=REPORTING_CURRENCY)
    item: Optional[str] = _field(
        "What it bought, e.g. salaries_and_benefits, training, tools, programs (cost to serve "
        "breaks customer_success spend down by it).",
        nullable=True,
    )


class Invoices(Table):
    """Invoices and their payment."""

    invoice_id: str = _field("Invoice identifier.", unique=True)
    account_id: str = _field("Billed account.")
    issued_at: pl.Date = _field("Issue date.")
    due_date: pl.Date = _field("Due date.")
    amount: float = _field("Invoiced amount.", ge=0)
    paid_at: Optional[pl.Date] = _field("Payment date; empty = unpaid.", nullable=True)
    subscription_id: Optional[str] = _field("Subscription billed.", nullable=True)
    currency: Optional[str] = _field("ISO currency.", default=REPORTING_CURRENCY)


class Plan(Table):
    """The monthly plan (budget): one planned value per metric, segment file and month; pages compare it."""

    metric: str = _field("A registered metric (docs/metrics.md), e.g. monthly_recurring_revenue.")
    segment: str = _field('A segment file name (parameters/segments/), e.g. smb; "all" for the whole company.')
    month: pl.Date = _field("First day of the planned month.")
    value: float = _field("Planned value, in the metric's unit (money in the reporting currency, rates as fractions).")


class SurveyComments(Table):
    """Comments left with an NPS answer (survey nps) or a CSAT rating (survey csat), one row per comment."""

    survey_id: str = _field("nps_responses.response_id (survey nps) or support_tickets.ticket_id (survey csat).")
    survey: str = _field("nps or csat.", isin=["nps", "csat"])
    comment: str = _field("What the customer wrote.")


class HealthOverrides(Table):
    """A CSM's override of an account's health score, from `date` to its next one (no score nor band clears it)."""

    account_id: str = _field("Account (accounts.account_id).")
    date: pl.Date = _field("First day the override applies.")
    reason: str = _field("Why the CSM overrides the computed score.")
    score: Optional[float] = _field("Health score the CSM sets, 0-100.", ge=0, le=100, nullable=True)
    band: Optional[str] = _field("Band the CSM sets.", isin=["red", "yellow", "green"], nullable=True)
    csm: Optional[str] = _field("Who set it (team.member_id).", nullable=True)


class ServiceStatus(Table):
    """Service incidents (downtime): uptime of a month = 1 - downtime / its length, overlaps counted once."""

    incident_id: str = _field("Incident identifier.", unique=True)
    started_at: UTC = _field("When the service went down, UTC.")
    ended_at: Optional[UTC] = _field("When it was back up, UTC; empty while still down.", nullable=True)
    description: Optional[str] = _field("What happened.", nullable=True, default="")


class ChurnReasons(Table):
    """Exit survey (optional): why an account left or cut back. Each churn or contraction of MRR takes the reason
    recorded for its account nearest its month, within churn_reason_window_days (customer_success.yaml)."""

    account_id: str = _field("Account that churned or contracted (accounts.account_id).")
    recorded_on: pl.Date = _field("Date the reason was given (the exit survey's answer or the cancellation).")
    reason: str = _field(
        "Reason, free text (price, missing feature ...): grouped in lower case with outer spaces trimmed, "
        "so `Price ` and `price` are one reason."
    )
    subscription_id: Optional[str] = _field(
        "Subscription cancelled or reduced (subscriptions.subscription_id); empty = the account.", nullable=True
    )
    comment: Optional[str] = _field("The customer's own words.", nullable=True)


class Quotas(Table):
    """Sales quota per account executive and month (optional: quota attainment on page 01)."""

    member_id: str = _field("Account executive (team.member_id).")
    month: pl.Date = _field("First day of the month.")
    quota: float = _field("Quota for the month in the reporting currency (bookings or new ARR, see conventions).", ge=0)


SALES_ACTIVITY_TYPES = ["call", "email", "meeting", "demo"]


class SalesActivities(Table):
    """Sales activities of the account executives (optional: activity per rep, contact method, demo calls)."""

    activity_id: str = _field("Activity identifier.", unique=True)
    member_id: str = _field("Account executive or SDR who did it (team.member_id).")
    type: str = _field("call, email, meeting or demo.", isin=SALES_ACTIVITY_TYPES)
    occurred_at: UTC = _field("When it happened, UTC.")
    lead_id: Optional[str] = _field("Lead it was about (leads.lead_id).", nullable=True)
    opportunity_id: Optional[str] = _field("Opportunity it was about (opportunities.opportunity_id).", nullable=True)
    account_id: Optional[str] = _field("Account it was about (accounts.account_id).", nullable=True)


TABLES: dict[str, type[Table]] = {
    "accounts": Accounts,
    "subscriptions": Subscriptions,
    "fx_rates": FxRates,
    "web_traffic": WebTraffic,
    "leads": Leads,
    "opportunities": Opportunities,
    "users": Users,
    "usage_events": UsageEvents,
    "user_aliases": UserAliases,
    "support_tickets": SupportTickets,
    "nps_responses": NpsResponses,
    "cs_touchpoints": CsTouchpoints,
    "team": Team,
    "spend": Spend,
    "invoices": Invoices,
    "plan": Plan,
    "survey_comments": SurveyComments,
    "health_overrides": HealthOverrides,
    "service_status": ServiceStatus,
    "churn_reasons": ChurnReasons,
    "quotas": Quotas,
    "sales_activities": SalesActivities,
}
REQUIRED_TABLES = ("accounts", "subscriptions")


def absent_as_null(name: str, column: str) -> bool:
    """Whether contract column `column` of table `name` may be absent from stored data and is then empty (an
    optional column without a default): a stored table without it is still stored as the contract says."""
    spec = TABLES[name].to_schema().columns[column]
    return not spec.required and spec.nullable and (spec.metadata or {}).get("default") is None
