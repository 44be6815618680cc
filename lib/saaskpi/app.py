"""Serving the notebooks as Voila apps: loopback by default; beyond it only with a token.

`python -m saaskpi.app VOILA-ARGS` is Voila with the kernel-polling workaround of
`kernel_polling` applied. Server settings (preheated kernels, hidden tracebacks, idle-kernel culling, execution timeout,
lab-only extensions denied) live in `voila.json` at the project root, which Voila reads from the
directory it starts in.
"""
from __future__ import annotations

import secrets
import subprocess
import sys

from . import paths
from .errors import ParameterError

LOOPBACK = "127.0.0.1"


def voila_command(port: int = 8866, expose: bool = False, token: str = "") -> tuple[list[str], str]:
    """The Voila command line for the apps, and the token people need (empty on loopback without one)."""
    if not 1 <= port <= 65535:
        raise ParameterError(f"--port must be 1-65535, got {port}.")
    if expose and not token:
        token = secrets.token_urlsafe(24)
    cmd = [sys.executable, "-m", "saaskpi.app", str(paths.NOTEBOOKS_DIR), "--no-browser", f"--port={port}",
           f"--Voila.ip={'0.0.0.0' if expose else LOOPBACK}", "--show_tracebacks=False"]
    if token:
        cmd.append(f"--token={token}")
    return cmd, token


def serve(port: int = 8866, expose: bool = False, token: str = "") -> int:
    """Run the Voila server until interrupted."""
    cmd, token = voila_command(port, expose, token)
    host = "this machine's address" if expose else LOOPBACK
    print(f"Apps on http://{host}:{port}/" + (f"?token={token}" if token else ""), file=sys.stderr)
    return subprocess.call(cmd, cwd=paths.ROOT)


if __name__ == "__main__":  # the Voila server process: Voila's own entry point, with bounded polling
    from voila.app import main

    from .kernel_polling import bounded_shell_polls

    bounded_shell_polls()
    sys.exit(main())
