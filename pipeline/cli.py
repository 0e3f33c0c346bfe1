"""The ``huitoukan`` command: make a sample district, run the pipeline, sign off, benchmark.

``huitoukan run`` materializes every asset through the same Dagster definitions the UI loads,
in this process, and prints a short summary. Data problems are results, not failures: it exits 0
when the pipeline ran, and non-zero with a message when it could not run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipeline.privacy import mask_text
from pipeline.resources.paths import (
    DEFAULT_RAW_DIR,
    DEFAULT_REPORTS_DIR,
    DEFAULT_WAREHOUSE,
    ENV_RAW_DIR,
    ENV_REPORTS_DIR,
    ENV_WAREHOUSE,
    env_path,
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

    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


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


def run_pipeline(selection: str | None = None, run_config: dict | None = None):
    """Execute the full rebuild job in process; returns the Dagster result."""
    from pipeline.definitions import build_defs

    job = build_defs().resolve_job_def("full_rebuild")
    config = {"loggers": {"console": {"config": {"log_level": os.environ.get("HUITOUKAN_LOG_LEVEL", "CRITICAL")}}}}
    config.update(run_config or {})
    return job.execute_in_process(instance=_instance(), raise_on_error=False, run_config=config)


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
    result = run_pipeline()
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

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
