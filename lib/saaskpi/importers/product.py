"""Product analytics -> `users` and `usage_events`: what the Segment, Amplitude and PostHog importers share.

Each system's module reads its exports into the same four pieces (`Collected`):

- `events`, a `pl.LazyFrame` of every event (never collected whole): `event_time`, `id` (the id the event
  carries: a user id, or an anonymous/device id when it has none), `event`, `feature`, `duration_seconds`,
  `group` (the account key the event names, if any);
- `links`: (`id`, `user_id`, `at`) pairs saying which known user an id belongs to (a user id to itself, an
  alias or an anonymous id seen with a user id to that user): the source's own merges, nothing guessed;
- `profiles`: (`user_id`, `created_at`, `email`, `referred_by`, `seen_at`) from identify calls or persons;
- `memberships`: (`id`, `group`, `domain`, `at`) from group calls (the group's web or e-mail domain when known).

`build` then merges the ids (a chain of aliases is followed to its end), finds each group's account through the
one account key (`accounts.account_keys`; a group without a web domain takes the e-mail domain all its members
share, and a user in no group at all is matched by its own e-mail's domain: company domains only), gives each user one account (a user in two accounts is an error, or
the first group when `user_in_two_accounts: first_group`), and returns `users` (a small DataFrame) and
`usage_events` (a LazyFrame the framework sinks into the output without holding the events in memory).

Files are JSON lines (`.json`, `.jsonl`, `.ndjson`, each possibly `.gz`), CSV or Parquet, read with Polars' lazy
scans; nested fields (`properties`, `context`, `traits`, ...) are structs in JSON lines and Parquet and JSON text in
CSV. A line that is not JSON is reported with its file and line number.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError

from .. import paths
from ..errors import ParameterError, Problem
from ..params import read_yaml
from . import reading
from .accounts import EXAMPLES, AccountKeys, account_keys, domain_of
from .billing import SetAside
from .reading import ExportError, FileRead, shown_name, shown_path

SOURCES_DIR = paths.PARAMETERS_DIR / "sources"
STAGED = ("_file", "_time_bad")  # the columns a system's normalised frame keeps for `Scanner.stage`
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
FAST_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S.%3fZ",
    "%Y-%m-%dT%H:%M:%S.%6fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%d %H:%M:%S.%6f",
    "%Y-%m-%d %H:%M:%S.%3f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%6f+00:00",
    "%Y-%m-%dT%H:%M:%S.%3f+00:00",
    "%Y-%m-%dT%H:%M:%S+00:00",
)
"""Fixed-width layouts (UTC), parsed about four times faster than the general ones; tried first."""
TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%:z",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)
"""The date-time layouts of the exports (Segment ISO with Z, Amplitude `2024-01-31 09:30:00.123456` in UTC,
PostHog ISO with an offset); a time without a zone is UTC."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductSettings(_Strict):
    """How a product-analytics export becomes users and usage events (parameters/sources/<system>.yaml)."""

    activation_event: str | None = "Activated"  # its first occurrence per user = users.activated_at (null: none)
    activation_is_usage: bool = False  # also write the activation event as a usage event
    feature_property: str | None = None  # the event property naming the feature; null: the event name
    duration_property: str | None = "duration_seconds"  # the event property giving seconds spent (null: none)
    skip_events: tuple[str, ...] = ()  # events that are not product usage (never written to usage_events)
    created_trait: str | None = "createdAt"  # the user trait/property holding the sign-up time
    email_trait: str = (
        "email"  # the user trait/property with the e-mail (a user in no group: its domain finds the account)
    )
    referred_by_trait: str | None = "referred_by"  # the user trait/property naming the referring user
    domain_trait: str = "website"  # the group trait holding the company's web address (or e-mail)
    group_type: str = "company"  # Amplitude `groups` / PostHog `$groups` key that is the account
    user_in_two_accounts: Literal["error", "first_group"] = "error"
    # Segment's page and screen calls: `ignore` (not read), or `usage` (each a usage event named as Segment's
    # libraries name a page call made an event: "Viewed <name> Page", or "Loaded a Page" without a name)
    page_calls: Literal["ignore", "usage"] = "ignore"


# the settings only some systems' exports have: given for another system, they would be silently ignored
ONLY_FOR = {
    "created_trait": ("segment",),
    "domain_trait": ("segment",),
    "page_calls": ("segment",),
    "group_type": ("amplitude", "posthog"),
}
SYSTEM_NAMES = {"segment": "Segment", "amplitude": "Amplitude", "posthog": "PostHog"}


def product_settings(system: str, path: str | None) -> tuple[ProductSettings, str]:
    """The settings of `system` (parameters/sources/<system>.yaml by default); errors name the key, and a key only
    another system reads (ONLY_FOR) is one of them."""
    given = Path(path) if path else SOURCES_DIR / f"{system}.yaml"
    if not given.exists():
        if path:
            raise ParameterError(f"--settings {path}: no such file.")
        return ProductSettings(), ""
    values = read_yaml(given) or {}
    lines = [
        f"  `{key}`: read from {' and '.join(SYSTEM_NAMES[s] for s in systems)} exports only, not from "
        f"{SYSTEM_NAMES[system]}'s (remove it)"
        for key, systems in ONLY_FOR.items()
        if isinstance(values, dict) and key in values and system not in systems
    ]
    try:
        settings = ProductSettings.model_validate(values)
    except ValidationError as err:
        lines += [
            f"  `{'.'.join(str(p) for p in e['loc'])}`: {e['msg']} (got {e.get('input')!r})" for e in err.errors()
        ]
    if lines:
        raise ParameterError(f"{given.name}: {len(lines)} problem(s):\n" + "\n".join(lines))
    return settings, str(given)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`EXPORTS...` (files or folders) and `--settings`."""
    parser.add_argument(
        "exports",
        nargs="+",
        help="export files, folders or zip archives of them: JSON lines (.json, .jsonl, "
        ".ndjson, optionally .gz), CSV or Parquet (never modified)",
    )
    parser.add_argument(
        "--settings",
        dest="source_settings",
        default="",
        help="settings of this system (default parameters/sources/<system>.yaml)",
    )


# --------------------------------------------------------------------------- reading files lazily


def export_files(given: list[str]) -> list[Path]:
    """The export files named by `given` (a folder: its readable files, sorted; a zip archive, as Amplitude's export
    API gives it: its readable members, unpacked into a scratch folder); an unknown kind is an error."""
    files, problems = [], []
    for item in given:
        path = paths.resolve(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".") and _readable(p))
            if not found:
                problems.append(Problem("source.missing_file", path.name, None, f"{path} holds no {KINDS} file", 0))
            files += found
        elif path.is_file() and _readable(path):
            files.append(path)
        else:
            problems.append(
                Problem(
                    "source.missing_file", path.name, None, f"{item} is not a {KINDS} file, nor a folder of them", 0
                )
            )
    unpacked = []
    for path in files:  # a zip's readable members in its place
        try:
            folder = reading.unpacked(path, lambda p: _kind(p) is not None)
        except ExportError as err:
            problems += err.problems
            continue
        members = [path] if folder == path else sorted(folder.iterdir())
        if not members:
            problems.append(Problem("source.missing_file", path.name, None, f"{path.name} holds no {KINDS} file", 0))
        unpacked += members
    if problems:
        raise ExportError(problems, ", ".join(given))
    return unpacked


KINDS = ".jsonl, .json, .ndjson (.gz), .csv, .parquet or .zip"


def _readable(path: Path) -> bool:
    return _kind(path) is not None or reading.is_zip(path)


def _kind(path: Path) -> str | None:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(JSON_SUFFIXES):
        return "json"
    return "csv" if name.endswith(".csv") else "parquet" if name.endswith(".parquet") and path.suffix != ".gz" else None


@dataclass
class Scanner:
    """Scans export files lazily into one schema, then `stage`s what a system makes of them as one Parquet file in a
    scratch folder (streaming: the JSON is parsed and the times read once, whatever number of passes follow).
    Gzipped JSON lines are unpacked, streaming, into the scratch folder too; it is removed when the command ends
    (the output is written from it after `read` returns)."""

    scratch: Path | None = None
    files: list[FileRead] = field(default_factory=list)
    json: list[tuple[Path, Path]] = field(default_factory=list)  # (export, the file read) of the JSON lines
    _scans: dict = field(default_factory=dict)  # table -> (files, schema, time) of its scan

    def scan(
        self,
        files: list[Path],
        schema: dict[str, pl.DataType],
        table: str,
        time: str | None = None,
        fast: bool = True,
        required: tuple[str, ...] = (),
    ) -> pl.LazyFrame | None:
        """One LazyFrame of `files`, each brought to `schema` (missing columns null) with `_file` (its index in
        `self.files`) and, when `time` names a text column, `at`: that column read as UTC date-times (in the layout
        of the file's first rows when `fast`, else in any layout) and `_time_bad` (a time given but not read).
        None when there are no files."""
        if required:  # every file checked before any is read
            problems = [p for path in files if (p := _missing(path, table, required)) is not None]
            if problems:
                raise ExportError(problems, ", ".join(sorted({shown_path(f.parent) for f in files})))
        self._scans[table] = (files, schema, time)
        frames = [self._one(path, schema, table, time, fast) for path in files]
        return pl.concat(frames, how="vertical") if frames else None

    def _one(
        self, path: Path, schema: dict[str, pl.DataType], table: str, time: str | None, fast: bool
    ) -> pl.LazyFrame:
        kind = _kind(path)
        known = next((i for i, (export, _) in enumerate(self.json) if export == path), None)
        if kind == "json" and known is not None:
            frame = pl.scan_ndjson(self.json[known][1], schema=schema)
        elif kind == "json":
            source = self._unpacked(path) if path.suffix == ".gz" else path
            self.json.append((path, source))
            frame = pl.scan_ndjson(source, schema=schema)
        elif kind == "parquet":
            try:
                have = pl.read_parquet_schema(path)
            except Exception as err:  # noqa: BLE001  (any Arrow/Polars error means: not Parquet)
                raise ExportError(
                    [Problem("source.unreadable", table, None, f"{shown_name(path)} is not a Parquet file ({err})", 0)],
                    shown_path(path),
                ) from None
            frame = pl.scan_parquet(path).select([_as(c, dtype, have.get(c)) for c, dtype in schema.items()])
        else:
            head = pl.read_csv(path, n_rows=0, infer_schema=False)
            frame = pl.scan_csv(path, infer_schema=False).select(
                [_as(c, dtype, pl.String if c in head.columns else None) for c, dtype in schema.items()]
            )
        index = next(
            (i for i, f in enumerate(self.files) if (f.file, f.table) == (shown_name(path), table)), len(self.files)
        )
        frame = frame.with_columns(pl.lit(index, pl.UInt32).alias("_file"))
        if index == len(self.files):
            self.files.append(FileRead(shown_name(path), table, 0))
        if time is None:
            return frame.with_columns(pl.lit(False).alias("_time_bad"))
        text = pl.col(time).str.strip_chars()
        at = timestamp(pl.col(time), layout(self._sample(frame, time)) if fast else None)
        return frame.with_columns(at.alias("at"), (at.is_null() & (text.fill_null("") != "")).alias("_time_bad"))

    def _sample(self, frame: pl.LazyFrame, time: str) -> pl.Series:
        try:
            return frame.select(time).head(1000).collect().get_column(time)
        except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, pl.exceptions.InvalidOperationError) as err:
            self._locate(err)
            raise  # unreachable: _locate raises

    def stage(self, table: str, normalise: Callable[[pl.LazyFrame], pl.LazyFrame]) -> pl.LazyFrame:
        """What `normalise` makes of the scan of `table` (keeping `_file` and `_time_bad`), written, streaming, to
        the scratch folder and scanned back; the rows of each file counted for the report. When a time did not fit
        its file's layout, the files are staged again reading every time in any layout (slower, only then). A JSON
        line that breaks the reading is reported with its file and line."""
        files, schema, time = self._scans[table]
        target = self._scratch() / f"{table}.parquet"
        for fast in (True, False):
            try:
                normalise(self.scan(files, schema, table, time, fast)).sink_parquet(target, engine="streaming")
            except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, pl.exceptions.InvalidOperationError) as err:
                self._locate(err)
            if not pl.scan_parquet(target).select(pl.col("_time_bad").any()).collect().item():
                break
        for index, rows in pl.scan_parquet(target).group_by("_file").len().collect().iter_rows():
            read = self.files[index]
            self.files[index] = FileRead(read.file, read.table, read.rows + rows)
        return pl.scan_parquet(target)

    def _locate(self, err: Exception) -> None:
        """Raise `ExportError` naming the broken lines of the JSON files (found in Python, only now)."""
        problems = [p for export, source in self.json if (p := _broken_lines(export, source)) is not None]
        if not problems:
            problems = [Problem("source.unreadable", "exports", None, f"cannot be read: {str(err).splitlines()[0]}", 0)]
        raise ExportError(problems, ", ".join(sorted({f.file for f in self.files}))) from None

    def _scratch(self) -> Path:
        if self.scratch is None:
            self.scratch = reading.scratch_folder("saaskpi-events-")
        return self.scratch

    def _unpacked(self, path: Path) -> Path:
        target = self._scratch() / f"{len(self.json)}-{path.name.removesuffix('.gz')}"
        try:
            with gzip.open(path, "rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError) as err:
            raise ExportError(
                [Problem("source.unreadable", shown_name(path), None, f"{shown_name(path)} is not gzip ({err})", 0)],
                shown_path(path),
            ) from None
        return target


def _as(column: str, dtype: pl.DataType, have: pl.DataType | None) -> pl.Expr:
    """Column `column` of a Parquet or CSV file as `dtype`: JSON text decoded, a struct's missing fields null."""
    if have is None:
        return pl.lit(None, dtype=dtype).alias(column)
    c = pl.col(column)
    if isinstance(dtype, pl.Struct):
        if have == pl.String:
            return _from_json_text(pl.when(c.str.strip_chars() != "").then(c), dtype).alias(column)
        if isinstance(have, pl.Struct):
            names = {f.name: f.dtype for f in have.fields}
            return pl.struct([_as_field(c, f.name, f.dtype, names.get(f.name)) for f in dtype.fields]).alias(column)
        return pl.lit(None, dtype=dtype).alias(column)
    if isinstance(have, pl.Datetime):
        base = c if have.time_zone else c.dt.replace_time_zone("UTC")
        return (
            base.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").alias(column)
            if dtype == pl.String
            else base.alias(column)
        )
    if isinstance(dtype, pl.List) and have == pl.String:
        return c.str.json_decode(dtype).alias(column)
    if have == pl.String:  # an empty CSV cell is a missing value
        c = pl.when(c.str.strip_chars() != "").then(c)
    return c.cast(dtype, strict=False).alias(column) if have != dtype else c.alias(column)


def _from_json_text(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """JSON text (a CSV cell, a Parquet string column) as `dtype`, field by field: a text field takes any value
    (a list stays its JSON text, as the JSON lines reader gives it), a number or struct is read as such."""
    if isinstance(dtype, pl.Struct):
        return pl.struct(
            [_from_json_text(text.str.json_path_match(f"$['{f.name}']"), f.dtype).alias(f.name) for f in dtype.fields]
        )
    if isinstance(dtype, pl.List):
        return text.str.json_decode(dtype)
    return text if dtype == pl.String else text.cast(dtype, strict=False)


def _as_field(c: pl.Expr, name: str, dtype: pl.DataType, have: pl.DataType | None) -> pl.Expr:
    if have is None:
        return pl.lit(None, dtype=dtype).alias(name)
    f = c.struct.field(name)
    if isinstance(have, pl.List) and dtype == pl.String:  # a list where a name is read (Amplitude's groups)
        return f.list.first().cast(pl.String).alias(name)
    if isinstance(have, pl.Datetime) and dtype == pl.String:
        return f.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").alias(name)
    return f.cast(dtype, strict=False).alias(name) if have != dtype else f.alias(name)


def _columns(path: Path) -> list[str] | None:
    """The columns (fields) of an export file: the header, the Parquet schema, the keys of the first JSON lines."""
    kind = _kind(path)
    try:
        if kind == "parquet":
            return list(pl.read_parquet_schema(path))
        if kind == "csv":
            return pl.read_csv(path, n_rows=0, infer_schema=False).columns
        opener = gzip.open if path.suffix == ".gz" else open
        keys: dict[str, None] = {}
        with opener(path, "rb") as lines:
            for number, line in enumerate(lines):
                if number >= 100:
                    break
                try:
                    value = json.loads(line)
                except ValueError:
                    continue  # a broken line is reported when the file is read
                keys.update(dict.fromkeys(value if isinstance(value, dict) else ()))
        return list(keys)
    except (OSError, EOFError, pl.exceptions.PolarsError):
        return None  # unreadable: reported when the file is read


def _missing(path: Path, table: str, required: tuple[str, ...]) -> Problem | None:
    """A problem when `path` lacks a required column (`a|b`: one of them)."""
    columns = _columns(path)
    if columns is None:
        return None
    missing = [r for r in required if not set(r.split("|")) & set(columns)]
    if not missing:
        return None
    return Problem(
        f"{table}.missing_column",
        shown_name(path),
        missing[0].replace("|", " or "),
        f"is not in {shown_name(path)}, so it is not a {table} export (its columns: "
        f"{', '.join(columns[:12]) or 'none'}{', ...' if len(columns) > 12 else ''}); it needs "
        f"{', '.join(r.replace('|', ' or ') for r in required)}",
        0,
    )


def _broken_lines(path: Path, source: Path) -> Problem | None:
    """The lines of `source` (the JSON lines export `path`, unpacked) that are not a JSON object, or None."""
    bad: list[str] = []
    count = 0
    with source.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
                if not isinstance(value, dict):
                    raise ValueError("not an object")
            except ValueError as err:
                count += 1
                if len(bad) < EXAMPLES:
                    bad.append(f"line {number}: {line[:60].decode('utf-8', 'replace').strip()!r} ({err})")
    if not count:
        return None
    return Problem(
        "source.broken_json_line", shown_name(path), None, "is not a JSON object on its line", count, tuple(bad)
    )


def layout(sample: pl.Series) -> str | None:
    """The one layout of `TIME_FORMATS` every text date-time of `sample` has, or None."""
    given = sample.drop_nulls()
    given = given.filter(given.str.strip_chars() != "")
    for fmt in FAST_TIME_FORMATS + TIME_FORMATS:
        if given.is_empty() or pl.select(_parsed(pl.lit(given), fmt).is_null().sum()).item() == 0:
            return fmt
    return None


def _parsed(text: pl.Expr, fmt: str) -> pl.Expr:
    text = text.str.strip_chars()
    if fmt.endswith("+00:00"):  # a fixed UTC offset: the text without it, parsed in a fixed width (fast)
        body = text.str.head(-6).str.to_datetime(fmt.removesuffix("+00:00"), strict=False, time_unit="us")
        return pl.when(text.str.ends_with("+00:00")).then(body).dt.replace_time_zone("UTC")
    parsed = text.str.to_datetime(fmt, strict=False, time_unit="us")
    return parsed.dt.convert_time_zone("UTC") if "%:z" in fmt else parsed.dt.replace_time_zone("UTC")


def timestamp(column: pl.Expr, fmt: str | None = None) -> pl.Expr:
    """Text date-times as UTC: in layout `fmt` (fast: one parse), else in any of `TIME_FORMATS` (a time without a
    zone is UTC); null where none fits."""
    if fmt is not None:
        return _parsed(column, fmt)
    return pl.coalesce([_parsed(column, f) for f in TIME_FORMATS])


# --------------------------------------------------------------------------- building the tables

PROFILES = {
    "user_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "email": pl.String,
    "referred_by": pl.String,
    "seen_at": pl.Datetime("us", "UTC"),
}
MEMBERSHIPS = {"id": pl.String, "group": pl.String, "domain": pl.String, "at": pl.Datetime("us", "UTC")}


@dataclass
class Collected:
    """What a system's exports say, in the shared shape (see the module docstring)."""

    events: pl.LazyFrame
    links: pl.DataFrame
    profiles: pl.DataFrame
    memberships: pl.DataFrame
    set_aside: list[SetAside] = field(default_factory=list)


def empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def resolved(links: pl.DataFrame) -> pl.DataFrame:
    """(`id`, `user_id`): each id to the user it finally belongs to. An id linked to two users keeps its first link
    (by time); a chain of links (an alias of an alias) is followed to its end, a user id that was aliased away is
    no user of its own."""
    first = (
        links.drop_nulls(["id", "user_id"])
        .sort("at", "id", "user_id", nulls_last=True)
        .filter(pl.col("id") != pl.col("user_id"))
        .unique("id", keep="first", maintain_order=True)
        .select("id", "user_id")
    )
    for _ in range(64):  # chains are short; 64 steps end any that is not a cycle
        step = first.join(first.rename({"id": "user_id", "user_id": "next"}), on="user_id", how="left")
        if step.get_column("next").null_count() == step.height:
            break
        first = step.select("id", pl.coalesce("next", "user_id").alias("user_id")).filter(
            pl.col("id") != pl.col("user_id")
        )
    users = links.select(pl.col("user_id").alias("id")).drop_nulls().unique().join(first, on="id", how="anti")
    return pl.concat([first, users.with_columns(pl.col("id").alias("user_id"))]).unique("id").sort("id")


def build(
    system: str, collected: Collected, settings: ProductSettings, out: Path, accounts_path: Path
) -> tuple[dict[str, pl.DataFrame | pl.LazyFrame], list[SetAside], dict]:
    """`users` and (lazy) `usage_events` from what a system's exports say; the rows set aside; report details."""
    keys = account_keys(out, accounts_path)
    ids = resolved(collected.links)
    events = collected.events
    activation = settings.activation_event
    is_activation = (pl.col("event") == activation) if activation else pl.lit(False)
    # one streaming pass: per id and group, how many events, the first one, the first activation
    seen = (
        events.group_by("id", "group")
        .agg(
            pl.len().alias("n"),
            pl.col("event_time").min().alias("first"),
            pl.col("event_time").filter(is_activation).min().alias("activated"),
            pl.col("event_time").is_null().sum().alias("no_time"),
        )
        .collect(engine="streaming")
    )
    problems = _time_problems(system, seen, events)
    seen = seen.join(ids, on="id", how="left")
    aside = list(collected.set_aside)
    anonymous = seen.filter(pl.col("user_id").is_null())
    if anonymous.height:
        aside.append(
            SetAside(
                "anonymous",
                "usage_events",
                int(anonymous.get_column("n").sum()),
                tuple(anonymous.get_column("id").drop_nulls().unique().sort().head(EXAMPLES).to_list()),
                "events of ids never identified as a user (no user id, alias or identify links them); left out",
            )
        )
    known = seen.drop_nulls("user_id")
    profiles = (
        collected.profiles.join(ids.rename({"id": "user_id", "user_id": "_user"}), on="user_id", how="left")
        .with_columns(pl.coalesce("_user", "user_id").alias("user_id"))
        .drop("_user")
    )
    members = _memberships(collected.memberships, ids, known, profiles)
    member_accounts, matched_aside = _member_accounts(system, keys, members, profiles)
    aside += matched_aside
    problems += _two_accounts(system, member_accounts, settings)
    if problems:
        raise ExportError(problems, head=f"The {system} exports cannot be imported")
    account = (
        member_accounts.sort("user_id", "at", "account_id", nulls_last=True)
        .unique("user_id", keep="first", maintain_order=True)
        .select("user_id", "account_id")
    )
    users = _users(known, profiles, account, settings)
    no_account = users.filter(pl.col("account_id").is_null())
    if no_account.height:
        lost = known.join(no_account.select("user_id"), on="user_id").get_column("n").sum()
        aside.append(
            SetAside(
                "no_account",
                "users",
                no_account.height,
                tuple(no_account.get_column("user_id").head(EXAMPLES).to_list()),
                f"users in no group that matches an account (their {lost:,} events are left out too)",
            )
        )
    users = users.drop_nulls("account_id")
    usage = _usage(events, ids, users.select("user_id", "account_id"), settings)
    details = {
        "users_merged": {
            "ids": ids.height,
            "users": users.height + no_account.height,
            "ids_merged_into_another": ids.filter(pl.col("id") != pl.col("user_id")).height,
        }
    }
    return {"users": users, "usage_events": usage}, aside, details


def _memberships(
    memberships: pl.DataFrame, ids: pl.DataFrame, known: pl.DataFrame, profiles: pl.DataFrame
) -> pl.DataFrame:
    """(`user_id`, `group`, `domain`, `at`): the groups of the user's group calls and of its events; a user in no
    group at all is in the pseudo-group `@<domain>` of its e-mail's company domain (matched by domain only)."""
    members = pl.concat(
        [
            memberships.join(ids, on="id").select("user_id", "group", "domain", "at"),
            known.drop_nulls("group").select(
                "user_id", "group", pl.lit(None, pl.String).alias("domain"), pl.col("first").alias("at")
            ),
        ]
    ).drop_nulls("group")
    by_mail = (
        profiles.select("user_id", domain_of(pl.col("email")).alias("domain"), pl.col("seen_at").alias("at"))
        .drop_nulls("domain")
        .join(members, on="user_id", how="anti")
        .sort("at", nulls_last=True)
        .unique("user_id", keep="first")
        .select("user_id", pl.concat_str(pl.lit("@"), "domain").alias("group"), "domain", "at")
    )
    return pl.concat([members, by_mail])


def _member_accounts(
    system: str, keys: AccountKeys, members: pl.DataFrame, profiles: pl.DataFrame
) -> tuple[pl.DataFrame, list[SetAside]]:
    """(`user_id`, `account_id`, `at`, `group`): each user's accounts, by matching its groups with the one account
    key; a group without a web domain of its own takes its members' e-mail domain, when they all share one."""
    mail = profiles.select("user_id", domain_of(pl.col("email")).alias("mail")).drop_nulls().unique()
    groups = (
        members.join(mail, on="user_id", how="left")
        .group_by("group")
        .agg(
            pl.col("domain").drop_nulls().first(),
            pl.col("mail").drop_nulls().unique().alias("mails"),
            pl.col("user_id").n_unique().alias("users"),
        )
        .with_columns(
            pl.coalesce("domain", pl.when(pl.col("mails").list.len() == 1).then(pl.col("mails").list.first()))
        )
        .drop("mails")
        .sort("group")
    )
    matched = keys.match(system, "users", groups, key="group", email="domain", weight="users")
    accounts = (
        members.join(matched.frame.drop_nulls("account_id").select("group", "account_id"), on="group")
        .group_by("user_id", "account_id")
        .agg(pl.col("at").min(), pl.col("group").sort().first())
    )
    return accounts, list(matched.set_aside)


def _two_accounts(system: str, member_accounts: pl.DataFrame, settings: ProductSettings) -> list[Problem]:
    """A user in groups of two accounts, unless `user_in_two_accounts: first_group`."""
    twice = member_accounts.group_by("user_id").agg(pl.col("account_id").n_unique().alias("n")).filter(pl.col("n") > 1)
    if twice.is_empty() or settings.user_in_two_accounts != "error":
        return []
    shown = (
        member_accounts.join(twice.sort("user_id").head(EXAMPLES), on="user_id")
        .sort("user_id", "at", "account_id")
        .group_by("user_id", maintain_order=True)
        .agg(pl.col("group"), pl.col("account_id"))
    )
    return [
        Problem(
            f"{system}.two_accounts",
            "users",
            "account_id",
            "is in groups of two accounts (set user_in_two_accounts: first_group to take the first group the "
            "user joined)",
            twice.height,
            tuple(
                f"{r['user_id']} in {', '.join(f'{g} ({a})' for g, a in zip(r['group'], r['account_id']))}"
                for r in shown.iter_rows(named=True)
            ),
        )
    ]


def _time_problems(system: str, seen: pl.DataFrame, events: pl.LazyFrame) -> list[Problem]:
    bad = int(seen.get_column("no_time").sum())
    if not bad:
        return []
    shown = events.filter(pl.col("event_time").is_null()).select("id", "event").head(EXAMPLES).collect()
    return [
        Problem(
            f"{system}.unparseable",
            "usage_events",
            "timestamp",
            f"{bad:,} event time{'s' if bad > 1 else ''} could not be read as a date-time",
            bad,
            tuple(f"id={r['id']}, event={r['event']}" for r in shown.iter_rows(named=True)),
        )
    ]


def _users(
    known: pl.DataFrame, profiles: pl.DataFrame, account: pl.DataFrame, settings: ProductSettings
) -> pl.DataFrame:
    """One row per known user: the account, when it signed up (the source's own creation time, else the first time
    it was seen: first identify or first event), when it first sent the activation event, who referred it."""
    from_events = known.group_by("user_id").agg(pl.col("first").min().alias("first_event"), pl.col("activated").min())
    from_profiles = (
        profiles.sort("seen_at", nulls_last=True)
        .group_by("user_id", maintain_order=True)
        .agg(
            pl.col("created_at").min(),
            pl.col("seen_at").min().alias("first_identify"),
            pl.col("referred_by").drop_nulls().first(),
        )
    )
    users = (
        from_events.join(from_profiles, on="user_id", how="full", coalesce=True)
        .join(account, on="user_id", how="left")
        .with_columns(pl.coalesce("created_at", pl.min_horizontal("first_identify", "first_event")).alias("created_at"))
    )
    clipped = (
        pl.when(pl.col("activated") < pl.col("created_at")).then(pl.col("created_at")).otherwise(pl.col("activated"))
    )
    return users.select("user_id", "account_id", "created_at", clipped.alias("activated_at"), "referred_by").sort(
        "user_id"
    )


def _usage(events: pl.LazyFrame, ids: pl.DataFrame, accounts: pl.DataFrame, settings: ProductSettings) -> pl.LazyFrame:
    """The usage events, lazily: ids merged into users, each with the user's account; events that are not usage
    (the skipped ones, the activation event unless `activation_is_usage`) left out."""
    skip = list(settings.skip_events)
    if settings.activation_event and not settings.activation_is_usage:
        skip.append(settings.activation_event)
    keep = ~pl.col("event").is_in(skip) if skip else pl.lit(True)
    owners = ids.join(accounts, on="user_id")  # id -> user and account: one join per event
    return (
        events.filter(keep)
        .join(owners.lazy(), on="id", how="inner", maintain_order="left")
        .select(
            "event_time",
            "user_id",
            "account_id",
            pl.coalesce("feature", "event").alias("feature"),
            pl.col("duration_seconds").round().cast(pl.Int64),
            "event",  # the event's own name, for product funnels (usage_events.event)
        )
    )


def imported(system: str, args, scanner: Scanner, merged, settings, settings_file: str):
    """What a product-analytics importer returns: the `build` of its collected exports, with the files read and
    the settings applied."""
    from . import Imported

    tables, aside, details = build(system, merged, settings, args.out_path, Path(args.accounts))
    return Imported(
        source=", ".join(args.exports),
        files=tuple(scanner.files),
        tables=tables,
        set_aside=tuple(aside),
        details={"product_settings": {"file": settings_file, **settings.model_dump(mode="json")}, **details},
    )
