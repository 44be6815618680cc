"""One module per notebook; each `show_<section>(wb)` returns one heading's worth for the notebook to display
(see `saaskpi.widgets`: pages return, notebooks display)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from . import (
    benchmarks,
    cohort_retention,
    comparisons,
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
    "comparisons",
    "cs_load",
    "executive_summary",
    "forecast",
    "funnel",
    "product_analytics",
    "unit_economics",
    "run_sections",
]

_WORKBOOK = "_saaskpi_workbook"


class _GivenWorkbook(ast.NodeTransformer):
    """Every `open_workbook(...)` call (as `saaskpi.open_workbook` or imported by name) becomes the given workbook."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "open_workbook":
            return ast.copy_location(ast.Name(_WORKBOOK, ast.Load()), node)
        return self.generic_visit(node)


def run_sections(notebook: str | Path, wb) -> list:
    """Run a notebook's code cells in this process with its `open_workbook` call answered by `wb`, and return
    what the notebook displays: the values of each cell's last expression, in order (a section's values one by
    one). For tests and benchmarks: the notebook's own calls and default parameters, without a kernel."""
    from .. import widgets

    path = Path(notebook)
    cells = [
        "".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"
    ]
    namespace: dict = {_WORKBOOK: wb}
    shown: list = []
    for code in cells:
        tree = ast.fix_missing_locations(_GivenWorkbook().visit(ast.parse(code)))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, str(path), "exec"), namespace)
        if last is not None:
            expression = ast.fix_missing_locations(ast.Expression(last.value))
            shown.extend(widgets.values(eval(compile(expression, str(path), "eval"), namespace)))
    return shown
