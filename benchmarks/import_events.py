"""Importing product events (`saaskpi import segment`) from Parquet and from JSON lines, next to the floor: one Polars
scan of the same files. Goals: 50M events from Parquet in at most 5 min and 6 GB; from JSON lines in at most 15 min.

    .venv/bin/python benchmarks/import_events.py                       # 50M Parquet, 50M JSON lines
    .venv/bin/python benchmarks/import_events.py --json-events 20000000   # a smaller JSON run

The exports are synthetic Segment messages (benchmarks/make_data.py's company: 10,000 accounts, 100,000 users,
36 months), generated with Polars in 5M-event chunks into data/bench/events/ (git-ignored): `track` calls with
`userId`, `timestamp`, `properties.duration_seconds` and `context.groupId` (= the account id, matched by
`same_id`), one file per chunk, and one file of `identify` and `group` calls per user. Each measurement runs in
its own subprocess, so its peak resident memory is its own. The import is the whole command (read, merge the ids,
match the groups, write usage_events streaming, validate the output, write the report). The floor is Polars
reading every field of the same files once (`scan_*(...).select(null counts)`, streaming). Results go to their
section of benchmarks/RESULTS.md (results.py). Tests never assert timings.
"""

from __future__ import annotations

import argparse
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
DATA = ROOT / "data" / "bench" / "events"
GOALS = {"parquet": (300.0, 6.0), "json": (900.0, None)}
CHUNK = 5_000_000
USERS, ACCOUNTS = 100_000, 10_000


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def generate(folder: Path, events: int, kind: str) -> Path:
    """`events` Segment track calls (+ identify and group calls) in `folder` as Parquet or JSON lines files."""
    import polars as pl

    sys.path.insert(0, str(HERE))
    from make_data import END, FEATURES, START, make

    base = folder.parent / "base"
    if not (base / "accounts.csv").exists():
        make(0, base, accounts=ACCOUNTS, users=USERS)
        (base / "usage_events.parquet").unlink()
        (base / "import-report.json").write_text(json.dumps({"importer": "bench", "rows_written": {}}))
        shutil.move(base / "users.csv", folder.parent / "users.csv")  # the users come from the export
    users = pl.read_csv(folder.parent / "users.csv").drop("created_at")
    folder.mkdir(parents=True, exist_ok=True)
    write = (
        (lambda f, p: f.write_parquet(p.with_suffix(".parquet")))
        if kind == "parquet"
        else (lambda f, p: f.write_ndjson(p.with_suffix(".jsonl")))
    )
    start = pl.lit(START.astype("datetime64[us]").item()).cast(pl.Datetime("us"))
    span_us = int((END - START).astype("timedelta64[us]").astype("int64"))
    calls = users.select(
        pl.lit("identify").alias("type"),
        pl.col("user_id").alias("userId"),
        (start + pl.duration(days=pl.int_range(pl.len()) % 30))
        .dt.strftime("%Y-%m-%dT%H:%M:%S.%3fZ")
        .alias("timestamp"),
        pl.col("account_id").alias("groupId"),
    )
    write(
        pl.concat(
            [
                calls.drop("groupId").with_columns(pl.lit(None, pl.String).alias("groupId")),
                calls.with_columns(pl.lit("group").alias("type")),
            ]
        ),
        folder / "identifies",
    )
    ids = users.get_column("user_id")
    accounts = users.get_column("account_id")
    for n, lo in enumerate(range(0, events, CHUNK)):
        size = min(CHUNK, events - lo)
        u = (pl.int_range(size, eager=True) * 7919 + lo * 31) % len(users)
        frame = pl.DataFrame({"u": u}).select(
            pl.lit("track").alias("type"),
            pl.lit(FEATURES.tolist()).list.get(pl.col("u") % len(FEATURES)).alias("event"),
            ids.gather(u).alias("userId"),
            (start + pl.duration(microseconds=(pl.col("u") * 1_000_003 + pl.int_range(size) * 97_001) % span_us))
            .dt.strftime("%Y-%m-%dT%H:%M:%S.%3fZ")
            .alias("timestamp"),
            pl.struct(((pl.col("u") + pl.int_range(size)) % 600 + 1).alias("duration_seconds")).alias("properties"),
            pl.struct(accounts.gather(u).alias("groupId")).alias("context"),
        )
        write(frame, folder / f"tracks-{n:03d}")
    return folder


def child(kind: str, folder: str, out: str) -> None:
    """One measurement in this process: print seconds and peak memory as JSON."""
    import polars as pl

    t0 = time.perf_counter()
    files = sorted(str(p) for p in Path(folder).iterdir() if p.suffix in (".parquet", ".jsonl"))
    if out == "floor":
        if kind == "parquet":
            frame = pl.concat([pl.scan_parquet(f) for f in files], how="diagonal_relaxed")
        else:
            from saaskpi.importers import segment
            from saaskpi.importers.product import ProductSettings

            frame = pl.scan_ndjson(files, schema=segment.schema(ProductSettings()))
        rows = (
            frame.select(pl.len(), pl.all().null_count().name.suffix("_nulls")).collect(engine="streaming").item(0, 0)
        )
        extra = {"rows": rows}
    else:
        from saaskpi import cli

        code = cli.main(["import", "segment", folder, "--out", out])
        report = json.loads((Path(out) / "import-report-segment.json").read_text()) if code == 0 else {}
        extra = {"code": code, "rows": report.get("rows_written", {}).get("usage_events")}
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_gb": peak_gb(), **extra}))


def measure(kind: str, folder: Path, out: str) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(folder), out]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "lib")})
    if proc.returncode != 0:
        raise SystemExit(f"{kind} {out} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parquet-events", type=int, default=50_000_000)
    parser.add_argument("--json-events", type=int, default=50_000_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    rows = []
    load = os.getloadavg()[0]
    for kind, events in (("parquet", args.parquet_events), ("json", args.json_events)):
        if not events:
            continue
        folder = DATA / f"{kind}-{events}"
        if not folder.exists():
            t0 = time.perf_counter()
            generate(folder, events, kind)
            print(f"generated {folder} in {time.perf_counter() - t0:.0f} s", flush=True)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**30
        floor = measure(kind, folder, "floor")
        print(kind, "floor", floor, flush=True)
        work = Path(tempfile.mkdtemp(dir=DATA))
        try:
            out = work / "out"
            shutil.copytree(DATA / "base", out)
            run = measure(kind, folder, str(out))
        finally:
            shutil.rmtree(work)
        print(kind, "import", run, flush=True)
        seconds, gb = GOALS[kind]
        ok = lambda met: "met" if met else "missed"  # noqa: E731
        goal = f"{seconds / 60:.0f} min {ok(run['seconds'] <= seconds)}" + (
            f", {gb:.0f} GB {ok(run['peak_gb'] <= gb)}" if gb else ""
        )
        label = "Parquet" if kind == "parquet" else "JSON lines"
        rows += [
            f"| {label}, {events / 1e6:.0f}M events ({size:.1f} GiB): Polars scans them once | {floor['seconds']:.1f} | {floor['peak_gb']:.2f} GB | |",
            f"| {label}: `saaskpi import segment` ({run['rows']:,} usage events written) | {run['seconds']:.1f} | {run['peak_gb']:.2f} GB | {goal} |",
            f"| {label}: import / scan | {run['seconds'] / floor['seconds']:.1f}x | | |",
        ]
        report(rows, load)  # after each kind: a run cut short keeps what it measured


def report(rows: list[str], load: float) -> None:
    import datetime as dt

    text = "\n".join(
        [
            f"Run {dt.date.today()} on {os.cpu_count()} cores, load average at start {load:.1f} (the machine shared with other jobs).",
            "Command: `.venv/bin/python benchmarks/import_events.py " + " ".join(sys.argv[1:]) + "`.",
            "",
            "| run | seconds | peak memory | goal |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    write_section("import_events", "Importing product events (Segment, Parquet and JSON lines)", text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
