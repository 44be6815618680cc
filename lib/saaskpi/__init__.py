"""SaaS KPI workbook helper library.

For analysts (docs/analysts.md):

    import saaskpi
    ctx = saaskpi.open_workbook("data/demo", segment="all", as_of="2026-10")
    ctx                                   # a short summary: source, segment, month, what it holds
    ctx.names()                           # every table and metric, with what it is
    ctx.table("mrr_movements")            # any registered table (pandas; ctx.table(name, polars=True) for Polars)
    ctx.series("net_revenue_retention")   # a metric month by month: month, value, n
    ctx.value("net_revenue_retention")    # the month's value with change, n, target and status
    ctx.source_table("subscriptions")     # a validated source table of the segment
    ctx.accounts()                        # one row per account: segment, channel, plan, cohort, ...
    ctx.where(plan="Pro").value("net_revenue_retention")  # any metric for a subset of accounts

Pages (`saaskpi.pages.<page>.show_*`) display sections; `saaskpi.metric` and `saaskpi.table` register
a company's own metrics (in parameters/metrics/*.py); `saaskpi.charts` draws with the workbook's theme,
which is on as soon as `saaskpi` is imported.
"""

from __future__ import annotations

import importlib

from .kernel_imports import defer_iri_grammar

defer_iri_grammar()  # Altair's jsonschema compiles a grammar it never uses at import: 1.6 s of every kernel

__version__ = "0.1.0"
__all__ = ["open_workbook", "pages", "METRICS", "TABLE_FUNCS", "metric", "table", "charts", "Workbook"]


def __getattr__(name: str):
    # heavy modules (metrics, charts, widgets) load on first use so that `saaskpi --help` stays fast
    if name in ("open_workbook", "Workbook"):
        from . import workbook

        return getattr(workbook, name)
    if name in ("METRICS", "TABLE_FUNCS", "metric", "table"):
        from . import metrics

        return getattr(metrics, name)
    if name in ("pages", "charts"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'saaskpi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
