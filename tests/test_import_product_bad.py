"""Bad product-analytics exports (tests/fixtures/bad/product): each case stops the import with its one problem, exit 2,
nothing written into the output folder, the exports byte-identical."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import digest, load_module, run
from product_export import billing_base

FIXTURES = Path(__file__).parent / "fixtures"
build_product = load_module(FIXTURES / "bad" / "product" / "build.py", "build_product")
CASES = {c.name: c for c in build_product.CASES}


def tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `folder`."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_product_corpus_is_current(tmp_path):
    build_product.build(tmp_path)
    for name in CASES:
        assert tree(tmp_path / name) == tree(FIXTURES / "bad" / "product" / name), (
            f"tests/fixtures/bad/product/{name} is stale: run tests/fixtures/bad/product/build.py"
        )


@pytest.mark.parametrize("system", ["segment", "amplitude", "posthog"])
def test_product_base_is_valid(system, tmp_path, capsys):
    folder = build_product.write(tmp_path / "base", build_product.files_of(None, system))
    out = billing_base(tmp_path)
    code, _, err = run(capsys, "import", system, str(folder / "exports"), "--out", str(out))
    assert (code, err) == (0, ""), err
    assert run(capsys, "validate", str(out))[0] == 0


@pytest.mark.parametrize("name", CASES)
def test_product_import_reports_the_one_defect_and_writes_nothing(name, capsys, tmp_path):
    case, folder = CASES[name], FIXTURES / "bad" / "product" / name
    before = tree(folder)
    out = billing_base(tmp_path)
    kept = digest(out)
    code, stdout, err = run(capsys, *build_product.command(case, folder), "--out", str(out))
    assert (code, stdout) == (2, "")
    assert case.example in err, err
    assert "Traceback" not in err
    if case.code != "settings":
        assert ": 1 problem." in err, err
        where = f"{case.table}.{case.column}" if case.column else case.table
        assert f"[{case.code}] {where}: " in err, err
        assert (f"({case.count:,} row" in err) == bool(case.count), err
        assert "Nothing was written" in err
    assert digest(out) == kept and sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    assert tree(folder) == before


def test_settings_report_every_problem_at_once(tmp_path):
    """A key only another system's exports have and a wrong value: both named, in one error."""
    from saaskpi.errors import ParameterError
    from saaskpi.importers.product import product_settings

    given = tmp_path / "posthog.yaml"
    given.write_text("domain_trait: url\npage_calls: usage\nuser_in_two_accounts: sometimes\ngroup_type: org\n")
    with pytest.raises(ParameterError) as err:
        product_settings("posthog", str(given))
    text = str(err.value)
    assert text.startswith("posthog.yaml: 3 problem(s):"), text
    assert "`domain_trait`: read from Segment exports only, not from PostHog's (remove it)" in text
    assert "`page_calls`: read from Segment exports only" in text
    assert "`user_in_two_accounts`" in text and "`group_type`" not in text


@pytest.mark.parametrize("system", ["segment", "amplitude", "posthog"])
def test_shipped_settings_are_read_by_their_system(system):
    from saaskpi.importers.product import product_settings

    assert product_settings(system, None)[1].endswith(f"{system}.yaml")
