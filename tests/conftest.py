import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))
# Test files are written a moment before they are read; the "still being copied" guard would hold them.
os.environ["HUITOUKAN_SETTLE_SECONDS"] = "0"
os.environ.pop("DAGSTER_HOME", None)
os.environ.pop("HUITOUKAN_SETTINGS", None)

# Hypothesis profiles. The expensive properties take their number of examples from examples():
# few enough in `make test` to keep the suite quick, the numbers they were written with under
# HYPOTHESIS_PROFILE=thorough (or pytest --hypothesis-profile=thorough). The thorough profile
# is the active one (the default, or Hypothesis's "ci" profile on CI) under another name.
settings.register_profile("thorough", settings.get_profile(settings.get_current_profile_name()))
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


def examples(quick: int, thorough: int) -> int:
    """A property's max_examples: ``quick`` by default, ``thorough`` under the thorough profile
    (read when the test module is imported, after pytest's --hypothesis-profile is applied)."""
    # startswith: --hypothesis-verbosity loads a derived profile, "thorough-with-verbose-verbosity"
    return thorough if settings.get_current_profile_name().startswith("thorough") else quick


def run_district(raw: Path, out: Path, *, real_ge: bool = False, inst=None, ge=None):
    """Run the whole pipeline on a data root, in this process, with its own warehouse and reports
    under ``out``; returns (warehouse, reports, result). Great Expectations is faked, its check
    left out, unless the test is about it (tests/fakes.py), or is the resource ``ge`` the test gives."""
    from fakes import WITHOUT_GE_CHECK, FakeGreatExpectations

    from pipeline import runner
    from pipeline.resources import build_resources

    warehouse, reports = out / "warehouse.duckdb", out / "reports"
    if ge is None and not real_ge:
        ge = FakeGreatExpectations()
    resources = build_resources(raw_dir=raw, warehouse=warehouse, reports_dir=reports, ge=ge)
    checks = WITHOUT_GE_CHECK if isinstance(ge, FakeGreatExpectations) else None
    result = runner.run_pipeline(resources, inst=inst, checks=checks)
    failures = [(e.step_key, e.step_failure_data.error.message) for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    return warehouse, reports, result


# Scratch space on tmpfs, for the tests whose runs are subprocesses with a persistent SQLite
# instance (the killed runs, the UI): every one of a run's ~530 Dagster events is a SQLite commit
# and every commit an fsync, which on a busy disk is a good part of a run; on tmpfs it is nothing.
# Those tests are about what a process does (SIGKILL, the UI's clicks), which is the same on
# either. Only when /dev/shm is there with room to spare (a container's default is 64 MB).
FAST_TMP = Path("/dev/shm")
FAST_TMP_FREE_BYTES = 2 << 30


@contextlib.contextmanager
def fast_scratch(tmp_path_factory, name: str) -> Iterator[Path]:
    """A fresh folder on tmpfs when there is room, removed afterwards; else one under pytest's
    tmp folder."""
    roomy = (FAST_TMP.is_dir() and os.access(FAST_TMP, os.W_OK | os.X_OK)
             and shutil.disk_usage(FAST_TMP).free >= FAST_TMP_FREE_BYTES)
    if not roomy:
        yield tmp_path_factory.mktemp(name)
        return
    root = Path(tempfile.mkdtemp(prefix=f"huitoukan_{name}_", dir=FAST_TMP))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_cli_pipeline(raw: Path, out: Path) -> tuple[Path, Path]:
    """The pipeline on a data root (for module-scoped fixtures): (warehouse, reports)."""
    warehouse, reports, _ = run_district(raw, out)
    return warehouse, reports


def read_detail(path: Path) -> list[dict]:
    """The data rows of a 附件's 明细 sheet as dicts keyed by the header (row 3)."""
    import openpyxl

    return read_detail_sheet(openpyxl.load_workbook(path, read_only=True)["明细"])


def read_detail_sheet(ws) -> list[dict]:
    """The data rows of a loaded 明细 sheet, up to its 合计 row, as dicts keyed by the header (row 3)."""
    rows = list(ws.iter_rows(values_only=True))
    header = rows[2]
    out = []
    for row in rows[3:]:
        if row[0] == "合计" or not isinstance(row[0], int):
            break
        out.append(dict(zip(header, row)))
    return out


# The suite runs on two workers, a whole file per worker at a time (module fixtures run the
# pipeline once per file). Files are handed out in collection order — `make test` passes
# --no-loadscope-reorder, without which xdist hands out the files with the most tests first and the
# few long ones (the UI, the benchmark) last — so the longest go first and the short ones fill the
# gaps at the end instead of one worker finishing minutes after the other.
LONGEST_FIRST = ("test_reliability.py", "test_ui_integration.py", "test_quality.py", "test_end_to_end.py",
                 "test_privacy.py", "test_signoff.py", "test_bench.py", "test_postgres_instance.py",
                 "test_service.py", "test_village_files.py", "test_ge_worker.py", "test_sample_generator.py",
                 "test_fileserver.py", "test_fuzz.py", "test_package_signing.py", "test_crosscheck.py",
                 "test_sensors.py", "test_income.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file kept


def pytest_sessionfinish(session, exitstatus):
    """Drop the PostgreSQL databases this process made for its instances (HUITOUKAN_TEST_PG_URL;
    an xdist worker ends without running atexit handlers)."""
    import pg_support

    pg_support._drop_created()
