"""The shape of the code: no import cycle, no import upward, one list of tables and settings, and
the xlsxwriter internals two fast paths rely on present in the pinned version range."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipeline"

# Lower levels never import higher ones. Level 0 is vocabulary; rules/ and io/ are plain
# Python (no Dagster); resources wrap them; assets, checks and sensors wire them; the definitions
# gather those; the runner, the CLI and the tools drive the definitions.
LEVELS: list[tuple[int, tuple[str, ...]]] = [
    (0, ("pipeline", "pipeline.schema", "pipeline.settings", "pipeline.privacy", "pipeline.tables", "pipeline.layout")),
    (1, ("pipeline.rules",)),
    (2, ("pipeline.io", "pipeline.sample")),
    (3, ("pipeline.checks.expectations", "pipeline.checks.ge_worker", "pipeline.checks.datadocs",
         "pipeline.readiness", "pipeline.summary", "pipeline.fileserver", "pipeline.charts",
         "pipeline.package_signing")),
    (4, ("pipeline.resources", "pipeline.metadata", "pipeline.partitions")),
    (5, ("pipeline.assets", "pipeline.checks")),
    (6, ("pipeline.jobs", "pipeline.sensors", "pipeline.schedules")),
    (7, ("pipeline.definitions",)),
    (8, ("pipeline.runner", "pipeline.ui", "pipeline.bench", "pipeline.cli", "pipeline.instances", "pipeline.service",
         "pipeline.bench_instances")),
]
NO_DAGSTER = ("pipeline.rules", "pipeline.io", "pipeline.sample", "pipeline.schema", "pipeline.settings",
              "pipeline.tables", "pipeline.layout", "pipeline.checks.expectations", "pipeline.checks.ge_worker")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                targets = submodules or [node.module]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("pipeline"):
                    graph[name].add(target)
    for deps in graph.values():  # importing a package's module also runs the package's __init__
        deps.discard("pipeline")
    return graph


def level(module: str) -> int:
    best = (-1, None)
    for lvl, prefixes in LEVELS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), lvl)
    assert best[1] is not None, f"{module} has no level in tests/test_architecture.py"
    return best[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_no_module_imports_a_higher_level():
    graph = import_graph()
    upward = sorted(f"{a} -> {b}" for a, deps in graph.items() for b in deps if level(b) > level(a))
    assert upward == []


def test_rules_io_and_vocabulary_hold_no_dagster():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        if any(name == p or name.startswith(p + ".") for p in NO_DAGSTER):
            if "import dagster" in path.read_text(encoding="utf-8"):
                offenders.append(name)
    assert offenders == []


def test_huitoukan_ui_starts_dagster_dev_without_importing_dagster():
    """`huitoukan ui` only starts the file server and `dagster dev`, which imports Dagster itself:
    importing Dagster and pandas first kept the analyst waiting ~3 s more before the UI began to start."""
    import subprocess
    import sys

    probe = ("import sys, pipeline.cli, pipeline.ui, pipeline.fileserver; pipeline.cli.build_parser(); "
             "print(sorted(m for m in ('dagster', 'pandas', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_every_table_the_pipeline_creates_is_listed_once(tmp_path):
    """Every ``CREATE … TABLE <name>`` in the code names a table of pipeline/tables.py."""
    import re

    from pipeline import tables

    created = set()
    pattern = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?\{?([A-Za-z_]+)\}?\"?",
                         re.IGNORECASE)
    for path in PACKAGE.rglob("*.py"):
        if "sample" in path.parts:
            continue
        created |= set(pattern.findall(path.read_text(encoding="utf-8")))
    constants = {k: v for k, v in vars(tables).items() if k.isupper() and isinstance(v, str)}
    spelled = {c for c in created if c.islower()}
    by_constant = {constants[c] for c in created if c in constants}
    unknown = sorted((spelled | by_constant) - tables.ALL_TABLES - {"_frame"}
                     - {n for n in spelled if n.startswith(tables.DEPARTMENT_PREFIX)} - {"name", "table"})
    assert unknown == []


def test_every_setting_can_be_set_in_run_config():
    from pipeline.resources.settings import SettingsResource
    from pipeline.settings import LABELS, Settings

    names = [f.name for f in dataclasses.fields(Settings)]
    assert sorted(SettingsResource.model_fields) == sorted(names)
    assert sorted(LABELS) == sorted(names)
    settings = SettingsResource(bunching_band=300, bunching_min_above=7, timezone="Asia/Urumqi").get()
    assert (settings.bunching_band, settings.bunching_min_above, settings.timezone) == (300, 7, "Asia/Urumqi")


def test_a_wrong_time_zone_is_refused_with_its_name():
    from pipeline.settings import load_settings

    with pytest.raises(ValueError, match="timezone"):
        load_settings({"timezone": "Mars/Olympus"})


# --------------------------------------------------------------------------------------------
# xlsxwriter: two fast paths use its internals; the version range in pyproject.toml is the one
# tested here. A new xlsxwriter fails this test loudly instead of silently writing slower (or
# wrong) files: test it, then widen the pin.
# --------------------------------------------------------------------------------------------

TESTED_XLSXWRITER = ((3, 2), (3, 4))  # [from, to)


def test_xlsxwriter_is_a_tested_version_and_its_internals_are_there(tmp_path):
    import xlsxwriter
    from xlsxwriter.packager import Packager
    from xlsxwriter.sharedstrings import SharedStrings

    from pipeline.io import excel

    version = tuple(int(x) for x in xlsxwriter.__version__.split(".")[:2])
    low, high = TESTED_XLSXWRITER
    assert low <= version < high, (
        f"xlsxwriter {xlsxwriter.__version__} is outside the tested range {low}–{high}: pipeline/io/excel.py "
        "and pipeline/sample/xlsxfast.py use its internals; test them on this version, then widen the pin")
    for owner, attribute in ((Packager, "_write_shared_strings_file"), (SharedStrings, "_write_sst_strings"),
                             (SharedStrings, "_escape_control_characters"), (SharedStrings, "_escape_data")):
        assert hasattr(owner, attribute), f"xlsxwriter {xlsxwriter.__version__} lost {owner.__name__}.{attribute}"
    wb = xlsxwriter.Workbook(str(tmp_path / "a.xlsx"), {"constant_memory": True, "tmpdir": str(tmp_path)})
    ws = wb.add_worksheet()
    ws.write_string(0, 0, "x")
    assert excel._can_stream(ws, 1), "the streamed-rows path of pipeline/io/excel.py no longer applies"
    wb.close()


def test_pyproject_pins_the_tested_xlsxwriter_range():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (low, high) = TESTED_XLSXWRITER
    assert f'"xlsxwriter>={low[0]}.{low[1]},<{high[0]}.{high[1]}"' in text


# The one write the pipeline makes to its own environment: Great Expectations' telemetry switch,
# for a library that reads it at import (the GE worker is also started with it, ge_worker.py).
ENVIRON_WRITES_ALLOWED = {("pipeline.checks.expectations", "setdefault", "GX_ANALYTICS_ENABLED")}


def test_nothing_in_the_pipeline_writes_its_own_environment():
    """Configuration travels through resources (build_resources, EnvVar) and a child's env=, never
    through os.environ written by one part of the code for another to read back."""
    writes = set()
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            environ = lambda n: ast.unparse(n) in ("os.environ", "environ")
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                for target in getattr(node, "targets", None) or [getattr(node, "target", None)]:
                    if isinstance(target, ast.Subscript) and environ(target.value):
                        writes.add((name, "item", ast.unparse(target.slice)))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if environ(node.func.value) and node.func.attr in ("update", "pop", "setdefault", "clear",
                                                                   "popitem", "__setitem__", "__delitem__"):
                    key = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else "?"
                    writes.add((name, node.func.attr, key))
                elif ast.unparse(node.func) in ("os.putenv", "os.unsetenv"):
                    writes.add((name, node.func.attr, "?"))
    assert writes == ENVIRON_WRITES_ALLOWED
