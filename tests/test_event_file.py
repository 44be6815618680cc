"""The workbook's own events file (event_file.py): ordered by month, account, user and time, whatever the order it
was given in, with every event kept, however few events it may sort at once."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyarrow.parquet as pq
import pytest

from saaskpi.event_file import write_usage_events


def at(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


# given account by account (as the demo makes them), one event without a time
EVENTS = pl.DataFrame(
    {
        "event_time": [
            at("2024-02-03T10:00"),
            at("2024-01-31T23:59"),
            at("2024-01-05T08:00"),
            None,
            at("2024-02-01T00:00"),
            at("2024-01-05T07:00"),
            at("2023-12-31T12:00"),
        ],
        "user_id": ["u2", "u2", "u1", "u1", "u3", "u3", "u1"],
        "account_id": ["B", "B", "B", "B", "A", "A", "B"],
        "feature": ["f1", "f2", "f3", "f4", "f5", "f6", "f7"],
    },
    schema_overrides={"event_time": pl.Datetime("us", "UTC")},
)
# by month, then account, user and time: Dec (B u1 f7); Jan (A u3 f6; B u1 f3; B u2 f2); Feb (A u3 f5; B u2 f1);
# the event without a time last
ORDER = ["f7", "f6", "f3", "f2", "f5", "f1", "f4"]


@pytest.mark.parametrize("sort_rows", [1, 2, 3, 100])
def test_events_are_stored_by_month_account_user_and_time(tmp_path, sort_rows):
    given = tmp_path / "given.parquet"
    EVENTS.write_parquet(given)
    before = given.read_bytes()
    # sorted a piece at a time, consecutive account-months of at most sort_rows events: 1 and 2: each account-month
    # alone (Jan B has 2 events: Jan B u1, u2; with 2, Dec B and Jan A together); 3: (Dec B, Jan A), (Jan B),
    # (Feb A, Feb B); 100: all at once; the event without a time in a piece of its own, last
    n = write_usage_events(given, tmp_path / "usage_events.parquet", sort_rows=sort_rows)
    stored = pl.read_parquet(tmp_path / "usage_events.parquet")
    assert n == 7
    assert stored["feature"].to_list() == ORDER
    assert stored.sort("feature").equals(EVENTS.sort("feature"))  # every event, unchanged
    assert given.read_bytes() == before  # the input is never modified


def test_row_groups_carry_time_statistics(tmp_path):
    given = tmp_path / "given.parquet"
    EVENTS.drop_nulls().write_parquet(given)
    write_usage_events(given, tmp_path / "usage_events.parquet", sort_rows=1)
    meta = pq.ParquetFile(tmp_path / "usage_events.parquet").metadata
    # one row group per account-month here (each written on its own): Dec B; Jan A, Jan B; Feb A, Feb B. A query
    # over February reads only the last two
    spans = [
        (meta.row_group(i).column(0).statistics.min, meta.row_group(i).column(0).statistics.max)
        for i in range(meta.num_row_groups)
    ]
    assert [(lo.month, hi.month) for lo, hi in spans] == [(12, 12), (1, 1), (1, 1), (2, 2), (2, 2)]


def test_no_events(tmp_path):
    given = tmp_path / "given.parquet"
    EVENTS.head(0).write_parquet(given)
    assert write_usage_events(given, tmp_path / "usage_events.parquet") == 0
    assert pl.read_parquet(tmp_path / "usage_events.parquet").schema == EVENTS.schema


def test_a_month_bigger_than_a_piece_is_sorted_in_pieces(tmp_path):
    # every event in January (as in a busy month): with at most 2 events per piece, January's accounts are
    # sorted one at a time, and the file is in the same order as when sorted at once
    january = EVENTS.drop_nulls().with_columns(pl.col("event_time").dt.replace(month=1, year=2024))
    given = tmp_path / "given.parquet"
    january.write_parquet(given)
    write_usage_events(given, tmp_path / "pieces.parquet", sort_rows=2)
    write_usage_events(given, tmp_path / "whole.parquet", sort_rows=100)
    pieces, whole = pl.read_parquet(tmp_path / "pieces.parquet"), pl.read_parquet(tmp_path / "whole.parquet")
    assert pieces.equals(whole)
    assert pieces["account_id"].to_list() == ["A", "A", "B", "B", "B", "B"]
    assert pq.ParquetFile(tmp_path / "pieces.parquet").metadata.num_row_groups == 2  # A's 2 events, B's 4


def test_an_event_of_1969_is_ordered_by_its_month(tmp_path):
    # months are computed per event (not read from frames.month_and_day's 1970-2099 calendar): December 1969 is
    # the first month, before the rest in their order; the event without a time still last
    given = tmp_path / "given.parquet"
    early = pl.DataFrame(
        {"event_time": [at("1969-12-31T12:00")], "user_id": ["u9"], "account_id": ["A"], "feature": ["f8"]},
        schema=EVENTS.schema,
    )
    pl.concat([EVENTS, early]).write_parquet(given)
    assert write_usage_events(given, tmp_path / "usage_events.parquet", sort_rows=2) == 8
    assert pl.read_parquet(tmp_path / "usage_events.parquet")["feature"].to_list() == ["f8", *ORDER]
