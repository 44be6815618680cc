"""The scheduling examples in docs/ are at least syntactically right."""
from __future__ import annotations

import ast
import configparser
import re
import shutil
import subprocess

import pytest

from saaskpi import paths

DOCS = paths.DOCS_DIR / "scheduling"
FIELD = r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*"


def test_cron_line():
    lines = [l for l in (DOCS / "crontab").read_text().splitlines() if l and not l.startswith("#") and "=" not in l.split()[0]]
    assert len(lines) == 1
    fields = lines[0].split()
    assert all(re.fullmatch(FIELD, f) for f in fields[:5]), fields[:5]
    minute, hour, day = int(fields[0]), int(fields[1]), int(fields[2])
    assert 0 <= minute < 60 and 0 <= hour < 24 and 1 <= day <= 28
    assert "make snapshot" in lines[0]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str
    parser.read_string((DOCS / name).read_text())
    return parser


def test_systemd_units():
    service, timer = unit("saaskpi-snapshot.service"), unit("saaskpi-snapshot.timer")
    assert service["Service"]["Type"] == "oneshot" and "make snapshot" in service["Service"]["ExecStart"]
    assert timer["Install"]["WantedBy"] == "timers.target"
    calendar = timer["Timer"]["OnCalendar"]
    if shutil.which("systemd-analyze"):
        out = subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    else:
        assert re.fullmatch(r"\*-\*-\d{2} \d{2}:\d{2}:\d{2}( UTC)?", calendar)


def test_airflow_dag_is_valid_python_using_papermill():
    tree = ast.parse((DOCS / "airflow_saaskpi.py").read_text())
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "papermill" in imports
    calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert "saaskpi_monthly_snapshot" in calls


@pytest.mark.parametrize("name", ["crontab", "saaskpi-snapshot.service", "saaskpi-snapshot.timer", "airflow_saaskpi.py"])
def test_linked_from_the_docs(name):
    assert f"scheduling/{name}" in (paths.DOCS_DIR / "scheduling.md").read_text()
