
import os
from pathlib import Path

import dagster as dg

DEFAULT_RAW_DIR = "data/raw"
DEFAULT_WAREHOUSE = "data/warehouse/huitoukan.duckdb"
DEFAULT_REPORTS_DIR = "reports"
ENV_RAW_DIR, ENV_WAREHOUSE, ENV_REPORTS_DIR = "HUITOUKAN_RAW_DIR", "HUITOUKAN_WAREHOUSE", "HUITOUKAN_REPORTS_DIR"


def env_path(name: str, default: str) -> str:
    return os.environ.get(name) or default


class PathsResource(dg.ConfigurableResource):
    """Where the inputs are read from and the outputs written to."""

    raw_dir: str = DEFAULT_RAW_DIR
    reports_dir: str = DEFAULT_REPORTS_DIR

    @property
    def raw(self) -> Path:
        return Path(self.raw_dir)

    @property
    def reports(self) -> Path:
        return Path(self.reports_dir)

    def report_path(self, *parts: str) -> Path:
        path = self.reports.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path
