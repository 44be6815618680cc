"""The Voila server behind `saaskpi app` (`python -m saaskpi.app`): Voila, with what a shared server needs.

- **Closing a tab ends its kernel.** Voila's page sends `POST /voila/api/shutdown/<kernel>` on `beforeunload`
  with the `_xsrf` cookie's value, but Voila's page handler never sets that cookie, so Jupyter Server refuses
  the request (403 "'_xsrf' argument missing", voila-dashboards/voila#1458) and the kernel lives on until it is
  culled. `PageHandler` sets the cookie with the page, so the shutdown is accepted (and still protected
  against cross-site requests: another site cannot read the cookie). Chromium does not always run
  `beforeunload` when a tab is closed (a closed headless tab never did), so the page also sends the same request
  on `pagehide`; a second request for a kernel already gone is answered 204 (`ShutdownHandler`).
- **A cap on kernels.** At most `max_kernels` kernels run, the preheated ones included (their pools are trimmed
  to leave room for at least one page); past the cap a page request gets a readable "busy, retry in a moment"
  page (HTTP 503, `Retry-After`) instead of one more kernel.
- **No traceback over the websocket.** When the kernel refuses a widget value, ipywidgets sends the error with
  its traceback on IOPub. `PageSafeConnection` keeps IOPub `error` messages and `stderr` streams from the page
  (Jupyter Server's own `allow_tracebacks=False` fails on them with jupyter_server 2.21: it reads the
  replacement message from the wrong object).
- **One readable error per failure.** With tracebacks hidden, Voila replaces a failing cell's error with
  "There was an error when executing cell [n]. Please run Voila with --show_tracebacks=True ...".
  `ReadableErrorsExecutor` drops it where the workbook has already shown its readable panel, and shows a
  readable panel in its place where it has not.
- **Nothing leaves the machine.** Voila's templates link Font Awesome from a CDN; `Offline` removes every
  stylesheet link to another host from the pages it serves (the apps use no icon font), so a page makes no
  request off the machine.
- **The landing page is the executive summary** (its navigation bar links every app; a query string such as
  `?segment=smb` is kept); Voila's file listing stays at `/voila/tree/`.
- **The Vega bundle once per page.** `VegaBundleHandler` serves Altair's offline chart module (Vega bundled in,
  0.9 MB) at a versioned path, and the server tells its kernels that path (`SAASKPI_VEGA_MODULE`), so every chart
  widget carries a loader of a few lines instead of the whole bundle (`kernel_imports.enable_offline_charts`).
- **Kernels forked warm** (`fork_kernels`; `"SaasKpiVoila": {"fork_kernels": false}` in voila.json switches it
  off): kernels (the preheated ones too) are forked from a process that has imported the workbook
  (`kernel_fork`), instead of each starting Python, ipykernel and the imports from scratch.
- **Page templates compiled once.** Voila makes a Jinja environment per page request; `PageExporter` gives them
  one bytecode cache (`TemplateBytecode`), so the templates are not compiled again for every page.
- **Kernels on Unix sockets** (`--KernelManager.transport=ipc`, set by `saaskpi app`): jupyter_client picks a
  kernel's five TCP ports by binding port 0 and letting go, and the kernel binds them when it starts; in between
  any connection made on the machine could take one as its local port, and the kernel then
  failed ("Address already in use") at every restart, since a restart keeps the ports (seen in the browser tests
  with several kernels starting at once). Unix sockets in the server's private folder cannot collide.
- Kernel replies are polled in bounded slices (`kernel_polling`).

Idle-kernel culling is Jupyter Server's (`MappingKernelManager.cull_*`), set on the command line by `saaskpi app`.
"""

from __future__ import annotations

import html
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import jinja2
import nbformat
import tornado.web
from jupyter_server.services.kernels.connection.base import BaseKernelWebsocketConnection
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyter_server.utils import url_path_join
from traitlets import Bool, Integer, Type
from voila.app import Voila
from voila.execute import VoilaExecutor
from voila.exporter import VoilaExporter
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler

from . import kernel_fork
from .kernel_imports import VEGA_MODULE_ENV, vega_bundle, vega_module_path

DEFAULT_MAX_KERNELS = 12
RETRY_SECONDS = 30
LANDING_PAGE = "voila/render/00_executive_summary.ipynb"
OFF_MACHINE_STYLESHEET = re.compile(r'<link rel="stylesheet" href="https?://[^"]*"[^>]*>\s*')
READABLE_PANEL_CLASSES = ('class="saaskpi-error"', 'class="saaskpi-note"')  # what widgets.error_panel shows


# --------------------------------------------------------------------------- the kernel cap
def pool_sizes(pools_config: dict, notebooks: list[str]) -> dict[str, int]:
    """Preheated kernels per notebook, as Voila's kernel manager reads `kernel_pools_config`."""
    default = pools_config.get("default", {})
    return {nb: int(pools_config.get(nb, default).get("pool_size", default.get("pool_size", 1))) for nb in notebooks}


def trimmed_pools(sizes: dict[str, int], max_kernels: int) -> dict[str, int]:
    """Pool sizes that leave room for at least one page under `max_kernels` (notebooks in name order keep theirs
    first: the landing app, 00, is served preheated the longest)."""
    room, trimmed = max_kernels - 1, {}
    for nb in sorted(sizes):
        trimmed[nb] = min(sizes[nb], room)
        room -= trimmed[nb]
    return trimmed


class Capacity:
    """Kernels the pages use, against the cap: every kernel the server runs (starting, running or shutting down)
    except the preheated ones waiting in their pools; `pool` of the cap is kept for those."""

    def __init__(self, kernel_manager, max_kernels: int, pool: int):
        self.kernel_manager, self.max_kernels, self.pool = kernel_manager, max_kernels, pool
        self.starting = 0  # pages admitted whose kernel is not registered yet

    def waiting_in_pools(self) -> set[str]:
        pools = getattr(self.kernel_manager, "_pools", {})  # Voila's preheated kernels (absent without preheating)
        return {
            task.result()["kernel_id"]
            for pool in pools.values()
            for task in pool
            if task.done() and not task.cancelled() and task.exception() is None
        }

    def page_kernels(self) -> int:
        return len(set(self.kernel_manager.list_kernel_ids()) - self.waiting_in_pools()) + self.starting

    def full(self) -> bool:
        return self.page_kernels() >= self.max_kernels - self.pool

    @contextmanager
    def admitted(self):
        """Count a page as using a kernel until `release()` (its kernel is registered by then) or the end."""
        self.starting += 1
        held = [True]

        def release():
            if held[0]:
                self.starting -= 1
                held[0] = False

        try:
            yield release
        finally:
            release()


BUSY_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{retry}"><title>The apps are busy</title>
<style>body {{font-family:{font};color:{ink};margin:0;background:#f8fafc;}}
main {{max-width:560px;margin:12vh auto;padding:28px 32px;background:white;border-radius:8px;
  border-top:4px solid {accent};box-shadow:0 1px 3px rgba(0,0,0,.08);}}
h1 {{font-size:22px;margin:0 0 12px 0;}} p {{font-size:15px;line-height:1.5;color:{muted};margin:8px 0;}}
a.retry {{display:inline-block;margin-top:14px;padding:9px 16px;border-radius:6px;background:#eff6ff;color:#2563eb;
  text-decoration:none;font-weight:600;}}</style></head>
<body><main><h1>The apps are busy, retry in a moment</h1>
<p>Every app session this server runs at once ({sessions}) is in use. A session ends when its tab is closed or
after a few idle minutes.</p>
<p>This page tries again by itself every {retry} seconds.</p>
<a class="retry" href="{url}">Retry now</a></main></body></html>
"""


def busy_page(sessions: int, url: str) -> str:
    """The page shown past the kernel cap (`sessions`: the pages the cap allows at once): what happened and when
    to retry; nothing else about the server."""
    from . import theme

    return BUSY_PAGE.format(
        retry=RETRY_SECONDS,
        font=theme.FONT,
        ink=theme.INK,
        muted=theme.MUTED,
        accent=theme.STATUS["near"],
        sessions=sessions,
        url=html.escape(url, quote=True),
    )


# Sent on `pagehide` (a closed tab, a followed link, a reload): the request Voila's page sends on `beforeunload`.
SHUTDOWN_ON_PAGEHIDE = """<script>
window.addEventListener('pagehide', () => {
  const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
  const form = new FormData();
  const xsrf = document.cookie.split('; ').find((c) => c.startsWith('_xsrf='));
  form.append('_xsrf', xsrf ? xsrf.slice(6) : '');
  navigator.sendBeacon(`${config.baseUrl}voila/api/shutdown/${config.kernelId}`, form);
});
</script>
"""


class Offline:
    """A handler whose pages link no stylesheet on another host (Voila's templates ask a CDN for Font Awesome)."""

    def write(self, chunk):
        if isinstance(chunk, bytes):
            chunk = chunk.decode("utf-8")
        super().write(OFF_MACHINE_STYLESHEET.sub("", chunk) if isinstance(chunk, str) else chunk)  # type: ignore[misc]  # a mixin


class TreeHandler(Offline, TornadoVoilaTreeHandler):
    """Voila's file listing, offline."""


class LandingHandler(tornado.web.RequestHandler):
    """`/`: the executive summary, with the query string it was given."""

    def get(self):
        query = f"?{self.request.query}" if self.request.query else ""
        self.redirect(self.settings.get("base_url", "/").rstrip("/") + "/" + LANDING_PAGE + query)


class PageHandler(Offline, TornadoVoilaHandler):
    """An app page: sets the `_xsrf` cookie its closing beacon sends back, and answers 503 past the kernel cap."""

    @tornado.web.authenticated
    async def get(self, path=None):
        capacity: Capacity = self.settings["saaskpi_capacity"]
        if capacity.full():
            self.log.warning("Kernel cap of %d reached: busy page for %s", capacity.max_kernels, self.request.path)
            self.set_status(503)
            self.set_header("Retry-After", str(RETRY_SECONDS))
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.set_header("Cache-Control", "no-store")
            self.finish(busy_page(capacity.max_kernels - capacity.pool, self.request.uri))
            return
        self.xsrf_token  # noqa: B018 - reading it sets the `_xsrf` cookie (before the first byte is sent)
        # the charts' bundle fetched and evaluated while the kernel runs the notebook: a chart widget that waits
        # for it longer than anywidget's 2 s (a busy browser) fails to start and stays blank
        preload = f'<script type="module" src="{url_path_join(self.base_url, vega_module_path())}"></script></head>'
        with capacity.admitted() as release:
            async for snippet in self.get_generator(path=path):
                release()  # the page's kernel is registered before the first snippet
                snippet = snippet.replace("</head>", preload, 1)
                self.write(snippet.replace("</body>", SHUTDOWN_ON_PAGEHIDE + "</body>", 1))
                self.flush()


class VegaBundleHandler(tornado.web.RequestHandler):
    """Altair's chart module with Vega bundled in (public JavaScript, as Voila's own static files), made or read
    from the cache folder on first request; its path names the versions, so the browser keeps it for good."""

    bundle: str | None = None

    def get(self):
        if VegaBundleHandler.bundle is None:
            VegaBundleHandler.bundle = vega_bundle()
        self.set_header("Content-Type", "text/javascript; charset=UTF-8")
        self.set_header("Cache-Control", "public, max-age=31536000, immutable")
        self.finish(VegaBundleHandler.bundle)


class ShutdownHandler(VoilaShutdownKernelHandler):
    """Voila's kernel shutdown (xsrf-checked), answering 204 for a kernel that is already gone."""

    @tornado.web.authenticated
    async def post(self, kernel_id):
        if kernel_id not in self.kernel_manager:
            self.set_status(204)
            self.finish()
            return
        await super().post(kernel_id)


# --------------------------------------------------------------------------- what the page receives
class PageSafeConnection(ZMQChannelsWebsocketConnection):
    """The kernel websocket, without the kernel's error reports: IOPub `error` messages (a traceback) and
    `stderr` streams stay on the server; everything else passes unchanged."""

    def handle_outgoing_message(self, stream, outgoing_msg: list) -> None:
        channel = stream if isinstance(stream, str) else getattr(stream, "channel", None)
        if channel == "iopub" and self._is_error_report(outgoing_msg):
            return
        super().handle_outgoing_message(stream, outgoing_msg)

    def _is_error_report(self, msg_list: list) -> bool:
        _, parts = self.session.feed_identities(msg_list)  # signature, header, parent, metadata, content, ...
        msg_type = self.session.unpack(parts[1]).get("msg_type")
        return msg_type == "error" or (msg_type == "stream" and self.session.unpack(parts[4]).get("name") == "stderr")


# --------------------------------------------------------------------------- what the page shows
def readable_failure() -> dict:
    """The output shown for a failing cell that has not shown the workbook's own panel."""
    from . import theme

    text = (
        "Something went wrong: this part of the page could not be computed. Reload the page; if it persists, "
        "report it with the app's name, segment and month (the server's log has the details)."
    )
    style = (
        f"font-family:{theme.FONT};border-left:4px solid {theme.STATUS['off']};background:#fef2f2;"
        f"padding:10px 14px;margin:6px 0;color:{theme.INK};font-size:13px;"
    )
    return nbformat.v4.new_output(
        "display_data",
        data={"text/html": f'<div class="saaskpi-error" style="{style}">{html.escape(text)}</div>', "text/plain": text},
    )


class ReadableErrorsExecutor(VoilaExecutor):
    """Voila's executor, with a failing cell's hidden error replaced by nothing when the workbook has shown its
    readable panel, and by a readable panel when it has not (instead of Voila's note about tracebacks)."""

    def strip_code_cell_errors(self, cell):
        if cell["cell_type"] != "code" or not any(o["output_type"] == "error" for o in cell["outputs"]):
            return cell
        shown = any(
            mark in str(o.get("data", {}).get("text/html", ""))
            for o in cell["outputs"]
            for mark in READABLE_PANEL_CLASSES
        )
        cell["outputs"] = [o for o in cell["outputs"] if o["output_type"] != "error"]
        if not shown:
            cell["outputs"].append(readable_failure())
        return cell


class TemplateBytecode(jinja2.BytecodeCache):
    """Compiled page templates kept in memory for the server's life. Voila makes an exporter, so a Jinja
    environment, per page request, and each compiled the page templates again: 0.17 s of the server's CPU per
    page, about half of what it spent on a burst of 20 pages. Jinja checks each entry against its template's
    source before using it."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


class PageExporter(VoilaExporter):
    """Voila's exporter, with the compiled templates shared by every page (all its environments are made alike:
    asynchronous, with the same extensions)."""

    bytecode = TemplateBytecode()

    @property
    def environment(self):
        env = super().environment
        env.bytecode_cache = PageExporter.bytecode
        return env


# --------------------------------------------------------------------------- the server
class SaasKpiVoila(Voila):
    """Voila with the page handler, websocket and executor above, and a cap on kernels."""

    max_kernels = Integer(
        DEFAULT_MAX_KERNELS,
        config=True,
        help="Kernels the server runs at most, preheated ones included; past it pages get a busy page (HTTP 503).",
    )
    fork_kernels = Bool(
        True,
        config=True,
        help="Fork kernels from a process that has imported the workbook (kernel_fork.py) instead of starting "
        "each from scratch (False: every kernel starts as jupyter_client starts it).",
    )
    kernel_websocket_connection_class = Type(
        default_value=PageSafeConnection,
        klass=BaseKernelWebsocketConnection,
        config=True,
        help="The kernel websocket connection class to use.",
    )

    fork_server: kernel_fork.ForkServer | None = None

    def init_settings(self) -> dict:
        pool = self._trim_pools()
        if self.fork_kernels:  # before the kernel manager: the preheated kernels are forked too
            kernel_fork.register()
            self.fork_server = kernel_fork.ForkServer().start()
        settings = super().init_settings()
        settings["saaskpi_capacity"] = Capacity(self.kernel_manager, self.max_kernels, pool)
        return settings

    def stop(self) -> None:
        try:
            super().stop()  # the kernels first (their provisioner asks the fork server for their exit codes)
        finally:
            if self.fork_server is not None:
                self.fork_server.stop()

    def _trim_pools(self) -> int:
        """Fit the preheated pools of voila.json under the cap; returns the kernels they keep."""
        if self.max_kernels < 1:
            raise ValueError(f"max_kernels must be at least 1, got {self.max_kernels}")
        if not self.voila_configuration.preheat_kernel:
            return 0
        section = self.config.VoilaKernelManager
        pools = dict(section.get("kernel_pools_config", {}))
        notebooks = sorted(
            str(p.relative_to(self.root_dir))
            for p in Path(self.root_dir).rglob("*.ipynb")
            if ".ipynb_checkpoints" not in str(p)
        )
        sizes = pool_sizes(pools, notebooks)
        trimmed = trimmed_pools(sizes, self.max_kernels)
        if trimmed != sizes:
            self.log.warning(
                "Preheated kernels trimmed to fit max_kernels=%d: %s",
                self.max_kernels,
                {nb: n for nb, n in trimmed.items() if n},
            )
            section.kernel_pools_config = {
                "default": {"pool_size": 0},
                **{nb: {**pools.get(nb, {}), "pool_size": n} for nb, n in trimmed.items()},
            }
        return sum(trimmed.values())

    def init_handlers(self) -> list:
        ours = {
            TornadoVoilaHandler: PageHandler,
            VoilaShutdownKernelHandler: ShutdownHandler,
            TornadoVoilaTreeHandler: TreeHandler,
        }
        handlers = [(pattern, ours.get(handler, handler), *rest) for pattern, handler, *rest in super().init_handlers()]
        handlers.append((url_path_join(self.server_url, "/" + vega_module_path()), VegaBundleHandler))
        return [
            (pattern, LandingHandler)
            if pattern == self.server_url and handler is TreeHandler
            else (pattern, handler, *rest)
            for pattern, handler, *rest in handlers
        ]


def main() -> int:
    """Run the server (the command line is Voila's, plus `--SaasKpiVoila.max_kernels`)."""
    import voila.notebook_renderer

    from .kernel_polling import bounded_shell_polls

    bounded_shell_polls()
    os.environ[VEGA_MODULE_ENV] = vega_module_path()  # every kernel the server starts (preheated ones too) inherits it
    voila.notebook_renderer.VoilaExecutor = ReadableErrorsExecutor  # the classes Voila instantiates per page
    voila.notebook_renderer.VoilaExporter = PageExporter
    return SaasKpiVoila.launch_instance()


if __name__ == "__main__":
    sys.exit(main())
