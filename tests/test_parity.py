"""Engine parity: the same Narwhals metric code gives identical results on Polars, DuckDB and Spark."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from saaskpi.workbook import open_workbook

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]
REVENUE_TABLES = ["account_mrr", "mrr_movements", "cohort_logo_retention", "cohort_revenue_retention"]


def spark_available() -> bool:
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
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


def test_duckdb_file_source(revenue_source, tmp_path):
    import duckdb

    from saaskpi.sources import open_source

    db = tmp_path / "book.duckdb"
    con = duckdb.connect(str(db))
    for name in ("accounts", "subscriptions", "fx_rates"):
        con.execute(f"create table {name} as select * from read_csv_auto('{revenue_source / (name + '.csv')}')")
    con.close()
    assert open_source(db).table_names() == ["accounts", "fx_rates", "subscriptions"]
    base = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    other = open_workbook(str(db), "all", "2024-05", interactive=False, engine="duckdb")
    compare(base.table("mrr_movements"), other.table("mrr_movements"))


@pytest.mark.spark
def test_spark_session_source(revenue_source):
    if not spark_available():
        pytest.skip("pyspark or Java missing")
    import polars as pl

    from saaskpi.sources import Engine, open_source, validated_tables
    from saaskpi.workbook import Workbook

    engine = Engine("spark")
    spark = engine.handle
    for name in ("accounts", "subscriptions", "fx_rates"):
        frame = pl.read_csv(revenue_source / f"{name}.csv", infer_schema=False)
        spark.createDataFrame(frame.to_pandas()).createOrReplaceTempView(name)
    source = open_source(spark)
    assert source.kind == "spark" and {"accounts", "subscriptions", "fx_rates"} <= set(source.table_names())
    tables = validated_tables(source, engine=engine)
    base = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    wb = Workbook(tables, base.segment, base.as_of, base.conventions, base.targets, interactive=False)
    compare(base.table("mrr_movements"), wb.table("mrr_movements"))
    for name in ("accounts", "subscriptions", "fx_rates"):
        spark.catalog.dropTempView(name)
