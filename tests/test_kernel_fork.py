"""App kernels forked from a warm fork server (kernel_fork.py): each is an ordinary ipykernel with the folder,
environment and connection file jupyter_client gave it, interrupts and shutdowns reach it, its end is seen, and
without a fork server kernels start as jupyter_client starts them."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import psutil
import pytest
from jupyter_client import AsyncKernelManager

from saaskpi import kernel_fork, paths

NOTEBOOKS = str(paths.NOTEBOOKS_DIR)


@pytest.fixture(scope="module")
def fork_server():
    kernel_fork.register()
    server = kernel_fork.ForkServer().start()
    assert asyncio.run(server.ready()), "the fork server did not start"
    yield server
    server.stop()


def wait_for(condition, timeout: float = 20) -> bool:
    """Whether `condition()` holds within `timeout` seconds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


async def run(km: AsyncKernelManager, code: str, timeout: float = 60) -> tuple[str, str]:
    """Execute `code`; its printed output and the reply's status."""
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=timeout)
        reply = await client.execute(code, reply=True, timeout=timeout)
        printed = []
        while True:
            try:
                msg = await client.get_iopub_msg(timeout=1)
            except Exception:  # queue empty: everything printed has arrived
                break
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])
        return "".join(printed), reply["content"]["status"]
    finally:
        client.stop_channels()


def test_forkable_is_ipykernel_with_this_python_only():
    assert kernel_fork.forkable([sys.executable, "-m", "ipykernel_launcher", "-f", "/tmp/k.json"]) == [
        "-f",
        "/tmp/k.json",
    ]
    assert kernel_fork.forkable(["/usr/bin/python3.9", "-m", "ipykernel_launcher", "-f", "k.json"]) is None
    assert kernel_fork.forkable([sys.executable, "-m", "other_kernel", "-f", "k.json"]) is None
    assert kernel_fork.forkable(["R", "--slave"]) is None


def test_a_forked_kernel_is_the_kernel_jupyter_client_would_have_started(fork_server):
    async def scenario():
        km = AsyncKernelManager(kernel_name="python3")
        await km.start_kernel(cwd=NOTEBOOKS, env={**os.environ, "SAASKPI_PROBE": "seen"})
        try:
            kernel = km.provisioner.process
            assert isinstance(kernel, kernel_fork.ForkedKernel)
            assert psutil.Process(kernel.pid).ppid() == fork_server.process.pid
            # `ps` shows the kernel's command, with its connection file (how tests and operators find kernels), once
            # the child has taken it: start_kernel returns when the fork server has forked, not when the child has
            # got that far (on a loaded machine it was still the fork server's title)
            assert wait_for(
                lambda: os.path.basename(km.connection_file) in " ".join(psutil.Process(kernel.pid).cmdline())
            )
            code = (
                "import os, sys, polars as pl\n"
                "print(os.getcwd(), os.environ['SAASKPI_PROBE'], sys.path[0])\n"
                # Polars' worker pool starts in the kernel, after the fork: a group-by runs (no inherited lock)
                "print(pl.DataFrame({'a': [1, 2, 2]}).group_by('a').len().sort('a')['len'].to_list())\n"
                "print(os.environ['JPY_PARENT_PID'] == str(os.getppid()))\n"
                # what ipywidgets registers when imported in a kernel (the fork server imported it before any)
                "targets = get_ipython().kernel.comm_manager.targets\n"
                "print(sorted(t for t in targets if t.startswith('jupyter.widget')))"
            )
            printed, status = await run(km, code)
            assert status == "ok"
            # 2 groups: a=1 once, a=2 twice
            assert printed.split("\n")[:4] == [
                f"{NOTEBOOKS} seen {NOTEBOOKS}",
                "[1, 2]",
                "True",
                "['jupyter.widget', 'jupyter.widget.control']",
            ]

            # an interrupt reaches it (SIGINT to its own process group)
            client = km.client()
            client.start_channels()
            await client.wait_for_ready(timeout=30)
            msg_id = client.execute("import time; time.sleep(60)")
            await asyncio.sleep(1)
            await km.interrupt_kernel()
            reply = await client.get_shell_msg(timeout=20)
            assert reply["parent_header"]["msg_id"] == msg_id
            assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
            client.stop_channels()
        finally:
            await km.shutdown_kernel(now=False)
        assert not psutil.pid_exists(kernel.pid) or psutil.Process(kernel.pid).status() == psutil.STATUS_ZOMBIE
        assert kernel.returncode == 0  # a clean shutdown, as the fork server saw it

    asyncio.run(scenario())


def test_a_killed_kernel_is_seen_dead_with_its_signal(fork_server):
    async def scenario():
        km = AsyncKernelManager(kernel_name="python3", autorestart=False)
        await km.start_kernel(cwd=NOTEBOOKS)
        kernel = km.provisioner.process
        assert await km.is_alive()
        os.kill(kernel.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while await km.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not await km.is_alive()
        assert kernel.returncode == -signal.SIGKILL
        await km.shutdown_kernel(now=True)

    asyncio.run(scenario())


def test_without_a_fork_server_kernels_start_as_jupyter_client_starts_them():
    async def scenario():
        kernel_fork.register()
        assert kernel_fork.ForkServer.current is None or not kernel_fork.ForkServer.current.alive()
        km = AsyncKernelManager(kernel_name="python3")
        await km.start_kernel(cwd=NOTEBOOKS)
        try:
            assert not isinstance(km.provisioner.process, kernel_fork.ForkedKernel)
            assert psutil.Process(km.provisioner.pid).ppid() == os.getpid()
            assert (await run(km, "print(1 + 1)")) == ("2\n", "ok")
        finally:
            await km.shutdown_kernel(now=True)

    previous = kernel_fork.ForkServer.current
    kernel_fork.ForkServer.current = None
    try:
        asyncio.run(scenario())
    finally:
        kernel_fork.ForkServer.current = previous


def test_kernels_end_with_their_fork_server():
    kernel_fork.register()  # this test may run first in its process (pytest-xdist)
    server = kernel_fork.ForkServer().start()
    pid = 0
    try:

        async def start() -> int:
            assert await server.ready()
            km = AsyncKernelManager(kernel_name="python3")
            await km.start_kernel(cwd=NOTEBOOKS)
            await run(km, "1")
            return km.provisioner.pid

        pid = asyncio.run(start())
        kernel = psutil.Process(pid)
        assert kernel.ppid() == server.process.pid
        server.stop()  # as the app server stops it (after its kernels, normally): a kernel left over ends too
        _, alive = psutil.wait_procs([kernel], timeout=15)
        assert not alive, "a forked kernel outlived its fork server"
        assert not os.path.exists(server.path)
    finally:
        server.stop()
        if pid and psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_block_of_forked_kernels_uses_the_running_fork_server_and_leaves_it_running():
    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    factory = KernelProvisionerFactory.instance()
    kernel_fork.register()
    running = kernel_fork.ForkServer().start()  # the one this process runs (e.g. it serves the apps)
    try:
        with kernel_fork.forked_kernels() as server:  # a snapshot taken in that process
            assert server is running and factory.default_provisioner_name == kernel_fork.NAME
        assert running.alive() and kernel_fork.ForkServer.current is running  # not stopped by the block
        assert factory.default_provisioner_name == kernel_fork.NAME  # what the process had before the block
    finally:
        running.stop()
