"""Voila app speed in headless Chromium at the demo scale: request to first visible chart with a
preheated kernel and with a cold one, and segment change to updated tiles.

    .venv/bin/python benchmarks/app.py
"""
from __future__ import annotations

import datetime as dt
import os
import re
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "browser"))
from apps import open_app, switch_segment, voila_server  # noqa: E402
from chromium import browser_page  # noqa: E402

BEGIN, END = "<!-- app:begin -->", "<!-- app:end -->"
NOTEBOOK = "02_cohort_retention"  # the executive summary replaces it once it exists


def measure(preheat: bool, loads: int = 3) -> tuple[list[float], list[float]]:
    firsts, changes = [], []
    extra = () if preheat else ("--preheat_kernel=False",)
    with voila_server(extra) as base:
        if preheat:
            time.sleep(25)  # let the pool fill: the server executes the notebook ahead of the first request
        for _ in range(loads):
            with browser_page() as page:
                firsts.append(open_app(page, base, NOTEBOOK))
                changes.append(switch_segment(page, "enterprise")[2])
                changes.append(switch_segment(page, "smb")[2])
            if preheat:
                time.sleep(25)  # refill before the next request
    return firsts, changes


def main() -> None:
    warm_first, warm_change = measure(True)
    cold_first, cold_change = measure(False)
    med = statistics.median
    text = (f"Run {dt.date.today()} on {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}; "
            f"`{NOTEBOOK}` on the default demo, headless Chromium, medians of 3 loads.\n\n"
            "| measure | seconds | goal |\n|---|---|---|\n"
            f"| request to first chart, preheated kernel | {med(warm_first):.2f} | 3 |\n"
            f"| request to first chart, cold kernel | {med(cold_first):.2f} | |\n"
            f"| segment change to updated tiles | {med(warm_change + cold_change):.2f} | 0.5 |")
    results = HERE / "RESULTS.md"
    old = results.read_text()
    if BEGIN not in old:
        old += f"\n## Voila apps\n\n{BEGIN}\n{END}\n"
    results.write_text(re.sub(f"{BEGIN}.*?{END}", lambda _: f"{BEGIN}\n{text}\n{END}", old, flags=re.S))
    print(text)


if __name__ == "__main__":
    main()
