"""The Voila apps: configuration and command line (fast), and each app in headless Chromium (browser)."""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path
from unittest import mock

import nbformat
import pytest

from saaskpi import paths
from saaskpi.app import APP_ENGINE, APP_SOURCE, IDLE_TIMEOUT, MAX_KERNELS, app_environment, voila_command
from saaskpi.cli import main, parser
from saaskpi.errors import ParameterError, SourceError
from saaskpi.snapshot import notebook_names
from saaskpi.workbook import open_workbook

sys.path.insert(0, str(Path(__file__).parent / "browser"))
OUTPUT = paths.ROOT / "test-output" / "browser"


def test_loopback_by_default_and_token_when_exposed():
    cmd, token = voila_command(8866)
    assert "--Voila.ip=127.0.0.1" in cmd and token == "" and not any(c.startswith("--token") for c in cmd)
    cmd, token = voila_command(8866, expose=True)
    assert "--Voila.ip=0.0.0.0" in cmd and len(token) >= 24 and f"--token={token}" in cmd
    assert voila_command(8866, expose=True, token="s3cret")[1] == "s3cret"
    with pytest.raises(ParameterError):
        voila_command(70000)


def test_kernel_cap_and_culling_are_set_on_the_command_line():
    cmd, _ = voila_command(8866)
    assert cmd[1:3] == ["-m", "saaskpi.app"]  # the server of saaskpi.app_server, not plain Voila
    assert f"--SaasKpiVoila.max_kernels={MAX_KERNELS}" in cmd and MAX_KERNELS == 12
    assert f"--MappingKernelManager.cull_idle_timeout={IDLE_TIMEOUT}" in cmd and IDLE_TIMEOUT <= 300
    assert "--MappingKernelManager.cull_interval=30" in cmd and "--MappingKernelManager.cull_connected=True" in cmd
    cmd, _ = voila_command(8866, max_kernels=3, idle_timeout=5)
    assert "--SaasKpiVoila.max_kernels=3" in cmd and "--MappingKernelManager.cull_idle_timeout=5" in cmd
    assert "--MappingKernelManager.cull_interval=5" in cmd  # checked at least as often as the timeout
    for bad in ({"max_kernels": 0}, {"idle_timeout": 0}):
        with pytest.raises(ParameterError):
            voila_command(8866, **bad)
    args = parser().parse_args(["app", "--max-kernels", "4", "--idle-timeout", "60"])
    assert (args.max_kernels, args.idle_timeout) == (4, 60)


def test_preheated_pools_are_trimmed_to_leave_room_for_a_page():
    from saaskpi.app_server import pool_sizes, trimmed_pools

    config = json.loads((paths.ROOT / "voila.json").read_text())["VoilaKernelManager"]["kernel_pools_config"]
    notebooks = [f"{n}.ipynb" for n in notebook_names()]
    sizes = pool_sizes(config, notebooks)
    assert sizes["00_executive_summary.ipynb"] == 2 and sizes["02_cohort_retention.ipynb"] == 1
    assert sum(sizes.values()) == 3  # "default" (0) for the other four
    assert pool_sizes({}, ["a.ipynb"]) == {"a.ipynb": 1}  # Voila's own default without a "default" entry
    assert trimmed_pools(sizes, 12) == sizes
    # max 3: 2 kernels for pools, the executive summary (first by name) keeps its 2, the cohort app loses its 1
    assert trimmed_pools(sizes, 3) == {**sizes, "02_cohort_retention.ipynb": 0}
    assert trimmed_pools(sizes, 2)["00_executive_summary.ipynb"] == 1 and sum(trimmed_pools(sizes, 2).values()) == 1
    assert sum(trimmed_pools(sizes, 1).values()) == 0


def test_the_busy_page_is_readable_and_retries():
    from saaskpi.app_server import RETRY_SECONDS, busy_page

    page = busy_page(9, "/voila/render/00_executive_summary.ipynb?x=<b>")
    assert "The apps are busy, retry in a moment" in page and "Every app session this server runs at once (9)" in page
    assert f'http-equiv="refresh" content="{RETRY_SECONDS}"' in page
    assert 'href="/voila/render/00_executive_summary.ipynb?x=&lt;b&gt;"' in page  # the URL is escaped
    assert "<b>" not in page


def test_the_kernel_websocket_keeps_error_reports_from_the_page():
    """IOPub error messages and stderr streams are dropped; everything else, stdout included, passes."""
    from jupyter_client.session import Session

    from saaskpi.app_server import PageSafeConnection

    session = Session(key=b"k")
    passed = []

    class Probe(PageSafeConnection):
        def __init__(self):  # no kernel: only what handle_outgoing_message reads
            pass

        session = None

    probe = Probe()
    probe.session = session
    with mock.patch(
        "jupyter_server.services.kernels.connection.channels.ZMQChannelsWebsocketConnection.handle_outgoing_message",
        lambda self, stream, msg: passed.append(
            session.deserialize(session.feed_identities(msg)[1])["header"]["msg_type"]
        ),
    ):
        for channel, msg_type, content in [
            ("iopub", "error", {"ename": "TraitError", "evalue": "x", "traceback": ["Traceback ..."]}),
            ("iopub", "stream", {"name": "stderr", "text": "Traceback (most recent call last): ..."}),
            ("iopub", "stream", {"name": "stdout", "text": "hello"}),
            ("iopub", "comm_msg", {"comm_id": "c", "data": {}}),
            ("iopub", "status", {"execution_state": "idle"}),
            ("shell", "comm_info_reply", {"status": "ok", "comms": {}}),
        ]:
            wire = session.serialize(session.msg(msg_type, content))
            probe.handle_outgoing_message(channel, wire)
    assert passed == ["stream", "comm_msg", "status", "comm_info_reply"]


def test_a_failing_cell_shows_one_readable_panel_not_voilas_note():
    from nbformat.v4 import new_code_cell, new_output

    from saaskpi.app_server import ReadableErrorsExecutor

    error = new_output("error", ename="SourceError", evalue="no such source", traceback=["Traceback ..."])
    panel = new_output("display_data", data={"text/html": '<div class="saaskpi-error">The source ...</div>'})
    shown = new_code_cell("open_workbook('/no/such')", outputs=[panel, error])
    bare = new_code_cell("1 / 0", outputs=[error.copy()])
    executor = ReadableErrorsExecutor(nbformat.v4.new_notebook())
    assert executor.strip_code_cell_errors(shown)["outputs"] == [panel]  # the workbook's panel alone
    outputs = executor.strip_code_cell_errors(bare)["outputs"]
    assert [o["output_type"] for o in outputs] == ["display_data"]
    text = outputs[0]["data"]["text/html"]
    assert 'class="saaskpi-error"' in text and "Something went wrong" in text
    assert "There was an error" not in text and "ZeroDivisionError" not in text and "Traceback" not in text


def test_voila_config():
    config = json.loads((paths.ROOT / "voila.json").read_text())
    assert config["VoilaConfiguration"]["show_tracebacks"] is False
    assert config["VoilaConfiguration"]["preheat_kernel"] is True
    pools = config["VoilaKernelManager"]["kernel_pools_config"]
    assert pools["00_executive_summary.ipynb"]["pool_size"] >= 1  # the landing app is preheated
    assert "MappingKernelManager" not in config  # culling is set by `saaskpi app` on the command line
    assert config["VoilaExecutor"]["timeout"] > 0
    assert config["VoilaConfiguration"]["extension_denylist"]


def test_kernel_replies_are_polled_in_bounded_slices():
    """The Voila server's kernel client polls in short slices (a missed wakeup costs one slice), returns
    a message as soon as one is ready, and still raises Empty at the caller's timeout."""
    import asyncio
    import time
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    from saaskpi.kernel_polling import SLICE_SECONDS, bounded_shell_polls

    class Socket:
        def __init__(self, ready_on_poll):
            self.polls, self.ready_on_poll, self.waits = 0, ready_on_poll, []

        async def poll(self, timeout_ms):
            self.polls += 1
            self.waits.append(timeout_ms)
            return self.polls >= self.ready_on_poll

    class Channel:
        def __init__(self, socket):
            self.socket = socket

        async def _recv(self):
            return {"msg_type": "execute_reply"}

    bounded_shell_polls()
    bounded_shell_polls()  # idempotent
    late = Channel(Socket(ready_on_poll=3))
    assert asyncio.run(AsyncZMQSocketChannel.get_msg(late, timeout=None)) == {"msg_type": "execute_reply"}
    assert late.socket.polls == 3 and max(late.socket.waits) <= SLICE_SECONDS * 1000
    never = Channel(Socket(ready_on_poll=10**9))
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(AsyncZMQSocketChannel.get_msg(never, timeout=0.6))
    assert 0.55 <= time.monotonic() - start < 2 and never.socket.polls >= 3


@pytest.fixture(scope="module")
def app_server():
    from apps import voila_server

    with voila_server() as base:
        yield base


def listing_shown(page, attempts: int = 3) -> None:
    """Wait for Voila's file listing. Its file browser (JupyterLab's, in Voila 0.5) now and then draws an empty
    listing on a first load although the contents request answered with every notebook (about one load in ten
    here, and in CI); a person would press reload, so the test does too."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(attempts):
        try:
            page.wait_for_selector(".jp-DirListing-item", timeout=30_000)
            return
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.reload(timeout=180_000)


@pytest.mark.browser
def test_landing_page_is_the_executive_summary_and_stays_on_the_machine(app_server):
    from apps import CHART
    from chromium import browser_page

    hosts, bundles = set(), []
    with browser_page() as page:
        page.on("request", lambda request: hosts.add(urllib.parse.urlsplit(request.url).hostname))
        page.on("response", lambda r: bundles.append(r) if "/saaskpi/vega-" in r.url else None)
        page.goto(app_server + "/", timeout=180_000)
        page.wait_for_selector(CHART, state="visible", timeout=180_000)
        page.wait_for_function("document.querySelectorAll('.vega-embed').length >= 2", timeout=60_000)
        # the charts' Vega bundle, served by the app server, fetched once for the page's many charts
        assert len(bundles) == 1 and bundles[0].status == 200, [b.url for b in bundles]
        assert bundles[0].headers["content-type"].startswith("text/javascript")
        assert "immutable" in bundles[0].headers["cache-control"]
        links = page.eval_on_selector_all(".saaskpi-nav a", "els => els.map(e => e.innerText.trim())")
        assert page.url.endswith("/voila/render/00_executive_summary.ipynb")
        assert page.inner_text(".saaskpi-nav a.current") == "Executive summary"
        page.goto(app_server + "/voila/tree/", timeout=180_000)  # Voila's file listing, also offline
        listing_shown(page)
    assert len(links) == len(notebook_names())  # every app, in page order
    assert hosts <= {"127.0.0.1", None}, hosts - {"127.0.0.1"}  # no font, script or style from another host


@pytest.mark.browser
@pytest.mark.parametrize("notebook", notebook_names())
def test_app_switches_segment_without_errors(app_server, notebook):
    from apps import marker_for, open_app, switch_segment
    from chromium import browser_page

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        open_app(page, app_server, notebook)
        before, after, _ = switch_segment(page, "enterprise", marker=marker_for(notebook))
        assert before != after
        page.wait_for_timeout(1500)
        assert page.locator(".saaskpi-error").count() == 0
        assert "Traceback" not in page.inner_text("body")
        page.screenshot(path=str(OUTPUT / f"{notebook}.png"), full_page=True)


@pytest.mark.browser
def test_navigation_keeps_segment_and_month(app_server):
    # a link of the bar opens another app on the same segment and month, preheated kernel or not
    from apps import CHART
    from chromium import browser_page

    with browser_page() as page:
        page.goto(
            f"{app_server}/voila/render/00_executive_summary.ipynb?segment=enterprise&month=2026-09", timeout=180_000
        )
        page.wait_for_selector(".saaskpi-nav a.current", timeout=180_000)
        page.wait_for_function("document.body.innerText.includes('Enterprise · September 2026')", timeout=120_000)
        for i in range(len(notebook_names())):  # a link points at the controls' choice when it is approached
            page.hover(f".saaskpi-nav a >> nth={i}")
        links = page.eval_on_selector_all(
            ".saaskpi-nav a", "els => els.map(e => [e.innerText, e.getAttribute('href')])"
        )
        assert len(links) == len(notebook_names()) and links[0][0] == "Executive summary"
        assert all(href.endswith(".ipynb?segment=enterprise&month=2026-09") for _, href in links)
        page.click(".saaskpi-nav a >> text=Unit economics")
        page.wait_for_selector(CHART, state="visible", timeout=180_000)
        page.wait_for_function("document.body.innerText.includes('Enterprise · September 2026')", timeout=120_000)
        assert page.inner_text(".saaskpi-nav a.current") == "Unit economics"
        # a value that is not an option is ignored: the page keeps its own segment
        page.goto(f"{app_server}/voila/render/03_unit_economics.ipynb?segment=../../etc&month=1999-01", timeout=180_000)
        page.wait_for_selector(CHART, state="visible", timeout=180_000)
        page.wait_for_timeout(1500)
        assert "All customers ·" in page.inner_text("body") and page.locator(".saaskpi-error").count() == 0


def test_page_templates_are_compiled_once_and_again_when_changed(monkeypatch):
    """Voila makes a Jinja environment per page request; the server's bytecode cache spares the compilation."""
    import jinja2

    from saaskpi.app_server import TemplateBytecode

    shared, sources, compiled = TemplateBytecode(), {"page.j2": "{{ 6 * 7 }} {{ name }}"}, []
    real_compile = jinja2.Environment.compile
    monkeypatch.setattr(
        jinja2.Environment, "compile", lambda env, *a, **k: compiled.append(1) or real_compile(env, *a, **k)
    )

    def render() -> str:  # a new environment, as for every page request
        env = jinja2.Environment(loader=jinja2.DictLoader(sources), bytecode_cache=shared)
        return env.get_template("page.j2").render(name="page")

    assert render() == "42 page" and len(compiled) == 1
    assert render() == "42 page" and len(compiled) == 1  # the second environment reuses the compiled template
    sources["page.j2"] = "{{ 6 * 7 }}! {{ name }}"  # a changed template is compiled again
    assert render() == "42! page" and len(compiled) == 2


def test_the_apps_folder_can_be_another(tmp_path):
    cmd, _ = voila_command(8866, notebooks=tmp_path)
    assert str(tmp_path) in cmd and str(paths.NOTEBOOKS_DIR) not in cmd
    assert str(paths.NOTEBOOKS_DIR) in voila_command(8866)[0]


def test_the_apps_source_is_validated_then_handed_to_their_kernels(revenue_source, monkeypatch, capsys):
    monkeypatch.setenv(APP_SOURCE, "left over from another shell")
    assert APP_SOURCE not in app_environment()  # no --source: the notebooks' own
    env = app_environment(str(revenue_source), "duckdb")
    assert (env[APP_SOURCE], env[APP_ENGINE]) == (str(revenue_source), "duckdb")
    assert capsys.readouterr().err == (
        f"Apps show source {revenue_source} (engine duckdb), month 2024-05: not in the results store yet, so each "
        "page computes it on its first visit (10-20 s for the largest pages at 50M usage events); "
        f"`saaskpi fill --source {revenue_source} --engine duckdb` computes every page now.\n"
    )
    fill = ["fill", "--source", str(revenue_source), "--segments", "all", "--notebooks", "00_executive_summary"]
    assert main([*fill, "--workers", "1"]) == 0
    capsys.readouterr()
    app_environment(str(revenue_source))
    assert capsys.readouterr().err == (
        f"Apps show source {revenue_source} (engine polars), month 2024-05: read from the results store.\n"
    )
    with pytest.raises(SourceError, match="is not a folder"):
        app_environment(str(revenue_source / "missing"))
    assert main(["app", "--source", str(revenue_source / "missing")]) == 2  # stopped before any server started
    assert "is not a folder" in capsys.readouterr().err


def test_an_app_kernel_opens_the_apps_source_in_place_of_the_notebooks(revenue_source, monkeypatch):
    monkeypatch.setenv(APP_SOURCE, str(revenue_source))
    wb = open_workbook("data/no-such-folder", "all", "2024-05", interactive=True)  # the notebook's own source
    assert wb.source_label == str(revenue_source)
    with pytest.raises(SourceError):  # a snapshot's run (not interactive) keeps the source it was given
        open_workbook("data/no-such-folder", "all", "2024-05", interactive=False)


@pytest.mark.browser
def test_the_apps_show_the_source_they_are_given(revenue_source):
    from apps import voila_server
    from chromium import browser_page

    with voila_server(source=str(revenue_source)) as base, browser_page() as page:
        page.goto(base + "/voila/render/00_executive_summary.ipynb", timeout=180_000)
        page.wait_for_selector(".saaskpi-header", timeout=180_000)
        header = page.text_content(".saaskpi-header")  # the source is named in its folded details
        assert "May 2024" in header and str(revenue_source) in header  # the demo's months run to 2026
        assert page.locator(".saaskpi-error").count() == 0
