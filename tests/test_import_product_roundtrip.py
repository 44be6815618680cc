"""Round trip: the demo company's users and usage events of ~150 accounts written out as Segment, Amplitude and
PostHog exports (tests/product_export.py: Parquet for all of them, JSON lines for a smaller subset) and imported
again give the demo's own users and usage_events, and the usage tables and metrics of every page, for every segment."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import import_base, run
from product_export import (
    amplitude_events,
    demo_usage,
    group_ids,
    posthog_exports,
    sample_accounts,
    segment_calls,
    write_id_map,
)

from saaskpi import paths
from saaskpi.workbook import TABLE_FUNCS, open_workbook

SYSTEMS = ("segment", "amplitude", "posthog")
USAGE = ("users", "usage_events")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The sampled accounts, their base folder (billing), the demo's users and events, the id map settings and
    the expected source folder (base + the demo's own usage tables)."""
    root = tmp_path_factory.mktemp("product_roundtrip")
    accounts = sample_accounts(pl.read_csv(paths.DEMO_DIR / "accounts.csv", columns=["account_id"]))
    base = import_base(root / "base", accounts)
    users, events = demo_usage(paths.DEMO_DIR, accounts)
    groups = {s: group_ids(s, accounts) for s in SYSTEMS}
    settings = write_id_map(root / "parameters", groups)
    expected = root / "expected"
    shutil.copytree(base, expected)
    users.write_parquet(expected / "users.parquet")
    events.write_parquet(expected / "usage_events.parquet")
    return {
        "root": root,
        "accounts": accounts,
        "base": base,
        "users": users,
        "events": events,
        "groups": groups,
        "settings": settings,
        "expected": expected,
    }


def exports(
    system: str, users: pl.DataFrame, events: pl.DataFrame, groups: pl.DataFrame, folder: Path, json: bool
) -> Path:
    """The system's exports of `users`/`events` in `folder`: Parquet files, or JSON lines (PostHog's persons too; the
    events of Segment and Amplitude split in two files, one gzipped)."""
    folder.mkdir(parents=True)
    if system == "posthog":
        frames = dict(zip(("events", "persons"), posthog_exports(users, events, groups)))
    else:
        frame = (segment_calls if system == "segment" else amplitude_events)(users, events, groups)
        half = frame.height // 2
        frames = {"part-0": frame.head(half), "part-1": frame.slice(half)} if json else {"events": frame}
    for name, frame in frames.items():
        if not json:
            frame.write_parquet(folder / f"{name}.parquet")
        elif name == "part-1":
            (folder / f"{name}.json.gz").write_bytes(gzip.compress(frame.write_ndjson().encode(), mtime=0))
        else:
            frame.write_ndjson(folder / f"{name}.jsonl")
    return folder


def imported(
    demo, system: str, name: str, accounts: list[str], json: bool, capsys
) -> tuple[Path, pl.DataFrame, pl.DataFrame]:
    users = demo["users"].filter(pl.col("account_id").is_in(accounts))
    events = demo["events"].filter(pl.col("account_id").is_in(accounts))
    folder = exports(system, users, events, demo["groups"][system], demo["root"] / f"{name}-exports", json)
    out = demo["root"] / name
    shutil.copytree(demo["base"], out)
    code, _, err = run(capsys, "import", system, str(folder), "--out", str(out), "--accounts", str(demo["settings"]))
    assert (code, err) == (0, ""), err
    return out, users, events


def same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    keys = list(want.columns)
    assert got.select(keys).sort(keys, nulls_last=True).equals(want.sort(keys, nulls_last=True)), (
        got.select(keys).sort(keys).head(),
        want.sort(keys).head(),
    )


METRICS = (
    "daily_active_users",
    "monthly_active_users",
    "dau_mau_ratio",
    "licence_utilisation_rate",
    "customer_engagement_score",
    "feature_adoption_rate",
    "time_in_product_per_user",
    "activation_rate",
    "activation_velocity",
    "time_to_value_days",
    "new_user_churn_rate",
    "viral_coefficient",
)


def pages(folder: Path, segments: list[str]) -> dict:
    """Every usage table and metric the pages show, per segment, from the source in `folder`."""
    shown = {}
    for segment in segments:
        wb = open_workbook(str(folder), segment, interactive=False)
        shown |= {
            (segment, name): wb.table(name, polars=True)
            for name, spec in TABLE_FUNCS.items()
            if set(spec.needs) & set(USAGE)
        }
        shown |= {(segment, name): pl.from_pandas(wb.compute(name)) for name in METRICS}
    return shown


@pytest.fixture(scope="module")
def demo_pages(demo) -> dict:
    segments = ["all", *sorted(pl.read_csv(demo["base"] / "accounts.csv")["segment"].unique())]
    return pages(demo["expected"], segments)


@pytest.mark.parametrize("system", SYSTEMS)
def test_parquet_exports_give_the_demos_users_and_usage(demo, demo_pages, system, capsys):
    out, users, events = imported(demo, system, f"{system}-parquet", demo["accounts"], json=False, capsys=capsys)
    assert len(demo["accounts"]) == 150 and users.height > 2000 and events.height > 100_000
    same(pl.read_parquet(out / "users.parquet"), users)
    same(pl.read_parquet(out / "usage_events.parquet"), events)
    got = pages(out, sorted({segment for segment, _ in demo_pages}))
    assert len(got) == len(demo_pages) >= 4 * 25
    for key, want in demo_pages.items():
        assert got[key].equals(want), (system, key)


@pytest.mark.parametrize("system", SYSTEMS)
def test_json_lines_exports_give_the_demos_users_and_usage(demo, system, capsys):
    subset = demo["accounts"][:20]
    out, users, events = imported(demo, system, f"{system}-json", subset, json=True, capsys=capsys)
    same(pl.read_parquet(out / "users.parquet"), users)
    same(pl.read_parquet(out / "usage_events.parquet"), events)
