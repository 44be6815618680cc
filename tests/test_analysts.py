"""The way in for analysts: a short workbook display, names with suggestions, any table as pandas or Polars,
subsets of accounts through one public helper, and a company's own metric registered like the built-in ones."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl
import pytest

from saaskpi import paths
from saaskpi.errors import ParameterError

EXAMPLE_METRIC = paths.DOCS_DIR / "examples" / "own_metric.py"


def test_the_workbook_displays_in_one_line(revenue_wb):
    text = repr(revenue_wb)
    assert len(text) < 400 and "All customers · May 2024" in text and ".names()" in text


def test_names_and_misspelt_names(revenue_wb):
    names = revenue_wb.names()
    assert {"mrr_movements", "monthly_recurring_revenue"} <= set(names.name)
    assert not names.set_index("name").loc["win_rate", "available"]  # the literal source has no opportunities
    with pytest.raises(ParameterError, match="did you mean 'mrr_movements'"):
        revenue_wb.table("mrr_movemnts")
    with pytest.raises(ParameterError, match="did you mean 'subscriptions'"):
        revenue_wb.source_table("subscription")
    with pytest.raises(ParameterError, match="'leads' is not in this source"):
        revenue_wb.source_table("leads")
    assert isinstance(revenue_wb.table("mrr_movements", polars=True), pl.DataFrame)
    assert revenue_wb.source_table("subscriptions").shape[0] == 10


def test_accounts_and_subsets(revenue_wb):
    acc = revenue_wb.accounts().set_index("account_id")
    assert acc.loc["A3", "cohort"] == "2024-02" and acc.loc["A1", "cohort"] == "2024-01"
    assert isinstance(acc.loc["A6", "cohort"], float)  # A6 never paid at a month end: no cohort
    assert acc.paying.sum() == 4  # May 31: A1, A2, A4, A5 (A3 churned in April)
    mrr = lambda wb: wb.value("monthly_recurring_revenue").value  # noqa: E731
    # outbound: A3 (churned in April) and A4 (200 from May) -> 200
    assert mrr(revenue_wb.where(acquisition_channel="outbound")) == pytest.approx(200)
    # January cohort: A1 150 + A2 60 + A4 200 + A5 (EUR 100 x 1.20 + 30) 150 = 560 = the whole company in May
    jan = revenue_wb.where(cohort="2024-01")
    assert mrr(jan) == pytest.approx(560) and "cohort='2024-01'" in jan.segment.label
    assert mrr(revenue_wb.where(acquisition_channel=["outbound", "paid_search"], segment="smb")) == pytest.approx(60)
    with pytest.raises(ParameterError, match="no account column 'chanel' .did you mean"):
        revenue_wb.where(chanel="organic")
    with pytest.raises(ParameterError, match="selects no account"):
        revenue_wb.where(acquisition_channel="tv")


def test_own_metric_appears_in_metrics_docs_and_tiles(tmp_path, revenue_source):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "expansion.py").write_text(EXAMPLE_METRIC.read_text(encoding="utf-8"), encoding="utf-8")
    env = {**os.environ, "SAASKPI_METRICS_DIR": str(folder)}
    code = (
        "import saaskpi, saaskpi.docs as d, saaskpi.widgets as w\n"
        f"wb = saaskpi.open_workbook({str(revenue_source)!r}, 'all', '2024-02', interactive=False)\n"
        "v = wb.value('expansion_mrr_share')\n"
        "print(round(v.value, 4), v.status, 'expansion_mrr_share' in d.metrics_markdown(),\n"
        "      'Expansion MRR share' in w.tile_html(wb, 'expansion_mrr_share'))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    # Feb: added MRR = new 100 (A3) + expansion 30 (A5) + reactivation 0 = 130 -> 30 / 130 = 0.2308, target 0.3 -> off
    assert out.split() == ["0.2308", "off", "True", "True"]
    broken = folder / "broken.py"
    broken.write_text(
        "from saaskpi import metric\n@metric(label='x', formula='x', unit='bananas', direction='higher', "
        "level='core', sources='S', area='revenue')\ndef broken(mrr_movements):\n    '''Broken.'''\n",
        encoding="utf-8",
    )
    err = subprocess.run(
        [sys.executable, "-m", "saaskpi.cli", "metrics", "--source", str(revenue_source)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert err.returncode == 2 and "unit 'bananas'" in err.stderr and "Traceback" not in err.stderr


def test_example_notebook_runs(demo_source, tmp_path):
    import papermill

    out = tmp_path / "analysts.ipynb"
    papermill.execute_notebook(
        str(paths.DOCS_DIR / "examples" / "analysts.ipynb"),
        str(out),
        parameters={"source": str(demo_source)},
        cwd=str(paths.DOCS_DIR / "examples"),
        progress_bar=False,
        kernel_name="python3",
    )
    assert "NRR, growth plan" in out.read_text(encoding="utf-8")
