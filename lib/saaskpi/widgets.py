"""Values a notebook displays, the same way in JupyterLab, Voila and papermill runs.

Pages return, notebooks display: a page's `show_*` returns `section(wb, render)`, where `render(wb)` returns
what the section shows (a chart, HTML, a widget, or a list of them). The notebook cell's last expression
displays it. Nothing here displays on its own: an app section's output widget is given its values (`fill`).

- `section`: in a static run (papermill, reports) a `Shown` of the rendered values; in an app a `W.Output`
  that re-renders whenever a control changes, one section per turn of the kernel's event loop (a newer choice
  drops the rest of an older drawing). A `render` may yield its values: an app shows each as it comes (tiles
  before the charts under them). Compatibility: a `render` that calls `display()` and returns None still works
  in a static run (what it displays is captured into the section, in a kernel); an app section shows only what
  `render` returns.
- `chart`: `alt.JupyterChart` with offline assets when interactive; static SVG (vl-convert) otherwise.
- `kpi_tiles`: value, change, target status, n, interval and a sparkline per metric, from the registry.
- `page_header`: in an app, segment and month dropdowns (re-rendering every section in place) above the header.
- `error_panel`: any failure in a section becomes a readable panel, never a traceback or silence.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import altair as alt
import ipywidgets as W
from IPython.core.formatters import format_display_data
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import HTML, SVG, display
from IPython.utils.capture import capture_output

from . import cache, chart_server, charts, params, theme
from . import format as fmt
from .errors import MissingTablesError, SaasKpiError
from .kernel_imports import enable_offline_charts
from .metrics import METRICS
from .metrics.plan import plan_series, plan_status

_offline = {"done": False}


# --------------------------------------------------------------------------- values
class Shown:
    """What a section shows in a static run, in order: the notebook displays it (one output per value, as if
    each were displayed on its own), and tests read `items` or `html()`."""

    def __init__(self, items: list[Any]):
        self.items = items

    def _ipython_display_(self) -> None:
        if self.items:
            display(*self.items)

    def html(self) -> str:
        """The HTML and SVG text of the values (for tests and plain-text callers)."""
        return "".join(markup(item) for item in self.items)

    def __repr__(self) -> str:
        return f"<Shown: {', '.join(type(i).__name__ for i in self.items) or 'nothing'}>"


def markup(item: Any) -> str:
    """The HTML or SVG text of a displayable value ("" for a value without either)."""
    if isinstance(item, Shown):
        return item.html()
    if isinstance(item, (HTML, SVG)):
        return item.data or ""
    for method in ("_repr_html_", "_repr_svg_"):
        text = getattr(item, method, lambda: None)()
        if text:
            return text
    return ""


def values(result: Any) -> list[Any]:
    """A render callback's result as a list of values: None is nothing, a list or tuple its values in order."""
    if result is None:
        return []
    if isinstance(result, (list, tuple)) or inspect.isgenerator(result):
        return [v for r in result for v in values(r)]
    if isinstance(result, Shown):
        return list(result.items)
    return [result]


# --------------------------------------------------------------------------- charts
def chart(spec: alt.TopLevelMixin, wb) -> Any:
    """A chart to display: an interactive widget with offline Vega assets, or static SVG in reports."""
    if wb.interactive:
        if not _offline["done"]:
            enable_offline_charts()  # the Vega bundle from the cache folder (kernel_imports.py)
            _offline["done"] = True
        return alt.JupyterChart(spec)
    return StaticChart(chart_svg(spec))


class StaticChart:
    """A chart as SVG text, displayed as it is (IPython's SVG parses the text with minidom and writes it out again
    to find its svg element, which vl-convert's text already is: 0.03-0.05 s a chart, 0.4-0.6 s of the CS page)."""

    def __init__(self, data: str):
        self.data = data

    def _repr_svg_(self) -> str:
        return self.data


def show_chart(spec: alt.TopLevelMixin, wb) -> None:
    """Old style, for render callbacks that display (pages not yet converted): display `chart(spec, wb)`."""
    display(chart(spec, wb))


def metric_trend(wb, name: str, months: int = 24, width: int = 300) -> alt.Chart:
    """Metric `name` over its last `months` months with its targets dashed and small samples flagged, `width`
    pixels wide."""
    m = METRICS[name]
    target = wb.targets.get(name)
    return charts.trend(
        wb.series(name).tail(months),
        m.label_in(wb.conventions),
        m.unit,
        wb.target(name),
        wb.conventions.low_n_threshold if m.estimate else None,
        target.long_term if target else None,
        wb.conventions.reporting_currency,
        plan_series(wb, name),
        width,
    )


ROW_PX = 1200  # the width a row of charts takes: the apps and reports are read in windows of 1,280 px and more
# what a trend panel takes beside its plot: the y axis and its title, the gap, half the last month's label
PANEL_PX = 90


def trends(wb, names: list[str], months: int = 24, columns: int = 2) -> list[Any]:
    """The trends of the metrics among `names` whose tables the source has, `columns` per row across the page
    (ROW_PX), and a note naming those without a value in the window."""
    width = ROW_PX // columns - PANEL_PX
    names = wb.available(names)
    empty = [n for n in names if wb.series(n).tail(months).value.isna().all()]
    panels = [metric_trend(wb, name, months, width) for name in names if name not in empty]
    out = []
    if panels:
        out.append(chart(alt.concat(*panels, columns=columns), wb))
    if empty:
        out.append(
            note(
                f"No value in the last {months} months, so no chart: "
                + ", ".join(METRICS[n].label for n in empty)
                + "."
            )
        )
    return out


def trend_grid(wb, names: list[str], months: int = 24, columns: int = 2) -> None:
    """Old style, for render callbacks that display (pages not yet converted): display `trends(...)`."""
    for item in trends(wb, names, months, columns):
        display(item)


def trends_section(wb, names: list[str], months: int = 24, needs: tuple[str, ...] = (), what: str = "") -> Any:
    """A section of `trends`; one sentence when a table in `needs` is missing."""

    def render(w):
        w.require(*needs, what=what)
        return trends(w, names, months)

    return section(wb, render)


# SAASKPI_CHECK_CHARTS=1 checks every static chart's spec against the Vega-Lite schema: tests/conftest.py sets it, so
# the kernels that tests start (notebooks, snapshots, apps) check theirs too
CHECK_SPECS = os.environ.get("SAASKPI_CHECK_CHARTS") == "1"


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """The chart rendered to SVG text with vl-convert (no browser, no network): the SVG `chart.save` writes, without
    checking the spec against the Vega-Lite schema on every render (a page's charts are the workbook's own code,
    checked in every test that draws one: CHECK_SPECS). The check cost 0.03-0.15 s of a chart's 0.1-0.35 s."""
    # as Altair's save: every row inlined (vl-convert cannot read the files another data transformer writes), and
    # the Vega-Lite version Altair writes ("v6.4.1" is vl-convert's "v6_4")
    with alt.data_transformers.enable("default"), alt.data_transformers.disable_max_rows():
        spec = chart.to_dict(validate=CHECK_SPECS, context={"pre_transform": False})
    version = "_".join(alt.SCHEMA_VERSION.split(".")[:2])
    # kept in the results store by its spec; in a snapshot's kernel, the snapshot's chart server draws it (no engine
    # to start here: chart_server.py)
    return cache.cached_svg(
        spec, version, lambda: chart_server.drawn_by_server(spec, version) or chart_server.draw(spec, version)
    )


# --------------------------------------------------------------------------- tiles
def sparkline_svg(values: list[float], width: int = 110, height: int = 26) -> str:
    """A tiny inline SVG polyline of the last values (gaps skipped)."""
    pts = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if len(pts) < 2:
        return ""
    lo, hi = min(pts), max(pts)
    span = (hi - lo) or 1.0
    step = width / (len(pts) - 1)
    coords = " ".join(f"{i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}" for i, v in enumerate(pts))
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" aria-hidden="true">'
        f'<polyline fill="none" stroke="{theme.PALETTE[0]}" stroke-width="1.6" points="{coords}"/></svg>'
    )


def tile_html(wb, name: str, big: bool = False, north_star: bool = False) -> str:
    """One KPI tile: label, value, change, target and status, n (with a low-n flag), interval, sparkline."""
    m = METRICS[name]
    v = wb.value(name)
    cur = wb.conventions.reporting_currency
    colour = theme.STATUS[v.status]
    lines = [
        f'<div class="kpi-label">{html.escape(m.label_in(wb.conventions))}</div>',
        f'<div class="kpi-value">{fmt.value(v.value, m.unit, cur)}</div>',
    ]
    if v.note:
        lines.append(f'<div class="kpi-note">{html.escape(v.note)}</div>')
    else:
        if v.month is not None and v.month != wb.month:  # an open cohort: the latest complete one is shown
            lines.append(f'<div class="kpi-note">cohort of {v.month:%b %Y}, the latest with its window elapsed</div>')
        lines.append(f'<div class="kpi-change">{fmt.change(v.change, m.unit, cur)} vs the month before</div>')
        target = "" if v.target is None else f"target {fmt.value(v.target, m.unit, cur)} · "
        lines.append(
            f'<div class="kpi-status" style="color:{colour}">{target}{"" if v.status == "n/a" else v.status}</div>'
        )
        lines.append(plan_line(wb, name, v.value))
        extra = fmt.count(v.n)
        if m.proportion and not math.isnan(v.interval[0]):
            extra += f" · 95% {fmt.value(v.interval[0], m.unit, cur)}–{fmt.value(v.interval[1], m.unit, cur)}"
        if v.low_n and v.status != "small sample":
            extra += ' · <span class="kpi-lown">small sample</span>'
        lines.append(f'<div class="kpi-n">{extra}</div>')
        if not big:  # a big number stands above its own chart
            lines.append(sparkline_svg(wb.series(name).value.tail(12).tolist()))
    classes = "kpi-tile" + (" kpi-big" if big else "") + (" kpi-north" if north_star else "")
    if north_star:
        lines.insert(0, '<div class="kpi-badge">north star</div>')
    return (
        f'<div class="{classes}" data-metric="{name}" style="border-top:3px solid {colour}">'
        + "".join(lines)
        + "</div>"
    )


def plan_line(wb, name: str, actual: float) -> str:
    """A tile's line against the plan for its month (plan, % of plan, variance, status); empty without a plan."""
    plan = plan_series(wb, name)
    row = plan[plan.month == wb.month] if plan is not None else None
    if row is None or row.empty or math.isnan(actual):
        return ""
    m, cur = METRICS[name], wb.conventions.reporting_currency
    planned = float(row.plan.iloc[0])
    status = plan_status(actual, planned, m.direction)
    share = "" if planned == 0 else f" · {actual / planned:.0%} of plan"
    return (
        f'<div class="kpi-plan">plan {fmt.value(planned, m.unit, cur)}{share} · '
        f"{fmt.change(actual - planned, m.unit, cur)} · "
        f'<span style="color:{theme.PLAN_STATUS.get(status, theme.MUTED)}">{html.escape(status)}</span></div>'
    )


# the page's styles, in every section's HTML; `.jp-RenderedSVG img`: a report's static chart (nbconvert writes it as an
# image of its own) shrinks to the page's width, as JupyterLab's style does for an SVG element, instead of running
# past the window's edge (the executive summary's revenue chart lost its last months at 1280 px)
TILE_CSS = f"""<style>
.kpi-grid {{display:grid;grid-template-columns:repeat(auto-fill,minmax(185px,1fr));gap:10px;margin:6px 0 12px 0;
  font-family:{theme.FONT};}}
.kpi-tile {{background:{theme.SURFACE["tile"]};border-radius:6px;padding:9px 11px;color:{theme.INK};}}
.kpi-label {{font-size:12px;color:{theme.MUTED};}} .kpi-value {{font-size:22px;font-weight:650;margin:2px 0;}}
.kpi-change,.kpi-status,.kpi-n,.kpi-note,.kpi-plan {{font-size:11px;color:{theme.MUTED};}} .kpi-status {{font-weight:600;}}
.kpi-lown {{color:{theme.STATUS["near"]};font-weight:600;}}
.kpi-grid-big {{grid-template-columns:repeat(3,1fr);}} .kpi-big .kpi-value {{font-size:34px;}}
.kpi-big .kpi-label {{font-size:14px;}} .kpi-north {{background:{theme.SURFACE["north_star"]};}}
.kpi-badge {{font-size:10px;text-transform:uppercase;letter-spacing:.06em;color:{theme.PALETTE[0]};font-weight:700;}}
.saaskpi-note {{font-family:{theme.FONT};color:{theme.MUTED};font-size:13px;padding:6px 0;}}
.saaskpi-error {{font-family:{theme.FONT};border-left:4px solid {theme.STATUS["off"]};background:{theme.SURFACE["error"]};
  padding:10px 14px;margin:6px 0;color:{theme.INK};font-size:13px;}}
.saaskpi-header {{font-family:{theme.FONT};color:{theme.INK};}}
.saaskpi-alert {{font-family:{theme.FONT};border-left:4px solid {theme.STATUS["near"]};background:{theme.SURFACE["alert"]};
  padding:8px 12px;margin:6px 0;font-size:13px;color:{theme.INK};}}
.saaskpi-alert .sub {{color:{theme.MUTED};font-size:12px;}}
.saaskpi-header .sub {{color:{theme.MUTED};font-size:13px;}}
.saaskpi-table {{font-family:{theme.FONT};font-size:12px;border-collapse:collapse;margin:6px 0 12px 0;color:{theme.INK};}}
.saaskpi-table th, .saaskpi-table td {{text-align:left !important;padding:3px 8px;border-bottom:1px solid {theme.GRID};}}
.saaskpi-table th {{color:{theme.MUTED};font-weight:500;}}
.saaskpi-table .num {{text-align:right !important;}}
.saaskpi-table tr.total td {{font-weight:600;background:{theme.SURFACE["total"]};}}
.saaskpi-group {{display:grid;grid-template-columns:170px 1fr;gap:8px;align-items:start;font-family:{theme.FONT};}}
.saaskpi-group-label {{font-size:14px;font-weight:600;color:{theme.INK};padding-top:16px;}}
.jp-RenderedSVG img {{max-width:100%;height:auto;}}
.saaskpi-links a {{display:inline-block;margin:4px 10px 4px 0;padding:8px 14px;border-radius:6px;background:{theme.SURFACE["link"]};
  color:{theme.PALETTE[0]};text-decoration:none;font-family:{theme.FONT};font-size:13px;font-weight:600;}}
</style>"""


def no_math(markup: str) -> str:
    """HTML whose dollar signs stay dollar signs: Voila and JupyterLab typeset text between two `$` as
    LaTeX ("$15.3M → $16.1M" came out as italic math). MathJax 3 skips elements of class
    `mathjax_ignore` (MathJax 2 and nbconvert: `tex2jax_ignore`)."""
    return f'<div class="mathjax_ignore tex2jax_ignore">{markup}</div>'


def styled(markup: str) -> HTML:
    """Workbook HTML (tiles, tables, notes, callouts) with the workbook's style, dollar signs kept."""
    return HTML(TILE_CSS + no_math(markup))


def kpi_tiles(wb, names: list[str], big: bool = False, first_is_north_star: bool = False) -> HTML:
    """A grid of KPI tiles for the registered metrics `names` (`big`: large numbers, three across)."""
    tiles = "".join(tile_html(wb, n, big, first_is_north_star and i == 0) for i, n in enumerate(names))
    return styled(f'<div class="kpi-grid{" kpi-grid-big" if big else ""}">' + tiles + "</div>")


def tiles_section(wb, names: list[str], needs: tuple[str, ...] = (), what: str = "") -> Any:
    """A section of KPI tiles for the metrics among `names` this source can compute; one sentence when a table
    in `needs` is missing."""

    def render(w):
        w.require(*needs, what=what)
        return kpi_tiles(w, w.available(names))

    return section(wb, render)


def status_text(text: str, status: str) -> str:
    """`text` (already HTML) in the colour of a target status."""
    return f'<span style="color:{theme.STATUS.get(status, theme.MUTED)};font-weight:600" title="{status}">{text}</span>'


def html_table(
    head: list[str], rows: list[list[str]], numeric: tuple[int, ...] = (), totals: list[bool] | None = None
) -> str:
    """A table in the workbook's style. `head` is text; cells are HTML; `numeric` columns are right-aligned;
    rows flagged in `totals` are emphasised."""
    num, total = ' class="num"', ' class="total"'

    def cells(tag, values):
        return "".join(f"<{tag}{num if i in numeric else ''}>{v}</{tag}>" for i, v in enumerate(values))

    body = "".join(f"<tr{total if totals and totals[i] else ''}>{cells('td', r)}</tr>" for i, r in enumerate(rows))
    return (
        f'<table class="saaskpi-table"><thead><tr>{cells("th", [html.escape(h) for h in head])}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def alert_html(fired: list, currency: str = "USD") -> str:
    """Fired inter-relational alerts as plain-language callouts with the moves behind them."""
    if not fired:
        return '<div class="saaskpi-note">No inter-relational alert: no rule in parameters/alerts.yaml fires this month.</div>'
    items = []
    for a in fired:
        moves = "; ".join(
            f"{METRICS[m].label} {fmt.value(e, METRICS[m].unit, currency)} → {fmt.value(r, METRICS[m].unit, currency)}"
            for m, e, r in a.evidence
        )
        items.append(
            f'<div class="saaskpi-alert"><b>{html.escape(a.message)}</b><br>'
            f'<span class="sub">{html.escape(moves)} (mean of the latest complete months vs as many months '
            "before, per parameters/alerts.yaml)</span></div>"
        )
    return "".join(items)


def alerts_section(wb) -> Any:
    """The inter-relational alerts of parameters/alerts.yaml that fire for the workbook's month."""
    from . import alerts

    return section(wb, lambda w: styled(alert_html(alerts.evaluate(w), w.conventions.reporting_currency)))


def note(text: str) -> HTML:
    """A neutral one-sentence note (for example: this section needs a table the source lacks)."""
    return HTML(TILE_CSS + f'<div class="saaskpi-note">{html.escape(text)}</div>')


# --------------------------------------------------------------------------- errors
def error_panel(exc: BaseException) -> HTML:
    """A readable panel for a failure: what went wrong and what to do; no traceback."""
    if isinstance(exc, MissingTablesError):
        return note(str(exc))
    if isinstance(exc, SaasKpiError):
        what, todo = str(exc), "Correct the data or parameters named above, then run the page again."
    else:
        what = f"This section could not be computed ({type(exc).__name__}: {exc})."
        todo = "Other sections are unaffected. Re-run the page; if it persists, report it with the segment and month shown above."
    body = "<br>".join(html.escape(line) for line in what.splitlines())
    return HTML(
        TILE_CSS
        + f'<div class="saaskpi-error"><b>Something went wrong.</b><br>{body}<br><i>{html.escape(todo)}</i></div>'
    )


def made(render: Callable, wb) -> Iterator[tuple[Any, bool]]:
    """Each value `render(wb)` makes, in order, with whether it came from a yield (then it can be shown at once,
    before the rest is made); a failure becomes a panel after whatever came before it."""
    try:
        result = render(wb)
        streamed = inspect.isgenerator(result)
        for item in result if streamed else [result]:
            for value in values(item):
                yield value, streamed
    except Exception as exc:  # noqa: BLE001 - every failure becomes a readable panel
        yield error_panel(exc), False


def rendered(render: Callable, wb) -> list[Any]:
    """The values `render(wb)` makes (`made`); in a kernel, what an old-style `render` displays itself is captured
    first, in order (static runs)."""
    if not InteractiveShell.initialized():
        return [value for value, _ in made(render, wb)]
    with capture_output(stdout=False, stderr=False, display=True) as captured:
        result = [value for value, _ in made(render, wb)]
    return [*captured.outputs, *result]


def _bundle(value: Any) -> dict:
    data, metadata = format_display_data(value)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def fill(out: W.Output, render: Callable, wb) -> None:
    """Give an app's output widget what `render(wb)` returns (a failure as a panel after whatever came before it),
    set on the widget itself: no `with out:`, whose routing by message id stops once the request that started a
    drawing has been answered (a section drawn later in the event loop, `Session.redraw`, showed nothing). A
    render that yields has each value shown as soon as it is made, the rest of the old view kept under it until
    replaced (no jump); the widgets the old view held are closed. Outside IPython nothing can be shown: the
    values are made and dropped."""
    shell = InteractiveShell.initialized()
    old, shown, bundles = list(out.outputs), [], []
    for value, now in made(render, wb):
        shown.append(value)
        if shell:
            bundles.append(_bundle(value))
            if now:
                out.outputs = tuple(bundles + old[len(bundles) :])
    if shell:
        out.outputs = tuple(bundles)
    for widget in _held.pop(out.model_id, []):
        _close(widget)
    _held[out.model_id] = [v for v in shown if isinstance(v, W.Widget)]


_held: dict[str, list[W.Widget]] = {}  # the widgets an output widget shows (closed when it shows others)


def _close(widget: W.Widget) -> None:
    """Close a widget, its children and, for an output widget (a picker's view inside a section), what it shows."""
    if widget.comm is None:  # closed already
        return
    held = _held.pop(widget.model_id, []) if isinstance(widget, W.Output) else []
    for child in [*getattr(widget, "children", ()), *held]:
        if isinstance(child, W.Widget):
            _close(child)
    widget.close()


# --------------------------------------------------------------------------- the app
class Session:
    """The workbook an app currently shows and the sections that re-render when a control changes."""

    def __init__(self, wb):
        self.wb = wb
        self.sections: list[tuple[W.Output, Callable]] = []
        self.segment_options = params.segment_names()
        self.month_options = wb.months()
        self.status = W.HTML()
        self.generation = 0  # of the drawing under way: a newer choice makes an older drawing stop

    def add(self, render: Callable) -> W.Output:
        """A section's output widget, drawn now and again on every control change."""
        out = W.Output()
        self.sections.append((out, render))
        self._draw(out, render)
        return out

    def _draw(self, out: W.Output, render: Callable) -> None:
        fill(out, render, self.wb)

    def choose(self, segment: str | None = None, month: str | None = None) -> bool:
        """Switch segment and/or month; values outside the controls' options are refused."""
        if (segment is not None and segment not in self.segment_options) or (
            month is not None and month not in self.month_options
        ):
            self.status.value = TILE_CSS + (
                '<div class="saaskpi-error">That choice is not one of the options; nothing was changed.</div>'
            )
            return False
        try:
            self.wb = self.wb.with_choice(segment=segment, month=month)
        except Exception as exc:  # noqa: BLE001
            self.status.value = error_panel(exc).data
            return False
        self.status.value = ""
        self.redraw()
        return True

    def redraw(self) -> None:
        """Draw every section again for the current choice. In a kernel, one section per turn of its event loop,
        so a control moved again meanwhile is read between two sections and the rest of this drawing, stale by
        then, is dropped (a person clicking through segments waits for the last one only); elsewhere, at once."""
        self.generation += 1
        generation, pending = self.generation, list(self.sections)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop running (a script or a test): draw them all now
            loop = None

        def step() -> None:
            if generation != self.generation:
                return
            out, render = pending.pop(0)
            self._draw(out, render)
            if pending:
                loop.call_soon(step)  # type: ignore[union-attr]  # set whenever a step is scheduled

        if loop is None:
            for out, render in pending:
                self._draw(out, render)
        elif pending:
            step()


def session_for(wb) -> Session | None:
    """The app session of a notebook's workbook (created on first use); None when not interactive."""
    if not wb.interactive:
        return None
    if "_session" not in wb.__dict__:
        wb.__dict__["_session"] = Session(wb)
    return wb.__dict__["_session"]


def controls(wb) -> W.VBox | None:
    """The navigation bar and the segment and month dropdowns that re-render every section of the page (None in
    a static run)."""
    s = session_for(wb)
    if s is None:
        return None
    from .nav import NavBar, app_pages, requested

    segment = W.Dropdown(options=s.segment_options, value=wb.segment.name, description="Segment")
    month = W.Dropdown(options=s.month_options, value=wb.month_label, description="Month")
    bar = NavBar(pages=[list(p) for p in app_pages()], segment=wb.segment.name, month=wb.month_label)

    applying: list[bool] = []  # set while the controls are moved to a choice already made (no second re-render)

    def shown():
        bar.segment, bar.month = s.wb.segment.name, s.wb.month_label

    def follow(change):
        if not applying:
            s.choose(**{change["owner"].description.lower(): change["new"]})
            shown()

    def move(segment_name: str, month_label: str) -> None:  # the controls, without a re-render of their own
        applying.append(True)
        try:
            segment.value, month.value = segment_name, month_label
        finally:
            applying.clear()

    def asked(change):  # the page's query string (a link of the bar): the segment and month it names, if options
        wanted = {
            k: v
            for k, v in requested(change["new"]).items()
            if v in (s.segment_options if k == "segment" else s.month_options)
        }
        if not wanted:
            return
        move(wanted.get("segment", segment.value), wanted.get("month", month.value))  # the controls first
        if not s.choose(**wanted):
            move(s.wb.segment.name, s.wb.month_label)
        shown()

    segment.observe(follow, names="value")
    month.observe(follow, names="value")
    bar.observe(asked, names="query")
    return W.VBox([bar, W.HBox([segment, month]), s.status])


def header_html(wb, conventions: str) -> HTML:
    """Segment and month; the source and the conventions behind the page's numbers folded under one line."""
    return styled(
        f'<div class="saaskpi-header"><details><summary class="sub"><b>{html.escape(wb.segment.label)} · '
        f'{wb.month:%B %Y}</b> · source and conventions</summary><div class="sub">source '
        f'{html.escape(wb.source_label)}</div><div class="sub">{html.escape(conventions)} '
        f"(parameters/conventions.yaml)</div></details></div>"
    )


def page_header(wb, conventions: Callable) -> Any:
    """A page's first section: the controls (in an app), then `header_html` with `conventions(wb)`."""
    bar = controls(wb)
    header = section(wb, lambda w: header_html(w, conventions(w)))
    return header if bar is None else W.VBox([bar, header])


def picked_view(
    wb, choices: list[tuple[str, str]], chosen: str, view: Callable, description: str, width: str = "420px"
) -> Any:
    """`view(wb, value)` for one of `choices` ((label, value) pairs): `chosen` (or the first) in static runs,
    where `view` says clearly when `chosen` is not an option; in an app, a searchable picker (type part of a
    name; starting at `chosen` when it is an option) above the view, re-rendering it, accepting only its own
    options."""
    options = [c[1] for c in choices]
    if not wb.interactive:
        return view(wb, chosen or options[0])
    chosen = chosen if chosen in options else options[0]
    labels = [label for label, _ in choices]
    by_label = {(label if labels.count(label) == 1 else f"{label} ({value})"): value for label, value in choices}
    picker = W.Combobox(
        options=list(by_label),
        value=next(label for label, v in by_label.items() if v == chosen),
        ensure_option=True,
        placeholder=f"type to search {len(choices)} names",
        description=description,
        layout=W.Layout(width=width),
        style={"description_width": "initial"},
    )
    out = W.Output()

    def pick(change):
        value = by_label.get(change["new"])
        if value is None:  # only the picker's own options (a partly typed name is not one yet)
            return
        fill(out, lambda w: view(w, value), wb)

    picker.observe(pick, names="value")
    pick({"new": picker.value})
    return W.VBox([picker, out])


def section(wb, render: Callable) -> Any:
    """One section's value for the notebook to display: in static runs a `Shown` of what `render(wb)` returns
    (rendered once); in apps an output widget re-rendered on every control change."""
    s = session_for(wb)
    if s is None:
        return Shown(rendered(render, wb))
    return s.add(render)
