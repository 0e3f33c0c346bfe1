"""The Dagster instance on PostgreSQL (config/dagster.postgres.yaml): the same warehouse pool and
run queue as the SQLite template; a server that is down gives one clear message naming the
instance, and a queued run is not lost — the queue holds it until the server is back and the
daemon (restarted by systemd, Restart=always) launches it. The fault test uses a PostgreSQL
server of its own (initdb, loopback, a free port) that it stops and starts."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from pg_support import PrivateServer, create_database, pg_bin, write_home

from pipeline import cli
from pipeline.instances import TEMPLATES, InstanceUnavailable, instance_kind, open_instance

TESTS = Path(__file__).resolve().parent


def test_postgres_template_mirrors_the_sqlite_template():
    sqlite = yaml.safe_load(TEMPLATES["sqlite"].read_text(encoding="utf-8"))
    postgres = yaml.safe_load(TEMPLATES["postgres"].read_text(encoding="utf-8"))
    assert set(postgres) - set(sqlite) == {"storage"}
    for section in sqlite:
        assert postgres[section] == sqlite[section], section
    db = postgres["storage"]["postgres"]["postgres_db"]
    assert all(isinstance(db[k], dict) and "env" in db[k] for k in ("hostname", "port", "db_name", "username",
                                                                     "password"))  # no login in the file


@pytest.fixture(scope="module")
def server():
    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run installs it)")
    srv = PrivateServer()
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def home(server, tmp_path, monkeypatch):
    pg = create_database(server.url)
    for k, v in pg.items():
        monkeypatch.setenv(k, v)
    home = write_home(tmp_path / "dagster_home", pg)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_instance_on_postgres_has_the_pool_and_the_queue(home):
    assert instance_kind(home) == "postgres"
    with open_instance(home) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.event_log_storage.get_pool_config().default_pool_limit == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2


def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace.yaml"
    path.write_text(yaml.safe_dump({"load_from": [{"python_file": {
        "relative_path": str(TESTS / "tiny_defs.py"), "working_directory": str(TESTS)}}]}), encoding="utf-8")
    return path


def start_daemon(ws: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as fh:
        return subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(ws)],
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy())


def stop(proc: subprocess.Popen) -> None:
    """End the daemon's session (the daemon, its code server, a run worker) once the test has
    what it needs from it: killed rather than asked, which the daemon answers in seconds."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def no_waits_between_retries(monkeypatch) -> None:
    """Dagster retries a refused PostgreSQL connection five times, 6 s of back-off in all, before
    it gives up; in this process the test does not wait for them (the same retries, the same
    error), nor in `service check` (tests/pg_no_backoff.py). The daemon keeps the real back-off."""
    import dagster_postgres.utils

    monkeypatch.setattr(dagster_postgres.utils, "calculate_delay", lambda **kwargs: 0)


def test_server_down_one_clear_message_and_the_queued_run_is_not_lost(server, home, tmp_path, capsys, monkeypatch):
    import dagster as dg

    ws = workspace(tmp_path)
    # a run submitted to the queue while the server is up (the daemon is not running yet), by
    # `dagster job launch` (the command line of the dagster script's entry point, dagster._cli:main)
    # in this process: the same command on the same instance, one Python start and Dagster import
    # less. It reads the job from the workspace's one code location loaded in this process, as
    # `dagster definitions validate` loads one, not from a code server started for the purpose (a
    # second Python start and Dagster import): the queued run names the same location, which the
    # daemon's own code server serves when it launches the run
    import dagster._cli.job
    from dagster._cli import create_dagster_cli

    workspace_from_cli_opts = dagster._cli.job.get_workspace_from_cli_opts
    with monkeypatch.context() as m:
        m.setattr(dagster._cli.job, "get_workspace_from_cli_opts",
                  lambda *args, **kwargs: workspace_from_cli_opts(*args, **kwargs, allow_in_process=True))
        launched = create_dagster_cli().main(["job", "launch", "-w", str(ws), "-j", "ping_job"], prog_name="dagster",
                                             standalone_mode=False)
    assert launched.status == dg.DagsterRunStatus.QUEUED
    capsys.readouterr()  # what the launch printed: the messages checked below are the outage's
    with open_instance(home) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.QUEUED
    run_id = run.run_id

    log = tmp_path / "daemon.log"
    daemon = check = None
    server.stop()
    try:
        try:
            # the units' ExecStartPre (it says the same in the journal, and systemd retries) and the
            # daemon start at once: each meets the outage on its own time (a Python start, then
            # Dagster's connection retries) while this process checks its own message. The check's
            # retries do not wait (tests/pg_no_backoff.py): its message is what is checked, and the
            # test then waits only until the daemon has met the outage
            check = subprocess.Popen([sys.executable, str(TESTS / "pg_no_backoff.py"), "-m", "pipeline.cli",
                                      "service", "check"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=os.environ.copy(), cwd=TESTS.parent)
            # the daemon, started while the server is down, cannot launch anything (and may stop:
            # systemd restarts it, Restart=always)
            daemon = start_daemon(ws, log)

            # one clear message naming the instance, from the code and from `huitoukan run`
            with monkeypatch.context() as m:
                no_waits_between_retries(m)
                with pytest.raises(InstanceUnavailable) as caught:
                    open_instance(home)
                message = str(caught.value)
                port = os.environ["DAGSTER_PG_PORT"]
                assert f"PostgreSQL 127.0.0.1:{port}/{os.environ['DAGSTER_PG_DB']}" in message
                assert str(home) in message and "不会丢失" in message and "Traceback" not in message
                (tmp_path / "raw").mkdir()
                code = cli.main(["run", "--raw-dir", str(tmp_path / "raw"), "--warehouse", str(tmp_path / "w.duckdb"),
                                 "--reports-dir", str(tmp_path / "reports")])
            err = capsys.readouterr().err
            print(err)
            assert code == 4 and err.count("无法连接 Dagster 实例") == 1 and "Traceback" not in err
            _, check_err = check.communicate(timeout=120)
            assert check.returncode == 1 and check_err.count("无法连接 Dagster 实例") == 1, check_err
            assert "Traceback" not in check_err

            # until the daemon has met the outage (stopped, or logged the refused connection), 20 s at most
            deadline = time.monotonic() + 20
            while (time.monotonic() < deadline and daemon.poll() is None
                   and "refused" not in log.read_text(errors="replace")):
                time.sleep(0.2)
        finally:
            if check is not None and check.poll() is None:
                check.kill()
                check.wait()
            server.start()
        deadline = time.monotonic() + 240
        restarts = 0
        status = None
        # the server is back: one instance for the polls (opening one checks the schema, ~0.3 s and
        # a few connections each time), asked every 0.5 s until the daemon has run the queued run
        with open_instance(home) as instance:
            while time.monotonic() < deadline:
                if daemon.poll() is not None:  # what systemd's Restart=always does
                    restarts += 1
                    daemon = start_daemon(ws, log)
                status = instance.get_run_by_id(run_id).status
                runs = instance.get_runs_count()
                if status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
                    break
                time.sleep(0.5)
        print(f"queued run {run_id[:8]}: {status}; daemon restarts {restarts}; runs in the instance {runs}")
        assert status == dg.DagsterRunStatus.SUCCESS, log.read_text(errors="replace")[-3000:]
        assert runs == 1
    finally:
        if daemon is not None:
            stop(daemon)
