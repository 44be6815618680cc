"""A four-step product funnel (metrics/events.py) over the large demo's usage events, next to the floor: one
Polars scan of the events (events and distinct users per event name).

    .venv/bin/python benchmarks/product_funnel.py                  # data/large (~50M events; generated if missing)
    .venv/bin/python benchmarks/product_funnel.py --scale tiny --no-write   # a quick check that it runs

Goal (issue 23): the funnel within 2x of the floor, at most 4 GB peak. Each measurement runs in its own
subprocess, so its peak resident memory is its own. The funnel is the demo's activation funnel (signed_up,
created_project, invited_teammate, shared_dashboard within 7 days, ordered, per user) over the whole history;
its time is the events collected from the engine plus the attempts followed in Polars (`funnel_events` +
`funnel_people`), after the source is opened and validated (not timed: every page pays that once).
Results go to their section of benchmarks/RESULTS.md (results.py) unless --no-write. Tests never assert timings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from results import write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOALS = {"ratio": 2.0, "peak_gb": 4.0}
STEPS = ("signed_up", "created_project", "invited_teammate", "shared_dashboard")


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def floor(source: Path) -> dict:
    """One Polars scan of the events: events and distinct users per event name."""
    import polars as pl

    t = time.perf_counter()
    out = (
        pl.scan_parquet(source / "usage_events.parquet")
        .group_by("event")
        .agg(pl.len().alias("events"), pl.col("user_id").n_unique().alias("users"))
        .collect(engine="streaming")
    )
    return {"seconds": time.perf_counter() - t, "rows": out.height, "peak_gb": peak_gb()}


def funnel(source: Path, engine: str) -> dict:
    """The four-step funnel on `engine` over every event of the source."""
    from saaskpi.metrics import events as E
    from saaskpi.workbook import open_workbook

    wb = open_workbook(str(source), "all", "", interactive=False, engine=engine)
    f = E.Funnel(name="activation", steps=[E.Step(event=s) for s in STEPS], window="7 days", period_days=36500)
    start, end = E._period(wb.calendar, f.period_days)
    t = time.perf_counter()
    people = E.funnel_people(E.funnel_events(wb.tables, f), f, start, end)
    seconds = time.perf_counter() - t
    steps = E.step_table(people, f).entered.tolist()
    return {"seconds": seconds, "steps": steps, "peak_gb": peak_gb()}


def child(kind: str, source: str, engine: str) -> None:
    result = floor(Path(source)) if kind == "floor" else funnel(Path(source), engine)
    print(json.dumps(result))


def measure(kind: str, source: Path, engine: str = "polars") -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    cmd = [sys.executable, __file__, "--child", kind, str(source), engine]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="large", choices=["tiny", "default", "large"])
    ap.add_argument("--engines", nargs="+", default=["polars", "duckdb"])
    ap.add_argument("--no-write", action="store_true", help="print the results only (a small-scale check)")
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    source = ROOT / "data" / ("large" if args.scale == "large" else f"funnel-{args.scale}")
    if not (source / "usage_events.parquet").exists():
        from saaskpi.demo import generate

        generate(source, scale=args.scale, progress=True)
    import polars as pl

    events = pl.scan_parquet(source / "usage_events.parquet").select(pl.len()).collect().item()
    base = measure("floor", source)
    rows = []
    for engine in args.engines:
        got = measure("funnel", source, engine)
        ratio = got["seconds"] / base["seconds"]
        rows.append(
            f"| {engine} | {got['seconds']:.1f} | {ratio:.1f}x | {got['peak_gb']:.2f} GB | "
            f"{' / '.join(f'{n:,}' for n in got['steps'])} |"
        )
    load = os.getloadavg()[0]
    text = "\n".join(
        [
            f"Run {dt.date.today()} on {os.cpu_count()} cores, polars {pl.__version__}; load average at start "
            f"{load:.1f}. Data: `saaskpi demo --scale {args.scale}` ({events:,} usage events).",
            f"Floor: one Polars scan of the events (events and distinct users per event name): "
            f"{base['seconds']:.1f} s, peak {base['peak_gb']:.2f} GB.",
            "",
            "| engine | funnel s | funnel / floor | peak memory | people per step |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"Goals: within {GOALS['ratio']:g}x of the floor, at most {GOALS['peak_gb']:g} GB peak. The funnel: "
            + ", ".join(STEPS)
            + " within 7 days, ordered, per user, every attempt since the first event.",
        ]
    )
    print(text)
    if not args.no_write:
        write_section("product_funnel", "A four-step product funnel at 50M events", text)


if __name__ == "__main__":
    main()
