"""Product analytics over usage events (metrics/events.py): event funnels in each order mode, retention between
two events and stickiness, on hand-written events with hand-computed expectations."""

from __future__ import annotations

import datetime as dt
import textwrap

import pandas as pd
import polars as pl
import pytest
from conftest import write_source

from saaskpi.errors import ParameterError
from saaskpi.metrics import events as E
from saaskpi.params import _typed
from saaskpi.workbook import open_workbook

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
START, END = dt.datetime(2024, 4, 1, tzinfo=dt.UTC), dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def at(**delta) -> dt.datetime:
    return T0 + dt.timedelta(**delta)


def frame(*rows) -> pl.DataFrame:
    """Collected events: (person, event, time[, properties]); the account is the person's upper-case name."""
    return pl.DataFrame(
        {
            "person": [r[0] for r in rows],
            "account_id": [r[0].upper() for r in rows],
            "event_time": [r[2] for r in rows],
            "event": [r[1] for r in rows],
            "feature": ["f"] * len(rows),
            "properties": [r[3] if len(r) > 3 else None for r in rows],
        },
        schema_overrides={"event_time": pl.Datetime("us", "UTC")},
    )


def strict_frame(*rows) -> pl.DataFrame:
    """Events with `seq`, their place among the person's events, as the engine numbers them."""
    ev = frame(*rows).with_row_index("i")
    seq = ev.sort("event_time", "i").with_columns(seq=pl.int_range(1, pl.len() + 1).over("person"))
    return seq.drop("i").with_columns(pl.col("seq").cast(pl.Int64))


def funnel(order="ordered", window="7 days", steps=("a", "b", "c"), **more) -> E.Funnel:
    return E.Funnel(name="f", steps=[E.Step(event=s) for s in steps], window=window, order=order, **more)


def people(events, f) -> dict[str, tuple]:
    """person -> (furthest step, t1, t2, ...) of the counted attempt."""
    got = E.funnel_people(events, f, START, END)
    n = len(f.steps)
    return {r["person"]: (r["reached"], *[r[f"t{k}"] for k in range(1, n + 1)]) for r in got.iter_rows(named=True)}


def test_ordered_wrong_order_and_skipped_step():
    ev = frame(
        # p1: c, b, a: the wrong order; only a counts (nothing after it)
        ("p1", "c", at()),
        ("p1", "b", at(hours=1)),
        ("p1", "a", at(hours=2)),
        # p2: a, c: b skipped, so c does not count either
        ("p2", "a", at()),
        ("p2", "c", at(hours=1)),
        # p3: a, x, b, c with another event between steps: ordered allows it
        ("p3", "a", at()),
        ("p3", "x", at(minutes=1)),
        ("p3", "b", at(minutes=2)),
        ("p3", "c", at(minutes=3)),
    )
    got = people(ev, funnel())
    assert got["p1"] == (1, at(hours=2), None, None)
    assert got["p2"] == (1, at(), None, None)
    assert got["p3"] == (3, at(), at(minutes=2), at(minutes=3))


def test_repeated_attempts_count_once_at_the_furthest_step_with_first_attempt_times():
    ev = frame(
        # p1: attempt 1 (a at 0, b at 1 h) reaches 2; attempt 2 (a at day 2) reaches 3: counted at 3, times of attempt 2
        ("p1", "a", at()),
        ("p1", "b", at(hours=1)),
        ("p1", "a", at(days=2)),
        ("p1", "b", at(days=2, hours=1)),
        ("p1", "c", at(days=2, hours=2)),
        # p2: completes twice (a 0, b 1 h, c 2 h and a day 1, b day 1 +1 h, c day 1 + 2 h): the first attempt's times
        ("p2", "a", at()),
        ("p2", "b", at(hours=1)),
        ("p2", "c", at(hours=2)),
        ("p2", "a", at(days=1)),
        ("p2", "b", at(days=1, hours=1)),
        ("p2", "c", at(days=1, hours=2)),
    )
    got = people(ev, funnel())
    # p1's attempt 1 also sees b and c after day 2, but c (day 2 + 2 h) is within 7 days of a at 0 too: greedy
    # earliest matches b at 1 h, then c at day 2 + 2 h -> attempt 1 reaches 3 first (a 0, b 1 h, c day 2 + 2 h)
    assert got["p1"] == (3, at(), at(hours=1), at(days=2, hours=2))
    assert got["p2"] == (3, at(), at(hours=1), at(hours=2))
    table = E.step_table(E.funnel_people(ev, funnel(), START, END), funnel()).set_index("step")
    assert table.entered.tolist() == [2, 2, 2]
    # time from b to c: p1 day 2 + 1 h (176,400 s) and p2 1 h (3,600 s): mean 90,000 s, median the same
    assert table.loc[3, "mean_seconds_to_convert"] == pytest.approx((176_400 + 3_600) / 2)
    assert table.loc[3, "median_seconds_to_convert"] == pytest.approx(90_000)


def test_attempt_outside_the_window_is_replaced_by_a_later_one():
    # a at 0, b at day 10 (outside 7 days of it); a again at day 9, b at day 10: attempt 2 converts
    ev = frame(("p", "a", at()), ("p", "a", at(days=9)), ("p", "b", at(days=10)))
    got = people(ev, funnel(steps=("a", "b")))
    assert got["p"] == (2, at(days=9), at(days=10))


def test_window_boundary_is_inclusive_and_five_minute_windows():
    ev = frame(
        ("on", "a", at()),
        ("on", "b", at(days=7)),  # exactly 7 days: converts
        ("late", "a", at()),
        ("late", "b", at(days=7, seconds=1)),  # one second late: does not
    )
    got = people(ev, funnel(steps=("a", "b")))
    assert got["on"][0] == 2 and got["late"][0] == 1
    five = frame(
        ("p1", "a", at()),
        ("p1", "b", at(minutes=5)),  # 300 s: in
        ("p2", "a", at()),
        ("p2", "b", at(minutes=5, seconds=1)),  # 301 s: out
        ("p3", "a", at()),
        ("p3", "b", at()),  # same instant as step 1: in (steps may share a timestamp)
    )
    got = people(five, funnel(steps=("a", "b"), window="5 minutes"))
    assert {p: r[0] for p, r in got.items()} == {"p1": 2, "p2": 1, "p3": 2}


def test_two_people_converting_at_the_same_timestamp():
    ev = frame(("p1", "a", at()), ("p2", "a", at()), ("p1", "b", at(hours=3)), ("p2", "b", at(hours=3)))
    table = E.step_table(E.funnel_people(ev, funnel(steps=("a", "b")), START, END), funnel(steps=("a", "b")))
    # both enter and convert: 2 and 2, conversion 2 / 2 = 1, time to convert 3 h = 10,800 s each
    assert table.entered.tolist() == [2, 2]
    assert table.conversion_from_first.tolist() == [1.0, 1.0]
    assert table.mean_seconds_to_convert[1] == pytest.approx(10_800)


def test_exclusion_step_disqualifies_the_attempt():
    f = funnel(steps=("a", "b"), exclusions=[E.Exclusion(event="x", between=[1, 2])])
    ev = frame(
        ("bad", "a", at()),
        ("bad", "x", at(hours=1)),  # between a and b: disqualified, and it has no other attempt: left out
        ("bad", "b", at(hours=2)),
        ("after", "a", at()),
        ("after", "b", at(hours=1)),
        ("after", "x", at(hours=2)),  # after b: no effect
        ("retry", "a", at()),
        ("retry", "x", at(hours=1)),  # spoils attempt 1 ...
        ("retry", "a", at(hours=2)),  # ... attempt 2 converts cleanly
        ("retry", "b", at(hours=3)),
        ("dropped", "a", at()),
        ("dropped", "x", at(days=1)),  # in the window without b: the attempt is disqualified too
    )
    got = people(ev, f)
    assert set(got) == {"after", "retry"}
    assert got["retry"] == (2, at(hours=2), at(hours=3))


def test_strict_order_needs_consecutive_events():
    f = funnel(order="strict", steps=("a", "b"))
    ev = strict_frame(
        ("p1", "a", at()),
        ("p1", "x", at(minutes=1)),  # something between: not strict
        ("p1", "b", at(minutes=2)),
        ("p2", "a", at()),
        ("p2", "b", at(minutes=2)),
    )
    got = people(ev.filter(pl.col("event") != "x"), f)  # only step events are collected; seq keeps the gap
    assert got["p1"][0] == 1 and got["p2"] == (2, at(), at(minutes=2))


def test_any_order():
    f = funnel(order="any")
    ev = frame(
        ("p1", "c", at()),
        ("p1", "a", at(hours=1)),
        ("p1", "b", at(hours=2)),  # all three in any order: 3, times 0, 1 h, 2 h
        ("p2", "b", at()),
        ("p2", "b", at(hours=1)),  # the same step twice counts once: 1
        ("p3", "a", at()),
        ("p3", "c", at(days=8)),  # outside the window: 1
    )
    got = people(ev, f)
    assert got["p1"] == (3, at(), at(hours=1), at(hours=2))
    assert got["p2"][0] == 1 and got["p3"][0] == 1


def test_property_filters():
    f = E.Funnel(
        name="f", steps=[E.Step(event="a", properties={"plan": "pro", "n": 2}), E.Step(event="b")], window="1 day"
    )
    ev = frame(
        ("p1", "a", at(), '{"plan": "pro", "n": 2}'),
        ("p1", "b", at(hours=1)),
        ("p2", "a", at(), '{"plan": "free", "n": 2}'),  # another plan: never enters
        ("p2", "b", at(hours=1)),
    )
    assert set(people(ev, f)) == {"p1"}


def test_settings_are_checked():
    with pytest.raises(ValueError, match="window"):
        E.window_seconds("7 fortnights")
    assert E.window_seconds("5 minutes") == 300 and E.window_seconds("1 week") == 604_800
    with pytest.raises(ParameterError, match="between"):
        _typed(
            E.ProductSettings,
            {
                "funnels": [
                    {
                        "name": "f",
                        "steps": [{"event": "a"}, {"event": "b"}],
                        "exclusions": [{"event": "x", "between": [2, 1]}],
                    }
                ],
                "retention": {"start": {"event": "a"}, "returning": {"event": "b"}},
            },
            "product_funnels.yaml",
        )
    with pytest.raises(ParameterError, match="exactly one"):
        _typed(E.Step, {"event": "a", "feature": "b"}, "product_funnels.yaml")
    E.settings()  # the project's own file is valid


def days(*rows) -> pl.DataFrame:
    return pl.DataFrame({"person": [r[0] for r in rows], "day": [dt.date.fromisoformat(r[1]) for r in rows]})


def test_retention_matrix_first_time_and_recurring():
    # weeks start on Monday: Apr 29, May 6, May 13; the data ends May 20 (exclusive), so three complete weeks
    starts = days(("p1", "2024-04-29"), ("p2", "2024-05-01"), ("p1", "2024-05-07"), ("p3", "2024-05-08"))
    back = days(("p1", "2024-05-02"), ("p1", "2024-05-08"), ("p2", "2024-05-14"), ("p3", "2024-05-15"))
    r = E.Retention(start=E.Step(event="a"), returning=E.Step(event="b"), period="week", periods=3)
    got = E.retention_matrix(starts, back, r, dt.date(2024, 5, 20))
    cells = {
        (c.strftime("%m-%d"), k): (n, b)
        for c, k, n, b in zip(got.cohort_start, got.period, got.cohort_people, got.returned)
    }
    # first time: week Apr 29 = {p1, p2}: week 0 p1 (May 2), week 1 p1 (May 8), week 2 p2 (May 14)
    #             week May 6 = {p3}: week 0 nobody, week 1 p3 (May 15)
    assert cells == {
        ("04-29", 0): (2, 1),
        ("04-29", 1): (2, 1),
        ("04-29", 2): (2, 1),
        ("05-06", 0): (1, 0),
        ("05-06", 1): (1, 1),
    }
    recurring = E.retention_matrix(starts, back, r.model_copy(update={"mode": "recurring"}), dt.date(2024, 5, 20))
    # recurring: p1 is in the May 6 cohort too (a on May 7): week May 6 = {p1, p3}: week 0 p1 (May 8), week 1 p3
    row = recurring[recurring.cohort_start == "2024-05-06"].set_index("period")
    assert row.cohort_people.tolist() == [2, 2] and row.returned.tolist() == [1, 1]
    assert row.retention_rate.tolist() == [0.5, 0.5]


def test_retention_matrix_by_month_stops_at_the_last_complete_month():
    # the data ends Apr 1 (exclusive): January, February and March are complete. p1 starts in January and comes back
    # in February (k = 1) and March (k = 2); p2 starts in February, comes back in February (k = 0) and on Apr 2 (a
    # month not shown: the February cohort has k = 0 and 1 only)
    starts = days(("p1", "2024-01-15"), ("p2", "2024-02-03"))
    back = days(("p1", "2024-02-10"), ("p1", "2024-03-31"), ("p2", "2024-02-28"), ("p2", "2024-04-02"))
    r = E.Retention(start=E.Step(event="a"), returning=E.Step(event="b"), period="month", periods=3)
    got = E.retention_matrix(starts, back, r, dt.date(2024, 4, 1))
    cells = [(c.strftime("%m"), k, n, b, rate) for c, k, n, b, rate in got.itertuples(index=False)]
    assert cells == [
        ("01", 0, 1, 0, 0.0),
        ("01", 1, 1, 1, 1.0),
        ("01", 2, 1, 1, 1.0),
        ("02", 0, 1, 1, 1.0),
        ("02", 1, 1, 0, 0.0),
    ]


def test_stickiness_counts_days_active_per_complete_month():
    ev = days(
        ("p1", "2024-04-01"), ("p1", "2024-04-02"), ("p2", "2024-04-03"), ("p1", "2024-05-01"), ("p1", "2024-05-31")
    )
    got = E.stickiness_table(ev, E.Stickiness(period="month", periods=2), dt.date(2024, 6, 1))
    rows = {
        (p.strftime("%m"), d): (n, a)
        for p, d, n, a in zip(got.period_start, got.days_active, got.people, got.active_people)
    }
    # April: p1 2 days, p2 1 day (of 2 active people); May: p1 2 days (of 1)
    assert rows == {("04", 1): (1, 2), ("04", 2): (1, 2), ("05", 2): (1, 1)}
    weeks = E.stickiness_table(ev, E.Stickiness(period="week", periods=1), dt.date(2024, 4, 8))
    # the week of Monday Apr 1 - Sun Apr 7: p1 2 days, p2 1 day
    assert weeks.days_active.tolist() == [1, 2] and weeks.people.tolist() == [1, 1]


# A workbook over a literal source: an anonymous id merged into U1 by user_aliases (its events come before U1's
# sign-up and are kept), events named by `event` or, when empty, by their feature.
SOURCE = {
    "accounts": """
        account_id,segment,created_at,acquisition_channel
        A1,smb,2024-01-01T00:00:00Z,organic
        A2,enterprise,2024-01-01T00:00:00Z,outbound
    """,
    "subscriptions": """
        subscription_id,account_id,start_date,end_date,amount,plan
        S1,A1,2024-01-01,,100,pro
        S2,A2,2024-01-01,,900,
    """,
    "users": """
        user_id,account_id,created_at
        U1,A1,2024-05-02T00:00:00Z
        U2,A2,2024-04-01T00:00:00Z
    """,
    "user_aliases": """
        alias_id,user_id
        anon-7,U1
    """,
    "usage_events": """
        event_time,user_id,account_id,feature,event,properties
        2024-05-01T10:00:00Z,anon-7,A1,dashboards,signed_up,
        2024-05-03T10:00:00Z,U1,A1,reports,created_project,"{""template"": ""blank""}"
        2024-05-04T10:00:00Z,U1,A1,sharing,,
        2024-05-10T10:00:00Z,U2,A2,dashboards,signed_up,
        2024-05-31T23:00:00Z,U2,A2,dashboards,,
    """,
}
FUNNELS = """
    funnels:
      - name: activation
        steps: [{event: signed_up}, {event: created_project}, {event: sharing}]
        window: 7 days
        period_days: 60
    retention:
      start: {event: signed_up}
      returning: {feature: dashboards}
      period: week
      periods: 3
"""


@pytest.fixture(scope="module")
def literal(tmp_path_factory):
    return write_source(tmp_path_factory.mktemp("product") / "src", SOURCE)


@pytest.fixture
def literal_wb(literal, tmp_path, monkeypatch):
    path = tmp_path / "product_funnels.yaml"
    path.write_text(textwrap.dedent(FUNNELS), encoding="utf-8")
    monkeypatch.setattr(E, "PRODUCT_FUNNELS_FILE", path)
    # the results store keys on parameters/ only: funnels from a file elsewhere get a store of their own
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    return open_workbook(str(literal), "all", "2024-05", interactive=False)


def test_alias_merge_and_events_before_sign_up(literal_wb):
    people = literal_wb.table("product_funnel_people").set_index("person")
    # anon-7 is U1: its signed_up (May 1, a day before U1's sign-up) starts U1's attempt; created_project May 3,
    # then the `sharing` step is the feature of an event without a name (May 4): U1 completes 3 steps
    assert people.loc["U1"].furthest_step == 3 and "anon-7" not in people.index
    assert people.loc["U1"].t1 == pd.Timestamp("2024-05-01T10:00:00Z")
    # U2 signs up and does nothing else: dropped at step 2
    assert people.loc["U2"].furthest_step == 1 and people.loc["U2"].dropped_at_step == 2
    funnel = literal_wb.table("product_funnel").set_index("step")
    assert funnel.entered.tolist() == [2, 1, 1]
    assert funnel.conversion_from_previous.tolist() == [1.0, 0.5, 1.0]
    by = literal_wb.table("product_funnel_by")
    plan = by[(by.breakdown == "plan") & (by.step == 1)].set_index("value").entered.to_dict()
    # U1's account A1 is on pro; A2's plan is empty
    assert plan == {"pro": 1, E.NONE: 1}
    cohort = by[(by.breakdown == "signup_cohort") & (by.step == 1)].set_index("value").entered.to_dict()
    assert cohort == {"2024-04": 1, "2024-05": 1}  # U2 signed up in April, U1 in May


def test_event_retention_and_stickiness_on_the_workbook(literal_wb):
    r = literal_wb.table("event_retention")
    # Jun 1 2024 is a Saturday: the complete weeks (Monday to Sunday) before it are May 6, 13 and 20 (May 27 is
    # not over). U1's signed_up (May 1, as anon-7) is in the week of Apr 29, before them; U2's (May 10) makes
    # the May 6 cohort, back on dashboards the same day (week 0), not in weeks 1 and 2 (May 31 is in May 27's)
    assert r.cohort_start.dt.strftime("%m-%d").unique().tolist() == ["05-06"]
    assert r.returned.tolist() == [1, 0, 0] and r.cohort_people.tolist() == [1, 1, 1]
    s = literal_wb.table("stickiness")
    # May (the last complete month; March and April have no events): U1 3 days (May 1 as anon-7, 3, 4), U2 2 days
    may = s[s.period_start == "2024-05-01"]
    assert may.days_active.tolist() == [2, 3] and may.people.tolist() == [1, 1]


PARITY_FUNNELS = """
    funnels:
      - name: ordered
        steps: [{event: signed_up}, {event: created_project, properties: {template: blank}}, {event: sharing}]
        window: 7 days
        period_days: 60
      - name: strict
        steps: [{event: signed_up}, {event: created_project}]
        window: 3 days
        order: strict
        period_days: 60
      - name: any
        steps: [{feature: dashboards}, {event: created_project}]
        window: 30 days
        order: any
        count_by: account
        exclusions: [{event: sharing, between: [1, 2]}]
        period_days: 60
    retention:
      start: {event: signed_up}
      returning: {feature: dashboards}
      period: day
      periods: 30  # May 2 - 31: U2's signed_up (May 10) starts a cohort
      mode: recurring
    stickiness: {period: week, periods: 4}
"""
PRODUCT_TABLES = ("product_funnel_people", "product_funnel", "product_funnel_by", "event_retention", "stickiness")


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_parity_on_duckdb_and_spark(literal, tmp_path, monkeypatch, engine):
    from test_parity import compare, spark_available

    if engine == "spark" and not spark_available():
        pytest.skip("pyspark or Java missing")
    path = tmp_path / "product_funnels.yaml"
    path.write_text(textwrap.dedent(PARITY_FUNNELS), encoding="utf-8")
    monkeypatch.setattr(E, "PRODUCT_FUNNELS_FILE", path)
    # the results store keys on parameters/ only: funnels from a file elsewhere get a store of their own
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    base = open_workbook(str(literal), "all", "2024-05", interactive=False)
    other = open_workbook(str(literal), "all", "2024-05", interactive=False, engine=engine)
    for name in PRODUCT_TABLES:
        assert not base.table(name).empty, name
        compare(base.table(name), other.table(name))


def test_demo_event_names_walk_the_activation_sequence_without_changing_rows():
    import pandas as pd

    from saaskpi.demo.activity import event_names

    t = pd.Timestamp("2024-05-01T09:00:00Z")
    rows = pd.DataFrame(
        {
            # U0000001: share 1 x 37 mod 100 = 37 < 41: walks all four steps; U0000002: 74 (>= 58, < 82): two steps
            "event_time": [t + pd.Timedelta(hours=h) for h in (4, 0, 1, 2, 3, 0, 1, 2)],
            "user_id": ["U0000001"] * 5 + ["U0000002"] * 3,
            "account_id": "A1",
            "feature": ["admin", "dashboards", "reports", "sharing", "alerts", "api", "dashboards", "reports"],
            "duration_seconds": range(8),
        }
    )
    got = event_names(rows)
    pd.testing.assert_frame_equal(got[rows.columns], rows)  # the rows drawn before stay as they were
    assert got.event.tolist() == [
        "changed_settings",  # U1's fifth event (4 h): past the sequence, named after its feature
        "signed_up",
        "created_project",
        "invited_teammate",
        "shared_dashboard",
        "signed_up",  # U2: 74 is below 82 (created_project) but not 58 (invited_teammate)
        "created_project",
        "ran_report",
    ]
    # templates by user number: 1 % 4 = 1 -> sales_pipeline, 2 % 4 = 2 -> marketing_plan
    assert got.properties.dropna().tolist() == ['{"template": "sales_pipeline"}', '{"template": "marketing_plan"}']


def test_page_without_usage_events_is_one_sentence(revenue_wb):
    from conftest import page_html

    from saaskpi.pages import product_analytics as page

    for section in (page.show_funnel, page.show_breakdown, page.show_retention, page.show_stickiness):
        text = page_html(section, revenue_wb)
        assert "needs the `usage_events` table" in text and "Something went wrong" not in text, section.__name__


def test_person_periods_are_counted_in_the_engine_across_a_new_year(tmp_path):
    src = write_source(
        tmp_path / "ny",
        {
            "accounts": "account_id,segment,created_at\nA1,smb,2024-12-01T00:00:00Z",
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS1,A1,2024-12-01,,10",
            "users": "user_id,account_id,created_at\nU1,A1,2024-12-01T00:00:00Z",
            # Tue Dec 31 2024 (twice) and Wed Jan 1 2025 are in the week of Monday Dec 30; Mon Jan 6 starts the next
            "usage_events": """
                event_time,user_id,account_id,feature
                2024-12-31T10:00:00Z,U1,A1,reports
                2024-12-31T11:00:00Z,U1,A1,reports
                2025-01-01T10:00:00Z,U1,A1,reports
                2025-01-06T10:00:00Z,U1,A1,reports
                2025-01-31T10:00:00Z,U1,A1,reports
            """,
        },
    )
    wb = open_workbook(str(src), "all", "2025-01", interactive=False)
    end = dt.date(2025, 2, 1)
    weeks = E._person_days(wb.tables, None, "user", None, end, "week").sort("day")
    # the week of Dec 30 is keyed (2024, ordinal 365) and (2025, ordinal -1): both parts add up to 2 days
    assert weeks.rows() == [
        ("U1", dt.date(2024, 12, 30), 2),
        ("U1", dt.date(2025, 1, 6), 1),
        ("U1", dt.date(2025, 1, 27), 1),
    ]
    months = E._person_days(wb.tables, None, "user", dt.date(2025, 1, 1), end, "month").sort("day")
    assert months.rows() == [("U1", dt.date(2025, 1, 1), 3)]  # Jan 1, 6 and 31 (December is before `since`)


@pytest.mark.parametrize("order", ["strict", "ordered", "any"])
def test_events_from_the_period_start_give_the_same_people(literal_wb, order):
    # funnel_events(since=start) leaves out the events before the period (and, strict, the people who cannot
    # start an attempt): the people are those of all the events, wherever the period starts
    f = funnel(order=order, window="3 days", steps=("signed_up", "created_project"))
    end = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    everything = E.funnel_events(literal_wb.tables, f)
    for start in ("2024-04-01T00:00", "2024-05-01T10:00", "2024-05-02T00:00", "2024-05-10T10:00"):
        since = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC)
        got = E.funnel_people(E.funnel_events(literal_wb.tables, f, since=since), f, since, end)
        assert got.equals(E.funnel_people(everything, f, since, end)), (order, start)
    # from May 1 10:00 (U1's signed_up, as anon-7): U1's next event is created_project on May 3, 10:00 (48 h
    # later, within 3 days), so U1 reaches step 2 in every order; U2 (signed_up May 10) reaches step 1
    since = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    got = E.funnel_people(E.funnel_events(literal_wb.tables, f, since=since), f, since, end)
    assert dict(zip(got["person"], got["reached"])) == {"U1": 2, "U2": 1}


def test_the_loose_funnels_events_from_one_pass_are_each_funnels_own(literal_wb):
    # ordered and any-order funnels take their events from one collection (loose_funnel_events, from the earliest
    # period start): the same rows as each funnel's own pass, counted by user (aliases merged) or by account
    funnels = [
        funnel(order="ordered", steps=("signed_up", "created_project")),
        funnel(order="any", steps=("created_project", "invited_teammate"), count_by="account"),
    ]
    earliest = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)
    loose = E.loose_funnel_events(literal_wb.tables, funnels, earliest)
    for f, since in zip(funnels, (earliest, dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC))):
        own = E.funnel_events(literal_wb.tables, f, since=since).sort(pl.all())
        shared = E.funnel_events_in(loose, f, since).select(own.columns).sort(pl.all())
        assert shared.height and shared.equals(own), f.order


# A strict funnel numbers only its starters' events on the days their windows cover (`_near_first_steps`).
STRICT_EVENTS = """
    event_time,user_id,account_id,feature,event,properties
    2024-05-01T23:30:00Z,U1,A1,f,a,
    2024-05-02T00:10:00Z,U1,A1,f,b,
    2024-05-05T10:00:00Z,U2,A2,f,a,
    2024-05-05T11:00:00Z,U2,A2,f,x,
    2024-05-05T12:00:00Z,U2,A2,f,b,
    2024-05-10T10:00:00Z,U1,A1,f,a,
    2024-05-14T09:00:00Z,U1,A1,f,x,
    2024-05-16T09:00:00Z,U1,A1,f,b,
    2024-05-16T10:00:00Z,U1,A1,f,a,
"""


@pytest.fixture(scope="module")
def strict_tables(tmp_path_factory):
    source = write_source(tmp_path_factory.mktemp("strict") / "src", SOURCE | {"usage_events": STRICT_EVENTS})
    return open_workbook(str(source), "all", "2024-04", interactive=False).tables  # May is not over


@pytest.mark.parametrize("window", ["3 days", "40 days"])
def test_strict_funnel_events_near_first_steps_give_the_people_of_every_event(strict_tables, window):
    f = funnel(order="strict", window=window, steps=("a", "b"))
    got = people(E.funnel_events(strict_tables, f, since=START), f)
    rows = [line.split(",") for line in textwrap.dedent(STRICT_EVENTS).strip().splitlines()[1:]]
    every = strict_frame(*[(r[1], r[4], dt.datetime.fromisoformat(r[0])) for r in rows])
    assert got == people(every.with_columns(account_id=pl.col("person").str.replace("U", "A")), f)
    # U1: a on May 1 at 23:30, b next at 00:10 on May 2, a day the window covers (3 days: May 1-4; 40 days: the
    # old way, every event numbered); U1's a on May 10 is followed by x (May 14), b (May 16, outside the May 10-13
    # days: not numbered, and after the 3-day deadline anyway), then a on May 16 with nothing after it.
    # U2: x between a and b
    assert got["U1"] == (
        2,
        dt.datetime(2024, 5, 1, 23, 30, tzinfo=dt.UTC),
        dt.datetime(2024, 5, 2, 0, 10, tzinfo=dt.UTC),
    )
    assert got["U2"][0] == 1
    numbered = E.funnel_events(strict_tables, f, since=START)
    # U1's b on May 16 is U1's 5th event (a, b, a, x, b); with 3 days, x (May 14) is on no day a window covers (May
    # 1-4, 10-13, 16-19), so that b is the 4th numbered
    b = numbered.filter((pl.col("person") == "U1") & (pl.col("event") == "b") & (pl.col("event_time").dt.day() == 16))
    assert b["seq"].to_list() == [4 if window == "3 days" else 5]
