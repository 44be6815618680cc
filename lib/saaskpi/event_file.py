"""How the workbook stores usage events when it writes them itself (the demo, `saaskpi import`): one Parquet file
ordered by month, account, user and time, in row groups of 512k events.

Every reader works on events in any order (a source given as it is keeps its own); this order only makes the
same queries cheaper. A query over a period (a funnel's, stickiness's last months) reads only the row groups
whose time statistics overlap it, and the group-bys by account and user find each group's rows together. At 50M
events, side by side with the same events in the order the demo made them (benchmarks/RESULTS.md, 2026-12-03):
the user-month aggregate 3.9 -> 3.0 s, the feature-month one 2.3 -> 1.8 s, the Polars snapshot 136 -> 123 s.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from . import paths

ROW_GROUP = 512 * 1024
SORT_ROWS = 8_000_000  # events sorted in memory at once (the 50M demo: 70 s, 3.6 GB peak)
ORDER = ("account_id", "user_id", "event_time")  # after the month


def write_usage_events(source: Path, target: Path, sort_rows: int = SORT_ROWS) -> int:
    """Write the usage events of the Parquet file `source` (left as it is; read once to count the events of each
    account-month, then once per piece) to the Parquet file `target` (atomically) in the workbook's order; returns
    the number of events. The events are sorted a piece at a time: consecutive account-months, at most `sort_rows`
    events (one account-month however many), so memory stays bounded at any size, even with every event in one
    month. Events without a time or an account come last."""
    events = pl.scan_parquet(source)
    # frames.month_key in Polars: the streaming engine runs it piece by piece (frames.month_and_day's lookup is
    # faster, but not streamed: a query with it reads the whole file into memory)
    time = pl.col("event_time")
    month = time.dt.year().cast(pl.Int64) * 12 + time.dt.month().cast(pl.Int64) - 1
    counted = (
        events.group_by(month.alias("month"), "account_id")
        .agg(pl.len().alias("n"))
        .sort("month", "account_id", nulls_last=True)
        .collect(engine="streaming")
    )
    pieces: list[list[tuple]] = []  # [first, last] (month, account) of each piece, in the file's order
    size = 0
    for *key, n in counted.drop_nulls().iter_rows():
        if not pieces or size + n > sort_rows:
            pieces.append([tuple(key), tuple(key)])
            size = 0
        pieces[-1][1] = tuple(key)
        size += n
    keys = [month, pl.col("account_id")]
    filters = [_between(keys, first, last) for first, last in pieces]
    if counted.height > counted.drop_nulls().height:
        filters.append(pl.any_horizontal([k.is_null() for k in keys]))

    def write(path: Path) -> None:
        schema = events.head(0).collect().to_arrow().schema
        with pq.ParquetWriter(path, schema, compression="zstd") as writer:
            for piece in filters:
                table = (
                    events.filter(piece)
                    .sort([month, *ORDER], nulls_last=True, maintain_order=True)
                    .collect(engine="streaming")
                    .to_arrow()
                )
                writer.write_table(table.cast(schema), row_group_size=ROW_GROUP)

    paths.atomic_write(target, write)
    return int(counted["n"].sum())


def _between(keys: list[pl.Expr], first: tuple, last: tuple) -> pl.Expr:
    """Rows whose `keys` are from `first` to `last` (both included), compared in order as a tuple is."""

    def beyond(bound: tuple, later: bool) -> pl.Expr:  # keys > bound (later) or < bound, in tuple order
        out = pl.lit(False)
        for i in reversed(range(len(keys))):
            past = keys[i] > bound[i] if later else keys[i] < bound[i]
            out = past | ((keys[i] == bound[i]) & out)
        return out

    def equal(bound: tuple) -> pl.Expr:
        return pl.all_horizontal([k == v for k, v in zip(keys, bound)])

    return (beyond(first, True) | equal(first)) & (beyond(last, False) | equal(last))
