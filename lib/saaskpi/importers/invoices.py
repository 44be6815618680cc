"""The generic invoice CSV (`saaskpi import invoices <folder>`): the format to export to from any billing system.

A folder of six files in ChartMogul's import shape, amounts in major units (see docs/your-data.md):
`customers.csv`, `plans.csv`, `invoices.csv`, `line_items.csv` (required), `transactions.csv` and
`subscriptions.csv` (optional). Each may also be a `.parquet` file of the same columns. Columns are those of
`saaskpi.importers.billing.SCHEMAS`; absent optional columns take their default.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl
from tqdm.auto import tqdm

from .. import paths
from ..contract.load import ROW
from ..errors import Problem, SourceError
from ..sources import Unreadable
from . import Imported, Importer
from .billing import IDS, REQUIRED, SCHEMAS, BillingData
from .reading import (
    ExportError,
    FileRead,
    billing_shapes,
    checked_billing_table,
    looks_like,
    normalised,
    read_text_table,
    reference_problems,
    typed_columns,
)

TABLES = ("customers", "plans", "invoices", "line_items", "transactions", "subscriptions")
OPTIONAL_FILES = ("transactions", "subscriptions")
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _file_of(folder: Path, table: str) -> Path | None:
    for suffix in (".csv", ".parquet"):
        if (folder / f"{table}{suffix}").is_file():
            return folder / f"{table}{suffix}"
    return None


def _wrong_file(table: str, path: Path, columns: list[str]) -> Problem | None:
    """A problem when the file's header is that of another table (a customers export given as invoices)."""
    shapes = billing_shapes()
    other = looks_like(columns, shapes, table)
    if other is None:
        return None
    return Problem(
        f"{table}.wrong_file",
        table,
        None,
        f"{path.name} looks like a {other} file (columns: {', '.join(columns)}); {path.name} needs the "
        f"columns {', '.join(REQUIRED[table])} (and may have {', '.join(c for c in shapes[table] if c not in REQUIRED[table])})",
        0,
    )


def read_invoice_folder(folder: Path, progress: bool = False) -> tuple[BillingData, tuple[FileRead, ...]]:
    """The billing data in a generic invoice CSV folder; every problem of every file raised at once."""
    if not folder.is_dir():
        raise SourceError(
            f"{folder} is not a folder: give the folder holding customers.csv, plans.csv, invoices.csv "
            "and line_items.csv."
        )
    problems: list[Problem] = []
    typed: dict[str, pl.DataFrame] = {}
    files = []
    for table in tqdm(TABLES, desc="reading", unit="file", disable=not progress, leave=False):
        path = _file_of(folder, table)
        if path is None:
            if table not in OPTIONAL_FILES:
                problems.append(
                    Problem(
                        "source.missing_file",
                        table,
                        None,
                        f"{table}.csv is not in {folder} (files there: "
                        f"{', '.join(sorted(p.name for p in folder.iterdir() if not p.name.startswith('.'))) or 'none'})",
                        0,
                    )
                )
            continue
        try:
            raw = read_text_table(path, table)
        except Unreadable as err:
            problems.append(err.problem)
            continue
        files.append(FileRead(path.name, table, raw.height))
        wrong = _wrong_file(table, path, raw.columns)
        if wrong is not None:
            problems.append(wrong)
            continue
        raw = raw.with_row_index(ROW, offset=2).with_columns(pl.col(ROW).cast(pl.Int64))
        frame, found = typed_columns(table, raw, SCHEMAS[table], IDS[table], REQUIRED[table])
        problems += found
        if found and any(p.code.endswith(".missing_column") for p in found):
            continue
        problems += checked_billing_table(table, frame, raw)
        typed[table] = normalised(table, frame)
    problems += reference_problems(typed)
    if problems:
        raise ExportError(problems, str(folder))
    data = BillingData.of(**{t: f.drop(ROW) for t, f in typed.items()})
    return data, tuple(files)


def write_invoice_csv(data: BillingData, folder: Path) -> Path:
    """`data` as the generic invoice CSV files in `folder` (UTC date-times as 2024-01-31T00:00:00Z)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in data.tables().items():
        frame.write_csv(folder / f"{name}.csv", datetime_format=DATETIME_FORMAT)
    return folder


def _read(args: argparse.Namespace) -> Imported:
    folder = paths.resolve(args.source)
    data, files = read_invoice_folder(folder, getattr(args, "progress", False))
    return Imported(source=str(args.source), files=files, billing=data)


IMPORTER = Importer(
    name="invoices",
    help="the generic invoice CSV: customers, plans, invoices, line_items (+ transactions, subscriptions)",
    read=_read,
)
