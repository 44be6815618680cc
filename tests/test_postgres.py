"""PostgreSQL as a source, against a real server (the throwaway cluster of tests/pg/cluster.py): the demo
company gives the folder's numbers, the big table is aggregated and restricted in SQL, and every way a
connection or a schema can be wrong is a clear message without a traceback or a password."""

from __future__ import annotations

import io
import math
import textwrap
import time
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from conftest import REVENUE_TABLES

from saaskpi.cli import main
from saaskpi.errors import DataContractError, SourceError
from saaskpi.postgres import Address, PostgresSource, read_schema_tables
from saaskpi.sources import open_source, validated_tables
from saaskpi.workbook import open_workbook


def text_frames(tables: dict[str, str]) -> dict[str, pl.DataFrame]:
    """Literal CSV tables as all-text frames (stored in PostgreSQL as text columns, parsed by the contract)."""
    return {n: pl.read_csv(io.StringIO(textwrap.dedent(t).strip()), infer_schema=False) for n, t in tables.items()}


@pytest.fixture(scope="module")
def revenue_pg(pg_cluster) -> str:
    """The conftest revenue story as text tables in schema `revenue`."""
    return pg_cluster.load("revenue", text_frames(REVENUE_TABLES))


def same_metrics(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    found = []
    for (_, x), (_, y) in zip(a.iterrows(), b.iterrows()):
        both_nan = all(isinstance(v, float) and math.isnan(v) for v in (x.value, y.value))
        if (
            x.metric != y.metric
            or (not both_nan and not math.isclose(x.value, y.value, rel_tol=1e-9, abs_tol=1e-9))
            or x.status != y.status
            or x.n != y.n
        ):
            found.append(
                f"{x.metric}: folder {x.value} (n {x.n}, {x.status}) vs postgres {y.value} (n {y.n}, {y.status})"
            )
    return found


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize("segment", ["all", "enterprise"])
def test_demo_in_postgres_gives_the_folders_numbers(pg_demo, demo_source, segment, monkeypatch):
    """Every metric of the month and a few tables are those of the folder; usage_events is never read
    whole: its aggregates run as SQL in the server, and a segment's rows are selected there."""
    restricted = []
    real_read, real_scan = PostgresSource.read, PostgresSource.scan

    def read(self, name):
        assert name != "usage_events", "usage_events was read whole into Python"
        return real_read(self, name)

    def scan(self, name, accounts=None):
        restricted.append(accounts is not None)
        return real_scan(self, name, accounts)

    monkeypatch.setattr(PostgresSource, "read", read)
    monkeypatch.setattr(PostgresSource, "scan", scan)
    folder = open_workbook(str(demo_source), segment, interactive=False)
    pg = open_workbook(pg_demo, segment, interactive=False)
    assert pg.as_of == folder.as_of
    found = same_metrics(folder.metrics_frame(), pg.metrics_frame())
    assert not found, "\n".join(found)
    for name in ("mrr_movements", "active_users", "account_weekly_activity", "user_month_activity"):
        pd.testing.assert_frame_equal(folder.table(name), pg.table(name), check_dtype=False, obj=name)
    assert pg.all_tables.source.can_run("select 1 from {usage_events}")  # the usage aggregates were SQL
    if segment == "enterprise":
        assert any(restricted), "the segment's events were not selected in SQL"


def test_cli_reads_a_postgres_source(capsys, pg_demo):
    """`saaskpi validate`, `metrics` and `table` take the URL as they take a folder."""
    assert main(["validate", pg_demo]) == 0
    out = capsys.readouterr().out
    assert out.startswith(pg_demo + ": valid (") and "subscriptions" in out
    assert main(["table", "mrr_movements", "--source", pg_demo, "--segment", "enterprise"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert {"month", "mrr_end", "new", "churn"} <= set(frame.columns) and len(frame) > 12


def test_text_tables_are_parsed_like_csv(revenue_pg, revenue_source):
    """Tables stored as text are typed and checked by the contract exactly as CSV files are."""
    folder = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    pg = open_workbook(revenue_pg, "all", "2024-05", interactive=False)
    pd.testing.assert_frame_equal(folder.table("mrr_movements"), pg.table("mrr_movements"))
    assert pg.value("monthly_recurring_revenue").value == 560  # conftest story: 150 + 60 + 200 + 150


EVENTS = """
    event_time,user_id,account_id,feature,duration_seconds
    2024-01-01T00:00:00Z,U1,A1,reports,10
    2024-01-01T23:59:00Z,U1,A1,reports,
    2024-01-07T12:00:00Z,U1,A1,reports,5
    2024-01-08T00:00:00Z,U1,A1,export,1
    2024-01-29T08:00:00Z,U1,A1,export,1
    2024-01-31T23:59:59Z,U1,A1,export,1
    2024-02-01T00:00:00Z,U1,A1,reports,2
    2024-03-01T00:30:00Z,U2,A3,reports,
"""


def test_usage_aggregates_in_sql_on_literal_events(pg_cluster, revenue_source):
    """The two usage aggregates computed by the server, against hand counts and against the folder."""
    events = pl.read_csv(io.StringIO(textwrap.dedent(EVENTS).strip()), infer_schema=False)
    typed = events.with_columns(
        event_time=pl.col("event_time").str.to_datetime(time_zone="UTC"),
        duration_seconds=pl.col("duration_seconds").cast(pl.Int64),
    )
    url = pg_cluster.load("events", {**text_frames(REVENUE_TABLES), "usage_events": typed})
    (revenue_source / "usage_events.csv").write_text(textwrap.dedent(EVENTS).strip() + "\n")
    pg = open_workbook(url, "all", "2024-05", interactive=False)
    users = pg.table("user_month_activity").set_index(["user_id", "key"])
    # U1 in January: days 1, 7, 8, 29, 31 (two events on the 1st are one day) -> 5 days; blocks 1-7 and 8-14
    # -> 2 (days 29-31 are no week of their own); last event Jan 31 23:59:59
    jan, feb = 2024 * 12, 2024 * 12 + 1  # month keys: year * 12 + month - 1
    assert users.loc[("U1", jan), ["days_active", "blocks_active"]].tolist() == [5, 2]
    assert users.loc[("U1", jan), "last_event"] == pd.Timestamp("2024-01-31T23:59:59Z")
    assert users.loc[("U1", feb), ["days_active", "blocks_active"]].tolist() == [1, 1]
    assert ("U2", feb + 1) in users.index  # Mar 1 00:30 UTC is in March, whatever the server's own time zone
    features = pg.table("feature_month_activity").set_index(["account_id", "feature", "key"])
    # reports in January: 10 + (not recorded: 0) + 5 = 15 s, last used on the 7th
    assert features.loc[("A1", "reports", jan), ["seconds", "last_day"]].tolist() == [15, 7]
    assert features.loc[("A1", "export", jan), ["seconds", "last_day"]].tolist() == [3, 31]
    folder = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    for name in ("user_month_activity", "feature_month_activity", "active_users"):
        pd.testing.assert_frame_equal(folder.table(name), pg.table(name), check_dtype=False, obj=name)


# --------------------------------------------------------------------------- fingerprint
def test_fingerprint_changes_when_the_data_changes(pg_cluster):
    url = pg_cluster.load("changing", text_frames(REVENUE_TABLES))
    source = open_source(url)
    first = source.fingerprint()
    assert open_source(url).fingerprint() == first  # nothing changed: the same

    def changed(statement: str, before: str) -> str:
        pg_cluster.sql(statement, "demo")
        for _ in range(100):  # the server publishes a writer's counts when it ends (at most a second later)
            now = open_source(url).fingerprint()
            if now != before:
                return now
            time.sleep(0.1)
        raise AssertionError(f"fingerprint unchanged after: {statement}")

    second = changed("update changing.subscriptions set amount = '101' where subscription_id = 'S1'", first)
    third = changed("truncate changing.fx_rates", second)
    changed("alter table changing.accounts add column note text", third)


# --------------------------------------------------------------------------- bad input
def test_missing_table_is_named_with_its_schema(pg_cluster):
    url = pg_cluster.load(
        "no_subscriptions", text_frames({k: v for k, v in REVENUE_TABLES.items() if k != "subscriptions"})
    )
    with pytest.raises(DataContractError) as err:
        validated_tables(open_source(url))
    problem = next(p for p in err.value.problems if p.code == "source.missing_table")
    assert problem.table == "no_subscriptions.subscriptions"
    assert "required table `subscriptions` is missing" in problem.message


def test_wrong_column_type_is_named(pg_cluster):
    frames = text_frames(REVENUE_TABLES)
    frames["accounts"] = frames["accounts"].with_columns(created_at=pl.lit(20240101, dtype=pl.Int64))
    url = pg_cluster.load("wrong_type", frames)
    with pytest.raises(DataContractError) as err:
        validated_tables(open_source(url))
    assert [(p.code, p.table, p.column) for p in err.value.problems] == [
        ("accounts.wrong_type", "wrong_type.accounts", "created_at")
    ]
    assert "is stored as bigint: expected a date-time" in str(err.value)


def test_bad_values_are_reported_as_for_files(pg_cluster):
    frames = text_frames(REVENUE_TABLES)
    frames["subscriptions"] = frames["subscriptions"].with_columns(
        amount=pl.when(pl.col("subscription_id") == "S4").then(pl.lit("-60")).otherwise(pl.col("amount"))
    )
    url = pg_cluster.load("bad_values", frames)
    with pytest.raises(DataContractError) as err:
        validated_tables(open_source(url))
    assert [(p.code, p.table, p.column, p.count) for p in err.value.problems] == [
        ("subscriptions.out_of_range", "bad_values.subscriptions", "amount", 1)
    ]


def test_connection_problems_are_clear_messages(pg_cluster, capsys):
    from pg.cluster import PASSWORD, PASSWORD_USER  # noqa: F401 - tests/ is on the path (conftest)

    socket = pg_cluster.folder
    cases = {
        f"postgresql://{PASSWORD_USER}:wrong-secret@/demo?host={socket}&schema=demo": "refused the password of user `saaskpi_pw`",
        f"postgresql://saaskpi@/demo?host={socket}-gone&schema=demo": "No PostgreSQL server answers at the Unix socket in",
        "postgresql://saaskpi:wrong-secret@127.0.0.1:9/demo?schema=demo": "No PostgreSQL server answers at 127.0.0.1:9",
        f"postgresql://saaskpi@/nope?host={socket}&schema=demo": "Database `nope` does not exist",
        f"postgres://saaskpi@/demo?host={socket}&schema=nope": "Schema `nope` does not exist in PostgreSQL at",
    }
    for url, expected in cases.items():
        with pytest.raises(SourceError) as err:
            open_source(url)
        assert expected in str(err.value) and "wrong-secret" not in str(err.value), str(err.value)
        assert main(["validate", url]) == 2
        out, errors = capsys.readouterr()
        assert expected in errors and "Traceback" not in errors and "wrong-secret" not in out + errors


def test_password_role_connects_with_the_right_password(pg_cluster, pg_demo):
    from pg.cluster import PASSWORD, PASSWORD_USER

    pg_cluster.sql(
        f"grant usage on schema demo to {PASSWORD_USER}; grant select on all tables in schema demo to {PASSWORD_USER}",
        "demo",
    )
    url = f"postgresql://{PASSWORD_USER}:{PASSWORD}@/demo?host={pg_cluster.folder}&schema=demo"
    source = open_source(url)
    assert "accounts" in source.table_names() and PASSWORD not in source.location


def test_permission_denied_names_the_table(pg_cluster):
    from pg.cluster import PASSWORD, PASSWORD_USER

    pg_cluster.load("private", text_frames(REVENUE_TABLES))
    pg_cluster.sql(f"grant usage on schema private to {PASSWORD_USER}", "demo")
    url = f"postgresql://{PASSWORD_USER}:{PASSWORD}@/demo?host={pg_cluster.folder}&schema=private"
    with pytest.raises(SourceError) as err:
        validated_tables(open_source(url))
    assert (
        "private.accounts" in str(err.value)
        and "permission denied" in str(err.value)
        and PASSWORD not in str(err.value)
    )


# --------------------------------------------------------------------------- addresses and other tables
def test_address_keeps_the_password_out_of_what_is_shown():
    a = Address.parse("postgres://ana:s3cret@db.example:6543/warehouse?schema=billing&sslmode=require")
    assert a.shown == "postgresql://ana@db.example:6543/warehouse?schema=billing&sslmode=require"
    assert (a.schema, a.database, a.user, a.server) == ("billing", "warehouse", "ana", "db.example:6543")
    assert "schema=" not in a.uri and "s3cret" in a.uri  # libpq gets the password, nobody sees it
    s = Address.parse("postgresql:///warehouse?host=/run/postgresql")
    assert (s.schema, s.server, s.shown) == (
        "public",
        "the Unix socket in /run/postgresql",
        "postgresql:///warehouse?host=/run/postgresql",
    )


def test_read_schema_tables_reads_any_table(pg_cluster):
    url = pg_cluster.load(
        "stripe", {"customer": pl.DataFrame({"id": ["cus_1", "cus_2"], "created": [1700000000, 1700000500]})}
    )
    frames = read_schema_tables(url, ["customer"])
    assert frames["customer"].to_dicts() == [
        {"id": "cus_1", "created": 1700000000},
        {"id": "cus_2", "created": 1700000500},
    ]
    with pytest.raises(SourceError, match=r"Table stripe.invoice not found in PostgreSQL at .* Tables there: customer"):
        read_schema_tables(url, ["invoice"])


def test_filters_pushed_into_sql_are_a_superset():
    """Comparisons with a date-time go into the scan's SQL widened by a second (whole seconds are exact),
    text only for equality (the server's collation may order text otherwise), anything else not at all:
    Polars applies the whole filter to the rows anyway."""
    from saaskpi.postgres import sql_conditions

    schema = pl.Schema({"event_time": pl.Datetime("us", "UTC"), "account_id": pl.String})
    start, stop = (pd.Timestamp(t, tz="UTC").to_pydatetime() for t in ("2023-12-01", "2024-03-01"))
    window = (pl.col("event_time") >= start) & (pl.col("event_time") < stop)
    # 2023-12-01 is 1,701,388,800 s after 1970-01-01; 2024-03-01 is 1,709,251,200 s
    assert sql_conditions(window & (pl.col("account_id") == "O'Neil") & (pl.col("account_id") > "B"), schema) == [
        '"event_time" >= to_timestamp(1701388799)',
        '"event_time" < to_timestamp(1709251202)',
        "\"account_id\" = 'O''Neil'",
    ]
    assert sql_conditions((pl.col("event_time") >= start) | (pl.col("account_id") == "A"), schema) == []
    assert sql_conditions(None, schema) == []


def test_scan_selects_accounts_in_sql_whatever_their_ids(pg_cluster):
    """A segment's accounts go into the scan's SQL as a constant array; quotes, commas and backslashes in ids
    survive the quoting."""
    ids = ["A'1", 'B"2', "C,3", "D\\4", "E 5"]
    events = pl.DataFrame(
        {
            "event_time": [pd.Timestamp("2024-01-01", tz="UTC").to_pydatetime()] * 6,
            "user_id": ["U"] * 6,
            "account_id": [*ids, "other"],
            "feature": ["f"] * 6,
            "duration_seconds": [1, 2, 3, 4, 5, 6],
        }
    )
    source = open_source(pg_cluster.load("odd_ids", {"usage_events": events}))
    kept = source.scan("usage_events", pl.Series(ids)).select("account_id", "duration_seconds").collect()
    assert sorted(kept["account_id"].to_list()) == sorted(ids) and kept["duration_seconds"].sum() == 15


def test_stripe_objects_synced_into_postgres_import_like_files(pg_cluster, tmp_path, capsys):
    # A loader syncs Stripe's objects into schema `stripe` (nested fields as JSON text): `saaskpi import stripe
    # postgresql://...` reads them there and gives the demo's MRR movements to the cent, as from files.
    from billing_export import demo_billing, demo_tables, movement_differences, write_revenue_source
    from stripe_export import write_api_folder

    from saaskpi import cli, paths

    tables = demo_tables(paths.DEMO_DIR, accounts=12)
    expected = write_revenue_source(tmp_path / "expected", tables)
    exports = write_api_folder(demo_billing(tables), tmp_path / "exports", "parent_details", "csv")
    frames = {p.stem: pl.read_csv(p, infer_schema=False) for p in sorted(Path(exports).glob("*.csv"))}
    url = pg_cluster.load("stripe", frames)
    out = tmp_path / "imported"
    assert (
        cli.main(["import", "stripe", url, "--out", str(out), "--fx-rates", str(paths.DEMO_DIR / "fx_rates.csv")]) == 0
    )
    assert movement_differences(expected, out) == []
    report = (out / "import-report.md").read_text(encoding="utf-8")
    assert "stripe.invoice_line_item" in report  # the tables read, named with their schema
    capsys.readouterr()
    missing = url.replace("schema=stripe", "schema=nostripe")
    assert cli.main(["import", "stripe", missing, "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "Schema `nostripe` does not exist" in err and "Traceback" not in err and not (tmp_path / "none").exists()
