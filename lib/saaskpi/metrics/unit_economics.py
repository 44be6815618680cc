"""Unit economics (catalog section 4 and the LTV parts of section 1): CAC, payback, LTV:CAC, gross margin,
magic number, burn multiple, and the segment x channel table.

Spend is allocated once, company-wide, before a segment is picked (`allocate_spend`, called by the
workbook): S&M spend tagged to a segment and a channel stays where it is; what is untagged on either
side is split by the cells' share of the month's new customers (`untagged_spend_allocation`); other
untagged spend (COGS, CS, R&D, G&A) by the segments' share of MRR. A segment's workbook then sees its
own share of every row, so its CAC, gross margin and burn add up to the company's.

A new customer is an account whose first paying month end falls in M (the `new` movement of the MRR
bridge). CAC attributes the S&M spend of M - `spend_lag_months` to the customers won in M.
"""

from __future__ import annotations

import math

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from ..frames import empty_frame, month_of, safe_ratio, to_pandas
from ..params import Conventions
from ..sources import Tables
from ..stats import target_status
from .cohorts import expected_lifetime_months, first_spells, spells_at
from .registry import METRICS, metric, table
from .revenue import reference_fx_rates
from .series import month_series, monthly_sum, trailing_sum

SPEND_COLUMNS = ["month", "spend_month", "category", "segment", "channel", "item", "amount", "basis"]
UNKNOWN_CHANNEL = "unknown"
TOTAL_SPEND_CATEGORIES = ("marketing", "sales", "cogs", "rnd", "g_and_a")  # burn needs at least these


# --------------------------------------------------------------------------- allocation
def spend_in_reporting_currency(tables: Tables, conventions: Conventions) -> pd.DataFrame:
    """The spend table in the reporting currency (month, category, channel, segment, item, amount); empty without it."""
    if not tables.has("spend"):
        return empty_frame(
            {
                "month": "datetime64[ns]",
                "category": object,
                "channel": object,
                "segment": object,
                "item": object,
                "amount": "float64",
            }
        )
    fx = tables.from_polars(reference_fx_rates(tables, conventions))
    s = tables.lazy("spend").join(fx, on="currency", how="left")
    item = nw.col("item") if "item" in s.columns else nw.lit(None, dtype=nw.String)
    out = to_pandas(
        s.select(
            "month",
            "category",
            "channel",
            "segment",
            item.alias("item"),
            (nw.col("amount") * nw.col("rate")).alias("amount"),
        )
    )
    out["month"] = pd.to_datetime(out.month).astype("datetime64[ns]")
    return out.astype({"channel": object, "segment": object, "item": object})


def acquisition_drivers(tables: Tables, account_mrr: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """New customers per (month, segment, channel) and MRR per (month, segment), from `tables`' accounts."""
    firsts = new_customer_accounts(tables, account_mrr)
    new = firsts.groupby(["month", "segment", "channel"], as_index=False).size().rename(columns={"size": "accounts"})
    mrr = (
        account_mrr.merge(firsts[["account_id", "segment"]], on="account_id")
        .groupby(["month", "segment"], as_index=False)
        .mrr.sum()
    )
    return new, mrr


def _split(rows: pd.DataFrame, drivers: pd.DataFrame, keys: list[str], weight: str) -> pd.DataFrame:
    """Split each row's amount over the driver rows matching it on `keys`, in proportion to `weight`; rows
    with no positive driver stay whole, marked unallocated."""
    fill = [c for c in ("segment", "channel") if c in drivers.columns and c not in keys]
    r = rows.reset_index(drop=True).assign(_row=lambda d: np.arange(len(d)))
    d = drivers.loc[drivers[weight] > 0, keys + fill + [weight]]
    m = r.drop(columns=fill).merge(d, on=keys, how="inner")
    m["amount"] = m.amount * m[weight] / m.groupby("_row")[weight].transform("sum")
    whole = r[~r._row.isin(m._row)].assign(basis="unallocated")
    return pd.concat([m.drop(columns=weight).assign(basis="allocated"), whole], ignore_index=True).drop(columns="_row")


def allocate_spend(spend: pd.DataFrame, new: pd.DataFrame, mrr: pd.DataFrame, conventions: Conventions) -> pd.DataFrame:
    """Spend rows placed on (attributed month, segment, channel) cells with their basis: tagged, allocated or
    unallocated. S&M rows move to month + spend_lag_months; the month they were spent stays in spend_month."""
    spend = spend.assign(spend_month=spend.month)
    sm = spend.category.isin(conventions.cac_spend_categories)
    lagged = spend[sm].assign(month=spend.month[sm] + pd.DateOffset(months=conventions.spend_lag_months))
    both = lagged.segment.notna() & lagged.channel.notna()
    parts = [lagged[both].assign(basis="tagged")]
    rest = lagged[~both]
    if conventions.untagged_spend_allocation == "unallocated":
        parts.append(rest.assign(basis="unallocated"))
    else:
        parts += [
            _split(rest[rest.channel.notna()], new, ["month", "channel"], "accounts"),
            _split(rest[rest.segment.notna() & rest.channel.isna()], new, ["month", "segment"], "accounts"),
            _split(rest[rest.segment.isna() & rest.channel.isna()], new, ["month"], "accounts"),
        ]
    other = spend[~sm]
    parts += [
        other[other.segment.notna()].assign(basis="tagged"),
        _split(other[other.segment.isna()], mrr, ["month"], "mrr"),
    ]
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_frame(
            {c: "datetime64[ns]" if "month" in c else "float64" if c == "amount" else object for c in SPEND_COLUMNS}
        )
    return pd.concat(parts, ignore_index=True)[SPEND_COLUMNS].astype(
        {"segment": object, "channel": object, "item": object}
    )


def select_spend(
    allocated: pd.DataFrame,
    drivers_all: tuple[pd.DataFrame, pd.DataFrame],
    drivers_selected: tuple[pd.DataFrame, pd.DataFrame],
    segments: list[str] | None,
    conventions: Conventions,
) -> pd.DataFrame:
    """The share of each allocated row that belongs to a selection of accounts: its share of the cell's driver
    (new customers for S&M, MRR otherwise). Where a cell has no driver, a row belongs to the selection when
    its segment tag is among `segments`. Rows without a segment belong to no selection."""
    (new_all, mrr_all), (new_sel, mrr_sel) = drivers_all, drivers_selected
    a = allocated[allocated.segment.notna()].copy()
    sm = a.category.isin(conventions.cac_spend_categories)
    keys_sm, keys_other = ["month", "segment", "channel"], ["month", "segment"]
    share = pd.Series(np.nan, index=a.index)
    for mask, keys, full, sel, w in (
        (sm & a.channel.notna(), keys_sm, new_all, new_sel, "accounts"),
        (sm & a.channel.isna(), keys_other, new_all, new_sel, "accounts"),
        (~sm, keys_other, mrr_all, mrr_sel, "mrr"),
    ):
        cells = full.groupby(keys)[w].sum().rename("all").to_frame().join(sel.groupby(keys)[w].sum().rename("sel"))
        ratio = (cells["sel"].fillna(0) / cells["all"]).where(cells["all"] > 0)
        part = a.loc[mask, keys].merge(ratio.rename("r").reset_index(), on=keys, how="left")
        share.loc[mask] = part.r.to_numpy()
    member = a.segment.isin(segments) if segments is not None else pd.Series(False, index=a.index)
    share = share.fillna(member.astype(float))
    # rows outside the selection stay with amount 0, so that when the spend data starts stays known
    return a.assign(amount=a.amount * share).reset_index(drop=True)


# --------------------------------------------------------------------------- monthly building blocks


@table(
    schema={"month": "datetime", "revenue": "float64", "cogs": "float64", "gross_margin": "float64", "basis": "str"},
    export=False,
)
def gross_margin_by_month(
    calendar: pl.DataFrame, conventions: Conventions, allocated_spend: pd.DataFrame, mrr_movements: pd.DataFrame
) -> pd.DataFrame:
    """Revenue (month-end MRR), COGS and gross margin per month; basis 'cogs' where the spend table has COGS
    for the month, else 'convention' (default_gross_margin)."""
    cogs_rows = allocated_spend[allocated_spend.category == "cogs"]
    cogs = monthly_sum(calendar, cogs_rows, "amount")
    has_cogs = cogs_rows.groupby("month").size().reindex(cogs.index).fillna(0).to_numpy() > 0
    revenue = mrr_movements.set_index("month").mrr_end.reindex(cogs.index).fillna(0.0).to_numpy()
    measured = safe_ratio(revenue - cogs.to_numpy(), revenue)
    return pd.DataFrame(
        {
            "month": cogs.index,
            "revenue": revenue,
            "cogs": cogs.to_numpy(),
            "gross_margin": np.where(has_cogs, measured, conventions.default_gross_margin),
            "basis": np.where(has_cogs, "cogs", "convention"),
        }
    )


@table(
    schema={"account_id": "str", "month": "datetime", "mrr": "float64", "segment": "str", "channel": "str"},
    export=False,
)
def new_customer_accounts(tables: Tables, account_mrr: pd.DataFrame) -> pd.DataFrame:
    """Each customer's first paying month with its MRR then, segment and acquisition channel."""
    if account_mrr.empty:
        return empty_frame(
            {"account_id": object, "month": "datetime64[ns]", "mrr": "float64", "segment": object, "channel": object}
        )
    first = account_mrr.sort_values("month").groupby("account_id", as_index=False).first()
    acc = tables.lazy("accounts")
    channel = (
        nw.col("acquisition_channel").fill_null(UNKNOWN_CHANNEL)
        if "acquisition_channel" in acc.columns
        else nw.lit(UNKNOWN_CHANNEL)
    )
    accounts = to_pandas(acc.select("account_id", "segment", channel.alias("channel")))
    return first.merge(accounts, on="account_id", how="left")[["account_id", "month", "mrr", "segment", "channel"]]


@table(
    schema={
        "month": "datetime",
        "sm_spend": "float64",
        "new_customers": "int64",
        "new_mrr": "float64",
        "cac": "float64",
        "new_arpa": "float64",
        "gross_margin": "float64",
        "payback_months": "float64",
    }
)
def acquisition_by_month(
    calendar: pl.DataFrame,
    conventions: Conventions,
    allocated_spend: pd.DataFrame,
    mrr_movements: pd.DataFrame,
    gross_margin_by_month: pd.DataFrame,
) -> pd.DataFrame:
    """Per month: S&M spend attributed to it, new customers, their MRR, CAC, new ARPA, gross margin, payback."""
    sm = allocated_spend[allocated_spend.category.isin(conventions.cac_spend_categories)]
    spend = monthly_sum(calendar, sm, "amount")
    # before the S&M spend data starts (plus the lag), spend is unknown, not zero
    spend[spend.index < (sm.month.min() if len(sm) else spend.index.max() + pd.DateOffset(months=1))] = np.nan
    m = mrr_movements.set_index("month").reindex(spend.index)
    new_accounts, new_mrr = m.new_accounts.fillna(0).to_numpy(), m.new.fillna(0.0).to_numpy()
    cac = safe_ratio(spend.to_numpy(), new_accounts)
    arpa = safe_ratio(new_mrr, new_accounts)
    margin = gross_margin_by_month.gross_margin.to_numpy()
    return pd.DataFrame(
        {
            "month": spend.index,
            "sm_spend": spend.to_numpy(),
            "new_customers": new_accounts.astype("int64"),
            "new_mrr": new_mrr,
            "cac": cac,
            "new_arpa": arpa,
            "gross_margin": margin,
            "payback_months": safe_ratio(cac, arpa * margin),
        }
    )


# --------------------------------------------------------------------------- metrics
@metric(
    label="S&M spend",
    formula="spend in cac_spend_categories of month M - spend_lag_months",
    unit="currency",
    direction="neutral",
    level="operational",
    sources=("S",),
    area="unit_economics",
    conventions=("cac_spend_categories", "spend_lag_months"),
    needs=("accounts", "subscriptions", "spend"),
    tile=9,
)
def sales_marketing_spend(acquisition_by_month: pd.DataFrame) -> pd.DataFrame:
    """Sales and marketing spend attributed to the month's new customers."""
    a = acquisition_by_month
    return month_series(a.month, a.sm_spend, a.new_customers)


@metric(
    label="New customers",
    formula="accounts whose first paying month end is in M",
    unit="count",
    direction="higher",
    level="supporting",
    sources=("S", "J"),
    area="unit_economics",
    tile=7,
)
def new_customers(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Accounts that paid for the first time at the end of the month."""
    m = mrr_movements
    return month_series(m.month, m.new_accounts, m.new_accounts)


@metric(
    sampled=True,
    label="CAC",
    formula="S&M spend attributed to M / new customers in M; n/a without new customers",
    unit="currency",
    direction="lower",
    level="core",
    sources=("S", "U"),
    area="unit_economics",
    conventions=("cac_spend_categories", "spend_lag_months", "untagged_spend_allocation"),
    needs=("accounts", "subscriptions", "spend"),
    tile=1,
)
def customer_acquisition_cost(acquisition_by_month: pd.DataFrame) -> pd.DataFrame:
    """Blended customer acquisition cost: sales and marketing spend per new customer."""
    a = acquisition_by_month
    return month_series(a.month, a.cac, a.new_customers)


@metric(
    sampled=True,
    label="New-customer ARPA",
    formula="new MRR in M / new customers in M",
    unit="currency",
    direction="higher",
    level="supporting",
    sources=("S",),
    area="unit_economics",
    tile=8,
)
def new_customer_arpa(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Average first-month MRR of the month's new customers."""
    m = mrr_movements
    return month_series(m.month, safe_ratio(m.new, m.new_accounts), m.new_accounts)


@metric(
    label="Gross margin",
    formula="(revenue - COGS) / revenue; revenue = month-end MRR, COGS from spend",
    unit="fraction",
    direction="higher",
    level="core",
    sources=("S",),
    area="unit_economics",
    target=0.6,
    needs=("accounts", "subscriptions", "spend"),
    target_source="S: SaaS metrics collection (SaaS gross margin 60-90 %)",
    tile=6,
)
def gross_margin(gross_margin_by_month: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Share of the month's revenue left after the cost of serving it; n/a in months without COGS."""
    g = gross_margin_by_month
    return month_series(g.month, np.where(g.basis == "cogs", g.gross_margin, np.nan), mrr_movements.accounts_end)


@metric(
    label="CAC payback",
    formula="CAC / (new-customer ARPA x gross margin); gross margin = default_gross_margin in months without COGS",
    unit="months",
    direction="lower",
    level="core",
    sources=("S",),
    area="unit_economics",
    target=12.0,
    conventions=("cac_spend_categories", "spend_lag_months", "default_gross_margin"),
    needs=("accounts", "subscriptions", "spend"),
    target_source="S: SaaS metrics collection (CAC payback under 12 months)",
    tile=2,
)
def cac_payback_months(acquisition_by_month: pd.DataFrame) -> pd.DataFrame:
    """Months of a new customer's gross margin needed to earn back its acquisition cost."""
    a = acquisition_by_month
    return month_series(a.month, a.payback_months, a.new_customers)


@metric(
    label="LTV:CAC",
    formula="LTV / CAC (LTV simple or survival per ltv_to_cac_basis)",
    unit="ratio",
    direction="higher",
    level="core",
    sources=("S",),
    area="unit_economics",
    target=3.0,
    conventions=(
        "ltv_to_cac_basis",
        "cac_spend_categories",
        "spend_lag_months",
        "ltv_churn_window_months",
        "ltv_churn_window_includes_current",
        "ltv_horizon_months",
    ),
    needs=("accounts", "subscriptions", "spend"),
    tile=3,
    target_source="S: SaaS metrics collection (LTV:CAC of 3 or more; HubSpot's 1.5 direct vs 5 channel shows "
    "why per segment and source)",
)
def ltv_to_cac_ratio(
    acquisition_by_month: pd.DataFrame,
    customer_lifetime_value: pd.DataFrame,
    survival_lifetime_value: pd.DataFrame,
    conventions: Conventions,
) -> pd.DataFrame:
    """Lifetime gross margin of a customer per unit of what it cost to acquire."""
    a = acquisition_by_month
    ltv = customer_lifetime_value if conventions.ltv_to_cac_basis == "simple" else survival_lifetime_value
    values = ltv.set_index("month").value.reindex(a.month).to_numpy()
    return month_series(a.month, safe_ratio(values, a.cac), a.new_customers)


@metric(
    label="Magic number",
    formula="(ARR_M - ARR_M-3) / S&M spend in months M-5..M-3 (the trailing quarter's "
    "net new ARR over the quarter before's S&M spend)",
    unit="ratio",
    direction="higher",
    level="supporting",
    cadence="quarterly",
    sources=("J", "S"),
    area="unit_economics",
    conventions=("cac_spend_categories",),
    needs=("accounts", "subscriptions", "spend"),
    tile=10,
)
def magic_number(
    calendar: pl.DataFrame, conventions: Conventions, allocated_spend: pd.DataFrame, mrr_movements: pd.DataFrame
) -> pd.DataFrame:
    """Sales efficiency: net new ARR of the last three months per dollar of S&M spent in the three before."""
    sm = allocated_spend[allocated_spend.category.isin(conventions.cac_spend_categories)]
    spent = monthly_sum(calendar, sm, "amount", month="spend_month")
    arr = pd.Series(12 * mrr_movements.mrr_end.to_numpy(), index=spent.index)
    net_new = arr - arr.shift(3)
    before = trailing_sum(spent, 3, shift=3)
    return month_series(
        spent.index, safe_ratio(net_new, before), mrr_movements.new_accounts.rolling(3, min_periods=1).sum()
    )


@metric(
    label="Burn multiple",
    formula="net burn / net new ARR over the trailing three months; net burn = total "
    "spend - revenue (month-end MRR), 0 when cash-generative; n/a when ARR did not grow or total spend "
    "(marketing, sales, COGS, R&D, G&A) is not all in the data",
    unit="ratio",
    direction="lower",
    level="supporting",
    cadence="quarterly",
    sources=("J",),
    area="unit_economics",
    needs=("accounts", "subscriptions", "spend"),
    tile=11,
)
def burn_multiple(calendar: pl.DataFrame, allocated_spend: pd.DataFrame, mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Capital efficiency: cash burned per dollar of net new ARR."""
    spent = monthly_sum(calendar, allocated_spend, "amount", month="spend_month")
    revenue = pd.Series(mrr_movements.mrr_end.to_numpy(), index=spent.index)
    burn = (trailing_sum(spent, 3) - trailing_sum(revenue, 3)).clip(lower=0)
    arr = 12 * revenue
    net_new = (arr - arr.shift(3)).where(lambda x: x > 0)
    known = set(TOTAL_SPEND_CATEGORIES) <= set(allocated_spend.category)
    value = safe_ratio(burn, net_new) if known else np.full(len(spent), np.nan)
    return month_series(spent.index, value, mrr_movements.accounts_end)


# --------------------------------------------------------------------------- segment x channel
def _pooled_churn(account_mrr: pd.DataFrame, months: list[int]) -> pd.DataFrame:
    """Per account over `months`: months it started paying (exposure) and months it churned in."""
    if account_mrr.empty:
        return pd.DataFrame(columns=["account_id", "exposed", "churned"])
    k = account_mrr.month.dt.year * 12 + account_mrr.month.dt.month - 1
    paying = pd.DataFrame({"account_id": account_mrr.account_id, "k": k})
    start = paying.assign(k=paying.k + 1)  # paying at the end of M-1 = exposed in M
    start = start[start.k.isin(months)]
    still = start.merge(paying, on=["account_id", "k"], how="left", indicator=True)
    still["churned"] = still["_merge"] == "left_only"
    return still.groupby("account_id", as_index=False).agg(exposed=("k", "size"), churned=("churned", "sum"))


UE_COLUMNS = [
    "segment",
    "channel",
    "level",
    "new_customers",
    "sm_spend",
    "cac",
    "arpa",
    "gross_margin",
    "exposed_months",
    "churned",
    "monthly_churn",
    "ltv",
    "ltv_survival",
    "ltv_to_cac",
    "payback_months",
    "ltv_to_cac_status",
    "payback_status",
    "low_n",
]


@table(
    schema={
        "segment": "str",
        "channel": "str",
        "level": "str",
        "new_customers": "int64",
        "sm_spend": "float64",
        "cac": "float64",
        "arpa": "float64",
        "gross_margin": "float64",
        "exposed_months": "int64",
        "churned": "int64",
        "monthly_churn": "float64",
        "ltv": "float64",
        "ltv_survival": "float64",
        "ltv_to_cac": "float64",
        "payback_months": "float64",
        "ltv_to_cac_status": "str",
        "payback_status": "str",
        "low_n": "bool",
    },
    needs=("accounts", "subscriptions", "spend"),
)
def unit_economics(
    as_of: int,
    conventions: Conventions,
    allocated_spend: pd.DataFrame,
    account_mrr: pd.DataFrame,
    new_customer_accounts: pd.DataFrame,
    gross_margin_by_month: pd.DataFrame,
    targets_in_force: dict,
) -> pd.DataFrame:
    """Segment x channel over the trailing unit_economics_window_months: new customers, CAC, ARPA, churn, LTV,
    LTV:CAC and payback with their status against the guidelines; rows per pair, per segment, per channel (when
    there are several segments) and total."""
    w = conventions.unit_economics_window_months
    keys = list(range(as_of - w + 1, as_of + 1))
    window = [month_of(k) for k in keys]
    sm = allocated_spend[
        allocated_spend.category.isin(conventions.cac_spend_categories) & allocated_spend.month.isin(window)
    ]
    new = new_customer_accounts[new_customer_accounts.month.isin(window)]
    margin_rows = gross_margin_by_month[gross_margin_by_month.month.isin(window)]
    margin = float(safe_ratio((margin_rows.gross_margin * margin_rows.revenue).sum(), margin_rows.revenue.sum()))
    if math.isnan(margin):
        margin = conventions.default_gross_margin
    churn = _pooled_churn(account_mrr, keys)
    owners = new_customer_accounts[["account_id", "segment", "channel"]]
    churn = churn.merge(owners, on="account_id", how="left")
    spells = first_spells(account_mrr, as_of).merge(owners, on="account_id", how="left")

    def status(value: float, metric: str) -> str:
        return target_status(value, targets_in_force[metric], METRICS[metric].direction, conventions.status_near_band)

    rows = []
    groupings: tuple[tuple[str, list[str]], ...] = (
        ("pair", ["segment", "channel"]),
        ("segment", ["segment"]),
        ("channel", ["channel"]),
        ("total", []),
    )
    spent = sm[sm.amount > 0]
    if new.segment.nunique() <= 1 and spent.segment.nunique() <= 1:
        groupings = tuple(g for g in groupings if g[0] != "channel")  # one segment: channel rows would repeat the pairs
    for level, by in groupings:
        groups = (
            sorted({tuple(v) for f in (new, spent) for v in f[by].dropna().itertuples(index=False)}) if by else [()]
        )
        for values in groups:
            pick = dict(zip(by, values))
            new_rows, sm_rows, churn_rows, spell_rows = (_rows_of(f, pick) for f in (new, sm, churn, spells))
            row = _economics(new_rows, sm_rows, churn_rows, spell_rows, margin, as_of, conventions)
            rows.append(
                {
                    "segment": pick.get("segment", "all"),
                    "channel": pick.get("channel", "all"),
                    "level": level,
                    **row,
                    "ltv_to_cac_status": status(row["ltv_to_cac"], "ltv_to_cac_ratio"),
                    "payback_status": status(row["payback_months"], "cac_payback_months"),
                    "low_n": row["new_customers"] < conventions.low_n_threshold,
                }
            )
    return pd.DataFrame(rows, columns=UE_COLUMNS)


def _rows_of(frame: pd.DataFrame, pick: dict) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    for column, value in pick.items():
        keep &= (frame[column] == value).to_numpy()
    return frame[keep]


def _economics(
    new: pd.DataFrame,
    sm: pd.DataFrame,
    churn: pd.DataFrame,
    spells: pd.DataFrame,
    margin: float,
    as_of: int,
    conventions: Conventions,
) -> dict:
    """CAC, ARPA, churn, LTV (simple and survival), LTV:CAC and payback of one group of new customers and spend."""
    n_new = len(new)
    spend = float(sm.amount.sum())
    arpa = float(new.mrr.mean()) if n_new else math.nan
    cac = spend / n_new if n_new else math.nan
    exposed, churned = int(churn.exposed.sum()), int(churn.churned.sum())
    monthly_churn = churned / exposed if exposed else math.nan
    ltv = arpa * margin / monthly_churn if monthly_churn > 0 else math.nan  # NaN > 0 is False
    ltv_s = expected_lifetime_months(spells_at(spells, as_of), conventions.ltv_horizon_months) * arpa * margin
    basis = ltv if conventions.ltv_to_cac_basis == "simple" else ltv_s
    return {
        "new_customers": n_new,
        "sm_spend": spend,
        "cac": cac,
        "arpa": arpa,
        "gross_margin": margin,
        "exposed_months": exposed,
        "churned": churned,
        "monthly_churn": monthly_churn,
        "ltv": ltv,
        "ltv_survival": ltv_s,
        "ltv_to_cac": basis / cac if cac > 0 else math.nan,
        "payback_months": cac / (arpa * margin) if n_new and arpa > 0 else math.nan,
    }


VERDICTS = {  # (LTV:CAC met, payback met) -> verdict, advice
    (True, True): ("accelerate", "meets both guidelines: invest more here"),
    (True, False): (
        "fix payback",
        "customers are worth it but take too long to earn back: cut CAC or raise the first-year price",
    ),
    (False, True): ("fix retention", "pays back fast but customers leave or stay small: work on churn and expansion"),
    (False, False): ("rethink", "misses both guidelines: cut spend or change the offer"),
}


@table(
    schema={
        "level": "str",
        "segment": "str",
        "channel": "str",
        "verdict": "str",
        "ltv_to_cac": "float64",
        "payback_months": "float64",
        "new_customers": "int64",
        "low_n": "bool",
        "reason": "str",
    },
    needs=("accounts", "subscriptions", "spend"),
)
def acceleration(unit_economics: pd.DataFrame, targets_in_force: dict) -> pd.DataFrame:
    """Where to hit the accelerator: segments, channels and pairs ranked by LTV:CAC, with verdict and reason."""
    ue = unit_economics[unit_economics.level != "total"].copy()
    ltv_target, payback_target = targets_in_force["ltv_to_cac_ratio"], targets_in_force["cac_payback_months"]

    def judge(r) -> tuple[str, str]:
        if r.new_customers == 0:
            return "no data", "no new customers in the window"
        facts = (
            f"LTV:CAC {_num(r.ltv_to_cac, '.1f')} vs >= {ltv_target:g}, payback {_num(r.payback_months, '.1f')} "
            f"months vs <= {payback_target:g}"
        )
        if math.isnan(r.ltv_to_cac):
            return "too early", f"no churn seen yet, so LTV is undefined; {facts}"
        verdict, advice = VERDICTS[(r.ltv_to_cac >= ltv_target, r.payback_months <= payback_target)]
        low = f" (only {r.new_customers} new customers: low confidence)" if r.low_n else ""
        return verdict, f"{facts}: {advice}{low}"

    judged = [judge(r) for r in ue.itertuples()]
    ue["verdict"], ue["reason"] = [v for v, _ in judged], [why for _, why in judged]
    order = {"accelerate": 0, "fix payback": 1, "fix retention": 2, "too early": 3, "rethink": 4, "no data": 5}
    ue["rank_key"] = ue.verdict.map(order)
    ue = ue.sort_values(["rank_key", "low_n", "ltv_to_cac"], ascending=[True, True, False], na_position="last")
    return ue[
        ["level", "segment", "channel", "verdict", "ltv_to_cac", "payback_months", "new_customers", "low_n", "reason"]
    ].reset_index(drop=True)


def _num(value: float, fmt: str) -> str:
    return "n/a" if value is None or math.isnan(value) else format(value, fmt)


@table(
    schema={
        "channel": "str",
        "month": "datetime",
        "sm_spend": "float64",
        "new_customers": "int64",
        "cac": "float64",
        "cac_trailing_3m": "float64",
    },
    needs=("accounts", "subscriptions", "spend"),
)
def cac_by_channel(
    calendar: pl.DataFrame, conventions: Conventions, allocated_spend: pd.DataFrame, new_customer_accounts: pd.DataFrame
) -> pd.DataFrame:
    """CAC per acquisition channel and month, and over the trailing three months (steadier for small channels)."""
    sm = allocated_spend[allocated_spend.category.isin(conventions.cac_spend_categories)]
    months = [month_of(k) for k in calendar["month"].to_list()]
    channels = sorted(set(sm.channel[sm.amount > 0].dropna()) | set(new_customer_accounts.channel.dropna()))
    grid = pd.MultiIndex.from_product([channels, months], names=["channel", "month"])
    spend = sm.groupby(["channel", "month"]).amount.sum().reindex(grid, fill_value=0.0)
    new = new_customer_accounts.groupby(["channel", "month"]).size().reindex(grid, fill_value=0)
    out = pd.DataFrame({"sm_spend": spend, "new_customers": new.astype("int64")}).reset_index()
    roll = lambda col: out.groupby("channel")[col].transform(lambda s: s.rolling(3, min_periods=3).sum())  # noqa: E731
    out["cac"] = safe_ratio(out.sm_spend, out.new_customers)
    out["cac_trailing_3m"] = safe_ratio(roll("sm_spend"), roll("new_customers"))
    return out


@table(
    schema={
        "segment": "str",
        "months_since_start": "int64",
        "customers": "int64",
        "margin_per_customer": "float64",
        "cumulative_margin": "float64",
        "cac": "float64",
    },
    needs=("accounts", "subscriptions", "spend"),
)
def payback_curve(
    as_of: int,
    account_mrr: pd.DataFrame,
    new_customer_accounts: pd.DataFrame,
    unit_economics: pd.DataFrame,
    gross_margin_by_month: pd.DataFrame,
) -> pd.DataFrame:
    """Cumulative gross margin per customer by months since its first payment (churned customers count as 0),
    per segment, against the segment's CAC in the window; customers counted at k only once k months are observed."""
    if new_customer_accounts.empty:
        return pd.DataFrame(
            columns=["segment", "months_since_start", "customers", "margin_per_customer", "cumulative_margin", "cac"]
        )
    margin = gross_margin_by_month.set_index("month").gross_margin
    firsts = new_customer_accounts.assign(k0=lambda d: d.month.dt.year * 12 + d.month.dt.month - 1)
    k = account_mrr.assign(
        k=account_mrr.month.dt.year * 12 + account_mrr.month.dt.month - 1, gm=account_mrr.month.map(margin)
    )
    paid = k.merge(firsts[["account_id", "k0", "segment"]], on="account_id")
    paid["age"] = paid.k - paid.k0
    parts = []
    cac = unit_economics[unit_economics.level == "segment"].set_index("segment").cac
    for segment, group in firsts.groupby("segment"):
        ages = np.arange(0, int(as_of - group.k0.min()) + 1)
        observed = np.array([(group.k0 <= as_of - a).sum() for a in ages])
        p = paid[paid.segment == segment]
        earned = (p.mrr * p.gm).groupby(p.age).sum().reindex(ages, fill_value=0.0).to_numpy()
        per = safe_ratio(earned, observed)
        parts.append(
            pd.DataFrame(
                {
                    "segment": segment,
                    "months_since_start": ages + 1,
                    "customers": observed,
                    "margin_per_customer": per,
                    "cumulative_margin": np.nancumsum(per),
                    "cac": float(cac.get(segment, np.nan)),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- what-if
def what_if(
    arpa: float,
    cac: float,
    monthly_churn: float,
    gross_margin: float,
    *,
    churn_change: float = 0.0,
    price_change: float = 0.0,
    margin_change: float = 0.0,
    cac_change: float = 0.0,
    ltv_to_cac_target: float = 3.0,
    payback_target: float = 12.0,
) -> dict:
    """LTV:CAC and payback before and after relative changes (0.1 = +10 %; margin_change in points), and the
    value of each lever alone that would reach each guideline (None where no value can)."""

    def economics(a, c, ch, gm):
        ltv = a * gm / ch if ch > 0 else math.nan
        return {
            "ltv": ltv,
            "ltv_to_cac": ltv / c if c > 0 else math.nan,
            "payback_months": c / (a * gm) if a * gm > 0 else math.nan,
        }

    after = dict(
        arpa=arpa * (1 + price_change),
        cac=cac * (1 + cac_change),
        monthly_churn=monthly_churn * (1 + churn_change),
        gross_margin=min(1.0, gross_margin + margin_change),
    )
    base = economics(arpa, cac, monthly_churn, gross_margin)
    new = economics(after["arpa"], after["cac"], after["monthly_churn"], after["gross_margin"])
    a, c, ch, gm = after["arpa"], after["cac"], after["monthly_churn"], after["gross_margin"]
    t, p = ltv_to_cac_target, payback_target
    needed = {
        "ltv_to_cac": {
            "monthly_churn": a * gm / (t * c) if c > 0 else None,
            "arpa": t * c * ch / gm if gm > 0 else None,
            "gross_margin": (t * c * ch / a) if a > 0 and t * c * ch / a <= 1 else None,
            "cac": a * gm / (t * ch) if ch > 0 else None,
        },
        "payback_months": {
            "monthly_churn": None,  # churn does not move payback
            "arpa": c / (p * gm) if gm > 0 else None,
            "gross_margin": c / (p * a) if a > 0 and c / (p * a) <= 1 else None,
            "cac": p * a * gm,
        },
    }
    return {"before": base, "after": new, "inputs": after, "needed": needed}
