"""Finding and reading the data root (inputs.md): villages.csv, registry/, surveys/.

Nothing here changes, moves or deletes a file under the data root. A file that cannot be read is
recorded with its path and the reason; every other file is processed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.io.peek import peek_village_code
from pipeline.io.survey import (
    SET_ASIDE_COLUMNS,
    SHEET_ACCOUNT_COLUMNS,
    UnreadableWorkbook,
    account_frames,
    check_container,
    normalize_label,
    read_survey,
    typed_account,
)
from pipeline.rules.clean import clean_survey, empty_frame
from pipeline.rules.ids import repair_id
from pipeline.rules.problems import Problem
from pipeline.rules.values import clean_text
from pipeline.schema import (
    HOUSEHOLD_COLUMNS,
    MEMBER_COLUMNS,
    REGISTRY_COLUMNS,
    REGISTRY_DIR,
    SURVEY_SUFFIXES,
    SURVEYS_DIR,
    VILLAGE_COLUMNS,
    VILLAGES_FILE,
    is_input_file,
)

# A file modified this recently may still be being copied; it is left for the next run.
SETTLE_SECONDS = float(os.environ.get("HUITOUKAN_SETTLE_SECONDS", "2"))

FILE_COLUMNS = ("file", "village_code", "mtime", "size", "status", "reason", "households", "members")
FILE_READ, FILE_SUPERSEDED, FILE_UNREADABLE, FILE_UNSETTLED = "已读取", "已被新版本替代", "无法读取", "正在写入，下次读取"
FILE_OTHER = "不是调查表文件"  # a PDF, a Word document, a photo… under surveys/: listed, not read


class InputError(Exception):
    """The data root cannot be used at all (e.g. villages.csv missing)."""


def rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def list_files(folder: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or not is_input_file(path.name):
            continue
        if any(not is_input_file(part) for part in path.relative_to(folder).parts[:-1]):
            continue
        if suffixes is None or path.suffix.lower() in suffixes:
            out.append(path)
    return out


def is_settled(path: Path, now: float | None = None) -> bool:
    """False while a file's last change is younger than SETTLE_SECONDS (still being copied). A
    time ahead of the clock by more than that (a file copied with its time from a machine whose
    clock runs ahead) is not a copy in progress: it would otherwise never be read."""
    now = dt.datetime.now().timestamp() if now is None else now
    return abs(now - path.stat().st_mtime) >= SETTLE_SECONDS


def read_villages(root: Path) -> pd.DataFrame:
    path = root / VILLAGES_FILE
    if not path.exists():
        raise InputError(f"{path}: 村名册 villages.csv 不存在")
    frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    frame.columns = [normalize_label(c) for c in frame.columns]
    by_label = {v: k for k, v in VILLAGE_COLUMNS.items()}
    missing = [label for label in VILLAGE_COLUMNS.values() if label not in frame.columns]
    if missing:
        raise InputError(f"{path}: 缺少列 {', '.join(missing)}")
    frame = frame.rename(columns=by_label)[list(VILLAGE_COLUMNS)]
    for col in frame.columns:
        frame[col] = frame[col].map(lambda v: clean_text(v) or "")
    frame["farming"] = frame["farming"].isin(["是", "Y", "1", "√"])
    return frame.drop_duplicates("village_code").sort_values("village_code").reset_index(drop=True)


@dataclass
class RegistryRead:
    frame: pd.DataFrame
    files: list[dict] = field(default_factory=list)


def read_registry(root: Path) -> RegistryRead:
    from python_calamine import CalamineWorkbook

    frames, files = [], []
    labels = {normalize_label(v): k for k, v in REGISTRY_COLUMNS.items()}
    for path in list_files(root / REGISTRY_DIR, SURVEY_SUFFIXES):
        try:
            check_container(path)  # too large, a zip bomb, encrypted: refused before calamine inflates it
            sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
            rows = sheet.to_python(skip_empty_area=False)
            header = [labels.get(normalize_label(h)) for h in rows[0]]
            if "person_id" not in header:
                raise ValueError("缺少“证件号码”列")
            data = pd.DataFrame(rows[1:], columns=[h or f"_extra{i}" for i, h in enumerate(header)], dtype=object)
            data = data[[c for c in REGISTRY_COLUMNS if c in data.columns]]
            data["_file"] = rel(root, path)
            data["_row"] = range(2, len(data) + 2)
            frames.append(data)
            files.append({"file": rel(root, path), "rows": len(data), "error": ""})
        except Exception as exc:  # a broken registry file is reported, the rest is read
            files.append({"file": rel(root, path), "rows": 0, "error": f"{type(exc).__name__}: {str(exc)[:80]}"})
    if not frames:
        frame = pd.DataFrame({c: pd.Series(dtype="string") for c in [*REGISTRY_COLUMNS, "id_status", "_file"]})
        frame["_row"] = pd.Series(dtype="Int64")
        return RegistryRead(frame, files)
    frame = pd.concat(frames, ignore_index=True)
    for col in REGISTRY_COLUMNS:
        if col not in frame:
            frame[col] = None
    ids = frame["person_id"].map(repair_id)
    frame["person_id"] = ids.map(lambda r: r.value)
    frame["id_status"] = ids.map(lambda r: r.status.value)
    for col in ("hh_no", "village_code", "head_name", "name", "relation", "poor_attribute", "status"):
        frame[col] = frame[col].map(clean_text)
    for col in ("hh_no", "village_code"):
        frame[col] = frame[col].map(lambda v: v[:-2] if isinstance(v, str) and v.endswith(".0") else v)
    for col in ("identified_year", "exit_year"):
        frame[col] = pd.to_numeric(frame[col].map(clean_text), errors="coerce").astype("Int64")
    frame = frame.drop_duplicates(subset=list(REGISTRY_COLUMNS))
    return RegistryRead(frame.reset_index(drop=True), files)


@dataclass
class SurveyIngest:
    files: pd.DataFrame  # one row per survey file seen, with its status and reason
    households: pd.DataFrame  # rows of the latest readable file of each village
    members: pd.DataFrame
    problems: list[Problem]
    sheets: pd.DataFrame | None = None  # the row account of every read file, per sheet
    set_aside: pd.DataFrame | None = None  # every row set aside, with its reason


def concat_accounts(frames: list, columns: tuple[str, ...]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return typed_account(pd.DataFrame(columns=list(columns)), columns)
    return typed_account(pd.concat(frames, ignore_index=True), columns)


@dataclass
class FileResult:
    record: dict  # the file's row of FILE_COLUMNS
    households: pd.DataFrame | None = None
    members: pd.DataFrame | None = None
    problems: list[Problem] = field(default_factory=list)
    sheets: pd.DataFrame | None = None  # the row account per sheet (survey.SHEET_ACCOUNT_COLUMNS)
    set_aside: pd.DataFrame | None = None  # one row per set-aside row with its reason


def _read_one(root: Path, path: Path) -> FileResult:
    file = rel(root, path)
    stat = path.stat()
    base = {"file": file, "mtime": stat.st_mtime, "size": stat.st_size}
    try:
        read = read_survey(path)
        if not read.village_code:
            raise UnreadableWorkbook("第2行找不到12位村代码（应为“村代码：2105……”）")
        households, members, problems = clean_survey(read, file)
        record = {**base, "village_code": read.village_code, "status": FILE_READ, "reason": "",
                  "households": len(households), "members": len(members)}
        sheets, set_aside = account_frames(read.accounts, file, read.village_code)
        return FileResult(record, households, members, problems, sheets, set_aside)
    except UnreadableWorkbook as exc:
        reason = str(exc)
    except Exception as exc:  # never let one village stop the district
        reason = f"读取出错：{type(exc).__name__}"
    # The village of a file that cannot be read, when its row 2 can still be read: it has submitted.
    return FileResult({**base, "village_code": peek_village_code(path), "status": FILE_UNREADABLE, "reason": reason})


# A spreadsheet saved in a format the reader does not take: the village is told to save it again.
OTHER_SPREADSHEETS = {".et": "WPS表格格式（.et）", ".ett": "WPS表格模板（.ett）", ".ods": "OpenDocument表格（.ods）",
                      ".xlsb": "Excel二进制工作簿（.xlsb）", ".csv": "CSV文本", ".numbers": "Numbers表格",
                      ".xltx": "Excel模板（.xltx）", ".xlt": "Excel模板（.xlt）"}
SYSTEM_FILES = {"thumbs.db", "desktop.ini"}  # written by Windows itself, never sent by anyone


def scan_survey_files(root: Path, settle: bool = True) -> tuple[list[Path], list[dict]]:
    """Survey files ready to read, and records for the files that are not read this time: those
    still being written, and every other file under surveys/ — nothing there is passed over
    silently. A spreadsheet in another format (WPS .et, .ods, .csv…) cannot be read (the village
    saves it again as .xlsx); any other file (a scanned PDF, a Word document, a photo) is listed as
    not a survey workbook."""
    paths = list_files(root / SURVEYS_DIR)
    now = dt.datetime.now().timestamp()
    ready, unsettled = [], []
    for p in paths:
        suffix = p.suffix.lower()
        if suffix not in SURVEY_SUFFIXES:
            if p.name.lower() in SYSTEM_FILES:
                continue
            stat = p.stat()
            base = {"file": rel(root, p), "mtime": stat.st_mtime, "size": stat.st_size, "village_code": None}
            if suffix in OTHER_SPREADSHEETS:
                unsettled.append({**base, "status": FILE_UNREADABLE,
                                  "reason": f"文件是{OTHER_SPREADSHEETS[suffix]}，不是Excel工作簿：请另存为.xlsx后重新报送"})
            else:
                unsettled.append({**base, "status": FILE_OTHER,
                                  "reason": f"不是Excel调查表（扩展名“{p.suffix or '无'}”），没有读取"})
            continue
        if not settle or is_settled(p, now):
            ready.append(p)
        else:
            stat = p.stat()
            unsettled.append({"file": rel(root, p), "mtime": stat.st_mtime, "size": stat.st_size, "village_code": None,
                              "status": FILE_UNSETTLED, "reason": f"文件在{SETTLE_SECONDS:g}秒内仍在变化，下次读取"})
    return ready, unsettled


def _read_result(args: tuple[Path, Path]) -> FileResult:
    root, path = args
    return _read_one(root, path)


# Below this many bytes of workbooks to read, one process reads them: starting the pool (a fork
# server that imports this module and pandas, then its workers) costs ~0.3-0.9 s of wall time and
# ~1.1 s of CPU, which a second core wins back from about half a megabyte of survey workbooks on.
# bench/ingest_pool.py, medians of 3, serial / two processes:
#   300 households, 164 KB:  1.03 / 1.26 s wall     2,000 households, 660 KB:  2.02 / 1.74 s
#   900 households, 335 KB:  1.30 / 1.46 s          8,000 (the sample), 2.8 MB: 6.15 / 4.43 s
PARALLEL_READ_MIN_BYTES = 512 << 10


def read_workers(paths: list[Path], workers: int | None = None) -> int:
    """How many processes read ``paths``: ``workers`` or ``$HUITOUKAN_INGEST_WORKERS`` when given;
    else one per core, but one alone for fewer than 4 files or less than
    ``PARALLEL_READ_MIN_BYTES`` of them (a village or two resubmitted, a small district)."""
    chosen = workers or int(os.environ.get("HUITOUKAN_INGEST_WORKERS") or 0)
    if len(paths) < 4:
        return 1
    if chosen:
        return chosen
    size = 0
    for p in paths:
        with contextlib.suppress(OSError):  # gone since the scan: its read says so
            size += p.stat().st_size
    return (os.cpu_count() or 1) if size >= PARALLEL_READ_MIN_BYTES else 1


def read_survey_files(root: Path, paths: list[Path], workers: int | None = None) -> list[FileResult]:
    """Read and clean workbooks; in parallel processes when there are enough of them
    (``read_workers``).

    The workers come from a fork server, never from a bare ``fork`` of this process: the caller
    holds a DuckDB connection and runs inside Dagster, both with threads of their own, and a
    child forked beside live threads can deadlock on a lock one of them held. The server is a
    fresh single-threaded process that has imported this module once; forking from it is cheap."""
    workers = read_workers(paths, workers)
    jobs = [(root, p) for p in paths]
    if workers <= 1:
        return [_read_result(j) for j in jobs]
    import multiprocessing

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload([__name__])
    with ctx.Pool(processes=min(workers, len(paths))) as pool:
        return pool.map(_read_result, jobs, chunksize=max(1, len(jobs) // (workers * 4)))


def mark_latest(records: list[dict]) -> dict[str, str]:
    """The newest readable workbook of each village wins (by modification time); older ones are
    marked superseded — they stay on disk, unused. Returns {village_code: file}."""
    latest: dict[str, tuple[float, str]] = {}
    for rec in records:
        if rec["status"] == FILE_READ:
            key = (rec["mtime"], rec["file"])
            if rec["village_code"] not in latest or key > latest[rec["village_code"]]:
                latest[rec["village_code"]] = key
    for rec in records:
        if rec["status"] == FILE_READ and latest[rec["village_code"]][1] != rec["file"]:
            rec["status"], rec["reason"] = FILE_SUPERSEDED, f"已被同村更新的文件替代：{latest[rec['village_code']][1]}"
    return {village: file for village, (_, file) in latest.items()}


def files_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=list(FILE_COLUMNS)).sort_values("file").reset_index(drop=True)


def ingest_surveys(root: Path, workers: int | None = None, settle: bool = True) -> SurveyIngest:
    """Read every survey workbook under the root (no cache): the latest of each village."""
    ready, unsettled = scan_survey_files(root, settle)
    results = read_survey_files(root, ready, workers)
    records = [r.record for r in results] + unsettled
    mark_latest(records)
    used = [r for r in results if r.record["status"] == FILE_READ]
    return SurveyIngest(
        files=files_frame(records),
        households=pd.concat([r.households for r in used], ignore_index=True) if used else empty_frame(HOUSEHOLD_COLUMNS),
        members=pd.concat([r.members for r in used], ignore_index=True) if used else empty_frame(MEMBER_COLUMNS),
        problems=[p for r in used for p in r.problems],
        sheets=concat_accounts([r.sheets for r in used], SHEET_ACCOUNT_COLUMNS),
        set_aside=concat_accounts([r.set_aside for r in used], SET_ASIDE_COLUMNS),
    )
