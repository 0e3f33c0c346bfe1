"""``huitoukan signoff`` and ``huitoukan ui``: the sign-off from a terminal, and the analyst's UI.

``huitoukan ui`` starts, in one command, the Dagster UI (``dagster dev``: webserver + daemon, so
sensors and the nightly schedule run) on http://127.0.0.1:3000 and the read-only file server for
the reports root on http://127.0.0.1:3001, which the assets' download links point at.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from pipeline.privacy import mask_name, mask_text
from pipeline.resources.paths import ENV_DOWNLOAD_URL, ENV_RAW_DIR, ENV_REPORTS_DIR, ENV_WAREHOUSE

PROJECT = Path(__file__).resolve().parent.parent
# not named dagster.yaml at the top: dagster warns about a dagster.yaml outside DAGSTER_HOME
INSTANCE_TEMPLATE = PROJECT / "config" / "dagster.yaml"
DEFAULT_DAGSTER_HOME = ".dagster_home"


def ensure_dagster_home(home: Path | None = None) -> Path:
    """DAGSTER_HOME (default .dagster_home/), with the project's dagster.yaml copied in when it
    has none (an edited copy is never overwritten)."""
    home = Path(home or os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = home / "dagster.yaml"
    if not target.exists() and INSTANCE_TEMPLATE.exists():
        shutil.copyfile(INSTANCE_TEMPLATE, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


# --------------------------------------------------------------------------------------------
# huitoukan signoff
# --------------------------------------------------------------------------------------------


def run_signoff(signer: str, decision: str, comment: str = "", instance=None):
    """Materialize the sign-off asset in this process (the same asset the UI launches)."""
    from pipeline.cli import _instance
    from pipeline.definitions import build_defs

    job = build_defs().resolve_job_def("signoff_job")
    config = {
        "ops": {"signoff": {"config": {"signer": signer, "decision": decision, "comment": comment}}},
        "loggers": {"console": {"config": {"log_level": os.environ.get("HUITOUKAN_LOG_LEVEL", "CRITICAL")}}},
    }
    return job.execute_in_process(instance=instance or _instance(), raise_on_error=False, run_config=config)


def failure_description(result) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error is not None:
                return data.error.message.strip()
    return "the sign-off run failed"


def cmd_signoff(args: argparse.Namespace) -> int:
    from pipeline.cli import _apply_paths

    _apply_paths(args)
    result = run_signoff(args.signer, args.decision, args.comment or "")
    if not result.success:
        print(mask_text(failure_description(result)), file=sys.stderr)
        return 1
    meta = result.asset_materializations_for_node("signoff")[-1].metadata
    print(f"{meta['outcome'].value}（签字人 {mask_name(args.signer)}）")
    if "package" in meta:
        print(f"签字包：{meta['path'].value}")
    return 0


# --------------------------------------------------------------------------------------------
# huitoukan ui
# --------------------------------------------------------------------------------------------


def dagster_dev_command(port: int, workspace: Path) -> list[str]:
    dagster = Path(sys.executable).parent / "dagster"
    exe = [str(dagster)] if dagster.exists() else [sys.executable, "-m", "dagster"]
    return [*exe, "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]


def cmd_ui(args: argparse.Namespace) -> int:
    from pipeline.cli import _apply_paths
    from pipeline.fileserver import serve_in_background

    raw, warehouse, reports = (p.resolve() for p in _apply_paths(args))
    # the code server starts elsewhere: hand it absolute paths
    os.environ.update({ENV_RAW_DIR: str(raw), ENV_WAREHOUSE: str(warehouse), ENV_REPORTS_DIR: str(reports)})
    home = ensure_dagster_home()
    reports.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = serve_in_background(reports, port=args.files_port)
    files_url = f"http://127.0.0.1:{files.server_port}"
    os.environ[ENV_DOWNLOAD_URL] = files_url
    workspace = Path(args.workspace).resolve()
    print(f"回头看 UI:  http://127.0.0.1:{args.port}   (sensors and the nightly schedule are on)")
    print(f"downloads:  {files_url}/   (read-only: {reports})")
    print(f"DAGSTER_HOME={home}   data root {raw}")
    # Ctrl-C and `kill` both stop everything: started in the background, a process inherits an
    # ignored SIGINT (and dagster dev with it), and SIGTERM would leave dagster dev running.
    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    proc = subprocess.Popen(dagster_dev_command(args.port, workspace), cwd=workspace.parent)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return stop_dagster_dev(proc)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        files.shutdown()
        files.server_close()


def stop_dagster_dev(proc: subprocess.Popen, timeout: float = 60) -> int:
    """dagster dev shuts its webserver, daemon and code servers down on SIGINT; kill if it hangs."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout / 2)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    return 0 if proc.returncode in (0, -signal.SIGINT, 130) else 1
