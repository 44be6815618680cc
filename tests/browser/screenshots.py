"""Screenshots for the docs: an executed notebook's HTML report and its Voila app.

    .venv/bin/python tests/browser/screenshots.py 02_cohort_retention
"""
from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from chromium import browser_page  # noqa: E402

from saaskpi import paths  # noqa: E402
from saaskpi.snapshot import run_one  # noqa: E402

OUT = paths.DOCS_DIR / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def voila_png(notebook: str) -> Path:
    """Serve the notebook with Voila on loopback, wait for a chart, switch segment, screenshot."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "voila", str(paths.NOTEBOOKS_DIR / f"{notebook}.ipynb"),
                               "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"],
                              cwd=paths.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = OUT / f"{notebook}_voila.png"
    try:
        with browser_page() as page:
            for _ in range(60):
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
                    break
                except Exception:
                    time.sleep(1)
            page.wait_for_selector(".kpi-tile", timeout=180_000)
            page.wait_for_selector("canvas, svg.marks", timeout=180_000)
            before = page.inner_text(".kpi-tile[data-metric=monthly_recurring_revenue] .kpi-value")
            page.select_option("select >> nth=0", label="enterprise")
            page.wait_for_function(
                "t => document.querySelector('.kpi-tile[data-metric=monthly_recurring_revenue] .kpi-value')?.innerText !== t",
                arg=before, timeout=120_000)
            page.wait_for_timeout(3000)
            after = page.inner_text(".kpi-tile[data-metric=monthly_recurring_revenue] .kpi-value")
            print(f"MRR tile: {before} (all) -> {after} (enterprise)")
            height = page.evaluate("Math.max(...Array.from(document.querySelectorAll('*'), e => e.scrollHeight))")
            page.set_viewport_size({"width": 1400, "height": min(max(height, 900), 8000)})
            page.wait_for_timeout(2000)
            page.screenshot(path=str(out), full_page=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for nb in sys.argv[1:] or ["02_cohort_retention"]:
        print(report_png(nb))
        print(voila_png(nb))
