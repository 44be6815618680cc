"""What the demo company's customers do: users and usage, the funnel before them, support, NPS,
CS touchpoints, invoices and spend. Everything is driven by each account's simulated life."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from .company import AccountLife, period_months
from .config import (
    BRAND_SPEND_RANGE,
    CHANNELS,
    DIRECT_PAYBACK_MONTHS,
    FEATURE_DIFFICULTY,
    FEATURE_WEIGHTS,
    FEATURES,
    GROSS_MARGIN,
    SEGMENTS,
    DemoScale,
)

EVENT_SCHEMA = pa.schema(
    [
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("user_id", pa.string()),
        ("account_id", pa.string()),
        ("feature", pa.string()),
        ("duration_seconds", pa.int64()),
        ("event", pa.string()),
        ("properties", pa.string()),
    ]
)
# The demo's event names: a user's first events walk the activation sequence (each user goes as far as a share
# fixed by their id, ACTIVATION_REACH), every other event is named after its feature (FEATURE_EVENTS). Names and
# properties are derived from rows already drawn, without drawing random numbers: every other number of the
# demo stays as it was.
ACTIVATION = ("signed_up", "created_project", "invited_teammate", "shared_dashboard")
ACTIVATION_REACH = (100, 82, 58, 41)  # percent of users whose n-th event is the n-th activation event
FEATURE_EVENTS = {
    "dashboards": "viewed_dashboard",
    "reports": "ran_report",
    "integrations": "synced_integration",
    "automation": "ran_automation",
    "api": "called_api",
    "alerts": "set_alert",
    "sharing": "shared_item",
    "admin": "changed_settings",
}
TEMPLATES = ("blank", "sales_pipeline", "marketing_plan", "okr_tracker")


def event_names(events: pd.DataFrame) -> pd.DataFrame:
    """`events` (one account's) with `event` and `properties` derived from the rows: the n-th event of a user (by
    time) is the n-th activation event when the user's share (user number x 37 mod 100) is below its reach, else
    it is named after its feature; a created project has the template in its properties (by user number)."""
    order = events.sort_values(["event_time", "user_id"], kind="stable")
    rank = order.groupby("user_id", sort=False).cumcount().reindex(events.index).to_numpy()
    number = events.user_id.str.slice(1).astype("int64").to_numpy()
    share = number * 37 % 100
    reach = np.asarray(ACTIVATION_REACH)
    walks = rank < len(ACTIVATION)
    walks[walks] = share[walks] < reach[rank[walks]]  # reach falls: a user stops at the first step missed
    name = events.feature.map(FEATURE_EVENTS).to_numpy(dtype=object)
    name[walks] = np.asarray(ACTIVATION, dtype=object)[rank[walks]]
    props = np.full(len(events), None, dtype=object)
    project = name == "created_project"
    props[project] = [f'{{"template": "{TEMPLATES[n % len(TEMPLATES)]}"}}' for n in number[project]]
    return events.assign(event=name, properties=props)


def users_frame(lives: list[AccountLife], rng: np.random.Generator, scale: DemoScale) -> pd.DataFrame:
    """Users per account (scaled with seats, capped per segment), activation and referrals."""
    rows, n = [], 0
    for a in lives:
        if not a.paying:
            continue
        first = a.paying[0][0]
        share = (0.35 + 0.6 * a.engagement) * rng.uniform(0.85, 1.15)  # engaged accounts roll out more seats
        count = max(1, int(round(min(a.seats, a.segment.user_cap) * scale.user_factor * share)))
        ids: list[str] = []
        for j in range(count):
            n += 1
            uid = f"U{n:07d}"
            created = first + pd.Timedelta(
                days=int(rng.exponential(20 + 40 * j / count)), seconds=int(rng.integers(28800, 68400))
            )
            activated = (
                created + pd.Timedelta(hours=float(rng.exponential(30 / (0.3 + a.engagement))))
                if rng.random() < 0.6 + 0.35 * a.engagement
                else None
            )
            referred = ids[int(rng.integers(0, len(ids)))] if ids and rng.random() < 0.04 else None
            rows.append((uid, a.account_id, created, activated, referred))
            ids.append(uid)
    return pd.DataFrame(rows, columns=["user_id", "account_id", "created_at", "activated_at", "referred_by"])


def usage_batches(
    lives: list[AccountLife], users: pd.DataFrame, rng: np.random.Generator, scale: DemoScale
) -> Iterator[pa.Table]:
    """Usage events, one Arrow table per chunk of accounts, each sorted by event time and user."""
    end = period_months(scale)[-1].end_time.normalize()
    by_account = {k: g for k, g in users.groupby("account_id", sort=False)}
    weights = np.asarray(FEATURE_WEIGHTS) / sum(FEATURE_WEIGHTS)
    batch: list[pd.DataFrame] = []
    for i, a in enumerate(lives, 1):
        group = by_account.get(a.account_id)
        if group is not None:
            events = _account_events(a, group, rng, scale, end, weights)
            if len(events):
                batch.append(events)
        if i % scale.chunk_accounts == 0 or i == len(lives):
            if batch:
                frame = pd.concat(batch, ignore_index=True).sort_values(["event_time", "user_id"], kind="stable")
                yield pa.Table.from_pandas(frame, schema=EVENT_SCHEMA, preserve_index=False)
            batch = []


def _account_events(
    a: AccountLife,
    users: pd.DataFrame,
    rng: np.random.Generator,
    scale: DemoScale,
    end: pd.Timestamp,
    weights: np.ndarray,
) -> pd.DataFrame:
    """Events of one account: a user is active in a month with probability 0.45 + 0.55 e and on a day of it with
    probability 0.12 + 0.55 e (less at weekends), e the account's engagement that day; an event's feature is
    drawn among the features the account uses then (FEATURE_DIFFICULTY), weighted by FEATURE_WEIGHTS."""
    frames = []
    thresholds = rng.random(len(FEATURES)) * np.asarray(FEATURE_DIFFICULTY)
    onset_days = rng.exponential(20 + 200 * np.asarray(FEATURE_DIFFICULTY))
    first = a.paying[0][0].normalize() if a.paying else None
    for start, stop in a.paying:
        days = pd.date_range(start.normalize(), min(stop, end + pd.Timedelta(days=1)) - pd.Timedelta(days=1), freq="D")
        if len(days) == 0:
            continue
        e = a.engagement_on(days + pd.Timedelta(hours=12))
        created = users.created_at.to_numpy(dtype="datetime64[ns]")
        alive = days.to_numpy()[:, None] >= created[None, :]
        month_idx = (days.year * 12 + days.month).to_numpy()
        months, inverse = np.unique(month_idx, return_inverse=True)
        month_e = np.array([e[inverse == i].mean() for i in range(len(months))])
        active_month = rng.random((len(months), len(created))) < (0.45 + 0.55 * month_e)[:, None]
        weekday = np.where(days.day_of_week < 5, 1.0, 0.15)[:, None]
        p = np.clip((0.12 + 0.55 * e[:, None]) * weekday, 0, 0.95)
        active = alive & active_month[inverse] & (rng.random(alive.shape) < p)
        d_idx, u_idx = np.nonzero(active)
        if len(d_idx) == 0:
            continue
        per_day = 1 + rng.poisson(scale.events_per_user_day - 1 if scale.events_per_user_day > 1 else 0.2, len(d_idx))
        d_rep, u_rep = np.repeat(d_idx, per_day), np.repeat(u_idx, per_day)
        seconds = rng.integers(7 * 3600, 21 * 3600, len(d_rep))
        age = ((days - first).days.to_numpy())[:, None]
        usable = (e[:, None] >= thresholds[None, :]) & (age >= onset_days[None, :])
        usable[:, 0] = True  # the first feature (dashboards) is always there
        w = usable[d_rep] * weights[None, :]
        cum = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
        feature = np.minimum((rng.random(len(d_rep))[:, None] > cum).sum(axis=1), len(FEATURES) - 1)
        frames.append(
            pd.DataFrame(
                {
                    "event_time": (days.to_numpy()[d_rep] + seconds.astype("timedelta64[s]")),
                    "user_id": users.user_id.to_numpy()[u_rep],
                    "account_id": a.account_id,
                    "feature": np.asarray(FEATURES)[feature],
                    "duration_seconds": rng.exponential(90 + 120 * e[d_rep]).astype("int64"),
                }
            )
        )
    if not frames:
        return pd.DataFrame({c: [] for c in EVENT_SCHEMA.names})
    out = pd.concat(frames, ignore_index=True)
    out["event_time"] = pd.to_datetime(out.event_time).dt.tz_localize("UTC")
    return event_names(out)


def funnel_frames(
    lives: list[AccountLife], rng: np.random.Generator, scale: DemoScale, aes: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Web traffic, leads (signups, PQLs, conversions) and sales opportunities."""
    months = period_months(scale)
    first_day, last_day = months[0].start_time, months[-1].end_time.normalize()
    by_segment = {s.name: s for s in SEGMENTS}
    leads: list[tuple] = []
    opps: list[tuple] = []
    n_lead, n_opp = 0, 0
    ae_by_segment = {s: aes[aes.segment == s].member_id.tolist() for s in by_segment}

    def new_lead(created, channel, segment, pql, account, converted):
        nonlocal n_lead
        n_lead += 1
        leads.append((f"L{n_lead:07d}", created, channel, segment, pql, account, converted))
        return f"L{n_lead:07d}"

    for a in lives:
        seg = a.segment
        if not a.subscriptions:
            continue
        won = a.subscriptions[0]["start_date"]
        cycle = max(1, int(rng.lognormal(np.log(seg.sales_cycle_median_days), 0.35)))
        created = max(first_day, won - pd.Timedelta(days=cycle + int(rng.integers(1, 10))))
        pql = created + (won - created) * rng.uniform(0.2, 0.7)
        lead_id = new_lead(created, a.channel, seg.name, pql, a.account_id, won)
        if seg.name != "smb":
            n_opp += 1
            first_year = sum(
                s["amount"] / s["billing_period_months"] * 12 * (1 - s["discount_pct"]) for s in a.subscriptions[:1]
            )
            opps.append(
                (
                    f"O{n_opp:06d}",
                    lead_id,
                    a.account_id,
                    ae_by_segment[seg.name][n_opp % len(ae_by_segment[seg.name])],
                    won - pd.Timedelta(days=cycle),
                    won + pd.Timedelta(hours=12),
                    "won",
                    round(first_year, 2),
                )
            )
    # Leads of the last months whose customers would sign after the period end are missing above:
    # add them as pending leads (PQL and an open opportunity where those dates fall in the period),
    # up to the count of the segment's last three months whose sales cycles are complete.
    counts = dict(pd.Series([(lead[3], pd.Period(lead[1], "M")) for lead in leads]).value_counts().items())
    for seg in SEGMENTS:
        slowest = pd.Timedelta(days=int(seg.sales_cycle_median_days * np.exp(0.35 * 2.0)) + 10)
        complete = [m for m in months if m.end_time + slowest <= last_day]
        if not complete:
            continue
        expected = np.mean([counts.get((seg.name, m), 0) for m in complete[-3:]])
        for month in months[len(complete) :]:
            for _ in range(max(0, rng.poisson(expected) - int(counts.get((seg.name, month), 0)))):
                created = month.start_time + pd.Timedelta(seconds=int(rng.integers(0, 28 * 86400)))
                cycle = pd.Timedelta(days=max(1, int(rng.lognormal(np.log(seg.sales_cycle_median_days), 0.35))))
                pql = created + cycle * rng.uniform(0.2, 0.7)
                pql = pql if pql <= last_day else None
                lead_id = new_lead(
                    created, CHANNELS[rng.choice(len(CHANNELS), p=seg.channel_mix)], seg.name, pql, None, None
                )
                opened = created + pd.Timedelta(days=int(rng.integers(1, 10)))
                if seg.name != "smb" and opened <= last_day:
                    n_opp += 1
                    stage = str(rng.choice(["prospecting", "discovery", "proposal", "negotiation"]))
                    value = float(rng.integers(*seg.seats)) * seg.price_per_seat * 12
                    opps.append(
                        (
                            f"O{n_opp:06d}",
                            lead_id,
                            None,
                            ae_by_segment[seg.name][n_opp % len(ae_by_segment[seg.name])],
                            opened,
                            None,
                            stage,
                            round(value, 2),
                        )
                    )
            counts[(seg.name, month)] = max(expected, counts.get((seg.name, month), 0))
    # leads that did not become customers, in the right proportion per segment and month
    for (segment, month), won_count in sorted(counts.items()):
        seg = by_segment[segment]
        rate = seg.lead_to_pql_rate * seg.pql_to_customer_rate
        for _ in range(rng.poisson(won_count * (1 / rate - 1))):
            created = month.start_time + pd.Timedelta(seconds=int(rng.integers(0, 28 * 86400)))
            pql_p = (seg.lead_to_pql_rate - rate) / (1 - rate)  # PQL share among leads that do not convert
            pql = created + pd.Timedelta(days=float(rng.exponential(6))) if rng.random() < pql_p else None
            channel = CHANNELS[rng.choice(len(CHANNELS), p=seg.channel_mix)]
            lead_id = new_lead(created, channel, segment, pql, None, None)
            if segment != "smb" and pql is not None and rng.random() < 0.5:
                n_opp += 1
                opened = pql + pd.Timedelta(days=2)
                closed = opened + pd.Timedelta(days=int(rng.lognormal(np.log(seg.sales_cycle_median_days), 0.4)))
                stage, closed_at = (
                    ("lost", closed)
                    if closed <= last_day
                    else (str(rng.choice(["prospecting", "discovery", "proposal", "negotiation"])), None)
                )
                value = float(rng.integers(*seg.seats)) * seg.price_per_seat * 12
                opps.append(
                    (
                        f"O{n_opp:06d}",
                        lead_id,
                        None,
                        ae_by_segment[segment][n_opp % len(ae_by_segment[segment])],
                        opened,
                        closed_at,
                        stage,
                        round(value, 2),
                    )
                )
    lead_df = pd.DataFrame(
        leads, columns=["lead_id", "created_at", "channel", "segment", "pql_at", "account_id", "converted_at"]
    ).sort_values(["created_at", "lead_id"])
    opp_df = pd.DataFrame(
        opps,
        columns=["opportunity_id", "lead_id", "account_id", "owner_id", "created_at", "closed_at", "stage", "amount"],
    )
    signups = lead_df.assign(month=lead_df.created_at.dt.to_period("M")).groupby(["month", "channel"]).size()
    traffic = [
        (m.start_time.date(), ch, int(signups.get((m, ch), 0) / rng.uniform(0.015, 0.035)) + int(rng.integers(50, 400)))
        for m in months
        for ch in CHANNELS
    ]
    web = pd.DataFrame(traffic, columns=["month", "channel", "unique_visitors"])
    return (
        web,
        lead_df.sort_values("lead_id").reset_index(drop=True),
        opp_df.sort_values("opportunity_id").reset_index(drop=True),
    )


def success_frames(
    lives: list[AccountLife], users: pd.DataFrame, rng: np.random.Generator, scale: DemoScale
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Support tickets, NPS answers and CS touchpoints, all worse for less engaged accounts."""
    end = period_months(scale)[-1].end_time
    sla_hours = {"low": 72, "normal": 24, "high": 8, "urgent": 2}
    tickets, nps, touches = [], [], []
    users_of = {k: g.user_id.tolist() for k, g in users.groupby("account_id", sort=False)}
    for a in lives:
        for start, stop in a.paying:
            stop = min(stop, end)
            months = max(1, int((stop - start).days / 30))
            size = min(a.seats, a.segment.user_cap) ** 0.5
            for _ in range(rng.poisson(months * 0.25 * size * (1.6 - a.engagement))):
                created = start + pd.Timedelta(
                    seconds=int(rng.integers(0, max(1, int((stop - start).total_seconds()))))
                )
                e = float(a.engagement_on([created])[0])
                prio = str(rng.choice(list(sla_hours), p=[0.3, 0.45, 0.2, 0.05]))
                first = created + pd.Timedelta(hours=float(rng.exponential(sla_hours[prio] * (1.3 - 0.6 * e))))
                resolved = first + pd.Timedelta(hours=float(rng.exponential(sla_hours[prio] * 2)))
                resolved = resolved if resolved < end else None
                contacts = 1 + int(rng.poisson(0.8 * (1.4 - e)))
                csat = (
                    int(np.clip(round(rng.normal(2.6 + 2.2 * e, 0.9)), 1, 5))
                    if resolved is not None and rng.random() < 0.6
                    else None
                )
                tickets.append((a.account_id, created, prio, first if first < end else None, resolved, contacts, csat))
            for q in pd.date_range(start, stop, freq="QS"):
                for uid in (
                    rng.choice(
                        users_of.get(a.account_id, ["-"]),
                        size=min(3, len(users_of.get(a.account_id, []))),
                        replace=False,
                    )
                    if a.account_id in users_of
                    else []
                ):
                    if rng.random() < 0.35:
                        when = q + pd.Timedelta(days=int(rng.integers(0, 20)), hours=10)
                        score = int(
                            np.clip(round(rng.normal(3.5 + 6.5 * float(a.engagement_on([when])[0]), 1.8)), 0, 10)
                        )
                        nps.append((a.account_id, uid, when, score))
            if a.csm_id is not None:
                rate = {"enterprise": 2.0, "mid_market": 0.9, "smb": 0.3}[a.segment.name]
                for _ in range(rng.poisson(months * rate)):
                    when = start + pd.Timedelta(
                        seconds=int(rng.integers(0, max(1, int((stop - start).total_seconds()))))
                    )
                    sentiment = rng.choice(
                        ["positive", "neutral", "negative"], p=_sentiment_mix(float(a.engagement_on([when])[0]))
                    )
                    touches.append(
                        (
                            a.account_id,
                            a.csm_id,
                            when,
                            str(rng.choice(["call", "meeting", "email", "qbr"], p=[0.35, 0.25, 0.3, 0.1])),
                            str(rng.choice(["sponsor", "decision_maker", "technical", "end_user"])),
                            str(sentiment),
                        )
                    )
    t = pd.DataFrame(
        tickets,
        columns=["account_id", "created_at", "priority", "first_response_at", "resolved_at", "contacts", "csat"],
    )
    t = t.sort_values(["created_at", "account_id"], kind="stable").reset_index(drop=True)
    t.insert(0, "ticket_id", [f"K{i:07d}" for i in range(1, len(t) + 1)])
    n = (
        pd.DataFrame(nps, columns=["account_id", "user_id", "responded_at", "score"])
        .sort_values(["responded_at", "user_id"], kind="stable")
        .reset_index(drop=True)
    )
    n.insert(0, "response_id", [f"R{i:07d}" for i in range(1, len(n) + 1)])
    n = n[["response_id", "account_id", "user_id", "responded_at", "score"]]
    c = pd.DataFrame(touches, columns=["account_id", "csm_id", "occurred_at", "kind", "stakeholder_role", "sentiment"])
    c = c.sort_values(["occurred_at", "account_id"], kind="stable").reset_index(drop=True)
    c.insert(0, "touchpoint_id", [f"C{i:07d}" for i in range(1, len(c) + 1)])
    return t, n, c


def _sentiment_mix(engagement: float) -> list[float]:
    pos = 0.2 + 0.6 * engagement
    neg = 0.35 * (1 - engagement)
    return [pos, 1 - pos - neg, neg]


def invoices_frame(
    subscriptions: pd.DataFrame, lives: list[AccountLife], rng: np.random.Generator, scale: DemoScale
) -> pd.DataFrame:
    """One invoice per billing period of every subscription; less engaged accounts pay later."""
    end = period_months(scale)[-1].end_time.normalize()
    life = {a.account_id: a for a in lives}
    rows = []
    for s in subscriptions.itertuples(index=False):
        stop = min(pd.Timestamp(s.end_date) if pd.notna(s.end_date) else end, end)
        issued = pd.Timestamp(s.start_date)
        while issued < stop:
            due = issued + pd.Timedelta(days=30)
            e = float(life[s.account_id].engagement_on([issued])[0])
            late = rng.random() < 0.35 * (1 - e)
            paid = (
                due + pd.Timedelta(days=int(rng.integers(1, 60)))
                if late
                else issued + pd.Timedelta(days=int(rng.integers(0, 30)))
            )
            rows.append(
                (
                    s.account_id,
                    s.subscription_id,
                    issued.date(),
                    due.date(),
                    paid.date() if paid <= end else None,
                    round(s.amount * (1 - s.discount_pct), 2),
                    s.currency,
                )
            )
            issued = issued + pd.DateOffset(months=int(s.billing_period_months))
    out = pd.DataFrame(
        rows, columns=["account_id", "subscription_id", "issued_at", "due_date", "paid_at", "amount", "currency"]
    )
    out = out.sort_values(["issued_at", "subscription_id"], kind="stable").reset_index(drop=True)
    out.insert(0, "invoice_id", [f"I{i:07d}" for i in range(1, len(out) + 1)])
    return out


CS_PROGRAM_COSTS = (
    ("tools", 1500.0, 0.01),
    ("training", 600.0, 0.004),
    ("programs", 0.0, 0.01),
)  # fixed + share of MRR


def spend_frame(
    first_mrr: pd.DataFrame,
    subscriptions_mrr: pd.Series,
    team: pd.DataFrame,
    rng: np.random.Generator,
    scale: DemoScale,
) -> pd.DataFrame:
    """Monthly spend: marketing and sales per segment and channel (each new customer costs its pair's
    DIRECT_PAYBACK_MONTHS of first-month gross margin), untagged brand marketing, AE and CSM cost per segment,
    SDR cost split over the segments they prospect for, customer-success tools, training and programs, COGS, R&D, G&A. `first_mrr`: account_id, month
    (period of the first paying month), segment, channel, mrr (USD)."""
    rows: list[tuple] = []
    direct = first_mrr.assign(
        cost=[
            DIRECT_PAYBACK_MONTHS[s][c] * m * GROSS_MARGIN
            for s, c, m in zip(first_mrr.segment, first_mrr.channel, first_mrr.mrr)
        ]
    )
    cost_by = direct.groupby(["month", "segment", "channel"]).cost.sum()
    for month in period_months(scale):
        day = month.start_time.date()
        for seg in SEGMENTS:
            for ch in CHANNELS:
                cost = float(cost_by.get((month, seg.name, ch), 0.0)) * rng.uniform(0.85, 1.15)
                if cost:
                    rows.append((day, "marketing", round(cost * 0.6, 2), ch, seg.name))
                    rows.append((day, "sales", round(cost * 0.4, 2), ch, seg.name))
        rows.append((day, "marketing", round(float(rng.uniform(*BRAND_SPEND_RANGE)), 2), None, None))  # brand: untagged
        revenue = float(subscriptions_mrr.get(month, 0.0))
        rows.append((day, "cogs", round(revenue * (1 - GROSS_MARGIN), 2), None, None))
        active = team[(pd.to_datetime(team.start_date).dt.to_period("M") <= month)]
        for role, cat in (("csm", "customer_success"), ("ae", "sales")):
            for seg, cost in active[active.role == role].groupby("segment", sort=True).monthly_cost.sum().items():
                rows.append(
                    (day, cat, round(float(cost), 2), None, seg, "salaries_and_benefits" if role == "csm" else None)
                )
        for item, fixed, share in CS_PROGRAM_COSTS:  # untagged: the workbook splits them over segments by MRR
            rows.append((day, "customer_success", round(fixed + share * revenue, 2), None, None, item))
        sdr = float(active[active.role == "sdr"].monthly_cost.sum())
        for segment in ("mid_market", "enterprise"):  # SDRs prospect for the sales-led segments
            rows.append((day, "sales", round(sdr / 2, 2), None, segment))
        rows.append((day, "rnd", round(revenue * 0.35 + 60000, 2), None, None))
        rows.append((day, "g_and_a", round(revenue * 0.12 + 25000, 2), None, None))
    rows = [r if len(r) == 6 else (*r, None) for r in rows]
    out = pd.DataFrame(rows, columns=["month", "category", "amount", "channel", "segment", "item"])
    out["currency"] = "USD"
    return out
