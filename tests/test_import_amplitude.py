"""Amplitude -> users and usage_events (importers/amplitude.py): literal cases by hand, from a CSV export."""

from __future__ import annotations

import json

import polars as pl
from conftest import run
from product_export import billing_base


def test_device_ids_merge_into_the_user_and_groups_or_email_find_the_account(tmp_path, capsys):
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
    exports = tmp_path / "exports"
    exports.mkdir()
    pl.DataFrame(
        rows,
        orient="row",
        schema=[
            "event_type",
            "user_id",
            "device_id",
            "amplitude_id",
            "event_time",
            "groups",
            "event_properties",
            "user_properties",
            "user_creation_time",
        ],
    ).write_csv(exports / "export.csv")
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
