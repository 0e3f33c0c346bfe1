"""Intake: one village's submission, read on request (one dynamic partition per village,
keyed ``村代码_村名称``).

A click on a village's partition reads the village's newest workbook at once: how many
households it holds and which cells it must fix. The survey sensor does not launch it — a new
file starts one district rebuild, whose survey_workbooks step records each village's file on
this asset's partition — so a day with thirty files queues one run, not thirty-one. The district
tables come only from ``full_rebuild``: this asset feeds no 附件.
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
from pipeline.partitions import village_code, village_partitions
from pipeline.readiness import local_time, superseded_files, superseded_markdown
from pipeline.resources import WAREHOUSE_POOL, PathsResource, WarehouseResource, replace_table
from pipeline.rules.clean import clean_survey
from pipeline.rules.problems import PROBLEM_COLUMNS, RULES
from pipeline.rules.sqlutil import table_exists
from pipeline.schema import SURVEY_SUFFIXES, SURVEYS_DIR
from pipeline.tables import SURVEY_FILE_INDEX, VILLAGE_SUBMISSION_PROBLEMS, VILLAGE_SUBMISSIONS

GROUP = "step1_village_intake"
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
    """一个村的报送（按村分区，点击即读取该村最新的调查表）：报送时间、户数、人数和该村必须修改的
    单元格问题 (one village's submission: its newest survey workbook — when it arrived, how many
    households and persons it holds, and the cell problems the village must fix: B1/B2 IDs, B6
    missing values, B7 codes, B8 amounts). Problems that need the whole district (B3 duplicates
    across villages, B9 missing households, W-rules) come with the district rebuild and the
    village's 问题清单."""
    code = village_code(context.partition_key)
    root = paths.raw
    with warehouse.connect() as con:
        index = _index(con, root)
        superseded = superseded_files(con)
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
    older = superseded[superseded["村代码"] == code]
    return dg.MaterializeResult(metadata={
        "状态（status）": record["status"],
        "文件（file）": row.file if row is not None else "",
        "报送时间（submitted）": submitted or "",
        "户数（households）": record["households"],
        "人数（persons）": record["members"],
        "该村文件数（files of this village）": len(mine),
        "必须修改（must fix）": blocking,
        "请核实（to check）": record["warnings"],
        "各规则问题数（problems by rule）": dg.MetadataValue.md(
            "| 规则 | 问题数 |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in sorted(by_rule.items()))
            if by_rule else "（无）"),
        "问题示例（已遮盖，masked sample）": masked_sample(
            frame, n=5, columns=["rule", "sheet", "row", "column", "value", "message"]),
        "被替代的文件（superseded files）": dg.MetadataValue.md(superseded_markdown(
            older, ("被替代的文件", "其报送时间", "替代它的文件", "替代文件报送时间"))),
        "原因（reason）": error,
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
