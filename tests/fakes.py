"""Stand-ins for what a test is not about.

``FakeGreatExpectations`` replaces the Great Expectations worker in the pipeline runs of tests
whose subject is not data quality (附件 contents, sign-off, income, cross-checks): no GE import
(7–14 s of CPU), no worker process, no Data Docs. The run's GE checks then report, as WARN, that
nothing was validated — the same path a failed worker takes in production. Tests of the
expectations themselves (test_quality, test_ge_worker, test_privacy) use the real resource.
"""

from __future__ import annotations

from pipeline.resources import GreatExpectationsResource

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
