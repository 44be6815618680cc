"""Accounts, their subscriptions, the team and exchange rates: the demo company's revenue side."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import (
    CHANNELS,
    CHURN_DECLINE_DAYS,
    CHURN_DECLINE_FLOOR,
    CURRENCIES,
    HAZARD_SLOPE,
    PERIOD_END,
    SEASONALITY,
    SEGMENTS,
    DemoScale,
    SegmentProfile,
)

REGIONS = ("NA", "EMEA", "APAC")
INDUSTRIES = ("software", "finance", "healthcare", "retail", "manufacturing", "education", "media")


@dataclass
class AccountLife:
    """One account's simulated history (kept in memory to drive the activity tables)."""

    account_id: str
    segment: SegmentProfile
    created: pd.Timestamp
    channel: str
    currency: str
    engagement: float  # latent 0-1: drives usage, NPS, tickets, sentiment, payments and (inversely) churn
    hazard: float
    csm_id: str | None = None
    paying: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)  # [start, end) spells
    seats: int = 0
    subscriptions: list[dict] = field(default_factory=list)

    def engagement_on(self, stamps) -> np.ndarray:
        """Engagement at each of `stamps`: the latent level, falling linearly over the CHURN_DECLINE_DAYS before
        a churn to CHURN_DECLINE_FLOOR of it (spells ending after the data's end are not churns)."""
        t = pd.DatetimeIndex(pd.to_datetime(np.asarray(stamps)))
        factor = np.ones(len(t))
        end = pd.Timestamp(PERIOD_END)
        for _, stop in self.paying:
            if stop <= end:
                days_left = (stop - t).total_seconds().to_numpy() / 86400
                near = (days_left >= -31) & (days_left < CHURN_DECLINE_DAYS)
                ramp = CHURN_DECLINE_FLOOR + (1 - CHURN_DECLINE_FLOOR) * np.clip(days_left / CHURN_DECLINE_DAYS, 0, 1)
                factor = np.where(near, np.minimum(factor, ramp), factor)
        return self.engagement * factor


def period_months(scale: DemoScale) -> pd.PeriodIndex:
    """The demo's calendar months, ending with the last complete month."""
    return pd.period_range(end=pd.Period(PERIOD_END, "M"), periods=scale.months, freq="M")


def fx_rates(scale: DemoScale) -> pd.DataFrame:
    """Monthly rates into USD for every non-USD currency, drifting slowly."""
    rows = []
    for i, month in enumerate(period_months(scale)):
        for cur, (_, start) in CURRENCIES.items():
            if cur != "USD":
                rate = start * (1 + 0.03 * np.sin(2 * np.pi * i / 14) + 0.0015 * i)
                rows.append((month.start_time.date(), cur, round(rate, 4)))
    return pd.DataFrame(rows, columns=["month", "currency", "rate_to_reporting"])


def team() -> pd.DataFrame:
    """CSMs, account executives, SDRs and managers with start dates, ramp and monthly cost."""
    rows = []
    specs = [
        ("csm", "enterprise", 3, 11000),
        ("csm", "mid_market", 4, 9000),
        ("csm", "smb", 1, 8000),
        ("ae", "enterprise", 2, 16000),
        ("ae", "mid_market", 3, 12000),
        ("ae", "smb", 1, 9000),
        ("sdr", None, 2, 6500),
        ("manager", None, 2, 17000),
    ]
    n = 0
    for role, segment, count, cost in specs:
        for j in range(count):
            n += 1
            start = pd.Timestamp("2023-06-01") + pd.DateOffset(months=5 * j)
            rows.append(
                (
                    f"T{n:03d}",
                    f"{role.upper()} {n}",
                    role,
                    segment,
                    start.date(),
                    None,
                    3 if role != "manager" else 0,
                    float(cost),
                )
            )
    return pd.DataFrame(
        rows, columns=["member_id", "name", "role", "segment", "start_date", "end_date", "ramp_months", "monthly_cost"]
    )


def _random_day(rng: np.random.Generator, month: pd.Period) -> pd.Timestamp:
    return month.start_time + pd.Timedelta(days=int(rng.integers(0, 28)))


def account_lives(rng: np.random.Generator, scale: DemoScale, csms: pd.DataFrame) -> list[AccountLife]:
    """New accounts month by month (growth, seasonality, segment and channel mix) with their latent traits."""
    months = period_months(scale)
    lives, n = [], 0
    shares = np.array([s.share for s in SEGMENTS])
    cur_names = list(CURRENCIES)
    cur_shares = np.array([CURRENCIES[c][0] for c in cur_names])
    csm_by_segment = {s: csms[csms.segment == s].member_id.tolist() for s in ("smb", "mid_market", "enterprise")}
    for i, month in enumerate(months):
        count = rng.poisson(scale.new_accounts_per_month * 1.03**i * SEASONALITY[month.month])
        for _ in range(count):
            n += 1
            seg = SEGMENTS[rng.choice(len(SEGMENTS), p=shares)]
            created = _random_day(rng, month) + pd.Timedelta(seconds=int(rng.integers(8 * 3600, 19 * 3600)))
            engagement = float(rng.beta(2.2, 2.2))
            life = AccountLife(
                f"A{n:05d}",
                seg,
                created,
                CHANNELS[rng.choice(len(CHANNELS), p=seg.channel_mix)],
                cur_names[rng.choice(len(cur_names), p=cur_shares)],
                engagement,
                seg.monthly_churn_hazard * (1 + HAZARD_SLOPE * (0.5 - engagement)),
            )
            pool = csm_by_segment[seg.name]
            if seg.name != "smb" or rng.random() < 0.3:
                life.csm_id = pool[n % len(pool)]
            lives.append(life)
    return lives


class _Book:
    """Writes one account's subscriptions while its story is simulated."""

    def __init__(self, life: AccountLife, rng: np.random.Generator, counter: list[int], fx: dict[str, float]):
        self.life, self.rng, self.counter, self.fx = life, rng, counter, fx

    def open(
        self, start: pd.Timestamp, seats: int, billing: int, plan: str, discount: float, share: float = 1.0
    ) -> dict:
        self.counter[0] += 1
        seg = self.life.segment
        monthly_usd = seats * seg.price_per_seat * share
        amount = monthly_usd * billing / self.fx[self.life.currency]
        sub = {
            "subscription_id": f"S{self.counter[0]:06d}",
            "account_id": self.life.account_id,
            "start_date": start.normalize(),
            "end_date": None,
            "amount": round(amount, 2),
            "billing_period_months": billing,
            "currency": self.life.currency,
            "seats": seats,
            "discount_pct": round(discount, 2),
            "plan": plan,
        }
        self.life.subscriptions.append(sub)
        return sub

    @staticmethod
    def close(sub: dict, day: pd.Timestamp) -> None:
        sub["end_date"] = max(day.normalize(), sub["start_date"] + pd.Timedelta(days=1))


def _plan(seg: SegmentProfile) -> str:
    return {"smb": "starter", "mid_market": "growth", "enterprise": "enterprise"}[seg.name]


def simulate_subscriptions(
    life: AccountLife, rng: np.random.Generator, scale: DemoScale, counter: list[int], fx: dict[str, float]
) -> None:
    """The account's contract history: first deal, renewals, expansion, contraction, churn, reactivation, add-ons."""
    seg = life.segment
    months = period_months(scale)
    end_of_data = months[-1].end_time.normalize()
    delay = int(rng.integers(0, 4 if seg.name == "smb" else 15))
    start = life.created.normalize() + pd.Timedelta(days=delay)
    if start > end_of_data:
        return
    book = _Book(life, rng, counter, fx)
    seats = int(rng.integers(*seg.seats))
    annual = rng.random() < seg.annual_share
    billing = (int(rng.choice([24, 36])) if rng.random() < seg.multi_year_share else 12) if annual else 1
    discount = float(rng.uniform(*seg.discount_range))
    sub: dict | None = book.open(start, seats, billing, _plan(seg), discount)
    spell_start, addon = start, None
    reactivation_chance = seg.reactivation_probability / 6  # per month after churn, spread over ~6 months
    month = pd.Period(start, "M") + 1
    while month <= months[-1]:
        day = _random_day(rng, month)
        if sub is None:  # churned: maybe come back
            if rng.random() < reactivation_chance:
                seats = max(1, int(seats * 0.8))
                sub = book.open(day, seats, 1, _plan(seg), 0.0)
                spell_start = day
            month += 1
            continue
        term = sub["billing_period_months"]
        months_in = (month - pd.Period(sub["start_date"], "M")).n
        at_renewal = term > 1 and months_in > 0 and months_in % term == 0
        churn_p = (1 - (1 - life.hazard) ** term) if at_renewal else (life.hazard if term == 1 else 0.0)
        if rng.random() < churn_p:
            when = sub["start_date"] + pd.DateOffset(months=months_in) if at_renewal else day
            book.close(sub, when)
            if addon is not None and addon["end_date"] is None:
                book.close(addon, when)
            life.paying.append((spell_start, sub["end_date"]))
            sub, addon = None, None
            month += 1
            continue
        r = rng.random()
        if r < seg.expansion_probability * (0.5 + life.engagement):
            seats = int(np.ceil(seats * rng.uniform(1.1, 1.5)))
        elif r > 1 - seg.contraction_probability * (1.5 - life.engagement) and seats > 1:
            seats = max(1, int(seats * rng.uniform(0.6, 0.9)))
        if seats != sub["seats"]:
            book.close(sub, day)
            sub = book.open(day, seats, sub["billing_period_months"], sub["plan"], sub["discount_pct"])
        if seg.name != "smb" and addon is None and rng.random() < 0.01:
            addon = book.open(day, seats, 1, "addon_analytics", 0.0, share=0.08)
        elif addon is not None and addon["end_date"] is None and rng.random() < 0.03:
            book.close(addon, day)
        month += 1
    if sub is not None:
        life.paying.append((spell_start, end_of_data + pd.Timedelta(days=1)))
    life.seats = seats


def accounts_frame(lives: list[AccountLife], rng: np.random.Generator) -> pd.DataFrame:
    """The accounts table."""
    rows = [
        (
            a.account_id,
            f"{a.segment.name.replace('_', ' ').title()} Co {a.account_id[1:]}",
            a.segment.name,
            a.created,
            REGIONS[int(rng.integers(0, 3))],
            INDUSTRIES[int(rng.integers(0, len(INDUSTRIES)))],
            a.channel,
            a.csm_id,
        )
        for a in lives
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "account_id",
            "account_name",
            "segment",
            "created_at",
            "region",
            "industry",
            "acquisition_channel",
            "csm_id",
        ],
    )


def subscriptions_frame(lives: list[AccountLife]) -> pd.DataFrame:
    """The subscriptions table."""
    cols = [
        "subscription_id",
        "account_id",
        "start_date",
        "end_date",
        "amount",
        "billing_period_months",
        "currency",
        "seats",
        "discount_pct",
        "plan",
    ]
    rows = [s for a in lives for s in a.subscriptions]
    return pd.DataFrame(rows, columns=cols).sort_values("subscription_id").reset_index(drop=True)
