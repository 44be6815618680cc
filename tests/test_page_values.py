"""Pages return, notebooks display: every `show_*` returns a value the notebook's last expression displays."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap

import ipywidgets as W
import pytest

from saaskpi import pages, paths, widgets
from saaskpi.workbook import open_workbook

PAGES = [importlib.import_module(f"saaskpi.pages.{m.name}") for m in pkgutil.iter_modules(pages.__path__)]
NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def show_functions(module) -> list:
    return [f for name, f in inspect.getmembers(module, inspect.isfunction) if name.startswith("show_")]


def displayable(item) -> bool:
    """A value Jupyter knows how to show: a widget, or anything with a rich representation."""
    reprs = ("_repr_mimebundle_", "_repr_html_", "_repr_svg_", "_ipython_display_")
    return isinstance(item, W.Widget) or any(hasattr(item, r) for r in reprs)


@pytest.mark.parametrize("module", PAGES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_section_returns_a_displayable_value(revenue_wb, module):
    functions = show_functions(module)
    assert functions, module.__name__
    for func in functions:
        result = func(revenue_wb)
        assert result is not None, func.__name__
        assert displayable(result), func.__name__
        items = widgets.values(result)
        assert items and all(displayable(i) for i in items), func.__name__


def test_no_page_displays_by_itself():
    for module in PAGES:
        assert not hasattr(module, "display"), f"{module.__name__} imports display: return values instead"
    assert not [p for p in paths.PACKAGE_DIR.rglob("*.py") if "unittest" in p.read_text(encoding="utf-8")]


def test_a_section_keeps_its_values_in_order(revenue_wb):
    shown = widgets.section(revenue_wb, lambda w: [widgets.note("first"), [widgets.note("second")], None])
    assert isinstance(shown, widgets.Shown)
    text = shown.html()
    assert text.index("first") < text.index("second")
    assert widgets.section(revenue_wb, lambda w: None).items == []


def test_in_an_app_a_section_is_a_widget(revenue_source):
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=True)
    assert isinstance(pages.cohort_retention.show_kpi_tiles(wb), W.Output)
    header = pages.cohort_retention.show_header(wb)
    assert isinstance(header, W.VBox) and isinstance(header.children[-1], W.Output)  # controls above the header


def test_notebooks_display_what_their_sections_return(revenue_wb):
    for notebook in NOTEBOOKS:
        shown = pages.run_sections(notebook, revenue_wb)
        assert shown and all(displayable(i) for i in shown), notebook.name


def test_an_old_style_render_that_displays_is_captured_in_a_kernel(revenue_source):
    """A render callback that calls display() and returns None (pages not yet converted) still shows, captured
    into the section's value, under IPython (as in a kernel)."""
    code = textwrap.dedent(
        f"""
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.display import HTML, display
        InteractiveShell.instance(history_load_length=0)
        from saaskpi import widgets
        from saaskpi.workbook import open_workbook
        wb = open_workbook({str(revenue_source)!r}, "all", "2024-05", interactive=False)

        def render(w):
            display(HTML("<b>old</b>"))
            widgets.show_chart(widgets.metric_trend(w, "monthly_recurring_revenue"), w)

        shown = widgets.section(wb, render)
        assert "<b>old</b>" in shown.html() and "<svg" in shown.html(), shown
        print("captured", len(shown.items))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "captured 2" in done.stdout
