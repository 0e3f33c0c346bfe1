"""The ``huitoukan`` command: make a sample district, run the pipeline, sign off, benchmark.

``huitoukan run`` materializes every asset through the same Dagster definitions the UI loads,
in this process, and prints a short summary. Data problems are results, not failures: it exits 0
when the pipeline ran, and non-zero with a message when it could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: runs are not serialized by the CLI (the warehouse pool still is)
    fcntl = None

from pipeline.instances import InstanceUnavailable
from pipeline.privacy import mask_text
from pipeline.resources.paths import (
    DEFAULT_RAW_DIR,
    DEFAULT_REPORTS_DIR,
    DEFAULT_WAREHOUSE,
    ENV_RAW_DIR,
    ENV_REPORTS_DIR,
    ENV_WAREHOUSE,
    env_path,
    private_dirs,
)


def _add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw-dir", default=None, help=f"data root (default ${ENV_RAW_DIR} or {DEFAULT_RAW_DIR})")
    parser.add_argument("--warehouse", default=None,
                        help=f"DuckDB file (default ${ENV_WAREHOUSE} or {DEFAULT_WAREHOUSE})")
    parser.add_argument("--reports-dir", default=None,
                        help=f"reports root (default ${ENV_REPORTS_DIR} or {DEFAULT_REPORTS_DIR})")


def _apply_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    for value, env in ((args.raw_dir, ENV_RAW_DIR), (args.warehouse, ENV_WAREHOUSE), (args.reports_dir, ENV_REPORTS_DIR)):
        if value:
            os.environ[env] = str(value)
    return (Path(env_path(ENV_RAW_DIR, DEFAULT_RAW_DIR)), Path(env_path(ENV_WAREHOUSE, DEFAULT_WAREHOUSE)),
            Path(env_path(ENV_REPORTS_DIR, DEFAULT_REPORTS_DIR)))


def _instance():
    import dagster as dg

    from pipeline.instances import open_instance  # InstanceUnavailable: one message naming the instance

    return open_instance() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def cmd_sample(args: argparse.Namespace) -> int:
    from pipeline.sample.generator import generate

    out = Path(args.out)
    if args.if_empty and out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        print(f"{out} already holds data; not generating a sample")
        return 0
    started = time.perf_counter()
    key = generate(out, households=args.households, seed=args.seed)
    n_hh = len(key.get("households", []))
    print(f"sample district written to {out} in {time.perf_counter() - started:.1f}s "
          f"({n_hh} households, seed {args.seed})")
    return 0


ENV_LOCK_TIMEOUT = "HUITOUKAN_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 3600.0
LOCK_POLL_SECONDS = 0.5
RUN_LOCK_TAG = "huitoukan/run_lock"  # on every run this command starts: the lock file it held


class RunLockTimeout(Exception):
    """Another run kept the warehouse longer than this run was willing to wait."""


@contextlib.contextmanager
def run_lock(warehouse: Path, timeout: float | None = None) -> Iterator[Path]:
    """One ``huitoukan run`` per warehouse at a time: a second one says on stderr that it waits,
    and waits up to ``timeout`` seconds (``$HUITOUKAN_LOCK_TIMEOUT``, default an hour) before it
    starts, so it never meets DuckDB's file lock half-way and never publishes a mix of two runs.
    The kernel releases the lock when its holder dies: a killed run never leaves it behind."""
    if timeout is None:
        timeout = float(os.environ.get(ENV_LOCK_TIMEOUT) or DEFAULT_LOCK_TIMEOUT)
    lock = warehouse.with_name(warehouse.name + ".lock").resolve()
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
                                         f"请在它结束后重试（等待时长见 {ENV_LOCK_TIMEOUT}）")
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


def release_abandoned_runs(instance, lock: Path) -> list[str]:
    """Close the runs an earlier ``huitoukan run`` on this warehouse left open when it was killed.

    A killed run stays "started" in a persistent instance and keeps its slot of the warehouse
    pool, so every later run would wait for that slot forever. Called while holding the run
    lock: any run tagged with the same lock that is still in progress has lost its process."""
    import dagster as dg

    runs = instance.get_runs(filters=dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
        tags={RUN_LOCK_TAG: str(lock)}))
    for run in runs:
        instance.report_run_failed(run, message="运行进程已中止（被终止或断电），由下一次 huitoukan run 关闭并释放仓库槽位")
        with contextlib.suppress(NotImplementedError):
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return [run.run_id for run in runs]


def run_pipeline(selection: str | None = None, run_config: dict | None = None):
    """Execute the full rebuild job in process, holding the run lock of the warehouse; returns
    the Dagster result. Raises RunLockTimeout when another run holds the warehouse too long."""
    from pipeline.definitions import build_defs

    with run_lock(Path(env_path(ENV_WAREHOUSE, DEFAULT_WAREHOUSE))) as lock:
        job = build_defs().resolve_job_def("full_rebuild")
        config = {"loggers": {"console": {"config": {"log_level": os.environ.get("HUITOUKAN_LOG_LEVEL", "CRITICAL")}}}}
        config.update(run_config or {})
        instance = _instance()
        release_abandoned_runs(instance, lock)
        return job.execute_in_process(instance=instance, raise_on_error=False, run_config=config,
                                      tags={RUN_LOCK_TAG: str(lock)})


def _root_cause(error) -> str:
    """The innermost error's first line (Dagster wraps the asset's own exception)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    lines = [line for line in (error.message or "").strip().splitlines() if line.strip()]
    return lines[0] if lines else error.cls_name or "unknown error"


def cmd_run(args: argparse.Namespace) -> int:
    raw, warehouse, reports = _apply_paths(args)
    if not raw.is_dir():
        print(f"error: data root {raw} does not exist (use --raw-dir or {ENV_RAW_DIR})", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        result = run_pipeline()
    except RunLockTimeout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except InstanceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    elapsed = time.perf_counter() - started
    if not result.success:
        print("error: the pipeline could not run:", file=sys.stderr)
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data.error is not None:
                print(f"  step {event.step_key}: {mask_text(_root_cause(event.step_failure_data.error))}",
                      file=sys.stderr)
        return 1
    from pipeline.summary import run_summary

    print(run_summary(warehouse, reports, elapsed))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own options: huitoukan bench --help
        from pipeline.bench import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="huitoukan", description="回头看: the poverty-exit quality review pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bench", help="measure the pipeline against the floor (huitoukan bench --help)")

    p = sub.add_parser("sample", help="write a synthetic 南芬区 data root")
    p.add_argument("--out", default=DEFAULT_RAW_DIR)
    p.add_argument("--households", type=int, default=8000)
    p.add_argument("--seed", type=int, default=2019)
    p.add_argument("--if-empty", action="store_true", help="only when the folder holds no data yet")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("run", help="materialize every asset and print a summary")
    _add_paths(p)
    p.set_defaults(func=cmd_run)

    from pipeline import commands

    p = sub.add_parser("signoff", help="签字: the leader's decision on the drafts (the sign-off asset, in process)")
    _add_paths(p)
    p.add_argument("--signer", required=True, help="签字人")
    p.add_argument("--decision", required=True, choices=["同意", "不同意"])
    p.add_argument("--comment", default="", help="意见")
    p.set_defaults(func=commands.cmd_signoff)

    p = sub.add_parser("ui", help="the Dagster UI (127.0.0.1:3000) and the read-only download server (127.0.0.1:3001)")
    _add_paths(p)
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--files-port", type=int, default=3001)
    p.add_argument("--workspace", default="workspace.yaml")
    p.set_defaults(func=commands.cmd_ui)

    from pipeline import package_signing, service

    package_signing.add_commands(sub)  # keys init|show, verify
    service.add_commands(sub)  # service install|status|uninstall

    args = parser.parse_args(argv)
    # Everything this command creates (warehouse, reports, logs, temp files, and what the UI's
    # child processes write) is readable by its owner only: it carries names and ID numbers.
    umask = os.umask(0o077)
    try:
        return args.func(args)
    finally:
        os.umask(umask)


if __name__ == "__main__":
    sys.exit(main())
