"""The helper processes the workbook starts, each listening on a Unix socket (`python -m saaskpi.<module> SOCKET`):
the fork server of the apps and snapshots (kernel_fork.py) and a snapshot's chart server (chart_server.py).

A helper's socket lives in a private folder of its own (mkdtemp: nobody else can connect); the helper creates it
only once it listens, ends with the process that started it (even killed: PR_SET_PDEATHSIG), and `stop()` ends
it and removes its socket and folder.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .app import end_with


class SocketProcess:
    """`python -m saaskpi.<module> <folder>/<name>.sock`, seen from the process that starts it."""

    def __init__(self, module: str, name: str, folder: str | None = None):
        self.module = module
        self.folder = folder or tempfile.mkdtemp(prefix=f"saaskpi-{name}-")
        self.path = os.path.join(self.folder, f"{name}.sock")
        self.process: subprocess.Popen | None = None

    def start(self, env: dict[str, str] | None = None, quiet: bool = False) -> SocketProcess:
        """Run it (with `env`, else this process's environment; `quiet`: its output discarded)."""
        parent = os.getpid()
        out = subprocess.DEVNULL if quiet else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"saaskpi.{self.module}", self.path],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=lambda: end_with(parent),
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def listening(self) -> bool:
        return self.alive() and os.path.exists(self.path)

    def wait_until_listening(self, timeout: float) -> bool:
        """Whether it listens, waiting up to `timeout` seconds while it starts."""
        end = time.monotonic() + timeout
        while self.alive() and not os.path.exists(self.path) and time.monotonic() < end:
            time.sleep(0.05)
        return self.listening()

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for leftover in (self.path, self.path + ".tmp"):
            Path(leftover).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # kept when something else is in it
            os.rmdir(self.folder)


def main_of(module: str, serve: Callable[[str], None], argv: list[str] | None = None) -> int:
    """The command line of a helper: `serve(SOCKET)` until terminated; 2 with a usage line when the socket is not
    given."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m saaskpi.{module} SOCKET", file=sys.stderr)
        return 2
    try:
        serve(args[0])
    except KeyboardInterrupt:
        pass
    return 0
