"""Where revenue is heading: a forecast of MRR, ARR and paying accounts, and its backtest (issue 22).

The model, made at a month end M with only what was known at M (rows dated up to M's end):

- the existing book: each account paying at M moves month by month along the churn, contraction and expansion
  rates of its cohort age band, estimated from the last `lookback_months` of account transitions of its segment
  (pooled over segments where a segment's band has fewer than `min_exposure_accounts` account-months). Accounts
  in an annual (or longer) contract term are rated with the mid-term rates until their renewal month, which has
  its own (renewal) rates; the product of the monthly rates is the cohort's revenue retention by age;
- known changes: an account whose every open subscription has an end date leaves in that month; contract terms
  put its churn risk on its renewal month;
- new business: the trailing `run_rate_months` run-rate of new and reactivated MRR, with its sales-led share
  replaced for the first `pipeline_months` by the open pipeline (amount x stage weight, landing at created +
  the median sales cycle); new business then decays like a new cohort;
- intervals: quantiles of the forecast's own relative errors at each horizon in the backtest.

Everything is computed from monthly aggregates of one account x month panel built once, so the backtest (the
forecast re-made at each of the past `backtest_origins` month ends) costs a few milliseconds per month.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from .. import params
from ..frames import key_of, month_of, to_pandas
from ..params import Conventions, ForecastSettings
from ..sources import Tables
from .registry import table

MONTHLY, MID_TERM, RENEWAL = 0, 1, 2
CLASSES = ("monthly", "mid_term", "renewal")
STATS = ("base_mrr", "churn_mrr", "contraction_mrr", "expansion_mrr", "base_accounts", "churned_accounts")
METHODS = ("model", "no_change", "trailing_growth")
METHOD_LABELS = {
    "model": "forecast",
    "no_change": "no change",
    "trailing_growth": "trailing 3-month growth",
}
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Scenario:
    """Changes to the model's rates, as fractions: new business +0.1 = 10 % more new MRR and accounts every
    month; churn +0.1 = 10 % more churned and contracted MRR (and churned accounts); expansion likewise."""

    new_business: float = 0.0
    churn: float = 0.0
    expansion: float = 0.0


@dataclass(frozen=True)
class ForecastInputs:
    """The monthly aggregates every forecast and backtest month reads, built once per workbook."""

    keys: np.ndarray  # month key of each panel column
    mrr: np.ndarray  # accounts x months: MRR at each month end (0 when not paying)
    cohort: np.ndarray  # column index of each account's first paying month (-1: never paid)
    group: np.ndarray  # index into `groups` of each account
    groups: tuple[str, ...]
    renewal: np.ndarray  # accounts x months: month key of the next contract renewal (-1: no contract term)
    period: np.ndarray  # accounts x months: that contract's term in months (0: none)
    transitions: np.ndarray  # months x classes x groups x age bands x STATS (transition into the month)
    new_business: np.ndarray  # months x groups x (mrr, accounts, sales-led mrr, sales-led accounts)
    subscriptions: pd.DataFrame  # account index, start, end (for scheduled ends)
    opportunities: pd.DataFrame  # created_at, closed_at, stage, outcome, amount, group index
    bands: tuple[int, ...]

    def column(self, key: int) -> int:
        return int(key - self.keys[0])


def _band(age: np.ndarray, bands: tuple[int, ...]) -> np.ndarray:
    return np.searchsorted(np.asarray(bands), age, side="right") - 1


def forecast_inputs(
    tables: Tables,
    calendar: pl.DataFrame,
    account_mrr: pd.DataFrame,
    opportunity_outcomes: pd.DataFrame,
    settings: ForecastSettings,
    conventions: Conventions,
) -> ForecastInputs:
    """The account x month panel and its monthly aggregates (transitions by class, group and age band; new
    business by group), from the workbook's registered tables."""
    keys = np.asarray(calendar["month"].to_list(), dtype="int64")
    accounts = to_pandas(tables.lazy("accounts").select("account_id", "segment"), sort=["account_id"])
    ids = accounts.account_id.to_numpy()
    index = pd.Series(np.arange(len(ids)), index=ids)
    groups = tuple(sorted(accounts.segment.fillna("unknown").unique()))
    group = pd.Categorical(accounts.segment.fillna("unknown"), categories=groups).codes.astype("int64")
    n, t = len(ids), len(keys)
    mrr = np.zeros((n, t))
    if len(account_mrr):
        rows = index.reindex(account_mrr.account_id).to_numpy()
        cols = (account_mrr.month.dt.year * 12 + account_mrr.month.dt.month - 1).to_numpy() - keys[0]
        ok = ~np.isnan(rows.astype("float64")) & (cols >= 0) & (cols < t)
        mrr[rows[ok].astype("int64"), cols[ok]] = account_mrr.mrr.to_numpy()[ok]

    subs = to_pandas(
        tables.lazy("subscriptions").select("account_id", "start_date", "end_date", "billing_period_months"),
        sort=["account_id", "start_date"],
    )
    subs = subs[subs.account_id.isin(index.index)]
    subs = pd.DataFrame(
        {
            "account": index.reindex(subs.account_id).to_numpy(),
            "start": pd.to_datetime(subs.start_date),
            "end": pd.to_datetime(subs.end_date),
            "period": subs.billing_period_months.to_numpy(dtype="int64"),
        }
    )
    renewal, period = _contract_terms(subs, keys, n)

    won = opportunity_outcomes[opportunity_outcomes.outcome == "won"]
    first_won = won.groupby("account_id").closed_at.min()
    won_key = index.reindex(first_won.index).dropna().astype("int64")
    sales_led_from = np.full(n, np.iinfo("int64").max)
    sales_led_from[won_key.to_numpy()] = [key_of(d) for d in first_won.loc[won_key.index]]

    return panel_inputs(
        keys,
        mrr,
        group,
        groups,
        renewal,
        period,
        sales_led_from,
        subs,
        _opportunity_groups(tables, opportunity_outcomes, accounts, groups, conventions),
        tuple(settings.age_buckets),
    )


def panel_inputs(
    keys: np.ndarray,
    mrr: np.ndarray,
    group: np.ndarray,
    groups: tuple[str, ...],
    renewal: np.ndarray | None = None,
    period: np.ndarray | None = None,
    sales_led_from: np.ndarray | None = None,
    subscriptions: pd.DataFrame | None = None,
    opportunities: pd.DataFrame | None = None,
    bands: tuple[int, ...] = (0,),
) -> ForecastInputs:
    """`ForecastInputs` from an account x month MRR panel (contracts, sales-led accounts, subscriptions and
    opportunities optional): the transitions into each month by class, group and age band, and new business."""
    n, t = mrr.shape
    renewal = np.full((n, t), -1, dtype="int64") if renewal is None else renewal
    period = np.zeros((n, t), dtype="int64") if period is None else period
    sales_led_from = np.full(n, np.iinfo("int64").max) if sales_led_from is None else sales_led_from
    if subscriptions is None:
        subscriptions = pd.DataFrame(
            {
                "account": pd.Series(dtype="int64"),
                "start": pd.Series(dtype="datetime64[ns]"),
                "end": pd.Series(dtype="datetime64[ns]"),
                "period": pd.Series(dtype="int64"),
            }
        )
    if opportunities is None:
        opportunities = pd.DataFrame(columns=["created_at", "closed_at", "stage", "weight", "amount", "group"])
    paying = mrr > 0
    cohort = np.where(paying.any(axis=1), paying.argmax(axis=1), -1)
    transitions = np.zeros((t, len(CLASSES), len(groups), len(bands), len(STATS)))
    new_business = np.zeros((t, len(groups), 4))
    for j in range(1, t):
        prev, cur = mrr[:, j - 1], mrr[:, j]
        base = prev > 0
        age = (j - 1) - cohort[base]
        cls = np.where(renewal[base, j - 1] < 0, MONTHLY, np.where(renewal[base, j - 1] == keys[j], RENEWAL, MID_TERM))
        where = (np.full(base.sum(), j), cls, group[base], _band(age, bands))
        p, c = prev[base], cur[base]
        for s, values in enumerate(
            (
                p,
                np.where(c == 0, p, 0.0),
                np.where((c > 0) & (c < p), p - c, 0.0),
                np.where(c > p, c - p, 0.0),
                np.ones_like(p),
                (c == 0).astype("float64"),
            )
        ):
            np.add.at(transitions[..., s], where, values)
        gain = (prev == 0) & (cur > 0)
        led = gain & (sales_led_from <= keys[j])
        for s, values in enumerate((np.where(gain, cur, 0.0), gain * 1.0, np.where(led, cur, 0.0), led * 1.0)):
            new_business[j, :, s] = np.bincount(group, weights=values, minlength=len(groups))

    return ForecastInputs(
        np.asarray(keys, dtype="int64"),
        mrr,
        cohort,
        np.asarray(group, dtype="int64"),
        tuple(groups),
        renewal,
        period,
        transitions,
        new_business,
        subscriptions,
        opportunities,
        tuple(bands),
    )


def _contract_terms(subs: pd.DataFrame, keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per account and month end: the month key its current contract term (12 months or more) ends in, and the
    term; -1 and 0 without one. A term ends start + k x term months after its start, the first such month after
    the month end (lifecycle.term_ends, by month)."""
    renewal = np.full((n, len(keys)), -1, dtype="int64")
    period = np.zeros((n, len(keys)), dtype="int64")
    month_ends = pd.DatetimeIndex([month_of(k) + pd.offsets.MonthEnd(0) for k in keys])
    for a, start, end, term in subs[subs.period >= 12].itertuples(index=False):
        active = (start <= month_ends) & (pd.isna(end) | (end > month_ends))
        cols = np.flatnonzero(active)
        if not len(cols):
            continue
        first = key_of(start)
        due = first + ((keys[cols] - first) // term + 1) * term
        current = renewal[a, cols]
        take = (current < 0) | (due < current)
        renewal[a, cols[take]] = due[take]
        period[a, cols[take]] = term
    return renewal, period


def _opportunity_groups(
    tables: Tables,
    outcomes: pd.DataFrame,
    accounts: pd.DataFrame,
    groups: tuple[str, ...],
    conventions: Conventions,
) -> pd.DataFrame:
    """Opportunities with the forecast group (segment) of their account, else of their lead (-1: unknown)."""
    segment = accounts.set_index("account_id").segment
    group_of = outcomes.account_id.map(segment)
    if tables.has("leads") and "lead_id" in outcomes:
        leads = to_pandas(tables.lazy("leads").select("lead_id", "segment")).set_index("lead_id").segment
        group_of = group_of.fillna(outcomes.lead_id.map(leads))
    code = pd.Categorical(group_of, categories=groups).codes.astype("int64")
    weights = conventions.pipeline_stage_weights
    return pd.DataFrame(
        {
            "created_at": _naive(outcomes.created_at),
            "closed_at": _naive(outcomes.closed_at),
            "stage": outcomes.stage.astype(object),
            "weight": outcomes.stage.map(weights).astype("float64"),
            "amount": outcomes.amount.astype("float64"),
            "group": code,
        }
    )


def _naive(stamps: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (opportunity times are UTC-aware; month starts are naive)."""
    out = pd.to_datetime(stamps)
    return out.dt.tz_convert(None) if out.dt.tz is not None else out


# --------------------------------------------------------------------------- rates
@dataclass(frozen=True)
class Rates:
    """Monthly rates by class x group x age band, after pooling thin cells: churned, contracted and expanded MRR
    per MRR at the month start, and churned accounts per account."""

    churn: np.ndarray
    contraction: np.ndarray
    expansion: np.ndarray
    logo_churn: np.ndarray
    pooled: np.ndarray  # True where the cell uses a pooled rate


def rates_at(inputs: ForecastInputs, origin: int, settings: ForecastSettings) -> Rates:
    """The rates known at month key `origin`: from the transitions into the last `lookback_months` months up to it.

    A cell (class, segment, band) with fewer than `min_exposure_accounts` account-months takes, in order, the
    band pooled over segments, the segment over all bands, every segment and band, and for contract classes
    without any history the monthly rates."""
    j = inputs.column(origin)
    window = inputs.transitions[max(1, j - settings.lookback_months + 1) : j + 1].sum(axis=0)
    candidates = [
        window,
        np.broadcast_to(window.sum(axis=1, keepdims=True), window.shape),
        np.broadcast_to(window.sum(axis=2, keepdims=True), window.shape),
        np.broadcast_to(window.sum(axis=(1, 2), keepdims=True), window.shape),
    ]
    chosen = np.zeros(window.shape)
    pooled = np.ones(window.shape[:3], dtype=bool)
    done = np.zeros(window.shape[:3], dtype=bool)
    for level, cand in enumerate(candidates):
        enough = ~done & (cand[..., 4] >= max(settings.min_exposure_accounts, 1))
        chosen[enough] = cand[enough]
        pooled[enough] = level > 0
        done |= enough
    last = candidates[-1]
    rest = ~done & (last[..., 4] > 0)
    chosen[rest] = last[rest]
    done |= rest
    for cls in (MID_TERM, RENEWAL):  # a contract class never seen: the monthly rates
        chosen[cls][~done[cls]] = chosen[MONTHLY][~done[cls]]
    base, accounts = chosen[..., 0], chosen[..., 4]

    def rate(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    return Rates(
        rate(chosen[..., 1], base),
        rate(chosen[..., 2], base),
        rate(chosen[..., 3], base),
        rate(chosen[..., 5], accounts),
        pooled,
    )


# --------------------------------------------------------------------------- projection
def scheduled_end_keys(inputs: ForecastInputs, origin: int) -> np.ndarray:
    """Per account: the month key it leaves in when every subscription it has open at `origin`'s month end has an
    end date (the latest of them), else a key past any horizon. Only subscriptions started by then count."""
    end_of_month = month_of(origin) + pd.offsets.MonthEnd(0)
    s = inputs.subscriptions
    open_then = s[(s.start <= end_of_month) & (s.end.isna() | (s.end > end_of_month))]
    out = np.full(len(inputs.cohort), np.iinfo("int64").max)
    if open_then.empty:
        return out
    by = open_then.groupby("account")
    ends = by.end.max()[~by.end.apply(lambda e: e.isna().any())]
    out[ends.index.to_numpy(dtype="int64")] = [key_of(e) for e in ends]
    return out


def pipeline_landing(
    inputs: ForecastInputs, origin: int, settings: ForecastSettings, lookback: int
) -> tuple[np.ndarray, np.ndarray]:
    """Expected new MRR and accounts from the pipeline open at `origin`'s month end, per month ahead
    (1..pipeline_months) and group: amount / pipeline_amount_months x the stage weight (the trailing win rate for
    an opportunity whose stage then is not known because it has closed since), landing at created + the median
    cycle of the deals won in the lookback, evenly over the pipeline months when that is past; a deal open for
    more than `stale_after_cycles` median cycles is stale and left out."""
    h = settings.pipeline_months
    mrr = np.zeros((h + 1, len(inputs.groups)))
    count = np.zeros((h + 1, len(inputs.groups)))
    o = inputs.opportunities
    if h == 0 or o.empty:
        return mrr[1:], count[1:]
    end = month_of(origin + 1)  # the first instant after the month
    start = month_of(origin - lookback + 1)
    closed = o.closed_at.notna() & (o.closed_at < end)
    recent = closed & (o.closed_at >= start)
    won = recent & (o.stage == "won")
    lost = recent & (o.stage == "lost")
    decided = int(won.sum() + lost.sum())
    win_rate = won.sum() / decided if decided else 0.0
    cycle = (o.closed_at[won] - o.created_at[won]).median() if won.any() else pd.Timedelta(0)
    open_then = (o.created_at < end) & ~closed
    p = o[open_then]
    unknown = p.closed_at.notna() | p.stage.isin(["won", "lost"])  # closed after the month: its stage then is lost
    weight = np.where(unknown, win_rate, p.weight.fillna(0.0))
    age = end - p.created_at
    fresh = (age <= cycle * settings.stale_after_cycles).to_numpy()  # older deals are stale: left out
    lands = p.created_at + cycle
    due = (lands.dt.year * 12 + lands.dt.month - 1).to_numpy() - origin
    group = p.group.to_numpy()
    value = p.amount.to_numpy() * weight
    for ahead in range(1, h + 1):  # a deal past its expected close lands evenly over the pipeline months
        share = np.where(due <= 0, 1 / h, (due == ahead) * 1.0) * fresh * (group >= 0)
        np.add.at(mrr[ahead], group[group >= 0], (value * share)[group >= 0])
        np.add.at(count[ahead], group[group >= 0], (weight * share)[group >= 0])
    return mrr[1:] / settings.pipeline_amount_months, count[1:]


def project(
    inputs: ForecastInputs,
    origin: int,
    settings: ForecastSettings,
    scenario: Scenario = Scenario(),
    scheduled: bool = True,
) -> pd.DataFrame:
    """The forecast made at month key `origin` for 1..horizon_months ahead, per group: MRR of the existing book and
    of new business, accounts of each, and their sums (expected values)."""
    j = inputs.column(origin)
    rates = rates_at(inputs, origin, settings)
    h_max = settings.horizon_months
    m = inputs.mrr[:, j].copy()
    alive = (m > 0).astype("float64")
    book = m > 0
    age0 = j - inputs.cohort
    grp = inputs.group
    renewal, term = inputs.renewal[:, j], inputs.period[:, j]
    leaves = scheduled_end_keys(inputs, origin) if scheduled else np.full(len(m), np.iinfo("int64").max)
    up_churn, up_exp, up_new = 1 + scenario.churn, 1 + scenario.expansion, 1 + scenario.new_business

    lo = max(1, j - settings.run_rate_months + 1)
    run = inputs.new_business[lo : j + 1].sum(axis=0) / settings.run_rate_months  # groups x 4
    pipe_mrr, pipe_n = pipeline_landing(inputs, origin, settings, settings.lookback_months)
    new_mrr = np.zeros((0, len(inputs.groups)))  # new business cohorts so far: one row per landing month
    new_n = np.zeros((0, len(inputs.groups)))
    rows = []
    for k in range(1, h_max + 1):
        s = origin + k
        age = age0 + k - 1
        contract = renewal >= 0
        at_renewal = contract & (s >= renewal) & ((s - renewal) % np.maximum(term, 1) == 0)
        cls = np.where(contract, np.where(at_renewal, RENEWAL, MID_TERM), MONTHLY)
        b = _band(np.maximum(age, 0), inputs.bands)
        known = s < leaves
        churn = np.where(known, rates.churn[cls, grp, b], 0.0) * up_churn
        factor = 1 - churn - rates.contraction[cls, grp, b] * up_churn + rates.expansion[cls, grp, b] * up_exp
        logo = np.where(known, rates.logo_churn[cls, grp, b], 0.0) * up_churn
        m = np.where(s >= leaves, 0.0, m * np.maximum(factor, 0.0))
        alive = np.where(s >= leaves, 0.0, alive * np.clip(1 - logo, 0.0, 1.0))
        # new business cohorts age one month, then this month's lands
        ages = np.arange(len(new_mrr))[::-1]  # months since each landed
        nb = _band(ages, inputs.bands)
        if len(new_mrr):
            f_new = (
                1
                - (rates.churn[MONTHLY][:, nb].T + rates.contraction[MONTHLY][:, nb].T) * up_churn
                + rates.expansion[MONTHLY][:, nb].T * up_exp
            )
            new_mrr = new_mrr * np.maximum(f_new, 0.0)
            new_n = new_n * np.clip(1 - rates.logo_churn[MONTHLY][:, nb].T * up_churn, 0.0, 1.0)
        lands_mrr, lands_n = run[:, 0].copy(), run[:, 1].copy()
        if k <= settings.pipeline_months:
            lands_mrr += pipe_mrr[k - 1] - run[:, 2]
            lands_n += pipe_n[k - 1] - run[:, 3]
        new_mrr = np.vstack([new_mrr, np.maximum(lands_mrr, 0.0) * up_new])
        new_n = np.vstack([new_n, np.maximum(lands_n, 0.0) * up_new])
        book_mrr = np.bincount(grp[book], weights=m[book], minlength=len(inputs.groups))
        book_n = np.bincount(grp[book], weights=alive[book], minlength=len(inputs.groups))
        for g, name in enumerate(inputs.groups):
            rows.append((name, k, month_of(s), book_mrr[g], new_mrr[:, g].sum(), book_n[g], new_n[:, g].sum()))
    out = pd.DataFrame(
        rows, columns=["segment", "horizon", "month", "book_mrr", "new_mrr", "book_accounts", "new_accounts"]
    )
    out["mrr"] = out.book_mrr + out.new_mrr
    out["accounts"] = out.book_accounts + out.new_accounts
    return out


def totals(projection: pd.DataFrame) -> pd.DataFrame:
    """A projection summed over its groups, per horizon."""
    cols = ["book_mrr", "new_mrr", "mrr", "book_accounts", "new_accounts", "accounts"]
    return projection.groupby(["horizon", "month"], as_index=False)[cols].sum()


# --------------------------------------------------------------------------- backtest
def backtest_origins(inputs: ForecastInputs, as_of: int, settings: ForecastSettings) -> list[int]:
    """The past month ends the forecast is re-made at: the last `backtest_origins` before `as_of` that have at
    least three paying months behind them (what the trailing-growth baseline needs)."""
    total = inputs.mrr.sum(axis=0)
    paying = np.flatnonzero(total > 0)
    if not len(paying):
        return []
    first = int(inputs.keys[paying[0]]) + 3
    return [k for k in range(max(first, as_of - settings.backtest_origins), as_of)]


def backtest_forecasts(inputs: ForecastInputs, as_of: int, settings: ForecastSettings) -> pd.DataFrame:
    """Every forecast the backtest makes (origin, horizon, method) with what happened: the model re-made at each
    origin from what was known then, and the two baselines (no change; MRR compounding at its trailing
    three-month growth, as Baremetrics shows it)."""
    total = inputs.mrr.sum(axis=0)
    rows = []
    for origin in backtest_origins(inputs, as_of, settings):
        j = inputs.column(origin)
        model = totals(project(inputs, origin, settings, scheduled=settings.backtest_scheduled_ends))
        growth = (total[j] / total[j - 3]) ** (1 / 3) - 1 if total[j - 3] > 0 else 0.0
        for k in range(1, min(settings.horizon_months, as_of - origin) + 1):
            actual = total[j + k]
            forecast = {
                "model": float(model.mrr.iloc[k - 1]),
                "no_change": total[j],
                "trailing_growth": total[j] * (1 + growth) ** k,
            }
            rows += [(month_of(origin), k, method, value, actual) for method, value in forecast.items()]
    out = pd.DataFrame(rows, columns=["origin", "horizon", "method", "forecast", "actual"])
    out["error"] = np.where(out.actual > 0, (out.forecast - out.actual) / out.actual.where(out.actual > 0), np.nan)
    return out


def backtest_summary(forecasts: pd.DataFrame, horizons: list[int]) -> pd.DataFrame:
    """Per horizon: how many past forecasts, and per method the mean absolute percentage error and the bias (mean
    signed error: above zero, forecasts ran high); `best` names the method with the smallest error (the model on a
    tie)."""
    rows = []
    for h in horizons:
        at = forecasts[(forecasts.horizon == h) & forecasts.error.notna()]
        row: dict = {"horizon": h, "n": int((at.method == "model").sum())}
        for method in METHODS:
            e = at.error[at.method == method]
            row[f"{method}_error"] = float(e.abs().mean()) if len(e) else math.nan
            row[f"{method}_bias"] = float(e.mean()) if len(e) else math.nan
        errors = {m: row[f"{m}_error"] for m in METHODS if not math.isnan(row[f"{m}_error"])}
        smallest = min(errors.values()) if errors else math.nan
        row["best"] = next((m for m in errors if errors[m] <= smallest + 1e-9), "")  # a tie goes to the model
        rows.append(row)
    return pd.DataFrame(rows)


def interval_quantiles(forecasts: pd.DataFrame, settings: ForecastSettings) -> pd.DataFrame:
    """Per horizon 1..horizon_months: the `interval` quantiles of the model's past relative errors (actual /
    forecast - 1) and how many there are; n/a below `min_interval_errors`."""
    model = forecasts[(forecasts.method == "model") & (forecasts.forecast > 0)]
    rows = []
    for h in range(1, settings.horizon_months + 1):
        ratio = (model.actual[model.horizon == h] / model.forecast[model.horizon == h] - 1).to_numpy()
        ok = len(ratio) >= settings.min_interval_errors
        lo, hi = np.quantile(ratio, settings.interval) if ok else (math.nan, math.nan)
        rows.append((h, len(ratio), lo, hi))
    return pd.DataFrame(rows, columns=["horizon", "errors", "low", "high"])


def forecast_frame(
    inputs: ForecastInputs,
    as_of: int,
    settings: ForecastSettings,
    quantiles: pd.DataFrame,
    scenario: Scenario = Scenario(),
) -> pd.DataFrame:
    """The forecast table: per segment and in total (`segment` "total"), per month ahead, MRR (book and new), ARR
    and paying accounts; the total with its interval from the backtest's errors at that horizon."""
    by_group = project(inputs, as_of, settings, scenario, scheduled=settings.scheduled_ends)
    total = totals(by_group).assign(segment="total")
    out = pd.concat([by_group, total], ignore_index=True)
    q = quantiles.set_index("horizon")
    is_total = out.segment == "total"
    out["mrr_low"] = np.where(is_total, out.mrr * (1 + out.horizon.map(q.low)), np.nan)
    out["mrr_high"] = np.where(is_total, out.mrr * (1 + out.horizon.map(q.high)), np.nan)
    out["arr"] = 12 * out.mrr
    out["arr_low"], out["arr_high"] = 12 * out.mrr_low, 12 * out.mrr_high
    cols = ["segment", "horizon", "month", "mrr", "mrr_low", "mrr_high", "arr", "arr_low", "arr_high"]
    cols += ["book_mrr", "new_mrr", "accounts", "book_accounts", "new_accounts"]
    return out[cols]


def target_month(forecast: pd.DataFrame, target: float | None) -> pd.Timestamp | None:
    """The first forecast month whose total ARR reaches `target` (None: no target, or not within the horizon)."""
    if target is None or math.isnan(target):
        return None
    total = forecast[(forecast.segment == "total") & (forecast.arr >= target)]
    return None if total.empty else total.month.iloc[0]


# --------------------------------------------------------------------------- registered tables
_MODELS: OrderedDict[tuple, tuple[tuple, ForecastInputs]] = OrderedDict()  # the last few models built here


def forecast_model(
    tables: Tables,
    calendar: pl.DataFrame,
    conventions: Conventions,
    account_mrr: pd.DataFrame,
    opportunity_outcomes: pd.DataFrame,
) -> ForecastInputs:
    """The forecast's monthly aggregates for these (registered) tables, built once and kept while the same frames
    are in use: every forecast table, the page's scenarios and the driver tables read the same one. It is not a
    registered table itself (the results store holds frames only)."""
    settings = params.forecast_settings()
    held = (tables, calendar, account_mrr, opportunity_outcomes)  # kept alive with the entry, so ids stay unique
    key = (
        *(id(x) for x in held),
        tuple(settings.age_buckets),
        tuple(sorted(conventions.pipeline_stage_weights.items())),
    )
    if key not in _MODELS:
        _MODELS[key] = (
            held,
            forecast_inputs(tables, calendar, account_mrr, opportunity_outcomes, settings, conventions),
        )
        while len(_MODELS) > 8:
            _MODELS.popitem(last=False)
    _MODELS.move_to_end(key)
    return _MODELS[key][1]


def model_of(wb) -> ForecastInputs:
    """The forecast model of workbook `wb` (its segment and month)."""
    return forecast_model(
        wb.tables, wb.calendar, wb.conventions, wb.table("account_mrr"), wb.table("opportunity_outcomes")
    )


@table(
    schema={
        "origin": "datetime",
        "horizon": "int64",
        "method": "str",
        "forecast": "float64",
        "actual": "float64",
        "error": "float64",
    },
    export=False,
)
def forecast_errors(
    tables: Tables,
    calendar: pl.DataFrame,
    conventions: Conventions,
    as_of: int,
    account_mrr: pd.DataFrame,
    opportunity_outcomes: pd.DataFrame,
) -> pd.DataFrame:
    """Every backtest forecast: origin, horizon, method (model or a baseline), forecast, actual MRR and relative
    error."""
    model = forecast_model(tables, calendar, conventions, account_mrr, opportunity_outcomes)
    return backtest_forecasts(model, as_of, params.forecast_settings())


@table(
    schema={
        "segment": "str",
        "horizon": "int64",
        "month": "datetime",
        "mrr": "float64",
        "mrr_low": "float64",
        "mrr_high": "float64",
        "arr": "float64",
        "arr_low": "float64",
        "arr_high": "float64",
        "book_mrr": "float64",
        "new_mrr": "float64",
        "accounts": "float64",
        "book_accounts": "float64",
        "new_accounts": "float64",
    }
)
def forecast(
    tables: Tables,
    calendar: pl.DataFrame,
    conventions: Conventions,
    as_of: int,
    account_mrr: pd.DataFrame,
    opportunity_outcomes: pd.DataFrame,
    forecast_errors: pd.DataFrame,
) -> pd.DataFrame:
    """MRR, ARR and paying accounts forecast per segment and month ahead, the total with its backtest interval."""
    settings = params.forecast_settings()
    model = forecast_model(tables, calendar, conventions, account_mrr, opportunity_outcomes)
    return forecast_frame(model, as_of, settings, interval_quantiles(forecast_errors, settings))


@table(
    schema={
        "horizon": "int64",
        "n": "int64",
        "model_error": "float64",
        "model_bias": "float64",
        "no_change_error": "float64",
        "no_change_bias": "float64",
        "trailing_growth_error": "float64",
        "trailing_growth_bias": "float64",
        "best": "str",
    }
)
def forecast_backtest(forecast_errors: pd.DataFrame) -> pd.DataFrame:
    """Backtest of the MRR forecast against two baselines: mean absolute and signed error per horizon."""
    return backtest_summary(forecast_errors, params.forecast_settings().backtest_horizons)
