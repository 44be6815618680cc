"""Bad CRM exports (tests/fixtures/bad/crm): each case reports its one problem (rule code, where, count, example),
exits 2, writes nothing into --out and leaves the exports byte-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import digest, load_module, run

HERE = Path(__file__).parent / "fixtures" / "bad" / "crm"
build = load_module(HERE / "build.py", "build_crm")
CASES = {c.name: c for c in build.CASES}


def test_crm_corpus_is_current(tmp_path):
    build.build(tmp_path)
    for name in [*CASES, "out"]:
        assert digest(tmp_path / name) == digest(HERE / name), (
            f"tests/fixtures/bad/crm/{name} is stale: run its build.py"
        )


@pytest.mark.parametrize("system", ["hubspot", "salesforce"])
def test_the_base_exports_import(system, tmp_path, capsys):
    exports = build.write(tmp_path / "exports", build.files_of(system, None))
    out = shutil.copytree(HERE / "out", tmp_path / "out")
    code, _, err = run(capsys, "import", system, str(exports), "--out", str(out))
    assert (code, err) == (0, ""), err
    assert json.loads((out / f"import-report-{system}.json").read_text())["rows_written"]["leads"] == 3


@pytest.mark.parametrize("name", CASES)
def test_a_bad_export_is_reported_and_nothing_written(name, tmp_path, capsys):
    case, folder = CASES[name], HERE / name
    before = digest(folder)
    out = shutil.copytree(HERE / "out", tmp_path / "out")
    kept = digest(out)
    code, stdout, err = run(capsys, "import", case.system, str(folder), "--out", str(out))
    assert (code, stdout) == (2, "")
    assert ": 1 problem." in err, err
    where = f"{case.table}.{case.column}" if case.column else case.table
    assert f"[{case.code}] {where}: " in err, err
    assert (f"({case.count:,} row" in err) == bool(case.count), err
    assert case.example in err, err
    assert "Traceback" not in err and "Nothing was written" in err
    assert digest(out) == kept and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert digest(folder) == before
