"""Practices (issue 25, item 9): the metric review cycle and the accounts behind a tile.

The review cycle has three reviews, each with its cadence and scope (parameters/reviews.yaml):
- a monthly **audit** of the headline KPIs (the registry's tiles): are the numbers right, is the data fresh?
- a quarterly **alignment** of the targets with the company's goals: every metric with a target in force;
- an annual **overhaul** of the metric set: every registered metric (keep, change or retire it).
A review is due when `every_months` months have passed since it was last done (or it was never done), counted
at the end of the workbook's month. A target is stale when its `reviewed` date is older than the alignment's
cadence (or it has none). Targets are declared on their metrics and overridden in segment files, so their
reviewed dates live in reviews.yaml (`targets_reviewed`), not beside the values.

The accounts behind a tile are the accounts that make up an account-based KPI in the month: those that churned
(logo churn), the new customers, and the at-risk accounts (red accounts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import polars as pl

from .. import paths
from ..errors import ParameterError
from ..frames import empty_frame, month_of, to_pandas
from ..params import Conventions, read_yaml
from ..sources import Tables
from .lifecycle import account_names
from .registry import METRICS, table
from .revenue import account_movements_lazy

REVIEWS_FILE = paths.PARAMETERS_DIR / "reviews.yaml"
CYCLES = {
    "audit": ("Monthly audit", "headline KPIs (tiles): values, data freshness, definitions"),
    "alignment": ("Quarterly alignment", "metrics with a target: targets against the company's goals"),
    "overhaul": ("Annual overhaul", "every metric: keep, change or retire"),
}
DEFAULT_EVERY = {"audit": 1, "alignment": 3, "overhaul": 12}


@dataclass(frozen=True)
class Cycle:
    name: str
    every_months: int
    last: dt.date | None


@dataclass(frozen=True)
class Reviews:
    cycles: tuple[Cycle, ...]
    targets_reviewed: dict[str, dt.date]


def _date(value, where: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ParameterError(f"{where}: {value!r} is not a date (YYYY-MM-DD).") from None


def reviews(path: Path | None = None) -> Reviews:
    """reviews.yaml (every cycle never done, no target reviewed, without it); unknown cycles, keys or metrics,
    bad dates or cadences are a ParameterError naming them."""
    path = path or REVIEWS_FILE
    raw = (read_yaml(path) or {}) if path.exists() else {}
    if set(raw) - {"cycles", "targets_reviewed"}:
        raise ParameterError(f"{path.name} takes cycles and targets_reviewed; got {sorted(raw)}.")
    given = raw.get("cycles") or {}
    if not isinstance(given, dict) or set(given) - set(CYCLES):
        raise ParameterError(f"{path.name}: cycles are {', '.join(CYCLES)}; got {given!r}.")
    cycles = []
    for name in CYCLES:
        spec = given.get(name) or {}
        where = f"{path.name}: cycle `{name}`"
        if not isinstance(spec, dict) or set(spec) - {"every_months", "last"}:
            raise ParameterError(f"{where} takes every_months and last; got {spec!r}.")
        every = spec.get("every_months", DEFAULT_EVERY[name])
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ParameterError(f"{where}: every_months must be a whole number of at least 1, got {every!r}.")
        cycles.append(Cycle(name, every, _date(spec.get("last"), where)))
    targets = raw.get("targets_reviewed") or {}
    if not isinstance(targets, dict):
        raise ParameterError(f"{path.name}: targets_reviewed maps metric names to dates; got {targets!r}.")
    unknown = sorted(set(targets) - set(METRICS))
    if unknown:
        raise ParameterError(f"{path.name}: targets_reviewed names unknown metric(s) {', '.join(unknown)}.")
    reviewed = {m: _date(d, f"{path.name}: targets_reviewed `{m}`") for m, d in targets.items()}
    return Reviews(tuple(cycles), {m: d for m, d in reviewed.items() if d is not None})


def months_between(earlier: dt.date, month_end: pd.Timestamp) -> int:
    """Whole months from `earlier` to `month_end` (2026-07-10 to 2026-10-31: 3)."""
    return (month_end.year - earlier.year) * 12 + month_end.month - earlier.month


def scope(cycle: str, targets_in_force: dict[str, float | None]) -> list[str]:
    """The metrics a review covers: tiles (audit), metrics with a target (alignment), every metric (overhaul)."""
    if cycle == "audit":
        return [n for n, m in METRICS.items() if m.tile is not None]
    if cycle == "alignment":
        return [n for n in METRICS if targets_in_force.get(n) is not None]
    return list(METRICS)


@table(
    schema={
        "cycle": "str",
        "review": "str",
        "covers": "str",
        "every_months": "int64",
        "last_done": "datetime",
        "next_due": "datetime",
        "status": "str",
        "metrics": "int64",
    }
)
def review_cycle(as_of: int, targets_in_force: dict) -> pd.DataFrame:
    """The three reviews at the end of the month: cadence, last done, next due and status (due when the cadence
    has passed since it was last done, or it was never done; else on schedule), and how many metrics each covers
    (parameters/reviews.yaml)."""
    end = month_of(as_of) + pd.offsets.MonthEnd(0)
    rows = []
    for c in reviews().cycles:
        label, covers = CYCLES[c.name]
        last = pd.Timestamp(c.last) if c.last else pd.NaT
        due = last + pd.DateOffset(months=c.every_months) if c.last else pd.NaT
        status = "never done" if not c.last else "due" if due <= end else "on schedule"
        rows.append((c.name, label, covers, c.every_months, last, due, status, len(scope(c.name, targets_in_force))))
    out = pd.DataFrame(
        rows, columns=["cycle", "review", "covers", "every_months", "last_done", "next_due", "status", "metrics"]
    )
    return out.astype({"last_done": "datetime64[us]", "next_due": "datetime64[us]"})  # a unit Parquet keeps


@table(
    schema={
        "metric": "str",
        "label": "str",
        "page": "str",
        "target": "float64",
        "source": "str",
        "reviewed": "datetime",
        "months_since": "float64",
        "stale": "bool",
    }
)
def target_reviews(as_of: int, targets_in_force: dict) -> pd.DataFrame:
    """Every target in force with the date it was last reviewed (reviews.yaml targets_reviewed) and whether it
    is stale: never reviewed, or reviewed more months ago than the alignment's cadence. Stale first, oldest first."""
    r = reviews()
    every = next(c.every_months for c in r.cycles if c.name == "alignment")
    end = month_of(as_of) + pd.offsets.MonthEnd(0)
    rows = []
    for name, value in targets_in_force.items():
        if value is None:
            continue
        m = METRICS[name]
        seen = r.targets_reviewed.get(name)
        since = float(months_between(seen, end)) if seen else float("nan")
        rows.append(
            (
                name,
                m.label,
                m.page,
                float(value),
                m.target_source or "",
                pd.Timestamp(seen) if seen else pd.NaT,
                since,
                seen is None or since > every,
            )
        )
    out = pd.DataFrame(
        rows, columns=["metric", "label", "page", "target", "source", "reviewed", "months_since", "stale"]
    )
    out["reviewed"] = pd.to_datetime(out.reviewed).astype("datetime64[us]")
    return out.sort_values(["stale", "months_since"], ascending=[False, False], kind="stable", na_position="first")


# --------------------------------------------------------------------------- accounts behind a tile
DRILLDOWN = {
    "customer_churn_rate": "accounts that churned in the month (MRR lost)",
    "new_customers": "new paying accounts in the month (their first MRR)",
    "red_account_share": "red accounts at the month end (their ARR)",
}
BEHIND_SCHEMA = {
    "metric": "str",
    "account_id": "str",
    "account_name": "str",
    "segment": "str",
    "amount": "float64",
    "detail": "str",
}


@table(schema=BEHIND_SCHEMA)
def accounts_behind_tiles(
    tables: Tables, calendar: pl.DataFrame, conventions: Conventions, as_of: int, compute_if_available
) -> pd.DataFrame:
    """The accounts behind the account-based tiles in the month: churned accounts (amount = MRR lost), new
    customers (their first MRR) and red accounts (their ARR, with what pulled them down), largest amount first."""
    month = month_of(as_of)
    moves = to_pandas(account_movements_lazy(tables, calendar, conventions).filter(_month_is(month)))
    names = account_names(tables)
    seg = to_pandas(tables.lazy("accounts").select("account_id", "segment")).set_index("account_id").segment
    parts = []
    for metric, column, detail in (
        ("customer_churn_rate", "churn", "churned"),
        ("new_customers", "new", "new"),
    ):
        got = moves[moves[column] > 0]
        parts.append(
            pd.DataFrame({"metric": metric, "account_id": got.account_id, "amount": got[column], "detail": detail})
        )
    risky = compute_if_available("at_risk_accounts")
    if risky is not None:
        red = risky[risky.band == "red"]
        parts.append(
            pd.DataFrame(
                {
                    "metric": "red_account_share",
                    "account_id": red.account_id,
                    "amount": red.arr,
                    "detail": red.pulled_down_by,
                }
            )
        )
    out = pd.concat(parts, ignore_index=True) if parts else empty_frame(BEHIND_SCHEMA)
    out["account_name"] = out.account_id.map(names).replace("", None).fillna(out.account_id)
    out["segment"] = out.account_id.map(seg)
    order = {m: i for i, m in enumerate(DRILLDOWN)}
    out = out.assign(o=out.metric.map(order)).sort_values(["o", "amount", "account_id"], ascending=[True, False, True])
    return out[list(BEHIND_SCHEMA)].reset_index(drop=True)


def _month_is(month: pd.Timestamp):
    import narwhals as nw

    from ..frames import key_of

    return nw.col("month") == key_of(month)
