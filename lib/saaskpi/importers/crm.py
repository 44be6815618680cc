"""What the CRM importers (HubSpot, Salesforce) share: finding each export in a folder by its name, reading its
columns by the names the CRM and its loaders use, the settings (stage, channel and team mappings in
parameters/sources/<system>.yaml), mapping values through them (a value the mapping does not know is reported,
never guessed), and the `team` table made from the CRM's users.

Column names are compared in a normal form: lower case, letters and digits only. `Deal Stage` (the HubSpot export),
`dealstage` (its API) and `deal_stage` (a loader) are one name; so are `StageName` and `stage_name`. Loaders that
land an object's properties under a prefix (`properties_dealname`, `property_dealname`) are read too.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import paths
from ..contract.load import ROW, examples
from ..errors import ParameterError, Problem, SourceError
from ..params import read_yaml
from ..sources import Unreadable
from .billing import UTC, SetAside
from .reading import FileRead, looks_like, read_text_table, shown_name, typed_columns

STAGES = ("prospecting", "discovery", "proposal", "negotiation", "won", "lost")
PREFIXES = ("properties", "property")  # loaders' prefixes of an object's properties


def norm(name: str) -> str:
    """A column name in its normal form: lower case, letters and digits only (`Deal Stage` -> `dealstage`)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# --------------------------------------------------------------------------- settings
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Member(_Strict):
    """What the CRM does not know about one of its users (matched by user id, e-mail or name)."""

    member_id: str | None = None  # the workbook's id (the one accounts.csm_id uses); default: the CRM's user id
    role: str | None = None
    segment: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    ramp_months: int | None = Field(default=None, ge=0)
    monthly_cost: float | None = Field(default=None, ge=0)


class TeamSettings(_Strict):
    """How the CRM's users become `team` rows: the defaults, and each member's own values."""

    default_role: str = "ae"
    ramp_months: int | None = Field(default=None, ge=0)  # empty: the contract's default (0)
    monthly_cost: float | None = Field(default=None, ge=0)  # empty: unknown (the contract allows it)
    members: dict[str, Member] = {}


class CrmSettings(_Strict):
    """The mappings of one CRM (parameters/sources/hubspot.yaml, salesforce.yaml); see those files for each key."""

    stages: dict[str, str] = {}
    pipelines: dict[str, dict[str, str]] = {}
    skip_pipelines: tuple[str, ...] = ()
    channels: dict[str, str] = {}
    unknown_channel: str = "report"  # "report" (an error), or the channel to give values the mapping lacks
    empty_channel: str = "unknown"
    segment_field: str | None = None
    pql_field: str | None = None
    customer_field: str | None = None  # HubSpot: the date of becoming a customer
    customer_from: Literal["contact", "company"] = "contact"  # HubSpot: whose customer_field date converts a contact
    # HubSpot: a contact is a lead from the earliest of these dates (empty: every contact, from its Create Date)
    lead_fields: tuple[str, ...] = ()
    closed_at: str = "history"  # Salesforce: "history" (OpportunityHistory when given) or "close_date"
    touchpoint_kinds: dict[str, str] = {}  # activity type -> call, meeting, email, qbr, or skip
    touchpoint_role_field: str | None = None  # an activity field holding the stakeholder role
    touchpoint_sentiment_field: str | None = None  # an activity field holding the sentiment
    team: TeamSettings = TeamSettings()

    def model_post_init(self, _context) -> None:
        bad = [f"stages.{k}: {v}" for k, v in self.stages.items() if v not in STAGES]
        bad += [f"pipelines.{p}.{k}: {v}" for p, m in self.pipelines.items() for k, v in m.items() if v not in STAGES]
        if bad:
            raise ValueError(f"a stage must map to one of {', '.join(STAGES)}; got {'; '.join(bad)}")

    def applied(self) -> dict:
        return self.model_dump(mode="json")


def crm_settings(path: Path) -> CrmSettings:
    """The settings in `path`; every problem named by its key."""
    if not path.is_file():
        raise ParameterError(f"--settings {path}: no such file.")
    try:
        return CrmSettings.model_validate(read_yaml(path) or {})
    except ValidationError as err:
        lines = [
            f"  `{'.'.join(str(p) for p in e['loc']) or '(file)'}`: {e['msg']} (got {e.get('input')!r})"
            for e in err.errors()
        ]
        raise ParameterError(f"{path.name}: {len(lines)} problem(s):\n" + "\n".join(lines)) from None


def add_crm_arguments(system: str):
    """The arguments of `saaskpi import <system>`: the folder of exports and the settings file."""

    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("source", help="folder of exports, or a zip of them (never modified)")
        parser.add_argument(
            "--settings",
            dest="crm_settings",
            default=str(paths.PARAMETERS_DIR / "sources" / f"{system}.yaml"),
            help=f"stage, channel and team mappings (parameters/sources/{system}.yaml)",
        )

    return add


# --------------------------------------------------------------------------- exports
@dataclass(frozen=True)
class Export:
    """One export of a CRM: its names (found in the file name), its fields (each with the column names it has in
    the export and the loaders, in normal form), the fields it needs, and headers only it has."""

    kind: str
    names: tuple[str, ...]
    fields: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    signature: tuple[str, ...] = ()
    optional: bool = False
    settings_fields: tuple[tuple[str, str], ...] = ()  # (field, the setting naming its column): required when set
    coalesced: tuple[str, ...] = ()  # fields read from the first non-empty of all their columns present, row by row

    def with_settings_fields(self, fields: dict[str, tuple[str, tuple[str, ...]]]) -> Export:
        """This export with the columns the settings name (field -> (setting key, column names)), required."""
        return replace(
            self,
            fields={**self.fields, **{f: names for f, (_, names) in fields.items()}},
            required=(*self.required, *fields),
            settings_fields=tuple((f, k) for f, (k, _) in fields.items()),
        )


def find_files(
    folder: Path, exports: dict[str, Export], shown: Path | None = None
) -> tuple[dict[str, Path], list[Problem]]:
    """Each export's file in `folder`: the CSV or Parquet file whose name holds one of the export's names (the
    longest name found decides: `OpportunityHistory.csv` is not `Opportunity`). Messages name `shown` (the zip
    the folder was unpacked from), else the folder."""
    if not folder.is_dir():
        raise SourceError(f"{folder} is not a folder: give the folder holding the exports (or a zip of them).")
    found: dict[str, list[Path]] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".parquet") and not p.name.startswith(".")):
        stem = norm(path.stem)
        hits = [(len(n), e.kind) for e in exports.values() for n in e.names if n in stem]
        if hits:
            found.setdefault(max(hits)[1], []).append(path)
    problems, files = [], {}
    for kind, export in exports.items():
        paths_ = found.get(kind, [])
        if len(paths_) > 1:
            problems.append(
                Problem(
                    "source.two_files",
                    kind,
                    None,
                    f"{len(paths_)} files look like the {kind} export ({', '.join(p.name for p in paths_)}); keep one",
                    0,
                )
            )
        elif paths_:
            files[kind] = paths_[0]
        elif not export.optional:
            problems.append(
                Problem(
                    "source.missing_file",
                    kind,
                    None,
                    f"no {kind} export in {shown or folder} (a .csv or "
                    f".parquet file whose name holds {' or '.join(repr(n) for n in export.names)}; files "
                    f"there: {', '.join(sorted(p.name for p in folder.iterdir() if not p.name.startswith('.'))) or 'none'})",
                    0,
                )
            )
    return files, problems


def _text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text (a Parquet list of ids as `1;2`)."""
    out = []
    for name, dtype in frame.schema.items():
        c = pl.col(name)
        if isinstance(dtype, pl.List):
            out.append(c.list.eval(pl.element().cast(pl.String)).list.join(";").alias(name))
        elif isinstance(dtype, pl.Datetime):
            base = c if dtype.time_zone else c.dt.replace_time_zone("UTC")
            out.append(base.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").alias(name))
        elif dtype != pl.String:
            out.append(c.cast(pl.String).alias(name))
    return frame.with_columns(out) if out else frame


def read_export(
    path: Path, export: Export, exports: dict[str, Export], files: list[FileRead], problems: list[Problem]
) -> pl.DataFrame | None:
    """The export at `path` with one text column per field it has (named by the field), and ROW (the file's line,
    the header is line 1); None (with the problems) when it cannot be read or lacks a required field."""
    try:
        raw = read_text_table(path, export.kind)
    except Unreadable as err:
        problems.append(err.problem)
        return None
    files.append(FileRead(shown_name(path), export.kind, raw.height))
    raw = _text(raw)
    by_norm: dict[str, str] = {}
    for column in raw.columns:  # a column's own name first, then the name under a loader's prefix
        by_norm.setdefault(norm(column), column)
    for column in raw.columns:
        for prefix in PREFIXES:
            if norm(column).startswith(prefix):
                by_norm.setdefault(norm(column)[len(prefix) :], column)
    chosen: dict[str, list[str]] = {}
    for field, names in export.fields.items():
        hits = [by_norm[n] for n in names if n in by_norm]
        if hits:
            chosen[field] = hits if field in export.coalesced else hits[:1]
    missing = [f for f in export.required if f not in chosen]
    if missing:
        shapes = {
            k: tuple(n for names in e.fields.values() for n in names[:1]) + e.signature for k, e in exports.items()
        }
        other = looks_like([norm(c) for c in raw.columns], shapes, export.kind)
        if other is not None:
            problems.append(
                Problem(
                    f"{export.kind}.wrong_file",
                    export.kind,
                    None,
                    f"{shown_name(path)} looks like the {other} export (columns: {', '.join(raw.columns[:12])}"
                    f"{'...' if raw.width > 12 else ''}); the {export.kind} export needs columns for "
                    f"{', '.join(f'{f} ({export.fields[f][0]})' for f in export.required)}",
                    0,
                )
            )
            return None
        named = dict(export.settings_fields)
        for f in missing:
            by = f", named by `{named[f]}` in the settings" if f in named else ""
            problems.append(
                Problem(
                    f"{export.kind}.missing_column",
                    export.kind,
                    f,
                    f"no column for {f} (any of: {', '.join(export.fields[f])}, in any case, spaces and "
                    f"underscores ignored{by}); columns found: {', '.join(raw.columns[:20]) or 'none'}",
                    raw.height,
                )
            )
        return None
    value = lambda c: pl.when(pl.col(c).str.strip_chars() != "").then(pl.col(c))  # noqa: E731
    frame = raw.select(
        [(pl.coalesce([value(c) for c in cs]) if len(cs) > 1 else pl.col(cs[0])).alias(f) for f, cs in chosen.items()]
    )
    return frame.with_row_index(ROW, offset=2).with_columns(pl.col(ROW).cast(pl.Int64))


def typed(
    table: str, frame: pl.DataFrame, schema: dict[str, pl.DataType], key: str, problems: list[Problem]
) -> pl.DataFrame:
    """`frame`'s fields typed to `schema` (absent fields null); a value that does not parse is a problem. Date-times
    may also be written as the CRMs' exports write them: `2024-01-31 09:30` (minutes, no zone: read as UTC) and
    epoch milliseconds (`1706693400000`, HubSpot's API)."""
    fix = []
    for name in (n for n, d in schema.items() if isinstance(d, pl.Datetime) and n in frame.columns):
        text = pl.col(name).str.strip_chars()
        epoch = pl.from_epoch(text.cast(pl.Int64, strict=False), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        fix.append(
            pl.when(text.str.contains(r"^\d{12,13}$"))
            .then(epoch)
            .otherwise(text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})$", "${1}T${2}:00Z"))
            .alias(name)
        )
    out, found = typed_columns(table, frame.with_columns(fix) if fix else frame, schema, key)
    problems += found
    return out


def first_id(column: str) -> pl.Expr:
    """The first id of a list of associated ids (`123;456`, `[123, 456]`, `123`); null when empty."""
    return pl.col(column).str.extract(r"([^\s\[\]\"';,]+)", 1)


def all_ids(column: str) -> pl.Expr:
    """Every id of a list of associated ids, as a list; null when there is none (so that exploding keeps the row)."""
    ids = pl.col(column).str.extract_all(r"[^\s\[\]\"';,]+")
    return pl.when(ids.list.len() > 0).then(ids)


def required_values(
    table: str, frame: pl.DataFrame, columns: tuple[str, ...], key: str, problems: list[Problem], unique: bool = True
) -> None:
    """A value is needed in each of `columns` (an id, a creation time...) of the text `frame`; ids are unique."""
    for column in columns:
        rows = frame.filter(pl.col(column).str.strip_chars().fill_null("") == "")
        if rows.height:
            problems.append(
                Problem(
                    f"{table}.missing_value",
                    table,
                    column,
                    "a value is required",
                    rows.height,
                    examples(rows, key, column, rows=rows),
                )
            )
    dup = frame.filter(pl.col(key).is_not_null() & pl.col(key).is_duplicated())
    if unique and dup.height:
        problems.append(
            Problem(
                f"{table}.duplicate",
                table,
                key,
                "identifiers must be unique",
                dup.height,
                examples(dup, key, key, rows=dup),
            )
        )


def mapped(
    frame: pl.DataFrame,
    column: str,
    mapping: dict[str, str],
    *,
    table: str,
    setting: str,
    settings_file: str,
    key: str,
    problems: list[Problem],
    fallback: str | None = None,
    empty: str | None = None,
    code: str | None = None,
) -> pl.Expr:
    """`column` mapped through `mapping` (keys compared in lower case, spaces trimmed). A value the mapping lacks is
    a problem naming the setting (`fallback` given: that value instead); an empty one is `empty`."""
    low = {k.strip().lower(): v for k, v in mapping.items()}
    value = pl.col(column).str.strip_chars().str.to_lowercase()
    if fallback is None:
        unknown = frame.filter(value.is_not_null() & (value != "") & ~value.is_in(list(low)))
        if unknown.height:
            counts = unknown.group_by(column).agg(pl.len()).sort(["len", column], descending=[True, False])
            problems.append(
                Problem(
                    f"{table}.unknown_{code or setting.rstrip('s')}",
                    table,
                    column,
                    f"{counts.height} value{'s' if counts.height != 1 else ''} the mapping `{setting}` "
                    f"of {settings_file} does not know; add {'them' if counts.height != 1 else 'it'} there "
                    "(nothing is guessed)",
                    unknown.height,
                    tuple(f"{v!r} ({n:,} row{'s' if n != 1 else ''})" for v, n in counts.head(5).iter_rows()),
                )
            )
    out = value.replace_strict(low, default=fallback, return_dtype=pl.String)
    return pl.when(value.is_null() | (value == "")).then(pl.lit(empty, pl.String)).otherwise(out)


def stage_of(
    frame: pl.DataFrame,
    settings: CrmSettings,
    *,
    table: str,
    settings_file: str,
    key: str,
    problems: list[Problem],
    stage: str = "stage",
    pipeline: str = "pipeline",
) -> pl.Expr:
    """The workbook stage of each row: by the mapping of its pipeline (`pipelines`) when there is one, else by
    `stages`; an unknown stage is a problem naming the pipeline's mapping."""
    if pipeline not in frame.columns or not settings.pipelines:
        return mapped(
            frame,
            stage,
            settings.stages,
            table=table,
            setting="stages",
            settings_file=settings_file,
            key=key,
            problems=problems,
        )
    pipe = pl.col(pipeline).str.strip_chars().str.to_lowercase()
    own = {p.strip().lower(): (p, m) for p, m in settings.pipelines.items()}
    rest = frame.filter(~pipe.is_in(list(own)) | pipe.is_null())
    expr = mapped(
        rest,
        stage,
        settings.stages,
        table=table,
        setting="stages",
        settings_file=settings_file,
        key=key,
        problems=problems,
    )
    for name, (given, mapping) in own.items():
        rows = frame.filter(pipe == name)
        expr = (
            pl.when(pipe == name)
            .then(
                mapped(
                    rows,
                    stage,
                    mapping,
                    table=table,
                    setting=f"pipelines.{given}",
                    settings_file=settings_file,
                    key=key,
                    problems=problems,
                    code="stage",
                )
            )
            .otherwise(expr)
        )
    return expr


def not_customer(aside: tuple[SetAside, ...], meaning: str) -> tuple[SetAside, ...]:
    """The matcher's set-aside rows with what happened to them here."""
    return tuple(replace(a, meaning=f"{a.meaning.split(';')[0]}; {meaning}") for a in aside)


def two_accounts(system: str, table: str, matched: pl.DataFrame, record: str, label: str) -> None:
    """A record whose several associated companies are several accounts is an error (which one is not guessed)."""
    from .reading import ExportError

    many = (
        matched.drop_nulls("account_id")
        .group_by(record)
        .agg(pl.col("account_id").unique().sort())
        .filter(pl.col("account_id").list.len() > 1)
        .sort(record)
    )
    if many.height:
        raise ExportError(
            [
                Problem(
                    f"{system}.two_accounts",
                    table,
                    label,
                    "is associated with companies of two accounts; keep one association (or fix the id map)",
                    many.height,
                    tuple(
                        f"{record}={r[record]} -> {', '.join(r['account_id'])}"
                        for r in many.head(5).iter_rows(named=True)
                    ),
                )
            ],
            head=f"The {system} records cannot be matched to accounts",
        )


# --------------------------------------------------------------------------- team
def team_table(
    users: pl.DataFrame, settings: TeamSettings, first_seen: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, list[Problem]]:
    """The contract's `team` from the CRM's users (`user_id`, `name`, `email`, `created_at`, `ended_at`), each
    completed by `settings.members` (found by user id, e-mail or name, any case): role, segment, dates, ramp and
    cost. The start date is the settings', else the user's creation in the CRM, else the first opportunity the
    user owns (`first_seen`: user_id, first_at). Returns the table with `user_id` (the CRM's id) kept."""
    members = {k.strip().lower(): m for k, m in settings.members.items()}
    rows, problems, used = [], [], set()
    first = dict(first_seen.iter_rows()) if first_seen is not None else {}
    for u in users.sort("user_id").iter_rows(named=True):
        keys = [str(u[c]).strip().lower() for c in ("user_id", "email", "name") if u.get(c)]
        found = [k for k in keys if k in members]
        m = members[found[0]] if found else Member()
        used.update(found[:1])
        start = (
            m.start_date
            or (u["created_at"].date() if u.get("created_at") else None)
            or (first[u["user_id"]].date() if u["user_id"] in first else None)
        )
        ended = u.get("ended_at")
        rows.append(
            {
                "member_id": m.member_id or u["user_id"],
                "name": u.get("name") or "",
                "role": m.role or settings.default_role,
                "segment": m.segment,
                "start_date": start,
                "end_date": m.end_date or (ended.date() if ended is not None else None),
                "ramp_months": m.ramp_months if m.ramp_months is not None else (settings.ramp_months or 0),
                "monthly_cost": m.monthly_cost if m.monthly_cost is not None else settings.monthly_cost,
                "user_id": u["user_id"],
            }
        )
    unused = sorted(set(members) - used)
    if unused:
        problems.append(
            Problem(
                "team.unknown_member",
                "team",
                "members",
                "the settings name users the CRM does not have (by id, e-mail or name)",
                len(unused),
                tuple(unused[:5]),
            )
        )
    schema = {
        "member_id": pl.String,
        "name": pl.String,
        "role": pl.String,
        "segment": pl.String,
        "start_date": pl.Date,
        "end_date": pl.Date,
        "ramp_months": pl.Int64,
        "monthly_cost": pl.Float64,
        "user_id": pl.String,
    }
    team = pl.DataFrame(rows, schema=schema)
    nostart = team.filter(pl.col("start_date").is_null())
    if nostart.height:
        problems.append(
            Problem(
                "team.missing_value",
                "team",
                "start_date",
                "no start date: the CRM has no creation "
                "date and the user owns no opportunity; give team.members.<user>.start_date",
                nostart.height,
                tuple(nostart.get_column("user_id").head(5)),
            )
        )
    return team, problems


def owner_ids(values: pl.DataFrame, column: str, users: pl.DataFrame) -> pl.DataFrame:
    """(value, user_id): each owner value (a user id, an e-mail or a name, as exports write the owner) and its user."""
    keys = (
        pl.concat(
            [
                users.select(pl.col(c).cast(pl.String).str.strip_chars().str.to_lowercase().alias("_k"), "user_id")
                for c in ("user_id", "email", "name")
                if c in users.columns
            ]
        )
        .drop_nulls()
        .unique("_k", keep="first")
    )
    return (
        values.select(pl.col(column))
        .unique()
        .drop_nulls()
        .with_columns(pl.col(column).str.strip_chars().str.to_lowercase().alias("_k"))
        .join(keys, on="_k", how="left")
        .drop("_k")
    )


# --------------------------------------------------------------------------- customer-success touchpoints
KINDS = ("call", "meeting", "email", "qbr", "skip")


def touchpoint_kind(
    frame: pl.DataFrame, settings: CrmSettings, *, table: str, settings_file: str, problems: list[Problem]
) -> pl.Expr:
    """An activity's kind through `touchpoint_kinds` (a type the mapping lacks is reported; an empty one stays empty)."""
    bad = sorted({v for v in settings.touchpoint_kinds.values() if v not in KINDS})
    if bad:
        problems.append(
            Problem(
                "settings.touchpoint_kinds",
                table,
                "kind",
                f"touchpoint_kinds in {settings_file} maps to {', '.join(bad)}; use {', '.join(KINDS)}",
                0,
            )
        )
    return mapped(
        frame,
        "kind",
        settings.touchpoint_kinds,
        table=table,
        setting="touchpoint_kinds",
        settings_file=settings_file,
        key="id",
        problems=problems,
    )


def touchpoint_table(
    activities: pl.DataFrame, member: dict[str, str], keys, system: str
) -> tuple[pl.DataFrame, tuple[SetAside, ...], dict]:
    """`cs_touchpoints` from activities (id, occurred_at, kind, user_id, company, address, role, sentiment): those of
    kind `skip` and those without a company are left out (counted); the rest are matched to accounts (unmatched: set
    aside); the owner becomes `csm_id` through the team."""
    kept = activities.filter(pl.col("kind").fill_null("") != "skip")
    skipped = activities.height - kept.height
    with_company = kept.filter(pl.col("company").is_not_null() | pl.col("address").is_not_null())
    no_company = kept.height - with_company.height
    schema = {
        "touchpoint_id": pl.String,
        "account_id": pl.String,
        "occurred_at": UTC,
        "csm_id": pl.String,
        "kind": pl.String,
        "stakeholder_role": pl.String,
        "sentiment": pl.String,
    }
    if with_company.is_empty():
        return (
            pl.DataFrame(schema=schema),
            (),
            {"activities_skipped_by_kind": skipped, "activities_without_company": no_company},
        )
    m = keys.match(system, "cs_touchpoints", with_company, key="company", email="address")
    word = lambda c: pl.col(c).str.strip_chars().str.to_lowercase().str.replace_all(r"[\s-]+", "_")  # noqa: E731
    out = m.frame.filter(pl.col("account_id").is_not_null()).select(
        pl.col("id").alias("touchpoint_id"),
        "account_id",
        pl.col("occurred_at"),
        pl.col("user_id").replace_strict(member, default=None, return_dtype=pl.String).alias("csm_id"),
        "kind",
        word("role").alias("stakeholder_role"),
        word("sentiment").alias("sentiment"),
    )
    return (
        out.cast(schema).sort("touchpoint_id"),
        m.set_aside,
        {"activities_skipped_by_kind": skipped, "activities_without_company": no_company},
    )


def read_crm(args: argparse.Namespace, exports_for, tables_for):
    """A CRM importer's `read`: the exports its settings name (`exports_for(settings)`) found in `args.source` and
    read, every problem at once, then turned into contract tables by `tables_for(raw, settings, settings_file,
    keys)` with the accounts of `--out`."""
    from tqdm.auto import tqdm

    from . import Imported
    from .accounts import account_keys
    from .reading import ExportError, unpacked

    given = paths.resolve(args.source)
    folder = unpacked(given, lambda p: p.suffix in (".csv", ".parquet"))
    settings_path = paths.resolve(args.crm_settings)
    settings = crm_settings(settings_path)
    exports = exports_for(settings)
    found, problems = find_files(folder, exports, shown=given)
    files: list[FileRead] = []
    raw = {}
    progress = not getattr(args, "progress", False)
    for kind, path in tqdm(list(found.items()), desc="reading", unit="file", disable=progress, leave=False):
        frame = read_export(path, exports[kind], exports, files, problems)
        if frame is not None:
            raw[kind] = frame
    if problems:
        raise ExportError(problems, str(given))
    keys = account_keys(args.out_path, paths.resolve(args.accounts))
    tables, aside, details = tables_for(raw, settings, settings_path.name, keys)
    return Imported(
        source=str(args.source),
        files=tuple(files),
        tables=tables,
        set_aside=aside,
        details={"settings_file": str(settings_path), "crm_settings": settings.applied(), **details},
    )
