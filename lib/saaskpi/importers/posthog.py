"""PostHog -> `users` and `usage_events` (`saaskpi import posthog EXPORTS --out data/mine`).

The exports are PostHog's events (a batch export's JSON lines or Parquet files, or the events CSV) and, optionally,
its persons (files whose name contains `person`). Read per event: `event`, `distinct_id`, `person_id`, `timestamp`,
`properties` (`$groups` with the account under the key `group_type` names, else `$group_0`; `$anon_distinct_id` of
an `$identify` and its `$set.email`, `alias` of a `$create_alias`; the feature and duration properties the settings name). Read per
person: `id`, `distinct_ids`, `created_at`, `is_identified`, `properties.email`, `properties.referred_by`.

Every distinct id of one person (`person_id`, PostHog's own merge) is one user, as are the ids an `$identify` or a
`$create_alias` links. The user's id is the distinct id the person was first identified with (the `distinct_id` of
its first `$identify` or `$create_alias`; for an identified person of the persons file without one, its last
distinct id); a person never identified is anonymous and its events are set aside. Settings:
parameters/sources/posthog.yaml (see `product.ProductSettings`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from ..errors import Problem
from . import Imported, Importer
from .billing import UTC
from .product import (
    MEMBERSHIPS,
    PROFILES,
    STAGED,
    Collected,
    ProductSettings,
    Scanner,
    add_arguments,
    empty,
    export_files,
    imported,
    product_settings,
    timestamp,
)
from .reading import ExportError

SYSTEM = "posthog"
IDENTIFY = ("$identify", "$create_alias")


def schema(s: ProductSettings) -> dict[str, pl.DataType]:
    """The fields of a PostHog event the import reads (every other field is ignored)."""
    props = {p: dt for p, dt in ((s.feature_property, pl.String), (s.duration_property, pl.Float64)) if p}
    props.update(
        {
            "$groups": pl.Struct({s.group_type: pl.String}),
            "$group_0": pl.String,
            "$set": pl.Struct({s.email_trait: pl.String}),
            "$anon_distinct_id": pl.String,
            "alias": pl.String,
        }
    )
    return {
        "event": pl.String,
        "distinct_id": pl.String,
        "person_id": pl.String,
        "timestamp": pl.String,
        "properties": pl.Struct(props),
    }


def person_schema(s: ProductSettings) -> dict[str, pl.DataType]:
    return {
        "id": pl.String,
        "distinct_ids": pl.List(pl.String),
        "created_at": pl.String,
        "is_identified": pl.Boolean,
        "properties": pl.Struct({s.email_trait: pl.String, s.referred_by_trait or "_": pl.String}),
    }


def is_persons(path: Path) -> bool:
    return "person" in path.name.lower()


def collect(scanner: Scanner, persons: pl.DataFrame | None, s: ProductSettings) -> Collected:
    """The shared pieces from PostHog events and persons: the fields read are staged once (streaming); the events
    stay lazy, the ids are aggregated (one row per id) and the identify and alias events collected."""
    prop = pl.col("properties").struct.field
    flat = scanner.stage(
        "events",
        lambda raw: raw.select(
            *STAGED,
            "at",
            "event",
            "distinct_id",
            "person_id",
            (prop(s.feature_property) if s.feature_property else pl.lit(None, pl.String)).alias("feature"),
            (prop(s.duration_property) if s.duration_property else pl.lit(None, pl.Float64)).alias("duration_seconds"),
            pl.coalesce(prop("$groups").struct.field(s.group_type), prop("$group_0")).alias("group"),
            pl.coalesce(prop("$anon_distinct_id"), prop("alias")).alias("other"),
            prop("$set").struct.field(s.email_trait).alias("email"),
        ),
    )
    events = flat.select(
        pl.col("at").alias("event_time"),
        pl.col("distinct_id").alias("id"),
        "event",
        "feature",
        "duration_seconds",
        "group",
    )
    seen = (
        flat.group_by("person_id", "distinct_id")
        .agg(pl.col("at").min())
        .collect(engine="streaming")
        .drop_nulls("distinct_id")
    )
    calls = (
        flat.filter(pl.col("event").is_in(IDENTIFY))
        .select("distinct_id", "at", "other", "email")
        .collect(engine="streaming")
    )
    pairs = seen.select("person_id", "distinct_id")
    if persons is not None:
        pairs = (
            pl.concat(
                [
                    pairs,
                    persons.select(
                        pl.col("id").alias("person_id"), pl.col("distinct_ids").alias("distinct_id")
                    ).explode("distinct_id"),
                ]
            )
            .drop_nulls()
            .unique()
        )
    # a person's user id: the distinct id of its first $identify / $create_alias, else (identified in the persons
    # file) its last distinct id
    identified = calls.join(pairs, on="distinct_id", how="left").sort("at")
    named = (
        identified.drop_nulls("person_id")
        .unique("person_id", keep="first")
        .select("person_id", pl.col("distinct_id").alias("user_id"))
    )
    if persons is not None:
        last = (
            persons.filter(pl.col("is_identified").fill_null(False))
            .select(pl.col("id").alias("person_id"), pl.col("distinct_ids").list.last().alias("user_id"))
            .drop_nulls()
        )
        named = pl.concat([named, last.join(named, on="person_id", how="anti")])
    links = pl.concat(
        [
            pairs.join(named, on="person_id").select(
                pl.col("distinct_id").alias("id"), "user_id", pl.lit(None, UTC).alias("at")
            ),
            calls.select(pl.col("distinct_id").alias("id"), pl.col("distinct_id").alias("user_id"), "at"),
            calls.drop_nulls("other").select(pl.col("other").alias("id"), pl.col("distinct_id").alias("user_id"), "at"),
        ]
    ).drop_nulls(["id", "user_id"])
    profiles = calls.select(
        pl.col("distinct_id").alias("user_id"),
        pl.lit(None, UTC).alias("created_at"),
        "email",
        pl.lit(None, pl.String).alias("referred_by"),
        pl.col("at").alias("seen_at"),
    )
    if persons is not None:
        referred = (
            pl.col("properties").struct.field(s.referred_by_trait) if s.referred_by_trait else pl.lit(None, pl.String)
        )
        profiles = pl.concat(
            [
                profiles,
                persons.join(named, left_on="id", right_on="person_id").select(
                    "user_id",
                    timestamp(pl.col("created_at")).alias("created_at"),
                    pl.col("properties").struct.field(s.email_trait).alias("email"),
                    referred.alias("referred_by"),
                    pl.lit(None, UTC).alias("seen_at"),
                ),
            ]
        )
    return Collected(events, links, profiles.cast(PROFILES), empty(MEMBERSHIPS))


def read_posthog(args: argparse.Namespace) -> Imported:
    settings, settings_file = product_settings(SYSTEM, args.source_settings)
    files = export_files(args.exports)
    scanner = Scanner()
    person_files = [f for f in files if is_persons(f)]
    raw = scanner.scan(
        [f for f in files if not is_persons(f)],
        schema(settings),
        "events",
        time="timestamp",
        required=("event", "distinct_id", "timestamp"),
    )
    persons = scanner.scan(person_files, person_schema(settings), "persons", required=("id", "distinct_ids"))
    if raw is None:
        raise ExportError(
            [
                Problem(
                    "source.missing_file",
                    "events",
                    None,
                    "no events file among the exports (a file whose name contains `person` is read as persons)",
                    0,
                )
            ],
            ", ".join(args.exports),
        )
    if persons is not None:
        persons = scanner.stage("persons", lambda frame: frame).collect()
    return imported(SYSTEM, args, scanner, collect(scanner, persons, settings), settings, settings_file)


IMPORTER = Importer(
    name=SYSTEM,
    help="PostHog events (and persons) export (JSON lines, CSV or Parquet) -> users, usage_events",
    read=read_posthog,
    arguments=add_arguments,
    accounts=True,
)
