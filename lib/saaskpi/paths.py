"""Every default path of the project, derived from the package location (never the cwd), and the one way
files are written (atomically: readers see the old file or the new one, never half of one)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent.parent
DATA_DIR = ROOT / "data"
DEMO_DIR = DATA_DIR / "demo"
PARAMETERS_DIR = ROOT / "parameters"
SEGMENTS_DIR = PARAMETERS_DIR / "segments"
CONVENTIONS_FILE = PARAMETERS_DIR / "conventions.yaml"
EXECUTIVE_FILE = PARAMETERS_DIR / "executive.yaml"
CUSTOMER_SUCCESS_FILE = PARAMETERS_DIR / "customer_success.yaml"
HEALTH_SCORE_FILE = PARAMETERS_DIR / "health_score.yaml"
FORECAST_FILE = PARAMETERS_DIR / "forecast.yaml"
TARGETS_FILE = PARAMETERS_DIR / "targets.yaml"
NOTEBOOKS_DIR = ROOT / "notebooks"
REPORTS_DIR = ROOT / "reports"
DOCS_DIR = ROOT / "docs"
METRICS_DOC = DOCS_DIR / "metrics.md"
DATA_CONTRACT_DOC = DOCS_DIR / "data-contract.md"
BENCHMARKS_DIR = ROOT / "benchmarks"


def resolve(path: str | Path) -> Path:
    """An absolute path: relative paths are taken from the project root, not the cwd."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else ROOT / p


def atomic_write(path: Path, data: str | bytes | Callable[[Path], object]) -> None:
    """Write `data` (text, bytes, or a function that writes a file at the path it is given) to a hidden file
    beside `path`, then rename it over `path` (atomic on one filesystem): readers see the old file or the new
    one, never half of one. The hidden name is this process's and thread's own; it is removed on failure."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        if callable(data):
            data(tmp)
        else:
            tmp.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_folder(staged: Path, out: Path) -> None:
    """Put the complete folder `staged` where `out` is: `out` renamed aside, `staged` renamed in, the old one
    removed (a reader sees the old folder or the new one)."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists() or out.is_symlink():
        os.replace(out, old)
    os.replace(staged, out)
    if old.is_symlink():  # `out` was a link to a folder elsewhere: the link goes, the folder it named stays
        old.unlink()
    elif old.exists():
        shutil.rmtree(old)
