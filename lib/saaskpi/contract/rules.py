"""Cross-table and cross-column rules: small named rules, each with a stable code and a message a person can act on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, NamedTuple

import narwhals as nw
import polars as pl

from ..errors import Problem
from .load import ROW, examples, key_column
from .tables import TABLES


def _problem(bad: pl.LazyFrame, code: str, table: str, column: str, message: str) -> Problem | None:
    """A problem for the rows of `bad` (counted in the engine; five examples collected), or None."""
    count = int(bad.select(pl.len()).collect(engine="streaming").item())
    if not count:
        return None
    rows = bad.head(5).collect()
    return Problem(code, table, column, message, count, examples(rows, key_column(TABLES[table]), column, rows=rows))


@dataclass(frozen=True)
class ForeignKey:
    """Every non-empty `table.column` value must exist in `ref_table.ref_column`."""

    table: str
    column: str
    ref_table: str
    ref_column: str
    or_table: ClassVar[str | None] = None  # a second table the value may be in instead (ForeignKeyOrAlias)
    or_column: ClassVar[str | None] = None
    # every row's value must be found: then a big table's values found as stored are neither padded nor orphans
    # (contract/lazy.py counts `lookup` on them first); not so when only some rows are checked (ForeignKeyWhere)
    every_row: ClassVar[bool] = True

    @property
    def code(self) -> str:
        return f"{self.table}.{self.column}.orphan"

    @property
    def message(self) -> str:
        return f"refers to {self.ref_table}.{self.ref_column} values that do not exist"

    def orphans(
        self, table: nw.LazyFrame, ref_table: nw.LazyFrame, or_table: nw.LazyFrame | None = None
    ) -> nw.LazyFrame:
        """The rows of `table` whose value is not in `ref_table` (nor in `or_table`) (on any engine:
        contract/native.py uses it too)."""
        ref = ref_table.select(nw.col(self.ref_column).alias(self.column)).unique()
        bad = table.filter(~nw.col(self.column).is_null()).join(ref, on=self.column, how="anti")
        if or_table is not None and self.or_column is not None:
            bad = bad.join(
                or_table.select(nw.col(self.or_column).alias(self.column)).unique(), on=self.column, how="anti"
            )
        return bad

    def predicate(self, frames: dict[str, pl.DataFrame], value: pl.Expr | None = None) -> pl.Expr | None:
        """The bad-row predicate over `table`'s typed columns (or of `value` instead of the column), for a big table
        checked in one pass with its own rules (contract/lazy.py: `pass_rules`); the reference values come from
        `frames` (small tables)."""
        if self.ref_table not in frames:
            return None
        value = pl.col(self.column) if value is None else value
        bad = value.is_not_null() & ~value.is_in(frames[self.ref_table].get_column(self.ref_column).unique().implode())
        if self.or_table in frames and self.or_column is not None:
            bad = bad & ~value.is_in(frames[self.or_table].get_column(self.or_column).unique().implode())
        return bad

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if self.table not in frames or self.ref_table not in frames:
            return None
        alt = nw.from_native(frames[self.or_table].lazy()) if self.or_table in frames else None
        bad = self.orphans(
            nw.from_native(frames[self.table].lazy()), nw.from_native(frames[self.ref_table].lazy()), alt
        )
        return _problem(bad.to_native(), self.code, self.table, self.column, self.message)


@dataclass(frozen=True)
class ForeignKeyOrAlias(ForeignKey):
    """Every non-empty `table.column` value must exist in `ref_table.ref_column` or `or_table.or_column`."""

    or_table: str | None = None  # type: ignore[misc]
    or_column: str | None = None  # type: ignore[misc]


@dataclass(frozen=True)
class ForeignKeyWhere(ForeignKey):
    """Every `table.column` value of the rows whose `where` column is `value` must exist in `ref_table.ref_column`."""

    where: str = ""
    value: str = ""
    every_row: ClassVar[bool] = False

    @property
    def message(self) -> str:
        return f"of {self.where} {self.value} refers to {self.ref_table}.{self.ref_column} values that do not exist"

    def orphans(
        self, table: nw.LazyFrame, ref_table: nw.LazyFrame, or_table: nw.LazyFrame | None = None
    ) -> nw.LazyFrame:
        return super().orphans(table.filter(nw.col(self.where) == self.value), ref_table, or_table)

    def predicate(self, frames: dict[str, pl.DataFrame], value: pl.Expr | None = None) -> pl.Expr | None:
        bad = super().predicate(frames, value)
        return None if bad is None else bad & (pl.col(self.where) == self.value)


@dataclass(frozen=True)
class DateOrder:
    """`table.later` must not come before `table.earlier` (strictly after when `strict`)."""

    table: str
    earlier: str
    later: str
    strict: bool = False

    @property
    def code(self) -> str:
        return f"{self.table}.{self.later}_before_{self.earlier}"

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if self.table not in frames:
            return None
        a, b = pl.col(self.earlier), pl.col(self.later)
        bad = (
            frames[self.table].lazy().filter(a.is_not_null() & b.is_not_null() & ((b <= a) if self.strict else (b < a)))
        )
        word = "on or before" if self.strict else "before"
        return _problem(bad, self.code, self.table, self.later, f"{self.later} is {word} {self.earlier}")


@dataclass(frozen=True)
class FxCoverage:
    """Every currency other than the reporting currency needs rates in fx_rates."""

    table: str
    reporting_currency: str

    @property
    def code(self) -> str:
        return f"{self.table}.currency.no_fx_rate"

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if self.table not in frames:
            return None
        known = (
            frames["fx_rates"].get_column("currency").unique()
            if "fx_rates" in frames
            else pl.Series([], dtype=pl.String)
        )
        bad = frames[self.table].filter(
            (pl.col("currency") != self.reporting_currency)
            & ~pl.col("currency").is_in(known.implode())
            & (pl.col("currency").str.len_chars() == 3)
        )  # other lengths: bad_length
        if bad.is_empty():
            return None
        missing = ", ".join(sorted(bad.get_column("currency").unique().to_list()))
        return Problem(
            self.code,
            self.table,
            "currency",
            f"amounts in {missing} cannot be converted to {self.reporting_currency}: add their rates to fx_rates",
            bad.height,
            examples(bad, key_column(TABLES[self.table]), "currency", rows=bad),
        )


@dataclass(frozen=True)
class SeatsOnPaidPlan:
    """A subscription that is paid for (amount after discount above 0) licenses at least one seat."""

    table: str = "subscriptions"
    code: str = "subscriptions.seats.zero_on_paid_plan"

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if self.table not in frames:
            return None
        paid = pl.col("amount") * (1 - pl.col("discount_pct")) > 0
        bad = frames[self.table].lazy().filter((pl.col("seats") == 0) & paid)
        return _problem(
            bad,
            self.code,
            self.table,
            "seats",
            "a paid subscription has 0 seats: licence utilisation and per-seat metrics would divide by 0 "
            "(leave seats empty when unknown)",
        )


@dataclass(frozen=True)
class KnownSegment:
    """Every accounts.segment value is selected by a segment file, so the segments add up to the whole."""

    segments: tuple[str, ...]
    table: str = "accounts"
    code: str = "accounts.segment.unknown"

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if not self.segments or self.table not in frames:
            return None
        bad = frames[self.table].lazy().filter(~pl.col("segment").is_in(list(self.segments)))
        return _problem(
            bad,
            self.code,
            self.table,
            "segment",
            f"is not one of the segments in parameters/segments/ ({', '.join(self.segments)}): add a segment "
            "file that selects it, or correct the value",
        )


@dataclass(frozen=True)
class JsonObject:
    """A non-empty `table.column` value is a JSON object in text ({"plan": "pro"})."""

    table: str
    column: str

    message = 'is not a JSON object in text, e.g. {"plan": "pro"} (leave it empty when an event has no properties)'

    @property
    def code(self) -> str:
        return f"{self.table}.{self.column}.not_json_object"

    def predicate(self, frames: dict[str, pl.DataFrame]) -> pl.Expr:
        """The bad-row predicate (see ForeignKey.predicate), over the typed column: its text is already stripped of
        surrounding spaces (stripping it again cost 0.3 s a pass at 50M events)."""
        text = pl.col(self.column)
        return (text != "") & (text.str.json_path_match("$").is_null() | ~text.str.starts_with("{"))

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if self.table not in frames or self.column not in frames[self.table].collect_schema().names():
            return None
        bad = frames[self.table].lazy().filter(self.predicate(frames))
        return _problem(bad, self.code, self.table, self.column, self.message)


@dataclass(frozen=True)
class UniqueKey:
    """No two rows of `table` share the same values of `columns` (one planned value per key)."""

    table: str
    columns: tuple[str, ...]

    @property
    def code(self) -> str:
        return f"{self.table}.duplicate_key"

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if self.table not in frames:
            return None
        keys = list(self.columns)
        bad = (
            frames[self.table]
            .lazy()
            .filter(pl.len().over(keys) > 1)
            .sort([*keys, ROW] if ROW in frames[self.table].columns else keys)
        )
        return _problem(
            bad,
            self.code,
            self.table,
            self.columns[-1],
            f"more than one row for the same {', '.join(self.columns)}: keep one planned value per "
            f"{', '.join(self.columns)}",
        )


@dataclass(frozen=True)
class FirstOfMonth:
    """A `table.column` date is the first day of its month (a month, not a day)."""

    table: str
    column: str

    @property
    def code(self) -> str:
        return f"{self.table}.{self.column}.not_first_of_month"

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if self.table not in frames:
            return None
        bad = frames[self.table].lazy().filter(pl.col(self.column).dt.day() != 1)
        return _problem(
            bad, self.code, self.table, self.column, "is not the first day of a month: write the month as YYYY-MM-01"
        )


@dataclass(frozen=True)
class KnownMetric:
    """Every `table.column` value names a registered metric (docs/metrics.md)."""

    table: str
    column: str

    @property
    def code(self) -> str:
        return f"{self.table}.{self.column}.unknown_metric"

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if self.table not in frames:
            return None
        from ..metrics import METRICS  # the registry is loaded by then; imported here to keep contract first

        bad = frames[self.table].lazy().filter(~pl.col(self.column).is_in(list(METRICS)))
        return _problem(
            bad, self.code, self.table, self.column, "is not a registered metric: see docs/metrics.md for the names"
        )


@dataclass(frozen=True)
class KnownSegmentFile:
    """Every `table.column` value names a segment file (parameters/segments/<name>.yaml), "all" the company."""

    table: str
    column: str

    @property
    def code(self) -> str:
        return f"{self.table}.{self.column}.unknown_segment"

    def check(self, frames: dict[str, pl.DataFrame]) -> Problem | None:
        if self.table not in frames:
            return None
        from ..params import segment_names

        names = segment_names()
        bad = frames[self.table].lazy().filter(~pl.col(self.column).is_in(names))
        return _problem(
            bad,
            self.code,
            self.table,
            self.column,
            f"is not a segment file in parameters/segments/ ({', '.join(names)})",
        )


PLAN_RULES = (
    KnownMetric("plan", "metric"),
    KnownSegmentFile("plan", "segment"),
    FirstOfMonth("plan", "month"),
    UniqueKey("plan", ("metric", "segment", "month")),
)

FOREIGN_KEYS = (
    ForeignKey("subscriptions", "account_id", "accounts", "account_id"),
    ForeignKey("users", "account_id", "accounts", "account_id"),
    ForeignKey("users", "referred_by", "users", "user_id"),
    ForeignKey("usage_events", "account_id", "accounts", "account_id"),
    ForeignKeyOrAlias("usage_events", "user_id", "users", "user_id", "user_aliases", "alias_id"),
    ForeignKey("user_aliases", "user_id", "users", "user_id"),
    ForeignKey("leads", "account_id", "accounts", "account_id"),
    ForeignKey("opportunities", "account_id", "accounts", "account_id"),
    ForeignKey("opportunities", "lead_id", "leads", "lead_id"),
    ForeignKey("opportunities", "owner_id", "team", "member_id"),
    ForeignKey("support_tickets", "account_id", "accounts", "account_id"),
    ForeignKey("nps_responses", "account_id", "accounts", "account_id"),
    ForeignKey("cs_touchpoints", "account_id", "accounts", "account_id"),
    ForeignKey("cs_touchpoints", "csm_id", "team", "member_id"),
    ForeignKey("accounts", "csm_id", "team", "member_id"),
    ForeignKey("invoices", "account_id", "accounts", "account_id"),
    ForeignKey("invoices", "subscription_id", "subscriptions", "subscription_id"),
    ForeignKeyWhere("survey_comments", "survey_id", "nps_responses", "response_id", where="survey", value="nps"),
    ForeignKeyWhere("survey_comments", "survey_id", "support_tickets", "ticket_id", where="survey", value="csat"),
    ForeignKey("health_overrides", "account_id", "accounts", "account_id"),
    ForeignKey("health_overrides", "csm", "team", "member_id"),
    ForeignKey("churn_reasons", "account_id", "accounts", "account_id"),
    ForeignKey("churn_reasons", "subscription_id", "subscriptions", "subscription_id"),
    ForeignKey("quotas", "member_id", "team", "member_id"),
    ForeignKey("sales_activities", "member_id", "team", "member_id"),
    ForeignKey("sales_activities", "lead_id", "leads", "lead_id"),
    ForeignKey("sales_activities", "opportunity_id", "opportunities", "opportunity_id"),
    ForeignKey("sales_activities", "account_id", "accounts", "account_id"),
)

DATE_ORDERS = (
    DateOrder("subscriptions", "start_date", "end_date", strict=True),
    DateOrder("team", "start_date", "end_date", strict=True),
    DateOrder("users", "created_at", "activated_at"),
    DateOrder("leads", "created_at", "pql_at"),
    DateOrder("leads", "created_at", "converted_at"),
    DateOrder("opportunities", "created_at", "closed_at"),
    DateOrder("support_tickets", "created_at", "first_response_at"),
    DateOrder("support_tickets", "created_at", "resolved_at"),
    DateOrder("invoices", "issued_at", "due_date"),
    DateOrder("service_status", "started_at", "ended_at"),
)


def cross_table_rules(reporting_currency: str, segments: tuple[str, ...] = ()) -> tuple:
    """Every cross-table and cross-column rule, in the order they are reported."""
    return (
        *FOREIGN_KEYS,
        *DATE_ORDERS,
        FxCoverage("subscriptions", reporting_currency),
        FxCoverage("invoices", reporting_currency),
        FxCoverage("spend", reporting_currency),
        SeatsOnPaidPlan(),
        KnownSegment(tuple(segments)),
        JsonObject("usage_events", "properties"),
        *PLAN_RULES,
    )


class PassRule(NamedTuple):
    """A cross-table rule counted row by row in a big table's own pass: its code, column, message and bad-row
    predicate over the typed columns; `lookup`, for a foreign key (every value must be one of the reference table's),
    the same predicate of any expression of the value (contract/lazy.py counts it on the values as stored)."""

    code: str
    column: str
    message: str
    predicate: pl.Expr
    lookup: Callable[[pl.Expr], pl.Expr | None] | None = None


def pass_rules(
    table: str, frames: dict[str, pl.DataFrame], reporting_currency: str, segments: tuple[str, ...] = ()
) -> list[PassRule]:
    """The cross-table rules on the big table `table` that can be checked row by row: counted in the same pass over
    the table as its own column rules (contract/lazy.py, `typed_scan`), instead of one more pass each. `frames`:
    the small tables, already typed."""
    found = []
    for rule in cross_table_rules(reporting_currency, segments):
        if getattr(rule, "table", None) == table and hasattr(rule, "predicate"):
            predicate = rule.predicate(frames)
            if predicate is not None:
                lookup = partial(rule.predicate, frames) if getattr(rule, "every_row", False) else None
                found.append(PassRule(rule.code, rule.column, rule.message, predicate, lookup))
    return found


def cross_table_problems(
    frames: dict[str, pl.DataFrame],
    reporting_currency: str,
    segments: tuple[str, ...] = (),
    checked: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Every cross-table rule broken by the typed frames (`checked`: big tables whose `pass_rules` were counted in
    their own pass)."""
    found = (
        rule.check(frames)
        for rule in cross_table_rules(reporting_currency, segments)
        if not (getattr(rule, "table", None) in checked and hasattr(rule, "predicate"))
    )
    return [p for p in found if p is not None]
