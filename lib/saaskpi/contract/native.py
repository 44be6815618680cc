"""Validation of a big table that stays in the source's own engine (a usage_events table in a Spark
catalog, run with the Spark engine): every rule is an aggregate query written with Narwhals, and only
counts and up to five example rows leave the engine, as for Parquet files (contract/lazy.py)."""

from __future__ import annotations

from collections.abc import Callable

import narwhals as nw
import polars as pl

from ..errors import Problem
from .lazy import column_check
from .load import examples, key_column
from .rules import ForeignKey, cross_table_rules
from .tables import TABLES, absent_as_null

_KINDS = {
    pl.Datetime: nw.Datetime,
    pl.String: nw.String,
    pl.Int64: (nw.Int64, nw.Int32),
    pl.Float64: (nw.Float64,),
    pl.Date: nw.Date,
}


def stored_as_contract(name: str, frame: nw.LazyFrame) -> bool:
    """Whether the stored table has every contract column with the contract's kind of type (so that it can be
    used as stored; otherwise it is read and parsed like a small table)."""
    schema, found = TABLES[name].to_schema(), frame.collect_schema()
    for col, spec in schema.columns.items():
        want = next((k for t, k in _KINDS.items() if isinstance(spec.dtype.type, t) or spec.dtype.type == t), None)
        if col not in found and absent_as_null(name, col):
            continue
        if col not in found or want is None:
            return False
        kinds = want if isinstance(want, tuple) else (want,)
        if not any(found[col] == k or isinstance(found[col], k) for k in kinds):
            return False
    return True


def as_contract(name: str, frame: nw.LazyFrame) -> nw.LazyFrame:
    """A table stored as the contract says (`stored_as_contract`) with its contract columns, absent optional
    ones empty."""
    schema, found = TABLES[name].to_schema(), frame.collect_schema()
    return frame.select(
        [
            nw.col(c)
            if c in found
            else nw.lit(None, dtype=nw.String if s.dtype.type == pl.String else nw.Int64).alias(c)
            for c, s in schema.columns.items()
        ]
    )


def native_problems(
    name: str, frame: nw.LazyFrame, lazy: Callable[[pl.DataFrame], nw.LazyFrame], frames: dict[str, pl.DataFrame]
) -> list[Problem]:
    """Every problem of table `name` (kept in its engine as `frame`), found by aggregate queries: required
    values, the column checks, and the foreign keys into the small, already checked `frames` (sent to the
    engine with `lazy`)."""
    schema = TABLES[name].to_schema()
    key = key_column(TABLES[name])
    rules: list[tuple[str, str, str, nw.Expr | None, nw.LazyFrame]] = []  # code, column, message, predicate, rows
    for col, spec in schema.columns.items():
        c = nw.col(col)
        if not spec.nullable:
            rules.append((f"{name}.missing_value", col, "a value is required", c.is_null(), frame))
        for check in spec.checks:
            made = column_check(c, check.name, check.statistics)
            if made:
                pred, message = made
                code = f"{name}.{'not_allowed' if check.name == 'isin' else 'out_of_range'}"
                rules.append((code, col, message, ~c.is_null() & pred, frame))
    for rule in cross_table_rules("USD"):
        if isinstance(rule, ForeignKey) and rule.table == name and rule.ref_table in frames:
            rules.append(
                (
                    rule.code,
                    rule.column,
                    rule.message,
                    None,
                    rule.orphans(
                        frame,
                        lazy(frames[rule.ref_table]),
                        lazy(frames[rule.or_table]) if rule.or_table in frames else None,
                    ),
                )
            )
    flagged = [i for i, r in enumerate(rules) if r[3] is not None]
    counts = (
        frame.select(
            [pred.cast(nw.Int64).sum().alias(str(i)) for i, (*_, pred, _) in enumerate(rules) if pred is not None]
        ).collect()
        if flagged
        else None
    )
    problems = []
    for i, (code, col, message, pred, rows) in enumerate(rules):
        n = (
            int(counts[str(i)].item() or 0)
            if pred is not None and counts is not None
            else int(rows.select(nw.len()).collect().item())
        )
        if n:
            sample = (rows.filter(pred) if pred is not None else rows).head(5).collect().to_polars()
            problems.append(Problem(code, name, col, message, n, examples(sample, key, col, rows=sample)))
    return problems
