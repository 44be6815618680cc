"""What a message says, read from the snapshot's outputs as they are (never recomputed): the headline KPIs of
the month's index (north-star and core metrics of each page's latest run in `reports/metrics.parquet`, with
the change against the previous month and the target status the page recorded), the alerts the executive
summary of the latest run showed followed by the spike alerts any page of the segment showed (spikes.py), and
the reports to attach."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import format as fmt
from .. import params
from ..errors import ParameterError
from ..snapshot import completed_runs, latest_rows, read_store
from .settings import EXECUTIVE_SUMMARY, RecipientList

ALERT = re.compile(r'<div class="saaskpi-alert"><b>(.*?)</b>')
SPIKE = re.compile(r'<div class="saaskpi-alert saaskpi-spike"><b>(.*?)</b>')  # spike alerts (spikes.py), any page


@dataclass(frozen=True)
class Kpi:
    metric: str
    label: str
    unit: str
    value: float
    change: float  # against the previous month, NaN when that month has no value
    status: str  # on track, near, off or n/a, as the page recorded it

    @property
    def value_text(self) -> str:
        return fmt.value(self.value, self.unit)

    @property
    def change_text(self) -> str:
        return fmt.change(self.change, self.unit)


@dataclass(frozen=True)
class Page:
    """One executed report of the latest run that has it."""

    notebook: str
    segment: str
    run_id: str
    html: Path

    @property
    def href(self) -> str:
        """Relative to the month's folder (as the index links it)."""
        return f"runs/{self.run_id}/{self.segment}/{self.notebook}.html"


@dataclass
class SegmentSummary:
    segment: str
    label: str
    kpis: list[Kpi] = field(default_factory=list)
    alerts: list[str] | None = None  # None: no executive summary in the month's runs to read them from
    pages: dict[str, Page] = field(default_factory=dict)


@dataclass
class MonthSummary:
    month: str
    segments: list[SegmentSummary]
    run_ids: list[str]  # the runs the summary reads, oldest first

    @property
    def title(self) -> str:
        return f"SaaS KPIs, {pd.Period(self.month, 'M').strftime('%B %Y')}"


def headline_metrics() -> list[str]:
    """The index's headline: north-star, then core metrics, in registry order."""
    from ..metrics import METRICS

    return [n for n, m in METRICS.items() if m.level == "north_star"] + [
        n for n, m in METRICS.items() if m.level == "core"
    ]


def read_summary(reports: Path, month: str, recipients: RecipientList) -> MonthSummary:
    """The month as the index shows it, for the list's segments and metrics; a month without a completed run, or
    a segment none of its runs has, is a ParameterError."""
    runs = completed_runs(reports, month)
    if not runs:
        raise ParameterError(f"No completed run of {month} in {reports}: run `saaskpi snapshot --month {month}` first.")
    store = latest_rows(read_store(reports / "metrics.parquet"), month)
    have = {r["segment"] for run in runs for r in run["results"]}
    missing = [s for s in recipients.segments if s not in have]
    if missing:
        raise ParameterError(
            f"The runs of {month} have no page for segment(s) {', '.join(missing)} "
            f"(they have {', '.join(sorted(have))}): run `saaskpi snapshot --month {month} "
            f"--segments {','.join(missing)}`."
        )
    names = recipients.metrics or headline_metrics()
    known = params.segment_names()
    out = []
    for seg in recipients.segments:
        summary = SegmentSummary(
            seg,
            params.segment(seg).label if seg in known else seg,
            _kpis(store, seg, month, names),
            pages=_latest_pages(runs, seg),
        )
        if EXECUTIVE_SUMMARY in summary.pages:
            summary.alerts = read_alerts(summary.pages[EXECUTIVE_SUMMARY].html.with_suffix(".ipynb"))
        fired = read_spikes(summary.pages)
        if fired:
            summary.alerts = [*(summary.alerts or []), *fired]
        out.append(summary)
    return MonthSummary(month, out, [r["run_id"] for r in runs])


def _kpis(store: pd.DataFrame, segment: str, month: str, names: list[str]) -> list[Kpi]:
    """Value, change against the previous month and status, exactly as `write_month_index` shows them."""
    prev = (pd.Period(month, "M") - 1).strftime("%Y-%m")
    rows = store[store.segment == segment]
    kpis = []
    for name in names:
        here = rows[rows.metric == name].drop_duplicates(["month"])
        now, before = here[here.month == month], here[here.month == prev]
        if now.empty or pd.isna(now.iloc[0].value):
            continue
        v = now.iloc[0]
        change = v.value - before.iloc[0].value if len(before) and pd.notna(before.iloc[0].value) else float("nan")
        kpis.append(Kpi(name, v.label, v.unit, float(v.value), float(change), str(v.status)))
    return kpis


def _latest_pages(runs: list[dict], segment: str) -> dict[str, Page]:
    """Each page of the segment from the latest run where it succeeded (as the index links it)."""
    pages = {}
    for run in runs:  # oldest first: later runs overwrite
        for r in run["results"]:
            report = run["folder"] / segment / f"{r['notebook']}.html"
            if r["segment"] == segment and not r["error"] and report.exists():
                pages[r["notebook"]] = Page(r["notebook"], segment, run["run_id"], report)
    return pages


def read_spikes(pages: dict[str, Page]) -> list[str]:
    """The spike alerts (spikes.py) that the segment's executed pages displayed, in page order, each once."""
    found: list[str] = []
    for name in sorted(pages):
        found += read_alerts(pages[name].html.with_suffix(".ipynb"), SPIKE) or []
    return list(dict.fromkeys(found))


def read_alerts(notebook: Path, pattern: re.Pattern = ALERT) -> list[str] | None:
    """The alert messages the executed executive summary displayed (its `saaskpi-alert` callouts; with `pattern`
    SPIKE, a page's spike alerts)."""
    try:
        nb = json.loads(notebook.read_text())
    except (OSError, ValueError):
        return None
    found = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/html", "")
            text = "".join(text) if isinstance(text, list) else text
            found += [html.unescape(m) for m in pattern.findall(text)]
    return list(dict.fromkeys(found))
