"""The results store (cache.cached_result via Workbook.compute): a page's tables and metrics computed once per
source, segment, month, parameters, engine and code, then read by every kernel that asks for the same."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REVENUE_TABLES, write_source

from saaskpi import cache
from saaskpi.metrics import METRICS, TABLE_FUNCS
from saaskpi.workbook import open_workbook

# A kernel opening the executive summary: waits for the go file, then computes every value of the page.
PAGE = """
import sys, time
from pathlib import Path
from saaskpi import open_workbook
from saaskpi.pages import executive_summary as page
source, ready, go = sys.argv[1:]
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.005)
wb = open_workbook(source, "all", "2024-05", interactive=False)
print(page.hierarchy_html(wb) + page.top7_html(wb))
print("loaded:", sorted(m for m in ("lifelines", "duckdb") if m in sys.modules))
"""


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """A results store of this test's own (kernels started by the test inherit it)."""
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / cache.RESULTS


def entries(store: Path, name: str = "") -> list[Path]:
    return sorted(store.glob(f"{name}-*.parquet" if name else "*.parquet")) if store.exists() else []


def test_two_kernels_opening_the_same_page_at_once_compute_it_once(store, revenue_source, tmp_path):
    go = tmp_path / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(cache.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    kernels = [
        subprocess.Popen(
            [sys.executable, "-c", PAGE, str(revenue_source), str(tmp_path / f"ready{i}"), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in (1, 2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both kernels have imported the workbook: they ask for the page at the same moment
    outputs = [k.communicate(timeout=300) for k in kernels]
    assert [k.returncode for k in kernels] == [0, 0], [err for _, err in outputs]
    pages = [out.rsplit("loaded:", 1)[0] for out, _ in outputs]
    assert pages[0] == pages[1]  # the same page
    counts = cache.computations()
    assert counts and set(counts.values()) == {1}, counts  # every table and metric computed once, by one kernel
    assert set(counts) == {p.name for p in entries(store)}
    assert {"monthly_recurring_revenue", "mrr_movements", "account_mrr"} <= {n.rsplit("-", 1)[0] for n in counts}
    go.touch()
    late = subprocess.run(
        [sys.executable, "-c", PAGE, str(revenue_source), str(tmp_path / "ready3"), str(go)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert late.stdout == pages[0] + "loaded: []\n"  # read from the store: neither lifelines nor DuckDB imported
    assert cache.computations() == counts


def test_what_the_store_returns_equals_a_fresh_computation(store, demo_source):
    fresh = open_workbook(str(demo_source), "enterprise", interactive=False)
    names = [n for n in [*TABLE_FUNCS, *METRICS] if not fresh.tables.missing(*(TABLE_FUNCS.get(n) or METRICS[n]).needs)]
    computed = {n: fresh.compute(n) for n in names}  # computed here, and stored
    before = cache.computations()
    stored = open_workbook(str(demo_source), "enterprise", interactive=False)
    for name in names:
        pd.testing.assert_frame_equal(stored.compute(name), computed[name], obj=name)  # index and dtypes too
    assert cache.computations() == before  # every one read, none computed again
    assert len(entries(store)) == len(names)


def test_a_damaged_entry_is_computed_again(store, revenue_source):
    first = open_workbook(str(revenue_source), "all", "2024-05", interactive=False).table("mrr_movements")
    (entry,) = entries(store, "mrr_movements")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])  # a truncated file: not an error
    again = open_workbook(str(revenue_source), "all", "2024-05", interactive=False).table("mrr_movements")
    pd.testing.assert_frame_equal(again, first)
    assert cache.computations("mrr_movements-")[entry.name] == 2
    pd.testing.assert_frame_equal(pd.read_parquet(entry), first)  # and stored whole again


def test_a_changed_parameter_segment_month_or_source_is_a_new_entry(store, tmp_path):
    source = write_source(tmp_path / "revenue", REVENUE_TABLES)
    wb = open_workbook(str(source), "all", "2024-05", interactive=False)
    base = wb.value("monthly_recurring_revenue").value
    seen = {p.name for p in entries(store, "monthly_recurring_revenue")}
    assert len(seen) == 1

    def new_entry(workbook) -> float:
        value = workbook.value("monthly_recurring_revenue").value
        now = {p.name for p in entries(store, "monthly_recurring_revenue")}
        assert len(now - seen) == 1, "no new entry"
        seen.update(now)
        return value

    new_entry(wb.with_conventions(status_near_band=wb.conventions.status_near_band + 0.01))
    new_entry(wb.with_choice(month="2024-04"))
    accounts = source / "accounts.csv"
    st = accounts.stat()
    os.utime(accounts, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the same bytes, touched: a new fingerprint
    assert new_entry(open_workbook(str(source), "all", "2024-05", interactive=False)) == base
    subs = source / "subscriptions.csv"
    kept = [line for line in subs.read_text().splitlines() if not line.startswith("S9,")]
    subs.write_text("\n".join(kept) + "\n")  # without A5's USD 30 add-on
    assert new_entry(open_workbook(str(source), "all", "2024-05", interactive=False)) == base - 30


def test_a_where_subset_is_not_stored(store, revenue_source):
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    wb.value("monthly_recurring_revenue")
    account = wb.accounts().account_id.iloc[0]
    before = {p.name for p in entries(store)}
    wb.where(account_id=account).value("monthly_recurring_revenue")
    assert {p.name for p in entries(store)} == before


def test_old_and_least_recently_used_entries_are_pruned(store, revenue_source):
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    for name in ("mrr_movements", "account_mrr", "monthly_recurring_revenue"):
        wb.compute(name)
    old, used, recent = (entries(store, n)[0] for n in ("mrr_movements", "account_mrr", "monthly_recurring_revenue"))
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    os.utime(used, (time.time() - 3600,) * 2)
    assert cache.prune(store) == [old]
    assert old.exists() is False and used.exists() and recent.exists()
    os.utime(recent)  # read just now
    removed = cache.prune(store, max_mb=(recent.stat().st_size + 1) / 2**20)  # room for one entry
    assert used in removed and entries(store) == [recent]
    fresh = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    fresh.compute("mrr_movements")  # a pruned entry is simply computed again
    assert cache.computations("mrr_movements-")[old.name] == 2


def test_pages_run_as_a_snapshot_runs_them_fill_the_store_for_the_apps(store, revenue_source, capsys, monkeypatch):
    from saaskpi.cli import main
    from saaskpi.pages import executive_summary as page

    fill = ["fill", "--month", "2024-05", "--source", str(revenue_source), "--segments", "all,smb"]
    assert main([*fill, "--notebooks", "00_executive_summary", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Results store filled for 2024-05: 1 notebooks x 2 segments in ") and str(store) in out
    filled = cache.computations()
    assert filled and set(filled.values()) == {1}
    for segment in ("all", "smb"):  # an app kernel: the same page, then a segment change
        wb = open_workbook(str(revenue_source), segment, "2024-05", interactive=True)
        page.hierarchy_html(wb), page.top7_html(wb)
    assert cache.computations() == filled  # nothing computed again
    monkeypatch.setenv("SAASKPI_CACHE_DIR", "off")
    assert main(fill) == 2
    assert capsys.readouterr().err == "The cache is off (SAASKPI_CACHE_DIR=off): there is no results store to fill.\n"


def test_the_executive_summarys_sentence_is_kept_in_the_store(store, demo_source, monkeypatch):
    from saaskpi.pages import forecast

    first = forecast.summary_html(open_workbook(str(demo_source), "all", interactive=False))
    assert len(list(store.glob("forecast-summary-*.json"))) == 1  # beside the values, under the workbook's key
    monkeypatch.setattr(forecast, "summary_sentence", lambda wb: pytest.fail("the sentence was computed again"))
    again = forecast.summary_html(open_workbook(str(demo_source), "all", interactive=False))
    assert again.data == first.data and "Why it moved" in first.data
