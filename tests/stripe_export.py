"""Billing data written out as Stripe holds it, for the round-trip tests of the Stripe importer:

- `api_tables(data, shape)`: one DataFrame per Stripe object (customer, subscription, invoice,
  invoice_line_item, price, discount, coupon, refund), nested objects as Structs, amounts in the currency's
  minor unit (cents; yen for JPY), times in Unix seconds; invoice line items in the older shape
  (`type`, `subscription`, `proration`, `price`, `tax_amounts`) or the newer one (`parent.*_details`,
  `pricing.price_details`, `taxes`);
- `write_api_folder(data, folder, shape, fmt)`: those tables as a loader lands them (Parquet with Structs,
  or CSV with JSON text);
- `write_dashboard(data, folder)`: the Dashboard CSV exports (unified_customers, subscriptions, invoices,
  invoice_line_items, payments) in major units and `YYYY-MM-DD HH:MM:SS` UTC.

The customer's segment, region, industry and channel travel as metadata (Stripe has no such fields).
Stripe keeps whole minor units: amounts are rounded to the cent on the way (a prorated credit of
-51.6129 becomes -5161 cents), as Stripe itself rounds them.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from saaskpi.importers.billing import BillingData
from saaskpi.importers.stripe_common import minor_unit_divisor

SHAPES = ("older", "parent_details")


def _cents(amount: float | None, currency: str) -> int:
    return 0 if amount is None else int(round(amount * minor_unit_divisor(currency)))


def _secs(moment) -> int | None:
    return None if moment is None else int(moment.timestamp())


def _metadata(row: dict) -> dict:
    meta = json.loads(row["metadata"]) if row.get("metadata") else {}
    for key in ("segment", "region", "industry", "acquisition_channel"):
        if row.get(key) is not None:
            meta[key] = row[key]
    return meta


def _currency_of(data: BillingData) -> dict[str, str]:
    return dict(data.invoices.select("invoice_id", "currency").iter_rows())


def _charge(invoice_id: str) -> str:
    return f"ch_{invoice_id}"


def api_tables(data: BillingData, shape: str = "older") -> dict[str, pl.DataFrame]:
    """Stripe's objects for `data`, one DataFrame per object table."""
    if shape not in SHAPES:
        raise ValueError(f"shape is one of {SHAPES}")
    currency = _currency_of(data)
    customers = [
        {
            "id": r["customer_id"],
            "object": "customer",
            "name": r["name"],
            "email": r["email"],
            "created": _secs(r["created_at"]),
            "metadata": json.dumps(_metadata(r)),
        }
        for r in data.customers.iter_rows(named=True)
    ]
    paid_amount = _paid(data)
    invoices = [
        {
            "id": r["invoice_id"],
            "object": "invoice",
            "customer": r["customer_id"],
            "created": _secs(r["issued_at"]),
            "due_date": _secs(r["due_at"]),
            "currency": r["currency"].lower(),
            "status": "open" if r["status"] == "past_due" else r["status"],
            "amount_paid": _cents(paid_amount.get(r["invoice_id"], 0.0), r["currency"]),
            "charge": _charge(r["invoice_id"]) if r["status"] == "paid" else None,
            "status_transitions": {"paid_at": _secs(r["paid_at"]), "finalized_at": _secs(r["issued_at"])},
        }
        for r in data.invoices.iter_rows(named=True)
    ]
    issued = dict(data.invoices.select("invoice_id", "issued_at").iter_rows())
    lines, discounts = [], []
    for r in data.line_items.iter_rows(named=True):
        cur = currency[r["invoice_id"]]
        line = _older_line(r, cur, issued[r["invoice_id"]])
        if r["discount_amount"]:
            discount_id = f"di_{r['line_id']}"
            line["discount_amounts"] = [{"amount": _cents(r["discount_amount"], cur), "discount": discount_id}]
            discounts.append(
                {
                    "id": discount_id,
                    "object": "discount",
                    "coupon": {"id": f"co_{r['discount_duration'] or 'unknown'}", "duration": r["discount_duration"]},
                }
            )
        lines.append(line if shape == "older" else newer_line(line))
    prices = [
        {
            "id": r["plan_id"],
            "object": "price",
            "nickname": r["name"],
            "type": "recurring",
            "recurring": {"interval": r["interval_unit"], "interval_count": r["interval_count"]},
        }
        for r in data.plans.iter_rows(named=True)
    ]
    subs = [
        {
            "id": r["subscription_id"],
            "object": "subscription",
            "customer": r["customer_id"],
            "canceled_at": _secs(r["cancelled_at"]),
            "cancel_at_period_end": r["cancel_at_period_end"],
        }
        for r in data.subscriptions.iter_rows(named=True)
    ]
    refunds = [
        {
            "id": r["transaction_id"],
            "object": "refund",
            "charge": _charge(r["invoice_id"]),
            "amount": _cents(r["amount"], currency[r["invoice_id"]]),
            "currency": currency[r["invoice_id"]].lower(),
            "created": _secs(r["date"]),
            "status": "succeeded" if r["result"] == "successful" else "failed",
        }
        for r in data.transactions.filter(pl.col("type") == "refund").iter_rows(named=True)
    ]
    out = {
        "customer": customers,
        "invoice": invoices,
        "invoice_line_item": lines,
        "price": prices,
        "subscription": subs,
        "discount": discounts,
        "refund": refunds,
    }
    return {name: pl.DataFrame(rows, infer_schema_length=None) for name, rows in out.items() if rows}


def _paid(data: BillingData) -> dict[str, float]:
    pay = data.transactions.filter((pl.col("type") == "payment") & (pl.col("result") == "successful"))
    return dict(pay.group_by("invoice_id").agg(pl.col("amount").sum()).iter_rows())


def _older_line(r: dict, currency: str, issued) -> dict:
    recurring = r["type"] == "subscription"
    start = r["service_period_start"] if recurring else issued
    end = r["service_period_end"] if recurring else issued
    return {
        "id": r["line_id"],
        "object": "line_item",
        "invoice": r["invoice_id"],
        "type": "subscription" if recurring and not r["prorated"] else "invoiceitem",
        "subscription": r["subscription_id"],
        "subscription_item": f"si_{r['subscription_id']}" if recurring else None,
        "proration": bool(r["prorated"]),
        "price": {"id": r["plan_id"]},
        "quantity": r["quantity"],
        "period": {"start": _secs(start), "end": _secs(end)},
        "amount": _cents(r["amount"], currency),
        "currency": currency.lower(),
        "description": r["description"],
        "discount_amounts": [],
        "tax_amounts": [{"amount": _cents(r["tax_amount"], currency), "inclusive": False}] if r["tax_amount"] else [],
    }


def newer_line(line: dict) -> dict:
    """An older-shape line in the shape of API 2025-03-31 and later (parent, pricing, taxes)."""
    out = {
        k: v
        for k, v in line.items()
        if k not in ("type", "subscription", "subscription_item", "proration", "price", "tax_amounts")
    }
    if line["type"] == "subscription":
        out["parent"] = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "subscription": line["subscription"],
                "subscription_item": line["subscription_item"],
                "proration": line["proration"],
                "invoice_item": None,
            },
        }
    else:
        out["parent"] = {
            "type": "invoice_item_details",
            "subscription_item_details": None,
            "invoice_item_details": {
                "invoice_item": f"ii_{line['id']}",
                "subscription": line["subscription"],
                "proration": line["proration"],
            },
        }
    out["pricing"] = {"type": "price_details", "price_details": {"price": line["price"]["id"], "product": None}}
    out["taxes"] = [
        {"amount": t["amount"], "tax_behavior": "inclusive" if t["inclusive"] else "exclusive"}
        for t in line["tax_amounts"]
    ]
    return out


def write_api_folder(data: BillingData, folder: Path, shape: str = "older", fmt: str = "parquet") -> Path:
    """Stripe's object tables as files (`invoice_line_item.parquet`, or CSV with nested objects as JSON text)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in api_tables(data, shape).items():
        if fmt == "parquet":
            frame.write_parquet(folder / f"{name}.parquet")
        else:
            nested = [c for c, t in frame.schema.items() if isinstance(t, (pl.Struct, pl.List))]
            frame.with_columns([pl.col(c).map_elements(_json_text, return_dtype=pl.String) for c in nested]).write_csv(
                folder / f"{name}s.csv"
            )
    return folder


def _json_text(value) -> str:
    return json.dumps(value.to_list() if isinstance(value, pl.Series) else value)


# --------------------------------------------------------------------------- Dashboard CSV exports
def _when(moment) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _major(amount: float | None, currency: str) -> str:
    digits = {1: 0, 100: 2, 1000: 3}[minor_unit_divisor(currency)]
    return f"{_cents(amount, currency) / minor_unit_divisor(currency):.{digits}f}"


def write_dashboard(data: BillingData, folder: Path) -> Path:
    """The Dashboard's CSV exports of `data` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    currency = _currency_of(data)
    rows = [r for r in data.customers.iter_rows(named=True)]
    keys = sorted({k for r in rows for k in _metadata(r)})
    pl.DataFrame(
        [
            {
                "id": r["customer_id"],
                "Description": None,
                "Email": r["email"],
                "Name": r["name"],
                "Created (UTC)": _when(r["created_at"]),
                **{f"{k} (metadata)": _metadata(r).get(k) for k in keys},
            }
            for r in rows
        ],
        infer_schema_length=None,
    ).write_csv(folder / "unified_customers.csv")
    subs = [
        {
            "id": r["subscription_id"],
            "Customer ID": r["customer_id"],
            "Status": "active",
            "Canceled At (UTC)": _when(r["cancelled_at"]),
            "Cancel At Period End": None
            if r["cancel_at_period_end"] is None
            else str(r["cancel_at_period_end"]).lower(),
            "Current Period Start (UTC)": None,
            "Current Period End (UTC)": None,
            "Ended At (UTC)": None,
        }
        for r in data.subscriptions.iter_rows(named=True)
    ]
    if subs:
        pl.DataFrame(subs, infer_schema_length=None).write_csv(folder / "subscriptions.csv")
    paid = _paid(data)
    pl.DataFrame(
        [
            {
                "id": r["invoice_id"],
                "Customer": r["customer_id"],
                "Currency": r["currency"].lower(),
                "Status": "open" if r["status"] == "past_due" else r["status"],
                "Date (UTC)": _when(r["issued_at"]),
                "Due Date (UTC)": _when(r["due_at"]),
                "Paid At (UTC)": _when(r["paid_at"]),
                "Amount Paid": _major(paid.get(r["invoice_id"], 0.0), r["currency"]),
                "Charge": _charge(r["invoice_id"]) if r["status"] == "paid" else None,
            }
            for r in data.invoices.iter_rows(named=True)
        ],
        infer_schema_length=None,
    ).write_csv(folder / "invoices.csv")
    plans = {r["plan_id"]: r for r in data.plans.iter_rows(named=True)}
    issued = dict(data.invoices.select("invoice_id", "issued_at").iter_rows())
    lines = []
    for r in data.line_items.iter_rows(named=True):
        cur, recurring = currency[r["invoice_id"]], r["type"] == "subscription"
        plan = plans.get(r["plan_id"], {})
        lines.append(
            {
                "id": r["line_id"],
                "Invoice ID": r["invoice_id"],
                "Amount": _major(r["amount"], cur),
                "Currency": cur.lower(),
                "Description": r["description"],
                "Period Start (UTC)": _when(r["service_period_start"] if recurring else issued[r["invoice_id"]]),
                "Period End (UTC)": _when(r["service_period_end"] if recurring else issued[r["invoice_id"]]),
                "Proration": str(bool(r["prorated"])).lower(),
                "Quantity": r["quantity"],
                "Subscription": r["subscription_id"] if recurring else None,
                "Price ID": r["plan_id"],
                "Interval": plan.get("interval_unit"),
                "Interval Count": plan.get("interval_count"),
                "Product Name": plan.get("name"),
                "Tax Amount": _major(r["tax_amount"], cur),
                "Discount Amount": _major(r["discount_amount"], cur),
                "Coupon Duration": r["discount_duration"],
            }
        )
    pl.DataFrame(lines, infer_schema_length=None).write_csv(folder / "invoice_line_items.csv")
    refunds = data.transactions.filter((pl.col("type") == "refund") & (pl.col("result") == "successful"))
    if refunds.height:
        pl.DataFrame(
            [
                {
                    "id": _charge(r["invoice_id"]),
                    "Invoice ID": r["invoice_id"],
                    "Amount Refunded": _major(r["amount"], currency[r["invoice_id"]]),
                    "Currency": currency[r["invoice_id"]].lower(),
                    "Status": "Paid",
                    "Refunded date (UTC)": _when(r["date"]),
                    "Captured": "true",
                }
                for r in refunds.iter_rows(named=True)
            ]
        ).write_csv(folder / "unified_payments.csv")
    return folder
