"""Stripe Dashboard CSV exports: customers, subscriptions, invoices and invoice line items (and, optionally,
payments for their refunds), with the headers the Dashboard writes (`Customer ID`, `Date (UTC)`,
`Current Period Start (UTC)`, `<key> (metadata)`...). Amounts are in major units (`2000.00`, `5000` yen),
times in UTC (`2024-01-31 17:05`).

Each file is recognised by its header. A file given as one export that has the header of another (a
customers export passed as invoices) is reported with what it looks like and the columns expected."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from saaskpi.importers.stripe_billing import StripeImport, StripeRecords, billing_data, records_frame
from saaskpi.importers.stripe_common import (
    ROW,
    Problems,
    StripeExportError,
    amounts,
    booleans,
    coalesce_columns,
    currencies,
    currency_of_invoices,
    files_bar,
    first_present,
    invoice_statuses,
    numbers,
    present,
    read_table,
    times,
    unreadable,
    whole_numbers,
)


@dataclass(frozen=True)
class Export:
    """One Dashboard export: what it is called, the columns it needs (each with the names Stripe has used),
    and headers that only it has (to recognise it)."""

    kind: str
    label: str  # also the rule codes' prefix, spaces as underscores (invoice_line_items.unparseable)
    file_names: tuple[str, ...]
    required: tuple[tuple[str, ...], ...]
    signature: tuple[str, ...]

    @property
    def code(self) -> str:
        return self.label.replace(" ", "_")


EXPORTS = {
    e.kind: e
    for e in (
        Export(
            "customers",
            "customers",
            ("customers", "unified_customers"),
            (("id",), ("Created (UTC)",)),
            ("Email", "Delinquent", "Business Vat ID", "Account Balance", "Card ID", "Description"),
        ),
        Export(
            "subscriptions",
            "subscriptions",
            ("subscriptions",),
            (("id",), ("Customer ID", "Customer")),
            (
                "Current Period Start (UTC)",
                "Current Period End (UTC)",
                "Cancel At Period End",
                "Canceled At (UTC)",
                "Ended At (UTC)",
                "Trial Start (UTC)",
                "Trial End (UTC)",
                "Start (UTC)",
                "Start Date (UTC)",
            ),
        ),
        Export(
            "invoices",
            "invoices",
            ("invoices",),
            (("id",), ("Customer", "Customer ID"), ("Date (UTC)", "Created (UTC)"), ("Currency",), ("Status",)),
            (
                "Amount Due",
                "Amount Paid",
                "Amount Remaining",
                "Date (UTC)",
                "Due Date (UTC)",
                "Paid At (UTC)",
                "Subtotal",
                "Total",
                "Number",
                "Finalized At (UTC)",
                "Applied Coupons",
            ),
        ),
        Export(
            "lines",
            "invoice line items",
            ("invoice_line_items", "line_items", "invoice_items"),
            (("Invoice ID", "Invoice"), ("Amount",)),
            (
                "Invoice ID",
                "Proration",
                "Subscription Item",
                "Subscription Item ID",
                "Line Item ID",
                "Invoice Line Item ID",
                "Discountable",
                "Invoice Item",
            ),
        ),
        Export(
            "payments",
            "payments",
            ("payments", "unified_payments", "charges"),
            (("id",), ("Invoice ID",), ("Amount Refunded",)),
            ("Amount Refunded", "Captured", "Seller Message", "Converted Amount", "Card ID", "Refunded date (UTC)"),
        ),
    )
}
REQUIRED_EXPORTS = ("customers", "invoices", "lines")


def kind_of_name(path: Path) -> str | None:
    """The export a file's name says it is (`invoices.csv`, `unified_customers.csv`, `invoices (3).csv`)."""
    stem = path.stem.lower().split(" (")[0].split("-")[0].strip().replace(" ", "_")
    return next((e.kind for e in EXPORTS.values() if stem in e.file_names), None)


def kind_of_header(columns: list[str]) -> str | None:
    """The export whose own headers a file has most of (at least two), else None."""
    scores = {kind: sum(h in columns for h in e.signature) for kind, e in EXPORTS.items()}
    best = max(scores, key=lambda kind: scores[kind])
    return best if scores[best] >= 2 else None


def has_required(columns: list[str], export: Export) -> bool:
    return all(any(a in columns for a in alts) for alts in export.required)


def stripe_billing_from_dashboard(
    files: dict[str, Path], source: str = "the Stripe Dashboard exports", progress: bool = False
) -> StripeImport:
    """The billing model of Dashboard CSV exports given by kind (`customers`, `subscriptions`, `invoices`,
    `lines`, optionally `payments`). Raises StripeExportError with every problem found."""
    problems = Problems()
    frames: dict[str, pl.DataFrame] = {}
    for kind, path in files_bar(list(files.items()), progress):
        export = EXPORTS[kind]
        frame = read_table(path, export.code, problems)
        if frame is None:
            continue
        columns = [c for c in frame.columns if c != ROW]
        if not has_required(columns, export):
            _wrong_or_missing(path, columns, export, problems)
            continue
        frames[kind] = frame
    for kind in REQUIRED_EXPORTS:
        if kind not in files:
            e = EXPORTS[kind]
            problems.add(
                f"{e.code}.missing_export",
                e.label,
                None,
                f"no Stripe {e.label} export (a CSV named {e.file_names[0]}.csv, or one with its header)",
            )
    if problems:
        raise StripeExportError(problems.found, source)
    names = {kind: path.name for kind, path in files.items()}
    rec = StripeRecords(
        customers=_customers(frames["customers"], names["customers"], problems),
        invoices=_invoices(frames["invoices"], names["invoices"], problems),
        lines=pl.DataFrame(),
        files={k: names[k] for k in names},
    )
    currency_of = currency_of_invoices(rec.invoices)
    rec.lines = _lines(frames["lines"], names["lines"], currency_of, problems)
    rec.plans = _plans(frames)
    rec.files["plans"] = names["lines"]
    if "subscriptions" in frames:
        rec.subscriptions = _subscriptions(frames["subscriptions"], names["subscriptions"], problems)
    if "payments" in frames:
        rec.refunds = _refunds(frames["payments"], names["payments"], problems)
    rec.headers = {
        "customers": {"customer_id": "id"},
        "invoices": {"invoice_id": "id"},
        "subscriptions": {"subscription_id": "id"},
        "lines": {
            "invoice_id": first_present(frames["lines"], "Invoice ID", "Invoice") or "Invoice ID",
            "line_id": first_present(frames["lines"], "id", "Line Item ID", "Invoice Line Item ID") or "id",
            "plan_id": first_present(frames["lines"], "Price ID", "Plan ID", "Price", "Plan") or "Price ID",
        },
    }
    rec.files_read = tuple((names[k], f"Stripe {EXPORTS[k].label} export", f.height) for k, f in frames.items())
    return billing_data(rec, problems, source)


def _wrong_or_missing(path: Path, columns: list[str], export: Export, problems: Problems) -> None:
    expected = ", ".join(" or ".join(alts) for alts in export.required)
    other = kind_of_header(columns)
    if other and other != export.kind and has_required(columns, EXPORTS[other]):
        problems.add(
            f"{export.code}.wrong_file",
            path.name,
            None,
            f"was given as the Stripe {export.label} export but looks like a Stripe {EXPORTS[other].label} "
            f"export (it has {', '.join(h for h in EXPORTS[other].signature if h in columns)}); "
            f"the {export.label} export needs the columns {expected}",
        )
        return
    missing = [alts for alts in export.required if not any(a in columns for a in alts)]
    problems.add(
        f"{export.code}.missing_column",
        path.name,
        missing[0][0],
        f"the Stripe {export.label} export needs the columns {expected}; missing: "
        f"{', '.join(' or '.join(a) for a in missing)}; columns found: {', '.join(columns)[:300]}",
    )


# --------------------------------------------------------------------------- per export
def _col(frame: pl.DataFrame, *names: str) -> pl.Series:
    return coalesce_columns(frame, *names)


def _time(frame: pl.DataFrame, table: str, kind: str, problems: Problems, *names: str) -> pl.Series:
    return times(frame, table, kind, problems, names, "values are not dates and times (2024-01-31 17:05)")


def _amount(frame: pl.DataFrame, table: str, kind: str, problems: Problems, *names: str) -> pl.Series:
    column = first_present(frame, *names)
    if column is None:
        return pl.Series([None] * frame.height, dtype=pl.Float64)
    return amounts(frame, table, kind, problems, column, numbers(frame[column]), "values are not amounts (2000.00)")


def _currency(frame: pl.DataFrame, table: str, kind: str, problems: Problems) -> pl.Series:
    return currencies(frame, table, kind, problems, "Currency")


def _metadata(frame: pl.DataFrame) -> pl.Series:
    """The `<key> (metadata)` columns as one JSON object per row."""
    keys = [c for c in frame.columns if c.endswith(" (metadata)")]
    rows = frame.select(keys).rows() if keys else [()] * frame.height
    names = [k.removesuffix(" (metadata)") for k in keys]
    values = [
        json.dumps({n: v for n, v in zip(names, row) if v is not None}, sort_keys=True)
        if any(v is not None for v in row)
        else None
        for row in rows
    ]
    return pl.Series("metadata", values, dtype=pl.String)


def _customers(frame: pl.DataFrame, table: str, problems: Problems) -> pl.DataFrame:
    created = _time(frame, table, "customers", problems, "Created (UTC)")
    present(frame, table, "customers", problems, "Created (UTC)", created, "customers without a creation date")
    return records_frame(
        "customers",
        {
            "customer_id": frame["id"],
            "name": _col(frame, "Name", "Description"),
            "email": _col(frame, "Email"),
            "created_at": created,
            "metadata": _metadata(frame),
        },
        frame[ROW],
    )


def _invoices(frame: pl.DataFrame, table: str, problems: Problems) -> pl.DataFrame:
    status = invoice_statuses(frame, table, "invoices", problems, "Status")
    issued = _time(frame, table, "invoices", problems, "Date (UTC)", "Created (UTC)")
    return records_frame(
        "invoices",
        {
            "invoice_id": frame["id"],
            "customer_id": _col(frame, "Customer", "Customer ID"),
            "issued_at": issued,
            "due_at": _time(frame, table, "invoices", problems, "Due Date (UTC)"),
            "currency": _currency(frame, table, "invoices", problems),
            "status": status,
            "paid_at": _time(frame, table, "invoices", problems, "Paid At (UTC)"),
            "amount_paid": _amount(frame, table, "invoices", problems, "Amount Paid"),
            "charge_id": _col(frame, "Charge"),
            "payment_intent_id": _col(frame, "Payment Intent", "PaymentIntent ID"),
            "customer_name": _col(frame, "Customer Name"),
            "customer_email": _col(frame, "Customer Email"),
        },
        frame[ROW],
    )


def _lines(frame: pl.DataFrame, table: str, currency_of: dict[str, str], problems: Problems) -> pl.DataFrame:
    invoice = _col(frame, "Invoice ID", "Invoice")
    if "Currency" in frame.columns:
        _currency(frame, table, "invoice_line_items", problems)
    quantity = first_present(frame, "Quantity")
    qty = whole_numbers(frame[quantity]) if quantity else pl.Series([None] * frame.height, dtype=pl.Float64)
    if quantity:
        problems.rows(
            "invoice_line_items.unparseable",
            table,
            quantity,
            "values are not whole numbers",
            frame,
            unreadable(frame[quantity], qty),
        )
    return records_frame(
        "lines",
        {
            "line_id": _col(frame, "id", "Line Item ID", "Invoice Line Item ID").fill_null(_numbered(invoice)),
            "invoice_id": invoice,
            "subscription_id": _col(frame, "Subscription", "Subscription ID"),
            "plan_id": _col(frame, "Price ID", "Plan ID", "Price", "Plan"),
            "service_period_start": _time(frame, table, "invoice_line_items", problems, "Period Start (UTC)"),
            "service_period_end": _time(frame, table, "invoice_line_items", problems, "Period End (UTC)"),
            "amount": _amount(frame, table, "invoice_line_items", problems, "Amount"),
            "discount_amount": _amount(
                frame, table, "invoice_line_items", problems, "Discount Amount", "Total Discount Amount"
            ).fill_null(0),
            "discount_duration": _col(frame, "Coupon Duration").str.to_lowercase(),
            "tax_amount": _amount(frame, table, "invoice_line_items", problems, "Tax Amount", "Tax").fill_null(0),
            "quantity": qty,
            "prorated": booleans(_col(frame, "Proration")).fill_null(False),
            "description": _col(frame, "Description"),
        },
        frame[ROW],
    )


def _numbered(invoice: pl.Series) -> pl.Series:
    """`in_1#1`, `in_1#2`... for exports without a line id: each line numbered within its invoice."""
    frame = pl.DataFrame({"invoice": invoice})
    return frame.select(pl.format("{}#{}", "invoice", pl.int_range(1, pl.len() + 1).over("invoice"))).to_series()


def _plans(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Plans named with an interval in the line items or subscriptions export (else read from periods)."""
    out = []
    for kind in ("lines", "subscriptions"):
        frame = frames.get(kind)
        if frame is None:
            continue
        pid = _col(frame, "Price ID", "Plan ID", "Price", "Plan")
        unit = _col(frame, "Interval", "Price Interval", "Plan Interval").str.to_lowercase()
        count = whole_numbers(_col(frame, "Interval Count", "Price Interval Count", "Plan Interval Count"))
        name = _col(frame, "Product Name", "Product", "Plan Nickname", "Price Nickname")
        out.append(
            pl.DataFrame(
                {
                    "plan_id": pid,
                    "name": name,
                    "interval_unit": unit,
                    "interval_count": count.fill_null(1).cast(pl.Int64),
                    ROW: frame[ROW],
                }
            ).filter(pl.col("plan_id").is_not_null())
        )
    if not out:
        return pl.DataFrame(
            schema={
                "plan_id": pl.String,
                "name": pl.String,
                "interval_unit": pl.String,
                "interval_count": pl.Int64,
                ROW: pl.String,
            }
        )
    return pl.concat(out)


def _subscriptions(frame: pl.DataFrame, table: str, problems: Problems) -> pl.DataFrame:
    return records_frame(
        "subscriptions",
        {
            "subscription_id": frame["id"],
            "customer_id": _col(frame, "Customer ID", "Customer"),
            "cancelled_at": _time(frame, table, "subscriptions", problems, "Canceled At (UTC)"),
            "cancel_at_period_end": booleans(_col(frame, "Cancel At Period End")),
            "ended_at": _time(frame, table, "subscriptions", problems, "Ended At (UTC)"),
        },
        frame[ROW],
    )


def _refunds(frame: pl.DataFrame, table: str, problems: Problems) -> pl.DataFrame:
    """One refund per payment with an `Amount Refunded` above 0 (dated `Refunded date (UTC)` when exported)."""
    refunded = _amount(frame, table, "payments", problems, "Amount Refunded")
    rows = frame.with_columns(
        refunded.alias("__refunded"),
        _time(frame, table, "payments", problems, "Refunded date (UTC)", "Created (UTC)", "Created date (UTC)").alias(
            "__date"
        ),
    )
    rows = rows.filter(pl.col("__refunded").fill_null(0) > 0)
    return records_frame(
        "refunds",
        {
            "refund_id": rows.select(pl.format("{}.refund", "id")).to_series(),
            "invoice_id": rows["Invoice ID"],
            "charge_id": rows["id"],
            "date": rows["__date"],
            "amount": rows["__refunded"],
            "status": pl.Series(["succeeded"] * rows.height, dtype=pl.String),
        },
        rows[ROW],
    )
