"""Why a headline rate moved: its change split over segments, channels and plans into mix and rate effects.

A rate is a ratio of sums, R = sum_g num_g / sum_g den_g = sum_g w_g r_g with w_g = den_g / sum den (the group's
share of the base) and r_g = num_g / den_g (its own rate). Between a month before (0) and now (1):

    mix_g  = (w1_g - w0_g) x ((r0_g + r1_g) / 2 - (R0 + R1) / 2)   the base shifted towards or away from g
    rate_g = (r1_g - r0_g) x (w0_g + w1_g) / 2                       g itself did better or worse

and sum_g (mix_g + rate_g) = R1 - R0 exactly (the shares sum to 1 in both months, so the centring term cancels;
the midpoint weights make the split symmetric, like a Shapley split of two factors). A group absent in one month
takes its other month's rate there, so its whole contribution is mix; a numerator without any base in a month
(new MRR in a group that paid nothing before) counts as that group's rate effect. `drivers` checks the sum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from ..errors import SaasKpiError
from ..frames import month_of, to_pandas
from ..params import Conventions
from ..sources import Tables
from .forecast import ForecastInputs, forecast_model
from .registry import table

# The headline rates: name -> (label, unit). Fractions are shown in points.
RATES = {
    "mrr_growth": ("MRR growth", "fraction"),
    "nrr": ("NRR (trailing 12 months)", "fraction"),
    "grr": ("GRR (trailing 12 months)", "fraction"),
    "logo_churn": ("Logo churn (monthly)", "fraction"),
    "funnel_conversion": ("Signup to customer conversion", "fraction"),
    "cac": ("CAC (trailing 3 months)", "currency"),
}
COMPARISONS = {"previous_month": 1, "previous_year": 12}


class DecompositionError(SaasKpiError, ArithmeticError):
    """Mix and rate effects that do not add up to the change (a bug, never silently shown)."""


def mix_rate_effects(before: pd.DataFrame, now: pd.DataFrame) -> pd.DataFrame:
    """Per group: share and rate before and now, mix and rate effects and their sum, from two frames of (group,
    num, den). The effects add up to the change of sum(num) / sum(den) (checked)."""
    both = pd.merge(before, now, on="group", how="outer", suffixes=("_0", "_1")).fillna(0.0)
    both = both[(both.den_0 > 0) | (both.den_1 > 0) | (both.num_0 != 0) | (both.num_1 != 0)].reset_index(drop=True)
    d0, d1 = both.den_0.sum(), both.den_1.sum()
    if d0 <= 0 or d1 <= 0:
        return pd.DataFrame(columns=["group", "share_before", "share_now", "rate_before", "rate_now", "mix", "rate"])
    total0, total1 = both.num_0.sum() / d0, both.num_1.sum() / d1
    w0, w1 = both.den_0 / d0, both.den_1 / d1
    r0 = np.divide(both.num_0, both.den_0, out=np.full(len(both), np.nan), where=both.den_0 > 0)
    r1 = np.divide(both.num_1, both.den_1, out=np.full(len(both), np.nan), where=both.den_1 > 0)
    r0, r1 = np.where(np.isnan(r0), r1, r0), np.where(np.isnan(r1), r0, r1)
    r0, r1 = np.nan_to_num(r0), np.nan_to_num(r1)
    # a numerator without a base (new MRR in a group that had none) adds to the rate directly: its own effect
    unbased = (both.num_1 / d1 - w1 * r1) - (both.num_0 / d0 - w0 * r0)
    out = pd.DataFrame(
        {
            "group": both.group,
            "share_before": w0,
            "share_now": w1,
            "rate_before": r0,
            "rate_now": r1,
            "mix": (w1 - w0) * ((r0 + r1) / 2 - (total0 + total1) / 2),
            "rate": (r1 - r0) * (w0 + w1) / 2 + unbased,
        }
    )
    gap = (out.mix + out.rate).sum() - (total1 - total0)
    if abs(gap) > 1e-9 * max(1.0, abs(total0), abs(total1)):
        raise DecompositionError(f"mix and rate effects miss the change by {gap:g}")
    out["value_before"], out["value_now"] = total0, total1
    return out


def account_attributes(tables: Tables, by: list[str], as_of: int) -> pd.DataFrame:
    """account_id and the attributes to split by: accounts columns, and `plan` (of the latest subscription started
    by the month end)."""
    acc = to_pandas(tables.lazy("accounts"))
    out = pd.DataFrame({"account_id": acc.account_id})
    for col in by:
        if col == "plan":
            subs = to_pandas(tables.lazy("subscriptions"))
            if "plan" in subs:
                subs = subs[pd.to_datetime(subs.start_date) < month_of(as_of + 1)]
                latest = subs.sort_values(["start_date", "subscription_id"]).groupby("account_id").plan.last()
                out["plan"] = out.account_id.map(latest)
            else:
                out["plan"] = None
        else:
            out[col] = acc[col] if col in acc else None
        out[col] = out[col].fillna("unknown").astype(str)
    return out


def _panel_parts(inputs: ForecastInputs, col: int, rate: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per account: numerator and denominator of `rate` at panel column `col` (None before it can be computed)."""
    m = inputs.mrr
    if rate == "mrr_growth" and col >= 1:
        return m[:, col] - m[:, col - 1], m[:, col - 1]  # new and reactivated accounts count in the change
    if rate == "logo_churn" and col >= 1:
        base = m[:, col - 1] > 0
        return (base & (m[:, col] == 0)) * 1.0, base * 1.0
    if rate in ("nrr", "grr") and col >= 12:
        base = m[:, col - 12] > 0
        now = m[:, col] if rate == "nrr" else np.minimum(m[:, col], m[:, col - 12])
        return np.where(base, now, 0.0), m[:, col - 12]
    return None


def rate_parts(
    rate: str,
    month: pd.Timestamp,
    by: str,
    inputs: ForecastInputs,
    ids: pd.DataFrame,
    funnel_by_channel: pd.DataFrame | None,
    funnel_by_segment: pd.DataFrame | None,
    cac_by_channel: pd.DataFrame | None,
) -> pd.DataFrame | None:
    """(group, num, den) of `rate` in `month` split over `by`; None when the rate cannot be split that way."""
    if rate in ("mrr_growth", "logo_churn", "nrr", "grr"):
        col = int(month.year * 12 + month.month - 1 - inputs.keys[0])
        parts = _panel_parts(inputs, col, rate) if 0 <= col < len(inputs.keys) else None
        if parts is None:
            return None
        frame = pd.DataFrame({"group": ids[by].to_numpy(), "num": parts[0], "den": parts[1]})
        return frame.groupby("group", as_index=False)[["num", "den"]].sum()
    if rate == "funnel_conversion":
        table, column = {
            "acquisition_channel": (funnel_by_channel, "channel"),
            "segment": (funnel_by_segment, "segment"),
        }.get(by, (None, ""))
        if table is None:
            return None
        rows = table[(table.month == month) & (table.stage == "signup → customer")]
        return pd.DataFrame({"group": rows[column].astype(str), "num": rows.converted, "den": rows.entered})
    if rate == "cac" and by == "acquisition_channel" and cac_by_channel is not None:
        c = cac_by_channel.sort_values("month")
        roll = c.groupby("channel")[["sm_spend", "new_customers"]].rolling(3, min_periods=3).sum().reset_index(level=0)
        c = c[["month"]].join(roll)
        rows = c[c.month == month]
        return pd.DataFrame({"group": rows.channel.astype(str), "num": rows.sm_spend, "den": rows.new_customers})
    return None


def _latest_mature(funnel: pd.DataFrame | None, as_of: int) -> int | None:
    """Month key of the latest month up to `as_of` whose signup -> customer cohort is mature (None: none is)."""
    if funnel is None or funnel.empty:
        return None
    rows = funnel[
        (funnel.stage == "signup → customer") & ~funnel.immature.astype(bool) & (funnel.month <= month_of(as_of))
    ]
    return None if rows.empty else int(rows.month.max().year * 12 + rows.month.max().month - 1)


def drivers_frame(
    inputs: ForecastInputs,
    ids: pd.DataFrame,
    as_of: int,
    by: list[str],
    funnel_by_channel: pd.DataFrame | None = None,
    funnel_by_segment: pd.DataFrame | None = None,
    cac_by_channel: pd.DataFrame | None = None,
    rates: tuple[str, ...] = tuple(RATES),
    comparisons: tuple[str, ...] = tuple(COMPARISONS),
) -> pd.DataFrame:
    """Every headline rate's change from the previous month and from the same month last year, split over each
    attribute in `by` into mix and rate effects per group (they sum to the change); `rates` and `comparisons`
    restrict it. Funnel conversion is compared at the latest signup cohort whose window has elapsed (`month`)."""
    parts = []
    for rate, (label, unit) in RATES.items():
        if rate not in rates:
            continue
        last: int | None = as_of
        if rate == "funnel_conversion":  # the latest signup cohort whose conversion window has elapsed
            last = _latest_mature(funnel_by_segment if funnel_by_segment is not None else funnel_by_channel, as_of)
        if last is None:
            continue
        now = month_of(last)
        for comparison, back in COMPARISONS.items():
            if comparison not in comparisons:
                continue
            before = month_of(last - back)
            for attribute in by:
                p0 = rate_parts(
                    rate, before, attribute, inputs, ids, funnel_by_channel, funnel_by_segment, cac_by_channel
                )
                p1 = rate_parts(rate, now, attribute, inputs, ids, funnel_by_channel, funnel_by_segment, cac_by_channel)
                if p0 is None or p1 is None:
                    continue
                effects = mix_rate_effects(p0, p1)
                if effects.empty:
                    continue
                parts.append(
                    effects.assign(
                        rate_name=rate, label=label, unit=unit, comparison=comparison, by=attribute, month=now
                    )
                )
    cols = ["rate_name", "label", "unit", "month", "comparison", "by", "group", "value_before", "value_now"]
    cols += ["share_before", "share_now", "rate_before", "rate_now", "mix", "rate", "contribution"]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    out["contribution"] = out.mix + out.rate
    return out[cols]


def mrr_change_by_group(inputs: ForecastInputs, ids: pd.DataFrame, as_of: int, by: str) -> pd.DataFrame:
    """The month's MRR change per group of `by`, by movement (new incl. reactivation, expansion, contraction,
    churn): the amounts sum to the change of MRR."""
    col = int(as_of - inputs.keys[0])
    prev = inputs.mrr[:, col - 1] if col >= 1 else np.zeros(len(ids))
    cur = inputs.mrr[:, col]
    moves = {
        "new": np.where((prev == 0) & (cur > 0), cur, 0.0),
        "expansion": np.where((prev > 0) & (cur > prev), cur - prev, 0.0),
        "contraction": -np.where((cur > 0) & (cur < prev), prev - cur, 0.0),
        "churn": -np.where((prev > 0) & (cur == 0), prev, 0.0),
    }
    frame = pd.DataFrame({"group": ids[by].to_numpy(), **moves})
    long = frame.groupby("group", as_index=False).sum().melt("group", var_name="movement", value_name="amount")
    return long[long.amount != 0].assign(by=by)[["by", "group", "movement", "amount"]].reset_index(drop=True)


@table(
    schema={
        "rate_name": "str",
        "label": "str",
        "unit": "str",
        "month": "datetime",
        "comparison": "str",
        "by": "str",
        "group": "str",
        "value_before": "float64",
        "value_now": "float64",
        "share_before": "float64",
        "share_now": "float64",
        "rate_before": "float64",
        "rate_now": "float64",
        "mix": "float64",
        "rate": "float64",
        "contribution": "float64",
    }
)
def drivers(
    tables: Tables,
    calendar: pl.DataFrame,
    conventions: Conventions,
    as_of: int,
    account_mrr: pd.DataFrame,
    opportunity_outcomes: pd.DataFrame,
    compute_if_available,
) -> pd.DataFrame:
    """Each headline rate's change from last month and from a year ago, split per segment, channel and plan into
    a mix effect and a rate effect that sum to the change."""
    from .. import params

    by = [str(b) for b in params.forecast_settings().drivers_by]
    ids = account_attributes(tables, by, as_of)
    return drivers_frame(
        forecast_model(tables, calendar, conventions, account_mrr, opportunity_outcomes),
        ids,
        as_of,
        by,
        compute_if_available("funnel_by_channel"),
        compute_if_available("funnel_by_segment"),
        compute_if_available("cac_by_channel"),
    )


@table(schema={"by": "str", "group": "str", "movement": "str", "amount": "float64"})
def mrr_change_drivers(
    tables: Tables,
    calendar: pl.DataFrame,
    conventions: Conventions,
    as_of: int,
    account_mrr: pd.DataFrame,
    opportunity_outcomes: pd.DataFrame,
) -> pd.DataFrame:
    """The month's MRR change per segment, channel and plan, by movement (new, expansion, contraction, churn)."""
    from .. import params

    by = [str(b) for b in params.forecast_settings().drivers_by]
    ids = account_attributes(tables, by, as_of)
    model = forecast_model(tables, calendar, conventions, account_mrr, opportunity_outcomes)
    parts = [mrr_change_by_group(model, ids, as_of, b) for b in by]
    return pd.concat(parts, ignore_index=True)
