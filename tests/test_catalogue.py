"""The catalogue: a metric's page, area, tile place and target are declared once, on the metric, and a
declaration that is doubled or unknown is an error when the registry loads."""

from __future__ import annotations

import dataclasses

import pytest

from saaskpi import pages, params, paths
from saaskpi.metrics import METRICS, registry
from saaskpi.metrics.registry import AREAS, PAGES, RegistryError, metric, validate_registry

CONVENTIONS = set(params.Conventions.model_fields)


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as loaded, restored after the test (which may add or change declarations)."""
    monkeypatch.setattr(registry, "METRICS", dict(METRICS))
    return registry.METRICS


def test_unknown_area_is_an_error():
    with pytest.raises(RegistryError, match="area 'retention' not in"):

        @metric(
            label="X", formula="x", unit="fraction", direction="higher", level="core", sources="S", area="retention"
        )
        def misfiled(mrr_movements):
            """A metric filed under an area no page shows."""


def test_target_source_without_a_target_is_an_error():
    with pytest.raises(RegistryError, match="need a target"):

        @metric(
            label="X",
            formula="x",
            unit="fraction",
            direction="higher",
            level="core",
            sources="S",
            area="revenue",
            target_source="an article",
        )
        def sourced(mrr_movements):
            """A metric citing a target it does not set."""


def test_a_tile_place_declared_twice_on_a_page_is_an_error(scratch_registry):
    ltv = scratch_registry["customer_lifetime_value"]  # tile 4 of unit_economics, as is ...
    scratch_registry["new_customers"] = dataclasses.replace(scratch_registry["new_customers"], tile=ltv.tile)
    with pytest.raises(RegistryError, match="page unit_economics: tile 4 is declared by"):
        validate_registry(CONVENTIONS)


def test_two_north_stars_are_an_error(scratch_registry):
    scratch_registry["monthly_recurring_revenue"] = dataclasses.replace(
        scratch_registry["monthly_recurring_revenue"], level="north_star"
    )
    with pytest.raises(RegistryError, match="exactly one metric must be the north star, found 2"):
        validate_registry(CONVENTIONS)


def test_a_target_for_an_unknown_metric_is_an_error():
    with pytest.raises(RegistryError, match="segments/smb.yaml sets targets for unknown metric.s. mrr_growht"):
        validate_registry(CONVENTIONS, {"segments/smb.yaml": {"mrr_growth_rate", "mrr_growht"}})


def test_a_page_listing_another_pages_metric_is_an_error():
    # a metric has one page: LTV is shown (and recorded by snapshots) on unit economics, not on cohort retention
    with pytest.raises(RegistryError, match=r"customer_lifetime_value \(page unit_economics\), nope \(unknown\)"):
        registry.page_metrics("cohort_retention", ["net_revenue_retention", "customer_lifetime_value", "nope"])


def test_a_targets_file_beside_the_declarations_is_an_error(tmp_path, monkeypatch):
    # a target declared twice (on its metric and in a parameters file): the check saaskpi.metrics runs at import
    from saaskpi import metrics

    (tmp_path / "targets.yaml").write_text("net_mrr_churn_rate: 0.02\n")
    monkeypatch.setattr(paths, "PARAMETERS_DIR", tmp_path)
    with pytest.raises(RegistryError, match="targets are declared once, on their metric"):
        metrics._segment_targets()


def test_an_unknown_page_is_an_error(monkeypatch):
    with pytest.raises(RegistryError, match="unknown page 'retention'"):
        registry.tiles("retention")
    monkeypatch.setitem(registry.AREAS, "billing", "billing_page")  # an area filed under a page that does not exist
    with pytest.raises(RegistryError, match=r"AREAS name unknown page\(s\) \['billing_page'\]"):
        validate_registry(CONVENTIONS)


def test_every_area_has_a_page_and_every_page_a_module():
    assert set(AREAS.values()) == set(PAGES)
    for page in PAGES:
        assert getattr(pages, page).AREAS == registry.page_areas(page)


def test_pages_tiles_come_from_the_declarations():
    assert pages.unit_economics.TILES[:4] == [
        "customer_acquisition_cost",
        "cac_payback_months",
        "ltv_to_cac_ratio",
        "customer_lifetime_value",
    ]
    assert "customer_lifetime_value" not in pages.cohort_retention.TILES  # one page: LTV lives on page 03
    assert METRICS["customer_lifetime_value"].page == "unit_economics"
    for page in PAGES:
        assert all(METRICS[n].page == page for n in registry.tiles(page))


def test_metrics_are_listed_in_catalogue_order():
    areas = [m.area for m in METRICS.values()]
    assert areas == sorted(areas, key=list(AREAS).index)  # funnel, sales, activation, revenue, ... success


def test_targets_are_declared_on_the_metric():
    targets = registry.targets()
    assert targets["dau_mau_ratio"] == params.Target(0.6, 0.8, "U: B2B SaaS dashboard guide (DAU/MAU 60 % then 80 %)")
    assert targets["net_mrr_churn_rate"].value == 0.02
    # parameters/targets.yaml holds dated goals only (issue 25), never a second declaration of a standing target
    assert set(params.read_yaml(paths.PARAMETERS_DIR / "targets.yaml")) <= {"goals"}
