"""Big tables stay in the engine: every notebook runs on a source whose usage events far outnumber any
aggregate a page may collect, and no frame collected on the Polars path comes near the event count.

The source is the demo company at a small scale (14 months) with about 40 events per active user and day.
The finest aggregate a page may collect has one row per user and month; a page that collected raw events
(or a per-event projection of them), even for the last month only, would collect far more rows. The limit,
events / 140, lies between the two (checked on the source itself below).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from saaskpi import sources
from saaskpi.cache import cached_frame
from saaskpi.demo import DemoScale, generate
from saaskpi.errors import DataContractError
from saaskpi.metrics import usage
from saaskpi.pages import run_sections
from saaskpi.sources import open_source, validated_tables
from saaskpi.workbook import open_workbook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
DENSE = DemoScale("dense", months=14, new_accounts_per_month=3.0, user_factor=0.3, events_per_user_day=40.0)


@pytest.fixture(scope="module")
def dense_source(tmp_path_factory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("dense") / "source"
    truth = generate(out, scale=DENSE, seed=11)
    return out, truth["row_counts"]["usage_events"]


@pytest.fixture
def collected(monkeypatch) -> list[int]:
    """Heights of every frame collected from a Polars lazy plan while the test runs."""
    heights: list[int] = []
    real = pl.LazyFrame.collect

    def counting(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        heights.append(out.height if isinstance(out, pl.DataFrame) else 0)
        return out

    monkeypatch.setattr(pl.LazyFrame, "collect", counting)
    return heights


def limit(events: int) -> float:
    return events / (10 * DENSE.months)


def test_the_limit_separates_aggregates_from_raw_events(dense_source):
    source, events = dense_source
    ev = pl.scan_parquet(source / "usage_events.parquet")
    month = pl.col("event_time").dt.truncate("1mo")
    user_months = ev.select("user_id", month=month).unique().select(pl.len()).collect().item()
    last_month = ev.group_by(month.alias("month")).len().sort("month").select(pl.col("len").last()).collect().item()
    assert user_months < limit(events) < last_month, (user_months, limit(events), last_month)


@pytest.mark.parametrize("segment", ["all", "enterprise"])
def test_no_page_collects_raw_events(dense_source, collected, segment):
    source, events = dense_source
    wb = open_workbook(str(source), segment, "", interactive=False)
    wb.stored = False  # every page computes here (results read from the store would collect nothing)
    assert isinstance(wb.tables.lazy("usage_events").to_native(), pl.LazyFrame)  # the Polars path, not loaded
    for notebook in NOTEBOOKS:
        before = len(collected)
        shown = run_sections(notebook, wb.with_choice())
        assert shown, notebook.name
        assert len(collected) > before, f"{notebook.name} collected nothing from Polars: the guard saw nothing"
    largest = max(collected)
    assert largest < limit(events), f"a collected frame has {largest:,} rows for {events:,} events"


def test_the_guard_catches_a_page_that_collects_raw_events(dense_source, collected):
    source, events = dense_source
    wb = open_workbook(str(source), "all", "", interactive=False)
    wb.tables.lazy("usage_events").select("user_id").collect()  # what a careless page would do
    assert max(collected) == events


def test_text_in_a_big_table_is_stripped_only_when_a_value_needs_it(dense_source, tmp_path):
    source, _ = dense_source
    padded = tmp_path / "padded"
    shutil.copytree(source, padded)
    events = pl.read_parquet(source / "usage_events.parquet")
    first = pl.int_range(pl.len()) == 0
    events.with_columns(
        feature=pl.when(first).then(" " + pl.col("feature")).otherwise(pl.col("feature"))
    ).write_parquet(padded / "usage_events.parquet")
    for folder, stripped in ((source, False), (padded, True)):
        scan = validated_tables(open_source(folder)).scans["usage_events"]
        assert ("strip_chars" in scan.explain()) == stripped, folder.name
        assert scan.select(pl.col("feature").str.starts_with(" ").any()).collect().item() is False


def test_the_events_last_time_is_counted_while_they_are_validated(dense_source, monkeypatch, tmp_path):
    source, _ = dense_source
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))  # nothing remembered: the events are checked
    tables = validated_tables(open_source(source))
    remembered = validated_tables(open_source(source))  # a later kernel: not checked again, so not counted
    last = pl.read_parquet(source / "usage_events.parquet", columns=["event_time"])["event_time"].max()
    assert tables.maxima[("usage_events", "event_time")] == last and not remembered.maxima
    assert remembered.column_max("usage_events", "event_time") == last  # read by a pass of its own
    # the last complete month reads it without another pass over the events
    monkeypatch.setattr(pl.LazyFrame, "collect", lambda *a, **k: pytest.fail("scanned the events again"))
    assert tables.column_max("usage_events", "event_time") == last


# --------------------------------------------------------------------------- the aggregate cache
AGGREGATES = ("user_month_activity", "feature_month_activity")


def aggregates(source: Path, segment: str) -> dict:
    wb = open_workbook(str(source), segment, "", interactive=False)
    return {name: wb.table(name) for name in AGGREGATES}


def test_cached_aggregates_equal_computed_ones_for_every_segment(dense_source, monkeypatch, tmp_path):
    source, _ = dense_source
    monkeypatch.setenv("SAASKPI_CACHE_DIR", "off")
    fresh = {seg: aggregates(source, seg) for seg in ("all", "smb")}
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    computed = []
    real = usage._per_user_month
    monkeypatch.setattr(usage, "_per_user_month", lambda *a, **k: computed.append(1) or real(*a, **k))
    for seg in ("smb", "all", "smb"):  # the first segment fills the cache for every account
        cached = aggregates(source, seg)
        for name in AGGREGATES:
            pd.testing.assert_frame_equal(cached[name], fresh[seg][name])
    assert computed == [1]  # once, for every kernel and segment after it
    cache = (tmp_path / "cache").iterdir()  # beside the results store (results/) and the source's months (coverage)
    files = [p.suffix for p in cache if p.is_file() and p.name.startswith(AGGREGATES)]
    assert sorted(files) == [".lock", ".lock", ".parquet", ".parquet"]


def test_a_changed_source_or_a_damaged_entry_is_recomputed(dense_source, monkeypatch, tmp_path):
    source, _ = dense_source
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    before = aggregates(copy, "all")["user_month_activity"]
    events = pl.read_parquet(copy / "usage_events.parquet")
    last = events["event_time"].max()
    events.filter(pl.col("event_time") < last).write_parquet(copy / "usage_events.parquet")  # drop the last event(s)
    after = aggregates(copy, "all")["user_month_activity"]
    assert after.last_event.max() < before.last_event.max()
    for entry in (tmp_path / "cache").rglob("*.parquet"):
        entry.write_bytes(b"not parquet")
    again = aggregates(copy, "all")["user_month_activity"]
    pd.testing.assert_frame_equal(again, after)


def test_a_validated_big_source_is_not_checked_again_until_it_changes(dense_source, monkeypatch, tmp_path):
    source, _ = dense_source
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    checks = []
    real = sources.cross_table_problems
    monkeypatch.setattr(sources, "cross_table_problems", lambda *a, **k: checks.append(1) or real(*a, **k))
    first, second = validated_tables(open_source(copy)), validated_tables(open_source(copy))
    assert checks == [1]  # the second kernel trusts the first one's validation of the same files
    assert (
        first.as_stored
        == second.as_stored
        == {"usage_events": ["user_id", "account_id", "feature", "event", "properties"]}
    )
    assert first.scans["usage_events"].collect().equals(second.scans["usage_events"].collect())
    events = pl.read_parquet(copy / "usage_events.parquet")
    first_row = pl.int_range(pl.len()) == 0
    events.with_columns(user_id=pl.when(first_row).then(pl.lit("U-nobody")).otherwise(pl.col("user_id"))).write_parquet(
        copy / "usage_events.parquet"
    )
    with pytest.raises(DataContractError, match=r"usage_events\.user_id\.orphan"):
        validated_tables(open_source(copy))  # changed files are checked again
    assert checks == [1, 1]
    with pytest.raises(DataContractError):
        validated_tables(open_source(copy))  # and a failed validation is never remembered
    assert checks == [1, 1, 1]


def test_entries_older_than_a_month_are_removed_when_one_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path))
    old, recent = tmp_path / "user_month_activity-old.parquet", tmp_path / "validated-recent.json"
    for path, days in ((old, 31), (recent, 29)):
        path.write_text("x")
        stamp = time.time() - days * 86400
        os.utime(path, (stamp, stamp))
    frame = pd.DataFrame({"account_id": ["A"], "n": [1]})
    assert cached_frame("anything", "key", lambda: frame).equals(frame)
    assert not old.exists() and recent.exists()
    assert cached_frame("anything", "key", lambda: 1 / 0).equals(frame)  # read back, not computed again


def test_columns_stored_with_the_contracts_types_are_read_as_they_are(dense_source, tmp_path, monkeypatch):
    # a column already of its contract type is not converted (e.g. event_time, a UTC microsecond time): a filter
    # on it then reaches the Parquet statistics, so an ordered file is read only where the times are
    source, _ = dense_source
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    stored = pl.read_parquet_schema(source / "usage_events.parquet")
    assert stored["event_time"] == pl.Datetime("us", "UTC") and stored["duration_seconds"] == pl.Int64
    plan = validated_tables(open_source(source)).scans["usage_events"].select("event_time", "duration_seconds")
    assert "convert_time_zone" not in plan.explain() and "cast" not in plan.explain()
