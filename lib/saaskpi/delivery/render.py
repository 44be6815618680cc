"""The message in its three forms (HTML e-mail, plain text, Slack Block Kit) and the PDF of a report (headless
Chromium printing the executed HTML report, with a cover of the headline KPIs and print CSS)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import paths
from ..errors import SaasKpiError
from ..templates import render
from .content import MonthSummary, SegmentSummary

CHROMIUM_ENV = "SAASKPI_CHROMIUM"  # another Chromium binary (default: Debian's `chromium` on the PATH)
SLACK_TEXT_LIMIT = 3000  # characters in one Block Kit text object


def report_link(base: str, summary: MonthSummary, page: str = "index.html") -> str:
    return f"{base.rstrip('/')}/{summary.month}/{page}" if base else ""


def kpi_table(summary: MonthSummary, compact: bool = False) -> str:
    """Each segment's KPIs and alerts as an HTML table (inline styles: mail clients drop style sheets); compact
    (no segment heading, small type) fits the PDF's cover page."""
    return render("kpi_table.html.j2", summary=summary, compact=compact)


def subject(summary: MonthSummary) -> str:
    """`SaaS KPIs, October 2026: NRR (trailing 12 months) 104.2% (all customers)`: the month and its lead KPI."""
    first = summary.segments[0]
    lead = f": {first.kpis[0].label} {first.kpis[0].value_text} ({first.label})" if first.kpis else ""
    return summary.title + lead


def email_html(summary: MonthSummary, base_url: str, attached: bool) -> str:
    return render(
        "email.html.j2", summary=summary, compact=False, link=report_link(base_url, summary), attached=attached
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
def cover_html(summary: MonthSummary, segment: SegmentSummary, link: str) -> str:
    """The PDF's first page: the segment's headline KPIs (compact) and the link to the reports."""
    one = MonthSummary(summary.month, [segment], summary.run_ids)
    return render("cover.html.j2", summary=one, segment=segment, compact=True, link=link)


def printable(report: Path, cover: str) -> str:
    """The report's HTML with the print CSS and the cover page inserted (the report file is not changed)."""
    page, style = report.read_text(), render("print_style.html.j2")
    page = page.replace("</head>", style + "</head>", 1) if "</head>" in page else style + page
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
