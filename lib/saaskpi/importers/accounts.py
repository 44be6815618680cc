"""One account key across systems: how a CRM company, a help-desk organisation or an analytics group finds its
account (`accounts.account_id`, the billing customer) during `saaskpi import`.

The same company is `cus_123` in Stripe, `98765` in HubSpot, `4321` in Zendesk and `acme` in Segment. An import of
a non-billing system reads the accounts already imported into `--out` (the billing import comes first) and matches
each record by the ways `parameters/sources/accounts.yaml` lists for that system, tried in order:

- `id_map`: an explicit map, a CSV with `account_id` and one column per system (`hubspot`, `zendesk`, ...), and
  optionally `domain`; one row per account (docs/your-data.md shows one).
- `domain`: the e-mail domain of the record (or the domain of its company) equals the account's domain
  (`accounts.domain`, which the billing import fills from the customer's e-mail, or the map's `domain` column).
  Public mailbox domains (gmail.com, outlook.com, ...) never match.
- `same_id`: the system already uses the workbook's account ids (for example Segment's `groupId` set to the
  Stripe customer id).

A record that matches no account is set aside, counted and shown with examples in the import report, never dropped
silently; when more than `max_unmatched_share` of a table's records match nothing, the import fails. A record that
matches two accounts (a domain two accounts share, a system id the map gives to two accounts) is an error.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import paths
from ..errors import ParameterError, Problem
from ..params import read_yaml
from .billing import SetAside
from .reading import ExportError

ACCOUNTS_FILE = paths.PARAMETERS_DIR / "sources" / "accounts.yaml"
EXAMPLES = 5
Way = Literal["id_map", "domain", "same_id"]

PUBLIC_MAIL_DOMAINS = frozenset(
    """
gmail.com googlemail.com outlook.com hotmail.com live.com msn.com yahoo.com ymail.com icloud.com me.com mac.com
aol.com proton.me protonmail.com gmx.com gmx.de gmx.net web.de mail.com yandex.com yandex.ru zoho.com fastmail.com
hey.com qq.com 163.com 126.com naver.com orange.fr free.fr laposte.net t-online.de libero.it
""".split()
)
"""Mailbox providers: an address there says nothing about the company, so it never matches by domain."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountSettings(_Strict):
    """How each system's records find their account (parameters/sources/accounts.yaml)."""

    id_map: str | None = None  # CSV path, relative to the settings file (or absolute)
    max_unmatched_share: float = Field(default=0.05, ge=0, le=1)
    systems: dict[str, tuple[Way, ...]] = {}
    default: tuple[Way, ...] = ("id_map", "domain", "same_id")

    def ways(self, system: str) -> tuple[Way, ...]:
        return self.systems.get(system, self.default)


def account_settings(path: Path | None = ACCOUNTS_FILE) -> tuple[AccountSettings, Path | None]:
    """The settings in `path` and the folder its relative paths start from; the defaults when the file is absent."""
    if path is None or not Path(path).exists():
        if path is not None and Path(path) != ACCOUNTS_FILE:
            raise ParameterError(f"--accounts {path}: no such file.")
        return AccountSettings(), None
    try:
        return AccountSettings.model_validate(read_yaml(Path(path)) or {}), Path(path).parent
    except ValidationError as err:
        lines = [f"  `{'.'.join(str(p) for p in e['loc'])}`: {e['msg']} (got {e.get('input')!r})" for e in err.errors()]
        raise ParameterError(f"{Path(path).name}: {len(lines)} problem(s):\n" + "\n".join(lines)) from None


def domain_of(expr: pl.Expr) -> pl.Expr:
    """The lower-case domain of an e-mail address or a web address (`Ana@Acme.com`, `https://www.acme.com/x` -> acme.com);
    null for public mailbox domains and empty values."""
    d = (
        expr.cast(pl.String)
        .str.strip_chars()
        .str.to_lowercase()
        .str.replace(r"^.*@", "")
        .str.replace(r"^[a-z]+://", "")
        .str.replace(r"^www\.", "")
        .str.replace(r"[/:?#].*$", "")
    )
    return pl.when(d.is_in(list(PUBLIC_MAIL_DOMAINS)) | (d == "") | ~d.str.contains(r"\.")).then(None).otherwise(d)


@dataclass(frozen=True)
class Matched:
    """`frame` with the workbook's `account_id` (null where nothing matched) and what was set aside."""

    frame: pl.DataFrame
    set_aside: tuple[SetAside, ...]


@dataclass(frozen=True)
class AccountKeys:
    """The workbook's accounts (with their domains) and the id map, ready to match other systems' records."""

    accounts: pl.DataFrame  # account_id, domain
    id_map: pl.DataFrame  # account_id, <system>... (strings)
    settings: AccountSettings
    map_file: str = ""

    def match(
        self,
        system: str,
        table: str,
        records: pl.DataFrame,
        *,
        key: str | None = None,
        email: str | None = None,
        weight: str | None = None,
    ) -> Matched:
        """`records` with `account_id` added: from the system's account id in column `key` and/or the e-mail (or
        web) address in column `email`, by the ways set for `system`. `weight` (optional) is how many records a row
        stands for (when matching distinct ids of a big table). Raises `ExportError` when a record matches two
        accounts or when too many match none; the rest of the unmatched are set aside (reported)."""
        n = pl.col(weight).sum() if weight else pl.len()
        frame = records.with_row_index("_row")
        found = pl.DataFrame(
            {"_row": [], "account_id": [], "_way": []},
            schema={"_row": pl.UInt32, "account_id": pl.String, "_way": pl.String},
        )
        problems: list[Problem] = []
        for way in self.settings.ways(system):
            rest = frame.join(found.select("_row"), on="_row", how="anti")
            hits = self._by(way, system, rest, key, email)
            if hits is None or hits.is_empty():
                continue
            twice = (
                hits.group_by("_row")
                .agg(pl.col("account_id").unique().sort())
                .filter(pl.col("account_id").list.len() > 1)
            )
            if not twice.is_empty():
                shown = twice.join(frame, on="_row").head(EXAMPLES)
                problems.append(
                    Problem(
                        f"{system}.two_accounts",
                        table,
                        key or email,
                        f"matches two accounts by {way} "
                        "(a domain two accounts share, or an id the map gives twice); add the record "
                        "to the id map",
                        twice.height,
                        tuple(
                            f"{self._label(r, key, email)} -> {', '.join(r['account_id'])}"
                            for r in shown.iter_rows(named=True)
                        ),
                    )
                )
            found = pl.concat([found, hits.unique("_row").with_columns(pl.lit(way).alias("_way"))])
        if problems:
            raise ExportError(problems, head=f"The {system} records cannot be matched to accounts")
        out = frame.join(found, on="_row", how="left")
        missing = out.filter(pl.col("account_id").is_null())
        total = out.select(n).item()
        lost = missing.select(n).item() if not missing.is_empty() else 0
        aside: tuple[SetAside, ...] = ()
        if lost:
            labels = tuple(dict.fromkeys(self._label(r, key, email) for r in missing.head(50).iter_rows(named=True)))[
                :EXAMPLES
            ]
            share = lost / total
            if share > self.settings.max_unmatched_share:
                raise ExportError(
                    [
                        Problem(
                            f"{system}.unmatched_accounts",
                            table,
                            key or email,
                            f"{share:.1%} of the records match no account (at most "
                            f"{self.settings.max_unmatched_share:.0%} allowed: max_unmatched_share); "
                            f"tried {', '.join(self.settings.ways(system))}",
                            lost,
                            labels,
                        )
                    ],
                    head=f"The {system} records cannot be matched to accounts",
                    hint="Add them to the id map (account_id plus a column per system) or give the "
                    "accounts their domain; see docs/your-data.md, 'One account across systems'.",
                )
            aside = (
                SetAside(
                    "unmatched_account",
                    table,
                    lost,
                    labels,
                    f"matches no account by {', '.join(self.settings.ways(system))}; left out",
                ),
            )
        return Matched(out.sort("_row").drop("_row", "_way"), aside)

    def _by(self, way: Way, system: str, rest: pl.DataFrame, key: str | None, email: str | None) -> pl.DataFrame | None:
        """(_row, account_id) pairs `way` finds for the rows of `rest`."""
        if way == "id_map" and key and system in self.id_map.columns:
            pairs = self.id_map.select(pl.col(system).cast(pl.String).alias("_key"), "account_id").drop_nulls()
            return (
                rest.select("_row", pl.col(key).cast(pl.String).alias("_key"))
                .join(pairs, on="_key")
                .select("_row", "account_id")
            )
        if way == "domain" and email:
            return (
                rest.select("_row", domain_of(pl.col(email)).alias("domain"))
                .drop_nulls()
                .join(self.accounts.drop_nulls("domain"), on="domain")
                .select("_row", "account_id")
            )
        if way == "same_id" and key:
            return rest.select("_row", pl.col(key).cast(pl.String).alias("account_id")).join(
                self.accounts.select("account_id").unique(), on="account_id"
            )
        return None

    @staticmethod
    def _label(row: dict, key: str | None, email: str | None) -> str:
        parts = [f"{c}={row[c]}" for c in (key, email) if c and row.get(c) is not None]
        return ", ".join(parts) or f"row {row['_row'] + 1}"


def account_keys(out: Path, settings_path: Path | None = ACCOUNTS_FILE) -> AccountKeys:
    """The accounts imported into `out` (the billing import comes first) and the id map of the settings."""
    from ..params import conventions
    from ..workbook import load_tables

    settings, base = account_settings(settings_path)
    if not (out / "accounts.parquet").exists() and not (out / "accounts.csv").exists():
        raise ParameterError(
            f"--out {out} has no accounts yet: import the billing data into it first "
            "(saaskpi import stripe|invoices|mapped ... --out the same folder); the other systems' "
            "records are matched to those accounts."
        )
    tables = load_tables(out, conventions())
    acc = tables.frames["accounts"]
    accounts = acc.select(
        "account_id",
        (domain_of(pl.col("domain")) if "domain" in acc.columns else pl.lit(None, pl.String)).alias("domain"),
    )
    id_map = pl.DataFrame({"account_id": []}, schema={"account_id": pl.String})
    map_file = ""
    if settings.id_map:
        path = Path(settings.id_map)
        path = path if path.is_absolute() else (base or paths.PARAMETERS_DIR / "sources") / path
        id_map, map_file = _read_id_map(path, accounts), str(path)
        if "domain" in id_map.columns:  # the map's domains join the accounts' own
            extra = id_map.select("account_id", domain_of(pl.col("domain")).alias("domain")).drop_nulls()
            accounts = pl.concat([accounts, extra]).unique(maintain_order=True)
    return AccountKeys(accounts, id_map, settings, map_file)


def _read_id_map(path: Path, accounts: pl.DataFrame) -> pl.DataFrame:
    """The id map CSV, every value text; an unknown account or a system id given to two accounts is an error."""
    if not path.is_file():
        raise ParameterError(f"accounts.yaml: id_map {path} does not exist.")
    frame = pl.read_csv(path, infer_schema=False)
    if "account_id" not in frame.columns:
        raise ParameterError(
            f"{path.name}: the id map needs an `account_id` column (found {', '.join(frame.columns)})."
        )
    problems = []
    unknown = frame.join(accounts, on="account_id", how="anti")
    if not unknown.is_empty():
        problems.append(
            Problem(
                "id_map.unknown_account",
                path.name,
                "account_id",
                "is not an imported account",
                unknown.height,
                tuple(unknown.get_column("account_id").head(EXAMPLES).to_list()),
            )
        )
    for col in (c for c in frame.columns if c not in ("account_id", "domain")):
        twice = (
            frame.drop_nulls(col)
            .group_by(col)
            .agg(pl.col("account_id").unique().sort())
            .filter(pl.col("account_id").list.len() > 1)
        )
        if not twice.is_empty():
            problems.append(
                Problem(
                    "id_map.two_accounts",
                    path.name,
                    col,
                    "gives one id to two accounts",
                    twice.height,
                    tuple(
                        f"{r[col]} -> {', '.join(r['account_id'])}" for r in twice.head(EXAMPLES).iter_rows(named=True)
                    ),
                )
            )
    if problems:
        raise ExportError(problems, head=f"The id map {path} is wrong")
    return frame


def add_account_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--accounts` option of every importer whose records are matched to accounts."""
    parser.add_argument(
        "--accounts",
        default=str(ACCOUNTS_FILE),
        help="how records find their account: id map and ways per system (parameters/sources/accounts.yaml)",
    )
