"""Page 07, product analytics over usage events: the event funnels of parameters/product_funnels.yaml (a funnel
picker in an app), their breakdowns (a breakdown picker), who dropped where, retention between two events and
stickiness. Each `show_*` is one section."""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import pandas as pd

from .. import theme, widgets
from ..metrics import events as E

NEEDS = ("usage_events",)
DROPPED_SHOWN = 8  # ids listed per step; the rest are counted
ORDER_WORDS = {
    "ordered": "steps in order (other events between allowed)",
    "strict": "steps as consecutive events",
    "any": "steps in any order (step k = k steps done)",
}
BREAKDOWN_LABELS = {
    "segment": "segment",
    "plan": "plan",
    "channel": "acquisition channel",
    "signup_cohort": "signup month",
}


def duration(seconds: float) -> str:
    """Seconds as a person reads a conversion time: 45 s, 12 min, 5.2 h, 3.1 d."""
    if seconds != seconds:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}" if unit != "min" else f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _conventions(wb) -> str:
    s = E.settings()
    return (
        f"{len(s.funnels)} funnels, retention {s.retention.start.name} → {s.retention.returning.name} by "
        f"{s.retention.period}, stickiness by {s.stickiness.period} (parameters/product_funnels.yaml). A person is a "
        "user after declared merges (user_aliases), or an account; counted once at the furthest step, with the times "
        "of the first attempt that reached it"
    )


def show_header(wb):
    """Segment, month and what the page counts (with the controls in an app)."""
    return widgets.page_header(wb, _conventions)


def funnel_choices() -> list[tuple[str, str]]:
    return [(f.label or f.name, f.name) for f in E.settings().funnels]


def funnel_chart(steps: pd.DataFrame, title: str, subtitle: str) -> alt.Chart:
    """Bars of people per step, labelled with the conversion from the previous and the first step."""
    data = steps.assign(
        stage=[f"{k}. {n}" for k, n in zip(steps.step, steps.step_name)],
        label=[
            f"{e:,}" + ("" if k == 1 else f"  ({p:.0%} of previous, {f:.0%} of first)")
            for k, e, p, f in zip(
                steps.step, steps.entered, steps.conversion_from_previous, steps.conversion_from_first
            )
        ],
    )
    base = alt.Chart(data).encode(y=alt.Y("stage:N", sort=data.stage.tolist(), title=None))
    bars = base.mark_bar(color=theme.PALETTE[0]).encode(
        x=alt.X("entered:Q", title="people who reached the step", axis=alt.Axis(tickCount=5, format="~s")),
        tooltip=["stage:N", "entered:Q", "label:N"],
    )
    text = base.mark_text(align="left", dx=4, fontSize=11, color=theme.INK).encode(x="entered:Q", text="label:N")
    return (bars + text).properties(title=alt.Title(title, subtitle=subtitle), height=34 * len(data), width=460)


def steps_html(steps: pd.DataFrame, dropped: pd.DataFrame) -> str:
    """Per step: entered, conversion, time to convert, and who dropped there (the first ids, then a count)."""
    rows = []
    for r in steps.itertuples():
        ids = dropped[dropped.dropped_at_step == r.step + 1].person.tolist() if r.step < len(steps) else []
        shown = ", ".join(html.escape(str(i)) for i in ids[:DROPPED_SHOWN])
        more = f" and {len(ids) - DROPPED_SHOWN:,} more" if len(ids) > DROPPED_SHOWN else ""
        rows.append(
            [
                f"{r.step}. {html.escape(r.step_name)}",
                f"{r.entered:,}",
                "–" if r.step == 1 else f"{r.conversion_from_previous:.1%}",
                f"{r.conversion_from_first:.1%}",
                duration(r.median_seconds_to_convert),
                duration(r.mean_seconds_to_convert),
                f"{r.dropped:,}" if r.step < len(steps) else "–",
                (shown + more) if ids else "",
            ]
        )
    head = ["step", "entered", "from previous", "from first", "median time", "mean time", "dropped", "dropped (ids)"]
    return widgets.html_table(head, rows, numeric=(1, 2, 3, 4, 5, 6))


def funnel_view(wb, name: str) -> list[Any]:
    """One funnel: its bars, then its steps with times and the people who dropped at each."""
    known = dict((v, label) for label, v in funnel_choices())
    if name not in known:
        return [widgets.note(f"No funnel {name!r} in parameters/product_funnels.yaml (funnels: {', '.join(known)}).")]
    f = E.funnel_named(name)
    steps = wb.table("product_funnel")
    steps = steps[steps.funnel == name]
    people = wb.table("product_funnel_people")
    people = people[people.funnel == name]
    who = "accounts" if f.count_by == "account" else "users"
    sub = (
        f"{ORDER_WORDS[f.order]}, within {f.window} of the first step; {who} who started it in the {f.period_days} days "
        f"to {wb.month:%b %Y}'s end"
        + (f"; excluded: {', '.join(x.name for x in f.exclusions)}" if f.exclusions else "")
    )
    if steps.entered.iloc[0] == 0:
        first = f.steps[0]
        return [
            widgets.note(
                f"Nobody started {known[name]} in its period: no event named {first.name!r} "
                "(usage_events.event, or the feature when the source has no event names)."
            )
        ]
    return [widgets.chart(funnel_chart(steps, known[name], sub), wb), widgets.styled(steps_html(steps, people))]


def show_funnel(wb, funnel: str = ""):
    """The chosen event funnel (the first of parameters/product_funnels.yaml unless one is named; a picker in an
    app): people per step, conversion, time to convert and who dropped where."""

    def render(w):
        w.require(*NEEDS, what="Product funnels")
        return widgets.picked_view(w, funnel_choices(), funnel, funnel_view, "Funnel")

    return widgets.section(wb, render)


def breakdown_choices() -> list[tuple[str, str]]:
    return [
        (f"{label} by {BREAKDOWN_LABELS[by]}", f"{name}|{by}")
        for label, name in funnel_choices()
        for by in E.BREAKDOWNS
    ]


def breakdown_chart(by: pd.DataFrame, title: str, subtitle: str) -> alt.Chart:
    """Conversion from the first step to each step, one line of bars per breakdown value."""
    data = by[by.step > 1].assign(stage=lambda t: [f"{k}. {n}" for k, n in zip(t.step, t.step_name)])
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("value:N", title=None, sort=sorted(data.value.unique())),
            x=alt.X("conversion_from_first:Q", title="share of those who started", axis=alt.Axis(format="%")),
            color=alt.Color(
                "stage:N", title=None, scale=alt.Scale(range=theme.PALETTE), legend=alt.Legend(orient="top")
            ),
            yOffset=alt.YOffset("stage:N", sort=data.stage.unique().tolist()),
            tooltip=[
                "value:N",
                "stage:N",
                alt.Tooltip("entered:Q", format=","),
                alt.Tooltip("conversion_from_first:Q", format=".1%"),
            ],
        )
        .properties(title=alt.Title(title, subtitle=subtitle), width=460)
    )


def breakdown_view(wb, choice: str) -> list[Any]:
    name, _, by = choice.partition("|")
    t = wb.table("product_funnel_by")
    t = t[(t.funnel == name) & (t.breakdown == by)]
    starters = t[t.step == 1].set_index("value").entered
    if t.empty or not starters.sum():
        return [widgets.note("Nobody started this funnel in its period.")]
    low = wb.conventions.low_n_threshold
    few = [v for v, n in starters.items() if n < low]
    sub = f"a person's {BREAKDOWN_LABELS[by]} as of their first step; people who started: " + ", ".join(
        f"{v} {n:,}" for v, n in starters.items()
    )
    label = dict((v, lab) for lab, v in funnel_choices())[name]
    out = [widgets.chart(breakdown_chart(t, f"{label} by {BREAKDOWN_LABELS[by]}", sub), wb)]
    if few:
        out.append(
            widgets.note(f"Fewer than {low:g} people started it in: {', '.join(map(str, few))} (read with care).")
        )
    return out


def show_breakdown(wb, choice: str = ""):
    """A funnel's conversion by segment, plan, acquisition channel or signup month (a breakdown picker in an app)."""

    def render(w):
        w.require(*NEEDS, what="Funnel breakdowns")
        return widgets.picked_view(w, breakdown_choices(), choice, breakdown_view, "Breakdown")

    return widgets.section(wb, render)


def retention_chart(r: pd.DataFrame, title: str, subtitle: str, period: str) -> alt.Chart:
    data = r.assign(cohort=r.cohort_start.dt.strftime("%Y-%m-%d"), label=[f"{v:.0%}" for v in r.retention_rate])
    base = alt.Chart(data).encode(
        x=alt.X("period:O", title=f"{period}s after", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("cohort:O", title=f"{period} of the start event"),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(
            "retention_rate:Q",
            title=None,
            scale=alt.Scale(domain=[0, 1]),
            legend=alt.Legend(format=".0%", orient="right"),
        ),
        tooltip=[
            "cohort:O",
            "period:O",
            "cohort_people:Q",
            "returned:Q",
            alt.Tooltip("retention_rate:Q", format=".1%"),
        ],
    )
    text = base.mark_text(fontSize=10).encode(
        text="label:N",
        color=alt.condition(alt.datum.retention_rate > 0.5, alt.value("white"), alt.value(theme.INK)),
    )
    return (rect + text).properties(title=alt.Title(title, subtitle=subtitle), width=alt.Step(44), height=alt.Step(20))


def show_retention(wb):
    """People who did the start event, by the period they did it, and the share who did the return event in each
    following period."""

    def render(w):
        w.require(*NEEDS, what="Event retention")
        r = E.settings().retention
        t = w.table("event_retention")
        if t.empty:
            return widgets.note(f"Nobody did {r.start.name!r} in the last {r.periods} complete {r.period}s.")
        who = "accounts" if r.count_by == "account" else "users"
        sub = (
            f"{who} by the {r.period} they {'first ' if r.mode == 'first_time' else ''}did {r.start.name}; "
            f"share who did {r.returning.name} in each {r.period} (0 = the same {r.period})"
        )
        return widgets.chart(retention_chart(t, f"Retention: {r.start.name} → {r.returning.name}", sub, r.period), w)

    return widgets.section(wb, render)


def stickiness_chart(s: pd.DataFrame, title: str, subtitle: str) -> alt.Chart:
    fmt = "%Y-%m" if s.period_start.dt.day.eq(1).all() else "week of %Y-%m-%d"
    data = s.assign(period=s.period_start.dt.strftime(fmt))
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("days_active:Q", title="days active in the period"),
            y=alt.Y("share:Q", title="share of active people", axis=alt.Axis(format="%")),
            color=alt.Color(
                "period:N", title=None, scale=alt.Scale(range=theme.PALETTE), legend=alt.Legend(orient="top")
            ),
            tooltip=[
                "period:N",
                "days_active:Q",
                alt.Tooltip("people:Q", format=","),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        .properties(title=alt.Title(title, subtitle=subtitle), width=460, height=220)
    )


def stickiness_summary(t: pd.DataFrame, who: str, period: str) -> str:
    """One line per period: active people, mean days active and the shape of the distribution (inline)."""
    lines = []
    for start, part in t.groupby("period_start"):
        mean = float((part.days_active * part.people).sum() / part.people.sum())
        shape = widgets.sparkline_svg(part.sort_values("days_active").share.tolist(), width=90, height=18)
        lines.append(
            f"<div class='sub'><b>{pd.Timestamp(start):%Y-%m-%d}</b> · {int(part.active_people.iloc[0]):,} active "
            f"{who}, {mean:.1f} days active on average {shape}</div>"
        )
    return f"<div class='saaskpi-header'>{''.join(lines)}</div>"


def show_stickiness(wb):
    """How many days of each recent week or month people were active."""

    def render(w):
        w.require(*NEEDS, what="Stickiness")
        s = E.settings().stickiness
        t = w.table("stickiness")
        if t.empty:
            return widgets.note(f"Nobody was active in the last {s.periods} complete {s.period}s.")
        what = s.event.name if s.event else "any event"
        who = "accounts" if s.count_by == "account" else "users"
        return [
            widgets.styled(stickiness_summary(t, who, s.period)),
            widgets.chart(stickiness_chart(t, f"Stickiness by {s.period}", f"{who} with {what}"), w),
        ]

    return widgets.section(wb, render)
