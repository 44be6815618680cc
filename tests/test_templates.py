"""The package's HTML templates (lib/saaskpi/templates): shipped as package data, autoescaped, and the month's index
and the PDF cover laid out from literal runs and summaries (no notebook is executed)."""

from __future__ import annotations

import json
import tomllib
from fnmatch import fnmatch

from saaskpi import paths
from saaskpi.delivery import render
from saaskpi.delivery.content import Kpi, MonthSummary, SegmentSummary
from saaskpi.snapshot import write_month_index
from saaskpi.templates import environment
from saaskpi.theme import FONT

TEMPLATES = paths.ROOT / "lib" / "saaskpi" / "templates"


def test_every_template_is_package_data_and_loads():
    patterns = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    names = sorted(p.name for p in TEMPLATES.glob("*.j2"))
    assert names == sorted(environment().list_templates(extensions=["j2"]))
    assert all(environment().get_template(n) for n in names)  # each compiles
    assert all(any(fnmatch(f"templates/{n}", p) for p in patterns["saaskpi"]) for n in names)
    assert environment().autoescape is True


def _run(reports, run_id: str, time: str, error: str = "") -> None:
    folder = reports / "2026-10" / "runs" / run_id
    folder.mkdir(parents=True)
    results = [
        {"notebook": "00_executive_summary", "segment": "smb", "error": "", "cell": None},
        {"notebook": "02_cohort_retention", "segment": "smb", "error": error, "cell": 3 if error else None},
    ]
    manifest = {
        "run_id": run_id,
        "run_time": time,
        "month": "2026-10",
        "engine": "polars",
        "code_version": "abc1234",
        "data_fingerprint": "0123456789abcdef",
        "source": "data/demo",
        "segments": ["smb"],
        "notebooks": [r["notebook"] for r in results],
        "results": results,
    }
    (folder / "run.json").write_text(json.dumps(manifest))


def test_month_index_links_the_latest_good_run_and_escapes_errors(tmp_path):
    _run(tmp_path, "20261101T000000Z-aaaaaa", "2026-11-01T00:00:00+00:00")
    _run(tmp_path, "20261102T000000Z-bbbbbb", "2026-11-02T00:00:00+00:00", error="ValueError: <b>boom</b> & co")
    page = write_month_index(tmp_path, "2026-10").read_text()
    assert "<h1>SaaS KPIs, October 2026</h1>" in page and f"font-family:{FONT};" in page  # the font unescaped in CSS
    assert '<a href="runs/20261102T000000Z-bbbbbb/smb/00_executive_summary.html">00_executive_summary</a>' in page
    # page 02 failed in the latest run: the link is the first run's, marked
    assert (
        '<a href="runs/20261101T000000Z-aaaaaa/smb/02_cohort_retention.html">02_cohort_retention</a> '
        '<span class="err">(a later run failed)</span>'
    ) in page
    assert "02_cohort_retention [smb, cell 3]: ValueError: &lt;b&gt;boom&lt;/b&gt; &amp; co" in page
    assert "<b>boom</b>" not in page
    latest, first = page.index("20261102T000000Z-bbbbbb (latest)"), page.index("20261101T000000Z-aaaaaa (first)")
    assert latest < first  # latest run first
    assert "1 of 2 pages (smb)" in page and "2 of 2 pages (smb)" in page
    assert page.count("<td>–</td>") > 0  # no metrics store: every KPI cell empty


def test_cover_and_email_escape_what_they_show(tmp_path):
    seg = SegmentSummary(
        "smb", "SMB <i>&</i>", [Kpi("mrr", "MRR", "currency", 4900.0, 697.0, "on")], alerts=["Churn <up>"]
    )
    summary = MonthSummary("2026-10", [seg], ["r1"])
    cover = render.cover_html(summary, seg, "https://kpi.example.com/r?a=1&b=2")
    assert "SaaS KPIs, October 2026: SMB &lt;i&gt;&amp;&lt;/i&gt;" in cover and "<i>" not in cover
    assert "<li>Churn &lt;up&gt;</li>" in cover and "Reports: https://kpi.example.com/r?a=1&amp;b=2" in cover
    assert "<h2" not in cover and "font-size:11px" in cover  # compact: no segment heading, small type
    email = render.email_html(summary, "", attached=True)
    assert email.startswith("<!doctype html>") and "<h2 style" in email and "font-size:13px" in email
    assert "The executive summary is attached as PDF." in email and "The reports:" not in email
    report = tmp_path / "report.html"
    report.write_text("<html><head></head><body><p>report</p></body></html>")
    page = render.printable(report, cover)  # the print style in the head, the cover first in the body
    assert page.index('<style id="saaskpi-print">') < page.index("</head>") < page.index(cover) < page.index("report")
