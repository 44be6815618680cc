"""The monthly snapshot job: complete, atomic, resumable, honest about failures (the immutable runs and the
metrics store: tests/test_runs.py)."""

from __future__ import annotations

import shutil

import nbformat
import pandas as pd
import pytest
from conftest import run

from saaskpi import paths
from saaskpi.demo import generate
from saaskpi.snapshot import notebook_names, take_snapshot

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
    assert snap.folder == reports / MONTH / "runs" / snap.run_id
    for seg in ("all", "smb"):
        html = (snap.folder / seg / "02_cohort_retention.html").read_text()
        assert "<svg" in html and "open_workbook" not in html  # static charts, no input cells
        assert 'src="http' not in html  # self-contained: nothing loaded from the network
    index = (reports / MONTH / "index.html").read_text()
    assert f'href="runs/{snap.run_id}/smb/02_cohort_retention.html"' in index and "NRR (trailing 12 months)" in index
    store = pd.read_parquet(reports / "metrics.parquet")
    assert {
        "snapshot",
        "month",
        "segment",
        "notebook",
        "metric",
        "value",
        "n",
        "target",
        "status",
        "convention",
        "code_version",
        "data_fingerprint",
    } <= set(store.columns)
    mrr = store[(store.metric == "monthly_recurring_revenue") & (store.month == MONTH) & (store.segment == "all")]
    assert len(mrr) == 1 and mrr.value.iloc[0] > 0
    assert {"run_id", "run_time", "engine"} <= set(store.columns) and set(store.run_id) == {snap.run_id}
    assert [p.name for p in (reports / MONTH / "runs").iterdir()] == [snap.run_id]  # no partial folder left


def failing_notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(paths.NOTEBOOKS_DIR / "02_cohort_retention.ipynb", folder)
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'source = ""\nsegment = ""\nas_of = ""\ninteractive = True', metadata={"tags": ["parameters"]}
            ),
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_code_cell("raise ValueError('boom')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, folder / "99_broken.ipynb")
    return folder


def test_failing_notebook_does_not_stop_the_others(tiny, tmp_path, capsys):
    folder = failing_notebooks(tmp_path)
    code, out, err = run(
        capsys,
        *("snapshot", "--month", MONTH, "--source", str(tiny), "--segments", "all"),
        *("--reports", str(tmp_path / "r"), "--notebooks-dir", str(folder)),
    )
    assert code == 1
    assert "1 of 2 runs succeeded" in out
    assert "FAILED 99_broken [all, cell 3]: ValueError: boom" in err  # cell 3: papermill injected parameters at 1
    assert len(list((tmp_path / "r" / MONTH / "runs").glob("*/all/02_cohort_retention.html"))) == 1
    assert "99_broken failed" in (tmp_path / "r" / MONTH / "index.html").read_text()


def test_bad_arguments_and_data_exit_2(tiny, tmp_path, capsys):
    reports = ("--reports", str(tmp_path / "r"))
    assert run(capsys, "snapshot", "--month", "Oct", "--source", str(tiny), *reports)[0] == 2
    assert run(capsys, "snapshot", "--month", MONTH, "--source", str(tiny), "--segments", "martians", *reports)[0] == 2
    bad = tmp_path / "bad"
    shutil.copytree(tiny, bad)
    (bad / "subscriptions.csv").write_text((bad / "subscriptions.csv").read_text().replace(",USD,", ",XYZ,", 1))
    code, _, err = run(capsys, "snapshot", "--month", MONTH, "--source", str(bad), *reports)
    assert code == 2 and "subscriptions.currency.no_fx_rate" in err
    assert not (tmp_path / "r").exists()  # nothing written


def one_notebook(tmp_path, name: str, code: str):
    """A folder of one notebook `name`: the parameters cell, then a cell of `code`."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'source = ""\nsegment = ""\nas_of = ""\ninteractive = True', metadata={"tags": ["parameters"]}
            ),
            nbformat.v4.new_code_cell(code),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def parent_notebooks(tmp_path):
    """A notebook that prints its kernel's parent process's command line, and what the kernel prints itself."""
    return one_notebook(
        tmp_path,
        "97_parent",
        "import os, sys\nprint(open(f'/proc/{os.getppid()}/cmdline').read().replace(chr(0), ' '))\n"
        "os.write(2, b'said by the kernel itself\\n')",
    )


@pytest.mark.parametrize("fork", [True, False])
def test_kernels_are_forked_from_a_warm_process_and_log_to_the_run(tiny, tmp_path, fork):
    snap = take_snapshot(
        MONTH,
        str(tiny),
        ["smb"],
        reports=tmp_path / "r",
        notebooks_dir=parent_notebooks(tmp_path),
        progress=False,
        fork_kernels=fork,
    )
    assert not snap.failed
    parent = nbformat.read(snap.folder / "smb" / "97_parent.ipynb", as_version=4).cells[-1].outputs[0]["text"]
    assert ("saaskpi.kernel_fork" in parent) is fork  # forked: the fork server's child; else the runner's
    assert "said by the kernel itself" in (snap.folder / "logs" / "smb-97_parent.log").read_text()


def test_cell_timeout_is_reported_with_its_cell(tiny, tmp_path, capsys):
    folder = one_notebook(tmp_path, "98_slow", "import time\ntime.sleep(30)")
    code, _, err = run(
        capsys,
        *("snapshot", "--month", MONTH, "--source", str(tiny), "--segments", "smb", "--cell-timeout", "3"),
        *("--reports", str(tmp_path / "r"), "--notebooks-dir", str(folder)),
    )
    assert code == 1
    assert "FAILED 98_slow [smb, cell 2]: cell timed out" in err
