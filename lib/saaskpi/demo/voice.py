"""The demo's voice of the customer and service status (issue 25): survey comments beside NPS answers and CSAT
ratings, CSM overrides of account health, and a status history of incidents.

Its own random generator (`np.random.default_rng([seed, VOICE_STREAM])`) and its own new tables: every
other demo table, and the ground truth, stay byte-identical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VOICE_STREAM = 25  # the issue that added these tables: the generator's own stream
NPS_COMMENT_SHARE = 0.35  # share of NPS answers that come with a comment
CSAT_COMMENT_SHARE = 0.30  # share of rated tickets that come with a comment
OVERRIDES = 30  # CSM overrides of account health in the demo
INCIDENTS_PER_MONTH = 1.6

# Phrases by tone: a comment is one or two of them. Detractors and low CSAT draw from `negative`, promoters and
# high CSAT from `positive`; segments lean on their own topics (enterprise: security and SSO, smb: pricing).
PHRASES = {
    "positive": [
        "The reporting dashboards save us hours every week.",
        "Great customer support, quick and friendly answers.",
        "Onboarding was smooth and the team was helpful.",
        "The API integration works well with our stack.",
        "Easy to use, the whole team adopted it quickly.",
        "Great customer support from our success manager.",
        "The reporting dashboards are clear and easy to share.",
    ],
    "neutral": [
        "Good product but the mobile app needs work.",
        "Reporting dashboards are useful, exports could be faster.",
        "Setup took longer than expected.",
        "Pricing is fair for what we use.",
    ],
    "negative": [
        "Pages load slowly during peak hours.",
        "Support response time is too slow.",
        "Pricing went up again and it is hard to justify.",
        "The API integration keeps failing on sync.",
        "Onboarding took too long and we lost momentum.",
        "Missing features we were promised at renewal.",
        "Support response time is too slow for urgent issues.",
    ],
}
SEGMENT_PHRASES = {
    "enterprise": {
        "positive": ["Single sign-on and audit logs made security review easy."],
        "negative": ["Single sign-on setup was painful for our IT team.", "We need granular permissions for teams."],
    },
    "mid_market": {
        "positive": ["The API integration works well with our CRM."],
        "negative": ["The API integration keeps failing on sync with our CRM."],
    },
    "smb": {
        "positive": ["Pricing is fair and the free trial helped us decide."],
        "negative": ["Pricing is too high for a small team.", "Pricing went up again for a small team."],
    },
}
OVERRIDE_REASONS = {
    "red": [
        "Champion left the company; the new sponsor is evaluating alternatives.",
        "Budget cut announced; renewal at risk despite healthy usage.",
        "Escalation open with the executive sponsor.",
    ],
    "yellow": [
        "Reorganisation under way; usage looks fine but the buying group changed.",
        "Procurement asked for a discount at renewal.",
    ],
    "green": [
        "Executive sponsor confirmed the renewal and an expansion.",
        "Usage dip is seasonal (fiscal year end); the account is engaged.",
        "New champion onboarded; weekly calls going well.",
    ],
}
BAND_SCORE = {"red": 30.0, "yellow": 63.0, "green": 86.0}  # inside the default bands (red <= 50, yellow <= 75)
INCIDENTS = [
    "Database failover",
    "Deploy rolled back",
    "Third-party e-mail provider outage",
    "API gateway errors",
    "Scheduled maintenance overran",
]


def _tone(score: int, scale: str) -> str:
    """Promoter / passive / detractor (NPS 0-10) or 4-5 / 3 / 1-2 (CSAT 1-5)."""
    high, low = (9, 6) if scale == "nps" else (4, 2)
    return "positive" if score >= high else "negative" if score <= low else "neutral"


def _comment(rng: np.random.Generator, tone: str, segment: str) -> str:
    pool = PHRASES[tone] + SEGMENT_PHRASES.get(segment, {}).get(tone, []) * 3
    first = pool[int(rng.integers(len(pool)))]
    if rng.random() < 0.3:
        second = pool[int(rng.integers(len(pool)))]
        if second != first:
            return f"{first} {second}"
    return first


def survey_comments(
    rng: np.random.Generator, accounts: pd.DataFrame, nps: pd.DataFrame, tickets: pd.DataFrame
) -> pd.DataFrame:
    """survey_id, survey (nps or csat), comment: a share of NPS answers and of rated tickets with a comment whose
    tone follows the score and whose topics lean on the account's segment."""
    segment = accounts.set_index("account_id").segment
    rows = []
    for survey, frame, key, share in (
        ("nps", nps.dropna(subset=["score"]), "response_id", NPS_COMMENT_SHARE),
        ("csat", tickets.dropna(subset=["csat"]), "ticket_id", CSAT_COMMENT_SHARE),
    ):
        score_col = "score" if survey == "nps" else "csat"
        picked = frame[rng.random(len(frame)) < share]
        for r in picked.itertuples():
            tone = _tone(int(getattr(r, score_col)), survey)
            rows.append((getattr(r, key), survey, _comment(rng, tone, str(segment.get(r.account_id, "")))))
    return pd.DataFrame(rows, columns=["survey_id", "survey", "comment"])


def health_overrides(rng: np.random.Generator, accounts: pd.DataFrame, months: pd.PeriodIndex) -> pd.DataFrame:
    """account_id, date, score, band, reason, csm: CSM overrides on accounts with a CSM over the last six months
    (a few clear an earlier one: neither score nor band)."""
    owned = accounts[accounts.csm_id.notna() & (accounts.csm_id != "")].sort_values("account_id")
    picked = owned.iloc[rng.choice(len(owned), size=min(OVERRIDES, len(owned)), replace=False)]
    recent = months[-6:]
    rows = []
    for r in picked.sort_values("account_id").itertuples():
        band = str(rng.choice(["red", "yellow", "green"], p=[0.4, 0.25, 0.35]))
        month = recent[int(rng.integers(len(recent)))]
        date = month.start_time + pd.Timedelta(days=int(rng.integers(28)))
        reasons = OVERRIDE_REASONS[band]
        score = BAND_SCORE[band] + float(rng.integers(-5, 6)) if rng.random() < 0.6 else np.nan
        rows.append((r.account_id, date, score, band, reasons[int(rng.integers(len(reasons)))], r.csm_id))
        if rng.random() < 0.1 and month < recent[-1]:  # the CSM later withdrew it
            rows.append(
                (r.account_id, date + pd.Timedelta(days=35), np.nan, "", "Back to the computed score.", r.csm_id)
            )
    out = pd.DataFrame(rows, columns=["account_id", "date", "score", "band", "reason", "csm"])
    out["band"] = out.band.replace("", None)
    out = out.sort_values(["account_id", "date"], kind="stable").reset_index(drop=True)
    out["date"] = out.date.dt.strftime("%Y-%m-%d")  # a date, not a timestamp, in the CSV
    return out


def service_status(rng: np.random.Generator, months: pd.PeriodIndex) -> pd.DataFrame:
    """incident_id, started_at, ended_at, description: a Poisson number of incidents a month, most short, a few
    of several hours."""
    rows = []
    for month in months:
        for _ in range(int(rng.poisson(INCIDENTS_PER_MONTH))):
            start = month.start_time + pd.Timedelta(minutes=int(rng.integers(0, 28 * 24 * 60)))
            minutes = int(rng.choice([rng.integers(5, 45), rng.integers(45, 240)], p=[0.8, 0.2]))
            rows.append((start, start + pd.Timedelta(minutes=minutes), INCIDENTS[int(rng.integers(len(INCIDENTS)))]))
    out = pd.DataFrame(rows, columns=["started_at", "ended_at", "description"]).sort_values("started_at")
    out.insert(0, "incident_id", [f"INC{i + 1:04d}" for i in range(len(out))])
    for col in ("started_at", "ended_at"):
        out[col] = pd.to_datetime(out[col]).dt.tz_localize("UTC")
    return out.reset_index(drop=True)


def voice_frames(
    seed: int, accounts: pd.DataFrame, nps: pd.DataFrame, tickets: pd.DataFrame, months: pd.PeriodIndex
) -> dict[str, pd.DataFrame]:
    """The three tables, from their own generator (the other demo tables are only read)."""
    rng = np.random.default_rng([seed, VOICE_STREAM])
    return {
        "survey_comments": survey_comments(rng, accounts, nps, tickets),
        "health_overrides": health_overrides(rng, accounts, months),
        "service_status": service_status(rng, months),
    }
