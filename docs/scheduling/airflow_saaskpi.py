"""Airflow DAG: the monthly snapshot of the company's data: `saaskpi validate`, `saaskpi snapshot`, then
`saaskpi send` (the delivery of parameters/delivery.yaml: e-mail with PDF, Slack).

Copy into your DAGs folder on a worker that has the project checked out and installed (`make setup`), and set
two Airflow Variables (Admin > Variables, or `airflow variables set NAME VALUE`):

    saaskpi_source  the company's data: a folder of CSV/Parquet tables, a .duckdb file or a Spark URL (required:
                    without it both tasks fail when Airflow renders their command; nothing runs on the demo)
    saaskpi_root    the checkout with its .venv (default /opt/saaskpi)
    saaskpi_smtp_password, saaskpi_slack_executives_webhook
                    the delivery secrets, handed to the tasks as the environment variables delivery.yaml names
                    (Airflow masks Variables whose name holds "password" in logs; empty: nothing is sent, the
                    snapshot is not affected, `send` fails with the names of the missing variables)

`validate` fails on bad data (exit 2, every problem listed in its log) and `snapshot` does not start. The snapshot
writes a new immutable run of the month that just ended; exit 1 = some page failed (its log names page, segment,
cell and error; the other pages are in the run). The snapshot's last step sends the month to the enabled lists;
`send` then sends whatever that could not (already sent channels are skipped, reports/delivery.json) and is retried
by Airflow; exit 1 = a channel still failed (its log gives the reason of each try).
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
SEND = f"{SAASKPI} send --month {MONTH}"
SECRETS = {  # environment variable (named in parameters/delivery.yaml) -> the Variable holding it
    "SAASKPI_SMTP_PASSWORD": "{{ var.value.get('saaskpi_smtp_password', '') }}",
    "SAASKPI_SLACK_EXECUTIVES_WEBHOOK": "{{ var.value.get('saaskpi_slack_executives_webhook', '') }}",
}


@dag(schedule="0 6 2 * *", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), catchup=False, tags=["saaskpi"])
def saaskpi_monthly_snapshot():
    validate = BashOperator(task_id="validate", bash_command=VALIDATE)
    snapshot = BashOperator(
        task_id="snapshot", bash_command=SNAPSHOT, execution_timeout=dt.timedelta(hours=2), env=SECRETS, append_env=True
    )
    send = BashOperator(
        task_id="send",
        bash_command=SEND,
        env=SECRETS,
        append_env=True,
        retries=3,
        retry_delay=dt.timedelta(minutes=30),
        execution_timeout=dt.timedelta(minutes=30),
    )
    validate >> snapshot >> send


saaskpi_monthly_snapshot()
