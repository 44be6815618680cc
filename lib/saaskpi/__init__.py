"""SaaS KPI workbook helper library: `ctx = saaskpi.open_workbook(...)`, then `saaskpi.pages.<page>.show_*(ctx)`."""
from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["open_workbook", "pages", "METRICS"]


def __getattr__(name: str):
    # heavy modules (metrics, charts, widgets) load on first use so that `saaskpi --help` stays fast
    if name == "open_workbook":
        from .workbook import open_workbook

        return open_workbook
    if name == "METRICS":
        from .metrics import METRICS

        return METRICS
    if name == "pages":
        return importlib.import_module(".pages", __name__)
    raise AttributeError(f"module 'saaskpi' has no attribute {name!r}")
