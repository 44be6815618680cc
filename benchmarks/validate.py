"""Validating the large demo (~50M usage events), cold (no validation remembered), this code against an earlier
revision of it, side by side in one run: each measurement a fresh process, the two alternated, with the floor (one
Polars scan of the events) measured in the same run. Writes its section of RESULTS.md.

    .venv/bin/python benchmarks/validate.py [--before REV] [--repeats 3]

`--before` (default: the last commit before validation counted a big table's cross-table rules in its own pass)
is checked out into a temporary git worktree; its `lib/` is imported instead of this one's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import write_section
from scale import SOURCE, floor

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEFORE = "9fedfde"  # the big table's foreign keys and JSON rule each one more pass over it


def child(lib: str) -> dict:
    sys.path.insert(0, lib)
    from saaskpi.sources import open_source, validated_tables

    t = time.perf_counter()
    validated_tables(open_source(str(SOURCE)))
    seconds = time.perf_counter() - t
    import saaskpi

    assert saaskpi.__file__.startswith(lib), saaskpi.__file__  # the revision asked for, not the installed one
    return {"seconds": seconds, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def measure(lib: Path) -> dict:
    env = {**os.environ, "SAASKPI_CACHE_DIR": "off", "PYTHONPATH": str(lib)}  # nothing remembered: validated whole
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(lib)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    if out.returncode:
        raise SystemExit(f"validation with {lib} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=BEFORE, help="the revision to compare with")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    if not SOURCE.exists():
        raise SystemExit(f"{SOURCE} is missing: make it with `.venv/bin/saaskpi demo --scale large --out data/large`")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old), args.before], cwd=ROOT, check=True)
        try:
            runs: dict[str, list[dict]] = {"before": [], "now": []}
            floors = []
            for _ in range(args.repeats):
                floors.append(floor(SOURCE)["seconds"])
                runs["before"].append(measure(old / "lib"))
                runs["now"].append(measure(ROOT / "lib"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=False)
    base = statistics.median(floors)

    def row(label: str, measured: list[dict]) -> str:
        seconds = [r["seconds"] for r in measured]
        each = ", ".join(f"{s:.1f}" for s in seconds)
        median = statistics.median(seconds)
        peak = max(r["peak_gb"] for r in measured)
        return f"| {label} | {median:.1f} | {each} | {median / base:.1f}x | {peak:.2f} GB |"

    rows = "\n".join([row(f"before ({args.before})", runs["before"]), row("now", runs["now"])])
    text = (
        f"Run {dt.date.today()} on {os.cpu_count()} cores, load average at start {load:.1f}. Command: "
        f"`.venv/bin/python benchmarks/validate.py --before {args.before} --repeats {args.repeats}`: "
        f"`validated_tables` of `{SOURCE.relative_to(ROOT)}` (50M usage events as Parquet, the other tables CSV), "
        "cold (SAASKPI_CACHE_DIR=off: no validation remembered), a fresh process each, the two revisions "
        f"alternated. Floor: one Polars scan of the events, {base:.1f} s (median).\n\n"
        "| code | median s | runs s | median / floor | peak memory |\n|---|---|---|---|---|\n" + rows
    )
    write_section("validate", "Validating 50M events, cold", text)
    print(text)


if __name__ == "__main__":
    main()
