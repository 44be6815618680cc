"""The billing model every revenue importer reads into (ChartMogul's import shape), and its schemas.

A reader (Stripe, the generic invoice CSV, a column mapping) fills a `BillingData`; `to_contract` turns it
into the contract's `accounts`, `subscriptions` and `invoices`. Amounts are in major units (166.67, never
cents); date-times are UTC. See docs/your-data.md for the meaning of every column.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import polars as pl

UTC = pl.Datetime("us", "UTC")

INVOICE_STATUSES = ("paid", "open", "past_due", "uncollectible", "void", "draft")
INTERVAL_UNITS = ("day", "week", "month", "year")
LINE_TYPES = ("subscription", "one_time")
DISCOUNT_DURATIONS = ("forever", "once", "repeating")
TRANSACTION_TYPES = ("payment", "refund")
TRANSACTION_RESULTS = ("successful", "failed")

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "customers": {
        "customer_id": pl.String,
        "name": pl.String,
        "email": pl.String,
        "created_at": UTC,
        "segment": pl.String,
        "region": pl.String,
        "industry": pl.String,
        "acquisition_channel": pl.String,
        "metadata": pl.String,
    },
    "plans": {"plan_id": pl.String, "name": pl.String, "interval_unit": pl.String, "interval_count": pl.Int64},
    "invoices": {
        "invoice_id": pl.String,
        "customer_id": pl.String,
        "issued_at": UTC,
        "due_at": UTC,
        "currency": pl.String,
        "status": pl.String,
        "paid_at": UTC,
    },
    "line_items": {
        "line_id": pl.String,
        "invoice_id": pl.String,
        "type": pl.String,
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
    "transactions": {
        "transaction_id": pl.String,
        "invoice_id": pl.String,
        "type": pl.String,
        "result": pl.String,
        "date": UTC,
        "amount": pl.Float64,
    },
    "subscriptions": {
        "subscription_id": pl.String,
        "customer_id": pl.String,
        "cancelled_at": UTC,
        "cancel_at_period_end": pl.Boolean,
    },
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "created_at"),
    "plans": ("plan_id", "interval_unit", "interval_count"),
    "invoices": ("invoice_id", "customer_id", "issued_at", "currency", "status"),
    "line_items": ("line_id", "invoice_id", "type", "amount"),
    "transactions": ("transaction_id", "invoice_id", "type", "result", "date", "amount"),
    "subscriptions": ("subscription_id", "customer_id"),
}
"""Columns that must be present and non-empty; every other column may be absent (filled with its default)."""

DEFAULTS: dict[str, dict[str, object]] = {
    "line_items": {"discount_amount": 0.0, "tax_amount": 0.0, "prorated": False},
}
"""Values an absent or empty optional column takes."""

IDS: dict[str, str] = {
    "customers": "customer_id",
    "plans": "plan_id",
    "invoices": "invoice_id",
    "line_items": "line_id",
    "transactions": "transaction_id",
    "subscriptions": "subscription_id",
}
"""The unique identifier of each table."""


def conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with exactly the columns of `table`'s schema, in order and typed: absent optional columns
    become null (or their default), extra columns are dropped. Values are cast strictly (a reader validates first)."""
    schema = SCHEMAS[table]
    defaults = DEFAULTS.get(table, {})
    exprs = []
    for name, dtype in schema.items():
        col = pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype=dtype)
        if name in defaults:
            col = col.fill_null(pl.lit(defaults[name], dtype=dtype))
        exprs.append(col.alias(name))
    return frame.select(exprs)


@dataclass(frozen=True)
class BillingData:
    """A billing system's customers, plans, invoices, line items, transactions and subscriptions (major units, UTC)."""

    customers: pl.DataFrame
    plans: pl.DataFrame
    invoices: pl.DataFrame
    line_items: pl.DataFrame
    transactions: pl.DataFrame
    subscriptions: pl.DataFrame

    SCHEMAS = SCHEMAS  # class attribute (not a field): the schema of each table

    @classmethod
    def empty(cls) -> BillingData:
        """The six tables with their schemas and no rows."""
        return cls(**{name: pl.DataFrame(schema=schema) for name, schema in SCHEMAS.items()})

    @classmethod
    def of(cls, **tables: pl.DataFrame) -> BillingData:
        """BillingData from the tables given (any subset), each conformed to its schema; the others empty."""
        unknown = set(tables) - set(SCHEMAS)
        if unknown:
            raise TypeError(f"unknown billing table(s): {', '.join(sorted(unknown))}")
        return cls(
            **{
                name: conform(name, tables[name]) if name in tables else pl.DataFrame(schema=schema)
                for name, schema in SCHEMAS.items()
            }
        )

    def tables(self) -> dict[str, pl.DataFrame]:
        """The six tables by name, in schema order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------------------------------------------------
# From the billing model to the contract (ChartMogul's semantics; the choices are BillingSettings)
# ---------------------------------------------------------------------------------------------------------

from .settings import BillingSettings, ChurnAfterDays, billing_settings  # noqa: E402, F401  (re-exported)

MONTHS_PER_UNIT = {"day": 12 / 365, "week": 12 / 52, "month": 1.0, "year": 12.0}
"""Months in one interval unit: a year is 12 months, a week 12/52 of one, a day 12/365 (ChartMogul's normalisation)."""
OFFSET_UNIT = {"day": "d", "week": "w", "month": "mo", "year": "y"}
MRR_DECIMALS = 6  # as in metrics.revenue: a credit and the charge it refunds cancel exactly
HALF_CENT = 0.005  # a stretch of less MRR than this is what the rounding of prorated cents left over: no MRR
EXAMPLES = 5


@dataclass(frozen=True)
class SetAside:
    """Rows of one billing table left out of the contract for one reason (counted, with examples)."""

    reason: str
    table: str
    count: int
    examples: tuple[str, ...]
    meaning: str


@dataclass(frozen=True)
class ImportResult:
    """Contract tables (by name) made from billing data, the rows set aside, and the settings applied."""

    tables: dict[str, pl.DataFrame]
    set_aside: tuple[SetAside, ...]
    settings: dict


REASONS = {
    "void_invoice": "invoice is void: its lines add no MRR and it is not a contract invoice",
    "draft_invoice": "invoice is a draft: its lines add no MRR and it is not a contract invoice",
    "one_time": "one-off line (no service period, set-up fee): not recurring revenue",
    "no_mrr": "line whose MRR is 0 (a trial, a 100 % discount)",
    "unpaid_invoice": "recognise_on: payment, and the invoice is not paid",
    "refunded": "refunds: full_refund_removes_mrr, and the invoice was refunded in full",
    "credit_invoice": "invoice total is 0 or negative (credits only): not a contract invoice",
    "no_plan": "subscription line without a known plan: its interval (month, year...) is unknown",
    "negative_mrr": "a period where credits exceed charges: no MRR written for it",
}


def _aside(reason: str, table: str, frame: pl.DataFrame, id_column: str) -> list[SetAside]:
    if frame.is_empty():
        return []
    ids = frame.get_column(id_column).cast(pl.String).head(EXAMPLES).to_list()
    return [SetAside(reason, table, frame.height, tuple(ids), REASONS[reason])]


def _invoice_totals(data: BillingData) -> pl.DataFrame:
    """Each invoice's total charged (amount - discount + tax over its lines)."""
    return data.line_items.group_by("invoice_id").agg(
        (pl.col("amount") - pl.col("discount_amount") + pl.col("tax_amount")).sum().round(2).alias("total")
    )


def _recognised_lines(data: BillingData, settings: BillingSettings) -> tuple[pl.DataFrame, list[SetAside]]:
    """Subscription lines that count towards MRR, with their invoice's customer, currency and status."""
    aside: list[SetAside] = []
    lines = data.line_items.join(
        data.invoices.select("invoice_id", "customer_id", "currency", "status", "paid_at"), on="invoice_id", how="inner"
    )
    for status in ("void", "draft"):
        aside += _aside(f"{status}_invoice", "line_items", lines.filter(pl.col("status") == status), "line_id")
    lines = lines.filter(~pl.col("status").is_in(["void", "draft"]))
    one_time = (
        (pl.col("type") != "subscription")
        | pl.col("service_period_start").is_null()
        | pl.col("service_period_end").is_null()
    )
    aside += _aside("one_time", "line_items", lines.filter(one_time), "line_id")
    lines = lines.filter(~one_time)
    if settings.recognise_on == "payment":
        unpaid = pl.col("status") != "paid"
        aside += _aside("unpaid_invoice", "line_items", lines.filter(unpaid), "line_id")
        lines = lines.filter(~unpaid)
    if settings.refunds == "full_refund_removes_mrr":
        refunded = (
            data.transactions.filter((pl.col("type") == "refund") & (pl.col("result") == "successful"))
            .group_by("invoice_id")
            .agg(pl.col("amount").sum().alias("refunded"))
            .join(_invoice_totals(data), on="invoice_id")
            .filter(pl.col("refunded") >= pl.col("total") - 0.005)
            .get_column("invoice_id")
        )
        gone = pl.col("invoice_id").is_in(refunded.implode())
        aside += _aside("refunded", "line_items", lines.filter(gone), "line_id")
        lines = lines.filter(~gone)
    if isinstance(settings.past_due, ChurnAfterDays):
        cut = pl.col("service_period_start") + pl.duration(days=settings.past_due.churn_after_days)
        overdue = pl.col("status").is_in(["past_due", "uncollectible"])
        lines = lines.with_columns(
            service_period_end=pl.when(overdue)
            .then(pl.min_horizontal("service_period_end", cut))
            .otherwise(pl.col("service_period_end"))
        )
    return lines, aside


def _line_mrr(lines: pl.DataFrame, plans: pl.DataFrame, settings: BillingSettings) -> pl.DataFrame:
    """Each line with its monthly value `mrr` (ChartMogul): net of the discounts that reduce MRR, tax left out,
    normalised to a month; a prorated line scaled to its full plan period, priced at the subscription's regular
    charge for the same plan and quantity when that charge explains it to the cent (rounding of the prorated amount)."""
    reduces = pl.lit(True) if settings.mrr_discounts == "all" else pl.col("discount_duration") == "forever"
    frame = lines.join(
        plans.select("plan_id", "interval_unit", "interval_count", pl.col("name").alias("plan_name")),
        on="plan_id",
        how="left",
    ).with_columns(
        net=pl.col("amount") - pl.when(reduces).then(pl.col("discount_amount")).otherwise(0.0),
        period_months=pl.col("interval_unit").replace_strict(MONTHS_PER_UNIT, default=None) * pl.col("interval_count"),
    )
    # only prorated lines need their full period and a regular charge to compare with (few of a million lines)
    prorated = frame.filter(pl.col("prorated"))
    regular_lines = frame.filter(~pl.col("prorated")).join(
        prorated.select("subscription_id").unique(), on="subscription_id", how="semi"
    )
    # the full period of a prorated line: the subscription's regular period ending when it ends, else one
    # plan interval back from its end
    periods = regular_lines.group_by("subscription_id", "service_period_end").agg(
        pl.col("service_period_start").min().alias("regular_start")
    )
    full_start = pl.coalesce(
        "regular_start",
        pl.col("service_period_end").dt.offset_by(
            pl.format(
                "-{}{}", pl.col("interval_count"), pl.col("interval_unit").replace_strict(OFFSET_UNIT, default="mo")
            )
        ),
    )
    days = lambda a, b: (b - a).dt.total_seconds() / 86400  # noqa: E731
    prorated = (
        prorated.join(periods, on=["subscription_id", "service_period_end"], how="left", nulls_equal=True)
        .with_columns(
            scale=days(full_start, pl.col("service_period_end"))
            / days(pl.col("service_period_start"), pl.col("service_period_end"))
        )
        .with_columns(scaled=pl.col("net") * pl.col("scale"))
    )
    regular = (
        regular_lines.filter(pl.col("net") > 0)
        .select("subscription_id", "plan_id", "quantity", pl.col("net").alias("regular"))
        .unique()
    )
    snapped = (
        prorated.select("line_id", "subscription_id", "plan_id", "quantity", "scaled", "scale")
        .join(regular, on=["subscription_id", "plan_id", "quantity"], how="inner", nulls_equal=True)
        .with_columns(gap=(pl.col("scaled").abs() - pl.col("regular")).abs())
        .filter(pl.col("gap") <= 0.01 * pl.col("scale") + 0.005)
        .sort("line_id", "gap", "regular")
        .unique("line_id", keep="first", maintain_order=True)
        .select("line_id", (pl.col("regular") * pl.col("scaled").sign()).alias("snapped"))
    )
    full = prorated.join(snapped, on="line_id", how="left").select(
        "line_id", pl.coalesce("snapped", "scaled").alias("full")
    )
    return (
        frame.join(full, on="line_id", how="left")
        .with_columns(mrr=pl.coalesce("full", "net") / pl.col("period_months"))
        .drop("full")
    )


def _same_subscription(offset: int) -> pl.Expr:
    """True where the row `offset` rows away (in a frame sorted by subscription) is of the same subscription."""
    return (pl.col("subscription_id").shift(offset) == pl.col("subscription_id")).fill_null(False)


def _pieces(lines: pl.DataFrame, data: BillingData, settings: BillingSettings) -> tuple[pl.DataFrame, list[SetAside]]:
    """Piecewise-constant MRR per subscription: (subscription_id, customer_id, start, end, mrr, plan, seats, currency).

    Each line adds its MRR at its service start and takes it away at its end. The running sum is kept in whole
    millionths (integers), so it is exact and each subscription's sum ends at 0: one running sum over the sorted
    events serves every subscription (no per-subscription windows, which are slow on a million lines)."""
    micro = (pl.col("mrr") * 10**MRR_DECIMALS).round(0).cast(pl.Int64)
    events = (
        pl.concat(
            [
                lines.select("subscription_id", at=pl.col("service_period_start"), delta=micro),
                lines.select("subscription_id", at=pl.col("service_period_end"), delta=-micro),
            ]
        )
        .sort("subscription_id", "at")
        .with_columns(level=pl.col("delta").cum_sum())
    )
    last_at = ~(_same_subscription(-1) & (pl.col("at").shift(-1) == pl.col("at")).fill_null(False))
    spans = (
        events.filter(last_at)
        .with_columns(end=pl.when(_same_subscription(-1)).then(pl.col("at").shift(-1)))
        .filter(pl.col("end").is_not_null())
        .select(
            "subscription_id", pl.col("at").alias("start"), "end", (pl.col("level") / 10**MRR_DECIMALS).alias("mrr")
        )
    )
    if settings.churn_recorded_at == "cancellation_date" and not data.subscriptions.is_empty():
        cancel = data.subscriptions.select("subscription_id", "cancelled_at").filter(
            pl.col("cancelled_at").is_not_null()
        )
        spans = (
            spans.join(cancel, on="subscription_id", how="left", maintain_order="left")
            .with_columns(end=pl.min_horizontal("end", pl.col("cancelled_at").fill_null(pl.col("end"))))
            .filter(pl.col("start") < pl.col("end"))
            .drop("cancelled_at")
        )
    aside = _aside("negative_mrr", "line_items", spans.filter(pl.col("mrr") <= -HALF_CENT), "subscription_id")
    spans = (
        spans.filter(pl.col("mrr") >= HALF_CENT)  # less is rounding left by prorations, not revenue
        .with_columns(start_date=pl.col("start").dt.date(), end_date=pl.col("end").dt.date())
        .filter(pl.col("start_date") < pl.col("end_date"))
    )
    # what a span is of: the latest-started charge (positive line) covering its start
    charges = (
        lines.filter(pl.col("mrr") > 0)
        .select(
            "subscription_id",
            "customer_id",
            pl.col("service_period_start").alias("start"),
            "plan_name",
            "plan_id",
            pl.col("quantity").alias("seats"),
            "currency",
            pl.col("service_period_end").alias("charge_end"),
        )
        .sort("subscription_id", "start", "charge_end")
    )
    spans = (
        spans.join_asof(charges, on="start", by="subscription_id", strategy="backward", check_sortedness=False)
        .with_columns(plan=pl.coalesce("plan_name", "plan_id"))
        .drop("plan_name", "plan_id", "charge_end")
    )
    # adjacent spans of the same value, plan, seats and currency are one piece (spans are in subscription order)
    same = ["mrr", "plan", "seats", "currency"]
    continues = (
        _same_subscription(1)
        & (pl.col("start_date") == pl.col("end_date").shift(1)).fill_null(False)
        & ~pl.any_horizontal(*[pl.col(c).ne_missing(pl.col(c).shift(1)) for c in same])
    )
    pieces = (
        spans.with_columns(piece=(~continues).cum_sum())
        .group_by("piece", maintain_order=True)
        .agg(
            pl.col("subscription_id").first(),
            pl.col("customer_id").first(),
            pl.col("start_date").first(),
            pl.col("end_date").last(),
            *[pl.col(c).first() for c in same],
        )
    )
    return pieces, aside


def _contract_subscriptions(pieces: pl.DataFrame) -> pl.DataFrame:
    """Contract subscriptions: one row per piece; the first piece keeps the billing id, later ones get `<id>~<n>`."""
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    first = pl.when(~_same_subscription(1)).then(index).forward_fill()
    rank = index - first + 1  # pieces are in subscription and start order
    return (
        pieces.with_columns(rank=rank)
        .select(
            pl.when(pl.col("rank") == 1)
            .then(pl.col("subscription_id"))
            .otherwise(pl.format("{}~{}", pl.col("subscription_id"), pl.col("rank")))
            .alias("subscription_id"),
            pl.col("customer_id").alias("account_id"),
            "start_date",
            "end_date",
            pl.col("mrr").alias("amount"),
            pl.lit(1, dtype=pl.Int64).alias("billing_period_months"),
            "currency",
            pl.when(pl.col("seats") > 0).then(pl.col("seats").cast(pl.Int64)).alias("seats"),  # 0: not seats
            pl.lit(0.0).alias("discount_pct"),
            "plan",
            pl.col("subscription_id").alias("billing_subscription_id"),
        )
        .sort("account_id", "start_date", "subscription_id")
    )


def _segments(customers: pl.DataFrame, pieces: pl.DataFrame, settings: BillingSettings) -> pl.Series:
    """Each customer's segment: its own column, else its metadata key, else the first matching rule, else the default."""
    rule = settings.segment
    seg = pl.col("segment")
    if rule.metadata_key:
        seg = pl.coalesce(seg, pl.col("metadata").str.json_path_match(f"$.{rule.metadata_key}"))
    top = (
        pieces.group_by("customer_id").agg(pl.col("mrr").max().alias("top_mrr"), pl.col("plan").unique().alias("plans"))
        if not pieces.is_empty()
        else pl.DataFrame(schema={"customer_id": pl.String, "top_mrr": pl.Float64, "plans": pl.List(pl.String)})
    )
    frame = customers.join(top, on="customer_id", how="left").with_columns(pl.col("top_mrr").fill_null(0.0))
    by_rule = pl.lit(None, dtype=pl.String)
    for r in reversed(rule.rules):
        match = pl.col("top_mrr") >= r.min_mrr
        if r.plans:
            match = match & pl.col("plans").list.set_intersection(list(r.plans)).list.len().fill_null(0).gt(0)
        by_rule = pl.when(match).then(pl.lit(r.segment)).otherwise(by_rule)
    return frame.select(pl.coalesce(seg, by_rule, pl.lit(rule.default)).alias("segment")).get_column("segment")


def _contract_accounts(data: BillingData, pieces: pl.DataFrame, settings: BillingSettings) -> pl.DataFrame:
    """Contract accounts from the customers (the domain from the customer's e-mail, none for a public mailbox)."""
    from .accounts import domain_of

    c = data.customers
    return (
        c.select(
            pl.col("customer_id").alias("account_id"),
            pl.col("name").alias("account_name"),
            "created_at",
            "region",
            "industry",
            "acquisition_channel",
            domain_of(pl.col("email")).alias("domain"),
        )
        .with_columns(segment=_segments(c, pieces, settings))
        .sort("account_id")
    )


def _contract_invoices(
    data: BillingData, subs: pl.DataFrame, settings: BillingSettings
) -> tuple[pl.DataFrame, list[SetAside]]:
    """Contract invoices: issued, due, total charged, paid, the subscription piece billed; void, draft and credit-only left out."""
    aside: list[SetAside] = []
    charge = pl.col("subscription_id").is_not_null() & (pl.col("amount") > 0)
    per_invoice = data.line_items.group_by("invoice_id").agg(  # one pass: the total, and the first subscription charged
        (pl.col("amount") - pl.col("discount_amount") + pl.col("tax_amount")).sum().round(2).alias("total"),
        pl.col("subscription_id")
        .sort_by("service_period_start", "line_id")
        .filter(charge.sort_by("service_period_start", "line_id"))
        .first(),
        pl.col("service_period_start").filter(charge).min().dt.date().alias("on"),
    )
    inv = data.invoices.join(per_invoice.select("invoice_id", "total"), on="invoice_id", how="left").with_columns(
        pl.col("total").fill_null(0.0)
    )
    for status in ("void", "draft"):
        aside += _aside(f"{status}_invoice", "invoices", inv.filter(pl.col("status") == status), "invoice_id")
    inv = inv.filter(~pl.col("status").is_in(["void", "draft"]))
    aside += _aside("credit_invoice", "invoices", inv.filter(pl.col("total") <= 0), "invoice_id")
    inv = inv.filter(pl.col("total") > 0)
    first_line = per_invoice.filter(pl.col("subscription_id").is_not_null()).select(
        "invoice_id", "subscription_id", "on"
    )
    piece = subs.select("subscription_id", "billing_subscription_id", "start_date").sort("start_date")
    billed = first_line.sort("on").join_asof(
        piece,
        left_on="on",
        right_on="start_date",
        by_left="subscription_id",
        by_right="billing_subscription_id",
        strategy="backward",
        suffix="_piece",
        check_sortedness=False,
    )
    first_piece = piece.group_by("billing_subscription_id").agg(
        pl.col("subscription_id").sort_by("start_date").first().alias("first_piece")
    )
    billed = billed.join(first_piece, left_on="subscription_id", right_on="billing_subscription_id", how="left").select(
        "invoice_id", pl.coalesce("subscription_id_piece", "first_piece").alias("piece_id")
    )
    issued = pl.col("issued_at").dt.date()
    out = (
        inv.join(billed, on="invoice_id", how="left")
        .select(
            "invoice_id",
            pl.col("customer_id").alias("account_id"),
            issued.alias("issued_at"),
            pl.coalesce(pl.col("due_at").dt.date(), issued + pl.duration(days=settings.due_days)).alias("due_date"),
            pl.col("total").alias("amount"),
            pl.col("paid_at").dt.date().alias("paid_at"),
            pl.col("piece_id").alias("subscription_id"),
            "currency",
        )
        .with_columns(due_date=pl.max_horizontal("due_date", "issued_at"))
        .sort("issued_at", "invoice_id")
    )
    return out, aside


def to_contract(data: BillingData, settings: BillingSettings | None = None) -> ImportResult:
    """The contract's `accounts`, `subscriptions` (piecewise-constant MRR, one row per piece) and `invoices` from
    billing data, with the rows set aside and why. `settings` default to parameters/billing.yaml's defaults."""
    settings = settings or BillingSettings()
    lines, aside = _recognised_lines(data, settings)
    lines = _line_mrr(lines, data.plans, settings)
    no_plan = pl.col("mrr").is_null()
    aside += _aside("no_plan", "line_items", lines.filter(no_plan), "line_id")
    lines = lines.filter(~no_plan)
    zero = pl.col("mrr").round(MRR_DECIMALS) == 0
    aside += _aside("no_mrr", "line_items", lines.filter(zero), "line_id")
    pieces, more = _pieces(lines.filter(~zero), data, settings)
    aside += more
    subs = _contract_subscriptions(pieces)
    invoices, more = _contract_invoices(data, subs, settings)
    aside += more
    tables = {
        "accounts": _contract_accounts(data, pieces, settings),
        "subscriptions": subs.drop("billing_subscription_id"),
        "invoices": invoices,
    }
    merged: dict[tuple[str, str], SetAside] = {}
    for a in aside:  # one entry per reason and table
        old = merged.get((a.reason, a.table))
        merged[(a.reason, a.table)] = (
            a
            if old is None
            else SetAside(a.reason, a.table, old.count + a.count, (old.examples + a.examples)[:EXAMPLES], a.meaning)
        )
    return ImportResult(tables, tuple(merged.values()), settings.applied())
