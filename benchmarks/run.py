"""Speed and memory of the metric layer against plain pandas, at 10M and 50M usage events.

    .venv/bin/python benchmarks/run.py                 # 10M and 50M (generates data/bench/* if missing)
    .venv/bin/python benchmarks/run.py --sizes 1000000 # a quick run

Each implementation runs in its own subprocess, so its peak resident memory is its own. The two
must agree (MRR per month and DAU/MAU per month) or the run fails. Results are written to
benchmarks/RESULTS.md (its section, results.py). Tests never assert timings; this is on demand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from results import write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AS_OF = "2026-10"


def child(impl: str, source: Path) -> dict:
    """Run one implementation in this process and report its numbers, phase times and peak memory."""
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from pandas_reference import dau_mau, mrr_bridge

    from saaskpi.workbook import open_workbook  # imports are not timed, for either side

    phases = {}
    t0 = time.perf_counter()
    if impl == "saaskpi":
        wb = open_workbook(str(source), "all", AS_OF, interactive=False)
        phases["validate"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        mrr = wb.table("mrr_movements")
        phases["revenue"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        usage = wb.table("active_users").assign(dau_mau=wb.series("dau_mau_ratio").value.to_numpy())
        phases["dau_mau"] = time.perf_counter() - t2
    else:
        months = pd.period_range("2023-11", AS_OF, freq="M")
        mrr = mrr_bridge(source, months)
        phases["revenue"] = time.perf_counter() - t0
        t2 = time.perf_counter()
        usage = dau_mau(source)
        phases["dau_mau"] = time.perf_counter() - t2
    total = time.perf_counter() - t0
    usage = usage[usage.month <= pd.Timestamp(AS_OF)]
    return {
        "impl": impl,
        "seconds": total,
        "phases": phases,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "mrr": mrr.mrr_end.round(4).tolist(),
        "dau_mau": usage.dau_mau.round(12).tolist(),
    }


def measure(impl: str, source: Path) -> dict:
    env = {**os.environ, "SAASKPI_CACHE_DIR": "off"}  # every run computes from the events (lib/saaskpi/cache.py)
    out = subprocess.run(
        [sys.executable, __file__, "--child", impl, str(source)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    if out.returncode:
        raise SystemExit(f"{impl} failed on {source}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def agree(a: dict, b: dict) -> None:
    import numpy as np

    for key in ("mrr", "dau_mau"):
        x, y = np.asarray(a[key]), np.asarray(b[key])
        if x.shape != y.shape or not np.allclose(x, y, rtol=1e-9, atol=1e-6):
            raise SystemExit(f"saaskpi and pandas disagree on {key}: {x[:5]} vs {y[:5]}")


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def report(rows: list[dict]) -> str:
    import pandas as pd
    import polars as pl

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"Run {dt.date.today()} on {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, "
        f"polars {pl.__version__}, pandas {pd.__version__}; load average at start {os.getloadavg()[0]:.1f}.",
        "Data: `benchmarks/make_data.py` (10,000 accounts, 100,000 users, 36 months). saaskpi time includes "
        "opening and validating the source; both include reading the files.",
        "",
        "| events | implementation | total s | validate s | revenue s | DAU/MAU s | peak memory | speed-up | speed-up, metrics only |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["phases"]
        lines.append(
            f"| {r['size']} | {r['impl']} | {r['seconds']:.1f} | {p.get('validate', 0):.1f} | "
            f"{p['revenue']:.1f} | {p['dau_mau']:.1f} | {r['peak_mb'] / 1024:.2f} GB | {r.get('speedup', '')} | "
            f"{r.get('metrics_speedup', '')} |"
        )
    verdicts = []
    for r in rows:
        if r["impl"] == "saaskpi":
            fast = r["speedup_x"] >= 4
            small = r["peak_mb"] / 1024 <= 3 or r["size"] != "50M"
            verdicts.append(
                f"- {r['size']}: {r['speedup_x']:.1f}x faster than pandas with validation, {r['metrics_speedup']} "
                f"without ({'meets' if fast else 'misses'} the 4x goal); peak {r['peak_mb'] / 1024:.2f} GB"
                + (f" ({'meets' if small else 'misses'} the 3 GB goal)" if r["size"] == "50M" else "")
            )
    return "\n".join(
        lines
        + ["", "Goals: at least 4x faster than the pandas 3 reference, at most 3 GB peak at 50M events.", *verdicts]
    )


def main() -> None:
    from tqdm import tqdm

    sys.path.insert(0, str(HERE))
    from make_data import make

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000000,50000000")
    ap.add_argument("--child", nargs=2)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for n in tqdm(sizes, desc="sizes"):
        source = ROOT / "data" / "bench" / label(n)
        if not (source / "usage_events.parquet").exists():
            make(n, source)
        ours, theirs = measure("saaskpi", source), measure("pandas", source)
        agree(ours, theirs)
        ours["speedup_x"] = theirs["seconds"] / ours["seconds"]
        ours["speedup"] = f"{ours['speedup_x']:.1f}x"
        metrics_only = ours["phases"]["revenue"] + ours["phases"]["dau_mau"]
        ours["metrics_speedup"] = f"{theirs['seconds'] / metrics_only:.1f}x"
        for r in (ours, theirs):
            r["size"] = label(n)
            rows.append(r)
            tqdm.write(f"{r['size']:>4} {r['impl']:<8} {r['seconds']:7.1f} s  peak {r['peak_mb'] / 1024:5.2f} GB")
    write_section("speed", "Metric layer vs pandas", report(rows))
    print("written to benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
