"""`saaskpi import zendesk`: Zendesk tickets, ticket metrics, organisations, users and both kinds of CSAT ->
support_tickets. Literal cases with hand arithmetic, and the round trip of ~150 demo accounts' tickets through
both file shapes (JSON lines, CSV with JSON text)."""

from __future__ import annotations

import json
import shutil
import textwrap
import zipfile
from pathlib import Path

import polars as pl
import pytest
from conftest import digest, import_base, run, two_account_base
from desk_export import (
    demo_support,
    expected_folder,
    page_differences,
    sample_accounts,
    write_accounts_settings,
    write_zendesk,
    zendesk_view,
)
from polars.testing import assert_frame_equal


# --------------------------------------------------------------------------- literal cases
def _base(tmp_path: Path) -> tuple[Path, Path]:
    """An --out folder with two accounts (acme.com; globex.io) and accounts.yaml whose id map gives Zendesk
    organisation 7001 to cus_2."""
    out = two_account_base(tmp_path / "mine")
    (tmp_path / "ids.csv").write_text("account_id,zendesk\ncus_2,7001\n")
    (tmp_path / "accounts.yaml").write_text("id_map: ids.csv\nmax_unmatched_share: 0.5\n")
    return out, tmp_path / "accounts.yaml"


def _exports(folder: Path, **streams: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in streams.items():
        (folder / name).write_text(textwrap.dedent(body).strip() + "\n")
    return folder


TICKETS = """
    {"id": 1, "created_at": "2024-03-01T16:30:00Z", "priority": "high", "status": "solved", "organization_id": 5001, "requester_id": 11}
    {"id": 2, "created_at": "2024-03-04T10:00:00Z", "priority": null, "status": "open", "organization_id": 7001, "requester_id": 12}
    {"id": 3, "created_at": "2024-03-05T08:00:00Z", "priority": "urgent", "status": "closed", "organization_id": null, "requester_id": 13}
    {"id": 4, "created_at": "2024-03-06T08:00:00Z", "priority": "low", "status": "solved", "organization_id": 5001, "requester_id": 11}
"""
METRICS = """
    {"ticket_id": 1, "replies": 1, "solved_at": "2024-03-04T12:00:00Z", "reply_time_in_minutes": {"calendar": 3900, "business": 60}, "full_resolution_time_in_minutes": {"calendar": 4050, "business": 210}}
    {"ticket_id": 2, "replies": 0, "solved_at": null, "reply_time_in_minutes": {"calendar": null, "business": null}, "full_resolution_time_in_minutes": {"calendar": null, "business": null}}
    {"ticket_id": 3, "replies": 3, "solved_at": null, "reply_time_in_minutes": {"calendar": 30, "business": 30}, "full_resolution_time_in_minutes": {"calendar": 600, "business": 540}}
    {"ticket_id": 4, "replies": 2, "solved_at": "2024-03-06T09:00:00Z", "reply_time_in_minutes": {"calendar": 45, "business": 0}, "full_resolution_time_in_minutes": {"calendar": 60, "business": 0}}
"""
ORGS = """
    {"id": 5001, "name": "Acme", "domain_names": ["acme.com"]}
    {"id": 7001, "name": "Globex (by the id map)", "domain_names": []}
"""
USERS = """
    {"id": 11, "email": "ana@acme.com"}
    {"id": 12, "email": "bob@gmail.com"}
    {"id": 13, "email": "eve@globex.io"}
"""
LEGACY = """
    {"id": 901, "ticket_id": 1, "score": "bad", "updated_at": "2024-03-04T13:00:00Z"}
    {"id": 902, "ticket_id": 4, "score": "good", "updated_at": "2024-03-06T10:00:00Z"}
    {"id": 903, "ticket_id": 3, "score": "offered", "updated_at": "2024-03-05T18:00:00Z"}
"""
SURVEY = """
    {"id": "01HX1", "subject_zrns": ["zen:ticket:4"], "created_at": "2024-03-06T11:00:00Z", "answers": [{"type": "rating_scale", "rating": 4}]}
"""


def _import(capsys, exports: Path, out: Path, accounts: Path, *extra: str) -> tuple[int, str]:
    code, _, err = run(
        capsys, "import", "zendesk", str(exports), "--out", str(out), "--accounts", str(accounts), *extra
    )
    return code, err


def test_calendar_and_business_minutes_ratings_and_accounts(tmp_path, capsys):
    out, accounts = _base(tmp_path)
    exports = _exports(
        tmp_path / "zd",
        **{
            "tickets.jsonl": TICKETS,
            "ticket_metrics.jsonl": METRICS,
            "organizations.jsonl": ORGS,
            "users.jsonl": USERS,
            "satisfaction_ratings.jsonl": LEGACY,
            "survey_responses.jsonl": SURVEY,
        },
    )
    before = digest(exports)
    assert _import(capsys, exports, out, accounts) == (0, "")
    t = pl.read_parquet(out / "support_tickets.parquet")
    at = lambda s: pl.Series([s]).str.to_datetime(time_unit="us", time_zone="UTC")[0] if s else None  # noqa: E731
    # ticket 1: Fri 16:30 + 3,900 calendar minutes (65 h) = Mon 09:30; solved_at Mon 12:00; legacy bad -> 1;
    #           organisation 5001 (not in the id map) -> its domain acme.com -> cus_1
    # ticket 2: no priority -> normal; open, never answered; organisation 7001 -> the id map -> cus_2;
    #           0 replies -> 1 contact
    # ticket 3: no organisation -> requester eve@globex.io -> cus_2; closed without solved_at: created 08:00 +
    #           600 minutes = 18:00; `offered` is no rating
    # ticket 4: the survey response (4) wins over the older legacy good (5); 08:00 + 45 minutes = 08:45
    assert t.to_dicts() == [
        {
            "ticket_id": "1",
            "account_id": "cus_1",
            "created_at": at("2024-03-01T16:30:00Z"),
            "priority": "high",
            "first_response_at": at("2024-03-04T09:30:00Z"),
            "resolved_at": at("2024-03-04T12:00:00Z"),
            "contacts": 1,
            "csat": 1,
        },
        {
            "ticket_id": "2",
            "account_id": "cus_2",
            "created_at": at("2024-03-04T10:00:00Z"),
            "priority": "normal",
            "first_response_at": None,
            "resolved_at": None,
            "contacts": 1,
            "csat": None,
        },
        {
            "ticket_id": "3",
            "account_id": "cus_2",
            "created_at": at("2024-03-05T08:00:00Z"),
            "priority": "urgent",
            "first_response_at": at("2024-03-05T08:30:00Z"),
            "resolved_at": at("2024-03-05T18:00:00Z"),
            "contacts": 3,
            "csat": None,
        },
        {
            "ticket_id": "4",
            "account_id": "cus_1",
            "created_at": at("2024-03-06T08:00:00Z"),
            "priority": "low",
            "first_response_at": at("2024-03-06T08:45:00Z"),
            "resolved_at": at("2024-03-06T09:00:00Z"),
            "contacts": 2,
            "csat": 4,
        },
    ]
    assert digest(exports) == before
    report = json.loads((out / "import-report-zendesk.json").read_text())
    assert report["rows_written"]["support_tickets"] == 4 and report["set_aside"] == []
    assert report["zendesk_settings"]["first_response_minutes"] == "calendar"

    # business minutes: ticket 1 was created Friday 16:30 and answered Monday 09:30; in business hours (09-17) that is
    # 30 minutes on Friday + 30 on Monday = 60 -> first_response_at = 16:30 + 60 min = 17:30 (4.0 h less than 65 h)
    (tmp_path / "zendesk.yaml").write_text("first_response_minutes: business\nsatisfaction: {good: 4, bad: 2}\n")
    assert _import(capsys, exports, out, accounts, "--settings", str(tmp_path / "zendesk.yaml")) == (0, "")
    t = pl.read_parquet(out / "support_tickets.parquet")
    assert t.get_column("first_response_at").to_list()[0] == at("2024-03-01T17:30:00Z")
    assert t.get_column("first_response_at").to_list()[3] == at("2024-03-06T08:00:00Z")  # 0 business minutes
    assert t.get_column("csat").to_list() == [2, None, None, 4]  # legacy bad -> 2 by the setting; the survey's 4 stays


def test_the_legacy_rating_on_the_ticket_counts_without_a_ratings_export(tmp_path, capsys):
    out, accounts = _base(tmp_path)
    tickets = TICKETS.replace('"requester_id": 11}', '"requester_id": 11, "satisfaction_rating": {"score": "good"}}', 1)
    exports = _exports(
        tmp_path / "zd",
        **{
            "tickets.jsonl": tickets,
            "ticket_metrics.jsonl": METRICS,
            "organizations.jsonl": ORGS,
            "users.jsonl": USERS,
        },
    )
    assert _import(capsys, exports, out, accounts) == (0, "")
    assert pl.read_parquet(out / "support_tickets.parquet").get_column("csat").to_list() == [5, None, None, None]


def test_unmatched_tickets_set_aside_below_the_threshold_and_fail_above(tmp_path, capsys):
    out, accounts = _base(tmp_path)
    users = USERS.replace("eve@globex.io", "eve@initech.org")  # ticket 3 now matches nothing
    exports = _exports(
        tmp_path / "zd",
        **{
            "tickets.jsonl": TICKETS,
            "ticket_metrics.jsonl": METRICS,
            "organizations.jsonl": ORGS,
            "users.jsonl": users,
        },
    )
    assert _import(capsys, exports, out, accounts) == (0, "")  # 1 of 4 = 25 % <= 50 %
    report = json.loads((out / "import-report-zendesk.json").read_text())
    assert report["set_aside"] == [
        {
            "reason": "unmatched_account",
            "table": "support_tickets",
            "count": 1,
            "examples": ["address=eve@initech.org"],
            "meaning": "matches no account by id_map, domain, same_id; left out",
        }
    ]
    assert report["rows_written"]["support_tickets"] == 3
    before = digest(out)
    (tmp_path / "accounts.yaml").write_text("id_map: ids.csv\nmax_unmatched_share: 0.2\n")
    code, err = _import(capsys, exports, out, accounts)
    # 25 % > 20 %: exit 2, the earlier import in --out untouched
    assert code == 2 and "[zendesk.unmatched_accounts] support_tickets.organization_id: 25.0% of the records" in err
    assert digest(out) == before


# --------------------------------------------------------------------------- round trip of the demo
@pytest.fixture(scope="module")
def demo_desk(tmp_path_factory):
    """~150 demo accounts: the import base, accounts.yaml with the id map, their tickets as Zendesk holds them."""
    root = tmp_path_factory.mktemp("zendesk_round_trip")
    accounts = sample_accounts()
    base = import_base(root / "base", accounts)
    settings = write_accounts_settings(root / "settings", accounts)
    tickets = demo_support(accounts)
    expected = expected_folder(base, root / "expected", zendesk_view(tickets))
    return root, accounts, base, settings, tickets, expected


@pytest.mark.parametrize("shape", ["jsonl", "csv"])
def test_round_trip_equals_the_demo(demo_desk, shape, capsys):
    root, accounts, base, settings, tickets, expected = demo_desk
    exports = write_zendesk(root / f"exports_{shape}", tickets, accounts, shape)
    out = root / f"out_{shape}"
    shutil.copytree(base, out)
    code, _, err = run(capsys, "import", "zendesk", str(exports), "--out", str(out), "--accounts", str(settings))
    assert (code, err) == (0, "")
    got = pl.read_parquet(out / "support_tickets.parquet")
    want = pl.read_parquet(expected / "support_tickets.parquet")
    assert_frame_equal(got.sort("ticket_id"), want.sort("ticket_id"))
    # both ways of finding the account were used, and both kinds of rating
    assert got.get_column("account_id").n_unique() == tickets.get_column("account_id").n_unique()
    assert set(got.get_column("csat").drop_nulls()) == {1, 2, 3, 4, 5}
    if shape == "jsonl":  # the tables are equal: the pages are checked once
        assert page_differences(out, expected) == []


def test_the_documented_examples_import(tmp_path, capsys):
    """docs/your-data.md: the invoice example, then docs/examples/zendesk and docs/examples/intercom into the same folder."""
    docs = Path(__file__).parent.parent / "docs" / "examples"
    out = tmp_path / "mine"
    assert (
        run(
            capsys,
            "import",
            "invoices",
            str(docs / "invoices"),
            "--out",
            str(out),
            "--fx-rates",
            str(docs / "invoices" / "fx_rates.csv"),
        )[0]
        == 0
    )
    code, stdout, err = run(capsys, "import", "zendesk", str(docs / "zendesk"), "--out", str(out))
    assert (code, err) == (0, "") and "support_tickets 5; 1 row(s) set aside (see import-report-zendesk.md)" in stdout
    code, stdout, err = run(capsys, "import", "intercom", str(docs / "intercom"), "--out", str(out))
    assert (code, err) == (0, "") and "support_tickets 3." in stdout
    # both write support_tickets: one help desk per folder, the later import replaces the table (docs/your-data.md)
    assert pl.read_parquet(out / "support_tickets.parquet").height == 3
    assert run(capsys, "validate", str(out))[0] == 0


def test_organisations_by_their_external_id(tmp_path, capsys):
    """organization_key: external_id with `zendesk: [same_id]`: Globex's external_id is the billing id cus_2."""
    out, accounts = _base(tmp_path)
    (tmp_path / "accounts.yaml").write_text("systems: {zendesk: [same_id, domain]}\n")
    orgs = ORGS.replace('"name": "Globex (by the id map)"', '"name": "Globex", "external_id": "cus_2"')
    exports = _exports(
        tmp_path / "zd",
        **{
            "tickets.jsonl": TICKETS,
            "ticket_metrics.jsonl": METRICS,
            "organizations.jsonl": orgs,
            "users.jsonl": USERS,
        },
    )
    (tmp_path / "zendesk.yaml").write_text("organization_key: external_id\n")
    assert _import(capsys, exports, out, accounts, "--settings", str(tmp_path / "zendesk.yaml")) == (0, "")
    # 1, 4: Acme has no external_id -> acme.com -> cus_1; 2: external_id cus_2; 3: no organisation -> globex.io
    assert pl.read_parquet(out / "support_tickets.parquet").get_column("account_id").to_list() == [
        "cus_1",
        "cus_2",
        "cus_2",
        "cus_1",
    ]


def test_bad_settings_name_the_key(tmp_path, capsys):
    out, accounts = _base(tmp_path)
    exports = _exports(tmp_path / "zd", **{"tickets.jsonl": TICKETS, "ticket_metrics.jsonl": METRICS})
    (tmp_path / "zendesk.yaml").write_text("first_response_minutes: wall\npriority: {p1: critical}\n")
    code, err = _import(capsys, exports, out, accounts, "--settings", str(tmp_path / "zendesk.yaml"))
    assert code == 2 and "zendesk.yaml: 2 problem(s)" in err
    assert "`first_response_minutes`: Input should be 'calendar' or 'business' (got 'wall')" in err
    assert "`priority.p1`: Input should be 'low', 'normal', 'high' or 'urgent' (got 'critical')" in err
    assert not (out / "support_tickets.parquet").exists()


def test_a_zip_of_the_streams_reads_as_the_folder(tmp_path, capsys):
    """docs/examples/zendesk zipped (in a folder of its own, as a zip of a folder is): the same tickets."""
    docs = Path(__file__).parent.parent / "docs" / "examples"
    zipped = tmp_path / "zendesk-export.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted((docs / "zendesk").iterdir()):
            archive.write(path, f"zendesk/{path.name}")
    tickets = []
    for source in (docs / "zendesk", zipped):
        out = tmp_path / source.stem / "mine"
        args = ["import", "invoices", str(docs / "invoices"), "--out", str(out)]
        assert run(capsys, *args, "--fx-rates", str(docs / "invoices" / "fx_rates.csv"))[0] == 0
        code, stdout, err = run(capsys, "import", "zendesk", str(source), "--out", str(out))
        assert (code, err) == (0, "") and "support_tickets 5; 1 row(s) set aside" in stdout, err
        tickets.append(pl.read_parquet(out / "support_tickets.parquet"))
    assert tickets[0].equals(tickets[1])
