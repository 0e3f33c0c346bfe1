"""Each workbook version is read once; changes, resubmissions and deletions are followed."""

import os

import duckdb
from builders import SheetSpec, household, make_id, member, write_survey

from pipeline.io.survey_store import update_store

V1, V2 = "210505004201", "210505004202"


def _village(path, village, heads, t):
    write_survey(path, SheetSpec([household(h, seq=i + 1) for i, h in enumerate(heads)]),
                 SheetSpec([member(h, h) for h in heads]), village_code=village)
    os.utime(path, (t, t))


def _heads(con):
    return {r[0] for r in con.execute("SELECT head_id FROM stg_households").fetchall()}


def test_only_new_or_changed_files_are_read(tmp_path):
    raw = tmp_path / "raw"
    a, b = raw / "surveys" / "a.xlsx", raw / "surveys" / "b.xlsx"
    h1, h2, h3 = make_id("19500101", 1), make_id("19500101", 2), make_id("19500101", 3)
    _village(a, V1, [h1], 1_556_000_000)
    _village(b, V2, [h2], 1_556_000_000)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))

    first = update_store(con, raw, settle=False)
    assert (first.read, first.reused) == (2, 0)
    assert _heads(con) == {h1, h2}

    again = update_store(con, raw, settle=False)
    assert (again.read, again.reused) == (0, 2)
    assert _heads(con) == {h1, h2}

    # the same name with new content (a corrected resubmission) is read again
    _village(b, V2, [h3], 1_556_100_000)
    changed = update_store(con, raw, settle=False)
    assert (changed.read, changed.reused) == (1, 1)
    assert _heads(con) == {h1, h3}

    # a newer file of the same village supersedes the older one, which stays on disk unused
    newer = raw / "surveys" / "a-修改版.xlsx"
    _village(newer, V1, [h2], 1_556_200_000)
    update_store(con, raw, settle=False)
    assert _heads(con) == {h2, h3}
    status = dict(con.execute("SELECT file, status FROM survey_files").fetchall())
    assert status["surveys/a.xlsx"] == "已被新版本替代" and a.exists()

    # a file removed from disk takes its rows with it; the older file of the village is used again
    newer.unlink()
    gone = update_store(con, raw, settle=False)
    assert gone.removed == 1
    assert _heads(con) == {h1, h3}


def test_a_file_still_being_written_is_left_for_the_next_run(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    path = raw / "surveys" / "a.xlsx"
    _village(path, V1, [make_id("19500101", 1)], 1_556_000_000)
    os.utime(path)  # modified just now
    monkeypatch.setattr("pipeline.io.inputs.SETTLE_SECONDS", 60)
    con = duckdb.connect()
    update = update_store(con, raw, settle=True)
    assert update.read == 0
    assert con.execute("SELECT status FROM survey_files").fetchone()[0].startswith("正在写入")
    assert _heads(con) == set()


def test_parallel_reading_beside_a_busy_connection_equals_serial(tmp_path):
    """Workers come from a fork server: reading in parallel while this process holds a DuckDB
    connection whose threads are working (the deadlock a bare fork risked) gives exactly the
    rows of a serial read."""
    import threading

    raw = tmp_path / "raw"
    villages = [f"2105050042{i:02d}" for i in range(1, 7)]
    for i, village in enumerate(villages):
        _village(raw / "surveys" / f"{village}.xlsx", village, [make_id("19500101", 10 * i + 1),
                                                                 make_id("19600101", 10 * i + 2)], 1_556_000_000)
    busy = duckdb.connect(str(tmp_path / "busy.duckdb"))
    busy.execute("SET threads = 4")
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            busy.execute("SELECT sum(i * i) FROM range(2000000) t(i)").fetchone()

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        serial = duckdb.connect(str(tmp_path / "serial.duckdb"))
        update_store(serial, raw, settle=False, workers=1)
        parallel = duckdb.connect(str(tmp_path / "parallel.duckdb"))
        update_store(parallel, raw, settle=False, workers=2)
    finally:
        stop.set()
        thread.join()
    rows = "SELECT * FROM {} ORDER BY ALL"
    for table in ("stg_households", "stg_members", "survey_files"):
        assert parallel.execute(rows.format(table)).fetchall() == serial.execute(rows.format(table)).fetchall(), table
    assert len(_heads(parallel)) == 12
