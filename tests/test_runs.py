"""Immutable runs: a month run twice keeps both runs (the first byte-identical), the metrics store only appends,
its rows are the values each page showed on the engine it ran on, `saaskpi compare` lists exactly the restated
values, a partial rerun keeps the month's other pages, and a killed snapshot damages nothing.

One module-scoped history of five runs on the conftest source (five accounts, Jan-May 2024; A5 pays EUR 100 at
the reference rate 1.20 plus a USD 30 add-on, 150 a month; MRR 660 at the end of April, 560 at the end of May):
  r0  2024-04, page 02, Polars
  r1  2024-05, page 02, Polars
      -- a late cancellation arrives: A5's EUR subscription S8 ended on 2024-04-01 (A5 keeps its add-on) --
  r2  2024-05, page 02, Polars       (MRR April 660 - 120 = 540, May 560 - 120 = 440)
  r3  2024-05, page 04 only          (a partial rerun)
  r4  2024-05, page 02, DuckDB
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REVENUE_TABLES, run, write_source

from saaskpi import format as fmt
from saaskpi.metrics import METRICS
from saaskpi.snapshot import HISTORY_MONTHS, METRIC_COLUMNS, completed_runs, metric_records, page_areas, take_snapshot
from saaskpi.workbook import open_workbook

pytestmark = pytest.mark.notebook
PAGE, OTHER = "02_cohort_retention", "04_cs_load"


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under `folder`, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def cancel_late(source: Path) -> None:
    """A5's EUR subscription S8 turns out to have ended on 2024-04-01."""
    subs = source / "subscriptions.csv"
    text = subs.read_text()
    assert "S8,A5,2024-01-01,,100" in text
    subs.write_text(text.replace("S8,A5,2024-01-01,,100", "S8,A5,2024-01-01,2024-04-01,100"))


def snapshot(source: Path, reports: Path, month: str, notebook: str = PAGE, engine: str = "polars"):
    snap = take_snapshot(
        month, str(source), ["all"], [notebook], workers=1, reports=reports, progress=False, engine=engine
    )
    assert not snap.failed, [r.describe() for r in snap.failed]
    return snap


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    source, reports = write_source(tmp / "src", REVENUE_TABLES), tmp / "reports"
    before = shutil.copytree(source, tmp / "before")
    r0 = snapshot(source, reports, "2024-04")
    r1 = snapshot(source, reports, "2024-05")
    first = {"r0": digest(r0.folder), "r1": digest(r1.folder)}
    store_after_r1 = pd.read_parquet(reports / "metrics.parquet")
    cancel_late(source)
    r2 = snapshot(source, reports, "2024-05")
    r3 = snapshot(source, reports, "2024-05", notebook=OTHER)
    r4 = snapshot(source, reports, "2024-05", engine="duckdb")
    return {
        "source": source,
        "before": before,
        "reports": reports,
        "runs": [r0, r1, r2, r3, r4],
        "first": first,
        "store_after_r1": store_after_r1,
    }


def store(history) -> pd.DataFrame:
    return pd.read_parquet(history["reports"] / "metrics.parquet")


def test_a_month_run_twice_keeps_both_runs_and_the_first_byte_identical(history):
    r0, r1, r2, r3, r4 = history["runs"]
    month = history["reports"] / "2024-05" / "runs"
    assert sorted(p.name for p in month.iterdir()) == sorted([r1.run_id, r2.run_id, r3.run_id, r4.run_id])
    assert digest(r1.folder) == history["first"]["r1"] and digest(r0.folder) == history["first"]["r0"]
    assert r1.run_id < r2.run_id < r3.run_id < r4.run_id  # run ids sort by time
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", r1.run_id)


def test_the_store_only_appends_and_every_row_names_its_run(history):
    rows, earlier = store(history), history["store_after_r1"]
    assert list(rows.columns) == METRIC_COLUMNS
    pd.testing.assert_frame_equal(rows.iloc[: len(earlier)].reset_index(drop=True), earlier)  # nothing rewritten
    assert rows[["run_id", "run_time", "code_version", "data_fingerprint", "engine"]].notna().all().all()
    runs = rows.drop_duplicates("run_id").set_index("run_id")
    ids = [r.run_id for r in history["runs"]]
    assert list(runs.index) == ids
    assert runs.loc[ids[1], "data_fingerprint"] != runs.loc[ids[2], "data_fingerprint"]  # the source changed
    assert runs.loc[ids[4], "engine"] == "duckdb" and set(runs.loc[ids[:4], "engine"]) == {"polars"}
    assert set(rows[rows.run_id == ids[3]].notebook) == {OTHER}  # the partial rerun added its page's rows


def expected_restatements(history) -> set[tuple[str, str]]:
    """(metric, month) of every value page 02 shows that the late cancellation changes, computed directly from
    the sources before and after (not from the store)."""
    from saaskpi.snapshot import RunInfo

    run = RunInfo("x", "", "2024-05", "polars", "", "")
    old, new = (
        {
            (r["metric"], r["month"]): r["value"]
            for r in metric_records(open_workbook(str(src), "all", "2024-05", interactive=False), PAGE, run)
        }
        for src in (history["before"], history["source"])
    )
    assert old.keys() == new.keys()
    from saaskpi.metrics import METRICS

    return {
        key
        for key in old
        if not (pd.isna(old[key]) and pd.isna(new[key]))
        and (pd.isna(old[key]) != pd.isna(new[key]) or abs(old[key] - new[key]) > METRICS[key[0]].restatement_tolerance)
    }


def test_compare_runs_lists_exactly_the_restated_values(history, capsys):
    _, r1, r2, _, _ = history["runs"]
    reports = ("--reports", str(history["reports"]))
    code, out, err = run(capsys, "compare", "--runs", r1.run_id, r2.run_id, *reports, "--format", "csv")
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert table.restated.all() and set(table.segment) == {"all"} and set(table.notebook) == {PAGE}
    listed = set(zip(table.metric, table.month))
    assert listed == expected_restatements(history)
    mrr = table[table.metric == "monthly_recurring_revenue"].set_index("month")
    assert sorted(mrr.index) == ["2024-04", "2024-05"]  # January to March are untouched
    assert mrr.value_a.tolist() == [660, 560] and mrr.value_b.tolist() == [540, 440]  # A5 loses EUR 100 x 1.20
    assert f"Values that differ between run {r1.run_id} and run {r2.run_id}: {len(table)} restated" in err
    swapped, _, err = run(capsys, "compare", "--runs", r2.run_id, r1.run_id, *reports)
    assert swapped == 2 and "swapped" in err


def test_compare_months_flags_restatements_and_refuses_swapped_months(history, capsys):
    reports = ("--reports", str(history["reports"]))
    code, out, _ = run(capsys, "compare", "--months", "2024-04", "2024-05", *reports, "--format", "csv")
    assert code == 0
    table = pd.read_csv(io.StringIO(out)).set_index(["segment", "notebook", "metric"])
    mrr = table.loc[("all", PAGE, "monthly_recurring_revenue")]
    # r0 recorded April as 660; the latest May run of page 02 (r4) shows April 540 and May 440
    assert (mrr["value_2024-04"], mrr["2024-04_restated_as"], mrr["value_2024-05"]) == (660, 540, 440)
    assert mrr.restated
    # for people: values by unit ($660, not 660.0 or 6.6e+02), changes signed
    code, out, err = run(capsys, "compare", "--months", "2024-04", "2024-05", *reports)
    assert code == 0
    assert "$660" in out and "$540" in out and "−$220" in out and "e+0" not in out and "restated" in err
    code, _, err = run(capsys, "compare", "--months", "2024-05", "2024-04", *reports)
    assert code == 2 and "swapped? try 2024-04 2024-05" in err


def tiles(notebook: Path) -> dict[str, str]:
    """The value each KPI tile of an executed notebook shows, by metric name."""
    cells = json.loads(notebook.read_text())["cells"]
    shown = "".join("".join(o.get("data", {}).get("text/html", "")) for c in cells for o in c.get("outputs", []))
    return dict(re.findall(r'data-metric="(\w+)".*?<div class="kpi-value">(.*?)</div>', shown))


@pytest.mark.parametrize("which, engine", [(2, "polars"), (4, "duckdb")])
def test_stored_rows_are_the_values_the_page_showed(history, which, engine):
    snap = history["runs"][which]
    rows = store(history)
    rows = rows[(rows.run_id == snap.run_id) & (rows.month == "2024-05")].set_index("metric")
    shown = tiles(snap.folder / "all" / f"{PAGE}.ipynb")
    assert "monthly_recurring_revenue" in shown and len(shown) >= 8
    assert set(rows.engine) == {engine}
    for metric, text in shown.items():  # a metric without a value this month (NRR needs 12 months) shows n/a
        value = rows.loc[metric, "value"] if metric in rows.index else float("nan")
        assert fmt.value(value, METRICS[metric].unit, "USD") == text, metric
    assert rows.loc["monthly_recurring_revenue", "value"] == 440
    sidecar = json.loads((snap.folder / "all" / f"{PAGE}.metrics.json").read_text())  # written by the page's kernel
    assert {r["engine"] for r in sidecar} == {engine} and {r["run_id"] for r in sidecar} == {snap.run_id}
    months = {r["month"] for r in sidecar}
    assert len(months) <= HISTORY_MONTHS and max(months) == "2024-05"
    assert {r["metric"] for r in sidecar if r["month"] == "2024-05"} == set(rows.index)  # the store has them all
    # page 02 tiles: MRR, ARR, NRR, GRR, logo churn, net MRR churn, quick ratio, DAU/MAU (LTV is page 03's)
    assert len(set(shown) & set(rows.index)) >= 5 and page_areas(PAGE) == ("revenue", "usage")


def test_a_partial_rerun_keeps_the_other_pages_of_the_month(history):
    _, r1, r2, r3, r4 = history["runs"]
    index = (history["reports"] / "2024-05" / "index.html").read_text()
    assert f'href="runs/{r4.run_id}/all/{PAGE}.html"' in index  # page 02: its latest run
    assert f'href="runs/{r3.run_id}/all/{OTHER}.html"' in index  # page 04: the partial rerun
    assert f"{r1.run_id} (first)" in index and f"{r4.run_id} (latest)" in index and r2.run_id in index
    assert (r2.folder / "all" / f"{PAGE}.html").exists() and not (r3.folder / "all" / f"{PAGE}.ipynb").exists()
    assert [r["run_id"] for r in completed_runs(history["reports"], "2024-05")] == [
        r1.run_id,
        r2.run_id,
        r3.run_id,
        r4.run_id,
    ]


def test_a_killed_snapshot_leaves_every_earlier_run_and_the_store_intact(history, tmp_path):
    reports = shutil.copytree(history["reports"], tmp_path / "reports")
    before = {p: h for p, h in digest(reports).items() if not p.endswith(".lock")}
    cmd = [
        sys.executable,
        "-m",
        "saaskpi.cli",
        "snapshot",
        "--month",
        "2024-05",
        "--source",
        str(history["source"]),
        "--segments",
        "all,smb",
        "--notebooks",
        PAGE,
        "--workers",
        "1",
        "--reports",
        str(reports),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runner = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    runs = reports / "2024-05" / "runs"
    deadline = time.time() + 300
    while time.time() < deadline and not list(runs.glob(f".*.partial/*/{PAGE}.html")):
        time.sleep(0.5)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner and its kernels, after its first page, during its second
    runner.wait()
    assert list(runs.glob(f".*.partial/*/{PAGE}.html")), "the first page never finished"
    after = {p: h for p, h in digest(reports).items() if not p.endswith(".lock") and ".partial" not in p}
    assert after == before  # every earlier run, the index and the store, byte for byte
    assert len(pd.read_parquet(reports / "metrics.parquet")) == len(store(history))  # readable, nothing appended
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 of 2 runs succeeded (1 reused from the interrupted attempt)" in done.stdout
    assert done.stderr == ""  # no progress bar off a terminal, and nothing else: no kernel warnings
    assert not list(runs.glob(".*.partial")) and len(completed_runs(reports, "2024-05")) == 5
    rows = pd.read_parquet(reports / "metrics.parquet")
    assert set(rows.iloc[len(store(history)) :].segment) == {"all", "smb"}  # the new run's rows, appended


def test_only_open_tickets_closing_is_not_a_restatement():
    # two runs of one month; between them open tickets closed, so the support times of closed months grew, and MRR
    # moved by a rounding residue. Nothing is restated; the support times are labelled as settling.
    from saaskpi.snapshot import change_kinds

    metric = pd.Series(
        [
            "resolution_hours",
            "resolution_hours_p90",
            "sla_breach_rate",
            "monthly_recurring_revenue",
            "customer_churn_rate",
            "net_revenue_retention",
            "trial_to_paid_conversion",
        ]
    )
    was = pd.Series([20.0, 70.0, 0.10, 3_522_911.204, 0.0230, 1.004, 0.09])
    now = pd.Series([26.5, 95.0, 0.14, 3_522_911.2061, 0.0231, 0.998, 0.12])
    immature = pd.Series([False, False, False, False, False, False, True])
    kinds = change_kinds(metric, was, now, immature).tolist()
    # MRR +$0.002 is under half a cent; churn +0.01 pts under 0.05 pts: unchanged. NRR -0.6 pts: restated.
    assert kinds == ["settling", "settling", "settling", "", "", "restated", "matured"]
