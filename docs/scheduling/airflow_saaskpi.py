"""Airflow DAG: the monthly snapshot, one papermill task per notebook x segment, then the overview.

Copy into your DAGs folder on a worker that has the project checked out and installed
(`make setup`); `SAASKPI_ROOT` points at the checkout.
"""
from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.decorators import dag, task

ROOT = Path(os.environ.get("SAASKPI_ROOT", "/opt/saaskpi"))
SEGMENTS = sorted(p.stem for p in (ROOT / "parameters" / "segments").glob("*.yaml"))
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@dag(schedule="0 6 2 * *", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, tags=["saaskpi"])
def saaskpi_monthly_snapshot():
    @task
    def month(data_interval_start=None) -> str:
        """The month that just ended (the DAG runs on the 2nd of the next month)."""
        return data_interval_start.strftime("%Y-%m")

    @task
    def run_notebook(notebook: str, segment: str, as_of: str) -> str:
        """Execute one notebook for one segment with papermill (static charts, no widgets)."""
        import papermill as pm

        out = ROOT / "reports" / "airflow" / as_of / segment / f"{notebook}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"), str(out), kernel_name="python3",
                            parameters={"source": "data/demo", "segment": segment, "as_of": as_of,
                                        "interactive": False}, execution_timeout=600)
        return str(out)

    @task
    def snapshot(as_of: str) -> None:
        """The complete, atomic snapshot with its overview and metrics store (reuses nothing from above)."""
        import subprocess

        subprocess.run([str(ROOT / ".venv" / "bin" / "saaskpi"), "snapshot", "--month", as_of], cwd=ROOT, check=True)

    as_of = month()
    runs = [run_notebook.override(task_id=f"{nb}__{seg}")(nb, seg, as_of) for nb in NOTEBOOKS for seg in SEGMENTS]
    runs >> snapshot(as_of)


saaskpi_monthly_snapshot()
