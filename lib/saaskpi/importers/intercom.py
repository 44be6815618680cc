"""`saaskpi import intercom EXPORTS --out data/mine`: Intercom conversations -> `support_tickets` (with CSAT).

Streams read (one file each, see `desk` for the file shapes; only `conversations` is required; every time is a Unix
time in seconds, as the API gives it, or ISO text):

- `conversations`: `id`, `created_at`, `state` (open / closed / snoozed; else `open` true / false), `priority`
  (priority / not_priority), `custom_attributes`, `contacts` (the conversation's contacts: the first is the
  customer), `statistics` (`first_admin_reply_at`, `time_to_admin_reply`, `first_close_at`, `last_close_at`,
  `count_reopens`), `conversation_rating.rating` (1-5);
- `contacts`: `id`, `email`, `companies` (the first is the contact's company);
- `companies`: `id`, `company_id` (the id you gave the company), `website`.

How a conversation becomes a row of support_tickets (the settings are parameters/sources/intercom.yaml):

- `first_response_at` = `statistics.first_admin_reply_at` (`first_response: clock`, the default), or `created_at` +
  `statistics.time_to_admin_reply` (`business`: Intercom subtracts the time outside office hours);
- `resolved_at` = `statistics.last_close_at` (else `first_close_at`) when the conversation is closed; empty while it
  is open or snoozed;
- `contacts` = `statistics.count_reopens` + 1 (each reopen is the customer coming back on the same question; a
  conversation closed without a reopen was solved at the first contact);
- `priority`: Intercom's flag (priority / not_priority) through the `priority` mapping, or, with
  `priority_attribute`, the conversation's custom attribute of that name (low / normal / high / urgent as many
  teams keep it) through the same mapping; none -> `missing_priority`; a value the mapping does not know is an error;
- `csat` = `conversation_rating.rating`;
- the account: the company's `company_id` through the id map, else the company's website domain, else the contact's
  e-mail domain (parameters/sources/accounts.yaml). Conversations whose contact has neither a company nor an
  address are set aside (reported).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

import polars as pl

from .. import paths
from ..errors import Problem
from . import Imported, Importer
from .accounts import account_keys
from .billing import UTC, SetAside
from .desk import (
    EXAMPLES,
    Stream,
    Strict,
    desk_settings,
    files_read,
    items,
    lookup,
    missing_fields,
    raise_problems,
    read_stream,
    require_folder,
    row_examples,
    support_tickets,
    typed_stream,
    unix_text,
    unknown_values,
)
from .reading import ROW

SETTINGS_FILE = paths.PARAMETERS_DIR / "sources" / "intercom.yaml"
Priority = Literal["low", "normal", "high", "urgent"]


class IntercomSettings(Strict):
    """parameters/sources/intercom.yaml (every key documented there)."""

    first_response: Literal["clock", "business"] = "clock"
    priority_attribute: str | None = None
    priority: dict[str, Priority] = {"priority": "high", "not_priority": "normal"}
    missing_priority: Priority = "normal"


STREAMS = {
    "conversations": ("conversations", "conversation"),
    "contacts": ("contacts", "contact"),
    "companies": ("companies", "company"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="folder of the help-desk exports, or a zip of them (never modified)")
    parser.add_argument(
        "--settings",
        default=str(SETTINGS_FILE),
        help="first response and priority settings (parameters/sources/intercom.yaml)",
    )


def _first(value) -> dict:
    """The first object of a list field (`contacts`, `companies`), or {}."""
    found = [v for v in items(value) if isinstance(v, dict)]
    return found[0] if found else {}


def read_intercom(args: argparse.Namespace) -> Imported:
    """The support_tickets of the Intercom exports in `args.source`, matched to the accounts in `args.out`."""
    settings = desk_settings(IntercomSettings, paths.resolve(args.settings), SETTINGS_FILE)
    folder = require_folder(str(args.source))
    problems: list[Problem] = []
    streams = {
        name: read_stream(folder, name, names, "intercom", problems, required=name == "conversations")
        for name, names in STREAMS.items()
    }
    raise_problems(problems, str(args.source), "Intercom")
    conversation_stream = streams["conversations"]
    # a required stream: read_stream reported a missing or unreadable one and raise_problems raised
    assert conversation_stream is not None
    conversations = _conversations(conversation_stream, settings, problems)
    people = _people(streams["contacts"], streams["companies"], problems)
    raise_problems(problems, str(args.source), "Intercom")
    frame, aside = _rows(conversations, people, settings, problems)
    raise_problems(problems, str(args.source), "Intercom")
    keys = account_keys(args.out_path, Path(args.accounts))
    matched = keys.match("intercom", "support_tickets", frame, key="company_id", email="address")
    rows = matched.frame.filter(pl.col("account_id").is_not_null())
    return Imported(
        source=str(args.source),
        files=files_read(*streams.values()),
        tables={"support_tickets": support_tickets(rows)},
        set_aside=(*aside, *matched.set_aside),
        details={
            "intercom_settings": settings.model_dump(mode="json"),
            **({"id_map": keys.map_file} if keys.map_file else {}),
        },
    )


def _conversations(stream: Stream, settings: IntercomSettings, problems: list[Problem]) -> pl.DataFrame:
    required = {"id": ("id",), "created_at": ("created_at",), "statistics": ("statistics",)}
    if not missing_fields(stream, required, problems):
        return pl.DataFrame()
    state = [
        lookup(r, "state")
        or ({True: "open", False: "closed", "true": "open", "false": "closed"}.get(lookup(r, "open")))
        for r in stream.records
    ]
    priority = (
        stream.values(f"custom_attributes.{settings.priority_attribute}")
        if settings.priority_attribute
        else stream.values("priority")
    )
    contact = [_first(lookup(r, "contacts")) for r in stream.records]
    columns = {
        "ticket_id": stream.values("id"),
        "created_at": [unix_text(v) for v in stream.values("created_at")],
        "state": state,
        "priority": priority,
        "first_admin_reply_at": [unix_text(v) for v in stream.values("statistics.first_admin_reply_at")],
        "time_to_admin_reply": stream.values("statistics.time_to_admin_reply"),
        "first_close_at": [unix_text(v) for v in stream.values("statistics.first_close_at")],
        "last_close_at": [unix_text(v) for v in stream.values("statistics.last_close_at")],
        "count_reopens": stream.values("statistics.count_reopens"),
        "csat": stream.values("conversation_rating.rating"),
        "contact_id": [c.get("id") for c in contact],
        "contact_email": [c.get("email") for c in contact],
    }
    schema = {
        "ticket_id": pl.String,
        "created_at": UTC,
        "state": pl.String,
        "priority": pl.String,
        "first_admin_reply_at": UTC,
        "time_to_admin_reply": pl.Int64,
        "first_close_at": UTC,
        "last_close_at": UTC,
        "count_reopens": pl.Int64,
        "csat": pl.Int64,
        "contact_id": pl.String,
        "contact_email": pl.String,
    }
    typed = typed_stream(stream, columns, schema, "ticket_id", problems)
    no_time = pl.col("created_at").is_null() & pl.Series([v is None for v in columns["created_at"]])
    for column, rule, message in (
        ("ticket_id", pl.col("ticket_id").is_null(), "a conversation needs its id"),
        ("created_at", no_time, "a conversation needs its creation time"),
        ("conversation_rating", (pl.col("csat") < 1) | (pl.col("csat") > 5), "a rating is 1 to 5"),
    ):
        bad = typed.filter(rule)
        if not bad.is_empty():
            problems.append(
                Problem(
                    "conversations.missing_value" if column != "conversation_rating" else "conversations.out_of_range",
                    "conversations",
                    column,
                    message,
                    bad.height,
                    row_examples(bad, f"{{{ROW}}}"),
                )
            )
    return typed.with_columns(pl.col("state", "priority").str.to_lowercase()).unique(
        "ticket_id", keep="last", maintain_order=True
    )


def _people(contacts: Stream | None, companies: Stream | None, problems: list[Problem]) -> dict[str, pl.DataFrame]:
    """The contacts' e-mail addresses and first companies, and the companies' own ids and web sites."""
    out = {
        "contacts": pl.DataFrame(schema={"contact_id": pl.String, "email": pl.String, "company": pl.String}),
        "companies": pl.DataFrame(schema={"company": pl.String, "company_id": pl.String, "website": pl.String}),
    }
    if contacts is not None and missing_fields(contacts, {"id": ("id",)}, problems):
        company = [_first(lookup(r, "companies")).get("id") for r in contacts.records]
        out["contacts"] = (
            typed_stream(
                contacts,
                {"contact_id": contacts.values("id"), "email": contacts.values("email"), "company": company},
                {"contact_id": pl.String, "email": pl.String, "company": pl.String},
                "contact_id",
                problems,
            )
            .drop(ROW)
            .unique("contact_id", keep="last")
        )
    if companies is not None and missing_fields(companies, {"id": ("id",)}, problems):
        out["companies"] = (
            typed_stream(
                companies,
                {
                    "company": companies.values("id"),
                    "company_id": companies.values("company_id"),
                    "website": companies.values("website"),
                },
                {"company": pl.String, "company_id": pl.String, "website": pl.String},
                "company",
                problems,
            )
            .drop(ROW)
            .unique("company", keep="last")
        )
    return out


def _rows(
    conversations: pl.DataFrame, people: dict[str, pl.DataFrame], settings: IntercomSettings, problems: list[Problem]
) -> tuple[pl.DataFrame, tuple[SetAside, ...]]:
    """Every conversation with its times, contacts, priority, CSAT, its company's id (`company_id`) and the
    address it is matched by (`address`)."""
    column = f"custom_attributes.{settings.priority_attribute}" if settings.priority_attribute else "priority"
    problem = unknown_values(conversations, "conversations", "priority", list(settings.priority), "priority")
    if problem is not None:
        problems.append(
            problem.__class__(problem.code, problem.table, column, problem.message, problem.count, problem.examples)
        )
        return conversations, ()
    frame = (
        conversations.join(people["contacts"], on="contact_id", how="left")
        .join(people["companies"], on="company", how="left")
        .with_columns(
            priority=pl.col("priority")
            .replace_strict(settings.priority, default=None, return_dtype=pl.String)
            .fill_null(settings.missing_priority),
            first_response_at=(
                pl.col("first_admin_reply_at")
                if settings.first_response == "clock"
                else pl.col("created_at") + pl.duration(seconds=pl.col("time_to_admin_reply"))
            ),
            resolved_at=pl.when(pl.col("state") == "closed").then(
                pl.coalesce(pl.col("last_close_at"), pl.col("first_close_at"))
            ),
            contacts=(pl.col("count_reopens") + 1).cast(pl.Int64),
            address=pl.coalesce(pl.col("website"), pl.col("email"), pl.col("contact_email")),
        )
    )
    nameless = frame.filter(pl.col("company_id").is_null() & pl.col("address").is_null())
    aside: tuple[SetAside, ...] = ()
    if not nameless.is_empty():
        aside = (
            SetAside(
                "no_account",
                "support_tickets",
                nameless.height,
                tuple(f"conversation {t}" for t in nameless.get_column("ticket_id").head(EXAMPLES)),
                "its contact has neither a company nor an e-mail address; left out",
            ),
        )
    frame = frame.filter(pl.col("company_id").is_not_null() | pl.col("address").is_not_null())
    return frame.drop(ROW), aside


IMPORTER = Importer(
    name="intercom",
    help="Intercom conversations (with statistics and ratings), contacts and companies -> support_tickets",
    read=read_intercom,
    arguments=add_arguments,
    accounts=True,
)
