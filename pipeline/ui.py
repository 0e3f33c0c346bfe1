"""``huitoukan ui``: the Dagster UI (``dagster dev``: webserver + daemon, so the sensors and the
nightly schedule run) on http://127.0.0.1:3000 and the read-only file server of the reports root
on http://127.0.0.1:3001, which the assets' download links point at.

The UI's code server is another process: it gets the data paths and the download address as
its environment (the ``EnvVar`` of ``build_resources``), never through this process's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pipeline.instances import ensure_dagster_home
from pipeline.layout import ENV_DOWNLOAD_URL, ENV_RAW_DIR, ENV_REPORTS_DIR, ENV_WAREHOUSE


def dagster_dev_command(port: int, workspace: Path) -> list[str]:
    dagster = Path(sys.executable).parent / "dagster"
    exe = [str(dagster)] if dagster.exists() else [sys.executable, "-m", "dagster"]
    return [*exe, "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]


def child_environment(*, raw: Path, warehouse: Path, reports: Path, home: Path, download_url: str) -> dict[str, str]:
    """The environment of the UI's processes: absolute paths (the code server starts elsewhere)."""
    return {**os.environ, ENV_RAW_DIR: str(raw), ENV_WAREHOUSE: str(warehouse), ENV_REPORTS_DIR: str(reports),
            ENV_DOWNLOAD_URL: download_url, "DAGSTER_HOME": str(home)}


def serve_ui(*, raw: Path, warehouse: Path, reports: Path, home: Path, port: int, files_port: int,
             workspace: Path) -> int:
    from pipeline.fileserver import serve_in_background

    raw, warehouse, reports = (Path(p).resolve() for p in (raw, warehouse, reports))
    home = ensure_dagster_home(home)
    reports.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = serve_in_background(reports, port=files_port)
    files_url = f"http://127.0.0.1:{files.server_port}"
    workspace = Path(workspace).resolve()
    print(f"回头看 界面（UI）：http://127.0.0.1:{port}   （传感器与每晚重建已开启）")
    print(f"下载（downloads）：{files_url}/   （只读：{reports}）")
    print(f"DAGSTER_HOME={home}   数据目录 {raw}")

    # Ctrl-C and `kill` both stop everything: started in the background, a process inherits an
    # ignored SIGINT (and dagster dev with it), and SIGTERM would leave dagster dev running.
    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    env = child_environment(raw=raw, warehouse=warehouse, reports=reports, home=home, download_url=files_url)
    proc = subprocess.Popen(dagster_dev_command(port, workspace), cwd=workspace.parent, env=env)
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
