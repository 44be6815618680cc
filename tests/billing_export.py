"""The demo company written out as a billing system would hold it (`demo_billing`), for the round-trip tests.

Each demo subscription is billed period by period (one invoice per period), so that re-imported with the default
settings (parameters/billing.yaml) its MRR equals the demo's own at every month end:

- monthly, annual and multi-year plans as in the demo; the monthly plans of every fourth account (A00004,
  A00008, ...) are billed quarterly at three times the monthly price;
- a demo subscription that follows another of the same account on the day it ends (same billing period and
  currency, and billed for a full period after the one in which it starts) is a plan change of one billing
  subscription: a prorated credit for the unused time of the old plan and a prorated charge for the new one;
- a subscription that ends mid-period is cancelled then with a prorated credit for the unused time;
- the demo's discount is a forever coupon (`discount_amount` = price x discount, not rounded to the cent, so
  that MRR equals the demo's to the cent: the demo's discounts are percentages);
- EUR and GBP invoices carry 20 % VAT (tax, left out of MRR); enterprise accounts pay a one-off set-up fee;
- accounts that signed up at least 7 days before their first subscription had a free trial ($0 line) until it;
- every 97th invoice is refunded in full (default setting `refunds: ignore`); every 53rd is past due and every
  89th uncollectible (default `past_due: keep`), with a failed payment attempt; the others are paid.

Customers carry their segment in `metadata` (`{"segment": "smb"}`), not in the `segment` column, so the
default segment setting (`metadata_key: segment`) reads it. `demo_accounts(folder, n)` picks a deterministic
subset of the demo for fast tests.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from saaskpi.importers.billing import BillingData

AS_OF = date(2026, 10, 31)  # the demo's last day: open subscriptions are invoiced up to the period containing it
VAT = {"EUR": 0.20, "GBP": 0.20}
INTERVAL = {1: ("month", 1), 3: ("month", 3), 12: ("year", 1), 24: ("year", 2), 36: ("year", 3)}
SETUP_FEE = 500.0
TRIAL_MIN_DAYS = 7


def demo_tables(folder: Path, accounts: int | None = None) -> dict[str, pl.DataFrame]:
    """The demo's accounts, subscriptions and fx_rates (typed), restricted to every n-th account when `accounts`
    (a count) is given, always keeping the accounts the round trip needs (annual, quarterly, monthly, upgrades)."""
    acc = pl.read_csv(folder / "accounts.csv", try_parse_dates=True)
    subs = pl.read_csv(
        folder / "subscriptions.csv",
        try_parse_dates=True,
        schema_overrides={"end_date": pl.Date, "start_date": pl.Date},
    )
    if accounts is not None and accounts < acc.height:
        step = acc.height // accounts
        keep = acc.get_column("account_id").gather_every(step).head(accounts)
        acc = acc.filter(pl.col("account_id").is_in(keep.implode()))
        subs = subs.filter(pl.col("account_id").is_in(keep.implode()))
    return {
        "accounts": acc,
        "subscriptions": subs,
        "fx_rates": pl.read_csv(folder / "fx_rates.csv", try_parse_dates=True),
    }


def add_months(day: date, months: int) -> date:
    """`day` moved by `months` calendar months, clamped to the month's last day (Jan 31 + 1 month = Feb 28)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass
class _Writer:
    """Accumulates the billing rows, numbering invoices, lines and transactions in the order they are made."""

    invoices: list
    lines: list
    transactions: list

    def invoice(self, customer: str, issued: date, currency: str, lines: list[dict]) -> str:
        n = len(self.invoices) + 1
        invoice_id = f"in_{n:07d}"
        status = "uncollectible" if n % 89 == 0 else "past_due" if n % 53 == 0 else "paid"
        total = sum(ln["amount"] - ln.get("discount_amount", 0.0) + ln.get("tax_amount", 0.0) for ln in lines)
        paid = issued + timedelta(days=n % 17) if status == "paid" else None
        self.invoices.append(
            {
                "invoice_id": invoice_id,
                "customer_id": customer,
                "issued_at": utc(issued),
                "due_at": utc(issued + timedelta(days=30)),
                "currency": currency,
                "status": status,
                "paid_at": utc(paid) if paid else None,
            }
        )
        for ln in lines:
            self.lines.append({"line_id": f"li_{len(self.lines) + 1:08d}", "invoice_id": invoice_id, **ln})
        if total > 0:
            ok = status == "paid"
            self.transactions.append(
                {
                    "transaction_id": f"tr_{len(self.transactions) + 1:08d}",
                    "invoice_id": invoice_id,
                    "type": "payment",
                    "result": "successful" if ok else "failed",
                    "date": utc(paid if ok else issued),
                    "amount": round(total, 2),
                }
            )
            if ok and n % 97 == 0:
                self.transactions.append(
                    {
                        "transaction_id": f"tr_{len(self.transactions) + 1:08d}",
                        "invoice_id": invoice_id,
                        "type": "refund",
                        "result": "successful",
                        "date": utc(paid + timedelta(days=3)),
                        "amount": round(total, 2),
                    }
                )
        return invoice_id


def _line(sub: dict, plan_id: str, start: date, end: date, price: float, fraction: float = 1.0) -> dict:
    """A subscription line for `sub` over [start, end): the full price, or a prorated share of it (negative: a credit)."""
    discount = price * sub["discount_pct"]
    prorated = fraction != 1.0
    if prorated:  # a proration charges (or credits) the discounted price, rounded to the cent
        amount, discount = round((price - discount) * fraction, 2), 0.0
    else:
        amount, discount = price, round(discount, 6)
    tax = round((amount - discount) * VAT.get(sub["currency"], 0.0), 2)
    return {
        "type": "subscription",
        "subscription_id": sub["billing_id"],
        "plan_id": plan_id,
        "service_period_start": utc(start),
        "service_period_end": utc(end),
        "amount": amount,
        "discount_amount": discount,
        "discount_duration": "forever" if discount > 0 else None,
        "tax_amount": tax,
        "quantity": sub["seats"],
        "prorated": prorated,
        "description": None,
    }


def _chains(subs: list[dict], months_of, as_of: date) -> list[list[dict]]:
    """The account's subscriptions grouped into billing subscriptions: a plan change continues a chain."""
    chains: list[list[dict]] = []
    for sub in sorted(subs, key=lambda s: (s["start_date"], s["subscription_id"])):
        for chain in chains:
            tail, head = chain[-1], chain[0]
            months = months_of(head)
            if (
                tail["end_date"] == sub["start_date"]
                and tail["billing_period_months"] == sub["billing_period_months"]
                and tail["currency"] == sub["currency"]
            ):
                k = 0  # the period of the chain in which the change falls
                while add_months(head["start_date"], (k + 1) * months) <= sub["start_date"]:
                    k += 1
                period_end = add_months(head["start_date"], (k + 1) * months)
                if period_end <= as_of if sub["end_date"] is None else sub["end_date"] > period_end:
                    chain.append(sub)
                    break
        else:
            chains.append([sub])
    return chains


def _bill_chain(chain: list[dict], w: _Writer, months: int, plan_of, price_of, as_of: date) -> None:
    """One invoice per period of the billing subscription, with prorations at plan changes and at a mid-period end."""
    anchor, end = chain[0]["start_date"], chain[-1]["end_date"]
    customer, currency = chain[0]["account_id"], chain[0]["currency"]
    k = 0
    while True:
        start, stop = add_months(anchor, k * months), add_months(anchor, (k + 1) * months)
        if (end is not None and start >= end) or (end is None and start > as_of):
            break
        active = next(s for s in chain if s["start_date"] <= start and (s["end_date"] is None or s["end_date"] > start))
        lines = [_line(active, plan_of(active), start, stop, price_of(active))]
        if k == 0 and active["segment"] == "enterprise" and active is chain[0] and active["first_of_account"]:
            lines.append({"type": "one_time", "amount": SETUP_FEE, "tax_amount": 0.0, "description": "Set-up fee"})
        w.invoice(customer, start, currency, lines)
        length = (stop - start).days
        for old, new in zip(chain, chain[1:]):  # plan changes inside this period
            if start < new["start_date"] < stop:
                share = (stop - new["start_date"]).days / length
                w.invoice(
                    customer,
                    new["start_date"],
                    currency,
                    [
                        _line(old, plan_of(old), new["start_date"], stop, -price_of(old), share),
                        _line(new, plan_of(new), new["start_date"], stop, price_of(new), share),
                    ],
                )
        if end is not None and start < end < stop:  # cancelled mid-period: credit for the unused time
            last = chain[-1]
            w.invoice(
                customer,
                end,
                currency,
                [_line(last, plan_of(last), end, stop, -price_of(last), (stop - end).days / length)],
            )
        k += 1


def demo_billing(tables: dict[str, pl.DataFrame], as_of: date = AS_OF) -> BillingData:
    """The demo company's accounts and subscriptions as billing data (see the module docstring)."""
    accounts = tables["accounts"].sort("account_id")
    subs = (
        tables["subscriptions"]
        .join(accounts.select("account_id", "segment", "created_at"), on="account_id")
        .sort("account_id", "start_date", "subscription_id")
    )
    quarterly = {a for a in accounts["account_id"] if int(a[1:]) % 4 == 0}

    def months_of(s):
        return 3 if s["billing_period_months"] == 1 and s["account_id"] in quarterly else s["billing_period_months"]

    plan_of = lambda s: f"{s['plan']}-{months_of(s)}m"  # noqa: E731
    price_of = lambda s: s["amount"] * months_of(s) / s["billing_period_months"]  # noqa: E731
    w = _Writer([], [], [])
    billing_subs, plans = [], {}
    for (account_id,), group in subs.group_by("account_id", maintain_order=True):
        rows = group.to_dicts()
        first = min(r["start_date"] for r in rows)
        for r in rows:
            r["first_of_account"] = r["start_date"] == first
        for chain in _chains(rows, months_of, as_of):
            for s in chain:
                s["billing_id"] = chain[0]["subscription_id"]
                unit, count = INTERVAL[months_of(s)]
                plans[plan_of(s)] = {
                    "plan_id": plan_of(s),
                    "name": s["plan"],
                    "interval_unit": unit,
                    "interval_count": count,
                }
            head = chain[0]
            trial_start = head["created_at"].date()
            if head["first_of_account"] and (head["start_date"] - trial_start).days >= TRIAL_MIN_DAYS:
                trial = _line(head, plan_of(head), trial_start, head["start_date"], 0.0)
                w.invoice(account_id, trial_start, head["currency"], [trial])
            _bill_chain(chain, w, months_of(head), plan_of, price_of, as_of)
            end = chain[-1]["end_date"]
            billing_subs.append(
                {
                    "subscription_id": head["subscription_id"],
                    "customer_id": account_id,
                    "cancelled_at": utc(end) if end else None,
                    "cancel_at_period_end": False if end else None,
                }
            )
    customers = accounts.select(
        pl.col("account_id").alias("customer_id"),
        pl.col("account_name").alias("name"),
        (pl.lit("billing@") + pl.col("account_id").str.to_lowercase() + pl.lit(".example.com")).alias("email"),
        pl.col("created_at").cast(pl.Datetime("us", "UTC")),
        pl.lit(None, dtype=pl.String).alias("segment"),
        "region",
        "industry",
        "acquisition_channel",
        pl.col("segment").map_elements(lambda s: json.dumps({"segment": s}), return_dtype=pl.String).alias("metadata"),
    )
    return BillingData.of(
        customers=customers,
        plans=pl.DataFrame(sorted(plans.values(), key=lambda p: p["plan_id"])),
        invoices=pl.DataFrame(w.invoices),
        line_items=pl.DataFrame(w.lines, infer_schema_length=None),
        transactions=pl.DataFrame(w.transactions),
        subscriptions=pl.DataFrame(billing_subs),
    )


# ---------------------------------------------------------------------------------------------------------
# Comparing MRR movements of two sources (the round-trip tests of every importer use these)
# ---------------------------------------------------------------------------------------------------------

SEGMENTS = ("all", "smb", "mid_market", "enterprise")
MONTH = "2026-10"
CENT = 0.005  # equal to the cent


def write_revenue_source(folder: Path, tables: dict[str, pl.DataFrame]) -> Path:
    """The demo's (possibly restricted) accounts, subscriptions and fx_rates as a CSV source folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("accounts", "subscriptions", "fx_rates"):
        tables[name].write_csv(folder / f"{name}.csv")
    return folder


def mrr_movements(folder: Path, segment: str, month: str = ""):
    """`saaskpi table mrr_movements` of one segment of a source folder (pandas), months as the index; `month`
    empty: the last complete month of the data."""
    from saaskpi.workbook import open_workbook

    return open_workbook(str(folder), segment, month, interactive=False).table("mrr_movements").set_index("month")


def last_month(folder: Path) -> str:
    """The last complete month of a source folder (the default month of its pages)."""
    from saaskpi.workbook import open_workbook

    return open_workbook(str(folder), "all", "", interactive=False).month_label


def movement_differences(expected: Path, actual: Path, month: str = "") -> list[str]:
    """Every (segment, month, column) where the two sources' MRR movements differ by more than half a cent
    (or an account count differs); months one source lacks count as zero. Empty when they agree. Without a
    `month`, both sources must end with the same complete month (a subset of the demo may end before the
    demo's October), and every month up to it is compared."""
    if not month:
        month, theirs = last_month(expected), last_month(actual)
        if month != theirs:
            return [f"the data's last complete month differs: expected {month}, got {theirs}"]
    out = []
    for segment in SEGMENTS:
        a, b = mrr_movements(expected, segment, month), mrr_movements(actual, segment, month)
        months = a.index.union(b.index)
        a, b = a.reindex(months, fill_value=0), b.reindex(months, fill_value=0)
        for column in a.columns:
            gap = (a[column] - b[column]).abs()
            for when in gap[gap > CENT].index[:3]:
                out.append(f"{segment} {when:%Y-%m} {column}: expected {a.at[when, column]}, got {b.at[when, column]}")
    return out
