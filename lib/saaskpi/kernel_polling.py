"""A workaround for Voila pages that never finish rendering.

Voila runs a notebook through nbclient, which waits for each cell's reply with one long
`await socket.poll(timeout)` on the kernel's shell channel (jupyter_client's async channel). With
pyzmq's asyncio sockets that wait can miss the wakeup when the reply arrives while another
coroutine is reading the IOPub socket (zeromq/pyzmq#1558, voila-dashboards/voila#1428,
jupyter/nbclient#312): the kernel is idle, the reply is waiting, and the page hangs until the
executor's timeout. Polling in short slices bounds a missed wakeup to one slice.

`python -m saaskpi.app` (what `saaskpi app` runs) applies it in the Voila server process.
"""

from __future__ import annotations

import time
from queue import Empty

SLICE_SECONDS = 0.25


def bounded_shell_polls() -> None:
    """Make jupyter_client's async `get_msg` poll in slices of SLICE_SECONDS (same results, same timeout)."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    if getattr(AsyncZMQSocketChannel.get_msg, "_saaskpi_sliced", False):
        return

    async def get_msg(self, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE_SECONDS if deadline is None else min(SLICE_SECONDS, max(0.0, deadline - time.monotonic()))
            if await self.socket.poll(int(left * 1000)):
                return await self._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty

    get_msg._saaskpi_sliced = True  # type: ignore[attr-defined]  # marks the patch
    AsyncZMQSocketChannel.get_msg = get_msg  # type: ignore[method-assign]
