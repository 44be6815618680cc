"""Round trip: the demo company written out as billing data (tests/billing_export.py) and imported again gives
the demo's own MRR movements, in every month and segment, to the cent."""

from __future__ import annotations

import polars as pl
import pytest
from billing_export import demo_billing, demo_tables, movement_differences, write_revenue_source

from saaskpi import paths
from saaskpi.importers.billing import to_contract


@pytest.fixture(scope="session")
def demo_revenue(tmp_path_factory):
    """The demo's accounts, subscriptions and fx_rates, and the same company as billing data."""
    tables = demo_tables(paths.DEMO_DIR)
    folder = write_revenue_source(tmp_path_factory.mktemp("demo_revenue"), tables)
    return tables, folder, demo_billing(tables)


def test_the_export_has_every_billing_case(demo_revenue):
    _, _, billing = demo_revenue
    lines, plans = billing.line_items, billing.plans
    assert {(p["interval_unit"], p["interval_count"]) for p in plans.iter_rows(named=True)} >= {
        ("month", 1),
        ("month", 3),
        ("year", 1),
    }  # monthly, quarterly, annual
    assert lines.filter(pl.col("prorated") & (pl.col("amount") > 0)).height > 0  # upgrades: prorated charges ...
    assert lines.filter(pl.col("prorated") & (pl.col("amount") < 0)).height > 0  # ... and credits
    assert lines.filter(pl.col("discount_amount") > 0).height > 0  # coupons
    assert lines.filter(pl.col("tax_amount") > 0).height > 0  # tax
    assert lines.filter((pl.col("amount") == 0) & (pl.col("type") == "subscription")).height > 0  # trials
    assert lines.filter(pl.col("type") == "one_time").height > 0  # set-up fees
    assert billing.transactions.filter(pl.col("type") == "refund").height > 0  # refunds
    assert set(billing.invoices["status"]) >= {"paid", "past_due", "uncollectible"}


def test_billing_data_round_trip_equals_the_demo(demo_revenue, tmp_path):
    tables, expected, billing = demo_revenue
    result = to_contract(billing)
    for name, frame in result.tables.items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
    tables["fx_rates"].write_csv(tmp_path / "fx_rates.csv")
    assert movement_differences(expected, tmp_path) == []
