
import os
from pathlib import Path
from urllib.parse import quote

import dagster as dg

DEFAULT_RAW_DIR = "data/raw"
DEFAULT_WAREHOUSE = "data/warehouse/huitoukan.duckdb"
DEFAULT_REPORTS_DIR = "reports"
ENV_RAW_DIR, ENV_WAREHOUSE, ENV_REPORTS_DIR = "HUITOUKAN_RAW_DIR", "HUITOUKAN_WAREHOUSE", "HUITOUKAN_REPORTS_DIR"


# The read-only file server `huitoukan ui` starts next to the Dagster UI serves the reports root here.
ENV_DOWNLOAD_URL = "HUITOUKAN_DOWNLOAD_URL"
DEFAULT_DOWNLOAD_URL = "http://127.0.0.1:3001"


def env_path(name: str, default: str) -> str:
    return os.environ.get(name) or default


def private_dirs(folder: Path) -> Path:
    """``mkdir -p`` where every folder it creates is its owner's only (0o700): ``Path.mkdir``
    gives its mode to the last folder only, and the outputs hold names and ID numbers."""
    folder = Path(folder)
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for item in reversed(missing):
        item.mkdir(mode=0o700, exist_ok=True)
    return folder


def download_url(path: Path | str, reports_root: Path | str) -> str:
    """The file server's link to a file under the reports root (one click from the asset)."""
    relative = Path(path).resolve().relative_to(Path(reports_root).resolve()).as_posix()
    base = env_path(ENV_DOWNLOAD_URL, DEFAULT_DOWNLOAD_URL).rstrip("/")
    return f"{base}/{quote(relative) if relative != '.' else ''}"


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

    def download_url(self, path: Path | str) -> str:
        return download_url(path, self.reports)

    def report_path(self, *parts: str) -> Path:
        path = self.reports.joinpath(*parts)
        private_dirs(path.parent)
        return path
