"""传感器：数据目录里有新文件时自动重建全区，无需点击 (sensors: new files are picked up without a click).

- ``survey_sensor`` watches surveys/: new or changed workbooks start ONE ``survey_rebuild`` per
  tick, however many files arrived — the part of the district rebuild that depends on the
  workbooks (the roster, registry and department tables stay as the last full rebuild read
  them; the reference sensor rebuilds all when those change). It reads only the files it has
  not read before, and
  its survey_workbooks step records every village's file as that village's partition); new
  villages get their partition (``<村代码>_<村名称>``). The per-village ``village_intake`` job
  stays for a click on one village: a run per file would queue behind each other for the one
  warehouse slot and delay the drafts.
- ``reference_sensor`` watches villages.csv, exceptions.csv, registry/ and departments/: any
  change requests a district rebuild.

A file version (modification time + size) already read is never handled again, whoever read it:
the sensors ask the warehouse what it has read (``cache_survey_files`` for the workbooks, the
build times in ``asset_builds`` for the reference files), not only their own cursor — so the
first start after ``huitoukan run`` starts nothing. While a rebuild is queued or running (from
the UI, the schedule or the CLI, whose run lock they test) they start nothing and look again
next tick: that run may be reading the new file now. The cursor keeps the versions a sensor
already requested a rebuild for. A file modified within the settle time
(io.inputs.is_settled) may still be being copied: it is left for a later tick.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.io.inputs import is_settled, list_files, read_villages
from pipeline.io.peek import peek_village_code
from pipeline.jobs import full_rebuild, survey_rebuild
from pipeline.partitions import VILLAGES, partition_key, village_code, village_partitions
from pipeline.readiness import arrival_time
from pipeline.resources import PathsResource, WarehouseResource
from pipeline.schema import (
    DEPARTMENTS_DIR,
    EXCEPTIONS_FILE,
    REGISTRY_DIR,
    SURVEY_SUFFIXES,
    SURVEYS_DIR,
    VILLAGES_FILE,
    is_input_file,
)
from pipeline.tables import ASSET_BUILDS, CACHE_FILES, dept_table

MAX_FILES_PER_TICK = 50  # files peeked for their 村代码 per tick (the rebuild reads them all anyway)
# Dagster's sensor daemon goes round its sensors every 5 s and skips one whose last tick began less
# than its minimum interval ago. At exactly 5 s the survey sensor was skipped every other round (its
# last tick had begun a moment after the previous round did): it looked every 10 s, not 5. Just under
# a multiple of the round, it looks every round: every 5 s, and the reference sensor every 15 s.
SURVEY_INTERVAL_SECONDS = 4  # every 5 s: a file reaches the drafts in under 30 s (README, "Sensors")
REFERENCE_INTERVAL_SECONDS = 14  # every 15 s
CURSOR_FORMAT = 2
TRIGGER_TAG = "huitoukan/trigger"
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


# --------------------------------------------------------------------------------------------
# Cursor: {"format": 1, "files": {relative path: {"version": "<mtime_ns>:<size>", "village": …}}}
# --------------------------------------------------------------------------------------------


def file_version(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def load_cursor(text: str | None) -> dict[str, dict]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {k: v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def dump_cursor(files: dict[str, dict]) -> str:
    return json.dumps({"format": CURSOR_FORMAT, "files": files}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))


def _digest(items: list[str]) -> str:
    return hashlib.sha1("\n".join(sorted(items)).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# What the warehouse has already read, and who is reading now
# --------------------------------------------------------------------------------------------


@dataclass
class WarehouseView:
    """What the warehouse says it has read: survey files by version, and the build time of each
    asset that reads a reference file. ``busy``: the warehouse could not be opened (a run writes)."""

    surveys: dict[str, tuple[float, int]] = field(default_factory=dict)  # file -> (mtime, size)
    villages: dict[str, str] = field(default_factory=dict)  # 村代码 of read files -> file
    builds: dict[str, float] = field(default_factory=dict)  # asset -> built_at
    busy: bool = False


def warehouse_view(database: Path) -> WarehouseView:
    """Read, in one short read-only connection, what the warehouse has read (empty: no warehouse)."""
    database = Path(database)
    if not database.exists():
        return WarehouseView()
    try:
        # the warehouse's one way in, without waiting: a run that writes makes this tick "busy"
        with WarehouseResource(database=str(database)).connect(read_only=True, wait=False) as con:
            tables = {r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
            view = WarehouseView()
            if CACHE_FILES in tables:
                for file, code, mtime, size in con.execute(
                        f"SELECT file, village_code, mtime, size FROM {CACHE_FILES}").fetchall():
                    view.surveys[file] = (mtime, size)
                    if code:
                        view.villages[code] = file
            if ASSET_BUILDS in tables:
                view.builds = dict(con.execute(f"SELECT asset, built_at FROM {ASSET_BUILDS}").fetchall())
            return view
    except duckdb.Error:  # a run holds the write lock: look again next tick
        return WarehouseView(busy=True)


def cli_run_in_progress(database: Path) -> bool:
    """True while ``huitoukan run`` (runner.run_lock) holds the warehouse's run lock."""
    lock = Path(database).with_name(Path(database).name + ".lock")
    if not lock.exists():
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no run lock to test
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the shared lock we may have taken
    return False


def rebuild_in_flight(instance: dg.DagsterInstance | None) -> bool:
    """A district rebuild queued or running: it reads whatever is there when its step runs."""
    if instance is None:
        return False
    return any(instance.get_run_records(filters=dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT), limit=1)
               for job in (full_rebuild, survey_rebuild))


def busy_reason(view: WarehouseView, database: Path, instance) -> str | None:
    if view.busy:
        return "数据仓库正在写入（warehouse busy）"
    if cli_run_in_progress(database):
        return "命令行运行正在进行（huitoukan run in progress）"
    if rebuild_in_flight(instance):
        return "全区重建已在队列或运行中（a full_rebuild is queued or running）"
    return None


# --------------------------------------------------------------------------------------------
# Survey workbooks
# --------------------------------------------------------------------------------------------


@dataclass
class SurveyScan:
    """What one tick found under surveys/ (a plain value: the sensor turns it into requests)."""

    cursor: dict[str, dict]
    new: list[str] = field(default_factory=list)  # "file@version" not yet read nor requested
    villages: dict[str, str] = field(default_factory=dict)  # 村代码 of the new files -> file
    unreadable: list[str] = field(default_factory=list)  # no 村代码 in row 2: the rebuild reports why
    removed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written
    deferred: int = 0  # changed files left for the next tick (cap)

    @property
    def changed(self) -> bool:
        return bool(self.new or self.removed)


def settled_changes(current: dict[str, Path], seen: dict[str, dict], now: float,
                    waiting: list[str], read: dict[str, tuple[float, int]] | None = None
                    ) -> Iterator[tuple[str, Path, str, float]]:
    """The files of ``current`` that are new or changed against the cursor ``seen`` and against
    what the warehouse has ``read`` ({file: (mtime, size)}) and have settled, as (name, path,
    version, mtime), by name; those still changing go to ``waiting``, a file removed while we
    looked is skipped."""
    read = read or {}
    for name, path in sorted(current.items()):
        try:
            stat = path.stat()
            settled = is_settled(path, now)
        except FileNotFoundError:
            continue
        version = f"{stat.st_mtime_ns}:{stat.st_size}"
        if seen.get(name, {}).get("version") == version or read.get(name) == (stat.st_mtime, stat.st_size):
            continue
        if not settled:
            waiting.append(name)
            continue
        yield name, path, version, stat.st_mtime


def scan_surveys(root: Path, seen: dict[str, dict], read: dict[str, tuple[float, int]] | None = None,
                 now: float | None = None, cap: int = MAX_FILES_PER_TICK) -> SurveyScan:
    """Compare surveys/ with the cursor and the warehouse: new or changed settled files (oldest
    first, at most ``cap`` peeked for their 村代码), and files removed since they were read."""
    now = time.time() if now is None else now
    read = read or {}
    folder = Path(root) / SURVEYS_DIR
    current = {p.relative_to(root).as_posix(): p for p in list_files(folder, SURVEY_SUFFIXES)}
    cursor = {k: v for k, v in seen.items() if k in current or k in read}
    scan = SurveyScan(cursor=cursor)
    candidates = sorted((mtime, name, version, path)
                        for name, path, version, mtime in settled_changes(current, seen, now, scan.waiting, read))
    scan.deferred = max(0, len(candidates) - cap)
    for _, name, version, path in candidates[:cap]:
        code = peek_village_code(path)
        cursor[name] = {"version": version, "village": code}
        scan.new.append(f"{name}@{version}")
        if code:
            scan.villages[code] = name
        else:
            scan.unreadable.append(name)
    for name in sorted((set(read) | set(seen)) - set(current)):
        if seen.get(name, {}).get("version") == "removed":  # requested already
            if name in read:  # until the warehouse has dropped it
                cursor[name] = seen[name]
            continue
        cursor[name] = {"version": "removed"}
        scan.removed.append(f"{name}@removed")
    return scan


def _rebuild_request(prefix: str, items: list[str], trigger: str, job=full_rebuild) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"{prefix}:{_digest(items)}", job_name=job.name, tags={TRIGGER_TAG: trigger})


def roster_names(root: Path) -> dict[str, str]:
    """村代码 -> 村名称 of villages.csv ({} when it cannot be read: the rebuild reports why)."""
    try:
        frame = read_villages(Path(root))
    except Exception:
        return {}
    return dict(zip(frame["village_code"], frame["village_name"]))


def partition_requests(instance, codes, root: Path) -> list:
    """Add the partitions (村代码_村名称) of the villages not yet known to the instance."""
    if instance is None or not codes:
        return []
    known = {village_code(k) for k in instance.get_dynamic_partitions(VILLAGES)}
    missing = sorted(set(codes) - known)
    if not missing:
        return []
    names = roster_names(root)
    return [village_partitions.build_add_request([partition_key(c, names.get(c)) for c in missing])]


@dg.sensor(
    name="survey_sensor",
    jobs=[survey_rebuild],
    minimum_interval_seconds=SURVEY_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="村入户调查表传感器：surveys/ 下有新的或修改过的调查表时，启动一次调查表重建（survey_rebuild，"
                "不论同时到了多少个文件）并添加该村的分区；已读过的文件版本不再处理 (new or changed survey "
                "workbooks: one rebuild per tick; files already read are never handled again).",
)
def survey_sensor(context: dg.SensorEvaluationContext, paths: PathsResource, warehouse: WarehouseResource):
    seen = load_cursor(context.cursor)
    database = Path(warehouse.database)
    instance = _instance(context)
    view = warehouse_view(database)
    if view.busy:
        return dg.SkipReason("数据仓库正在写入，下次再看（warehouse busy: next tick）")
    scan = scan_surveys(paths.raw, seen, view.surveys)
    partitions = partition_requests(instance, set(view.villages) | set(scan.villages), paths.raw)
    notes = []
    if scan.waiting:
        notes.append(f"{len(scan.waiting)} 个文件仍在写入，下次读取（still being written）")
    if scan.deferred:
        notes.append(f"另有 {scan.deferred} 个文件下次处理（more files next tick）")
    if scan.unreadable:
        notes.append(f"第2行没有村代码（no 村代码 in row 2）：{', '.join(scan.unreadable[:5])}")
    for line in notes:
        context.log.info(line)
    if not scan.changed:
        if partitions:
            return dg.SensorResult(dynamic_partitions_requests=partitions, cursor=dump_cursor(scan.cursor))
        return dg.SkipReason("没有新的或修改过的调查表（no new or changed survey workbook）"
                             + (f"：{'；'.join(notes)}" if notes else ""))
    busy = busy_reason(view, database, instance)
    if busy:  # that run may be reading these files now: decide again when it has finished
        reason = f"{busy}：新文件下次再看（new files: next tick）"
        return dg.SensorResult(dynamic_partitions_requests=partitions, skip_reason=reason) if partitions \
            else dg.SkipReason(reason)
    return dg.SensorResult(
        run_requests=[_rebuild_request("surveys", scan.new + scan.removed, "survey_sensor", survey_rebuild)],
        dynamic_partitions_requests=partitions,
        cursor=dump_cursor(scan.cursor),
    )


def _has_instance(context) -> bool:
    try:
        return context.instance is not None
    except Exception:  # build_sensor_context() without an instance
        return False


def _instance(context) -> dg.DagsterInstance | None:
    return context.instance if _has_instance(context) else None


# --------------------------------------------------------------------------------------------
# Reference data: the roster, the registry, the department extracts, exceptions.csv
# --------------------------------------------------------------------------------------------


def reference_files(root: Path) -> dict[str, Path]:
    root = Path(root)
    files = {}
    for single in (VILLAGES_FILE, EXCEPTIONS_FILE):
        if (root / single).is_file():
            files[single] = root / single
    for folder in (REGISTRY_DIR, DEPARTMENTS_DIR):
        for path in list_files(root / folder):
            files[path.relative_to(root).as_posix()] = path
    return {k: v for k, v in files.items() if is_input_file(Path(k).name)}


def reading_asset(name: str) -> str:
    """The asset that reads a reference file (its build time says whether it has been read)."""
    parts = name.split("/")
    if parts[0] == REGISTRY_DIR:
        return "registry"
    if parts[0] == DEPARTMENTS_DIR and len(parts) > 2:
        return dept_table(parts[1])
    return {VILLAGES_FILE: "village_roster", EXCEPTIONS_FILE: "exceptions"}.get(name, "village_roster")


@dataclass
class ReferenceScan:
    cursor: dict[str, dict]
    changed: list[str] = field(default_factory=list)  # "file@version" or "file@removed"
    waiting: list[str] = field(default_factory=list)


def scan_reference(root: Path, seen: dict[str, dict], builds: dict[str, float] | None = None,
                   now: float | None = None) -> ReferenceScan:
    """Reference files new or changed since the cursor and since the asset that reads them was
    last built (``builds``: asset -> built_at, from the warehouse)."""
    now = time.time() if now is None else now
    builds = builds or {}
    current = reference_files(root)
    cursor = dict(seen)
    scan = ReferenceScan(cursor=cursor)
    for name, path, version, _ in settled_changes(current, seen, now, scan.waiting):
        cursor[name] = {"version": version}
        try:
            if arrival_time(path) < builds.get(reading_asset(name), float("-inf")):
                continue  # read by a rebuild after it arrived (the CLI's, an earlier session's)
        except FileNotFoundError:
            continue
        scan.changed.append(f"{name}@{version}")
    for name in sorted(set(seen) - set(current)):
        cursor.pop(name)
        scan.changed.append(f"{name}@removed")
    return scan


def roster_villages(root: Path) -> list[str]:
    """Every 涉农 village of villages.csv (their partitions exist before their files arrive)."""
    try:
        frame = read_villages(Path(root))
    except Exception:  # a broken roster is reported by the rebuild, not by a sensor
        return []
    return sorted(frame.loc[frame["farming"], "village_code"])


@dg.sensor(
    name="reference_sensor",
    jobs=[full_rebuild],
    minimum_interval_seconds=REFERENCE_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="名册、建档立卡、部门比对数据传感器：villages.csv、exceptions.csv、registry/ 或 departments/ "
                "有变化时重建全区；已读过的文件不再处理 (changes to the roster, registry, department "
                "extracts or exceptions: rebuilds the district).",
)
def reference_sensor(context: dg.SensorEvaluationContext, paths: PathsResource, warehouse: WarehouseResource):
    seen = load_cursor(context.cursor)
    database = Path(warehouse.database)
    instance = _instance(context)
    view = warehouse_view(database)
    if view.busy:
        return dg.SkipReason("数据仓库正在写入，下次再看（warehouse busy: next tick）")
    partitions = partition_requests(instance, roster_villages(paths.raw), paths.raw)
    scan = scan_reference(paths.raw, seen, view.builds)
    if not scan.changed:
        waiting = f"（{len(scan.waiting)} 个文件仍在写入）" if scan.waiting else ""
        reason = "名册、建档立卡、部门数据和 exceptions.csv 没有新变化（no change）" + waiting
        if partitions or scan.cursor != seen:
            return dg.SensorResult(dynamic_partitions_requests=partitions, cursor=dump_cursor(scan.cursor),
                                   skip_reason=reason)
        return dg.SkipReason(reason)
    busy = busy_reason(view, database, instance)
    if busy:
        reason = f"{busy}：下次再看（next tick）"
        return dg.SensorResult(dynamic_partitions_requests=partitions, skip_reason=reason) if partitions \
            else dg.SkipReason(reason)
    return dg.SensorResult(run_requests=[_rebuild_request("reference", scan.changed, "reference_sensor")],
                           dynamic_partitions_requests=partitions, cursor=dump_cursor(scan.cursor))


ALL_SENSORS = [survey_sensor, reference_sensor]
