"""HubSpot (`saaskpi import hubspot EXPORTS --out data/mine`): deals, contacts, companies and owners -> the
workbook's `opportunities`, `leads` and `team`.

A folder of exports, each a CSV or Parquet file found by its name (`deals`, `contacts`, `companies`, `owners`;
`hubspot-crm-exports-all-deals-2024-05-01.csv` is the deals export), with the headers HubSpot's export writes
(`Record ID`, `Deal Stage`, `Create Date`, `Original Source`, `Became a Customer Date`...) or the property names
the API and the loaders land (`hs_object_id`, `dealstage`, `createdate`, `hs_analytics_source`,
`hs_lifecyclestage_customer_date`, `properties_dealname`...). The mappings are in parameters/sources/hubspot.yaml.

- deals -> opportunities: the stage through `stages` (or the deal's pipeline's own mapping in `pipelines`; a stage
  neither knows is reported); `closed_at` is the close date of a won or lost deal (HubSpot's close date of an open
  deal is a forecast: not read), else `hs_date_entered_closedwon/closedlost`; the lead is the first associated
  contact, the account (won deals only) the associated company, else the contact's account.
- contacts -> leads: `channel` from `Original Source` through `channels`; `pql_at` from the lifecycle date
  `pql_field` names; a contact with the date `customer_field` names (`Became a Customer Date`) became its company's
  account then (`account_id`, `converted_at`).
- companies: the account key (the company id, for the id map, and its domain).
- owners -> team: id, name, e-mail and creation date; role, segment, ramp and cost from `team` in the settings.
- engagements (optional) -> cs_touchpoints: kind through `touchpoint_kinds`, the owner as CSM, the company's account.
- feedback submissions (optional) -> nps_responses: NPS surveys only; the account of the company, contact or e-mail.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import polars as pl

from ..contract.load import ROW
from ..errors import Problem
from . import Imported, Importer
from .billing import SetAside
from .crm import (
    UTC,
    CrmSettings,
    Export,
    add_crm_arguments,
    all_ids,
    first_id,
    mapped,
    norm,
    not_customer,
    owner_ids,
    read_crm,
    required_values,
    stage_of,
    team_table,
    touchpoint_kind,
    touchpoint_table,
    two_accounts,
    typed,
)
from .reading import ExportError

SYSTEM = "hubspot"
ID = ("recordid", "hsobjectid", "id")
COMPANY_IDS = (
    "associatedcompanyidsprimary",
    "associatedcompanyids",
    "associatedcompanyid",
    "companies",
    "companyids",
    "companyid",
)
CONTACT_IDS = (
    "associatedcontactidsprimary",
    "associatedcontactids",
    "associatedcontactid",
    "contacts",
    "contactids",
    "contactid",
)

EXPORTS = {
    e.kind: e
    for e in (
        Export(
            "deals",
            ("deal",),
            {
                "id": ID + ("dealid",),
                "name": ("dealname",),
                "stage": ("dealstage",),
                "pipeline": ("pipeline",),
                "created": ("createdate", "createdat"),
                "closed": ("closedate",),
                "amount": ("amountincompanycurrency", "amountinhomecurrency", "amount"),
                "owner": ("dealowner", "hubspotownerid", "ownerid"),
                "company": COMPANY_IDS,
                "contact": CONTACT_IDS,
                "won_at": ("hsdateenteredclosedwon",),
                "lost_at": ("hsdateenteredclosedlost",),
            },
            ("id", "stage", "created"),
            ("dealname", "dealstage", "pipeline", "closedate", "amount"),
        ),
        Export(
            "contacts",
            ("contact",),
            {
                "id": ID + ("vid", "contactid"),
                "created": ("createdate", "createdat"),
                "email": ("email", "emailaddress"),
                "source": ("originalsource", "hsanalyticssource"),
                "company": COMPANY_IDS,
            },
            ("id", "created"),
            ("firstname", "lastname", "email", "lifecyclestage", "originalsource"),
        ),
        Export(
            "companies",
            ("compan",),
            {"id": ID + ("companyid",), "domain": ("companydomainname", "domain", "website", "websiteurl")},
            ("id",),
            ("name", "companydomainname", "domain", "industry", "numberofemployees"),
            optional=True,
        ),
        Export(
            "owners",
            ("owner",),
            {
                "id": ("id", "ownerid", "hubspotownerid"),
                "email": ("email",),
                "first": ("firstname",),
                "last": ("lastname",),
                "created": ("createdat",),
                "updated": ("updatedat",),
                "archived": ("archived",),
            },
            ("id",),
            ("firstname", "lastname", "userid", "teams", "archived"),
            optional=True,
        ),
        Export(
            "engagements",
            ("engagement", "activit"),
            {
                "id": ID + ("engagementid",),
                "when": ("hstimestamp", "activitydate", "timestamp", "createdate", "createdat"),
                "kind": (
                    "hsactivitytype",
                    "callandmeetingtype",
                    "activitytype",
                    "hsengagementtype",
                    "engagementtype",
                    "type",
                ),
                "owner": ("activityassignedto", "hubspotownerid", "ownerid"),
                "company": COMPANY_IDS,
            },
            ("id", "when"),
            ("hstimestamp", "hsengagementtype", "activitydate", "activitytype", "hsactivitytype"),
            optional=True,
            coalesced=("when", "kind"),
        ),
        Export(
            "feedback",
            ("feedback",),
            {
                "id": ID,
                "score": ("hsvalue", "value"),
                "type": ("hssurveytype", "surveytype"),
                "when": ("hssubmissiontimestamp", "submissiontimestamp", "hscreatedate", "createdate", "createdat"),
                "email": ("hscontactemailaddress", "contactemailaddress", "email"),
                "contact": CONTACT_IDS + ("hscontactid",),
                "company": COMPANY_IDS,
            },
            ("id", "score", "when"),
            ("hsvalue", "hssurveytype", "hsresponsegroup", "hssurveyname", "hscontent"),
            optional=True,
            coalesced=("when",),
        ),
    )
}

LIFECYCLE = {  # the export's label of a lifecycle date -> the property's internal name
    f"became{a}{stage}date": f"hslifecyclestage{stage}date"
    for a, stage in (
        ("a", "subscriber"),
        ("a", "lead"),
        ("a", "marketingqualifiedlead"),
        ("a", "salesqualifiedlead"),
        ("an", "opportunity"),
        ("a", "customer"),
        ("an", "evangelist"),
    )
} | {"becameanotherlifecycledate": "hslifecyclestageotherdate"}


LEAD = "lead_"  # the contacts' fields read from `lead_fields`: lead_1, lead_2, ...


def _names(setting: str) -> tuple[str, ...]:
    """A contact property's column names: as the setting spells it, and its label's or internal name's twin."""
    n = norm(setting)
    twins = [v for k, v in LIFECYCLE.items() if k == n] + [k for k, v in LIFECYCLE.items() if v == n]
    return (n, *twins)


def _exports(settings: CrmSettings) -> dict[str, Export]:
    """The exports, the contacts' fields completed by the properties the settings name."""
    by_company = settings.customer_from == "company"
    extra = {  # a missing column's message names the setting and its value (`lead_fields: Became a Lead Date`)
        f: (f"{key}: {p}", _names(p))
        for f, key, p in (
            ("segment", "segment_field", settings.segment_field),
            ("pql", "pql_field", settings.pql_field),
            ("customer", "customer_field", None if by_company else settings.customer_field),
            *((f"{LEAD}{i}", "lead_fields", p) for i, p in enumerate(settings.lead_fields, 1)),
        )
        if p
    }
    company = (
        {"customer": (f"customer_field: {settings.customer_field}", _names(settings.customer_field))}
        if by_company and settings.customer_field
        else {}
    )
    activity = {
        f: (f"{key}: {p}", _names(p))
        for f, key, p in (
            ("role", "touchpoint_role_field", settings.touchpoint_role_field),
            ("sentiment", "touchpoint_sentiment_field", settings.touchpoint_sentiment_field),
        )
        if p
    }
    if by_company and settings.customer_field:  # the companies export is then needed
        companies = replace(EXPORTS["companies"], optional=False).with_settings_fields(company)
    else:
        companies = EXPORTS["companies"]
    return {
        **EXPORTS,
        "contacts": EXPORTS["contacts"].with_settings_fields(extra),
        "companies": companies,
        "engagements": EXPORTS["engagements"].with_settings_fields(activity),
    }


def _read(args: argparse.Namespace) -> Imported:
    return read_crm(args, _exports, hubspot_tables)


def _typed_exports(raw: dict[str, pl.DataFrame], problems: list[Problem]) -> dict[str, pl.DataFrame]:
    schemas = {
        "deals": {
            "id": pl.String,
            "stage": pl.String,
            "pipeline": pl.String,
            "created": UTC,
            "closed": UTC,
            "amount": pl.Float64,
            "owner": pl.String,
            "company": pl.String,
            "contact": pl.String,
            "won_at": UTC,
            "lost_at": UTC,
        },
        "contacts": {
            "id": pl.String,
            "created": UTC,
            "email": pl.String,
            "source": pl.String,
            "company": pl.String,
            "segment": pl.String,
            "pql": UTC,
            "customer": UTC,
        },
        "companies": {"id": pl.String, "domain": pl.String, "customer": UTC},
        "feedback": {
            "id": pl.String,
            "score": pl.Int64,
            "type": pl.String,
            "when": UTC,
            "email": pl.String,
            "contact": pl.String,
            "company": pl.String,
        },
        "engagements": {
            "id": pl.String,
            "when": UTC,
            "kind": pl.String,
            "owner": pl.String,
            "company": pl.String,
            "role": pl.String,
            "sentiment": pl.String,
        },
        "owners": {
            "id": pl.String,
            "email": pl.String,
            "first": pl.String,
            "last": pl.String,
            "created": UTC,
            "updated": UTC,
            "archived": pl.Boolean,
        },
    }
    if "contacts" in raw:
        schemas["contacts"] |= {c: UTC for c in raw["contacts"].columns if c.startswith(LEAD)}
    out = {}
    for kind, frame in raw.items():
        needed = {"deals": ("id", "created"), "contacts": ("id", "created"), "feedback": ("id", "when", "score")}
        required_values(kind, frame, needed.get(kind, ("id",)), "id", problems)
        out[kind] = typed(kind, frame, schemas[kind], "id", problems)
    return out


def hubspot_tables(
    raw: dict[str, pl.DataFrame], settings: CrmSettings, settings_file: str, keys
) -> tuple[dict[str, pl.DataFrame], tuple[SetAside, ...], dict]:
    """`leads`, `opportunities` and `team` from the read exports (text fields by name); every problem raised at once."""
    problems: list[Problem] = []
    t = _typed_exports(raw, problems)
    deals, contacts = t["deals"], t["contacts"]
    companies = t.get("companies", pl.DataFrame(schema={"id": pl.String, "domain": pl.String, "customer": UTC}))
    skipped = 0
    if settings.skip_pipelines:
        skip = [p.strip().lower() for p in settings.skip_pipelines]
        keep = ~pl.col("pipeline").str.strip_chars().str.to_lowercase().is_in(skip).fill_null(False)
        skipped = deals.height - deals.filter(keep).height
        deals = deals.filter(keep)
    deals = deals.with_columns(
        stage=stage_of(deals, settings, table="deals", settings_file=settings_file, key="id", problems=problems)
    )
    channel = mapped(
        contacts,
        "source",
        settings.channels,
        table="contacts",
        setting="channels",
        settings_file=settings_file,
        key="id",
        problems=problems,
        empty=settings.empty_channel,
        fallback=None if settings.unknown_channel == "report" else settings.unknown_channel,
    )
    contacts = contacts.with_columns(channel=channel)
    users, owner_problems = _users(t.get("owners"), deals)
    engagements = t.get("engagements")
    if engagements is not None:
        engagements = engagements.with_columns(
            kind=touchpoint_kind(
                engagements, settings, table="engagements", settings_file=settings_file, problems=problems
            )
        )
    problems += owner_problems
    if problems:
        raise ExportError(problems, head="The HubSpot exports cannot be imported")

    if settings.customer_from == "company":  # a contact converts when its (first) company became a customer
        contacts = (
            contacts.drop("customer")
            .with_columns(_first=first_id("company"))
            .join(companies.select(pl.col("id").alias("_first"), "customer"), on="_first", how="left")
            .drop("_first")
        )
    leads, lead_aside = _leads(contacts, companies, keys)
    opps, opp_aside, unlinked = _opportunities(deals, companies, leads, contacts.get_column("id"), users, keys)
    first = opps.group_by("user_id").agg(pl.col("created_at").min()).drop_nulls()
    team, team_problems = team_table(users, settings.team, first)
    if team_problems:
        raise ExportError(team_problems, head="The HubSpot owners cannot be made the team")
    member = dict(team.select("user_id", "member_id").iter_rows())
    opps = opps.with_columns(
        owner_id=pl.col("user_id").replace_strict(member, default=None, return_dtype=pl.String)
    ).drop("user_id")
    aside = [*lead_aside, *opp_aside, *unlinked]
    details = {
        "deals_in_skipped_pipelines": skipped,
        "deals_without_amount": int(deals.get_column("amount").null_count()),
    }
    tables = {"leads": leads, "opportunities": opps, "team": team.drop("user_id")}
    if engagements is not None:
        rows = _company_rows(engagements, companies, "id", None).group_by("record", maintain_order=True).first()
        rows = (
            rows.rename({"record": "id"})
            .join(engagements.drop("company"), on="id")
            .join(owner_ids(engagements, "owner", users), on="owner", how="left")
            .select(
                "id", pl.col("when").alias("occurred_at"), "kind", "user_id", "company", "address", "role", "sentiment"
            )
        )
        tables["cs_touchpoints"], touch_aside, touch_details = touchpoint_table(rows, member, keys, SYSTEM)
        aside += touch_aside
        details |= touch_details
    if "feedback" in t:
        tables["nps_responses"], nps_aside, nps_details = _nps(t["feedback"], t["contacts"], companies, keys)
        aside += nps_aside
        details |= nps_details
    return tables, tuple(aside), details


def _nps(
    feedback: pl.DataFrame, contacts: pl.DataFrame, companies: pl.DataFrame, keys
) -> tuple[pl.DataFrame, tuple[SetAside, ...], dict]:
    """NPS survey answers (feedback submissions of survey type NPS; all when the type is not exported) as
    `nps_responses`: the account of the feedback's company, else of its contact's company, else of the e-mail
    domain (the feedback's, then the contact's); the respondent is the contact (else the e-mail)."""
    nps = feedback.filter(pl.col("type").is_null() | (pl.col("type").str.strip_chars().str.to_uppercase() == "NPS"))
    other = feedback.height - nps.height
    person = contacts.select(
        pl.col("id").alias("_contact"),
        pl.col("email").alias("_contact_email"),
        first_id("company").alias("_contact_company"),
    )
    rows = (
        nps.with_columns(_contact=first_id("contact"))
        .join(person, on="_contact", how="left")
        .with_columns(company=pl.coalesce(first_id("company"), "_contact_company"))
        .join(
            companies.select(pl.col("id").alias("company"), pl.col("domain").alias("_domain")), on="company", how="left"
        )
        .with_columns(address=pl.coalesce("_domain", "email", "_contact_email"))
    )
    schema = {
        "response_id": pl.String,
        "account_id": pl.String,
        "responded_at": UTC,
        "score": pl.Int64,
        "user_id": pl.String,
    }
    if rows.is_empty():
        return pl.DataFrame(schema=schema), (), {"feedback_not_nps": other}
    m = keys.match(
        SYSTEM,
        "nps_responses",
        rows.select("id", "company", "address", "when", "score", "_contact", "email"),
        key="company",
        email="address",
    )
    out = m.frame.filter(pl.col("account_id").is_not_null()).select(
        pl.col("id").alias("response_id"),
        "account_id",
        pl.col("when").alias("responded_at"),
        "score",
        pl.coalesce("_contact", "email").alias("user_id"),
    )
    return out.cast(schema).sort("response_id"), m.set_aside, {"feedback_not_nps": other}


def _users(owners: pl.DataFrame | None, deals: pl.DataFrame) -> tuple[pl.DataFrame, list[Problem]]:
    """The CRM's users (user_id, name, email, created_at, ended_at) and the deals' owner values resolved to them
    (`deals.owner` may be the owner id, as the API has it, or the name or e-mail, as the export writes it)."""
    schema = {"user_id": pl.String, "name": pl.String, "email": pl.String, "created_at": UTC, "ended_at": UTC}
    if owners is None:  # no owners export: each owner value of the deals is a user
        values = deals.get_column("owner").drop_nulls().unique().sort()
        return pl.DataFrame(
            {"user_id": values, "name": values, "email": None, "created_at": None, "ended_at": None}, schema=schema
        ), []
    users = owners.select(
        pl.col("id").alias("user_id"),
        pl.concat_str([pl.col("first").fill_null(""), pl.col("last").fill_null("")], separator=" ")
        .str.strip_chars()
        .alias("name"),
        "email",
        pl.col("created").alias("created_at"),
        pl.when(pl.col("archived").fill_null(False)).then(pl.col("updated")).alias("ended_at"),
    )
    users = users.cast(schema)
    unknown = owner_ids(deals, "owner", users).filter(pl.col("user_id").is_null())
    if unknown.height:
        rows = deals.filter(pl.col("owner").is_in(unknown.get_column("owner").implode()))
        return users, [
            Problem(
                "deals.unknown_owner",
                "deals",
                "owner",
                "names an owner the owners export does not have (by id, e-mail or name)",
                rows.height,
                tuple(f"row {r[ROW]} (id={r['id']}): owner={r['owner']!r}" for r in rows.head(5).iter_rows(named=True)),
            )
        ]
    return users, []


def _company_rows(records: pl.DataFrame, companies: pl.DataFrame, id_col: str, email: str | None) -> pl.DataFrame:
    """One row per record and associated company: `company` (its id) and `address` (the company's domain, else the
    record's own e-mail)."""
    rows = records.select(
        pl.col(id_col).alias("record"),
        all_ids("company").alias("company"),
        (pl.col(email) if email else pl.lit(None, pl.String)).alias("own"),
    )
    rows = rows.explode("company")
    rows = rows.join(companies.select(pl.col("id").alias("company"), "domain"), on="company", how="left")
    return rows.with_columns(address=pl.coalesce("domain", "own")).drop("domain", "own")


def _leads(contacts: pl.DataFrame, companies: pl.DataFrame, keys) -> tuple[pl.DataFrame, tuple[SetAside, ...]]:
    """Contacts as leads (every contact from its Create Date; with `lead_fields`, from the earliest of those dates,
    and a contact with none of them is set aside); those with a customer date get the account of their company (or
    e-mail domain)."""
    aside: tuple[SetAside, ...] = ()
    dates = [c for c in contacts.columns if c.startswith(LEAD)]
    if dates:
        contacts = contacts.with_columns(created=pl.min_horizontal(dates))
        never = contacts.filter(pl.col("created").is_null())
        contacts = contacts.filter(pl.col("created").is_not_null())
        if never.height:
            meaning = (
                "the contact reached none of the lifecycle stages `lead_fields` names (a subscriber, say): not a lead"
            )
            examples = tuple(f"id={i}" for i in never.get_column("id").head(5))
            aside = (SetAside("not_a_lead", "leads", never.height, examples, meaning),)
    customers = contacts.filter(pl.col("customer").is_not_null())
    account = pl.DataFrame(schema={"lead_id": pl.String, "account_id": pl.String})
    if customers.height:
        rows = _company_rows(customers, companies, "id", "email")
        m = keys.match(SYSTEM, "leads", rows, key="company", email="address")
        two_accounts(SYSTEM, "leads", m.frame, "record", "company")
        account = (
            m.frame.drop_nulls("account_id")
            .group_by("record")
            .agg(pl.col("account_id").first())
            .rename({"record": "lead_id"})
        )
        aside += not_customer(m.set_aside, "the contact is kept as a lead that did not become a customer")
    leads = contacts.select(
        pl.col("id").alias("lead_id"),
        pl.col("created").alias("created_at"),
        "channel",
        "segment",
        pl.col("pql").alias("pql_at"),
        "customer",
    ).join(account, on="lead_id", how="left")
    leads = leads.with_columns(converted_at=pl.when(pl.col("account_id").is_not_null()).then(pl.col("customer")))
    return leads.drop("customer").sort("lead_id"), aside


def _opportunities(
    deals: pl.DataFrame, companies: pl.DataFrame, leads: pl.DataFrame, contacts: pl.Series, users: pl.DataFrame, keys
) -> tuple[pl.DataFrame, tuple[SetAside, ...], list[SetAside]]:
    """Deals as opportunities; the rows set aside, and the deals kept without their lead (their contact not in the
    contacts export, or not a lead: `lead_fields`)."""
    closed = pl.col("stage").is_in(["won", "lost"])
    entered = pl.when(pl.col("stage") == "won").then(pl.col("won_at")).otherwise(pl.col("lost_at"))
    opps = deals.with_columns(
        closed_at=pl.when(closed).then(pl.coalesce("closed", entered)), lead_id=first_id("contact")
    )
    missing = opps.filter(closed & pl.col("closed_at").is_null())
    if missing.height:
        raise ExportError(
            [
                Problem(
                    "deals.missing_value",
                    "deals",
                    "closed",
                    "a won or lost deal needs its close date (Close Date, or hs_date_entered_closedwon/closedlost)",
                    missing.height,
                    tuple(f"row {r[ROW]} (id={r['id']})" for r in missing.head(5).iter_rows(named=True)),
                )
            ],
            head="The HubSpot exports cannot be imported",
        )
    unknown_lead = opps.filter(
        pl.col("lead_id").is_not_null() & ~pl.col("lead_id").is_in(leads.get_column("lead_id").implode())
    )
    exported = pl.col("lead_id").is_in(contacts.implode())
    unlinked = [
        SetAside(
            reason,
            "opportunities",
            rows.height,
            tuple(f"id={r['id']}, contact={r['lead_id']}" for r in rows.head(5).iter_rows(named=True)),
            f"the deal's contact {why}; the opportunity is kept without its lead",
        )
        for reason, rows, why in (
            ("contact_not_exported", unknown_lead.filter(~exported), "is not in the contacts export"),
            ("contact_not_a_lead", unknown_lead.filter(exported), "is not a lead (see not_a_lead)"),
        )
        if rows.height
    ]
    opps = opps.with_columns(
        lead_id=pl.when(pl.col("lead_id").is_in(leads.get_column("lead_id").implode())).then("lead_id")
    )
    won = opps.filter(pl.col("stage") == "won")
    rows = _company_rows(won.filter(pl.col("company").is_not_null()), companies, "id", None)
    aside: tuple[SetAside, ...] = ()
    account = pl.DataFrame(schema={"id": pl.String, "account_id": pl.String})
    if rows.height:
        m = keys.match(SYSTEM, "opportunities", rows, key="company", email="address")
        two_accounts(SYSTEM, "opportunities", m.frame, "record", "company")
        account = (
            m.frame.drop_nulls("account_id")
            .group_by("record")
            .agg(pl.col("account_id").first())
            .rename({"record": "id"})
        )
        aside = not_customer(m.set_aside, "the won opportunity is kept with its lead's account, if any")
    by_lead = leads.select("lead_id", pl.col("account_id").alias("lead_account"))
    resolved = owner_ids(opps, "owner", users).rename({"owner": "_owner"})
    opps = (
        opps.join(account, on="id", how="left")
        .join(by_lead, on="lead_id", how="left")
        .join(resolved, left_on="owner", right_on="_owner", how="left")
    )
    out = opps.select(
        pl.col("id").alias("opportunity_id"),
        pl.col("created").alias("created_at"),
        "stage",
        pl.col("amount").fill_null(0.0),
        "lead_id",
        pl.when(pl.col("stage") == "won").then(pl.coalesce("account_id", "lead_account")).alias("account_id"),
        "user_id",
        "closed_at",
    )
    return out.sort("opportunity_id"), aside, unlinked


IMPORTER = Importer(
    name=SYSTEM,
    help="HubSpot deals, contacts, companies, owners (+ engagements, feedback) -> leads, opportunities, team "
    "(+ cs_touchpoints, nps_responses)",
    read=_read,
    arguments=add_crm_arguments(SYSTEM),
    accounts=True,
)
