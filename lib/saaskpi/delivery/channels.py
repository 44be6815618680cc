"""Sending: e-mail through SMTP (smtplib: STARTTLS, implicit TLS, or plain to a loopback relay) and Slack through
an incoming webhook (an HTTP POST of Block Kit JSON, urllib). A failure is `Transient` (the server is down, busy,
or says try later: retried) or `Permanent` (a refused address, a wrong password, a revoked webhook: retrying
cannot help); `with_retries` makes a bounded number of tries with doubling waits and logs each failure."""

from __future__ import annotations

import email.policy
import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from .settings import Smtp

log = logging.getLogger("saaskpi.delivery")
# Python's folding at 78 characters moves a long subject to a continuation line ("Subject:" then " SaaS KPIs...");
# RFC 5322 allows 998, so a subject stays on its line
HEADERS_ON_ONE_LINE = email.policy.SMTP.clone(max_line_length=998)


class Transient(Exception):
    """Worth another try."""


class Permanent(Exception):
    """Another try would fail the same way."""


def email_message(smtp: Smtp, to: list[str], subject: str, text: str, html: str, pdfs: list[Path]) -> EmailMessage:
    msg = EmailMessage(policy=HEADERS_ON_ONE_LINE)
    msg["Subject"], msg["From"], msg["To"] = subject, smtp.sender, ", ".join(to)
    msg["Date"], msg["Message-ID"] = formatdate(localtime=False), make_msgid(domain="saaskpi")
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    for pdf in pdfs:
        msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename=pdf.name)
    return msg


def send_email(smtp: Smtp, password: str, msg: EmailMessage) -> None:
    """One try at handing `msg` to the server."""
    where = f"SMTP server {smtp.host}:{smtp.port}"
    try:
        tls = ssl.create_default_context(cafile=smtp.ca_file or None)  # verifies the server's name and certificate
        client: smtplib.SMTP  # SMTP_SSL is an SMTP
        if smtp.security == "tls":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=tls)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=tls)
            if smtp.user:
                client.login(smtp.user, password)
            refused = client.send_message(msg)
        if refused:
            raise Permanent(
                f"{where} refused {len(refused)} recipient(s): "
                + "; ".join(f"{a} ({c} {_text(m)})" for a, (c, m) in refused.items())
            )
    except smtplib.SMTPAuthenticationError as err:
        raise Permanent(
            f"{where} rejected the login of {smtp.user!r}: {err.smtp_code} {_text(err.smtp_error)}"
        ) from None
    except smtplib.SMTPRecipientsRefused as err:
        raise Permanent(
            f"{where} refused every recipient: "
            + "; ".join(f"{a} ({c} {_text(m)})" for a, (c, m) in err.recipients.items())
        ) from None
    except smtplib.SMTPResponseException as err:  # 4xx: try later; 5xx: refused for good
        kind = Transient if 400 <= err.smtp_code < 500 else Permanent
        raise kind(f"{where} answered {err.smtp_code} {_text(err.smtp_error)}") from None
    except smtplib.SMTPNotSupportedError as err:
        raise Permanent(f"{where} does not support {smtp.security.upper()}: {err}") from None
    except ssl.SSLError as err:
        raise Permanent(f"{where}: TLS failed ({err.reason or err})") from None
    except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as err:
        raise Transient(f"{where} unreachable: {_oserror(err)}") from None


def send_slack(url: str, payload: dict, timeout: float = 30) -> None:
    """One POST of the Block Kit payload to the incoming webhook (Slack answers 200 `ok`)."""
    where = "Slack webhook"  # its URL is a secret: never in a message
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as err:
        body = err.read().decode("utf-8", "replace")[:200].strip()
        kind = Transient if err.code == 429 or err.code >= 500 else Permanent
        raise kind(f"{where} answered HTTP {err.code} {body or err.reason}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as err:
        raise Transient(f"{where} unreachable: {_oserror(getattr(err, 'reason', err))}") from None
    except ValueError:
        raise Permanent(f"{where}: the URL in its environment variable is not a URL") from None


def with_retries(
    what: str, attempt: Callable[[], None], attempts: int, backoff: float, sleep: Callable[[float], None] = time.sleep
) -> tuple[int, str]:
    """Call `attempt` until it succeeds, at most `attempts` times, waiting `backoff`, 2 x `backoff`, ... between
    tries; every failure is logged with its reason. Returns (tries made, "" or the last reason)."""
    for n in range(1, attempts + 1):
        try:
            attempt()
            return n, ""
        except Permanent as err:
            log.warning("%s failed (try %d of %d, not retried): %s", what, n, attempts, err)
            return n, str(err)
        except Transient as err:
            last = n == attempts
            log.warning(
                "%s failed (try %d of %d%s): %s",
                what,
                n,
                attempts,
                ", giving up" if last else f", next in {backoff * 2 ** (n - 1):g} s",
                err,
            )
            if last:
                return n, str(err)
            sleep(backoff * 2 ** (n - 1))
    raise AssertionError("unreachable")


def _text(message) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


def _oserror(err) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__
