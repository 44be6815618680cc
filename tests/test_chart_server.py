"""The snapshot's chart server (chart_server.py): the SVG a kernel gets from it is the one vl-convert draws in the
kernel; vl-convert's error comes back as an error; without the server the kernel draws the chart itself."""

from __future__ import annotations

import os

import altair as alt
import pandas as pd
import pytest

from saaskpi import chart_server, widgets

CHART = (
    alt.Chart(pd.DataFrame({"month": ["2026-01", "2026-02"], "mrr": [100.0, 120.0]}))
    .mark_line()
    .encode(x="month:O", y="mrr:Q")
)


def test_charts_drawn_by_the_server_are_the_ones_drawn_here():
    here = widgets.chart_svg(CHART)  # no server: drawn in this process
    with chart_server.charts_drawn_by_one_process() as path:
        assert path is not None and os.environ[chart_server.CHART_SOCKET] == path
        spec = CHART.to_dict()
        assert chart_server.drawn_by_server(spec, "6_4") is not None
        assert widgets.chart_svg(CHART) == here
        with pytest.raises(chart_server.ChartError):
            chart_server.drawn_by_server({"mark": "no such mark"}, "6_4")
    assert chart_server.CHART_SOCKET not in os.environ and not os.path.exists(path)


def test_without_the_server_the_chart_is_drawn_here(monkeypatch, tmp_path):
    monkeypatch.setenv(chart_server.CHART_SOCKET, str(tmp_path / "gone.sock"))
    assert chart_server.drawn_by_server(CHART.to_dict(), "6_4") is None
    assert widgets.chart_svg(CHART).startswith("<svg")


def test_off_starts_no_server(monkeypatch):
    monkeypatch.setenv(chart_server.CHART_SOCKET, "off")
    with chart_server.charts_drawn_by_one_process() as path:
        assert path is None and os.environ[chart_server.CHART_SOCKET] == "off"
        assert chart_server.drawn_by_server(CHART.to_dict(), "6_4") is None
