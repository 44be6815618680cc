"""`saaskpi import mapped`: a spreadsheet's columns mapped onto contract tables by parameters/sources/<name>.yaml."""

from __future__ import annotations

import hashlib
import json
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import run

from saaskpi import paths
from saaskpi.errors import ParameterError
from saaskpi.importers.mapped import load_mapping

EXAMPLE = paths.PARAMETERS_DIR / "sources" / "example_subscriptions.yaml"
SHEET = paths.ROOT / "docs" / "examples" / "subscriptions.csv"


def test_example_mapping_imports_the_example_spreadsheet(tmp_path, capsys):
    before = hashlib.sha256(SHEET.read_bytes()).hexdigest()
    code, out, err = run(capsys, "import", "mapped", "--mapping", str(EXAMPLE), "--out", str(tmp_path / "out"))
    assert (code, err) == (0, "")
    assert hashlib.sha256(SHEET.read_bytes()).hexdigest() == before
    accounts = pl.read_parquet(tmp_path / "out" / "accounts.parquet")
    # 5 customers, 1004 is a test row (filtered), 1002 has two rows (the first kept)
    # "03/01/2024 09:15" in Berlin (CET, UTC+1) is 08:15 UTC
    assert accounts.select("account_id", "segment").rows() == [
        ("1001", "mid_market"),
        ("1002", "smb"),
        ("1003", "enterprise"),
        ("1005", "smb"),
    ]
    assert accounts["created_at"][0] == datetime(2024, 1, 3, 8, 15, tzinfo=UTC)
    subs = pl.read_parquet(tmp_path / "out" / "subscriptions.parquet")
    # prices in cents: 1200000 -> 12,000.00 a year; "13,500" -> 135.00 a quarter
    assert subs.select("subscription_id", "amount", "billing_period_months", "plan").rows() == [
        ("SUB-1", 12000.0, 12, "growth"),
        ("SUB-2", 49.0, 1, "starter"),
        ("SUB-3", 96000.0, 12, "enterprise"),
        ("SUB-4", 99.0, 1, "growth"),
        ("SUB-6", 135.0, 3, "starter"),
    ]
    assert subs["end_date"][1] == date(2024, 7, 15) and subs["currency"].unique().to_list() == ["USD"]
    report = json.loads((tmp_path / "out" / "import-report.json").read_text())
    assert {(a["reason"], a["table"], a["count"]) for a in report["set_aside"]} == {
        ("filtered", "accounts", 1),
        ("merged", "accounts", 1),
        ("filtered", "subscriptions", 1),
    }
    assert report["mapping"]["tables"]["subscriptions"]["columns"]["amount"] == {"from": "Price (cents)", "cents": True}
    # the sheet's last event is SUB-4's start on Oct 1, so September is its last complete month
    code, out, _ = run(capsys, "metrics", "--source", str(tmp_path / "out"), "--month", "2024-09", "--format", "json")
    mrr = {m["metric"]: m["value"] for m in json.loads(out)}["monthly_recurring_revenue"]
    # Sep 2024: 12000/12 + 96000/12 + 135/3 = 1000 + 8000 + 45 = 9045 (SUB-2 ended in July, SUB-4 starts Oct 1)
    assert (code, mrr) == (0, pytest.approx(9045.0))


def write(folder: Path, mapping: str, sheet: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sheet.csv").write_text(textwrap.dedent(sheet).strip() + "\n")
    path = folder / "mapping.yaml"
    path.write_text(textwrap.dedent(mapping).replace("SHEET", str(folder / "sheet.csv")))
    return path


MAPPING = """
    tables:
      accounts:
        file: SHEET
        distinct_on: account_id
        columns: {account_id: Customer, segment: {constant: smb}, created_at: {from: Start, format: "%d/%m/%Y"}}
      subscriptions:
        file: SHEET
        columns:
          subscription_id: ID
          account_id: Customer
          start_date: {from: Start, format: "%d/%m/%Y"}
          end_date: {from: End, format: "%d/%m/%Y"}
          amount: Price
          plan: {from: Plan, values: {Basic: starter}}
"""
SHEET_TEXT = """
    ID,Customer,Start,End,Price,Plan
    S1,C1,01/02/2024,,100,Basic
    S2,C2,2024-02-03,,50,Gold
"""


def test_mapping_problems_are_reported_at_once_with_file_row_and_examples(tmp_path, capsys):
    # S2's start is not day/month/year and its plan Gold is not in the value map; nothing is written
    mapping = write(tmp_path / "in", MAPPING, SHEET_TEXT)
    code, out, err = run(capsys, "import", "mapped", "--mapping", str(mapping), "--out", str(tmp_path / "out"))
    assert (code, out) == (2, "")
    assert "[mapping.unparseable] subscriptions.start_date" in err and "row 3: Start='2024-02-03'" in err
    assert "with the format '%d/%m/%Y'" in err
    assert "[mapping.unmapped_value] subscriptions.plan" in err and "'Gold'" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_mapping_naming_a_missing_column_lists_the_columns_there(tmp_path, capsys):
    mapping = write(tmp_path / "in", MAPPING.replace("amount: Price", "amount: Amount"), SHEET_TEXT)
    code, out, err = run(capsys, "import", "mapped", "--mapping", str(mapping), "--out", str(tmp_path / "out"))
    assert (code, out) == (2, "")
    assert "[mapping.missing_column] subscriptions.Amount: sheet.csv has no column `Amount`" in err
    assert (
        "tables.subscriptions.columns.amount.from" in err
        and "its columns: ID, Customer, Start, End, Price, Plan" in err
    )
    assert not (tmp_path / "out").exists()


def test_mapping_file_is_validated_against_the_contract(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent("""
        tables:
          subscriptions:
            file: x.csv
            columns: {subscription_id: ID, account_id: C, start_date: S, amount: {from: A, constant: 1}, colour: X}
          things: {file: y.csv, columns: {}}
    """)
    )
    with pytest.raises(ParameterError) as err:
        load_mapping(bad)
    assert "exactly one of `from`" in str(err.value)
    bad.write_text(
        textwrap.dedent("""
        tables:
          subscriptions:
            file: x.csv
            columns: {subscription_id: ID, account_id: C, start_date: S, colour: X}
          things: {file: y.csv, columns: {}}
    """)
    )
    with pytest.raises(ParameterError) as err:
        load_mapping(bad)
    text = str(err.value)
    assert "`tables.things`: not a contract table" in text
    assert "`tables.subscriptions.columns.colour`: not a column of subscriptions" in text
    assert (
        "the required column `amount` is not mapped" in text and "the required column `end_date` is not mapped" in text
    )


def test_mapping_reads_parquet_with_its_types(tmp_path, capsys):
    # a Parquet export: prices in cents as integers, sign-up times without a zone (New York, EST = UTC-5)
    pl.DataFrame(
        {
            "id": ["S1"],
            "cust": ["C1"],
            "since": [datetime(2024, 1, 2, 9, 0)],
            "start": [date(2024, 1, 2)],
            "cents": [123456],
            "tier": ["Gold"],
        }
    ).write_parquet(tmp_path / "subs.parquet")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        textwrap.dedent(f"""
        tables:
          accounts:
            file: {tmp_path / "subs.parquet"}
            columns:
              account_id: cust
              segment: {{from: tier, values: {{Gold: enterprise}}}}
              created_at: {{from: since, time_zone: America/New_York}}
          subscriptions:
            file: {tmp_path / "subs.parquet"}
            columns: {{subscription_id: id, account_id: cust, start_date: start, end_date: {{constant: ""}},
                       amount: {{from: cents, cents: true}}}}
    """)
    )
    code, _, err = run(capsys, "import", "mapped", "--mapping", str(mapping), "--out", str(tmp_path / "out"))
    assert (code, err) == (0, "")
    accounts = pl.read_parquet(tmp_path / "out" / "accounts.parquet")
    assert accounts.select("segment", "created_at").row(0) == (
        "enterprise",
        datetime(2024, 1, 2, 14, 0, tzinfo=UTC),
    )  # 9:00 EST = 14:00 UTC
    subs = pl.read_parquet(tmp_path / "out" / "subscriptions.parquet")
    assert subs.select("start_date", "amount").rows() == [(date(2024, 1, 2), 1234.56)]  # 123456 cents
