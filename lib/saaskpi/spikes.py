"""Spike alerts between months: one metric's latest complete week against its usual range.

The usual range of a weekly count is the median of the `weeks` weeks before the latest complete week, plus or
minus `k` times their spread: the median absolute deviation scaled by 1.4826 (so that it estimates a standard
deviation for normal data), and at least `min_spread` times the median (so that a run of identical weeks does
not make every change a spike). A week fires when it is outside that range and counts at least `min_events`
events (accounts or tickets): one churned account in a quiet week is not news. Settings: the `spikes` block of
parameters/alerts.yaml (the monthly inter-relational rules of alerts.py skip it).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import format as fmt
from . import paths
from .errors import ParameterError
from .params import read_yaml

KEY = "spikes"  # the block of parameters/alerts.yaml
MAD_SCALE = 1.4826
# The weekly counts a spike rule may watch (metrics/service.py WEEKLY_METRICS), with their unit and page.
WATCHED = {
    "churned_accounts": ("Churned accounts", "count", "cohort_retention"),
    "churned_mrr": ("Churned MRR", "currency", "cohort_retention"),
    "tickets_opened": ("Tickets opened", "count", "cs_load"),
}


@dataclass(frozen=True)
class SpikeSettings:
    weeks: int = 12
    k: float = 3.0
    min_spread: float = 0.1
    min_events: int = 3
    metrics: tuple[str, ...] = tuple(WATCHED)


@dataclass(frozen=True)
class Spike:
    """The latest complete week of a watched metric, against its usual range."""

    metric: str
    week: pd.Timestamp  # its Monday
    value: float
    events: int
    median: float
    low: float
    high: float
    fired: str  # "above", "below" or "" (inside the range, or too few events / weeks)

    @property
    def label(self) -> str:
        return WATCHED[self.metric][0]

    def message(self, currency: str = "USD") -> str:
        """One line: the week's value against its usual range, saying whether it is a spike."""
        unit = WATCHED[self.metric][1]
        show = (lambda v: fmt.money(v, currency)) if unit == "currency" else _count
        week = f"the week of {self.week:%Y-%m-%d}"
        if math.isnan(self.median):
            return f"{self.label}: {show(self.value)} in {week}; too few earlier weeks for a usual range"
        usual = f"usual range {show(max(self.low, 0.0))} to {show(self.high)}, median {show(self.median)}"
        if self.fired:
            return f"{self.label} spike: {show(self.value)} in {week}, {self.fired} its {usual}"
        return f"{self.label}: {show(self.value)} in {week}, no spike ({usual})"


def _count(v: float) -> str:
    """A count, or a range bound: one decimal below 100 when it is not whole (a range 0.7 to 1.3 is not "1 to 1")."""
    return f"{v:,.1f}" if abs(v) < 100 and v != round(v) else f"{v:,.0f}"


def settings(path: Path = paths.PARAMETERS_DIR / "alerts.yaml") -> SpikeSettings:
    """The `spikes` block of alerts.yaml (defaults without one); a bad key or value is a ParameterError."""
    block = (read_yaml(path) or {}).get(KEY) if path.exists() else None
    if block is None:
        return SpikeSettings()
    where = f"{path.name}: `{KEY}`"
    known = {"weeks", "k", "min_spread", "min_events", "metrics"}
    if not isinstance(block, dict) or set(block) - known:
        raise ParameterError(f"{where} takes {', '.join(sorted(known))}; got {block!r}.")
    d = SpikeSettings()
    try:
        weeks = int(block.get("weeks", d.weeks))
        k = float(block.get("k", d.k))
        min_spread = float(block.get("min_spread", d.min_spread))
        min_events = int(block.get("min_events", d.min_events))
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: weeks and min_events are whole numbers, k and min_spread numbers.") from None
    if weeks < 4 or weeks != block.get("weeks", d.weeks):
        raise ParameterError(f"{where}: weeks must be a whole number of at least 4, got {block.get('weeks')!r}.")
    if not k > 0 or not min_spread >= 0 or min_events < 0:
        raise ParameterError(f"{where}: k must be above 0, min_spread and min_events 0 or more.")
    names = block.get("metrics", list(d.metrics))
    if not isinstance(names, list) or not names or any(n not in WATCHED for n in names):
        raise ParameterError(f"{where}: metrics must be a list among {', '.join(WATCHED)}; got {names!r}.")
    return SpikeSettings(weeks, k, min_spread, min_events, tuple(names))


def check(weekly: pd.DataFrame, latest: pd.Timestamp, s: SpikeSettings) -> Spike | None:
    """The week starting `latest` of one metric's weekly counts (week, value, n) against the `s.weeks` weeks
    before it; None when that week is not in the data."""
    w = weekly.sort_values("week")
    now = w[w.week == latest]
    if now.empty:
        return None
    before = w[w.week < latest].tail(s.weeks).value
    row = now.iloc[0]
    value, events = float(row.value), int(row.n)
    if len(before) < s.weeks:
        return Spike(str(row.metric), latest, value, events, math.nan, math.nan, math.nan, "")
    median = float(before.median())
    spread = max(MAD_SCALE * float((before - median).abs().median()), s.min_spread * median)
    low, high = median - s.k * spread, median + s.k * spread
    fired = ""
    if value > high and events >= s.min_events:
        fired = "above"
    elif value < low and low > 0:
        fired = "below"
    return Spike(str(row.metric), latest, value, events, median, low, high, fired)


def latest_week(month_end: pd.Timestamp) -> pd.Timestamp:
    """The Monday of the last complete week (Monday to Sunday) ending on or before `month_end` (a day)."""
    day = pd.Timestamp(month_end).normalize()
    sunday = day - pd.Timedelta(days=(day.weekday() + 1) % 7)
    return sunday - pd.Timedelta(days=6)


def evaluate(wb, page: str | None = None, s: SpikeSettings | None = None) -> list[Spike]:
    """The watched metrics (of `page` when given) whose tables the source has, each checked in the latest
    complete week of the workbook's month."""
    s = s or settings()
    names = [n for n in s.metrics if page is None or WATCHED[n][2] == page]
    if not names:
        return []
    weekly = wb.table("weekly_counts")
    latest = latest_week(wb.month + pd.offsets.MonthEnd(0))
    out = []
    for name in names:
        rows = weekly[weekly.metric == name]
        found = check(rows, latest, s) if len(rows) else None
        if found is not None:
            out.append(found)
    return out


def spikes_html(found: list[Spike], currency: str, weeks: int) -> str:
    """Fired spikes as alert callouts (the snapshot delivery reads them: delivery/content.py SPIKE), the other
    watched metrics as one note line each."""
    parts = []
    for sp in found:
        text = html.escape(sp.message(currency))
        if sp.fired:
            parts.append(
                f'<div class="saaskpi-alert saaskpi-spike"><b>{text}</b><br><span class="sub">the latest complete '
                f"week against the {weeks} weeks before it (spikes in parameters/alerts.yaml)</span></div>"
            )
        else:
            parts.append(f'<div class="saaskpi-note">{text}</div>')
    return "".join(parts)


def show(wb, page: str) -> Any:
    """A page's spike section: each watched metric of `page` in the latest complete week of the month."""
    from . import widgets

    def render(w):
        s = settings()
        found = evaluate(w, page, s)
        if not found:
            return [widgets.note("No weekly data for this page's spike alerts in this month.")]
        return [widgets.styled(spikes_html(found, w.conventions.reporting_currency, s.weeks))]

    return widgets.section(wb, render)
