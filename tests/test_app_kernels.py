"""Kernels that do not pile up, against real servers started as `saaskpi app` starts them (browser): closing a
tab ends its kernel, past the cap a page gets the busy page, idle kernels are culled, and SIGTERM to
`saaskpi app` stops the server and every kernel. The server's handling of kernels does not depend on the page,
so the first three serve a one-widget app (seconds to run instead of a workbook's CPU-heavy minute)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest

from saaskpi import paths

sys.path.insert(0, str(Path(__file__).parent / "browser"))
from apps import close_tab, free_port, kernel_ids, server_process, voila_server  # noqa: E402
from chromium import browser_page  # noqa: E402

pytestmark = pytest.mark.browser
EXECUTIVE = "00_executive_summary"
OUTPUT = paths.ROOT / "test-output" / "browser"


def page_kernel(page) -> str:
    return page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")


def wait_for(condition, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def get(url: str) -> tuple[int, dict, str]:
    """Status, headers and body of a GET (error statuses included)."""
    try:
        with urllib.request.urlopen(url, timeout=600) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.fixture(scope="module")
def one_widget_apps(tmp_path_factory):
    """A notebooks folder with one app, `tiny`: a heading and a Segment dropdown (a widget, so the page opens
    the kernel websocket as every app does)."""
    folder = tmp_path_factory.mktemp("apps")
    metadata = nbformat.read(paths.NOTEBOOKS_DIR / f"{EXECUTIVE}.ipynb", as_version=4).metadata
    nbformat.write(
        nbformat.v4.new_notebook(
            metadata=metadata,
            cells=[
                nbformat.v4.new_markdown_cell("# Tiny"),
                nbformat.v4.new_code_cell(
                    "import ipywidgets as W\n\nW.Dropdown(options=['all', 'smb'], description='Segment')"
                ),
            ],
        ),
        folder / "tiny.ipynb",
    )
    return folder


def open_tiny(page, base: str) -> str:
    """Open the one-widget app and wait for its dropdown; returns the page's kernel id."""
    page.goto(f"{base}/voila/render/tiny.ipynb", timeout=300_000)
    page.wait_for_selector("select", timeout=300_000)
    return page_kernel(page)


@pytest.fixture(scope="module")
def capped_server(one_widget_apps):
    """A server with a cap of one kernel (its preheated pools trimmed to none)."""
    with voila_server(max_kernels=1, notebooks=one_widget_apps) as base:
        yield base


def test_past_the_cap_a_page_gets_the_busy_page_and_closing_a_tab_frees_its_kernel(capped_server):
    server = server_process(capped_server)
    url = f"{capped_server}/voila/render/tiny.ipynb"
    with browser_page() as first:
        second = first.context.browser.new_page(viewport={"width": 1400, "height": 900})  # another tab
        kernel = open_tiny(first, capped_server)
        assert kernel_ids(server) == {kernel}  # the one kernel the cap allows

        status, headers, body = get(url)  # a second page: no second kernel
        assert status == 503 and headers["Retry-After"] == "30" and headers["Content-Type"].startswith("text/html")
        assert "The apps are busy, retry in a moment" in body and "Traceback" not in body
        response = second.goto(url)
        assert response.status == 503
        text = second.inner_text("body")
        assert (
            "The apps are busy, retry in a moment" in text and "Every app session this server runs at once (1)" in text
        )
        OUTPUT.mkdir(parents=True, exist_ok=True)
        second.screenshot(path=str(OUTPUT / "busy_page.png"), full_page=True)
        assert kernel_ids(server) == {kernel}

        close_tab(first)  # the page asks the server to shut its kernel down
        assert wait_for(lambda: not kernel_ids(server), timeout=15), "the closed tab's kernel still runs"

        assert open_tiny(second, capped_server) in kernel_ids(server)  # the place is free again
        assert len(kernel_ids(server)) == 1
        close_tab(second)
        assert wait_for(lambda: not kernel_ids(server), timeout=15)


def test_idle_kernels_are_culled(one_widget_apps):
    """A kernel left idle, its page still open, is shut down after the idle timeout (5 s here; checked every 5 s)."""
    with voila_server(idle_timeout=5, notebooks=one_widget_apps) as base, browser_page() as page:
        server = server_process(base)
        kernel = open_tiny(page, base)
        assert wait_for(lambda: kernel not in kernel_ids(server), timeout=60), "the idle kernel was not culled"
        assert not kernel_ids(server)


def test_sigterm_to_saaskpi_app_stops_the_server_and_its_kernels():
    app, base = start_saaskpi_app("--max-kernels=2")  # one preheated kernel, one page
    port = int(base.rsplit(":", 1)[1])
    try:
        assert wait_for(lambda: get_ok(base + "/voila/tree/"), timeout=120), "saaskpi app did not start"
        server = server_process(base)
        assert server.pid != app.pid and server.ppid() == app.pid  # `saaskpi app` runs the server as a child
        status, _, _ = get(f"{base}/voila/render/{EXECUTIVE}.ipynb")  # a page, so that a kernel runs
        assert status == 200
        kernels = server.children(recursive=True)
        assert kernels, "no kernel runs"
        everything = [server, *kernels]

        app.send_signal(signal.SIGTERM)  # to `saaskpi app` only, as `kill` or a process supervisor does
        assert app.wait(timeout=30) is not None
        gone, alive = psutil.wait_procs(everything, timeout=10)
        assert not alive, f"still running after SIGTERM: {[p.pid for p in alive]}"
        assert port_is_free(port)
    finally:
        if app.poll() is None:
            app.kill()


def test_saaskpi_app_killed_outright_takes_its_server_along():
    """SIGKILL cannot be passed on; the server asked Linux to send it SIGTERM when its parent dies."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal: Linux only")
    app, base = start_saaskpi_app("--max-kernels=1")  # no preheated kernel: nothing to wait for
    try:
        assert wait_for(lambda: get_ok(base + "/voila/tree/"), timeout=120), "saaskpi app did not start"
        server = server_process(base)
        app.kill()
        app.wait(timeout=10)
        gone, alive = psutil.wait_procs([server], timeout=20)
        assert not alive and port_is_free(int(base.rsplit(":", 1)[1]))
    finally:
        if app.poll() is None:
            app.kill()


def start_saaskpi_app(*options: str) -> tuple[subprocess.Popen, str]:
    """`saaskpi app` (this worktree's code) on a free port, as a subprocess; and its base URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(paths.ROOT / "lib"), os.environ.get("PYTHONPATH", "")])}
    app = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from saaskpi.cli import main; sys.exit(main())",
            "app",
            f"--port={port}",
            *options,
        ],
        cwd=paths.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return app, f"http://127.0.0.1:{port}"


def port_is_free(port: int) -> bool:
    """Whether a new server can listen on `port` (as servers do, with SO_REUSEADDR: closed connections may linger
    in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False
