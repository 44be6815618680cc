"""Product analytics over usage events: ordered event funnels, retention between two events and stickiness.

Funnels, retention and stickiness are declared in `parameters/product_funnels.yaml` (`settings`). The events
stay in the engine (Polars, DuckDB or Spark, through Narwhals) until they are reduced to what a question needs:
the events that match a funnel's steps or exclusions (every event of the people who started it, for a strict
funnel), or one row per person and day. Those small frames are collected into Polars, where each person's
attempts are followed step by step (`funnel_people`), so every engine gives the same answer.

Semantics follow PostHog's funnels (docs/product-analytics.md says where the workbook differs and why):

- a person is the event's user after the merges the source declares (`user_aliases`: an anonymous id linked to a
  user), or its account when a funnel counts accounts; events before a user's sign-up are kept;
- an attempt starts at each step-1 event in the period; later steps must come within the conversion window of
  that event (the boundary inclusive). `ordered`: other events may come between steps; `strict`: the steps are
  consecutive events of the person; `any`: steps in any order (step k = k distinct steps done);
- a person is counted once, at the furthest step any attempt reached, with the times of the first attempt that
  reached it;
- an exclusion event between two steps of an attempt disqualifies the attempt; a person whose every attempt is
  disqualified is left out of the funnel altogether (PostHog removes them from every step).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl
from pydantic import Field, model_validator

from .. import paths
from ..errors import ParameterError
from ..frames import conform, data_end, empty_frame, to_pandas
from ..params import _Strict, _typed, read_yaml
from ..sources import Tables
from .registry import table

EVENTS = ("accounts", "subscriptions", "usage_events")
PRODUCT_FUNNELS_FILE = paths.PARAMETERS_DIR / "product_funnels.yaml"
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
BREAKDOWNS = ("segment", "plan", "channel", "signup_cohort")
NONE = "(none)"


# --------------------------------------------------------------------------- settings
Scalar = str | int | float | bool


class Step(_Strict):
    """An event filter: an event name or a feature name, and optional property values (all must match)."""

    event: str | None = None
    feature: str | None = None
    properties: dict[str, Scalar] = {}
    label: str | None = None

    @model_validator(mode="after")
    def _one_name(self):
        if (self.event is None) == (self.feature is None):
            raise ValueError("give exactly one of `event` or `feature`")
        return self

    @property
    def name(self) -> str:
        return self.label or self.event or self.feature or ""

    @property
    def key(self) -> tuple:
        return (self.event, self.feature, tuple(sorted((k, str(v)) for k, v in self.properties.items())))


class Exclusion(Step):
    """An event that disqualifies an attempt when it happens between two steps (1-based, `between: [1, 2]`)."""

    between: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 2], min_length=2, max_length=2)


MAX_STEPS = 10  # steps a funnel may have: product_funnel_people has a step-time column for each


class Funnel(_Strict):
    """One ordered event funnel."""

    name: str
    label: str = ""
    steps: list[Step] = Field(min_length=2, max_length=MAX_STEPS)
    window: str = "7 days"
    order: Literal["ordered", "strict", "any"] = "ordered"
    count_by: Literal["user", "account"] = "user"
    exclusions: list[Exclusion] = []
    period_days: Annotated[int, Field(gt=0)] = 90

    @model_validator(mode="after")
    def _checks(self):
        window_seconds(self.window)
        for ex in self.exclusions:
            a, b = ex.between
            if not a < b <= len(self.steps):
                raise ValueError(f"exclusion {ex.name!r}: `between` must be two steps a < b among 1..{len(self.steps)}")
        return self

    @property
    def window_seconds(self) -> int:
        return window_seconds(self.window)


class Retention(_Strict):
    """People who did `start` and came back to do `returning` in each following period."""

    start: Step
    returning: Step
    period: Literal["day", "week", "month"] = "week"
    periods: Annotated[int, Field(ge=2, le=60)] = 8
    mode: Literal["first_time", "recurring"] = "first_time"
    count_by: Literal["user", "account"] = "user"


class Stickiness(_Strict):
    """How many days of each week or month a person is active (with `event`, or with any event)."""

    event: Step | None = None
    period: Literal["week", "month"] = "month"
    periods: Annotated[int, Field(ge=1, le=24)] = 3
    count_by: Literal["user", "account"] = "user"


class ProductSettings(_Strict):
    """parameters/product_funnels.yaml."""

    funnels: list[Funnel] = Field(min_length=1)
    retention: Retention
    stickiness: Stickiness = Stickiness()

    @model_validator(mode="after")
    def _unique(self):
        names = [f.name for f in self.funnels]
        if len(set(names)) != len(names):
            raise ValueError(f"funnel names must be unique, got {names}")
        return self


def window_seconds(text: str) -> int:
    """Seconds in a window written as '<n> <unit>' (second, minute, hour, day, week; plural allowed)."""
    m = re.fullmatch(r"\s*(\d+)\s*(second|minute|hour|day|week)s?\s*", text)
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"window {text!r} must be '<n> <unit>' with a unit among seconds, minutes, hours, days, weeks")
    return int(m.group(1)) * UNIT_SECONDS[m.group(2)]


def settings(path: Path | None = None) -> ProductSettings:
    """The product-analytics settings (parameters/product_funnels.yaml, checked)."""
    path = path or PRODUCT_FUNNELS_FILE
    return _settings(path, path.stat().st_mtime_ns if path.exists() else 0)


@lru_cache(maxsize=8)
def _settings(path: Path, _mtime: int) -> ProductSettings:
    return _typed(ProductSettings, read_yaml(path), path.name)


def funnel_named(name: str, path: Path | None = None) -> Funnel:
    found = {f.name: f for f in settings(path).funnels}
    if name not in found:
        raise ParameterError(f"product_funnels.yaml has no funnel {name!r} (funnels: {', '.join(found)})")
    return found[name]


# --------------------------------------------------------------------------- events in the engine
def people_events(tables: Tables, count_by: str) -> nw.LazyFrame:
    """The usage events with `person` (the user after declared merges, or the account), `event` (the feature when
    the source gives no event name), `feature`, `properties` (JSON text) and `account_id`, on the engine."""
    ev = tables.lazy("usage_events")
    names = ev.collect_schema().names()
    event = nw.coalesce(nw.col("event"), nw.col("feature")) if "event" in names else nw.col("feature")
    props = nw.col("properties") if "properties" in names else nw.lit(None, dtype=nw.String)
    ev = ev.select("event_time", "user_id", "account_id", "feature", event.alias("event"), props.alias("properties"))
    if count_by == "user" and tables.has("user_aliases"):
        aliases = tables.lazy("user_aliases").select(
            nw.col("alias_id").alias("user_id"), nw.col("user_id").alias("merged")
        )
        ev = ev.join(aliases, on="user_id", how="left").with_columns(  # alias_id is unique (the contract)
            user_id=nw.coalesce(nw.col("merged"), nw.col("user_id"))
        )
    return ev.with_columns(person=nw.col("account_id" if count_by == "account" else "user_id"))


def _named(steps: list) -> nw.Expr:
    """Events whose name or feature is one of the steps' (property filters are applied once collected)."""
    events = sorted({s.event for s in steps if s.event is not None})
    features = sorted({s.feature for s in steps if s.feature is not None})
    cond = nw.lit(False)
    if events:
        cond = cond | nw.col("event").is_in(events)
    if features:
        cond = cond | nw.col("feature").is_in(features)
    return cond


def _collect(frame: nw.LazyFrame) -> pl.DataFrame:
    """A small lazy result as a Polars frame with UTC microsecond timestamps, whatever the engine."""
    out = frame.collect(backend="polars").to_native()
    fix = []
    for col, dtype in out.schema.items():
        if isinstance(dtype, pl.Datetime):
            c = pl.col(col)
            c = c.dt.replace_time_zone("UTC") if dtype.time_zone is None else c.dt.convert_time_zone("UTC")
            fix.append(c.dt.cast_time_unit("us").alias(col))
    return out.with_columns(fix) if fix else out


def matches(step: Step) -> pl.Expr:
    """Polars predicate of a step over collected events (`event`, `feature`, `properties` JSON text)."""
    cond = pl.col("event") == step.event if step.event is not None else pl.col("feature") == step.feature
    for key, value in step.properties.items():
        got = pl.col("properties").str.json_path_match(f"$.{key}")
        want = str(value).lower() if isinstance(value, bool) else str(value)
        cond = cond & (got == want).fill_null(False)
    return cond


def funnel_events(tables: Tables, funnel: Funnel, since: dt.datetime | None = None) -> pl.DataFrame:
    """The events a funnel needs, collected: those matching a step or an exclusion, with `person`, `account_id`,
    `event_time`, `event`, `feature`, `properties` and, for a strict funnel, `seq`: the event's place among the
    person's events (by time, then event and feature name), numbered in the engine. With `since` (the start of
    the funnel's period), only events from then on: an attempt starts in the period and its later steps and
    exclusions follow its start, and a strict funnel only compares places, which earlier events shift alike."""
    ev = people_events(tables, funnel.count_by)
    if since is not None:
        ev = ev.filter(nw.col("event_time") >= since)
    cols = ["person", "account_id", "event_time", "event", "feature", "properties"]
    if funnel.order == "strict":
        ev = _near_first_steps(tables, ev, funnel)
        place = nw.col("event_time").cum_count().over("person", order_by=["event_time", "event", "feature"])
        ev = ev.with_columns(seq=place.cast(nw.Int64))
        cols.append("seq")
    return _collect(ev.filter(_named([*funnel.steps, *funnel.exclusions])).select(cols))


STRICT_DAYS = 31  # the longest window of a strict funnel whose events are numbered only near its first steps


def _near_first_steps(tables: Tables, ev: nw.LazyFrame, funnel: Funnel) -> nw.LazyFrame:
    """The events a strict funnel numbers: those of people with a first-step event (only they start an attempt),
    and, for a window of at most STRICT_DAYS days, only on the days (UTC) from a first step's day to the day its
    window ends. Every step of an attempt falls within its window, where every event of the person on those days
    is kept: two events there are next to each other among these exactly when they are among all the person's
    events, and a step found after the window does not count. Numbering every event of every person is a sort of
    the whole table (50M events: 15.7 s, 8 GB); every event of the starters since the period's start, 2.7 s; the
    events near their first steps, 1.0 s."""
    first = ev.filter(_named([funnel.steps[0]]))
    days = -(-funnel.window_seconds // 86_400)  # a window ends at most this many days after its first step's day
    if days > STRICT_DAYS:
        return ev.join(first.select("person").unique(), on="person", how="semi")
    ev = ev.with_columns(_day=nw.col("event_time").dt.date())
    starts = _collect(first.select("person", _day=nw.col("event_time").dt.date()).unique())
    covered = pl.concat([starts.with_columns(pl.col("_day").dt.offset_by(f"{k}d")) for k in range(days + 1)])
    return ev.join(tables.engine.lazy(covered.unique()), on=["person", "_day"], how="semi").drop("_day")


def loose_funnel_events(tables: Tables, funnels: list[Funnel], since: dt.datetime) -> pl.DataFrame:
    """The events any of the ordered and any-order `funnels` needs from `since` on, collected in one pass over the
    events (one per funnel cost 0.75-0.9 s each at 50M events): with `person` the user after declared merges, and
    `account_id`; `funnel_events_in` takes one funnel's from it."""
    steps = [step for funnel in funnels for step in (*funnel.steps, *funnel.exclusions)]
    ev = people_events(tables, "user").filter(nw.col("event_time") >= since)
    return _collect(
        ev.filter(_named(steps)).select("person", "account_id", "event_time", "event", "feature", "properties")
    )


def funnel_events_in(loose: pl.DataFrame, funnel: Funnel, since: dt.datetime) -> pl.DataFrame:
    """`funnel_events` of an ordered or any-order funnel, taken from `loose_funnel_events` (the same rows)."""
    ev = nw.from_native(loose).filter(nw.col("event_time") >= since).filter(_named([*funnel.steps, *funnel.exclusions]))
    out = ev.to_native()
    return out.with_columns(person=pl.col("account_id")) if funnel.count_by == "account" else out


# --------------------------------------------------------------------------- funnels (pure Polars)
def _next_after(left: pl.DataFrame, on: str, right: pl.DataFrame, out: str, exact: bool) -> pl.DataFrame:
    """`left` with `out`: each row's first `right` time at or after (`exact`) / after its `on` time, same person
    (null when `on` is null or there is none)."""
    far = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
    key = pl.col(on).fill_null(pl.lit(far, dtype=pl.Datetime("us", "UTC")))
    lhs = left.with_row_index("_i").with_columns(_k=key).sort("_k")
    rhs = right.select("person", pl.col("event_time").alias("_k"), pl.col("event_time").alias(out)).sort("_k")
    joined = lhs.join_asof(
        rhs, on="_k", by="person", strategy="forward", allow_exact_matches=exact, check_sortedness=False
    )
    return (
        joined.sort("_i")
        .drop("_i", "_k")
        .with_columns(pl.when(pl.col(on).is_null()).then(None).otherwise(pl.col(out)).alias(out))
    )


def _step_columns(n: int) -> list[str]:
    return [f"t{k}" for k in range(1, n + 1)]


def _ordered_attempts(ev: pl.DataFrame, funnel: Funnel, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    window = pl.duration(seconds=funnel.window_seconds)
    starts = ev.filter(matches(funnel.steps[0]) & pl.col("event_time").is_between(start, end, closed="left"))
    att = starts.select("person", "account_id", pl.col("event_time").alias("t1")).unique(["person", "t1"])
    att = att.sort(["person", "t1"]).with_columns(deadline=pl.col("t1") + window)
    for k in range(2, len(funnel.steps) + 1):
        prev, step = funnel.steps[k - 2], funnel.steps[k - 1]
        cand = ev.filter(matches(step))
        att = _next_after(att, f"t{k - 1}", cand, f"t{k}", exact=step.key != prev.key)
        att = att.with_columns(pl.when(pl.col(f"t{k}") <= pl.col("deadline")).then(pl.col(f"t{k}")).alias(f"t{k}"))
    return att


def _strict_attempts(ev: pl.DataFrame, funnel: Funnel, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Attempts at each step-1 event: step k is the person's event k - 1 places later (`seq`), when it matches."""
    window = pl.duration(seconds=funnel.window_seconds)
    starts = ev.filter(matches(funnel.steps[0]) & pl.col("event_time").is_between(start, end, closed="left"))
    att = starts.select("person", "account_id", "seq", pl.col("event_time").alias("t1"))
    att = att.with_columns(deadline=pl.col("t1") + window)
    for k in range(2, len(funnel.steps) + 1):
        cand = ev.filter(matches(funnel.steps[k - 1])).select(
            "person", (pl.col("seq") - (k - 1)).alias("seq"), pl.col("event_time").alias(f"t{k}")
        )
        att = att.join(cand, on=["person", "seq"], how="left")
        ok = pl.col(f"t{k - 1}").is_not_null() & (pl.col(f"t{k}") <= pl.col("deadline"))
        att = att.with_columns(pl.when(ok).then(pl.col(f"t{k}")).alias(f"t{k}"))
    return att.drop("seq")


def _any_order_attempts(ev: pl.DataFrame, funnel: Funnel, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Attempts starting at any step event: per step, its first time in the window (`s1`..`sn`); the attempt
    reached as many steps as it has times (`_in_order` puts them in order as `t1`..`tn`)."""
    window = pl.duration(seconds=funnel.window_seconds)
    any_step = pl.any_horizontal([matches(s) for s in funnel.steps])
    att = ev.filter(any_step & pl.col("event_time").is_between(start, end, closed="left"))
    att = att.select("person", "account_id", pl.col("event_time").alias("t1")).unique(["person", "t1"])
    att = att.sort(["person", "t1"]).with_columns(deadline=pl.col("t1") + window)
    for k, step in enumerate(funnel.steps, 1):
        att = _next_after(att, "t1", ev.filter(matches(step)), f"s{k}", exact=True)
        att = att.with_columns(pl.when(pl.col(f"s{k}") <= pl.col("deadline")).then(pl.col(f"s{k}")).alias(f"s{k}"))
    return att


def _in_order(att: pl.DataFrame, n: int) -> pl.DataFrame:
    """Any-order attempts with `t1`..`tn`: the k-th of their steps' times (null beyond the steps reached)."""
    times = pl.concat_list([pl.col(f"s{k}") for k in range(1, n + 1)]).list.drop_nulls().list.sort()
    return att.with_columns(_ts=times).with_columns(
        [pl.col("_ts").list.get(k - 1, null_on_oob=True).alias(f"t{k}") for k in range(1, n + 1)]
    )


def _disqualified(att: pl.DataFrame, ev: pl.DataFrame, funnel: Funnel) -> pl.Series:
    """Per attempt: whether an exclusion event comes after step a and before step b (before the window's end
    when step b was not reached)."""
    bad = pl.Series("bad", [False] * att.height)
    for i, ex in enumerate(funnel.exclusions):
        a, b = ex.between
        col = f"x{i}"
        found = _next_after(att, f"t{a}", ev.filter(matches(ex)), col, exact=False)
        bound = pl.coalesce(pl.col(f"t{b}"), pl.col("deadline"))
        hit = found.select(
            (pl.col(col).is_not_null() & ((pl.col(col) < bound) | (pl.col(f"t{b}").is_null() & (pl.col(col) <= bound))))
            .fill_null(False)
            .alias("bad")
        ).to_series()
        bad = bad | hit
    return bad


def funnel_people(events: pl.DataFrame, funnel: Funnel, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """One row per person who started the funnel in [start, end): the furthest step reached (`reached`) and the
    step times `t1`..`tn` of the first attempt that reached it (null beyond). `events` are the collected events
    (`funnel_events`); events at or after `end` are not counted."""
    n = len(funnel.steps)
    ev = events.filter(pl.col("event_time") < end)
    build = {"ordered": _ordered_attempts, "strict": _strict_attempts, "any": _any_order_attempts}[funnel.order]
    att = build(ev, funnel, start, end)
    times = [f"s{k}" for k in range(1, n + 1)] if funnel.order == "any" else _step_columns(n)
    if funnel.exclusions and att.height:
        att = _in_order(att, n) if funnel.order == "any" else att
        att = att.filter(~_disqualified(att, ev, funnel))
    reached = pl.sum_horizontal([pl.col(c).is_not_null().cast(pl.Int64) for c in times])
    att = att.with_columns(reached=reached).filter(pl.col("reached") >= 1)
    best = att.sort(["person", "reached", "t1"], descending=[False, True, False]).unique("person", keep="first")
    if funnel.order == "any":
        best = _in_order(best, n)
    schema = {"person": pl.String, "account_id": pl.String, "reached": pl.Int64}
    if best.is_empty():
        return pl.DataFrame(schema=schema | {c: pl.Datetime("us", "UTC") for c in _step_columns(n)})
    return best.select("person", "account_id", "reached", *_step_columns(n)).sort("person")


def step_table(people: pl.DataFrame, funnel: Funnel) -> pd.DataFrame:
    """Per step: people who entered it (reached it), converted (reached the next; the last step: completed),
    dropped, conversion from the previous and from the first step, mean and median seconds from the previous."""
    n = len(funnel.steps)
    rows = []
    first = int((people["reached"] >= 1).sum()) if people.height else 0
    prev = first
    for k in range(1, n + 1):
        entered = int((people["reached"] >= k).sum()) if people.height else 0
        nxt = int((people["reached"] >= k + 1).sum()) if people.height and k < n else entered
        secs = (
            people.filter(pl.col("reached") >= k)
            .select(((pl.col(f"t{k}") - pl.col(f"t{k - 1}")).dt.total_microseconds() / 1e6).alias("s"))
            .to_series()
            if k > 1 and people.height
            else pl.Series("s", [], dtype=pl.Float64)
        )
        rows.append(
            {
                "funnel": funnel.name,
                "step": k,
                "step_name": funnel.steps[k - 1].name,
                "entered": entered,
                "converted": nxt,
                "dropped": entered - nxt,
                "conversion_from_previous": entered / prev if prev else np.nan,
                "conversion_from_first": entered / first if first else np.nan,
                "mean_seconds_to_convert": float(secs.mean()) if secs.len() else np.nan,
                "median_seconds_to_convert": float(secs.median()) if secs.len() else np.nan,
            }
        )
        prev = entered
    return pd.DataFrame(rows)


FUNNEL_COLUMNS = {
    "funnel": object,
    "step": "int64",
    "step_name": object,
    "entered": "int64",
    "converted": "int64",
    "dropped": "int64",
    "conversion_from_previous": "float64",
    "conversion_from_first": "float64",
    "mean_seconds_to_convert": "float64",
    "median_seconds_to_convert": "float64",
}


# --------------------------------------------------------------------------- registered tables
def _period(calendar: pl.DataFrame, days: int) -> tuple[dt.datetime, dt.datetime]:
    end = data_end(calendar).to_pydatetime()
    return end - dt.timedelta(days=days), end


def _person_attributes(tables: Tables, people: pl.DataFrame, count_by: str) -> pl.DataFrame:
    """Per person: segment, plan (of the account's latest subscription started by the first step), acquisition
    channel and signup cohort (the month the user, or the account, signed up; the first step's month if unknown)."""
    accounts = tables.frames["accounts"].select("account_id", "segment", "acquisition_channel", "created_at")
    out = people.select("person", "account_id", "t1").join(accounts, on="account_id", how="left")
    if count_by == "user" and "users" in tables.frames:
        users = tables.frames["users"].select(
            pl.col("user_id").alias("person"), pl.col("created_at").alias("u_created")
        )
        out = out.join(users, on="person", how="left").with_columns(created_at=pl.col("u_created")).drop("u_created")
    subs = tables.frames["subscriptions"].select("account_id", "start_date", "plan").sort("start_date")
    first_day = out.with_columns(_d=pl.col("t1").dt.date()).sort("_d")
    with_plan = first_day.join_asof(
        subs, left_on="_d", right_on="start_date", by="account_id", strategy="backward", check_sortedness=False
    )
    return with_plan.select(
        "person",
        pl.col("segment").fill_null(NONE),
        pl.when(pl.col("plan").is_null() | (pl.col("plan") == ""))
        .then(pl.lit(NONE))
        .otherwise(pl.col("plan"))
        .alias("plan"),
        pl.col("acquisition_channel").fill_null(NONE).alias("channel"),
        pl.coalesce(pl.col("created_at"), pl.col("t1")).dt.strftime("%Y-%m").alias("signup_cohort"),
    )


STEP_SCHEMA = {
    "step": "int64",
    "step_name": "str",
    "entered": "int64",
    "converted": "int64",
    "dropped": "int64",
    "conversion_from_previous": "float64",
    "conversion_from_first": "float64",
    "mean_seconds_to_convert": "float64",
    "median_seconds_to_convert": "float64",
}
PEOPLE_SCHEMA = {
    "funnel": "str",
    "person": "str",
    "account_id": "str",
    "furthest_step": "int64",
    "dropped_at_step": "float64",
    **{f"t{k}": "datetime_utc" for k in range(1, MAX_STEPS + 1)},
}


@table(schema=PEOPLE_SCHEMA, needs=EVENTS)
def product_funnel_people(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Per product funnel (parameters/product_funnels.yaml) and person who started it in its period: the furthest step reached, the step they dropped at (empty: converted) and their first attempt's step times t1, t2, ..."""
    digest = hashlib.sha256(settings().model_dump_json().encode()).hexdigest()[:10]
    name = f"product_funnel_people-{int(calendar['month'].max())}-{digest}"
    return tables.aggregate(name, lambda t: _funnel_people_frame(t, calendar), sort=("funnel", "person"))


def _funnel_people_frame(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """product_funnel_people over `tables` (for a big source, all accounts once: `Tables.aggregate` keeps it in
    the disk cache, keyed by the month and the settings, and each segment takes its accounts' people)."""
    frames = []
    width = MAX_STEPS  # one layout whatever the funnels: t1..t10, empty beyond a funnel's steps
    funnels = settings().funnels
    # the ordered and any-order funnels' events come from one pass over the events; a strict funnel numbers every
    # event of its starters (funnel_events), so it takes its own
    loose = [f for f in funnels if f.order != "strict"]
    shared = (
        loose_funnel_events(tables, loose, min(_period(calendar, f.period_days)[0] for f in loose)) if loose else None
    )
    for funnel in funnels:
        start, end = _period(calendar, funnel.period_days)
        events = (
            funnel_events(tables, funnel, since=start)
            if shared is None or funnel.order == "strict"
            else funnel_events_in(shared, funnel, start)
        )
        people = funnel_people(events, funnel, start, end)
        n = len(funnel.steps)
        frames.append(
            people.select(
                pl.lit(funnel.name).alias("funnel"),
                "person",
                "account_id",
                pl.col("reached").alias("furthest_step"),
                pl.when(pl.col("reached") < n).then(pl.col("reached") + 1).alias("dropped_at_step"),
                *[
                    pl.col(f"t{k}") if k <= n else pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(f"t{k}")
                    for k in range(1, width + 1)
                ],
            )
        )
    out = to_pandas(nw.from_native(pl.concat(frames, how="vertical_relaxed")))
    out["dropped_at_step"] = out.dropped_at_step.astype("float64")
    return out.sort_values(["funnel", "person"], kind="stable").reset_index(drop=True)


def _people_of(product_funnel_people: pd.DataFrame, funnel: Funnel) -> pl.DataFrame:
    """One funnel's people as `funnel_people` gives them (person, account_id, reached, t1..tn)."""
    n = len(funnel.steps)
    part = product_funnel_people[product_funnel_people.funnel == funnel.name]
    frame = pl.from_pandas(part[["person", "account_id", "furthest_step", *_step_columns(n)]])
    return frame.rename({"furthest_step": "reached"}).with_columns(
        [pl.col(c).cast(pl.Datetime("us", "UTC")) for c in _step_columns(n)]
    )


@table(schema={"funnel": "str", **STEP_SCHEMA}, needs=EVENTS)
def product_funnel(product_funnel_people: pd.DataFrame) -> pd.DataFrame:
    """Per product funnel and step: people who entered and converted, dropped, conversion from the previous and the first step, mean and median time to convert from the previous step (seconds)."""
    frames = [step_table(_people_of(product_funnel_people, f), f) for f in settings().funnels]
    return pd.concat(frames, ignore_index=True) if frames else empty_frame(FUNNEL_COLUMNS)


@table(schema={"funnel": "str", "breakdown": "str", "value": "str", **STEP_SCHEMA}, needs=EVENTS)
def product_funnel_by(tables: Tables, product_funnel_people: pd.DataFrame) -> pd.DataFrame:
    """The product funnels broken down by segment, plan, acquisition channel and signup cohort (a person's values as of their first step)."""
    frames = []
    for funnel in settings().funnels:
        people = _people_of(product_funnel_people, funnel)
        joined = people.join(_person_attributes(tables, people, funnel.count_by), on="person", how="left")
        for by in BREAKDOWNS:
            for value in sorted(joined[by].unique().to_list()):
                part = step_table(joined.filter(pl.col(by) == value), funnel)
                frames.append(part.assign(breakdown=by, value=value))
    if not frames:
        return empty_frame({"breakdown": object, "value": object, **FUNNEL_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    return out[["funnel", "breakdown", "value", *[c for c in FUNNEL_COLUMNS if c != "funnel"]]]


# --------------------------------------------------------------------------- retention and stickiness
def _period_start(col: str, period: str) -> pl.Expr:
    d = pl.col(col)
    if period == "day":
        return d
    if period == "week":
        return d - pl.duration(days=d.dt.weekday() - 1)  # Monday
    return d.dt.truncate("1mo")


def _person_days(
    tables: Tables, step: Step | None, count_by: str, since: dt.date | None, end: dt.date, period: str = "day"
) -> pl.DataFrame:
    """Per person and `period` (day, week from Monday, month) in [since, end) with an event matching `step` (any
    event when None): `day`, the period's first day, and `days_active`, its days with such an event. Counted in
    the engine, so one row per person and period leaves it (a week is keyed by its year and the ordinal of its
    Monday, which may fall in the year before: the two parts are added up once collected)."""
    # the days [since, end) as times (UTC), on the stored column: a file ordered by time (the workbook's own, see
    # event_file.py) is then read only where those times are (50M events, the last two months: 0.9 -> 0.4 s)
    time = nw.col("event_time")
    within = time < _midnight(end) if since is None else (time >= _midnight(since)) & (time < _midnight(end))
    ev = people_events(tables, count_by).filter(within).with_columns(day=time.dt.date())
    if step is not None:
        ev = ev.filter(_named([step]))
    if step is not None and step.properties:
        got = _collect(ev.select("person", "day", "event", "feature", "properties")).filter(matches(step))
        ev = nw.from_native(got.select("person", "day").lazy())
    day = nw.col("day")
    # ISO weekday, Monday 1 .. Sunday 7: Narwhals 2.29 gives 0 for Sunday on Spark ((dayofweek + 6) % 7), so
    # Sunday is mapped to 7 on every engine
    weekday = (day.dt.weekday() + 6) % 7 + 1
    key = {"day": day.dt.ordinal_day(), "week": day.dt.ordinal_day() - weekday + 1, "month": day.dt.month()}
    per = (
        ev.with_columns(year=day.dt.year(), key=key[period])
        .group_by("person", "year", "key")
        .agg(day.n_unique().alias("days_active"))
    )
    got = _collect(per).with_columns(pl.col("year", "key").cast(pl.Int64), pl.col("days_active").cast(pl.Int64))
    first = pl.date(pl.col("year"), pl.col("key") if period == "month" else pl.lit(1), 1)
    start = first if period == "month" else first + pl.duration(days=pl.col("key") - 1)
    return got.group_by("person", start.alias("day")).agg(pl.col("days_active").sum())


def _midnight(day: dt.date) -> dt.datetime:
    """The start of `day` in UTC (the events' days are UTC days)."""
    return dt.datetime.combine(day, dt.time(), dt.UTC)


_UNIT = {"day": "d", "week": "w", "month": "mo"}


def _shift(day: dt.date, period: str, k: int) -> dt.date:
    """The start of the period `k` periods after the one starting on `day`."""
    return pl.DataFrame({"d": [day]}).select(pl.col("d").dt.offset_by(f"{k}{_UNIT[period]}")).item()


def _last_periods(end: dt.date, period: str, count: int) -> tuple[dt.date, dt.date]:
    """The starts of the first and the last of the `count` complete periods before `end` (exclusive)."""
    last = pl.DataFrame({"day": [end - dt.timedelta(days=1)]}).select(_period_start("day", period)).item()
    if _shift(last, period, 1) > end:
        last = _shift(last, period, -1)
    return _shift(last, period, -(count - 1)), last


RETENTION_SCHEMA = {
    "cohort_start": "datetime",
    "period": "int64",
    "cohort_people": "int64",
    "returned": "int64",
    "retention_rate": "float64",
}
STICKINESS_SCHEMA = {
    "period_start": "datetime",
    "days_active": "int64",
    "people": "int64",
    "active_people": "int64",
    "share": "float64",
}


def retention_matrix(starts: pl.DataFrame, returns: pl.DataFrame, r: Retention, end: dt.date) -> pd.DataFrame:
    """Cohorts of people by the period they did the start event (their first such period, or each such period
    when recurring), and per period k (0 = the cohort's own) the people who did the return event in it. Only
    complete periods before `end` (exclusive) count; the cohorts of the last `periods` of them."""
    s = starts.with_columns(p=_period_start("day", r.period)).select("person", "p").unique()
    if r.mode == "first_time":
        s = s.group_by("person").agg(pl.col("p").min())
    back = returns.with_columns(q=_period_start("day", r.period)).select("person", "q").unique()
    first_p, last_p = _last_periods(end, r.period, r.periods)
    cohorts = s.filter(pl.col("p").is_between(first_p, last_p))
    rows = []
    for (p,), members in sorted(cohorts.group_by("p"), key=lambda g: g[0][0]):
        size = members.height
        for k in range(r.periods):
            q = _shift(p, r.period, k)
            if q > last_p:
                break
            came = back.filter(pl.col("q") == q).join(members.select("person"), on="person", how="semi").height
            rows.append(
                {
                    "cohort_start": pd.Timestamp(p).as_unit("ns"),
                    "period": k,
                    "cohort_people": size,
                    "returned": came,
                    "retention_rate": came / size,
                }
            )
    return conform(pd.DataFrame(rows), RETENTION_SCHEMA) if rows else empty_frame(RETENTION_SCHEMA)


@table(schema=RETENTION_SCHEMA, needs=EVENTS)
def event_retention(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Retention between two events (parameters/product_funnels.yaml): people by the period they did the start event, and the share who did the return event k periods later."""
    r = settings().retention
    end = data_end(calendar).date()
    first_p, _ = _last_periods(end, r.period, r.periods)
    # a first-time cohort needs the start events of all time (was it the person's first?); the rest only the
    # periods shown
    starts = _person_days(tables, r.start, r.count_by, None if r.mode == "first_time" else first_p, end, r.period)
    returns = _person_days(tables, r.returning, r.count_by, first_p, end, r.period)
    return retention_matrix(starts, returns, r, end)


def stickiness_table(days: pl.DataFrame, s: Stickiness, end: dt.date) -> pd.DataFrame:
    """Per complete period (the last `periods` weeks or months before `end`) and number of days active: the
    people active that many days and their share of the period's active people."""
    d = days.filter(pl.col("day") < end).with_columns(p=_period_start("day", s.period))
    first_p, last_p = _last_periods(end, s.period, s.periods)
    # rows per person and day, or per person and period with its days_active (`_person_days`)
    days_active = pl.col("days_active").sum() if "days_active" in days.columns else pl.col("day").n_unique()
    per = (
        d.filter(pl.col("p").is_between(first_p, last_p)).group_by("p", "person").agg(days_active.alias("days_active"))
    )
    counts = per.group_by("p", "days_active").agg(pl.len().alias("people"))
    totals = per.group_by("p").agg(pl.len().alias("active_people"))
    out = counts.join(totals, on="p").with_columns(share=pl.col("people") / pl.col("active_people"))
    out = out.sort("p", "days_active").rename({"p": "period_start"})
    if out.is_empty():
        return empty_frame(STICKINESS_SCHEMA)
    return to_pandas(nw.from_native(out.select(list(STICKINESS_SCHEMA))), schema=STICKINESS_SCHEMA)


@table(schema=STICKINESS_SCHEMA, needs=EVENTS)
def stickiness(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """Stickiness: per complete week or month (parameters/product_funnels.yaml), how many people were active on 1, 2, ... days of it."""
    s = settings().stickiness
    end = data_end(calendar).date()
    first_p, _ = _last_periods(end, s.period, s.periods)
    return stickiness_table(_person_days(tables, s.event, s.count_by, first_p, end, s.period), s, end)
