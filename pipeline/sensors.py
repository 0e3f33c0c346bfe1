"""Sensors: new files under the data root are picked up without anyone clicking.

- ``survey_sensor`` watches surveys/: for a new or changed workbook it reads the 村代码 of row 2
  (only that), adds the village's partition, requests that village's intake run and — unless
  one is already waiting in the queue — a district rebuild.
- ``reference_sensor`` watches villages.csv, exceptions.csv, registry/ and departments/: any
  change requests a district rebuild (everything depends on the registry and the roster; the
  cross-checks on the departments).

Both keep in their cursor the version (modification time in ns + size) of EVERY file they have
handled, so an unchanged file is never handled twice and a resubmission under the same name is
handled again; run keys carry the file versions. A file modified within the settle time
(io.inputs.is_settled) may still be being copied: it is left for a later tick. At most
MAX_FILES_PER_TICK survey files are handled per tick; the rest wait for the next one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from pipeline.io.inputs import is_settled, list_files, read_villages
from pipeline.io.peek import peek_village_code
from pipeline.jobs import full_rebuild, village_intake
from pipeline.partitions import VILLAGES, village_partitions
from pipeline.resources import PathsResource
from pipeline.schema import (
    DEPARTMENTS_DIR,
    EXCEPTIONS_FILE,
    REGISTRY_DIR,
    SURVEY_SUFFIXES,
    SURVEYS_DIR,
    VILLAGES_FILE,
    is_input_file,
)

MAX_FILES_PER_TICK = 20
SURVEY_INTERVAL_SECONDS = 30
REFERENCE_INTERVAL_SECONDS = 60
CURSOR_FORMAT = 1
TRIGGER_TAG = "huitoukan/trigger"


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
# Survey workbooks
# --------------------------------------------------------------------------------------------


@dataclass
class SurveyScan:
    """What one tick found under surveys/ (a plain value: the sensor turns it into requests)."""

    cursor: dict[str, dict]
    by_village: dict[str, list[str]] = field(default_factory=dict)  # village -> ["file@version", …]
    unreadable: list[str] = field(default_factory=list)  # no 村代码 in row 2: the rebuild reports why
    removed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written
    deferred: int = 0  # changed files left for the next tick (cap)

    @property
    def changed(self) -> bool:
        return bool(self.by_village or self.unreadable or self.removed)


def settled_changes(current: dict[str, Path], seen: dict[str, dict], now: float,
                    waiting: list[str]) -> Iterator[tuple[str, Path, str, float]]:
    """The files of ``current`` that are new or changed against the cursor ``seen`` and have
    settled, as (name, path, version, mtime), by name; those still changing go to ``waiting``,
    and a file removed while we looked is skipped."""
    for name, path in sorted(current.items()):
        try:
            version = file_version(path)
            settled = is_settled(path, now)
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue
        if seen.get(name, {}).get("version") == version:
            continue
        if not settled:
            waiting.append(name)
            continue
        yield name, path, version, mtime


def scan_surveys(root: Path, seen: dict[str, dict], now: float | None = None,
                 cap: int = MAX_FILES_PER_TICK) -> SurveyScan:
    """Compare surveys/ with the cursor: new or changed settled files (oldest first, at most
    ``cap``), each with the village code of its row 2; removed files."""
    now = time.time() if now is None else now
    folder = Path(root) / SURVEYS_DIR
    current = {p.relative_to(root).as_posix(): p for p in list_files(folder, SURVEY_SUFFIXES)}
    cursor = {k: v for k, v in seen.items()}
    scan = SurveyScan(cursor=cursor)
    candidates = sorted((mtime, name, version, path)
                        for name, path, version, mtime in settled_changes(current, seen, now, scan.waiting))
    scan.deferred = max(0, len(candidates) - cap)
    by_village: dict[str, list[str]] = defaultdict(list)
    for _, name, version, path in candidates[:cap]:
        code = peek_village_code(path)
        cursor[name] = {"version": version, "village": code}
        if code:
            by_village[code].append(f"{name}@{version}")
        else:
            scan.unreadable.append(name)
    for name in sorted(set(seen) - set(current)):
        village = cursor.pop(name).get("village")
        scan.removed.append(name)
        if village:  # the village's newest file may now be an older one: read it again
            by_village[village].append(f"{name}@removed")
    scan.by_village = dict(by_village)
    return scan


def _rebuild_waiting(instance: dg.DagsterInstance | None) -> bool:
    """A district rebuild already queued (not started) will read the new files when it starts."""
    if instance is None:
        return False
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=full_rebuild.name,
                              statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]),
        limit=1)
    return bool(records)


def _rebuild_request(prefix: str, items: list[str], trigger: str) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"{prefix}:{_digest(items)}", job_name=full_rebuild.name,
                         tags={TRIGGER_TAG: trigger})


@dg.sensor(
    name="survey_sensor",
    jobs=[village_intake, full_rebuild],
    minimum_interval_seconds=SURVEY_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New or changed village survey workbooks under surveys/: adds the village's partition, "
                f"runs its intake, then the district rebuild (at most {MAX_FILES_PER_TICK} files a tick).",
)
def survey_sensor(context: dg.SensorEvaluationContext, paths: PathsResource):
    seen = load_cursor(context.cursor)
    scan = scan_surveys(paths.raw, seen)
    instance = _instance(context)
    known = set(instance.get_dynamic_partitions(VILLAGES)) if instance else set()
    new_villages = sorted(v for v in scan.by_village if v not in known)
    requests = [
        dg.RunRequest(run_key=f"{village}|{';'.join(sorted(items))}", partition_key=village,
                      job_name=village_intake.name, tags={TRIGGER_TAG: "survey_sensor"})
        for village, items in sorted(scan.by_village.items())
    ]
    if scan.changed and not _rebuild_waiting(instance):
        items = [i for v in scan.by_village.values() for i in v] + scan.unreadable + scan.removed
        requests.append(_rebuild_request("surveys", items, "survey_sensor"))
    note = []
    if scan.waiting:
        note.append(f"{len(scan.waiting)} file(s) still being written: next tick")
    if scan.deferred:
        note.append(f"{scan.deferred} more changed file(s): next tick")
    if scan.unreadable:
        note.append(f"no 村代码 in row 2: {', '.join(scan.unreadable[:5])}")
    for line in note:
        context.log.info(line)
    if not requests and scan.cursor == seen:
        return dg.SkipReason("no new or changed survey workbook" + (f" ({'; '.join(note)})" if note else ""))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[village_partitions.build_add_request(new_villages)] if new_villages else [],
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


@dataclass
class ReferenceScan:
    cursor: dict[str, dict]
    changed: list[str] = field(default_factory=list)  # "file@version" or "file@removed"
    waiting: list[str] = field(default_factory=list)


def scan_reference(root: Path, seen: dict[str, dict], now: float | None = None) -> ReferenceScan:
    now = time.time() if now is None else now
    current = reference_files(root)
    cursor = dict(seen)
    scan = ReferenceScan(cursor=cursor)
    for name, _, version, _ in settled_changes(current, seen, now, scan.waiting):
        cursor[name] = {"version": version}
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
    description="Changes to villages.csv, exceptions.csv, registry/ or departments/: rebuilds the district.",
)
def reference_sensor(context: dg.SensorEvaluationContext, paths: PathsResource):
    seen = load_cursor(context.cursor)
    scan = scan_reference(paths.raw, seen)
    if not scan.changed:
        waiting = f" ({len(scan.waiting)} file(s) still being written)" if scan.waiting else ""
        return dg.SkipReason("no change to the roster, registry, departments or exceptions" + waiting)
    partitions = []
    if any(c.startswith(VILLAGES_FILE + "@") for c in scan.changed) and _has_instance(context):
        known = set(context.instance.get_dynamic_partitions(VILLAGES))
        new = [v for v in roster_villages(paths.raw) if v not in known]
        if new:
            partitions.append(village_partitions.build_add_request(new))
    requests = [] if _rebuild_waiting(_instance(context)) else [
        _rebuild_request("reference", scan.changed, "reference_sensor")]
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partitions,
                           cursor=dump_cursor(scan.cursor))


ALL_SENSORS = [survey_sensor, reference_sensor]
