"""Round trip: ~150 demo accounts' funnel and sales data written out as HubSpot (export headers and API names) and
Salesforce exports (tests/crm_export.py), with the CRMs' own ids and the accounts joined half by the id map and
half by web domain, and imported again: the leads, opportunities and team equal the demo's (ids translated), and so
do the funnel and sales tables and KPIs the funnel page shows, for every segment."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
from crm_export import (
    demo_sample,
    hubspot_ids,
    salesforce_ids,
    write_accounts_settings,
    write_expected,
    write_hubspot,
    write_salesforce,
    write_settings,
)

from saaskpi.pages import funnel as page
from saaskpi.workbook import open_workbook

TABLES = (
    "funnel_by_month",
    "funnel_by_channel",
    "funnel_by_segment",
    "funnel_transitions",
    "pipeline_by_month",
    "sales_by_rep",
)
SEGMENTS = ("all", "smb", "mid_market", "enterprise")
SHAPES = ("hubspot-export", "hubspot-api", "salesforce")


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    """The sample, the demo restricted to it, and each CRM's import of it (run once per shape)."""
    from saaskpi import cli

    root = tmp_path_factory.mktemp("crm")
    sample = demo_sample()
    expected = write_expected(root / "expected", sample)
    base = write_expected(root / "base", sample)
    for name in ("leads", "opportunities", "team", "cs_touchpoints", "nps_responses"):
        (base / f"{name}.csv").unlink()
    accounts = write_accounts_settings(root, sample)
    imported = {}
    for shape in SHAPES:
        system = shape.split("-")[0]
        exports = (
            write_hubspot(root / shape, sample, shape.split("-")[1])
            if system == "hubspot"
            else write_salesforce(root / shape, sample)
        )
        out = root / f"out-{shape}"
        shutil.copytree(base, out)
        code = cli.main(
            [
                "import",
                system,
                str(exports),
                "--out",
                str(out),
                "--accounts",
                str(accounts),
                "--settings",
                str(write_settings(root, system, sample)),
            ]
        )
        assert code == 0, shape
        imported[shape] = out
    return sample, expected, imported


@pytest.fixture(scope="module")
def demo_workbooks(crm):
    """The demo restricted to the sample, one workbook per segment (opened once for the three shapes)."""
    _, expected, _ = crm
    return {segment: open_workbook(str(expected), segment, interactive=False) for segment in SEGMENTS}


def _demo_ids(frame: pl.DataFrame, ids: dict[str, dict[str, str]]) -> pl.DataFrame:
    back = {k: {v: d for d, v in m.items()} for k, m in ids.items()}
    cols = {"lead_id": "leads", "opportunity_id": "opportunities", "touchpoint_id": "touchpoints", "response_id": "nps"}
    return frame.with_columns(
        pl.col(c).replace_strict(back[t], default=None) for c, t in cols.items() if c in frame.columns
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_imported_tables_equal_the_demo(crm, demo_workbooks, shape):
    sample, _, imported = crm
    ids = hubspot_ids(sample) if shape.startswith("hubspot") else salesforce_ids(sample)
    for name, key in (("leads", "lead_id"), ("opportunities", "opportunity_id"), ("team", "member_id")):
        got = _demo_ids(pl.read_parquet(imported[shape] / f"{name}.parquet"), ids)
        want = demo_workbooks["all"].all_tables.frames[name]
        got = got.select(want.columns).sort(key)
        assert got.equals(want.sort(key)), (name, got.head(3), want.sort(key).head(3))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("segment", SEGMENTS)
def test_funnel_and_sales_tables_equal_the_demo(crm, demo_workbooks, shape, segment):
    _, _, imported = crm
    want = demo_workbooks[segment]
    got = open_workbook(str(imported[shape]), segment, interactive=False)
    assert got.month == want.month
    for name in TABLES:
        a, b = got.table(name), want.table(name)
        if name == "funnel_transitions":  # entity ids are the CRM's own
            a, b = a.drop(columns="entity"), b.drop(columns="entity")
            a, b = (t.sort_values(list(t.columns)).reset_index(drop=True) for t in (a, b))
        assert a.equals(b), (segment, name)
    names = want.available(page.TILES + page.SALES_TILES)
    assert names == got.available(page.TILES + page.SALES_TILES) and len(names) >= 10
    for name in names:
        assert got.series(name).equals(want.series(name)), (segment, name)


@pytest.mark.parametrize("shape", ["hubspot-api", "salesforce"])
@pytest.mark.parametrize("segment", SEGMENTS)
def test_activities_give_the_demo_touchpoints(crm, demo_workbooks, shape, segment):
    """HubSpot engagements, Salesforce Tasks and Events -> cs_touchpoints equal the demo's, and so do the
    customer-success measures built on them."""
    sample, _, imported = crm
    got_wb, want_wb = open_workbook(str(imported[shape]), segment, interactive=False), demo_workbooks[segment]
    if segment == "all":
        ids = hubspot_ids(sample) if shape.startswith("hubspot") else salesforce_ids(sample)
        got = _demo_ids(pl.read_parquet(imported[shape] / "cs_touchpoints.parquet"), ids)
        want = want_wb.all_tables.frames["cs_touchpoints"]
        assert got.select(want.columns).sort("touchpoint_id").equals(want.sort("touchpoint_id"))
    assert got_wb.table("sentiment_mix").equals(want_wb.table("sentiment_mix"))
    for name in ("touchpoints_per_account", "stakeholder_coverage", "positive_sentiment_share"):
        assert got_wb.series(name).equals(want_wb.series(name)), (segment, name)


@pytest.mark.parametrize("segment", SEGMENTS)
def test_hubspot_feedback_gives_the_demo_nps(crm, demo_workbooks, segment):
    """NPS feedback submissions -> nps_responses equal the demo's (the respondent is the e-mail: HubSpot does not
    know the product's user ids; a CSAT answer is not read), and so do the NPS and each account's NPS."""
    sample, _, imported = crm
    got_wb, want_wb = open_workbook(str(imported["hubspot-api"]), segment, interactive=False), demo_workbooks[segment]
    if segment == "all":
        got = _demo_ids(pl.read_parquet(imported["hubspot-api"] / "nps_responses.parquet"), hubspot_ids(sample))
        want = want_wb.all_tables.frames["nps_responses"]
        cols = [c for c in want.columns if c != "user_id"]
        assert got.select(cols).sort("response_id").equals(want.select(cols).sort("response_id"))
        assert (
            got.sort("response_id")["user_id"]
            == want.sort("response_id")["user_id"].str.to_lowercase()
            + "@"
            + want.sort("response_id")["account_id"].str.to_lowercase()
            + ".example.com"
        ).all()
    assert got_wb.series("net_promoter_score").equals(want_wb.series("net_promoter_score"))
    assert got_wb.compute("account_nps").equals(want_wb.compute("account_nps"))
