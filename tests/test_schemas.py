"""Every registered table returns the columns and dtypes it declares (`@table(schema=...)`), on Polars and on
DuckDB (the engines the parity tests run on every commit), and a result read back from the results store
has the dtypes of the one computed (which is why the workbook needs no Parquet round trip of its own).

One workbook per engine on the demo (the session's demo_source) computes every table once for the module.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from saaskpi.frames import SCHEMA_DTYPES, conform, metric_schema, schema_problems
from saaskpi.metrics import METRICS, TABLE_FUNCS
from saaskpi.metrics.registry import RegistryError, table
from saaskpi.workbook import open_workbook


@pytest.fixture(scope="module", params=["polars", "duckdb"])
def demo_results(request, demo_source):
    """(engine, every table and metric series of the demo's `all` segment computed on that engine)."""
    wb = open_workbook(str(demo_source), "all", "", interactive=False, engine=request.param)
    specs = {**TABLE_FUNCS, **METRICS}
    return request.param, {n: wb.compute(n) for n, s in specs.items() if not wb.tables.missing(*s.needs)}


def test_every_table_declares_a_schema():
    undeclared = [n for n, spec in TABLE_FUNCS.items() if not spec.schema]
    assert not undeclared, f"tables without a schema: {undeclared}"
    for spec in TABLE_FUNCS.values():
        assert set(spec.schema.values()) <= set(SCHEMA_DTYPES), spec.name


def test_a_schema_with_an_unknown_dtype_is_an_error_at_registration():
    with pytest.raises(RegistryError, match="schema dtype"):

        @table(schema={"month": "timestamp"})
        def not_registered() -> pd.DataFrame:  # pragma: no cover - never called
            """A table declaring a dtype that does not exist."""
            return pd.DataFrame()

    assert "not_registered" not in TABLE_FUNCS


def test_every_table_matches_its_schema(demo_results):
    engine, results = demo_results
    tables = [n for n in TABLE_FUNCS if n in results]
    assert len(tables) == len(TABLE_FUNCS)  # the demo has every source table: every table is checked
    found = [f"{n}: {p}" for n in tables for p in schema_problems(results[n], TABLE_FUNCS[n].schema)]
    assert not found, f"on {engine}:\n" + "\n".join(found)


def test_every_metric_series_matches_the_metric_schema(demo_results):
    engine, results = demo_results
    found = [
        f"{n}: {p}" for n in METRICS if n in results for p in schema_problems(results[n], metric_schema(results[n]))
    ]
    assert not found, f"on {engine}:\n" + "\n".join(found)


def test_tables_of_a_small_literal_source_match_their_schemas(revenue_wb):
    """Six accounts and their subscriptions only: empty panels, an account without a CSM or seats, text columns
    that are all missing still have their declared dtypes."""
    specs = {**TABLE_FUNCS, **METRICS}
    names = [n for n, s in specs.items() if not revenue_wb.tables.missing(*s.needs)]
    assert {"account_mrr", "account_months", "renewals_due", "logo_survival"} <= set(names)
    found = []
    for n in names:
        frame = revenue_wb.compute(n)
        schema = TABLE_FUNCS[n].schema if n in TABLE_FUNCS else metric_schema(frame)
        found += [f"{n}: {p}" for p in schema_problems(frame, schema)]
    assert not found, "\n".join(found)


def test_stored_results_read_back_with_the_same_dtypes(demo_results):
    """What the results store (cache.cached_result, Parquet) gives back equals what was computed, dtypes too."""
    engine, results = demo_results
    if engine != "polars":
        pytest.skip("the round trip depends on the dtypes only, checked on both engines above")
    for name, frame in results.items():
        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        pd.testing.assert_frame_equal(pd.read_parquet(buffer), frame, check_dtype=True, obj=name)


# --------------------------------------------------------------------------- conform, on literal frames
def test_conform_casts_to_the_declared_dtypes():
    frame = pd.DataFrame(
        {
            "name": pd.Series(["a", None], dtype=object),  # text after a merge: object with None
            "count": pd.Series([1, 2], dtype="int32"),  # a pandas 3 .dt.year
            "day": pd.Series([pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")]).dt.date,
            "at": pd.Series(["2024-01-01T10:00:00Z", "2024-01-02T00:00:00Z"]),
            "rate": pd.Series([1, 2], dtype="int64"),
            "breach": pd.Series([True, None], dtype=object),
        }
    )
    schema = {
        "name": "str",
        "count": "int64",
        "day": "datetime",
        "at": "datetime_utc",
        "rate": "float64",
        "breach": "object",
    }
    out = conform(frame, schema)
    assert schema_problems(out, schema) == []
    assert out.name.isna().tolist() == [False, True] and out.name[0] == "a"
    assert out["count"].tolist() == [1, 2]
    assert out.day.tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")]
    assert out["at"][0] == pd.Timestamp("2024-01-01T10:00:00", tz="UTC")
    assert out.breach.tolist() == [True, None]
    assert frame.name.dtype == object  # the input is not modified


def test_conform_leaves_what_cannot_take_the_dtype_for_the_schema_test_to_report():
    frame = pd.DataFrame({"count": [1.0, np.nan], "mixed": pd.Series(["a", 1], dtype=object)})
    schema = {"count": "int64", "mixed": "str"}
    out = conform(frame, schema)
    assert out["count"].dtype == "float64" and out.mixed.dtype == object
    assert schema_problems(out, schema) == [
        "column 'count' is float64, declared int64",
        "column 'mixed' is object, declared str",
    ]
    assert (
        schema_problems(out[["mixed", "count"]], schema)[0] == "columns ['mixed', 'count'], declared ['count', 'mixed']"
    )


def test_conform_without_a_schema_makes_text_str():
    out = conform(pd.DataFrame({"a": pd.Series(["x", None], dtype=object), "b": [1, 2]}), None)
    assert schema_problems(out, {"a": "str", "b": "int64"}) == []


def test_conform_gives_seconds_resolution_datetimes_a_unit_the_store_keeps():
    # an empty goal table's deadline (object -> datetime64[s]) and a seconds column: Parquet has no seconds unit, so
    # the results store would give them back as milliseconds; conform makes them milliseconds first
    frame = pd.DataFrame({"d": pd.Series([], dtype=object), "s": pd.Series(["2027-06-01"], dtype="datetime64[s]")})
    out = conform(frame, {"d": "datetime", "s": "datetime"})
    assert [str(t) for t in out.dtypes] == ["datetime64[ms]", "datetime64[ms]"]
    assert out.s.iloc[0] == pd.Timestamp("2027-06-01")
    utc = conform(pd.DataFrame({"t": pd.Series([], dtype=object)}), {"t": "datetime_utc"})
    assert str(utc.t.dtype) == "datetime64[ms, UTC]"
