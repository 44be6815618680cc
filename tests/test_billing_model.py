"""The billing model -> contract conversion (ChartMogul's MRR from invoice line items), on literal invoices.

Every expectation is worked out by hand in a comment. Dates are UTC midnights; a service period's end is exclusive.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from saaskpi.errors import ParameterError
from saaskpi.importers.billing import BillingData, BillingSettings, billing_settings, to_contract


def t(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


PLANS = pl.DataFrame(
    {
        "plan_id": ["m", "q", "y", "w", "d", "m200"],
        "name": ["Monthly", "Quarterly", "Annual", "Weekly", "Daily", "Monthly 200"],
        "interval_unit": ["month", "month", "year", "week", "day", "month"],
        "interval_count": [1, 3, 1, 1, 1, 1],
    }
)


def billing(
    lines: list[dict],
    invoices: list[dict] | None = None,
    transactions: list[dict] | None = None,
    subscriptions: list[dict] | None = None,
    customers: list[dict] | None = None,
) -> BillingData:
    """Billing data with one customer C1 (unless given); each line's invoice is made (paid, USD, issued at its
    service start) unless listed in `invoices`."""
    lines = [{"type": "subscription", "subscription_id": "S1", "quantity": 1, "prorated": False, **ln} for ln in lines]
    given = {i["invoice_id"] for i in invoices or []}
    made = []
    for ln in lines:
        if ln["invoice_id"] not in given and ln["invoice_id"] not in {m["invoice_id"] for m in made}:
            made.append(
                {
                    "invoice_id": ln["invoice_id"],
                    "customer_id": "C1",
                    "issued_at": ln.get("service_period_start"),
                    "currency": "USD",
                    "status": "paid",
                    "paid_at": ln.get("service_period_start"),
                }
            )
    invoices = [{"customer_id": "C1", "currency": "USD", "status": "paid", **i} for i in invoices or []] + made
    customers = customers or [{"customer_id": "C1", "name": "One", "created_at": t("2025-01-01")}]
    frames = {
        "customers": pl.DataFrame(customers),
        "plans": PLANS,
        "invoices": pl.DataFrame(invoices),
        "line_items": pl.DataFrame(lines),
    }
    if transactions:
        frames["transactions"] = pl.DataFrame(transactions)
    if subscriptions:
        frames["subscriptions"] = pl.DataFrame(subscriptions)
    return BillingData.of(**frames)


def line(line_id, plan, start, end, amount, **more) -> dict:
    return {
        "line_id": line_id,
        "invoice_id": more.pop("invoice_id", f"I{line_id}"),
        "plan_id": plan,
        "service_period_start": t(start),
        "service_period_end": t(end),
        "amount": amount,
        **more,
    }


def pieces(data: BillingData, **settings) -> list[tuple]:
    """(start, end, MRR rounded to the cent) of each written subscription row."""
    subs = to_contract(data, BillingSettings(**settings)).tables["subscriptions"]
    return [
        (r["start_date"].isoformat(), r["end_date"].isoformat(), round(r["amount"], 2))
        for r in subs.iter_rows(named=True)
    ]


def test_annual_plan_is_a_twelfth_a_month():
    # $2,000 a year: 2000 / 12 = 166.666... -> $166.67 a month
    got = to_contract(billing([line("L1", "y", "2025-01-01", "2026-01-01", 2000.0)])).tables["subscriptions"]
    assert got["amount"][0] == pytest.approx(2000 / 12)
    assert round(got["amount"][0], 2) == 166.67
    assert got.row(0, named=True) | {"amount": 0} == {
        "subscription_id": "S1",
        "account_id": "C1",
        "start_date": date(2025, 1, 1),
        "end_date": date(2026, 1, 1),
        "amount": 0,
        "billing_period_months": 1,
        "currency": "USD",
        "seats": 1,
        "discount_pct": 0.0,
        "plan": "Annual",
    }


def test_quarterly_plan_is_a_third_a_month():
    # $90 for three months: 90 / 3 = $30 a month
    assert pieces(billing([line("L1", "q", "2025-01-01", "2025-04-01", 90.0)])) == [("2025-01-01", "2025-04-01", 30.0)]


def test_weekly_and_daily_intervals():
    # $10 a week: 10 * 52 / 12 = 43.33 a month; $1 a day: 1 * 365 / 12 = 30.42 a month
    assert pieces(billing([line("L1", "w", "2025-01-01", "2025-01-08", 10.0)])) == [("2025-01-01", "2025-01-08", 43.33)]
    assert pieces(billing([line("L1", "d", "2025-01-01", "2025-01-02", 1.0)])) == [("2025-01-01", "2025-01-02", 30.42)]


def test_consecutive_periods_are_one_row():
    # three monthly invoices of $100 with no gap: one row of $100 from Jan 1 to Apr 1
    data = billing(
        [
            line(f"L{i}", "m", s, e, 100.0)
            for i, (s, e) in enumerate(
                [("2025-01-01", "2025-02-01"), ("2025-02-01", "2025-03-01"), ("2025-03-01", "2025-04-01")]
            )
        ]
    )
    assert pieces(data) == [("2025-01-01", "2025-04-01", 100.0)]


UPGRADE = [
    line("L1", "m", "2025-01-01", "2025-02-01", 100.0),
    # upgrade on Jan 16 to the $200 plan: 16 of January's 31 days remain
    # credit for unused time: -100 * 16/31 = -51.61; charge for the new plan: 200 * 16/31 = 103.23
    line("L2", "m", "2025-01-16", "2025-02-01", -51.61, prorated=True, invoice_id="IUP"),
    line("L3", "m200", "2025-01-16", "2025-02-01", 103.23, prorated=True, invoice_id="IUP"),
    line("L4", "m200", "2025-02-01", "2025-03-01", 200.0),
]


def test_mid_month_upgrade_with_proration():
    # the credit scales to -51.61 * 31/16 = -99.999 and the charge to 103.23 * 31/16 = 200.008: each is the
    # regular charge of its plan to the cent, so MRR is $100 until Jan 16 and $200 from then on (expansion $100)
    got = to_contract(billing(UPGRADE)).tables["subscriptions"]
    assert [
        (r["subscription_id"], r["start_date"].isoformat(), r["end_date"].isoformat(), r["amount"], r["plan"])
        for r in got.iter_rows(named=True)
    ] == [
        ("S1", "2025-01-01", "2025-01-16", 100.0, "Monthly"),
        ("S1~2", "2025-01-16", "2025-03-01", 200.0, "Monthly 200"),
    ]


def test_prorated_line_without_a_regular_charge_is_scaled():
    # only the prorated charge of the $200 plan (the subscription ends on Feb 1):
    # 103.23 * 31 / 16 = 200.0081 a month for Jan 16 - Feb 1
    got = pieces(billing(UPGRADE[:3]))
    assert got[0] == ("2025-01-01", "2025-01-16", 100.0)
    assert got[1][:2] == ("2025-01-16", "2025-02-01") and got[1][2] == pytest.approx(200.01, abs=0.005)


def test_tax_is_left_out_of_mrr_but_in_the_invoice():
    # $100 + $20 tax: MRR 100; the contract invoice charges 120
    result = to_contract(billing([line("L1", "m", "2025-01-01", "2025-02-01", 100.0, tax_amount=20.0)]))
    assert result.tables["subscriptions"]["amount"].to_list() == [100.0]
    assert result.tables["invoices"]["amount"].to_list() == [120.0]


def test_discounts_under_each_setting():
    # $100 with a $20 coupon once: "all" -> 100 - 20 = 80; "forever_only" -> the list price 100
    once = billing([line("L1", "m", "2025-01-01", "2025-02-01", 100.0, discount_amount=20.0, discount_duration="once")])
    assert pieces(once) == [("2025-01-01", "2025-02-01", 80.0)]
    assert pieces(once, mrr_discounts="forever_only") == [("2025-01-01", "2025-02-01", 100.0)]
    forever = billing(
        [line("L1", "m", "2025-01-01", "2025-02-01", 100.0, discount_amount=20.0, discount_duration="forever")]
    )
    assert pieces(forever, mrr_discounts="forever_only") == [("2025-01-01", "2025-02-01", 80.0)]


def test_full_discount_has_no_mrr():
    # 100 % off: 100 - 100 = 0 -> no MRR, the line is set aside as no_mrr
    result = to_contract(
        billing(
            [line("L1", "m", "2025-01-01", "2025-02-01", 100.0, discount_amount=100.0, discount_duration="forever")]
        )
    )
    assert result.tables["subscriptions"].is_empty()
    assert {(a.reason, a.count) for a in result.set_aside} >= {("no_mrr", 1)}


def test_trial_then_paid():
    # a $0 trial Jan 1-15, then $50 a month from Jan 15: MRR starts on Jan 15
    data = billing(
        [line("L0", "m", "2025-01-01", "2025-01-15", 0.0), line("L1", "m", "2025-01-15", "2025-02-15", 50.0)]
    )
    assert pieces(data) == [("2025-01-15", "2025-02-15", 50.0)]


def test_one_time_lines_are_left_out():
    # a $500 set-up fee next to a $100 monthly line: MRR 100, the fee set aside as one_time; the invoice charges 600
    data = billing(
        [
            line("L1", "m", "2025-01-01", "2025-02-01", 100.0),
            {"line_id": "L2", "invoice_id": "IL1", "type": "one_time", "subscription_id": None, "amount": 500.0},
        ]
    )
    result = to_contract(data)
    assert result.tables["subscriptions"]["amount"].to_list() == [100.0]
    assert result.tables["invoices"]["amount"].to_list() == [600.0]
    assert ("one_time", 1, ("L2",)) in {(a.reason, a.count, a.examples) for a in result.set_aside}


REFUNDED = billing(
    [line("L1", "m", "2025-01-01", "2025-02-01", 100.0), line("L2", "m", "2025-02-01", "2025-03-01", 100.0)],
    transactions=[
        {
            "transaction_id": "T1",
            "invoice_id": "IL2",
            "type": "refund",
            "result": "successful",
            "date": t("2025-02-10"),
            "amount": 100.0,
        }
    ],
)


def test_refund_under_each_setting():
    # February's $100 invoice is refunded in full on Feb 10
    # ignore: MRR $100 Jan 1 - Mar 1; full_refund_removes_mrr: February adds nothing, MRR ends Feb 1
    assert pieces(REFUNDED) == [("2025-01-01", "2025-03-01", 100.0)]
    assert pieces(REFUNDED, refunds="full_refund_removes_mrr") == [("2025-01-01", "2025-02-01", 100.0)]


def test_partial_refund_keeps_mrr_under_each_setting():
    # $40 of $100 refunded: not a full refund, so MRR stays under both settings
    data = billing(
        [line("L1", "m", "2025-01-01", "2025-02-01", 100.0)],
        transactions=[
            {
                "transaction_id": "T1",
                "invoice_id": "IL1",
                "type": "refund",
                "result": "successful",
                "date": t("2025-01-10"),
                "amount": 40.0,
            }
        ],
    )
    assert pieces(data, refunds="full_refund_removes_mrr") == [("2025-01-01", "2025-02-01", 100.0)]


CANCELLED = billing(
    [line("L1", "m", "2025-01-01", "2025-02-01", 100.0), line("L2", "m", "2025-02-01", "2025-03-01", 100.0)],
    subscriptions=[
        {"subscription_id": "S1", "customer_id": "C1", "cancelled_at": t("2025-02-10"), "cancel_at_period_end": True}
    ],
)


def test_churn_date_under_each_setting():
    # cancelled on Feb 10, paid through Feb 28: period_end -> MRR until Mar 1 (churn in March);
    # cancellation_date -> MRR until Feb 10 (churn in February)
    assert pieces(CANCELLED) == [("2025-01-01", "2025-03-01", 100.0)]
    assert pieces(CANCELLED, churn_recorded_at="cancellation_date") == [("2025-01-01", "2025-02-10", 100.0)]


PAST_DUE = billing(
    [line("L1", "m", "2025-01-01", "2025-02-01", 100.0), line("L2", "m", "2025-02-01", "2025-03-01", 100.0)],
    invoices=[{"invoice_id": "IL2", "issued_at": t("2025-02-01"), "status": "past_due"}],
)


def test_past_due_under_each_setting():
    # February's invoice is past due: keep -> MRR until Mar 1; churn_after_days 14 -> until Feb 1 + 14 days = Feb 15
    assert pieces(PAST_DUE) == [("2025-01-01", "2025-03-01", 100.0)]
    assert pieces(PAST_DUE, past_due={"churn_after_days": 14}) == [("2025-01-01", "2025-02-15", 100.0)]


def test_recognise_on_issue_or_payment():
    # February's invoice is open (not paid): issue -> it counts; payment -> MRR ends Feb 1
    data = billing(
        [line("L1", "m", "2025-01-01", "2025-02-01", 100.0), line("L2", "m", "2025-02-01", "2025-03-01", 100.0)],
        invoices=[{"invoice_id": "IL2", "issued_at": t("2025-02-01"), "status": "open"}],
    )
    assert pieces(data) == [("2025-01-01", "2025-03-01", 100.0)]
    assert pieces(data, recognise_on="payment") == [("2025-01-01", "2025-02-01", 100.0)]


def test_quantity_becomes_seats_and_a_seat_change_is_a_new_row():
    # 5 seats at $10 = $50, then 8 seats at $10 = $80 from Feb 1: two rows, expansion of $30 in February
    data = billing(
        [
            line("L1", "m", "2025-01-01", "2025-02-01", 50.0, quantity=5),
            line("L2", "m", "2025-02-01", "2025-03-01", 80.0, quantity=8),
        ]
    )
    subs = to_contract(data).tables["subscriptions"]
    assert subs.select("subscription_id", "seats", "amount").rows() == [("S1", 5, 50.0), ("S1~2", 8, 80.0)]


def test_void_invoices_and_invoice_columns():
    # a void invoice adds nothing; the paid one becomes a contract invoice due 30 days after issue (no due date given)
    data = billing(
        [line("L1", "m", "2025-01-01", "2025-02-01", 100.0), line("L2", "m", "2025-02-01", "2025-03-01", 100.0)],
        invoices=[{"invoice_id": "IL2", "issued_at": t("2025-02-01"), "status": "void"}],
    )
    result = to_contract(data)
    assert pieces(data) == [("2025-01-01", "2025-02-01", 100.0)]
    assert result.tables["invoices"].rows(named=True) == [
        {
            "invoice_id": "IL1",
            "account_id": "C1",
            "issued_at": date(2025, 1, 1),
            "due_date": date(2025, 1, 31),
            "amount": 100.0,
            "paid_at": date(2025, 1, 1),
            "subscription_id": "S1",
            "currency": "USD",
        }
    ]
    assert {(a.reason, a.table) for a in result.set_aside} >= {
        ("void_invoice", "invoices"),
        ("void_invoice", "line_items"),
    }


def test_segment_from_column_metadata_rule_and_default():
    # C1 says enterprise itself; C2's metadata says mid_market; C3 pays 6,000 a month (rule min_mrr 5,000:
    # enterprise); C4 pays 10 (no rule: default smb)
    customers = [
        {"customer_id": "C1", "created_at": t("2025-01-01"), "segment": "enterprise"},
        {"customer_id": "C2", "created_at": t("2025-01-01"), "metadata": '{"segment": "mid_market"}'},
        {"customer_id": "C3", "created_at": t("2025-01-01")},
        {"customer_id": "C4", "created_at": t("2025-01-01")},
    ]
    lines = [
        line("L3", "m", "2025-01-01", "2025-02-01", 6000.0, subscription_id="S3", invoice_id="I3"),
        line("L4", "m", "2025-01-01", "2025-02-01", 10.0, subscription_id="S4", invoice_id="I4"),
    ]
    invoices = [
        {"invoice_id": "I3", "customer_id": "C3", "issued_at": t("2025-01-01")},
        {"invoice_id": "I4", "customer_id": "C4", "issued_at": t("2025-01-01")},
    ]
    accounts = to_contract(billing(lines, invoices=invoices, customers=customers), billing_settings()).tables[
        "accounts"
    ]
    assert accounts.select("account_id", "segment").rows() == [
        ("C1", "enterprise"),
        ("C2", "mid_market"),
        ("C3", "enterprise"),
        ("C4", "smb"),
    ]


def test_settings_are_validated_with_the_key_named(tmp_path):
    bad = tmp_path / "billing.yaml"
    bad.write_text("refunds: sometimes\npast_due: {churn_after: 3}\nrounding: up\n")
    with pytest.raises(ParameterError) as err:
        billing_settings(bad)
    text = str(err.value)
    assert "`refunds`" in text and "past_due.churn_after" in text and "`rounding`" in text
    assert billing_settings() == BillingSettings()  # the shipped file holds the documented defaults
