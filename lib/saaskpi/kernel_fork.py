"""App kernels forked from a warm process (issue 19): a kernel that starts from scratch spends about 2 s of CPU
before it runs the page's first cell (ipykernel starting, then the workbook's imports: Altair, pandas, Polars,
pandera, ipywidgets), and holds its own copy of every imported module (about 200 MiB).

Under `saaskpi app` a **fork server** (`python -m saaskpi.kernel_fork SOCKET`, started by the app server) imports
all of that once and waits on a Unix socket. `ForkProvisioner`, the app server's kernel provisioner, asks it for
each kernel: the fork server forks, and the child becomes an ordinary ipykernel (its own session, environment,
working directory and connection file, exactly those of the kernel jupyter_client would have started). The child
shares the imported modules' memory with the fork server until it writes to it (copy on write).

What keeps a fork safe:
- The fork server runs no event loop, opens no ZeroMQ context and computes nothing: it only imports. The threads
  the imports start are the memory allocators' (jemalloc's background threads, which take their locks around a
  fork) and OpenBLAS's (one thread, told to stay at one: `OPENBLAS_NUM_THREADS=1`); Polars' worker pool is not
  started until a kernel first runs a query, in the kernel.
- The child resets the fork server's signal handlers, starts a new session and leaves the socket before it runs
  ipykernel; it never returns to the fork server's loop.
- A kernel's death is seen through a pidfd (no race with a reused pid); the fork server reaps its children and
  keeps their exit codes for the provisioner.

When the fork server is not running (not started, failed to import, or gone), the provisioner starts the kernel
as jupyter_client does (`LocalProvisioner`): forking is a speed-up, never a requirement. `saaskpi app` starts the
fork server unless voila.json says `"SaasKpiVoila": {"fork_kernels": false}`; a snapshot starts one for its
notebooks (`forked_kernels`) unless `saaskpi snapshot --no-fork-kernels`. The fork server itself is tested in
`tests/test_kernel_fork.py`, the apps with it in the browser tests, the snapshot's in `tests/test_snapshot.py`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import setproctitle
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner

from .socket_process import SocketProcess, main_of

NAME = "saaskpi-fork"  # the provisioner's name (registered by `register()`)
READY_TIMEOUT = 30.0  # seconds a kernel waits for a fork server still importing (about 2 s) before it starts cold
# what the app pages import (the DuckDB and Spark engines are imported by a kernel that uses them)
WARM_MODULES = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.comm",
    "saaskpi.workbook",
    "saaskpi.pages",
    "saaskpi.widgets",
    "saaskpi.charts",
    "ipywidgets",
    "anywidget",
    # the cohort page's survival band (cohorts.kaplan_meier): 1 s to import in each kernel that draws it, once
    # here (53 MB, shared by every forked kernel until one writes to it)
    "scipy.stats",
)
KERNEL_LAUNCHER = "ipykernel_launcher"
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the fork server (its own process)
def warm_up() -> None:
    """Import what the app kernels use (in the fork server, once)."""
    from .kernel_imports import import_pandera

    for module in WARM_MODULES:
        importlib.import_module(module)
    import_pandera()


def serve(path: str) -> None:
    """Warm up, then fork a kernel for every request on the Unix socket at `path` until the parent dies or the
    fork server is told to stop (SIGTERM)."""
    parent = os.getppid()
    exits: dict[int, int] = {}

    def reap(_signum=None, _frame=None) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            exits[pid] = os.waitstatus_to_exitcode(status)

    # set up here, while the environment is the one the process started with (a child replaces it, after which
    # setproctitle can no longer find the memory it rewrites)
    setproctitle.setproctitle(setproctitle.getproctitle())
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", cwd)]  # a kernel puts its own folder first (below)
    warm_up()
    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal: the app server stops its kernels, then us
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.replace(path + ".tmp", path)  # the socket appears once the fork server can fork
    listener.listen(64)
    listener.settimeout(1.0)
    try:
        while os.getppid() == parent:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                _answer(conn, listener, exits, reap)
    finally:
        listener.close()
        Path(path).unlink(missing_ok=True)


def _answer(conn: socket.socket, listener: socket.socket, exits: dict[int, int], reap) -> None:
    """One request: `fork` (a kernel; replies its pid) or `exit` (a child's exit code, None if unknown)."""
    pid = 0
    try:
        conn.settimeout(10)
        request = json.loads(_read_line(conn))
        if request["op"] == "fork":
            pid = os.fork()
            if pid == 0:
                _become_kernel(listener, conn, request)  # never returns
            reply: dict[str, Any] = {"pid": pid}
        elif request["op"] == "exit":
            reap()
            reply = {"code": exits.pop(int(request["pid"]), None)}
        else:
            reply = {"error": f"unknown request {request['op']!r}"}
        conn.sendall(json.dumps(reply).encode() + b"\n")
    except (OSError, ValueError, KeyError, TypeError) as problem:  # a bad request, or its sender gone
        print(f"saaskpi fork server: request refused ({problem!r})", file=sys.stderr)
        if pid:  # forked, but nobody will manage that kernel
            os.kill(pid, signal.SIGKILL)


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _become_kernel(listener: socket.socket, conn: socket.socket, request: dict) -> None:
    """In the forked child: the process jupyter_client would have started (`python -m ipykernel_launcher -f
    <connection file>` in the kernel's folder, with its environment), then exit; never back to the server loop."""
    code = 1
    try:
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a new Python's (ipykernel sets its own)
        listener.close()
        conn.close()
        os.setsid()  # its own process group, as jupyter_client starts kernels: signals reach it and what it starts
        os.chdir(request["cwd"])
        os.environ.clear()
        # its parent is the fork server: ipykernel ends the kernel when the process it names is gone
        os.environ.update({**request["env"], "JPY_PARENT_PID": str(os.getppid())})
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        if request.get("log"):  # the kernel's own output goes where its manager sends it (a snapshot's run log)
            log_fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.close(log_fd)
        sys.path.insert(0, request["cwd"])  # as `python -m` puts the kernel's working folder first
        sys.argv = [KERNEL_LAUNCHER, *request["argv"]]
        setproctitle.setproctitle(" ".join([sys.executable, "-m", *sys.argv]))  # `ps` shows the kernel's command
        importlib.invalidate_caches()
        from ipykernel import kernelapp

        # its default was read from the environment when ipykernel was imported (in the fork server): the process
        # the kernel watches, to end with it
        app = kernelapp.IPKernelApp.instance(parent_handle=os.getppid())
        app.initialize()
        after_kernel_started()
        app.start()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def after_kernel_started() -> None:
    """What the warm modules do when imported in a kernel, and could not do in the fork server (no kernel yet):
    ipywidgets registers its comm targets (without them, a page's requests for the widgets' state go unanswered)."""
    import ipywidgets

    ipywidgets.register_comm_target()


def main(argv: list[str] | None = None) -> int:
    return main_of("kernel_fork", serve, argv)


# --------------------------------------------------------------------------- in the app server's process
class ForkServer(SocketProcess):
    """The fork server process, seen from the app server: `start()` runs it (and makes it the one the provisioner
    asks), `stop()` ends it; every kernel it forked then ends by its own parent-process check, as jupyter_client's
    kernels do when the server dies."""

    current: ForkServer | None = None  # the one this process started and has not stopped

    def __init__(self, folder: str | None = None):
        super().__init__("kernel_fork", "fork", folder)

    def start(self, env: dict[str, str] | None = None, quiet: bool = False) -> ForkServer:
        # its kernels' BLAS: one thread, as forked
        super().start({**(env or os.environ), "OPENBLAS_NUM_THREADS": "1"}, quiet)
        ForkServer.current = self
        return self

    async def ready(self, timeout: float = READY_TIMEOUT) -> bool:
        """Whether the fork server listens, waiting up to `timeout` seconds while it imports."""
        end = time.monotonic() + timeout
        while self.alive() and not os.path.exists(self.path) and time.monotonic() < end:
            await asyncio.sleep(0.05)
        return self.listening()

    def stop(self) -> None:
        if ForkServer.current is self:
            ForkServer.current = None
        super().stop()


async def _ask(path: str, request: dict, timeout: float = 30) -> dict:
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        return json.loads(await asyncio.wait_for(reader.readline(), timeout))
    finally:
        writer.close()


class ForkedKernel:
    """A forked kernel, with the part of `subprocess.Popen` jupyter_client's provisioner uses (`pid`, `poll`,
    `wait`, `send_signal`, `kill`, `terminate`). It is the fork server's child: its end is seen through a pidfd,
    and its exit code asked of the fork server."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, socket_path: str):
        self.pid, self.socket_path = pid, socket_path
        self.returncode: int | None = None
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # ended (and reaped) already
            self.pidfd, self.returncode = None, self._exit_code()

    def poll(self) -> int | None:
        if self.returncode is None and self.pidfd is not None:
            ended, _, _ = select.select([self.pidfd], [], [], 0)
            if ended:
                os.close(self.pidfd)
                self.pidfd = None
                self.returncode = self._exit_code()
        return self.returncode

    def _exit_code(self) -> int:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(2)
                conn.connect(self.socket_path)
                conn.sendall(json.dumps({"op": "exit", "pid": self.pid}).encode() + b"\n")
                code = json.loads(_read_line(conn)).get("code")
        except (OSError, ValueError):
            code = None
        return -signal.SIGKILL if code is None else int(code)  # unknown: the fork server is gone (and so is it)

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
            time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def forkable(cmd: list[str]) -> list[str] | None:
    """The kernel's arguments when `cmd` starts ipykernel with this Python (`python -m ipykernel_launcher ...`),
    else None (another kernel, another interpreter: started as jupyter_client starts it)."""
    if (
        len(cmd) >= 3
        and cmd[1:3] == ["-m", KERNEL_LAUNCHER]
        and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)
    ):
        return cmd[3:]
    return None


class ForkProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, with the kernel forked by the fork server when one runs."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        server, argv = ForkServer.current, forkable(cmd)
        if server is None or argv is None or not await server.ready():
            return await super().launch_kernel(cmd, **kwargs)
        env = kwargs.get("env") or dict(os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        request = {"op": "fork", "argv": argv, "env": dict(env), "cwd": cwd}
        out = kwargs.get("stdout")
        name = getattr(out, "name", None)
        if out is not None and out is kwargs.get("stderr") and isinstance(name, str) and os.path.isfile(name):
            request["log"] = os.path.abspath(name)  # a file both streams go to (the snapshot's kernel log)
        try:
            reply = await _ask(server.path, request)
            pid = int(reply["pid"])
        except (TimeoutError, OSError, ValueError, KeyError) as problem:
            log.warning("Fork server unavailable (%s): kernel started from scratch", problem)
            return await super().launch_kernel(cmd, **kwargs)
        try:
            kernel = ForkedKernel(pid, server.path)
        except OSError as problem:  # no pidfd (Linux before 5.3): this kernel cannot be watched, so it goes
            os.kill(pid, signal.SIGKILL)  # before it binds the sockets the kernel started instead needs
            log.warning("Forked kernel cannot be watched (%s): kernel started from scratch", problem)
            return await super().launch_kernel(cmd, **kwargs)
        self.process = kernel  # type: ignore[assignment]  # Popen's interface, as LocalProvisioner uses it
        self.pid = self.pgid = kernel.pid  # the child started its own session
        self.cwd = cwd
        return self.connection_info


def register(name: str = NAME) -> str:
    """Make `ForkProvisioner` (or the provisioner `name`) the provisioner of every kernel this process starts (the
    app server's); returns the default it replaces."""
    from importlib.metadata import EntryPoint

    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    factory = KernelProvisionerFactory
    factory.provisioners[NAME] = EntryPoint(NAME, f"{__name__}:ForkProvisioner", factory.GROUP_NAME)
    before = factory.instance().default_provisioner_name
    factory.instance().default_provisioner_name = name
    return before


@contextmanager
def forked_kernels(enabled: bool = True) -> Iterator[ForkServer | None]:
    """Within the block, kernels this process starts are forked (the snapshot's notebooks: each kernel saves the
    1.5-2 s of starting ipykernel and importing the workbook): from the fork server this process already runs,
    else from one started for the block and stopped after it; then kernels start as before. Disabled: nothing
    changes."""
    if not enabled:
        yield None
        return
    before = register()
    running = ForkServer.current if ForkServer.current is not None and ForkServer.current.alive() else None
    server = running or ForkServer().start()
    try:
        yield server
    finally:
        if running is None:
            server.stop()
        register(before)


if __name__ == "__main__":
    sys.exit(main())
