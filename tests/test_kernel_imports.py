"""An app kernel imports only what it uses and, with a filled results store and an unchanged source, reads what
it needs rather than validating every table again (issue 19; kernel_imports.py, sources.validated_tables)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import polars as pl
import pytest

from saaskpi import cache, sources, workbook
from saaskpi.errors import DataContractError
from saaskpi.workbook import open_workbook

# A kernel opening the executive summary on the Polars engine: every value of the page, then what it imported.
KERNEL = """
import json, sys
import saaskpi
from saaskpi.pages import executive_summary as page
wb = saaskpi.open_workbook(sys.argv[1], "all", "2024-05", interactive=False, engine="polars")
for name in ["monthly_recurring_revenue", *page.headline("")]:
    wb.value(name)
page.hierarchy_html(wb), page.top7_html(wb)
wb.with_choice(segment="smb").value("monthly_recurring_revenue")
heavy = ("duckdb", "pyspark", "lifelines", "statsmodels", "scipy", "rfc3987_syntax.syntax_helpers")
print(json.dumps({"loaded": sorted(m for m in heavy if m in sys.modules), "altair": "altair" in sys.modules,
                  "pandera": "pandera.polars" in sys.modules}))
"""


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    """A cache folder of this test's own (processes started by the test inherit it); nothing validated kept in
    this process either."""
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(workbook, "_VALIDATED", OrderedDict())
    return tmp_path / "cache"


def kernel(source: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(cache.__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", KERNEL, str(source)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_kernel_on_the_polars_path_imports_no_duckdb_pyspark_or_survival_library(own_cache, revenue_source):
    cold = kernel(revenue_source)  # computes the page (the LTV's survival curve without scipy: 1 s to import)
    assert cold["altair"] and cold["pandera"]  # the page's own libraries are imported
    assert cold["loaded"] == []
    filled = kernel(revenue_source)  # the store filled: every value read, nothing computed
    assert filled["loaded"] == []


def test_the_iri_format_check_still_works_when_first_used():
    check = (
        "import saaskpi.pages, sys, jsonschema\n"
        # probing every module's `__file__`, as a forked kernel's ipykernel does, leaves the grammar unbuilt
        "[getattr(m, '__file__', None) for m in list(sys.modules.values())]\n"
        "assert 'rfc3987_syntax.syntax_helpers' not in sys.modules\n"
        "fc = jsonschema.Draft202012Validator.FORMAT_CHECKER\n"
        "print(fc.conforms('https://example.com/caf\\u00e9', 'iri'), fc.conforms('no iri', 'iri'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(cache.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def test_an_unchanged_source_is_read_from_its_typed_copy_not_validated_again(own_cache, revenue_source, monkeypatch):
    first = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    workbook._VALIDATED.clear()  # another kernel

    def no_typing(*args, **kwargs):
        raise AssertionError("a table was read and typed again")

    with monkeypatch.context() as m:
        m.setattr(sources, "typed_table", no_typing)
        again = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    assert again.all_tables.frames.keys() == first.all_tables.frames.keys()
    for name, frame in first.all_tables.frames.items():
        assert again.all_tables.frames[name].equals(frame), name  # values and types
        assert again.all_tables.frames[name].schema == frame.schema, name
    assert again.coverage == first.coverage and again.as_of == first.as_of


def test_a_changed_or_damaged_source_copy_is_validated_again(own_cache, revenue_source):
    open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    (kept,) = own_cache.glob("typed-subscriptions-*.parquet")
    kept.write_bytes(kept.read_bytes()[:100])  # a damaged copy: the source is read and checked again
    workbook._VALIDATED.clear()
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    # May: A1 150 + A2 60 + A4 200 + A5 (EUR 100 at 1.20 = 120, plus the USD 30 add-on) = 560
    assert wb.value("monthly_recurring_revenue").value == 560
    assert pl.read_parquet(kept).height == 10  # and kept whole again
    subs = revenue_source / "subscriptions.csv"
    subs.write_text(subs.read_text() + "S11,A1,2024-05-01,,-5,1,USD,0\n")  # a negative amount: a new fingerprint
    workbook._VALIDATED.clear()
    with pytest.raises(DataContractError, match="amount"):
        open_workbook(str(revenue_source), "all", "2024-05", interactive=False)


def test_the_vega_bundle_is_built_once_then_read_from_the_cache(own_cache, monkeypatch):
    import altair as alt

    from saaskpi.kernel_imports import enable_offline_charts

    chart = alt.JupyterChart
    monkeypatch.setattr(chart, "_esm", chart._esm)  # restored after the test, offline or not
    monkeypatch.setattr(chart, "_is_offline", False)
    built = []
    real = chart.enable_offline.__func__

    def counted(cls, offline: bool = True):
        built.append(1)
        return real(cls, offline)

    monkeypatch.setattr(chart, "enable_offline", classmethod(counted))
    enable_offline_charts()
    first = chart._esm
    assert built == [1] and chart._is_offline and "vega" in first.lower()
    chart._is_offline = False  # another kernel
    enable_offline_charts()
    assert built == [1] and chart._esm == first and chart._is_offline
    assert len(list(own_cache.glob("vega-bundle-*.json"))) == 1


def test_under_the_app_server_a_chart_carries_a_loader_of_the_served_bundle(monkeypatch):
    import altair as alt

    from saaskpi.kernel_imports import VEGA_MODULE_ENV, enable_offline_charts, vega_module_path

    chart = alt.JupyterChart
    monkeypatch.setattr(chart, "_esm", chart._esm)
    monkeypatch.setattr(chart, "_is_offline", False)
    monkeypatch.setenv(VEGA_MODULE_ENV, vega_module_path())
    enable_offline_charts()
    assert chart._is_offline and len(chart._esm) < 500  # a loader, not the 0.9 MB bundle
    assert f'base + "{vega_module_path()}"' in chart._esm and "export default bundle.default" in chart._esm
    assert vega_module_path().startswith("saaskpi/vega-") and vega_module_path().endswith(".js")
