"""Notebooks: committed clean, and executed with papermill for every segment file."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import nbformat
import pytest

from saaskpi import params, paths
from saaskpi.snapshot import notebook_names, run_one

NOTEBOOKS = notebook_names()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean_and_thin(name):
    nb = json.loads((paths.NOTEBOOKS_DIR / f"{name}.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert "parameters" in code[0]["metadata"].get("tags", [])
    tree = ast.parse("\n".join("".join(c["source"]) for c in code))
    logic = (ast.FunctionDef, ast.For, ast.While, ast.If, ast.ListComp, ast.Lambda, ast.ClassDef)
    assert not [type(n).__name__ for n in ast.walk(tree) if isinstance(n, logic)]
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imports == {"saaskpi"}


@pytest.mark.notebook
@pytest.mark.parametrize("segment", params.segment_names())
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_for_every_segment(name, segment, demo_source, tmp_path):
    result = run_one(name, segment, "", str(demo_source), tmp_path)
    assert result.error == "", result.error
    nb = nbformat.read(result.output, as_version=4)
    html = result.output.with_suffix(".html").read_text()
    assert 'saaskpi-error"' not in html and 'class="saaskpi-error' not in html  # no failed section
    assert "<svg" in html  # static charts rendered
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]


@pytest.mark.browser
def test_a_reports_charts_fit_a_laptops_window(demo_source, tmp_path):
    """nbconvert writes a static chart as an image; without a width limit the executive summary's revenue chart
    (about 1,200 px) ran past a 1280 px window, its last months cut off."""
    sys.path.insert(0, str(Path(__file__).parent / "browser"))
    from chromium import browser_page

    result = run_one("00_executive_summary", "all", "", str(demo_source), tmp_path)
    assert result.error == "", result.error
    with browser_page() as page:
        page.set_viewport_size({"width": 1024, "height": 800})
        page.goto(result.output.with_suffix(".html").as_uri())
        edges = page.eval_on_selector_all(".jp-RenderedSVG img", "els => els.map(e => e.getBoundingClientRect().right)")
        width = page.evaluate("document.documentElement.clientWidth")
    assert edges and max(edges) <= width, (max(edges), width)
