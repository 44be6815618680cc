"""Importers: read a billing system's exports and write a contract-shaped source folder (`saaskpi import <system>`).

`saaskpi import <system> ... --out data/mine` reads the exports (never modifying them), turns them into the
contract's tables, validates those like any source, and only then writes them, atomically, as typed Parquet
into `--out` together with `import-report.md` and `import-report.json` (files and rows read, rows written per
table, rows set aside with their reason, count and examples, the settings applied). The same input gives
byte-identical tables. Bad input raises `ExportError` (a `DataContractError`) listing every problem (exit 2); nothing is
written and a previous import in `--out` stays as it was.

How an importer plugs in
------------------------
Add a module `saaskpi/importers/<name>.py` that defines, at module level::

    IMPORTER = Importer(
        name="stripe",                        # the command: saaskpi import stripe
        help="Stripe Dashboard CSV exports or API tables",   # one line for `saaskpi import --help`
        read=read_stripe,                     # read(args: argparse.Namespace) -> Imported
        arguments=add_stripe_arguments,       # optional: add_arguments(parser); default: one positional `source`
    )

`registry()` imports every module of this package and lists each `IMPORTER` it finds (modules without one, such
as `billing` or `reading`, are skipped); the CLI adds one sub-command per importer, with the shared options
`--out`, `--settings` (parameters/billing.yaml) and `--fx-rates`. `read` receives the parsed arguments (plus
`args.progress`: show a tqdm bar when true) and returns an `Imported`: either `billing` (a `BillingData`, which the
framework converts with `to_contract` and the settings) or contract `tables` used as they are (column mappings),
and the files it read. The usage events may be a `pl.LazyFrame` (the only table that may): the framework sinks it
streaming, never holding it whole, then stores it in the workbook's order (event_file.py). It raises `ExportError` (reading.py) with every problem of the input, and never writes.

An importer of a system other than billing (a CRM, a help desk, product analytics) sets `accounts=True`: it gets
`--accounts` (parameters/sources/accounts.yaml) instead of the billing options, matches its records to the accounts
already imported into `--out` (`accounts.account_keys`, the billing import comes first), and writes its report as
`import-report-<name>.md/.json`.

Several imports share one `--out`: an import replaces the tables it writes (and those the previous run of the same
importer wrote), and keeps every other table and report of the folder, so `--out` holds billing, CRM, help-desk and
product tables together, validated together after each import.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl
from tqdm.auto import tqdm

from .. import paths
from ..errors import DataContractError, ParameterError
from ..event_file import write_usage_events
from .billing import BillingData, ImportResult, SetAside, to_contract
from .reading import ExportError, FileRead
from .settings import BILLING_FILE, billing_settings

REPORT = "import-report"
REPORT_MD = f"{REPORT}.md"
REPORT_JSON = f"{REPORT}.json"
DEFAULT_OUT = "data/imported"


def source_argument(parser: argparse.ArgumentParser) -> None:
    """The default arguments of an importer: one positional `source` (a folder of exports)."""
    parser.add_argument("source", help="folder of exports (never modified)")


@dataclass(frozen=True)
class Importer:
    """A `saaskpi import <name>` command: how to add its arguments and how to read its input."""

    name: str
    help: str
    read: Callable[[argparse.Namespace], Imported]
    arguments: Callable[[argparse.ArgumentParser], None] = source_argument
    accounts: bool = False  # records matched to the accounts already in --out (a CRM, help desk, analytics)

    @property
    def report(self) -> str:
        """The stem of this importer's report files in --out."""
        return f"{REPORT}-{self.name}" if self.accounts else REPORT


@dataclass(frozen=True)
class Imported:
    """What an importer read: billing data (converted with the settings) or contract tables, and the files read."""

    source: str
    files: tuple[FileRead, ...]
    billing: BillingData | None = None
    tables: dict[str, pl.DataFrame | pl.LazyFrame] = field(default_factory=dict)  # lazy: the usage events, sunk
    set_aside: tuple[SetAside, ...] = ()
    details: dict = field(default_factory=dict)  # anything else the report should show (e.g. the mapping file)


@lru_cache(maxsize=1)
def registry() -> dict[str, Importer]:
    """Every importer of this package by name (each module's `IMPORTER`), in name order."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        importer = getattr(module, "IMPORTER", None)
        if isinstance(importer, Importer):
            found[importer.name] = importer
    return dict(sorted(found.items()))


def add_commands(parser: argparse.ArgumentParser, func: Callable) -> None:
    """One sub-command per importer on `parser` (the CLI's `import`), each with the shared options."""
    sub = parser.add_subparsers(dest="system", required=True, metavar="SYSTEM")
    for importer in registry().values():
        p = sub.add_parser(importer.name, help=importer.help, description=importer.help)
        importer.arguments(p)
        p.add_argument(
            "--out",
            default=DEFAULT_OUT,
            help="source folder to write (its tables replaced atomically; tables of other imports kept)",
        )
        if importer.accounts:
            from .accounts import add_account_arguments

            add_account_arguments(p)
        else:
            p.add_argument("--settings", default=str(BILLING_FILE), help="billing settings (parameters/billing.yaml)")
            p.add_argument("--fx-rates", default="", help="an fx_rates.csv or .parquet to copy into the output")
        p.set_defaults(func=func, importer=importer.name)


# --------------------------------------------------------------------------- running an import


def _guard_paths(out: Path, inputs: list[Path]) -> None:
    """The output may neither overlap an input nor replace a folder that is not an earlier import's output."""
    for given in inputs:
        src = given.resolve()
        if out == src or out in src.parents or src in out.parents:
            raise ParameterError(
                f"--out {out} overlaps the input {given}: the exports are never written to; choose another folder."
            )
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not any(out.glob(f"{REPORT}*.json")))):
        raise ParameterError(
            f"--out {out} exists and is not the output of an earlier import (no {REPORT_JSON}); "
            "choose a new or empty folder."
        )


def _fx_rates(path: str) -> tuple[str, bytes] | None:
    if not path:
        return None
    src = paths.resolve(path)
    if src.suffix not in (".csv", ".parquet") or not src.is_file():
        raise ParameterError(f"--fx-rates {path}: give an existing fx_rates .csv or .parquet file.")
    return f"fx_rates{src.suffix}", src.read_bytes()


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """`frame` as Parquet bytes, the same bytes for the same frame (no timestamps; zstd)."""
    import io

    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def _stage(
    folder: Path, tables: dict[str, pl.DataFrame | pl.LazyFrame], fx: tuple[str, bytes] | None, out: Path, report: str
) -> list[str]:
    """Write `tables` (and the rates) into `folder`, and link in what `out` holds from other imports: every file
    except this importer's report and the tables its previous run wrote. Returns the names of the tables kept."""
    for name, frame in tables.items():
        if isinstance(frame, pl.LazyFrame):  # the usage events: streamed to a file, never held whole, then stored
            made = folder / f".{name}.made.parquet"  # in the workbook's order a piece at a time (event_file.py)
            frame.sink_parquet(made, compression="zstd", statistics=True, engine="streaming")
            write_usage_events(made, folder / f"{name}.parquet")
            made.unlink()
        else:
            (folder / f"{name}.parquet").write_bytes(parquet_bytes(frame))
    if fx is not None:
        (folder / fx[0]).write_bytes(fx[1])
    if not out.is_dir():
        return []
    previous = out / f"{report}.json"
    replaced = set(json.loads(previous.read_text()).get("rows_written", {})) if previous.exists() else set()
    kept = []
    for path in sorted(out.iterdir()):
        name = path.name.split(".")[0]
        if (
            not path.is_file()
            or path.name.startswith(".")
            or name in tables
            or name in replaced
            or (fx is not None and name == "fx_rates")
            or path.stem == report
        ):
            continue
        os.link(path, folder / path.name)  # the files of an import are never rewritten in place: a link is safe
        if not name.startswith(REPORT):
            kept.append(name)
    return kept


def _validate_staged(folder: Path, source: str) -> None:
    """The staged output is checked like any source; its problems are reported as the import's."""
    from ..params import conventions
    from ..workbook import load_tables

    try:
        load_tables(folder, conventions())
    except DataContractError as err:
        fx = any(p.code.endswith(".no_fx_rate") for p in err.problems)
        raise ExportError(
            err.problems,
            head=f"The tables imported from {source} break the data contract",
            hint="Give the exchange rates with --fx-rates FILE (columns month, currency, rate_to_reporting)."
            if fx
            else "",
        ) from None


replace_folder = paths.replace_folder


def run_import(importer: Importer, args: argparse.Namespace, progress: bool = False) -> dict:
    """Read, convert, validate, then write `args.out` atomically with its report; returns the report (a dict)."""
    out = paths.resolve(args.out)
    inputs = [paths.resolve(args.source)] if getattr(args, "source", None) else []
    inputs += [paths.resolve(e) for e in getattr(args, "exports", None) or []]
    _guard_paths(out, inputs)
    args.out_path = out
    fx = _fx_rates(getattr(args, "fx_rates", ""))
    settings = (
        billing_settings(paths.resolve(args.settings))
        if getattr(args, "settings", "") and not importer.accounts
        else billing_settings()
    )  # an accounts importer's --settings are its own (read by its `read`)
    args.progress = progress
    steps = tqdm(
        total=4, desc=f"import {importer.name}", unit="step", disable=not progress, file=sys.stderr, leave=False
    )
    steps.set_postfix_str("reading")
    imported = importer.read(args)
    steps.update()
    steps.set_postfix_str("converting")
    converted = to_contract(imported.billing, settings) if imported.billing is not None else ImportResult({}, (), {})
    tables = {**converted.tables, **imported.tables}
    steps.update()
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    staged.chmod(0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary folder
    try:
        steps.set_postfix_str("validating")
        kept = _stage(staged, tables, fx, out, importer.report)
        _validate_staged(staged, imported.source)
        steps.update()
        steps.set_postfix_str("writing")
        rows = {
            n: f.height
            if isinstance(f, pl.DataFrame)
            else pl.scan_parquet(staged / f"{n}.parquet").select(pl.len()).collect().item()
            for n, f in tables.items()
        }
        report = import_report(
            importer.name, imported, converted, rows, fx, settings.applied() if imported.billing is not None else None
        )
        if kept:
            report["tables_kept"] = kept
        paths.atomic_write(staged / f"{importer.report}.json", json.dumps(report, indent=1, default=str) + "\n")
        paths.atomic_write(staged / f"{importer.report}.md", report_markdown(report))
        replace_folder(staged, out)
        steps.update()
    finally:
        steps.close()
        if staged.exists():
            shutil.rmtree(staged)
    return report


def import_report(
    name: str,
    imported: Imported,
    converted: ImportResult,
    rows: dict[str, int],
    fx: tuple[str, bytes] | None,
    settings: dict | None,
) -> dict:
    """The import report: what was read, written, set aside (reason, count, examples), and the settings applied."""
    aside = [*imported.set_aside, *converted.set_aside]
    return {
        "importer": name,
        "source": imported.source,
        "files_read": [{"file": f.file, "table": f.table, "rows": f.rows} for f in imported.files],
        "rows_written": {**rows, **({"fx_rates": "copied"} if fx else {})},
        "set_aside": [
            {"reason": a.reason, "table": a.table, "count": a.count, "examples": list(a.examples), "meaning": a.meaning}
            for a in aside
        ],
        "settings": settings,
        **imported.details,
    }


def report_markdown(report: dict) -> str:
    """The import report as Markdown (the same facts as import-report.json)."""
    lines = [
        f"# Import report: {report['importer']}",
        "",
        f"Source: `{report['source']}`",
        "",
        "## Files read",
        "",
        "| file | table | rows |",
        "|---|---|---:|",
    ]
    lines += [f"| `{f['file']}` | {f['table']} | {f['rows']:,} |" for f in report["files_read"]]
    lines += ["", "## Rows written", "", "| table | rows |", "|---|---:|"]
    lines += [f"| {t} | {n:,} |" if isinstance(n, int) else f"| {t} | {n} |" for t, n in report["rows_written"].items()]
    lines += ["", "## Rows set aside", ""]
    if report["set_aside"]:
        lines += ["| reason | table | rows | examples | meaning |", "|---|---|---:|---|---|"]
        lines += [
            f"| `{a['reason']}` | {a['table']} | {a['count']:,} | {', '.join(a['examples'])} | {a['meaning']} |"
            for a in report["set_aside"]
        ]
    else:
        lines.append("None.")
    if report.get("settings") is not None:
        lines += ["", "## Settings applied", "", "```json", json.dumps(report["settings"], indent=1), "```"]
    if report.get("tables_kept"):
        lines += ["", "## Tables kept from other imports", "", ", ".join(f"`{t}`" for t in report["tables_kept"])]
    for key in (
        k
        for k in report
        if k not in ("importer", "source", "files_read", "rows_written", "set_aside", "settings", "tables_kept")
    ):
        lines += [
            "",
            f"## {key.replace('_', ' ').capitalize()}",
            "",
            "```json",
            json.dumps(report[key], indent=1, default=str),
            "```",
        ]
    return "\n".join(lines) + "\n"
