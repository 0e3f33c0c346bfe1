"""Stand-ins for what a test is not about.

``FakeGreatExpectations`` replaces the Great Expectations worker in the pipeline runs of tests
whose subject is not data quality (附件 contents, sign-off, income, cross-checks): no GE import
(7–14 s of CPU), no worker process, no Data Docs. Tests of the expectations themselves
(test_quality, test_ge_worker, test_privacy) use the real resource.

``WITHOUT_GE_CHECK`` are the standalone asset checks of a run whose GE is the stand-in: all but
the ``great_expectations`` check (the structural checks are part of their assets and always run).
With the stand-in that check could only report, 96 times as WARN, that nothing was validated:
~190 of a run's ~350 Dagster events, ~1.7 s of CPU a run (a 300-household district in process:
8.7 -> 7.0 s). Where a run is handed the stand-in and defines the check anyway (the UI test's code
location, tests/ui_defs.py: what the analyst sees), its results take the path a failed worker
takes in production, as test_ge_worker's
test_a_dead_worker_makes_every_expectation_a_warning_with_the_reason checks on its own.
"""

from __future__ import annotations

from pipeline.checks.asset_checks import asset_checks, great_expectations
from pipeline.resources import GreatExpectationsResource

WITHOUT_GE_CHECK = tuple(check for check in asset_checks if check is not great_expectations)

NOT_VALIDATED = "测试替身：本次运行未启动 Great Expectations（test stand-in）"


class FakeGEWorker:
    def __init__(self) -> None:
        self.submitted: dict | None = None

    @property
    def pending(self) -> bool:
        return self.submitted is not None

    def submit(self, frames: dict, docs_dir=None, run_name: str = "", generated: str | None = None) -> None:
        self.submitted = {name: len(frame) for name, frame in frames.items()}

    def collect(self) -> dict:
        raise RuntimeError(NOT_VALIDATED)

    def stop(self) -> None:
        self.submitted = None


class FakeGreatExpectations(GreatExpectationsResource):
    def setup_for_execution(self, context) -> None:
        self._worker = FakeGEWorker()

    def teardown_after_execution(self, context) -> None:
        self._worker = None

    @property
    def worker(self) -> FakeGEWorker:
        if self._worker is None:
            self._worker = FakeGEWorker()
        return self._worker
