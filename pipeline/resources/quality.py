"""The Great Expectations worker as a run-scoped resource (``pipeline/checks/ge_worker.py``).

Dagster sets a run's resources up when the run begins and tears them down when it ends; this
one starts the (niced) worker process at setup, so GE is imported with the CPU the run leaves
over while it ingests, and stops it at teardown. Runs whose steps do not use it (a village's
intake, the sign-off) never start it."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from pipeline.checks.ge_worker import GEWorker


class GreatExpectationsResource(dg.ConfigurableResource):
    _worker: GEWorker | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._worker = GEWorker().start()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    @property
    def worker(self) -> GEWorker:
        if self._worker is None:  # used outside a run (a test calling the function directly)
            self._worker = GEWorker()
        return self._worker
