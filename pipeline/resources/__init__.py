"""Resources: the DuckDB warehouse, the data and reports roots, the settings, and the Great
Expectations worker — the one seam through which configuration reaches the assets.

``build_resources`` makes them from explicit values (the CLI's flags, a test's temp folders);
a value not given comes from the deployment's environment as a Dagster ``EnvVar``
(HUITOUKAN_RAW_DIR, HUITOUKAN_WAREHOUSE, HUITOUKAN_REPORTS_DIR, HUITOUKAN_DOWNLOAD_URL, read when
the run starts) or, where that is not set, the default of ``pipeline.layout``.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipeline.layout import (
    DEFAULT_DOWNLOAD_URL,
    DEFAULT_RAW_DIR,
    DEFAULT_REPORTS_DIR,
    DEFAULT_WAREHOUSE,
    ENV_DOWNLOAD_URL,
    ENV_RAW_DIR,
    ENV_REPORTS_DIR,
    ENV_WAREHOUSE,
)
from pipeline.resources.paths import PathsResource
from pipeline.resources.quality import GreatExpectationsResource
from pipeline.resources.settings import SettingsResource
from pipeline.resources.warehouse import AFTER_DRAFTS, WAREHOUSE_POOL, WarehouseResource, replace_table

__all__ = ["AFTER_DRAFTS", "ENV_DOWNLOAD_URL", "ENV_RAW_DIR", "ENV_REPORTS_DIR", "ENV_WAREHOUSE", "WAREHOUSE_POOL",
           "GreatExpectationsResource", "PathsResource", "SettingsResource", "WarehouseResource", "build_resources",
           "replace_table"]


def _value(given: str | Path | None, env: str, default: str):
    if given is not None:
        return str(given)
    return dg.EnvVar(env) if os.environ.get(env) else default


def build_resources(raw_dir: str | Path | None = None, warehouse: str | Path | None = None,
                    reports_dir: str | Path | None = None, download_url: str | None = None,
                    settings: SettingsResource | None = None,
                    ge: dg.ConfigurableResource | None = None) -> dict[str, dg.ConfigurableResource]:
    """The resources of every asset, sensor and check, keyed as the definitions expect them."""
    return {
        "paths": PathsResource(raw_dir=_value(raw_dir, ENV_RAW_DIR, DEFAULT_RAW_DIR),
                               reports_dir=_value(reports_dir, ENV_REPORTS_DIR, DEFAULT_REPORTS_DIR),
                               download_base_url=_value(download_url, ENV_DOWNLOAD_URL, DEFAULT_DOWNLOAD_URL)),
        "warehouse": WarehouseResource(database=_value(warehouse, ENV_WAREHOUSE, DEFAULT_WAREHOUSE)),
        "settings": settings or SettingsResource(),
        "ge": ge or GreatExpectationsResource(),
    }
