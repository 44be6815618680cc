"""Help-desk exports (Zendesk, Intercom) as loaders land them: reading the streams and building `support_tickets`.

A help-desk export folder holds one file per API stream (`tickets`, `ticket_metrics`, `conversations`...), named
after the stream (a `zendesk_` / `intercom_` prefix is accepted), as:

- JSON lines (`.jsonl`, `.ndjson`): one API object per line, nested fields kept (Airbyte, dlt, Meltano, the API's
  incremental exports written line by line);
- a `.json` file: an array of objects, or one API page (`{"tickets": [...], "next_page": ...}`);
- a `.csv` whose nested fields are JSON text (`{"calendar": 12, "business": 3}`) or flattened columns
  (`reply_time_in_minutes__calendar` as dlt writes them, `reply_time_in_minutes.calendar`,
  `reply_time_in_minutes_calendar`).

`Stream.values(path)` reads one (dotted) field of every record whichever way it was stored. Nothing is modified;
every problem (a missing file or field, a broken JSON line, a value that does not parse, a priority the mapping
does not know) is collected and raised at once as an `ExportError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ParameterError, Problem, SourceError
from ..params import read_yaml
from ..sources import Unreadable
from .reading import ROW, ExportError, FileRead, read_text_table, shown_name, typed_columns, unpacked

EXTENSIONS = (".jsonl", ".ndjson", ".json", ".csv")
EXAMPLES = 5
MISSING = object()

TICKET_SCHEMA = {
    "ticket_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "priority": pl.String,
    "first_response_at": pl.Datetime("us", "UTC"),
    "resolved_at": pl.Datetime("us", "UTC"),
    "contacts": pl.Int64,
    "csat": pl.Int64,
}
"""The contract's support_tickets columns (besides account_id) in their types."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=Strict)


def desk_settings(model: type[S], path: Path, default: Path) -> S:
    """The settings in `path` (the system's parameters/sources/<system>.yaml); the defaults when the default file
    is absent; errors name the key."""
    if not Path(path).exists():
        if Path(path) != default:
            raise ParameterError(f"--settings {path}: no such file.")
        return model()
    try:
        return model.model_validate(read_yaml(Path(path)) or {})
    except ValidationError as err:
        lines = [f"  `{'.'.join(str(p) for p in e['loc'])}`: {e['msg']} (got {e.get('input')!r})" for e in err.errors()]
        raise ParameterError(f"{Path(path).name}: {len(lines)} problem(s):\n" + "\n".join(lines)) from None


# --------------------------------------------------------------------------- reading one stream


@dataclass
class Stream:
    """The records of one stream file, each a dict with its line in the file (`ROW`: header or first line is 1)."""

    name: str
    file: str
    records: list[dict]
    keys: set[str] = field(default_factory=set)

    def has(self, path: str) -> bool:
        """Whether any record holds the field `path` (`a.b`: nested, JSON text, or a flattened column)."""
        head = path.split(".")[0]
        return any(k in self.keys for k in (head, path, path.replace(".", "__"), path.replace(".", "_")))

    def values(self, path: str) -> list:
        """Field `path` of every record (None where absent)."""
        return [lookup(r, path) for r in self.records]

    def rows(self) -> list[int]:
        return [r[ROW] for r in self.records]


def lookup(record: dict, path: str):
    """Field `path` (`reply_time_in_minutes.calendar`) of one record, nested or flattened; None when absent."""
    for flat in (path, path.replace(".", "__"), path.replace(".", "_")):
        if flat in record and record[flat] not in (None, ""):
            return record[flat]
    value: object = record
    for part in path.split("."):
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return None if value == "" else value


def items(value) -> list:
    """A list field however it was stored: a list, JSON text of a list, or an API list object (`{"data": [...]}`,
    `{"contacts": [...]}`, `{"companies": [...]}`); [] when absent."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if isinstance(value, dict):
        value = next((v for k, v in value.items() if isinstance(v, list) and k != "type"), [])
    return value if isinstance(value, list) else []


def stream_file(folder: Path, names: tuple[str, ...], prefix: str) -> list[Path]:
    """The files in `folder` that hold the stream called one of `names` (with or without `<prefix>_`)."""
    wanted = {n for name in names for n in (name, f"{prefix}_{name}")}
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in EXTENSIONS and p.name[: -len(p.suffix)].lower() in wanted
    )


def read_stream(
    folder: Path, stream: str, names: tuple[str, ...], prefix: str, problems: list[Problem], required: bool = True
) -> Stream | None:
    """The records of the stream `stream` (file named one of `names`); problems are added to `problems`."""
    found = stream_file(folder, names, prefix)
    if not found:
        if required:
            problems.append(
                Problem(
                    f"{stream}.missing_file",
                    stream,
                    None,
                    f"no {stream} export in the folder (looked for {', '.join(names[:2])} as .jsonl, .json or .csv)",
                    0,
                )
            )
        return None
    if len(found) > 1:
        problems.append(
            Problem(
                f"{stream}.two_files",
                stream,
                None,
                f"the stream is in {len(found)} files ({', '.join(p.name for p in found)}): keep one",
                0,
            )
        )
        return None
    path = found[0]
    if path.suffix.lower() == ".csv":
        try:
            frame = read_text_table(path, stream)
        except Unreadable as err:
            problems.append(err.problem)
            return None
        records = [{**r, ROW: i + 2} for i, r in enumerate(frame.iter_rows(named=True))]
        return Stream(stream, shown_name(path), records, set(frame.columns))
    records, broken = _json_records(path, stream)
    if broken:
        problems.append(
            Problem(
                f"{stream}.broken_json",
                stream,
                None,
                "is not a JSON object (a broken line, or a file that is not JSON)",
                len(broken),
                tuple(broken[:EXAMPLES]),
            )
        )
        return None
    keys = set().union(*(r.keys() for r in records)) if records else set()
    return Stream(stream, shown_name(path), records, keys)


def _json_records(path: Path, stream: str) -> tuple[list[dict], list[str]]:
    """The objects of a JSON-lines or JSON file (an array or an API page), and the lines that are not objects."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        return [], [f"{shown_name(path)}: not UTF-8 text (byte {err.start})"]
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as err:
            return [], [f"{shown_name(path)}: {err}"]
        if isinstance(data, dict):
            data = data.get(stream, next((v for v in data.values() if isinstance(v, list)), [data]))
        objects = data if isinstance(data, list) else [data]
        bad = [f"record {i + 1}: {str(o)[:60]}" for i, o in enumerate(objects) if not isinstance(o, dict)]
        return [{**o, ROW: i + 1} for i, o in enumerate(objects) if isinstance(o, dict)], bad
    records, bad = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            records.append({**obj, ROW: number})
        else:
            bad.append(f"line {number}: {line.strip()[:60]}")
    return records, bad


def missing_fields(stream: Stream, fields: Mapping[str, tuple[str, ...]], problems: list[Problem]) -> bool:
    """Each required field (any of its accepted paths) must be in the stream; adds a problem per missing one."""
    ok = True
    for name, paths in fields.items():
        if stream.records and not any(stream.has(p) for p in paths):
            present = sorted(k for k in stream.keys if k != ROW)
            problems.append(
                Problem(
                    f"{stream.name}.missing_column",
                    stream.name,
                    name,
                    f"required field `{name}` is missing (fields found: "
                    f"{', '.join(present[:12]) or 'none'}{' ...' if len(present) > 12 else ''})",
                    len(stream.records),
                )
            )
            ok = False
    return ok


def text(value) -> str | None:
    """A value as text for typing (None stays None; 12.0 -> '12'; nested values as JSON)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def unix_text(value) -> str | None:
    """A Unix time (seconds, as Intercom gives every time) as ISO text; ISO text stays as it is."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return str(value)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def typed_stream(
    stream: Stream, columns: dict[str, list], schema: dict[str, pl.DataType], key: str, problems: list[Problem]
) -> pl.DataFrame:
    """`columns` (values read from `stream`, one list per column) typed to `schema`; a value that does not parse
    is a problem (with its line), never a silent null."""
    raw = pl.DataFrame(
        {ROW: stream.rows(), **{c: [text(v) for v in vals] for c, vals in columns.items()}},
        schema={ROW: pl.Int64, **{c: pl.String for c in columns}},
    )
    typed, found = typed_columns(stream.name, raw, schema, key)
    problems.extend(found)
    return typed


def unknown_values(frame: pl.DataFrame, table: str, column: str, known: list[str], setting: str) -> Problem | None:
    """A problem naming the values of `column` that the mapping `setting` does not list (never guessed)."""
    bad = frame.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(known))
    if bad.is_empty():
        return None
    values = bad.get_column(column).unique(maintain_order=True).to_list()
    them = "them" if len(values) > 1 else "it"
    return Problem(
        f"{table}.unknown_value",
        table,
        column,
        f"value{'s' if len(values) > 1 else ''} {', '.join(repr(v) for v in values[:EXAMPLES])} not in the "
        f"`{setting}` mapping (knows {', '.join(known)}): add {them} to the settings",
        bad.height,
        row_examples(bad, f"{{{ROW}}}: {column}={{{column}}}"),
    )


def row_examples(frame: pl.DataFrame, pattern: str) -> tuple[str, ...]:
    """Up to five 'row N ...' strings for the failing rows of `frame` (`pattern` formats a row's named values)."""
    return tuple("row " + pattern.format(**r) for r in frame.head(EXAMPLES).iter_rows(named=True))


def require_folder(source: str) -> Path:
    """The export folder (or a zip archive of the exports, unpacked); a clear error when it is neither."""
    folder = unpacked(Path(source), lambda p: p.suffix.lower() in EXTENSIONS)
    if not folder.is_dir():
        raise SourceError(
            f"{source} is not a folder: give the folder holding the help-desk exports (or a zip of them)."
        )
    return folder


def raise_problems(problems: list[Problem], source: str, system: str) -> None:
    """Every problem found so far, at once (nothing is written)."""
    if problems:
        raise ExportError(problems, source, head=f"The {system} exports in {source} cannot be imported")


def files_read(*streams: Stream | None) -> tuple[FileRead, ...]:
    """The files read, for the import report (the stream each holds, its records)."""
    return tuple(FileRead(s.file, s.name, len(s.records)) for s in streams if s is not None)


def support_tickets(frame: pl.DataFrame) -> pl.DataFrame:
    """The contract's support_tickets columns in order, sorted by ticket (the same input gives the same bytes)."""
    return (
        frame.select("ticket_id", "account_id", *[c for c in TICKET_SCHEMA if c != "ticket_id"])
        .with_columns(pl.col(c).cast(d) for c, d in TICKET_SCHEMA.items())
        .sort("created_at", "ticket_id")
    )
