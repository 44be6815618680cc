"""Wall time of the monthly snapshot (every notebook x 4 segments, demo scale) next to its floor:
the same number of notebooks that only import the libraries, run the same way.

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
from saaskpi.snapshot import notebook_names, take_snapshot  # noqa: E402

WORKERS = 2


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
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SAASKPI_CACHE_DIR"] = str(Path(tmp) / "cache")  # start from an empty cache; kernels inherit it
        floor_dir = Path(tmp) / "notebooks"
        floor_dir.mkdir()
        import_only(floor_dir, names)
        t = time.perf_counter()
        take_snapshot(
            month,
            str(paths.DEMO_DIR),
            segments,
            workers=WORKERS,
            reports=Path(tmp) / "floor",
            notebooks_dir=floor_dir,
            progress=False,
        )
        floor = time.perf_counter() - t
        t = time.perf_counter()
        snap = take_snapshot(
            month, str(paths.DEMO_DIR), segments, workers=WORKERS, reports=Path(tmp) / "real", progress=False
        )
        real = time.perf_counter() - t
    runs = len(names) * len(segments)
    text = (
        f"Run {dt.date.today()} on {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}: "
        f"{runs} runs ({len(names)} notebooks x {len(segments)} segments), {WORKERS} workers, default demo.\n\n"
        f"| | wall time |\n|---|---|\n| snapshot | {real:.1f} s |\n| floor (import-only notebooks, same runner) | {floor:.1f} s |\n"
        f"| ratio | {real / floor:.2f}x (goal: within 1.5x) |\n\n"
        f"{len(snap.failed)} run(s) failed."
    )
    write_section("snapshot", "Monthly snapshot", text)
    print(text)


if __name__ == "__main__":
    main()
