"""The whole test suite beside one `huitoukan run` of the sample district, timed in one sitting on
this machine (issue #14: the suite takes at most 6× one run).

    .venv/bin/python bench/suite_ratio.py [--runs 3] [--suite-runs 1] [--no-suite]

The run is what `make run` does after its first time: `huitoukan run` on the built-in sample
district (8,000 households, generated once into a scratch folder) with a fresh warehouse and
reports and a persistent SQLite Dagster instance made from config/dagster.yaml. The suite is what
`make test` runs once set up: `ruff check .`, then `pytest -q -n 2 --dist loadfile --no-loadscope-reorder`. Runs and suites alternate
(run, suite, run, …), so a machine that gets busier or quieter part-way hits both; the medians
and their ratio are printed. Measure on a quiet machine: the ratio is the number that travels.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET = 6.0


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} … failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="sample-district runs (median)")
    parser.add_argument("--suite-runs", type=int, default=1, help="whole-suite runs (median)")
    parser.add_argument("--no-suite", action="store_true", help="time the run only")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="suite_ratio_"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUITOUKAN_", "DAGSTER_"))}
    raw = work / "raw"
    subprocess.run([str(BIN / "huitoukan"), "sample", "--out", str(raw)], check=True, env=env,
                   stdout=subprocess.DEVNULL)

    def one_run(i: int) -> float:
        home = work / f"home_{i}"
        home.mkdir(mode=0o700)
        shutil.copyfile(ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
        return timed([str(BIN / "huitoukan"), "run", "--raw-dir", str(raw), "--warehouse", str(work / f"w_{i}.duckdb"),
                      "--reports-dir", str(work / f"reports_{i}")], {**env, "DAGSTER_HOME": str(home)}, work)

    def one_suite() -> float:
        # `make test`'s prerequisites (setup, the project's bytecode) are not timed, as for the run
        subprocess.run([sys.executable, "-m", "compileall", "-q", "pipeline", "tests"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        return timed([str(BIN / "ruff"), "check", "."], env, ROOT) + timed(
            [str(BIN / "pytest"), "-q", "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"], env, ROOT)

    runs, suites = [], []
    for i in range(max(args.runs, args.suite_runs if not args.no_suite else 0)):
        if i < args.runs:
            runs.append(one_run(i))
            print(f"run {i + 1}: {runs[-1]:.1f} s", flush=True)
        if not args.no_suite and i < args.suite_runs:
            suites.append(one_suite())
            print(f"suite {i + 1}: {suites[-1]:.1f} s", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    run = statistics.median(runs)
    print(f"one huitoukan run of the sample district: {run:.1f} s (median of {len(runs)}: "
          f"{', '.join(f'{r:.1f}' for r in runs)})")
    if suites:
        suite = statistics.median(suites)
        ratio = suite / run
        print(f"the whole suite (ruff + pytest -n 2): {suite:.1f} s (median of {len(suites)})")
        print(f"suite / run = {ratio:.1f}× (target ≤ {TARGET:.0f}×: {'met' if ratio <= TARGET else 'missed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
