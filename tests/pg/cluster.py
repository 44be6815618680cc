"""A throwaway PostgreSQL cluster for the tests: `initdb` into a temporary folder, a server listening only on
a Unix socket in that folder (no TCP port), stopped and removed at the end.

    python tests/pg/cluster.py install   # Debian's postgresql when initdb is missing (as root)
    python tests/pg/cluster.py try       # start a cluster, connect, stop: says what is missing

The tests use `Cluster` through the session fixture `pg_cluster` (tests/conftest.py). initdb refuses to run as
root, so as root (CI) the cluster runs as the `postgres` user Debian's package creates (else `nobody`), owning
the temporary folder; as a normal user it runs as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUPERUSER = "saaskpi"  # trusted on the socket
PASSWORD_USER, PASSWORD = "saaskpi_pw", "correct-horse"  # a role that must give its password (scram-sha-256)


def bin_dir() -> Path | None:
    """The folder of initdb and pg_ctl: on the PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def install() -> None:
    """Install Debian's postgresql when initdb cannot be found (root only; a normal user is told how)."""
    if bin_dir():
        return
    if os.geteuid() != 0:
        sys.exit("PostgreSQL is missing: install it (Debian: sudo apt-get install postgresql) to run its tests.")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    # the package's own cluster is neither created nor started: the tests make their own
    Path("/etc/postgresql-common/createcluster.d").mkdir(parents=True, exist_ok=True)
    Path("/etc/postgresql-common/createcluster.d/saaskpi.conf").write_text("create_main_cluster = false\n")
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _run_as() -> str | None:
    """The unprivileged user to run the server as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


class Cluster:
    """A running throwaway cluster; `url(database, schema)` addresses it through its socket."""

    def __init__(self, bins: Path):
        self.bins = bins
        self.user = _run_as()
        self.folder = Path(tempfile.mkdtemp(prefix="saaskpi-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)

    def _cmd(self, *args: str) -> subprocess.CompletedProcess:
        argv = [str(self.bins / args[0]), *args[1:]]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, cwd=self.folder)

    def start(self) -> Cluster:
        done = self._cmd(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"
        )
        if done.returncode:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        (self.data / "pg_hba.conf").write_text(f"local all {PASSWORD_USER} scram-sha-256\nlocal all all trust\n")
        options = (
            f"-c listen_addresses='' -k {self.folder} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=40 -c shared_buffers=64MB -c timezone=America/New_York"
        )  # not UTC on purpose
        done = self._cmd("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")
        if done.returncode:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}{done.stderr}{log}")
        try:
            self.sql(f"create role {PASSWORD_USER} login password '{PASSWORD}'; create database demo owner {SUPERUSER}")
        except BaseException:
            self.stop()
            raise
        return self

    def url(self, database: str = "demo", schema: str = "public", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@/{database}?host={self.folder}&schema={schema}"

    def sql(self, statements: str, database: str = "postgres") -> None:
        """Run SQL statements as the superuser (autocommit, one by one)."""
        import adbc_driver_postgresql.dbapi as dbapi

        with dbapi.connect(self.url(database).split("&schema")[0], autocommit=True) as conn, conn.cursor() as cur:
            for statement in (s.strip() for s in statements.split(";")):
                if statement:
                    cur.execute(statement)

    def load(self, schema: str, frames: dict, database: str = "demo") -> str:
        """Create `schema` afresh with one table per Polars frame (Arrow types become PostgreSQL types:
        timestamptz, date, bigint, double precision, text); the source URL of that schema."""
        import adbc_driver_postgresql.dbapi as dbapi

        self.sql(f'drop schema if exists "{schema}" cascade; create schema "{schema}"', database)
        with dbapi.connect(self.url(database).split("&schema")[0]) as conn, conn.cursor() as cur:
            for name, frame in frames.items():
                cur.adbc_ingest(name, frame.to_arrow(), mode="create", db_schema_name=schema)
            conn.commit()
        return self.url(database, schema)

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is kept) and remove the folder."""
        if (self.data / "postmaster.pid").exists():
            self._cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        for _ in range(50):  # the server's last processes leave their socket files behind briefly
            try:
                shutil.rmtree(self.folder)
                return
            except OSError:
                time.sleep(0.1)


def start() -> Cluster:
    """A started cluster, or RuntimeError saying what is missing."""
    bins = bin_dir()
    if bins is None:
        raise RuntimeError(
            "PostgreSQL's initdb was not found (on the PATH or in /usr/lib/postgresql/*/bin): "
            "`make test` installs it as root; or apt-get install postgresql"
        )
    return Cluster(bins).start()


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        install()
    elif sys.argv[1:] == ["try"]:
        cluster = start()
        try:
            cluster.sql("select 1")
            print(f"PostgreSQL cluster started and answered at {cluster.folder}")
        finally:
            cluster.stop()
    else:
        sys.exit(__doc__)
