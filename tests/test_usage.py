"""Stickiness and user retention on six hand-written usage events."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pytest
from conftest import write_source

from saaskpi.frames import month_and_day
from saaskpi.workbook import open_workbook

# u1: Jan 1, Jan 2, Feb 1   u2: Jan 1, Mar 5   u3: Feb 10; Z (no users, no subscription), created Mar 31, marks
# the end of the data: March is complete
USAGE_TABLES = {
    "accounts": "account_id,segment,created_at\nA,smb,2024-01-01T00:00:00Z\nZ,smb,2024-03-31T12:00:00Z",
    "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS,A,2024-01-01,,100",
    "users": """
        user_id,account_id,created_at
        u1,A,2024-01-01T00:00:00Z
        u2,A,2024-01-01T00:00:00Z
        u3,A,2024-02-01T00:00:00Z
    """,
    "usage_events": """
        event_time,user_id,account_id,feature
        2024-01-01T09:00:00Z,u1,A,reports
        2024-01-01T10:00:00Z,u1,A,reports
        2024-01-02T09:00:00Z,u1,A,dashboards
        2024-01-01T11:00:00Z,u2,A,reports
        2024-02-01T09:00:00Z,u1,A,reports
        2024-02-10T09:00:00Z,u3,A,api
        2024-03-05T09:00:00Z,u2,A,reports
    """,
}


@pytest.fixture
def wb(tmp_path):
    return open_workbook(str(write_source(tmp_path / "u", USAGE_TABLES)), "all", "2024-03", interactive=False)


def test_active_users(wb):
    a = wb.table("active_users").set_index(wb.table("active_users").month.dt.strftime("%Y-%m"))
    # Jan: user-days Jan 1 (u1, u2) + Jan 2 (u1) = 3 over 31 days; MAU 2; days 1-7 block has 2 users, others 0
    assert a.loc["2024-01", "dau"] == pytest.approx(3 / 31)
    assert a.loc["2024-01", "mau"] == 2
    assert a.loc["2024-01", "wau"] == pytest.approx(2 / 4)
    # Feb: u1 on the 1st, u3 on the 10th: 2 user-days / 29, two blocks of one user
    assert a.loc["2024-02", "dau"] == pytest.approx(2 / 29)
    assert a.loc["2024-02", "wau"] == pytest.approx(2 / 4)
    assert wb.value("dau_mau_ratio").value == pytest.approx((1 / 31) / 1)  # March: u2 once


def test_user_cohort_retention(wb):
    t = wb.table("user_cohort_retention")
    got = {
        (c.strftime("%Y-%m"), k): (n, a)
        for c, k, n, a in zip(t.cohort_month, t.months_since_start, t.cohort_users, t.active_users)
    }
    # Jan cohort u1, u2: Feb only u1, Mar only u2. Feb cohort u3: gone in Mar.
    # nobody is first active in March, so there is no March cohort
    assert got == {
        ("2024-01", 0): (2, 2),
        ("2024-01", 1): (2, 1),
        ("2024-01", 2): (2, 1),
        ("2024-02", 0): (1, 1),
        ("2024-02", 1): (1, 0),
    }


def test_user_lifecycle(wb):
    life = wb.table("user_lifecycle").set_index(wb.table("user_lifecycle").month.dt.strftime("%Y-%m"))
    # Jan: u1, u2 new. Feb: u1 returning, u3 new, u2 dormant. Mar: u2 resurrecting, u1 and u3 dormant.
    assert life.loc["2024-01", ["new", "returning", "resurrecting", "dormant"]].tolist() == [2, 0, 0, 0]
    assert life.loc["2024-02", ["new", "returning", "resurrecting", "dormant"]].tolist() == [1, 1, 0, 1]
    # and one user of the January cohort (u1, u2: 2 users; Feb u1, Mar u2), as in test_user_cohort_retention
    t = wb.table("user_cohort_retention")
    jan = t[t.cohort_month == "2024-01"]
    assert jan.cohort_users.tolist() == [2, 2, 2] and jan.active_users.tolist() == [2, 1, 1]
    assert life.loc["2024-03", ["new", "returning", "resurrecting", "dormant"]].tolist() == [0, 0, 1, 2]


def test_user_lifecycle_dormant_after_two_months(wb):
    life = wb.with_conventions(dormant_after_months=2).table("user_lifecycle")
    life = life.set_index(life.month.dt.strftime("%Y-%m"))
    # u2 is active in Jan and Mar: one month away is not dormant, so in March u2 is returning, not resurrecting.
    # Nobody is inactive for two whole months by March (u1 last active Feb, u3 Feb): no one has gone dormant.
    assert life.loc["2024-02", ["new", "returning", "resurrecting", "dormant"]].tolist() == [1, 1, 0, 0]
    assert life.loc["2024-03", ["new", "returning", "resurrecting", "dormant"]].tolist() == [0, 1, 0, 0]


def test_usage_metrics_are_na_without_events(revenue_wb):
    v = revenue_wb.value("dau_mau_ratio")
    assert v.status == "n/a" and "usage_events" in v.note


# DuckDB ors a user-month's day bits in SQL (bit_or), Polars with its own bitwise aggregate
@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_a_user_active_in_two_accounts_counts_once_a_day(tmp_path, engine):
    tables = dict(USAGE_TABLES)
    tables["accounts"] += "\nB,smb,2024-01-01T00:00:00Z"
    tables["subscriptions"] += "\nS2,B,2024-01-01,,100"
    # u1 also works in account B: on Jan 1 (a day it was active in A too) and on Jan 20
    tables["usage_events"] = (
        tables["usage_events"].rstrip()
        + """
        2024-01-01T12:00:00Z,u1,B,reports
        2024-01-20T12:00:00Z,u1,B,reports
    """
    )
    wb = open_workbook(str(write_source(tmp_path / "two", tables)), "all", "2024-03", interactive=False, engine=engine)
    a = wb.table("active_users").set_index(wb.table("active_users").month.dt.strftime("%Y-%m"))
    # Jan user-days: u1 on Jan 1, 2, 20 (Jan 1 once, though in two accounts) + u2 on Jan 1 = 4 over 31 days;
    # MAU 2 users; u1 is active in blocks 1-7 and 15-21, u2 in 1-7: 3 user-weeks / 4
    assert a.loc["2024-01", "dau"] == pytest.approx(4 / 31)
    assert a.loc["2024-01", "mau"] == 2
    assert a.loc["2024-01", "wau"] == pytest.approx(3 / 4)
    # per account in January: A has u1 (2 days) and u2 (1 day); B has u1 (2 days)
    jan = wb.with_choice(month="2024-01").table("account_activity").set_index("account_id")
    assert jan.loc["A", ["mau", "user_days"]].tolist() == [2, 3]
    assert jan.loc["B", ["mau", "user_days"]].tolist() == [1, 2]
    # u1's January in two accounts is one user-month: the lifecycle is the one of test_user_lifecycle
    life = wb.table("user_lifecycle").set_index(wb.table("user_lifecycle").month.dt.strftime("%Y-%m"))
    assert life.loc["2024-01", ["new", "returning", "resurrecting", "dormant"]].tolist() == [2, 0, 0, 0]
    assert life.loc["2024-02", ["new", "returning", "resurrecting", "dormant"]].tolist() == [1, 1, 0, 1]


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_day_bits_and_the_heatmap_weeks_across_a_month_end(tmp_path, engine):
    # as of May 2024 the 13 weeks end at Jun 1: week 0 = May 25-31, week 4 = Apr 27-May 3 (it spans April's end),
    # week 12 = Mar 2-8. u1: Apr 28, May 2 (week 4 twice: counted once), May 31 (week 0); u2: Apr 30 (week 4);
    # u3: Mar 1 (before the window), Mar 2 (week 12)
    tables = dict(USAGE_TABLES)
    tables["usage_events"] = """
        event_time,user_id,account_id,feature
        2024-04-28T09:00:00Z,u1,A,reports
        2024-05-02T23:59:59Z,u1,A,reports
        2024-05-31T00:00:00Z,u1,A,reports
        2024-04-30T12:00:00Z,u2,A,reports
        2024-03-01T09:00:00Z,u3,A,api
        2024-03-02T00:00:00Z,u3,A,api
    """
    tables["accounts"] = tables["accounts"].replace("Z,smb,2024-03-31", "Z,smb,2024-05-31")
    wb = open_workbook(str(write_source(tmp_path / "u", tables)), "all", "2024-05", interactive=False, engine=engine)
    bits = wb.table("user_month_activity").set_index(["user_id", "key"]).day_bits
    # bit d - 1 for day d: u1 in April (key 2024*12 + 3 = 24291) 1 << 27; in May 1 << 1 | 1 << 30
    assert bits[("u1", 24291)] == 1 << 27
    assert bits[("u1", 24292)] == (1 << 1) + (1 << 30)
    assert bits[("u3", 24290)] == 0b11  # Mar 1 and Mar 2
    weeks = wb.table("account_weekly_activity").set_index("weeks_ago")
    assert weeks.active_users.to_dict() == {0: 1, 4: 2, 12: 1}
    assert weeks.week_start[4] == pd.Timestamp("2024-04-27")


def test_month_and_day_from_the_calendar():
    utc = dt.UTC
    times = [
        dt.datetime(1970, 1, 1, tzinfo=utc),  # the calendar's first day: key 1970 * 12 + 0 = 23640
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=utc),  # leap day, last microsecond: 2024 * 12 + 1
        dt.datetime(2024, 3, 1, tzinfo=utc),  # the next day: 24290, day 1
        dt.datetime(2099, 12, 31, 23, tzinfo=utc),  # the calendar's last day: 2099 * 12 + 11 = 25199
        dt.datetime(1969, 12, 31, 23, 59, tzinfo=utc),  # before the calendar
        dt.datetime(2100, 1, 1, tzinfo=utc),  # after it
        None,
    ]
    key, day = month_and_day(pl.col("t"))
    got = pl.DataFrame({"t": times}).select(key=key, day=day)
    assert got["key"].to_list() == [23640, 24289, 24290, 25199, None, None, None]
    assert got["day"].to_list() == [1, 29, 1, 31, None, None, None]


def test_events_outside_the_calendar_are_counted_per_event(tmp_path):
    # u1 has an event on 1969-12-31 (before the calendar month_and_day reads): the aggregates are made again with
    # the month and day computed per event, and count it: key 1969 * 12 + 11 = 23639, day 31 (bit 30)
    tables = dict(USAGE_TABLES)
    tables["usage_events"] = tables["usage_events"].rstrip() + "\n        1969-12-31T23:00:00Z,u1,A,reports\n"
    wb = open_workbook(str(write_source(tmp_path / "u", tables)), "all", "2024-03", interactive=False)
    bits = wb.table("user_month_activity").set_index(["user_id", "key"]).day_bits
    assert bits[("u1", 23639)] == 1 << 30
    assert bits[("u1", 24288)] == 0b11  # Jan 1 and Jan 2 2024 (2024 * 12 + 0 = 24288)
    features = wb.table("feature_month_activity").set_index(["account_id", "feature", "key"]).last_day
    assert features[("A", "reports", 23639)] == 31
    assert features[("A", "reports", 24288)] == 1
