"""A synthetic source with N usage events for the speed benchmarks, generated in bounded memory.

.venv/bin/python benchmarks/make_data.py 10000000 data/bench/10M
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

START, END = np.datetime64("2023-11-01"), np.datetime64("2026-11-01")  # 36 months, end exclusive
FEATURES = np.array(["dashboards", "reports", "integrations", "automation", "api", "alerts", "sharing", "admin"])
CHUNK = 5_000_000


def make(events: int, out: Path, accounts: int = 10_000, users: int = 100_000, seed: int = 1) -> Path:
    """Write accounts, subscriptions, users (CSV) and `events` usage events (Parquet) to `out`."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    days = int((END - START) / np.timedelta64(1, "D"))
    acc_ids = np.array([f"A{i:05d}" for i in range(accounts)])
    segment = rng.choice(["smb", "mid_market", "enterprise"], accounts, p=[0.6, 0.3, 0.1])
    start = START + rng.integers(0, days - 30, accounts).astype("timedelta64[D]")
    churned = rng.random(accounts) < 0.35
    length = rng.integers(31, days, accounts).astype("timedelta64[D]")
    stop = np.where(churned, np.minimum(start + length, END), END)
    price = np.select([segment == "smb", segment == "mid_market"], [100.0, 2000.0], 20000.0)
    pd.DataFrame(
        {"account_id": acc_ids, "segment": segment, "created_at": pd.to_datetime(start).strftime("%Y-%m-%dT00:00:00Z")}
    ).to_csv(out / "accounts.csv", index=False)
    # one subscription per account, plus an expansion for a fifth of them half way through
    grow = rng.random(accounts) < 0.2
    mid = start + ((stop - start) / 2).astype("timedelta64[D]")
    first_end = np.where(grow, mid, stop)
    subs = pd.DataFrame(
        {
            "subscription_id": [f"S{i:06d}" for i in range(accounts)],
            "account_id": acc_ids,
            "start_date": pd.to_datetime(start).strftime("%Y-%m-%d"),
            "end_date": np.where(churned | grow, pd.to_datetime(first_end).strftime("%Y-%m-%d"), ""),
            "amount": price,
        }
    )
    more = subs[grow].assign(
        subscription_id=[f"S{i:06d}" for i in range(accounts, accounts + int(grow.sum()))],
        start_date=pd.to_datetime(mid[grow]).strftime("%Y-%m-%d"),
        end_date=np.where(churned[grow], pd.to_datetime(stop[grow]).strftime("%Y-%m-%d"), ""),
        amount=price[grow] * 1.5,
    )
    pd.concat([subs, more]).to_csv(out / "subscriptions.csv", index=False)
    owner = rng.integers(0, accounts, users)
    user_ids = np.array([f"U{i:07d}" for i in range(users)])
    pd.DataFrame(
        {
            "user_id": user_ids,
            "account_id": acc_ids[owner],
            "created_at": pd.to_datetime(start[owner]).strftime("%Y-%m-%dT00:00:00Z"),
        }
    ).to_csv(out / "users.csv", index=False)
    span = ((stop - start) / np.timedelta64(1, "D")).astype("int64")[owner]
    schema = pa.schema(
        [
            ("event_time", pa.timestamp("us", tz="UTC")),
            ("user_id", pa.string()),
            ("account_id", pa.string()),
            ("feature", pa.string()),
            ("duration_seconds", pa.int64()),
        ]
    )
    with pq.ParquetWriter(out / "usage_events.parquet", schema, compression="zstd") as writer:
        for lo in range(0, events, CHUNK):
            n = min(CHUNK, events - lo)
            u = rng.integers(0, users, n)
            day = start[owner][u] + (rng.random(n) * span[u]).astype("timedelta64[D]")
            t = day.astype("datetime64[us]") + rng.integers(0, 86_400_000_000, n).astype("timedelta64[us]")
            table = pa.table(
                {
                    "event_time": pa.array(t, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
                    "user_id": user_ids[u],
                    "account_id": acc_ids[owner][u],
                    "feature": FEATURES[rng.integers(0, len(FEATURES), n)],
                    "duration_seconds": rng.integers(1, 600, n),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=1_000_000)
    return out


if __name__ == "__main__":
    make(int(sys.argv[1]), Path(sys.argv[2]))
