"""`saaskpi import stripe`: a folder of Stripe exports, in either shape users have, read into the billing model.

- **Dashboard CSV exports** (customers, subscriptions, invoices, invoice line items; payments for refunds),
  recognised by their headers (`Date (UTC)`, `Customer ID`...): see `stripe_dashboard`.
- **API objects as loaders land them** (Fivetran, Airbyte, dlt, Stitch): one CSV, Parquet or JSON-lines
  file per object (`customer`, `invoice`, `invoice_line_item`, `subscription`, `price`...): see `stripe_api`.
  The same tables read from elsewhere (a Postgres schema) go through `stripe_billing_from_tables`.

Nothing in the folder is modified. Every problem is reported at once (StripeExportError, a DataContractError: exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from saaskpi import paths
from saaskpi.errors import Problem, SourceError
from saaskpi.importers import Imported, Importer
from saaskpi.importers.reading import FileRead
from saaskpi.importers.stripe_api import object_of, stripe_billing_from_tables
from saaskpi.importers.stripe_billing import SetAside, StripeImport
from saaskpi.importers.stripe_common import TABLE_SUFFIXES, Problems, StripeExportError, files_bar, read_table
from saaskpi.importers.stripe_dashboard import EXPORTS, kind_of_header, kind_of_name, stripe_billing_from_dashboard

__all__ = [
    "IMPORTER",
    "SetAside",
    "StripeExportError",
    "StripeImport",
    "dashboard_files",
    "read_stripe",
    "shape_of",
    "stripe_billing_from_dashboard",
    "stripe_billing_from_tables",
]


def read_stripe(folder: str | Path, shape: str | None = None, progress: bool = False) -> StripeImport:
    """The billing model of the Stripe exports in `folder`; `shape` is `dashboard` or `api` (default: from
    the files: Dashboard exports have `(UTC)` in their headers). `progress` shows a bar over the files read.
    `folder` may also be a `postgresql://` URL naming the schema a loader syncs Stripe's objects into (the API
    shape, one table per object)."""
    if str(folder).startswith(("postgresql://", "postgres://")):
        if shape == "dashboard":
            raise SourceError("A PostgreSQL schema holds Stripe's API objects: --shape dashboard is for CSV exports.")
        return read_stripe_schema(str(folder))
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder} is not a folder: give the folder holding the Stripe exports.")
    if shape not in (None, "dashboard", "api"):
        raise SourceError(f"unknown Stripe export shape {shape!r}: use dashboard or api.")
    found = shape_of(folder)
    try:
        if (shape or found) == "dashboard":
            return stripe_billing_from_dashboard(dashboard_files(folder), source=str(folder), progress=progress)
        return _read_api_folder(folder, progress)
    except StripeExportError as err:
        if shape is None or shape == found:
            raise
        hint = Problem(
            "source.shape",
            folder.name,
            None,
            f"--shape {shape} was given, but the files look like the {found} shape "
            f"({'headers with (UTC)' if found == 'dashboard' else 'no Dashboard headers with (UTC)'}): "
            f"try --shape {found}, or leave --shape out",
            0,
        )
        raise StripeExportError([hint, *err.problems], str(folder)) from None


def table_files(folder: Path) -> list[Path]:
    """The data files of a folder (CSV, Parquet, JSON lines), in name order."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in TABLE_SUFFIXES
    )


def shape_of(folder: Path) -> str:
    """`dashboard` when a CSV header has Dashboard-style `(UTC)` columns, else `api`."""
    for path in table_files(folder):
        if path.suffix.lower() == ".csv" and "(UTC)" in _header_line(path):
            return "dashboard"
    return "api"


def _header_line(path: Path) -> str:
    with path.open("rb") as f:
        return f.readline(100_000).decode("utf-8", errors="replace")


def dashboard_files(folder: Path) -> dict[str, Path]:
    """Each Dashboard export of the folder by kind: by its file name (`invoices.csv`), else by its header.
    A name that says one export is kept even when its header says another (the reader then says so)."""
    problems = Problems()
    found: dict[str, Path] = {}
    for path in table_files(folder):
        if path.suffix.lower() != ".csv":
            continue
        kind = kind_of_name(path) or kind_of_header(_header_fields(path))
        if kind is None:
            continue
        if kind in found:
            problems.add(
                f"{EXPORTS[kind].code}.duplicate_export",
                path.name,
                None,
                f"two files hold the Stripe {EXPORTS[kind].label} export: {found[kind].name} and {path.name}",
            )
            continue
        found[kind] = path
    if problems:
        raise StripeExportError(problems.found, str(folder))
    return found


def _header_fields(path: Path) -> list[str]:
    import csv

    line = _header_line(path).lstrip("\ufeff")
    return next(csv.reader([line]), [])


def _read_api_folder(folder: Path, progress: bool = False) -> StripeImport:
    problems = Problems()
    tables: dict[str, pl.DataFrame] = {}
    names: dict[str, str] = {}
    for path in files_bar(table_files(folder), progress):
        obj = object_of(path.stem.split("__")[0])
        if obj is None:
            continue
        frame = read_table(path, obj, problems)
        if frame is not None:
            tables[path.stem] = frame
            names[path.stem] = path.name
    return stripe_billing_from_tables(tables, source=str(folder), files=names, problems=problems)


def read_stripe_schema(url: str) -> StripeImport:
    """The billing model of the Stripe object tables in the PostgreSQL schema of `url` (tables named as loaders
    name them: `invoice_line_item`, `INVOICE_LINE_ITEMS`, `stripe_invoices`...; nested fields as JSON text or
    flattened columns). Connection problems are SourceErrors naming server, database and schema."""
    from saaskpi.postgres import PostgresSource, read_schema_tables

    source = PostgresSource.open(url)
    names = sorted(n for n in source.columns() if object_of(n.split("__")[0]) is not None)
    tables = read_schema_tables(url, names)
    return stripe_billing_from_tables(
        tables, source=f"{source.schema} ({source.address.where})", files={n: f"{source.schema}.{n}" for n in names}
    )


# --------------------------------------------------------------------------- `saaskpi import stripe`
def add_stripe_arguments(parser: argparse.ArgumentParser) -> None:
    """`saaskpi import stripe SOURCE [--shape dashboard|api]`."""
    parser.add_argument(
        "source",
        help="folder of Stripe exports (never modified): the Dashboard's CSV exports, "
        "or one CSV/Parquet/JSON-lines file per API object as a loader lands them; "
        "or postgresql://user@host/db?schema=stripe, the schema a loader syncs into",
    )
    parser.add_argument(
        "--shape",
        choices=("dashboard", "api"),
        default=None,
        help="which of the two (default: Dashboard when a CSV header has `(UTC)` columns)",
    )


def read_stripe_args(args: argparse.Namespace) -> Imported:
    """What `saaskpi import stripe` read: the billing model, the rows set aside, the files."""
    given = str(args.source)
    where = given if given.startswith(("postgresql://", "postgres://")) else paths.resolve(given)
    result = read_stripe(where, getattr(args, "shape", None), getattr(args, "progress", False))
    return Imported(
        source=str(args.source),
        billing=result.data,
        set_aside=result.set_aside,
        files=tuple(FileRead(file, table, rows) for file, table, rows in result.files_read),
    )


IMPORTER = Importer(
    name="stripe",
    help="Stripe: Dashboard CSV exports, or API objects as Fivetran, Airbyte, dlt or Stitch land them",
    read=read_stripe_args,
    arguments=add_stripe_arguments,
)
