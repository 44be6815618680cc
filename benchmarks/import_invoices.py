"""Importing 1M invoice line items from the generic invoice CSV (`saaskpi import invoices`), next to the floor:
Polars merely reading the same CSV files. Goals: at most 60 s and 4 GB, within 3x of the floor.

    .venv/bin/python benchmarks/import_invoices.py            # generates data/bench/invoices if missing (~1 min)

The exports are synthetic (10,000 customers over 36 months, monthly and annual plans, three or four lines per
invoice, seat changes mid-period as prorated credit + charge lines, a set-up fee on first invoices, payments),
generated with Polars into data/bench/invoices/ (git-ignored). Each measurement runs in its own subprocess, so
its peak resident memory is its own. The import is the whole command (read and check every file, convert to
MRR, validate the tables made, write Parquet and the report). Results go to their section of
benchmarks/RESULTS.md (results.py). Tests never assert timings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXPORTS = ROOT / "data" / "bench" / "invoices"
GOALS = {"seconds": 60.0, "peak_gb": 4.0, "ratio": 3.0}
ACCOUNTS, MONTHS, START = 10_000, 36, dt.date(2023, 11, 1)


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def generate(folder: Path, accounts: int = ACCOUNTS, months: int = MONTHS) -> dict[str, int]:
    """Synthetic generic-CSV exports in `folder`; returns the rows per file."""
    import polars as pl

    from saaskpi.importers.billing import BillingData
    from saaskpi.importers.invoices import write_invoice_csv

    ids = pl.int_range(0, accounts, eager=True).alias("n")
    acc = pl.DataFrame(ids).with_columns(
        customer_id=pl.format("cus_{}", pl.col("n").cast(pl.String).str.zfill(6)),
        first=(pl.col("n") * 7919 % 12).cast(pl.Int32),  # start month 0-11
        last=pl.when(pl.col("n") % 5 == 0).then(12 + pl.col("n") * 31 % 24).otherwise(months).cast(pl.Int32),
        annual=pl.col("n") % 10 == 0,
        seats=(1 + pl.col("n") % 40).cast(pl.Int64),
        upgrade=(pl.col("n") % 5 == 1),
        day=(1 + pl.col("n") % 28).cast(pl.Int32),
    )
    month = lambda k: pl.date(2023, 11, pl.col("day")).dt.offset_by(pl.format("{}mo", k))  # noqa: E731
    periods = (
        acc.join(pl.DataFrame({"k": pl.int_range(0, months, eager=True).cast(pl.Int32)}), how="cross")
        .filter(
            (pl.col("k") >= pl.col("first"))
            & (pl.col("k") < pl.col("last"))
            & (~pl.col("annual") | ((pl.col("k") - pl.col("first")) % 12 == 0))
        )
        .with_columns(
            start=month(pl.col("k")),
            stop=month(pl.col("k") + pl.when(pl.col("annual")).then(12).otherwise(1)),
            seats=pl.col("seats")
            + pl.when(pl.col("upgrade") & (pl.col("k") >= pl.col("first") + 7)).then(5).otherwise(0),
        )
        .with_columns(invoice_id=pl.format("in_{}_{}", pl.col("n"), pl.col("k")))
    )
    price = pl.when(pl.col("annual")).then(12 * 30.0).otherwise(30.0)
    base = periods.select(
        "invoice_id",
        "customer_id",
        "start",
        "stop",
        "n",
        "k",
        "first",
        plan_id=pl.when(pl.col("annual")).then(pl.lit("seat-annual")).otherwise(pl.lit("seat-monthly")),
        amount=price * pl.col("seats"),
        quantity=pl.col("seats"),
        part=pl.lit(0),
    )
    addon = base.with_columns(
        plan_id=pl.col("plan_id").str.replace("seat", "addon"), amount=pl.col("amount") / 3, part=pl.lit(1)
    )
    storage = base.filter(pl.col("n") % 5 != 0).with_columns(
        plan_id=pl.col("plan_id").str.replace("seat", "storage"), amount=pl.col("amount") / 6, part=pl.lit(3)
    )
    support = base.with_columns(
        plan_id=pl.col("plan_id").str.replace("seat", "support"),
        amount=pl.lit(99.0) * pl.when(pl.col("plan_id").str.contains("annual")).then(12).otherwise(1),
        quantity=pl.lit(1, dtype=pl.Int64),
        part=pl.lit(2),
    )
    lines = pl.concat([base, addon, support, storage]).with_columns(
        line_id=pl.format("li_{}_{}", pl.col("invoice_id").str.slice(3), pl.col("part")),
        subscription_id=pl.format("sub_{}_{}", pl.col("n"), pl.col("part")),
        type=pl.lit("subscription"),
        service_period_start=pl.col("start").cast(pl.Datetime("us", "UTC")),
        service_period_end=pl.col("stop").cast(pl.Datetime("us", "UTC")),
        prorated=pl.lit(False),
        tax_amount=(pl.col("amount") * 0.1).round(2),
    )
    # seat upgrades: in period first+6 (monthly plans), 5 more seats from day 15: credit the old seats, charge the new
    up = periods.filter(pl.col("upgrade") & ~pl.col("annual") & (pl.col("k") == pl.col("first") + 6))
    share = (pl.col("stop") - pl.col("start").dt.offset_by("14d")).dt.total_days() / (
        pl.col("stop") - pl.col("start")
    ).dt.total_days()
    prorations = pl.concat(
        [
            up.select(
                line_id=pl.format("li_up_{}_{}", pl.col("n"), pl.lit(s)),
                invoice_id=pl.format("in_up_{}", pl.col("n")),
                customer_id="customer_id",
                subscription_id=pl.format("sub_{}_0", pl.col("n")),
                plan_id=pl.lit("seat-monthly"),
                type=pl.lit("subscription"),
                service_period_start=pl.col("start").dt.offset_by("14d").cast(pl.Datetime("us", "UTC")),
                service_period_end=pl.col("stop").cast(pl.Datetime("us", "UTC")),
                amount=(sign * 30.0 * (pl.col("seats") + seats_delta) * share).round(2),
                quantity=(pl.col("seats") + seats_delta).cast(pl.Int64),
                prorated=pl.lit(True),
                tax_amount=pl.lit(0.0),
            )
            for s, sign, seats_delta in (("c", -1.0, 0), ("p", 1.0, 5))
        ]
    )
    setup = base.filter(pl.col("k") == pl.col("first")).select(
        line_id=pl.format("li_setup_{}", pl.col("n")),
        invoice_id="invoice_id",
        type=pl.lit("one_time"),
        amount=pl.lit(500.0),
    )
    line_items = pl.concat(
        [lines.drop("start", "stop", "n", "k", "first", "part", "customer_id"), prorations.drop("customer_id"), setup],
        how="diagonal_relaxed",
    )
    invoices = pl.concat(
        [
            periods.select("invoice_id", "customer_id", "start"),
            up.select(
                pl.format("in_up_{}", pl.col("n")).alias("invoice_id"),
                "customer_id",
                pl.col("start").dt.offset_by("14d"),
            ),
        ]
    ).select(
        "invoice_id",
        "customer_id",
        issued_at=pl.col("start").cast(pl.Datetime("us", "UTC")),
        due_at=pl.col("start").dt.offset_by("30d").cast(pl.Datetime("us", "UTC")),
        currency=pl.lit("USD"),
        status=pl.lit("paid"),
        paid_at=pl.col("start").dt.offset_by("3d").cast(pl.Datetime("us", "UTC")),
    )
    totals = line_items.group_by("invoice_id").agg(
        (pl.col("amount") + pl.col("tax_amount").fill_null(0)).sum().alias("total")
    )
    transactions = (
        invoices.join(totals, on="invoice_id")
        .filter(pl.col("total") > 0)
        .select(
            transaction_id=pl.format("tr_{}", pl.col("invoice_id").str.slice(3)),
            invoice_id="invoice_id",
            type=pl.lit("payment"),
            result=pl.lit("successful"),
            date="paid_at",
            amount=pl.col("total").round(2),
        )
    )
    customers = acc.select(
        "customer_id",
        name=pl.format("Customer {}", pl.col("n")),
        created_at=month(pl.col("first")).cast(pl.Datetime("us", "UTC")).dt.offset_by("-3d"),
        segment=pl.when(pl.col("seats") > 30).then(pl.lit("mid_market")).otherwise(pl.lit("smb")),
    )
    plans = pl.DataFrame(
        {
            "plan_id": [f"{p}-{i}" for p in ("seat", "addon", "support", "storage") for i in ("monthly", "annual")],
            "name": [f"{p} {i}" for p in ("Seat", "Add-on", "Support", "Storage") for i in ("monthly", "annual")],
            "interval_unit": ["month", "year"] * 4,
            "interval_count": [1, 1] * 4,
        }
    )
    data = BillingData.of(
        customers=customers,
        plans=plans,
        invoices=invoices.sort("issued_at", "invoice_id"),
        line_items=line_items.sort("line_id"),
        transactions=transactions.sort("transaction_id"),
    )
    if folder.exists():
        shutil.rmtree(folder)
    write_invoice_csv(data, folder)
    (folder / "subscriptions.csv").unlink()  # optional, and empty here
    return {name: frame.height for name, frame in data.tables().items() if name != "subscriptions"}


def child(what: str, folder: str, out: str) -> None:
    """One measurement in this process: print seconds and peak memory as JSON."""
    sys.path.insert(0, str(ROOT / "lib"))
    t0 = time.perf_counter()
    if what == "floor":
        import polars as pl

        rows = sum(pl.read_csv(p).height for p in sorted(Path(folder).glob("*.csv")))
        extra = {"rows": rows}
    else:
        import dataclasses

        import saaskpi.importers as importers
        from saaskpi import cli

        phases: dict[str, float] = {}

        def timed(name, func):
            def run(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return func(*args, **kwargs)
                finally:
                    phases[name] = phases.get(name, 0.0) + time.perf_counter() - start

            return run

        registry = importers.registry()  # cached: the CLI sees the timed reader
        registry["invoices"] = dataclasses.replace(registry["invoices"], read=timed("read", registry["invoices"].read))
        importers.to_contract = timed("convert", importers.to_contract)
        importers._validate_staged = timed("validate", importers._validate_staged)
        code = cli.main(["import", "invoices", folder, "--out", out])
        extra = {
            "exit": code,
            "phases": phases,
            "report": json.loads((Path(out) / "import-report.json").read_text()) if code == 0 else None,
        }
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_gb": peak_gb(), **extra}))


def measure(what: str, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", what, str(EXPORTS), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "lib")})
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("WHAT", "FOLDER", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--regenerate", action="store_true", help="write the synthetic exports again")
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    sys.path.insert(0, str(ROOT / "lib"))
    import polars as pl

    if args.regenerate or not (EXPORTS / "line_items.csv").exists():
        print("generating", EXPORTS, generate(EXPORTS), file=sys.stderr)
    rows = {p.stem: pl.scan_csv(p).select(pl.len()).collect().item() for p in sorted(EXPORTS.glob("*.csv"))}
    size = sum(p.stat().st_size for p in EXPORTS.glob("*.csv")) / 2**20
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=ROOT / "data" / "bench") as tmp:
        floor = measure("floor", Path(tmp) / "floor")
        run = measure("import", Path(tmp) / "out")
    report = run["report"]
    ratio = run["seconds"] / floor["seconds"]
    ok = lambda good: "met" if good else "missed"  # noqa: E731
    text = "\n".join(
        [
            f"Run {dt.date.today()} on {os.cpu_count()} cores, polars {pl.__version__}; load average at start {load:.1f} "
            "(the machine was shared with other jobs while it ran).",
            f"Data: synthetic generic invoice CSV in data/bench/invoices ({size:,.0f} MiB): "
            + ", ".join(f"{n} {r:,}" for n, r in rows.items())
            + ".",
            "Written: "
            + ", ".join(f"{n} {r:,}" for n, r in report["rows_written"].items())
            + "; set aside: "
            + ", ".join(f"{a['reason']} {a['count']:,}" for a in report["set_aside"])
            + ".",
            "",
            "| run | seconds | peak memory | goal |",
            "|---|---|---|---|",
            f"| floor: Polars reads the same CSV files | {floor['seconds']:.1f} | {floor['peak_gb']:.2f} GB | |",
            f"| `saaskpi import invoices` | {run['seconds']:.1f} | {run['peak_gb']:.2f} GB | "
            f"60 s {ok(run['seconds'] <= GOALS['seconds'])}, 4 GB {ok(run['peak_gb'] <= GOALS['peak_gb'])} |",
            f"| import / floor | {ratio:.1f}x | | 3x {ok(ratio <= GOALS['ratio'])} |",
            "",
            "Where the import's time goes: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in run["phases"].items())
            + f", the rest (start-up, writing Parquet and the report) {run['seconds'] - sum(run['phases'].values()):.1f} s. "
            "`read` is reading and checking every file (types, rules, references); `convert` is `to_contract`; "
            "`validate` is the contract check of the tables made, as `saaskpi validate` does it.",
        ]
    )
    write_section("import_invoices", "Importing 1M invoice line items", text)
    print(text)


if __name__ == "__main__":
    main()
