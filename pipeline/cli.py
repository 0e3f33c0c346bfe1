"""The ``huitoukan`` command: make a sample district, run the pipeline, sign off, open the UI,
benchmark. It only parses: the flags become resources (``build_resources``) that are handed to
the definitions through ``pipeline.runner``; nothing is passed through this process's environment.

``huitoukan run`` materializes every asset through the same definitions the UI loads, in this
process, and prints a short summary. Data problems are results, not failures: it exits 0 when
the pipeline ran, and non-zero with a message when it could not run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipeline.instances import InstanceUnavailable
from pipeline.layout import DEFAULT_RAW_DIR, DEFAULT_REPORTS_DIR, DEFAULT_WAREHOUSE, ENV_RAW_DIR, ENV_REPORTS_DIR, ENV_WAREHOUSE
from pipeline.privacy import mask_name, mask_text

ENV_LOCK_TIMEOUT, ENV_LOG_LEVEL = "HUITOUKAN_LOCK_TIMEOUT", "HUITOUKAN_LOG_LEVEL"


def _add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw-dir", default=os.environ.get(ENV_RAW_DIR) or DEFAULT_RAW_DIR,
                        help=f"数据目录 data root (default ${ENV_RAW_DIR} or {DEFAULT_RAW_DIR})")
    parser.add_argument("--warehouse", default=os.environ.get(ENV_WAREHOUSE) or DEFAULT_WAREHOUSE,
                        help=f"数据仓库 DuckDB file (default ${ENV_WAREHOUSE} or {DEFAULT_WAREHOUSE})")
    parser.add_argument("--reports-dir", default=os.environ.get(ENV_REPORTS_DIR) or DEFAULT_REPORTS_DIR,
                        help=f"报表目录 reports root (default ${ENV_REPORTS_DIR} or {DEFAULT_REPORTS_DIR})")
    parser.add_argument("--log-level", default=os.environ.get(ENV_LOG_LEVEL) or "CRITICAL",
                        help="Dagster's console log level (default CRITICAL)")


def _resources(args: argparse.Namespace) -> dict:
    from pipeline.resources import build_resources

    return build_resources(raw_dir=args.raw_dir, warehouse=args.warehouse, reports_dir=args.reports_dir)


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


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline import runner

    raw = Path(args.raw_dir)
    if not raw.is_dir():
        print(f"error: data root {raw} does not exist (use --raw-dir or {ENV_RAW_DIR})", file=sys.stderr)
        return 2
    started = time.perf_counter()
    resources = _resources(args)
    try:
        result = runner.run_pipeline(resources, lock_timeout=args.lock_timeout, log_level=args.log_level)
    except runner.RunLockTimeout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except InstanceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    elapsed = time.perf_counter() - started
    if not result.success:
        print("error: the pipeline could not run:", file=sys.stderr)
        for step, cause in runner.step_failures(result):
            print(f"  step {step}: {mask_text(cause)}", file=sys.stderr)
        return 1
    from pipeline.summary import run_summary

    with resources["warehouse"].connect(read_only=True) as con:  # the warehouse the run wrote
        print(run_summary(con, Path(args.reports_dir), elapsed))
    return 0


def cmd_signoff(args: argparse.Namespace) -> int:
    from pipeline import runner

    result = runner.run_signoff(_resources(args), args.signer, args.decision, args.comment or "",
                                log_level=args.log_level)
    if not result.success:
        print(mask_text(runner.failure_description(result)), file=sys.stderr)
        return 1
    meta = result.asset_materializations_for_node("signoff")[-1].metadata
    print(f"{meta['outcome'].value}（签字人 {mask_name(args.signer)}）")
    if "package" in meta:
        print(f"签字包：{meta['path'].value}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from pipeline.instances import DEFAULT_DAGSTER_HOME
    from pipeline.ui import serve_ui

    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME)
    return serve_ui(raw=Path(args.raw_dir), warehouse=Path(args.warehouse), reports=Path(args.reports_dir),
                    home=home, port=args.port, files_port=args.files_port, workspace=Path(args.workspace))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="huitoukan",
                                     description="回头看：脱贫质量“回头看”数据处理（poverty-exit quality review）")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bench", help="基准测试 measure the pipeline against the floor (huitoukan bench --help)")

    p = sub.add_parser("sample", help="生成样例区 write a synthetic 南芬区 data root")
    p.add_argument("--out", default=DEFAULT_RAW_DIR)
    p.add_argument("--households", type=int, default=8000)
    p.add_argument("--seed", type=int, default=2019)
    p.add_argument("--if-empty", action="store_true", help="only when the folder holds no data yet")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("run", help="全区重建 materialize every asset and print a summary")
    _add_paths(p)
    p.add_argument("--lock-timeout", type=float, default=float(os.environ.get(ENV_LOCK_TIMEOUT) or 3600),
                   help=f"seconds to wait for another run on the same warehouse (default ${ENV_LOCK_TIMEOUT} or 3600)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("signoff", help="签字 the leader's decision on the drafts (the sign-off asset, in process)")
    _add_paths(p)
    p.add_argument("--signer", required=True, help="签字人")
    p.add_argument("--decision", required=True, choices=["同意", "不同意"])
    p.add_argument("--comment", default="", help="意见")
    p.set_defaults(func=cmd_signoff)

    p = sub.add_parser("ui", help="界面 the Dagster UI (127.0.0.1:3000) and the read-only download server (127.0.0.1:3001)")
    _add_paths(p)
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--files-port", type=int, default=3001)
    p.add_argument("--workspace", default="workspace.yaml")
    p.set_defaults(func=cmd_ui)

    from pipeline import package_signing, service

    package_signing.add_commands(sub)  # keys init|show, verify
    service.add_commands(sub)  # service install|status|check|uninstall
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own options: huitoukan bench --help
        from pipeline.bench import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    # Everything this command creates (warehouse, reports, logs, temp files, and what the UI's
    # child processes write) is readable by its owner only: it carries names and ID numbers.
    umask = os.umask(0o077)
    try:
        return args.func(args)
    finally:
        os.umask(umask)


if __name__ == "__main__":
    sys.exit(main())
