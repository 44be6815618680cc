"""No number that is not in the data: a month after the last complete month of the source, or before its first
paying customer, is refused everywhere (CLI, open_workbook, snapshots, the apps' month pickers).

The conftest source runs to 2024-05-31 (A7 is created that day) and its first paying customers pay at the end of
January 2024 (A1, A4, A5): it covers 2024-01 to 2024-05."""

from __future__ import annotations

import pytest
from conftest import run, write_source

from saaskpi.errors import ParameterError
from saaskpi.widgets import Session
from saaskpi.workbook import open_workbook

COVERS = "the data covers 2024-01 to 2024-05"


@pytest.mark.parametrize(
    "month, why", [("2024-06", "is after the data"), ("2023-12", "is before the first paying customer")]
)
@pytest.mark.parametrize("command", [["metrics"], ["table", "mrr_movements"]])
def test_cli_refuses_a_month_outside_the_data(capsys, revenue_source, command, month, why):
    code, out, err = run(capsys, *command, "--source", str(revenue_source), "--month", month)
    assert code == 2 and out == ""
    assert f"Month {month} {why}: {COVERS}" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "month, why", [("2024-06", "is after the data"), ("2023-12", "is before the first paying customer")]
)
def test_open_workbook_refuses_a_month_outside_the_data(revenue_source, month, why):
    with pytest.raises(ParameterError, match=f"Month {month} {why}: {COVERS}"):
        open_workbook(str(revenue_source), "all", month, interactive=False)
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    with pytest.raises(ParameterError, match=COVERS):  # switching month in an app goes through the same check
        wb.with_choice(month=month)


@pytest.mark.parametrize("month", ["2024-06", "2023-12"])
def test_snapshot_refuses_a_month_outside_the_data_and_writes_nothing(capsys, revenue_source, tmp_path, month):
    reports = tmp_path / "reports"
    code, out, err = run(
        capsys, "snapshot", "--source", str(revenue_source), "--month", month, "--reports", str(reports)
    )
    assert code == 2 and COVERS in err and "Traceback" not in err
    assert not reports.exists()  # checked before any notebook runs


def test_a_month_before_the_first_paying_customer_is_refused_even_with_data(tmp_path):
    # A signs up in January but its first subscription starts on March 10: the first month end it pays at is March
    src = write_source(
        tmp_path / "late",
        {
            "accounts": "account_id,segment,created_at\nA,smb,2024-01-05T00:00:00Z\nZ,smb,2024-04-30T12:00:00Z",
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nT,A,2024-01-05,2024-01-20,50\n"
            "S,A,2024-03-10,,100",
        },
    )
    with pytest.raises(
        ParameterError, match="Month 2024-02 is before the first paying customer: the data covers 2024-03 to 2024-04"
    ):
        open_workbook(str(src), "all", "2024-02", interactive=False)
    assert open_workbook(str(src), "all", "", interactive=False).months() == ["2024-04", "2024-03"]


def test_month_picker_offers_only_months_with_data(revenue_source):
    wb = open_workbook(str(revenue_source), "all", "2024-05", interactive=False)
    session = Session(wb)
    assert session.month_options == ["2024-05", "2024-04", "2024-03", "2024-02", "2024-01"]
    assert not session.choose(month="2024-06")  # not an option: refused, nothing changed
    assert session.wb.month_label == "2024-05"
    assert session.choose(month="2024-01") and session.wb.month_label == "2024-01"


def test_default_month_is_the_last_complete_month(capsys, revenue_source):
    code, out, _ = run(capsys, "metrics", "--source", str(revenue_source), "--format", "table")
    assert code == 0 and out.splitlines()[0] == "All customers, 2024-05"
