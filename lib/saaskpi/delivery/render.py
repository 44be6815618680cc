"""The message in its three forms (HTML e-mail, plain text, Slack Block Kit) and the PDF of a report (headless
Chromium printing the executed HTML report, with a cover of the headline KPIs and print CSS)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from jinja2 import Environment
from markupsafe import Markup

from .. import paths
from ..errors import SaasKpiError
from ..theme import FONT, INK, MUTED, STATUS
from .content import MonthSummary, SegmentSummary

CHROMIUM_ENV = "SAASKPI_CHROMIUM"  # another Chromium binary (default: Debian's `chromium` on the PATH)
SLACK_TEXT_LIMIT = 3000  # characters in one Block Kit text object

_jinja = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

KPI_TABLE = _jinja.from_string("""
{% for seg in summary.segments %}
{% if headings %}<h2 style="font-size:17px;margin:20px 0 6px">{{ seg.label }}</h2>{% endif %}
<table style="border-collapse:collapse;font-size:{{ size }}px">
<tr style="color:{{ muted }};text-align:left"><th style="padding:{{ pad }}px 10px {{ pad }}px 0">KPI</th>
<th style="padding:{{ pad }}px 10px">value</th><th style="padding:{{ pad }}px 10px">change</th>
<th style="padding:{{ pad }}px 10px">target</th></tr>
{% for k in seg.kpis %}
<tr style="border-top:1px solid #e5e7eb"><td style="padding:{{ pad }}px 10px {{ pad }}px 0">{{ k.label }}</td>
<td style="padding:{{ pad }}px 10px"><b>{{ k.value_text }}</b></td><td style="padding:{{ pad }}px 10px">{{ k.change_text }}</td>
<td style="padding:{{ pad }}px 10px;color:{{ status.get(k.status, status['n/a']) }}">{{ '' if k.status == 'n/a' else k.status }}</td></tr>
{% endfor %}
</table>
{% if seg.alerts %}
<p style="margin:10px 0 4px"><b>Alerts</b></p>
<ul style="margin:0;padding-left:18px">{% for a in seg.alerts %}<li>{{ a }}</li>{% endfor %}</ul>
{% elif seg.alerts is not none %}
<p style="color:{{ muted }};margin:10px 0">No alert fires this month.</p>
{% endif %}
{% endfor %}
""")

EMAIL = _jinja.from_string("""<!doctype html><html><body style="font-family:{{ font }};color:{{ ink }};max-width:760px">
<h1 style="font-size:21px">{{ summary.title }}</h1>
<p style="color:{{ muted }}">North-star and core KPIs of each segment's latest run; change against the previous
month, status against each metric's target.{% if link %} The reports:
<a href="{{ link }}">{{ link }}</a>.{% endif %}{% if attached %} The executive summary is attached as PDF.{% endif %}</p>
{{ table }}
<p style="color:{{ muted }};font-size:11px;margin-top:24px">Run(s) {{ summary.run_ids | join(', ') }}.</p>
</body></html>""")


def report_link(base: str, summary: MonthSummary, page: str = "index.html") -> str:
    return f"{base.rstrip('/')}/{summary.month}/{page}" if base else ""


def kpi_table(summary: MonthSummary, compact: bool = False) -> Markup:
    """Each segment's KPIs and alerts as an HTML table (inline styles: mail clients drop style sheets); compact
    (no segment heading, small type) fits the PDF's cover page."""
    return Markup(
        KPI_TABLE.render(
            summary=summary,
            muted=MUTED,
            status=STATUS,
            headings=not compact,
            size=11 if compact else 13,
            pad=2 if compact else 4,
        )
    )


def subject(summary: MonthSummary) -> str:
    """`SaaS KPIs, October 2026: NRR (trailing 12 months) 104.2% (all customers)`: the month and its lead KPI."""
    first = summary.segments[0]
    lead = f": {first.kpis[0].label} {first.kpis[0].value_text} ({first.label})" if first.kpis else ""
    return summary.title + lead


def email_html(summary: MonthSummary, base_url: str, attached: bool) -> str:
    return EMAIL.render(
        summary=summary,
        table=kpi_table(summary),
        link=report_link(base_url, summary),
        attached=attached,
        font=FONT,
        ink=INK,
        muted=MUTED,
    )


def _segment_lines(seg: SegmentSummary) -> list[str]:
    lines = [
        f"{k.label}: {k.value_text} ({k.change_text}{'' if k.status == 'n/a' else ', ' + k.status})" for k in seg.kpis
    ]
    if seg.alerts:
        lines += ["Alerts:"] + [f"- {a}" for a in seg.alerts]
    elif seg.alerts is not None:
        lines.append("No alert fires this month.")
    return lines


def plain_text(summary: MonthSummary, base_url: str) -> str:
    parts = [summary.title, "", "Value (change against the previous month, target status)."]
    for seg in summary.segments:
        parts += ["", seg.label, "-" * len(seg.label), *_segment_lines(seg)]
    link = report_link(base_url, summary)
    if link:
        parts += ["", f"The reports: {link}"]
    return "\n".join(parts) + "\n"


def slack_blocks(summary: MonthSummary, base_url: str) -> dict:
    """A Block Kit message: a header, one section per segment (mrkdwn, within Slack's text limit), the link."""
    blocks: list[dict[str, object]] = [{"type": "header", "text": {"type": "plain_text", "text": summary.title}}]
    for seg in summary.segments:
        lines = [f"*{seg.label}*"]
        for k in seg.kpis:
            status = "" if k.status == "n/a" else f" · _{k.status}_"
            lines.append(f"{_mrkdwn(k.label)}: *{k.value_text}* ({k.change_text}){status}")
        if seg.alerts:
            lines += [":warning: " + _mrkdwn(a) for a in seg.alerts]
        text = "\n".join(lines)
        if len(text) > SLACK_TEXT_LIMIT:
            text = text[: SLACK_TEXT_LIMIT - 1] + "…"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    link = report_link(base_url, summary)
    if link:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|The month's reports>"}]})
    return {"text": subject(summary), "blocks": blocks}  # `text`: the notification's fallback


def _mrkdwn(text: str) -> str:
    """Slack's three escaped characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------- PDF
PRINT_CSS = """<style id="saaskpi-print">
@page { size: A4 landscape; margin: 12mm 10mm; }
@media print {
  html, body { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { margin: 0 !important; padding: 0 !important; }
  .saaskpi-cover { break-after: page; }
  h1, h2, h3 { break-after: avoid; }
  .jp-Cell:has(h2) ~ .jp-Cell h2 { break-before: page; }
  .jp-OutputArea-output table, svg, img, tr, .kpi-grid, .saaskpi-kpi, .saaskpi-alert, .saaskpi-group, .saaskpi-note, .jp-OutputArea-child
    { break-inside: avoid; page-break-inside: avoid; }
  svg, img { max-width: 100% !important; height: auto; }
  .jp-Notebook, .jp-Cell, .jp-OutputArea-output, main { padding: 0 !important; margin-left: 0 !important; }
  .jp-OutputPrompt, .jp-InputPrompt { display: none !important; }
}
</style>"""


def cover_html(summary: MonthSummary, segment: SegmentSummary, link: str) -> str:
    one = MonthSummary(summary.month, [segment], summary.run_ids)
    see = f'<p style="color:{MUTED}">Reports: {link}</p>' if link else ""
    return (
        f'<section class="saaskpi-cover" style="font-family:{FONT};color:{INK};padding:8px">'
        f'<h1 style="font-size:22px">{summary.title}: {segment.label}</h1>'
        f'<p style="color:{MUTED}">Headline KPIs of the month\'s latest run; change against the previous month, '
        f"status against target. The report follows.</p>{kpi_table(one, compact=True)}{see}</section>"
    )


def printable(report: Path, cover: str) -> str:
    """The report's HTML with the print CSS and the cover page inserted (the report file is not changed)."""
    page = report.read_text()
    page = page.replace("</head>", PRINT_CSS + "</head>", 1) if "</head>" in page else PRINT_CSS + page
    if "<body" in page:
        start = page.index(">", page.index("<body")) + 1
        return page[:start] + cover + page[start:]
    return cover + page


def chromium() -> str:
    """Debian's Chromium (or $SAASKPI_CHROMIUM); its absence is a DeliveryError saying how to install it."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not Path(path).exists():
        raise DeliveryError(
            "The PDF needs headless Chromium, which is not installed: `apt-get install chromium` "
            f"(Debian's package), or point {CHROMIUM_ENV} at a Chromium binary."
        )
    return path


def print_pdf(page_html: str, out: Path, timeout: float = 120) -> Path:
    """`page_html` printed to `out` by headless Chromium (charts are static SVG in the reports, so nothing has
    to run first; a short virtual-time budget lets fonts and layout settle). Written atomically."""
    binary = chromium()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="saaskpi-pdf-") as tmp:
        source, target = Path(tmp) / "page.html", Path(tmp) / "page.pdf"
        source.write_text(page_html)
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp}/profile",
            "--no-pdf-header-footer",
            "--virtual-time-budget=2000",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeliveryError(f"Chromium did not print the PDF within {timeout:g} s.") from None
        if not target.exists() or target.stat().st_size == 0 or not target.read_bytes().startswith(b"%PDF"):
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise DeliveryError(f"Chromium printed no PDF (exit {done.returncode}): {last}")
        paths.atomic_write(out, target.read_bytes())
    return out


class DeliveryError(SaasKpiError):
    """A message could not be prepared or sent (the reason is in the message)."""
