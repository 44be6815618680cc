"""Amplitude -> `users` and `usage_events` (`saaskpi import amplitude EXPORTS --out data/mine`).

The exports are Amplitude's raw event export (the Export API's zip holds one gzipped JSON lines file per hour:
give the zip as downloaded, or its unpacked folder; or the same fields as CSV/Parquet columns). Read per event:
`event_type`, `user_id`, `device_id`, `amplitude_id`, `event_time` (UTC, `2024-01-31 09:30:00.123456`), `groups`
(`{"company": ["acme"]}`: the key `group_type` names the account), `event_properties` (the feature and duration
properties the settings name), `user_properties` (`email`, `referred_by`) and `user_creation_time`. A device id becomes the
user's when an event carries both, or when it shares the event's `amplitude_id` (Amplitude's merged user) with a
user id. Settings: parameters/sources/amplitude.yaml (see `product.ProductSettings`).
"""

from __future__ import annotations

import argparse

import polars as pl

from . import Imported, Importer
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

SYSTEM = "amplitude"
REQUIRED = ("event_type", "event_time", "user_id|device_id")  # `a|b`: one of them


def schema(s: ProductSettings) -> dict[str, pl.DataType]:
    """The fields of an Amplitude export event the import reads (every other field is ignored)."""
    props = {p: dt for p, dt in ((s.feature_property, pl.String), (s.duration_property, pl.Float64)) if p}
    return {
        "event_type": pl.String,
        "user_id": pl.String,
        "device_id": pl.String,
        "amplitude_id": pl.String,
        "event_time": pl.String,
        "user_creation_time": pl.String,
        "groups": pl.Struct({s.group_type: pl.String}),  # a name or a list of names (read as its JSON text)
        "event_properties": pl.Struct(props or {"_": pl.String}),
        "user_properties": pl.Struct({s.email_trait: pl.String, s.referred_by_trait or "_": pl.String}),
    }


def first_group(value: pl.Expr) -> pl.Expr:
    """The group name of `groups.<type>`: the value itself, or the first name of a list (`["acme"]`)."""
    return pl.when(value.str.starts_with("[")).then(value.str.extract(r'^\[\s*"((?:[^"\\]|\\.)*)"')).otherwise(value)


def collect(scanner: Scanner, s: ProductSettings) -> Collected:
    """The shared pieces from Amplitude events: the fields read are staged once (streaming); the events stay lazy,
    ids and users are aggregated (one row per id)."""
    prop, user = pl.col("event_properties").struct.field, pl.col("user_properties").struct.field
    flat = scanner.stage(
        "events",
        lambda raw: raw.select(
            *STAGED,
            "at",
            "user_id",
            "device_id",
            pl.col("amplitude_id").cast(pl.String),
            "event_type",
            (prop(s.feature_property) if s.feature_property else pl.lit(None, pl.String)).alias("feature"),
            (prop(s.duration_property) if s.duration_property else pl.lit(None, pl.Float64)).alias("duration_seconds"),
            first_group(pl.col("groups").struct.field(s.group_type)).alias("group"),
            "user_creation_time",
            user(s.email_trait).alias("email"),
            (user(s.referred_by_trait) if s.referred_by_trait else pl.lit(None, pl.String)).alias("referred_by"),
        ),
    )
    events = flat.select(
        pl.col("at").alias("event_time"),
        pl.coalesce("user_id", "device_id").alias("id"),
        pl.col("event_type").alias("event"),
        "feature",
        "duration_seconds",
        "group",
    )
    seen = (
        flat.group_by("amplitude_id", "user_id", "device_id")
        .agg(pl.col("at").min(), pl.col("user_creation_time").min(), pl.col("email").max(), pl.col("referred_by").max())
        .collect(engine="streaming")
        .with_columns(timestamp(pl.col("user_creation_time")).alias("created_at"))
    )
    known = seen.drop_nulls("user_id")
    merged = (
        known.drop_nulls("amplitude_id")
        .sort("at")
        .unique("amplitude_id", keep="first")  # Amplitude's merged user
        .select("amplitude_id", pl.col("user_id").alias("merged_user"))
    )
    by_amplitude = seen.join(merged, on="amplitude_id").select(
        pl.coalesce("user_id", "device_id").alias("id"), pl.col("merged_user").alias("user_id"), "at"
    )
    links = pl.concat(
        [
            known.select(pl.col("user_id").alias("id"), "user_id", "at"),
            known.drop_nulls("device_id").select(pl.col("device_id").alias("id"), "user_id", "at"),
            by_amplitude.filter(pl.col("id") != pl.col("user_id")),
        ]
    ).drop_nulls(["id", "user_id"])
    profiles = known.select(
        "user_id", "created_at", "email", "referred_by", pl.lit(None, pl.Datetime("us", "UTC")).alias("seen_at")
    )
    return Collected(events, links, profiles.cast(PROFILES), empty(MEMBERSHIPS))


def read_amplitude(args: argparse.Namespace) -> Imported:
    settings, settings_file = product_settings(SYSTEM, args.source_settings)
    files = export_files(args.exports)
    scanner = Scanner()
    scanner.scan(files, schema(settings), "events", time="event_time", required=REQUIRED)
    return imported(SYSTEM, args, scanner, collect(scanner, settings), settings, settings_file)


IMPORTER = Importer(
    name=SYSTEM,
    help="Amplitude event export (JSON lines, .gz, CSV or Parquet) -> users, usage_events",
    read=read_amplitude,
    arguments=add_arguments,
    accounts=True,
)
