"""`saaskpi import intercom`: Intercom conversations (statistics, ratings), contacts and companies ->
support_tickets. Literal cases with hand arithmetic, and the round trip of ~150 demo accounts' tickets through
both file shapes (JSON lines, CSV with JSON text)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import polars as pl
import pytest
from conftest import digest, import_base, run, two_account_base
from desk_export import (
    INTERCOM_ROUND_TRIP_SETTINGS,
    demo_support,
    expected_folder,
    intercom_view,
    page_differences,
    sample_accounts,
    write_accounts_settings,
    write_intercom,
)
from polars.testing import assert_frame_equal

# 1709310600 = 2024-03-01T16:30:00Z (a Friday); 1709544600 = 2024-03-04T09:30:00Z (Monday); 1709553600 = 12:00
CONVERSATIONS = """
    {"id": "101", "created_at": 1709310600, "state": "closed", "priority": "priority", "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "c1"}]}, "statistics": {"first_admin_reply_at": 1709544600, "time_to_admin_reply": 3600, "first_close_at": 1709546400, "last_close_at": 1709553600, "count_reopens": 1}, "conversation_rating": {"rating": 2, "created_at": 1709553700}}
    {"id": "102", "created_at": 1709546400, "state": "open", "priority": "not_priority", "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "c2"}]}, "statistics": {"first_admin_reply_at": null, "time_to_admin_reply": null, "first_close_at": null, "last_close_at": null, "count_reopens": 0}, "conversation_rating": null}
    {"id": "103", "created_at": "2024-03-05T08:00:00Z", "state": "snoozed", "priority": "not_priority", "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "c3"}]}, "statistics": {"first_admin_reply_at": 1709627400, "time_to_admin_reply": 1800, "first_close_at": 1709629200, "last_close_at": 1709629200, "count_reopens": 0}, "conversation_rating": {"rating": 5}}
"""
CONTACTS = """
    {"id": "c1", "email": "ana@acme.com", "companies": {"type": "list", "data": [{"type": "company", "id": "i1"}]}}
    {"id": "c2", "email": "bob@gmail.com", "companies": {"type": "list", "data": [{"type": "company", "id": "i2"}]}}
    {"id": "c3", "email": "eve@globex.io", "companies": {"type": "list", "data": []}}
"""
COMPANIES = """
    {"id": "i1", "company_id": "acme-1", "website": "https://www.acme.com"}
    {"id": "i2", "company_id": "glbx", "website": null}
"""


def _base(tmp_path: Path) -> tuple[Path, Path]:
    """An --out folder with two accounts (acme.com; globex.io) and accounts.yaml whose id map gives the Intercom
    company_id glbx to cus_2."""
    out = two_account_base(tmp_path / "mine")
    (tmp_path / "ids.csv").write_text("account_id,intercom\ncus_2,glbx\n")
    (tmp_path / "accounts.yaml").write_text("id_map: ids.csv\nsystems: {intercom: [id_map, domain]}\n")
    return out, tmp_path / "accounts.yaml"


def _exports(folder: Path, **streams: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in streams.items():
        (folder / name).write_text(textwrap.dedent(body).strip() + "\n")
    return folder


def _import(capsys, exports: Path, out: Path, accounts: Path, *extra: str) -> tuple[int, str]:
    code, _, err = run(
        capsys, "import", "intercom", str(exports), "--out", str(out), "--accounts", str(accounts), *extra
    )
    return code, err


def test_clock_and_business_reply_times_ratings_and_accounts(tmp_path, capsys):
    out, accounts = _base(tmp_path)
    exports = _exports(
        tmp_path / "ic",
        **{"conversations.jsonl": CONVERSATIONS, "contacts.jsonl": CONTACTS, "companies.jsonl": COMPANIES},
    )
    before = digest(exports)
    assert _import(capsys, exports, out, accounts) == (0, "")
    t = pl.read_parquet(out / "support_tickets.parquet")
    at = lambda s: pl.Series([s]).str.to_datetime(time_unit="us", time_zone="UTC")[0] if s else None  # noqa: E731
    # 101: company acme-1 is not in the id map -> its website acme.com -> cus_1; priority -> high; closed: resolved at
    #      last_close_at 12:00 (not first_close_at 10:00); 1 reopen -> 2 contacts; rated 2
    # 102: company glbx -> the id map -> cus_2 (bob writes from gmail.com); open: not resolved, never answered
    # 103: no company -> eve@globex.io -> cus_2; snoozed is not resolved although it was closed once;
    #      created 08:00, answered 1709627400 = 08:30
    assert t.to_dicts() == [
        {
            "ticket_id": "101",
            "account_id": "cus_1",
            "created_at": at("2024-03-01T16:30:00Z"),
            "priority": "high",
            "first_response_at": at("2024-03-04T09:30:00Z"),
            "resolved_at": at("2024-03-04T12:00:00Z"),
            "contacts": 2,
            "csat": 2,
        },
        {
            "ticket_id": "102",
            "account_id": "cus_2",
            "created_at": at("2024-03-04T10:00:00Z"),
            "priority": "normal",
            "first_response_at": None,
            "resolved_at": None,
            "contacts": 1,
            "csat": None,
        },
        {
            "ticket_id": "103",
            "account_id": "cus_2",
            "created_at": at("2024-03-05T08:00:00Z"),
            "priority": "normal",
            "first_response_at": at("2024-03-05T08:30:00Z"),
            "resolved_at": None,
            "contacts": 1,
            "csat": 5,
        },
    ]
    assert digest(exports) == before
    # business: created_at + time_to_admin_reply (office hours only): Fri 16:30 + 3,600 s = 17:30, not Monday 09:30
    (tmp_path / "intercom.yaml").write_text("first_response: business\n")
    assert _import(capsys, exports, out, accounts, "--settings", str(tmp_path / "intercom.yaml")) == (0, "")
    first = pl.read_parquet(out / "support_tickets.parquet").get_column("first_response_at").to_list()
    assert first == [at("2024-03-01T17:30:00Z"), None, at("2024-03-05T08:30:00Z")]


def test_an_unknown_priority_is_reported_not_guessed(tmp_path, capsys):
    out, accounts = _base(tmp_path)
    exports = _exports(
        tmp_path / "ic",
        **{
            "conversations.jsonl": CONVERSATIONS.replace('"not_priority"', '"urgentish"', 1),
            "contacts.jsonl": CONTACTS,
            "companies.jsonl": COMPANIES,
        },
    )
    code, err = _import(capsys, exports, out, accounts)
    assert (
        code == 2
        and "[conversations.unknown_value] conversations.priority: value 'urgentish' not in the `priority`" in err
    )
    assert "row 2: priority=urgentish" in err and not (out / "support_tickets.parquet").exists()


# --------------------------------------------------------------------------- round trip of the demo
@pytest.fixture(scope="module")
def demo_desk(tmp_path_factory):
    """~150 demo accounts: the import base, accounts.yaml with the id map, their tickets as Intercom holds them."""
    root = tmp_path_factory.mktemp("intercom_round_trip")
    accounts = sample_accounts()
    base = import_base(root / "base", accounts)
    settings = write_accounts_settings(root / "settings", accounts)
    (root / "intercom.yaml").write_text(INTERCOM_ROUND_TRIP_SETTINGS)
    tickets = demo_support(accounts)
    expected = expected_folder(base, root / "expected", intercom_view(tickets))
    return root, accounts, base, settings, tickets, expected


@pytest.mark.parametrize("shape", ["jsonl", "csv"])
def test_round_trip_equals_the_demo(demo_desk, shape, capsys):
    root, accounts, base, settings, tickets, expected = demo_desk
    exports = write_intercom(root / f"exports_{shape}", tickets, accounts, shape)
    out = root / f"out_{shape}"
    shutil.copytree(base, out)
    code, _, err = run(
        capsys,
        "import",
        "intercom",
        str(exports),
        "--out",
        str(out),
        "--accounts",
        str(settings),
        "--settings",
        str(root / "intercom.yaml"),
    )
    assert (code, err) == (0, "")
    got = pl.read_parquet(out / "support_tickets.parquet")
    assert_frame_equal(got.sort("ticket_id"), pl.read_parquet(expected / "support_tickets.parquet").sort("ticket_id"))
    if shape == "jsonl":  # the tables are equal: the pages are checked once
        assert page_differences(out, expected) == []


def test_an_api_page_and_a_csv_read_like_json_lines(tmp_path, capsys):
    """The same conversations as one API page (`conversations.json`: {"type": "conversation.list",
    "conversations": [...]}) and contacts / companies as CSV with the nested fields as JSON text give the same rows."""
    out, accounts = _base(tmp_path)
    lines = [json.loads(line) for line in textwrap.dedent(CONVERSATIONS).strip().splitlines()]
    page = {
        "type": "conversation.list",
        "pages": {"type": "pages", "page": 1, "total_pages": 1},
        "total_count": 3,
        "conversations": lines,
    }
    contacts = [json.loads(line) for line in textwrap.dedent(CONTACTS).strip().splitlines()]
    exports = tmp_path / "ic"
    exports.mkdir()
    (exports / "intercom_conversations.json").write_text(json.dumps(page))
    pl.DataFrame(
        {
            "id": [c["id"] for c in contacts],
            "email": [c["email"] for c in contacts],
            "companies": [json.dumps(c["companies"]) for c in contacts],
        }
    ).write_csv(exports / "contacts.csv")
    (exports / "companies.csv").write_text("id,company_id,website\ni1,acme-1,https://www.acme.com\ni2,glbx,\n")
    assert _import(capsys, exports, out, accounts) == (0, "")
    t = pl.read_parquet(out / "support_tickets.parquet")
    assert t.select("ticket_id", "account_id", "priority", "contacts", "csat").rows() == [
        ("101", "cus_1", "high", 2, 2),
        ("102", "cus_2", "normal", 1, None),
        ("103", "cus_2", "normal", 1, 5),
    ]
