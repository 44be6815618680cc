"""Pages in static mode on a source with only the required tables; errors become panels; controls refuse bad values."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import ipywidgets as W
from conftest import page_html

from saaskpi import widgets
from saaskpi.errors import MissingTablesError
from saaskpi.pages import cohort_retention as page
from saaskpi.workbook import open_workbook

SECTIONS = [
    page.show_header,
    page.show_kpi_tiles,
    page.show_mrr_bridge,
    page.show_cohort_heatmaps,
    page.show_survival,
    page.show_trends,
    page.show_stickiness,
]


def html_of(items) -> str:
    return "".join(getattr(i, "data", "") or "" for i in items)


def test_every_section_renders_with_only_accounts_and_subscriptions(revenue_wb):
    for func in SECTIONS:
        text = page_html(func, revenue_wb)
        assert "Something went wrong" not in text, func.__name__


def test_missing_usage_is_one_sentence(revenue_wb):
    text = page_html(page.show_stickiness, revenue_wb)
    assert "Product stickiness needs the `usage_events` table, which this data source does not have." in text


def test_tiles_show_values_and_na(revenue_wb):
    text = page_html(page.show_kpi_tiles, revenue_wb)
    assert "$560" in text  # MRR at end of May: 150 + 60 + 200 + 150
    assert "n/a" in text and "nan" not in text.replace("nan-", "")


def test_exception_in_a_section_becomes_a_panel(revenue_wb):
    def broken(wb):
        raise ZeroDivisionError("boom")

    text = html_of(widgets.section(revenue_wb, broken).items)
    assert "Something went wrong" in text and "ZeroDivisionError: boom" in text and "Traceback" not in text


def test_missing_table_error_is_a_neutral_note():
    text = widgets.error_panel(MissingTablesError(["nps_responses"], "NPS")).data
    assert "saaskpi-note" in text and "NPS needs the `nps_responses` table" in text


def test_controls_accept_only_their_options(revenue_source):
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=True)
    session = widgets.session_for(wb)
    calls = []
    out = session.add(lambda w: calls.append((w.segment.name, w.month_label)))
    assert isinstance(out, W.Output)  # the section's widget: the notebook displays it
    assert session.choose(segment="../../etc/passwd") is False
    assert session.choose(month="1999-01") is False
    assert calls == [("all", "2024-05")]  # nothing re-rendered
    assert session.choose(segment="smb", month="2024-04") is True
    assert calls[-1] == ("smb", "2024-04")


def test_in_a_kernel_a_newer_choice_drops_the_rest_of_an_older_drawing(revenue_source):
    """In an event loop (a kernel) sections are drawn one per turn, so a second choice made while the first is
    being drawn stops it: the first choice's later sections are never drawn, the second's all are."""
    import asyncio

    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=True)
    session = widgets.session_for(wb)
    calls = []
    for n in range(3):
        session.add(lambda w, n=n: calls.append((n, w.segment.name)))
    calls.clear()

    async def two_quick_choices():
        assert session.choose(segment="smb") and session.choose(segment="enterprise")
        await asyncio.sleep(0.05)

    asyncio.run(two_quick_choices())
    # section 0 of smb drawn with its message; then enterprise's; smb's sections 1 and 2 dropped as stale
    assert calls == [(0, "smb"), (0, "enterprise"), (1, "enterprise"), (2, "enterprise")]


def test_an_app_section_shows_what_its_render_yields_a_failure_after_it_and_closes_old_widgets(revenue_source):
    code = textwrap.dedent(
        f"""
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.display import HTML
        import ipywidgets as W
        InteractiveShell.instance(history_load_length=0)
        from saaskpi import widgets
        from saaskpi.workbook import open_workbook
        wb = open_workbook({str(revenue_source)!r}, "all", "2024-05", interactive=True)
        out, inner, chart = W.Output(), W.Output(), W.Button()
        widgets.fill(inner, lambda w: [chart], wb)  # a picker's view inside the section
        old = W.VBox([W.Button(), inner])
        widgets.fill(out, lambda w: [HTML("<b>before</b>"), old], wb)
        assert len(out.outputs) == 2 and old.comm is not None

        def render(w):
            yield HTML("<b>tiles</b>")
            raise ZeroDivisionError("boom")

        widgets.fill(out, render, wb)
        html = [o["data"].get("text/html", "") for o in out.outputs]
        assert len(html) == 2 and "<b>tiles</b>" in html[0] and "boom" in html[1] and "Something went wrong" in html[1]
        assert old.comm is None and inner.comm is None and chart.comm is None  # the old view's widgets are closed
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok" in done.stdout
