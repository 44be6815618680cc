"""Wall time of the monthly snapshot (every notebook x 4 segments, demo scale) next to its floor:
the same number of notebooks that only import the libraries, run the same way; with the notebooks' kernels
forked from a warm process (the default) and started from scratch, side by side; and forked, with every kernel
drawing its own charts (SAASKPI_CHART_SOCKET=off) instead of the snapshot's chart server (chart_server.py).

    .venv/bin/python benchmarks/snapshot.py
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
from results import write_section  # noqa: E402

from saaskpi import params, paths  # noqa: E402
from saaskpi.chart_server import CHART_SOCKET  # noqa: E402
from saaskpi.snapshot import notebook_names, take_snapshot  # noqa: E402

WORKERS = 2
KINDS = {
    (True, True): "forked from a warm process, one chart server (default)",
    (False, True): "started from scratch, one chart server",
    (True, False): "forked, each kernel drawing its own charts",
}


def import_only(folder: Path, names: list[str]) -> None:
    """Notebooks with the same parameters cell that only import the libraries."""
    for name in names:
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(
                    'source: str = "data/demo"\nsegment: str = "all"\nas_of: str = ""\ninteractive: bool = True\nengine: str = "polars"',
                    metadata={"tags": ["parameters"]},
                ),
                nbformat.v4.new_code_cell("import saaskpi\nimport saaskpi.pages\nimport saaskpi.widgets"),
            ],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        )
        nbformat.write(nb, folder / f"{name}.ipynb")


def main() -> None:
    month = "2026-10"
    names, segments = notebook_names(), params.segment_names()
    rows, failed = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        floor_dir = Path(tmp) / "notebooks"
        floor_dir.mkdir()
        import_only(floor_dir, names)
        # kernels forked from a warm process (the default) and started from scratch, each next to its own floor
        for fork, server in ((True, True), (False, True), (True, False)):
            times = {}
            if server:
                os.environ.pop(CHART_SOCKET, None)
            else:
                os.environ[CHART_SOCKET] = "off"
            for what, notebooks_dir in (("floor", floor_dir), ("snapshot", paths.NOTEBOOKS_DIR)):
                # start from an empty cache; kernels inherit it
                os.environ["SAASKPI_CACHE_DIR"] = str(Path(tmp) / f"cache-{what}-{fork}-{server}")
                t = time.perf_counter()
                snap = take_snapshot(
                    month,
                    str(paths.DEMO_DIR),
                    segments,
                    workers=WORKERS,
                    reports=Path(tmp) / f"{what}-{fork}-{server}",
                    notebooks_dir=notebooks_dir,
                    progress=False,
                    fork_kernels=fork,
                )
                times[what] = time.perf_counter() - t
                failed += len(snap.failed)
            rows.append((KINDS[fork, server], times))
        os.environ.pop(CHART_SOCKET, None)
    runs = len(names) * len(segments)
    table = "\n".join(
        f"| {kind} | {t['snapshot']:.1f} s | {t['floor']:.1f} s | {t['snapshot'] / t['floor']:.2f}x |"
        for kind, t in rows
    )
    (_, best), (_, cold), (_, own) = rows
    text = (
        f"Run {dt.date.today()} on {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}: "
        f"{runs} runs ({len(names)} notebooks x {len(segments)} segments), {WORKERS} workers, default demo, "
        "each from an empty cache. Floor: the same runs of notebooks that only import the libraries.\n\n"
        f"| kernels | snapshot | floor | ratio |\n|---|---|---|---|\n{table}\n\n"
        f"Goal: the snapshot within 1.5x of its floor ({best['snapshot'] / best['floor']:.2f}x with the default "
        f"runner); forking the kernels takes the snapshot from {cold['snapshot']:.1f} s to {best['snapshot']:.1f} s; "
        f"the chart server from {own['snapshot']:.1f} s (each kernel drawing its own charts) to "
        f"{best['snapshot']:.1f} s.\n\n"
        f"{failed} run(s) failed."
    )
    write_section("snapshot", "Monthly snapshot", text)
    print(text)


if __name__ == "__main__":
    main()
