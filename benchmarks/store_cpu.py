"""CPU time of one kernel's work on the executive summary with a filled results store and without one: one
process each, opening the demo workbook as a kernel does (static output), timed with `time.process_time`, which
a machine shared with other jobs inflates far less than wall time. Writes its section of RESULTS.md.

    .venv/bin/python benchmarks/store_cpu.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import write_section  # noqa: E402

KERNEL = """
import json, resource, sys, time
c0 = time.process_time()
import saaskpi
from saaskpi.pages import executive_summary as ex
c1 = time.process_time()
ctx = saaskpi.open_workbook("data/demo", "all", "", False, "polars")
c2 = time.process_time()
for n in ["monthly_recurring_revenue", *ex.headline("")]:
    ctx.value(n)
ex.top7_html(ctx, ""); ex.hierarchy_html(ctx); ctx.table("mrr_movements")
c3 = time.process_time()
seg = ctx.with_choice(segment="enterprise")
ex.top7_html(seg, ""); ex.hierarchy_html(seg)
c4 = time.process_time()
print(json.dumps({"import": c1 - c0, "open": c2 - c1, "page": c3 - c2, "segment": c4 - c3,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "loaded": sorted(m for m in ("lifelines", "duckdb", "pyspark") if m in sys.modules)}))
"""


def kernel(cache: str) -> dict:
    env = {**os.environ, "SAASKPI_CACHE_DIR": cache}
    out = subprocess.run(
        [sys.executable, "-c", KERNEL], env=env, cwd=HERE.parent, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="saaskpi-bench-cache-") as cache:
        kernel(cache)  # fills the store for all and enterprise, as a snapshot would
        filled, none = kernel(cache), kernel("off")
    rows = [
        ("importing the workbook and the page", "import", "{:.1f}"),
        ("opening the workbook (validating the CSV source)", "open", "{:.1f}"),
        ("the page's values (tiles, top 7, hierarchy, MRR table)", "page", "{:.2f}"),
        ("the same values after a segment change", "segment", "{:.2f}"),
        ("peak RSS, MiB", "rss", "{:.0f}"),
    ]
    table = "".join(f"| {label} | {fmt.format(filled[k])} | {fmt.format(none[k])} |\n" for label, k, fmt in rows)
    text = (
        f"Run {dt.date.today()} on {os.cpu_count()} cores, load average at start {load_average:.1f}. Command: "
        "`.venv/bin/python benchmarks/store_cpu.py`: one process opening the executive summary on the demo as a "
        "kernel does (static output), CPU seconds (`time.process_time`), with a results store filled by a "
        "first such process and with `SAASKPI_CACHE_DIR=off`.\n\n"
        "| CPU seconds | store filled | no store |\n|---|---|---|\n"
        + table
        + f"\nModules loaded: {', '.join(filled['loaded']) or 'none'} with the store; "
        f"{', '.join(none['loaded']) or 'none'} without (of lifelines, duckdb, pyspark)."
    )
    write_section("store_cpu", "One kernel's CPU with and without the results store", text)
    print(text)


if __name__ == "__main__":
    main()
