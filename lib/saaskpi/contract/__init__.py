"""The data contract: one schema per input table plus cross-table rules."""

from ..kernel_imports import import_pandera

import_pandera()  # pandera's Polars API, without the pyspark.pandas import pandera makes when PySpark is installed

from .load import ROW, RULE_CODES, TypedTable, typed_table  # noqa: E402
from .rules import cross_table_problems, cross_table_rules  # noqa: E402
from .tables import REQUIRED_TABLES, TABLES  # noqa: E402

__all__ = [
    "ROW",
    "RULE_CODES",
    "REQUIRED_TABLES",
    "TABLES",
    "TypedTable",
    "cross_table_problems",
    "cross_table_rules",
    "typed_table",
]
