"""The command line as a user runs it: exit codes, messages, output columns."""

from __future__ import annotations

import io
import json
import shutil

import pandas as pd
from conftest import run


def test_table_mrr_movements_with_only_accounts_and_subscriptions(capsys, revenue_source):
    (revenue_source / "fx_rates.csv").unlink()
    (revenue_source / "subscriptions.csv").write_text(
        (revenue_source / "subscriptions.csv").read_text().replace(",EUR,", ",USD,")
    )
    code, out, err = run(capsys, "table", "mrr_movements", "--source", str(revenue_source), "--month", "2024-05")
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns[:13]) == [
        "month",
        "mrr_start",
        "new",
        "expansion",
        "contraction",
        "churn",
        "reactivation",
        "mrr_end",
        "accounts_start",
        "new_accounts",
        "churned_accounts",
        "reactivated_accounts",
        "expansion_accounts",
    ]
    assert frame.month.tolist() == ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
    assert frame.mrr_end.tolist() == [550, 630, 680, 640, 540]  # conftest story with A5's 100 EUR read as 100 USD


def test_metrics_command(capsys, revenue_source):
    code, out, _ = run(capsys, "metrics", "--source", str(revenue_source), "--month", "2024-05", "--format", "json")
    assert code == 0
    rows = {r["metric"]: r for r in json.loads(out)}
    assert rows["monthly_recurring_revenue"]["value"] == 560
    assert set(rows["net_mrr_churn_rate"]) == {
        "metric",
        "label",
        "value",
        "unit",
        "n",
        "target",
        "status",
        "convention",
    }
    assert rows["net_mrr_churn_rate"]["convention"] == "reactivation_offsets_churn=True"
    assert rows["dau_mau_ratio"]["status"] == "n/a"


def test_validate_exit_codes(capsys, revenue_source, tmp_path):
    assert run(capsys, "validate", str(revenue_source))[0] == 0
    broken = tmp_path / "broken"
    shutil.copytree(revenue_source, broken)
    text = (broken / "subscriptions.csv").read_text()
    (broken / "subscriptions.csv").write_text(
        text.replace("S3,A2,2024-01-15", "S3,A99,2024-01-15").replace(",60,", ",-60,")
    )
    code, out, err = run(capsys, "validate", str(broken))
    assert code == 2
    assert "2 problems" in err
    assert "[subscriptions.account_id.orphan] subscriptions.account_id" in err
    assert "[subscriptions.out_of_range] subscriptions.amount" in err
    assert "Traceback" not in err


def test_unknown_table_and_segment(capsys, revenue_source):
    code, _, err = run(capsys, "table", "nope", "--source", str(revenue_source))
    assert code == 2 and "Unknown table 'nope'" in err and "mrr_movements" in err
    code, _, err = run(capsys, "metrics", "--source", str(revenue_source), "--segment", "martians")
    assert code == 2 and "Unknown segment 'martians'" in err


def test_validate_demo(capsys, demo_source):
    code, out, _ = run(capsys, "validate", str(demo_source))
    assert code == 0 and "valid" in out


def test_missing_source(capsys, tmp_path):
    code, _, err = run(capsys, "validate", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a folder" in err


def test_validate_broken_copy_of_demo(capsys, demo_source, tmp_path):
    broken = tmp_path / "demo"
    shutil.copytree(demo_source, broken)
    lines = (broken / "subscriptions.csv").read_text().splitlines()
    # line 2: negative amount; line 3: end before start; line 4: unknown account
    head = lines[0].split(",")
    rows = [r.split(",") for r in lines[1:4]]
    rows[0][head.index("amount")] = "-10"
    rows[1][head.index("end_date")] = "2000-01-01"
    rows[2][head.index("account_id")] = "NOPE"
    lines[1:4] = [",".join(r) for r in rows]
    (broken / "subscriptions.csv").write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "validate", str(broken))
    assert code == 2
    assert "3 problems" in err
    for rule in (
        "subscriptions.out_of_range",
        "subscriptions.end_date_before_start_date",
        "subscriptions.account_id.orphan",
    ):
        assert f"[{rule}]" in err
    assert "row 2 (subscription_id=S000001): amount=-10.0" in err


def test_demo_scale_options(capsys, tmp_path):
    code, out, _ = run(
        capsys, "demo", "--scale", "tiny", "--months", "6", "--accounts-per-month", "2", "--out", str(tmp_path / "mini")
    )
    assert code == 0 and "accounts" in out
    truth = json.loads((tmp_path / "mini" / "ground_truth.json").read_text())
    assert truth["scale"]["months"] == 6 and truth["period_start"] == "2026-05-01"


def test_a_demo_scale_without_out_leaves_the_demo_company_alone(capsys, monkeypatch, tmp_path):
    from saaskpi import cli, paths

    monkeypatch.setattr(paths, "ROOT", tmp_path)  # relative folders are taken from here
    code, out, _ = run(capsys, "demo", "--scale", "tiny", "--months", "3", "--accounts-per-month", "2")
    assert code == 0 and f"written to {tmp_path / 'data' / 'tiny'}" in out
    assert not (tmp_path / "data" / "demo").exists()
    assert cli.demo_folder("default") == "data/demo" and cli.demo_folder("large") == "data/large"


def test_every_option_has_help_text():
    import argparse

    from saaskpi.cli import parser

    def bare(p, name):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, sp in action.choices.items():
                    yield from bare(sp, f"{name} {sub}")
            elif not action.help and action.dest != "help":
                yield f"{name} {'/'.join(action.option_strings) or action.dest}"

    assert list(bare(parser(), "saaskpi")) == []
