"""Bad help-desk exports (tests/fixtures/bad/desk): each case gives one clear problem, exit 2, nothing written, the
exports and the --out folder byte-identical."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import digest, load_module, run

DESK = Path(__file__).parent / "fixtures" / "bad" / "desk"
build_desk = load_module(DESK / "build.py", "build_desk")
CASES = {c.name: c for c in build_desk.CASES}


def test_desk_corpus_is_current(tmp_path):
    build_desk.build(tmp_path)
    for name in CASES:
        assert digest(tmp_path / name) == digest(DESK / name), (
            f"tests/fixtures/bad/desk/{name} is stale: run tests/fixtures/bad/desk/build.py"
        )


@pytest.mark.parametrize("importer", ["zendesk", "intercom"])
def test_desk_base_is_valid(importer, tmp_path, capsys):
    exports = build_desk.write(tmp_path / "exports", build_desk.files_of(importer))
    out = build_desk.write_out(tmp_path / "out")
    code, _, err = run(capsys, "import", importer, str(exports), "--out", str(out))
    assert (code, err) == (0, ""), err
    assert run(capsys, "validate", str(out))[0] == 0


@pytest.mark.parametrize("name", CASES)
def test_desk_import_reports_the_one_defect_and_writes_nothing(name, capsys, tmp_path):
    case, folder = CASES[name], DESK / name
    out = build_desk.write_out(tmp_path / "out")
    before, before_out = digest(folder), digest(out)
    code, stdout, err = run(capsys, "import", case.importer, str(folder), "--out", str(out))
    assert (code, stdout) == (2, "")
    assert ": 1 problem." in err, err
    where = f"{case.table}.{case.column}" if case.column else case.table
    assert f"[{case.code}] {where}: " in err, err
    assert (f"({case.count:,} row" in err) == bool(case.count), err
    assert case.example in err, err
    assert "Traceback" not in err and "Nothing was written" in err
    assert digest(folder) == before and digest(out) == before_out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
