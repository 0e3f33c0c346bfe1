import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# Test files are written a moment before they are read; the "still being copied" guard would hold them.
os.environ["HUITOUKAN_SETTLE_SECONDS"] = "0"
os.environ.pop("DAGSTER_HOME", None)
os.environ.pop("HUITOUKAN_SETTINGS", None)


@pytest.fixture
def run_pipeline(tmp_path, monkeypatch):
    """Run the whole pipeline on a data root; returns (warehouse path, reports dir)."""
    from pipeline import cli

    def _run(raw: Path, *extra: str) -> tuple[Path, Path]:
        warehouse, reports = tmp_path / "warehouse.duckdb", tmp_path / "reports"
        for env in ("HUITOUKAN_RAW_DIR", "HUITOUKAN_WAREHOUSE", "HUITOUKAN_REPORTS_DIR"):
            monkeypatch.delenv(env, raising=False)
        code = cli.main(["run", "--raw-dir", str(raw), "--warehouse", str(warehouse),
                         "--reports-dir", str(reports), *extra])
        assert code == 0
        return warehouse, reports

    return _run


def run_cli_pipeline(raw: Path, out: Path) -> tuple[Path, Path]:
    """Run the whole pipeline through the CLI (for module-scoped fixtures)."""
    from pipeline import cli

    warehouse, reports = out / "warehouse.duckdb", out / "reports"
    assert cli.main(["run", "--raw-dir", str(raw), "--warehouse", str(warehouse), "--reports-dir", str(reports)]) == 0
    return warehouse, reports


def read_detail(path: Path) -> list[dict]:
    """The data rows of a 附件's 明细 sheet as dicts keyed by the header (row 3)."""
    import openpyxl

    ws = openpyxl.load_workbook(path, read_only=True)["明细"]
    rows = list(ws.iter_rows(values_only=True))
    header = rows[2]
    out = []
    for row in rows[3:]:
        if row[0] == "合计" or not isinstance(row[0], int):
            break
        out.append(dict(zip(header, row)))
    return out
