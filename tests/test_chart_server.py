"""The snapshot's chart server (chart_server.py): the SVG a kernel gets from it is the one vl-convert draws in the
kernel; vl-convert's error comes back as an error; without the server the kernel draws the chart itself."""

from __future__ import annotations

import os
import re

import altair as alt
import pandas as pd
import pytest

from saaskpi import chart_server, widgets

CHART = (
    alt.Chart(pd.DataFrame({"month": ["2026-01", "2026-02"], "mrr": [100.0, 120.0]}))
    .mark_line()
    .encode(x="month:O", y="mrr:Q")
)


def test_charts_drawn_by_the_server_are_the_ones_drawn_here(monkeypatch):
    monkeypatch.setenv("SAASKPI_CACHE_DIR", "off")  # every chart drawn, none read from the results store
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
    monkeypatch.setenv("SAASKPI_CACHE_DIR", "off")
    monkeypatch.setenv(chart_server.CHART_SOCKET, str(tmp_path / "gone.sock"))
    assert chart_server.drawn_by_server(CHART.to_dict(), "6_4") is None
    assert widgets.chart_svg(CHART).startswith("<svg")


def test_off_starts_no_server(monkeypatch):
    monkeypatch.setenv(chart_server.CHART_SOCKET, "off")
    with chart_server.charts_drawn_by_one_process() as path:
        assert path is None and os.environ[chart_server.CHART_SOCKET] == "off"
        assert chart_server.drawn_by_server(CHART.to_dict(), "6_4") is None


def test_a_chart_drawn_once_is_read_back_from_the_results_store(monkeypatch, tmp_path):
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    drawn = []
    real = chart_server.draw
    monkeypatch.setattr(chart_server, "draw", lambda spec, version: drawn.append(spec) or real(spec, version))
    first = widgets.chart_svg(CHART)
    assert widgets.chart_svg(CHART) == first and len(drawn) == 1  # the same spec: read, not drawn
    assert len(list((tmp_path / "cache" / "results").glob("chart-*.svg"))) == 1
    other = CHART.properties(data=pd.DataFrame({"month": ["2026-01", "2026-02"], "mrr": [100.0, 130.0]}))
    assert widgets.chart_svg(other) != first and len(drawn) == 2  # other data: another chart
    monkeypatch.setattr(chart_server, "draw", lambda spec, version: pytest.fail("drawn again"))
    assert widgets.chart_svg(CHART) == first
    monkeypatch.setenv("SAASKPI_CACHE_DIR", "off")
    with pytest.raises(pytest.fail.Exception):  # the cache off: every chart drawn
        widgets.chart_svg(CHART)


def test_stored_charts_keep_ids_of_their_own(monkeypatch, tmp_path):
    """vl-convert numbers a gradient legend per process: two charts drawn by two kernels and shown on one page would
    both define `gradient_0`, and the page would paint the second with the first's colours."""
    monkeypatch.setenv("SAASKPI_CACHE_DIR", str(tmp_path / "cache"))
    real = chart_server.draw
    # each drawn as by a fresh process (the first gradient it draws is gradient_0)
    monkeypatch.setattr(chart_server, "draw", lambda *a: re.sub(r"gradient_\d+", "gradient_0", real(*a)))
    heat = alt.Chart(pd.DataFrame({"x": ["a", "b"], "v": [1.0, 2.0]})).mark_rect().encode(x="x:N", color="v:Q")
    svgs = [
        widgets.chart_svg(heat.encode(color=alt.Color("v:Q", scale=alt.Scale(scheme=scheme))))
        for scheme in ("blues", "reds")
    ]
    ids = [re.findall(r'id="([^"]*gradient[^"]*)"', svg) for svg in svgs]
    assert all(len(i) == 1 for i in ids) and ids[0] != ids[1], ids
    for svg, (name,) in zip(svgs, ids, strict=True):
        assert f"url(#{name})" in svg
