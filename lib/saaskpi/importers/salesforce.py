"""Salesforce (`saaskpi import salesforce EXPORTS --out data/mine`): Lead, Opportunity, Account, User and
OpportunityHistory -> the workbook's `leads`, `opportunities` and `team`.

A folder of object exports (Data Loader, the Bulk API or a loader's tables), each a CSV or Parquet file found by
its name (`Lead.csv`, `opportunities.parquet`, `OpportunityHistory.csv`), with the fields' API names
(`StageName`, `IsWon`, `ConvertedAccountId`) or a loader's snake case (`stage_name`, `is_won`). The mappings are in
parameters/sources/salesforce.yaml.

- Opportunity -> opportunities: won or lost from `IsClosed` and `IsWon` (the stage name of a closed opportunity
  is not needed); an open one's stage through `stages` (unknown: reported). `closed_at` is when the opportunity
  entered its closing stage in OpportunityHistory when given (`closed_at: history`), else its `CloseDate` (a date).
  The account (won only) is `AccountId`, matched through the id map or the Account's `Website`.
- Lead -> leads: `channel` from `LeadSource` through `channels`; `pql_at` from the field `pql_field` names; a
  converted lead (`IsConverted`) whose opportunity was won became the account `ConvertedAccountId` on the
  opportunity's `CloseDate`; one converted without an opportunity (a self-serve customer) on its `ConvertedDate`. `ConvertedOpportunityId` links the opportunity to its lead.
- User -> team: id, name, e-mail, creation, and the last change of an inactive user as the end; the rest from `team`.
- Task and Event (optional) -> cs_touchpoints: an activity on an Account, its owner as the CSM, its `Type` (else
  subtype) through `touchpoint_kinds`.
"""

from __future__ import annotations

import argparse

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
    typed,
)
from .reading import ExportError

SYSTEM = "salesforce"

ACTIVITY = {
    "id": ("id",),
    "when": ("completeddatetime", "activitydatetime", "startdatetime", "activitydate", "createddate"),
    "kind": ("type", "tasksubtype", "eventsubtype"),
    "owner": ("ownerid",),
    "account": ("accountid",),
}
EXPORTS = {
    e.kind: e
    for e in (
        Export(
            "Opportunity",
            ("opportunity", "opportunities"),
            {
                "id": ("id",),
                "created": ("createddate",),
                "stage": ("stagename",),
                "amount": ("amount",),
                "close": ("closedate",),
                "won": ("iswon",),
                "closed": ("isclosed",),
                "account": ("accountid",),
                "owner": ("ownerid",),
            },
            ("id", "stage", "created"),
            ("stagename", "iswon", "isclosed", "closedate", "probability", "forecastcategory"),
        ),
        Export(
            "Lead",
            ("lead",),
            {
                "id": ("id",),
                "created": ("createddate",),
                "source": ("leadsource",),
                "email": ("email",),
                "website": ("website",),
                "converted": ("isconverted",),
                "converted_date": ("converteddate",),
                "opportunity": ("convertedopportunityid",),
                "account": ("convertedaccountid",),
            },
            ("id", "created"),
            ("status", "leadsource", "isconverted", "company", "firstname", "lastname"),
        ),
        Export(
            "Account",
            ("account",),
            {"id": ("id",), "website": ("website",)},
            ("id",),
            ("name", "website", "industry", "type", "billingcountry"),
            optional=True,
        ),
        Export(
            "User",
            ("user",),
            {
                "id": ("id",),
                "name": ("name",),
                "first": ("firstname",),
                "last": ("lastname",),
                "email": ("email",),
                "created": ("createddate",),
                "active": ("isactive",),
                "modified": ("lastmodifieddate",),
            },
            ("id",),
            ("username", "isactive", "profileid", "userroleid", "alias"),
            optional=True,
        ),
        Export(
            "Task",
            ("task",),
            ACTIVITY,
            ("id", "when"),
            ("whatid", "whoid", "tasksubtype", "activitydate", "priority"),
            optional=True,
            coalesced=("when", "kind"),
        ),
        Export(
            "Event",
            ("event",),
            ACTIVITY,
            ("id", "when"),
            ("whatid", "whoid", "eventsubtype", "startdatetime", "durationinminutes"),
            optional=True,
            coalesced=("when", "kind"),
        ),
        Export(
            "OpportunityHistory",
            ("opportunityhistory", "opportunityhistories"),
            {"opportunity": ("opportunityid",), "stage": ("stagename",), "created": ("createddate",)},
            ("opportunity", "stage", "created"),
            ("opportunityid", "stagename", "probability", "expectedrevenue"),
            optional=True,
        ),
    )
}

SCHEMAS = {
    "Opportunity": {
        "id": pl.String,
        "created": UTC,
        "stage": pl.String,
        "amount": pl.Float64,
        "close": UTC,
        "won": pl.Boolean,
        "closed": pl.Boolean,
        "account": pl.String,
        "owner": pl.String,
    },
    "Lead": {
        "id": pl.String,
        "created": UTC,
        "source": pl.String,
        "email": pl.String,
        "website": pl.String,
        "converted": pl.Boolean,
        "converted_date": UTC,
        "opportunity": pl.String,
        "account": pl.String,
        "segment": pl.String,
        "pql": UTC,
    },
    "Account": {"id": pl.String, "website": pl.String},
    "User": {
        "id": pl.String,
        "name": pl.String,
        "first": pl.String,
        "last": pl.String,
        "email": pl.String,
        "created": UTC,
        "active": pl.Boolean,
        "modified": UTC,
    },
    "OpportunityHistory": {"opportunity": pl.String, "stage": pl.String, "created": UTC},
    "Task": {
        "id": pl.String,
        "when": UTC,
        "kind": pl.String,
        "owner": pl.String,
        "account": pl.String,
        "role": pl.String,
        "sentiment": pl.String,
    },
}
SCHEMAS["Event"] = SCHEMAS["Task"]
NEEDED = {
    "Opportunity": ("id", "created"),
    "Lead": ("id", "created"),
    "Account": ("id",),
    "User": ("id",),
    "OpportunityHistory": ("opportunity", "created"),
    "Task": ("id", "when"),
    "Event": ("id", "when"),
}


def _exports(settings: CrmSettings) -> dict[str, Export]:
    extra: dict[str, tuple[str, tuple[str, ...]]] = {
        f: (key, (norm(p),))
        for f, key, p in (
            ("segment", "segment_field", settings.segment_field),
            ("pql", "pql_field", settings.pql_field),
        )
        if p
    }
    activity: dict[str, tuple[str, tuple[str, ...]]] = {
        f: (key, (norm(p),))
        for f, key, p in (
            ("role", "touchpoint_role_field", settings.touchpoint_role_field),
            ("sentiment", "touchpoint_sentiment_field", settings.touchpoint_sentiment_field),
        )
        if p
    }
    return {
        **EXPORTS,
        "Lead": EXPORTS["Lead"].with_settings_fields(extra),
        "Task": EXPORTS["Task"].with_settings_fields(activity),
        "Event": EXPORTS["Event"].with_settings_fields(activity),
    }


def _read(args: argparse.Namespace) -> Imported:
    return read_crm(args, _exports, salesforce_tables)


def salesforce_tables(
    raw: dict[str, pl.DataFrame], settings: CrmSettings, settings_file: str, keys
) -> tuple[dict[str, pl.DataFrame], tuple[SetAside, ...], dict]:
    """`leads`, `opportunities`, `team` (and `cs_touchpoints` from Task and Event) from the read objects (text fields
    by name); every problem at once."""
    problems: list[Problem] = []
    t = {}
    for kind, frame in raw.items():
        required_values(
            kind,
            frame,
            NEEDED[kind],
            "id" if "id" in frame.columns else NEEDED[kind][0],
            problems,
            unique=kind != "OpportunityHistory",
        )
        t[kind] = typed(
            kind,
            frame.unique(maintain_order=True) if kind == "OpportunityHistory" else frame,
            SCHEMAS[kind],
            "id" if kind != "OpportunityHistory" else "opportunity",
            problems,
        )
    opps, leads = t["Opportunity"], t["Lead"]
    accounts = t.get("Account", pl.DataFrame(schema=SCHEMAS["Account"]))
    opps = _stages(opps.with_columns(_name=pl.col("stage")), settings, settings_file, problems)
    leads = leads.with_columns(
        channel=mapped(
            leads,
            "source",
            settings.channels,
            table="Lead",
            setting="channels",
            settings_file=settings_file,
            key="id",
            problems=problems,
            empty=settings.empty_channel,
            fallback=None if settings.unknown_channel == "report" else settings.unknown_channel,
        )
    )
    users = _users(t.get("User"), opps, problems)
    activities = [
        t[k].with_columns(kind=touchpoint_kind(t[k], settings, table=k, settings_file=settings_file, problems=problems))
        for k in ("Task", "Event")
        if k in t
    ]
    if problems:
        raise ExportError(problems, head="The Salesforce exports cannot be imported")
    opps = _closed_at(opps, t.get("OpportunityHistory"), settings)
    out_leads, lead_aside = _leads(leads, opps, accounts, keys)
    out_opps, opp_aside = _opportunities(opps, leads, accounts, users, keys)
    first = out_opps.group_by("user_id").agg(pl.col("created_at").min()).drop_nulls()
    team, team_problems = team_table(users, settings.team, first)
    if team_problems:
        raise ExportError(team_problems, head="The Salesforce users cannot be made the team")
    member = dict(team.select("user_id", "member_id").iter_rows())
    out_opps = out_opps.with_columns(
        owner_id=pl.col("user_id").replace_strict(member, default=None, return_dtype=pl.String)
    ).drop("user_id")
    tables = {"leads": out_leads, "opportunities": out_opps, "team": team.drop("user_id")}
    aside: tuple[SetAside, ...] = (*lead_aside, *opp_aside)
    details: dict = {}
    if activities:
        rows = (
            pl.concat(
                [
                    a.select("id", pl.col("when").alias("occurred_at"), "kind", "owner", "account", "role", "sentiment")
                    for a in activities
                ]
            )
            .join(_web(accounts), on="account", how="left")
            .join(owner_ids(pl.concat([a.select("owner") for a in activities]), "owner", users), on="owner", how="left")
            .select(
                "id",
                "occurred_at",
                "kind",
                "user_id",
                pl.col("account").alias("company"),
                pl.col("account_web").alias("address"),
                "role",
                "sentiment",
            )
        )
        tables["cs_touchpoints"], touch_aside, details = touchpoint_table(rows, member, keys, SYSTEM)
        aside = (*aside, *touch_aside)
    return tables, aside, details


def _stages(opps: pl.DataFrame, settings: CrmSettings, settings_file: str, problems: list[Problem]) -> pl.DataFrame:
    """Won or lost from IsClosed and IsWon; an open opportunity's stage through the mapping (which must give an open
    stage). Without the flags, the mapping decides alone."""
    flags = opps.get_column("closed").is_not_null().all() and opps.height > 0
    open_ = opps.filter(~pl.col("closed")) if flags else opps
    stage = stage_of(open_, settings, table="Opportunity", settings_file=settings_file, key="id", problems=problems)
    if not flags:
        return opps.with_columns(stage=stage)
    opps = opps.with_columns(
        stage=pl.when(pl.col("closed") & pl.col("won").fill_null(False))
        .then(pl.lit("won"))
        .when(pl.col("closed"))
        .then(pl.lit("lost"))
        .otherwise(stage)
    )
    odd = opps.filter(~pl.col("closed") & pl.col("stage").is_in(["won", "lost"]))
    if odd.height:
        problems.append(
            Problem(
                "Opportunity.stage_conflict",
                "Opportunity",
                "StageName",
                "the mapping makes an open opportunity (IsClosed false) won or lost; map the stage to an open one",
                odd.height,
                tuple(f"row {r[ROW]} (id={r['id']})" for r in odd.head(5).iter_rows(named=True)),
            )
        )
    return opps


def _closed_at(opps: pl.DataFrame, history: pl.DataFrame | None, settings: CrmSettings) -> pl.DataFrame:
    """When a won or lost opportunity closed: the first time its history shows its final stage (with the time of
    day), else its CloseDate."""
    closed = pl.col("stage").is_in(["won", "lost"])
    if history is None or settings.closed_at != "history":
        return opps.with_columns(closed_at=pl.when(closed).then(pl.col("close")))
    entered = (
        history.rename({"opportunity": "id", "stage": "history_stage"})
        .join(opps.select("id", "_name"), on="id")
        .filter(
            pl.col("history_stage").str.strip_chars().str.to_lowercase()
            == pl.col("_name").str.strip_chars().str.to_lowercase()
        )
        .group_by("id")
        .agg(pl.col("created").min().alias("_entered"))
    )
    return (
        opps.join(entered, on="id", how="left")
        .with_columns(closed_at=pl.when(closed).then(pl.coalesce("_entered", "close")))
        .drop("_entered")
    )


def _users(users: pl.DataFrame | None, opps: pl.DataFrame, problems: list[Problem]) -> pl.DataFrame:
    schema = {"user_id": pl.String, "name": pl.String, "email": pl.String, "created_at": UTC, "ended_at": UTC}
    if users is None:
        values = opps.get_column("owner").drop_nulls().unique().sort()
        return pl.DataFrame(
            {"user_id": values, "name": values, "email": None, "created_at": None, "ended_at": None}, schema=schema
        )
    out = users.select(
        pl.col("id").alias("user_id"),
        pl.coalesce(
            "name",
            pl.concat_str(
                [pl.col("first").fill_null(""), pl.col("last").fill_null("")], separator=" "
            ).str.strip_chars(),
        ).alias("name"),
        "email",
        pl.col("created").alias("created_at"),
        pl.when(pl.col("active").eq(False)).then(pl.col("modified")).alias("ended_at"),
    ).cast(schema)
    unknown = owner_ids(opps, "owner", out).filter(pl.col("user_id").is_null())
    if unknown.height:
        rows = opps.filter(pl.col("owner").is_in(unknown.get_column("owner").implode()))
        problems.append(
            Problem(
                "Opportunity.unknown_owner",
                "Opportunity",
                "OwnerId",
                "names a user the User export does not have",
                rows.height,
                tuple(
                    f"row {r[ROW]} (id={r['id']}): OwnerId={r['owner']!r}" for r in rows.head(5).iter_rows(named=True)
                ),
            )
        )
    return out


def _web(accounts: pl.DataFrame) -> pl.DataFrame:
    return accounts.select(pl.col("id").alias("account"), pl.col("website").alias("account_web"))


def _leads(
    leads: pl.DataFrame, opps: pl.DataFrame, accounts: pl.DataFrame, keys
) -> tuple[pl.DataFrame, tuple[SetAside, ...]]:
    """Leads; a converted one whose opportunity was won (or that has none) gets its account and conversion date."""
    won = opps.filter(pl.col("stage") == "won").get_column("id")
    customer = (
        pl.col("converted").fill_null(False)
        & pl.col("account").is_not_null()
        & (pl.col("opportunity").is_null() | pl.col("opportunity").is_in(won.implode()))
    )
    rows = (
        leads.filter(customer)
        .join(_web(accounts), on="account", how="left")
        .select("id", "account", pl.coalesce("account_web", "website", "email").alias("address"))
    )
    account = pl.DataFrame(schema={"id": pl.String, "account_id": pl.String})
    aside: tuple[SetAside, ...] = ()
    if rows.height:
        m = keys.match(SYSTEM, "leads", rows, key="account", email="address")
        account = m.frame.select("id", "account_id")
        aside = not_customer(m.set_aside, "the lead is kept as one that did not become a customer")
    # Salesforce converts a lead when the opportunity is created; the customer was won on the opportunity's CloseDate
    won_on = opps.filter(pl.col("stage") == "won").select(
        pl.col("id").alias("opportunity"), pl.col("close").alias("_won_on")
    )
    out = (
        leads.join(account, on="id", how="left")
        .join(won_on, on="opportunity", how="left")
        .select(
            pl.col("id").alias("lead_id"),
            pl.col("created").alias("created_at"),
            "channel",
            "segment",
            pl.col("pql").alias("pql_at"),
            "account_id",
            pl.when(pl.col("account_id").is_not_null())
            .then(pl.coalesce("_won_on", "converted_date"))
            .alias("converted_at"),
        )
    )
    return out.sort("lead_id"), aside


def _opportunities(
    opps: pl.DataFrame, leads: pl.DataFrame, accounts: pl.DataFrame, users: pl.DataFrame, keys
) -> tuple[pl.DataFrame, tuple[SetAside, ...]]:
    lead_of = (
        leads.filter(pl.col("opportunity").is_not_null())
        .select(pl.col("opportunity").alias("id"), pl.col("id").alias("lead_id"))
        .unique("id", keep="first")
    )
    won = (
        opps.filter((pl.col("stage") == "won") & pl.col("account").is_not_null())
        .join(_web(accounts), on="account", how="left")
        .select("id", "account", pl.col("account_web").alias("address"))
    )
    account = pl.DataFrame(schema={"id": pl.String, "account_id": pl.String})
    aside: tuple[SetAside, ...] = ()
    if won.height:
        m = keys.match(SYSTEM, "opportunities", won, key="account", email="address")
        account = m.frame.select("id", "account_id")
        aside = not_customer(m.set_aside, "the won opportunity is kept without an account")
    resolved = owner_ids(opps, "owner", users).rename({"owner": "_owner"})
    out = (
        opps.join(lead_of, on="id", how="left")
        .join(account, on="id", how="left")
        .join(resolved, left_on="owner", right_on="_owner", how="left")
        .select(
            pl.col("id").alias("opportunity_id"),
            pl.col("created").alias("created_at"),
            "stage",
            pl.col("amount").fill_null(0.0),
            "lead_id",
            "account_id",
            "user_id",
            "closed_at",
        )
    )
    return out.sort("opportunity_id"), aside


IMPORTER = Importer(
    name=SYSTEM,
    help="Salesforce Lead, Opportunity, Account, User (+ OpportunityHistory, Task, Event) -> leads, opportunities, "
    "team (+ cs_touchpoints)",
    read=_read,
    arguments=add_crm_arguments(SYSTEM),
    accounts=True,
)
