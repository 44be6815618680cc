"""Page 06, the forecast: where MRR, ARR and paying accounts are heading (with scenario sliders in the app), how
wrong the forecast has been (its backtest beside two baselines), and why the headline rates moved (mix and rate
effects per segment, channel and plan). Each `show_*` is one section; the model is in metrics/forecast.py and
metrics/drivers.py, its settings in parameters/forecast.yaml."""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import ipywidgets as W
import pandas as pd
from IPython.display import HTML

from .. import charts, params, theme, widgets
from .. import format as fmt
from ..metrics import forecast as fc
from ..metrics.drivers import RATES, account_attributes, drivers_frame

AREAS: tuple[str, ...] = ()  # the page shows tables, not registry metrics
HISTORY_MONTHS = 24
ARR = "annual_recurring_revenue"
COMPARISON_TEXT = {"previous_month": "last month", "previous_year": "the same month last year"}
BY_TEXT = {"segment": "segment", "acquisition_channel": "channel", "plan": "plan"}


def _conventions(wb) -> str:
    s = params.forecast_settings()
    return (
        f"Horizon {s.horizon_months} months; rates by cohort age band {s.age_buckets} from the last "
        f"{s.lookback_months} months (pooled below {s.min_exposure_accounts} account-months); new business: "
        f"{s.run_rate_months}-month run-rate, open pipeline for the first {s.pipeline_months} months; interval: the "
        f"{s.interval[0]:.0%}-{s.interval[1]:.0%} quantiles of the backtest's errors (parameters/forecast.yaml)"
    )


def show_header(wb):
    """Segment and month (with the controls in an app) and the forecast's settings, folded."""
    return widgets.page_header(wb, _conventions)


# --------------------------------------------------------------------------- headline
NOW_TILES = ["monthly_recurring_revenue", "annual_recurring_revenue", "paying_accounts"]


def forecast_tile(label: str, value: str, lines: list[str]) -> str:
    """A tile in the KPI tiles' look for a forecast value (no target status: a forecast is not judged)."""
    body = "".join(f'<div class="kpi-n">{line}</div>' for line in lines)
    return (
        f'<div class="kpi-tile" style="border-top:3px solid {theme.PALETTE[1]}"><div class="kpi-label">'
        f'{html.escape(label)}</div><div class="kpi-value">{value}</div>{body}</div>'
    )


def headline_html(wb) -> str:
    """MRR, ARR and paying accounts now (registry tiles), then where the forecast puts them at the horizon, with the
    interval and the month ARR reaches its target."""
    cur = wb.conventions.reporting_currency
    forecast = wb.table("forecast")
    last = forecast[forecast.segment == "total"].iloc[-1]
    h = int(last.horizon)
    mrr_now = float(wb.table("mrr_movements").set_index("month").mrr_end.get(wb.month, float("nan")))
    growth = last.mrr / mrr_now - 1 if mrr_now > 0 else float("nan")
    band = (
        f"{fmt.money(last.mrr_low, cur)}–{fmt.money(last.mrr_high, cur)} (backtest errors)"
        if last.mrr_low == last.mrr_low
        else "no interval yet (too few past forecasts)"
    )
    target = wb.target(ARR)
    month = fc.target_month(forecast, target)
    if target is None:
        reach = "no ARR target set"
    elif 12 * mrr_now >= target:
        reach = f"target {fmt.money(target, cur)} reached"
    elif month is not None:
        reach = f"reaches the {fmt.money(target, cur)} target in {month:%b %Y}"
    else:
        reach = f"target {fmt.money(target, cur)} not reached in {h} months"
    tiles = [widgets.tile_html(wb, n) for n in NOW_TILES] + [
        forecast_tile(
            f"MRR in {h} months",
            fmt.money(last.mrr, cur),
            [f"{'n/a' if growth != growth else f'{growth:+.1%}'} vs now", band],
        ),
        forecast_tile(f"ARR in {h} months", fmt.money(last.arr, cur), [f"{last.month:%B %Y}", html.escape(reach)]),
        forecast_tile(
            f"Paying accounts in {h} months",
            fmt.value(last.accounts, "count"),
            [f"{fmt.value(last.book_accounts, 'count')} of today's, {fmt.value(last.new_accounts, 'count')} new"],
        ),
    ]
    return '<div class="kpi-grid">' + "".join(tiles) + "</div>"


def show_headline(wb):
    """MRR, ARR and paying accounts now, and the forecast for them at the horizon."""
    return widgets.section(wb, lambda w: widgets.styled(headline_html(w)))


# --------------------------------------------------------------------------- the forecast
def forecast_chart(history: pd.DataFrame, forecast: pd.DataFrame, title: str, currency: str = "USD") -> alt.Chart:
    """MRR so far (solid), the forecast (dashed) and its interval (band)."""
    total = forecast[forecast.segment == "total"]
    past = pd.DataFrame({"month": history.month, "mrr": history.mrr_end, "kind": "actual"})
    ahead = pd.concat(
        [
            past.tail(1).assign(kind="forecast"),
            pd.DataFrame({"month": total.month, "mrr": total.mrr, "kind": "forecast"}),
        ]
    )
    lines = (
        alt.Chart(pd.concat([past, ahead], ignore_index=True))
        .mark_line(point=True)
        .encode(
            x=alt.X("month:T", title=None),
            y=alt.Y("mrr:Q", title="MRR", axis=charts.money_axis(currency)),
            color=alt.Color("kind:N", title=None, scale=alt.Scale(range=[theme.PALETTE[0], theme.PALETTE[1]])),
            strokeDash=alt.StrokeDash("kind:N", legend=None, scale=alt.Scale(range=[[1, 0], [6, 4]])),
            tooltip=[
                alt.Tooltip("month:T", format="%b %Y"),
                charts.money_tooltip("mrr:Q", currency, title="MRR"),
                "kind:N",
            ],
        )
    )
    band = (
        alt.Chart(total.dropna(subset=["mrr_low", "mrr_high"]))
        .mark_area(opacity=0.2, color=theme.PALETTE[1])
        .encode(x="month:T", y="mrr_low:Q", y2="mrr_high:Q")
    )
    return (band + lines).properties(title=title, width=760, height=300)


def scenario_forecast(wb, scenario: fc.Scenario | None = None) -> pd.DataFrame:
    """The forecast table under `scenario` (the registered `forecast` table when nothing is changed)."""
    if scenario is None or scenario == fc.Scenario():
        return wb.table("forecast")
    settings = params.forecast_settings()
    quantiles = fc.interval_quantiles(wb.table("forecast_errors"), settings)
    return fc.forecast_frame(fc.model_of(wb), wb.as_of, settings, quantiles, scenario)


def target_text(wb, forecast: pd.DataFrame) -> str:
    """When ARR reaches its target (`wb.target`), in one sentence."""
    target = wb.target(ARR)
    cur = wb.conventions.reporting_currency
    if target is None:
        return (
            "No ARR target is set (declare one on annual_recurring_revenue or under `targets:` in the segment "
            "file), so no month to reach it."
        )
    now = 12 * float(wb.table("mrr_movements").set_index("month").mrr_end.get(wb.month, 0.0))
    if now >= target:
        return f"ARR ({fmt.money(now, cur)}) is already at or above its target of {fmt.money(target, cur)}."
    month = fc.target_month(forecast, target)
    if month is None:
        end = forecast[forecast.segment == "total"].arr.iloc[-1]
        return (
            f"At this pace ARR does not reach its target of {fmt.money(target, cur)} within the horizon "
            f"({fmt.money(end, cur)} at the end)."
        )
    return f"ARR reaches its target of {fmt.money(target, cur)} in {month:%B %Y}."


def forecast_table_html(wb, forecast: pd.DataFrame) -> str:
    """Per segment and in total: MRR now, and MRR, ARR and paying accounts at 3, 6 and 12 months."""
    cur = wb.conventions.reporting_currency
    horizons = [h for h in (3, 6, 12) if h <= forecast.horizon.max()]
    mm = wb.table("mrr_movements")
    now_total = float(mm.set_index("month").mrr_end.get(wb.month, float("nan")))
    model = fc.model_of(wb)
    col = model.column(wb.as_of)
    rows, totals = [], []
    for seg in [*[s for s in forecast.segment.unique() if s != "total"], "total"]:
        f = forecast[forecast.segment == seg].set_index("horizon")
        if seg == "total":
            now = now_total
        else:
            now = float(model.mrr[model.group == model.groups.index(seg), col].sum())
        cells = [html.escape(seg), fmt.money(now, cur)]
        for h in horizons:
            r = f.loc[h]
            band = (
                f" <span class='sub'>({fmt.money(r.mrr_low, cur)}–{fmt.money(r.mrr_high, cur)})</span>"
                if seg == "total" and r.mrr_low == r.mrr_low
                else ""
            )
            cells.append(fmt.money(r.mrr, cur) + band)
        last = f.loc[horizons[-1]]
        cells += [fmt.money(last.arr, cur), fmt.value(last.accounts, "count")]
        rows.append(cells)
        totals.append(seg == "total")
    last = horizons[-1]
    head = ["segment", "MRR now", *[f"MRR in {h} months" for h in horizons], f"ARR in {last}", f"accounts in {last}"]
    return widgets.html_table(head, rows, numeric=tuple(range(1, len(head))), totals=totals)


def _forecast_view(wb, scenario: fc.Scenario) -> list[Any]:
    forecast = scenario_forecast(wb, scenario)
    mm = wb.table("mrr_movements")
    history = mm[mm.month <= wb.month].tail(HISTORY_MONTHS)
    s = params.forecast_settings()
    title = alt.Title(
        f"MRR, {HISTORY_MONTHS} months to {wb.month:%b %Y} and {s.horizon_months} months ahead",
        subtitle=f"band: where MRR landed against past forecasts at each horizon ({s.interval[0]:.0%}-"
        f"{s.interval[1]:.0%} of the backtest's errors); above the line where the forecast has run low",
    )
    return [
        widgets.chart(forecast_chart(history, forecast, title, wb.conventions.reporting_currency), wb),
        widgets.styled(f"<p><b>{html.escape(target_text(wb, forecast))}</b></p>" + forecast_table_html(wb, forecast)),
    ]


def show_forecast(wb):
    """MRR so far and 12 months ahead with its interval, per segment; the month ARR reaches its target; in the app,
    sliders move new business, churn and expansion up or down."""

    def render(w):
        if not w.interactive:
            return _forecast_view(w, fc.Scenario())
        span = params.forecast_settings().scenario_range_pct
        sliders = {
            name: W.IntSlider(
                0,
                -span,
                span,
                5,
                description=label,
                continuous_update=False,
                readout_format="+d",
                style={"description_width": "initial"},
            )
            for name, label in (("new_business", "New business %"), ("churn", "Churn %"), ("expansion", "Expansion %"))
        }
        out = W.Output()

        def redraw(_=None):
            scenario = fc.Scenario(**{k: v.value / 100 for k, v in sliders.items()})
            widgets.fill(out, lambda x: _forecast_view(x, scenario), w)

        for slider in sliders.values():
            slider.observe(redraw, names="value")
        redraw()
        return W.VBox([W.HBox(list(sliders.values())), out])

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- the backtest
def backtest_verdict(summary: pd.DataFrame) -> str:
    """One sentence: does the forecast beat both baselines at every horizon?"""
    rows = summary.dropna(subset=["model_error"])
    if rows.empty:
        return "Not enough history for a backtest yet."
    lost = rows[rows.best != "model"]
    if lost.empty:
        return "The forecast beat both baselines at every horizon tested."
    where = ", ".join(
        f"{h} month{'s' if h > 1 else ''} ({fc.METHOD_LABELS[b]} did better)" for h, b in zip(lost.horizon, lost.best)
    )
    return f"The forecast does NOT beat the baselines at {where}: read it with that in mind."


def backtest_html(summary: pd.DataFrame) -> str:
    """The backtest table: error and bias per horizon for the forecast and both baselines."""
    rows = []
    for r in summary.itertuples():
        cells = [f"{r.horizon}", f"{r.n}"]
        for m in fc.METHODS:
            e, b = getattr(r, f"{m}_error"), getattr(r, f"{m}_bias")
            text = f"{fmt.value(e, 'fraction')} <span class='sub'>(bias {fmt.value(b, 'fraction')})</span>"
            cells.append(f"<b>{text}</b>" if r.best == m else text)
        rows.append(cells)
    head = ["months ahead", "forecasts", *[f"{fc.METHOD_LABELS[m]}: error (bias)" for m in fc.METHODS]]
    return widgets.html_table(head, rows, numeric=(0, 1, 2, 3, 4))


def show_backtest(wb):
    """The forecast re-made at each past month end with what was known then, against what happened: mean absolute
    error and bias at each horizon, beside no change and trailing 3-month growth."""

    def render(w):
        summary = w.table("forecast_backtest")
        s = params.forecast_settings()
        return widgets.styled(
            f"<p><b>{html.escape(backtest_verdict(summary))}</b></p>"
            + backtest_html(summary)
            + f"<div class='sub'>MRR forecasts made at each of the last {s.backtest_origins} month ends; error = "
            "mean |forecast − actual| / actual, bias = mean (forecast − actual) / actual (above zero: too high). "
            "Bold: the smallest error.</div>"
        )

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- drivers
def waterfall(effects: pd.DataFrame, label: str, unit: str, title: str) -> alt.Chart:
    """From the rate before, through each group's mix and rate effect, to the rate now."""
    scale = 100 if unit == "fraction" else 1
    before, now = effects.value_before.iloc[0] * scale, effects.value_now.iloc[0] * scale
    steps = [{"step": "before", "kind": "level", "lo": None, "hi": before, "amount": before}]
    level = before
    for r in effects.itertuples():
        for kind in ("mix", "rate"):
            amount = getattr(r, kind) * scale
            steps.append(
                {"step": f"{r.group} {kind}", "kind": kind, "lo": level, "hi": level + amount, "amount": amount}
            )
            level += amount
    steps.append({"step": "now", "kind": "level", "lo": None, "hi": now, "amount": now})
    data = pd.DataFrame(steps)
    levels = pd.concat([data.lo.dropna(), data.hi])
    spread = max(levels.max() - levels.min(), 1e-9)
    floor = levels.min() - 0.5 * spread
    data["lo"] = data.lo.fillna(floor)
    data["from"], data["to"] = data[["lo", "hi"]].min(axis=1), data[["lo", "hi"]].max(axis=1)
    axis = "points" if unit == "fraction" else "amount"
    base = alt.Chart(data).encode(x=alt.X("step:N", sort=list(data.step), title=None, axis=alt.Axis(labelAngle=-30)))
    bars = base.mark_bar().encode(
        y=alt.Y("from:Q", title=f"{label} ({'%' if unit == 'fraction' else axis})", scale=alt.Scale(zero=False)),
        y2="to:Q",
        color=alt.Color(
            "kind:N",
            title=None,
            scale=alt.Scale(
                domain=["level", "mix", "rate"], range=[theme.PALETTE[0], theme.PALETTE[2], theme.PALETTE[1]]
            ),
        ),
        tooltip=["step:N", alt.Tooltip("amount:Q", format=",.2f")],
    )
    data["text"] = [f"{a:,.2f}" if k == "level" else f"{a:+,.2f}" for k, a in zip(data.kind, data.amount)]
    text = base.mark_text(dy=-7, style="cell-label").encode(y="to:Q", text="text:N")
    return (bars + text).properties(title=title, width=760, height=280)


def largest_contributions(drivers: pd.DataFrame, count: int) -> pd.DataFrame:
    """The `count` largest mix or rate effects (by size) of one rate, comparison and attribute, one row each."""
    long = drivers.melt(
        id_vars=[
            "group",
            "unit",
            "label",
            "value_before",
            "value_now",
            "share_before",
            "share_now",
            "rate_before",
            "rate_now",
        ],
        value_vars=["mix", "rate"],
        var_name="effect",
        value_name="amount",
    )
    return long.reindex(long.amount.abs().sort_values(ascending=False).index).head(count)


def _points(amount: float, unit: str, currency: str) -> str:
    if unit == "fraction":
        return f"{amount * 100:+.1f}"
    return ("+" if amount >= 0 else "-") + fmt.money(abs(amount), currency)


def driver_sentence(drivers: pd.DataFrame, settings: params.ForecastSettings, currency: str = "USD") -> str:
    """The summary rate's change and its largest contributions as a sentence: "NRR (trailing 12 months) fell 2.1
    points from last month: enterprise's own rate fell (-1.4), and smb grew as a share of the base (-0.5)"."""
    d = drivers[(drivers.rate_name == settings.summary_metric) & (drivers.comparison == settings.summary_comparison)]
    if settings.summary_by != "all":
        d = d[d.by == settings.summary_by]
    if d.empty:
        return ""
    label, unit = RATES[settings.summary_metric]
    change = d.value_now.iloc[0] - d.value_before.iloc[0]
    size = f"{abs(change) * 100:.1f} points" if unit == "fraction" else fmt.money(abs(change), currency)
    verb = "rose" if change > 0 else "fell" if change < 0 else "held"
    parts = []
    for r in largest_contributions(d, settings.summary_contributions).itertuples():
        if abs(r.amount) < 5e-4 * (1 if unit == "fraction" else abs(d.value_before.iloc[0]) or 1):
            continue
        if r.effect == "mix":
            moved = "grew" if r.share_now > r.share_before else "shrank"
            text = f"{r.group} {moved} as a share of the base"
        else:
            owner = f"{r.group}'" if str(r.group).endswith("s") else f"{r.group}'s"
            text = f"{owner} own rate {'rose' if r.rate_now > r.rate_before else 'fell'}"
        parts.append(f"{text} ({_points(r.amount, unit, currency)})")
    head = f"{label} {verb} {size} from {COMPARISON_TEXT[settings.summary_comparison]}" if change else f"{label} held"
    if not parts:
        return head + "."
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f", and {parts[-1]}"
    return f"{head}: {listed}."


def summary_sentence(wb) -> str:
    """The executive summary's sentence (parameters/forecast.yaml: summary_*): the summary rate's change and its
    largest mix and rate contributions. Split by `summary_by`, or by the first attribute of `drivers_by` with more
    than one group when the workbook has a single one (a segment's own page). Computes only that rate."""
    s = params.forecast_settings()
    by = [str(b) for b in s.drivers_by] if s.summary_by == "all" else [str(s.summary_by)]
    ids = account_attributes(wb.tables, [str(b) for b in s.drivers_by], wb.as_of)
    if s.summary_by != "all" and ids[by[0]].nunique() < 2:
        by = [b for b in (str(x) for x in s.drivers_by) if ids[b].nunique() > 1][:1] or by
    if s.summary_metric in ("funnel_conversion", "cac"):
        d = wb.table("drivers")
        d = d[d.by.isin(by)]
    else:
        d = drivers_frame(
            fc.model_of(wb),
            ids,
            wb.as_of,
            by,
            rates=(s.summary_metric,),
            comparisons=(s.summary_comparison,),
        )
    return driver_sentence(d, s.model_copy(update={"summary_by": "all"}), wb.conventions.reporting_currency)


def summary_html(wb) -> HTML:
    """The summary sentence as one line for the executive summary (empty when there is no change to explain)."""
    sentence = wb.kept("forecast-summary", lambda: {"sentence": summary_sentence(wb)})["sentence"]
    return widgets.styled(f'<p class="saaskpi-header">Why it moved: {html.escape(sentence)}</p>' if sentence else "")


def drivers_html(wb, drivers: pd.DataFrame, comparison: str) -> str:
    """One row per headline rate and attribute: the change and its two largest contributions."""
    cur = wb.conventions.reporting_currency
    rows = []
    for (rate, by), d in drivers[drivers.comparison == comparison].groupby(["rate_name", "by"], sort=False):
        if d.group.nunique() < 2:  # one group (a segment's own page split by segment): nothing to split
            continue
        label, unit = RATES[rate]
        if d.month.iloc[0] != wb.month:
            label += f" (cohort of {d.month.iloc[0]:%b %Y})"
        top = largest_contributions(d, 2)
        change = d.value_now.iloc[0] - d.value_before.iloc[0]
        said = "; ".join(f"{r.group} {r.effect} {_points(r.amount, unit, cur)}" for r in top.itertuples())
        rows.append(
            [
                html.escape(label),
                BY_TEXT[by],
                fmt.value(d.value_before.iloc[0], unit, cur),
                fmt.value(d.value_now.iloc[0], unit, cur),
                _points(change, unit, cur),
                html.escape(said),
            ]
        )
    return widgets.html_table(["rate", "split by", "before", "now", "change", "largest contributions"], rows, (2, 3, 4))


def show_drivers(wb):
    """Why the headline rates moved: each change from last month and from a year ago split per segment, channel and
    plan into mix and rate effects (they sum to the change), with a waterfall for the summary rate."""

    def render(w):
        s = params.forecast_settings()
        drivers = w.table("drivers")
        if drivers.empty:
            return widgets.note("Not enough history to split any rate's change yet.")
        out: list[Any] = []
        by = s.summary_by if s.summary_by != "all" else s.drivers_by[0]
        if drivers[drivers.by == by].group.nunique() < 2:  # one segment: split by the next attribute
            by = next((b for b in s.drivers_by if drivers[drivers.by == b].group.nunique() > 1), by)
        d = drivers[
            (drivers.rate_name == s.summary_metric) & (drivers.comparison == s.summary_comparison) & (drivers.by == by)
        ]
        sentence = driver_sentence(
            drivers[drivers.by == by], s.model_copy(update={"summary_by": "all"}), w.conventions.reporting_currency
        )
        if sentence:
            out.append(widgets.styled(f"<p><b>{html.escape(sentence)}</b></p>"))
        if len(d):
            label, unit = RATES[s.summary_metric]
            title = alt.Title(
                f"{label}: {COMPARISON_TEXT[s.summary_comparison]} to {w.month:%b %Y}, by {BY_TEXT[by]}",
                subtitle="mix: the base shifted between groups; rate: the group itself changed (they sum to the change)",
            )
            out.append(widgets.chart(waterfall(d, label, unit, title), w))
        for comparison in ("previous_month", "previous_year"):
            out.append(
                widgets.styled(
                    f"<h4>Change from {COMPARISON_TEXT[comparison]}</h4>" + drivers_html(w, drivers, comparison)
                )
            )
        return out

    return widgets.section(wb, render)


def mrr_change_html(wb, change: pd.DataFrame) -> str:
    """The month's MRR change per group and movement."""
    cur = wb.conventions.reporting_currency
    wide = change.pivot_table(index=["by", "group"], columns="movement", values="amount", aggfunc="sum", fill_value=0.0)
    order = {b: i for i, b in enumerate(change.by.unique())}  # the order of drivers_by
    wide = wide.iloc[sorted(range(len(wide)), key=lambda i: (order[wide.index[i][0]], wide.index[i][1]))]
    moves = [m for m in ("new", "expansion", "contraction", "churn") if m in wide.columns]
    rows = []
    for (by, group), r in wide.iterrows():
        rows.append(
            [
                BY_TEXT[by],
                html.escape(str(group)),
                *[fmt.money(r[m], cur) for m in moves],
                fmt.money(r[moves].sum(), cur),
            ]
        )
    return widgets.html_table(["split by", "group", *moves, "change"], rows, numeric=tuple(range(2, len(moves) + 3)))


def show_mrr_change(wb):
    """The month's MRR change per segment, channel and plan, by movement."""

    def render(w):
        return widgets.styled(mrr_change_html(w, w.table("mrr_change_drivers")))

    return widgets.section(wb, render)
