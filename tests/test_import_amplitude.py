"""Amplitude -> users and usage_events (importers/amplitude.py): literal cases by hand, from a CSV export and a zip."""

from __future__ import annotations

import gzip
import json
import zipfile

import polars as pl
from conftest import run
from product_export import billing_base

COLUMNS = [
    "event_type",
    "user_id",
    "device_id",
    "amplitude_id",
    "event_time",
    "groups",
    "event_properties",
    "user_properties",
    "user_creation_time",
]


def export_rows() -> list[tuple]:
    g = lambda *ids: json.dumps({"company": list(ids)}) if ids else "{}"  # noqa: E731
    rows = [  # event_type, user_id, device_id, amplitude_id, event_time, groups, event_properties, user_properties, creation
        ("report_viewed", "", "d1", "11", "2024-03-01 08:00:00.000000", g(), '{"duration_seconds": 40}', "{}", ""),
        (
            "$identify",
            "ana",
            "d1",
            "11",
            "2024-03-01 09:00:00.000000",
            g("cus_1"),
            "{}",
            '{"referred_by": "bob"}',
            "2024-03-01 09:00:00.000000",
        ),
        (
            "Activated",
            "ana",
            "d1",
            "11",
            "2024-03-01 09:30:00.000000",
            g("cus_1"),
            "{}",
            "{}",
            "2024-03-01 09:00:00.000000",
        ),
        (
            "report_viewed",
            "ana",
            "d1",
            "11",
            "2024-03-02 10:00:00.000000",
            g("cus_1"),
            '{"duration_seconds": 20}',
            "{}",
            "2024-03-01 09:00:00.000000",
        ),
        # d2 never sent a user id, but shares Amplitude's merged user 22 with bob: bob's event
        ("dashboard_shared", "", "d2", "22", "2024-03-03 10:00:00.000000", g(), "{}", "{}", ""),
        (
            "dashboard_shared",
            "bob",
            "d3",
            "22",
            "2024-03-04 10:00:00.000000",
            g(),
            "{}",
            '{"email": "Bob@Globex.io"}',
            "2024-02-20 00:00:00.000000",
        ),
    ]
    return rows


def test_device_ids_merge_into_the_user_and_groups_or_email_find_the_account(tmp_path, capsys):
    exports = tmp_path / "exports"
    exports.mkdir()
    pl.DataFrame(export_rows(), orient="row", schema=COLUMNS).write_csv(exports / "export.csv")
    out = billing_base(tmp_path)
    code, _, err = run(capsys, "import", "amplitude", str(exports), "--out", str(out))
    assert (code, err) == (0, ""), err
    users = pl.read_parquet(out / "users.parquet")
    # ana: group cus_1 (same id); created at user_creation_time 09:00 (the earlier device event does not move it),
    # activated 09:30, referred by bob. bob: no group, e-mail domain globex.io -> cus_2; created 20 Feb
    assert users.select("user_id", "account_id", "referred_by").rows() == [
        ("ana", "cus_1", "bob"),
        ("bob", "cus_2", None),
    ]
    assert users["created_at"].dt.strftime("%m-%d %H:%M").to_list() == ["03-01 09:00", "02-20 00:00"]
    assert users["activated_at"].dt.strftime("%m-%d %H:%M").to_list() == ["03-01 09:30", None]
    events = pl.read_parquet(out / "usage_events.parquet").sort("event_time")
    # 6 events - $identify (skipped) - Activated (not usage) = 4; d1's event is ana's, d2's is bob's
    assert events.select("user_id", "account_id", "feature", "duration_seconds").rows() == [
        ("ana", "cus_1", "report_viewed", 40),
        ("ana", "cus_1", "report_viewed", 20),
        ("bob", "cus_2", "dashboard_shared", None),
        ("bob", "cus_2", "dashboard_shared", None),
    ]
    report = json.loads((out / "import-report-amplitude.json").read_text())
    assert report["files_read"] == [{"file": "export.csv", "table": "events", "rows": 6}]
    assert report["set_aside"] == []


def test_the_export_apis_zip_is_read_as_downloaded(tmp_path, capsys):
    """The Export API's zip: a folder named by the project holding one gzipped JSON lines file per hour."""
    records = [
        {c: (json.loads(v) if c.endswith(("groups", "properties")) else v or None) for c, v in zip(COLUMNS, row)}
        for row in export_rows()
    ]
    zipped = tmp_path / "export.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for hour, part in (("8", records[:3]), ("10", records[3:])):
            lines = "".join(json.dumps(r) + "\n" for r in part).encode()
            archive.writestr(f"187520/187520_2024-03-01_{hour}#0.json.gz", gzip.compress(lines, mtime=0))
    before = zipped.read_bytes()
    csv = tmp_path / "csv"
    csv.mkdir()
    pl.DataFrame(export_rows(), orient="row", schema=COLUMNS).write_csv(csv / "export.csv")
    got, want = billing_base(tmp_path / "zip"), billing_base(tmp_path / "from_csv")
    for exports, out in ((zipped, got), (csv, want)):
        code, _, err = run(capsys, "import", "amplitude", str(exports), "--out", str(out))
        assert (code, err) == (0, ""), err
    for table in ("users", "usage_events"):
        assert pl.read_parquet(got / f"{table}.parquet").equals(pl.read_parquet(want / f"{table}.parquet")), table
    report = json.loads((got / "import-report-amplitude.json").read_text())
    assert report["files_read"] == [
        {"file": "export.zip/187520/187520_2024-03-01_10#0.json.gz", "table": "events", "rows": 3},
        {"file": "export.zip/187520/187520_2024-03-01_8#0.json.gz", "table": "events", "rows": 3},
    ]
    assert zipped.read_bytes() == before  # the export as it was


def test_problems_in_a_zip_name_the_archive_and_its_member(tmp_path, capsys):
    """A broken line, and a file without a needed column: named as the zip as given and the member in it."""
    good = json.dumps({"event_type": "a", "user_id": "ana", "event_time": "2024-03-01 08:00:00.000000"})
    zipped = tmp_path / "export.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("187520/187520_2024-03-01_8#0.json.gz", gzip.compress(f"{good}\nnot json\n".encode()))
    out = billing_base(tmp_path)
    code, _, err = run(capsys, "import", "amplitude", str(zipped), "--out", str(out))
    assert code == 2
    assert "saaskpi-zip-" not in err, err
    assert "[source.broken_json_line] export.zip/187520/187520_2024-03-01_8#0.json.gz: " in err, err
    assert "line 2: 'not json'" in err, err
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("187520/187520_2024-03-01_8#0.json.gz", gzip.compress(b'{"event_type": "a"}\n'))
    code, _, err = run(capsys, "import", "amplitude", str(zipped), "--out", str(out))
    assert code == 2
    assert f"The exports in {zipped} cannot be imported: 1 problem." in err, err
    assert "[events.missing_column] export.zip/187520/187520_2024-03-01_8#0.json.gz.event_time: is not in" in err, err
    with zipfile.ZipFile(zipped, "w") as archive:  # a member that says .gz and is not gzip
        archive.writestr("187520/187520_2024-03-01_8#0.json.gz", b"plain text")
    code, _, err = run(capsys, "import", "amplitude", str(zipped), "--out", str(out))
    assert code == 2 and "saaskpi-zip-" not in err, err
    assert "export.zip/187520/187520_2024-03-01_8#0.json.gz is not gzip" in err, err
