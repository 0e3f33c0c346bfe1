"""The Dagster definitions: every asset, check, resource, job, sensor and schedule of 回头看.

The executor runs every step in one process: on the office's 2-core machines the multiprocess
executor spends seconds starting a process per step (25 trivial assets: ~2 min vs ~2 s), while
the heavy work here is inside DuckDB, which uses the cores itself.
"""

from __future__ import annotations

import dagster as dg

from pipeline.assets import classify, clean, crosscheck, income, ingest, quality, reports
from pipeline.resources import PathsResource, SettingsResource, WarehouseResource
from pipeline.resources.paths import (
    DEFAULT_RAW_DIR,
    DEFAULT_REPORTS_DIR,
    DEFAULT_WAREHOUSE,
    ENV_RAW_DIR,
    ENV_REPORTS_DIR,
    ENV_WAREHOUSE,
    env_path,
)

ASSET_MODULES = (ingest, clean, income, crosscheck, quality, classify)

all_assets = [*dg.load_assets_from_modules(list(ASSET_MODULES)), *reports.annex_assets,
              *reports.crosscheck_report_assets]

full_rebuild = dg.define_asset_job(
    "full_rebuild",
    selection=dg.AssetSelection.all(),
    description="Rebuild everything from the files under the data root: ingest, clean, income, "
                "cross-checks, quality, classification and every report.",
)


def build_resources() -> dict:
    return {
        "paths": PathsResource(raw_dir=env_path(ENV_RAW_DIR, DEFAULT_RAW_DIR),
                               reports_dir=env_path(ENV_REPORTS_DIR, DEFAULT_REPORTS_DIR)),
        "warehouse": WarehouseResource(database=env_path(ENV_WAREHOUSE, DEFAULT_WAREHOUSE)),
        "settings": SettingsResource(),
    }


def build_defs() -> dg.Definitions:
    """The definitions, with resources read from the environment now (the CLI sets it first)."""
    return dg.Definitions(
        assets=all_assets,
        jobs=[full_rebuild],
        resources=build_resources(),
        executor=dg.in_process_executor,
    )


defs = build_defs()
