"""The benchmark runs at a small size so it cannot rot; the real sizes run by hand (docs/scaling.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fast_scratch

from pipeline.bench import main, render, verdicts

pytestmark = pytest.mark.integration
CHILD = Path(__file__).resolve().parent / "bench_child.py"


@pytest.fixture
def children_without_ge(monkeypatch) -> list[list[str]]:
    """The benchmark's child runs, ``python -m pipeline.bench --child …``, go through
    tests/bench_child.py: the same module run as ``-m`` runs it, with Great Expectations faked
    (not this test's subject; `huitoukan bench` runs the real pipeline). Returns the child
    commands as the benchmark gave them."""
    real = subprocess.Popen
    children = []

    def popen(argv, *args, **kwargs):
        if list(argv[1:4]) == ["-m", "pipeline.bench", "--child"]:
            assert argv[0] == sys.executable, argv
            children.append(list(argv))
            argv = [argv[0], str(CHILD), *argv[1:]]
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return children


def test_bench_measures_every_number_at_a_small_size(tmp_path, tmp_path_factory, capsys, children_without_ge):
    # the smallest district the generator makes (200 households asked for at least, and 40 in each
    # surveyed village: ~280 households, ~680 persons); a smaller --persons makes the same one
    # the generated district, the warehouses and the reports on tmpfs where there is one
    with fast_scratch(tmp_path_factory, "bench") as work:
        assert main(["--persons", "500", "--runs", "1", "--work", str(work / "w"), "--out", str(tmp_path / "o")]) == 0
    assert len(children_without_ge) == 2  # the full rebuild, then the incremental one
    [result_file] = (tmp_path / "o").glob("bench_*.json")
    [row] = json.loads(result_file.read_text(encoding="utf-8"))
    assert row["persons_requested"] == 500 and row["persons"] > 500 and row["survey_files"] >= 1  # persons, not households
    for key in ("full_wall_seconds", "incremental_wall_seconds", "floor_read_seconds", "floor_write_seconds",
                "peak_rss_mb", "largest_process_rss_mb", "overhead_per_step", "ratio_to_floor"):
        assert row[key] > 0, key
    # every stage of the pipeline was timed
    assert {"ingest", "clean", "income", "crosscheck", "classify", "reports"} <= set(row["stages"])
    assert row["steps"] >= 15
    assert "other" not in row["stages"]  # every step, asset checks included, belongs to a stage
    # the floor is the fastest of the writers, each of them measured
    writers = row["floor_write_seconds_by_writer"]
    assert set(writers) == {"xlsxwriter", "rustpy-xlsxwriter"}
    assert row["floor_write_seconds"] == pytest.approx(min(writers.values()))
    printed = capsys.readouterr().out
    assert "ratio" in printed and str(result_file) in printed


def test_verdicts_say_by_how_much_a_target_is_missed():
    row = {"persons_requested": 20000, "full_wall_seconds": 45.0, "ratio_to_floor": 4.0,
           "incremental_wall_seconds": 10.0, "overhead_per_step": 0.05, "peak_rss_mb": 500,
           "persons": 20000, "survey_files": 30, "floor_seconds": 11.0, "stages": {}}
    missed = verdicts(row)
    assert any("by 15.0s" in v for v in missed) and any("ratio 4.0×" in v for v in missed)
    assert "target missed" in render([row])
