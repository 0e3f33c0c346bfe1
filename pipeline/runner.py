"""Running the pipeline in this process: the warehouse's run lock, the Dagster instance, the
district rebuild and the sign-off, each with the resources it is handed (``build_resources``).

``cli.py`` parses a command line and calls these; the benchmark and the tests call them too.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: runs are not serialized by the lock (the warehouse pool still is)
    fcntl = None

import dagster as dg

from pipeline.instances import ensure_dagster_home
from pipeline.resources.paths import private_dirs

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_LOCK_TIMEOUT = 3600.0
DEFAULT_LOG_LEVEL = "CRITICAL"
LOCK_POLL_SECONDS = 0.5
RUN_LOCK_TAG = "huitoukan/run_lock"  # on every run started here: the lock file it held


class RunLockTimeout(Exception):
    """Another run kept the warehouse longer than this run was willing to wait."""


# --------------------------------------------------------------------------------------------
# The Dagster instance
# --------------------------------------------------------------------------------------------


def instance(home: Path | str | None = None) -> dg.DagsterInstance:
    """The persistent instance of ``home`` (default: $DAGSTER_HOME), so runs show in the UI; an
    ephemeral one when there is neither."""
    home = home or os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    from pipeline.instances import open_instance  # InstanceUnavailable: one message naming the instance

    return open_instance(ensure_dagster_home(home))


# --------------------------------------------------------------------------------------------
# One run per warehouse at a time
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def run_lock(warehouse: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[Path]:
    """One run per warehouse at a time: a second one says on stderr that it waits, and waits up
    to ``timeout`` seconds before it starts, so it never meets DuckDB's file lock half-way and
    never publishes a mix of two runs. The kernel releases the lock when its holder dies: a
    killed run never leaves it behind."""
    lock = Path(warehouse).with_name(Path(warehouse).name + ".lock").resolve()
    private_dirs(lock.parent)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None and not _try_lock(fd):
            print(f"另一个运行正在使用仓库 {warehouse}，等待它结束（最多等待 {timeout:g} 秒）……",
                  file=sys.stderr, flush=True)
            deadline = time.monotonic() + timeout
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise RunLockTimeout(f"等待 {timeout:g} 秒后仓库 {warehouse} 仍被另一个运行占用，本次未运行；"
                                         "请在它结束后重试（等待时长：--lock-timeout 或 HUITOUKAN_LOCK_TIMEOUT）")
                time.sleep(LOCK_POLL_SECONDS)
        yield lock
    finally:
        os.close(fd)  # releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def release_abandoned_runs(inst: dg.DagsterInstance, lock: Path) -> list[str]:
    """Close the runs an earlier run on this warehouse left open when it was killed.

    A killed run stays "started" in a persistent instance and keeps its slot of the warehouse
    pool, so every later run would wait for that slot forever. Called while holding the run
    lock: any run tagged with the same lock that is still in progress has lost its process."""
    runs = inst.get_runs(filters=dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
        tags={RUN_LOCK_TAG: str(lock)}))
    for run in runs:
        inst.report_run_failed(run, message="运行进程已中止（被终止或断电），由下一次 huitoukan run 关闭并释放仓库槽位")
        with contextlib.suppress(NotImplementedError):
            inst.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return [run.run_id for run in runs]


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


def _logging(level: str) -> dict:
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def run_pipeline(resources: dict, *, inst: dg.DagsterInstance | None = None, run_config: dict | None = None,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT, log_level: str = DEFAULT_LOG_LEVEL,
                 job_name: str = "full_rebuild", checks: Sequence[dg.AssetChecksDefinition] | None = None,
                 ) -> dg.ExecuteInProcessResult:
    """Execute the district rebuild in process around ``resources``, holding the warehouse's run
    lock. Raises RunLockTimeout when another run holds the warehouse too long. ``checks``: the
    standalone asset checks to define (default: all, see ``build_defs``)."""
    from pipeline.definitions import build_defs

    warehouse = Path(resources["warehouse"].database)
    with run_lock(warehouse, lock_timeout) as lock:
        job = build_defs(resources, checks).resolve_job_def(job_name)
        config = {**_logging(log_level), **(run_config or {})}
        inst = inst or instance()
        release_abandoned_runs(inst, lock)
        return job.execute_in_process(instance=inst, raise_on_error=False, run_config=config,
                                      tags={RUN_LOCK_TAG: str(lock)})


def run_signoff(resources: dict, signer: str, decision: str, comment: str = "", *,
                inst: dg.DagsterInstance | None = None,
                log_level: str = DEFAULT_LOG_LEVEL) -> dg.ExecuteInProcessResult:
    """Materialize the sign-off asset in this process (the same asset the UI launches)."""
    from pipeline.definitions import build_defs

    job = build_defs(resources).resolve_job_def("signoff_job")
    config = {"ops": {"signoff": {"config": {"signer": signer, "decision": decision, "comment": comment}}},
              **_logging(log_level)}
    return job.execute_in_process(instance=inst or instance(), raise_on_error=False, run_config=config)


def root_cause(error) -> str:
    """The innermost error's first line (Dagster wraps the asset's own exception); for a failed
    blocking check, all of it: the checks are named on the lines after the first."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    lines = [line.strip() for line in (error.message or "").strip().splitlines() if line.strip()]
    if error.cls_name == "DagsterAssetCheckFailedError":
        return " ".join(lines)
    return lines[0] if lines else error.cls_name or "unknown error"


def step_failures(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    """(step, first line of its root cause) of every failed step."""
    return [(e.step_key, root_cause(e.step_failure_data.error)) for e in result.all_events
            if e.is_step_failure and e.step_failure_data.error is not None]


def failure_description(result: dg.ExecuteInProcessResult) -> str:
    """The description a failed step gave (the sign-off's refusal), else its error message."""
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error is not None:
                return data.error.message.strip()
    return "运行失败（the run failed）"
