"""PostgreSQL source against the folder source on the demo company: what reading from a real server costs.

Starts a throwaway cluster (tests/pg/cluster.py), loads data/demo into it with the contract's types, and
times, from an empty aggregate cache each: opening and validating the source, the two usage aggregates (SQL
in the server vs Polars over the Parquet file), a segment's heatmap table (the events themselves), and every
metric of segments `all` and `enterprise`. Writes its section of benchmarks/RESULTS.md.

    python benchmarks/postgres.py
"""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
sys.path.insert(0, str(HERE))

from results import write_section  # noqa: E402


def cluster_module():
    spec = importlib.util.spec_from_file_location("pg_cluster", HERE.parent / "tests" / "pg" / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(what: str, rows: list, func):
    start = time.perf_counter()
    value = func()
    rows.append((what, time.perf_counter() - start))
    print(f"{what}: {rows[-1][1]:.1f} s", flush=True)
    return value


def run(source: str, label: str, rows: list) -> None:
    """Time one source from an empty cache (a fresh cache folder, this process's caches cleared)."""
    from saaskpi import workbook

    os.environ["SAASKPI_CACHE_DIR"] = tempfile.mkdtemp(prefix="saaskpi-bench-cache-")
    workbook._VALIDATED.clear()
    wb = timed(f"{label}: open and validate", rows, lambda: workbook.open_workbook(source, "all", interactive=False))
    timed(f"{label}: user_month_activity (all accounts)", rows, lambda: wb.table("user_month_activity"))
    timed(f"{label}: feature_month_activity (all accounts)", rows, lambda: wb.table("feature_month_activity"))
    timed(f"{label}: every metric, segment all", rows, wb.metrics_frame)
    ent = workbook.open_workbook(source, "enterprise", interactive=False)
    timed(f"{label}: account_weekly_activity, segment enterprise", rows, lambda: ent.table("account_weekly_activity"))
    timed(f"{label}: every metric, segment enterprise", rows, ent.metrics_frame)
    shutil.rmtree(os.environ["SAASKPI_CACHE_DIR"], ignore_errors=True)


def main() -> None:
    from saaskpi import paths
    from saaskpi.sources import open_source, validated_tables

    module = cluster_module()
    rows: list[tuple[str, float]] = []
    cluster = timed("start a cluster", rows, module.start)
    try:
        tables = validated_tables(open_source(paths.DEMO_DIR))
        frames = {**tables.frames, **{n: s.collect(engine="streaming") for n, s in tables.scans.items()}}
        url = timed("load the demo into PostgreSQL (ADBC COPY)", rows, lambda: cluster.load("demo", frames))
        run(str(paths.DEMO_DIR), "folder", rows)
        run(url, "postgres", rows)
    finally:
        cluster.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = "\n".join(
        [
            f"Demo company ({frames['usage_events'].height:,} usage events), server and workbook on the same 2-core "
            f"machine, each source from an empty aggregate cache. Peak memory of the benchmark process: {peak:,.0f} MB.",
            "",
            "| step | seconds |",
            "| --- | ---: |",
            *[f"| {what} | {seconds:.1f} |" for what, seconds in rows],
        ]
    )
    write_section("postgres", "PostgreSQL source", text)


if __name__ == "__main__":
    main()
