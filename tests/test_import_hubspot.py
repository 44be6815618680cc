"""HubSpot import (importers/hubspot.py): deals, contacts, companies and owners -> opportunities, leads, team.
Literal exports with the arithmetic in comments; the export's headers and the API's property names; bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import polars as pl
from conftest import digest, run, two_account_base

SETTINGS = Path(__file__).parent.parent / "parameters" / "sources" / "hubspot.yaml"


def base(tmp_path: Path) -> Path:
    """An --out folder as a billing import leaves it: two accounts, acme.com and globex.io."""
    return two_account_base(tmp_path / "mine", segments=("smb", "enterprise"), amounts=(100.0, 900.0))


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).strip() + "\n")
    return folder


# The export's own headers (UI "Export" of each object, with the associations).
EXPORT = {
    "hubspot-crm-exports-all-deals-2024-06-01.csv": """
        Record ID,Deal Name,Deal Stage,Pipeline,Create Date,Close Date,Amount,Deal owner,Associated Company IDs,Associated Contact IDs
        9001,Acme new,Closed Won,Sales Pipeline,2024-02-01 09:00,2024-03-02 09:00,12000,Ana Lopez,501,101
        9002,Globex trial,Closed Lost,Sales Pipeline,2024-02-10 00:00,2024-02-20 12:00,5000,Ana Lopez,,102
        9003,Initech,Contract Sent,Sales Pipeline,2024-04-01 00:00,2024-07-01 00:00,,Bo Chen,,103
    """,
    "contacts.csv": """
        Record ID,First Name,Last Name,Email,Create Date,Original Source,Became a Marketing Qualified Lead Date,Became a Customer Date,Associated Company IDs,Segment
        101,A,A,a@acme.com,2024-01-20 10:00,Organic Search,2024-01-25 10:00,2024-03-02 09:00,501,smb
        102,B,B,b@gmail.com,2024-02-01 00:00,Paid Search,,,,mid_market
        103,C,C,c@initech.com,2024-03-01 00:00,OFFLINE,2024-03-05 00:00,,,enterprise
        104,D,D,d@globex.io,2024-03-03 00:00,,,2024-04-01 00:00,,enterprise
    """,
    "companies.csv": """
        Record ID,Company name,Company Domain Name
        501,Acme,www.acme.com
    """,
    "owners.csv": """
        id,email,firstName,lastName,userId,createdAt,updatedAt,archived
        31,ana@us.com,Ana,Lopez,1,2023-06-01T00:00:00Z,2023-06-01T00:00:00Z,false
        32,bo@us.com,Bo,Chen,2,2023-09-15T08:00:00Z,2024-05-01T00:00:00Z,true
    """,
}


def settings(tmp_path: Path, **changes) -> Path:
    import yaml

    data = yaml.safe_load(SETTINGS.read_text())
    data["segment_field"] = "Segment"
    data["team"]["members"] = {
        "ana@us.com": {"segment": "smb", "monthly_cost": 9000, "ramp_months": 3},
        "32": {"role": "sdr", "member_id": "T2"},
    }
    data.update(changes)
    path = tmp_path / "hubspot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_export_shape_gives_leads_opportunities_and_team(tmp_path, capsys):
    out, exports = base(tmp_path), write(tmp_path / "exports", EXPORT)
    code, _, err = run(
        capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(settings(tmp_path))
    )
    assert (code, err) == (0, ""), err
    leads = pl.read_parquet(out / "leads.parquet")
    # 101: company 501 -> www.acme.com -> cus_1, customer on 2024-03-02 09:00; MQL date -> pql_at
    # 102: no customer date -> no account; Paid Search -> paid_search
    # 103: OFFLINE (the API's value) -> outbound; 104: customer with no company -> its e-mail domain globex.io -> cus_2;
    #      no Original Source -> unknown
    assert leads.select("lead_id", "channel", "segment", "account_id").rows() == [
        ("101", "organic", "smb", "cus_1"),
        ("102", "paid_search", "mid_market", None),
        ("103", "outbound", "enterprise", None),
        ("104", "unknown", "enterprise", "cus_2"),
    ]
    assert leads["pql_at"].dt.strftime("%F %R").to_list() == ["2024-01-25 10:00", None, "2024-03-05 00:00", None]
    assert leads["converted_at"].dt.strftime("%F %R").to_list() == ["2024-03-02 09:00", None, None, "2024-04-01 00:00"]
    opps = pl.read_parquet(out / "opportunities.parquet")
    # Closed Won -> won, account by company 501; Closed Lost -> lost, no account (lost);
    # Contract Sent -> negotiation: open, so its Close Date (a forecast) is not read; no amount -> 0
    assert opps.select("opportunity_id", "stage", "amount", "lead_id", "account_id", "owner_id").rows() == [
        ("9001", "won", 12000.0, "101", "cus_1", "31"),
        ("9002", "lost", 5000.0, "102", None, "31"),
        ("9003", "negotiation", 0.0, "103", None, "T2"),
    ]
    assert opps["closed_at"].dt.strftime("%F %R").to_list() == ["2024-03-02 09:00", "2024-02-20 12:00", None]
    team = pl.read_parquet(out / "team.parquet")
    # Ana: the settings give segment, cost and ramp (role: the default ae); Bo: archived -> end date = updatedAt,
    # member_id from the settings, role sdr, ramp 0 (the contract's default), cost unknown
    assert team.with_columns(pl.col("start_date", "end_date").cast(pl.String)).rows() == [
        ("31", "Ana Lopez", "ae", "smb", "2023-06-01", None, 3, 9000.0),
        ("T2", "Bo Chen", "sdr", None, "2023-09-15", "2024-05-01", 0, None),
    ]
    report = json.loads((out / "import-report-hubspot.json").read_text())
    assert report["rows_written"] == {"leads": 4, "opportunities": 3, "team": 2}
    assert report["deals_without_amount"] == 1
    assert run(capsys, "validate", str(out))[0] == 0


# The API's property names as a loader lands them (Airbyte-style `properties_` prefix, epoch milliseconds, lists).
API = {
    "deals.csv": """
        id,properties_dealname,properties_dealstage,properties_pipeline,properties_createdate,properties_closedate,properties_amount,properties_hubspot_owner_id,properties_hs_date_entered_closedwon,companies,contacts
        9001,Acme,closedwon,default,1706778000000,,12000,31,1709370000000,[501],[101]
        9002,Globex,renewal_signed,renewals,1707523200000,1708430400000,5000,31,,[],[102]
        9003,Initech,stage_7,partner,1711929600000,,7000,31,,[],[103]
    """,
    "contacts.csv": """
        id,properties_email,properties_createdate,properties_hs_analytics_source,properties_hs_lifecyclestage_customer_date,companies
        101,a@acme.com,2024-01-20T10:00:00.000Z,DIRECT_TRAFFIC,2024-03-02T09:00:00.000Z,"[501, 502]"
        102,b@gmail.com,2024-02-01T00:00:00.000Z,AI_REFERRALS,,
        103,c@initech.com,2024-03-01T00:00:00.000Z,OFFLINE,,
    """,
    "companies.csv": """
        id,properties_domain
        501,acme.com
        502,acme.com
    """,
}


def test_the_api_shape_with_pipelines_and_stage_dates(tmp_path, capsys):
    out, exports = base(tmp_path), write(tmp_path / "exports", API)
    path = settings(
        tmp_path,
        pipelines={"partner": {"stage_7": "proposal"}},
        skip_pipelines=["renewals"],
        segment_field=None,
        pql_field=None,
    )
    import yaml

    data = yaml.safe_load(path.read_text())
    data["team"] = {"default_role": "ae", "monthly_cost": 8000}  # no owners export here: no members to complete
    path.write_text(yaml.safe_dump(data))
    code, _, err = run(capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(path))
    assert (code, err) == (0, ""), err
    opps = pl.read_parquet(out / "opportunities.parquet")
    # 9002 is in the skipped pipeline "renewals" (its stage renewal_signed needs no mapping); 9003's pipeline
    # "partner" maps stage_7 -> proposal; 9001 closedwon, no closedate: hs_date_entered_closedwon
    # 1709370000000 ms = 2024-03-02 09:00 UTC; created 1706778000000 ms = 2024-02-01 09:00 UTC
    assert opps.select("opportunity_id", "stage", "account_id", "owner_id").rows() == [
        ("9001", "won", "cus_1", "31"),
        ("9003", "proposal", None, "31"),
    ]
    assert opps["closed_at"].dt.strftime("%F %R").to_list() == ["2024-03-02 09:00", None]
    assert opps["created_at"].dt.strftime("%F %R").to_list() == ["2024-02-01 09:00", "2024-04-01 00:00"]
    leads = pl.read_parquet(out / "leads.parquet")
    # 101: companies 501 and 502 are both acme.com -> the same account cus_1 (not two accounts)
    assert leads.select("lead_id", "channel", "account_id").rows() == [
        ("101", "organic", "cus_1"),
        ("102", "organic", None),
        ("103", "outbound", None),
    ]
    # no owners export: the owner id is the member, the settings' cost applies, start = first deal (2024-02-01)
    team = pl.read_parquet(out / "team.parquet")
    assert team.with_columns(pl.col("start_date").cast(pl.String)).rows() == [
        ("31", "31", "ae", None, "2024-02-01", None, 0, 8000.0)
    ]
    report = json.loads((out / "import-report-hubspot.json").read_text())
    assert report["deals_in_skipped_pipelines"] == 1


def test_a_contact_whose_companies_are_two_accounts_is_an_error(tmp_path, capsys):
    out, files = base(tmp_path), dict(EXPORT)
    files["companies.csv"] = "Record ID,Company name,Company Domain Name\n501,Acme,acme.com\n502,Globex,globex.io\n"
    files["contacts.csv"] = files["contacts.csv"].replace("2024-03-02 09:00,501,smb", '2024-03-02 09:00,"501;502",smb')
    exports = write(tmp_path / "exports", files)
    kept = digest(out)
    code, _, err = run(
        capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(settings(tmp_path))
    )
    assert code == 2, err
    assert "[hubspot.two_accounts] leads.company: is associated with companies of two accounts" in err
    assert "record=101 -> cus_1, cus_2" in err and digest(out) == kept


def test_an_unknown_owner_and_stage_are_reported_together(tmp_path, capsys):
    out, files = base(tmp_path), dict(EXPORT)
    name = "hubspot-crm-exports-all-deals-2024-06-01.csv"
    files[name] = files[name].replace("Bo Chen", "Cy Dunn").replace("Closed Lost", "Parked")
    exports = write(tmp_path / "exports", files)
    code, _, err = run(
        capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(settings(tmp_path))
    )
    assert code == 2 and ": 2 problems." in err, err
    assert "[deals.unknown_stage] deals.stage: 1 value the mapping `stages`" in err and "'Parked' (1 row)" in err
    assert "[deals.unknown_owner] deals.owner: names an owner the owners export does not have" in err
    assert "owner='Cy Dunn'" in err


def test_settings_errors_name_the_key(tmp_path, capsys):
    out, exports = base(tmp_path), write(tmp_path / "exports", EXPORT)
    path = settings(tmp_path, stages={"Closed Won": "signed"})
    code, _, err = run(capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(path))
    assert (
        code == 2 and "a stage must map to one of prospecting, discovery" in err and "stages.Closed Won: signed" in err
    ), err
    path.write_text(path.read_text() + "\nstagez: {}\n")
    code, _, err = run(capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(path))
    assert code == 2 and "`stagez`: Extra inputs are not permitted" in err, err


def test_engagements_become_touchpoints(tmp_path, capsys):
    files = {
        **EXPORT,
        "engagements.csv": """
        id,hs_engagement_type,hs_activity_type,hs_timestamp,hubspot_owner_id,companies,sentiment
        e1,CALL,,2024-03-05T10:15:00.000Z,31,[501],Positive
        e2,MEETING,QBR,1711965600000,32,[501],
        e3,NOTE,,2024-03-07T00:00:00.000Z,31,[501],
        e4,EMAIL,,2024-03-08T00:00:00.000Z,31,[],
    """,
    }
    out, exports = base(tmp_path), write(tmp_path / "exports", files)
    code, _, err = run(
        capsys,
        "import",
        "hubspot",
        str(exports),
        "--out",
        str(out),
        "--settings",
        str(settings(tmp_path, touchpoint_sentiment_field="sentiment")),
    )
    assert (code, err) == (0, ""), err
    touch = pl.read_parquet(out / "cs_touchpoints.parquet")
    # e1 a call on company 501 (www.acme.com -> cus_1); e2 a meeting whose call-and-meeting type is QBR, at
    # 1711965600000 ms = 2024-04-01 10:00 UTC, by owner 32 (member T2 in the settings); e3 a note: skip;
    # e4 on no company: left out
    assert touch.select("touchpoint_id", "account_id", "csm_id", "kind", "sentiment").rows() == [
        ("e1", "cus_1", "31", "call", "positive"),
        ("e2", "cus_1", "T2", "qbr", None),
    ]
    assert touch["occurred_at"].dt.strftime("%F %R").to_list() == ["2024-03-05 10:15", "2024-04-01 10:00"]
    report = json.loads((out / "import-report-hubspot.json").read_text())
    assert (report["activities_skipped_by_kind"], report["activities_without_company"]) == (1, 1)


def test_a_pipeline_mapping_reports_its_own_unknown_stage(tmp_path, capsys):
    out, exports = base(tmp_path), write(tmp_path / "exports", EXPORT)
    path = settings(tmp_path, pipelines={"Sales Pipeline": {"Closed Won": "won", "Closed Lost": "lost"}})
    code, _, err = run(capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(path))
    # the pipeline's own mapping replaces `stages` for its deals: Contract Sent is not in it
    assert code == 2 and "[deals.unknown_stage] deals.stage: 1 value the mapping `pipelines.Sales Pipeline`" in err, err
    assert "'Contract Sent' (1 row)" in err


def test_the_company_becoming_a_customer_converts_its_contacts(tmp_path, capsys):
    files = dict(EXPORT)
    files["companies.csv"] = """
        Record ID,Company name,Company Domain Name,Became a Customer Date
        501,Acme,www.acme.com,2024-03-05 00:00
        502,Initech,initech.com,
    """
    files["contacts.csv"] = files["contacts.csv"].replace(
        "2024-03-05 00:00,,,enterprise", "2024-03-05 00:00,,502,enterprise"
    )
    out, exports = base(tmp_path), write(tmp_path / "exports", files)
    code, _, err = run(
        capsys,
        "import",
        "hubspot",
        str(exports),
        "--out",
        str(out),
        "--settings",
        str(settings(tmp_path, customer_from="company")),
    )
    assert (code, err) == (0, ""), err
    leads = pl.read_parquet(out / "leads.parquet")
    # 101's company 501 became a customer on 2024-03-05 (the contact's own date, 2024-03-02, is not read);
    # 103's company 502 is no customer; 104 has no company, so no company date: not converted
    assert leads.select("lead_id", "account_id", pl.col("converted_at").dt.strftime("%F")).rows() == [
        ("101", "cus_1", "2024-03-05"),
        ("102", None, None),
        ("103", None, None),
        ("104", None, None),
    ]


def test_lead_fields_make_only_contacts_of_those_stages_leads(tmp_path, capsys):
    """With `lead_fields`, a contact is a lead from the earliest of those lifecycle dates; one with none of them (a
    subscriber, a customer's colleague) is set aside, and its deal is kept without a lead."""
    files = dict(EXPORT)
    files["contacts.csv"] = """
        Record ID,Email,Create Date,Original Source,Became a Lead Date,Became a Marketing Qualified Lead Date,Became a Customer Date,Associated Company IDs
        101,a@acme.com,2024-01-20 10:00,Organic Search,2024-01-22 08:00,2024-01-25 10:00,2024-03-02 09:00,501
        102,b@gmail.com,2024-02-01 00:00,Paid Search,,,,
        103,c@initech.com,2024-03-01 00:00,OFFLINE,,2024-03-05 00:00,,
        104,d@globex.io,2024-03-03 00:00,,,,2024-04-01 00:00,
    """
    out, exports = base(tmp_path), write(tmp_path / "exports", files)
    fields = ["Became a Lead Date", "hs_lifecyclestage_marketingqualifiedlead_date", "Became a Customer Date"]
    path = settings(tmp_path, segment_field=None, lead_fields=fields)
    code, _, err = run(capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(path))
    assert (code, err) == (0, ""), err
    leads = pl.read_parquet(out / "leads.parquet")
    # 101: the earliest of lead 01-22 08:00, MQL 01-25 and customer 03-02 -> 01-22 08:00 (not its Create Date)
    # 102: none of the three dates -> not a lead; 103: no lead date, MQL 03-05 -> 03-05 (a skipped stage)
    # 104: only a customer date 04-01 -> a lead that day, converted that day
    assert leads.select("lead_id", pl.col("created_at").dt.strftime("%F %R"), "account_id").rows() == [
        ("101", "2024-01-22 08:00", "cus_1"),
        ("103", "2024-03-05 00:00", None),
        ("104", "2024-04-01 00:00", "cus_2"),
    ]
    opps = pl.read_parquet(out / "opportunities.parquet")
    assert opps.select("opportunity_id", "lead_id").rows() == [("9001", "101"), ("9002", None), ("9003", "103")]
    report = json.loads((out / "import-report-hubspot.json").read_text())
    aside = {(a["reason"], a["table"], a["count"], tuple(a["examples"])) for a in report["set_aside"]}
    assert aside == {
        ("not_a_lead", "leads", 1, ("id=102",)),
        ("contact_not_a_lead", "opportunities", 1, ("id=9002, contact=102",)),
    }
    assert run(capsys, "validate", str(out))[0] == 0


def test_a_lead_field_missing_from_the_contacts_is_named(tmp_path, capsys):
    out, exports = base(tmp_path), write(tmp_path / "exports", EXPORT)
    path = settings(tmp_path, lead_fields=["Became a Lead Date"])
    code, _, err = run(capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(path))
    assert code == 2 and "lead_fields" in err and "Became a Lead Date" in err, err


def test_nps_feedback_becomes_nps_responses(tmp_path, capsys):
    files = {
        **EXPORT,
        "feedback_submissions.csv": """
        hs_object_id,hs_survey_type,hs_value,hs_submission_timestamp,hs_contact_email_address,contacts,companies
        f1,NPS,9,2024-05-01T10:00:00.000Z,a@acme.com,[101],
        f2,NPS,3,2024-05-02T10:00:00.000Z,zed@globex.io,,
        f3,CSAT,2,2024-05-03T10:00:00.000Z,a@acme.com,[101],
        f4,NPS,10,1714816800000,,[103],[501]
    """,
    }
    out, exports = base(tmp_path), write(tmp_path / "exports", files)
    code, _, err = run(
        capsys, "import", "hubspot", str(exports), "--out", str(out), "--settings", str(settings(tmp_path))
    )
    assert (code, err) == (0, ""), err
    nps = pl.read_parquet(out / "nps_responses.parquet")
    # f1: contact 101's company 501 (www.acme.com) -> cus_1; f2: no contact, no company: its e-mail globex.io ->
    # cus_2, respondent the e-mail; f3 is a CSAT survey: not NPS; f4: its own company 501 -> cus_1, at
    # 1714816800000 ms = 2024-05-04 10:00 UTC
    assert nps.select("response_id", "account_id", "score", "user_id").rows() == [
        ("f1", "cus_1", 9, "101"),
        ("f2", "cus_2", 3, "zed@globex.io"),
        ("f4", "cus_1", 10, "103"),
    ]
    assert nps["responded_at"].dt.strftime("%F %R").to_list() == [
        "2024-05-01 10:00",
        "2024-05-02 10:00",
        "2024-05-04 10:00",
    ]
    assert json.loads((out / "import-report-hubspot.json").read_text())["feedback_not_nps"] == 1
