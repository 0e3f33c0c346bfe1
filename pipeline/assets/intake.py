"""Intake: one village's submission, read the moment it lands (one dynamic partition per village).

The survey sensor adds the village's partition and requests a run when a workbook of that
village is new or changed; the run reads the village's newest workbook at once, so the analyst
(and the progress report) see within a minute that 财神庙村 has submitted, how many households
it holds and which cells it must fix — without waiting for the district rebuild. The district
tables still come only from ``full_rebuild`` (which the sensor also requests, and which runs
every night): this asset feeds no 附件.
"""


import datetime as dt
from collections import Counter
from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.io.inputs import FILE_READ, FILE_UNREADABLE, is_settled, list_files, rel
from pipeline.io.peek import peek_village_code
from pipeline.io.survey import UnreadableWorkbook, read_survey
from pipeline.metadata import masked_sample
from pipeline.partitions import village_partitions
from pipeline.readiness import local_time
from pipeline.resources import WAREHOUSE_POOL, PathsResource, WarehouseResource, replace_table
from pipeline.rules.clean import clean_survey
from pipeline.rules.problems import PROBLEM_COLUMNS, RULES
from pipeline.rules.sqlutil import table_exists
from pipeline.schema import SURVEY_SUFFIXES, SURVEYS_DIR
from pipeline.tables import SURVEY_FILE_INDEX, VILLAGE_SUBMISSION_PROBLEMS, VILLAGE_SUBMISSIONS

GROUP = "intake"
# survey_file_index: file, mtime, size -> village code (so a run peeks only new files);
# village_submissions: one row per village, its newest workbook as read; and its cell problems.
INDEX_TABLE, SUBMISSIONS_TABLE, PROBLEMS_TABLE = SURVEY_FILE_INDEX, VILLAGE_SUBMISSIONS, VILLAGE_SUBMISSION_PROBLEMS

_DDL = {
    SUBMISSIONS_TABLE: """village_code VARCHAR, file VARCHAR, mtime DOUBLE, size BIGINT, status VARCHAR,
        reason VARCHAR, households BIGINT, members BIGINT, blocking BIGINT, warnings BIGINT, files BIGINT,
        checked_at VARCHAR""",
    PROBLEMS_TABLE: """problem_id VARCHAR, rule VARCHAR, severity VARCHAR, village_code VARCHAR, file VARCHAR,
        sheet VARCHAR, "row" BIGINT, "column" VARCHAR, value VARCHAR, message VARCHAR, suggestion VARCHAR,
        anchor VARCHAR, hh_key VARCHAR""",
}
INTAKE_READ, INTAKE_NONE, INTAKE_UNREADABLE = FILE_READ, "没有报送文件", FILE_UNREADABLE


def _index(con, root: Path) -> pd.DataFrame:
    """Every settled survey file with its village code, peeking only files not seen before."""
    now = dt.datetime.now().timestamp()
    known = {}
    if table_exists(con, INDEX_TABLE):
        known = {(f, m, s): v for f, m, s, v in con.execute(f"SELECT file, mtime, size, village_code FROM {INDEX_TABLE}").fetchall()}
    rows = []
    for path in list_files(root / SURVEYS_DIR, SURVEY_SUFFIXES):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if not is_settled(path, now):
            continue
        key = (rel(root, path), stat.st_mtime, stat.st_size)
        code = known[key] if key in known else peek_village_code(path)
        rows.append({"file": key[0], "mtime": key[1], "size": key[2], "village_code": code})
    frame = pd.DataFrame(rows, columns=["file", "mtime", "size", "village_code"]).astype(
        {"file": "string", "mtime": "float64", "size": "int64", "village_code": "string"})
    replace_table(con, INDEX_TABLE, frame)
    return frame


def _read_newest(root: Path, files: pd.DataFrame):
    """The newest readable workbook of the village (by modification time), as ingest picks it."""
    last_error = ""
    for row in files.sort_values(["mtime", "file"], ascending=False).itertuples():
        try:
            read = read_survey(root / row.file)
            households, members, problems = clean_survey(read, row.file)
            return row, households, members, problems, ""
        except UnreadableWorkbook as exc:
            last_error = f"{row.file}: {exc}"
        except Exception as exc:  # one damaged file never stops the village's other files
            last_error = f"{row.file}: 读取出错：{type(exc).__name__}"
    return None, None, None, [], last_error


@dg.asset(
    group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel", "duckdb"}, partitions_def=village_partitions,
)
def village_submission(context: dg.AssetExecutionContext, paths: PathsResource,
                       warehouse: WarehouseResource) -> dg.MaterializeResult:
    """一个村的报送（按村分区）: the village's newest survey workbook, read as soon as the sensor sees
    it — when it arrived, how many households and persons it holds, and the cell problems the
    village must fix (B1/B2 IDs, B6 missing values, B7 codes, B8 amounts). Problems that need the
    whole district (B3 duplicates across villages, B9 missing households, W-rules) come with the
    district rebuild and the village's 问题清单."""
    code = context.partition_key
    root = paths.raw
    with warehouse.connect() as con:
        index = _index(con, root)
        mine = index[index["village_code"] == code]
        row, households, members, problems, error = _read_newest(root, mine)
        records = [p.record() for p in problems]
        blocking = sum(1 for p in problems if RULES[p.rule].blocking)
        record = {
            "village_code": code,
            "file": row.file if row is not None else None,
            "mtime": float(row.mtime) if row is not None else None,
            "size": int(row.size) if row is not None else None,
            "status": INTAKE_READ if row is not None else (INTAKE_UNREADABLE if error else INTAKE_NONE),
            "reason": error if row is None else "",
            "households": len(households) if row is not None else 0,
            "members": len(members) if row is not None else 0,
            "blocking": blocking,
            "warnings": len(problems) - blocking,
            "files": len(mine),
            "checked_at": dt.datetime.now().replace(microsecond=0).isoformat(),
        }
        frame = pd.DataFrame(records, columns=list(PROBLEM_COLUMNS))
        con.execute("BEGIN")
        _upsert(con, SUBMISSIONS_TABLE, pd.DataFrame([record]), code)
        _upsert(con, PROBLEMS_TABLE, frame, code)
        con.execute("COMMIT")
    if row is None:
        context.log.warning(f"村 {code}: {record['status']} {error}")
    by_rule = Counter(p.rule for p in problems)
    submitted = local_time(row.mtime) if row is not None else None
    return dg.MaterializeResult(metadata={
        "status": record["status"],
        "file": row.file if row is not None else "",
        "报送时间 (file modified)": submitted or "",
        "households": record["households"],
        "persons": record["members"],
        "files of this village": len(mine),
        "must fix (必须修改)": blocking,
        "to check (请核实)": record["warnings"],
        "problems by rule": dg.MetadataValue.json(dict(sorted(by_rule.items()))),
        "problems (masked sample)": masked_sample(
            frame, n=5, columns=["rule", "sheet", "row", "column", "value", "message"]),
        "reason": error,
    })


def _upsert(con, table: str, frame: pd.DataFrame, code: str) -> None:
    """Replace the village's rows of a table (creating the table the first time)."""
    con.execute(f'CREATE TABLE IF NOT EXISTS "{table}" ({_DDL[table]})')
    con.execute(f'DELETE FROM "{table}" WHERE village_code = ?', [code])
    con.register("_rows", frame)
    try:
        con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _rows')
    finally:
        con.unregister("_rows")
