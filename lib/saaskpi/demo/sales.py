"""The demo's sales team at work (issue 25, item 4): monthly quotas of the account executives and their sales
activities (calls, emails, meetings, demos) on opportunities and on leads that never became one.

Its own random stream (`np.random.default_rng([seed, 25, 4])`), drawn only from the tables already generated, so
every other demo table stays byte-identical whether or not these two are written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Monthly quota of a fully ramped account executive, by segment (USD of first-year contract value): set near
# what the demo's ramped reps close in a month, so that attainment spreads around 100 %.
QUOTA_BY_SEGMENT = {"enterprise": 600_000.0, "mid_market": 120_000.0}  # the smb AE works self-serve: no quota
# Mean activities of each type per opportunity (Poisson), and the chance an opportunity gets a demo.
PER_OPPORTUNITY = {"call": 4.0, "email": 7.0, "meeting": 1.5}
DEMO_SHARE = 0.8
# Share of leads that never became an opportunity that an AE still worked (a few calls and e-mails).
WORKED_LEAD_SHARE = 0.12
STREAM = (25, 4)  # issue 25, item 4: this module's own generator (other issue-25 modules use [seed, 25])


def sales_frames(staff: pd.DataFrame, leads: pd.DataFrame, opps: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """`quotas` and `sales_activities` for the demo's account executives."""
    rng = np.random.default_rng([seed, *STREAM])
    return {"quotas": quotas_frame(staff, opps, rng), "sales_activities": activities_frame(staff, leads, opps, rng)}


def quotas_frame(staff: pd.DataFrame, opps: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One quota per AE and month from the month they start to the last month of the data, ramped like capacity
    (min(1, n / ramp_months) of the full quota in their n-th month), rounded to 1,000."""
    last = pd.Timestamp(pd.to_datetime(opps.created_at).max()).tz_localize(None).to_period("M")
    rows = []
    for r in staff[staff.role == "ae"].itertuples():
        start = pd.Timestamp(r.start_date).to_period("M")
        if str(r.segment) not in QUOTA_BY_SEGMENT:
            continue
        full = QUOTA_BY_SEGMENT[str(r.segment)] * rng.uniform(0.9, 1.1)
        for n, month in enumerate(pd.period_range(start, last, freq="M"), start=1):
            ramp = min(1.0, n / r.ramp_months) if r.ramp_months else 1.0
            rows.append((r.member_id, month.start_time.date(), round(full * ramp, -3)))
    return pd.DataFrame(rows, columns=["member_id", "month", "quota"])


def _stamps(start: np.ndarray, span_days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Times uniformly in [start, start + span), on whole minutes."""
    offset = (rng.random(len(start)) * span_days * 24 * 60).astype("int64")
    return start + offset.astype("timedelta64[m]")


def activities_frame(
    staff: pd.DataFrame, leads: pd.DataFrame, opps: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Activities on each opportunity (between 30 days before it was created and its close, or 60 days after
    creation while open) by its owner, and a few on worked leads that never became an opportunity."""
    created = pd.to_datetime(opps.created_at, utc=True).dt.tz_localize(None).to_numpy("datetime64[m]")
    closed = pd.to_datetime(opps.closed_at, utc=True).dt.tz_localize(None)
    end = closed.fillna(pd.Series(created, index=opps.index) + pd.Timedelta(days=60)).to_numpy("datetime64[m]")
    first = created - np.timedelta64(30 * 24 * 60, "m")
    span = np.maximum((end - first) / np.timedelta64(1, "D"), 1.0)
    parts = []
    for kind, mean in PER_OPPORTUNITY.items():
        n = rng.poisson(mean, len(opps))
        parts.append((kind, np.repeat(np.arange(len(opps)), n)))
    parts.append(("demo", np.flatnonzero(rng.random(len(opps)) < DEMO_SHARE)))
    frames = []
    for kind, idx in parts:
        frames.append(
            pd.DataFrame(
                {
                    "member_id": opps.owner_id.to_numpy()[idx],
                    "type": kind,
                    "occurred_at": _stamps(first[idx], span[idx], rng),
                    "lead_id": opps.lead_id.to_numpy()[idx],
                    "opportunity_id": opps.opportunity_id.to_numpy()[idx],
                    "account_id": opps.account_id.to_numpy()[idx],
                }
            )
        )
    aes = staff[staff.role == "ae"]
    cold = leads[~leads.lead_id.isin(opps.lead_id) & leads.segment.isin(["enterprise", "mid_market"])]
    cold = cold[rng.random(len(cold)) < WORKED_LEAD_SHARE]
    if len(cold):
        owners = {s: aes.member_id[aes.segment == s].to_numpy() for s in ("enterprise", "mid_market")}
        owner = np.array([rng.choice(owners[s]) for s in cold.segment])
        touches = rng.integers(1, 4, len(cold))
        idx = np.repeat(np.arange(len(cold)), touches)
        start = pd.to_datetime(cold.created_at, utc=True).dt.tz_localize(None).to_numpy("datetime64[m]")
        frames.append(
            pd.DataFrame(
                {
                    "member_id": owner[idx],
                    "type": np.where(rng.random(len(idx)) < 0.4, "call", "email"),
                    "occurred_at": _stamps(start[idx], np.full(len(idx), 21.0), rng),
                    "lead_id": cold.lead_id.to_numpy()[idx],
                    "opportunity_id": None,
                    "account_id": None,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    last = np.datetime64(pd.to_datetime(opps.created_at, utc=True).max().tz_localize(None), "m")
    out = out[out.occurred_at <= last].sort_values(["occurred_at", "member_id", "type"], kind="stable")
    out["occurred_at"] = pd.to_datetime(out.occurred_at).dt.tz_localize("UTC")
    out.insert(0, "activity_id", [f"SA{i:07d}" for i in range(1, len(out) + 1)])
    return out.reset_index(drop=True)[
        ["activity_id", "member_id", "type", "occurred_at", "lead_id", "opportunity_id", "account_id"]
    ]
