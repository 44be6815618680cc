"""The data contract: one schema per input table plus cross-table rules."""

import warnings

with warnings.catch_warnings():
    # importing pandera probes pyspark.pandas when PySpark is installed, and PySpark 4 warns there about pandas 3
    # (pandas-on-Spark is not used here: the Spark engine goes through Arrow)
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    import pandera.polars  # noqa: F401

from .load import ROW, RULE_CODES, TypedTable, typed_table
from .rules import cross_table_problems, cross_table_rules
from .tables import REQUIRED_TABLES, TABLES

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
