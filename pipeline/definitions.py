"""The Dagster definitions: every asset, check, resource, job, sensor and schedule of 回头看.

The executor runs every step in one process: on the office's 2-core machines the multiprocess
executor spends seconds starting a process per step (25 trivial assets: ~2 min vs ~2 s), while
the heavy work here is inside DuckDB, which uses the cores itself.
"""

from __future__ import annotations

import dagster as dg

from pipeline.assets import annex1, classify, clean, crosscheck, income, ingest, intake, progress, quality, reports, signoff
from pipeline.jobs import ALL_JOBS, full_rebuild  # noqa: F401  (full_rebuild: `huitoukan run`)
from pipeline.assets import problem_lists
from pipeline.checks.asset_checks import asset_checks
from pipeline.resources import GreatExpectationsResource, PathsResource, SettingsResource, WarehouseResource
from pipeline.schedules import ALL_SCHEDULES
from pipeline.sensors import ALL_SENSORS
from pipeline.resources.paths import (
    DEFAULT_RAW_DIR,
    DEFAULT_REPORTS_DIR,
    DEFAULT_WAREHOUSE,
    ENV_RAW_DIR,
    ENV_REPORTS_DIR,
    ENV_WAREHOUSE,
    env_path,
)

ASSET_MODULES = (ingest, clean, income, crosscheck, quality, problem_lists, classify, annex1, progress, intake,
                 signoff)

all_assets = [*dg.load_assets_from_modules(list(ASSET_MODULES)), *reports.annex_assets,
              *reports.crosscheck_report_assets]

def build_resources() -> dict:
    return {
        "paths": PathsResource(raw_dir=env_path(ENV_RAW_DIR, DEFAULT_RAW_DIR),
                               reports_dir=env_path(ENV_REPORTS_DIR, DEFAULT_REPORTS_DIR)),
        "warehouse": WarehouseResource(database=env_path(ENV_WAREHOUSE, DEFAULT_WAREHOUSE)),
        "settings": SettingsResource(),
        "ge": GreatExpectationsResource(),
    }


def build_defs() -> dg.Definitions:
    """The definitions, with resources read from the environment now (the CLI sets it first)."""
    return dg.Definitions(
        assets=all_assets,
        asset_checks=asset_checks,
        jobs=ALL_JOBS,
        sensors=ALL_SENSORS,
        schedules=ALL_SCHEDULES,
        resources=build_resources(),
        executor=dg.in_process_executor,
    )


defs = build_defs()
