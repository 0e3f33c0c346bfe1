"""What one test-district run costs with each of the test suite's choices (issue #14).

Runs the pipeline in process on the tiny clean district of the sign-off tests, round-robin over
the variants so machine noise hits all of them alike, and prints the median wall time of each:

- real Great Expectations worker and a SQLite Dagster instance capturing every step's stdout and
  stderr (Dagster's default, how the suite and ``huitoukan run`` ran before);
- the same without that capture (config/dagster.yaml now);
- the fake GE resource (tests/fakes.py), SQLite instance;
- the fake GE resource and an in-memory (ephemeral) instance (the sign-off tests now).

    .venv/bin/python bench/suite_costs.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import dagster as dg
    from clean_district import build_clean_district
    from fakes import FakeGreatExpectations

    from pipeline import runner
    from pipeline.instances import ensure_dagster_home
    from pipeline.io import inputs
    from pipeline.resources import build_resources

    inputs.SETTLE_SECONDS = 0.0
    base = Path(tempfile.mkdtemp(prefix="suite_costs_"))
    raw = base / "raw"
    build_clean_district(raw)

    def sqlite_instance(name: str) -> dg.DagsterInstance:
        return runner.instance(base / f"home_{name}")  # the project's config/dagster.yaml

    def sqlite_capturing(name: str) -> dg.DagsterInstance:
        """The same, but capturing each step's stdout/stderr (Dagster's default compute logs)."""
        home = ensure_dagster_home(base / f"home_{name}")
        text = (home / "dagster.yaml").read_text(encoding="utf-8")
        (home / "dagster.yaml").write_text(text.split("compute_logs:")[0], encoding="utf-8")
        return runner.instance(home)

    variants = {
        "real GE, SQLite, step logs captured": (lambda: None, sqlite_capturing),
        "real GE, SQLite instance": (lambda: None, sqlite_instance),
        "fake GE, SQLite instance": (FakeGreatExpectations, sqlite_instance),
        "fake GE, in-memory instance": (FakeGreatExpectations, lambda name: dg.DagsterInstance.ephemeral()),
    }
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for i, (name, (ge, make_instance)) in enumerate(variants.items()):
            out = base / f"out_{r}_{i}"
            resources = build_resources(raw_dir=raw, warehouse=out / "w.duckdb", reports_dir=out / "reports",
                                        ge=ge())
            inst = make_instance(f"{r}_{i}")
            started = time.perf_counter()
            result = runner.run_pipeline(resources, inst=inst)
            times[name].append(time.perf_counter() - started)
            assert result.success
    print(f"one run of the clean test district, median of {args.rounds} (round-robin):")
    first = statistics.median(times[next(iter(times))])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:<30} {med:6.1f} s   ({med / first:.2f}× the first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
