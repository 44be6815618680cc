"""Airflow DAG: the monthly snapshot of the company's data: `saaskpi validate`, then `saaskpi snapshot`.

Copy into your DAGs folder on a worker that has the project checked out and installed (`make setup`), and set
two Airflow Variables (Admin > Variables, or `airflow variables set NAME VALUE`):

    saaskpi_source  the company's data: a folder of CSV/Parquet tables, a .duckdb file or a Spark URL (required:
                    without it both tasks fail when Airflow renders their command; nothing runs on the demo)
    saaskpi_root    the checkout with its .venv (default /opt/saaskpi)

`validate` fails on bad data (exit 2, every problem listed in its log) and `snapshot` does not start. The snapshot
writes a new immutable run of the month that just ended; exit 1 = some page failed (its log names page, segment,
cell and error; the other pages are in the run).
"""
from __future__ import annotations

import datetime as dt

from airflow.decorators import dag

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

SAASKPI = "{{ var.value.get('saaskpi_root', '/opt/saaskpi') }}/.venv/bin/saaskpi"
SOURCE = "{{ var.value.saaskpi_source }}"  # required: a missing Variable fails the task when it is rendered
MONTH = "{{ data_interval_start.strftime('%Y-%m') }}"  # the month that just ended (the DAG runs on the 2nd)
VALIDATE = f'{SAASKPI} validate "{SOURCE}"'
SNAPSHOT = f'{SAASKPI} snapshot --source "{SOURCE}" --month {MONTH}'


@dag(schedule="0 6 2 * *", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), catchup=False,
     tags=["saaskpi"])
def saaskpi_monthly_snapshot():
    validate = BashOperator(task_id="validate", bash_command=VALIDATE)
    snapshot = BashOperator(task_id="snapshot", bash_command=SNAPSHOT, execution_timeout=dt.timedelta(hours=2))
    validate >> snapshot


saaskpi_monthly_snapshot()
