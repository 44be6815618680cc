"""Project hygiene: generated docs are current, environment.yml follows pyproject, the registry is complete."""

from __future__ import annotations

import tomllib

import yaml

from saaskpi import paths
from saaskpi.docs import GENERATED
from saaskpi.metrics import METRICS, TABLE_FUNCS
from saaskpi.metrics.registry import RegistryError, metric


def test_generated_docs_are_current():
    stale = [p.name for p, build in GENERATED.items() if not p.exists() or p.read_text(encoding="utf-8") != build()]
    assert not stale, f"{stale} are stale: run `saaskpi docs` (or `make docs`) and commit the result"


def test_environment_yml_follows_pyproject():
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python"))
    assert python.removeprefix("python") == project["requires-python"]
    assert "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip == ["-e .[dev]"], "environment.yml must install the project itself; the list lives in pyproject.toml"
    assert set(project["optional-dependencies"]) == {"app", "duckdb", "dev", "spark", "postgres"}


def test_every_dependency_pins_a_major_version():
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    unpinned = [d for d in deps if not d.startswith("saaskpi") and "<" not in d]
    assert not unpinned


def test_registry_is_complete():
    for m in METRICS.values():
        assert m.label and m.formula and m.description and m.sources
    assert [m.name for m in METRICS.values() if m.level == "north_star"] == ["net_revenue_retention"]
    for name in ("mrr_movements", "cohort_logo_retention", "cohort_revenue_retention", "user_cohort_retention"):
        assert name in TABLE_FUNCS


def test_registry_rejects_incomplete_declarations():
    import pytest

    with pytest.raises(RegistryError, match="unit"):

        @metric(label="X", formula="x", unit="furlongs", direction="higher", level="core", sources="S", area="revenue")
        def broken_metric(mrr_movements):
            """A metric with a unit nobody knows."""

    with pytest.raises(RegistryError, match="registered twice"):

        @metric(
            label="MRR", formula="x", unit="currency", direction="higher", level="core", sources="S", area="revenue"
        )
        def monthly_recurring_revenue(mrr_movements):
            """A second MRR."""


def test_readme_sample_output_is_the_current_demo(demo_source):
    # the README's `saaskpi metrics` sample is what the command prints on the demo now (`saaskpi docs` refreshes it)
    from saaskpi.docs import README, SAMPLE_END, SAMPLE_START, metrics_sample

    text = README.read_text(encoding="utf-8")
    shown = text.split(SAMPLE_START, 1)[1].split(SAMPLE_END, 1)[0].strip()
    assert shown == metrics_sample(demo_source).strip(), "README sample is stale: run `saaskpi docs`"


def test_generated_docs_keep_whole_descriptions():
    from saaskpi.metrics import METRICS, TABLE_FUNCS

    # a docstring's first paragraph, not its first line: no description stops mid-sentence
    cut = [
        s.name
        for s in [*METRICS.values(), *TABLE_FUNCS.values()]
        if s.description
        and not s.description.rstrip(")").endswith((".", ")", "%"))
        and s.description[-1].isalpha()
        and s.description.split()[-1] in ("the", "a", "and", "of", "to", "in", "per", "with", "by")
    ]
    assert not cut, cut


def test_lock_file_satisfies_pyproject():
    """requirements/lock.txt (what `make setup` and CI install) pins every declared dependency, inside its range."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    locked = {}
    for line in (paths.ROOT / "requirements" / "lock.txt").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            locked[canonicalize_name(name)] = version.strip()
    declared = [Requirement(d) for d in project["dependencies"]]
    declared += [Requirement(d) for group in project["optional-dependencies"].values() for d in group]
    wrong = [
        f"{r} (locked: {locked.get(canonicalize_name(r.name), 'missing')})"
        for r in declared
        if r.name != "saaskpi"
        and not r.specifier.contains(locked.get(canonicalize_name(r.name), "0.dev0"), prereleases=True)
    ]
    assert not wrong, f"regenerate requirements/lock.txt (see its header): {wrong}"
    assert "lifelines" not in locked  # caps pandas below 3


def test_a_metric_links_the_test_that_checks_it_not_one_that_borrows_it():
    from types import SimpleNamespace

    from saaskpi.docs import _test_link
    from saaskpi.metrics import health

    # a metric of health.py (its own test file would be test_health.py); a made-up name, so that this file's
    # strings do not move a real metric's link in docs/metrics.md
    m = SimpleNamespace(name="blue_share", func=health.account_health)
    tests = {
        "test_charts.py": "widths = [blue_share, blue_share, blue_share]\n",
        "test_customer_success.py": 'assert by_month(wb, "blue_share")["2024-05"] == 0.75\n',
        "test_voice.py": 'rows = b[b.metric == "blue_share"]\nshare = wb.value("blue_share")\n',
    }
    assert _test_link(m, tests) == "[test_customer_success.py](../tests/test_customer_success.py)"
    assert _test_link(m, {**tests, "test_health.py": "blue_share"}) == "[test_health.py](../tests/test_health.py)"
    assert _test_link(m, {"test_voice.py": tests["test_voice.py"]}) == "[test_voice.py](../tests/test_voice.py)"
    assert _test_link(m, {"test_other.py": "nothing"}) == ""
