"""`saaskpi import invoices`: the generic invoice CSV read into a source folder, atomically and deterministically,
with its report; the demo company round-trips through it to the cent."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import polars as pl
import pytest
from billing_export import demo_billing, demo_tables, movement_differences, write_revenue_source
from conftest import digest, run

from saaskpi import cli, paths
from saaskpi.importers import registry
from saaskpi.importers.invoices import write_invoice_csv


@pytest.fixture(scope="module")
def demo_exports(tmp_path_factory):
    """The demo company as the generic invoice CSV, and the demo's own revenue tables as a source."""
    tables = demo_tables(paths.DEMO_DIR)
    root = tmp_path_factory.mktemp("invoice_csv")
    exports = write_invoice_csv(demo_billing(tables), root / "exports")
    expected = write_revenue_source(root / "expected", tables)
    return exports, expected


@pytest.fixture(scope="module")
def imported(demo_exports, tmp_path_factory):
    exports, _ = demo_exports
    out = tmp_path_factory.mktemp("imported") / "mine"
    before = digest(exports)
    assert (
        cli.main(
            ["import", "invoices", str(exports), "--out", str(out), "--fx-rates", str(paths.DEMO_DIR / "fx_rates.csv")]
        )
        == 0
    )
    assert digest(exports) == before  # the exports are never modified
    return out


def test_invoices_importer_is_registered():
    assert {"invoices", "mapped"} <= set(registry())


def test_generic_csv_round_trip_equals_the_demo(demo_exports, imported):
    _, expected = demo_exports
    assert movement_differences(expected, imported) == []


def test_output_is_typed_parquet_with_a_report(imported, capsys):
    assert sorted(p.name for p in imported.iterdir()) == [
        "accounts.parquet",
        "fx_rates.csv",
        "import-report.json",
        "import-report.md",
        "invoices.parquet",
        "subscriptions.parquet",
    ]
    subs = pl.read_parquet(imported / "subscriptions.parquet")
    assert (
        subs.schema["start_date"] == pl.Date
        and subs.schema["amount"] == pl.Float64
        and subs.schema["seats"] == pl.Int64
    )
    report = json.loads((imported / "import-report.json").read_text())
    assert {f["table"]: f["rows"] for f in report["files_read"]}["customers"] == 1477
    assert report["rows_written"]["accounts"] == 1477
    assert {a["reason"] for a in report["set_aside"]} >= {"one_time", "no_mrr", "credit_invoice"}
    assert all(a["count"] > 0 and a["examples"] for a in report["set_aside"])
    assert report["settings"]["churn_recorded_at"] == "period_end"
    md = (imported / "import-report.md").read_text()
    assert "## Rows set aside" in md and "`one_time`" in md and "## Settings applied" in md
    assert run(capsys, "validate", str(imported))[0] == 0


def test_same_input_gives_byte_identical_tables(demo_exports, imported, tmp_path):
    exports, _ = demo_exports
    again = tmp_path / "again"
    assert (
        cli.main(
            [
                "import",
                "invoices",
                str(exports),
                "--out",
                str(again),
                "--fx-rates",
                str(paths.DEMO_DIR / "fx_rates.csv"),
            ]
        )
        == 0
    )
    assert digest(again) == digest(imported)


SMALL = {
    "customers": """
        customer_id,name,email,created_at,segment
        C1,Alpha,a@example.com,2024-01-01T00:00:00Z,smb
    """,
    "plans": """
        plan_id,name,interval_unit,interval_count
        P1,Basic,month,1
    """,
    "invoices": """
        invoice_id,customer_id,issued_at,due_at,currency,status,paid_at
        I1,C1,2024-01-01,2024-01-31,USD,paid,2024-01-05
        I2,C1,2024-02-01,2024-03-02,USD,paid,2024-02-03
    """,
    "line_items": """
        line_id,invoice_id,type,subscription_id,plan_id,service_period_start,service_period_end,amount,quantity
        L1,I1,subscription,S1,P1,2024-01-01,2024-02-01,100,2
        L2,I2,subscription,S1,P1,2024-02-01,2024-03-01,100,2
    """,
}


def write_small(folder: Path, **changes: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {**SMALL, **changes}.items():
        (folder / f"{name}.csv").write_text(textwrap.dedent(text).strip() + "\n")
    return folder


def test_small_import_reads_dates_without_times(tmp_path, capsys):
    # $100 a month for two months (2 seats): one subscription row 2024-01-01 .. 2024-03-01
    code, out, err = run(
        capsys, "import", "invoices", str(write_small(tmp_path / "in")), "--out", str(tmp_path / "out")
    )
    assert (code, err) == (0, "")
    assert "accounts 1, subscriptions 1, invoices 2" in out
    subs = pl.read_parquet(tmp_path / "out" / "subscriptions.parquet")
    assert subs.select("subscription_id", "amount", "seats").rows() == [("S1", 100.0, 2)]


def test_failed_import_leaves_the_previous_output_as_it_was(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(capsys, "import", "invoices", str(write_small(tmp_path / "good")), "--out", str(out))[0] == 0
    before = digest(out)
    bad = write_small(tmp_path / "bad", line_items=SMALL["line_items"].replace(",100,2\n", ",lots,2\n", 1))
    code, stdout, err = run(capsys, "import", "invoices", str(bad), "--out", str(out))
    assert (code, stdout) == (2, "")
    assert "[line_items.unparseable] line_items.amount" in err and "amount='lots'" in err
    assert digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "good", "out"]  # no staging folder left


def test_output_never_overlaps_the_exports_or_replaces_other_folders(tmp_path, capsys):
    exports = write_small(tmp_path / "in")
    code, _, err = run(capsys, "import", "invoices", str(exports), "--out", str(exports / "out"))
    assert code == 2 and "overlaps the input" in err
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, "import", "invoices", str(exports), "--out", str(other))
    assert code == 2 and "not the output of an earlier import" in err
    assert (other / "notes.txt").read_text() == "keep me"


EXAMPLE = paths.ROOT / "docs" / "examples" / "invoices"


def test_documented_example_gives_the_documented_bridge(tmp_path, capsys):
    """docs/your-data.md walks through docs/examples/invoices; its numbers are these."""
    code, _, err = run(capsys, "import", "invoices", str(EXAMPLE), "--out", str(tmp_path / "no_fx"))
    assert code == 2 and "subscriptions.currency.no_fx_rate" in err and "--fx-rates FILE" in err
    out = tmp_path / "example"
    code, stdout, err = run(
        capsys, "import", "invoices", str(EXAMPLE), "--out", str(out), "--fx-rates", str(EXAMPLE / "fx_rates.csv")
    )
    assert (code, err) == (0, "")
    assert "accounts 4, subscriptions 4, invoices 8, fx_rates copied; 1 row(s) set aside" in stdout
    code, stdout, _ = run(
        capsys, "table", "mrr_movements", "--source", str(out), "--month", "2024-04", "--format", "json"
    )
    bridge = {r["month"]: r for r in json.loads(stdout)}
    # January: Acme 1,500 - 150 coupon = 1,350 + Bolt GBP 49 x 1.27 (latest rate) = 62.23 -> 1,412.23 new
    assert bridge["2024-01"]["new"] == pytest.approx(1412.23)
    # February: Cobalt 60,000 a year / 12 = 5,000 new
    assert bridge["2024-02"]["new"] == pytest.approx(5000.0)
    # March 1: Acme 30 -> 40 seats: (2,000 - 200) - 1,350 = 450 expansion (the prorated lines scale to the plan prices)
    assert bridge["2024-03"]["expansion"] == pytest.approx(450.0)
    # April: the last invoiced periods of Acme (to Apr 16) and Bolt (to Apr 10) end: 1,800 + 62.23 churn
    assert (bridge["2024-04"]["churn"], bridge["2024-04"]["mrr_end"]) == (pytest.approx(1862.23), pytest.approx(5000.0))
