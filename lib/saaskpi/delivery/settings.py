"""`parameters/delivery.yaml`: the recipient lists, the SMTP server, retries. Secrets are never in the file: it
names the environment variables that hold them (the SMTP password, each list's Slack webhook URL), and
`secrets()` reads them all before anything is sent."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .. import paths
from ..errors import ParameterError
from ..params import read_yaml

DELIVERY_FILE = paths.PARAMETERS_DIR / "delivery.yaml"
ENV_NAME = r"[A-Z_][A-Z0-9_]*"
PAGE_NAME = r"\d\d_[a-z0-9_]+"
EXECUTIVE_SUMMARY = "00_executive_summary"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Smtp(_Strict):
    """The mail server: `starttls` (port 587), `tls` (implicit TLS, port 465) or `plain` (only to a loopback
    host, such as a local relay)."""

    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "plain"] = "starttls"
    user: str = ""
    password_env: str = Field("", pattern=f"^({ENV_NAME})?$")
    sender: str
    ca_file: str = ""  # PEM file of the CA to trust instead of the system's (a relay with a private CA)
    timeout_seconds: float = Field(30, gt=0)

    @model_validator(mode="after")
    def _plain_only_on_loopback(self):
        if self.security == "plain" and not is_loopback(self.host):
            raise ValueError(
                f"security: plain sends the message unencrypted; it is allowed only to a loopback host "
                f"(127.0.0.1, ::1, localhost), not {self.host!r}: use starttls or tls"
            )
        if self.ca_file and not Path(self.ca_file).is_file():
            raise ValueError(f"ca_file {self.ca_file!r} is not a file")
        if self.user and not self.password_env:
            raise ValueError("user is set: name the environment variable holding its password in password_env")
        return self


class RecipientList(_Strict):
    """One list: who gets the month, for which segments, which pages as PDF."""

    enabled: bool = False  # sent after every `saaskpi snapshot`; `saaskpi send --list NAME` sends it regardless
    segments: list[str] = Field(default_factory=lambda: ["all"], min_length=1)
    metrics: list[str] = Field(default_factory=list)  # a subset of the index's headline KPIs; empty: all of them
    pages: list[str] = Field(default_factory=list)  # attached as PDF besides the executive summary
    email: list[str] = Field(default_factory=list)
    slack_webhook_env: str = Field("", pattern=f"^({ENV_NAME})?$")

    @field_validator("email")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", a)]
        if bad:
            raise ValueError(f"not an e-mail address: {', '.join(map(repr, bad))}")
        return v

    @field_validator("pages")
    @classmethod
    def _page_names(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if not re.fullmatch(PAGE_NAME, p)]
        if bad:
            raise ValueError(f"pages are notebook names such as 03_unit_economics, got {', '.join(map(repr, bad))}")
        return v

    @model_validator(mode="after")
    def _has_a_channel(self):
        if not self.email and not self.slack_webhook_env:
            raise ValueError("a list needs e-mail addresses (email) or a Slack webhook (slack_webhook_env), or both")
        return self

    @property
    def channels(self) -> list[str]:
        return (["email"] if self.email else []) + (["slack"] if self.slack_webhook_env else [])

    @property
    def attachments(self) -> list[str]:
        return [EXECUTIVE_SUMMARY] + [p for p in self.pages if p != EXECUTIVE_SUMMARY]


class DeliverySettings(_Strict):
    reports_url: str = ""  # where reports/ is served (links in the messages); empty: no link
    attempts: int = Field(3, ge=1, le=10)  # per channel, the first try included
    backoff_seconds: float = Field(5, ge=0)  # wait before the 2nd try; doubled before each further try
    pdf_timeout_seconds: float = Field(120, gt=0)
    smtp: Smtp | None = None
    lists: dict[str, RecipientList] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mail_needs_a_server(self):
        mailing = [name for name, lst in self.lists.items() if lst.email]
        if mailing and self.smtp is None:
            raise ValueError(f"list(s) {', '.join(mailing)} send e-mail: add an smtp section")
        return self

    def enabled(self) -> list[str]:
        return [name for name, lst in self.lists.items() if lst.enabled]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load(path: Path = DELIVERY_FILE) -> DeliverySettings:
    """The delivery settings (no file: no lists). Every problem is reported at once, as a ParameterError."""
    if not path.exists():
        return DeliverySettings()
    try:
        settings = DeliverySettings.model_validate(read_yaml(path) or {})
    except ValidationError as err:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()
        ]
        raise ParameterError(f"{path.name} has {len(lines)} problem(s):\n" + "\n".join(lines)) from None
    from .. import params
    from ..metrics import METRICS

    known = params.segment_names()
    problems = []
    for name, lst in settings.lists.items():
        problems += [
            f"  lists.{name}.segments: unknown segment {s!r} (parameters/segments/: {', '.join(known)})"
            for s in lst.segments
            if s not in known
        ]
        problems += [
            f"  lists.{name}.metrics: unknown metric {m!r} (docs/metrics.md)" for m in lst.metrics if m not in METRICS
        ]
    if problems:
        raise ParameterError(f"{path.name} has {len(problems)} problem(s):\n" + "\n".join(problems))
    return settings


def secrets(settings: DeliverySettings, names: list[str]) -> dict[str, str]:
    """Every secret the lists `names` need, read from the environment: a missing or empty variable is a
    ParameterError naming each one (raised before anything is sent)."""
    wanted = {}
    lists = [settings.lists[n] for n in names]
    if any(lst.email for lst in lists) and settings.smtp and settings.smtp.password_env:
        wanted[settings.smtp.password_env] = "smtp.password_env"
    for name, lst in zip(names, lists):
        if lst.slack_webhook_env:
            wanted.setdefault(lst.slack_webhook_env, f"lists.{name}.slack_webhook_env")
    missing = [
        f"  {var} (named by {where} in delivery.yaml)" for var, where in wanted.items() if not os.environ.get(var)
    ]
    if missing:
        raise ParameterError(
            "Nothing was sent: these environment variables are not set:\n"
            + "\n".join(missing)
            + "\nSet them in the job's environment (docs/scheduling.md), never in the file."
        )
    return {var: os.environ[var] for var in wanted}
