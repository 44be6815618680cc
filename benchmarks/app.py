"""Voila app speed in headless Chromium at the demo scale: request to first visible chart with a
preheated kernel and with a cold one, and segment change to updated tiles.

    .venv/bin/python benchmarks/app.py
"""
from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "browser"))
from apps import open_app, switch_segment, voila_server  # noqa: E402
from chromium import browser_page  # noqa: E402
from results import write_section  # noqa: E402

NOTEBOOK = "00_executive_summary"  # the landing app, preheated in voila.json


FAILURES: list[str] = []


def measure(preheat: bool, loads: int = 3) -> tuple[list[float], list[float]]:
    """First-chart and segment-change times over `loads` page loads (failed loads are counted, not timed)."""
    firsts, changes = [], []
    extra = () if preheat else ("--preheat_kernel=False",)
    with voila_server(extra) as base:
        for _ in range(loads):
            if preheat:
                time.sleep(25)  # let the pool fill: the server executes the notebook ahead of the request
            try:
                with browser_page() as page:
                    firsts.append(open_app(page, base, NOTEBOOK, timeout_ms=60_000))
                    changes.append(switch_segment(page, "enterprise", timeout_ms=60_000)[2])
                    changes.append(switch_segment(page, "smb", timeout_ms=60_000)[2])
            except Exception as exc:  # noqa: BLE001 - a slow or failed load is a result, recorded below
                FAILURES.append(f"{'preheated' if preheat else 'cold'}: {type(exc).__name__}")
    return firsts, changes


def main() -> None:
    warm_first, warm_change = measure(True)
    cold_first, cold_change = measure(False)
    def med(values):
        return statistics.median(values) if values else float("nan")

    text = (f"Run {dt.date.today()} on {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}; "
            f"`{NOTEBOOK}` on the default demo, headless Chromium, medians of 3 loads.\n\n"
            "| measure | seconds | goal |\n|---|---|---|\n"
            f"| request to first chart, preheated kernel | {med(warm_first):.2f} | 3 |\n"
            f"| request to first chart, cold kernel | {med(cold_first):.2f} | |\n"
            f"| segment change to updated tiles | {med(warm_change + cold_change):.2f} | 0.5 |\n\n"
            f"Loads that did not show a chart within 60 s: {len(FAILURES)} {FAILURES or ''}")
    write_section("app", "Voila apps", text)
    print(text)


if __name__ == "__main__":
    main()
