"""One account key across systems (importers/accounts.py): a record of a CRM, help desk or analytics tool finds its
account by the id map, by e-mail domain or by the same id; unmatched records are reported, a record matching two
accounts is an error; and imports of several systems share one output folder."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from saaskpi import cli
from saaskpi.errors import ParameterError
from saaskpi.importers.accounts import AccountKeys, AccountSettings, account_keys, domain_of
from saaskpi.importers.reading import ExportError

ACCOUNTS = pl.DataFrame({"account_id": ["cus_1", "cus_2", "cus_3"], "domain": ["acme.com", "globex.io", None]})


def keys(id_map: dict | None = None, **settings) -> AccountKeys:
    frame = pl.DataFrame(id_map) if id_map else pl.DataFrame({"account_id": []}, schema={"account_id": pl.String})
    return AccountKeys(ACCOUNTS, frame, AccountSettings(**settings))


def test_domain_of_addresses_and_web_addresses():
    values = pl.Series(["Ana@ACME.com", "https://www.Globex.io/about", "bob@gmail.com", "", None, "localhost"])
    assert pl.select(domain_of(pl.lit(values))).to_series().to_list() == [
        "acme.com",
        "globex.io",
        None,
        None,
        None,
        None,
    ]


def test_id_map_first_then_domain_then_same_id():
    k = keys({"account_id": ["cus_3"], "hubspot": ["901"]}, systems={"hubspot": ("id_map", "domain", "same_id")})
    records = pl.DataFrame(
        {
            "company": ["901", "902", "cus_2", None],
            "email": ["x@acme.com", "ana@acme.com", "bob@gmail.com", "eve@globex.io"],
        }
    )
    m = k.match("hubspot", "leads", records, key="company", email="email")
    # 901 -> cus_3 by the map (its e-mail domain acme.com is not used: the map comes first);
    # 902 is not in the map -> acme.com -> cus_1; cus_2 -> same id (gmail.com never matches); null key -> globex.io
    assert m.frame.get_column("account_id").to_list() == ["cus_3", "cus_1", "cus_2", "cus_2"]
    assert m.set_aside == ()


def test_unmatched_records_are_set_aside_below_the_threshold_and_fail_above():
    records = pl.DataFrame({"org": [f"o{i}" for i in range(20)], "email": ["a@acme.com"] * 19 + ["z@unknown.org"]})
    m = keys(max_unmatched_share=0.05).match("zendesk", "support_tickets", records, key="org", email="email")
    # 1 of 20 records = 5 % unmatched: allowed (at most 5 %), set aside with its example
    assert m.frame.get_column("account_id").null_count() == 1
    (aside,) = m.set_aside
    assert (aside.reason, aside.table, aside.count, aside.examples) == (
        "unmatched_account",
        "support_tickets",
        1,
        ("org=o19, email=z@unknown.org",),
    )
    # 1 of 10 = 10 % > 5 %: the import fails
    with pytest.raises(ExportError, match=r"10\.0% of the records match no account"):
        keys(max_unmatched_share=0.05).match(
            "zendesk", "support_tickets", records.head(9).vstack(records.tail(1)), key="org", email="email"
        )
    # (the weighted form: one distinct id standing for 9 records of 10 unmatched -> 90 %)
    weighted = pl.DataFrame({"group": ["cus_1", "nope"], "n": [1, 9]})
    with pytest.raises(ExportError, match=r"90\.0%") as err:
        keys().match("segment", "usage_events", weighted, key="group", weight="n")
    assert err.value.problems[0].count == 9


def test_a_record_matching_two_accounts_is_an_error():
    shared = AccountKeys(
        pl.DataFrame({"account_id": ["cus_1", "cus_2"], "domain": ["acme.com", "acme.com"]}),
        pl.DataFrame({"account_id": []}, schema={"account_id": pl.String}),
        AccountSettings(),
    )
    with pytest.raises(ExportError, match="matches two accounts by domain") as err:
        shared.match("hubspot", "leads", pl.DataFrame({"email": ["ana@acme.com"]}), email="email")
    assert err.value.problems[0].examples == ("email=ana@acme.com -> cus_1, cus_2",)


def _folder(tmp_path: Path) -> Path:
    out = tmp_path / "mine"
    out.mkdir()
    pl.DataFrame(
        {
            "account_id": ["cus_1", "cus_2"],
            "segment": ["smb", "smb"],
            "created_at": ["2024-01-01T00:00:00Z"] * 2,
            "domain": ["acme.com", None],
        }
    ).write_csv(out / "accounts.csv")
    pl.DataFrame(
        {
            "subscription_id": ["s1"],
            "account_id": ["cus_1"],
            "start_date": ["2024-01-01"],
            "end_date": [None],
            "amount": [100.0],
        }
    ).write_csv(out / "subscriptions.csv")
    return out


def test_id_map_file_is_checked(tmp_path):
    out = _folder(tmp_path)
    (tmp_path / "ids.csv").write_text("account_id,hubspot,domain\ncus_1,7,\ncus_2,7,globex.io\ncus_9,8,\n")
    (tmp_path / "accounts.yaml").write_text("id_map: ids.csv\n")
    with pytest.raises(ExportError) as err:
        account_keys(out, tmp_path / "accounts.yaml")
    assert [p.code for p in err.value.problems] == ["id_map.unknown_account", "id_map.two_accounts"]
    (tmp_path / "ids.csv").write_text("account_id,hubspot,domain\ncus_1,7,\ncus_2,8,globex.io\n")
    k = account_keys(out, tmp_path / "accounts.yaml")
    # the map's domain joins the account's own: globex.io -> cus_2
    assert (
        k.match("intercom", "support_tickets", pl.DataFrame({"e": ["x@globex.io"]}), email="e").frame["account_id"][0]
        == "cus_2"
    )


def test_the_billing_import_comes_first(tmp_path):
    with pytest.raises(ParameterError, match="import the billing data into it first"):
        account_keys(tmp_path)


def test_bad_settings_name_the_key(tmp_path):
    (tmp_path / "accounts.yaml").write_text("systems: {hubspot: [by_magic]}\n")
    with pytest.raises(ParameterError, match=r"systems\.hubspot\.0"):
        account_keys(_folder(tmp_path), tmp_path / "accounts.yaml")


def test_an_import_keeps_the_tables_of_other_imports(tmp_path, capsys):
    """A billing re-import replaces its own tables and keeps another system's table and report."""
    exports = Path(__file__).parent.parent / "docs" / "examples" / "invoices"
    out = tmp_path / "mine"
    assert (
        cli.main(["import", "invoices", str(exports), "--out", str(out), "--fx-rates", str(exports / "fx_rates.csv")])
        == 0
    )
    accounts = pl.read_parquet(out / "accounts.parquet")
    pl.DataFrame(
        {
            "ticket_id": ["t1"],
            "account_id": [accounts["account_id"][0]],
            "created_at": ["2024-05-01T00:00:00Z"],
            "priority": ["low"],
        }
    ).write_csv(out / "support_tickets.csv")
    (out / "import-report-desk.json").write_text(json.dumps({"rows_written": {"support_tickets": 1}}))
    assert (
        cli.main(["import", "invoices", str(exports), "--out", str(out), "--fx-rates", str(exports / "fx_rates.csv")])
        == 0
    )
    assert (out / "support_tickets.csv").exists() and (out / "import-report-desk.json").exists()
    report = json.loads((out / "import-report.json").read_text())
    assert report["tables_kept"] == ["support_tickets"]
    assert "Tables kept from other imports" in (out / "import-report.md").read_text()


def test_import_base_is_a_valid_source_with_domains(tmp_path):
    from conftest import import_base

    out = import_base(tmp_path / "base", ["A00001", "A00002"])
    k = account_keys(out)
    assert k.accounts.sort("account_id").rows() == [("A00001", "a00001.example.com"), ("A00002", "a00002.example.com")]
