"""The tests' PostgreSQL: selected by ``HUITOUKAN_TEST_PG_URL`` (a role that may create
databases, e.g. ``postgresql://huitoukan:pw@127.0.0.1:5432/postgres``; .ci/run sets it for a
second pass of the end-to-end, sensor and service tests). Without it those tests use the
default instances (ephemeral, or SQLite in DAGSTER_HOME). Every instance gets a database of its
own, dropped when the test session ends.

``PrivateServer`` starts a throw-away PostgreSQL server (initdb + pg_ctl, on a free loopback
port) that a test may stop and start again: the fault tests use it, never the shared one.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit, urlunsplit

from pipeline.instances import TEMPLATES, pg_env

TEST_PG_ENV = "HUITOUKAN_TEST_PG_URL"
_created: list[tuple[str, str]] = []  # (admin url, database)
_homes: list[Path] = []  # DAGSTER_HOME folders of fresh_instance()


def pg_selected() -> bool:
    return bool(os.environ.get(TEST_PG_ENV))


def _psycopg2_url(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def _admin(url: str, sql: str) -> None:
    import psycopg2

    con = psycopg2.connect(_psycopg2_url(url), connect_timeout=10)
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


def create_database(admin_url: str | None = None) -> dict[str, str]:
    """A new, empty database; returns the DAGSTER_PG_* variables that point at it."""
    admin_url = admin_url or os.environ[TEST_PG_ENV]
    name = f"hk_test_{uuid.uuid4().hex[:12]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    _created.append((admin_url, name))
    parts = urlsplit(admin_url)
    return pg_env(urlunsplit(parts._replace(path=f"/{name}")))


@atexit.register
def _drop_created() -> None:
    for admin_url, name in _created:
        with contextlib.suppress(Exception):
            _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _created.clear()
    for home in _homes:
        shutil.rmtree(home, ignore_errors=True)
    _homes.clear()


def write_home(home: Path, pg: dict[str, str] | None) -> Path:
    """DAGSTER_HOME with the project's postgres template (``pg``) or SQLite template."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATES["postgres" if pg else "sqlite"], home / "dagster.yaml")
    return home


@contextlib.contextmanager
def instance_env(base: Path):
    """With PostgreSQL selected: DAGSTER_HOME (postgres template, a fresh database) in os.environ
    for the block, so in-process runs (``huitoukan run``) use it. Otherwise nothing changes."""
    if not pg_selected():
        yield None
        return
    pg = create_database()
    home = write_home(base / "dagster_home_pg", pg)
    with mock.patch.dict(os.environ, {**pg, "DAGSTER_HOME": str(home)}):
        yield home
        from pipeline.instances import open_instance

        with open_instance(home) as instance:  # the block's runs are in PostgreSQL, and succeeded
            runs = instance.get_runs()
            assert runs and all(r.status.value == "SUCCESS" for r in runs), [r.status for r in runs]
            print(f"on PostgreSQL {os.environ['DAGSTER_PG_HOST']}:{os.environ['DAGSTER_PG_PORT']}/"
                  f"{os.environ['DAGSTER_PG_DB']}: {len(runs)} run(s) {[r.status.value for r in runs]}")


def fresh_instance():
    """An empty instance: on its own PostgreSQL database when selected, else ephemeral."""
    import dagster as dg

    if not pg_selected():
        return dg.DagsterInstance.ephemeral()
    from dagster._core.instance.ref import InstanceRef

    pg = create_database()
    os.environ.update(pg)  # the yaml reads DAGSTER_PG_* when the instance is built
    home = write_home(Path(tempfile.mkdtemp(prefix="hk_pg_home_")), pg)
    _homes.append(home)
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


_shared = []


def shared_instance():
    """For reads only (a sensor's evaluation writes nothing): one PostgreSQL instance per test
    process when selected — a database per sensor tick would be slow —, else a new ephemeral one."""
    if not pg_selected():
        return fresh_instance()
    if not _shared:
        _shared.append(fresh_instance())
    return _shared[0]


# --------------------------------------------------------------------------------------------
# a private server the fault tests may stop
# --------------------------------------------------------------------------------------------


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scratch_root() -> str | None:
    """tmpfs (conftest's FAST_TMP) when it is there with room to spare, else the default temp
    folder: a cluster is ~1,500 files (~40 MB, ~8 MB more a database), and removing them from a
    busy disk took 4-5 s after every fault test, writing them most of initdb's second."""
    from conftest import FAST_TMP, FAST_TMP_FREE_BYTES

    roomy = (FAST_TMP.is_dir() and os.access(FAST_TMP, os.W_OK | os.X_OK)
             and shutil.disk_usage(FAST_TMP).free >= FAST_TMP_FREE_BYTES)
    return str(FAST_TMP) if roomy else None


class PrivateServer:
    """initdb in a temporary folder (on tmpfs where there is room), started on
    127.0.0.1:<free port> (as the ``postgres`` user when the tests run as root: PostgreSQL
    refuses root)."""

    def __init__(self):
        self.bin = pg_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hk_pg_", dir=_scratch_root()))
        self.data = self.dir / "data"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(what: str, check, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
