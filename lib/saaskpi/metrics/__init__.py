"""Metric areas; importing this package registers and validates every metric."""
from ..params import Conventions
from . import accounts, cohorts, cs_load, funnel, health, lifecycle, revenue, success, unit_economics, usage  # noqa: F401  (registration)
from .registry import METRICS, TABLE_FUNCS, Metric, RegistryError, TableSpec, metric, table, validate_registry

validate_registry({f for f in Conventions.__dataclass_fields__})

__all__ = ["METRICS", "TABLE_FUNCS", "Metric", "RegistryError", "TableSpec", "metric", "table"]
