"""The one look of every chart and tile: an Altair theme registered and enabled on import.

Chart builders set no colours or fonts; where a chart needs meaning-bearing colours (a rise is
green, a loss red) it takes the scale from here, and targets use the named mark style "target" (plans "plan").
"""

from __future__ import annotations

import altair as alt

FONT = "Inter, 'Helvetica Neue', Arial, sans-serif"
INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#0ea5e9", "#84cc16", "#ec4899"]
STATUS = {
    "on": "#15803d",
    "near": "#b45309",
    "off": "#b91c1c",
    "n/a": "#6b7280",
    "immature": "#6b7280",
    "small sample": "#6b7280",
}
MOVEMENTS = {
    "start": "#94a3b8",
    "new": "#16a34a",
    "expansion": "#4ade80",
    "reactivation": "#0ea5e9",
    "contraction": "#f97316",
    "churn": "#dc2626",
    "end": "#475569",
}
LIFECYCLE = {"new": "#16a34a", "returning": "#2563eb", "resurrecting": "#8b5cf6", "dormant": "#9ca3af"}
VERDICT = {  # unit economics: where to hit the accelerator
    "accelerate": STATUS["on"],
    "fix payback": STATUS["near"],
    "fix retention": "#d97706",
    "too early": STATUS["n/a"],
    "rethink": STATUS["off"],
    "no data": "#d1d5db",
}
BAND = {"red": "#dc2626", "yellow": "#f59e0b", "green": "#16a34a"}  # health bands
STAGE = {  # customer lifecycle stages
    "onboarding": "#0ea5e9",
    "training": "#8b5cf6",
    "adopting": "#2563eb",
    "extending": "#16a34a",
    "renewal": "#f59e0b",
}
SENTIMENT = {"positive": "#16a34a", "neutral": "#94a3b8", "negative": "#dc2626"}
OUTCOME = {"churned": "#dc2626", "contracted": "#f97316"}  # the health backtest
OTHER = "#94a3b8"  # the rest, beside a highlighted category
SURFACE = {  # backgrounds of tiles, callouts and links in the workbook's HTML
    "tile": "#f8fafc",
    "north_star": "#eef2ff",
    "error": "#fef2f2",
    "alert": "#fffbeb",
    "total": "#f1f5f9",
    "link": "#eff6ff",
}
PLAN_STATUS = {  # plan vs actual and the pace of dated goals, in the colours of target statuses
    "ahead": STATUS["on"],
    "on plan": STATUS["on"],
    "behind": STATUS["off"],
    "above": STATUS["n/a"],
    "below": STATUS["n/a"],
    "reached": STATUS["on"],
    "on pace": STATUS["on"],
    "missed": STATUS["off"],
    "n/a": STATUS["n/a"],
}
HEAT = "blues"


def scale(mapping: dict[str, str]) -> alt.Scale:
    """A colour scale that pins each category to its meaning-bearing colour."""
    return alt.Scale(domain=list(mapping), range=list(mapping.values()))


@alt.theme.register("saaskpi", enable=True)
def saaskpi_theme() -> alt.theme.ThemeConfig:
    return {
        "config": {
            "font": FONT,
            "background": "white",
            "view": {"stroke": None, "continuousWidth": 640, "continuousHeight": 260},
            "title": {"fontSize": 15, "fontWeight": 600, "color": INK, "anchor": "start", "subtitleColor": MUTED},
            "axis": {
                "labelColor": MUTED,
                "titleColor": MUTED,
                "gridColor": GRID,
                "domainColor": GRID,
                "tickColor": GRID,
                "labelFontSize": 11,
                "titleFontSize": 11,
                "titleFontWeight": 500,
            },
            "legend": {
                "labelColor": INK,
                "titleColor": MUTED,
                "labelFontSize": 11,
                "titleFontSize": 11,
                "orient": "top",
            },
            "range": {"category": PALETTE, "heatmap": {"scheme": HEAT}, "ramp": {"scheme": HEAT}},
            "line": {"strokeWidth": 2.2},
            "point": {"filled": True, "size": 36},
            # no "bar": {"cornerRadiusEnd": ...}: in JupyterChart (canvas) a bar without an explicit height that
            # follows one with a height drew from the wrong baseline (floating bars); static SVG was unaffected
            "style": {
                "target": {"strokeDash": [6, 4], "stroke": MUTED, "color": MUTED, "strokeWidth": 1.6},
                "plan": {"strokeDash": [2, 3], "stroke": PALETTE[1], "color": PALETTE[1], "strokeWidth": 2},
                "flag": {"shape": "triangle-up", "color": STATUS["near"], "size": 70},
                "band": {"opacity": 0.18},
                "cell-label": {"fontSize": 9, "color": INK},
            },
        }
    }
