"""The demo company's support tickets written out as a help desk holds them (Zendesk, Intercom), for the round trip.

Each system gets its OWN ids: Zendesk tickets, organisations and users are numbers, Intercom conversations numbers
and contacts / companies its hex-like ids; the accounts are joined half by the id map (`ids.csv`: account_id,
zendesk, intercom; their organisations have no domain and their requesters write from gmail.com) and half by
e-mail domain (the organisation's `domain_names`, the company's website: `demo_domain`). Two file shapes each:
`jsonl` (API objects, nested, one per line) and `csv` (nested fields as JSON text, a few flattened dlt-style).

Zendesk keeps first-reply time in whole minutes: `zendesk_view` is the demo as Zendesk can hold it (first response
at created + the rounded minutes), the table a Zendesk import must give back exactly. Intercom keeps seconds.
"""

from __future__ import annotations

import json
from datetime import UTC as TZ_UTC
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from conftest import demo_domain

from saaskpi import paths

UTC = pl.Datetime("us", "UTC")
ZENDESK_ORG = 360_000_000_000  # Zendesk-looking organisation ids: 360000000000 + the account's number
INTERCOM_CONVERSATION = 700_000_000


def sample_accounts(n: int = 150) -> list[str]:
    """A deterministic sample of about `n` demo accounts that raised tickets (every k-th by id; all segments)."""
    with_tickets = (
        pl.read_csv(paths.DEMO_DIR / "support_tickets.csv", columns=["account_id"])
        .get_column("account_id")
        .unique()
        .sort()
        .to_list()
    )
    step = max(len(with_tickets) // n, 1)
    return with_tickets[::step][:n]


def demo_support(accounts: list[str]) -> pl.DataFrame:
    """The demo's support tickets of `accounts`, typed as the contract has them."""
    t = pl.read_csv(paths.DEMO_DIR / "support_tickets.csv", infer_schema=False).filter(
        pl.col("account_id").is_in(accounts)
    )
    at = lambda c: pl.col(c).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC")  # noqa: E731
    return t.select(
        "ticket_id",
        "account_id",
        at("created_at"),
        "priority",
        at("first_response_at"),
        at("resolved_at"),
        pl.col("contacts").cast(pl.Int64),
        pl.col("csat").cast(pl.Float64).cast(pl.Int64),
    )


def _number(account_id: str) -> int:
    return int(account_id[1:])


def _mapped(account_id: str) -> bool:
    """Half the accounts are joined by the id map, the other half by e-mail domain."""
    return _number(account_id) % 2 == 0


def reply_minutes(frame: pl.DataFrame) -> pl.Expr:
    """Minutes from creation to first response, rounded to the whole minute as Zendesk keeps them."""
    return ((pl.col("first_response_at") - pl.col("created_at")).dt.total_seconds() / 60).round(0).cast(pl.Int64)


def zendesk_view(tickets: pl.DataFrame) -> pl.DataFrame:
    """`tickets` as a Zendesk import gives them back: ids as Zendesk's numbers, first response to the minute, and
    one contact for a ticket never answered (Zendesk counts no reply; a few demo tickets have more contacts than
    replies)."""
    return tickets.with_columns(
        ticket_id=pl.col("ticket_id").str.slice(1).cast(pl.Int64).cast(pl.String),
        first_response_at=pl.col("created_at") + pl.duration(minutes=reply_minutes(tickets)),
        contacts=pl.when(pl.col("first_response_at").is_null()).then(1).otherwise(pl.col("contacts")),
    )


def intercom_view(tickets: pl.DataFrame) -> pl.DataFrame:
    """`tickets` as an Intercom import gives them back: ids as Intercom's conversation numbers."""
    return tickets.with_columns(
        ticket_id=(pl.col("ticket_id").str.slice(1).cast(pl.Int64) + INTERCOM_CONVERSATION).cast(pl.String)
    )


def business_minutes(start: datetime, end: datetime) -> int:
    """Minutes between `start` and `end` inside Monday-Friday 09:00-17:00 UTC (a business-hours schedule)."""
    total, day = 0, start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        if day.weekday() < 5:
            open_, close = day + timedelta(hours=9), day + timedelta(hours=17)
            lo, hi = max(open_, start), min(close, end)
            total += max((hi - lo).total_seconds(), 0)
        day += timedelta(days=1)
    return round(total / 60)


def id_map(accounts: list[str]) -> pl.DataFrame:
    """The id map of the accounts joined by it: the Zendesk organisation id and the Intercom company_id."""
    mapped = [a for a in accounts if _mapped(a)]
    return pl.DataFrame(
        {
            "account_id": mapped,
            "zendesk": [str(ZENDESK_ORG + _number(a)) for a in mapped],
            "intercom": [f"co-{_number(a) * 31:07d}" for a in mapped],
        }
    )


def write_accounts_settings(folder: Path, accounts: list[str]) -> Path:
    """accounts.yaml and its id map (ids.csv) in `folder`; returns the settings file."""
    folder.mkdir(parents=True, exist_ok=True)
    id_map(accounts).write_csv(folder / "ids.csv")
    (folder / "accounts.yaml").write_text(
        "id_map: ids.csv\nmax_unmatched_share: 0.05\nsystems: {zendesk: [id_map, domain], intercom: [id_map, domain]}\n"
    )
    return folder / "accounts.yaml"


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _unix(value: datetime | None) -> int | None:
    return int(value.replace(tzinfo=TZ_UTC).timestamp()) if value is not None else None


def _write(folder: Path, name: str, records: list[dict], shape: str, flatten: tuple[str, ...] = ()) -> None:
    """`records` as `name`.jsonl (nested) or `name`.csv (nested as JSON text; the `flatten` fields as dlt's
    `field__key` columns)."""
    folder.mkdir(parents=True, exist_ok=True)
    if shape == "jsonl":
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        return
    rows = []
    for r in records:
        row = {}
        for k, v in r.items():
            if k in flatten and isinstance(v, dict):
                row.update({f"{k}__{kk}": None if vv is None else str(vv) for kk, vv in v.items()})
            else:
                row[k] = json.dumps(v) if isinstance(v, (dict, list)) else (None if v is None else str(v))
        rows.append(row)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    pl.DataFrame(rows, schema={c: pl.String for c in columns}).write_csv(folder / f"{name}.csv")


def write_zendesk(folder: Path, tickets: pl.DataFrame, accounts: list[str], shape: str = "jsonl") -> Path:
    """The tickets of `accounts` as Zendesk's tickets, ticket_metrics, organizations, users, satisfaction_ratings
    and CSAT survey_responses streams. CSAT 1 and 5 go out as legacy bad / good ratings, 2-4 as survey responses;
    every fifth normal ticket has no priority (the import's missing_priority: normal)."""
    orgs = [
        {
            "id": ZENDESK_ORG + _number(a),
            "name": f"Org {a}",
            "external_id": None,
            "domain_names": [] if _mapped(a) else [demo_domain(a)],
        }
        for a in accounts
    ]
    users = [
        {
            "id": 9_000_000 + _number(a),
            "email": f"ops.{_number(a)}@gmail.com" if _mapped(a) else f"help@{demo_domain(a)}",
            "organization_id": ZENDESK_ORG + _number(a),
            "role": "end-user",
        }
        for a in accounts
    ]
    out_tickets, metrics, legacy, survey = [], [], [], []
    for i, t in enumerate(tickets.with_columns(minutes=reply_minutes(tickets)).iter_rows(named=True)):
        tid, n = int(t["ticket_id"][1:]), _number(t["account_id"])
        created, first, resolved = t["created_at"], t["first_response_at"], t["resolved_at"]
        status = (
            "closed"
            if resolved is not None and i % 2
            else "solved"
            if resolved is not None
            else "open"
            if first is not None
            else "new"
        )
        priority = None if t["priority"] == "normal" and tid % 5 == 0 else t["priority"]
        out_tickets.append(
            {
                "id": tid,
                "created_at": _iso(created),
                "updated_at": _iso(resolved or created),
                "priority": priority,
                "status": status,
                "organization_id": ZENDESK_ORG + n,
                "requester_id": 9_000_000 + n,
                "via": {"channel": "email"},
            }
        )
        full = round((resolved - created).total_seconds() / 60) if resolved is not None else None
        metrics.append(
            {
                "id": 50_000_000 + tid,
                "ticket_id": tid,
                "replies": t["contacts"] if first is not None else 0,
                "reopens": 0,
                "solved_at": _iso(resolved),
                "reply_time_in_minutes": {
                    "calendar": t["minutes"],
                    "business": business_minutes(created, first) if first else None,
                },
                "full_resolution_time_in_minutes": {
                    "calendar": full,
                    "business": business_minutes(created, resolved) if resolved else None,
                },
            }
        )
        if t["csat"] in (1, 5):
            legacy.append(
                {
                    "id": 70_000_000 + tid,
                    "ticket_id": tid,
                    "score": "good" if t["csat"] == 5 else "bad",
                    "created_at": _iso(resolved),
                    "updated_at": _iso(resolved),
                }
            )
        elif t["csat"] is not None:
            survey.append(
                {
                    "id": f"01HZ{tid:010d}",
                    "subject_zrns": [f"zen:ticket:{tid}"],
                    "created_at": _iso(resolved),
                    "answers": [{"type": "rating_scale", "rating": t["csat"], "question": {"id": "q1"}}],
                }
            )
        elif resolved is not None and tid % 3 == 0:  # offered but not answered: no rating
            legacy.append(
                {
                    "id": 70_000_000 + tid,
                    "ticket_id": tid,
                    "score": "offered",
                    "created_at": _iso(resolved),
                    "updated_at": _iso(resolved),
                }
            )
    _write(folder, "tickets", out_tickets, shape)
    _write(folder, "ticket_metrics", metrics, shape, flatten=("reply_time_in_minutes",))
    _write(folder, "organizations", orgs, shape)
    _write(folder, "users", users, shape)
    _write(folder, "satisfaction_ratings", legacy, shape)
    _write(folder, "survey_responses", survey, shape)
    return folder


def write_intercom(folder: Path, tickets: pl.DataFrame, accounts: list[str], shape: str = "jsonl") -> Path:
    """The tickets of `accounts` as Intercom's conversations (statistics, conversation_rating, the priority in the
    custom attribute `Priority`), contacts and companies streams."""
    companies = [
        {
            "type": "company",
            "id": f"6{_number(a):09x}",
            "company_id": f"co-{_number(a) * 31:07d}",
            "name": f"Company {a}",
            "website": None if _mapped(a) else f"https://www.{demo_domain(a)}/",
        }
        for a in accounts
    ]
    contacts = [
        {
            "type": "contact",
            "id": f"5{_number(a):09x}",
            "role": "user",
            "email": f"ops.{_number(a)}@gmail.com" if _mapped(a) else f"help@{demo_domain(a)}",
            "companies": {"type": "list", "data": [{"type": "company", "id": f"6{_number(a):09x}"}]},
        }
        for a in accounts
    ]
    conversations = []
    for t in tickets.iter_rows(named=True):
        n = _number(t["account_id"])
        created, first, resolved = t["created_at"], t["first_response_at"], t["resolved_at"]
        conversations.append(
            {
                "type": "conversation",
                "id": str(INTERCOM_CONVERSATION + int(t["ticket_id"][1:])),
                "created_at": _unix(created),
                "updated_at": _unix(resolved or created),
                "state": "closed" if resolved is not None else "open",
                "open": resolved is None,
                "priority": "priority" if t["priority"] in ("high", "urgent") else "not_priority",
                "custom_attributes": {"Priority": t["priority"].capitalize()},
                "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": f"5{n:09x}"}]},
                "statistics": {
                    "type": "conversation_statistics",
                    "first_admin_reply_at": _unix(first),
                    "time_to_admin_reply": business_minutes(created, first) * 60 if first else None,
                    "first_close_at": _unix(resolved),
                    "last_close_at": _unix(resolved),
                    "count_reopens": t["contacts"] - 1,
                },
                "conversation_rating": {"rating": t["csat"], "created_at": _unix(resolved)}
                if t["csat"] is not None
                else None,
            }
        )
    _write(folder, "conversations", conversations, shape)
    _write(folder, "contacts", contacts, shape)
    _write(folder, "companies", companies, shape)
    return folder


INTERCOM_ROUND_TRIP_SETTINGS = """\
first_response: clock
priority_attribute: Priority
priority: {low: low, normal: normal, high: high, urgent: urgent}
missing_priority: normal
"""
"""The demo keeps four priorities: its Intercom workspace keeps them in the `Priority` custom attribute."""


# --------------------------------------------------------------------------- what the pages show
SUPPORT_METRICS = (
    "first_response_hours",
    "first_response_hours_p90",
    "resolution_hours",
    "resolution_hours_p90",
    "sla_breach_rate",
    "first_contact_resolution",
    "customer_satisfaction",
)
SUPPORT_MEASURES = ["account_id", "month", "tickets", "sla_breach_rate", "csat_n", "csat", "open_tickets"]


def expected_folder(base: Path, folder: Path, tickets: pl.DataFrame) -> Path:
    """The import base with `tickets` as its support_tickets: the demo restricted as the import is."""
    import shutil

    shutil.copytree(base, folder)
    tickets.write_parquet(folder / "support_tickets.parquet")
    return folder


def page_differences(imported: Path, expected: Path) -> list[str]:
    """Every support table the pages show (the support metrics' monthly series, the SLA table by priority, the
    accounts' support measures) that differs between the two folders, for every segment."""
    import pandas as pd

    from saaskpi.params import segment_names
    from saaskpi.workbook import open_workbook

    found = []
    for segment in segment_names():
        got, want = (open_workbook(str(f), segment=segment, interactive=False) for f in (imported, expected))
        if not want.series("customer_satisfaction").value.notna().any():  # the comparison must compare something
            found.append(f"{segment}: no CSAT in any month of the expected pages")
        for name in SUPPORT_METRICS:
            try:
                pd.testing.assert_frame_equal(got.series(name), want.series(name))
            except AssertionError as err:
                found.append(f"{segment} {name}: {str(err)[:300]}")
        for month in got.months()[-3:]:
            g, w = got.with_choice(month=month), want.with_choice(month=month)
            try:
                pd.testing.assert_frame_equal(g.table("support_sla"), w.table("support_sla"))
            except AssertionError as err:
                found.append(f"{segment} {month} support_sla: {str(err)[:300]}")
        g_m, w_m = (
            wb.table("account_measures")[SUPPORT_MEASURES].sort_values(["account_id", "month"]).reset_index(drop=True)
            for wb in (got, want)
        )
        try:
            pd.testing.assert_frame_equal(g_m, w_m)
        except AssertionError as err:
            found.append(f"{segment} account_measures: {str(err)[:300]}")
    return found
