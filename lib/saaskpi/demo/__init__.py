"""The deterministic demo company: `generate(out_dir)` writes every contract table plus its ground truth.

Same seed and scale -> byte-identical files. The folder is built beside `out_dir` and renamed into
place only when complete, so an interrupted run never leaves a half-written demo.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .. import paths
from ..event_file import write_usage_events
from .activity import (
    EVENT_SCHEMA,
    funnel_frames,
    invoices_frame,
    spend_frame,
    success_frames,
    usage_batches,
    users_frame,
)
from .churn import churn_reasons_frame
from .company import (
    account_lives,
    accounts_frame,
    fx_rates,
    period_months,
    simulate_subscriptions,
    subscriptions_frame,
    team,
)
from .config import (
    CURRENCIES,
    DIRECT_PAYBACK_MONTHS,
    GROSS_MARGIN,
    SCALES,
    SEGMENTS,
    UNIT_ECONOMICS_VERDICTS,
    DemoScale,
)
from .plan import write_plan
from .sales import sales_frames
from .voice import voice_frames

__all__ = ["DemoScale", "SCALES", "generate"]
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) or (
            s.dtype == object and s.map(lambda v: isinstance(v, pd.Timestamp)).any()
        ):
            ts = pd.to_datetime(s)
            if ts.dt.tz is not None:
                ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
            is_date = col.endswith(("_date", "month", "issued_at", "paid_at")) and col not in ("created_at",)
            out[col] = ts.dt.strftime("%Y-%m-%d" if is_date else STAMP)
    out.to_csv(path, index=False, float_format="%.2f", lineterminator="\n")


def _latest_rates(fx: pd.DataFrame) -> dict[str, float]:
    return fx.sort_values("month").groupby("currency").rate_to_reporting.last().to_dict() | {"USD": 1.0}


def _first_mrr(accounts: pd.DataFrame, subs: pd.DataFrame, fx: pd.DataFrame) -> pd.DataFrame:
    """Each account's first subscription: its month and monthly value in USD, with segment and channel."""
    first = subs.sort_values(["start_date", "subscription_id"]).groupby("account_id", as_index=False).first()
    first["mrr"] = (
        first.amount / first.billing_period_months * (1 - first.discount_pct) * first.currency.map(_latest_rates(fx))
    )
    first["month"] = pd.to_datetime(first.start_date).dt.to_period("M")
    acc = accounts[["account_id", "segment", "acquisition_channel"]].rename(columns={"acquisition_channel": "channel"})
    return first[["account_id", "month", "mrr"]].merge(acc, on="account_id")


def _monthly_revenue(subs: pd.DataFrame, fx: pd.DataFrame, months: pd.PeriodIndex) -> pd.Series:
    latest = _latest_rates(fx)
    mrr = subs.amount / subs.billing_period_months * (1 - subs.discount_pct) * subs.currency.map(latest)
    out = {}
    for m in months:
        end = m.end_time.normalize()
        on = (subs.start_date <= end) & (subs.end_date.isna() | (subs.end_date > end))
        out[m] = float(mrr[on].sum())
    return pd.Series(out)


def generate(out_dir: Path | str, *, scale: str | DemoScale = "default", seed: int = 7, progress: bool = False) -> dict:
    """Write the demo company's tables to `out_dir` (atomically) and return its ground truth."""
    from tqdm.auto import tqdm

    sc = SCALES[scale] if isinstance(scale, str) else scale
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    streams = np.random.SeedSequence(seed).spawn(8)
    rng = [np.random.default_rng(s) for s in streams]
    steps = tqdm(total=7, desc="demo company", disable=not progress)

    staff = team()
    lives = account_lives(rng[0], sc, staff[staff.role == "csm"])
    fx = fx_rates(sc)
    start_rates = {c: r for c, (_, r) in CURRENCIES.items()}
    counter = [0]
    for life in lives:
        simulate_subscriptions(life, rng[1], sc, counter, start_rates)
    accounts, subs = accounts_frame(lives, rng[2]), subscriptions_frame(lives)
    steps.update()
    users = users_frame(lives, rng[3], sc)
    steps.update()
    web, leads, opps = funnel_frames(lives, rng[4], sc, staff[staff.role == "ae"])
    steps.update()
    tickets, nps, touches = success_frames(lives, users, rng[5], sc)
    invoices = invoices_frame(subs, lives, rng[6], sc)
    spend = spend_frame(
        _first_mrr(accounts, subs, fx), _monthly_revenue(subs, fx, period_months(sc)), staff, rng[7], sc
    )
    steps.update()

    tmp = Path(tempfile.mkdtemp(prefix=f"{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        tables = {
            "accounts": accounts,
            "subscriptions": subs,
            "fx_rates": fx,
            "web_traffic": web,
            "leads": leads,
            "opportunities": opps,
            "users": users,
            "support_tickets": tickets,
            "nps_responses": nps,
            "cs_touchpoints": touches,
            "team": staff,
            "spend": spend,
            "invoices": invoices,
        }
        for name, frame in tables.items():
            _write_csv(frame, tmp / f"{name}.csv")
        write_plan(tmp, accounts, subs, fx, spend, sc, seed)  # the optional plan table, own random stream (issue 25)
        for name, frame in voice_frames(seed, accounts, nps, tickets, period_months(sc)).items():  # issue 25
            _write_csv(frame, tmp / f"{name}.csv")
        _write_csv(churn_reasons_frame(accounts, subs, seed), tmp / "churn_reasons.csv")  # issue 25, own stream
        for name, frame in sales_frames(staff, leads, opps, seed).items():  # issue 25: quotas, sales activities
            _write_csv(frame, tmp / f"{name}.csv")  # (own stream; not in the ground truth's counts, as the others)
        steps.update()
        # the events are made account by account; the workbook stores them by month (event_file.py)
        made = tmp / ".usage_events.made.parquet"
        with pq.ParquetWriter(made, EVENT_SCHEMA, compression="zstd") as writer:
            for batch in usage_batches(lives, users, np.random.default_rng(streams[3].spawn(1)[0]), sc):
                writer.write_table(batch, row_group_size=1_000_000)
        events = write_usage_events(made, tmp / "usage_events.parquet")
        made.unlink()
        steps.update()
        truth = ground_truth(sc, seed, {**{k: len(v) for k, v in tables.items()}, "usage_events": events}, lives)
        (tmp / "ground_truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        paths.replace_folder(tmp, out_dir)
        steps.update()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        steps.close()
    return truth


def ground_truth(sc: DemoScale, seed: int, counts: dict[str, int], lives) -> dict:
    """What the generator was told to do, for tests to recover from the data."""
    months = period_months(sc)
    return {
        "seed": seed,
        "scale": asdict(sc),
        "period_start": str(months[0].start_time.date()),
        "period_end": str(months[-1].end_time.date()),
        "row_counts": counts,
        "gross_margin": GROSS_MARGIN,
        "direct_payback_months": DIRECT_PAYBACK_MONTHS,
        "unit_economics_verdicts": UNIT_ECONOMICS_VERDICTS,
        "engagement": "each account has a latent engagement e ~ Beta(2.2, 2.2); its churn hazard is "
        "segment hazard x (1.6 - 1.2 e); usage, NPS, CSAT and sentiment rise with e, tickets fall",
        "segments": {
            s.name: {
                "monthly_logo_churn_hazard": s.monthly_churn_hazard,
                "expansion_probability": s.expansion_probability,
                "contraction_probability": s.contraction_probability,
                "price_per_seat_usd": s.price_per_seat,
                "typical_seats": list(s.seats),
                "annual_contract_share": s.annual_share,
                "sales_cycle_median_days": s.sales_cycle_median_days,
                "lead_to_pql_rate": s.lead_to_pql_rate,
                "pql_to_customer_rate": s.pql_to_customer_rate,
                "accounts": sum(1 for a in lives if a.segment.name == s.name),
            }
            for s in SEGMENTS
        },
    }
