"""Page 00, the executive summary: the north star, what leads at the business stage, the top 7 of the
customer-journey article, alerts, the metric hierarchy and links to every other page. Everything is
read from the registry and `parameters/executive.yaml`, so a metric added later appears without
editing the notebook."""

from __future__ import annotations

import html
import json
import math
from functools import lru_cache
from typing import Any

from .. import charts, params, paths, widgets
from .. import format as fmt
from ..metrics import METRICS
from ..metrics.registry import LEVELS
from . import forecast

AREAS: tuple[str, ...] = ()  # every metric area belongs to the page that explains it
TREND_MONTHS = 24
CADENCE_ORDER = {"daily": 0, "weekly": 1, "monthly": 2, "quarterly": 3}


def settings() -> params.Executive:
    """parameters/executive.yaml, checked against the registry (read again only when the file changes)."""
    return _settings(paths.EXECUTIVE_FILE.stat().st_mtime_ns)


@lru_cache(maxsize=1)
def _settings(_mtime: int) -> params.Executive:
    return params.executive(known=set(METRICS))


def stage_of(business_stage: str = "") -> str:
    """The business stage in force: the notebook's parameter, else executive.yaml's."""
    ex = settings()
    ex.leading(business_stage)
    return business_stage or ex.business_stage


REVENUE = ["monthly_recurring_revenue", "annual_recurring_revenue", "net_new_mrr"]


def show_header(wb, business_stage: str = "") -> Any:
    """Segment and month (with the controls in an app); the business stage, north star and conventions folded."""
    ex = settings()
    stage = stage_of(business_stage)
    return widgets.page_header(
        wb,
        lambda w: (
            f"Business stage: {stage} (parameters/executive.yaml decides what leads). "
            f"North star: {METRICS[ex.north_star].label}. Every rate shows its n; "
            f"fewer than {w.conventions.low_n_threshold} is flagged as a small sample"
        ),
    )


def show_revenue(wb) -> Any:
    """MRR, ARR and net new MRR as big numbers with their change, then MRR and its movements across the page."""

    def render(w):
        yield widgets.kpi_tiles(w, REVENUE, big=True)  # shown in an app while the rest is made
        months = w.table("mrr_movements")
        months = months[months.month <= w.month].tail(TREND_MONTHS)
        yield forecast.summary_html(w)  # the largest drivers of the summary rate's change (page 06)
        yield widgets.chart(charts.revenue_overview(months, w.conventions.reporting_currency), w)

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- plan and goals (issue 25)
PLAN_MISSING = "Add a `plan` table (docs/data-contract.md) to see plan vs actual."
GOALS_MISSING = "Add dated goals to parameters/targets.yaml to see the pace they need."


def _pct(v: float) -> str:
    return fmt.value(v, "fraction")


def goals_html(wb) -> str:
    """The goal table: each dated goal (parameters/targets.yaml) and the plan 90 days and 12 months ahead, with
    the value now, the monthly growth it needs and the one the metric has had, and whether that is on pace."""
    goals = wb.table("goal_pace")
    if goals.empty:
        return ""
    cur = wb.conventions.reporting_currency
    rows = [
        [
            html.escape(g.horizon),
            html.escape(g.goal),
            f"{g.deadline:%b %Y}",
            fmt.value(g.goal_value, g.unit, cur),
            fmt.value(g.current, g.unit, cur),
            _pct(g.required_growth),
            _pct(g.trailing_growth),
            widgets.status_text(
                html.escape(g.status),
                "on" if g.status in ("on pace", "reached") else "off" if g.status in ("behind", "missed") else "n/a",
            ),
        ]
        for g in goals.itertuples()
    ]
    head = ["horizon", "goal", "by", "goal value", "now", "needs / month", "has had / month", "pace"]
    months = wb.conventions.growth_rate_months
    return (
        widgets.html_table(head, rows, numeric=(3, 4, 5, 6))
        + f'<div class="saaskpi-note">needs: the steady monthly growth that reaches the goal by the end of its month; '
        f"has had: the compound monthly growth of the last {months} months.</div>"
    )


def show_plan(wb) -> Any:
    """The month against plan: tiles of the planned metrics (actual, plan, % of plan, variance), their trends with
    the plan dotted beside the target, then the 90-day / 12-month goal table with the pace each goal needs."""

    def render(w):
        out: list[Any] = []
        if w.has("plan"):
            planned = w.table("plan_values")
            names = w.available([n for n in METRICS if n in set(planned.metric)])  # in catalogue order
            if names:
                out += [widgets.kpi_tiles(w, names), *widgets.trends(w, names, TREND_MONTHS, columns=4)]
            else:
                out.append(widgets.note(f"The plan has no rows for {w.segment.label}."))
        else:
            out.append(widgets.note(PLAN_MISSING))
        goals = goals_html(w)
        if goals:
            out.append(widgets.styled(goals))
        elif params.targets_file().goals:  # goals for other segments only
            out.append(widgets.note(f"No dated goal for {w.segment.label} in parameters/targets.yaml."))
        else:
            out.append(widgets.note(GOALS_MISSING))
        return out

    return widgets.section(wb, render)


# --------------------------------------------------------------------------- growth (issue 25)
GROWTH = [
    "arr_growth_yoy",
    "trailing_twelve_month_growth",
    "net_new_mrr_growth_yoy",
    "natural_rate_of_growth",
    "plg_share_of_new_arr",
    "months_up_front",
    "months_up_front_weighted",
]


def ceiling_sentence(wb) -> str:
    """The growth ceiling as a sentence with its number (no ceiling while nothing churns)."""
    g = wb.table("growth_ceiling")
    row = g[g.month == wb.month]
    if row.empty:
        return ""
    r = row.iloc[0]
    cur = wb.conventions.reporting_currency
    months = wb.conventions.growth_rate_months
    rates = (
        f"new ARR of {fmt.value(r.new_arr_per_month, 'currency', cur)} a month and a monthly churn rate of "
        f"{_pct(r.churn_rate)} (averages of the last {months} months)"
    )
    if math.isnan(r.ceiling_arr):
        if math.isnan(r.churn_rate):
            return "No growth ceiling yet: not enough months of revenue to measure churn."
        return f"No growth ceiling: at {rates}, nothing churns, so ARR has no level where churn cancels new ARR."
    text = (
        f"<b>Growth ceiling: {fmt.value(r.ceiling_arr, 'currency', cur)} ARR</b>, where the ARR lost each month "
        f"equals the new ARR won, at {rates}. ARR is {fmt.value(r.arr, 'currency', cur)}"
    )
    if r.arr >= r.ceiling_arr:
        return text + ": at or above the ceiling, so it can only shrink toward it unless new ARR grows or churn falls."
    if math.isnan(r.months_to_ceiling):
        return text + "; net new ARR is not positive, so it does not approach the ceiling at the current pace."
    return (
        text + f"; at the current net new ARR ({fmt.value(r.net_new_arr_per_month, 'currency', cur)} a month) it "
        f"would get there in about {r.months_to_ceiling:.0f} months (sooner than in practice: growth slows near it)."
    )


def growth_table_html(wb) -> str:
    """The month's growth numbers: ARR growth, trailing growth, net new MRR growth, natural rate of growth, new ARR
    by motion, months up front (plain and MRR-weighted)."""
    cur = wb.conventions.reporting_currency
    rows = []
    for n in GROWTH:
        m, v = METRICS[n], wb.value(n)
        rows.append([html.escape(m.label), fmt.value(v.value, m.unit, cur)])
    split = wb.table("new_arr_split")
    row = split[split.month == wb.month]
    if len(row):
        r = row.iloc[0]
        rows.insert(
            GROWTH.index("plg_share_of_new_arr") + 1,
            [
                "New ARR: product-led / sales-led",
                f"{fmt.value(r.plg_new_arr, 'currency', cur)} / {fmt.value(r.sales_led_new_arr, 'currency', cur)}",
            ],
        )
    conv = wb.conventions
    return widgets.html_table(["", wb.month_label], rows, numeric=(1,)) + (
        f'<div class="saaskpi-note">Organic channels: {html.escape(", ".join(conv.organic_channels))}; product-led: '
        f"{html.escape(', '.join(conv.plg_channels))}, every other channel sales-led (parameters/conventions.yaml). "
        "Formulas: docs/metrics.md.</div>"
    )


def show_growth(wb) -> Any:
    """Growth: year-over-year growth of ARR and of the trailing twelve months' MRR, a small table (natural rate of
    growth, PLG vs sales-led new ARR, months up front) and the growth ceiling as a sentence."""

    def render(w):
        g = w.table("growth_yoy")
        g = g[g.month <= w.month].tail(TREND_MONTHS)
        out: list[Any] = []
        if g.arr_yoy.notna().any():
            out.append(widgets.chart(charts.growth_lines(g), w))
        else:
            out.append(widgets.note("Year-over-year growth needs 13 months of revenue."))
        sentence = ceiling_sentence(w)
        out.append(
            widgets.styled(growth_table_html(w) + (f'<div class="saaskpi-header">{sentence}</div>' if sentence else ""))
        )
        return out

    return widgets.section(wb, render)


def headline(business_stage: str = "") -> list[str]:
    """The north star, then the KPIs that lead at the business stage (each once)."""
    names = [settings().north_star, *settings().leading(business_stage)]
    return [n for i, n in enumerate(names) if n not in names[:i] and n not in REVENUE]


def show_headline(wb, business_stage: str = "") -> Any:
    """The north star and what leads at the business stage: a row of tiles, then their trends across the page."""

    def render(w):
        names = w.available(headline(business_stage))
        if not names:
            return widgets.note("None of this stage's KPIs can be computed from this source.")
        return [
            widgets.kpi_tiles(w, names, first_is_north_star=names[0] == settings().north_star),
            *widgets.trends(w, names, TREND_MONTHS, columns=3),
        ]

    return widgets.section(wb, render)


def top7_html(wb, business_stage: str = "") -> str:
    """The top 7 of the customer-journey article: one row of tiles per group; a KPI already shown higher on the
    page (revenue, north star, stage) is not repeated."""
    shown = set(REVENUE) | set(headline(business_stage))
    rows = []
    for group, names in settings().top7.items():
        rest = [n for n in names if n not in shown]
        tiles = "".join(widgets.tile_html(wb, n) for n in rest) or (
            '<div class="saaskpi-note">shown above: '
            + html.escape(", ".join(METRICS[n].label for n in names))
            + "</div>"
        )
        rows.append(
            f'<div class="saaskpi-group"><div class="saaskpi-group-label">{html.escape(group)}</div>'
            f'<div class="kpi-grid">{tiles}</div></div>'
        )
    return "".join(rows)


def show_top7(wb, business_stage: str = "") -> Any:
    """Churn, deal size, qualified leads, net negative churn, revenue per lead, NPS and CSAT, sales and capital
    efficiency: value, change, target status, n and sparkline each (those shown above are not repeated)."""
    return widgets.section(wb, lambda w: widgets.styled(top7_html(w, business_stage)))


def show_alerts(wb) -> Any:
    """Inter-relational alerts declared in parameters/alerts.yaml."""
    return widgets.alerts_section(wb)


def hierarchy_html(wb) -> str:
    """Every registered metric by hierarchy level (north star, core, supporting, operational) with its review
    cadence, value and status; supporting and operational levels are folded."""
    cur = wb.conventions.reporting_currency
    parts = []
    for level in LEVELS:
        names = sorted(
            (n for n, m in METRICS.items() if m.level == level),
            key=lambda n: (CADENCE_ORDER[METRICS[n].cadence], METRICS[n].area, METRICS[n].label),
        )
        rows = []
        for n in names:
            m, v = METRICS[n], wb.value(n)
            rows.append(
                [
                    html.escape(m.label),
                    m.cadence,
                    m.area,
                    html.escape(v.note or fmt.value(v.value, m.unit, cur)),
                    "" if v.status == "n/a" else widgets.status_text(v.status, v.status),
                ]
            )
        table = widgets.html_table(["KPI", "review", "area", "value", "status"], rows, numeric=(3,))
        title = f"{level.replace('_', ' ')} ({len(names)})"
        opened = " open" if level in ("north_star", "core") else ""
        parts.append(
            f'<details{opened}><summary class="saaskpi-header"><b>{html.escape(title)}</b></summary>{table}</details>'
        )
    return "".join(parts)


def show_hierarchy(wb) -> Any:
    """The metric hierarchy from the registry, with review cadence."""
    return widgets.section(wb, lambda w: widgets.styled(hierarchy_html(w)))


def pages() -> list[tuple[str, str]]:
    """(notebook, title) of every other page, in order; the title is the notebook's first heading."""
    from ..snapshot import notebook_names

    out = []
    for name in notebook_names():
        if name.startswith("00_"):
            continue
        cells = json.loads((paths.NOTEBOOKS_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        heading = next(
            ("".join(c["source"]).splitlines()[0].lstrip("# ") for c in cells if c["cell_type"] == "markdown"), name
        )
        out.append((name, heading))
    return out


def links_html(interactive: bool) -> str:
    """Links to the other pages: apps beside this one in Voila, reports beside this one in a snapshot."""
    suffix = ".ipynb" if interactive else ".html"
    return (
        '<div class="saaskpi-links">'
        + "".join(f'<a href="{html.escape(name + suffix)}">{html.escape(title)}</a>' for name, title in pages())
        + "</div>"
    )


def show_links(wb) -> Any:
    """Links to every other page (the same segment is picked there with its own control)."""
    return widgets.styled(links_html(wb.interactive))
