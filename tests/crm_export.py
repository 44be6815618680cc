"""The demo company's funnel and sales data written out as a CRM holds it: HubSpot (the export's headers, or the API's
property names) and Salesforce objects, each with the CRM's own ids (HubSpot numbers, Salesforce 18-character
ids), the accounts joined half by an id map CSV and half by web domain. The round-trip tests import these and
compare with the demo's own tables (tests/test_import_crm_roundtrip.py).

A deterministic sample keeps it fast: every `step`-th demo account, their leads and opportunities, one in `step`
of the leads that never became customers, and the whole team.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml
from conftest import demo_domain, import_base

from saaskpi import paths

STAGE_LABEL = {
    "prospecting": "Appointment Scheduled",
    "discovery": "Qualified To Buy",
    "proposal": "Decision Maker Bought-In",
    "negotiation": "Contract Sent",
    "won": "Closed Won",
    "lost": "Closed Lost",
}
STAGE_ID = {
    "prospecting": "appointmentscheduled",
    "discovery": "qualifiedtobuy",
    "proposal": "decisionmakerboughtin",
    "negotiation": "contractsent",
    "won": "closedwon",
    "lost": "closedlost",
}
SOURCE_LABEL = {
    "organic": "Organic Search",
    "paid_search": "Paid Search",
    "partner": "Referrals",
    "events": "Other Campaigns",
    "outbound": "Offline Sources",
}
SOURCE_ID = {
    "organic": "ORGANIC_SEARCH",
    "paid_search": "PAID_SEARCH",
    "partner": "REFERRALS",
    "events": "OTHER_CAMPAIGNS",
    "outbound": "OFFLINE",
}
SF_STAGE = {
    "prospecting": "Prospecting",
    "discovery": "Qualification",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "won": "Closed Won",
    "lost": "Closed Lost",
}
SF_SOURCE = {
    "organic": "Web",
    "paid_search": "Advertisement",
    "partner": "Partner Referral",
    "events": "Trade Show",
    "outbound": "Purchased List",
}
ISO_MS = "%Y-%m-%dT%H:%M:%S%.3fZ"


@dataclass(frozen=True)
class Sample:
    """The demo's tables restricted to the sample (demo ids)."""

    accounts: list[str]
    leads: pl.DataFrame
    opportunities: pl.DataFrame
    team: pl.DataFrame
    touchpoints: pl.DataFrame
    nps: pl.DataFrame


def demo_sample(step: int = 10) -> Sample:
    """Every `step`-th account (about 150 of the demo's 1,477), their leads and opportunities, one in `step` of the
    leads without an account, and the team."""
    read = lambda name: pl.read_csv(paths.DEMO_DIR / f"{name}.csv", infer_schema=False)  # noqa: E731
    accounts = read("accounts").get_column("account_id").sort().gather_every(step).to_list()
    leads = read("leads")
    keep = pl.col("account_id").is_in(accounts) | (
        pl.col("account_id").is_null() & (pl.col("lead_id").str.slice(1).cast(pl.Int64) % step == 3)
    )
    leads = leads.filter(keep)
    opps = read("opportunities").filter(pl.col("lead_id").is_in(leads.get_column("lead_id").implode()))
    touch = read("cs_touchpoints").filter(pl.col("account_id").is_in(accounts))
    nps = read("nps_responses").filter(pl.col("account_id").is_in(accounts))
    return Sample(accounts, leads, opps, read("team"), touch, nps)


def write_expected(folder: Path, sample: Sample) -> Path:
    """The demo restricted to the sample, as a source folder: the billing base plus its leads, opportunities, team."""
    import_base(folder, sample.accounts)
    sample.leads.write_csv(folder / "leads.csv")
    sample.opportunities.write_csv(folder / "opportunities.csv")
    sample.team.write_csv(folder / "team.csv")
    sample.touchpoints.write_csv(folder / "cs_touchpoints.csv")
    sample.nps.write_csv(folder / "nps_responses.csv")
    return folder


def number(demo_id: str) -> int:
    return int(demo_id[1:])


def hubspot_ids(sample: Sample) -> dict[str, dict[str, str]]:
    """Demo id -> HubSpot id, per object: contacts, deals, companies, owners."""
    return {
        "leads": {i: str(100000 + number(i)) for i in sample.leads["lead_id"]},
        "opportunities": {i: str(5000000 + number(i)) for i in sample.opportunities["opportunity_id"]},
        "accounts": {i: str(9000000 + number(i)) for i in sample.accounts},
        "team": {i: str(70000 + number(i)) for i in sample.team["member_id"]},
        "touchpoints": {i: str(30000000 + number(i)) for i in sample.touchpoints["touchpoint_id"]},
        "nps": {i: str(40000000 + number(i)) for i in sample.nps["response_id"]},
    }


def salesforce_ids(sample: Sample) -> dict[str, dict[str, str]]:
    """Demo id -> Salesforce id (18 characters, the object's key prefix), per object."""
    sf = lambda prefix, i: f"{prefix}5g00000{number(i):08d}AAA"  # noqa: E731
    return {
        "leads": {i: sf("00Q", i) for i in sample.leads["lead_id"]},
        "opportunities": {i: sf("006", i) for i in sample.opportunities["opportunity_id"]},
        "accounts": {i: sf("001", i) for i in sample.accounts},
        "team": {i: sf("005", i) for i in sample.team["member_id"]},
        "touchpoints": {
            i: sf("00T" if k in ("call", "email") else "00U", i)
            for i, k in sample.touchpoints.select("touchpoint_id", "kind").iter_rows()
        },
    }


def by_map(account_id: str) -> bool:
    """Half the accounts are joined by the id map, the other half by their web domain."""
    return number(account_id) % 2 == 0


def write_accounts_settings(folder: Path, sample: Sample) -> Path:
    """accounts.yaml and its id map (account_id, hubspot, salesforce) for the accounts joined by the map."""
    hs, sf = hubspot_ids(sample)["accounts"], salesforce_ids(sample)["accounts"]
    mapped = [a for a in sample.accounts if by_map(a)]
    pl.DataFrame(
        {"account_id": mapped, "hubspot": [hs[a] for a in mapped], "salesforce": [sf[a] for a in mapped]}
    ).write_csv(folder / "account_ids.csv")
    (folder / "accounts.yaml").write_text(
        yaml.safe_dump(
            {
                "id_map": "account_ids.csv",
                "max_unmatched_share": 0.0,
                "systems": {"hubspot": ["id_map", "domain"], "salesforce": ["id_map", "domain"]},
            }
        )
    )
    return folder / "accounts.yaml"


def _members(sample: Sample, key: dict[str, str]) -> dict:
    """The settings' team.members: what the CRM does not know (role, segment, dates, ramp, cost), and the demo id."""
    out = {}
    for m in sample.team.iter_rows(named=True):
        out[key[m["member_id"]]] = {
            "member_id": m["member_id"],
            "role": m["role"],
            "segment": m["segment"],
            "start_date": m["start_date"],
            "end_date": m["end_date"],
            "ramp_months": int(m["ramp_months"]),
            "monthly_cost": float(m["monthly_cost"]),
        }
    return out


def write_settings(folder: Path, system: str, sample: Sample, **changes) -> Path:
    """parameters/sources/<system>.yaml with the sample's segment and PQL fields and its team."""
    data = yaml.safe_load((paths.PARAMETERS_DIR / "sources" / f"{system}.yaml").read_text())
    data["segment_field"] = "Segment" if system == "hubspot" else "Segment__c"
    if system == "hubspot":
        data["touchpoint_role_field"] = "stakeholder_role"
        data["touchpoint_sentiment_field"] = "sentiment"
    if system == "salesforce":
        data["pql_field"] = "PQL_Date__c"
        data["touchpoint_role_field"] = "Stakeholder_Role__c"
        data["touchpoint_sentiment_field"] = "Sentiment__c"
    data["team"]["members"] = _members(sample, {m: f"{m.lower()}@team.example" for m in sample.team["member_id"]})
    data.update(changes)
    path = folder / f"{system}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _stamp(column: str, fmt: str) -> pl.Expr:
    return pl.col(column).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC").dt.strftime(fmt)


def write_hubspot(folder: Path, sample: Sample, shape: str = "export") -> Path:
    """The sample as HubSpot exports: `export` (the headers and values HubSpot's export writes: labels, owner names,
    `2024-01-31 09:30:05`) or `api` (property names, internal ids, ISO times, owners by id)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids, api = hubspot_ids(sample), shape == "api"
    fmt = ISO_MS if api else "%Y-%m-%d %H:%M:%S"

    def company(column):
        return pl.col(column).replace_strict(ids["accounts"], default=None)

    def name(api_name, label):
        return api_name if api else label

    leads = sample.leads.with_columns(_company=company("account_id"))
    contacts = leads.select(
        pl.col("lead_id").replace_strict(ids["leads"]).alias(name("hs_object_id", "Record ID")),
        (
            pl.col("lead_id").str.to_lowercase()
            + pl.lit("@")
            + pl.col("account_id").map_elements(demo_domain, return_dtype=pl.String).fill_null("gmail.com")
        ).alias(name("email", "Email")),
        _stamp("created_at", fmt).alias(name("createdate", "Create Date")),
        pl.col("channel")
        .replace_strict(SOURCE_ID if api else SOURCE_LABEL)
        .alias(name("hs_analytics_source", "Original Source")),
        _stamp("pql_at", fmt).alias(
            name("hs_lifecyclestage_marketingqualifiedlead_date", "Became a Marketing Qualified Lead Date")
        ),
        _stamp("converted_at", fmt).alias(name("hs_lifecyclestage_customer_date", "Became a Customer Date")),
        pl.col("_company").alias(name("associatedcompanyid", "Associated Company IDs")),
        pl.col("segment").alias(name("segment", "Segment")),
    )
    contacts.write_csv(folder / ("contacts.csv" if api else "hubspot-crm-exports-all-contacts-2026-11-30.csv"))
    companies = pl.DataFrame({"account_id": sample.accounts}).select(
        pl.col("account_id").replace_strict(ids["accounts"]).alias(name("hs_object_id", "Record ID")),
        ("Company " + pl.col("account_id")).alias(name("name", "Company name")),
        pl.when(by_map_expr())
        .then(None)
        .otherwise(pl.col("account_id").map_elements(demo_domain, return_dtype=pl.String))
        .alias(name("domain", "Company Domain Name")),
    )
    companies.write_csv(folder / ("companies.csv" if api else "hubspot-crm-exports-all-companies-2026-11-30.csv"))
    team = sample.team
    owner = (
        pl.col("owner_id").replace_strict(ids["team"])
        if api
        else pl.col("owner_id").replace_strict(dict(team.select("member_id", "name").iter_rows()))
    )
    opps = sample.opportunities.join(
        sample.leads.select("lead_id", pl.col("account_id").alias("lead_account")), on="lead_id"
    )
    deals = opps.select(
        pl.col("opportunity_id").replace_strict(ids["opportunities"]).alias(name("hs_object_id", "Record ID")),
        ("Deal " + pl.col("opportunity_id")).alias(name("dealname", "Deal Name")),
        pl.col("stage").replace_strict(STAGE_ID if api else STAGE_LABEL).alias(name("dealstage", "Deal Stage")),
        pl.lit("default" if api else "Sales Pipeline").alias(name("pipeline", "Pipeline")),
        _stamp("created_at", fmt).alias(name("createdate", "Create Date")),
        # an open deal's close date is HubSpot's forecast: written, and not read
        pl.coalesce(
            _stamp("closed_at", fmt), pl.lit("2099-01-01 00:00:00" if not api else "2099-01-01T00:00:00.000Z")
        ).alias(name("closedate", "Close Date")),
        pl.col("amount").alias(name("amount", "Amount")),
        owner.alias(name("hubspot_owner_id", "Deal owner")),
        pl.when(pl.col("stage") == "won")
        .then(company("lead_account"))
        .alias(name("companies", "Associated Company IDs")),
        pl.col("lead_id").replace_strict(ids["leads"]).alias(name("contacts", "Associated Contact IDs")),
    )
    deals.write_csv(folder / ("deals.csv" if api else "hubspot-crm-exports-all-deals-2026-11-30.csv"))
    owners = team.select(
        pl.col("member_id").replace_strict(ids["team"]).alias("id"),
        (pl.col("member_id").str.to_lowercase() + "@team.example").alias("email"),
        pl.col("name").str.split(" ").list.first().alias("firstName"),
        pl.col("name").str.split(" ").list.last().alias("lastName"),
        (pl.col("start_date") + "T00:00:00.000Z").alias("createdAt"),
        pl.lit(False).alias("archived"),
    )
    owners.write_csv(folder / "owners.csv")
    if api:  # engagements as the API lands them: calls, e-mails and meetings (a QBR: a meeting of that type)
        sample.touchpoints.select(
            pl.col("touchpoint_id").replace_strict(ids["touchpoints"]).alias("hs_object_id"),
            pl.col("kind")
            .replace_strict({"call": "CALL", "email": "EMAIL", "meeting": "MEETING", "qbr": "MEETING"})
            .alias("hs_engagement_type"),
            pl.when(pl.col("kind") == "qbr").then(pl.lit("QBR")).alias("hs_activity_type"),
            _stamp("occurred_at", ISO_MS).alias("hs_timestamp"),
            pl.col("csm_id").replace_strict(ids["team"]).alias("hubspot_owner_id"),
            ("[" + pl.col("account_id").replace_strict(ids["accounts"]) + "]").alias("companies"),
            "stakeholder_role",
            "sentiment",
        ).write_csv(folder / "engagements.csv")
        # NPS answers as feedback submissions, the respondent by e-mail at the account's domain (a CSAT one too)
        nps = sample.nps.select(
            pl.col("response_id").replace_strict(ids["nps"]).alias("hs_object_id"),
            pl.lit("NPS").alias("hs_survey_type"),
            "score",
            _stamp("responded_at", ISO_MS).alias("hs_submission_timestamp"),
            (
                pl.col("user_id").str.to_lowercase()
                + "@"
                + pl.col("account_id").map_elements(demo_domain, return_dtype=pl.String)
            ).alias("hs_contact_email_address"),
        ).rename({"score": "hs_value"})
        csat = nps.head(1).with_columns(hs_object_id=pl.lit("1"), hs_survey_type=pl.lit("CSAT"), hs_value=pl.lit("2"))
        pl.concat([nps, csat]).write_csv(folder / "feedback_submissions.csv")
    return folder


def by_map_expr() -> pl.Expr:
    return pl.col("account_id").str.slice(1).cast(pl.Int64) % 2 == 0


def write_salesforce(folder: Path, sample: Sample) -> Path:
    """The sample as Salesforce objects (Data Loader CSV, API field names). A lead with an opportunity was converted
    when the opportunity was created (to a prospect Account when the opportunity did not end won); a self-serve
    customer's lead was converted without one."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = salesforce_ids(sample)
    acc = lambda column: pl.col(column).replace_strict(ids["accounts"], default=None)  # noqa: E731
    opps = sample.opportunities.join(
        sample.leads.select("lead_id", pl.col("account_id").alias("lead_account")), on="lead_id"
    )
    prospect = "001" + pl.lit("5g0000P") + pl.col("opportunity_id").str.slice(1).str.zfill(8) + "AAA"
    opps = opps.with_columns(sf_account=pl.when(pl.col("stage") == "won").then(acc("lead_account")).otherwise(prospect))
    closed = pl.col("stage").is_in(["won", "lost"])
    opps.select(
        pl.col("opportunity_id").replace_strict(ids["opportunities"]).alias("Id"),
        ("Deal " + pl.col("opportunity_id")).alias("Name"),
        pl.col("stage").replace_strict(SF_STAGE).alias("StageName"),
        pl.col("amount").alias("Amount"),
        pl.coalesce(pl.col("closed_at").str.slice(0, 10), pl.lit("2099-01-01")).alias("CloseDate"),
        _stamp("created_at", ISO_MS).alias("CreatedDate"),
        (pl.col("stage") == "won").alias("IsWon"),
        closed.alias("IsClosed"),
        pl.col("sf_account").alias("AccountId"),
        pl.col("owner_id").replace_strict(ids["team"]).alias("OwnerId"),
    ).write_csv(folder / "Opportunity.csv")
    history = pl.concat(
        [
            opps.select(
                "opportunity_id",
                pl.lit("Prospecting").alias("StageName"),
                _stamp("created_at", ISO_MS).alias("CreatedDate"),
            ),
            opps.filter(closed).select(
                "opportunity_id",
                pl.col("stage").replace_strict(SF_STAGE).alias("StageName"),
                _stamp("closed_at", ISO_MS).alias("CreatedDate"),
            ),
        ]
    )
    history.sort("opportunity_id", "CreatedDate").select(
        pl.col("opportunity_id").replace_strict(ids["opportunities"]).alias("OpportunityId"), "StageName", "CreatedDate"
    ).write_csv(folder / "OpportunityHistory.csv")
    lead_opp = opps.select("lead_id", "opportunity_id", "sf_account", "created_at")
    leads = sample.leads.join(lead_opp, on="lead_id", how="left")
    converted = pl.col("account_id").is_not_null() | pl.col("opportunity_id").is_not_null()
    leads.select(
        pl.col("lead_id").replace_strict(ids["leads"]).alias("Id"),
        pl.lit("Lead").alias("LastName"),
        pl.col("lead_id").alias("Company"),
        pl.when(converted).then(pl.lit("Converted")).otherwise(pl.lit("Open")).alias("Status"),
        pl.col("channel").replace_strict(SF_SOURCE).alias("LeadSource"),
        _stamp("created_at", ISO_MS).alias("CreatedDate"),
        converted.alias("IsConverted"),
        # converted when the opportunity was created; a self-serve customer when it became one
        pl.coalesce(pl.col("created_at_right"), pl.col("converted_at")).str.slice(0, 10).alias("ConvertedDate"),
        pl.col("opportunity_id").replace_strict(ids["opportunities"], default=None).alias("ConvertedOpportunityId"),
        pl.coalesce(acc("account_id"), pl.col("sf_account")).alias("ConvertedAccountId"),
        pl.col("segment").alias("Segment__c"),
        _stamp("pql_at", ISO_MS).alias("PQL_Date__c"),
    ).write_csv(folder / "Lead.csv")
    customers = pl.DataFrame({"account_id": sample.accounts}).select(
        acc("account_id").alias("Id"),
        ("Company " + pl.col("account_id")).alias("Name"),
        pl.when(by_map_expr())
        .then(None)
        .otherwise("https://www." + pl.col("account_id").map_elements(demo_domain, return_dtype=pl.String))
        .alias("Website"),
    )
    prospects = opps.filter(pl.col("stage") != "won").select(
        pl.col("sf_account").alias("Id"),
        ("Prospect " + pl.col("opportunity_id")).alias("Name"),
        pl.lit(None, pl.String).alias("Website"),
    )
    pl.concat([customers, prospects]).write_csv(folder / "Account.csv")
    sample.team.select(
        pl.col("member_id").replace_strict(ids["team"]).alias("Id"),
        "name",
        (pl.col("member_id").str.to_lowercase() + "@team.example").alias("Email"),
        pl.lit(True).alias("IsActive"),
        (pl.col("start_date") + "T00:00:00.000Z").alias("CreatedDate"),
    ).rename({"name": "Name"}).write_csv(folder / "User.csv")
    _write_activities(folder, sample, ids)
    return folder


def _write_activities(folder: Path, sample: Sample, ids: dict[str, dict[str, str]]) -> None:
    """Calls and e-mails as Tasks, meetings and QBRs as Events, on the account, owned by the CSM; the stakeholder
    role and sentiment in custom fields, written as labels (`Decision Maker`, `Positive`)."""
    t = sample.touchpoints.with_columns(
        Id=pl.col("touchpoint_id").replace_strict(ids["touchpoints"]),
        AccountId=pl.col("account_id").replace_strict(ids["accounts"]),
        OwnerId=pl.col("csm_id").replace_strict(ids["team"]),
        When=_stamp("occurred_at", ISO_MS),
        Stakeholder_Role__c=pl.col("stakeholder_role").str.replace("_", " ").str.to_titlecase(),
        Sentiment__c=pl.col("sentiment").str.to_titlecase(),
    )
    task = pl.col("kind").is_in(["call", "email"])
    t.filter(task).select(
        "Id",
        pl.col("AccountId").alias("WhatId"),
        "AccountId",
        "OwnerId",
        pl.col("kind").str.to_titlecase().alias("Type"),
        pl.col("When").str.slice(0, 10).alias("ActivityDate"),
        pl.col("When").alias("CompletedDateTime"),
        "Stakeholder_Role__c",
        "Sentiment__c",
    ).write_csv(folder / "Task.csv")
    t.filter(~task).select(
        "Id",
        pl.col("AccountId").alias("WhatId"),
        "AccountId",
        "OwnerId",
        pl.col("kind").replace_strict({"meeting": "Meeting", "qbr": "QBR"}).alias("Type"),
        pl.col("When").alias("StartDateTime"),
        pl.col("When").alias("ActivityDateTime"),
        "Stakeholder_Role__c",
        "Sentiment__c",
    ).write_csv(folder / "Event.csv")
