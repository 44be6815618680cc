"""Voila app speed in headless Chromium at the demo scale, after the pages were run as a snapshot runs them
(snapshot.fill_store) into a results store of the benchmark's own: request to first chart of the executive
summary with a preheated kernel and with a cold one, segment change to updated tiles, and a cold kernel's first
chart for each of the six apps (`--empty-store`: without filling the store first).

    .venv/bin/python benchmarks/app.py [--empty-store]
"""

from __future__ import annotations

import argparse
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
from load import fill_results_store, own_cache  # noqa: E402
from results import write_section  # noqa: E402

from saaskpi.snapshot import notebook_names  # noqa: E402

NOTEBOOK = "00_executive_summary"  # the landing app, preheated in voila.json
SEGMENTS = ("enterprise", "smb")  # switched to on every load


FAILURES: list[str] = []


SETTLE_MS = 3000  # a person looks at the page before choosing another segment


def measure(preheat: bool, loads: int = 3) -> tuple[list[float], list[float], list[float]]:
    """First-chart and segment-change times over `loads` page loads (failed loads are counted, not timed): each
    change to a segment of SEGMENTS on a page that has finished drawing, then one back to `all` right after the
    last (the browser still drawing the charts of the change before)."""
    firsts, changes, quick = [], [], []
    extra = () if preheat else ("--preheat_kernel=False",)
    with voila_server(extra) as base:
        for _ in range(loads):
            if preheat:
                time.sleep(25)  # let the pool fill: the server executes the notebook ahead of the request
            try:
                with browser_page() as page:
                    firsts.append(open_app(page, base, NOTEBOOK, timeout_ms=60_000))
                    for segment in SEGMENTS:
                        page.wait_for_timeout(SETTLE_MS)
                        changes.append(switch_segment(page, segment, timeout_ms=60_000)[2])
                    quick.append(switch_segment(page, "all", timeout_ms=60_000)[2])
            except Exception as exc:  # noqa: BLE001 - a slow or failed load is a result, recorded below
                FAILURES.append(f"{'preheated' if preheat else 'cold'}: {type(exc).__name__}")
    return firsts, changes, quick


def cold_apps(loads: int = 3) -> dict[str, list[float]]:
    """Request to first chart of each app, `loads` loads each (the apps taken in turn), on a server without
    preheated kernels."""
    seconds: dict[str, list[float]] = {name: [] for name in notebook_names()}
    with voila_server(("--preheat_kernel=False",)) as base:
        for _ in range(loads):
            for notebook in seconds:
                try:
                    with browser_page() as page:
                        seconds[notebook].append(open_app(page, base, notebook, timeout_ms=60_000))
                except Exception as exc:  # noqa: BLE001 - recorded below
                    FAILURES.append(f"cold {notebook}: {type(exc).__name__}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--empty-store", action="store_true", help="do not fill the results store first")
    args = parser.parse_args()
    own_cache()
    load_average = os.getloadavg()[0]
    store = "an empty results store"
    if not args.empty_store:
        others = [n for n in notebook_names() if n != NOTEBOOK]
        seconds = fill_results_store([NOTEBOOK], ["all", *SEGMENTS]) + fill_results_store(others, ["all"])
        store = (
            f"the results store filled first by running the pages as a snapshot runs them (the executive summary "
            f"for all, {', '.join(SEGMENTS)}; the other apps for all: {seconds:.0f} s)"
        )
    warm_first, warm_change, warm_quick = measure(True)
    cold_first, cold_change, cold_quick = measure(False)
    apps = cold_apps()

    def med(values):
        return statistics.median(values) if values else float("nan")

    per_app = "".join(
        f"| {name}: request to first chart, cold kernel ({min(s):.1f}-{max(s):.1f}) | {med(s):.2f} | 4 |\n"
        for name, s in apps.items()
    )
    text = (
        f"Run {dt.date.today()} on {os.cpu_count()} cores, load average at start {load_average:.1f}; "
        f"`{NOTEBOOK}` on the default demo, headless Chromium, medians of 3 loads (each app's cold kernel: 3 loads, "
        f"the apps in turn, fastest-slowest in brackets); {store}. Command: `.venv/bin/python benchmarks/app.py"
        f"{' --empty-store' if args.empty_store else ''}`.\n\n"
        "| measure | seconds | goal |\n|---|---|---|\n"
        f"| request to first chart, preheated kernel | {med(warm_first):.2f} | 3 |\n"
        f"| request to first chart, cold kernel | {med(cold_first):.2f} | 4 |\n"
        f"| segment change to updated tiles, page drawn (median of {len(warm_change + cold_change)}) | "
        f"{med(warm_change + cold_change):.2f} | 0.3 |\n"
        f"| segment change right after another (median of {len(warm_quick + cold_quick)}) | "
        f"{med(warm_quick + cold_quick):.2f} | |\n{per_app}\n"
        f"Loads that did not show a chart within 60 s: {len(FAILURES)} {FAILURES or ''}"
    )
    write_section(
        "app" + ("_empty" if args.empty_store else ""),
        "Voila apps" + (", empty results store" if args.empty_store else ""),
        text,
    )
    print(text)


if __name__ == "__main__":
    main()
