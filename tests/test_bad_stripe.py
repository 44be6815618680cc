"""The Stripe part of the bad-input corpus (tests/fixtures/stripe/bad/): every defect of a Stripe export is
reported with its rule code, file, column, count and examples, all at once; nothing is written and the
export is unchanged. The bases (tests/fixtures/stripe/good/) import cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import digest, load_module, run

from saaskpi.errors import DataContractError
from saaskpi.importers.stripe import read_stripe

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
build = load_module(FIXTURES / "build.py", "build_stripe")

CASES = {c.name: c for c in build.CASES}


def test_corpus_is_current(tmp_path):
    build.build(tmp_path)
    for sub in ("good", "bad"):
        for folder in sorted((tmp_path / sub).iterdir()):
            assert digest(folder) == digest(FIXTURES / sub / folder.name), (
                f"tests/fixtures/stripe/{sub}/{folder.name} is stale: run tests/fixtures/stripe/build.py"
            )


@pytest.mark.parametrize("base", sorted(build.BASES))
def test_bases_import_cleanly(base):
    # Basic $100 a month (Alpha) and Pro 2,000 EUR / 240,000 JPY a year (Beta): MRR 100 and 166.67 / 20,000
    data = read_stripe(FIXTURES / "good" / base).data
    assert data.customers.height == 2 and data.invoices.height == 3 and data.line_items.height == 3
    assert sorted(data.plans["interval_unit"]) == ["month", "year"]


@pytest.mark.parametrize("name", CASES)
def test_each_defect_is_reported_with_its_rule_file_column_and_examples(name):
    case, folder = CASES[name], FIXTURES / "bad" / name
    before = digest(folder)
    with pytest.raises(DataContractError) as raised:
        read_stripe(folder)
    text = str(raised.value)
    codes = [p.code for p in raised.value.problems]
    assert codes == [case.code, *case.also], text
    problem = raised.value.problems[0]
    assert (problem.table, problem.column, problem.count) == (case.table, case.column, case.count), text
    assert case.example in text, text
    assert "Traceback" not in text
    assert digest(folder) == before  # the export is only read


# --------------------------------------------------------------------------- through `saaskpi import stripe`


@pytest.mark.parametrize("name", CASES)
def test_import_command_exits_2_with_the_message_and_writes_nothing(name, capsys, tmp_path):
    folder = FIXTURES / "bad" / name
    before = digest(folder)
    with pytest.raises(DataContractError) as raised:
        read_stripe(folder)
    code, out, err = run(capsys, "import", "stripe", str(folder), "--out", str(tmp_path / "out"))
    assert (code, out) == (2, "")
    assert err == str(raised.value) + "\n"
    assert "cannot be imported" in err and "Nothing was written" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert digest(folder) == before


@pytest.mark.parametrize("base", sorted(build.BASES))
def test_import_command_writes_the_source_and_its_report(base, capsys, tmp_path):
    import json

    out = tmp_path / "out"
    argv = (
        "import",
        "stripe",
        str(FIXTURES / "good" / base),
        "--out",
        str(out),
        "--fx-rates",
        str(FIXTURES / "fx_rates.csv"),
    )
    code, stdout, err = run(capsys, *argv)
    assert (code, err) == (0, ""), err
    report = json.loads((out / "import-report.json").read_text())
    assert report["importer"] == "stripe"
    assert {f["rows"] for f in report["files_read"] if "invoice" in f["table"]} == {3}
    assert report["rows_written"]["accounts"] == 2
    first = {p.name: p.read_bytes() for p in out.glob("*.parquet")}
    assert run(capsys, *argv)[0] == 0  # the same export again: byte-identical tables
    assert {p.name: p.read_bytes() for p in out.glob("*.parquet")} == first
    assert run(capsys, "validate", str(out))[0] == 0


# --------------------------------------------------------------------------- random corruptions
def _cells(data: bytes) -> list[list[str]]:
    import csv
    import io

    return list(csv.reader(io.StringIO(data.decode())))


def _csv_bytes(rows: list[list[str]]) -> bytes:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


@pytest.mark.parametrize("base", sorted(build.BASES))
def test_random_corruptions_never_traceback_or_change_the_export(base, tmp_path):
    """Any cell replaced by odd text, any column or row dropped or repeated: the import succeeds or stops with
    the Stripe export's problems (never another exception), and the files are unchanged."""
    import random

    from saaskpi.errors import SaasKpiError

    odd = [
        "",
        " ",
        "-1",
        "0",
        "1e309",
        "NaN",
        "2024-13-45",
        "2024-02-30 00:00",
        "31/01/2024",
        "null",
        "{}",
        "[]",
        '{"start": "x"}',
        '[{"amount": "x"}]',
        "usx",
        "JPY",
        "true",
        "ü",
        "x" * 300,
        "9" * 25,
    ]
    rng = random.Random(7)
    for attempt in range(25):
        files = build.base_files(base)
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(sorted(files))
            rows = _cells(files[name])
            kind = rng.choice(["cell", "drop_column", "drop_row", "repeat_row"])
            if kind == "cell":
                r = rows[rng.randrange(len(rows))]
                r[rng.randrange(len(r))] = rng.choice(odd)
            elif kind == "drop_column":
                col = rng.randrange(len(rows[0]))
                rows = [r[:col] + r[col + 1 :] for r in rows]
            elif kind == "drop_row" and len(rows) > 1:
                del rows[rng.randrange(1, len(rows))]
            elif kind == "repeat_row" and len(rows) > 1:
                rows.append(rows[rng.randrange(1, len(rows))])
            files[name] = _csv_bytes(rows)
        folder = build.write(tmp_path / f"{base}_{attempt}", files)
        before = digest(folder)
        try:
            read_stripe(folder)
        except SaasKpiError as err:
            assert "Traceback" not in str(err)
        assert digest(folder) == before


def test_a_wrong_shape_says_which_shape_the_files_look_like():
    with pytest.raises(DataContractError) as raised:
        read_stripe(FIXTURES / "good" / "api", shape="dashboard")
    first = raised.value.problems[0]
    assert first.code == "source.shape" and "try --shape api, or leave --shape out" in first.message
