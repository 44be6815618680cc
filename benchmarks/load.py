"""Voila under load: 20 headless-Chromium sessions of the executive app opened at once (one browser, a context
each) against one server started as `saaskpi app` starts it, once its preheated kernels are ready, after the
executive summary's pages were run for every segment as a snapshot runs them (snapshot.fill_store) into a
results store of the benchmark's own (`--empty-store`: without that, every kernel computes its page). Per session:
seconds from the request to the page loaded, to the first visible chart and to the KPI tiles, whether a
preheated kernel served it, and chart widgets that failed to start; for the server, the peak memory of it and its
kernels (summed RSS and PSS) and how busy the CPUs were. Writes its section of RESULTS.md.

    .venv/bin/python benchmarks/load.py [--sessions 50] [--empty-store] [--pages-only] [--preheat-all]

`--pages-only` requests the pages over HTTP without browsers: how soon the server has run every page of the burst,
when the browsers are on the viewers' machines. `--preheat-all` gives every session a preheated kernel (refilled
only after the run): what is left is the browsers' part of the burst, on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from apps import CHART, TILE, kernel_id, kernel_ids, server_process, voila_server  # noqa: E402
from chromium import ARGS, ensure_chromium  # noqa: E402
from results import write_section  # noqa: E402

NOTEBOOK = "00_executive_summary"
SESSIONS = 20
SESSION_TIMEOUT_MS = 600_000  # a session without a chart and tiles 10 minutes after its request has failed
WIDGET_FAILED = "[anywidget] Failed to initialize model."  # a chart widget that did not start within 2 s
GIB = 2**30


def family(server: psutil.Process) -> list[psutil.Process]:
    """The server and its kernels."""
    return [server, *server.children(recursive=True)]


def family_memory(server: psutil.Process, pss: bool = True) -> tuple[int, int, int]:
    """Summed RSS and PSS of the server, its fork server and its kernels, and the number of kernels. RSS counts
    every page a process maps, so pages that forked kernels share with their fork server are counted once per
    kernel; PSS splits a shared page between the processes sharing it, so summed PSS is the memory they use.
    PSS costs about 8 ms of CPU per process to read (the kernel walks its page tables): `pss=False` skips it."""
    rss, shared_split, kernels = 0, 0, 0
    for process in family(server):
        try:
            memory = process.memory_full_info() if pss else process.memory_info()
            rss, shared_split = rss + memory.rss, shared_split + getattr(memory, "pss", 0)
            kernels += kernel_id(process) is not None
        except psutil.NoSuchProcess:  # a kernel shutting down between listing and sampling
            pass
    return rss, shared_split, kernels


@contextmanager
def monitor(server: psutil.Process, every: float = 0.5, pss_every: int = 10):
    """Sample every `every` seconds in a thread (PSS every `pss_every` samples: reading it for 50 kernels takes
    0.4 s of CPU, which would slow the burst measured); yields {"rss", "kernels"} at the server's memory peak,
    "available" (the machine's lowest available memory) and "cpu" ([(time, % busy since the last sample)])."""
    seen = {
        "rss": 0,
        "pss": 0,
        "kernels": 0,
        "pss_kernels": 0,
        "available": psutil.virtual_memory().available,
        "cpu": [],
    }
    stop = threading.Event()

    def sample():
        psutil.cpu_percent()
        samples = 0
        while not stop.wait(every):
            rss, pss, kernels = family_memory(server, pss=samples % pss_every == 0)
            samples += 1
            if rss > seen["rss"]:
                seen.update(rss=rss, kernels=kernels)
            if pss > seen["pss"]:
                seen.update(pss=pss, pss_kernels=kernels)
            seen["available"] = min(seen["available"], psutil.virtual_memory().available)
            seen["cpu"].append((time.perf_counter(), psutil.cpu_percent()))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def wait_until_preheated(server: psutil.Process, kernels: int, timeout: float = 600) -> bool:
    """Wait until the server has its `kernels` preheated kernels and they have run their notebooks (the server
    and kernels use under 10 % of a core over 2 s); False at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes = family(server)
        if len(processes) - 1 >= kernels:
            before = sum(sum(p.cpu_times()[:2]) for p in processes)
            time.sleep(2)
            if sum(sum(p.cpu_times()[:2]) for p in processes) - before < 0.2:
                return True
        else:
            time.sleep(1)
    return False


async def session(browser, url: str, preheated: set[str]) -> dict:
    """One user opening the app: seconds to the page loaded, the first visible chart and the KPI tiles (or the
    error), whether a preheated kernel served it, and how many chart widgets failed to start."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    result = {"context": context, "start": time.perf_counter()}
    try:
        response = await page.goto(url, timeout=SESSION_TIMEOUT_MS)
        if response is not None and response.status == 503:
            raise RuntimeError("the busy page (HTTP 503): the server's kernel cap was reached")
        result["loaded"] = time.perf_counter() - result["start"]
        config = await page.text_content("#jupyter-config-data")
        result["preheated"] = json.loads(config)["kernelId"] in preheated
        await page.wait_for_selector(CHART, state="visible", timeout=SESSION_TIMEOUT_MS)
        result["chart"] = time.perf_counter() - result["start"]
        await page.wait_for_selector(TILE, timeout=SESSION_TIMEOUT_MS)
        result["tiles"] = time.perf_counter() - result["start"]
    except Exception as exc:  # noqa: BLE001 - a failed session is a result, recorded with its reason
        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    result["failed_charts"] = sum(WIDGET_FAILED in e for e in errors)
    return result


async def sessions(url: str, n: int, preheated: set[str]) -> list[dict]:
    """`n` sessions started at once in one headless Chromium, kept open until all have finished."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=ensure_chromium(), headless=True, args=ARGS)
        try:
            results = await asyncio.gather(*(session(browser, url, preheated) for _ in range(n)))
            for result in results:
                await result.pop("context").close()
            return results
        finally:
            await browser.close()


def page_requests(url: str, n: int) -> list[float]:
    """`n` requests for the page at once, without a browser: seconds until each page has arrived whole (Voila sends
    the end of a page once its kernel has run every cell). The server's part of a burst, when the browsers run on
    the viewers' machines rather than on the server's cores."""

    def fetch(_: int) -> float:
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=SESSION_TIMEOUT_MS / 1000) as response:
            response.read()
        return time.perf_counter() - start

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fetch, range(n)))


def cpu_seconds(server: psutil.Process) -> Counter:
    """CPU seconds so far of the server, its fork server and its kernels, by role."""
    total: Counter = Counter()
    for process in family(server):
        try:
            line = " ".join(process.cmdline())
            role = "server" if process.pid == server.pid else "fork server" if "kernel_fork" in line else "kernels"
            total[role] += sum(process.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


def pages_report(times: list[float], cpu: Counter, seen: dict, load_average: float, store: str) -> str:
    n, cores = len(times), os.cpu_count()
    parts = ", ".join(f"{role} {cpu[role]:.1f} s" for role in ("server", "fork server", "kernels") if role in cpu)
    return (
        f"Run {dt.date.today()} on {cores} cores, load average at start {load_average:.1f}. Command: "
        f"`.venv/bin/python benchmarks/load.py --pages-only{'' if n == SESSIONS else f' --sessions {n}'}`: {store}. "
        f"{n} requests for `{NOTEBOOK}` at once over HTTP, no browser, against one server started as `saaskpi app` "
        "starts it, after its preheated kernels had run their notebooks: the server's part of a burst.\n\n"
        "| measure | value |\n|---|---|\n"
        f"| request to the whole page (every cell run), min / median / max | {min(times):.1f} / "
        f"{statistics.median(times):.1f} / {max(times):.1f} s |\n"
        f"| CPU of the server, fork server and kernels during the burst | {cpu.total():.0f} s ({parts}) |\n"
        f"| server + kernels peak PSS | {seen['pss'] / GIB:.2f} GiB ({seen['pss_kernels']} kernels) |\n\n"
        f"Seconds per request, sorted: {', '.join(f'{t:.1f}' for t in sorted(times))}."
    )


VOILA_JSON = ROOT / "voila.json"  # the project's server configuration


def preheat_all(n: int) -> Path:
    """A voila.json of the benchmark's own: `n` preheated kernels of the executive summary, refilled only after the
    run (fill_delay one hour): every session is served a page its kernel has already run, so what remains is the
    browsers' own part of the burst and the server's sending of the pages. The server reads it when started with
    `--Voila.config_file_paths=<its folder>`."""
    config = json.loads(VOILA_JSON.read_text())
    # without a "default" entry Voila gives every other notebook a pool of 1 (8 more kernels)
    config["VoilaKernelManager"]["kernel_pools_config"] = {
        "default": {"pool_size": 0},
        f"{NOTEBOOK}.ipynb": {"pool_size": n},
    }
    config["VoilaKernelManager"]["fill_delay"] = 3600
    folder = tempfile.mkdtemp(prefix="saaskpi-bench-config-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = Path(folder) / "voila.json"
    path.write_text(json.dumps(config))
    return path


def pool_settings(path: Path = VOILA_JSON) -> dict:
    config = json.loads(path.read_text())
    pools = config["VoilaKernelManager"]["kernel_pools_config"]
    return {
        "preheat": config["VoilaConfiguration"]["preheat_kernel"],
        "pools": {name: p["pool_size"] for name, p in pools.items() if p.get("pool_size")},
        "fill_delay": config["VoilaKernelManager"].get("fill_delay"),
        "timeout": config["VoilaExecutor"]["timeout"],
    }


def fill_results_store(notebooks: list[str], segments: list[str] | None = None) -> float:
    """A results store of the benchmark's own (SAASKPI_CACHE_DIR, inherited by the server and its kernels), filled
    by running `notebooks` for `segments` (default every one) as a snapshot runs them; returns the seconds it took."""
    from saaskpi.snapshot import fill_store

    start = time.perf_counter()
    fill_store(segments=segments, notebooks=notebooks, progress=False)
    return time.perf_counter() - start


def own_cache() -> str:
    """An empty cache folder of the benchmark's own, for this process and the servers it starts."""
    folder = tempfile.mkdtemp(prefix="saaskpi-bench-cache-")
    os.environ["SAASKPI_CACHE_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def report(
    results: list[dict],
    before: tuple[int, int, int],
    seen: dict,
    preheated: bool,
    load_average: float,
    config: Path,
    store: str = "",
) -> str:
    settings = pool_settings(config)
    n = len(results)
    rendered = [r for r in results if "tiles" in r]
    failed = [r for r in results if "error" in r]

    def spread(key: str, among: list[dict]) -> str:
        values = [r[key] for r in among if key in r]
        return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}" if values else "-"

    cores, ram = os.cpu_count(), psutil.virtual_memory().total
    extra = seen["kernels"] - before[2]
    per_kernel = (seen["rss"] - before[0]) / extra / 2**20 if extra > 0 else float("nan")
    extra_pss = seen["pss_kernels"] - before[2]
    pss_per_kernel = (seen["pss"] - before[1]) / extra_pss / 2**20 if extra_pss > 0 else float("nan")
    last = max((r["start"] + r["tiles"] for r in rendered), default=float("inf"))
    busy = [pct for t, pct in seen["cpu"] if t <= last]
    cpu = f"{statistics.mean(busy):.0f} %" if busy else "-"
    warm = [r for r in results if r.get("preheated")]
    failed_charts = sum(r["failed_charts"] for r in results)
    pools = ", ".join(f"{size} for `{name}`" for name, size in settings["pools"].items())
    times = ", ".join(
        f"{r['chart']:.0f}{'*' if r.get('preheated') else ''}" for r in sorted(rendered, key=lambda r: r["chart"])
    )
    reasons = "; ".join(f"{r['error']} ({r['failed_charts']} chart widgets failed to start)" for r in failed)
    return (
        f"Run {dt.date.today()} on {cores} cores, {ram / GIB:.0f} GiB RAM, load average at start {load_average:.1f}.\n"
        f"Command: `.venv/bin/python benchmarks/load.py{'' if n == SESSIONS else f' --sessions {n}'}"
        f"{'' if store else ' --empty-store'}{' --preheat-all' if config != VOILA_JSON else ''}`: {store or 'an empty results store (every kernel computes its page)'}. "
        f"{n} sessions of `{NOTEBOOK}` on the default demo opened "
        "at once (a browser context each in one headless Chromium, on the same machine) against one server started "
        f"as `saaskpi app` starts it (its kernel cap raised to the sessions plus twice the preheated pools), "
        f"{'after' if preheated else 'before'} its preheated kernels had run their "
        f"notebooks. voila.json: preheat_kernel {str(settings['preheat']).lower()}; preheated kernels: {pools} "
        f"(none for the other apps), fill_delay {settings['fill_delay']} s; VoilaExecutor timeout "
        f"{settings['timeout']} s.\n\n"
        "| measure | value |\n|---|---|\n"
        f"| sessions that showed a chart and the KPI tiles | {len(rendered)} of {n} |\n"
        f"| request to page loaded, min / median / max | {spread('loaded', results)} s |\n"
        f"| request to first chart, min / median / max | {spread('chart', rendered)} s |\n"
        f"| request to KPI tiles, min / median / max | {spread('tiles', rendered)} s |\n"
        f"| sessions served by a preheated kernel: request to first chart | {len(warm)}: {spread('chart', warm)} s |\n"
        f"| chart widgets that failed to start (anywidget's 2 s limit) | {failed_charts}, in "
        f"{sum(r['failed_charts'] > 0 for r in results)} sessions |\n"
        f"| server + kernels RSS before the sessions | {before[0] / GIB:.2f} GiB ({before[2]} kernels) |\n"
        f"| server + kernels peak RSS (shared pages counted in every process) | {seen['rss'] / GIB:.2f} GiB "
        f"({seen['kernels']} kernels) |\n"
        f"| RSS per kernel added during the sessions | {per_kernel:.0f} MiB |\n"
        f"| server + kernels PSS before the sessions | {before[1] / GIB:.2f} GiB |\n"
        f"| server + kernels peak PSS (shared pages split: the memory they use) | {seen['pss'] / GIB:.2f} GiB "
        f"({seen['pss_kernels']} kernels) |\n"
        f"| PSS per kernel added during the sessions | {pss_per_kernel:.0f} MiB |\n"
        f"| lowest memory available on the machine | {seen['available'] / GIB:.1f} GiB |\n"
        f"| CPU busy until the last session rendered (all processes) | {cpu} of {cores} cores |\n\n"
        f"First chart per session, seconds, sorted (* preheated kernel): {times or '-'}.\n"
        f"Failed sessions: {len(failed)}{': ' + reasons if failed else ''}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=SESSIONS, help="sessions opened at once (default 20)")
    parser.add_argument("--empty-store", action="store_true", help="do not fill the results store first")
    parser.add_argument("--pages-only", action="store_true", help="request the pages over HTTP, without browsers")
    parser.add_argument(
        "--preheat-all",
        action="store_true",
        help="a preheated kernel for every session, no refill during the run (the browsers' floor)",
    )
    args = parser.parse_args()
    config = preheat_all(args.sessions) if args.preheat_all else VOILA_JSON
    extra = (f"--Voila.config_file_paths={config.parent}",) if args.preheat_all else ()
    own_cache()
    load_average = os.getloadavg()[0]
    store = ""
    if not args.empty_store:
        seconds = fill_results_store([NOTEBOOK])
        store = (
            f"the results store filled first by the executive summary run for every segment as a snapshot runs "
            f"it ({seconds:.0f} s, load average then {os.getloadavg()[0]:.1f})"
        )
    # every session gets a kernel (the default cap of `saaskpi app` would answer the rest with its busy page): room
    # for the sessions, the pools, and the pools' refills (a preheated kernel being refilled counts as a page's
    # until it has run its notebook)
    pools = sum(pool_settings(config)["pools"].values())
    with voila_server(extra, max_kernels=args.sessions + 2 * pools) as base:
        server = server_process(base)
        preheated = wait_until_preheated(server, pools)
        before, pool = family_memory(server), kernel_ids(server)
        if args.pages_only:
            cpu = cpu_seconds(server)
            with monitor(server) as seen:
                times = page_requests(f"{base}/voila/render/{NOTEBOOK}.ipynb", args.sessions)
            text = pages_report(times, cpu_seconds(server) - cpu, seen, load_average, store)
            write_section(
                "load_pages" + ("" if args.sessions == SESSIONS else str(args.sessions)),
                f"Load: {args.sessions} page requests at once, without browsers (the server's part)",
                text,
            )
            print(text)
            return
        with monitor(server) as seen:
            results = asyncio.run(sessions(f"{base}/voila/render/{NOTEBOOK}.ipynb", args.sessions, pool))
        text = report(results, before, seen, preheated, load_average, config, store)
    name = "load" if args.sessions == SESSIONS else f"load{args.sessions}"
    write_section(
        name + ("_empty" if args.empty_store else "") + ("_preheated" if args.preheat_all else ""),
        f"Load: {args.sessions} concurrent sessions of the executive app"
        f"{', empty results store' if args.empty_store else ''}"
        f"{', every one served by a preheated kernel' if args.preheat_all else ''}",
        text,
    )
    print(text)


if __name__ == "__main__":
    main()
