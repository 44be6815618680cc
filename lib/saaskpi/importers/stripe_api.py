"""Stripe API objects as warehouse loaders land them (Fivetran, Airbyte, dlt, Stitch): one table per object,
nested fields as JSON text, Structs or flattened columns (`period.start`, `period__start`, `period_start`),
references as `customer` or `customer_id`, amounts in the currency's minor unit (cents; yen for JPY),
times as Unix seconds or ISO text. Both invoice-line-item shapes are read: the older one (`type`,
`subscription`, `proration`, `plan`/`price`) and the one with `parent.*_details` and `pricing.price_details`
(API 2025-03-31 and later)."""

from __future__ import annotations

import json

import polars as pl

from saaskpi.importers.stripe_billing import StripeImport, StripeRecords, billing_data, empty_records, records_frame
from saaskpi.importers.stripe_common import (
    ROW,
    Problems,
    StripeExportError,
    amounts,
    array_sum,
    booleans,
    coalesce_columns,
    currencies,
    currency_of_invoices,
    divisor_expr,
    first_present,
    flattened,
    invoice_statuses,
    json_column,
    metadata_text,
    number_of,
    present,
    times,
    whole_numbers,
)

OBJECTS: dict[str, tuple[str, ...]] = {
    "customer": ("customer", "customers"),
    "subscription": ("subscription", "subscriptions", "subscription_history"),
    "subscription_item": ("subscription_item", "subscription_items"),
    "invoice": ("invoice", "invoices"),
    "invoice_line_item": ("invoice_line_item", "invoice_line_items", "invoice_lines", "line_item", "line_items"),
    "price": ("price", "prices"),
    "plan": ("plan", "plans"),
    "product": ("product", "products"),
    "coupon": ("coupon", "coupons"),
    "discount": ("discount", "discounts"),
    "credit_note": ("credit_note", "credit_notes"),
    "refund": ("refund", "refunds"),
    "charge": ("charge", "charges"),
}
"""Each Stripe object and the table names loaders give it (matched without case or a `stripe_` prefix)."""

REQUIRED_OBJECTS = ("customer", "invoice", "invoice_line_item")

REQUIRED_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "customer": (("id",), ("created",)),
    "invoice": (("id",), ("customer", "customer_id", "customer.id"), ("created", "date"), ("currency",), ("status",)),
    "invoice_line_item": (("id",), ("invoice", "invoice_id"), ("amount",)),
}
"""Fields each object must have, each as its accepted column names."""


def _plain_name(table_name: str) -> str:
    name = table_name.lower().removesuffix(".csv")
    for prefix in ("stripe_", "stripe."):
        name = name.removeprefix(prefix)
    return name


SIGNATURES: dict[str, tuple[str, ...]] = {
    "customer": ("email", "name", "delinquent", "balance", "invoice_prefix", "default_source", "tax_exempt"),
    "subscription": (
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "canceled_at",
        "billing_cycle_anchor",
        "items",
        "trial_end",
    ),
    "invoice": (
        "amount_due",
        "amount_paid",
        "amount_remaining",
        "billing_reason",
        "hosted_invoice_url",
        "number",
        "status_transitions",
        "subtotal",
    ),
    "invoice_line_item": (
        "period",
        "period.start",
        "period_start",
        "proration",
        "parent.type",
        "pricing.type",
        "discount_amounts",
        "tax_amounts",
        "taxes",
        "invoice_item",
    ),
    "price": ("unit_amount", "recurring.interval", "recurring_interval", "billing_scheme", "lookup_key"),
    "refund": ("charge", "payment_intent", "reason", "receipt_number", "failure_reason"),
}
"""Fields that only one object has, to say what a table given as another object looks like."""


def object_of(table_name: str) -> str | None:
    """The Stripe object a loader's table holds (`STRIPE_INVOICE_LINE_ITEMS` -> `invoice_line_item`)."""
    name = _plain_name(table_name)
    return next((obj for obj, names in OBJECTS.items() if name in names), None)


CHILD_LINKS = (
    ("_dlt_parent_id", "_dlt_id", "_dlt_list_idx"),  # dlt: child -> parent row, list position
    ("_sdc_source_key_id", "id", "_sdc_level_0_id"),
)  # Stitch: child -> parent id, list position
"""How loaders that split arrays into child tables (`invoice_line_items__discount_amounts`) link them back."""


def with_child_tables(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The tables with each array child table (dlt, Stitch: `<object table>__<field>` with a link column to its
    parent row) folded back into its parent as a list column `<field>` (`discount_amounts`, `tax_amounts`)."""
    out = dict(tables)
    for name, frame in tables.items():
        parent_name, sep, field = _plain_name(name).partition("__")
        link = next((lk for lk in CHILD_LINKS if lk[0] in frame.columns), None)
        if not sep or link is None or object_of(parent_name) is None:
            continue
        parent = next((n for n in out if "__" not in _plain_name(n) and object_of(n) == object_of(parent_name)), None)
        child_key, parent_key, order = link
        if parent is None or parent_key not in out[parent].columns:
            continue
        fields = [c for c in frame.columns if not c.startswith(("_dlt_", "_sdc_", ROW))]
        ordered = frame.sort(order) if order in frame.columns else frame
        lists = ordered.group_by(child_key, maintain_order=True).agg(pl.struct(fields).alias(field.replace("__", ".")))
        out[parent] = out[parent].join(lists.rename({child_key: parent_key}), on=parent_key, how="left")
        del out[name]
    return out


def stripe_billing_from_tables(
    tables: dict[str, pl.DataFrame],
    source: str = "the Stripe tables",
    files: dict[str, str] | None = None,
    problems: Problems | None = None,
) -> StripeImport:
    """The billing model of Stripe's objects given as one DataFrame per object table (keys: loader table names
    such as `invoice_line_items` or `INVOICE_LINE_ITEM`), e.g. read from a folder or a Postgres schema.
    Raises StripeExportError with every problem found."""
    problems = problems if problems is not None else Problems()
    tables = with_child_tables(tables)
    by_object: dict[str, pl.DataFrame] = {}
    names: dict[str, str] = {}
    for table_name, frame in tables.items():
        obj = object_of(table_name)
        if obj is None:
            continue
        if obj in by_object:
            problems.add(
                f"{obj}.duplicate_table",
                table_name,
                None,
                f"two tables hold Stripe {obj} objects: {names[obj]} and {table_name}",
            )
            continue
        if ROW not in frame.columns:
            frame = frame.with_columns(pl.format("row {}", pl.int_range(1, pl.len() + 1)).alias(ROW))
        by_object[obj] = _live(flattened(frame))
        names[obj] = (files or {}).get(table_name, table_name)
    for obj in REQUIRED_OBJECTS:
        if obj not in by_object:
            problems.add(
                f"{obj}.missing_table",
                obj,
                None,
                f"no table of Stripe {obj} objects in {source} (expected a table named "
                f"{' or '.join(OBJECTS[obj][:2])})",
            )
    for obj, fields in REQUIRED_FIELDS.items():
        if obj in by_object:
            _require(by_object[obj], names[obj], obj, fields, problems)
    if problems:
        raise StripeExportError(problems.found, source)
    rec = _records(by_object, names, problems)
    rec.files_read = tuple((names[obj], f"Stripe {obj} objects", frame.height) for obj, frame in by_object.items())
    return billing_data(rec, problems, source)


def _live(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows loaders keep for deleted objects or past versions left out (Fivetran `is_deleted`, `_fivetran_active`)."""
    if "_fivetran_active" in frame.columns:
        frame = frame.filter(booleans(frame["_fivetran_active"]).fill_null(True))
    for flag in ("is_deleted", "deleted", "_fivetran_deleted"):
        if flag in frame.columns:
            frame = frame.filter(~booleans(frame[flag]).fill_null(False))
    return frame


def _require(frame: pl.DataFrame, table: str, obj: str, fields, problems: Problems) -> None:
    missing = [alts for alts in fields if first_present(frame, *alts) is None]
    if not missing:
        return
    wanted = ", ".join(" or ".join(f"`{a}`" for a in alts) for alts in missing)
    scores = {o: sum(f in frame.columns for f in sig) for o, sig in SIGNATURES.items() if o != obj}
    other = max(scores, key=lambda kind: scores[kind])
    if scores[other] >= 2 and scores[other] > sum(f in frame.columns for f in SIGNATURES.get(obj, ())):
        seen = ", ".join(f for f in SIGNATURES[other] if f in frame.columns)
        problems.add(
            f"{obj}.wrong_file",
            table,
            None,
            f"was given as Stripe {obj} objects but looks like Stripe {other} objects (it has {seen}); "
            f"{obj} objects need {', '.join(' or '.join(f'`{a}`' for a in alts) for alts in fields)}",
        )
        return
    found = ", ".join(c for c in frame.columns if c != ROW)[:300]
    problems.add(
        f"{obj}.missing_column", table, missing[0][0], f"Stripe {obj} objects need {wanted}; columns found: {found}"
    )


# --------------------------------------------------------------------------- per object
def _records(t: dict[str, pl.DataFrame], names: dict[str, str], problems: Problems) -> StripeRecords:
    invoices = _invoices(t["invoice"], names["invoice"], problems)
    currency_of = currency_of_invoices(invoices)
    rec = StripeRecords(
        customers=_customers(t["customer"], names["customer"], problems),
        invoices=invoices,
        lines=_lines(t, names, currency_of, problems),
        files={"customers": names["customer"], "invoices": names["invoice"], "lines": names["invoice_line_item"]},
    )
    rec.lines = _invoice_level_amounts(rec.lines, t, currency_of, problems, names)
    line = t["invoice_line_item"]
    rec.headers = {
        "customers": {"customer_id": "id"},
        "invoices": {"invoice_id": "id"},
        "subscriptions": {"subscription_id": "id"},
        "refunds": {"refund_id": "id"},
        "credit_notes": {"credit_note_id": "id"},
        "lines": {
            "line_id": "id",
            "invoice_id": first_present(line, "invoice", "invoice_id") or "invoice",
            "plan_id": first_present(
                line, "pricing.price_details.price", "price.id", "price", "price_id", "plan.id", "plan", "plan_id"
            )
            or "price",
        },
    }
    if "subscription" in t:
        rec.subscriptions = _subscriptions(t["subscription"], names["subscription"], problems)
        rec.files["subscriptions"] = names["subscription"]
    rec.plans = _plans(t)
    rec.files["plans"] = names.get("price") or names.get("plan") or names["invoice_line_item"]
    if "refund" in t:
        rec.refunds = _refunds(t["refund"], names["refund"], t.get("charge"), problems)
        rec.files["refunds"] = names["refund"]
    if "credit_note" in t:
        rec.credit_notes = _credit_notes(t["credit_note"], names["credit_note"], currency_of, problems)
        rec.files["credit_notes"] = names["credit_note"]
    return rec


def _invoice_level_amounts(
    lines: pl.DataFrame,
    t: dict[str, pl.DataFrame],
    currency_of: dict[str, str],
    problems: Problems,
    names: dict[str, str],
) -> pl.DataFrame:
    """Discounts and tax that a loader keeps per invoice only (Fivetran: a `discount` table with `invoice_id` and
    `amount`, the invoice's `tax`), spread over the invoice's charged lines in proportion to their amounts, when the
    line items carry none of their own (`discount_amounts`, `tax_amounts`, `taxes`)."""
    own = t["invoice_line_item"].columns
    charged = pl.col("amount").clip(lower_bound=0)
    share = charged / charged.sum().over("invoice_id")
    if "discount_amounts" not in own and "discount" in t:
        d = t["discount"]
        invoice = _ids(d, "invoice", "invoice_id", "invoice.id")
        if invoice.null_count() < d.height and "amount" in d.columns:
            cents = _minor(d, names.get("discount", "discount"), "discount", problems, "amount")
            currency = invoice.replace_strict(currency_of, default=None, return_dtype=pl.String)
            off = cents / _divisors(currency)
            total = pl.DataFrame({"invoice_id": invoice, "off": off, "duration": _coupon_durations(d, t)}).drop_nulls(
                ["invoice_id", "off"]
            )
            total = total.group_by("invoice_id").agg(pl.col("off").sum(), pl.col("duration").drop_nulls().first())
            lines = (
                lines.join(total, on="invoice_id", how="left")
                .with_columns(
                    (share * pl.col("off")).fill_nan(0).fill_null(0).alias("discount_amount"),
                    pl.when(pl.col("off") > 0).then(pl.col("duration")).alias("discount_duration"),
                )
                .drop("off", "duration")
            )
    if not {"tax_amounts", "taxes"} & set(own) and "tax" in t["invoice"].columns:
        inv = t["invoice"]
        invoice = _ids(inv, "id")
        currency = invoice.replace_strict(currency_of, default=None, return_dtype=pl.String)
        tax = _minor(inv, names["invoice"], "invoice", problems, "tax") / _divisors(currency)
        lines = (
            lines.join(
                pl.DataFrame({"invoice_id": invoice, "invoice_tax": tax}).drop_nulls(), on="invoice_id", how="left"
            )
            .with_columns((share * pl.col("invoice_tax")).fill_nan(0).fill_null(0).alias("tax_amount"))
            .drop("invoice_tax")
        )
    return lines


def _coupon_durations(discounts: pl.DataFrame, t: dict[str, pl.DataFrame]) -> pl.Series:
    """Each discount's coupon duration (from the discount's own coupon object or the coupon table)."""
    coupons = {}
    if "coupon" in t:
        c = t["coupon"]
        coupons = dict(zip(_ids(c, "id").to_list(), _ids(c, "duration").to_list()))
    coupon = _ids(discounts, "coupon.id", "coupon", "coupon_id")
    inline = _ids(discounts, "coupon.duration")
    return inline.fill_null(coupon.replace_strict(coupons, default=None, return_dtype=pl.String))


def _time(frame: pl.DataFrame, table: str, obj: str, problems: Problems, *names: str) -> pl.Series:
    """The first of `names` as UTC date-times; unreadable values reported."""
    return times(frame, table, obj, problems, names, "values are not Unix seconds or ISO date-times")


def _minor(frame: pl.DataFrame, table: str, obj: str, problems: Problems, column: str | None) -> pl.Series:
    """A minor-unit amount column as numbers; values that are not whole numbers reported."""
    if column is None or column not in frame.columns:
        return pl.Series([None] * frame.height, dtype=pl.Float64)
    looks = "values are not whole amounts in the currency's minor unit (cents)"
    # at most 1,000 minor units to the unit, in any currency
    return amounts(frame, table, obj, problems, column, whole_numbers(frame[column]), looks, divisor=1000.0)


def _currency(frame: pl.DataFrame, table: str, obj: str, problems: Problems, column: str = "currency") -> pl.Series:
    return currencies(frame, table, obj, problems, column)


def _divisors(currency: pl.Series) -> pl.Series:
    """Per row, the minor units in one unit of the row's currency (100 for USD, 1 for JPY)."""
    return pl.select(divisor_expr(pl.lit(currency))).to_series() if currency.len() else pl.Series([], dtype=pl.Float64)


def _ids(frame: pl.DataFrame, *names: str) -> pl.Series:
    return coalesce_columns(frame, *names)


def _customers(frame: pl.DataFrame, table: str, problems: Problems) -> pl.DataFrame:
    created = _time(frame, table, "customer", problems, "created")
    present(frame, table, "customer", problems, "created", created, "customers without a creation time")
    return records_frame(
        "customers",
        {
            "customer_id": _ids(frame, "id"),
            "name": _ids(frame, "name", "description"),
            "email": _ids(frame, "email"),
            "created_at": created,
            "metadata": metadata_text(frame),
        },
        frame[ROW],
    )


def _invoices(frame: pl.DataFrame, table: str, problems: Problems) -> pl.DataFrame:
    currency = _currency(frame, table, "invoice", problems)
    status = invoice_statuses(frame, table, "invoice", problems, "status")
    issued = _time(frame, table, "invoice", problems, "created", "date")
    divisor = _divisors(currency)
    paid = _minor(frame, table, "invoice", problems, first_present(frame, "amount_paid"))
    return records_frame(
        "invoices",
        {
            "invoice_id": _ids(frame, "id"),
            "customer_id": _ids(frame, "customer", "customer_id", "customer.id"),
            "issued_at": issued,
            "due_at": _time(frame, table, "invoice", problems, "due_date"),
            "currency": currency,
            "status": status,
            "paid_at": _time(
                frame, table, "invoice", problems, "status_transitions.paid_at", "status_transitions_paid_at", "paid_at"
            ),
            "amount_paid": paid / divisor,
            "charge_id": _ids(frame, "charge", "charge_id", "charge.id"),
            "payment_intent_id": _ids(frame, "payment_intent", "payment_intent_id", "payment_intent.id"),
            "customer_name": _ids(frame, "customer_name"),
            "customer_email": _ids(frame, "customer_email"),
        },
        frame[ROW],
    )


def _lines(
    t: dict[str, pl.DataFrame], names: dict[str, str], currency_of: dict[str, str], problems: Problems
) -> pl.DataFrame:
    frame, table, obj = t["invoice_line_item"], names["invoice_line_item"], "invoice_line_item"
    invoice = _ids(frame, "invoice", "invoice_id")
    own = _currency(frame, table, obj, problems) if "currency" in frame.columns else None
    currency = invoice.replace_strict(currency_of, default=None, return_dtype=pl.String)
    if own is not None:
        currency = own.fill_null(currency)
    divisor = _divisors(currency)
    amount = _minor(frame, table, obj, problems, "amount")
    excluding = _minor(frame, table, obj, problems, first_present(frame, "amount_excluding_tax"))
    tax_total, tax_inclusive = _taxes(frame, table, problems)
    discounts = _discount_amounts(frame, table, problems)
    before_tax = excluding.fill_null(amount - tax_inclusive)
    subscription = _ids(
        frame,
        "parent.subscription_item_details.subscription",
        "parent.invoice_item_details.subscription",
        "subscription",
        "subscription_id",
        "subscription.id",
    )
    item = _ids(
        frame,
        "parent.subscription_item_details.subscription_item",
        "subscription_item",
        "subscription_item_id",
        "subscription_item.id",
    )
    if "subscription_item" in t:
        items = flattened(t["subscription_item"])
        owner = dict(
            zip(
                _ids(items, "id").to_list(), _ids(items, "subscription", "subscription_id", "subscription.id").to_list()
            )
        )
        subscription = subscription.fill_null(item.replace_strict(owner, default=None, return_dtype=pl.String))
    prorated = coalesce_columns(
        frame,
        "parent.subscription_item_details.proration",
        "parent.invoice_item_details.proration",
        "proration",
        dtype=pl.String,
    )
    quantity = whole_numbers(frame["quantity"]) if "quantity" in frame.columns else None
    return records_frame(
        "lines",
        {
            "line_id": _ids(frame, "id"),
            "invoice_id": invoice,
            "subscription_id": subscription,
            "plan_id": _ids(
                frame, "pricing.price_details.price", "price.id", "price", "price_id", "plan.id", "plan", "plan_id"
            ),
            "service_period_start": _time(frame, table, obj, problems, "period.start", "period_start"),
            "service_period_end": _time(frame, table, obj, problems, "period.end", "period_end"),
            "amount": before_tax / divisor,
            "discount_amount": discounts.fill_null(0) / divisor,
            "discount_duration": _discount_durations(frame, t),
            "tax_amount": tax_total.fill_null(0) / divisor,
            **({"quantity": quantity} if quantity is not None else {}),
            "prorated": booleans(prorated).fill_null(False),
            "description": _ids(frame, "description"),
        },
        frame[ROW],
    )


def _taxes(frame: pl.DataFrame, table: str, problems: Problems) -> tuple[pl.Series, pl.Series]:
    """Per line, all tax and the tax included in `amount` (minor units), from `taxes` (tax_behavior) or
    the older `tax_amounts` (inclusive)."""
    zero = pl.Series([0.0] * frame.height)
    column = first_present(frame, "taxes", "tax_amounts")
    if column is None:
        return zero, zero
    total = array_sum(frame[column])
    if column == "taxes":
        inclusive = array_sum(frame[column], keep=("tax_behavior", "inclusive"))
    else:
        inclusive = array_sum(frame[column], keep=("inclusive", True))
    problems.rows(
        "invoice_line_item.unparseable",
        table,
        column,
        "values are not arrays of {amount, ...} objects",
        frame,
        total.is_null() & frame[column].is_not_null(),
    )
    return total.fill_null(0), inclusive.fill_null(0)


def _discount_amounts(frame: pl.DataFrame, table: str, problems: Problems) -> pl.Series:
    if "discount_amounts" not in frame.columns:
        return pl.Series([0.0] * frame.height)
    total = array_sum(frame["discount_amounts"])
    problems.rows(
        "invoice_line_item.unparseable",
        table,
        "discount_amounts",
        "values are not arrays of {amount, discount} objects",
        frame,
        total.is_null() & frame["discount_amounts"].is_not_null(),
    )
    return total


def _discount_durations(frame: pl.DataFrame, t: dict[str, pl.DataFrame]) -> pl.Series:
    """The coupon duration (forever, once, repeating) of the first discount applied to each line, found
    through the discount and coupon tables; null when the line has no discount or they are not exported."""
    if "discount_amounts" not in frame.columns:
        return pl.Series([None] * frame.height, dtype=pl.String)
    duration_of = {}
    if "discount" in t:
        d = t["discount"]
        duration_of = dict(zip(_ids(d, "id").to_list(), _coupon_durations(d, t).to_list()))
    column = frame["discount_amounts"]
    lists = json_column(column) if column.dtype == pl.String else column
    first = _first_discount(lists) if lists is not None else None
    if first is None:
        first = pl.Series([_first_discount_of_row(v) for v in column.to_list()], dtype=pl.String)
    return first.replace_strict(duration_of, default=None, return_dtype=pl.String)


def _first_discount(lists: pl.Series) -> pl.Series | None:
    """Per line, the id of the first discount with an amount above 0 (Polars over a List of Structs)."""
    dtype = lists.dtype
    if isinstance(dtype, pl.List) and dtype.inner == pl.Null:
        return pl.Series([None] * lists.len(), dtype=pl.String)
    if not (isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)):
        return None
    fields = {f.name: f.dtype for f in dtype.inner.fields}
    if "amount" not in fields or "discount" not in fields:
        return None
    el = pl.element()
    chosen = el.filter(el.struct.field("amount").cast(pl.Float64, strict=False) > 0)
    picked = lists.list.eval(chosen.struct.field("discount")).list.first()
    if isinstance(fields["discount"], pl.Struct):
        picked = picked.struct.field("id")
    return picked.cast(pl.String)


def _first_discount_of_row(value) -> str | None:
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    first = next((i for i in items if isinstance(i, dict) and (number_of(i.get("amount")) or 0) > 0), None)
    ref = first.get("discount") if first else None
    ref = ref.get("id") if isinstance(ref, dict) else ref
    return ref if isinstance(ref, str) else None


def _plans(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Prices and plans (tables, or objects embedded in the line items) with their billing interval."""
    products = {}
    if "product" in t:
        p = flattened(t["product"])
        products = dict(zip(_ids(p, "id").to_list(), _ids(p, "name").to_list()))
    frames = []

    def add(frame: pl.DataFrame, prefix: str, interval: tuple[str, ...], count: tuple[str, ...]) -> None:
        pid = _ids(frame, f"{prefix}id")
        if pid.null_count() == frame.height:
            return
        product = _ids(frame, f"{prefix}product", f"{prefix}product_id", f"{prefix}product.id")
        name = product.replace_strict(products, default=None, return_dtype=pl.String)
        frames.append(
            pl.DataFrame(
                {
                    "plan_id": pid,
                    "name": name.fill_null(_ids(frame, f"{prefix}nickname")),
                    "interval_unit": _ids(frame, *interval).str.to_lowercase(),
                    "interval_count": whole_numbers(coalesce_columns(frame, *count)).cast(pl.Int64),
                }
            )
        )

    if "price" in t:
        add(
            flattened(t["price"]),
            "",
            ("recurring.interval", "recurring_interval"),
            ("recurring.interval_count", "recurring_interval_count"),
        )
    if "plan" in t:
        add(flattened(t["plan"]), "", ("interval",), ("interval_count",))
    lines = t["invoice_line_item"]
    for prefix in ("price.", "plan."):
        if f"{prefix}id" in lines.columns:
            add(
                lines,
                prefix,
                (f"{prefix}recurring.interval", f"{prefix}recurring_interval", f"{prefix}interval"),
                (f"{prefix}recurring.interval_count", f"{prefix}recurring_interval_count", f"{prefix}interval_count"),
            )
    if not frames:
        return empty_records("plans")
    plans = pl.concat(frames).filter(pl.col("plan_id").is_not_null())
    return plans.with_columns(pl.lit(None, pl.String).alias(ROW))


def _subscriptions(frame: pl.DataFrame, table: str, problems: Problems) -> pl.DataFrame:
    return records_frame(
        "subscriptions",
        {
            "subscription_id": _ids(frame, "id"),
            "customer_id": _ids(frame, "customer", "customer_id", "customer.id"),
            "cancelled_at": _time(frame, table, "subscription", problems, "canceled_at"),
            "cancel_at_period_end": booleans(coalesce_columns(frame, "cancel_at_period_end")),
            "ended_at": _time(frame, table, "subscription", problems, "ended_at"),
        },
        frame[ROW],
    )


def _refunds(frame: pl.DataFrame, table: str, charges: pl.DataFrame | None, problems: Problems) -> pl.DataFrame:
    currency = _currency(frame, table, "refund", problems)
    divisor = _divisors(currency)
    charge = _ids(frame, "charge", "charge_id", "charge.id")
    invoice = _ids(frame, "invoice", "invoice_id")
    if charges is not None:
        c = flattened(charges)
        invoice_of = dict(zip(_ids(c, "id").to_list(), _ids(c, "invoice", "invoice_id", "invoice.id").to_list()))
        invoice = invoice.fill_null(charge.replace_strict(invoice_of, default=None, return_dtype=pl.String))
    return records_frame(
        "refunds",
        {
            "refund_id": _ids(frame, "id"),
            "invoice_id": invoice,
            "charge_id": charge,
            "payment_intent_id": _ids(frame, "payment_intent", "payment_intent_id", "payment_intent.id"),
            "date": _time(frame, table, "refund", problems, "created"),
            "amount": _minor(frame, table, "refund", problems, "amount") / divisor,
            "status": coalesce_columns(frame, "status").str.to_lowercase(),
        },
        frame[ROW],
    )


def _credit_notes(frame: pl.DataFrame, table: str, currency_of: dict[str, str], problems: Problems) -> pl.DataFrame:
    invoice = _ids(frame, "invoice", "invoice_id", "invoice.id")
    currency = (
        _currency(frame, table, "credit_note", problems)
        if "currency" in frame.columns
        else invoice.replace_strict(currency_of, default=None, return_dtype=pl.String)
    )
    divisor = _divisors(currency)
    return records_frame(
        "credit_notes",
        {
            "credit_note_id": _ids(frame, "id"),
            "invoice_id": invoice,
            "date": _time(frame, table, "credit_note", problems, "created"),
            "amount": _minor(frame, table, "credit_note", problems, first_present(frame, "total", "amount")) / divisor,
            "status": coalesce_columns(frame, "status").str.to_lowercase(),
            "refund_id": _ids(frame, "refund", "refund_id", "refund.id"),
        },
        frame[ROW],
    )


__all__ = ["OBJECTS", "object_of", "stripe_billing_from_tables", "with_child_tables"]
