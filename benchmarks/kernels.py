"""Kernels alive while one person clicks through the apps: one headless-Chromium tab opens each of the apps
in turn (as following links does), switches segments in each, and goes round again until the time is up,
against one server started as `saaskpi app` starts it. The server's kernels (preheated ones included) and
their memory are sampled every half second. Goal (issue 19): at most 8 kernels alive at any time over
10 minutes; this is the shortened version (`--minutes`, default 6). Writes its section of RESULTS.md.

    .venv/bin/python benchmarks/kernels.py [--minutes 6]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "browser"))
from apps import kernel_id, marker_for, open_app, server_process, switch_segment, voila_server  # noqa: E402
from chromium import browser_page  # noqa: E402
from results import write_section  # noqa: E402

from saaskpi.app import IDLE_TIMEOUT, MAX_KERNELS  # noqa: E402
from saaskpi.snapshot import notebook_names  # noqa: E402

SEGMENTS = ["enterprise", "smb", "all"]
GOAL = 8
GIB = 2**30


def sample(server: psutil.Process, every: float, stop: threading.Event, samples: list) -> None:
    """Append (seconds, kernels, summed RSS of server and kernels) every `every` seconds until `stop`."""
    start = time.monotonic()
    while not stop.wait(every):
        kernels, rss = 0, 0
        for process in [server, *server.children(recursive=True)]:  # forked kernels are the fork server's children
            try:
                rss += process.memory_info().rss
                kernels += kernel_id(process) is not None
            except psutil.NoSuchProcess:  # a kernel ending between listing and sampling
                pass
        samples.append((time.monotonic() - start, kernels, rss))


def click_through(base: str, seconds: float) -> list[dict]:
    """Open the apps one after the other in one tab, switching segments in each, until `seconds` have passed."""
    visits, deadline = [], time.monotonic() + seconds
    with browser_page() as page:
        while time.monotonic() < deadline:
            for notebook in notebook_names():
                if time.monotonic() >= deadline:
                    break
                visit = {"app": notebook, "switches": 0}
                try:
                    visit["first_chart"] = open_app(page, base, notebook, timeout_ms=600_000)
                    for segment in SEGMENTS:
                        switch_segment(page, segment, timeout_ms=300_000, marker=marker_for(notebook))
                        visit["switches"] += 1
                        page.wait_for_timeout(2000)  # a glance at the numbers
                except Exception as exc:  # noqa: BLE001 - a failed visit is a result, recorded with its reason
                    visit["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                visits.append(visit)
    return visits


def report(visits: list[dict], samples: list, minutes: float, load_average: float) -> str:
    peak = max(samples, key=lambda s: s[1])
    counts = [s[1] for s in samples]
    timeline = []
    for minute in range(int(samples[-1][0] // 60) + 1):
        window = [s[1] for s in samples if minute * 60 <= s[0] < (minute + 1) * 60]
        if window:
            timeline.append(f"{minute}-{minute + 1} min: {min(window)}-{max(window)}")
    done = [v for v in visits if "error" not in v]
    failed = "; ".join(f"{v['app']}: {v['error']}" for v in visits if "error" in v)
    charts = [v["first_chart"] for v in done]
    return (
        (
            f"Run {dt.date.today()} on {os.cpu_count()} cores, {psutil.virtual_memory().total / GIB:.0f} GiB RAM, load "
            f"average at start {load_average:.1f}; **the machine was shared with other jobs** (other test suites and "
            "notebook runs), so page times are slower than on an idle machine; the kernel counts do not depend on it.\n"
            f"Command: `.venv/bin/python benchmarks/kernels.py --minutes {minutes:g}`: one headless-Chromium tab opens "
            f"the {len(notebook_names())} apps in turn ({', '.join(f'`{n}`' for n in notebook_names())}), each followed by segment "
            f"switches to {', '.join(SEGMENTS)}, round and round for {minutes:g} minutes (the goal's scenario is 10), "
            f"against one server started as `saaskpi app` starts it (max {MAX_KERNELS} kernels, idle timeout "
            f"{IDLE_TIMEOUT} s, voila.json's 3 preheated kernels). Kernels counted every 0.5 s, preheated ones "
            "included.\n\n"
            "| measure | value | goal |\n|---|---|---|\n"
            f"| kernels alive, at most | {peak[1]} (at {peak[0]:.0f} s) | {GOAL} |\n"
            f"| kernels alive, median of the samples | {statistics.median(counts):.0f} | |\n"
            f"| server + kernels RSS, at most | {max(s[2] for s in samples) / GIB:.2f} GiB | |\n"
            f"| app visits (completed / failed) | {len(done)} / {len(visits) - len(done)} | |\n"
            f"| segment switches | {sum(v['switches'] for v in visits)} | |\n"
            f"| request to first chart, min / median / max | "
            f"{min(charts):.0f} / {statistics.median(charts):.0f} / {max(charts):.0f} s | |\n\n"
            f"Kernels alive per minute (min-max): {'; '.join(timeline)}.\n"
            f"Apps opened, in order: {', '.join(v['app'] for v in visits)}"
            f"{' (not all of them: pages render slowly on this machine)' if len(visits) < len(notebook_names()) else ''}.\n"
            f"Failed visits: {failed or 'none'}.\n"
            "Before (issue 19, the same scenario for 8 minutes, when Voila refused the tab's shutdown request): "
            "18 kernels and 11.4 GiB."
        )
        if charts
        else "No visit completed: " + failed
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6)
    minutes = parser.parse_args().minutes
    load_average = os.getloadavg()[0]
    samples: list = []
    with voila_server() as base:
        server, stop = server_process(base), threading.Event()
        sampler = threading.Thread(target=sample, args=(server, 0.5, stop, samples), daemon=True)
        sampler.start()
        try:
            visits = click_through(base, minutes * 60)
        finally:
            stop.set()
            sampler.join()
    text = report(visits, samples, minutes, load_average)
    write_section("kernels", "Kernels alive: one person clicking through the apps", text)
    print(text)


if __name__ == "__main__":
    main()
