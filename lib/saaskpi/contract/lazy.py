"""Validation of big Parquet tables without loading them: every rule is an aggregate query over a
lazy scan (streamed by Polars), and only the count and up to five example rows leave the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import polars as pl

from ..errors import Problem
from .load import ROW, _parse_expr, _type_name, examples, key_column
from .rules import PassRule
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
    cross: Sequence[PassRule] = (),
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
        if spec.dtype.type != pl.String:  # any value can be read as text (stripped of surrounding spaces)
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
    own = len(rules)
    rules += [(r.code, r.column, r.message, r.predicate) for r in cross]
    # text columns are stripped of surrounding spaces (as in CSV files); when no value has any, the typed scan
    # leaves them as stored, which saves every later query over the table a pass of string work
    text = [col for col, spec in schema.columns.items() if found.get(col) == pl.String and spec.dtype.type == pl.String]
    # a value is padded when stripping it made it shorter: comparing lengths, not the texts, saves 0.3 s of the
    # three low-cardinality text columns at 50M events
    padded = {
        col: (pl.col(col).str.len_bytes() != raw[col].str.len_bytes()).sum().alias(f"padded__{col}") for col in text
    }
    # a text column that is a foreign key (the account and user of an event): the reference values have no
    # surrounding spaces, so when every value as stored is among them, none is padded and none refers to nothing,
    # and neither the strip of every value (about 0.4 s a column at 50M events) nor a lookup of the stripped values
    # is needed; when some is not (a padded or an unknown id, rare), both are counted in a second pass
    lookups: dict[int, tuple[str, pl.Expr]] = {}  # rule number: its column, its bad-row predicate of the stored value
    for i, r in enumerate(cross):
        stored = r.lookup(raw[r.column]) if r.lookup and r.column in text else None
        if stored is not None:
            lookups[own + i] = (r.column, stored)
    looked_up = {col for col, _ in lookups.values()}
    times = [c for c, spec in schema.columns.items() if c in found and isinstance(spec.dtype.type, pl.Datetime)]
    largest = [pl.col(c).max().alias(f"max__{c}") for c in times]
    counts = (
        probe.select(
            [pred.sum().alias(str(i)) for i, (*_, pred) in enumerate(rules) if i not in lookups]
            + [e for col, e in padded.items() if col not in looked_up]
            + [stored.sum().alias(f"as_stored__{i}") for i, (_, stored) in lookups.items()]
            + largest
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    unsure = {col for i, (col, _) in lookups.items() if counts[f"as_stored__{i}"]}
    again = [padded[c] for c in unsure] + [
        rules[i][3].sum().alias(str(i)) for i, (c, _) in lookups.items() if c in unsure
    ]
    if again:
        counts |= probe.select(again).collect(engine="streaming").row(0, named=True)
    as_stored = [col for col in text if not counts.get(f"padded__{col}")]
    typed = scan.select([pl.col(c) if c in as_stored else e for c, e in zip(schema.columns, exprs)])
    # an absent optional text column is empty: nothing in it is padded (SQL over the stored table agrees)
    as_stored += [
        c for c, s in schema.columns.items() if c not in found and s.dtype.type == pl.String and absent_as_null(name, c)
    ]
    for i, (code, col, message, pred) in enumerate(rules):
        n = int(counts.get(str(i)) or 0)
        if n:
            rows = probe.filter(pred).head(5).collect()
            problems.append(Problem(code, name, col, message, n, examples(rows, key, col, rows=rows)))
    return TypedScan(typed, problems, as_stored, {c: counts[f"max__{c}"] for c in times})
