"""Issue 25, items 7-9: spike alerts between months, ticket volume and uptime, voice of the customer (comment
themes, CSM health overrides), the metric review cycle and the accounts behind the tiles. Literal sources with
hand arithmetic; the pages without the optional tables."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from conftest import REVENUE_TABLES, page_html, write_source

from saaskpi import alerts, spikes
from saaskpi.delivery.content import Page, read_alerts, read_spikes
from saaskpi.errors import ParameterError
from saaskpi.metrics import review, voice
from saaskpi.metrics.service import churn_events, downtime_seconds, week_start
from saaskpi.pages import benchmarks, cohort_retention, cs_load
from saaskpi.workbook import open_workbook

# REVENUE_TABLES (conftest) plus the optional tables of issue 25:
#   tickets: K1 Feb 1, K2 Feb 5 (CSAT 1), K3 Feb 20 (CSAT 5), K4 Mar 4        -> Feb 3 tickets, Mar 1
#   NPS: R1 Feb 10 (2), R2 Feb 11 (9), R3 Feb 12 (6), R4 Mar 1 (10)            -> Feb 3 answers, 2 with a comment
#   incidents: I1 Feb 1 00:00-01:00 and I2 00:30-02:00 overlap (2 h), I3 Feb 29 23:00 - Mar 1 01:00 (1 h + 1 h),
#              I4 May 31 12:00, still down at the data's end (12 h in May)
VOICE_TABLES = {
    **REVENUE_TABLES,
    "support_tickets": """
        ticket_id,account_id,created_at,priority,csat
        K1,A1,2024-02-01T08:00:00Z,high,
        K2,A2,2024-02-05T08:00:00Z,low,1
        K3,A4,2024-02-20T08:00:00Z,normal,5
        K4,A5,2024-03-04T08:00:00Z,normal,
    """,
    "nps_responses": """
        response_id,account_id,responded_at,score
        R1,A1,2024-02-10T00:00:00Z,2
        R2,A4,2024-02-11T00:00:00Z,9
        R3,A5,2024-02-12T00:00:00Z,6
        R4,A1,2024-03-01T00:00:00Z,10
    """,
    "survey_comments": """
        survey_id,survey,comment
        R1,nps,Support response time is too slow.
        R3,nps,"Support response time is slow for urgent issues."
        K3,csat,"Great support, quick answers."
        R4,nps,Pricing is fair.
    """,
    "health_overrides": """
        account_id,date,score,band,reason
        A1,2024-04-10,,red,Champion left
        A1,2024-05-20,,,Back to the computed score
        A4,2024-05-02,35,red,Budget cut
        A5,2024-06-03,80,green,Renewal confirmed
    """,
    "service_status": """
        incident_id,started_at,ended_at
        I1,2024-02-01T00:00:00Z,2024-02-01T01:00:00Z
        I2,2024-02-01T00:30:00Z,2024-02-01T02:00:00Z
        I3,2024-02-29T23:00:00Z,2024-03-01T01:00:00Z
        I4,2024-05-31T12:00:00Z,
    """,
}


@pytest.fixture(scope="module")
def voice_source(tmp_path_factory):
    return write_source(tmp_path_factory.mktemp("voice"), VOICE_TABLES)


@pytest.fixture(scope="module")
def voice_wb(voice_source):
    return open_workbook(str(voice_source), "all", "2024-05", interactive=False)


def values(series: pd.DataFrame) -> dict[str, float]:
    return {f"{m:%Y-%m}": v for m, v in zip(series.month, series.value, strict=True)}


# --------------------------------------------------------------------------- weekly counts and spikes
def test_churn_events_are_the_days_an_account_stops_paying(voice_wb):
    # A2 S3 ends Feb 15 with nothing open (S4 starts Apr 1): 50; A6 S10 ends Mar 20: 80; A3 S5 ends Apr 1: 1200/12
    # = 100. A1 S1 ends Mar 1 and A4 S6 May 1, each on the day its next subscription starts: not a churn.
    ev = churn_events(voice_wb.tables, voice_wb.conventions).sort_values("date")
    assert list(ev.account_id) == ["A2", "A6", "A3"]
    assert [f"{d:%Y-%m-%d}" for d in ev.date] == ["2024-02-15", "2024-03-20", "2024-04-01"]
    assert list(ev.mrr) == [50.0, 80.0, 100.0]


def test_weekly_counts(voice_wb):
    w = voice_wb.table("weekly_counts")
    # weeks Monday to Sunday wholly inside Jan 1 (a Monday) - May 31: Jan 1 ... May 20 (May 27 - Jun 2 is not complete)
    weeks = w[w.metric == "churned_accounts"].week
    assert f"{weeks.min():%Y-%m-%d}" == "2024-01-01" and f"{weeks.max():%Y-%m-%d}" == "2024-05-20"
    assert len(weeks) == 21  # (May 20 - Jan 1) / 7 + 1 = 140 / 7 + 1
    mrr = w[(w.metric == "churned_mrr") & (w.value > 0)]
    # Feb 15 (Thu) -> week of Feb 12; Mar 20 (Wed) -> Mar 18; Apr 1 (Mon) -> Apr 1
    assert {f"{r.week:%Y-%m-%d}": (r.value, r.n) for r in mrr.itertuples()} == {
        "2024-02-12": (50.0, 1),
        "2024-03-18": (80.0, 1),
        "2024-04-01": (100.0, 1),
    }
    tickets = w[(w.metric == "tickets_opened") & (w.value > 0)]
    # K1 Feb 1 (Thu) -> Jan 29; K2 Feb 5 -> Feb 5; K3 Feb 20 (Tue) -> Feb 19; K4 Mar 4 (Mon) -> Mar 4
    assert [f"{d:%Y-%m-%d}" for d in tickets.week] == ["2024-01-29", "2024-02-05", "2024-02-19", "2024-03-04"]
    assert w.groupby("metric").value.sum().to_dict() == {
        "churned_accounts": 3.0,
        "churned_mrr": 230.0,
        "tickets_opened": 4.0,
    }


def test_week_start_and_latest_complete_week():
    assert f"{week_start(pd.Series(pd.to_datetime(['2024-02-15T23:59:00Z']))).iloc[0]:%Y-%m-%d}" == "2024-02-12"
    # May 31 2024 is a Friday: the last complete week is May 20-26; Mar 31 2024 is a Sunday: Mar 25-31
    assert f"{spikes.latest_week(pd.Timestamp('2024-05-31')):%Y-%m-%d}" == "2024-05-20"
    assert f"{spikes.latest_week(pd.Timestamp('2024-03-31')):%Y-%m-%d}" == "2024-03-25"


BASE_WEEKS = [10, 12, 11, 9, 10, 13, 10, 11, 12, 10, 9, 11]


def weekly(latest: float, n: int | None = None) -> pd.DataFrame:
    weeks = pd.date_range("2024-01-01", periods=13, freq="7D")
    v = [float(x) for x in [*BASE_WEEKS, latest]]
    return pd.DataFrame(
        {"metric": "tickets_opened", "week": weeks, "value": v, "n": [int(x) for x in v[:-1]] + [n or int(latest)]}
    )


def test_spike_rule_by_hand():
    # the 12 weeks before: sorted 9 9 10 10 10 10 11 11 11 12 12 13 -> median (10 + 11) / 2 = 10.5
    # |x - 10.5|: seven 0.5, four 1.5, one 2.5 -> MAD 0.5; spread = max(1.4826 x 0.5 = 0.74, 0.1 x 10.5 = 1.05) = 1.05
    # range 10.5 -/+ 3 x 1.05 = 7.35 to 13.65
    s = spikes.SpikeSettings(weeks=12, k=3.0, min_spread=0.1, min_events=3)
    latest = pd.Timestamp("2024-03-25")
    hi = spikes.check(weekly(30), latest, s)
    assert (hi.median, hi.low, hi.high, hi.fired) == (10.5, pytest.approx(7.35), pytest.approx(13.65), "above")
    assert spikes.check(weekly(13), latest, s).fired == ""
    assert spikes.check(weekly(5), latest, s).fired == "below"
    assert spikes.check(weekly(30, n=2), latest, s).fired == ""  # 2 events: below min_events
    # MAD wins when it is larger: k = 1, min_spread 0 -> spread 0.7413, high 11.2413
    assert spikes.check(weekly(12), latest, spikes.SpikeSettings(12, 1.0, 0.0, 0)).fired == "above"
    short = spikes.check(weekly(30), latest, spikes.SpikeSettings(weeks=20))
    assert short.fired == "" and math.isnan(short.median)  # only 12 earlier weeks
    assert "too few earlier weeks" in short.message()
    assert hi.message() == (
        "Tickets opened spike: 30 in the week of 2024-03-25, above its usual range 7.3 to 13.7, median 10.5"
    )


def test_spike_settings_are_validated(tmp_path):
    f = tmp_path / "alerts.yaml"
    assert spikes.settings(f) == spikes.SpikeSettings()  # no file: defaults
    for bad, words in (
        ("spikes: {weeks: 2}", "at least 4"),
        ("spikes: {k: 0}", "k must be above 0"),
        ("spikes: {metrics: [mrr]}", "metrics must be a list"),
        ("spikes: {window: 3}", "takes"),
        ("spikes: {weeks: many}", "whole numbers"),
    ):
        f.write_text(bad)
        with pytest.raises(ParameterError, match=words):
            spikes.settings(f)
    f.write_text("spikes: {weeks: 8, k: 2.5, metrics: [tickets_opened]}")
    assert spikes.settings(f) == spikes.SpikeSettings(8, 2.5, 0.1, 3, ("tickets_opened",))


def test_the_monthly_rules_skip_the_spike_block():
    assert spikes.settings() == spikes.SpikeSettings()  # parameters/alerts.yaml states the defaults
    assert "spikes" not in {r.name for r in alerts.rules()} and len(alerts.rules()) == 4


def test_fired_spikes_are_alert_callouts_the_delivery_reads(tmp_path):
    s = spikes.SpikeSettings()
    fired = spikes.check(weekly(30), pd.Timestamp("2024-03-25"), s)
    quiet = spikes.check(weekly(11), pd.Timestamp("2024-03-25"), s)
    markup = spikes.spikes_html([fired, quiet], "USD", 12)
    html_out = tmp_path / "all" / "04_cs_load.html"
    html_out.parent.mkdir()
    html_out.write_text(markup)
    alert = '<div class="saaskpi-alert"><b>An inter-relational alert</b></div>'
    nb = {"cells": [{"outputs": [{"data": {"text/html": [alert, markup]}}]}]}
    html_out.with_suffix(".ipynb").write_text(json.dumps(nb))
    pages = {"04_cs_load": Page("04_cs_load", "all", "r1", html_out)}
    assert read_spikes(pages) == [fired.message()]  # the quiet metric is a note, not an alert
    assert read_alerts(html_out.with_suffix(".ipynb")) == ["An inter-relational alert"]  # spikes are not rules


# --------------------------------------------------------------------------- ticket volume and uptime
def test_tickets_opened(voice_wb):
    assert values(voice_wb.series("tickets_opened")) == {
        "2024-01": 0.0,
        "2024-02": 3.0,
        "2024-03": 1.0,
        "2024-04": 0.0,
        "2024-05": 0.0,
    }


def test_uptime_by_hand(voice_wb):
    u = voice_wb.series("uptime")
    got = values(u)
    # Feb 2024: 29 x 24 = 696 h; I1 u I2 = 00:00-02:00 (2 h) + I3's Feb 29 23:00-24:00 (1 h) -> 1 - 3 / 696
    assert got["2024-02"] == pytest.approx(1 - 3 / 696)
    assert got["2024-03"] == pytest.approx(1 - 1 / 744)  # I3's Mar 1 00:00-01:00
    assert got["2024-05"] == pytest.approx(1 - 12 / 744)  # I4 still down: to the data's end, May 31 12:00-24:00
    assert got["2024-01"] == got["2024-04"] == 1.0
    assert list(u.n) == [0.0, 3.0, 1.0, 0.0, 1.0]


def test_downtime_counts_overlaps_once():
    t = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731
    inc = pd.DataFrame(
        {
            "started_at": [t("2024-01-01 01:00"), t("2024-01-01 00:00"), t("2024-01-01 05:00")],
            "ended_at": [t("2024-01-01 03:00"), t("2024-01-01 02:00"), pd.NaT],
        }
    )
    # 00:00-03:00 (3 h) + 05:00-06:00 (the open one, to the end) = 4 h
    assert downtime_seconds(inc, t("2024-01-01 00:00"), t("2024-01-01 06:00")) == 4 * 3600


# --------------------------------------------------------------------------- voice of the customer
def test_phrases_stop_at_stop_words_and_punctuation():
    assert voice.phrases("Support response time is too slow.") == {
        "support",
        "response",
        "time",
        "slow",
        "support response",
        "response time",
        "support response time",
    }
    assert "support quick" not in voice.phrases("Great support, quick answers.")


def test_comment_themes_by_hand(voice_wb, monkeypatch):
    monkeypatch.setattr(voice, "voice_settings", lambda: voice.VoiceSettings(12, 5, 2, 3))
    # comments of the 12 months to May 31 (all four; A1, A4, A5 smb/mid_market: A1 and A5 are smb, A4 mid_market)
    #   smb: R1 (A1, NPS 2) "Support response time is too slow."; R3 (A5, NPS 6) "... slow for urgent issues.";
    #        R4 (A1, NPS 10) "Pricing is fair."
    #   mid_market: K3 (A4, CSAT 5) "Great support, quick answers."
    # smb, min 2 comments: support 2, response 2, time 2, slow 2, support response 2, response time 2, support
    # response time 2; the shorter ones inside "support response time" (same count) drop; "slow" < "support ..."
    # alphabetically; "support response time" shares no word with "slow": both kept. low = NPS 0-6: R1, R3.
    t = voice_wb.compute("comment_themes")
    smb = t[t.segment == "smb"]
    assert list(smb.theme) == ["slow", "support response time"]
    assert list(smb.comments) == [2, 2]
    assert list(smb.share) == [pytest.approx(2 / 3)] * 2
    assert list(smb.low_share) == [1.0, 1.0]
    assert smb.example.iloc[0] == "Support response time is slow for urgent issues."  # the latest (Feb 12)
    assert t[t.segment == "mid_market"].empty  # one comment: nothing held by 2


def test_latest_comments_and_comment_share(voice_source):
    wb = open_workbook(str(voice_source), "all", "2024-02", interactive=False)
    c = wb.table("latest_comments")
    # Feb: K3 (Feb 20, CSAT 5), R3 (Feb 12, NPS 6), R1 (Feb 10, NPS 2), newest first
    assert list(c.survey) == ["csat", "nps", "nps"] and list(c.score) == [5.0, 6.0, 2.0]
    # Feb: R1, R2, R3 answered, R1 and R3 with a comment -> 2 / 3; Mar: R4 with one -> 1 / 1; Jan: none -> n/a
    share = wb.series("nps_comment_share")
    assert values(share)["2024-02"] == pytest.approx(2 / 3) and list(share.n[:2]) == [0.0, 3.0]
    assert math.isnan(values(share)["2024-01"])


def test_health_overrides_in_force(voice_wb, voice_source):
    # at May 31: A1's red (Apr 10) was cleared on May 20; A4's red 35 (May 2) stands; A5's starts Jun 3
    o = voice_wb.table("health_overrides_in_force")
    assert list(o.account_id) == ["A4"]
    assert (o.override_score.iloc[0], o.override_band.iloc[0], o.reason.iloc[0]) == (35.0, "red", "Budget cut")
    health = voice_wb.table("account_health").set_index("account_id")
    computed, shown = health.health["A4"], o.health.iloc[0]  # the computed score, unchanged, beside the override
    assert shown == computed or (math.isnan(shown) and math.isnan(computed))
    # paying at the month end: Mar A1 A3 A4 A5, Apr A1 A2 A4 A5, May A1 A2 A4 A5 (4 each)
    # in force and paying: Mar none, Apr A1 (red), May A4 -> 0 / 4, 1 / 4, 1 / 4
    share = values(voice_wb.series("health_override_share"))
    assert (share["2024-03"], share["2024-04"], share["2024-05"]) == (0.0, 0.25, 0.25)
    april = open_workbook(str(voice_source), "all", "2024-04", interactive=False)
    assert list(april.table("health_overrides_in_force").override_band) == ["red"]


@pytest.mark.parametrize("last", ["clears", "sets"])
def test_of_one_days_overrides_the_last_given_is_in_force(tmp_path, last):
    # A2 gets two overrides on May 31: a yellow 50 and a clearing one. In force at the May month end is the one
    # given last, as in overrides_in_force: cleared -> May 1 / 4 (A4) as above; set -> 2 / 4 (A2, A4)
    rows = ["A2,2024-05-31,50,yellow,Quiet month", "A2,2024-05-31,,,Back to the computed score"]
    rows = rows if last == "clears" else rows[::-1]
    tables = VOICE_TABLES | {
        "health_overrides": VOICE_TABLES["health_overrides"].rstrip() + "".join(f"\n        {r}" for r in rows)
    }
    wb = open_workbook(str(write_source(tmp_path / "src", tables)), "all", "2024-05", interactive=False)
    assert list(wb.table("health_overrides_in_force").account_id) == (["A4"] if last == "clears" else ["A2", "A4"])
    share = values(wb.series("health_override_share"))
    assert (share["2024-04"], share["2024-05"]) == (0.25, 0.25 if last == "clears" else 0.5)


# --------------------------------------------------------------------------- practices
def test_review_cycle_and_stale_targets(voice_wb, tmp_path, monkeypatch):
    f = tmp_path / "reviews.yaml"
    f.write_text(
        "cycles:\n  audit: {every_months: 1, last: 2024-05-06}\n  alignment: {last: 2024-01-15}\n"
        "targets_reviewed:\n  net_revenue_retention: 2024-03-01\n  gross_margin: 2023-12-01\n"
    )
    monkeypatch.setattr(review, "REVIEWS_FILE", f)
    c = voice_wb.compute("review_cycle").set_index("cycle")
    # at May 31: audit May 6 + 1 month = Jun 6 (on schedule); alignment Jan 15 + 3 = Apr 15 (due); overhaul never
    assert list(c.status) == ["on schedule", "due", "never done"]
    assert f"{c.next_due['audit']:%Y-%m-%d}" == "2024-06-06" and f"{c.next_due['alignment']:%Y-%m-%d}" == "2024-04-15"
    t = voice_wb.compute("target_reviews").set_index("metric")
    # NRR Mar 1 -> May: 2 months <= 3 (current); gross margin Dec 1 -> May: 5 months (stale); the others never
    assert (t.months_since["net_revenue_retention"], bool(t.stale["net_revenue_retention"])) == (2.0, False)
    assert (t.months_since["gross_margin"], bool(t.stale["gross_margin"])) == (5.0, True)
    assert t.stale.sum() == len(t) - 1
    assert review.months_between(pd.Timestamp("2026-07-10").date(), pd.Timestamp("2026-10-31")) == 3


def test_reviews_file_is_validated(tmp_path):
    f = tmp_path / "reviews.yaml"
    for bad, words in (
        ("cycles: {weekly: {}}", "cycles are"),
        ("cycles: {audit: {every_months: 0}}", "at least 1"),
        ("cycles: {audit: {last: soon}}", "not a date"),
        ("targets_reviewed: {nrr: 2024-01-01}", "unknown metric"),
        ("owner: me", "takes cycles"),
    ):
        f.write_text(bad)
        with pytest.raises(ParameterError, match=words):
            review.reviews(f)
    assert [c.last for c in review.reviews().cycles]  # the project's own file reads


def test_accounts_behind_the_tiles(voice_source):
    wb = open_workbook(str(voice_source), "all", "2024-02", interactive=False)
    b = wb.table("accounts_behind_tiles")
    # Feb: A2 churned (50 MRR), A3 new (1200 / 12 = 100); A5's add-on is expansion, not new
    churned, new = b[b.metric == "customer_churn_rate"], b[b.metric == "new_customers"]
    assert list(zip(churned.account_id, churned.amount, strict=True)) == [("A2", 50.0)]
    assert list(zip(new.account_id, new.amount, strict=True)) == [("A3", 100.0)]
    # identity: as many rows as the tiles count (logo churn numerator = rate x n; new customers)
    churn = wb.value("customer_churn_rate")
    assert len(churned) == round(churn.value * churn.n) and len(new) == wb.value("new_customers").value
    red = b[b.metric == "red_account_share"]
    share = wb.value("red_account_share")
    assert len(red) == round(share.value * share.n)


# --------------------------------------------------------------------------- pages
def test_sections_show_what_they_need_without_the_optional_tables(revenue_wb):
    for func, words in (
        (cs_load.show_service, "Add a `service_status` table"),
        (cs_load.show_voice, "Add a `survey_comments` table"),
        (cs_load.show_health_overrides, "Add a `health_overrides` table"),
    ):
        text = page_html(func, revenue_wb)
        assert words in text and "Something went wrong" not in text, func.__name__
    for func in (
        cohort_retention.show_churn_spikes,
        benchmarks.show_review_cycle,
        benchmarks.show_accounts_behind_tiles,
        cs_load.show_at_risk,
    ):
        text = page_html(func, revenue_wb)
        assert "Something went wrong" not in text, func.__name__


def test_sections_with_the_optional_tables(voice_wb):
    service = page_html(cs_load.show_service, voice_wb)
    assert "Uptime" in service and "Tickets opened: 0 in the week of 2024-05-20" in service
    said = page_html(cs_load.show_voice, voice_wb)
    assert "support response time" in said
    over = page_html(cs_load.show_health_overrides, voice_wb)
    assert "Budget cut" in over and "Something went wrong" not in over
    spikes_text = page_html(cohort_retention.show_churn_spikes, voice_wb)
    assert "Churned accounts: 0 in the week of 2024-05-20" in spikes_text
    behind = page_html(benchmarks.show_accounts_behind_tiles, voice_wb)
    assert "Logo churn (monthly)" in behind and "New customers" in behind
