"""The demo company's configured behaviour: the ground truth the workbook's metrics must recover."""

from __future__ import annotations

from dataclasses import dataclass

PERIOD_END = "2026-10-31"  # last day of the last complete month; never depends on today's date
CHANNELS = ("organic", "paid_search", "outbound", "partner", "events")
FEATURES = ("dashboards", "reports", "integrations", "automation", "api", "alerts", "sharing", "admin")
FEATURE_WEIGHTS = (0.26, 0.2, 0.1, 0.1, 0.08, 0.1, 0.1, 0.06)
# How hard each feature is to adopt: an account uses feature j once its current engagement reaches its own
# threshold U(0, 1) x difficulty_j, after an onset of about (20 + 200 x difficulty_j) days from its first payment.
FEATURE_DIFFICULTY = (0.15, 0.35, 0.8, 0.75, 0.95, 0.6, 0.5, 0.45)
# Engagement falls before a churn: from CHURN_DECLINE_DAYS before it, linearly to CHURN_DECLINE_FLOOR x its level.
CHURN_DECLINE_DAYS = 150
CHURN_DECLINE_FLOOR = 0.25
# Monthly churn hazard multiplier of an account with latent engagement e: 1.75 - 1.5 e (1.0 at e = 0.5).
HAZARD_SLOPE = 1.5
SEASONALITY = {1: 1.0, 2: 1.0, 3: 1.1, 4: 1.0, 5: 0.95, 6: 0.85, 7: 0.75, 8: 0.75, 9: 1.05, 10: 1.15, 11: 1.25, 12: 1.2}


@dataclass(frozen=True)
class SegmentProfile:
    """How one segment buys, pays, grows and leaves."""

    name: str
    share: float  # of new accounts
    seats: tuple[int, int]  # range of initial seats
    price_per_seat: float  # USD list price per seat and month
    monthly_churn_hazard: float  # per month, for an account of average engagement
    annual_share: float  # contracts billed yearly (the rest monthly)
    multi_year_share: float  # of annual contracts, billed for 24 or 36 months
    expansion_probability: float  # per month
    contraction_probability: float  # per month
    reactivation_probability: float  # of churned accounts, coming back 2-9 months later
    discount_range: tuple[float, float]
    sales_cycle_median_days: int
    lead_to_pql_rate: float
    pql_to_customer_rate: float
    user_cap: int  # most users an account has in the product
    channel_mix: tuple[float, ...]  # over CHANNELS


SEGMENTS = (
    SegmentProfile(
        "smb",
        0.62,
        (2, 8),
        29.0,
        0.030,
        0.15,
        0.0,
        0.020,
        0.010,
        0.20,
        (0.0, 0.0),
        7,
        0.30,
        0.25,
        8,
        (0.40, 0.35, 0.05, 0.10, 0.10),
    ),
    SegmentProfile(
        "mid_market",
        0.29,
        (20, 80),
        45.0,
        0.015,
        0.60,
        0.0,
        0.030,
        0.010,
        0.12,
        (0.0, 0.15),
        45,
        0.35,
        0.30,
        60,
        (0.25, 0.20, 0.25, 0.15, 0.15),
    ),
    SegmentProfile(
        "enterprise",
        0.09,
        (60, 200),
        160.0,
        0.006,
        0.85,
        0.25,
        0.040,
        0.008,
        0.05,
        (0.10, 0.30),
        120,
        0.40,
        0.35,
        150,
        (0.10, 0.05, 0.45, 0.15, 0.25),
    ),
)
CURRENCIES = {"USD": (0.85, 1.0), "EUR": (0.10, 1.08), "GBP": (0.05, 1.27)}  # share of accounts, start rate
GROSS_MARGIN = 0.78  # COGS is 22 % of revenue
# Direct S&M cost of winning a customer, in months of its first-month gross margin, per segment and channel
# (overheads come on top: the segment's AEs and SDRs, brand marketing). Designed so that some pairs meet
# both unit-economics guidelines and some miss them; UNIT_ECONOMICS_VERDICTS is what the workbook must find.
DIRECT_PAYBACK_MONTHS = {
    "smb": {"organic": 2.0, "paid_search": 2.5, "outbound": 26.0, "partner": 15.0, "events": 20.0},
    "mid_market": {"organic": 2.0, "paid_search": 4.0, "outbound": 14.0, "partner": 5.0, "events": 40.0},
    "enterprise": {"organic": 2.0, "paid_search": 3.0, "outbound": 6.0, "partner": 4.0, "events": 18.0},
}
UNIT_ECONOMICS_VERDICTS = {  # accelerate = LTV:CAC >= 3 and payback <= 12; fix payback = only LTV:CAC met
    "smb": {
        "organic": "accelerate",
        "paid_search": "accelerate",
        "outbound": "rethink",
        "partner": "rethink",
        "events": "rethink",
    },
    "mid_market": {
        "organic": "accelerate",
        "paid_search": "accelerate",
        "outbound": "fix payback",
        "partner": "accelerate",
        "events": "rethink",
    },
    "enterprise": {
        "organic": "accelerate",
        "paid_search": "accelerate",
        "outbound": "accelerate",
        "partner": "accelerate",
        "events": "fix payback",
    },
}
BRAND_SPEND_RANGE = (3000.0, 5000.0)  # untagged marketing per month


@dataclass(frozen=True)
class DemoScale:
    """How big the demo company is."""

    name: str
    months: int = 36
    new_accounts_per_month: float = 22.0  # at the start; grows 3 % a month, with seasonality
    user_factor: float = 1.0  # users per account relative to the segment's cap
    events_per_user_day: float = 1.6  # mean events on a day a user is active
    chunk_accounts: int = 250  # accounts whose usage is generated and written at once


SCALES = {
    "tiny": DemoScale("tiny", months=14, new_accounts_per_month=4.0, user_factor=0.3, events_per_user_day=1.2),
    "default": DemoScale("default"),
    "large": DemoScale("large", new_accounts_per_month=157.0, user_factor=1.0, events_per_user_day=2.8),
}
