"""Engine parity: the same Narwhals metric code gives identical results on Polars, DuckDB and Spark."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from saaskpi.workbook import open_workbook

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]
REVENUE_TABLES = ["account_mrr", "mrr_movements", "cohort_logo_retention", "cohort_revenue_retention"]


def spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return shutil.which("java") is not None


def compare(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False,
                                  check_exact=False, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_revenue_parity_on_literal_accounts(revenue_source, engine):
    if engine == "spark" and not spark_available():
        pytest.skip("pyspark or Java missing")
    base = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    other = open_workbook(str(revenue_source), "all", "2024-05", interactive=False, engine=engine)
    for name in REVENUE_TABLES:
        compare(base.table(name), other.table(name))
    compare(base.metrics_frame(), other.metrics_frame())


@pytest.mark.parametrize("engine", ENGINES)
def test_revenue_and_usage_parity_on_demo(demo_source, engine):
    if engine == "spark" and not spark_available():
        pytest.skip("pyspark or Java missing")
    for segment in ("all", "enterprise"):
        base = open_workbook(str(demo_source), segment, "", interactive=False)
        other = open_workbook(str(demo_source), segment, "", interactive=False, engine=engine)
        for name in [*REVENUE_TABLES, "active_users", "user_lifecycle"]:
            compare(base.table(name), other.table(name))
        for metric in ("net_revenue_retention", "customer_churn_rate", "saas_quick_ratio", "dau_mau_ratio"):
            compare(base.series(metric), other.series(metric))
