"""The scheduling recipes in docs/: syntactically right, they take the company's source as a required setting, never
run on the demo company, and validate the source before any page runs (tried for real: docs/scheduling.md)."""

from __future__ import annotations

import ast
import configparser
import datetime as dt
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from saaskpi import paths

DOCS = paths.DOCS_DIR / "scheduling"
FIELD = r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*"


def test_cron_line():
    lines = [
        line
        for line in (DOCS / "crontab").read_text().splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 2  # the snapshot (which delivers at its end), then a second chance for the delivery
    for line in lines:
        fields = line.split()
        assert all(re.fullmatch(FIELD, f) for f in fields[:5]), fields[:5]
        minute, hour, day = int(fields[0]), int(fields[1]), int(fields[2])
        assert 0 <= minute < 60 and 0 <= hour < 24 and 1 <= day <= 28
        assert "set -a && . /etc/saaskpi/saaskpi.env && set +a" in line  # exported: the delivery secrets reach it
    assert "make snapshot" in lines[0] and 'SOURCE="$SAASKPI_SOURCE"' in lines[0]  # the required setting
    assert ".venv/bin/saaskpi send >>" in lines[1] and int(lines[1].split()[1]) > int(lines[0].split()[1])


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str
    parser.read_string((DOCS / name).read_text())
    return parser


def test_systemd_units():
    service, timer = unit("saaskpi-snapshot.service"), unit("saaskpi-snapshot.timer")
    assert service["Service"]["Type"] == "oneshot" and "make snapshot" in service["Service"]["ExecStart"]
    assert service["Service"]["EnvironmentFile"] == "/etc/saaskpi/saaskpi.env"  # no leading "-": a missing file fails
    assert "SOURCE=${SAASKPI_SOURCE}" in service["Service"]["ExecStart"]
    assert timer["Install"]["WantedBy"] == "timers.target"
    calendar = timer["Timer"]["OnCalendar"]
    if shutil.which("systemd-analyze"):
        out = subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    else:
        assert re.fullmatch(r"\*-\*-\d{2} \d{2}:\d{2}:\d{2}( UTC)?", calendar)
    send, again = unit("saaskpi-send.service"), unit("saaskpi-send.timer")
    assert send["Service"]["Type"] == "oneshot" and send["Service"]["ExecStart"].endswith("/.venv/bin/saaskpi send")
    assert send["Service"]["EnvironmentFile"] == "/etc/saaskpi/saaskpi.env"
    assert again["Timer"]["OnCalendar"] > calendar and again["Install"]["WantedBy"] == "timers.target"  # later that day


def load_dag() -> tuple[dict, list, list]:
    """Execute the DAG file with stand-ins for Airflow (not installed here): its module constants and the
    BashOperators it creates, in order."""
    created, edges = [], []

    class BashOperator:
        def __init__(self, task_id, bash_command, **kwargs):
            self.task_id, self.bash_command, self.kwargs = task_id, bash_command, kwargs
            created.append(self)

        def __rshift__(self, other):
            edges.append((self.task_id, other.task_id))
            return other

    def dag(**kwargs):
        assert kwargs["schedule"] == "0 6 2 * *" and kwargs["catchup"] is False
        return lambda func: func

    stubs = {
        "airflow": types.ModuleType("airflow"),
        "airflow.decorators": types.SimpleNamespace(dag=dag),
        "airflow.operators": types.ModuleType("airflow.operators"),
        "airflow.operators.bash": types.SimpleNamespace(BashOperator=BashOperator),
    }
    saved = {name: sys.modules.get(name) for name in [*stubs, "airflow.providers.standard.operators.bash"]}
    sys.modules.update(stubs)
    sys.modules["airflow.providers.standard.operators.bash"] = None  # Airflow 2's import path is taken
    try:
        namespace: dict = {"__name__": "airflow_saaskpi"}
        exec(compile((DOCS / "airflow_saaskpi.py").read_text(), "airflow_saaskpi.py", "exec"), namespace)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return namespace, created, edges


def render(command: str, variables: dict) -> str:
    """A task's bash command as Airflow renders it (Jinja; an unknown Variable is an error, as in Airflow)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(command).render(var={"value": variables}, data_interval_start=dt.datetime(2026, 11, 2, 6))


def test_airflow_dag_validates_then_snapshots_the_required_source(tmp_path):
    tree = ast.parse((DOCS / "airflow_saaskpi.py").read_text())
    calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert "saaskpi_monthly_snapshot" in calls
    _, tasks, edges = load_dag()
    assert [t.task_id for t in tasks] == ["validate", "snapshot", "send"]
    assert edges == [("validate", "snapshot"), ("snapshot", "send")]
    variables = {"saaskpi_source": "/srv/acme-data", "saaskpi_root": "/opt/saaskpi"}
    validate, snapshot, send = (render(t.bash_command, variables) for t in tasks)
    assert validate == '/opt/saaskpi/.venv/bin/saaskpi validate "/srv/acme-data"'
    assert snapshot == '/opt/saaskpi/.venv/bin/saaskpi snapshot --source "/srv/acme-data" --month 2026-11'
    assert send == "/opt/saaskpi/.venv/bin/saaskpi send --month 2026-11"
    for task in tasks[1:]:  # the delivery secrets from Variables, as the variables delivery.yaml names; empty if unset
        env = {k: render(v, {**variables, "saaskpi_smtp_password": "pw"}) for k, v in task.kwargs["env"].items()}
        assert env == {"SAASKPI_SMTP_PASSWORD": "pw", "SAASKPI_SLACK_EXECUTIVES_WEBHOOK": ""}
        assert task.kwargs["append_env"] is True
    import jinja2

    with pytest.raises(jinja2.UndefinedError, match="saaskpi_source"):  # the source is required
        render(tasks[0].bash_command, {"saaskpi_root": "/opt/saaskpi"})


def test_airflow_validate_task_stops_on_bad_data(tmp_path, revenue_source):
    """The validate task's command, run by bash as Airflow would: exit 2 with the contract report on bad data."""
    _, tasks, _ = load_dag()
    root = Path(sys.executable).parent.parent  # the virtualenv running the tests stands in for <root>/.venv
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / ".venv").symlink_to(root)
    bad = shutil.copytree(revenue_source, tmp_path / "bad")
    (bad / "subscriptions.csv").write_text((bad / "subscriptions.csv").read_text().replace(",100,", ",-100,", 1))
    for source, code in ((revenue_source, 0), (bad, 2)):
        command = render(tasks[0].bash_command, {"saaskpi_source": str(source), "saaskpi_root": str(tmp_path / "root")})
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
        assert done.returncode == code, done.stderr
    assert "[subscriptions.out_of_range]" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "name", ["crontab", "saaskpi-snapshot.service", "airflow_saaskpi.py", "saaskpi.env", "saaskpi-send.service"]
)
def test_recipes_never_name_the_demo(name):
    assert "data/demo" not in (DOCS / name).read_text()


def test_make_snapshot_requires_a_source_and_validates_it_first(tmp_path, revenue_source):
    """`make snapshot` without SOURCE stops (exit 2); with a bad source `saaskpi validate` stops it before any page
    runs and nothing is written (setup is taken as done: -o setup)."""
    make = ["make", "-s", "-C", str(paths.ROOT), "-o", "setup", f"BIN={Path(sys.executable).parent}"]
    done = subprocess.run([*make, "snapshot", "SOURCE="], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "make snapshot needs SOURCE=" in done.stderr
    bad = shutil.copytree(revenue_source, tmp_path / "bad")
    (bad / "subscriptions.csv").write_text((bad / "subscriptions.csv").read_text().replace(",100,", ",-100,", 1))
    before = sorted(paths.REPORTS_DIR.rglob("*")) if paths.REPORTS_DIR.exists() else []
    done = subprocess.run([*make, "snapshot", f"SOURCE={bad}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "[subscriptions.out_of_range]" in done.stderr
    assert "snapshot --source" not in done.stdout + done.stderr  # the snapshot never started
    assert (sorted(paths.REPORTS_DIR.rglob("*")) if paths.REPORTS_DIR.exists() else []) == before
    plan = subprocess.run(["make", "-n", "-C", str(paths.ROOT), "reports"], capture_output=True, text=True, timeout=60)
    assert "saaskpi snapshot" in plan.stdout and "--source" not in plan.stdout  # make reports: the demo company


@pytest.mark.parametrize(
    "name",
    [
        "crontab",
        "saaskpi-snapshot.service",
        "saaskpi-snapshot.timer",
        "airflow_saaskpi.py",
        "saaskpi.env",
        "saaskpi-send.service",
        "saaskpi-send.timer",
    ],
)
def test_linked_from_the_docs(name):
    assert f"scheduling/{name}" in (paths.DOCS_DIR / "scheduling.md").read_text()
