"""Chart builders: small pandas frames in, Altair charts out. A chart is a value (tested through
`to_dict()`); the look comes from `theme`; targets are dashed (mark style "target"); money is shown in the
reporting currency each builder takes (`currency`, default USD) through `money_axis` and `money_tooltip`."""

from __future__ import annotations

import altair as alt
import pandas as pd

from . import theme
from .format import SYMBOLS, money
from .metrics.revenue import net_new

MAX_ROWS = 5000  # charts never receive raw rows


def _check(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) > MAX_ROWS:
        raise ValueError(f"a chart was given {len(frame)} rows; aggregate first (at most {MAX_ROWS})")
    return frame


MONEY_DIGITS = {"short": ",.3~s", "whole": ",.0f", "cents": ",.2f"}  # $1.2M, $1,234, $12.34


def money_format(currency: str = "USD", digits: str = "short") -> str:
    """A d3 number format for money in `currency`. Vega formats numbers in its en-US locale, whose currency
    directive (`$` at the start of a format) is the dollar sign, so only a currency whose symbol is the dollar
    sign takes it; any other currency gets a plain number here, and its symbol from `money_axis` (in the labels)
    and `money_tooltip` (in the title)."""
    spec = MONEY_DIGITS[digits]
    return "$" + spec if symbol(currency) == "$" else spec


def symbol(currency: str) -> str:
    """The symbol `format.money` writes for `currency` ($, €, £; otherwise the code)."""
    return SYMBOLS.get(currency, currency)


def money_axis(currency: str = "USD", digits: str = "short", **kwargs) -> alt.Axis:
    """An axis of money in `currency`: $1.2M, €1.2M, £350k, CHF 1.2M (negative amounts with a leading minus)."""
    fmt = money_format(currency, digits)
    if symbol(currency) == "$":
        return alt.Axis(format=fmt, **kwargs)
    prefix = SYMBOLS.get(currency, currency + " ")
    expr = f"(datum.value < 0 ? '−' : '') + '{prefix}' + format(abs(datum.value), '{fmt}')"
    return alt.Axis(format=fmt, labelExpr=expr, **kwargs)


def money_tooltip(field: str, currency: str = "USD", digits: str = "whole", title: str | None = None) -> alt.Tooltip:
    """A tooltip line of money in `currency`; a currency other than the dollar is named in its title."""
    title = title or field.split(":")[0]
    if symbol(currency) != "$":
        title += f" ({symbol(currency)})"
    return alt.Tooltip(field, format=money_format(currency, digits), title=title)


def _axis_format(unit: str, currency: str = "USD") -> str:
    if unit == "currency":
        return money_format(currency)
    return {"fraction": ".2~%", "ratio": ".3~g", "number": ".3~g", "score": ".0f"}.get(unit, ",.3~s")


def _axis(unit: str, currency: str = "USD", **kwargs) -> alt.Axis:
    return money_axis(currency, **kwargs) if unit == "currency" else alt.Axis(format=_axis_format(unit), **kwargs)


def _tooltip(field: str, unit: str, currency: str = "USD", title: str | None = None, digits: str = "short"):
    if unit == "currency":
        return money_tooltip(field, currency, digits, title)
    fmt = _axis_format(unit)
    return alt.Tooltip(field, format=fmt.replace("~s", "f") if digits != "short" else fmt, title=title or alt.Undefined)


BRIDGE_STEPS = (
    ("start", "MRR start", 1),
    ("new", "New", 1),
    ("expansion", "Expansion", 1),
    ("reactivation", "Reactivation", 1),
    ("contraction", "Contraction", -1),
    ("churn", "Churn", -1),
)


def mrr_bridge(movements: pd.DataFrame, month: pd.Timestamp, currency: str = "USD") -> alt.Chart:
    """Waterfall from the month's starting MRR through each movement to its ending MRR.

    The axis starts just below the lowest running level (not at zero) so that movements a few
    percent of MRR stay visible; the subtitle says so.
    """
    row = movements[movements.month == month].iloc[0]
    steps, level = [], 0.0
    for key, label, sign in BRIDGE_STEPS:
        amount = row["mrr_start"] if key == "start" else sign * row[key]
        lo, hi = (None, amount) if key == "start" else (level, level + amount)
        steps.append({"step": label, "kind": key, "lo": lo, "hi": hi, "amount": amount})
        level = hi
    steps.append({"step": "MRR end", "kind": "end", "lo": None, "hi": row["mrr_end"], "amount": row["mrr_end"]})
    data = pd.DataFrame(steps)
    levels = pd.concat([data.lo.dropna(), data.hi])
    spread = max(levels.max() - levels.min(), abs(levels.max()) * 0.02, 1.0)
    floor = max(0.0, levels.min() - 0.6 * spread)
    data["lo"] = data.lo.fillna(floor)
    data["from"], data["to"] = data[["lo", "hi"]].min(axis=1), data[["lo", "hi"]].max(axis=1)
    order = list(data.step)
    base = alt.Chart(data).encode(x=alt.X("step:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)))
    bars = base.mark_bar().encode(
        y=alt.Y(
            "from:Q",
            title="MRR",
            axis=money_axis(currency),
            scale=alt.Scale(zero=False, domain=[floor, levels.max() + 0.15 * spread]),
        ),
        y2="to:Q",
        color=alt.Color("kind:N", scale=theme.scale(theme.MOVEMENTS), legend=None),
        tooltip=[alt.Tooltip("step:N"), money_tooltip("amount:Q", currency)],
    )
    labels = base.mark_text(dy=-7, style="cell-label").encode(
        y="to:Q", text=alt.Text("amount:Q", format=money_format(currency))
    )
    subtitle = "start + new + expansion + reactivation − contraction − churn = end"
    if floor > 0:
        subtitle += f"; the axis starts at {money(floor, currency)}, not zero"
    return (bars + labels).properties(
        title=alt.Title(f"MRR bridge, {month:%B %Y}", subtitle=subtitle), height=280, width=640
    )


def movements_over_time(movements: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """Monthly MRR movements as stacked bars (losses below zero) with net new MRR as a line."""
    m = _check(movements)
    long = m.melt(
        id_vars="month",
        value_vars=["new", "expansion", "reactivation", "contraction", "churn"],
        var_name="kind",
        value_name="amount",
    )
    long.loc[long.kind.isin(["contraction", "churn"]), "amount"] *= -1
    net = m.assign(net=net_new(m))[["month", "net"]]
    colours = {k: v for k, v in theme.MOVEMENTS.items() if k in set(long.kind)}
    bars = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month):T", title=None, axis=month_axis(m.month)),
            y=alt.Y("sum(amount):Q", title="MRR movement", stack="zero", axis=money_axis(currency)),
            color=alt.Color("kind:N", scale=theme.scale(colours), title="movement"),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                "kind:N",
                money_tooltip("amount:Q", currency),
            ],
        )
    )
    line = (
        alt.Chart(net)
        .mark_line(point=True)
        .encode(
            x=alt.X("yearmonth(month):T", bandPosition=0.5),
            y="net:Q",
            tooltip=[money_tooltip("net:Q", currency, title="net new MRR")],
        )
    )
    return (bars + line).properties(title=alt.Title("MRR movements by month", subtitle="line: net new MRR"), height=240)


def cohort_heatmap(
    triangle: pd.DataFrame,
    value: str,
    title: str,
    percent: bool = True,
    cohort: str = "cohort_month",
    tooltip: tuple[str, ...] = (),
) -> alt.Chart:
    """Cohorts (rows) by months since start (columns), coloured by `value`."""
    t = _check(triangle[[cohort, "months_since_start", value, *tooltip]].copy())
    t["cohort"] = pd.to_datetime(t[cohort]).dt.strftime("%Y-%m")
    fmt = ".0%" if percent else ",.0f"
    top = max(1.0, float(t[value].quantile(0.98))) if len(t) else 1.0  # revenue retention can exceed 100 %
    scale = alt.Scale(domain=[0, top], clamp=True) if percent else alt.Scale()
    rect = (
        alt.Chart(t)
        .mark_rect()
        .encode(
            x=alt.X("months_since_start:O", title="months since start", axis=alt.Axis(labelAngle=0, labelOverlap=True)),
            y=alt.Y("cohort:O", title="cohort", sort="descending", axis=alt.Axis(labelOverlap=True)),
            color=alt.Color(f"{value}:Q", title=None, scale=scale, legend=alt.Legend(format=fmt, orient="right")),
            tooltip=[
                alt.Tooltip("cohort:O"),
                alt.Tooltip("months_since_start:O", title="month"),
                alt.Tooltip(f"{value}:Q", format=fmt),
                *[alt.Tooltip(f"{c}:Q", format=",.0f") for c in tooltip],
            ],
        )
    )
    return rect.properties(
        title=title, height=alt.Step(9) if t.cohort.nunique() > 18 else alt.Step(16), width=alt.Step(14)
    )


def weighted_average_line(average: pd.DataFrame, value: str, title: str) -> alt.Chart:
    """The cohort-size-weighted average retention curve."""
    return (
        alt.Chart(_check(average))
        .mark_line(point=True)
        .encode(
            x=alt.X("months_since_start:Q", title="months since start"),
            y=alt.Y(f"{value}:Q", title=None, axis=alt.Axis(format=".0%")),
            tooltip=[alt.Tooltip("months_since_start:Q", title="month"), alt.Tooltip(f"{value}:Q", format=".1%")],
        )
        .properties(title=title, height=200)
    )


def survival_curves(km: pd.DataFrame) -> alt.Chart:
    """Kaplan-Meier share of accounts still paying, per segment, with 95 % bands."""
    data = _check(km)
    base = alt.Chart(data).encode(
        x=alt.X("months:Q", title="months since first payment"), color=alt.Color("segment:N", title="segment")
    )
    band = base.mark_area(interpolate="step-after", style="band").encode(y="lower:Q", y2="upper:Q")
    line = base.mark_line(interpolate="step-after").encode(
        y=alt.Y("survival:Q", title="still paying", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1])),
        tooltip=[
            "segment:N",
            "months:Q",
            alt.Tooltip("survival:Q", format=".1%"),
            alt.Tooltip("at_risk:Q", title="at risk"),
        ],
    )
    return (band + line).properties(
        title=alt.Title(
            "Logo survival (Kaplan-Meier)",
            subtitle="young accounts are censored, not counted as churned; band: 95 % interval",
        ),
        height=260,
    )


def trend(
    series: pd.DataFrame,
    label: str,
    unit: str,
    target: float | None = None,
    low_n: float | None = None,
    long_term: float | None = None,
    currency: str = "USD",
    plan: pd.DataFrame | None = None,
    width: int = 300,
) -> alt.Chart:
    """A metric's monthly line with its target dashed and its plan (`plan`: month, plan) dotted month by month;
    months with n below `low_n` are flagged; money in `currency`; `width` pixels wide."""
    data = _check(series.dropna(subset=["value"]).copy())
    data["low_n"] = data.n < low_n if low_n else False
    base = alt.Chart(data).encode(x=alt.X("yearmonth(month):T", title=None, axis=monthly_labels(data.month, width)))
    # a line's axis is fitted to the data and its targets (not from zero): NRR moving around 100 % stays readable
    layers = [
        base.mark_line().encode(
            y=alt.Y("value:Q", title=label, axis=_axis(unit, currency), scale=alt.Scale(zero=False)),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                _tooltip("value:Q", unit, currency, digits="whole"),
                "n:Q",
            ],
        )
    ]
    if data.low_n.any():
        layers.append(base.transform_filter("datum.low_n").mark_point(style="flag").encode(y="value:Q"))
    data["immature"] = data["immature"].astype(bool) if "immature" in data else False
    if data.immature.any():
        layers.append(
            base.transform_filter("datum.immature")
            .mark_point(filled=True, color="white", stroke=theme.MUTED, size=45)
            .encode(y="value:Q")
        )
    targets = [(t, name) for t, name in ((target, "target"), (long_term, "long-term target")) if t is not None]
    if targets:
        layers.append(
            alt.Chart(pd.DataFrame({"target": [t for t, _ in targets], "which": [n for _, n in targets]}))
            .mark_rule(style="target")
            .encode(y="target:Q", tooltip=["which:N", _tooltip("target:Q", unit, currency)])
        )
    subtitle = "dashed: target" if targets else ""
    planned = plan[plan.month.isin(data.month)] if plan is not None and len(data) else None
    if planned is not None and len(planned):
        layers.append(
            alt.Chart(planned)
            .mark_line(style="plan")
            .encode(
                x="yearmonth(month):T",
                y="plan:Q",
                tooltip=[alt.Tooltip("yearmonth(month):T", title="month"), _tooltip("plan:Q", unit, currency)],
            )
        )
        subtitle += ("; " if subtitle else "") + "dotted: plan"
    if data.low_n.any():
        subtitle += ("; " if subtitle else "") + "▲ small sample"
    if data.immature.any():
        subtitle += ("; " if subtitle else "") + "○ immature: conversion window still open"
    return alt.layer(*layers).properties(title=alt.Title(label, subtitle=subtitle), height=170, width=width)


LABEL_PX = 60  # room for one month's label ("Sep 2026" in 11 px type) and a gap


def monthly_labels(months: pd.Series, width: int) -> alt.Axis:
    """A time axis with a tick every month and a label every 1, 2, 3, 4, 6 or 12 months, as many as fit in `width`
    pixels, the last month always labelled. Left to Vega, every month's label is measured to drop those that
    would overlap: most of the time vl-convert takes to draw trends (0.5 s of 0.7 s for eleven panels)."""
    stamps = pd.to_datetime(months)
    if stamps.empty:
        return alt.Axis(tickCount={"interval": "month", "step": 1})
    first, last = (int(t.year * 12 + t.month - 1) for t in (stamps.min(), stamps.max()))
    need = (last - first + 1) * LABEL_PX / width
    step = next((s for s in (1, 2, 3, 4, 6) if s >= need), 12)
    shown = f"(year(datum.value) * 12 + month(datum.value)) % {step} == {last % step}"
    return alt.Axis(
        tickCount={"interval": "month", "step": 1},
        labelExpr=f"{shown} ? timeFormat(datum.value, '%b %Y') : ''",
        labelOverlap=False,
        labelFlush=False,
    )


def growth_lines(growth: pd.DataFrame, width: int = 560) -> alt.Chart:
    """Year-over-year growth per month: ARR against the same month a year before, and the trailing twelve
    months' MRR against the twelve before (columns month, arr_yoy, t12m_growth)."""
    names = {"arr_yoy": "ARR, year over year", "t12m_growth": "trailing 12 months' MRR"}
    long = (
        _check(growth[["month", *names]])
        .melt("month", var_name="series", value_name="growth")
        .dropna(subset=["growth"])
        .assign(series=lambda d: d.series.map(names))
    )
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("yearmonth(month):T", title=None, axis=monthly_labels(long.month, width)),
            y=alt.Y("growth:Q", title="growth", axis=_axis("fraction")),
            color=alt.Color("series:N", title=None, sort=list(names.values())),
            tooltip=[alt.Tooltip("yearmonth(month):T", title="month"), "series:N", _tooltip("growth:Q", "fraction")],
        )
        .properties(
            title=alt.Title("Growth year over year", subtitle="against the same months a year before"),
            width=width,
            height=200,
        )
    )


def active_users(active: pd.DataFrame) -> alt.Chart:
    """Mean DAU, mean WAU and MAU per month."""
    long = _check(active).melt(
        id_vars="month", value_vars=["dau", "wau", "mau"], var_name="measure", value_name="users"
    )
    long["measure"] = long.measure.str.upper()
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("yearmonth(month):T", title=None, axis=monthly_labels(long.month, 640)),
            y=alt.Y("users:Q", title="active users"),
            color=alt.Color("measure:N", sort=["DAU", "WAU", "MAU"], title=None),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                "measure:N",
                alt.Tooltip("users:Q", format=",.0f"),
            ],
        )
        .properties(title="Active users", height=220)
    )


def user_lifecycle(lifecycle: pd.DataFrame) -> alt.Chart:
    """Users per month by lifecycle status; dormant users drawn below zero."""
    long = _check(lifecycle).melt(
        id_vars="month", value_vars=list(theme.LIFECYCLE), var_name="status", value_name="users"
    )
    long.loc[long.status == "dormant", "users"] *= -1
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month):T", title=None, axis=month_axis(long.month)),
            y=alt.Y("sum(users):Q", title="users", stack="zero"),
            color=alt.Color("status:N", scale=theme.scale(theme.LIFECYCLE), title=None),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                "status:N",
                alt.Tooltip("users:Q", format=",.0f"),
            ],
        )
        .properties(
            title=alt.Title(
                "User lifecycle",
                subtitle="new, returning and resurrecting users above zero; users gone dormant this month below",
            ),
            height=220,
        )
    )


def funnel(stages: pd.DataFrame, title: str, subtitle: str) -> alt.Chart:
    """Stage bars (entrants per stage) annotated with the conversion rate to the next stage and its n."""
    data = _check(stages.copy())
    order = data.stage.tolist()
    base = alt.Chart(data).encode(y=alt.Y("stage:N", sort=order, title=None))
    bars = base.mark_bar(color=theme.PALETTE[0]).encode(
        x=alt.X(
            "count:Q",
            title="entered in the period (log scale)",
            scale=alt.Scale(type="log", domainMin=1),
            axis=alt.Axis(values=[1, 10, 100, 1000, 10000, 100000, 1000000], format="~s"),
        ),
        x2=alt.datum(1),
        tooltip=["stage:N", alt.Tooltip("count:Q", format=","), "label:N"],
    )
    text = base.mark_text(align="left", dx=4, fontSize=11, color=theme.INK).encode(x="count:Q", text="label:N")
    return (bars + text).properties(title=alt.Title(title, subtitle=subtitle), height=34 * len(data), width=520)


def days_histogram(days: pd.DataFrame, title: str, subtitle: str = "") -> alt.Chart:
    """Distribution of days to convert per stage (one small histogram per stage)."""
    data = _check(days)
    return (
        alt.Chart(data)
        .mark_bar(color=theme.PALETTE[1])
        .encode(
            x=alt.X("bin_start:Q", title="days"),
            x2="bin_end:Q",
            y=alt.Y("count:Q", title="conversions"),
            y2=alt.datum(0),
            tooltip=["stage:N", "bin_start:Q", "bin_end:Q", "count:Q"],
        )
        .properties(height=130, width=230)
        .facet(facet=alt.Facet("stage:N", title=None, sort=list(dict.fromkeys(data.stage))), columns=3)
        .resolve_scale(y="independent")
        .properties(title=alt.Title(title, subtitle=subtitle))
    )


def rate_by_group(rates: pd.DataFrame, group: str, title: str, low_n: float) -> alt.Chart:
    """Conversion rate per group (channel or segment) and stage, with n beside each bar; small samples faded."""
    data = _check(rates.copy())
    data["label"] = [
        f"{r:.0%} (n={n:,.0f}{', small' if n < low_n else ''})" if r == r else f"n/a (n={n:,.0f})"
        for r, n in zip(data.conversion_rate, data.entered)
    ]
    data["small"] = data.entered < low_n
    base = alt.Chart(data).encode(y=alt.Y(f"{group}:N", title=None))
    bars = base.mark_bar().encode(
        x=alt.X("conversion_rate:Q", title=None, axis=alt.Axis(format=".0%")),
        color=alt.Color(f"{group}:N", legend=None),
        opacity=alt.condition("datum.small", alt.value(0.35), alt.value(1.0)),
        tooltip=[f"{group}:N", "stage:N", alt.Tooltip("conversion_rate:Q", format=".1%"), "entered:Q", "converted:Q"],
    )
    text = base.mark_text(align="left", dx=3, fontSize=10, color=theme.INK).encode(
        x="conversion_rate:Q", text="label:N"
    )
    return (
        (bars + text)
        .properties(height=alt.Step(16), width=170)
        .facet(column=alt.Column("stage:N", title=None))
        .properties(title=alt.Title(title, subtitle=f"faded: fewer than {low_n:.0f} entrants"))
    )


def pipeline(pipe: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """Open pipeline at each month end, raw and stage-weighted."""
    data = _check(
        pipe.melt(
            id_vars="month",
            value_vars=["pipeline_value", "weighted_pipeline_value"],
            var_name="measure",
            value_name="amount",
        )
    )
    data["measure"] = data.measure.map({"pipeline_value": "open pipeline", "weighted_pipeline_value": "stage-weighted"})
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("yearmonth(month):T", title=None, axis=monthly_labels(data.month, 330)),
            y=alt.Y("amount:Q", title=None, axis=money_axis(currency)),
            color=alt.Color("measure:N", title=None),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                "measure:N",
                money_tooltip("amount:Q", currency),
            ],
        )
        .properties(title="Pipeline at month end", height=200, width=330)
    )


def rep_bookings(reps: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """Bookings and win rate per account executive over a period."""
    data = _check(reps)
    return (
        alt.Chart(data)
        .mark_bar(color=theme.PALETTE[0])
        .encode(
            y=alt.Y("name:N", sort="-x", title=None),
            x=alt.X("bookings:Q", title="won first-year value", axis=money_axis(currency)),
            tooltip=[
                "name:N",
                money_tooltip("bookings:Q", currency),
                "won:Q",
                "lost:Q",
                alt.Tooltip("win_rate:Q", format=".0%"),
                alt.Tooltip("ramp_fraction:Q", format=".2f", title="FTE now"),
            ],
        )
        .properties(title="Bookings per account executive, last 12 months", height=alt.Step(18), width=300)
    )


VERDICT_COLOURS = theme.VERDICT


def verdict_grid(pairs: pd.DataFrame, title: str, subtitle: str) -> alt.Chart:
    """Segment x channel cells coloured by verdict, labelled with LTV:CAC, payback and n; small samples faded."""
    data = _check(pairs.copy())
    data["label"] = [
        f"{'n/a' if r != r else f'{r:.1f}x'} · {'n/a' if p != p else f'{p:.0f} mo'} · n={n}"
        for r, p, n in zip(data.ltv_to_cac, data.payback_months, data.new_customers)
    ]
    base = alt.Chart(data).encode(
        x=alt.X("channel:N", title=None, axis=alt.Axis(orient="top", labelAngle=0)), y=alt.Y("segment:N", title=None)
    )
    cells = base.mark_rect(cornerRadius=3, stroke="white", strokeWidth=2).encode(
        color=alt.Color("verdict:N", scale=theme.scale(VERDICT_COLOURS), title=None),
        opacity=alt.condition("datum.low_n", alt.value(0.45), alt.value(0.9)),
        tooltip=[
            "segment:N",
            "channel:N",
            "verdict:N",
            alt.Tooltip("ltv_to_cac:Q", format=".2f", title="LTV:CAC"),
            alt.Tooltip("payback_months:Q", format=".1f", title="payback months"),
            alt.Tooltip("new_customers:Q", title="new customers"),
            "reason:N",
        ],
    )
    text = base.mark_text(fontSize=11, color="white", fontWeight=600).encode(text="label:N")
    return (cells + text).properties(
        width=alt.Step(150), height=alt.Step(44), title=alt.Title(title, subtitle=subtitle)
    )


def cac_by_channel(frame: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """CAC per acquisition channel over the trailing three months, month by month."""
    data = _check(frame.dropna(subset=["cac_trailing_3m"]))
    return (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=alt.X("yearmonth(month):T", title=None, axis=monthly_labels(data.month, 640)),
            y=alt.Y("cac_trailing_3m:Q", title="CAC, trailing 3 months", axis=money_axis(currency)),
            color=alt.Color("channel:N", title=None),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                "channel:N",
                money_tooltip("cac_trailing_3m:Q", currency, title="CAC (3 months)"),
                money_tooltip("sm_spend:Q", currency, title="S&M spend in the month"),
                alt.Tooltip("new_customers:Q", title="new customers in the month"),
            ],
        )
        .properties(
            title=alt.Title(
                "CAC by acquisition channel",
                subtitle="S&M spend / new customers over the "
                "trailing three months; untagged spend allocated per conventions",
            ),
            height=220,
            width=640,
        )
    )


def payback_curve(curve: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """Cumulative gross margin per customer by months since its first payment, against the CAC (dashed)."""
    data = _check(curve.dropna(subset=["margin_per_customer"]))
    base = alt.Chart(data)
    line = base.mark_line().encode(
        x=alt.X("months_since_start:Q", title="months since first payment"),
        y=alt.Y("cumulative_margin:Q", title="cumulative gross margin per customer", axis=money_axis(currency)),
        tooltip=[
            "months_since_start:Q",
            money_tooltip("cumulative_margin:Q", currency),
            alt.Tooltip("customers:Q", title="customers observed"),
            money_tooltip("cac:Q", currency, title="CAC"),
        ],
    )
    cac = base.mark_rule(style="target").encode(y="mean(cac):Q")
    return (
        alt.layer(line, cac)
        .properties(height=170, width=280)
        .facet(facet=alt.Facet("segment:N", title=None), columns=3)
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title(
                "Payback curve",
                subtitle="cumulative gross margin per customer (churned customers count "
                "as 0) against CAC, dashed; where the line crosses it, the customer has paid back",
            )
        )
    )


def peer_position(row: pd.Series, label: str, unit: str, title: str, currency: str = "USD") -> alt.Chart:
    """One account against its peers on one metric: the middle half of the peers as a band, their median as a
    tick, the account as a point."""
    data = pd.DataFrame(
        [{"metric": label, "p25": row.p25, "median": row["median"], "p75": row.p75, "value": row.value}]
    )
    base = alt.Chart(data).encode(y=alt.Y("metric:N", title=None, axis=alt.Axis(labelLimit=200)))
    band = base.mark_bar(size=16, color=theme.GRID, cornerRadius=3).encode(
        x=alt.X("p25:Q", title=None, axis=_axis(unit, currency)), x2="p75:Q"
    )
    median = base.mark_tick(color=theme.MUTED, thickness=2, size=22).encode(x="median:Q")
    point = base.mark_point(filled=True, size=110, color=theme.PALETTE[0]).encode(
        x="value:Q",
        tooltip=[
            _tooltip("value:Q", unit, currency, title="this account"),
            _tooltip("median:Q", unit, currency, title="peer median"),
            _tooltip("p25:Q", unit, currency),
            _tooltip("p75:Q", unit, currency),
        ],
    )
    return (band + median + point).properties(width=420, height=34, title=alt.Title(title, fontSize=12, fontWeight=500))


def peer_ranges(groups: pd.DataFrame, label: str, unit: str, min_peers: int, currency: str = "USD") -> alt.Chart:
    """Peer p25-p75 and median per segment x lifecycle stage for one metric; groups below min_peers faded."""
    data = _check(groups.assign(small=groups.peers < min_peers, group=groups.segment + " · " + groups.stage))
    base = alt.Chart(data).encode(y=alt.Y("group:N", title=None, sort=None))
    band = base.mark_bar(size=12, cornerRadius=2).encode(
        x=alt.X("p25:Q", title=label, axis=_axis(unit, currency)),
        x2="p75:Q",
        color=alt.Color("segment:N", legend=None),
        opacity=alt.condition("datum.small", alt.value(0.25), alt.value(0.8)),
        tooltip=[
            "segment:N",
            "stage:N",
            "peers:Q",
            _tooltip("p25:Q", unit, currency),
            _tooltip("median:Q", unit, currency),
            _tooltip("p75:Q", unit, currency),
        ],
    )
    median = base.mark_tick(color=theme.INK, thickness=2, size=16).encode(x="median:Q")
    return (band + median).properties(width=260, height=alt.Step(16), title=label)


# --------------------------------------------------------------------------- customer success
BAND_COLOURS = theme.BAND
STAGE_COLOURS = theme.STAGE


def lifecycle_stack(by_month: pd.DataFrame) -> alt.Chart:
    """Paying accounts per lifecycle stage, month by month (stacked bars)."""
    data = _check(by_month)
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month):T", title=None, axis=monthly_labels(data.month, 640)),
            y=alt.Y("accounts:Q", title="paying accounts"),
            color=alt.Color("stage:N", scale=theme.scale(STAGE_COLOURS), sort=list(STAGE_COLOURS), title=None),
            order=alt.Order("stage_order:Q"),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                "stage:N",
                "accounts:Q",
                alt.Tooltip("mean_months_in_stage:Q", format=".1f", title="mean months in stage"),
            ],
        )
        .transform_calculate(stage_order=f"indexof({list(STAGE_COLOURS)}, datum.stage)")
        .properties(
            width=640,
            height=220,
            title=alt.Title(
                "Accounts by lifecycle stage", subtitle="at each month end; renewal wins over the other stages"
            ),
        )
    )


def band_shares(rollup: pd.DataFrame, title: str, subtitle: str) -> alt.Chart:
    """Share of accounts per health band for each group of a roll-up (horizontal stacked bars, n in the label)."""
    long = _check(
        rollup.melt(
            id_vars=["group", "accounts", "mean_health"],
            value_vars=[f"{b}_share" for b in BAND_COLOURS],
            var_name="band",
            value_name="share",
        )
    )
    long["band"] = long.band.str.replace("_share", "", regex=False)
    long["label"] = [f"{g} (n={n}, mean {h:.0f})" for g, n, h in zip(long.group, long.accounts, long.mean_health)]
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title=None, sort=None),
            x=alt.X("share:Q", title=None, axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("band:N", scale=theme.scale(BAND_COLOURS), title=None),
            order=alt.Order("band_order:Q"),
            tooltip=["group:N", "band:N", alt.Tooltip("share:Q", format=".0%"), "accounts:Q"],
        )
        .transform_calculate(band_order=f"indexof({list(BAND_COLOURS)}, datum.band)")
        .properties(width=420, height=alt.Step(20), title=alt.Title(title, subtitle=subtitle))
    )


def backtest_bars(backtest: pd.DataFrame) -> alt.Chart:
    """Churn and contraction in the 3 months after a score, per health band."""
    rows = backtest[backtest.band.isin(list(BAND_COLOURS))]
    long = _check(
        rows.melt(
            id_vars=["band", "account_months"],
            value_vars=["churn_rate", "contraction_rate"],
            var_name="outcome",
            value_name="rate",
        )
    )
    long["outcome"] = long.outcome.map({"churn_rate": "churned", "contraction_rate": "contracted"})
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("band:N", sort=list(BAND_COLOURS), title=None),
            xOffset="outcome:N",
            y=alt.Y("rate:Q", title="share of account-months", axis=alt.Axis(format="%")),
            color=alt.Color("outcome:N", scale=theme.scale(theme.OUTCOME), title=None),
            tooltip=[
                "band:N",
                "outcome:N",
                alt.Tooltip("rate:Q", format=".1%"),
                alt.Tooltip("account_months:Q", title="n"),
            ],
        )
        .properties(
            width=320,
            height=220,
            title=alt.Title(
                "What happened in the 3 months after a score", subtitle="scores of the 12 months ending 3 months ago"
            ),
        )
    )


def activity_heatmap(activity: pd.DataFrame, names: dict[str, str]) -> alt.Chart:
    """Accounts x weeks, coloured by active users in the week (Userlens-style activity dots)."""
    data = _check(activity.assign(account=activity.account_id.map(names).fillna(activity.account_id)))
    return (
        alt.Chart(data)
        .mark_rect(cornerRadius=2, stroke="white", strokeWidth=1)
        .encode(
            x=alt.X(
                "yearmonthdate(week_start):O", title="week starting", axis=alt.Axis(format="%d %b", labelAngle=-40)
            ),
            y=alt.Y("account:N", title=None, sort=alt.EncodingSortField("total", order="descending")),
            color=alt.Color("active_users:Q", title="active users", scale=alt.Scale(scheme=theme.HEAT)),
            tooltip=["account:N", alt.Tooltip("yearmonthdate(week_start):T", title="week starting"), "active_users:Q"],
        )
        .transform_joinaggregate(total="sum(active_users)", groupby=["account"])
        .properties(
            width=alt.Step(34),
            height=alt.Step(16),
            title=alt.Title("Activity by week", subtitle="active users per account and week; blank = nobody active"),
        )
    )


def health_trends(trend: pd.DataFrame, names: dict[str, str]) -> alt.Chart:
    """Health score by month of a few accounts, with the band thresholds as a backdrop."""
    data = _check(trend.assign(account=trend.account_id.map(names).fillna(trend.account_id)))
    lines = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("yearmonth(month):T", title=None),
            y=alt.Y("health:Q", title="health", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("account:N", title=None),
            tooltip=["account:N", alt.Tooltip("yearmonth(month):T", title="month"), "health:Q", "band:N"],
        )
    )
    return lines.properties(
        width=640, height=220, title=alt.Title("Health score by month", subtitle="the book's red and falling accounts")
    )


def load_vs_capacity(load: pd.DataFrame) -> alt.Chart:
    """Accounts per CSM against their capacity (tick)."""
    data = _check(load[load.capacity.notna()])
    base = alt.Chart(data).encode(y=alt.Y("name:N", title=None, sort=None))
    bars = base.mark_bar().encode(
        x=alt.X("accounts:Q", title="accounts"),
        color=alt.condition("datum.load > 1", alt.value(theme.STATUS["off"]), alt.value(theme.PALETTE[0])),
        tooltip=[
            "name:N",
            "segment:N",
            "accounts:Q",
            "capacity:Q",
            alt.Tooltip("load:Q", format=".0%"),
            "renewals_due:Q",
            "red_accounts:Q",
        ],
    )
    ticks = base.mark_tick(color=theme.INK, thickness=2, size=18).encode(x="capacity:Q")
    return (bars + ticks).properties(
        width=420,
        height=alt.Step(22),
        title=alt.Title(
            "Accounts per CSM against capacity", subtitle="tick: capacity for the CSM's segment; red: over capacity"
        ),
    )


def cost_stack(cost: pd.DataFrame, currency: str = "USD") -> alt.Chart:
    """Customer-success cost per paying account by segment, split by item."""
    items = [
        c for c in cost.columns if c not in ("segment", "accounts", "arr", "cs_spend", "per_account", "per_arr_dollar")
    ]
    long = _check(cost.melt(id_vars=["segment", "accounts"], value_vars=items, var_name="item", value_name="amount"))
    long["per_account"] = long.amount / long.accounts.where(long.accounts > 0)
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("segment:N", title=None),
            x=alt.X("per_account:Q", title="CS cost per paying account (month)", axis=money_axis(currency, "whole")),
            color=alt.Color("item:N", title=None),
            tooltip=[
                "segment:N",
                "item:N",
                money_tooltip("per_account:Q", currency, "cents"),
                money_tooltip("amount:Q", currency),
            ],
        )
        .properties(
            width=420,
            height=alt.Step(26),
            title=alt.Title(
                "Cost to serve", subtitle="customer_success spend of the month per paying account, by item"
            ),
        )
    )


def feature_bars(adoption: pd.DataFrame) -> alt.Chart:
    """Share of active accounts using each feature in the month; sticky features highlighted."""
    data = _check(adoption.assign(kind=adoption.sticky.map({True: "sticky", False: "other"})))
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("feature:N", sort="-x", title=None),
            x=alt.X(
                "rate:Q", title="share of active accounts", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color(
                "kind:N", scale=theme.scale({"sticky": theme.PALETTE[0], "other": theme.OTHER}), title=None
            ),
            tooltip=["feature:N", "kind:N", alt.Tooltip("rate:Q", format=".0%"), "accounts:Q", "active_accounts:Q"],
        )
        .properties(
            width=360,
            height=alt.Step(20),
            title=alt.Title("Feature adoption this month", subtitle="accounts using the feature / accounts active"),
        )
    )


def month_axis(months: pd.Series, labels: int = 12) -> alt.Axis:
    """A time axis labelled at months of the data only (about `labels` of them, the last month always): a bar
    of the last month reaches the next month's first day, which a default axis would label as a month shown.
    Labels sit mid-month, under their month's bar."""
    stamps = sorted(pd.to_datetime(months).dt.to_period("M").unique())
    step = max(1, -(-len(stamps) // labels))
    shown = stamps[::-1][::step][::-1]
    return alt.Axis(
        values=[alt.DateTime(year=p.year, month=p.month, date=15) for p in shown], format="%b %Y", labelOverlap=False
    )


def revenue_overview(movements: pd.DataFrame, currency: str = "USD", width: int = 1240) -> alt.VConcatChart:
    """MRR month by month above the movements that made it (new, expansion and reactivation up; contraction and
    churn down; the black tick is net new MRR), on one time axis, across the page."""
    data = _check(movements)[["month", "mrr_end", *[k for _, k in _MOVES]]].copy()
    long = data.melt(id_vars="month", value_vars=[k for _, k in _MOVES], var_name="kind", value_name="amount")
    long["amount"] = long.amount * long.kind.map({k: s for s, k in _MOVES})
    long["label"] = long.kind.str.capitalize()
    net = data.assign(net=sum(data[k] * s for s, k in _MOVES))
    axis = month_axis(data.month)
    x = alt.X("yearmonth(month):T", title=None, axis=axis)
    mrr = (
        alt.Chart(data.assign(mid=data.month + pd.Timedelta(days=14)))
        .mark_area(line=True, opacity=0.18)
        .encode(  # drawn mid-month, above each month's bar (an area takes no band position)
            x=alt.X("mid:T", title=None, axis=axis),
            y=alt.Y("mrr_end:Q", title="MRR", axis=money_axis(currency), scale=alt.Scale(zero=False)),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                money_tooltip("mrr_end:Q", currency, "short", title="MRR"),
            ],
        )
        .properties(height=105, width=width)
    )
    bars = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("amount:Q", title="MRR movements", axis=money_axis(currency)),
            color=alt.Color(
                "kind:N",
                scale=theme.scale({k: theme.MOVEMENTS[k] for _, k in _MOVES}),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                "label:N",
                money_tooltip("amount:Q", currency, "short"),
            ],
        )
    )
    ticks = (
        alt.Chart(net)
        .mark_tick(color=theme.INK, thickness=2, size=14)
        .encode(
            x=alt.X("yearmonth(month):T", title=None, bandPosition=0.5),
            y="net:Q",
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="month"),
                money_tooltip("net:Q", currency, "short", title="net new MRR"),
            ],
        )
    )
    return (
        alt.vconcat(mrr, (bars + ticks).properties(height=80, width=width))
        .resolve_scale(x="shared")
        .properties(
            title=alt.Title(
                "MRR and what moved it",
                subtitle="bars: new, expansion and reactivation up, contraction and "
                "churn down; black tick: net new MRR",
            )
        )
    )


_MOVES = ((1, "new"), (1, "expansion"), (1, "reactivation"), (-1, "contraction"), (-1, "churn"))
