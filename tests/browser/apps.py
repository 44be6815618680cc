"""Driving the Voila apps in headless Chromium: shared by the browser tests, screenshots and benchmarks."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from saaskpi import paths
from saaskpi.app import app_environment, voila_command

TILE = ".kpi-tile"  # the first tile of the page: a segment-specific KPI on every page (value, change and n:
# a value alone can round to the same text in two segments)
# pages without KPI tiles: their header names the segment
MARKERS = {"07_product_analytics": ".saaskpi-header", "08_comparisons": ".saaskpi-header"}
CHART = ".jupyter-widgets canvas, .jupyter-widgets svg.marks, canvas.marks, svg.marks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def voila_server(
    extra: tuple[str, ...] = (), ready_timeout: float = 90, notebooks: Path | None = None, source: str = "", **options
):
    """The apps served exactly as `saaskpi app` serves them (`options`: those of `voila_command`, such as
    max_kernels; `source`: as `saaskpi app --source`), on a free loopback port; yields the base URL. `notebooks`:
    another folder of apps to serve, for this server only (a fixture that patched the project's folder for its
    lifetime made every later server of its module serve its apps, and a page missing there waited for ten
    minutes)."""
    port = free_port()
    cmd, _ = voila_command(port, notebooks=notebooks, **options)
    env = app_environment(source)
    logs = os.environ.get("SAASKPI_SERVER_LOGS")  # a folder: each server's output kept there (to debug a hang)
    out = open(os.path.join(logs, f"voila-{port}.log"), "wb") if logs else subprocess.DEVNULL
    server = subprocess.Popen([*cmd, *extra], cwd=paths.ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + ready_timeout
        while True:
            try:
                urllib.request.urlopen(base + "/voila/tree/", timeout=5)  # "/" would render the executive summary
                break
            except OSError as err:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("the Voila server did not start") from err
                time.sleep(0.5)
        yield base
    finally:
        if logs:
            out.close()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def server_process(base: str):
    """The psutil process of the Voila server at `base`: the one listening on its port (its kernels are its fork
    server's children, or its own without one)."""
    import psutil

    port = int(base.rsplit(":", 1)[1])
    return psutil.Process(
        next(c.pid for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port)
    )


KERNEL_FILE = re.compile(r"kernel-([0-9a-f-]+)\.json")  # in a kernel's command line: its connection file


def kernel_id(process) -> str | None:
    """The id of the kernel `process` runs (from the connection file in its command line); None when it is no
    kernel (the server, its fork server) or has ended."""
    import psutil

    try:
        found = KERNEL_FILE.search(" ".join(process.cmdline()))
    except psutil.NoSuchProcess:  # ended while listed
        return None
    return found.group(1) if found else None


def kernel_processes(server) -> list:
    """The server's running kernels (forked kernels are its fork server's children: the whole tree is searched)."""
    return [p for p in server.children(recursive=True) if kernel_id(p)]


def kernel_ids(server) -> set[str]:
    """Ids of the server's running kernels."""
    return {i for p in server.children(recursive=True) if (i := kernel_id(p))}


def marker_for(notebook: str) -> str:
    """What shows that a page has rendered for its segment: its first KPI tile, or its header on a page without."""
    return MARKERS.get(notebook, TILE)


def open_app(page, base: str, notebook: str, timeout_ms: int = 180_000, marker: str = "") -> float:
    """Load an app and wait for a chart and its KPI tiles (or another `marker`); returns seconds to the first
    visible chart."""
    start = time.perf_counter()
    page.goto(f"{base}/voila/render/{notebook}.ipynb", timeout=timeout_ms)
    page.wait_for_selector(CHART, state="visible", timeout=timeout_ms)
    first_chart = time.perf_counter() - start
    page.wait_for_selector(marker or marker_for(notebook), timeout=timeout_ms)
    return first_chart


def switch_segment(page, segment: str, timeout_ms: int = 120_000, marker: str = TILE) -> tuple[str, str, float]:
    """Choose another segment; returns the first tile's (or `marker`'s) text before and after, and seconds until
    it changed."""
    before = page.inner_text(marker)
    start = time.perf_counter()
    page.select_option("select >> nth=0", label=segment)
    page.wait_for_function(
        "([sel, t]) => document.querySelector(sel)?.innerText !== t", arg=[marker, before], timeout=timeout_ms
    )
    return before, page.inner_text(marker), time.perf_counter() - start


def close_tab(page) -> None:
    """Close the page's tab as a person does (the browser closes it; Playwright's `page.close` does not run the
    page's `beforeunload` and `pagehide` the same way)."""
    target = page.context.new_cdp_session(page).send("Target.getTargetInfo")["targetInfo"]["targetId"]
    page.context.browser.new_browser_cdp_session().send("Target.closeTarget", {"targetId": target})
