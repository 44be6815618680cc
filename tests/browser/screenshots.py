"""Screenshots for the docs: an executed notebook's HTML report and its Voila app.

.venv/bin/python tests/browser/screenshots.py 02_cohort_retention
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from apps import marker_for, open_app, switch_segment, voila_server  # noqa: E402
from chromium import browser_page  # noqa: E402

from saaskpi import paths  # noqa: E402
from saaskpi.snapshot import run_one  # noqa: E402

OUT = paths.DOCS_DIR / "screenshots"


def report_png(notebook: str, segment: str = "all") -> Path:
    """Execute the notebook (static mode), render its HTML report, and screenshot the full page."""
    with tempfile.TemporaryDirectory() as tmp:
        result = run_one(notebook, segment, "", str(paths.DEMO_DIR), Path(tmp))
        if result.error:
            raise SystemExit(f"{notebook} failed: {result.error}")
        html = result.output.with_suffix(".html")
        out = OUT / f"{notebook}_notebook.png"
        with browser_page() as page:
            page.goto(html.as_uri())
            page.wait_for_timeout(500)
            page.screenshot(path=str(out), full_page=True)
    return out


def settle(page, quiet_s: int = 10, limit_s: int = 240) -> None:
    """Wait until the page's text has not changed for `quiet_s` seconds (every section re-rendered)."""
    last, quiet = None, 0
    for _ in range(limit_s):
        text = page.evaluate("document.body.innerText")
        quiet = quiet + 1 if text == last else 0
        if quiet >= quiet_s:
            return
        last = text
        page.wait_for_timeout(1000)


def voila_png(notebook: str) -> Path:
    """Serve the notebook with Voila on loopback, wait for a chart, switch segment, screenshot."""
    out = OUT / f"{notebook}_voila.png"
    with voila_server() as base, browser_page() as page:
        marker = marker_for(notebook)
        open_app(page, base, notebook, marker=marker)
        before, after, _ = switch_segment(page, "enterprise", marker=marker)
        print("first KPI tile: {} (all) -> {} (enterprise)".format(*(" ".join(t.split()) for t in (before, after))))
        settle(page)
        height = page.evaluate("Math.max(...Array.from(document.querySelectorAll('*'), e => e.scrollHeight))")
        page.set_viewport_size({"width": 1400, "height": min(max(height, 900), 8000)})
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out), full_page=True)
    return out


def above_fold_png(notebook: str, name: str = "") -> Path:
    """What an executive sees first: the app at 1440 x 900, without scrolling, once every section rendered."""
    out = OUT / f"{notebook}_above_fold{'_' + name if name else ''}.png"
    with voila_server() as base, browser_page() as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        open_app(page, base, notebook)
        settle(page)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out))
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--above-fold"]:
        OUT.mkdir(parents=True, exist_ok=True)
        for nb in sys.argv[3:]:
            print(above_fold_png(nb, sys.argv[2]))
        raise SystemExit(0)
    OUT.mkdir(parents=True, exist_ok=True)
    for nb in sys.argv[1:] or ["02_cohort_retention"]:
        print(report_png(nb))
        print(voila_png(nb))
