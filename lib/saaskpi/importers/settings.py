"""The named settings of the billing -> MRR conversion (`parameters/billing.yaml`), validated."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import paths
from ..errors import ParameterError
from ..params import read_yaml

BILLING_FILE = paths.PARAMETERS_DIR / "billing.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChurnAfterDays(_Strict):
    """Past-due invoices count for this many days of their service period, then stop."""

    churn_after_days: int = Field(ge=0)


class SegmentRule(_Strict):
    """Accounts whose highest MRR is at least `min_mrr` and (if given) that have one of `plans` get `segment`."""

    segment: str
    min_mrr: float = 0.0
    plans: tuple[str, ...] = ()


class SegmentSetting(_Strict):
    """Where an account's segment comes from: its own column, a metadata key, rules, a default."""

    metadata_key: str | None = "segment"
    rules: tuple[SegmentRule, ...] = (
        SegmentRule(segment="enterprise", min_mrr=5000),
        SegmentRule(segment="mid_market", min_mrr=1000),
    )
    default: str = "smb"


class BillingSettings(_Strict):
    """Choices where revenue tools disagree (see parameters/billing.yaml for each key)."""

    churn_recorded_at: Literal["period_end", "cancellation_date"] = "period_end"
    past_due: Literal["keep"] | ChurnAfterDays = "keep"
    refunds: Literal["ignore", "full_refund_removes_mrr"] = "ignore"
    mrr_discounts: Literal["all", "forever_only"] = "all"
    recognise_on: Literal["issue", "payment"] = "issue"
    due_days: int = Field(default=30, ge=0)
    segment: SegmentSetting = SegmentSetting()

    def applied(self) -> dict:
        """The settings as plain data (for the import report)."""
        return self.model_dump(mode="json")


def _message(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("literal[", "ChurnAfterDays")))
        lines.append(f"  `{key}`: {e['msg']} (got {e.get('input')!r})")
    return f"{where}: {len(lines)} problem{'s' if len(lines) != 1 else ''}:\n" + "\n".join(dict.fromkeys(lines))


def billing_settings(path: Path = BILLING_FILE, **overrides) -> BillingSettings:
    """The settings in `path` (parameters/billing.yaml by default), with `overrides` on top; errors name the key."""
    data = {**(read_yaml(path) if path is not None else {}), **overrides}
    try:
        return BillingSettings.model_validate(data)
    except ValidationError as err:
        raise ParameterError(_message(err, Path(path).name if path is not None else "billing settings")) from None
