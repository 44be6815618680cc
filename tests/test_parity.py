"""Engine parity: the same Narwhals metric code gives identical results on Polars, DuckDB and Spark.

Revenue tables are compared by name; every table and metric that reads usage events or the funnel tables is
found in the registry (`engine_specs`), so one registered later is compared without edits here. Spark is slow
to start and to plan: each test opens one workbook per engine and segment and compares everything on it.
"""

from __future__ import annotations

import shutil
import textwrap

import pandas as pd
import pytest
from conftest import write_source
from test_funnel import FUNNEL_TABLES

from saaskpi.metrics import METRICS, TABLE_FUNCS
from saaskpi.workbook import Workbook, open_workbook

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]
REVENUE_TABLES = ["account_mrr", "mrr_movements", "cohort_logo_retention", "cohort_revenue_retention"]
# the tables that metric code reads through the engine besides subscriptions (usage events may be big)
ENGINE_TABLES = (
    "usage_events",
    "leads",
    "opportunities",
    "web_traffic",
    "users",
    "team",
    "support_tickets",
    "nps_responses",
    "cs_touchpoints",
    "invoices",
    "spend",
)
# read usage_events when the source has it, although their `needs` do not require it
OPTIONAL_READERS = ("account_measures",)


def engine_specs() -> list[str]:
    """Registered tables and metrics that need one of ENGINE_TABLES, or take such a table or metric as input
    (directly or further up), in registry order."""
    specs = {**TABLE_FUNCS, **METRICS}
    readers = {n for n, s in specs.items() if set(s.needs) & set(ENGINE_TABLES)} | set(OPTIONAL_READERS)

    def upstream(name: str, seen: set[str]) -> set[str]:
        for i in specs[name].inputs:
            if i in specs and i not in seen:
                seen.add(i)
                upstream(i, seen)
        return seen

    return [n for n in specs if n in readers or upstream(n, set()) & readers]


def spark_available() -> bool:
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return False
    return shutil.which("java") is not None


def compare(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-9
    )


def differences(base: Workbook, other: Workbook, names: list[str]) -> list[str]:
    """Each table or metric series of `names` (those the source has the tables for) that differs between the
    workbooks, with the first difference."""
    found = []
    specs = {**TABLE_FUNCS, **METRICS}
    for name in [n for n in names if not base.tables.missing(*specs[n].needs)]:
        get = (lambda wb, name=name: wb.table(name)) if name in TABLE_FUNCS else (lambda wb, name=name: wb.series(name))
        try:
            compare(get(base), get(other))
        except Exception as err:  # an engine that cannot run the code is a difference too
            found.append(f"{name}: {type(err).__name__}: {' '.join(str(err).split())[:300]}")
    return found


def workbooks(source, engine: str) -> tuple[Workbook, Workbook]:
    """The workbook of `source` for May 2024 on Polars and on `engine` (skipped when Spark cannot run)."""
    if engine == "spark" and not spark_available():
        pytest.skip("pyspark or Java missing")
    return (
        open_workbook(str(source), "all", "2024-05", interactive=False),
        open_workbook(str(source), "all", "2024-05", interactive=False, engine=engine),
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_revenue_parity_on_literal_accounts(revenue_source, engine):
    base, other = workbooks(revenue_source, engine)
    for name in REVENUE_TABLES:
        compare(base.table(name), other.table(name))
    compare(base.metrics_frame(), other.metrics_frame())


def test_engine_specs_cover_usage_and_funnel():
    names = engine_specs()
    for expected in (
        "active_users",
        "dau_mau_ratio",
        "feature_adoption_rate",
        "account_weekly_activity",
        "funnel_by_month",
        "win_rate",
        "sales_capacity_fte",
        "new_user_churn_rate",
        "health_history",
        "average_health_score",
        "peer_benchmarks",
    ):
        assert expected in names
    assert "mrr_movements" not in names and "net_revenue_retention" not in names


@pytest.mark.parametrize("engine", ENGINES)
def test_parity_on_demo(demo_source, engine):
    if engine == "spark" and not spark_available():
        pytest.skip("pyspark or Java missing")
    names = [*REVENUE_TABLES, "net_revenue_retention", "customer_churn_rate", "saas_quick_ratio", *engine_specs()]
    found = []
    for segment in ("all", "enterprise"):
        base = open_workbook(str(demo_source), segment, "", interactive=False)
        other = open_workbook(str(demo_source), segment, "", interactive=False, engine=engine)
        found += [f"{segment}: {d}" for d in differences(base, other, names)]
    assert not found, "\n".join(found)


# The funnel source of test_funnel.py, with usage events on the boundaries engines may treat differently
# (the workbook's month is May 2024, so data ends at 2024-06-01 00:00 UTC):
#   May 25 00:00  exactly 7 days before the end: the first instant of heatmap week 0
#   Mar 2 00:00   exactly 13 weeks before the end: the first instant of heatmap week 12
#   Apr 30 23:59:59 and May 1 00:00: either side of a month boundary
#   Jan 31 12:00  in the 30-day engagement window of February's end (a leap year: Jan 31 - Feb 29)
BOUNDARY_EVENTS = """
    2024-05-25T00:00:00Z,U1,A1,dashboards,30
    2024-03-02T00:00:00Z,U4,A4,reports,30
    2024-04-30T23:59:59Z,U2,A1,dashboards,30
    2024-05-01T00:00:00Z,U2,A1,dashboards,30
    2024-01-31T12:00:00Z,U1,A1,dashboards,30
"""
LITERAL_TABLES = {
    **FUNNEL_TABLES,
    "usage_events": textwrap.dedent(FUNNEL_TABLES["usage_events"]).rstrip() + textwrap.dedent(BOUNDARY_EVENTS),
}


@pytest.fixture(scope="module")
def literal_source(tmp_path_factory):
    return write_source(tmp_path_factory.mktemp("parity") / "literal", LITERAL_TABLES)


def test_heatmap_weeks_start_at_midnight(literal_source):
    wb = open_workbook(str(literal_source), "all", "2024-05", interactive=False)
    weeks = wb.table("account_weekly_activity").set_index(["account_id", "weeks_ago"])
    # A1 in week 0 (May 25-31): U1 at May 25 00:00 only (U2's May 20 is in week 1, May 18-24)
    assert weeks.loc[("A1", 0)].active_users == 1
    assert weeks.loc[("A1", 0)].week_start == pd.Timestamp("2024-05-25")
    # A4 in week 12 (Mar 2-8): U4 at Mar 2 00:00 (its Mar 15 is in week 11, Mar 9-15); nothing is older
    assert weeks.loc[("A4", 12)].active_users == 1
    assert weeks.index.get_level_values("weeks_ago").max() == 12


@pytest.mark.parametrize("engine", ENGINES)
def test_usage_and_funnel_parity_on_literal_source(literal_source, engine):
    base, other = workbooks(literal_source, engine)
    found = differences(base, other, engine_specs())
    assert not found, "\n".join(found)
    compare(base.metrics_frame(), other.metrics_frame())


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
    # opened as a source with the Spark engine, the metrics run in the source's own session (which may be a
    # cluster's or a Spark Connect one), not in a local session of ours
    opened = open_workbook(spark, "all", "2024-05", interactive=False, engine="spark")
    assert opened.tables.engine.handle is spark
    compare(base.table("mrr_movements"), opened.table("mrr_movements"))
    for name in ("accounts", "subscriptions", "fx_rates"):
        spark.catalog.dropTempView(name)


@pytest.mark.spark
def test_spark_source_keeps_usage_events_in_spark(literal_source, monkeypatch):
    """With a Spark source and the Spark engine, usage_events is checked and aggregated in Spark, never read
    into Python; the numbers are those of the same tables as files, and its problems are still reported."""
    if not spark_available():
        pytest.skip("pyspark or Java missing")
    import polars as pl

    from saaskpi.errors import DataContractError
    from saaskpi.sources import Engine, SparkSource, open_source, validated_tables

    spark = Engine("spark").handle
    names = sorted(p.stem for p in literal_source.glob("*.csv"))
    for name in names:
        frame = pl.read_csv(literal_source / f"{name}.csv", infer_schema=False)
        spark.createDataFrame(frame.to_pandas()).createOrReplaceTempView(name)
    events = validated_tables(open_source(literal_source)).frames["usage_events"].to_pandas()  # contract types
    spark.createDataFrame(events).createOrReplaceTempView("usage_events")
    real_read = SparkSource.read

    def read(self, name):
        assert name != "usage_events", "usage_events was read into Python"
        return real_read(self, name)

    monkeypatch.setattr(SparkSource, "read", read)
    try:
        base = open_workbook(str(literal_source), "all", "2024-05", interactive=False)
        other = open_workbook(spark, "all", "2024-05", interactive=False, engine="spark")
        assert "usage_events" in other.tables.natives
        found = differences(base, other, engine_specs())
        assert not found, "\n".join(found)
        bad = events.copy()
        bad.loc[0, "user_id"] = "U-nobody"  # an event of a user who does not exist
        bad.loc[1, "duration_seconds"] = -5  # and a negative duration
        spark.createDataFrame(bad).createOrReplaceTempView("usage_events")
        with pytest.raises(DataContractError) as err:
            open_workbook(spark, "all", "2024-05", interactive=False, engine="spark")
        codes = {(p.code, p.column, p.count) for p in err.value.problems}
        assert codes == {
            ("usage_events.user_id.orphan", "user_id", 1),
            ("usage_events.out_of_range", "duration_seconds", 1),
        }
        assert "U-nobody" in str(err.value) and "duration_seconds=-5" in str(err.value)
    finally:
        for name in names:
            spark.catalog.dropTempView(name)
