"""The demo company's users and usage events written out as Segment, Amplitude and PostHog exports (for the round
trip of tests/test_import_product_roundtrip.py), with each system's own account ids.

Half the accounts (every other one) are joined by an id map CSV (`account_id` plus the system's group id), the other
half by domain: the Segment group's `website`, the Amplitude user's `email`, the PostHog person's `email`, all at the
account's `conftest.demo_domain`. Each user's first usage event is sent before it is known (Segment `anonymousId`,
Amplitude `device_id`, PostHog an anonymous `distinct_id` of the same person) and merged back by the importer; the
activation milestone is an `Activated` event at `activated_at`; every user is identified at `created_at`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from conftest import demo_domain, two_account_base

TIME = "%Y-%m-%dT%H:%M:%S%.6fZ"
SYSTEM_IDS = {"segment": "grp_{n}", "amplitude": "org-{n}", "posthog": "company_{n}"}


def sample_accounts(accounts: pl.DataFrame, n: int = 150) -> list[str]:
    """`n` demo accounts spread over the id range (deterministic: every k-th id)."""
    ids = accounts.get_column("account_id").sort().to_list()
    step = max(1, len(ids) // n)
    return ids[::step][:n]


def demo_usage(demo: Path, accounts: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The demo's users and usage events of `accounts`, typed."""
    users = (
        pl.read_csv(demo / "users.csv", try_parse_dates=True, schema_overrides={"referred_by": pl.String})
        .filter(pl.col("account_id").is_in(accounts))
        .with_columns(pl.col("created_at", "activated_at").dt.cast_time_unit("us"))
    )
    events = (
        pl.scan_parquet(demo / "usage_events.parquet")
        .filter(pl.col("account_id").is_in(accounts))
        .select("event_time", "user_id", "account_id", "feature", "duration_seconds")  # the exports carry these
        .collect()
    )
    return users.sort("user_id"), events


def group_ids(system: str, accounts: list[str]) -> pl.DataFrame:
    """account_id -> the system's own group id, and whether the id map gives it (every other account) or the domain."""
    return pl.DataFrame(
        {
            "account_id": accounts,
            "group": [SYSTEM_IDS[system].format(n=int(a[1:]) * 7 + 1000) for a in accounts],
            "by_map": [i % 2 == 0 for i in range(len(accounts))],
        }
    ).with_columns(pl.col("account_id").map_elements(demo_domain, return_dtype=pl.String).alias("domain"))


def write_id_map(folder: Path, groups: dict[str, pl.DataFrame]) -> Path:
    """accounts.yaml and account_ids.csv (one column per system: the mapped half of its groups) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = [g.filter("by_map").select("account_id", pl.col("group").alias(system)) for system, g in groups.items()]
    merged = frames[0]
    for f in frames[1:]:
        merged = merged.join(f, on="account_id", how="full", coalesce=True)
    merged.sort("account_id").write_csv(folder / "account_ids.csv")
    (folder / "accounts.yaml").write_text("id_map: account_ids.csv\nmax_unmatched_share: 0\n")
    return folder / "accounts.yaml"


def _first_events(events: pl.DataFrame) -> pl.Expr:
    """True for each user's first usage event (sent before the user is known)."""
    return pl.int_range(pl.len()).over("user_id", order_by=["event_time", "feature"]) == 0


def _timeline(users: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Identify, usage and activation moments of every user: kind, event_time, user_id, account_id, event, duration."""
    identify = users.select(
        pl.lit("identify").alias("kind"),
        pl.col("created_at").alias("event_time"),
        "user_id",
        "account_id",
        pl.lit(None, pl.String).alias("event"),
        pl.lit(None, pl.Int64).alias("duration"),
    )
    activated = users.drop_nulls("activated_at").select(
        pl.lit("track").alias("kind"),
        pl.col("activated_at").alias("event_time"),
        "user_id",
        "account_id",
        pl.lit("Activated").alias("event"),
        pl.lit(None, pl.Int64).alias("duration"),
    )
    usage = events.select(
        pl.when(_first_events(events)).then(pl.lit("anonymous")).otherwise(pl.lit("track")).alias("kind"),
        "event_time",
        "user_id",
        "account_id",
        pl.col("feature").alias("event"),
        pl.col("duration_seconds").alias("duration"),
    )
    return pl.concat([identify, activated, usage]).sort("event_time", "user_id", "kind")


def segment_calls(users: pl.DataFrame, events: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """Segment messages: identify (createdAt, referred_by, the anonymous id), group (the mapped groups by id, the
    others with their website), track (the first one anonymous)."""
    line = (
        _timeline(users, events)
        .join(groups, on="account_id")
        .join(users.select("user_id", "created_at", "referred_by"), on="user_id")
    )
    anon = pl.concat_str(pl.lit("anon-"), pl.col("user_id"))
    stamp = pl.col("event_time").dt.strftime(TIME)
    identify = line.filter(pl.col("kind") == "identify")
    calls = [
        identify.select(
            pl.lit("identify").alias("type"),
            pl.lit(None, pl.String).alias("event"),
            pl.col("user_id").alias("userId"),
            anon.alias("anonymousId"),
            stamp.alias("timestamp"),
            pl.lit(None, pl.String).alias("groupId"),
            pl.struct(
                pl.col("created_at").dt.strftime(TIME).alias("createdAt"),
                "referred_by",
                pl.lit(None, pl.String).alias("website"),
            ).alias("traits"),
            pl.lit(None, pl.Int64).alias("duration"),
            pl.lit(None, pl.String).alias("context_group"),
        ),
        identify.select(
            pl.lit("group").alias("type"),
            pl.lit(None, pl.String).alias("event"),
            pl.col("user_id").alias("userId"),
            pl.lit(None, pl.String).alias("anonymousId"),
            stamp.alias("timestamp"),
            pl.col("group").alias("groupId"),
            pl.struct(
                pl.lit(None, pl.String).alias("createdAt"),
                pl.lit(None, pl.String).alias("referred_by"),
                pl.when(~pl.col("by_map")).then(pl.concat_str(pl.lit("https://www."), "domain")).alias("website"),
            ).alias("traits"),
            pl.lit(None, pl.Int64).alias("duration"),
            pl.lit(None, pl.String).alias("context_group"),
        ),
        line.filter(pl.col("kind") != "identify").select(
            pl.lit("track").alias("type"),
            "event",
            pl.when(pl.col("kind") == "track").then(pl.col("user_id")).alias("userId"),
            pl.when(pl.col("kind") == "anonymous").then(anon).alias("anonymousId"),
            stamp.alias("timestamp"),
            pl.lit(None, pl.String).alias("groupId"),
            pl.lit(None, pl.Struct({"createdAt": pl.String, "referred_by": pl.String, "website": pl.String})).alias(
                "traits"
            ),
            "duration",
            pl.when(pl.col("by_map")).then(pl.col("group")).alias("context_group"),
        ),
    ]
    return (
        pl.concat(calls)
        .with_columns(
            pl.struct(pl.col("duration").alias("duration_seconds")).alias("properties"),
            pl.struct(pl.col("context_group").alias("groupId")).alias("context"),
        )
        .drop("duration", "context_group")
        .sort("timestamp", "userId", "type", nulls_last=True)
    )


def amplitude_events(users: pl.DataFrame, events: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """Amplitude export events: `$identify` at sign-up, usage (the first from the device only, the same
    amplitude_id), `Activated`; groups for the mapped accounts, the user's e-mail for the others."""
    line = (
        _timeline(users, events)
        .join(groups, on="account_id")
        .join(users.select("user_id", "created_at", "referred_by"), on="user_id")
    )
    return line.select(
        pl.when(pl.col("kind") == "identify").then(pl.lit("$identify")).otherwise(pl.col("event")).alias("event_type"),
        pl.when(pl.col("kind") != "anonymous").then(pl.col("user_id")).alias("user_id"),
        pl.concat_str(pl.lit("dev-"), pl.col("user_id")).alias("device_id"),
        (pl.col("user_id").str.slice(1).cast(pl.Int64) + 900_000).alias("amplitude_id"),
        pl.col("event_time").dt.strftime("%Y-%m-%d %H:%M:%S%.6f").alias("event_time"),
        pl.col("created_at").dt.strftime("%Y-%m-%d %H:%M:%S%.6f").alias("user_creation_time"),
        pl.struct(pl.when(pl.col("by_map")).then(pl.concat_list("group")).alias("company")).alias("groups"),
        pl.struct(pl.col("duration").alias("duration_seconds")).alias("event_properties"),
        pl.struct(
            "referred_by",
            pl.when(~pl.col("by_map"))
            .then(pl.concat_str(pl.col("user_id").str.to_lowercase(), pl.lit("@"), pl.col("domain")))
            .alias("email"),
        ).alias("user_properties"),
    )


def posthog_exports(
    users: pl.DataFrame, events: pl.DataFrame, groups: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """PostHog events (`$identify` from the anonymous id at sign-up, usage with `$groups` for the mapped accounts,
    the first usage event from the anonymous id) and persons (uuid, both distinct ids, created_at, e-mail for the
    others, referred_by)."""
    line = _timeline(users, events).join(groups, on="account_id")
    person = pl.concat_str(pl.lit("0190aaaa-0000-7000-8000-"), pl.col("user_id").str.slice(1).str.zfill(12))
    anon = pl.concat_str(pl.lit("anon-"), pl.col("user_id"))
    ev = line.select(
        pl.when(pl.col("kind") == "identify").then(pl.lit("$identify")).otherwise(pl.col("event")).alias("event"),
        pl.when(pl.col("kind") == "anonymous").then(anon).otherwise(pl.col("user_id")).alias("distinct_id"),
        person.alias("person_id"),
        pl.col("event_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").alias("timestamp"),
        pl.struct(
            pl.col("duration").alias("duration_seconds"),
            pl.struct(pl.when(pl.col("by_map")).then(pl.col("group")).alias("company")).alias("$groups"),
            pl.when(pl.col("kind") == "identify").then(anon).alias("$anon_distinct_id"),
        ).alias("properties"),
    )
    persons = users.join(groups, on="account_id").select(
        person.alias("id"),
        pl.concat_list(anon, pl.col("user_id")).alias("distinct_ids"),
        pl.col("created_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("created_at"),
        pl.lit(True).alias("is_identified"),
        pl.struct(
            "referred_by",
            pl.when(~pl.col("by_map"))
            .then(pl.concat_str(pl.col("user_id").str.to_lowercase(), pl.lit("@"), pl.col("domain")))
            .alias("email"),
        ).alias("properties"),
    )
    return ev, persons


def billing_base(tmp_path: Path) -> Path:
    """An output folder as the billing import leaves it, for the literal cases: accounts cus_1 (acme.com) and
    cus_2 (globex.io)."""
    return two_account_base(tmp_path / "mine", amounts=(100.0, 50.0))
