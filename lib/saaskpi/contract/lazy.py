"""Validation of big Parquet tables without loading them: every rule is an aggregate query over a
lazy scan (streamed by Polars), and only the count and up to five example rows leave the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import polars as pl

from ..errors import Problem
from .load import ROW, _parse_expr, _type_name, examples, key_column
from .tables import REPORTING_CURRENCY, TABLES, absent_as_null

LAZY_TABLES = ("usage_events",)  # kept as lazy scans when stored as Parquet


def column_check(c, name: str, stats: dict):
    """(bad-value predicate, message) of a pandera column check on the column expression `c` (Polars or
    Narwhals: both have the same operators), or None for a check done elsewhere."""
    if name == "greater_than_or_equal_to":
        return c < stats["min_value"], f"must be at least {stats['min_value']}"
    if name == "greater_than":
        return c <= stats["min_value"], f"must be greater than {stats['min_value']}"
    if name == "less_than_or_equal_to":
        return c > stats["max_value"], f"must be at most {stats['max_value']}"
    if name == "isin":
        return ~c.is_in(sorted(stats["allowed_values"])), f"must be one of {sorted(stats['allowed_values'])}"
    return None


class TypedScan(NamedTuple):
    """What `typed_scan` found: the typed frame, the problems, the text columns used as stored, and the largest
    value of each date-time column (empty when nothing was counted)."""

    frame: pl.LazyFrame
    problems: list[Problem]
    as_stored: list[str]
    maxima: dict[str, Any]


def typed_scan(
    name: str,
    scan: pl.LazyFrame,
    reporting_currency: str = "USD",
    as_stored: list[str] | None = None,
    cross: Sequence[tuple[str, str, str, pl.Expr]] = (),
) -> TypedScan:
    """Table `name` as a typed lazy frame, every problem found by aggregate queries over it, the text columns kept
    as stored (no value has surrounding spaces) and the largest value of each date-time column (the events' last
    time decides the last complete month: counted here, it costs no pass of its own over 50M events, 0.35 s).
    Every rule is counted in one pass over the table: its column rules and `cross`, the cross-table rules that can
    be checked row by row (rules.pass_rules: an event's account and user exist, its properties are a JSON object).
    With `as_stored` given (from an earlier validation of the same file, see sources.validated_tables) nothing is
    checked, nor counted, again."""
    model = TABLES[name]
    schema = model.to_schema()
    key = key_column(model)
    found = scan.collect_schema()
    problems = [
        Problem(f"{name}.missing_column", name, col, f"required column `{col}` is missing", 0)
        for col, spec in schema.columns.items()
        if spec.required and col not in found
    ]
    if problems:
        return TypedScan(scan, problems, [], {})
    exprs = []
    for col, spec in schema.columns.items():
        if col in found:
            exprs.append(_parse_expr(col, spec.dtype.type, found[col]).alias(col))
        else:
            default = (spec.metadata or {}).get("default")
            exprs.append(
                pl.lit(reporting_currency if default == REPORTING_CURRENCY else default, dtype=spec.dtype.type).alias(
                    col
                )
            )
    if as_stored is not None:
        kept = [pl.col(c) if c in as_stored and c in found else e for c, e in zip(schema.columns, exprs)]
        return TypedScan(scan.select(kept), [], as_stored, {})
    raw = {col: pl.col(f"raw__{col}") for col in schema.columns if col in found}
    probe = scan.with_row_index(ROW, offset=1).select(pl.col(ROW), *[pl.col(c).alias(f"raw__{c}") for c in raw], *exprs)

    rules: list[tuple[str, str, str, pl.Expr]] = []  # code, column, message, bad-row predicate
    for col, spec in schema.columns.items():
        if col not in found:
            continue
        rules.append(
            (
                f"{name}.unparseable",
                col,
                f"could not be read as {_type_name(spec.dtype.type)}",
                raw[col].is_not_null() & pl.col(col).is_null(),
            )
        )
        if not spec.nullable:
            rules.append((f"{name}.missing_value", col, "a value is required", raw[col].is_null()))
        for check in spec.checks:
            made = column_check(pl.col(col), check.name, check.statistics)
            if made is not None:
                rules.append(
                    (
                        f"{name}.{'not_allowed' if check.name == 'isin' else 'out_of_range'}",
                        col,
                        made[1],
                        pl.col(col).is_not_null() & made[0],
                    )
                )
    rules += cross
    # text columns are stripped of surrounding spaces (as in CSV files); when no value has any, the typed scan
    # leaves them as stored, which saves every later query over the table a pass of string work
    text = [col for col, spec in schema.columns.items() if found.get(col) == pl.String and spec.dtype.type == pl.String]
    padded = [(pl.col(col) != raw[col]).sum().alias(f"padded__{col}") for col in text]
    times = [c for c, spec in schema.columns.items() if c in found and isinstance(spec.dtype.type, pl.Datetime)]
    largest = [pl.col(c).max().alias(f"max__{c}") for c in times]
    counts = probe.select(
        [pred.sum().alias(str(i)) for i, (_, _, _, pred) in enumerate(rules)] + padded + largest
    ).collect(engine="streaming")
    as_stored = [col for col in text if not counts[f"padded__{col}"][0]]
    typed = scan.select([pl.col(c) if c in as_stored else e for c, e in zip(schema.columns, exprs)])
    # an absent optional text column is empty: nothing in it is padded (SQL over the stored table agrees)
    as_stored += [
        c for c, s in schema.columns.items() if c not in found and s.dtype.type == pl.String and absent_as_null(name, c)
    ]
    for i, (code, col, message, pred) in enumerate(rules):
        n = int(counts[str(i)][0] or 0)
        if n:
            rows = probe.filter(pred).head(5).collect()
            problems.append(Problem(code, name, col, message, n, examples(rows, key, col, rows=rows)))
    return TypedScan(typed, problems, as_stored, {c: counts[f"max__{c}"][0] for c in times})
