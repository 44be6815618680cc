"""The executive summary: parameters checked against the registry, stage selection, every section rendering."""

from __future__ import annotations

import html

import pytest
from conftest import page_html

from saaskpi import params, paths
from saaskpi.errors import ParameterError
from saaskpi.metrics import METRICS
from saaskpi.pages import executive_summary as page

GOOD = """
north_star: net_revenue_retention
business_stage: early
top7:
  Churn: [customer_churn_rate]
stages:
  early: [signup_to_pql_rate, mrr_growth_rate]
  growth: [customer_acquisition_cost]
  mature: [gross_margin]
"""


def write(tmp_path, text):
    path = tmp_path / "executive.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_stage_selects_what_leads(tmp_path):
    ex = params.executive(write(tmp_path, GOOD), known=set(METRICS))
    assert ex.leading() == ["signup_to_pql_rate", "mrr_growth_rate"]  # business_stage: early
    assert ex.leading("mature") == ["gross_margin"]
    with pytest.raises(ParameterError, match="business_stage must be one of early, growth, mature, got 'seed'"):
        ex.leading("seed")


@pytest.mark.parametrize(
    "change, message",
    [
        (("north_star: net_revenue_retention", "north_star: nrr"), "unknown metric\\(s\\) nrr"),
        (
            ("business_stage: early", "business_stage: late"),
            "`business_stage`: input should be 'early', 'growth' or 'mature', got 'late'",
        ),
        (("top7:", "top_7:"), "unknown key top_7 .known: north_star, business_stage, top7, stages.; `top7` is missing"),
        (("  mature: [gross_margin]\n", ""), "`stages.mature` is missing"),
        (
            ("  Churn: [customer_churn_rate]", "  Churn: customer_churn_rate"),
            "`top7.Churn`: input should be a valid list, got 'customer_churn_rate'",
        ),
    ],
)
def test_bad_parameters_are_clear_errors(tmp_path, change, message):
    with pytest.raises(ParameterError, match=message):
        params.executive(write(tmp_path, GOOD.replace(*change)), known=set(METRICS))


def test_the_shipped_file_names_only_registered_metrics():
    ex = params.executive(paths.EXECUTIVE_FILE, known=set(METRICS))
    assert len(ex.top7) == 7 and ex.north_star in METRICS


def test_every_section_renders_on_the_required_tables_only(revenue_wb):
    for func in (
        page.show_header,
        page.show_revenue,
        page.show_headline,
        page.show_top7,
        page.show_alerts,
        page.show_hierarchy,
        page.show_links,
    ):
        assert "Something went wrong" not in page_html(func, revenue_wb), func.__name__
    top7 = page_html(page.show_top7, revenue_wb)
    # tables this source lacks are named on the tile instead of a number
    assert "needs opportunities" in top7 and "needs nps_responses" in top7 and "needs spend" in top7
    hierarchy = page_html(page.show_hierarchy, revenue_wb)
    assert "north star (1)" in hierarchy and all(html.escape(m.label) in hierarchy for m in METRICS.values())


def test_links_point_at_apps_or_reports():
    names = [n for n, _ in page.pages()]
    assert "00_executive_summary" not in names and "03_unit_economics" in names
    assert 'href="03_unit_economics.ipynb"' in page.links_html(True)
    assert 'href="03_unit_economics.html">Unit economics</a>' in page.links_html(False)
