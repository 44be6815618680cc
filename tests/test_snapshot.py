"""The monthly snapshot job: complete, atomic, resumable, honest about failures, and its metrics store."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import nbformat
import pandas as pd
import pytest

from saaskpi import paths
from saaskpi.cli import main
from saaskpi.demo import generate
from saaskpi.snapshot import compare_months, notebook_names, take_snapshot

pytestmark = pytest.mark.notebook
MONTH = "2026-10"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "demo"
    generate(out, scale="tiny")
    return out


def test_full_snapshot(tiny, tmp_path):
    reports = tmp_path / "reports"
    snap = take_snapshot(MONTH, str(tiny), ["all", "smb"], workers=2, reports=reports, progress=False)
    assert not snap.failed and len(snap.results) == 2 * len(notebook_names())  # every notebook x 2 segments
    for seg in ("all", "smb"):
        html = (reports / MONTH / seg / "02_cohort_retention.html").read_text()
        assert "<svg" in html and "open_workbook" not in html  # static charts, no input cells
        assert 'src="http' not in html  # self-contained: nothing loaded from the network
    index = (reports / MONTH / "index.html").read_text()
    assert 'href="smb/02_cohort_retention.html"' in index and "NRR (trailing 12 months)" in index
    store = pd.read_parquet(reports / "metrics.parquet")
    assert {"snapshot", "month", "segment", "notebook", "metric", "value", "n", "target", "status", "convention",
            "code_version", "data_fingerprint"} <= set(store.columns)
    mrr = store[(store.metric == "monthly_recurring_revenue") & (store.month == MONTH) & (store.segment == "all")]
    assert len(mrr) == 1 and mrr.value.iloc[0] > 0
    assert sorted(p.name for p in reports.iterdir()) == [MONTH, "metrics.parquet"]  # no partial folder left


def failing_notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(paths.NOTEBOOKS_DIR / "02_cohort_retention.ipynb", folder)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('source = ""\nsegment = ""\nas_of = ""\ninteractive = True', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom')"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, folder / "99_broken.ipynb")
    return folder


def test_failing_notebook_does_not_stop_the_others(tiny, tmp_path, capsys):
    folder = failing_notebooks(tmp_path)
    code = main(["snapshot", "--month", MONTH, "--source", str(tiny), "--segments", "all",
                 "--reports", str(tmp_path / "r"), "--notebooks-dir", str(folder)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "1 of 2 runs succeeded" in out
    assert "FAILED 99_broken [all, cell 3]: ValueError: boom" in err  # cell 3: papermill injected parameters at 1
    assert (tmp_path / "r" / MONTH / "all" / "02_cohort_retention.html").exists()
    assert "99_broken failed" in (tmp_path / "r" / MONTH / "index.html").read_text()


def test_bad_arguments_and_data_exit_2(tiny, tmp_path, capsys):
    assert main(["snapshot", "--month", "Oct", "--source", str(tiny), "--reports", str(tmp_path / "r")]) == 2
    assert main(["snapshot", "--month", MONTH, "--source", str(tiny), "--segments", "martians",
                 "--reports", str(tmp_path / "r")]) == 2
    bad = tmp_path / "bad"
    shutil.copytree(tiny, bad)
    (bad / "subscriptions.csv").write_text((bad / "subscriptions.csv").read_text().replace(",USD,", ",XYZ,", 1))
    assert main(["snapshot", "--month", MONTH, "--source", str(bad), "--reports", str(tmp_path / "r")]) == 2
    assert "subscriptions.currency.no_fx_rate" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written


def test_interrupted_run_keeps_previous_snapshot_and_resumes(tiny, tmp_path):
    reports = tmp_path / "reports"
    (reports / MONTH).mkdir(parents=True)
    (reports / MONTH / "previous.txt").write_text("the snapshot taken before")
    cmd = [sys.executable, "-m", "saaskpi.cli", "snapshot", "--month", MONTH, "--source", str(tiny), "--workers", "1",
           "--segments", "all,smb,mid_market", "--reports", str(reports)]
    runner = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = reports / f".{MONTH}.partial"
    deadline = time.time() + 240
    while time.time() < deadline and not list(partial.glob("*/*.metrics.json")):
        time.sleep(0.5)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner and its kernels, mid-way
    runner.wait()
    assert list(partial.glob("*/*.metrics.json")), "the first run never finished"
    assert (reports / MONTH / "previous.txt").read_text() == "the snapshot taken before"
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "reused from the interrupted attempt" in done.stdout
    assert not (reports / MONTH / "previous.txt").exists() and not partial.exists()
    assert sorted(p.name for p in (reports / MONTH).iterdir() if p.is_dir()) == ["all", "mid_market", "smb"]


def test_compare_flags_restatements(tiny, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(tiny, source)
    reports = tmp_path / "reports"
    take_snapshot("2026-09", str(source), ["all"], reports=reports, progress=False)
    # a correction arrives after September's snapshot: the first subscription's price was higher all along
    subs = pd.read_csv(source / "subscriptions.csv", dtype=str, keep_default_na=False)
    open_in_sept = (subs.start_date <= "2026-09-30") & ((subs.end_date == "") | (subs.end_date > "2026-09-30"))
    first = subs[open_in_sept].index[0]
    subs.loc[first, "amount"] = f"{float(subs.loc[first, 'amount']) * 3:.2f}"
    subs.to_csv(source / "subscriptions.csv", index=False)
    take_snapshot("2026-10", str(source), ["all"], reports=reports, progress=False)
    table = compare_months(reports / "metrics.parquet", "2026-09", "2026-10").set_index(["segment", "metric"])
    assert table.loc[("all", "monthly_recurring_revenue"), "restated"]
    assert not table.loc[("all", "monthly_active_users"), "restated"]  # usage data did not change
    row = table.loc[("all", "monthly_recurring_revenue")]
    assert row["change"] == pytest.approx(row["value_2026-10"] - row["value_2026-09"])


def test_cell_timeout_is_reported_with_its_cell(tiny, tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('source = ""\nsegment = ""\nas_of = ""\ninteractive = True', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import time\ntime.sleep(30)"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, folder / "98_slow.ipynb")
    code = main(["snapshot", "--month", MONTH, "--source", str(tiny), "--segments", "smb", "--cell-timeout", "3",
                 "--reports", str(tmp_path / "r"), "--notebooks-dir", str(folder)])
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED 98_slow [smb, cell 2]: cell timed out" in err
