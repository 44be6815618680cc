"""The demo company's exit survey (issue 25): `churn_reasons` answers for the accounts that cancelled or cut seats.

Its own random generator (seed and 25), so the other demo tables stay byte-identical. Reasons depend on the
segment; some answers are written loosely ("Price ", "PRICE") as people type them, to exercise the grouping
in lower case; about a third of cancellations and two thirds of seat cuts have no answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STREAM = 25  # this module's random stream: np.random.default_rng([seed, STREAM])
REASONS = {
    "smb": {
        "price": 0.32,
        "not using it enough": 0.22,
        "switched to a competitor": 0.14,
        "went out of business": 0.14,
        "missing feature": 0.12,
        "poor support": 0.06,
    },
    "mid_market": {
        "missing feature": 0.26,
        "price": 0.22,
        "switched to a competitor": 0.2,
        "not using it enough": 0.14,
        "budget cuts": 0.1,
        "poor support": 0.08,
    },
    "enterprise": {
        "missing feature": 0.28,
        "budget cuts": 0.22,
        "acquired or merged": 0.16,
        "switched to a competitor": 0.16,
        "poor support": 0.1,
        "price": 0.08,
    },
}
CUT_REASONS = {"budget cuts": 0.4, "fewer users": 0.4, "price": 0.2}
COMMENTS = {
    "price": "Too expensive for what we use.",
    "missing feature": "We needed SSO and custom reports.",
    "switched to a competitor": "Moved to a cheaper tool.",
    "budget cuts": "Budget frozen for next year.",
    "poor support": "Tickets took too long to resolve.",
    "fewer users": "The team shrank.",
}
ANSWER_RATE = {"churn": 0.65, "contraction": 0.35}


def _losses(subs: pd.DataFrame) -> pd.DataFrame:
    """Each ended subscription that was a cancellation (nothing of the account active the day it ended) or a
    seat cut (replaced the same day by one with fewer seats): account_id, subscription_id, day, kind."""
    s = subs.assign(start=pd.to_datetime(subs.start_date), end=pd.to_datetime(subs.end_date))
    ended = s[s.end.notna()]
    by_account = {a: g for a, g in s.groupby("account_id")}
    rows = []
    for r in ended.itertuples():
        others = by_account[r.account_id]
        active = others[(others.start <= r.end) & (others.end.isna() | (others.end > r.end))]
        if active.empty:
            rows.append((r.account_id, r.subscription_id, r.end, "churn"))
        else:
            same_plan = active[(active.start == r.end) & (active.plan == r.plan)]
            if len(same_plan) and same_plan.seats.iloc[0] < r.seats:
                rows.append((r.account_id, r.subscription_id, r.end, "contraction"))
    return pd.DataFrame(rows, columns=["account_id", "subscription_id", "day", "kind"])


def _loosely(reason: str, rng: np.random.Generator) -> str:
    """The reason as a person may type it: mostly as is, sometimes capitalised, shouted or with a trailing space."""
    pick = rng.random()
    if pick < 0.1:
        return reason.capitalize()
    if pick < 0.14:
        return reason.upper()
    if pick < 0.2:
        return reason + " "
    return reason


def churn_reasons_frame(accounts: pd.DataFrame, subs: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The exit survey: account_id, subscription_id, recorded_on, reason, comment (columns of the contract)."""
    rng = np.random.default_rng([seed, STREAM])
    losses = _losses(subs).sort_values(["day", "account_id", "subscription_id"]).reset_index(drop=True)
    segment = accounts.set_index("account_id").segment
    rows = []
    for r in losses.itertuples():
        if rng.random() >= ANSWER_RATE[r.kind]:
            continue
        table = REASONS[segment[r.account_id]] if r.kind == "churn" else CUT_REASONS
        reason = str(rng.choice(list(table), p=np.array(list(table.values())) / sum(table.values())))
        day = r.day + pd.Timedelta(days=int(rng.integers(-14, 21)))
        comment = COMMENTS.get(reason, "") if rng.random() < 0.4 else ""
        rows.append((r.account_id, r.subscription_id, day.normalize(), _loosely(reason, rng), comment))
    out = pd.DataFrame(rows, columns=["account_id", "subscription_id", "recorded_on", "reason", "comment"])
    out = out.sort_values(["recorded_on", "account_id"], kind="stable").reset_index(drop=True)
    return out.assign(recorded_on=pd.to_datetime(out.recorded_on).dt.strftime("%Y-%m-%d"))
