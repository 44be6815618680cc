"""PostHog -> users and usage_events (importers/posthog.py): literal cases by hand."""

from __future__ import annotations

import json

import polars as pl
import pytest
from conftest import run
from product_export import billing_base


def event(name: str, distinct: str, at: str, person: str | None = None, **props) -> dict:
    return {"event": name, "distinct_id": distinct, "person_id": person, "timestamp": at, "properties": props}


@pytest.mark.parametrize("shape", ["jsonl", "parquet"])
def test_person_ids_identify_and_alias_merge_ids_into_users(tmp_path, capsys, shape):
    """JSON lines, or Parquet as PostHog's batch export writes it (`properties` as JSON text)."""
    events = [
        event("$pageview", "anon-1", "2024-04-01T08:00:00.000000+00:00", "p1", **{"$groups": {"company": "cus_1"}}),
        event("$identify", "ana", "2024-04-01T08:05:00.000000+00:00", "p1", **{"$anon_distinct_id": "anon-1"}),
        event(
            "report_viewed",
            "ana",
            "2024-04-01T09:00:00.000000+00:00",
            "p1",
            duration_seconds=30,
            **{"$groups": {"company": "cus_1"}},
        ),
        event(
            "$create_alias",
            "bob",
            "2024-04-02T08:00:00.000000+00:00",
            "p2",
            alias="bob-old",
            **{"$set": {"email": "bob@globex.io"}},
        ),
        event("report_viewed", "bob-old", "2024-04-02T09:00:00.000000+00:00"),  # no person_id: the alias links it
        event("$pageview", "anon-9", "2024-04-03T09:00:00.000000+00:00", "p9"),  # a person never identified
    ]
    exports = tmp_path / "exports"
    exports.mkdir()
    if shape == "jsonl":
        (exports / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    else:
        pl.DataFrame([{**e, "properties": json.dumps(e["properties"])} for e in events]).write_parquet(
            exports / "events.parquet"
        )
    (exports / "persons.jsonl").write_text(
        json.dumps(
            {
                "id": "p1",
                "distinct_ids": ["anon-1", "ana"],
                "is_identified": True,
                "created_at": "2024-03-31T12:00:00Z",
                "properties": {"referred_by": "bob"},
            }
        )
        + "\n"
    )
    out = billing_base(tmp_path)
    code, _, err = run(capsys, "import", "posthog", str(exports), "--out", str(out))
    assert (code, err) == (0, ""), err
    users = pl.read_parquet(out / "users.parquet")
    # ana (person p1, named by her $identify): cus_1 by $groups; created at the person's created_at (31 Mar 12:00)
    # bob (named by his $create_alias): no group, e-mail globex.io -> cus_2; created at his first sighting (2 Apr 08:00)
    assert users.select("user_id", "account_id", "referred_by").rows() == [
        ("ana", "cus_1", "bob"),
        ("bob", "cus_2", None),
    ]
    assert users["created_at"].dt.strftime("%m-%d %H:%M").to_list() == ["03-31 12:00", "04-02 08:00"]
    usage = pl.read_parquet(out / "usage_events.parquet").sort("event_time")
    # 6 events - $identify - $create_alias (skipped) - anon-9's (never identified) = 3
    assert usage.select("user_id", "account_id", "feature", "duration_seconds").rows() == [
        ("ana", "cus_1", "$pageview", None),
        ("ana", "cus_1", "report_viewed", 30),
        ("bob", "cus_2", "report_viewed", None),
    ]
    report = json.loads((out / "import-report-posthog.json").read_text())
    assert [(a["reason"], a["count"], a["examples"]) for a in report["set_aside"]] == [("anonymous", 1, ["anon-9"])]
    assert {f["file"]: f["rows"] for f in report["files_read"]} == {f"events.{shape}": 6, "persons.jsonl": 1}
