"""Property tests: for random subscription books the MRR bridge balances and matches an independent count,
and every proportion stays within 0-1."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from conftest import write_source
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saaskpi.errors import ParameterError
from saaskpi.metrics import METRICS
from saaskpi.workbook import open_workbook

START = dt.date(2024, 1, 1)
subscription = st.tuples(
    st.integers(0, 5),  # account
    st.integers(0, 300),  # start, days after START
    st.one_of(st.none(), st.integers(1, 300)),  # length in days, None = open
    st.sampled_from([0.0, 10.0, 99.99, 1200.0]),  # amount
    st.sampled_from([1, 12]),  # billing period
    st.sampled_from([0.0, 0.5]),  # discount
)


def independent_mrr(subs: list[tuple], month_ends: list[dt.date]) -> list[float]:
    """MRR at each month end counted the slow, obvious way."""
    out = []
    for end in month_ends:
        total = 0.0
        for _, start, length, amount, period, discount in subs:
            s = START + dt.timedelta(days=start)
            e = None if length is None else s + dt.timedelta(days=length)
            if s <= end and (e is None or e > end):
                total += amount / period * (1 - discount)
        out.append(total)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(subscription, min_size=1, max_size=12))
def test_bridge_balances_and_matches_independent_count(tmp_path_factory, subs):
    accounts = "account_id,segment,created_at\n" + "\n".join(f"A{i},smb,2024-01-01T00:00:00Z" for i in range(6))
    accounts += "\nZ,smb,2025-03-31T12:00:00Z"  # created without a subscription: the data runs to 2025-03-31
    rows = ["subscription_id,account_id,start_date,end_date,amount,billing_period_months,discount_pct"]
    for i, (acc, start, length, amount, period, discount) in enumerate(subs):
        s = START + dt.timedelta(days=start)
        e = "" if length is None else (s + dt.timedelta(days=length)).isoformat()
        rows.append(f"S{i},A{acc},{s.isoformat()},{e},{amount},{period},{discount}")
    src = write_source(tmp_path_factory.mktemp("prop"), {"accounts": accounts, "subscriptions": "\n".join(rows)})
    month_ends = [(t + pd.offsets.MonthEnd(0)).date() for t in pd.date_range("2024-01", "2025-03", freq="MS")]
    if not any(independent_mrr(subs, month_ends)):  # nobody ever pays: no month has numbers, and it says so
        with pytest.raises(ParameterError, match="no complete month with a paying customer"):
            open_workbook(str(src), "all", "2025-03", interactive=False)
        return
    wb = open_workbook(str(src), "all", "2025-03", interactive=False)
    m = wb.table("mrr_movements")
    rebuilt = m.mrr_start + m.new + m.reactivation + m.expansion - m.contraction - m.churn
    assert (rebuilt - m.mrr_end).abs().max() < 1e-6
    month_ends = [(t + pd.offsets.MonthEnd(0)).date() for t in m.month]
    # account MRR is rounded to MRR_DECIMALS (6): each of the (at most 6) accounts may be off by 0.5e-6
    assert m.mrr_end.tolist() == pytest.approx(independent_mrr(subs, month_ends), abs=6 * 0.5e-6 + 1e-9)
    churn = wb.series("customer_churn_rate").value.dropna()
    assert ((churn >= 0) & (churn <= 1)).all()
    frame = wb.metrics_frame()  # every registered proportion (a share of n) of the month is within 0-1
    shares = frame[frame.metric.map(lambda n: METRICS[n].proportion)].dropna(subset=["value"])
    assert ((shares.value >= 0) & (shares.value <= 1)).all(), shares


def test_a_book_where_nobody_pays(tmp_path):
    """Found by the test above: one free subscription left every paying-account table empty, and empty
    frames of the wrong column types broke spend allocation, lifecycle and health. Now every metric computes
    for a segment where nobody pays; a company where nobody pays has no month with numbers, and says so."""
    free = {
        "accounts": "account_id,segment,created_at\nA0,smb,2024-01-01T00:00:00Z\nZ,smb,2025-03-31T12:00:00Z",
        "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS0,A0,2024-01-01,,0.0",
    }
    with pytest.raises(ParameterError, match="no complete month with a paying customer"):
        open_workbook(str(write_source(tmp_path / "nobody", free)), "all", "2025-03", interactive=False)
    free["accounts"] += "\nE1,enterprise,2024-01-01T00:00:00Z"
    free["subscriptions"] += "\nS1,E1,2024-01-01,,1200.0"  # the enterprise customer pays; nobody in smb does
    src = write_source(tmp_path / "free", free)
    wb = open_workbook(str(src), "smb", "2025-03", interactive=False)
    frame = wb.metrics_frame().set_index("metric")
    assert frame.loc["monthly_recurring_revenue", "value"] == 0 and frame.loc["paying_accounts", "value"] == 0
    assert pd.isna(frame.loc["average_revenue_per_account", "value"])  # 0 MRR / 0 accounts: n/a, not 0
    assert frame.loc["average_health_score", "n"] == 0 and wb.table("account_health").empty
