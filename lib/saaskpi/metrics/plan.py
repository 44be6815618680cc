"""Plan vs actual and dated goals (issue 25).

The optional `plan` table holds one planned value per metric, segment file and month (docs/data-contract.md);
parameters/targets.yaml holds dated goals ("ARR 55,000,000 by 2027-06"). A workbook sees the plan rows of its
own segment file ("all": the company). The pace a dated goal needs is the steady monthly growth that takes the
metric from its value now to the goal by the deadline's month end, (goal / now)^(1 / months left) - 1; the
pace it has is its compound monthly growth over the last `growth_rate_months` months.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import narwhals as nw
import pandas as pd

from .. import params
from ..frames import key_of, month_of, safe_ratio, to_pandas
from ..params import Conventions, Segment
from ..sources import Tables
from .registry import METRICS, table

PLAN = ("accounts", "subscriptions", "plan")
HORIZONS = ((3, "90 days"), (12, "12 months"))  # a goal due within 3 months is a 90-day goal, within 12 a year's
ON_PLAN_BAND = 0.02  # within 2 % of plan (either side) is "on plan"


@table(schema={"metric": "str", "month": "datetime", "plan": "float64"}, needs=PLAN)
def plan_values(tables: Tables, segment: Segment) -> pd.DataFrame:
    """The plan of this workbook's segment (plan rows whose segment is the segment file's name), by metric and
    month."""
    own = tables.lazy("plan").filter(nw.col("segment") == segment.name).select("metric", "month", "value")
    out = to_pandas(own, sort=["metric", "month"]).rename(columns={"value": "plan"})
    out["month"] = pd.to_datetime(out.month)
    return out[["metric", "month", "plan"]]


def plan_status(actual: float, plan: float, direction: str) -> str:
    """ "ahead", "on plan" (within ON_PLAN_BAND of it) or "behind" for the metric's direction; "n/a" without both
    values; a neutral metric is "above" or "below"."""
    if math.isnan(actual) or math.isnan(plan):
        return "n/a"
    if plan != 0 and abs(actual - plan) <= ON_PLAN_BAND * abs(plan):
        return "on plan"
    if direction == "neutral":
        return "above" if actual > plan else "below"
    better = actual > plan if direction == "higher" else actual < plan
    return "ahead" if better else "behind"


@table(
    schema={
        "metric": "str",
        "label": "str",
        "unit": "str",
        "month": "datetime",
        "plan": "float64",
        "actual": "float64",
        "variance": "float64",
        "pct_of_plan": "float64",
        "status": "str",
    },
    needs=PLAN,
)
def plan_vs_actual(
    plan_values: pd.DataFrame, as_of: int, compute_if_available: Callable[[str], pd.DataFrame | None]
) -> pd.DataFrame:
    """Each planned metric and month up to the workbook's month: plan, actual, variance (actual - plan), % of plan
    (actual / plan) and status (ahead, on plan within 2 %, behind, for the metric's direction)."""
    p = plan_values[plan_values.month <= month_of(as_of)]
    parts = []
    for name, rows in p.groupby("metric", sort=False):
        series = compute_if_available(str(name))
        actual = (
            series.set_index("month").value.reindex(rows.month).to_numpy(dtype="float64")
            if series is not None
            else [math.nan] * len(rows)
        )
        m = METRICS[str(name)]
        parts.append(
            pd.DataFrame(
                {
                    "metric": name,
                    "label": m.label,
                    "unit": m.unit,
                    "month": rows.month.to_numpy(),
                    "plan": rows.plan.to_numpy(dtype="float64"),
                    "actual": actual,
                }
            )
        )
    cols = ["metric", "label", "unit", "month", "plan", "actual"]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: [] for c in cols})
    out["month"] = pd.to_datetime(out.month)
    out["plan"] = out.plan.astype("float64")
    out["actual"] = out.actual.astype("float64")
    out["variance"] = out.actual - out.plan
    out["pct_of_plan"] = safe_ratio(out.actual, out.plan)
    out["status"] = [plan_status(a, b, METRICS[n].direction) for a, b, n in zip(out.actual, out.plan, out.metric)]
    return out.sort_values(["metric", "month"], kind="stable").reset_index(drop=True)


def required_growth(current: float, goal: float, months: int) -> float:
    """The steady monthly growth that takes `current` to `goal` in `months` months: (goal / current)^(1/months)
    - 1; n/a for a non-positive value or no month left."""
    if months <= 0 or not current > 0 or not goal > 0:
        return math.nan
    return (goal / current) ** (1 / months) - 1


def trailing_growth(series: pd.DataFrame, month: pd.Timestamp, months: int) -> float:
    """Compound monthly growth of a metric over the `months` months up to `month`: (v_M / v_M-k)^(1/k) - 1."""
    s = series.set_index("month").value
    start = month - pd.DateOffset(months=months)
    now, then = s.get(month, math.nan), s.get(start, math.nan)
    if not (now > 0 and then > 0):
        return math.nan
    return (now / then) ** (1 / months) - 1


def pace_status(current: float, goal: float, months_left: int, required: float, trailing: float, direction: str):
    """ "reached" (the value already meets the goal), "missed" (deadline passed), "on pace" (the trailing growth is
    at least the one needed; at most for a lower-is-better metric), "behind", or "n/a"."""
    if math.isnan(current):
        return "n/a"
    met = current <= goal if direction == "lower" else current >= goal
    if met:
        return "reached"
    if months_left <= 0:
        return "missed"
    if math.isnan(required) or math.isnan(trailing):
        return "n/a"
    ok = trailing <= required if direction == "lower" else trailing >= required
    return "on pace" if ok else "behind"


def horizon_of(months_left: int) -> str:
    """ "90 days", "12 months" or "later" for a goal due in `months_left` months ("past" once due)."""
    if months_left <= 0:
        return "past"
    return next((name for limit, name in HORIZONS if months_left <= limit), "later")


@table(
    schema={
        "goal": "str",
        "source": "str",
        "metric": "str",
        "unit": "str",
        "horizon": "str",
        "deadline": "datetime",
        "goal_value": "float64",
        "current": "float64",
        "months_left": "int64",
        "required_growth": "float64",
        "trailing_growth": "float64",
        "status": "str",
    }
)
def goal_pace(
    as_of: int,
    segment: Segment,
    conventions: Conventions,
    compute_if_available: Callable[[str], pd.DataFrame | None],
) -> pd.DataFrame:
    """Each dated goal of parameters/targets.yaml for this segment, and each planned metric's plan 3 and 12
    months ahead (when the plan has them): the value now, the monthly growth needed to get there (required) and
    the compound monthly growth of the last growth_rate_months months (trailing), with a status: reached,
    on pace, behind, missed."""
    goals = [
        (g.label or f"{METRICS[g.metric].label} {g.value:,.6g} by {g.deadline}", "goal", g.metric, g.value, g.deadline)
        for g in params.targets_file(known=set(METRICS)).goals
        if g.segment == segment.name
    ]
    planned = compute_if_available("plan_values")
    if planned is not None:
        for months, _name in HORIZONS:
            when = month_of(as_of + months)
            for row in planned[planned.month == when].itertuples():
                label = f"{METRICS[row.metric].label}: plan for {when:%b %Y}"
                goals.append((label, "plan", row.metric, float(row.plan), f"{when:%Y-%m}"))
    now = month_of(as_of)
    rows = []
    for label, source, name, goal, deadline in goals:
        m = METRICS[name]
        series = compute_if_available(name)
        s = series[series.month <= now] if series is not None else None
        current = float(s.set_index("month").value.get(now, math.nan)) if s is not None else math.nan
        left = key_of(deadline) - as_of
        required = required_growth(current, goal, left)
        trailing = trailing_growth(s, now, conventions.growth_rate_months) if s is not None else math.nan
        rows.append(
            {
                "goal": label,
                "source": source,
                "metric": name,
                "unit": m.unit,
                "horizon": horizon_of(left),
                "deadline": month_of(key_of(deadline)),
                "goal_value": float(goal),
                "current": current,
                "months_left": int(left),
                "required_growth": required,
                "trailing_growth": trailing,
                "status": pace_status(current, goal, left, required, trailing, m.direction),
            }
        )
    cols = list(goal_pace_schema())
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["months_left", "source", "goal"], kind="stable").reset_index(drop=True)


def goal_pace_schema() -> dict[str, str]:
    from .registry import TABLE_FUNCS

    return TABLE_FUNCS["goal_pace"].schema


def plan_series(wb, name: str) -> pd.DataFrame | None:
    """The plan of metric `name` for the workbook's segment up to its month's year ahead (month, plan), or None
    when the source has no plan table or no plan for it (charts and tiles draw it beside the target)."""
    if wb.tables.missing(*PLAN):
        return None
    p = wb.compute("plan_values")
    p = p[p.metric == name]
    return None if p.empty else p[["month", "plan"]].reset_index(drop=True)
