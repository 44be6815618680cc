"""The Voila apps' exposure, checked against a real server started as `saaskpi app` starts it (browser): it
listens on loopback only, sends no code and no tracebacks to the page, keeps widget values within their options,
runs no code a browser sends, and serves none of Jupyter's own APIs."""

from __future__ import annotations

import html
import ipaddress
import json
import re
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

from saaskpi import paths

sys.path.insert(0, str(Path(__file__).parent / "browser"))
from apps import TILE, kernel_processes, open_app, server_process, switch_segment, voila_server  # noqa: E402
from chromium import browser_page  # noqa: E402

pytestmark = pytest.mark.browser
EXECUTIVE = "00_executive_summary"

# Opens a second websocket to the page's kernel from the page itself, sends `messages` and returns a summary of
# every JSON message received (with whether it mentions a traceback) until, for each [msg_id, has_reply] in `until`, the kernel is idle after the message
# and its reply has come (replies and statuses travel on different channels) or 2 minutes have passed.
EXCHANGE = """async ([url, messages, until]) => {
  const ws = new WebSocket(url), received = [];
  const waiting = new Map(until.map(([id, hasReply]) => [id, {idle: false, reply: !hasReply}]));
  const done = new Promise((resolve) => {
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      const m = JSON.parse(event.data), c = m.content || {}, data = c.data || {}, state = data.state || {};
      const parent = (m.parent_header || {}).msg_id;
      received.push({type: m.msg_type, parent, comms: Object.keys(c.comms || {}), comm: c.comm_id,
                     traceback: /Traceback|TraitError|site-packages/.test(event.data),
                     method: data.method, model: state._model_name, description: state.description,
                     index: state.index, labels: state._options_labels});
      const wait = waiting.get(parent);
      if (!wait) return;
      wait.idle ||= m.msg_type === 'status' && c.execution_state === 'idle';
      wait.reply ||= m.msg_type.endsWith('_reply');
      if (wait.idle && wait.reply) waiting.delete(parent);
      if (!waiting.size) resolve();
    };
  });
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  messages.forEach((m) => ws.send(JSON.stringify(m)));
  await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 120000))]);
  ws.close();
  return {received, answered: !waiting.size};
}"""


@pytest.fixture(scope="module")
def app_server():
    with voila_server() as base:
        yield base


def open_executive(page, base: str) -> None:
    """Open the executive app and wait for its last section: the kernel has run the whole notebook."""
    open_app(page, base, EXECUTIVE, timeout_ms=600_000)  # minutes on a machine busy with other jobs
    page.wait_for_selector(".saaskpi-links", timeout=300_000)


def kernel_message(msg_type: str, content: dict, channel: str = "shell") -> dict:
    """A Jupyter message as a browser sends it over the kernel websocket (JSON protocol)."""
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": uuid.uuid4().hex,
        "username": "probe",
        "date": "2026-01-01T00:00:00.000Z",
        "version": "5.3",
    }
    return {
        "channel": channel,
        "header": header,
        "parent_header": {},
        "metadata": {},
        "content": content,
        "buffers": [],
    }


def widget_message(comm_id: str, data: dict) -> dict:
    return kernel_message("comm_msg", {"comm_id": comm_id, "data": data})


def exchange(page, base: str, messages: list[dict], until: list[dict] | None = None) -> list[dict]:
    """Send `messages` to the page's kernel over a new websocket opened by the page; the messages received until
    the kernel has handled each of `until` (default: the last message)."""
    kernel = page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
    url = f"{base.replace('http', 'ws', 1)}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}"
    ids = [[m["header"]["msg_id"], m["header"]["msg_type"].endswith("_request")] for m in until or messages[-1:]]
    result = page.evaluate(EXCHANGE, [url, messages, ids])
    assert result["answered"], "the kernel did not answer"
    return result["received"]


def segment_dropdown(page, base: str) -> dict:
    """The kernel's state of the page's Segment dropdown, requested as the widget manager does on load."""
    info = exchange(page, base, [kernel_message("comm_info_request", {"target_name": "jupyter.widget"})])
    comms = next(m["comms"] for m in info if m["type"] == "comm_info_reply")
    states = exchange(page, base, [widget_message(c, {"method": "request_state"}) for c in comms])
    return next(
        m for m in states if m["method"] == "update" and m["model"] == "DropdownModel" and m["description"] == "Segment"
    )


def status(base: str, path: str, method: str = "GET") -> int:
    """The HTTP status of `method path` (with a body of {} when not a GET)."""
    request = urllib.request.Request(base + path, method=method, data=None if method == "GET" else b"{}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def machine_addresses() -> list[str]:
    """This machine's own addresses other than loopback (and link-local, which needs an interface to connect)."""
    found = []
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                ip = ipaddress.ip_address(a.address.split("%")[0])
                if not (ip.is_loopback or ip.is_link_local):
                    found.append(str(ip))
    return found


def kernel_connections(server) -> dict[Path, dict]:
    """Each running kernel's connection file and what it says; a kernel that ends while listed (another test's
    page closing) is left out."""
    found = {}
    for kernel in kernel_processes(server):
        try:
            path = Path(kernel.cmdline()[-1])  # ... -f <folder>/kernel-<id>.json
            found[path] = json.loads(path.read_text())
        except (psutil.NoSuchProcess, FileNotFoundError):
            continue
    return found


def test_server_and_kernels_listen_on_loopback_only(app_server):
    port = int(app_server.rsplit(":", 1)[1])
    server = server_process(app_server)
    deadline = time.monotonic() + 120  # the preheated kernels start a second after the server
    while not (connections := kernel_connections(server)):
        assert time.monotonic() < deadline, "no kernel started"
        time.sleep(0.5)
    pids = {server.pid, *(p.pid for p in server.children(recursive=True))}
    listening = [c for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert port in {c.laddr.port for c in listening}
    # loopback only: the server, and each kernel's debugger socket (ipykernel binds it itself, on a random port)
    assert all(ipaddress.ip_address(c.laddr.ip).is_loopback for c in listening), listening
    for path, connection in connections.items():
        # the kernel's five ZMQ channels are Unix sockets (no TCP port to collide with another process's, none
        # another local user can reach) in the server's private folder of connection files
        assert connection["transport"] == "ipc"
        assert path.parent.stat().st_mode & 0o077 == 0, oct(path.parent.stat().st_mode)
    for address in machine_addresses():
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=5).close()


def test_code_cells_are_not_sent_to_the_browser(app_server):
    notebook = nbformat.read(paths.NOTEBOOKS_DIR / f"{EXECUTIVE}.ipynb", as_version=4)
    lines = {
        line.strip()
        for cell in notebook.cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if line.strip()
    }
    assert any("open_workbook(" in line for line in lines)  # the notebook's code, as the test expects it

    def leaked(markup: str) -> list[str]:  # as written, HTML- or JSON-escaped, or as text between highlighting tags
        text = html.unescape(re.sub(r"<[^>]*>", "", markup))
        return [
            line
            for line in lines
            if any(
                form in where for form in (line, html.escape(line), json.dumps(line)[1:-1]) for where in (markup, text)
            )
        ]

    with browser_page() as page:
        with page.expect_response(f"**/voila/render/{EXECUTIVE}.ipynb", timeout=300_000) as response:
            open_executive(page, app_server)
        assert leaked(response.value.text()) == []  # the HTML as sent
        assert leaked(page.content()) == [] and leaked(page.inner_text("body")) == []  # as rendered, with widgets
    with urllib.request.urlopen(f"{app_server}/voila/api/contents/{EXECUTIVE}.ipynb?content=1") as response:
        assert json.load(response)["content"] is None  # the tree page's listing API: names, never the notebook
    assert status(app_server, f"/voila/files/{EXECUTIVE}.ipynb") in (403, 404)


@pytest.fixture(scope="module")
def failing_apps(tmp_path_factory):
    """A notebooks folder with three failing apps, served as `saaskpi app` serves the notebooks folder:
    `failing`, a section that raises, then a bad source outside any section (a cell that raises);
    `bad_segment`, a segment that does not exist; `crash`, a cell that raises outside the workbook's guard."""
    folder = tmp_path_factory.mktemp("failing")
    executive = nbformat.read(paths.NOTEBOOKS_DIR / f"{EXECUTIVE}.ipynb", as_version=4)
    opening = f"from saaskpi import open_workbook, widgets\n\nctx = open_workbook({str(paths.DEMO_DIR)!r}"
    cells = {
        "failing": [opening + ")\nwidgets.section(ctx, lambda wb: 1 / 0)", "open_workbook('/no/such/source')"],
        "bad_segment": [opening + ", segment='no_such_segment')"],
        "crash": ["import json\n\njson.loads('{not json')"],
    }
    for name, sources in cells.items():
        notebook = nbformat.v4.new_notebook(
            metadata=executive.metadata, cells=[nbformat.v4.new_code_cell(c) for c in sources]
        )
        nbformat.write(notebook, folder / f"{name}.ipynb")
    with voila_server(("--preheat_kernel=False",), notebooks=folder) as base:
        yield base


@pytest.mark.parametrize(
    "app, expected",
    [
        ("failing", ["ZeroDivisionError", "/no/such/source"]),  # the section's panel, then the bad source's
        ("bad_segment", ["no_such_segment"]),
        ("crash", ["this part of the page could not be computed"]),  # the server's panel for a failure outside
    ],
)
def test_failures_show_one_readable_panel_each_and_no_traceback(failing_apps, app, expected):
    with urllib.request.urlopen(f"{failing_apps}/voila/render/{app}.ipynb", timeout=600) as response:
        page_html = response.read().decode()
    with browser_page() as page:
        page.goto(f"{failing_apps}/voila/render/{app}.ipynb", timeout=600_000)
        page.wait_for_selector(f".saaskpi-error:has-text({expected[-1]!r})", timeout=600_000)
        page.wait_for_timeout(1000)
        panels = page.locator(".saaskpi-error").all_inner_texts()
        body = page.inner_text("body")
    assert len(panels) == len(expected)
    for panel, what in zip(panels, expected):
        assert "Something went wrong" in panel and what in panel
    for text in (page_html, body):
        assert "Traceback" not in text and "SourceError" not in text and 'File "' not in text
        assert "JSONDecodeError" not in text and "ParameterError" not in text
        assert "There was an error when executing cell" not in text and "show_tracebacks" not in text


def frames_with_tracebacks(frames: list) -> list[str]:
    """The websocket frames (text or binary) that carry a traceback or the name of the refusing error."""
    texts = [f if isinstance(f, str) else f.decode("utf-8", "replace") for f in frames]
    return [t[:300] for t in texts if re.search(r"Traceback|TraitError|site-packages", t)]


def test_widget_values_outside_the_options_are_rejected_without_a_traceback(app_server):
    with browser_page() as page:
        received = []  # every frame the page's own kernel websocket receives
        page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: received.append(frame)))
        open_executive(page, app_server)
        shown = page.inner_text(TILE), page.inner_text(".saaskpi-header")
        dropdown = segment_dropdown(page, app_server)
        replies = []

        def update(*states: dict) -> None:
            replies.extend(
                exchange(
                    page,
                    app_server,
                    [
                        widget_message(dropdown["comm"], {"method": "update", "state": state, "buffer_paths": []})
                        for state in states
                    ],
                )
            )

        update({"index": 99}, {"index": -1}, {"index": "enterprise"}, {"value": "evil"})  # value is not synced
        assert segment_dropdown(page, app_server)["index"] == dropdown["index"]  # the kernel refused them all
        # the kernel reports each refusal with a traceback on IOPub; neither websocket passes it on
        assert [m for m in replies if m["type"] == "error" or m["traceback"]] == []
        page.wait_for_timeout(1000)
        assert received and frames_with_tracebacks(received) == []
        # states ipywidgets accepts that are no option: no selection, and an extra label (the value is looked up
        # in the kernel's own option values, so it selects nothing)
        labels = [*dropdown["labels"], "evil"]
        update({"index": None}, {"_options_labels": labels, "index": len(labels) - 1})
        page.wait_for_timeout(1500)
        assert (page.inner_text(TILE), page.inner_text(".saaskpi-header")) == shown
        assert "Traceback" not in page.inner_text("body") and page.locator(".saaskpi-error").count() == 0
        before, after, _ = switch_segment(page, "enterprise")  # the page still works
        assert before != after


def test_the_browser_cannot_run_code_in_the_kernel(app_server, tmp_path):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('ran')"
    execute = {
        "code": code,
        "silent": False,
        "store_history": False,
        "user_expressions": {"x": code},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    probes = [
        kernel_message("execute_request", execute, channel="control"),
        kernel_message(
            "debug_request",
            {"seq": 1, "type": "request", "command": "evaluate", "arguments": {"expression": code}},
            channel="control",
        ),
        kernel_message("execute_request", execute),
        kernel_message("inspect_request", {"code": code, "cursor_pos": 4, "detail_level": 1}),
        kernel_message("complete_request", {"code": code, "cursor_pos": len(code)}),
        kernel_message("history_request", {"output": True, "raw": True, "hist_access_type": "tail", "n": 5}),
    ]
    with browser_page() as page:
        open_executive(page, app_server)
        for probe in probes:  # each followed by a request the kernel answers after it (same channel, in order)
            answered = kernel_message("kernel_info_request", {}, probe["channel"])
            received = exchange(page, app_server, [probe, answered])
            replies = [m["type"] for m in received if m["parent"] == probe["header"]["msg_id"]]
            assert replies == [], probe["header"]["msg_type"]  # not even a busy status: never delivered
    assert not marker.exists()


def test_jupyter_server_apis_are_not_served(app_server):
    for method, path in [
        ("GET", "/api/kernels"),
        ("POST", "/api/kernels"),
        ("GET", "/api/sessions"),
        ("POST", "/api/sessions"),
        ("GET", "/api/contents"),
        ("PUT", "/api/contents/x.ipynb"),
        ("GET", f"/api/contents/{EXECUTIVE}.ipynb"),
        ("GET", "/api/kernelspecs"),
        ("GET", "/api/terminals"),
        ("POST", "/api/terminals"),
        ("GET", "/lab"),
        ("GET", "/tree"),
        ("GET", f"/notebooks/{EXECUTIVE}.ipynb"),
        ("GET", f"/edit/{EXECUTIVE}.ipynb"),
    ]:
        assert status(app_server, path, method) in (403, 404, 405), (method, path)
