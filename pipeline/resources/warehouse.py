"""The DuckDB warehouse as a resource.

Why not ``dagster_duckdb.DuckDBResource`` (read in dagster-duckdb 0.29): its ``get_connection``
always opens read-write (``read_only=False`` is fixed), so the report assets could not read
while a sensor's intake run holds the file; its retry is Dagster's private ``backoff`` with a
fixed count; and it neither creates the warehouse folder owner-only nor makes the file 0o600,
which a file full of names and ID numbers needs. What it would add — a ``database`` field and
the connection — is the few lines below, so the dependency is gone rather than wrapped. (Nor does
it keep a DuckDB instance between connections, which ``_Attachments`` does.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from pipeline.layout import DEFAULT_WAREHOUSE
from pipeline.resources.paths import private_dirs
from pipeline.rules.sqlutil import table_exists
from pipeline.tables import ASSET_BUILDS

LOCK_RETRIES = 30
LOCK_WAIT_SECONDS = 1.0
# Every asset that opens the warehouse runs in this pool; dagster.yaml limits it to 1 slot, so
# runs from sensors, the schedule and the UI take turns instead of meeting DuckDB's file lock.
WAREHOUSE_POOL = "warehouse"
# Steps no draft waits for (problem lists, progress, the blank template) take the pool's slot after
# the steps the drafts need whenever both are ready: a new file reaches the drafts sooner.
AFTER_DRAFTS = {"dagster/priority": "-5"}


class _Attachments:
    """The process's one DuckDB instance, in memory, into which the warehouse file is attached for
    the length of each connection block and detached after it.

    Opening a DuckDB database builds a new instance (its function catalog: 25–40 ms on the
    office's machines) and closing it tears that down again; a district run opens the warehouse
    some 80 times, one short connection per step, and those opens were ~2 s of a small run.
    ``ATTACH`` into an instance that already exists costs a few milliseconds, and ``DETACH``
    checkpoints and releases the file exactly as closing did, so between two steps another
    process (a sensor's run, the sign-off) finds the file free as before. Nested blocks on the same
    file in one process share the attachment (DuckDB refuses to attach a file twice), and a
    writing block inside a read-only one is refused as a second connection with another
    configuration always was."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._base: duckdb.DuckDBPyConnection | None = None
        self._held: dict[str, list] = {}  # file -> [alias, read_only, users]
        self._serial = 0

    def open(self, path: Path, read_only: bool) -> tuple[duckdb.DuckDBPyConnection, str]:
        """A connection whose default database is the attached file; raises duckdb.IOException
        while another process holds the file's lock."""
        key = str(path.resolve())
        with self._lock:
            if self._base is None:
                self._base = duckdb.connect(":memory:")
            held = self._held.get(key)
            if held is None:
                if not self._held:  # spilled sorts beside the warehouse (a file DuckDB's default), not in the cwd
                    self._base.execute(f"SET temp_directory = {_literal(key + '.tmp')}")
                self._serial += 1
                alias = f"warehouse_{self._serial}"
                self._base.execute(f"ATTACH {_literal(key)} AS {alias}" + (" (READ_ONLY)" if read_only else ""))
                held = self._held[key] = [alias, read_only, 0]
            elif held[1] and not read_only:
                raise duckdb.ConnectionException(
                    f"{path.name} is open read-only in this process; it cannot be written in the same block")
            held[2] += 1
            con = self._base.cursor()
        try:
            con.execute(f"USE {held[0]}")
        except BaseException:
            self.close(con, key)
            raise
        return con, key

    def close(self, con: duckdb.DuckDBPyConnection, key: str) -> None:
        con.close()  # rolls back a transaction the block left open
        with self._lock:
            held = self._held[key]
            held[2] -= 1
            if held[2] == 0:
                del self._held[key]
                self._base.execute(f"DETACH {held[0]}")  # checkpoints, releases the file lock


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_ATTACHMENTS = _Attachments()


class WarehouseResource(dg.ConfigurableResource):
    """数据仓库（DuckDB warehouse）。DuckDB 只允许一个写入进程：连接短开短关，遇到另一进程的锁时等待重试。"""

    database: str = DEFAULT_WAREHOUSE

    @contextmanager
    def connect(self, read_only: bool = False, wait: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short connection to the warehouse. While another process writes it, wait for it
        (LOCK_RETRIES × LOCK_WAIT_SECONDS), or with ``wait=False`` raise duckdb.IOException at once
        (a sensor looks again on its next tick)."""
        path = Path(self.database)
        if not read_only:
            private_dirs(path.parent)
        retries = LOCK_RETRIES if wait else 1
        for attempt in range(retries):
            try:
                con, key = _ATTACHMENTS.open(path, read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or attempt == retries - 1:
                    raise
                time.sleep(LOCK_WAIT_SECONDS)
        try:
            if path.exists():
                path.chmod(0o600)
            yield con
        finally:
            _ATTACHMENTS.close(con, key)

    @contextmanager
    def build(self, context: dg.AssetExecutionContext) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writing connection for an asset the drafts are made from; when the block ends without
        an error, the asset's build time is recorded in the warehouse (the sign-off gate compares
        the drafts with it)."""
        with self.connect() as con:
            yield con
            record_build(con, context.asset_key.to_user_string(), context.run_id)


def record_build(con: duckdb.DuckDBPyConnection, asset: str, run_id: str, at: float | None = None) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {ASSET_BUILDS} (asset VARCHAR PRIMARY KEY, built_at DOUBLE, "
                "run_id VARCHAR)")
    con.execute(f"INSERT OR REPLACE INTO {ASSET_BUILDS} VALUES (?, ?, ?)",
                [asset, time.time() if at is None else at, run_id])


def last_build(con: duckdb.DuckDBPyConnection) -> tuple[str, float] | None:
    """(asset, time) of the newest build recorded, or None when nothing was built yet."""
    if not table_exists(con, ASSET_BUILDS):
        return None
    return con.execute(f"SELECT asset, built_at FROM {ASSET_BUILDS} ORDER BY built_at DESC LIMIT 1").fetchone()


def replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> int:
    """Replace a table with a frame's rows, atomically."""
    con.register("_frame", frame)
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _frame')
    finally:
        con.unregister("_frame")
    return len(frame)
