
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from pipeline.resources.paths import DEFAULT_WAREHOUSE, private_dirs

LOCK_RETRIES = 30
LOCK_WAIT_SECONDS = 1.0
# Every asset that opens the warehouse runs in this pool; dagster.yaml limits it to 1 slot, so
# runs from sensors, the schedule and the UI take turns instead of meeting DuckDB's file lock.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse. DuckDB allows one writing process: connections are short, and a
    connection that meets another process's lock waits and retries instead of failing."""

    database: str = DEFAULT_WAREHOUSE

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = Path(self.database)
        if not read_only:
            private_dirs(path.parent)
        con = None
        for attempt in range(LOCK_RETRIES):
            try:
                con = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or attempt == LOCK_RETRIES - 1:
                    raise
                time.sleep(LOCK_WAIT_SECONDS)
        try:
            if path.exists():
                path.chmod(0o600)
            yield con
        finally:
            con.close()


def replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> int:
    """Replace a table with a frame's rows, atomically."""
    con.register("_frame", frame)
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _frame')
    finally:
        con.unregister("_frame")
    return len(frame)
