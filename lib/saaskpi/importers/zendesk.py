"""`saaskpi import zendesk EXPORTS --out data/mine`: Zendesk Support's API streams -> `support_tickets` (with CSAT).

Streams read (one file each, see `desk` for the file shapes; only `tickets` and `ticket_metrics` are required):

- `tickets`: `id`, `created_at`, `priority`, `status`, `organization_id`, `requester_id` (and the legacy
  `satisfaction_rating.score` the ticket carries);
- `ticket_metrics`: `ticket_id`, `reply_time_in_minutes.{calendar,business}`,
  `full_resolution_time_in_minutes.calendar`, `solved_at`, `replies`;
- `organizations`: `id`, `domain_names` (the first is the organisation's domain), `external_id`;
- `users`: `id`, `email` (the requester's address, used when the ticket has no organisation);
- `satisfaction_ratings` (legacy CSAT): `ticket_id`, `score` (good / bad; offered and unoffered are no rating),
  `updated_at`;
- `survey_responses` (the newer CSAT survey): `subject_zrns` (`zen:ticket:<id>`) or `ticket_id`,
  `answers[].rating` (1-5), `created_at`.

How a ticket becomes a row of support_tickets (the settings are parameters/sources/zendesk.yaml):

- `first_response_at` = `created_at` + `reply_time_in_minutes.<first_response_minutes>` (calendar by default;
  business minutes make the response hours business hours, as Zendesk's business-hours SLAs count them);
- `resolved_at` = `solved_at` (else `created_at` + `full_resolution_time_in_minutes.calendar`) when the ticket's
  status is solved or closed; empty while it is new, open, pending or on hold;
- `contacts` = the agent's public `replies`, at least 1 (Zendesk's one-touch ticket is a solved ticket with one
  reply; a ticket solved without a reply was still one contact);
- `priority` through the `priority` mapping; a ticket without one gets `missing_priority`; a value the mapping
  does not know is an error;
- `csat`: the latest survey response's rating (1-5), else the legacy rating through `satisfaction` (good -> 5,
  bad -> 1 by default, so the satisfied share, ratings of 4-5, is Zendesk's own good share);
- the account: the organisation's id (or, with `organization_key: external_id`, its `external_id`, often the
  billing or CRM id) through the id map (or `same_id`), else the organisation's domain, else the requester's
  e-mail domain (parameters/sources/accounts.yaml). Deleted tickets and tickets naming neither an organisation
  nor a requester with an address are set aside (reported).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import Field

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
    unknown_values,
)
from .reading import ROW

SETTINGS_FILE = paths.PARAMETERS_DIR / "sources" / "zendesk.yaml"
Priority = Literal["low", "normal", "high", "urgent"]
SOLVED = ("solved", "closed")
NO_RATING = ("offered", "unoffered")


class Satisfaction(Strict):
    """The 1-5 rating a legacy good / bad satisfaction rating counts as."""

    good: int = Field(default=5, ge=1, le=5)
    bad: int = Field(default=1, ge=1, le=5)


class ZendeskSettings(Strict):
    """parameters/sources/zendesk.yaml (every key documented there)."""

    first_response_minutes: Literal["calendar", "business"] = "calendar"
    priority: dict[str, Priority] = {"low": "low", "normal": "normal", "high": "high", "urgent": "urgent"}
    missing_priority: Priority = "normal"
    satisfaction: Satisfaction = Satisfaction()
    organization_key: Literal["id", "external_id"] = "id"


KEY_COLUMNS = {"id": "organization_id", "external_id": "organization_external_id"}
"""The column a ticket's account is looked up by (the id map, `same_id`), per `organization_key`."""


STREAMS = {  # stream -> the file names loaders give it
    "tickets": ("tickets", "ticket"),
    "ticket_metrics": ("ticket_metrics", "ticket_metric"),
    "organizations": ("organizations", "organization"),
    "users": ("users", "user"),
    "satisfaction_ratings": ("satisfaction_ratings", "satisfaction_rating"),
    "survey_responses": ("survey_responses", "csat_survey_responses", "survey_response"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="folder of the help-desk exports, or a zip of them (never modified)")
    parser.add_argument(
        "--settings",
        default=str(SETTINGS_FILE),
        help="minutes, priority and rating mappings (parameters/sources/zendesk.yaml)",
    )


def read_zendesk(args: argparse.Namespace) -> Imported:
    """The support_tickets of the Zendesk exports in `args.source`, matched to the accounts in `args.out`."""
    settings = desk_settings(ZendeskSettings, paths.resolve(args.settings), SETTINGS_FILE)
    folder = require_folder(str(args.source))
    problems: list[Problem] = []
    streams = {
        name: read_stream(folder, name, names, "zendesk", problems, required=name in ("tickets", "ticket_metrics"))
        for name, names in STREAMS.items()
    }
    raise_problems(problems, str(args.source), "Zendesk")
    ticket_stream, metric_stream = streams["tickets"], streams["ticket_metrics"]
    # required streams: read_stream reported a missing or unreadable one and raise_problems raised
    assert ticket_stream is not None and metric_stream is not None
    tickets = _tickets(ticket_stream, problems)
    metrics = _metrics(metric_stream, settings, problems)
    ratings = _ratings(streams["satisfaction_ratings"], streams["survey_responses"], tickets, settings, problems)
    where = _addresses(streams["organizations"], streams["users"], problems)
    raise_problems(problems, str(args.source), "Zendesk")
    frame, aside = _rows(tickets, metrics, ratings, where, settings, problems)
    raise_problems(problems, str(args.source), "Zendesk")
    keys = account_keys(args.out_path, Path(args.accounts))
    matched = keys.match(
        "zendesk", "support_tickets", frame, key=KEY_COLUMNS[settings.organization_key], email="address"
    )
    rows = matched.frame.filter(pl.col("account_id").is_not_null())
    return Imported(
        source=str(args.source),
        files=files_read(*streams.values()),
        tables={"support_tickets": support_tickets(rows)},
        set_aside=(*aside, *matched.set_aside),
        details={
            "zendesk_settings": settings.model_dump(mode="json"),
            **({"id_map": keys.map_file} if keys.map_file else {}),
        },
    )


def _tickets(stream: Stream, problems: list[Problem]) -> pl.DataFrame:
    if not missing_fields(stream, {"id": ("id",), "created_at": ("created_at",)}, problems):
        return pl.DataFrame()
    columns = {
        "ticket_id": stream.values("id"),
        "created_at": stream.values("created_at"),
        "priority": stream.values("priority"),
        "status": stream.values("status"),
        "organization_id": stream.values("organization_id"),
        "requester_id": stream.values("requester_id"),
        "ticket_score": stream.values("satisfaction_rating.score"),
    }
    schema = {
        "ticket_id": pl.String,
        "created_at": UTC,
        "priority": pl.String,
        "status": pl.String,
        "organization_id": pl.String,
        "requester_id": pl.String,
        "ticket_score": pl.String,
    }
    typed = typed_stream(stream, columns, schema, "ticket_id", problems)
    for column, message in (("ticket_id", "a ticket needs its id"), ("created_at", "a ticket needs its creation time")):
        empty = typed.filter(pl.col(column).is_null() & pl.Series([v in (None, "") for v in columns[column]]))
        if not empty.is_empty():
            problems.append(
                Problem(
                    "tickets.missing_value", "tickets", column, message, empty.height, row_examples(empty, f"{{{ROW}}}")
                )
            )
    # an incremental export may hold a ticket several times: its latest version (the last line) counts
    return typed.with_columns(pl.col("priority", "status", "ticket_score").str.to_lowercase()).unique(
        "ticket_id", keep="last", maintain_order=True
    )


def _metrics(stream: Stream, settings: ZendeskSettings, problems: list[Problem]) -> pl.DataFrame:
    basis = settings.first_response_minutes
    if not missing_fields(
        stream,
        {"ticket_id": ("ticket_id",), f"reply_time_in_minutes.{basis}": (f"reply_time_in_minutes.{basis}",)},
        problems,
    ):
        return pl.DataFrame()
    columns = {
        "ticket_id": stream.values("ticket_id"),
        "reply_minutes": stream.values(f"reply_time_in_minutes.{basis}"),
        "full_minutes": stream.values("full_resolution_time_in_minutes.calendar"),
        "solved_at": stream.values("solved_at"),
        "replies": stream.values("replies"),
    }
    schema = {
        "ticket_id": pl.String,
        "reply_minutes": pl.Int64,
        "full_minutes": pl.Int64,
        "solved_at": UTC,
        "replies": pl.Int64,
    }
    typed = typed_stream(stream, columns, schema, "ticket_id", problems)
    negative = typed.filter((pl.col("reply_minutes") < 0) | (pl.col("full_minutes") < 0) | (pl.col("replies") < 0))
    if not negative.is_empty():
        problems.append(
            Problem(
                "ticket_metrics.out_of_range",
                "ticket_metrics",
                "reply_time_in_minutes",
                "minutes and replies must be at least 0",
                negative.height,
                row_examples(negative, f"{{{ROW}}} (ticket_id={{ticket_id}})"),
            )
        )
    return typed.drop(ROW).unique("ticket_id", keep="last", maintain_order=True)


def _ratings(
    legacy: Stream | None,
    survey: Stream | None,
    tickets: pl.DataFrame,
    settings: ZendeskSettings,
    problems: list[Problem],
) -> pl.DataFrame:
    """One CSAT (1-5) per rated ticket: the latest survey response, else the latest legacy rating (from the
    satisfaction_ratings stream, else the one the ticket carries)."""
    parts = [pl.DataFrame(schema={"ticket_id": pl.String, "csat": pl.Int64, "at": UTC, "rank": pl.Int64})]
    scores = {"good": settings.satisfaction.good, "bad": settings.satisfaction.bad}
    if legacy is not None and missing_fields(legacy, {"ticket_id": ("ticket_id",), "score": ("score",)}, problems):
        at = [lookup(r, "updated_at") or lookup(r, "created_at") for r in legacy.records]
        typed = typed_stream(
            legacy,
            {"ticket_id": legacy.values("ticket_id"), "score": legacy.values("score"), "at": at},
            {"ticket_id": pl.String, "score": pl.String, "at": UTC},
            "ticket_id",
            problems,
        )
        parts.append(
            _legacy_scores(
                typed.with_columns(pl.col("score").str.to_lowercase()), "satisfaction_ratings", scores, problems
            ).with_columns(rank=pl.lit(1, pl.Int64))
        )
    elif not tickets.is_empty():
        given = tickets.select(ROW, "ticket_id", pl.col("ticket_score").alias("score"), pl.lit(None, UTC).alias("at"))
        parts.append(_legacy_scores(given, "tickets", scores, problems).with_columns(rank=pl.lit(1, pl.Int64)))
    if survey is not None:
        parts.append(_survey_ratings(survey, problems).with_columns(rank=pl.lit(2, pl.Int64)))
    ratings = pl.concat([p.select("ticket_id", "csat", "at", "rank") for p in parts])
    return (
        ratings.with_row_index("_n")
        .sort("rank", "at", "_n", nulls_last=False)
        .unique("ticket_id", keep="last")
        .select("ticket_id", "csat")
    )


def _legacy_scores(typed: pl.DataFrame, table: str, scores: dict[str, int], problems: list[Problem]) -> pl.DataFrame:
    known = [*scores, *NO_RATING]
    problem = unknown_values(typed, table, "score", known, "satisfaction")
    if problem is not None:
        problems.append(problem)
    rated = typed.filter(pl.col("score").is_in(list(scores)))
    return rated.select("ticket_id", pl.col("score").replace_strict(scores, return_dtype=pl.Int64).alias("csat"), "at")


def _survey_ratings(stream: Stream, problems: list[Problem]) -> pl.DataFrame:
    """The CSAT survey responses: the ticket from `subject_zrns` (`zen:ticket:123`) or `ticket_id`, the rating of
    the rating-scale answer (1-5)."""
    if not missing_fields(
        stream, {"subject_zrns": ("subject_zrns", "ticket_id"), "answers": ("answers", "rating")}, problems
    ):
        return pl.DataFrame(schema={"ticket_id": pl.String, "csat": pl.Int64, "at": UTC})
    ticket, rating = [], []
    for record in stream.records:
        zrns = [z for z in items(lookup(record, "subject_zrns")) if isinstance(z, str) and z.startswith("zen:ticket:")]
        ticket.append(zrns[0].rsplit(":", 1)[1] if zrns else lookup(record, "ticket_id"))
        rated = [
            a.get("rating")
            for a in items(lookup(record, "answers"))
            if isinstance(a, dict) and a.get("rating") is not None
        ]
        rating.append(rated[0] if rated else lookup(record, "rating"))
    typed = typed_stream(
        stream,
        {"ticket_id": ticket, "csat": rating, "at": stream.values("created_at")},
        {"ticket_id": pl.String, "csat": pl.Int64, "at": UTC},
        "ticket_id",
        problems,
    )
    bad = typed.filter((pl.col("csat") < 1) | (pl.col("csat") > 5))
    if not bad.is_empty():
        problems.append(
            Problem(
                "survey_responses.out_of_range",
                "survey_responses",
                "rating",
                "a CSAT rating is 1 to 5",
                bad.height,
                row_examples(bad, f"{{{ROW}}}: rating={{csat}}"),
            )
        )
    return typed.drop_nulls(["csat", "ticket_id"]).select("ticket_id", "csat", "at")


def _addresses(orgs: Stream | None, users: Stream | None, problems: list[Problem]) -> dict[str, pl.DataFrame]:
    """The organisations' domains (the first of `domain_names`) and the users' e-mail addresses."""
    out = {
        "orgs": pl.DataFrame(
            schema={"organization_id": pl.String, "org_domain": pl.String, "organization_external_id": pl.String}
        ),
        "users": pl.DataFrame(schema={"requester_id": pl.String, "email": pl.String}),
    }
    if orgs is not None and missing_fields(orgs, {"id": ("id",)}, problems):
        domains = [
            next(iter(items(d) if not isinstance(d, str) or d[:1] == "[" else [d]), None)
            for d in orgs.values("domain_names")
        ]
        out["orgs"] = (
            typed_stream(
                orgs,
                {
                    "organization_id": orgs.values("id"),
                    "org_domain": domains,
                    "organization_external_id": orgs.values("external_id"),
                },
                {"organization_id": pl.String, "org_domain": pl.String, "organization_external_id": pl.String},
                "organization_id",
                problems,
            )
            .drop(ROW)
            .unique("organization_id", keep="last")
        )
    if users is not None and missing_fields(users, {"id": ("id",), "email": ("email",)}, problems):
        out["users"] = (
            typed_stream(
                users,
                {"requester_id": users.values("id"), "email": users.values("email")},
                {"requester_id": pl.String, "email": pl.String},
                "requester_id",
                problems,
            )
            .drop(ROW)
            .unique("requester_id", keep="last")
        )
    return out


def _rows(
    tickets: pl.DataFrame,
    metrics: pl.DataFrame,
    ratings: pl.DataFrame,
    where: dict[str, pl.DataFrame],
    settings: ZendeskSettings,
    problems: list[Problem],
) -> tuple[pl.DataFrame, tuple[SetAside, ...]]:
    """Every ticket with its times, contacts, priority, CSAT and the address it is matched by (`address`)."""
    problem = unknown_values(tickets, "tickets", "priority", list(settings.priority), "priority")
    if problem is not None:
        problems.append(problem)
        return tickets, ()
    minutes = lambda c: pl.duration(minutes=pl.col(c))  # noqa: E731
    frame = (
        tickets.join(metrics, on="ticket_id", how="left")
        .join(ratings, on="ticket_id", how="left")
        .join(where["orgs"], on="organization_id", how="left")
        .join(where["users"], on="requester_id", how="left")
        .with_columns(
            priority=pl.col("priority")
            .replace_strict(settings.priority, default=None, return_dtype=pl.String)
            .fill_null(settings.missing_priority),
            first_response_at=pl.col("created_at") + minutes("reply_minutes"),
            resolved_at=pl.when(pl.col("status").is_in(SOLVED)).then(
                pl.coalesce(pl.col("solved_at"), pl.col("created_at") + minutes("full_minutes"))
            ),
            contacts=pl.max_horizontal(pl.col("replies"), pl.lit(1)).cast(pl.Int64),
            address=pl.coalesce(pl.col("org_domain"), pl.col("email")),
        )
    )
    frame = frame.with_columns(contacts=pl.when(pl.col("replies").is_not_null()).then(pl.col("contacts")))
    aside = []
    deleted = frame.filter(pl.col("status") == "deleted")
    if not deleted.is_empty():
        aside.append(
            SetAside(
                "deleted",
                "support_tickets",
                deleted.height,
                tuple(f"ticket {t}" for t in deleted.get_column("ticket_id").head(EXAMPLES)),
                "a deleted ticket; left out",
            )
        )
    frame = frame.filter(pl.col("status").fill_null("") != "deleted")
    key = KEY_COLUMNS[settings.organization_key]
    nameless = frame.filter(pl.col(key).is_null() & pl.col("address").is_null())
    if not nameless.is_empty():
        aside.append(
            SetAside(
                "no_account",
                "support_tickets",
                nameless.height,
                tuple(f"ticket {t}" for t in nameless.get_column("ticket_id").head(EXAMPLES)),
                "names no organisation and its requester has no e-mail address; left out",
            )
        )
    frame = frame.filter(pl.col(key).is_not_null() | pl.col("address").is_not_null())
    return frame.drop(ROW), tuple(aside)


IMPORTER = Importer(
    name="zendesk",
    help="Zendesk Support API streams (tickets, ticket_metrics, organizations, users, satisfaction ratings, CSAT "
    "survey responses) -> support_tickets",
    read=read_zendesk,
    arguments=add_arguments,
    accounts=True,
)
