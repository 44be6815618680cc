"""Customer health (catalog section 5): the measures behind the health score for every paying account at
every month end, the score itself (parameters/health_score.yaml), its roll-ups, its backtest against
later churn and contraction, and the at-risk list.

Every measure looks only at what was known at its month end (tickets resolved, invoices paid and answers
given by then), so that the score at month M-3 can be judged against what happened by month M.
"""

from __future__ import annotations

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import empty_frame, lookup, month_key, month_of, safe_ratio, seconds_between, to_pandas
from ..params import Conventions, SuccessSettings
from ..sources import Tables
from .lifecycle import account_names
from .registry import metric, table
from .revenue import reference_fx_rates
from .series import month_series

ROLES = ("sponsor", "decision_maker", "technical", "end_user")
BANDS = ("red", "yellow", "green")
KEYS = ["account_id", "key"]


# --------------------------------------------------------------------------- windows over month ends
def month_ends(calendar: pl.DataFrame, days: int = 0) -> pl.DataFrame:
    """Each month key with `end`, the first instant after the month (UTC), and `start`, `days` before it: a
    small frame joined to the tables on the engine (Spark has no duration arithmetic, so bounds come ready)."""
    end = (pl.col("month_end").cast(pl.Datetime("us")) + pl.duration(days=1)).dt.replace_time_zone("UTC")
    return calendar.select(
        pl.col("month").alias("key"), end.alias("end"), (end - pl.duration(days=days)).alias("start")
    )


def windowed(tables: Tables, name: str, at: str, calendar: pl.DataFrame, days: int) -> nw.LazyFrame:
    """Rows of table `name` repeated for each month whose `days`-day window up to its end holds `at`
    (at >= end - days and at < end), with the month `key`, its `end` and `_at` (on the engine).

    Only the months from `at`'s own to `days // 28` after it can hold it (a window ends after `at`, and the
    next month ends at least 28 days later), so each row meets those few candidates (an equi-join on the key),
    not every month of the calendar: 4 rows per ticket for a 90-day window instead of one per month."""
    offsets = pl.DataFrame({"_offset": range(days // 28 + 1)}, schema={"_offset": pl.Int64})
    return (
        tables.lazy(name)
        .with_columns(_at=nw.col(at))
        .filter(~nw.col("_at").is_null())
        .join(tables.from_polars(offsets), how="cross")
        .with_columns(key=month_key(nw.col("_at")) + nw.col("_offset"))
        .join(tables.from_polars(month_ends(calendar, days)), on="key", how="inner")
        .filter((nw.col("_at") >= nw.col("start")) & (nw.col("_at") < nw.col("end")))
        .drop("_offset")
    )


def _per_account_month(frame: nw.LazyFrame, aggs: list[nw.Expr]) -> pd.DataFrame:
    return to_pandas(frame.group_by(*KEYS).agg(*aggs))


def _count(condition: nw.Expr) -> nw.Expr:
    return condition.cast(nw.Int64).sum()


NO_TIME = nw.lit(None, dtype=nw.Datetime("us", "UTC"))


# --------------------------------------------------------------------------- measures
def usage_measures(
    user_month_activity: pd.DataFrame,
    feature_month_activity: pd.DataFrame,
    calendar: pl.DataFrame,
    settings: SuccessSettings,
) -> pd.DataFrame:
    """Per account and month: monthly active users, and engagement points of the sticky features used in the
    30 days up to the month end."""
    # in Polars: pandas took 0.4-0.7 s at 50M events (1.8M user-months and 0.6M feature-months, by string ids)
    users = pl.from_pandas(user_month_activity[["account_id", "key"]])
    mau = users.group_by(KEYS).agg(pl.len().cast(pl.Int64).alias("mau"))
    # a day d of month m (L days) is in the 30-day window of m's end when L - d <= 29, and in that of the next
    # month's end (L' days) when L - d + L' <= 29 (only when the next month is February): so an account used a
    # feature in a window when its last day using it in month m is late enough
    sticky = settings.sticky_features
    lengths = calendar.select(pl.col("month").cast(pl.Int64).alias("key"), pl.col("month_end").dt.day().cast(pl.Int64))
    used = (
        pl.from_pandas(feature_month_activity[["account_id", "feature", "key", "last_day"]])
        .filter(pl.col("feature").is_in(list(sticky)))
        .join(lengths.rename({"month_end": "length"}), on="key", how="left")
        .join(lengths.select(pl.col("key") - 1, pl.col("month_end").alias("next_length")), on="key", how="left")
        .with_columns(pl.col("next_length").fill_null(31), late=pl.col("length") - pl.col("last_day"))
    )
    windows = pl.concat(
        [
            used.filter(pl.col("late") <= 29).select("account_id", "feature", "key"),
            used.filter(pl.col("late") + pl.col("next_length") <= 29).select(
                "account_id", "feature", pl.col("key") + 1
            ),
        ]
    ).unique()
    points = pl.col("feature").replace_strict(sticky, return_dtype=pl.Float64)
    score = windows.group_by(KEYS).agg((points.sum() / sum(sticky.values()) * 100).alias("engagement_score"))
    return mau.join(score, on=KEYS, how="full", coalesce=True).to_pandas()  # columns: see account_measures


def support_measures(tables: Tables, calendar: pl.DataFrame, settings: SuccessSettings) -> pd.DataFrame:
    """Per account and month end: CSAT of tickets resolved in the window, SLA breaches of tickets opened in it
    (decided by the month end), and tickets open at the month end."""
    cols = tables.lazy("support_tickets").columns
    sla = pl.DataFrame(
        {"priority": list(settings.sla_hours), "sla": [float(h) for h in settings.sla_hours.values()]},
        schema={"priority": pl.String, "sla": pl.Float64},
    )
    opened = windowed(tables, "support_tickets", "created_at", calendar, settings.window_days).join(
        tables.from_polars(sla), on="priority", how="left"
    )
    response = nw.col("first_response_at") if "first_response_at" in cols else NO_TIME
    answered = ~response.is_null() & (response < nw.col("end"))
    hours = lambda a, b: seconds_between(a, b, tables.engine.name) / 3600  # noqa: E731
    late = nw.when(hours(nw.col("end"), nw.col("_at")) > nw.col("sla")).then(nw.lit(True))  # else undecided
    breach = nw.when(answered).then(hours(response, nw.col("_at")) > nw.col("sla")).otherwise(late)
    sla_rows = _per_account_month(
        opened.with_columns(breach=breach),
        [
            nw.len().alias("tickets"),
            _count(~nw.col("breach").is_null()).alias("sla_decided"),
            nw.col("breach").cast(nw.Int64).sum().alias("sla_breaches"),
        ],
    )
    parts = [sla_rows.set_index(KEYS)]
    if "resolved_at" in cols and "csat" in cols:
        rated = windowed(tables, "support_tickets", "resolved_at", calendar, settings.window_days).filter(
            ~nw.col("csat").is_null()
        )
        parts.append(
            _per_account_month(
                rated, [nw.len().alias("csat_n"), _count(nw.col("csat") >= 4).alias("satisfied")]
            ).set_index(KEYS)
        )
    resolved = nw.col("resolved_at") if "resolved_at" in cols else NO_TIME
    open_at = (
        tables.lazy("support_tickets")
        .with_columns(_at=nw.col("created_at"), _done=resolved)
        .join(tables.from_polars(month_ends(calendar)), how="cross")
        .filter((nw.col("_at") < nw.col("end")) & (nw.col("_done").is_null() | (nw.col("_done") >= nw.col("end"))))
    )
    parts.append(_per_account_month(open_at, [nw.len().alias("open_tickets")]).set_index(KEYS))
    out = pd.concat(parts, axis=1)
    out["sla_breach_rate"] = safe_ratio(out.sla_breaches, out.sla_decided)
    out["csat"] = safe_ratio(out.get("satisfied", np.nan), out.get("csat_n", np.nan))
    return out.reset_index()


def relationship_measures(tables: Tables, calendar: pl.DataFrame, settings: SuccessSettings) -> pd.DataFrame:
    """Per account and month end: touchpoints, stakeholder roles met and net sentiment in the window."""
    c = windowed(tables, "cs_touchpoints", "occurred_at", calendar, settings.window_days)
    role = nw.col("stakeholder_role") if "stakeholder_role" in c.columns else nw.lit(None, dtype=nw.String)
    sentiment = nw.col("sentiment") if "sentiment" in c.columns else nw.lit(None, dtype=nw.String)
    # distinct roles met: n_unique counts a missing role as one value, so it is taken off when there is one
    roles = nw.col("role").n_unique() - nw.col("role").is_null().cast(nw.Int64).max()
    out = _per_account_month(
        c.with_columns(role=role, sentiment=sentiment),
        [
            nw.len().alias("touchpoints"),
            roles.cast(nw.Int64).alias("roles_covered"),
            _count(nw.col("sentiment") == "positive").alias("positive"),
            _count(nw.col("sentiment") == "negative").alias("negative"),
            _count(~nw.col("sentiment").is_null()).alias("with_sentiment"),
        ],
    )
    out["net_sentiment"] = safe_ratio(out.positive - out.negative, out.with_sentiment)
    return out


def payment_measures(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Per account and month end with invoices issued by then: days the oldest invoice due by the month's
    last day and unpaid at it is overdue (0 when none), and the overdue amount in the reporting currency."""
    fx = tables.from_polars(reference_fx_rates(tables, conventions))
    inv = (
        tables.lazy("invoices")
        .join(fx, on="currency", how="left")
        .with_columns(amount=nw.col("amount") * nw.col("rate"))
    )
    cal = tables.from_polars(calendar.select(pl.col("month").alias("key"), pl.col("month_end").alias("last_day")))
    rows = inv.join(cal, how="cross").filter(nw.col("issued_at") <= nw.col("last_day"))
    overdue = (nw.col("due_date") < nw.col("last_day")) & (
        nw.col("paid_at").is_null() | (nw.col("paid_at") > nw.col("last_day"))
    )
    day = lambda c: nw.col(c).cast(nw.Datetime("us"))  # noqa: E731  (DuckDB subtracts dates as whole numbers)
    days = (seconds_between(day("last_day"), day("due_date"), tables.engine.name) / 86400).round(0)
    out = _per_account_month(
        rows.with_columns(late_days=nw.when(overdue).then(days), overdue=overdue),
        [
            nw.col("late_days").max().alias("days_overdue"),
            nw.when(nw.col("overdue")).then(nw.col("amount")).otherwise(nw.lit(0.0)).sum().alias("overdue_amount"),
        ],
    )
    out["days_overdue"] = out.days_overdue.fillna(0).astype("float64")
    return out


def nps_measures(tables: Tables, calendar: pl.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Per account and month end: NPS of the answers in the nps_window_days to it."""
    r = windowed(tables, "nps_responses", "responded_at", calendar, conventions.nps_window_days)
    out = _per_account_month(
        r,
        [
            nw.len().alias("nps_n"),
            _count(nw.col("score") >= 9).alias("promoters"),
            _count(nw.col("score") <= 6).alias("detractors"),
        ],
    )
    out["account_nps"] = safe_ratio(100 * (out.promoters.astype("float64") - out.detractors), out.nps_n)
    return out[[*KEYS, "account_nps", "nps_n"]]


MEASURE_COLUMNS = [
    "mau",
    "licence_utilisation",
    "engagement_score",
    "account_nps",
    "nps_n",
    "csat",
    "csat_n",
    "sla_breach_rate",
    "tickets",
    "open_tickets",
    "touchpoints",
    "roles_covered",
    "net_sentiment",
    "positive",
    "negative",
    "with_sentiment",
    "days_overdue",
    "overdue_amount",
]


# the health score's component columns, in the order of the tables that carry them
SCORE_SCHEMA = {
    f"score_{c}": "float64"
    for c in ("adoption", "engagement", "nps", "csat", "sla", "relationship", "sentiment", "payments")
}


@table(
    schema={
        "account_id": "str",
        "key": "int64",
        "month": "datetime",
        "segment": "str",
        "csm_id": "str",
        "seats": "float64",
        "mrr": "float64",
        "mau": "float64",
        "licence_utilisation": "float64",
        "engagement_score": "float64",
        "account_nps": "float64",
        "nps_n": "float64",
        "csat": "float64",
        "csat_n": "float64",
        "sla_breach_rate": "float64",
        "tickets": "float64",
        "open_tickets": "float64",
        "touchpoints": "float64",
        "roles_covered": "float64",
        "net_sentiment": "float64",
        "positive": "float64",
        "negative": "float64",
        "with_sentiment": "float64",
        "days_overdue": "float64",
        "overdue_amount": "float64",
    },
    export=False,
)
def account_measures(
    tables: Tables,
    calendar: pl.DataFrame,
    conventions: Conventions,
    success_settings: SuccessSettings,
    account_months: pd.DataFrame,
    compute_if_available,
) -> pd.DataFrame:
    """Every paying account at every month end with the measures the health score and CS pages use; a measure
    is NaN (missing) when its table is absent or the account has no data for it (see health_score.yaml)."""
    out = account_months[["account_id", "key", "month", "segment", "csm_id", "seats", "mrr"]]
    s = success_settings
    sources = [
        (
            "usage_events",
            lambda: usage_measures(
                compute_if_available("user_month_activity"), compute_if_available("feature_month_activity"), calendar, s
            ),
        ),
        ("support_tickets", lambda: support_measures(tables, calendar, s)),
        ("cs_touchpoints", lambda: relationship_measures(tables, calendar, s)),
        ("invoices", lambda: payment_measures(tables, calendar, conventions)),
        ("nps_responses", lambda: nps_measures(tables, calendar, conventions)),
    ]
    for name, compute in sources:
        if tables.has(name):
            # merged on the key columns, not joined on a (account, key) index: pandas builds a tuple per row to join
            # two MultiIndexes (1 s of 2 at 50M events), and factorizes columns
            out = out.merge(compute(), on=KEYS, how="left", validate="many_to_one", suffixes=(False, False))
    out = out.reindex(columns=[*out.columns, *[c for c in MEASURE_COLUMNS if c not in out.columns]])
    if tables.has("usage_events"):
        out["mau"] = out.mau.fillna(0)
        out["engagement_score"] = out.engagement_score.fillna(0)
        out["licence_utilisation"] = safe_ratio(out.mau, out.seats.where(out.seats > 0))
    if tables.has("support_tickets"):
        out[["tickets", "open_tickets", "csat_n"]] = out[["tickets", "open_tickets", "csat_n"]].fillna(0)
    if tables.has("cs_touchpoints"):
        counts = ["touchpoints", "roles_covered", "positive", "negative", "with_sentiment"]
        has_csm = out.csm_id.notna()
        # an account with a CSM and no touchpoint had 0; one without a CSM and no touchpoint is not measured
        out.loc[has_csm, counts] = out.loc[has_csm, counts].fillna(0)
    if tables.has("nps_responses"):
        out["nps_n"] = out.nps_n.fillna(0)
    return out[["account_id", "key", "month", "segment", "csm_id", "seats", "mrr", *MEASURE_COLUMNS]]


# --------------------------------------------------------------------------- health score
@table(
    schema={
        "account_id": "str",
        "key": "int64",
        "month": "datetime",
        "segment": "str",
        "csm_id": "str",
        "mrr": "float64",
        **SCORE_SCHEMA,
        "health": "float64",
        "band": "str",
        "components_used": "int64",
        "components_possible": "int64",
    },
    export=False,
)
def health_history(success_settings: SuccessSettings, account_measures: pd.DataFrame) -> pd.DataFrame:
    """Health score of every paying account at every month end: each component's score, the weighted mean of
    the components with data (weights re-scaled), rounded to a whole number, its band and components used."""
    m = account_measures
    s = success_settings
    parts = []
    for segment, rows in m.groupby(m.segment.fillna(""), sort=False):
        model = s.health_for(segment)
        scores = pd.DataFrame({f"score_{c.name}": c.score(rows[c.measure]) for c in model.components}, index=rows.index)
        weights = np.array([c.weight for c in model.components])
        have = scores.notna().to_numpy() & (weights > 0)
        total = (np.nan_to_num(scores.to_numpy()) * weights * have).sum(axis=1)
        used_weight = (weights * have).sum(axis=1)
        raw = np.where(used_weight > 0, total / np.where(used_weight > 0, used_weight, 1), np.nan)
        health = np.floor(raw + 0.5)
        parts.append(
            scores.assign(
                health=health,
                band=model.band(health),
                components_used=have.sum(axis=1),
                components_possible=int((weights > 0).sum()),
            )
        )
    if not parts:  # nobody pays: no scores, but the columns the roll-ups read
        names = [f"score_{c.name}" for c in s.health.components]
        parts = [
            empty_frame(
                {
                    **dict.fromkeys(names, "float64"),
                    "health": "float64",
                    "band": object,
                    "components_used": "int64",
                    "components_possible": "int64",
                }
            )
        ]
    scored = pd.concat(parts).reindex(m.index)
    return pd.concat([m[["account_id", "key", "month", "segment", "csm_id", "mrr"]], scored], axis=1)


def component_names(success_settings: SuccessSettings) -> list[str]:
    return [c.name for c in success_settings.health.components]


@table(
    schema={
        "account_id": "str",
        "account_name": "str",
        "segment": "str",
        "csm_id": "str",
        "stage": "str",
        "arr": "float64",
        "health": "float64",
        "band": "str",
        "change": "float64",
        "components_used": "int64",
        "components_possible": "int64",
        **SCORE_SCHEMA,
    }
)
def account_health(
    as_of: int,
    success_settings: SuccessSettings,
    health_history: pd.DataFrame,
    account_stages: pd.DataFrame,
    tables: Tables,
) -> pd.DataFrame:
    """Each paying account's health at the month end: score, band, components used, each component's score,
    the change over falling_months, lifecycle stage, CSM, ARR and the next term end."""
    s = success_settings
    now = health_history[health_history.key == as_of].copy()
    before = health_history[health_history.key == as_of - s.falling_months].set_index("account_id").health
    now["change"] = now.health - lookup(now.account_id, before)
    stages = account_stages[account_stages.key == as_of].set_index("account_id")
    now["stage"] = now.account_id.map(stages.stage)
    now["arr"] = now.mrr * 12
    now["account_name"] = now.account_id.map(account_names(tables)).fillna(now.account_id)
    scores = [c for c in now.columns if c.startswith("score_")]
    cols = [
        "account_id",
        "account_name",
        "segment",
        "csm_id",
        "stage",
        "arr",
        "health",
        "band",
        "change",
        "components_used",
        "components_possible",
        *scores,
    ]
    return now[cols].sort_values(["health", "account_id"]).reset_index(drop=True)


@metric(
    label="Average health score",
    formula="mean health score (0-100) of the paying accounts with one, at the "
    "month end (parameters/health_score.yaml)",
    unit="score",
    direction="higher",
    level="core",
    sources=("C", "P"),
    area="success",
    needs=("accounts", "subscriptions"),
    tile=3,
)
def average_health_score(health_history: pd.DataFrame) -> pd.DataFrame:
    """The portfolio's health: the mean account health score."""
    g = health_history.groupby("month").health
    out = pd.DataFrame({"value": g.mean(), "n": g.count()}).reset_index()
    return month_series(out.month, out.value, out.n)


@metric(
    label="Red accounts",
    formula="paying accounts in the red band / paying accounts with a health score",
    unit="fraction",
    direction="lower",
    level="supporting",
    sources=("C", "P"),
    area="success",
    proportion=True,
    tile=4,
)
def red_account_share(health_history: pd.DataFrame) -> pd.DataFrame:
    """Share of scored accounts whose health is red."""
    scored = health_history[health_history.health.notna()]
    g = scored.assign(red=scored.band == "red").groupby("month").red
    out = pd.DataFrame({"value": g.mean(), "n": g.size()}).reset_index()
    return month_series(out.month, out.value, out.n)


@table(
    schema={
        "level": "str",
        "group": "str",
        "accounts": "int64",
        "mean_health": "float64",
        "arr_weighted_health": "float64",
        "arr": "float64",
        "red_share": "float64",
        "yellow_share": "float64",
        "green_share": "float64",
    }
)
def health_rollup(as_of: int, account_health: pd.DataFrame) -> pd.DataFrame:
    """Health at the month end rolled up by segment, lifecycle stage, CSM and the whole portfolio: accounts,
    mean score, ARR-weighted score and the share of accounts in each band."""
    h = account_health[account_health.health.notna()].assign(csm=lambda d: d.csm_id.fillna("(no CSM)"))
    parts = []
    for level, column in (("portfolio", None), ("segment", "segment"), ("stage", "stage"), ("csm", "csm")):
        groups = [("all", h)] if column is None else list(h.groupby(column, sort=True))
        for name, g in groups:
            row = {
                "level": level,
                "group": name,
                "accounts": len(g),
                "mean_health": g.health.mean(),
                "arr_weighted_health": safe_ratio((g.health * g.arr).sum(), g.arr.sum()),
                "arr": g.arr.sum(),
            }
            row.update({f"{b}_share": (g.band == b).mean() for b in BANDS})
            parts.append(row)
    return pd.DataFrame(parts)


# --------------------------------------------------------------------------- backtest
def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the positive class (Mann-Whitney, ties counted half);
    NaN without both classes. The Mann-Whitney U of the positives from their rank sum (ranks of ties averaged,
    by pandas: scipy's mannwhitneyu gives the same U but costs every kernel that draws the page 1 s to import)."""
    scores, positive = np.asarray(scores, dtype="float64"), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@table(
    schema={
        "account_id": "str",
        "key": "int64",
        "month": "datetime",
        "segment": "str",
        "health": "float64",
        "band": "str",
        "churned": "bool",
        "contracted": "bool",
    },
    export=False,
)
def health_outcomes(health_history: pd.DataFrame, account_months: pd.DataFrame) -> pd.DataFrame:
    """Every scored account-month with what happened in the following 3 months: churned (not paying at the
    end of month + 3) or contracted (paying with less MRR); only months whose 3 months are in the data."""
    last = int(account_months.key.max()) if len(account_months) else 0
    later = account_months.set_index(KEYS).mrr
    h = health_history[health_history.health.notna() & (health_history.key + 3 <= last)].copy()
    mrr_after = pd.Series(later.reindex(pd.MultiIndex.from_arrays([h.account_id, h.key + 3])).to_numpy(), index=h.index)
    h["churned"] = mrr_after.isna()
    h["contracted"] = mrr_after.notna() & (mrr_after < h.mrr - 1e-6)
    return h[["account_id", "key", "month", "segment", "health", "band", "churned", "contracted"]]


@table(
    schema={
        "band": "str",
        "account_months": "int64",
        "churned": "int64",
        "churn_rate": "float64",
        "contracted": "int64",
        "contraction_rate": "float64",
        "auc": "float64",
    }
)
def health_backtest(as_of: int, health_outcomes: pd.DataFrame) -> pd.DataFrame:
    """Churn and contraction in the 3 months after a score, by health band, over the 12 scored months ending
    3 months before the workbook's month (score at M-3, outcome by M), with the ROC AUC of health against churn."""
    o = health_outcomes[(health_outcomes.key <= as_of - 3) & (health_outcomes.key > as_of - 15)]
    rows = []
    for band in (*BANDS, "all"):
        g = o if band == "all" else o[o.band == band]
        rows.append(
            {
                "band": band,
                "account_months": len(g),
                "churned": int(g.churned.sum()),
                "churn_rate": safe_ratio(g.churned.sum(), len(g)),
                "contracted": int(g.contracted.sum()),
                "contraction_rate": safe_ratio(g.contracted.sum(), len(g)),
                "auc": roc_auc(-g.health, g.churned) if band == "all" else np.nan,
            }
        )
    return pd.DataFrame(rows)


@metric(
    label="Health backtest (ROC AUC)",
    formula="ROC AUC of the health score at M-3 (lower = riskier) against "
    "churn by the end of M, over the accounts paying at M-3",
    unit="number",
    direction="higher",
    level="supporting",
    sources=("C", "P"),
    area="success",
    target=0.7,
    tile=5,
)
def health_backtest_auc(health_outcomes: pd.DataFrame, calendar: pl.DataFrame) -> pd.DataFrame:
    """How well the health score three months ago ranked the accounts that churned since (0.5 = chance)."""
    keys = calendar["month"].to_list()
    by_key = {k: g for k, g in health_outcomes.groupby("key")}
    values, n = [], []
    for k in keys:
        g = by_key.get(k - 3)
        values.append(roc_auc(-g.health, g.churned) if g is not None else np.nan)
        n.append(int(g.churned.sum()) if g is not None else 0)
    return month_series([month_of(k) for k in keys], values, n)


# --------------------------------------------------------------------------- at risk
@table(
    schema={
        "account_id": "str",
        "account_name": "str",
        "segment": "str",
        "csm_id": "str",
        "health": "float64",
        "change": "float64",
        "band": "str",
        "reason": "str",
        "pulled_down_by": "str",
        "term_end": "datetime",
        "arr": "float64",
        "stage": "str",
    }
)
def at_risk_accounts(
    success_settings: SuccessSettings, account_health: pd.DataFrame, account_months: pd.DataFrame, as_of: int
) -> pd.DataFrame:
    """Red accounts, and accounts whose score fell by falling_points or more over falling_months: the
    components that pulled them down (score below 50, lowest first), next term end, ARR and CSM."""
    s = success_settings
    h = account_health
    risky = h[(h.band == "red") | (h.change <= -s.falling_points)].copy()
    names = [c for c in h.columns if c.startswith("score_")]

    def weakest(row) -> str:
        low = sorted((row[c], c[len("score_") :]) for c in names if pd.notna(row[c]) and row[c] < 50)
        return ", ".join(f"{name} {value:.0f}" for value, name in low) or "-"

    risky["pulled_down_by"] = [weakest(r) for _, r in risky.iterrows()]
    risky["reason"] = np.where(risky.band == "red", "red", "falling")
    terms = account_months[account_months.key == as_of].set_index("account_id").term_end
    risky["term_end"] = risky.account_id.map(terms)
    cols = [
        "account_id",
        "account_name",
        "segment",
        "csm_id",
        "health",
        "change",
        "band",
        "reason",
        "pulled_down_by",
        "term_end",
        "arr",
        "stage",
    ]
    return risky.sort_values(["health", "arr"], ascending=[True, False])[cols].reset_index(drop=True)


@table(schema={"account_id": "str", "month": "datetime", "health": "float64", "band": "str"}, export=False)
def health_trend(health_history: pd.DataFrame) -> pd.DataFrame:
    """Health score of every account at every month end (account_id, month, health, band), for trends."""
    return health_history[["account_id", "month", "health", "band"]].reset_index(drop=True)
