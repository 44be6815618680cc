"""One module per notebook; each `show_<section>(wb)` renders one heading's worth."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from . import (
    benchmarks,
    cohort_retention,
    cs_load,
    executive_summary,
    forecast,
    funnel,
    product_analytics,
    unit_economics,
)

__all__ = [
    "benchmarks",
    "cohort_retention",
    "cs_load",
    "executive_summary",
    "forecast",
    "funnel",
    "product_analytics",
    "unit_economics",
    "run_sections",
]


def run_sections(notebook: str | Path, wb) -> list:
    """Run a notebook's code cells in this process with `open_workbook` returning `wb`, and return the objects
    they displayed. For tests and benchmarks: the notebook's own calls and default parameters, without a kernel."""
    import saaskpi

    from .. import widgets

    cells = [
        "".join(c["source"])
        for c in json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == "code"
    ]
    shown: list = []
    namespace: dict = {}
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(saaskpi, "open_workbook", return_value=wb))
        for module in (
            widgets,
            benchmarks,
            cohort_retention,
            cs_load,
            executive_summary,
            forecast,
            funnel,
            product_analytics,
            unit_economics,
        ):
            stack.enter_context(
                mock.patch.object(module, "display", side_effect=lambda *items, **_: shown.extend(items))
            )
        for code in cells:
            exec(code, namespace)
    return shown
