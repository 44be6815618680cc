"""Account-level metrics for the workbook's month, the lifecycle stage of each paying account, and
peer benchmarks over accounts of the same segment x lifecycle stage (catalog sections 5 and 6).

An account metric is a registered table with one row per paying account (account_id, value, n);
`benchmarkable` ones are compared with their peers in `peer_benchmarks`, so a metric registered
later with `@account_metric` is benchmarked without other edits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import narwhals as nw
import pandas as pd

from ..frames import lookup, month_of, to_pandas
from ..params import Conventions
from ..sources import Tables
from ..stats import peer_stats
from .lifecycle import account_months_at, account_names
from .registry import TABLE_FUNCS, table
from .success import nps_counts


@dataclass(frozen=True)
class AccountMetric:
    """A per-account value for the workbook's month."""

    name: str
    label: str
    unit: str
    direction: str
    benchmarkable: bool
    description: str


ACCOUNT_METRICS: dict[str, AccountMetric] = {}
ACCOUNT_METRIC_SCHEMA = {"account_id": "str", "value": "float64", "n": "float64"}


def account_metric(*, label: str, unit: str, direction: str, needs: tuple[str, ...], benchmarkable: bool = True):
    """Register the decorated function (returning account_id, value, n per paying account) as an account metric:
    a table that `peer_benchmarks` compares with peers when `benchmarkable`."""

    def register(func: Callable) -> Callable:
        table(schema=ACCOUNT_METRIC_SCHEMA, needs=needs, export=False)(func)
        ACCOUNT_METRICS[func.__name__] = AccountMetric(
            func.__name__, label, unit, direction, benchmarkable, TABLE_FUNCS[func.__name__].description
        )
        return func

    return register


# --------------------------------------------------------------------------- who pays, with how many seats
@table(
    schema={
        "account_id": "str",
        "account_name": "str",
        "segment": "str",
        "mrr": "float64",
        "seats": "float64",
        "age_months": "int64",
    },
    export=False,
)
def paying_accounts_now(tables: Tables, as_of: int, account_months: pd.DataFrame) -> pd.DataFrame:
    """The accounts paying at the end of the workbook's month: MRR, seats, months since first payment."""
    out = account_months_at(account_months, as_of)
    out["account_name"] = out.account_id.map(account_names(tables)).fillna(out.account_id)
    return out[["account_id", "account_name", "segment", "mrr", "seats", "age_months"]]


# --------------------------------------------------------------------------- account metrics
@table(
    schema={"account_id": "str", "mau": "int64", "user_days": "int64"},
    needs=("accounts", "subscriptions", "usage_events"),
)
def account_activity(user_month_activity: pd.DataFrame, as_of: int) -> pd.DataFrame:
    """Per account in the workbook's month: users with an event (MAU) and user-days with an event."""
    month = user_month_activity[user_month_activity.key == as_of].groupby("account_id")
    return (
        pd.DataFrame({"mau": month.size(), "user_days": month.days_active.sum()})
        .rename_axis("account_id")
        .reset_index()
        .sort_values("account_id", kind="stable")
        .reset_index(drop=True)
    )


def _per_account(paying: pd.DataFrame, values: pd.Series, n: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": paying.account_id,
            "value": lookup(paying.account_id, values).astype("float64").to_numpy(),
            "n": lookup(paying.account_id, n).fillna(0).astype("float64").to_numpy(),
        }
    )


def _measure_now(as_of: int, account_measures: pd.DataFrame, paying: pd.DataFrame, value: str, n: str) -> pd.DataFrame:
    now = account_measures[account_measures.key == as_of].set_index("account_id")
    return _per_account(paying, now[value], now[n] if n in now else pd.Series(1.0, index=now.index))


@account_metric(
    label="Licence utilisation",
    unit="fraction",
    direction="higher",
    needs=("accounts", "subscriptions", "usage_events"),
)
def licence_utilisation(as_of: int, account_measures: pd.DataFrame, paying_accounts_now: pd.DataFrame) -> pd.DataFrame:
    """Monthly active users / licensed seats at the month end (n/a without seats)."""
    return _measure_now(as_of, account_measures, paying_accounts_now, "licence_utilisation", "seats")


@account_metric(
    label="Engagement score", unit="score", direction="higher", needs=("accounts", "subscriptions", "usage_events")
)
def engagement_score(as_of: int, account_measures: pd.DataFrame, paying_accounts_now: pd.DataFrame) -> pd.DataFrame:
    """Points for the sticky features used in the 30 days to the month end, 0-100 (customer_success.yaml)."""
    return _measure_now(as_of, account_measures, paying_accounts_now, "engagement_score", "mau")


@account_metric(label="Health score", unit="score", direction="higher", needs=("accounts", "subscriptions"))
def health_score(as_of: int, health_history: pd.DataFrame, paying_accounts_now: pd.DataFrame) -> pd.DataFrame:
    """Health score 0-100 at the month end (health_score.yaml); n = components it used."""
    return _measure_now(as_of, health_history, paying_accounts_now, "health", "components_used")


@account_metric(
    label="DAU/MAU (account)", unit="fraction", direction="higher", needs=("accounts", "subscriptions", "usage_events")
)
def account_dau_mau(as_of: int, paying_accounts_now: pd.DataFrame, account_activity: pd.DataFrame) -> pd.DataFrame:
    """Mean daily active users over the month's days / monthly active users (n/a without active users)."""
    days = (month_of(as_of) + pd.offsets.MonthEnd(0)).day
    a = account_activity.set_index("account_id")
    return _per_account(paying_accounts_now, a.user_days / days / a.mau, a.mau)


@account_metric(
    label="NPS (account)", unit="score", direction="higher", needs=("accounts", "subscriptions", "nps_responses")
)
def account_nps(
    tables: Tables, as_of: int, conventions: Conventions, paying_accounts_now: pd.DataFrame
) -> pd.DataFrame:
    """NPS of the account's answers in the nps_window_days ending at the month end (n/a without answers)."""
    end = month_of(as_of + 1).tz_localize("UTC")
    r = nps_counts(tables, end - pd.Timedelta(days=conventions.nps_window_days), end, by=("account_id",))
    r = r.set_index("account_id")
    return _per_account(paying_accounts_now, r.nps, r.n)


@account_metric(
    label="Tickets per seat (90 days)",
    unit="number",
    direction="lower",
    needs=("accounts", "subscriptions", "support_tickets"),
)
def tickets_per_seat(tables: Tables, as_of: int, paying_accounts_now: pd.DataFrame) -> pd.DataFrame:
    """Support tickets opened in the 90 days to the month end per licensed seat (n/a without seats)."""
    end = month_of(as_of + 1).tz_localize("UTC")
    start, stop = (end - pd.Timedelta(days=90)).to_pydatetime(), end.to_pydatetime()
    opened = tables.lazy("support_tickets").filter((nw.col("created_at") >= start) & (nw.col("created_at") < stop))
    t = to_pandas(opened.group_by("account_id").agg(nw.len().alias("len"))).set_index("account_id")["len"]
    p = paying_accounts_now
    tickets = lookup(p.account_id, t).fillna(0)
    value = (tickets / p.seats.where(p.seats > 0)).to_numpy()
    return _per_account(p, pd.Series(value, index=p.account_id), pd.Series(tickets.to_numpy(), index=p.account_id))


# --------------------------------------------------------------------------- lifecycle and peers
@table(
    schema={
        "account_id": "str",
        "account_name": "str",
        "segment": "str",
        "stage": "str",
        "mrr": "float64",
        "metric": "str",
        "value": "float64",
        "peers": "int64",
        "p25": "float64",
        "median": "float64",
        "p75": "float64",
        "percentile": "float64",
        "gap": "float64",
        "compared": "bool",
    }
)
def peer_benchmarks(
    compute_if_available: Callable,
    conventions: Conventions,
    lifecycle_stages: pd.DataFrame,
    paying_accounts_now: pd.DataFrame,
) -> pd.DataFrame:
    """Every paying account x benchmarkable account metric: value, peers in its segment x lifecycle stage, their
    p25 / median / p75, the account's percentile and gap to the median; groups of fewer than min_peers are
    not compared."""
    base = lifecycle_stages[["account_id", "segment", "stage"]].merge(
        paying_accounts_now[["account_id", "account_name", "mrr"]], on="account_id"
    )
    parts = []
    for name, spec in ACCOUNT_METRICS.items():
        if not spec.benchmarkable:
            continue
        values = compute_if_available(name)
        if values is None:
            continue
        frame = base.merge(values[["account_id", "value"]], on="account_id", how="left")
        frame["group"] = list(zip(frame.segment, frame.stage))
        parts.append(peer_stats(frame, conventions.min_peers).drop(columns="group").assign(metric=name))
    cols = [
        "account_id",
        "account_name",
        "segment",
        "stage",
        "mrr",
        "metric",
        "value",
        "peers",
        "p25",
        "median",
        "p75",
        "percentile",
        "gap",
        "compared",
    ]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
