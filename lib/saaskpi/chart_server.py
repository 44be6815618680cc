"""Static charts of a snapshot drawn by one warm vl-convert (`python -m saaskpi.chart_server SOCKET`).

vl-convert draws a report's charts without a browser, but the first chart of every process starts its JavaScript
engine and loads Vega: 0.55 s of CPU before it draws anything, then 0.03-0.3 s a chart. A snapshot runs 36 kernels
(9 notebooks x 4 segments), each paying that start. During a snapshot (`charts_drawn_by_one_process`), a chart
server started once does the drawing: a kernel's `widgets.chart_svg` sends the chart's Vega-Lite spec over a Unix
socket (`CHART_SOCKET`, in the kernels' environment) and gets the SVG back, the same text vl-convert gives in the
kernel. When the server is not there (not started, or gone), the kernel draws the chart itself: the server is a
speed-up, never a requirement. It ends with the process that started it. `SAASKPI_CHART_SOCKET=off` turns it off
(every kernel draws its own charts, as outside a snapshot; benchmarks/snapshot.py compares the two).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import sys
from collections.abc import Iterator

from .socket_process import SocketProcess, main_of

CHART_SOCKET = "SAASKPI_CHART_SOCKET"  # the environment variable naming the server's socket ("off": no server)
READY_TIMEOUT = 30.0
TIMEOUT = 120.0  # a chart the server has not drawn by then is drawn by the kernel


def draw(spec: dict, vl_version: str) -> str:
    """The SVG of Vega-Lite `spec`, drawn by vl-convert in this process."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(spec, vl_version=vl_version)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:  # one request per line: {"spec": ..., "vl_version": ...}
            try:
                request = json.loads(line)
                reply = {"svg": draw(request["spec"], request["vl_version"])}
            except Exception as err:  # noqa: BLE001  (vl-convert's error goes back to the kernel, which raises it)
                reply = {"error": f"{type(err).__name__}: {err}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(path: str) -> None:
    """Start vl-convert, then answer requests on the Unix socket `path` (created when ready) until terminated."""
    draw({"data": {"values": [{"a": 1}]}, "mark": "point"}, "6_4")  # the engine's start, before the first kernel asks
    tmp = f"{path}.tmp"
    with _Server(tmp, _Handler) as server:
        os.replace(tmp, path)  # the socket appears only once it listens
        server.serve_forever(poll_interval=0.5)


class ChartError(RuntimeError):
    """vl-convert's own error, from the chart server."""


def drawn_by_server(spec: dict, vl_version: str) -> str | None:
    """The SVG of `spec` from the chart server named in the environment, or None when there is none to ask (the
    caller draws it). vl-convert's error on the spec is raised as ChartError."""
    path = os.environ.get(CHART_SOCKET, "off")
    if path == "off":
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(TIMEOUT)
            conn.connect(path)
            conn.sendall(json.dumps({"spec": spec, "vl_version": vl_version}).encode() + b"\n")
            with conn.makefile("rb") as answer:
                reply = json.loads(answer.readline())
    except (OSError, ValueError):
        return None
    if "error" in reply:
        raise ChartError(reply["error"])
    return reply["svg"]


@contextlib.contextmanager
def charts_drawn_by_one_process(enabled: bool = True) -> Iterator[str | None]:
    """Within the block, kernels this process starts draw their static charts through one chart server (its socket
    in `CHART_SOCKET`); the server is stopped after it. Yields the socket, or None when disabled or it did not start
    (the kernels then draw their own)."""
    given = os.environ.get(CHART_SOCKET)
    if not enabled or given:  # off, or already one (this process runs inside a snapshot's block)
        yield None if not enabled or given == "off" else given
        return
    server = SocketProcess("chart_server", "charts").start(quiet=True)
    ready = server.wait_until_listening(READY_TIMEOUT)
    if ready:
        os.environ[CHART_SOCKET] = server.path
    try:
        yield server.path if ready else None
    finally:
        os.environ.pop(CHART_SOCKET, None)
        server.stop()


def main(argv: list[str] | None = None) -> int:
    return main_of("chart_server", serve, argv)


if __name__ == "__main__":
    sys.exit(main())
