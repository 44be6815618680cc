"""Shared fixtures: literal sources written to a temp folder, and the demo company."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import pytest

# every static chart a test draws, in this process or in a kernel it starts, is checked against the Vega-Lite schema
# (not in each render: widgets.chart_svg)
os.environ["SAASKPI_CHECK_CHARTS"] = "1"

from saaskpi import paths  # noqa: E402
from saaskpi.workbook import open_workbook  # noqa: E402


def load_module(path: Path, name: str):
    """The Python file `path` imported as module `name` (the corpus builders are all called build.py)."""
    import importlib.util

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def digest(folder: Path) -> dict[str, str]:
    """Name -> sha256 of every file in `folder` (to prove nothing was modified or added)."""
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`saaskpi ARGV` in this process: exit code, standard output, standard error."""
    from saaskpi import cli

    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_source(folder: Path, tables: dict[str, str]) -> Path:
    """Write each table's literal CSV text (dedented) to `folder/<table>.csv`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    return folder


def page_html(func, *args) -> str:
    """Run a page's `show_*` section in static mode and return the HTML of what it shows: the values it returns
    (and, for a page still in the old style, what it displays)."""
    from saaskpi import widgets

    shown = []

    def keep(*items):
        shown.extend(items)

    module = sys.modules[func.__module__]
    with (
        mock.patch("saaskpi.widgets.display", side_effect=keep),
        mock.patch.object(module, "display", side_effect=keep) if hasattr(module, "display") else nullcontext(),
    ):
        result = func(*args)
    return "".join(widgets.markup(i) for i in [*shown, *widgets.values(result)])


# Five accounts over Jan-May 2024, built so that every MRR movement happens once:
#   A1 smb        100/mo Jan-Feb, 150/mo from Mar        -> expansion +50 in Mar
#   A2 smb        50/mo Jan 15 - Feb 15, 60/mo from Apr  -> churn 50 in Feb, reactivation 60 in Apr
#   A3 enterprise 1200 per 12 months Feb 1 - Apr 1       -> new 100 in Feb, churn 100 in Apr
#   A4 mid_market 400 with 25 % discount, 200 from May   -> 300/mo, contraction 100 in May
#   A5 smb        EUR 100 (reference rate 1.20) + USD 30 add-on from Feb -> 120/mo, expansion +30 in Feb
#   A6 smb        Mar 5 - Mar 20 only: never paying at a month end, so never MRR
#   A7 smb        created May 31 without a subscription: the data runs to the end of May, so May is complete
REVENUE_TABLES = {
    "accounts": """
        account_id,segment,created_at,acquisition_channel
        A1,smb,2024-01-01T00:00:00Z,organic
        A2,smb,2024-01-10T00:00:00Z,paid_search
        A3,enterprise,2024-01-20T00:00:00Z,outbound
        A4,mid_market,2024-01-01T00:00:00Z,outbound
        A5,smb,2024-01-01T00:00:00Z,organic
        A6,smb,2024-03-01T00:00:00Z,organic
        A7,smb,2024-05-31T12:00:00Z,organic
    """,
    "subscriptions": """
        subscription_id,account_id,start_date,end_date,amount,billing_period_months,currency,discount_pct
        S1,A1,2024-01-01,2024-03-01,100,1,USD,0
        S2,A1,2024-03-01,,150,1,USD,0
        S3,A2,2024-01-15,2024-02-15,50,1,USD,0
        S4,A2,2024-04-01,,60,1,USD,0
        S5,A3,2024-02-01,2024-04-01,1200,12,USD,0
        S6,A4,2024-01-01,2024-05-01,400,1,USD,0.25
        S7,A4,2024-05-01,,200,1,USD,0
        S8,A5,2024-01-01,,100,1,EUR,0
        S9,A5,2024-02-01,,30,1,USD,0
        S10,A6,2024-03-05,2024-03-20,80,1,USD,0
    """,
    "fx_rates": """
        month,currency,rate_to_reporting
        2024-01-01,EUR,1.10
        2024-05-01,EUR,1.20
    """,
}


@pytest.fixture
def revenue_source(tmp_path) -> Path:
    return write_source(tmp_path / "revenue", REVENUE_TABLES)


@pytest.fixture
def revenue_wb(revenue_source):
    return open_workbook(str(revenue_source), "all", "2024-05", interactive=False)


@pytest.fixture(scope="session", autouse=True)
def aggregate_cache(tmp_path_factory) -> Path:
    """The tests' own aggregate cache (cache.py), not the user's ~/.cache; kernels started by tests inherit it."""
    folder = tmp_path_factory.mktemp("aggregate-cache")
    os.environ["SAASKPI_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def demo_source() -> Path:
    """The default demo company (generated once if missing)."""
    if not paths.DEMO_DIR.exists():
        from saaskpi.demo import generate

        generate(paths.DEMO_DIR)
    return paths.DEMO_DIR


def demo_domain(account_id: str) -> str:
    """The web domain the import tests give a demo account (A00042 -> a00042.example.com)."""
    return f"{account_id.lower()}.example.com"


def two_account_base(out: Path, segments=("smb", "smb"), amounts=(100.0, 200.0)) -> Path:
    """`out` as a billing import of two literal accounts (cus_1 at acme.com, cus_2 at globex.io) of `segments`,
    each with one subscription of `amounts`: the folder the importers' literal cases add to."""
    import polars as pl

    out.mkdir(parents=True)
    pl.DataFrame(
        {
            "account_id": ["cus_1", "cus_2"],
            "segment": list(segments),
            "created_at": ["2024-01-01T00:00:00Z"] * 2,
            "domain": ["acme.com", "globex.io"],
        }
    ).write_csv(out / "accounts.csv")
    pl.DataFrame(
        {
            "subscription_id": ["s1", "s2"],
            "account_id": ["cus_1", "cus_2"],
            "start_date": ["2024-01-01"] * 2,
            "end_date": [None, None],
            "amount": list(amounts),
        }
    ).write_csv(out / "subscriptions.csv")
    (out / "import-report.json").write_text(
        json.dumps({"importer": "test", "rows_written": {"accounts": 2, "subscriptions": 2}})
    )
    return out


def import_base(out: Path, accounts: list[str] | None = None) -> Path:
    """`out` as if the demo's billing had been imported into it (the base a CRM, help-desk or analytics import
    adds to): the demo's accounts (each with its `demo_domain`), subscriptions, invoices and rates, restricted to
    `accounts` when given, and an import report. Copy it per test: an import writes into it."""
    import polars as pl

    out.mkdir(parents=True, exist_ok=True)
    keep = pl.col("account_id").is_in(accounts) if accounts is not None else pl.lit(True)
    written = {}
    for name in ("accounts", "subscriptions", "invoices"):
        frame = pl.read_csv(paths.DEMO_DIR / f"{name}.csv", infer_schema=False).filter(keep)
        if name == "accounts":
            frame = frame.with_columns(domain=pl.col("account_id").map_elements(demo_domain, return_dtype=pl.String))
        frame.write_csv(out / f"{name}.csv")
        written[name] = frame.height
    shutil.copy(paths.DEMO_DIR / "fx_rates.csv", out / "fx_rates.csv")
    (out / "import-report.json").write_text(
        json.dumps({"importer": "demo", "rows_written": {**written, "fx_rates": "copied"}})
    )
    return out


# --------------------------------------------------------------------------- PostgreSQL (tests/pg/cluster.py)
def _pg_cluster_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pg_cluster", Path(__file__).parent / "pg" / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster on a Unix socket, for the whole session (stopped and removed at the end,
    even when tests fail). In CI (CI=true) a cluster that cannot be had fails the tests; locally they skip."""
    module = _pg_cluster_module()
    try:
        cluster = module.start()
    except (RuntimeError, OSError) as err:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"PostgreSQL is needed in CI and could not be started: {err}", pytrace=False)
        pytest.skip(f"PostgreSQL could not be started: {err}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_demo(pg_cluster, demo_source) -> str:
    """The URL of schema `demo` holding the demo company's tables with their contract types."""
    from saaskpi.sources import open_source, validated_tables

    tables = validated_tables(open_source(demo_source))
    frames = {**tables.frames, **{n: s.collect(engine="streaming") for n, s in tables.scans.items()}}
    return pg_cluster.load("demo", frames)
