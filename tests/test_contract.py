"""The data contract: every problem reported at once, with code, table, column, count and examples."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest
from conftest import REVENUE_TABLES, write_source

from saaskpi.errors import DataContractError, SourceError
from saaskpi.sources import open_source, validated_tables

GOOD_ACCOUNTS = "account_id,segment,created_at\nA1,smb,2024-01-01T00:00:00Z\nA2,smb,2024-01-02T00:00:00Z"


def all_problems(folder) -> list:
    with pytest.raises(DataContractError) as err:
        validated_tables(open_source(folder))
    return err.value.problems


def problems_of(folder) -> dict[str, object]:
    return {p.code: p for p in all_problems(folder)}


def test_valid_source_is_typed(revenue_source):
    t = validated_tables(open_source(revenue_source))
    subs = t.frames["subscriptions"]
    assert subs.schema["start_date"] == pl.Date and subs.schema["amount"] == pl.Float64
    assert t.frames["accounts"].schema["created_at"] == pl.Datetime("us", "UTC")
    assert subs["billing_period_months"].to_list()[0] == 1


def test_optional_columns_get_their_defaults(tmp_path):
    src = write_source(
        tmp_path / "s",
        {
            "accounts": GOOD_ACCOUNTS,
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS1,A1,2024-01-01,,100",
        },
    )
    subs = validated_tables(open_source(src)).frames["subscriptions"]
    assert subs.row(0, named=True) | {} == subs.row(0, named=True)
    row = subs.row(0, named=True)
    assert (row["billing_period_months"], row["currency"], row["discount_pct"]) == (1, "USD", 0.0)


def test_every_problem_at_once(tmp_path):
    src = write_source(
        tmp_path / "bad",
        {
            "accounts": """
            account_id,segment,created_at
            A1,smb,2024-01-01T00:00:00Z
            A1,smb,2024-01-02T00:00:00Z
            A3,smb,yesterday
        """,
            "subscriptions": """
            subscription_id,account_id,start_date,end_date,amount,discount_pct
            S1,A1,2024-03-01,2024-02-01,100,0
            S2,A9,2024-01-01,,-5,0
            S3,A1,2024-01-01,,100,1.5
        """,
        },
    )
    problems = all_problems(src)
    assert sorted((p.code, p.column, p.count) for p in problems) == [
        ("accounts.duplicate", "account_id", 2),
        ("accounts.unparseable", "created_at", 1),
        ("subscriptions.account_id.orphan", "account_id", 1),
        ("subscriptions.end_date_before_start_date", "end_date", 1),
        ("subscriptions.out_of_range", "amount", 1),
        ("subscriptions.out_of_range", "discount_pct", 1),
    ]
    found = {p.code: p for p in problems}
    dup = found["accounts.duplicate"]
    assert (dup.table, dup.column, dup.count) == ("accounts", "account_id", 2)
    assert dup.examples == ("row 2: account_id='A1'", "row 3: account_id='A1'")
    bad_date = found["accounts.unparseable"]
    assert bad_date.column == "created_at" and "row 4 (account_id=A3): created_at='yesterday'" in bad_date.examples
    orphan = found["subscriptions.account_id.orphan"]
    assert orphan.count == 1 and "account_id='A9'" in orphan.examples[0]
    order = found["subscriptions.end_date_before_start_date"]
    assert order.examples == ("row 2 (subscription_id=S1): end_date=2024-02-01",)


def test_message_names_everything(tmp_path):
    src = write_source(
        tmp_path / "bad",
        {
            "accounts": GOOD_ACCOUNTS,
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS1,A1,2024-01-01,,-1",
        },
    )
    with pytest.raises(DataContractError) as err:
        validated_tables(open_source(src))
    text = str(err.value)
    assert "[subscriptions.out_of_range] subscriptions.amount: must be at least 0 (1 row)" in text
    assert "row 2 (subscription_id=S1): amount=-1.0" in text


def test_missing_required_table_and_column(tmp_path):
    src = write_source(tmp_path / "s", {"accounts": "account_id,created_at\nA1,2024-01-01T00:00:00Z"})
    found = problems_of(src)
    assert "source.missing_table" in found and found["source.missing_table"].table == "subscriptions"
    assert found["accounts.missing_column"].column == "segment"


def test_mixed_time_zones(tmp_path):
    src = write_source(
        tmp_path / "s",
        {
            "accounts": "account_id,segment,created_at\nA1,smb,2024-01-01T00:00:00Z\nA2,smb,2024-01-01T00:00:00+02:00",
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS1,A1,2024-01-01,,1",
        },
    )
    assert "accounts.mixed_time_zones" in problems_of(src)


def test_unknown_currency_needs_fx(tmp_path):
    src = write_source(
        tmp_path / "s",
        {
            "accounts": GOOD_ACCOUNTS,
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount,currency\nS1,A1,2024-01-01,,1,JPY",
        },
    )
    p = problems_of(src)["subscriptions.currency.no_fx_rate"]
    assert "JPY" in p.message and p.count == 1


def test_scores_in_range(tmp_path):
    src = write_source(
        tmp_path / "s",
        {
            "accounts": GOOD_ACCOUNTS,
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS1,A1,2024-01-01,,1",
            "nps_responses": "response_id,account_id,responded_at,score\nR1,A1,2024-01-01T00:00:00Z,11",
        },
    )
    p = problems_of(src)["nps_responses.out_of_range"]
    assert p.column == "score" and "must be at most 10" in p.message


def test_csv_and_parquet_of_one_table_is_an_error(tmp_path):
    src = write_source(
        tmp_path / "s",
        {
            "accounts": GOOD_ACCOUNTS,
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS1,A1,2024-01-01,,1",
        },
    )
    pl.read_csv(src / "accounts.csv").write_parquet(src / "accounts.parquet")
    p = problems_of(src)["source.both_formats"]
    assert p.table == "accounts" and "accounts.csv and accounts.parquet are both in" in p.message


def test_inputs_are_never_modified(tmp_path):
    src = write_source(
        tmp_path / "s",
        {
            "accounts": GOOD_ACCOUNTS,
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS1,A1,2024-01-01,,-1",
        },
    )
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}
    with pytest.raises(DataContractError):
        validated_tables(open_source(src))
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()} == before


def test_text_is_stripped_of_surrounding_spaces_in_csv_and_parquet(tmp_path):
    # "  A1 " in a subscription is account A1, whether the table is CSV or Parquet text (a text column is never
    # used as stored when a value is padded; columns already of their contract type are)
    subs = "subscription_id,account_id,start_date,end_date,amount\n S1 ,  A1 ,2024-01-01,,100"
    src = write_source(tmp_path / "s", {"accounts": GOOD_ACCOUNTS, "subscriptions": subs})
    for form in ("csv", "parquet"):
        if form == "parquet":
            pl.read_csv(src / "subscriptions.csv", infer_schema=False).write_parquet(src / "subscriptions.parquet")
            (src / "subscriptions.csv").unlink()
        row = validated_tables(open_source(src)).frames["subscriptions"].row(0, named=True)
        assert (row["subscription_id"], row["account_id"], row["amount"]) == ("S1", "A1", 100.0), form


def test_parquet_tables_are_read_typed(tmp_path):
    src = write_source(tmp_path / "s", {k: v for k, v in REVENUE_TABLES.items() if k != "subscriptions"})
    subs = pl.read_csv(
        write_source(tmp_path / "csv", {"subscriptions": REVENUE_TABLES["subscriptions"]}) / "subscriptions.csv",
        try_parse_dates=True,
    )
    subs.write_parquet(src / "subscriptions.parquet")
    t = validated_tables(open_source(src))
    assert t.frames["subscriptions"].schema["start_date"] == pl.Date
    assert t.frames["subscriptions"].height == 10


def test_not_a_source(tmp_path):
    with pytest.raises(SourceError, match="not a folder"):
        open_source(tmp_path / "nope")


def one_user_source(tmp_path):
    """Account A1 paying, with user u1 (for a big table's rules: its events are written beside)."""
    return write_source(
        tmp_path / "s",
        {
            "accounts": GOOD_ACCOUNTS,
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS1,A1,2024-01-01,,1",
            "users": "user_id,account_id,created_at\nu1,A1,2024-01-01T00:00:00Z",
        },
    )


def test_big_parquet_table_is_validated_lazily(tmp_path):
    import datetime as dt

    src = one_user_source(tmp_path)
    t = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    pl.DataFrame(
        {
            "event_time": [t, t, None],
            "user_id": ["u1", "ghost", "u1"],
            "account_id": ["A1", "A1", "A1"],
            "feature": ["api", "api", "api"],
            "duration_seconds": [5, -3, 1],
        }
    ).write_parquet(src / "usage_events.parquet")
    problems = {(p.code, p.column): p for p in all_problems(src)}
    assert problems[("usage_events.out_of_range", "duration_seconds")].examples == (
        "row 2 (event_time=2024-01-05 00:00:00+00:00): duration_seconds=-3",
    )
    assert problems[("usage_events.missing_value", "event_time")].count == 1
    orphan = problems[("usage_events.user_id.orphan", "user_id")]
    # counted in the same pass as the column rules, so it has the row number too
    assert orphan.count == 1 and orphan.examples == ("row 2 (event_time=2024-01-05 00:00:00+00:00): user_id='ghost'",)


def test_a_big_tables_rules_are_counted_in_one_pass_over_it(tmp_path, monkeypatch):
    import datetime as dt

    from saaskpi.contract import rules

    src = write_source(
        tmp_path / "s",
        {
            "accounts": GOOD_ACCOUNTS,
            "subscriptions": "subscription_id,account_id,start_date,end_date,amount\nS1,A1,2024-01-01,,1",
            "users": "user_id,account_id,created_at\nu1,A1,2024-01-01T00:00:00Z\nu2,A1,2024-01-01T00:00:00Z",
            "user_aliases": "alias_id,user_id\nanon-7,u2",
        },
    )
    t = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    pl.DataFrame(
        {
            "event_time": [t] * 5,
            "user_id": ["u1", "ghost", "anon-7", "ghost", "u2"],  # anon-7: an alias of u2, known
            "account_id": ["A1", "A1", "A9", None, "A1"],  # A9: no such account; no account: allowed
            "feature": ["api"] * 5,
            "properties": ['{"plan": "pro"}', "", "[1, 2]", "not json", None],
        }
    ).write_parquet(src / "usage_events.parquet")
    asked = []  # tables checked by a query of their own, one pass over the table each
    real = rules._problem
    monkeypatch.setattr(
        rules, "_problem", lambda bad, code, table, *rest: asked.append(table) or real(bad, code, table, *rest)
    )
    problems = {p.code: p for p in all_problems(src)}
    assert "usage_events" not in asked and "users" in asked  # the small tables' rules are checked as before
    # ghost twice (rows 2 and 4); A9 once (row 3); "[1, 2]" and "not json" (rows 3 and 4; empty and null are fine)
    assert problems["usage_events.user_id.orphan"].count == 2
    assert problems["usage_events.user_id.orphan"].examples[0].startswith("row 2 ")
    assert problems["usage_events.account_id.orphan"].count == 1
    assert problems["usage_events.account_id.orphan"].examples == (
        "row 3 (event_time=2024-01-05 00:00:00+00:00): account_id='A9'",
    )
    assert problems["usage_events.properties.not_json_object"].count == 2


def test_padded_ids_of_a_big_table_are_its_referents_stripped(tmp_path):
    import datetime as dt

    # an event's user and account are looked up as stored first: "u1" and "A1" are found, so neither column is
    # padded; " u1 " is not found as stored, so the user ids are stripped and looked up again: u1 exists, ghost not
    src = one_user_source(tmp_path)
    t = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    events = {"event_time": [t] * 3, "user_id": ["u1", " u1 ", "u1"], "account_id": ["A1"] * 3, "feature": ["api"] * 3}
    pl.DataFrame(events).write_parquet(src / "usage_events.parquet")
    tables = validated_tables(open_source(src))
    assert "account_id" in tables.as_stored["usage_events"] and "user_id" not in tables.as_stored["usage_events"]
    users = tables.scans["usage_events"].select("user_id").collect()["user_id"].to_list()
    assert users == ["u1", "u1", "u1"]
    pl.DataFrame({**events, "user_id": ["u1", " u1 ", "ghost"]}).write_parquet(src / "usage_events.parquet")
    orphan = {p.code: p for p in all_problems(src)}["usage_events.user_id.orphan"]
    assert orphan.count == 1 and orphan.examples == ("row 3 (event_time=2024-01-05 00:00:00+00:00): user_id='ghost'",)


def test_padded_text_of_a_big_table_is_stripped_before_its_rules(tmp_path):
    import datetime as dt

    # a value is padded when stripping it makes it shorter (lengths are compared, not texts): " api" and "api\u3000"
    # (an ideographic space, three bytes) are api; the JSON rule reads the stripped text, so a padded object is one
    # and blanks are empty (not a problem), while " [1] " stays a list
    src = one_user_source(tmp_path)
    t = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    events = {
        "event_time": [t] * 4,
        "user_id": ["u1"] * 4,
        "account_id": ["A1"] * 4,
        "feature": [" api", "api\u3000", "api", "api"],
        "properties": [' {"plan": "pro"} ', "   ", None, '{"a": 1}'],
    }
    pl.DataFrame(events).write_parquet(src / "usage_events.parquet")
    tables = validated_tables(open_source(src))
    assert {"feature", "properties"}.isdisjoint(tables.as_stored["usage_events"])
    typed = tables.scans["usage_events"].select("feature", "properties").collect()
    assert typed["feature"].to_list() == ["api"] * 4
    assert typed["properties"].to_list() == ['{"plan": "pro"}', "", None, '{"a": 1}']
    pl.DataFrame({**events, "properties": [*events["properties"][:2], " [1] ", '{"a": 1}']}).write_parquet(
        src / "usage_events.parquet"
    )
    bad = [(p.code, p.count, p.examples) for p in all_problems(src)]
    assert bad == [
        (
            "usage_events.properties.not_json_object",
            1,
            ("row 3 (event_time=2024-01-05 00:00:00+00:00): properties='[1]'",),
        )
    ]


def test_the_canonical_time_shortcut_reads_what_the_general_parser_reads():
    from saaskpi.contract.load import _parse_any_datetime, _parse_datetime

    # the shortcut (2024-01-31T09:30:00Z read directly) and the general path agree on every form, read or not
    values = [
        *("2023-11-04T07:04:34Z", " 2023-11-04T07:04:34Z", "2023-11-04 07:04:34", "2023-11-04"),
        *("2023-11-04T07:04:34.123Z", "2023-11-04T07:04:34+02:00", "2023-11-04T07:04:34-0530", "bad", ""),
        *(None, "2023-1-4T7:4:34Z", "2023-11-04T24:00:00Z", "2023-02-30T00:00:00Z", "2023-11-04T07:04:34z"),
        *("2023-11-04t07:04:34Z", "+2023-11-04T07:04:34Z", "2023-11-04T07:04:34ZZ", "2023-11-04T07:04:34 Z"),
    ]
    for frame in (pl.DataFrame({"t": values}), pl.DataFrame({"t": values[:1] * 3})):  # mixed; all canonical
        got = frame.select(fast=_parse_datetime("t"), general=_parse_any_datetime("t"))
        assert got["fast"].eq_missing(got["general"]).all()
    assert (
        pl.DataFrame({"t": values[:1]}).select(_parse_datetime("t")).item().isoformat() == "2023-11-04T07:04:34+00:00"
    )
