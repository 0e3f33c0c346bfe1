"""The Dagster definitions: every asset, check, resource, job, sensor and schedule of 回头看.

``build_defs(resources)`` assembles them around the resources it is given (the CLI's, a test's);
``defs`` is what the UI and the daemon load, with the deployment's resources, built only when
Dagster asks for them. Nothing here is imported by the assets it contains.

The executor runs every step in one process: on the office's 2-core machines the multiprocess
executor spends seconds starting a process per step (25 trivial assets: ~2 min vs ~2 s), while
the heavy work here is inside DuckDB, which uses the cores itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from pipeline.assets import (
    annex1,
    classify,
    clean,
    crosscheck,
    income,
    ingest,
    intake,
    problem_lists,
    progress,
    quality,
    reports,
    signoff,
    signoff_readiness,
)
from pipeline.checks.asset_checks import asset_checks
from pipeline.jobs import ALL_JOBS
from pipeline.resources import build_resources
from pipeline.schedules import ALL_SCHEDULES
from pipeline.sensors import ALL_SENSORS

ASSET_MODULES = (ingest, clean, income, crosscheck, quality, problem_lists, classify, annex1, progress, intake,
                 signoff_readiness, signoff)

all_assets = [*dg.load_assets_from_modules(list(ASSET_MODULES)), *reports.annex_assets,
              *reports.crosscheck_report_assets]


def build_defs(resources: dict | None = None, checks: Sequence[dg.AssetChecksDefinition] | None = None
               ) -> dg.Definitions:
    """The definitions around the given resources (default: the deployment's, see build_resources)
    with the standalone asset ``checks`` (default: all of them, i.e. the Great Expectations
    suites; the structural checks are part of their assets)."""
    return dg.Definitions(
        assets=all_assets,
        asset_checks=list(asset_checks if checks is None else checks),
        jobs=ALL_JOBS,
        sensors=ALL_SENSORS,
        schedules=ALL_SCHEDULES,
        resources=resources if resources is not None else build_resources(),
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs()
