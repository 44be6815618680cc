"""Delivering the month (issue 24): the headline KPIs of the index, e-mail through a real SMTP server (aiosmtpd on
127.0.0.1) with the executive summary as a PDF printed by headless Chromium, Slack through a local HTTP endpoint
standing in for the incoming webhook; bounded retries, clear failures, the ledger, and the snapshot untouched.

The reports folder is literal: two runs of 2026-10 (the later one is what the index shows) and a metrics store
whose values are written below, so every expected text is computed by hand."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import os
import shutil
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import run

from saaskpi.delivery import after_snapshot, ledger, send_month
from saaskpi.delivery.content import headline_metrics, read_alerts, read_summary
from saaskpi.delivery.settings import RecipientList, load
from saaskpi.errors import ParameterError
from saaskpi.snapshot import METRIC_COLUMNS, append_rows

MONTH = "2026-10"
OLD, NEW = "20261101T060000Z-aaaaaa", "20261102T060000Z-bbbbbb"
SECRET_ENV = {"H24_SMTP_PASSWORD": "not-used-on-plain", "H24_SLACK_URL": ""}  # the URL is set per server
ALERT = "Signups rise while fewer new users activate: onboarding is not keeping up & needs a look."
# a spike alert a page displayed (spikes.py): the message lists it after the executive summary's alerts
SPIKE = "Tickets opened spike: 412 in the week of 2026-10-19, above its usual range 204 to 380, median 292"

# (segment, metric, label, unit, September, October, October status) of the later run NEW
VALUES = [
    ("all", "net_revenue_retention", "NRR (trailing 12 months)", "fraction", 1.030, 1.042, "on"),
    ("all", "monthly_recurring_revenue", "MRR", "currency", 120_000.0, 125_000.0, "near"),
    ("all", "customer_churn_rate", "Customer churn rate", "fraction", 0.025, 0.021, "off"),
    ("smb", "net_revenue_retention", "NRR (trailing 12 months)", "fraction", 0.990, 0.980, "off"),
]
# what the message must say, by hand:
#   all NRR 1.042 -> 104.2%, change 1.042 - 1.030 = +0.012 -> +1.2 pts, on
#   all MRR 125,000 -> $125.0k, change 125,000 - 120,000 -> +$5.0k, near
#   all churn 0.021 -> 2.1%, change 0.021 - 0.025 = -0.004 -> −0.4 pts, off
#   smb NRR 0.980 -> 98.0%, change 0.980 - 0.990 = -0.010 -> −1.0 pts, off
# every other headline metric of `all` at 0.5 in both months (so the cover holds a real-length table: 25 rows)
FILLER = [
    ("all", m, m.replace("_", " "), "ratio", 0.5, 0.5, "n/a")
    for m in headline_metrics()
    if m not in {v[1] for v in VALUES}
]
HEADLINE = ["104.2%", "+1.2 pts", "$125.0k", "+$5.0k", "2.1%", "−0.4 pts", "98.0%", "−1.0 pts"]

REPORT = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>00_executive_summary</title>
<style>body{{font-family:sans-serif}}</style></head><body><main><div class="jp-Notebook">
<div class="jp-Cell"><h2>North star</h2><div class="saaskpi-kpi">NRR {nrr}</div></div>
<div class="jp-Cell"><h2>Revenue</h2><svg width="600" height="200"><rect x="10" y="10" width="{bar}" height="150"
fill="#2563eb"/></svg></div></div></main></body></html>"""


def write_run(reports: Path, run_id: str, run_time: str, rows: list[tuple], alerts: list[str]) -> None:
    folder = reports / MONTH / "runs" / run_id
    results = []
    for seg in sorted({r[0] for r in rows}):
        (folder / seg).mkdir(parents=True)
        nrr = next(r[5] for r in rows if r[0] == seg and r[1] == "net_revenue_retention")
        (folder / seg / "00_executive_summary.html").write_text(REPORT.format(nrr=nrr, bar=int(nrr * 400)))
        callouts = "".join(
            f'<div class="saaskpi-alert"><b>{a.replace("&", "&amp;")}</b><br><span class="sub">moves</span></div>'
            for a in alerts
        )
        if alerts:
            callouts += (
                f'<div class="saaskpi-alert saaskpi-spike"><b>{SPIKE}</b><br><span class="sub">weeks</span></div>'
            )
        nb = {
            "cells": [
                {"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {"text/html": [callouts]}}]}
            ]
        }
        (folder / seg / "00_executive_summary.ipynb").write_text(json.dumps(nb))
        results.append({"notebook": "00_executive_summary", "segment": seg, "error": "", "cell": None})
    info = {
        "run_id": run_id,
        "run_time": run_time,
        "month": MONTH,
        "engine": "polars",
        "code_version": "abc1234",
        "data_fingerprint": "f" * 64,
    }
    (folder / "run.json").write_text(
        json.dumps(
            {
                **info,
                "source": "data/x",
                "segments": ["all", "smb"],
                "notebooks": ["00_executive_summary"],
                "results": results,
            }
        )
    )
    records = [
        {
            **info,
            "snapshot": MONTH,
            "month": month,
            "segment": seg,
            "notebook": "00_executive_summary",
            "metric": metric,
            "label": label,
            "value": value,
            "unit": unit,
            "n": 100.0,
            "target": None,
            "immature": False,
            "status": status if month == MONTH else "n/a",
            "convention": "",
        }
        for seg, metric, label, unit, sep, octo, status in rows
        for month, value in (("2026-09", sep), (MONTH, octo))
    ]
    append_rows(reports / "metrics.parquet", [{k: r[k] for k in METRIC_COLUMNS} for r in records])


def build_reports(reports: Path) -> Path:
    stale = [(seg, metric, label, unit, sep, octo * 3, "off") for seg, metric, label, unit, sep, octo, _ in VALUES]
    write_run(reports, OLD, "2026-11-01T06:00:00.000000+00:00", stale, [])  # earlier run: not what the index shows
    write_run(reports, NEW, "2026-11-02T06:00:00.000000+00:00", VALUES + FILLER, [ALERT])
    (reports / MONTH / "index.html").write_text("<html>the index</html>")
    return reports


def tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `folder` (what a snapshot wrote)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def snapshot_files(reports: Path) -> dict[str, str]:
    return {k: v for k, v in tree(reports).items() if "delivery" not in k}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the local servers
class Mailbox:
    """An aiosmtpd handler keeping every message; `answer` is what it says to DATA."""

    def __init__(self, answer: str = "250 OK"):
        self.answer, self.messages, self.tries = answer, [], 0

    async def handle_DATA(self, server, session, envelope):
        self.tries += 1
        if self.answer.startswith("250"):
            self.messages.append(
                (envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default))
            )
        return self.answer


@pytest.fixture
def smtp_server():
    """Start a real SMTP server on 127.0.0.1: `start(answer)` -> (mailbox, port)."""
    from aiosmtpd.controller import Controller

    started = []

    def start(answer: str = "250 OK"):
        box, port = Mailbox(answer), free_port()
        controller = Controller(box, hostname="127.0.0.1", port=port)
        controller.start()
        started.append(controller)
        return box, port

    yield start
    for c in started:
        c.stop()


class Webhook(ThreadingHTTPServer):
    def __init__(self, status: int = 200):
        self.status, self.posts = status, []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                self.posts.append(json.loads(body))
                reply = b"ok" if self.status == 200 else b"no_service"
                handler.send_response(self.status)
                handler.send_header("Content-Length", str(len(reply)))
                handler.end_headers()
                handler.wfile.write(reply)

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/T000/B000/XXXX"


@pytest.fixture
def webhook():
    started = []

    def start(status: int = 200) -> Webhook:
        started.append(Webhook(status))
        return started[-1]

    yield start
    for w in started:
        w.shutdown()
        w.server_close()


def settings_file(folder: Path, smtp_port: int | None, lists: str, attempts: int = 3) -> Path:
    smtp = (
        (
            f"smtp: {{host: 127.0.0.1, port: {smtp_port}, security: plain, sender: KPI bot <kpi@example.com>, "
            "timeout_seconds: 5}\n"
        )
        if smtp_port
        else ""
    )
    path = folder / "delivery.yaml"
    path.write_text(
        f"reports_url: https://kpi.example.com/reports\nattempts: {attempts}\nbackoff_seconds: 0\n{smtp}lists:\n{lists}"
    )
    return path


EXECUTIVES = """  executives:
    enabled: true
    segments: [all, smb]
    email: [ceo@example.com, cfo@example.com]
    slack_webhook_env: H24_SLACK_URL
"""
MAIL_ONLY = """  board:
    enabled: true
    segments: [all]
    email: [board@example.com]
"""
SLACK_ONLY = """  channel:
    enabled: true
    segments: [all]
    slack_webhook_env: H24_SLACK_URL
"""


def chromium_or_skip() -> None:
    """Debian's Chromium, installed like the browser tests install it; skipped where that is impossible locally
    (never in CI)."""
    sys.path.insert(0, str(Path(__file__).parent / "browser"))
    from chromium import ensure_chromium

    try:
        ensure_chromium()
    except Exception as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"headless Chromium is not available here: {err}")


# --------------------------------------------------------------------------- one real delivery, shared
@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    """Both channels of a list sent once (the PDFs printed once): what the servers received."""
    from aiosmtpd.controller import Controller

    chromium_or_skip()
    home = tmp_path_factory.mktemp("delivered")
    reports = build_reports(home / "reports")
    before = snapshot_files(reports)
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    hook = Webhook()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("H24_SLACK_URL", hook.url)
            outcomes = send_month(MONTH, reports, settings_file=settings_file(home, port, EXECUTIVES))
    finally:
        controller.stop()
        hook.shutdown()
        hook.server_close()
    return {"reports": reports, "before": before, "outcomes": outcomes, "mail": box.messages, "posts": hook.posts}


@pytest.fixture
def reports(delivered, tmp_path):
    """A fresh copy of the literal reports with the PDFs already printed (resends reuse them) and no ledger."""
    copy = shutil.copytree(delivered["reports"], tmp_path / "reports")
    (copy / "delivery.json").unlink()
    return copy


def test_summary_is_the_index_headline_of_the_latest_run(tmp_path):
    reports = build_reports(tmp_path / "reports")
    summary = read_summary(reports, MONTH, RecipientList(segments=["all", "smb"], email=["a@example.com"]))
    kpis = {(s.segment, k.metric): (k.value_text, k.change_text, k.status) for s in summary.segments for k in s.kpis}
    assert len(summary.segments[0].kpis) == len(headline_metrics()) == 25 and len(summary.segments[1].kpis) == 1
    assert {k: v for k, v in kpis.items() if k[1] in {v[1] for v in VALUES}} == {
        ("all", "net_revenue_retention"): ("104.2%", "+1.2 pts", "on"),
        ("all", "monthly_recurring_revenue"): ("$125.0k", "+$5.0k", "near"),
        ("all", "customer_churn_rate"): ("2.1%", "−0.4 pts", "off"),
        ("smb", "net_revenue_retention"): ("98.0%", "−1.0 pts", "off"),
    }
    assert summary.segments[0].kpis[0].metric == "net_revenue_retention"  # the north star leads
    assert summary.segments[0].alerts == [ALERT, SPIKE]  # as the latest run's pages displayed them
    assert summary.segments[0].pages["00_executive_summary"].run_id == NEW
    assert summary.run_ids == [OLD, NEW]
    only = read_summary(
        reports, MONTH, RecipientList(segments=["all"], metrics=["monthly_recurring_revenue"], email=["a@example.com"])
    )
    assert [k.metric for k in only.segments[0].kpis] == ["monthly_recurring_revenue"]


def test_alerts_read_from_the_executed_notebook(tmp_path):
    assert read_alerts(tmp_path / "missing.ipynb") is None
    nb = tmp_path / "x.ipynb"
    nb.write_text(
        json.dumps(
            {
                "cells": [
                    {"outputs": [{"data": {"text/html": '<div class="saaskpi-note">No inter-relational alert</div>'}}]}
                ]
            }
        )
    )
    assert read_alerts(nb) == []


def test_email_arrives_with_the_kpis_subject_and_pdf(delivered):
    assert [(o.recipients, o.channel, o.status, o.tries) for o in delivered["outcomes"]] == [
        ("executives", "email", "sent", 1),
        ("executives", "slack", "sent", 1),
    ]
    [(to, msg)] = delivered["mail"]
    assert to == ["ceo@example.com", "cfo@example.com"]
    assert msg["Subject"] == "SaaS KPIs, October 2026: NRR (trailing 12 months) 104.2% (All customers)"
    assert msg["From"] == "KPI bot <kpi@example.com>"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for value in HEADLINE:
        assert value in text and value in html
    assert "Customer churn rate: 2.1% (−0.4 pts, off)" in text
    assert ALERT in text and ALERT.replace("&", "&amp;") in html
    assert SPIKE in text and SPIKE in html
    assert "https://kpi.example.com/reports/2026-10/index.html" in text
    pdfs = [part for part in msg.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert [p.get_filename() for p in pdfs] == [
        "2026-10-all-00_executive_summary.pdf",
        "2026-10-smb-00_executive_summary.pdf",
    ]


def test_pdf_is_valid_and_holds_the_headline_values(delivered):
    from pypdf import PdfReader

    [(_, msg)] = delivered["mail"]
    first = next(msg.iter_attachments()).get_content()
    assert first.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(first))
    assert len(reader.pages) >= 2  # the cover (headline KPIs) breaks to its own page before the report
    cover = reader.pages[0].extract_text()
    for value in ("104.2%", "+1.2 pts", "$125.0k", "+$5.0k", "2.1%", ALERT[:40]):
        assert value in cover
    assert "98.0%" not in cover and cover.count("0.5x") == 22  # all 25 KPIs on the cover; smb's in the smb PDF
    report = " ".join(p.extract_text() for p in reader.pages[1:])
    assert "North star" in report and "NRR 1.042" in report


def test_slack_gets_block_kit_with_the_same_kpis(delivered):
    [post] = delivered["posts"]
    assert post["text"].startswith("SaaS KPIs, October 2026")
    assert post["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "SaaS KPIs, October 2026"}}
    sections = [b["text"]["text"] for b in post["blocks"] if b["type"] == "section"]
    assert len(sections) == 2 and sections[0].startswith("*All customers*")
    assert "MRR: *$125.0k* (+$5.0k) · _near_" in sections[0]
    assert ALERT.replace("&", "&amp;") in sections[0]  # Slack's escaping
    assert "NRR (trailing 12 months): *98.0%* (−1.0 pts) · _off_" in sections[1]
    assert "https://kpi.example.com/reports/2026-10/index.html" in post["blocks"][-1]["elements"][0]["text"]


def test_delivery_writes_beside_the_reports_never_into_the_snapshot(delivered):
    reports = delivered["reports"]
    assert snapshot_files(reports) == delivered["before"]  # runs, store and index as the snapshot wrote them
    book = ledger(reports)[MONTH]["executives"]
    assert book["email"]["status"] == "sent" and book["email"]["runs"] == [OLD, NEW]
    assert book["slack"]["status"] == "sent" and "H24" not in json.dumps(book) and "XXXX" not in json.dumps(book)
    assert (reports / MONTH / "delivery" / "executives" / "2026-10-all-00_executive_summary.pdf").exists()


def test_already_sent_is_skipped_unless_forced(reports, smtp_server, webhook, monkeypatch, tmp_path, capsys):
    box, port = smtp_server()
    hook = webhook()
    monkeypatch.setenv("H24_SLACK_URL", hook.url)
    settings = settings_file(tmp_path, port, EXECUTIVES)
    argv = ("send", "--month", MONTH, "--reports", str(reports), "--settings", str(settings))
    code, out, _ = run(capsys, *argv)
    assert code == 0 and len(box.messages) == 1 and len(hook.posts) == 1 and "executives email: sent" in out
    code, out, _ = run(capsys, *argv)
    assert code == 0 and len(box.messages) == 1 and len(hook.posts) == 1
    assert "executives email: sent before, skipped (--force sends it again)" in out
    code, out, _ = run(capsys, *argv, "--force")
    assert code == 0 and len(box.messages) == 2 and len(hook.posts) == 2


def test_a_server_that_is_down_is_retried_then_a_clear_message(reports, monkeypatch, tmp_path, capsys):
    before = snapshot_files(reports)
    settings = settings_file(tmp_path, free_port(), MAIL_ONLY)  # nothing listens there
    code, out, err = run(capsys, "send", "--month", MONTH, "--reports", str(reports), "--settings", str(settings))
    assert code == 1 and "Traceback" not in out + err
    assert (
        "board email: FAILED after 3 tries: SMTP server 127.0.0.1" in out and "unreachable: Connection refused" in out
    )
    assert err.count("failed (try") == 3 and "try 3 of 3, giving up" in err  # each try logged with its reason
    assert snapshot_files(reports) == before
    assert ledger(reports)[MONTH]["board"]["email"]["status"] == "failed"


@pytest.mark.parametrize(("answer", "tries"), [("451 4.3.0 Try again later", 3), ("554 5.7.1 Message rejected", 1)])
def test_a_refusing_server_is_retried_only_when_it_says_later(reports, smtp_server, tmp_path, answer, tries):
    box, port = smtp_server(answer)
    before = snapshot_files(reports)
    [outcome] = send_month(MONTH, reports, settings_file=settings_file(tmp_path, port, MAIL_ONLY))
    assert outcome.status == "failed" and outcome.tries == tries == box.tries
    assert outcome.reason == f"SMTP server 127.0.0.1:{port} answered {answer}"
    assert snapshot_files(reports) == before


@pytest.mark.parametrize(("status", "tries"), [(500, 3), (404, 1)])
def test_a_failing_webhook_is_retried_when_it_may_recover(reports, webhook, monkeypatch, tmp_path, status, tries):
    hook = webhook(status)
    monkeypatch.setenv("H24_SLACK_URL", hook.url)
    [outcome] = send_month(MONTH, reports, settings_file=settings_file(tmp_path, None, SLACK_ONLY))
    assert outcome.status == "failed" and outcome.tries == tries == len(hook.posts)
    assert outcome.reason == f"Slack webhook answered HTTP {status} no_service"  # never the secret URL


def test_a_missing_secret_stops_before_anything_is_sent(reports, smtp_server, monkeypatch, tmp_path, capsys):
    box, port = smtp_server()
    monkeypatch.delenv("H24_SLACK_URL", raising=False)
    settings = settings_file(tmp_path, port, EXECUTIVES)
    code, out, err = run(capsys, "send", "--month", MONTH, "--reports", str(reports), "--settings", str(settings))
    assert code == 2 and "Traceback" not in err
    assert "Nothing was sent: these environment variables are not set:" in err
    assert "H24_SLACK_URL (named by lists.executives.slack_webhook_env in delivery.yaml)" in err
    assert box.tries == 0 and box.messages == [] and not (reports / "delivery.json").exists()


def test_after_snapshot_never_fails_the_snapshot(reports, monkeypatch, tmp_path, capsys):
    before = snapshot_files(reports)
    monkeypatch.delenv("H24_SLACK_URL", raising=False)
    assert after_snapshot(MONTH, reports, settings_file(tmp_path, free_port(), EXECUTIVES)) == []
    assert "Delivery: Nothing was sent" in capsys.readouterr().err
    outcomes = after_snapshot(MONTH, reports, settings_file(tmp_path, free_port(), MAIL_ONLY, attempts=1))
    assert [o.status for o in outcomes] == ["failed"] and "Delivery: board email: FAILED" in capsys.readouterr().err
    disabled = settings_file(tmp_path, free_port(), MAIL_ONLY.replace("enabled: true", "enabled: false"))
    assert after_snapshot(MONTH, reports, disabled) == [] and capsys.readouterr().err == ""
    assert snapshot_files(reports) == before


def test_send_needs_a_run_of_the_month_and_known_lists(reports, tmp_path, capsys):
    settings = settings_file(tmp_path, free_port(), MAIL_ONLY)
    code, _, err = run(capsys, "send", "--month", "2026-08", "--reports", str(reports), "--settings", str(settings))
    assert code == 2 and "No completed run of 2026-08" in err
    code, _, err = run(capsys, "send", "--month", "Oct", "--reports", str(reports), "--settings", str(settings))
    assert code == 2 and "--month must be YYYY-MM, got 'Oct'." in err
    code, _, err = run(capsys, "send", "--reports", str(tmp_path / "none"), "--settings", str(settings))
    assert code == 2 and "No completed run in" in err
    code, _, err = run(
        capsys, "send", "--month", MONTH, "--list", "nobody", "--reports", str(reports), "--settings", str(settings)
    )
    assert code == 2 and "Unknown list(s) nobody in delivery.yaml: choose from board." in err


def test_settings_report_every_problem_at_once(tmp_path):
    bad = tmp_path / "delivery.yaml"
    bad.write_text(
        "attempts: 0\nsmtp: {host: mail.example.com, port: 25, security: plain, sender: a@example.com}\n"
        "lists:\n  x: {segments: [all], email: [not-an-address], colour: red}\n  y: {segments: [all]}\n"
    )
    with pytest.raises(ParameterError) as err:
        load(bad)
    text = str(err.value)
    assert "delivery.yaml has 5 problem(s)" in text
    for part in (
        "attempts: Input should be greater than or equal to 1",
        "allowed only to a loopback host",
        "lists.x.email: not an e-mail address: 'not-an-address'",
        "lists.x.colour: Extra inputs",
        "lists.y: a list needs e-mail addresses",
    ):
        assert part in text
    bad.write_text(
        "smtp: {host: localhost, security: plain, sender: a@example.com}\n"
        "lists:\n  x: {segments: [martians], metrics: [happiness], email: [a@example.com]}\n"
    )
    with pytest.raises(ParameterError, match=r"(?s)2 problem.*unknown segment 'martians'.*unknown metric 'happiness'"):
        load(bad)


def test_the_shipped_settings_are_valid_and_send_nothing_by_default():
    settings = load()
    assert settings.lists and settings.enabled() == []
    assert all(not v.startswith("http") for lst in settings.lists.values() for v in [lst.slack_webhook_env])


def test_the_snapshot_command_ends_with_delivery_and_keeps_its_exit_code(reports, monkeypatch, tmp_path, capsys):
    """`saaskpi snapshot`'s last step (the pages themselves are stood in for: tests/test_snapshot.py runs them)."""
    from saaskpi import snapshot
    from saaskpi.delivery import settings

    monkeypatch.setattr(
        snapshot,
        "take_snapshot",
        lambda month, *a, **k: snapshot.Snapshot(month, reports / MONTH / "runs" / NEW, NEW, []),
    )
    monkeypatch.setattr(settings, "DELIVERY_FILE", settings_file(tmp_path, free_port(), MAIL_ONLY, attempts=2))
    before = snapshot_files(reports)
    code, out, err = run(capsys, "snapshot", "--month", MONTH, "--source", str(tmp_path), "--reports", str(reports))
    assert code == 0 and "runs succeeded" in out and "Traceback" not in err
    assert "try 2 of 2, giving up" in err and "Delivery: board email: FAILED after 2 tries" in err
    assert snapshot_files(reports) == before


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (openssl), as a relay with a private CA has."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_and_login_with_the_password_from_the_environment(reports, certificate, monkeypatch, tmp_path):
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    box, port = Mailbox(), free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:

        def settings(security: str, ca: bool = True) -> Path:
            path = tmp_path / f"{security}-{ca}.yaml"
            path.write_text(
                f"backoff_seconds: 0\nsmtp: {{host: 127.0.0.1, port: {port}, security: {security}, "
                f"user: kpi-bot, password_env: H24_SMTP_PASSWORD, sender: kpi@example.com, timeout_seconds: 5"
                f"{f', ca_file: {cert}' if ca else ''}}}\nlists:\n{MAIL_ONLY}"
            )
            return path

        monkeypatch.setenv("H24_SMTP_PASSWORD", "s3cret")
        [sent] = send_month(MONTH, reports, settings_file=settings("starttls"))
        assert sent.status == "sent" and logins == [(b"kpi-bot", b"s3cret")] and len(box.messages) == 1
        [untrusted] = send_month(MONTH, reports, force=True, settings_file=settings("starttls", ca=False))
        assert untrusted.tries == 1 and "TLS failed (CERTIFICATE_VERIFY_FAILED)" in untrusted.reason
        assert len(box.messages) == 1
    finally:
        controller.stop()
