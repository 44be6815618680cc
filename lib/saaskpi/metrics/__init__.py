"""Metric areas; importing this package registers and validates every metric.

A company's own metrics and tables live in `parameters/metrics/*.py` (or the folder named by the
environment variable SAASKPI_METRICS_DIR): each file is imported here, after the built-in areas, so
its `@metric` and `@table` functions appear in tiles, `saaskpi metrics`, snapshots and docs/metrics.md
like the built-in ones (docs/analysts.md shows one).
"""

import importlib.util
import os
import sys
from pathlib import Path

from .. import params, paths
from ..params import Conventions

# isort: off
# registration; revenue first: its tables and metrics lead their area's lists (docs/metrics.md)
from . import revenue  # noqa: F401

# isort: on
from . import accounts, cohorts, cs_load, events, funnel, health, lifecycle, success, unit_economics, usage  # noqa: F401
from .registry import METRICS, TABLE_FUNCS, Metric, RegistryError, TableSpec, metric, table, validate_registry


def _load_own_metrics(folder: Path) -> list[str]:
    """Import every `*.py` in `folder` (sorted by name) as `saaskpi_own_metrics.<stem>`; returns the module names."""
    loaded = []
    for file in sorted(folder.glob("*.py")) if folder.is_dir() else []:
        name = f"saaskpi_own_metrics.{file.stem}"
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None  # a .py file always has one
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except RegistryError:
            del sys.modules[name]
            raise
        except Exception as err:
            del sys.modules[name]
            raise RegistryError(
                f"{file}: could not be loaded as metric definitions: {type(err).__name__}: {err}"
            ) from None
        loaded.append(name)
    return loaded


OWN_METRICS_DIR = Path(os.environ.get("SAASKPI_METRICS_DIR") or paths.PARAMETERS_DIR / "metrics")
_load_own_metrics(OWN_METRICS_DIR)


def _segment_targets() -> dict[str, set[str]]:
    """The metric names each segment file sets a target for; a standing target in targets.yaml beside them is an
    error (a target is declared on its metric; segment files override it): that file holds dated goals only."""
    targets_file = paths.PARAMETERS_DIR / "targets.yaml"
    if targets_file.exists() and set(params.read_yaml(targets_file)) - {"goals"}:
        raise RegistryError(
            f"{targets_file}: targets are declared once, on their metric "
            "(docs/metrics.md); override them per segment in parameters/segments/*.yaml (this file holds dated "
            "`goals` only)"
        )
    return {f"segments/{name}.yaml": set(params.segment(name).targets) for name in params.segment_names()}


# registration: the forecast and driver tables (issue 22); growth, plan vs actual, dated goals, cash, sales, churn
# reasons, comparisons, spikes, voice of the customer, practices (issue 25)
from . import cash, churn_reasons, comparisons, drivers, forecast, growth, plan, review, sales, service, voice  # noqa: E402, F401, I001

validate_registry(set(Conventions.model_fields), _segment_targets())

__all__ = ["METRICS", "TABLE_FUNCS", "Metric", "RegistryError", "TableSpec", "metric", "table"]
