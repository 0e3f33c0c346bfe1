"""Where the inputs are read from and the outputs written to: the one resource that owns every folder."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import dagster as dg

from pipeline.layout import (
    DEFAULT_DOWNLOAD_URL,
    DEFAULT_RAW_DIR,
    DEFAULT_REPORTS_DIR,
    DRAFT_DIR,
    PROBLEMS_DIR,
    PROGRESS_FILE,
    PUBLIC_DIR,
    QUALITY_DIR,
    SIGNED_DIR,
    TEMPLATE_DIR,
)


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


def download_url(path: Path | str, reports_root: Path | str, base: str = DEFAULT_DOWNLOAD_URL) -> str:
    """The file server's link to a file under the reports root (one click from the asset)."""
    relative = Path(path).resolve().relative_to(Path(reports_root).resolve()).as_posix()
    return f"{base.rstrip('/')}/{quote(relative) if relative != '.' else ''}"


class PathsResource(dg.ConfigurableResource):
    """数据与报表目录（data root and reports root）：输入从数据目录读取，输出写入报表目录。"""

    raw_dir: str = DEFAULT_RAW_DIR
    reports_dir: str = DEFAULT_REPORTS_DIR
    download_base_url: str = DEFAULT_DOWNLOAD_URL

    @property
    def raw(self) -> Path:
        return Path(self.raw_dir)

    @property
    def reports(self) -> Path:
        return Path(self.reports_dir)

    @property
    def draft(self) -> Path:
        return self.reports / DRAFT_DIR

    @property
    def public(self) -> Path:
        return self.reports / PUBLIC_DIR

    @property
    def problems(self) -> Path:
        return self.reports / PROBLEMS_DIR

    @property
    def quality(self) -> Path:
        return self.reports / QUALITY_DIR

    @property
    def signed(self) -> Path:
        return self.reports / SIGNED_DIR

    @property
    def template(self) -> Path:
        return self.reports / TEMPLATE_DIR

    @property
    def progress(self) -> Path:
        return self.reports / PROGRESS_FILE

    def download_url(self, path: Path | str) -> str:
        return download_url(path, self.reports, self.download_base_url)

    def report_path(self, path: Path) -> Path:
        """A file about to be written under the reports root (``paths.report_path(paths.draft /
        name)``), its folders created owner-only."""
        private_dirs(Path(path).parent)
        return Path(path)
