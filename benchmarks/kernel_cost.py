"""What one app kernel costs with a filled results store: CPU seconds and memory of a process replaying
notebooks/00_executive_summary.ipynb on the demo as a Voila kernel does (interactive: widgets and Altair charts
built, their output captured), then a segment change; and which heavy optional modules it imported. CPU time
(`time.process_time`) and memory are measurable on a machine shared with other jobs; wall time is not.

    .venv/bin/python benchmarks/kernel_cost.py                      # this checkout
    .venv/bin/python benchmarks/kernel_cost.py --before ../old/lib  # and another checkout's lib/, side by side

Each library gets a results store of its own, filled by a first such process (as a snapshot would), then the
kernel is run `--runs` times; medians are reported. Writes its section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import write_section  # noqa: E402

KERNEL = """
import contextlib, io, json, resource, sys, time
import psutil
c0 = time.process_time()
import saaskpi
from saaskpi.pages import executive_summary as ex
c1 = time.process_time()
with contextlib.redirect_stdout(io.StringIO()):  # what the notebook's cells display
    ctx = saaskpi.open_workbook("data/demo", "all", "", True, "polars")
    c2 = time.process_time()
    ex.show_header(ctx, ""); ex.show_revenue(ctx); ex.show_headline(ctx, ""); ex.show_top7(ctx, "")
    ex.show_alerts(ctx); ex.show_hierarchy(ctx); ex.show_links(ctx)
    c3 = time.process_time()
    seg = ctx.with_choice(segment="enterprise")
    ex.top7_html(seg, ""); ex.hierarchy_html(seg)
    for name in ["monthly_recurring_revenue", *ex.headline("")]:
        seg.value(name)
c4 = time.process_time()
mem = psutil.Process().memory_full_info()
heavy = ("duckdb", "pyspark", "lifelines", "statsmodels", "scipy", "rfc3987_syntax.syntax_helpers")
print(json.dumps({"import": c1 - c0, "open": c2 - c1, "page": c3 - c2, "segment": c4 - c3, "total": c4 - c0,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss": mem.rss / 2**20,
                  "uss": mem.uss / 2**20, "modules": len(sys.modules),
                  "loaded": sorted(m.split(".")[0] for m in heavy if m in sys.modules)}))
"""

ROWS = [
    ("importing the workbook and the page", "import", "{:.2f}"),
    ("opening the workbook (the demo source)", "open", "{:.2f}"),
    ("the page: every section drawn", "page", "{:.2f}"),
    ("a segment change: top 7, hierarchy, tiles", "segment", "{:.2f}"),
    ("CPU seconds in all", "total", "{:.2f}"),
    ("peak RSS, MiB", "peak", "{:.0f}"),
    ("RSS at the end, MiB", "rss", "{:.0f}"),
    ("USS at the end (memory of its own), MiB", "uss", "{:.0f}"),
    ("modules imported", "modules", "{:.0f}"),
]


def kernel(lib: Path, cache: str) -> dict:
    env = {**os.environ, "SAASKPI_CACHE_DIR": cache, "PYTHONPATH": str(lib)}
    out = subprocess.run(
        [sys.executable, "-c", KERNEL], env=env, cwd=HERE.parent, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(lib: Path, runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="saaskpi-bench-cache-") as cache:
        kernel(lib, cache)  # fills the store for all and enterprise, as a snapshot would
        results = [kernel(lib, cache) for _ in range(runs)]
    out: dict = {k: statistics.median(r[k] for r in results) for _, k, _ in ROWS}
    out["loaded"] = sorted({m for r in results for m in r["loaded"]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="another checkout's lib/ folder, measured first")
    parser.add_argument("--before-label", default="before", help="the other checkout's column heading")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    args = parser.parse_args()
    load_average = os.getloadavg()[0]
    columns = []
    if args.before:
        columns.append((args.before_label, measure(args.before.resolve(), args.runs)))
    columns.append(("this checkout" if args.before else "store filled", measure(HERE.parent / "lib", args.runs)))
    head = "| per kernel, store filled (CPU seconds unless said) | " + " | ".join(c for c, _ in columns) + " |\n"
    head += "|---|" + "---|" * len(columns) + "\n"
    table = "".join(
        f"| {label} | " + " | ".join(fmt.format(r[k]) for _, r in columns) + " |\n" for label, k, fmt in ROWS
    )
    loaded = "; ".join(f"{c}: {', '.join(r['loaded']) or 'none'}" for c, r in columns)
    text = (
        f"Run {dt.date.today()} on {os.cpu_count()} cores, load average at start {load_average:.1f} (a machine shared "
        "with other jobs: CPU seconds and memory are measured, wall time is not). Command: "
        f"`.venv/bin/python benchmarks/kernel_cost.py{' --before <lib>' if args.before else ''}`: one process "
        "replaying the executive summary notebook on the demo as a Voila kernel does (interactive), then a segment "
        f"change, with a results store filled by a first such process; medians of {args.runs} runs.\n\n"
        + head
        + table
        + f"\nHeavy optional modules imported (of duckdb, pyspark, lifelines, statsmodels, scipy, and the IRI grammar "
        f"of rfc3987_syntax): {loaded}."
    )
    if not args.no_write:
        write_section("kernel_cost", "One app kernel's imports, CPU and memory with a filled store", text)
    print(text)


if __name__ == "__main__":
    main()
