"""The office's service: the units ``huitoukan service install`` writes pass ``systemd-analyze
verify``, and the three processes started exactly as the units' ExecStart lines say (argv,
WorkingDirectory, EnvironmentFile; a clean environment as systemd gives) answer: the UI on
loopback, the daemon ticks the sensors, the download server serves. On the PostgreSQL instance
when HUITOUKAN_TEST_PG_URL is set (.ci/run), else SQLite. Bounded waits throughout."""

import contextlib
import io
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from unittest import mock

import pytest
from conftest import fast_scratch
from pg_support import create_database, free_port, pg_selected
from webui import graphql

from pipeline import cli, service

pytestmark = [pytest.mark.integration]
START_TIMEOUT, TICK_TIMEOUT = 240, 240


def spec_for(base: Path, **changes) -> service.ServiceSpec:
    values = dict(
        project=service.PROJECT, bin_dir=Path(sys.executable).parent, user=os.environ.get("USER") or "root",
        group="root", env_file=base / "etc" / "huitoukan.env", dagster_home=base / "dagster_home",
        raw=base / "raw", warehouse=base / "warehouse" / "huitoukan.duckdb", reports=base / "reports",
        instance="postgres" if pg_selected() else "sqlite", ui_port=free_port(), files_port=free_port())
    import grp
    import pwd

    entry = pwd.getpwuid(os.getuid())
    values.update(user=entry.pw_name, group=grp.getgrgid(entry.pw_gid).gr_name)
    values.update(changes)
    return service.ServiceSpec(**values)


def analyze(paths: list[Path]) -> subprocess.CompletedProcess:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd; .ci/run installs it)")
    return subprocess.run([tool, "verify", *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_units_pass_systemd_analyze_verify(tmp_path):
    spec = spec_for(tmp_path, read_only=True, viewer_port=free_port(), instance="postgres")
    written = service.install(spec, tmp_path / "units", pg={"DAGSTER_PG_HOST": "127.0.0.1"}, enable=False)
    assert sorted(p.name for p in written) == ["huitoukan-daemon.service", "huitoukan-files.service",
                                                "huitoukan-viewer.service", "huitoukan-webserver.service"]
    done = analyze(written)
    print(f"systemd-analyze verify {' '.join(p.name for p in written)}: rc={done.returncode}\n"
          f"{done.stdout}{done.stderr}")
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        argv, _, workdir = service.unit_process(path.read_text(encoding="utf-8"))
        assert Path(argv[0]).is_absolute() and os.access(argv[0], os.X_OK)
        assert workdir == service.PROJECT
        if "dagster-webserver" in argv[0]:
            assert argv[argv.index("-h") + 1] == "127.0.0.1"
            assert "--read-only" in argv  # --read-only, and the viewer's unit always
    assert stat.S_IMODE(spec.env_file.stat().st_mode) == 0o600  # the database password
    text = (tmp_path / "units" / "huitoukan-daemon.service").read_text(encoding="utf-8")
    assert "After=network.target postgresql.service" in text and "Restart=always" in text


def test_a_broken_unit_is_caught_by_the_validation(tmp_path):
    spec = spec_for(tmp_path, bin_dir=tmp_path / "no-venv" / "bin", instance="sqlite")
    written = service.install(spec, tmp_path / "units", enable=False)
    done = analyze(written)
    assert done.returncode != 0 and "not executable" in done.stderr


def test_install_status_uninstall_without_systemd(tmp_path, capsys, monkeypatch):
    units = tmp_path / "units"
    args = ["service", "install", "--unit-dir", str(units), "--env-file", str(tmp_path / "env"),
            "--dagster-home", str(tmp_path / "home"), "--raw-dir", str(tmp_path / "raw"),
            "--reports-dir", str(tmp_path / "reports"), "--warehouse", str(tmp_path / "w.duckdb"),
            "--instance", "postgres", "--no-enable"]
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("DAGSTER_PG_")}
    try:
        assert cli.main(args) == 2  # no PostgreSQL login given: refused, says what to pass
        assert "--postgres-url" in capsys.readouterr().err
        assert cli.main([*args, "--postgres-url", "postgresql://hk:p%40ss@127.0.0.1:1/hk"]) == 0
    finally:
        os.environ.update(saved)
    env = service.read_environment_file(tmp_path / "env")
    assert env["DAGSTER_PG_PASSWORD"] == "p@ss" and env["DAGSTER_PG_PORT"] == "1"
    assert (tmp_path / "home" / "dagster.yaml").read_text().count("postgres") >= 1
    with monkeypatch.context() as m:
        # Dagster retries the refused connection five times, 6 s of back-off; the same retries
        # and the same error without the waits
        import dagster_postgres.utils

        m.setattr(dagster_postgres.utils, "calculate_delay", lambda **kwargs: 0)
        assert cli.main(["service", "status", "--unit-dir", str(units)]) == 1  # nothing answers
    out = capsys.readouterr().out
    assert "无响应" in out and "无法连接 Dagster 实例（PostgreSQL 127.0.0.1:1/hk" in out
    assert "p@ss" not in out
    assert cli.main(["service", "uninstall", "--unit-dir", str(units)]) == 0
    assert not list(units.glob("*.service")) and (tmp_path / "env").exists()


# --------------------------------------------------------------------------------------------
# the three processes, started as the units say
# --------------------------------------------------------------------------------------------


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


LOCATIONS = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on RepositoryLocation { name repositories { name } }
                        ... on PythonError { message } } } } } }"""
SENSORS = """query($selector: RepositorySelector!) { sensorsOrError(repositorySelector: $selector) {
  __typename ... on Sensors { results { name sensorState { status ticks(limit: 5) { status } } } } } }"""
DAEMONS = """{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"""


def wait_for(what: str, check, timeout: float, procs: dict, every: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for name, (proc, log) in procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited ({proc.returncode}): {log.read_text(errors='replace')[-3000:]}")
        try:
            last = check()
            if last:
                return last
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(every)
    tails = "\n".join(f"--- {name}: {log.read_text(errors='replace')[-1500:]}" for name, (_, log) in procs.items())
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n{tails}")


def pre_start_in_process(pre: list[str], env: dict[str, str], workdir: Path) -> tuple[int, str, str]:
    """An ExecStartPre line ``<venv>/bin/python -m pipeline.cli ARGS`` run as ``huitoukan ARGS``
    in this process, in the unit's environment (only it) and working directory: (exit code,
    stdout, stderr). The same command, without a Python start and Dagster import of its own
    before the units may start; the units' processes below start that interpreter, as
    ``-m pipeline.…``, in the same environment and folder (the download server's is
    ``python -m pipeline.fileserver``)."""
    python, flag, module, *args = pre
    assert (Path(python), flag, module) == (Path(sys.executable).parent / "python", "-m", "pipeline.cli"), pre
    assert os.access(python, os.X_OK)
    out, err = io.StringIO(), io.StringIO()
    with (mock.patch.dict(os.environ, env, clear=True), contextlib.chdir(workdir),
          contextlib.redirect_stdout(out), contextlib.redirect_stderr(err)):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def running_service(tmp_path, tmp_path_factory):
    # the service's folders (its SQLite instance: every sensor tick and daemon heartbeat a commit,
    # an fsync on a disk) on tmpfs where there is one; the processes' logs stay in tmp_path
    with fast_scratch(tmp_path_factory, "service") as base:
        yield from _running_service(base, tmp_path)


def _running_service(base: Path, tmp_path: Path):
    pg = create_database() if pg_selected() else None
    spec = spec_for(base)
    written = service.install(spec, base / "units", pg=pg, enable=False)
    (spec.raw / "surveys").mkdir(parents=True)  # nothing to read: the sensors' ticks are skips
    (spec.reports / "draft").mkdir(parents=True)
    (spec.reports / "draft" / "说明.txt").write_text("回头看 下载测试", encoding="utf-8")
    procs = {}
    checked = set()  # the ExecStartPre lines already run (the same command in the same environment)
    try:
        for path in written:
            text = path.read_text(encoding="utf-8")
            argv, env, workdir = service.unit_process(text)
            pre = service.unit_pre_start(text)
            if pre and (key := (tuple(pre), tuple(sorted(env.items())), workdir)) not in checked:
                # ExecStartPre: the instance answers (the webserver's and the daemon's are the
                # same line in the same environment: a second run would answer the same)
                code, out, err = pre_start_in_process(pre, env, workdir)
                assert code == 0 and "可以连接" in out, err
                checked.add(key)
            log = tmp_path / f"{path.stem}.log"
            with log.open("wb") as fh:
                # UMask=0077 as in the units
                proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                        start_new_session=True, preexec_fn=lambda: os.umask(0o077))
            procs[path.stem] = (proc, log)
        yield spec, procs
    finally:
        # each unit's processes (the webserver's and the daemon's code servers too) killed: how
        # they stop is not what this test checks, and the webserver and the daemon take seconds
        # to answer a SIGTERM
        for proc, _ in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for proc, _ in procs.values():
            proc.wait(timeout=30)


def test_the_three_units_start_and_answer(running_service):
    spec, procs = running_service
    ui, files = spec.ui_port, spec.files_port
    started = time.monotonic()

    # the download server serves (read-only, loopback)
    status, body = wait_for("the download server", lambda: http_get(f"http://127.0.0.1:{files}/draft/%E8%AF%B4%E6%98%8E.txt"),
                            60, procs)
    assert status == 200 and body.decode("utf-8") == "回头看 下载测试"

    # the UI answers and has loaded the project's code location
    def loaded():
        for entry in graphql(ui, LOCATIONS)["workspaceOrError"].get("locationEntries", []):
            location = entry["locationOrLoadError"]
            if location and location["__typename"] == "PythonError":
                raise AssertionError(location["message"])
            if location and location["__typename"] == "RepositoryLocation":
                return location["name"], location["repositories"][0]["name"]
        return None

    location, repository = wait_for("the UI's code location", loaded, START_TIMEOUT, procs)
    assert http_get(f"http://127.0.0.1:{ui}/server_info")[0] == 200

    # the daemon ticks the sensors (nothing new under surveys/: skipped ticks)
    selector = {"repositoryLocationName": location, "repositoryName": repository}

    def ticked():  # every sensor has had a tick that ran to its end (a skip: nothing new)
        sensors = graphql(ui, SENSORS, {"selector": selector})["sensorsOrError"]["results"]
        done = {s["name"]: [t["status"] for t in s["sensorState"]["ticks"]] for s in sensors}
        return done if done and all({"SKIPPED", "SUCCESS"} & set(v) for v in done.values()) else None

    ticks = wait_for("a tick of every sensor", ticked, TICK_TIMEOUT, procs, every=1)
    def healthy():  # every required daemon has sent a recent heartbeat (slow on a loaded machine)
        daemons = graphql(ui, DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return [d["daemonType"] for d in daemons] if all(d["healthy"] for d in daemons if d["required"]) else None

    daemons = wait_for("the daemon's heartbeats", healthy, TICK_TIMEOUT, procs, every=1)
    print(f"instance {spec.instance}: UI, downloads and daemon up in {time.monotonic() - started:.0f}s; "
          f"sensor ticks {ticks}; daemons {daemons}")
    failed = [name for name, statuses in ticks.items() if "FAILURE" in statuses]
    if failed:  # e.g. a code server that answered too late on a loaded machine: reported, not hidden
        print(f"sensor ticks that failed before one succeeded: {failed}; daemon log: "
              f"{procs['huitoukan-daemon'][1].read_text(errors='replace')[-2000:]}")
    # every process of the three units listens on loopback only
    import psutil

    listening = set()
    for proc, log in procs.values():
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        root = psutil.Process(proc.pid)
        for p in [root, *root.children(recursive=True)]:
            listening |= {c.laddr.ip for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    assert listening and listening <= {"127.0.0.1", "::1"}, listening

    # huitoukan service status sees the same (systemd itself does not run here)
    ok, lines = wait_for("huitoukan service status", lambda: (lambda r: r if r[0] else None)(
        service.status_lines(spec.env_file.parent.parent / "units")), 120, procs, every=1)
    print("\n".join(lines))
    assert sum("有响应" in line for line in lines) == 2 and any("可以连接" in line for line in lines)
