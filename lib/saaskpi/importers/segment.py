"""Segment -> `users` and `usage_events` (`saaskpi import segment EXPORTS --out data/mine`).

The exports are Segment's messages (the raw JSON lines its S3/Data Lakes destinations write, or the same fields
as CSV/Parquet columns), every call type in any file: `track` (`event`, `userId`, `anonymousId`, `timestamp`,
`properties`, `context.groupId`), `identify` (`userId`, `anonymousId`, `traits.createdAt`, `traits.email`, `traits.referred_by`),
`group` (`groupId` = the account, `userId`, `traits.website`) and `alias` (`previousId` -> `userId`). An anonymous id
becomes the user's when an identify or a track carries both ids, or an alias names it. `page` and `screen` calls
(`name`) are usage events when `page_calls: usage` ("Viewed Pricing Page", "Loaded a Page" without a name), else
not read, nor are other calls. Settings: parameters/sources/segment.yaml (see `product.ProductSettings`).
"""

from __future__ import annotations

import argparse

import polars as pl

from . import Imported, Importer
from .product import (
    STAGED,
    Collected,
    ProductSettings,
    Scanner,
    add_arguments,
    export_files,
    imported,
    product_settings,
    timestamp,
)

SYSTEM = "segment"
REQUIRED = ("timestamp", "userId|anonymousId|previousId", "type|event")  # `a|b`: one of them


def schema(s: ProductSettings) -> dict[str, pl.DataType]:
    """The fields of a Segment message the import reads (every other field is ignored)."""
    props = {p: dt for p, dt in ((s.feature_property, pl.String), (s.duration_property, pl.Float64)) if p}
    traits = {t: pl.String for t in (s.created_trait, s.email_trait, s.referred_by_trait, s.domain_trait) if t}
    return {
        "type": pl.String,
        "event": pl.String,
        "name": pl.String,  # a page or screen call's name
        "userId": pl.String,
        "anonymousId": pl.String,
        "timestamp": pl.String,
        "groupId": pl.String,
        "previousId": pl.String,
        "properties": pl.Struct(props or {"_": pl.String}),
        "context": pl.Struct({"groupId": pl.String}),
        "traits": pl.Struct(traits or {"_": pl.String}),
    }


def collect(scanner: Scanner, s: ProductSettings) -> Collected:
    """The shared pieces from Segment's calls: the fields read are staged once (streaming); the tracks stay lazy,
    the identify, group and alias calls and the ids seen together are collected (one row per id, not per event)."""
    kind = pl.coalesce(pl.col("type").str.to_lowercase(), pl.when(pl.col("event").is_not_null()).then(pl.lit("track")))
    prop, trait = pl.col("properties").struct.field, pl.col("traits").struct.field
    none = pl.lit(None, pl.String)
    flat = scanner.stage(
        "calls",
        lambda calls: calls.select(
            *STAGED,
            kind.alias("type"),
            "at",
            pl.coalesce("event", _view_event(kind)).alias("event"),
            "userId",
            "anonymousId",
            "groupId",
            "previousId",
            (prop(s.feature_property) if s.feature_property else none).alias("feature"),
            (prop(s.duration_property) if s.duration_property else pl.lit(None, pl.Float64)).alias("duration_seconds"),
            pl.col("context").struct.field("groupId").alias("group"),
            (trait(s.created_trait) if s.created_trait else none).alias("created"),
            trait(s.email_trait).alias("email"),
            (trait(s.referred_by_trait) if s.referred_by_trait else none).alias("referred_by"),
            trait(s.domain_trait).alias("domain"),
        ),
    )
    usage = ["track", "page", "screen"] if s.page_calls == "usage" else ["track"]
    tracks = flat.filter(pl.col("type").is_in(usage)).select(
        pl.col("at").alias("event_time"),
        pl.coalesce("userId", "anonymousId").alias("id"),
        "event",
        "feature",
        "duration_seconds",
        "group",
    )
    # ids a user was seen with (a user id with itself, an anonymous id that a track or identify carries with it)
    pairs = (
        flat.filter(pl.col("userId").is_not_null() & pl.col("type").is_in(["track", "identify", "page", "screen"]))
        .group_by("userId", "anonymousId")
        .agg(pl.col("at").min())
        .collect(engine="streaming")
    )
    other = flat.filter(pl.col("type").is_in(["identify", "group", "alias"])).collect(engine="streaming")
    alias = other.filter(pl.col("type") == "alias")
    links = pl.concat(
        [
            pairs.select(pl.col("userId").alias("id"), pl.col("userId").alias("user_id"), "at"),
            pairs.drop_nulls("anonymousId").select(
                pl.col("anonymousId").alias("id"), pl.col("userId").alias("user_id"), "at"
            ),
            alias.select(pl.col("previousId").alias("id"), pl.col("userId").alias("user_id"), "at"),
            alias.select(pl.col("userId").alias("id"), pl.col("userId").alias("user_id"), "at"),
        ]
    ).drop_nulls(["id", "user_id"])
    profiles = other.filter((pl.col("type") == "identify") & pl.col("userId").is_not_null()).select(
        pl.col("userId").alias("user_id"),
        timestamp(pl.col("created")).alias("created_at"),
        "email",
        "referred_by",
        pl.col("at").alias("seen_at"),
    )
    memberships = (
        other.filter(pl.col("type") == "group")
        .select(pl.coalesce("userId", "anonymousId").alias("id"), pl.col("groupId").alias("group"), "domain", "at")
        .drop_nulls(["id", "group"])
    )
    return Collected(tracks, links, profiles, memberships)


def _view_event(kind: pl.Expr) -> pl.Expr:
    """The event a page or screen call stands for: "Viewed Pricing Page" (its name), else "Loaded a Page" (a
    screen: "Viewed Home Screen", "Loaded a Screen"); null for the other calls."""
    noun = pl.when(kind == "page").then(pl.lit("Page")).when(kind == "screen").then(pl.lit("Screen"))
    name = pl.col("name").str.strip_chars()
    named = pl.concat_str(pl.lit("Viewed "), name, pl.lit(" "), noun)
    return pl.when(name.fill_null("") != "").then(named).otherwise(pl.concat_str(pl.lit("Loaded a "), noun))


def read_segment(args: argparse.Namespace) -> Imported:
    settings, settings_file = product_settings(SYSTEM, args.source_settings)
    files = export_files(args.exports)
    scanner = Scanner()
    scanner.scan(files, schema(settings), "calls", time="timestamp", required=REQUIRED)
    return imported(SYSTEM, args, scanner, collect(scanner, settings), settings, settings_file)


IMPORTER = Importer(
    name=SYSTEM,
    help="Segment track, identify, group and alias calls (JSON lines, CSV or Parquet) -> users, usage_events",
    read=read_segment,
    arguments=add_arguments,
    accounts=True,
)
