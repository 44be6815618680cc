"""Salesforce import (importers/salesforce.py): Lead, Opportunity, Account, User, OpportunityHistory -> leads,
opportunities, team. Literal objects with the arithmetic in comments."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import polars as pl
from conftest import digest, run
from test_import_hubspot import base, write

SETTINGS = Path(__file__).parent.parent / "parameters" / "sources" / "salesforce.yaml"

OBJECTS = {
    "Opportunity.csv": """
        Id,Name,StageName,Amount,CloseDate,CreatedDate,IsWon,IsClosed,LeadSource,AccountId,OwnerId,Probability
        006A,Acme,Closed Won,12000,2024-03-02,2024-02-01T09:00:00.000Z,true,true,Web,001A,005X,100
        006B,Globex,Closed Lost,5000,2024-02-20,2024-02-10T00:00:00.000Z,false,true,Web,001B,005X,0
        006C,Initech,Negotiation/Review,7000,2024-07-01,2024-04-01T00:00:00.000Z,false,false,Trade Show,001C,005Y,90
        006D,Umbrella,Our Custom Won,3000,2024-05-01,2024-04-02T00:00:00.000Z,true,true,Web,001A,005Y,100
    """,
    "Lead.csv": """
        Id,FirstName,LastName,Company,Email,Status,LeadSource,CreatedDate,IsConverted,ConvertedDate,ConvertedOpportunityId,ConvertedAccountId,Segment__c
        00QA,A,A,Acme,a@acme.com,Converted,Web,2024-01-20T10:00:00.000Z,true,2024-02-01,006A,001A,smb
        00QB,B,B,Globex,b@gmail.com,Converted,Web,2024-02-01T00:00:00.000Z,true,2024-02-10,006B,001B,enterprise
        00QC,C,C,Initech,c@initech.com,Converted,Trade Show,2024-03-01T00:00:00.000Z,true,2024-04-01,006C,001C,enterprise
        00QD,D,D,Self,d@globex.io,Converted,,2024-03-03T00:00:00.000Z,true,2024-04-01,,001G,enterprise
        00QE,E,E,Nobody,e@nobody.org,Open,Phone Inquiry,2024-03-04T00:00:00.000Z,false,,,,smb
    """,
    "Account.csv": """
        Id,Name,Website
        001A,Acme,https://www.acme.com
        001B,Globex Prospect,
        001C,Initech,initech.com
        001G,Globex,globex.io
    """,
    "User.csv": """
        Id,Name,Email,Username,IsActive,CreatedDate,LastModifiedDate
        005X,Ana Lopez,ana@us.com,ana@us.com.sf,true,2023-06-01T00:00:00.000Z,2024-01-01T00:00:00.000Z
        005Y,Bo Chen,bo@us.com,bo@us.com.sf,false,2023-09-15T08:00:00.000Z,2024-05-01T00:00:00.000Z
    """,
    "OpportunityHistory.csv": """
        Id,OpportunityId,StageName,Amount,CreatedDate
        008A,006A,Prospecting,12000,2024-02-01T09:00:00.000Z
        008B,006A,Closed Won,12000,2024-03-02T15:30:00.000Z
        008C,006B,Closed Lost,5000,2024-02-20T12:00:00.000Z
    """,
}


def settings(tmp_path: Path, **changes) -> Path:
    import yaml

    data = yaml.safe_load(SETTINGS.read_text())
    data["segment_field"] = "Segment__c"
    data["team"]["members"] = {"005X": {"segment": "smb", "monthly_cost": 9000}}
    data.update(changes)
    path = tmp_path / "salesforce.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_objects_give_leads_opportunities_and_team(tmp_path, capsys):
    out, exports = base(tmp_path), write(tmp_path / "exports", OBJECTS)
    code, _, err = run(
        capsys, "import", "salesforce", str(exports), "--out", str(out), "--settings", str(settings(tmp_path))
    )
    assert (code, err) == (0, ""), err
    opps = pl.read_parquet(out / "opportunities.parquet")
    # 006A IsClosed+IsWon -> won; 006B IsClosed, not IsWon -> lost; 006C open: Negotiation/Review -> negotiation;
    # 006D "Our Custom Won" is in no mapping, but IsClosed+IsWon say won: a closed stage needs no mapping.
    # Accounts (won only): 001A -> www.acme.com -> cus_1 (006A and 006D)
    assert opps.select("opportunity_id", "stage", "lead_id", "account_id", "owner_id").rows() == [
        ("006A", "won", "00QA", "cus_1", "005X"),
        ("006B", "lost", "00QB", None, "005X"),
        ("006C", "negotiation", "00QC", None, "005Y"),
        ("006D", "won", None, "cus_1", "005Y"),
    ]
    # closed_at: 006A entered Closed Won at 15:30 (history), 006B at 12:00; 006D has no history -> its CloseDate
    assert opps["closed_at"].dt.strftime("%F %R").to_list() == [
        "2024-03-02 15:30",
        "2024-02-20 12:00",
        None,
        "2024-05-01 00:00",
    ]
    leads = pl.read_parquet(out / "leads.parquet")
    # 00QA converted on 2024-02-01 (when its opportunity was created); the opportunity was won on its CloseDate
    # 2024-03-02 -> cus_1 from then; 00QB's opportunity lost and 00QC's open: no account; 00QD converted without an
    # opportunity (self-serve) -> Account 001G globex.io -> cus_2 on its ConvertedDate; 00QE not converted
    assert leads.select("lead_id", "channel", "segment", "account_id").rows() == [
        ("00QA", "organic", "smb", "cus_1"),
        ("00QB", "organic", "enterprise", None),
        ("00QC", "events", "enterprise", None),
        ("00QD", "unknown", "enterprise", "cus_2"),
        ("00QE", "outbound", "smb", None),
    ]
    assert leads["converted_at"].dt.strftime("%F").to_list() == ["2024-03-02", None, None, "2024-04-01", None]
    team = pl.read_parquet(out / "team.parquet")
    # Bo is inactive: ends on his LastModifiedDate
    assert team.with_columns(pl.col("start_date", "end_date").cast(pl.String)).rows() == [
        ("005X", "Ana Lopez", "ae", "smb", "2023-06-01", None, 0, 9000.0),
        ("005Y", "Bo Chen", "ae", None, "2023-09-15", "2024-05-01", 0, None),
    ]
    assert run(capsys, "validate", str(out))[0] == 0


def test_an_unknown_open_stage_is_reported_and_nothing_written(tmp_path, capsys):
    out, files = base(tmp_path), dict(OBJECTS)
    files["Opportunity.csv"] = files["Opportunity.csv"].replace("Negotiation/Review", "Haggling")
    exports = write(tmp_path / "exports", files)
    before, kept = digest(exports), digest(out)
    code, stdout, err = run(
        capsys, "import", "salesforce", str(exports), "--out", str(out), "--settings", str(settings(tmp_path))
    )
    assert (code, stdout) == (2, "")
    assert (
        "[Opportunity.unknown_stage] Opportunity.stage: 1 value the mapping `stages`" in err
        and "'Haggling' (1 row)" in err
    )
    assert digest(exports) == before and digest(out) == kept


def test_a_lead_matching_two_accounts_is_an_error(tmp_path, capsys):
    out = base(tmp_path)
    accounts = pl.read_csv(out / "accounts.csv").with_columns(domain=pl.lit("acme.com"))
    accounts.write_csv(out / "accounts.csv")  # both accounts have the domain acme.com
    exports = write(tmp_path / "exports", OBJECTS)
    code, _, err = run(
        capsys, "import", "salesforce", str(exports), "--out", str(out), "--settings", str(settings(tmp_path))
    )
    assert code == 2 and "[salesforce.two_accounts] leads.account: matches two accounts by domain" in err, err
    assert "account=001A, address=https://www.acme.com -> cus_1, cus_2" in err


def test_a_field_the_settings_name_must_be_exported(tmp_path, capsys):
    out, exports = base(tmp_path), write(tmp_path / "exports", OBJECTS)
    code, _, err = run(
        capsys,
        "import",
        "salesforce",
        str(exports),
        "--out",
        str(out),
        "--settings",
        str(settings(tmp_path, pql_field="PQL_Date__c")),
    )
    assert code == 2 and "[Lead.missing_column] Lead.pql: no column for pql (any of: pqldatec, in any case" in err, err
    assert "named by `pql_field` in the settings" in err


def test_tasks_and_events_become_touchpoints(tmp_path, capsys):
    files = {
        **OBJECTS,
        "Task.csv": """
                 Id,WhatId,AccountId,OwnerId,Type,TaskSubtype,ActivityDate,CompletedDateTime,Sentiment__c
                 00T1,001A,001A,005X,Call,Call,2024-03-05,2024-03-05T10:15:00.000Z,Positive
                 00T2,001A,001A,005X,,Email,2024-03-06,,
                 00T3,001A,001A,005X,Other,Task,2024-03-07,,
                 00T4,,,005X,Call,Call,2024-03-08,,
             """,
        "Event.csv": """
                 Id,WhatId,AccountId,OwnerId,Type,EventSubtype,StartDateTime,ActivityDateTime,Sentiment__c
                 00U1,001G,001G,005Y,QBR,Event,2024-04-02T14:00:00.000Z,2024-04-02T14:00:00.000Z,neutral
             """,
    }
    out, exports = base(tmp_path), write(tmp_path / "exports", files)
    code, _, err = run(
        capsys,
        "import",
        "salesforce",
        str(exports),
        "--out",
        str(out),
        "--settings",
        str(settings(tmp_path, touchpoint_sentiment_field="Sentiment__c")),
    )
    assert (code, err) == (0, ""), err
    touch = pl.read_parquet(out / "cs_touchpoints.parquet")
    # 00T1 Call at its CompletedDateTime; 00T2 no Type -> its TaskSubtype Email, at its ActivityDate (not completed);
    # 00T3 Other -> skip; 00T4 has no account -> left out; 00U1 QBR on Account 001G (globex.io -> cus_2) by Bo (005Y)
    assert touch.select("touchpoint_id", "account_id", "csm_id", "kind", "sentiment").rows() == [
        ("00T1", "cus_1", "005X", "call", "positive"),
        ("00T2", "cus_1", "005X", "email", None),
        ("00U1", "cus_2", "005Y", "qbr", "neutral"),
    ]
    assert touch["occurred_at"].dt.strftime("%F %R").to_list() == [
        "2024-03-05 10:15",
        "2024-03-06 00:00",
        "2024-04-02 14:00",
    ]
    report = json.loads((out / "import-report-salesforce.json").read_text())
    assert (report["activities_skipped_by_kind"], report["activities_without_company"]) == (1, 1)


def test_the_data_export_zip_is_read_as_downloaded(tmp_path, capsys):
    """Salesforce's Data Export service gives a zip of one CSV per object: imported as it is, the same tables as
    from the unpacked folder; the zip is left as it was."""
    exports = write(tmp_path / "exports", OBJECTS)
    zipped = tmp_path / "WE_00D000000000001_1.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted(exports.iterdir()):
            archive.write(path, path.name)
    before = zipped.read_bytes()
    outs = []
    for name, source in (("folder", exports), ("zip", zipped)):
        out = base(tmp_path / name)
        code, _, err = run(
            capsys, "import", "salesforce", str(source), "--out", str(out), "--settings", str(settings(tmp_path))
        )
        assert (code, err) == (0, ""), err
        outs.append(out)
    for table in ("leads", "opportunities", "team"):
        got, want = (pl.read_parquet(o / f"{table}.parquet") for o in reversed(outs))
        assert got.equals(want), table
    read = json.loads((outs[1] / "import-report-salesforce.json").read_text())["files_read"]
    assert {"file": "WE_00D000000000001_1.zip/Opportunity.csv", "table": "Opportunity", "rows": 4} in read, read
    assert zipped.read_bytes() == before
    broken = tmp_path / "broken.zip"
    broken.write_bytes(before[: len(before) // 2])  # a download cut short
    code, _, err = run(capsys, "import", "salesforce", str(broken), "--out", str(base(tmp_path / "cut")))
    assert code == 2 and "[source.unreadable] broken.zip: broken.zip is not a zip archive" in err, err
    partial = tmp_path / "partial.zip"  # without Opportunity.csv: the message names the zip, not a scratch folder
    with zipfile.ZipFile(partial, "w") as archive:
        for path in sorted(exports.iterdir()):
            if path.name != "Opportunity.csv":
                archive.write(path, path.name)
    code, _, err = run(capsys, "import", "salesforce", str(partial), "--out", str(base(tmp_path / "partial")))
    assert code == 2 and f"no Opportunity export in {partial} (" in err and "saaskpi-zip-" not in err, err
