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
    "customers": {"customer_id": pl.String, "name": pl.String, "email": pl.String, "created_at": UTC,
                  "segment": pl.String, "region": pl.String, "industry": pl.String,
                  "acquisition_channel": pl.String, "metadata": pl.String},
    "plans": {"plan_id": pl.String, "name": pl.String, "interval_unit": pl.String, "interval_count": pl.Int64},
    "invoices": {"invoice_id": pl.String, "customer_id": pl.String, "issued_at": UTC, "due_at": UTC,
                 "currency": pl.String, "status": pl.String, "paid_at": UTC},
    "line_items": {"line_id": pl.String, "invoice_id": pl.String, "type": pl.String, "subscription_id": pl.String,
                   "plan_id": pl.String, "service_period_start": UTC, "service_period_end": UTC,
                   "amount": pl.Float64, "discount_amount": pl.Float64, "discount_duration": pl.String,
                   "tax_amount": pl.Float64, "quantity": pl.Int64, "prorated": pl.Boolean, "description": pl.String},
    "transactions": {"transaction_id": pl.String, "invoice_id": pl.String, "type": pl.String, "result": pl.String,
                     "date": UTC, "amount": pl.Float64},
    "subscriptions": {"subscription_id": pl.String, "customer_id": pl.String, "cancelled_at": UTC,
                      "cancel_at_period_end": pl.Boolean},
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

IDS: dict[str, str] = {"customers": "customer_id", "plans": "plan_id", "invoices": "invoice_id",
                       "line_items": "line_id", "transactions": "transaction_id", "subscriptions": "subscription_id"}
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
    def empty(cls) -> "BillingData":
        """The six tables with their schemas and no rows."""
        return cls(**{name: pl.DataFrame(schema=schema) for name, schema in SCHEMAS.items()})

    @classmethod
    def of(cls, **tables: pl.DataFrame) -> "BillingData":
        """BillingData from the tables given (any subset), each conformed to its schema; the others empty."""
        unknown = set(tables) - set(SCHEMAS)
        if unknown:
            raise TypeError(f"unknown billing table(s): {', '.join(sorted(unknown))}")
        return cls(**{name: conform(name, tables[name]) if name in tables else pl.DataFrame(schema=schema)
                      for name, schema in SCHEMAS.items()})

    def tables(self) -> dict[str, pl.DataFrame]:
        """The six tables by name, in schema order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
