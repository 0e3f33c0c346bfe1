"""Great Expectations in a process of its own, working beside the run.

Importing Great Expectations costs 8–14 s on the office's 2-core machines and validating the
district another ~6 s, all on one core: run in the pipeline's own process it was the largest step
of a district run (17 s of 40 s). None of it needs the pipeline's process, so a run starts this
worker when it begins (``GreatExpectationsResource.setup_for_execution``): the worker imports GE on
the second core while the first reads the villages' workbooks; the ``validation_batches`` asset
hands it the de-identified frames as soon as the cleaned tables exist; it validates and builds the
Data Docs while the pipeline computes and writes the 附件; the ``great_expectations`` asset check,
which runs last, collects the outcomes and reports them as asset checks.

Protocol (one line of JSON per job on the worker's stdin, one line back on its stdout): the job
names a private folder (0700) holding one pickled frame per suite; the worker writes
``outcomes.pickle`` there and answers ``{"ok": true}``, or ``{"ok": false, "error": "…"}``. Frames
carry surrogate keys, shapes, flags and per-run tokens only — never a name or an ID — so nothing
personal crosses the pipe or lands in the folder. The worker ends when its stdin closes, which is
also what happens when the run's process dies (``kill -9`` included).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.privacy import mask_text

FOLDER_PREFIX = "huitoukan-ge-"
OUTCOMES = "outcomes.pickle"
PARENT_ENV = "HUITOUKAN_GE_PARENT"
LOG = "worker.log"


def _remove_orphaned_folders() -> None:
    """The folders of runs that were killed (``huitoukan-ge-<pid>-…`` of a process that is gone)."""
    import psutil

    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name[len(FOLDER_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _exit_with_parent() -> None:
    """End this worker at once when the run that started it is gone (``kill -9`` included), so
    that it never writes Data Docs beside the next run's worker."""
    import threading

    # the run's pid as the run saw it: the worker may start after the run already died
    parent = int(os.environ.get(PARENT_ENV) or os.getppid())

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class GEWorker:
    """The pipeline's handle on one worker process."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        _remove_orphaned_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))  # 0700
        self.job: Path | None = None  # the folder of the job under way

    def start(self) -> GEWorker:
        if self.proc is None:
            # fork+exec (not a bare fork): safe beside DuckDB's and Dagster's threads.
            with open(self.folder / LOG, "wb") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "pipeline.checks.ge_worker"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=log, text=True, encoding="utf-8", bufsize=1,
                    env={**os.environ, "GX_ANALYTICS_ENABLED": "False", PARENT_ENV: str(os.getpid())})
        return self

    def submit(self, frames: dict, docs_dir: Path | None, run_name: str,
               generated: str = "") -> Path:
        """Hand the frames over; returns at once (the worker validates while the run goes on)."""
        if self.job is not None:
            raise RuntimeError("a validation is already under way in this worker")
        self.start()
        folder = self.folder / f"job_{int(time.time() * 1000)}"
        folder.mkdir(mode=0o700)
        for name, frame in frames.items():
            frame.to_pickle(folder / f"{name}.pickle")
        request = {"folder": str(folder), "suites": list(frames), "docs_dir": str(docs_dir) if docs_dir else None,
                   "run_name": run_name, "generated": generated}
        try:
            self.proc.stdin.write(json.dumps(request, ensure_ascii=False) + "\n")
            self.proc.stdin.flush()
        except OSError:  # the worker is gone: collect() says so, with its last words
            pass
        self.job = folder
        return folder

    @property
    def pending(self) -> bool:
        return self.job is not None

    def collect(self) -> dict:
        """Wait for the submitted job; returns {(suite, check): Outcome}. Raises RuntimeError with
        the worker's (masked) last words when it failed or died."""
        if self.job is None:
            raise RuntimeError("nothing was submitted")
        folder, self.job = self.job, None
        line = self.proc.stdout.readline()
        try:
            answer = json.loads(line) if line else {"ok": False, "error": "the worker process ended"}
            if not answer.get("ok"):
                raise RuntimeError(mask_text(f"{answer.get('error')}; {self._last_words()}"))
            with open(folder / OUTCOMES, "rb") as f:
                return pickle.load(f)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _last_words(self) -> str:
        try:
            return (self.folder / LOG).read_text(encoding="utf-8", errors="replace").strip()[-800:]
        except OSError:
            return ""

    def stop(self) -> None:
        """End the worker; a validation still under way is let finish (its Data Docs complete).
        With nothing pending the process is killed rather than asked: unloading GE takes seconds
        that the run would otherwise wait for at its end."""
        if self.job is not None:
            with contextlib.suppress(Exception):
                self.collect()
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError):
                    stream.close()
            self.proc = None
        shutil.rmtree(self.folder, ignore_errors=True)


def run_job(request: dict) -> None:
    """In the worker: validate the frames of one job, write the Data Docs, store the outcomes."""
    import pandas as pd

    from pipeline.checks import datadocs
    from pipeline.checks.expectations import as_nullable_flags, validate
    from pipeline.readiness import office_stamp  # pandas: not imported before the watch on the run starts

    folder = Path(request["folder"])
    frames = {name: as_nullable_flags(pd.read_pickle(folder / f"{name}.pickle")) for name in request["suites"]}
    docs_dir = Path(request["docs_dir"]) if request.get("docs_dir") else None
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        datadocs.clear_site(docs_dir)
    outcomes = validate(frames, docs_dir=docs_dir, run_name=request["run_name"])
    if docs_dir is not None:
        datadocs.make_offline(docs_dir, generated=request.get("generated")
                              or f"{office_stamp():%Y-%m-%d %H:%M}，运行 {request['run_name']}")
    with open(folder / OUTCOMES, "wb") as f:
        pickle.dump(outcomes, f)


def main() -> int:
    os.umask(0o077)
    _exit_with_parent()
    # A background report: the scheduler serves the run's own work first (the survey readers use
    # both cores while this imports GE), and gives this process what is left over.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
    # The answers go on a private copy of stdout; whatever GE or a library prints goes to the log.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from pipeline.checks.expectations import _ge

    _ge()  # the expensive import, done while the pipeline reads the workbooks
    for line in sys.stdin:
        try:
            run_job(json.loads(line))
            answer = {"ok": True}
        except Exception as exc:  # reported to the check, which reports it in the UI
            import traceback

            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            answer = {"ok": False, "error": mask_text(f"{type(exc).__name__}: {exc}")[:500]}
        answers.write(json.dumps(answer, ensure_ascii=False) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
