"""The Great Expectations worker (pipeline/checks/ge_worker.py): validation in a process of its
own, handed frames early and collected late, whose failures reach the check as masked errors."""

from __future__ import annotations

import os
import signal

import duckdb
import pandas as pd
import pytest
from builders import make_id

from pipeline.checks.expectations import MEMBERS, validation_frame
from pipeline.checks.ge_worker import GEWorker


def _members_frame(ids: list[str | None]) -> pd.DataFrame:
    con = duckdb.connect()
    con.execute("CREATE TABLE households (hh_key VARCHAR)")
    con.execute(f"CREATE TABLE members AS SELECT * FROM (VALUES {', '.join(['(?, ?, ?)'] * len(ids))}) "
                "t(member_uid, person_id, person_id_status)",
                [v for i, pid in enumerate(ids) for v in (f"V|f|{i + 5}", pid, "ok" if pid else None)])
    for col in ("village_code", "name", "relation", "sex", "id_sex", "ethnicity", "education", "school_status",
                "labor_skill", "work_status", "dibao", "tekun", "disabled_cert", "disability_type",
                "disability_grade", "medical_insured", "hh_key"):
        con.execute(f"ALTER TABLE members ADD COLUMN {col} VARCHAR")
    con.execute("ALTER TABLE members ADD COLUMN work_months INTEGER")
    con.execute("ALTER TABLE members ADD COLUMN age INTEGER")
    return validation_frame(con, MEMBERS)


@pytest.fixture(scope="module")
def _started():
    held = [GEWorker().start()]
    yield held
    held[0].stop()


@pytest.fixture
def worker(_started) -> GEWorker:
    """One started worker for the module (starting one imports GE: 8-14 s of CPU); a new one
    after a test has stopped it."""
    if _started[0].proc is None:
        _started[0] = GEWorker().start()
    return _started[0]


def test_the_worker_validates_what_it_is_handed_and_writes_the_docs(worker, tmp_path):
    good = make_id("19800101", 123)
    frame = _members_frame([good, good, None])  # a duplicate ID and a missing one
    worker.submit({"members": frame}, docs_dir=tmp_path / "quality", run_name="t1")
    assert worker.pending
    outcomes = worker.collect()
    assert not worker.pending
    assert {check for _, check in outcomes} == {e.check for e in MEMBERS.expectations}
    unique = outcomes[("members", "person_id_unique")]
    assert not unique.success and unique.unexpected_count == 2 and sorted(unique.sample_keys) == ["V|f|5", "V|f|6"]
    valid = outcomes[("members", "person_id_valid")]
    assert valid.unexpected_count == 1 and valid.sample_keys == ["V|f|7"]
    assert (tmp_path / "quality" / "index.html").exists()
    assert good not in "".join(p.read_text("utf-8") for p in (tmp_path / "quality").rglob("*.html"))
    # the worker takes the next job (a second run in one process, or the check handing over itself)
    worker.submit({"members": _members_frame([good])}, docs_dir=None, run_name="t2")
    assert worker.collect()[("members", "person_id_unique")].success


def test_a_job_the_worker_cannot_do_is_an_error_with_its_reason(worker):
    frame = pd.DataFrame({"member_uid": ["V|f|5"]})
    worker.submit({"no_such_suite": frame}, docs_dir=None, run_name="t")
    with pytest.raises(RuntimeError, match="KeyError"):
        worker.collect()
    # and it is still there for the next one
    worker.submit({"members": _members_frame([make_id("19800101", 5)])}, docs_dir=None, run_name="t")
    assert worker.collect()


def test_a_worker_that_died_is_reported_not_waited_for():
    worker = GEWorker().start()
    worker.submit({"members": _members_frame([make_id("19800101", 5)])}, docs_dir=None, run_name="t")
    os.kill(worker.proc.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="ended"):
        worker.collect()
    worker.stop()


def test_the_worker_ends_with_its_run(worker, tmp_path):
    w = worker  # GE already imported: the first test hands a job to a worker still importing it
    proc = w.proc
    w.submit({"members": _members_frame([make_id("19800101", 5)])}, docs_dir=tmp_path / "q", run_name="t")
    w.stop()  # lets the job under way finish, then ends the process
    assert proc.poll() is not None
    assert (tmp_path / "q" / "index.html").exists()
    assert not w.folder.exists()


def test_a_worker_whose_run_was_killed_ends_and_its_folder_goes(tmp_path):
    """kill -9 of the run: its worker stops at once (never writing Data Docs beside the next run's
    worker), and the next worker removes the folder the killed run left."""
    import subprocess
    import sys
    import time

    import psutil

    script = ("import sys, time; from pipeline.checks.ge_worker import GEWorker; w = GEWorker().start(); "
              "print(w.proc.pid, w.folder, 'pandas' in sys.modules, flush=True); time.sleep(600)")
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pid, folder, pandas_imported = run.stdout.readline().split()
    run.kill()  # while the worker is still importing GE (8-14 s here): it must not finish that first
    run.wait()
    deadline = time.monotonic() + 5
    while psutil.pid_exists(int(pid)) and psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the worker outlived its run"
        time.sleep(0.2)
    from pathlib import Path

    # the worker's module imports nothing heavy before main() starts the watch (pandas is ~1.5 s here)
    assert pandas_imported == "False"
    assert Path(folder).exists()
    GEWorker().stop()
    assert not Path(folder).exists()


def test_a_dead_worker_makes_every_expectation_a_warning_with_the_reason():
    """The check does not fail the run when GE cannot validate: every expectation is reported as
    not passed (WARN) with the reason, and the 附件 and sign-off go on as for any data problem."""
    import dagster as dg

    from pipeline.checks.asset_checks import collect_outcomes, ge_check_results
    from pipeline.checks.expectations import expectations

    worker = GEWorker().start()
    worker.submit({"members": _members_frame([make_id("19800101", 5)])}, docs_dir=None, run_name="t")
    os.kill(worker.proc.pid, signal.SIGKILL)
    try:
        outcomes, failure = collect_outcomes(worker)
    finally:
        worker.stop()
    results = list(ge_check_results(None, outcomes, failure))
    assert len(results) == len(expectations())
    for r in results:
        assert not r.passed and r.severity == dg.AssetCheckSeverity.WARN
        assert "could not validate" in r.metadata["error"].value and "ended" in r.metadata["error"].value
