"""Stripe's records, once read from either shape, as the billing model: the checks across objects, plans
from prices (or from the periods they bill), past-due invoices, payments, refunds and credit notes.

Both readers (Dashboard CSV, API tables) first bring their files to `StripeRecords`: typed frames with
fixed column names, amounts in major units (cents already divided by the currency's minor unit)."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from saaskpi.importers.billing import INTERVAL_UNITS, BillingData, SetAside
from saaskpi.importers.stripe_common import ROW, UTC, Problems, StripeExportError

RECORD_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "customers": {
        "customer_id": pl.String,
        "name": pl.String,
        "email": pl.String,
        "created_at": UTC,
        "metadata": pl.String,
    },
    "subscriptions": {
        "subscription_id": pl.String,
        "customer_id": pl.String,
        "cancelled_at": UTC,
        "cancel_at_period_end": pl.Boolean,
        "ended_at": UTC,
    },
    "invoices": {
        "invoice_id": pl.String,
        "customer_id": pl.String,
        "issued_at": UTC,
        "due_at": UTC,
        "currency": pl.String,
        "status": pl.String,
        "paid_at": UTC,
        "amount_paid": pl.Float64,
        "charge_id": pl.String,
        "payment_intent_id": pl.String,
        "customer_name": pl.String,
        "customer_email": pl.String,
    },
    "lines": {
        "line_id": pl.String,
        "invoice_id": pl.String,
        "subscription_id": pl.String,
        "plan_id": pl.String,
        "service_period_start": UTC,
        "service_period_end": UTC,
        "amount": pl.Float64,
        "discount_amount": pl.Float64,
        "discount_duration": pl.String,
        "tax_amount": pl.Float64,
        "quantity": pl.Int64,
        "prorated": pl.Boolean,
        "description": pl.String,
    },
    "plans": {"plan_id": pl.String, "name": pl.String, "interval_unit": pl.String, "interval_count": pl.Int64},
    "refunds": {
        "refund_id": pl.String,
        "invoice_id": pl.String,
        "charge_id": pl.String,
        "payment_intent_id": pl.String,
        "date": UTC,
        "amount": pl.Float64,
        "status": pl.String,
    },
    "credit_notes": {
        "credit_note_id": pl.String,
        "invoice_id": pl.String,
        "date": UTC,
        "amount": pl.Float64,
        "status": pl.String,
        "refund_id": pl.String,
    },
}


def records_frame(name: str, columns: dict[str, pl.Series], rows: pl.Series) -> pl.DataFrame:
    """A typed record frame from its columns (absent ones null) and the source row labels."""
    schema = RECORD_SCHEMAS[name]
    data = {
        c: (columns[c].cast(t, strict=False) if c in columns else pl.Series([None] * len(rows), dtype=t))
        for c, t in schema.items()
    }
    return pl.DataFrame(data).with_columns(rows.alias(ROW))


def empty_records(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema={**RECORD_SCHEMAS[name], ROW: pl.String})


@dataclass
class StripeRecords:
    """The Stripe objects of one export, typed; `files` names the file each came from (for messages)."""

    customers: pl.DataFrame
    invoices: pl.DataFrame
    lines: pl.DataFrame
    subscriptions: pl.DataFrame = field(default_factory=lambda: empty_records("subscriptions"))
    plans: pl.DataFrame = field(default_factory=lambda: empty_records("plans"))
    refunds: pl.DataFrame = field(default_factory=lambda: empty_records("refunds"))
    credit_notes: pl.DataFrame = field(default_factory=lambda: empty_records("credit_notes"))
    files: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # record column -> the file's own column
    files_read: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True)
class StripeImport:
    """What a Stripe export became: the billing model, and the rows set aside on the way."""

    data: BillingData
    set_aside: tuple[SetAside, ...] = ()
    files_read: tuple[tuple[str, str, int], ...] = ()  # (file, what it held, rows) for the import report


# --------------------------------------------------------------------------- checks across objects
def check_records(rec: StripeRecords, problems: Problems) -> None:
    """Duplicate ids and references to objects the export does not have."""
    for name, key in (
        ("customers", "customer_id"),
        ("invoices", "invoice_id"),
        ("lines", "line_id"),
        ("subscriptions", "subscription_id"),
        ("refunds", "refund_id"),
        ("credit_notes", "credit_note_id"),
    ):
        frame = getattr(rec, name)
        dup = frame[key].is_duplicated() & frame[key].is_not_null()
        _report(
            problems,
            rec,
            name,
            key,
            f"{_code(name)}.duplicate",
            f"{dup.sum():,} rows share an id that must be unique",
            frame,
            dup,
        )
    lines = rec.lines
    known = rec.invoices["invoice_id"].drop_nulls().implode()
    orphan = lines["invoice_id"].is_not_null() & ~lines["invoice_id"].is_in(known)
    _report(
        problems,
        rec,
        "lines",
        "invoice_id",
        "invoice_line_items.invoice.orphan",
        f"line items whose invoice is not in {rec.files.get('invoices', 'the invoices')}",
        lines,
        orphan,
    )


def _report(
    problems: Problems,
    rec: StripeRecords,
    name: str,
    column: str,
    code: str,
    message: str,
    frame: pl.DataFrame,
    mask: pl.Series,
) -> None:
    """A problem of record column `column`, named and shown as the file's own column (`Invoice ID`, `invoice`)."""
    header = rec.headers.get(name, {}).get(column, column)
    shown = frame.rename({column: header}) if header != column and header not in frame.columns else frame
    problems.rows(code, rec.files.get(name, name), header, message, shown, mask)


def _code(name: str) -> str:
    return {"lines": "invoice_line_items"}.get(name, name)


# --------------------------------------------------------------------------- plans
def plans_for_lines(rec: StripeRecords, problems: Problems) -> pl.DataFrame:
    """The plans the subscription lines bill: their interval from the price or plan, else from the service
    period of a full (non-prorated) line of that plan (Jan 1 - Feb 1 is a month, Jan 1 - Apr 1 a quarter)."""
    known = rec.plans.filter(pl.col("interval_unit").is_not_null() & pl.col("interval_count").is_not_null())
    known = known.unique("plan_id", keep="first", maintain_order=True)
    used = subscription_lines(rec.lines)
    odd = known.filter(
        pl.col("plan_id").is_in(used["plan_id"].implode())
        & (~pl.col("interval_unit").is_in(INTERVAL_UNITS) | (pl.col("interval_count") < 1))
    )
    if odd.height:
        shown = odd.select("plan_id", "interval_unit", "interval_count").head(5).iter_rows()
        problems.add(
            "price.bad_interval",
            rec.files.get("plans", "prices"),
            "recurring.interval",
            f"billing intervals other than {', '.join(INTERVAL_UNITS)} times a count of at least 1",
            odd.height,
            [f"{p}: {u} x {c}" for p, u, c in shown],
        )
    missing = used.filter(~pl.col("plan_id").is_in(known["plan_id"].implode()))
    inferred = _intervals_from_periods(missing)
    no_plan = used.filter(pl.col("plan_id").is_null())
    _report(
        problems,
        rec,
        "lines",
        "plan_id",
        "invoice_line_items.plan.missing",
        "subscription line items without a price or plan id (the plan sets the billing interval)",
        no_plan,
        pl.Series([True] * no_plan.height),
    )
    unknown = missing.filter(pl.col("plan_id").is_not_null() & ~pl.col("plan_id").is_in(inferred["plan_id"].implode()))
    _report(
        problems,
        rec,
        "lines",
        "plan_id",
        "invoice_line_items.plan.no_interval",
        "prices or plans whose billing interval is neither in the export nor readable from a full "
        "billing period (export the prices or plans too)",
        unknown,
        pl.Series([True] * unknown.height),
    )
    names = rec.plans.select("plan_id", "name").unique("plan_id", keep="first", maintain_order=True)
    inferred = inferred.join(names, on="plan_id", how="left")
    plans = pl.concat(
        [
            known.select("plan_id", "name", "interval_unit", "interval_count"),
            inferred.select("plan_id", "name", "interval_unit", "interval_count"),
        ]
    )
    return plans.with_columns(pl.coalesce("name", "plan_id").alias("name")).sort("plan_id")


IS_SUBSCRIPTION_LINE = (
    pl.col("subscription_id").is_not_null()
    & pl.col("service_period_start").is_not_null()
    & (pl.col("service_period_end") > pl.col("service_period_start"))
)
"""A line that bills a subscription over a service period (the others are one-off charges: set-up fees,
invoice items without a period)."""


def subscription_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """The lines that bill a subscription over a service period."""
    return lines.filter(IS_SUBSCRIPTION_LINE)


def _intervals_from_periods(lines: pl.DataFrame) -> pl.DataFrame:
    full = lines.filter(~pl.col("prorated").fill_null(False) & pl.col("plan_id").is_not_null())
    rows = {}
    for plan_id, start, end in full.select("plan_id", "service_period_start", "service_period_end").iter_rows():
        if plan_id not in rows:
            interval = interval_of(start, end)
            if interval:
                rows[plan_id] = interval
    return pl.DataFrame(
        {
            "plan_id": list(rows),
            "interval_unit": [u for u, _ in rows.values()],
            "interval_count": [c for _, c in rows.values()],
        },
        schema={"plan_id": pl.String, "interval_unit": pl.String, "interval_count": pl.Int64},
    )


def interval_of(start, end) -> tuple[str, int] | None:
    """The billing interval a full period spans: ('month', 3) for Jan 31 - Apr 30 as for Jan 1 - Apr 1."""
    months = (end.year - start.year) * 12 + end.month - start.month
    same_clock = (end.hour, end.minute, end.second) == (start.hour, start.minute, start.second)
    if months > 0 and same_clock and (end.day == start.day or (end.day < start.day and _last_day(end))):
        return ("year", months // 12) if months % 12 == 0 else ("month", months)
    seconds = (end - start).total_seconds()
    if seconds > 0 and seconds % 86400 == 0:
        days = int(seconds // 86400)
        return ("week", days // 7) if days % 7 == 0 else ("day", days)
    return None


def _last_day(moment) -> bool:
    import calendar

    return moment.day == calendar.monthrange(moment.year, moment.month)[1]


# --------------------------------------------------------------------------- the billing model
def billing_data(rec: StripeRecords, problems: Problems, source: str) -> StripeImport:
    """The billing model of the records; raises StripeExportError listing every problem found while
    reading (`problems`) and across objects (duplicates, orphans, plans without an interval)."""
    check_records(rec, problems)
    plans = plans_for_lines(rec, problems)
    if problems:
        raise StripeExportError(problems.found, source)
    rec.customers, aside = _with_customers_of_invoices(rec)
    as_of = _as_of(rec)
    invoices = rec.invoices.with_columns(
        pl.when((pl.col("status") == "open") & pl.col("due_at").is_not_null() & (pl.col("due_at") < as_of))
        .then(pl.lit("past_due"))
        .otherwise(pl.col("status"))
        .alias("status")
    )
    recurring = IS_SUBSCRIPTION_LINE
    lines = rec.lines.with_columns(
        pl.when(recurring).then(pl.lit("subscription")).otherwise(pl.lit("one_time")).alias("type"),
        *[
            pl.when(recurring).then(pl.col(c)).otherwise(None).alias(c)
            for c in ("subscription_id", "service_period_start", "service_period_end")
        ],
    )
    transactions, more = _transactions(rec, invoices)
    aside += more
    customers = rec.customers.with_columns(  # Stripe has no such fields: read back from metadata keys
        [
            pl.col("metadata").str.json_path_match(f"$.{key}").alias(key)
            for key in ("region", "industry", "acquisition_channel")
        ]
    )
    data = BillingData.of(
        customers=customers,
        plans=plans,
        invoices=invoices,
        line_items=lines,
        transactions=transactions,
        subscriptions=rec.subscriptions.filter(pl.col("customer_id").is_not_null()),
    )
    return StripeImport(data, tuple(aside), rec.files_read)


def _with_customers_of_invoices(rec: StripeRecords) -> tuple[pl.DataFrame, list[SetAside]]:
    """The customers, plus one for each customer that has invoices but is not in the customers export (Stripe's
    lists leave deleted customers out; their invoices stay): named from its invoices, created at the first."""
    orphans = rec.invoices.filter(
        pl.col("customer_id").is_not_null() & ~pl.col("customer_id").is_in(rec.customers["customer_id"].implode())
    )
    if orphans.is_empty():
        return rec.customers, []
    made = (
        orphans.sort("issued_at")
        .group_by("customer_id", maintain_order=True)
        .agg(
            pl.col("customer_name").drop_nulls().first().alias("name"),
            pl.col("customer_email").drop_nulls().first().alias("email"),
            pl.col("issued_at").min().alias("created_at"),
        )
        .with_columns(pl.lit(None, pl.String).alias("metadata"), pl.lit("(from invoices)").alias(ROW))
    )
    customers = pl.concat([rec.customers, made.select(rec.customers.columns)])
    note = SetAside(
        "customer_from_invoices",
        rec.files.get("customers", "customers"),
        made.height,
        tuple(made["customer_id"].head(5).to_list()),
        "customer not in the customers export (deleted in Stripe?): made from its invoices, "
        "created at its first invoice",
    )
    return customers, [note]


def _as_of(rec: StripeRecords):
    """The moment the export describes: its latest invoice, payment or refund (an open invoice due
    before it is past due). Taken from the data, not the clock, so the same export gives the same tables."""
    times = pl.concat(
        [rec.invoices["issued_at"], rec.invoices["paid_at"], rec.refunds["date"], rec.credit_notes["date"]]
    ).drop_nulls()
    return times.max() if times.len() else None


def _transactions(rec: StripeRecords, invoices: pl.DataFrame) -> tuple[pl.DataFrame, list[SetAside]]:
    """Payments of paid invoices, successful or failed refunds, and credit notes (refunds without a refund object)."""
    paid = invoices.filter((pl.col("status") == "paid") & (pl.col("amount_paid").fill_null(0) > 0))
    payments = paid.select(
        pl.coalesce("charge_id", pl.format("{}.payment", "invoice_id")).alias("transaction_id"),
        "invoice_id",
        pl.lit("payment").alias("type"),
        pl.lit("successful").alias("result"),
        pl.coalesce("paid_at", "issued_at").alias("date"),
        pl.col("amount_paid").alias("amount"),
    )
    by_charge = invoices.filter(pl.col("charge_id").is_not_null()).select(
        "charge_id", pl.col("invoice_id").alias("by_charge")
    )
    by_intent = invoices.filter(pl.col("payment_intent_id").is_not_null()).select(
        "payment_intent_id", pl.col("invoice_id").alias("by_intent")
    )
    refunds = (
        rec.refunds.join(by_charge, on="charge_id", how="left")
        .join(by_intent, on="payment_intent_id", how="left")
        .with_columns(pl.coalesce("invoice_id", "by_charge", "by_intent").alias("invoice_id"))
    )
    aside = []
    unlinked = refunds.filter(pl.col("invoice_id").is_null())
    if unlinked.height:
        aside.append(
            SetAside(
                "refund_without_invoice",
                rec.files.get("refunds", "refunds"),
                unlinked.height,
                tuple(unlinked["refund_id"].head(5).to_list()),
                "refund of a payment that is not an invoice's (a one-off charge): not subscription revenue",
            )
        )
    refund_rows = refunds.filter(pl.col("invoice_id").is_not_null()).select(
        pl.col("refund_id").alias("transaction_id"),
        "invoice_id",
        pl.lit("refund").alias("type"),
        pl.when(pl.col("status").is_in(["failed", "canceled"]))
        .then(pl.lit("failed"))
        .otherwise(pl.lit("successful"))
        .alias("result"),
        "date",
        pl.col("amount").abs().alias("amount"),
    )
    notes = rec.credit_notes.filter(
        (pl.col("status").fill_null("issued") != "void")
        & ~pl.col("refund_id").is_in(rec.refunds["refund_id"].implode()).fill_null(False)
    )
    note_rows = notes.select(
        pl.col("credit_note_id").alias("transaction_id"),
        "invoice_id",
        pl.lit("refund").alias("type"),
        pl.lit("successful").alias("result"),
        "date",
        pl.col("amount").abs().alias("amount"),
    )
    frames = [
        f.with_columns(pl.col("date").cast(UTC), pl.col("amount").cast(pl.Float64))
        for f in (payments, refund_rows, note_rows)
    ]
    return pl.concat(frames), aside
