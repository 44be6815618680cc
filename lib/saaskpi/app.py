"""Serving the notebooks as Voila apps: loopback by default; beyond it only with a token.

`saaskpi app` runs `python -m saaskpi.app VOILA-ARGS`, the Voila server of `app_server` (closing a tab ends its
kernel, a cap on kernels with a busy page past it, no tracebacks over the websocket, readable errors, bounded
kernel polling), and stops it with everything it started when it is itself stopped (Ctrl-C, SIGTERM, SIGHUP).
Idle-kernel culling and the cap are set on that command line; the other server settings (preheated kernels,
hidden tracebacks, execution timeout, lab-only extensions denied) live in `voila.json` at the project root,
which Voila reads from the directory it starts in.

The apps show the notebooks' default source (the demo) unless `saaskpi app --source` names another: it is
validated before the server starts (a source that fails validation stops it with every problem listed), then
handed to the server's kernels in their environment (`APP_SOURCE`, `APP_ENGINE`), where `open_workbook` reads it
in place of the notebook's own.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from . import paths
from .errors import ParameterError

LOOPBACK = "127.0.0.1"
MAX_KERNELS = 12  # ~650 MB each on the demo: about 8 GB of a 24 GB machine, the rest for the server and a snapshot
IDLE_TIMEOUT = 300  # seconds a kernel may sit idle, even with its page open, before it is shut down
CULL_INTERVAL = 30  # seconds between two checks for idle kernels
FORWARDED = (signal.SIGTERM, signal.SIGHUP)  # passed on as SIGTERM; Ctrl-C reaches the server from the terminal
# the source and engine of every app page, in the environment of the server and so of its kernels (set only by
# `saaskpi app --source`; a notebook run anywhere else keeps its own `source` parameter)
APP_SOURCE = "SAASKPI_APP_SOURCE"
APP_ENGINE = "SAASKPI_APP_ENGINE"


def voila_command(
    port: int = 8866,
    expose: bool = False,
    token: str = "",
    max_kernels: int = MAX_KERNELS,
    idle_timeout: int = IDLE_TIMEOUT,
    notebooks: Path | None = None,
) -> tuple[list[str], str]:
    """The Voila command line for the apps (`notebooks`: the folder served, the project's notebooks by default),
    and the token people need (empty on loopback without one)."""
    if not 1 <= port <= 65535:
        raise ParameterError(f"--port must be 1-65535, got {port}.")
    if max_kernels < 1:
        raise ParameterError(f"--max-kernels must be at least 1, got {max_kernels}.")
    if idle_timeout < 1:
        raise ParameterError(f"--idle-timeout must be at least 1 second, got {idle_timeout}.")
    if expose and not token:
        token = secrets.token_urlsafe(24)
    cmd = [
        sys.executable,
        "-m",
        "saaskpi.app",
        str(notebooks or paths.NOTEBOOKS_DIR),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={'0.0.0.0' if expose else LOOPBACK}",
        # kernels talk to the server over Unix sockets in its private folder of connection files, not TCP ports:
        # a TCP port picked for a kernel could be taken (by any connection on the machine) before the kernel bound
        # it, and the kernel then failed five restarts on the same port; no other local user can reach the sockets
        "--KernelManager.transport=ipc",
        "--show_tracebacks=False",
        f"--SaasKpiVoila.max_kernels={max_kernels}",
        f"--MappingKernelManager.cull_idle_timeout={idle_timeout}",
        f"--MappingKernelManager.cull_interval={min(CULL_INTERVAL, idle_timeout)}",
        "--MappingKernelManager.cull_connected=True",
    ]
    if token:
        cmd.append(f"--token={token}")
    return cmd, token


def end_with(parent: int) -> None:
    """In the server process, before Voila starts: receive SIGTERM if `saaskpi app` (`parent`) dies, even by
    SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # it died before the call
            os.kill(os.getpid(), signal.SIGTERM)


def app_environment(source: str = "", engine: str = "polars") -> dict[str, str]:
    """The server's environment: this process's, with the apps' source and engine when `source` is given (after
    validating it here: a bad source stops `saaskpi app` before any page shows it)."""
    env = {k: v for k, v in os.environ.items() if k not in (APP_SOURCE, APP_ENGINE)}
    if not source:
        return env
    from .sources import shown
    from .workbook import open_workbook

    # validated here (a SourceError or DataContractError lists every problem), opened on the month the apps open
    wb = open_workbook(source, "all", "", interactive=False, engine=engine)
    note = f"Apps show source {shown(source)} (engine {engine}), month {wb.month_label}"
    if wb.is_stored("monthly_recurring_revenue"):  # shown by the executive summary: its run filled the store
        print(f"{note}: read from the results store.", file=sys.stderr)
    else:
        fill = f"saaskpi fill --source {shown(source)}" + (f" --engine {engine}" if engine != "polars" else "")
        print(
            f"{note}: not in the results store yet, so each page computes it on its first visit (10-20 s for the "
            f"largest pages at 50M usage events); `{fill}` computes every page now.",
            file=sys.stderr,
        )
    return env | {APP_SOURCE: source, APP_ENGINE: engine}


def serve(
    port: int = 8866,
    expose: bool = False,
    token: str = "",
    max_kernels: int = MAX_KERNELS,
    idle_timeout: int = IDLE_TIMEOUT,
    source: str = "",
    engine: str = "polars",
) -> int:
    """Run the Voila server until interrupted (its pages on `source` with `engine` when given, else on the
    notebooks' default source); a SIGTERM or SIGHUP to this process stops the server and its kernels, and
    returns once they are gone."""
    cmd, token = voila_command(port, expose, token, max_kernels, idle_timeout)
    env = app_environment(source, engine)
    host = "this machine's address" if expose else LOOPBACK
    print(f"Apps on http://{host}:{port}/" + (f"?token={token}" if token else ""), file=sys.stderr)
    parent = os.getpid()
    server = subprocess.Popen(cmd, cwd=paths.ROOT, env=env, preexec_fn=lambda: end_with(parent))
    previous = {
        sig: signal.signal(sig, lambda _signum, _frame: server.send_signal(signal.SIGTERM)) for sig in FORWARDED
    }
    try:
        while True:
            try:
                return server.wait()
            except KeyboardInterrupt:  # the terminal's Ctrl-C reached the server too: wait for it to stop
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":  # the Voila server process
    from .app_server import main

    sys.exit(main())
