"""Every default path of the project, derived from the package location (never the cwd)."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent.parent
DATA_DIR = ROOT / "data"
DEMO_DIR = DATA_DIR / "demo"
PARAMETERS_DIR = ROOT / "parameters"
SEGMENTS_DIR = PARAMETERS_DIR / "segments"
CONVENTIONS_FILE = PARAMETERS_DIR / "conventions.yaml"
TARGETS_FILE = PARAMETERS_DIR / "targets.yaml"
EXECUTIVE_FILE = PARAMETERS_DIR / "executive.yaml"
CUSTOMER_SUCCESS_FILE = PARAMETERS_DIR / "customer_success.yaml"
HEALTH_SCORE_FILE = PARAMETERS_DIR / "health_score.yaml"
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
