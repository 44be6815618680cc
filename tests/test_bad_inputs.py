"""The bad-input corpus (tests/fixtures/bad/): every defect is reported once, with its rule code, table,
column, count and examples, by `saaskpi validate`, `metrics`, `snapshot` and the notebooks alike; nothing
is written and no input changes. Random corruptions never end in a traceback or a changed input."""

from __future__ import annotations

import csv
import io
import random
import tempfile
from pathlib import Path

import pytest
from conftest import digest, load_module, run
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from saaskpi import paths
from saaskpi.contract import RULE_CODES
from saaskpi.errors import DataContractError, ParameterError
from saaskpi.metrics import METRICS
from saaskpi.workbook import open_workbook

FIXTURES = Path(__file__).parent / "fixtures"
build = load_module(FIXTURES / "bad" / "build.py", "build_bad_sources")

CASES = {c.name: c for c in build.CASES}
MONTH = "2024-01"  # the base source runs to 2024-02-03: January is its last complete month


def test_corpus_is_big_enough_and_current(tmp_path):
    assert len(CASES) >= 30
    build.build(tmp_path / "bad")
    for name in CASES:
        assert digest(tmp_path / "bad" / name) == digest(FIXTURES / "bad" / name), (
            f"tests/fixtures/bad/{name} is stale: run tests/fixtures/bad/build.py"
        )


def test_base_and_good_sources_are_valid(tmp_path, capsys):
    base = build.write(tmp_path / "base", build.files_of(None))
    for folder in (base, *(FIXTURES / "good" / g for g in build.GOOD)):
        code, out, err = run(capsys, "validate", str(folder))
        assert (code, err) == (0, ""), err
        assert "valid (accounts 3, " in out and "subscriptions 3, " in out


def test_utf8_byte_order_mark_is_read_as_plain_utf8(capsys):
    wb = open_workbook(str(FIXTURES / "good" / "good_utf8_bom"), "all", MONTH, interactive=False)
    assert wb.all_tables.frames["accounts"].columns[0] == "account_id"


@pytest.mark.parametrize("name", CASES)
def test_validate_reports_the_one_defect(name, capsys):
    case, folder = CASES[name], FIXTURES / "bad" / name
    before = digest(folder)
    code, out, err = run(capsys, "validate", str(folder))
    assert (code, out) == (2, "")
    assert "breaks the data contract: 1 problem." in err, err
    where = f"{case.table}.{case.column}" if case.column else case.table
    assert f"[{case.code}] {where}: " in err
    assert (f"({case.count:,} row" in err) == bool(case.count)
    assert case.example in err
    assert "Traceback" not in err
    assert digest(folder) == before


def test_every_rule_code_in_the_corpus_is_documented():
    """docs/data-contract.md names each code: exactly (cross-table rules) or as `<table>.<rule>`."""
    contract_doc = (paths.ROOT / "docs" / "data-contract.md").read_text()
    for c in build.CASES:
        generic = c.code.replace(f"{c.table}.", "<table>.", 1)
        assert f"`{c.code}`" in contract_doc or (generic in RULE_CODES and f"`{generic}`" in contract_doc), c.code


@pytest.mark.parametrize("name", CASES)
def test_metrics_and_snapshot_stop_with_the_same_message_and_write_nothing(name, capsys, tmp_path):
    folder = FIXTURES / "bad" / name
    before = digest(folder)
    _, _, message = run(capsys, "validate", str(folder))
    for argv in (
        ["metrics", "--source", str(folder), "--month", MONTH],
        ["table", "mrr_movements", "--source", str(folder)],
        ["snapshot", "--source", str(folder), "--month", MONTH, "--reports", str(tmp_path / "reports")],
        ["fill", "--source", str(folder), "--month", MONTH],
        ["app", "--source", str(folder)],  # stopped before the server starts
    ):
        code, out, err = run(capsys, *argv)
        assert (code, out, err) == (2, "", message), argv[0]
    assert not (tmp_path / "reports").exists()
    assert digest(folder) == before
    with pytest.raises(DataContractError) as raised:  # the first line of every notebook
        open_workbook(str(folder), "all", MONTH, interactive=False)
    assert str(raised.value) + "\n" == message


def test_interactive_notebooks_show_the_message_as_a_panel(capsys):
    """JupyterLab and Voila (tracebacks hidden): the first cell displays the message; the error then only points at it."""
    from unittest import mock

    folder = FIXTURES / "bad" / "nps_11"
    _, _, message = run(capsys, "validate", str(folder))
    shown = []
    with (
        mock.patch("IPython.display.display", side_effect=lambda *items: shown.extend(items)),
        pytest.raises(DataContractError) as raised,
    ):
        open_workbook(str(folder), "all", MONTH, interactive=True)
    assert "[nps_responses.out_of_range] nps_responses.score: must be at most 10 (1 row)" in shown[0].data
    assert "Something went wrong." in shown[0].data and message.splitlines()[0] in shown[0].data
    assert raised.value._render_traceback_() == ["DataContractError: the run stopped here; the message is shown above."]


@pytest.mark.notebook
def test_every_notebook_stops_with_the_readable_message(tmp_path, capsys):
    """Executed as the scheduler executes them: the failing cell shows the message, not a traceback."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    folder = FIXTURES / "bad" / "orphan_foreign_key"
    _, _, message = run(capsys, "validate", str(folder))
    for notebook in sorted(paths.NOTEBOOKS_DIR.glob("[0-9]*.ipynb")):
        out = tmp_path / notebook.name
        with pytest.raises(PapermillExecutionError) as raised:
            pm.execute_notebook(
                str(notebook),
                str(out),
                parameters={"source": str(folder), "interactive": False},
                kernel_name="python3",
                progress_bar=False,
            )
        assert raised.value.ename == "DataContractError"
        shown = "\n".join(raised.value.traceback)
        assert shown == "DataContractError: " + message.rstrip("\n"), notebook.name
        assert "Traceback" not in shown and 'File "' not in shown
    assert "subscriptions.account_id.orphan" in message


# --------------------------------------------------------------------------- random corruptions
def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


CELL_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "-1",
            "0",
            "NaN",
            "inf",
            "1e309",
            "2024-13-45",
            "2024-02-30",
            "24/02/2024",
            "2024-02-01T25:00:00Z",
            "null",
            "None",
            "A9",
            "U9",
            "T9",
            "smb",
            "EUR",
            "GBP",
            "ü",
            '"',
            "x" * 20_000,
        ]
    ),
    st.text(max_size=12),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True).map(str),
)

corruption = st.one_of(
    st.tuples(
        st.just("cell"), st.sampled_from(sorted(build.BASE)), st.integers(0, 10), st.integers(0, 10), CELL_VALUES
    ),
    st.tuples(st.just("drop_column"), st.sampled_from(sorted(build.BASE)), st.integers(0, 10)),
    st.tuples(st.just("drop_row"), st.sampled_from(sorted(build.BASE)), st.integers(1, 10)),
    st.tuples(st.just("duplicate_row"), st.sampled_from(sorted(build.BASE)), st.integers(1, 10)),
    st.tuples(st.just("truncate"), st.sampled_from(sorted(build.BASE)), st.integers(0, 400)),
    st.tuples(
        st.just("bytes"), st.sampled_from(sorted(build.BASE)), st.integers(0, 400), st.binary(min_size=1, max_size=4)
    ),
)


def corrupt(files: dict[str, bytes], how: tuple) -> None:
    kind, table = how[0], f"{how[1]}.csv"
    if kind in ("truncate", "bytes"):
        data = files[table]
        at = how[2] % (len(data) + 1)
        files[table] = data[:at] if kind == "truncate" else data[:at] + how[3] + data[at:]
        return
    try:
        rows = _rows(files[table])
    except (UnicodeDecodeError, csv.Error):
        return  # already broken at the byte level by an earlier corruption
    if not rows or not rows[0]:
        return
    if kind == "cell":
        r = rows[how[2] % len(rows)]
        r[how[3] % len(r)] = how[4]
    elif kind == "drop_column":
        col = how[2] % len(rows[0])
        rows = [r[:col] + r[col + 1 :] for r in rows]
    elif kind == "drop_row" and len(rows) > 1:
        del rows[1 + (how[2] - 1) % (len(rows) - 1)]
    elif kind == "duplicate_row" and len(rows) > 1:
        rows.append(rows[1 + (how[2] - 1) % (len(rows) - 1)])
    files[table] = _csv(rows)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(corruption, min_size=1, max_size=3))
@example([("bytes", "accounts", 0, b"\r")])  # found in a clean clone: a lone carriage return before the header
@example([("bytes", "accounts", 3, b"\r")])  # and inside it (the header read raised csv.Error)
def test_random_corruptions_never_traceback_or_change_the_input(capsys, corruptions):
    files = build.files_of(None)
    for how in corruptions:
        corrupt(files, how)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build.write(Path(tmp) / "src", files)
        before = digest(folder)
        code, out, err = run(capsys, "validate", str(folder))
        assert code in (0, 2) and "Traceback" not in err
        event("rejected" if code else "still valid")
        if code == 2:
            assert "breaks the data contract" in err and "[" in err
        else:  # still valid: the numbers must still be coherent, for the last month the data covers
            try:
                wb = open_workbook(str(folder), "all", "", interactive=False)
            except ParameterError as err:  # a corruption that leaves no month with a paying customer says so
                assert "no complete month with a paying customer" in str(err), err
                event("no month with numbers")
                wb = None
            if wb is not None:
                m = wb.table("mrr_movements")
                rebuilt = m.mrr_start + m.new + m.reactivation + m.expansion - m.contraction - m.churn
                assert (rebuilt - m.mrr_end).abs().max() < 1e-6
                frame = wb.metrics_frame()
                shares = frame[frame.metric.map(lambda n: METRICS[n].proportion)].value.dropna()
                assert ((shares >= 0) & (shares <= 1)).all(), frame.loc[shares.index]
        assert digest(folder) == before


def test_corruptions_cover_every_kind():
    """The strategies reach every corruption kind on every table (a guard against a strategy that never fires)."""
    rng = random.Random(3)
    for table in build.BASE:
        for how in (
            ("cell", table, rng.randrange(10), rng.randrange(10), "x"),
            ("drop_column", table, 0),
            ("drop_row", table, 1),
            ("duplicate_row", table, 1),
            ("truncate", table, 5),
            ("bytes", table, 3, b"\xff"),
        ):
            files = build.files_of(None)
            corrupt(files, how)
            assert files[f"{table}.csv"] != build.files_of(None)[f"{table}.csv"], how


# --------------------------------------------------------------------------- importers (saaskpi import ...)
build_imports = load_module(FIXTURES / "bad" / "imports" / "build.py", "build_imports")
IMPORT_CASES = {c.name: c for c in build_imports.CASES}


def test_import_corpus_is_current(tmp_path):
    build_imports.build(tmp_path)
    for name in IMPORT_CASES:
        assert digest(tmp_path / name) == digest(FIXTURES / "bad" / "imports" / name), (
            f"tests/fixtures/bad/imports/{name} is stale: run tests/fixtures/bad/imports/build.py"
        )


def test_import_base_is_valid(tmp_path, capsys):
    base = build_imports.write(tmp_path / "base", build_imports.files_of(None))
    code, out, err = run(capsys, "import", "invoices", str(base), "--out", str(tmp_path / "out"))
    assert (code, err) == (0, ""), err
    assert run(capsys, "validate", str(tmp_path / "out"))[0] == 0


@pytest.mark.parametrize("name", IMPORT_CASES)
def test_import_reports_the_one_defect_and_writes_nothing(name, capsys, tmp_path):
    case, folder = IMPORT_CASES[name], FIXTURES / "bad" / "imports" / name
    before = digest(folder)
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "import", *build_imports.command(case, folder), "--out", str(out))
    assert (code, stdout) == (2, "")
    assert "cannot be imported: 1 problem." in err, err
    where = f"{case.table}.{case.column}" if case.column else case.table
    assert f"[{case.code}] {where}: " in err, err
    assert (f"({case.count:,} row" in err) == bool(case.count)
    assert case.example in err
    assert "Traceback" not in err and "Nothing was written" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert digest(folder) == before


def test_a_carriage_return_in_a_header_is_shown_escaped(tmp_path, capsys):
    # "acc\rount_id": printed as it is, the carriage return would rewrite the terminal line and show `account_id`
    # among the columns found, beside "`account_id` is missing"
    files = build.files_of(None)
    files["accounts.csv"] = files["accounts.csv"][:3] + b"\r" + files["accounts.csv"][3:]
    folder = build.write(tmp_path / "src", files)
    code, _, err = run(capsys, "validate", str(folder))
    assert code == 2 and "Traceback" not in err
    assert "required column `account_id` is missing (columns found: 'acc\\rount_id', " in err
    assert "\r" not in err
