"""Segment -> users and usage_events (importers/segment.py, importers/product.py): literal cases by hand."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
from conftest import digest, run
from product_export import billing_base as base


def lines(*messages: dict) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


def track(
    event: str, at: str, user: str | None = None, anon: str | None = None, group: str | None = None, **props
) -> dict:
    m = {"type": "track", "event": event, "timestamp": at, "properties": props}
    if user:
        m["userId"] = user
    if anon:
        m["anonymousId"] = anon
    if group:
        m["context"] = {"groupId": group}
    return m


GROUPS = [
    {
        "type": "group",
        "userId": "ana",
        "groupId": "g-acme",
        "traits": {"website": "https://www.acme.com"},
        "timestamp": "2024-02-01T09:00:00Z",
    },
    {
        "type": "group",
        "userId": "bob",
        "groupId": "g-globex",
        "traits": {"website": "globex.io"},
        "timestamp": "2024-02-01T09:00:00Z",
    },
]


def imported(
    tmp_path, capsys, text: str, name: str = "events.jsonl", settings: str = ""
) -> tuple[Path, pl.DataFrame, pl.DataFrame]:
    exports = tmp_path / "exports"
    exports.mkdir(exist_ok=True)
    data = text.encode()
    (exports / name).write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    extra = []
    if settings:
        (tmp_path / "segment.yaml").write_text(settings)
        extra = ["--settings", str(tmp_path / "segment.yaml")]
    out = base(tmp_path)
    code, _, err = run(capsys, "import", "segment", str(exports), "--out", str(out), *extra)
    assert (code, err) == (0, ""), err
    users = pl.read_parquet(out / "users.parquet")
    events = pl.read_parquet(out / "usage_events.parquet").sort("event_time", "user_id")
    return out, users, events


def test_an_anonymous_event_before_the_first_identify_is_kept_and_attributed(tmp_path, capsys):
    text = lines(
        track("Report Viewed", "2024-02-01T08:00:00Z", anon="anon-1", duration_seconds=30),  # before identify
        {
            "type": "identify",
            "userId": "ana",
            "anonymousId": "anon-1",
            "timestamp": "2024-02-01T08:30:00Z",
            "traits": {"email": "ana@acme.com"},
        },
        *GROUPS,
        track("Activated", "2024-02-01T10:00:00Z", user="ana"),
        track("Dashboard Shared", "2024-02-02T10:00:00Z", user="ana"),
        track("Report Viewed", "2024-02-03T10:00:00Z", user="bob", duration_seconds=12.6),
        track("Report Viewed", "2024-02-03T11:00:00Z", anon="nobody"),  # never identified: set aside
    )
    out, users, events = imported(tmp_path, capsys, text)
    # ana: created at her first sighting (the anonymous event at 08:00 comes before the identify at 08:30, no
    # createdAt trait), activated at the Activated event (10:00); bob: no identify -> his first event
    assert users.select("user_id", "account_id", "referred_by").rows() == [
        ("ana", "cus_1", None),
        ("bob", "cus_2", None),
    ]
    assert users["created_at"].dt.strftime("%d %H:%M").to_list() == ["01 08:00", "03 10:00"]
    assert users["activated_at"].dt.strftime("%d %H:%M").to_list() == ["01 10:00", None]
    # 5 tracks - Activated (not usage) - the never-identified one = 3 usage events; anon-1's event is ana's
    assert events.select("user_id", "account_id", "feature", "duration_seconds").rows() == [
        ("ana", "cus_1", "Report Viewed", 30),
        ("ana", "cus_1", "Dashboard Shared", None),
        ("bob", "cus_2", "Report Viewed", 13),
    ]  # 12.6 s rounds to 13
    assert events["event"].to_list() == ["Report Viewed", "Dashboard Shared", "Report Viewed"]  # for product funnels
    report = json.loads((out / "import-report-segment.json").read_text())
    assert report["rows_written"] == {"users": 2, "usage_events": 3}
    (aside,) = report["set_aside"]
    assert (aside["reason"], aside["count"], aside["examples"]) == ("anonymous", 1, ["nobody"])


PAGES = lines(
    *GROUPS,
    track("Report Viewed", "2024-02-02T09:00:00Z", user="ana"),
    {"type": "page", "name": "Pricing", "userId": "ana", "timestamp": "2024-02-02T09:05:00Z"},
    {"type": "page", "userId": "bob", "timestamp": "2024-02-03T10:00:00Z", "properties": {"path": "/"}},
    {"type": "screen", "name": " Home ", "userId": "bob", "timestamp": "2024-02-04T10:00:00Z"},
    {"type": "page", "name": "Docs", "anonymousId": "anon-9", "timestamp": "2024-02-04T11:00:00Z"},  # never known
)


def test_page_and_screen_calls_are_usage_only_when_the_setting_says_so(tmp_path, capsys):
    # by default only the track is usage: bob, who only viewed pages, is neither active nor a user
    (tmp_path / "ignore").mkdir(), (tmp_path / "usage").mkdir()
    _, users, events = imported(tmp_path / "ignore", capsys, PAGES)
    assert events.select("user_id", "event").rows() == [("ana", "Report Viewed")]
    assert users["user_id"].to_list() == ["ana"]
    # page_calls: usage: each named page is "Viewed <name> Page", one without a name "Loaded a Page" (Segment's
    # Amplitude destination's names), screens likewise; the never-identified page view is set aside
    _, users, events = imported(tmp_path / "usage", capsys, PAGES, settings="page_calls: usage\n")
    assert users["user_id"].to_list() == ["ana", "bob"]
    assert events.select("user_id", "account_id", "feature", "event").rows() == [
        ("ana", "cus_1", "Report Viewed", "Report Viewed"),
        ("ana", "cus_1", "Viewed Pricing Page", "Viewed Pricing Page"),
        ("bob", "cus_2", "Loaded a Page", "Loaded a Page"),
        ("bob", "cus_2", "Viewed Home Screen", "Viewed Home Screen"),
    ]


def test_alias_merges_an_old_id_into_the_new_user(tmp_path, capsys):
    text = lines(
        {
            "type": "identify",
            "userId": "old-7",
            "timestamp": "2024-01-10T00:00:00Z",
            "traits": {"createdAt": "2024-01-05T00:00:00Z"},
        },
        track("Report Viewed", "2024-01-11T00:00:00Z", user="old-7"),
        {"type": "alias", "previousId": "old-7", "userId": "ana", "timestamp": "2024-01-20T00:00:00Z"},
        {"type": "identify", "userId": "ana", "timestamp": "2024-01-20T00:00:00Z"},
        track("Report Viewed", "2024-01-21T00:00:00Z", user="ana"),
        *GROUPS[:1],
    )
    out, users, events = imported(tmp_path, capsys, text)
    # old-7 is ana: one user, created at old-7's createdAt trait (5 Jan), both events hers
    assert users.select("user_id", "account_id").rows() == [("ana", "cus_1")]
    assert users["created_at"].dt.strftime("%Y-%m-%d").to_list() == ["2024-01-05"]
    assert events.select("user_id", "account_id").rows() == [("ana", "cus_1"), ("ana", "cus_1")]
    assert json.loads((out / "import-report-segment.json").read_text())["users_merged"] == {
        "ids": 2,
        "users": 1,
        "ids_merged_into_another": 1,
    }


TWO_ACCOUNTS = lines(
    {
        "type": "group",
        "userId": "ana",
        "groupId": "g-acme",
        "traits": {"website": "acme.com"},
        "timestamp": "2024-02-01T00:00:00Z",
    },
    {
        "type": "group",
        "userId": "ana",
        "groupId": "g-globex",
        "traits": {"website": "globex.io"},
        "timestamp": "2024-02-05T00:00:00Z",
    },
    track("Report Viewed", "2024-02-06T00:00:00Z", user="ana"),
)


def test_a_user_in_two_accounts_is_an_error(tmp_path, capsys):
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "events.jsonl").write_text(TWO_ACCOUNTS)
    out = base(tmp_path)
    before = digest(out)
    code, stdout, err = run(capsys, "import", "segment", str(exports), "--out", str(out))
    assert (code, stdout) == (2, "")
    assert "[segment.two_accounts] users.account_id: " in err and "ana in g-acme (cus_1), g-globex (cus_2)" in err, err
    assert digest(out) == before


def test_first_group_setting_takes_the_group_joined_first(tmp_path, capsys):
    _, users, events = imported(tmp_path, capsys, TWO_ACCOUNTS, settings="user_in_two_accounts: first_group\n")
    assert users.select("user_id", "account_id").rows() == [("ana", "cus_1")]  # g-acme joined 1 Feb, before 5 Feb
    assert events.get_column("account_id").to_list() == ["cus_1"]


def test_gzipped_json_lines(tmp_path, capsys):
    text = lines(*GROUPS, track("Report Viewed", "2024-02-03T10:00:00.250Z", user="bob", feature="reports"))
    _, users, events = imported(
        tmp_path, capsys, text, name="2024-02-03.json.gz", settings="feature_property: feature\n"
    )
    assert events.select("user_id", "account_id", "feature").rows() == [("bob", "cus_2", "reports")]
    assert events["event_time"].dt.strftime("%H:%M:%S%.3f").to_list() == ["10:00:00.250"]


def test_a_broken_json_line_is_reported_with_file_and_line(tmp_path, capsys):
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "events.jsonl").write_text(lines(*GROUPS) + '{"type": "track", "event": \n' + lines(GROUPS[0]))
    out = base(tmp_path)
    before = digest(exports)
    code, _, err = run(capsys, "import", "segment", str(exports), "--out", str(out))
    assert code == 2
    assert "[source.broken_json_line] events.jsonl: is not a JSON object on its line (1 row)" in err, err
    assert 'line 3: \'{"type": "track", "event":\'' in err
    assert digest(exports) == before and not (out / "users.parquet").exists()


def test_a_time_in_another_layout_than_the_files_first_rows_is_still_read(tmp_path, capsys):
    # the first 1,000 times have milliseconds (the fast fixed layout); the last has none and an offset: the file is
    # staged again reading every time in any layout
    tracks = [track("Report Viewed", f"2024-02-03T10:{i // 60:02d}:{i % 60:02d}.000Z", user="bob") for i in range(1000)]
    text = lines(*GROUPS, *tracks, track("Report Viewed", "2024-02-04T12:00:00+02:00", user="bob"))
    _, _, events = imported(tmp_path, capsys, text)
    assert events.height == 1001
    assert events["event_time"].dt.strftime("%d %H:%M:%S").to_list()[-1] == "04 10:00:00"  # 12:00 at +02:00 = 10:00 UTC


def test_the_same_exports_give_byte_identical_tables(tmp_path, capsys):
    text = lines(
        *GROUPS,
        *[track(f"F{i % 3}", f"2024-02-03T10:00:{i % 60:02d}.000Z", user=("ana", "bob")[i % 2]) for i in range(300)],
    )
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, _, _ = imported(tmp_path / "one", capsys, text)
    second, _, _ = imported(tmp_path / "two", capsys, text)
    for name in ("users.parquet", "usage_events.parquet"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_imported_events_are_stored_by_month_account_user_and_time(tmp_path, capsys):
    # given newest first and mixed: stored by month, then account (cus_1 = ana's, cus_2 = bob's), user and time
    text = lines(
        *GROUPS,
        track("C", "2024-03-02T10:00:00Z", user="bob"),
        track("B", "2024-03-05T10:00:00Z", user="ana"),
        track("A", "2024-02-20T10:00:00Z", user="bob"),
        track("D", "2024-03-01T10:00:00Z", user="ana"),
    )
    out, _, _ = imported(tmp_path, capsys, text)
    stored = pl.read_parquet(out / "usage_events.parquet")  # as stored, not sorted here
    # Feb: bob's A; Mar: ana's D (Mar 1), B (Mar 5), then bob's C
    assert stored["feature"].to_list() == ["A", "D", "B", "C"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # nothing staged is left behind
