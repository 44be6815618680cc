"""Delivering the month: after `saaskpi snapshot` (the lists enabled in `parameters/delivery.yaml`) or on demand
(`saaskpi send --month YYYY-MM`), one message per recipient list and channel, e-mail with the executive summary
(and any page the list names) as PDF, Slack as Block Kit, all read from the snapshot's outputs.

Nothing here writes into a run, the metrics store or the index: the PDFs go to `reports/<month>/delivery/<list>/`
and the ledger of what was sent to `reports/delivery.json` (one entry per month, list and channel, rewritten
atomically under a lock). A channel already sent for a month is skipped unless `force`. Every secret is read
before the first message leaves; a failing channel is retried (settings `attempts`, `backoff_seconds`), logged
with its reason and recorded as failed, and does not stop the others.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..errors import ParameterError, SaasKpiError
from . import channels, render
from .content import MonthSummary, read_summary
from .settings import DELIVERY_FILE, DeliverySettings, RecipientList, load, secrets

LEDGER = "delivery.json"
log = channels.log


@dataclass(frozen=True)
class Outcome:
    """One channel of one list for one month."""

    recipients: str  # the list's name
    channel: str  # email or slack
    status: str  # sent, skipped (sent before, no --force) or failed
    tries: int = 0
    reason: str = ""

    def describe(self) -> str:
        if self.status == "sent":
            return f"{self.recipients} {self.channel}: sent" + (
                f" (after {self.tries} tries)" if self.tries > 1 else ""
            )
        if self.status == "skipped":
            return f"{self.recipients} {self.channel}: sent before, skipped (--force sends it again)"
        return f"{self.recipients} {self.channel}: FAILED after {self.tries} tr{'y' if self.tries == 1 else 'ies'}: {self.reason}"


def send_month(
    month: str,
    reports: Path = paths.REPORTS_DIR,
    names: list[str] | None = None,
    force: bool = False,
    settings_file: Path = DELIVERY_FILE,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    """Send `month` to the lists `names` (default: the enabled ones). Settings, secrets, the month's runs and
    the lists' segments are all checked first (a ParameterError, nothing sent)."""
    settings = load(settings_file)
    names = _chosen(settings, names, settings_file)
    keys = secrets(settings, names)
    summaries = {name: read_summary(reports, month, settings.lists[name]) for name in names}
    outcomes = []
    for name in names:
        lst, summary = settings.lists[name], summaries[name]
        for channel in lst.channels:
            if not force and _sent(reports, month, name, channel):
                outcomes.append(Outcome(name, channel, "skipped"))
                continue
            tries, reason = _deliver(channel, name, lst, summary, settings, keys, reports, sleep)
            outcome = Outcome(name, channel, "failed" if reason else "sent", tries, reason)
            _record(reports, month, outcome, summary, lst)
            outcomes.append(outcome)
    return outcomes


@contextmanager
def logged_to_stderr():
    """Each failed try (logger `saaskpi.delivery`) shown on stderr while a send runs from the command line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


def after_snapshot(month: str, reports: Path = paths.REPORTS_DIR, settings_file: Path | None = None) -> list[Outcome]:
    """The snapshot's last step: send to the enabled lists (of `parameters/delivery.yaml` unless `settings_file`).
    Never raises (a delivery problem cannot fail or change the snapshot); what happened is printed to stderr and
    logged."""
    from . import settings as delivery_settings

    settings_file = settings_file or delivery_settings.DELIVERY_FILE
    try:
        if not load(settings_file).enabled():
            return []
        with logged_to_stderr():
            outcomes = send_month(month, reports, settings_file=settings_file)
    except SaasKpiError as err:
        print(f"Delivery: {err}", file=sys.stderr)
        return []
    except Exception as err:
        log.exception("delivery after the snapshot failed")
        print(
            f"Delivery failed ({type(err).__name__}: {err}); the snapshot is complete. Resend with "
            f"`saaskpi send --month {month}`.",
            file=sys.stderr,
        )
        return []
    for o in outcomes:
        print(f"Delivery: {o.describe()}", file=sys.stderr)
    return outcomes


def _chosen(settings: DeliverySettings, names: list[str] | None, settings_file: Path) -> list[str]:
    if names:
        unknown = [n for n in names if n not in settings.lists]
        if unknown:
            raise ParameterError(
                f"Unknown list(s) {', '.join(unknown)} in {settings_file.name}: "
                f"choose from {', '.join(settings.lists) or '(none defined)'}."
            )
        return names
    if not settings.enabled():
        raise ParameterError(
            f"No list is enabled in {settings_file.name} (lists: {', '.join(settings.lists) or 'none'}): "
            "enable one, or name it with --list."
        )
    return settings.enabled()


def _deliver(
    channel: str,
    name: str,
    lst: RecipientList,
    summary: MonthSummary,
    settings: DeliverySettings,
    keys: dict[str, str],
    reports: Path,
    sleep,
) -> tuple[int, str]:
    what = f"{summary.month} to list {name} by {channel}"
    if channel == "slack":
        payload = render.slack_blocks(summary, settings.reports_url)
        url = keys[lst.slack_webhook_env]
        return channels.with_retries(
            what, lambda: channels.send_slack(url, payload), settings.attempts, settings.backoff_seconds, sleep
        )
    try:
        pdfs = pdf_files(summary, lst, settings, reports / summary.month / "delivery" / name)
    except render.DeliveryError as err:
        log.warning("%s failed before sending: %s", what, err)
        return 0, str(err)
    smtp = settings.smtp
    assert smtp is not None, "DeliverySettings requires an smtp section for a list that sends e-mail"
    msg = channels.email_message(
        smtp,
        lst.email,
        render.subject(summary),
        render.plain_text(summary, settings.reports_url),
        render.email_html(summary, settings.reports_url, bool(pdfs)),
        pdfs,
    )
    password = keys.get(smtp.password_env, "")
    return channels.with_retries(
        what, lambda: channels.send_email(smtp, password, msg), settings.attempts, settings.backoff_seconds, sleep
    )


def pdf_files(summary: MonthSummary, lst: RecipientList, settings: DeliverySettings, folder: Path) -> list[Path]:
    """One PDF per segment and page the list attaches (the pages its runs have): a cover with the segment's
    headline KPIs, then the executed report."""
    out = []
    for seg in summary.segments:
        link = render.report_link(settings.reports_url, summary)
        cover = render.cover_html(summary, seg, link)
        for notebook in lst.attachments:
            page = seg.pages.get(notebook)
            if page is None:
                log.warning("%s has no %s report for %s: not attached", summary.month, notebook, seg.segment)
                continue
            target = folder / f"{summary.month}-{seg.segment}-{notebook}.pdf"
            out.append(_pdf(render.printable(page.html, cover), target, settings.pdf_timeout_seconds))
    return out


def _pdf(page_html: str, target: Path, timeout: float) -> Path:
    """The PDF of `page_html`, printed again only when that HTML changed (runs are immutable, so a resend of
    the same month reuses it); `.<name>.key` beside it holds the hash of the HTML it was printed from."""
    import hashlib

    key = hashlib.sha256(page_html.encode()).hexdigest()
    stamp = target.with_name(f".{target.name}.key")
    if target.exists() and stamp.exists() and stamp.read_text() == key:
        return target
    render.print_pdf(page_html, target, timeout)
    paths.atomic_write(stamp, key)
    return target


# --------------------------------------------------------------------------- the ledger
@contextmanager
def _ledger(reports: Path):
    """The ledger, locked for the caller; what the caller leaves in the dict is written back atomically."""
    reports.mkdir(parents=True, exist_ok=True)
    with open(reports / f".{LEDGER}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = reports / LEDGER
        book = json.loads(path.read_text()) if path.exists() else {}
        before = json.dumps(book, sort_keys=True)
        yield book
        if json.dumps(book, sort_keys=True) != before:
            paths.atomic_write(path, json.dumps(book, indent=1, sort_keys=True))


def ledger(reports: Path) -> dict:
    """`{month: {list: {channel: entry}}}`: what was sent (or last failed) when."""
    path = reports / LEDGER
    return json.loads(path.read_text()) if path.exists() else {}


def _sent(reports: Path, month: str, name: str, channel: str) -> bool:
    entry = ledger(reports).get(month, {}).get(name, {}).get(channel, {})
    return entry.get("status") == "sent" or "sent_before" in entry


def _record(reports: Path, month: str, outcome: Outcome, summary: MonthSummary, lst: RecipientList) -> None:
    entry = {
        "status": outcome.status,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tries": outcome.tries,
        "runs": summary.run_ids,
        "segments": lst.segments,
    }
    if outcome.channel == "email":
        entry["to"] = lst.email
    if outcome.reason:
        entry["reason"] = outcome.reason
    with _ledger(reports) as book:
        channels_of = book.setdefault(month, {}).setdefault(outcome.recipients, {})
        earlier = channels_of.get(outcome.channel, {})
        if outcome.status == "failed" and (earlier.get("status") == "sent" or "sent_before" in earlier):
            entry["sent_before"] = earlier.get("sent_before") or earlier["at"]  # a forced resend failed: it was sent
        channels_of[outcome.channel] = entry


__all__ = ["Outcome", "after_snapshot", "ledger", "logged_to_stderr", "pdf_files", "send_month"]
