"""The warehouse's connections (``WarehouseResource.connect``): each block attaches the file to the
process's one in-memory DuckDB instance and detaches it at the end, so the file is another
process's as soon as a block ends — what lets a sensor's run and an analyst's click take turns
step by step — and a block's writes are checkpointed into the file when it ends."""

import subprocess
import sys

import duckdb
import pytest

from pipeline.resources import WarehouseResource

OTHER_PROCESS_WRITES = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                        "c.execute('INSERT INTO t VALUES (2)'); c.close()")
OTHER_PROCESS_READS = "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True).close()"


def other_process(script: str, path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)


def values(warehouse: WarehouseResource, table: str = "t") -> list:
    with warehouse.connect(read_only=True) as con:
        return sorted(r[0] for r in con.execute(f"SELECT x FROM {table}").fetchall())


def test_the_file_is_free_and_complete_when_a_block_ends(tmp_path):
    path = tmp_path / "w" / "huitoukan.duckdb"
    warehouse = WarehouseResource(database=str(path))
    with warehouse.connect() as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        con.execute("INSERT INTO t VALUES (1)")
    assert path.stat().st_mode & 0o777 == 0o600
    assert not path.with_name(path.name + ".wal").exists()  # checkpointed: the file alone holds it
    done = other_process(OTHER_PROCESS_WRITES, path)
    assert done.returncode == 0, done.stderr
    assert values(warehouse) == [1, 2]


def test_while_a_block_is_open_another_process_meets_the_lock(tmp_path):
    path = tmp_path / "huitoukan.duckdb"
    warehouse = WarehouseResource(database=str(path))
    with warehouse.connect() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        refused = other_process(OTHER_PROCESS_READS, path)
    assert refused.returncode != 0 and "lock" in refused.stderr.lower()
    assert other_process(OTHER_PROCESS_READS, path).returncode == 0


def test_nested_blocks_share_the_file_and_a_write_inside_a_read_is_refused(tmp_path):
    warehouse = WarehouseResource(database=str(tmp_path / "huitoukan.duckdb"))
    with warehouse.connect() as outer:
        outer.execute("CREATE TABLE t AS SELECT 1 AS x")
        with warehouse.connect(read_only=True) as inner:
            assert inner.execute("SELECT x FROM t").fetchall() == [(1,)]
        outer.execute("INSERT INTO t VALUES (2)")  # the inner block's end did not detach the outer's file
    with warehouse.connect(read_only=True) as reading:
        with pytest.raises(duckdb.ConnectionException, match="read-only"):
            with warehouse.connect():
                pass
        assert reading.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert values(warehouse) == [1, 2]


def test_two_warehouses_in_one_process_stay_apart(tmp_path):
    first = WarehouseResource(database=str(tmp_path / "a.duckdb"))
    second = WarehouseResource(database=str(tmp_path / "b.duckdb"))
    with first.connect() as a, second.connect() as b:
        a.execute("CREATE TABLE t AS SELECT 1 AS x")
        b.execute("CREATE TABLE t AS SELECT 2 AS x")
    assert values(first) == [1] and values(second) == [2]


def test_a_block_that_fails_inside_a_transaction_leaves_nothing(tmp_path):
    warehouse = WarehouseResource(database=str(tmp_path / "huitoukan.duckdb"))
    with warehouse.connect() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    with pytest.raises(RuntimeError), warehouse.connect() as con:
        con.execute("BEGIN")
        con.execute("INSERT INTO t VALUES (2)")
        con.execute("CREATE TABLE u AS SELECT 1 AS x")
        raise RuntimeError("a step failed half-way")
    assert values(warehouse) == [1]
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'u'").fetchone() == (0,)


def test_table_lookups_answer_for_their_own_warehouse(tmp_path):
    """With two warehouses attached in one process at once, a table of the one is not found from
    the other (the process's DuckDB lists every attached database in its catalog views)."""
    from pipeline.resources.warehouse import last_build, record_build
    from pipeline.rules.sqlutil import table_exists

    first = WarehouseResource(database=str(tmp_path / "a.duckdb"))
    second = WarehouseResource(database=str(tmp_path / "b.duckdb"))
    with first.connect() as a, second.connect() as b:
        a.execute("CREATE TABLE t AS SELECT 1 AS x")
        record_build(a, "households", "run-1", at=1.0)
        assert table_exists(a, "t") and not table_exists(b, "t")
        assert last_build(a) == ("households", 1.0) and last_build(b) is None
