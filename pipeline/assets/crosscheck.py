"""Cross-check (比对): the nine departments' extracts, and the findings X1–X4, D1–D5 of rules.md.

One asset per department folder (``dept_<key>``), the nine built in one step: every file read and
unioned, IDs repaired, dates and amounts typed, each row with its file and row. A department that
has not answered yet is a visible state ("未返回"), with an empty table — never a failure.
``department_returns`` is the one table that says which departments answered (sign-off reads it).
"""


from collections.abc import Iterator

import dagster as dg
import pandas as pd

from pipeline.io.departments import DepartmentExtract, read_department
from pipeline.privacy import mask_text
from pipeline.readiness import office_stamp
from pipeline.resources import WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource
from pipeline.resources.warehouse import record_build
from pipeline.rules.crosscheck import (
    FINDINGS,
    dept_table,
    ensure_department_tables,
    findings_plan,
    load_department_table,
)
from pipeline.rules.sqlutil import run_sql, table_exists
from pipeline.schema import DEPARTMENTS, DEPARTMENTS_BY_KEY, DEPARTMENTS_DIR, Department

GROUP = "step4_crosscheck"
READS_TABLE = "department_reads"  # one row per department asset run (what department_returns reports)

# What each department sends (inputs.md), for the asset descriptions.
EXTRACT_NAMES = {
    "market": "市场主体登记", "tax": "个人所得税缴纳明细（GBK编码CSV）", "hrss": "社会保险参保缴费",
    "housing": "商品房网签备案", "vehicles": "机动车登记（UTF-8编码CSV）", "education": "学籍信息",
    "medical": "慢特病及大病认定", "disability": "持证残疾人", "income_recheck": "收入复核",
}

_READS_DDL = f"""
CREATE TABLE IF NOT EXISTS {READS_TABLE} (
    dept VARCHAR, returned BOOLEAN, files INTEGER, rows BIGINT, rows_read BIGINT, errors INTEGER,
    error_detail VARCHAR, unmatched_ids BIGINT, read_at TIMESTAMP
)"""


def _file_notes(extract: DepartmentExtract) -> str:
    lines = []
    for f in extract.files:
        name = mask_text(f.path)
        if f.error:
            lines.append(f"- `{name}`：无法读取（{f.error}）")
            continue
        notes = [f"{f.rows}行"]
        if f.encoding:
            notes.append(f"编码 {f.encoding}")
        if f.missing_columns:
            notes.append("缺少列：" + "、".join(f.missing_columns))
        if f.bad_values:
            notes.append("无法识别的值：" + "、".join(f"{c} {n}个" for c, n in f.bad_values.items()))
        lines.append(f"- `{name}`：" + "，".join(notes))
    return "\n".join(lines) or "未返回（文件夹中没有文件）"


def _description(dept: Department) -> str:
    return (f"{dept.name}：{EXTRACT_NAMES.get(dept.key, '比对数据')}，读取 {DEPARTMENTS_DIR}/{dept.key}/ 下的全部文件"
            "（多批次合并，重复行只计一次）。身份证号已规范（15位转18位、小写x、空格），日期、金额已识别，每行保留来源文件和行号。"
            "文件夹不存在或为空时为“未返回”，表为空。")


DEPARTMENT_SPECS = [
    dg.AssetSpec(dept_table(d.key), group_name=GROUP, description=_description(d),
                 kinds={"csv" if d.file_format == "csv" else "excel", "duckdb"})
    for d in DEPARTMENTS
]
DEPARTMENT_KEYS = [spec.key for spec in DEPARTMENT_SPECS]


# One step for the nine tables, not nine: a step costs Dagster ~0.1 s of bookkeeping and a
# warehouse connection ~30 ms, more than reading a department's folder usually takes. Each table
# stays an asset of its own (key, description, metadata, build time) and can be materialized alone.
@dg.multi_asset(specs=DEPARTMENT_SPECS, name="department_extracts", can_subset=True, pool=WAREHOUSE_POOL)
def department_extracts(context: dg.AssetExecutionContext, paths: PathsResource,
                        warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult]:
    """The department extracts of departments/<key>/, each read into its table dept_<key>."""
    selected = [d for d in DEPARTMENTS if dg.AssetKey(dept_table(d.key)) in context.selected_asset_keys]
    with warehouse.connect() as con:
        for dept in selected:
            metadata = _load_department(context, con, paths, dept)
            yield dg.MaterializeResult(asset_key=dept_table(dept.key), metadata=metadata)


def _load_department(context: dg.AssetExecutionContext, con, paths: PathsResource, dept: Department) -> dict:
    """Read one department's folder into dept_<key> and department_reads, record its build; its metadata."""
    extract = read_department(paths.raw, dept)
    unmatched = int(extract.frame["person_id"].isna().sum()) if extract.rows else 0
    errors = extract.errors
    con.execute("BEGIN")
    load_department_table(con, dept, extract.frame)
    con.execute(_READS_DDL)
    con.execute(f"DELETE FROM {READS_TABLE} WHERE dept = ?", [dept.key])
    con.execute(f"INSERT INTO {READS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        dept.key, extract.returned, len(extract.files), extract.rows, extract.rows_read, len(errors),
        "；".join(f"{mask_text(f.path)}：{f.error}" for f in errors) or None, unmatched,
        office_stamp()])
    con.execute("COMMIT")
    record_build(con, dept_table(dept.key), context.run_id)
    if not extract.returned:
        context.log.info(f"{dept.name}尚未返回比对数据（{DEPARTMENTS_DIR}/{dept.key}/）")
    for f in errors:
        context.log.warning(f"{dept.name}：无法读取 {mask_text(f.path)}：{f.error}")
    return {
        "dagster/row_count": extract.rows,
        "status": "已返回" if extract.returned else "未返回",
        "已反馈（returned）": extract.returned,
        "files": len(extract.files),
        "无法读取的文件（unreadable files）": len(errors),
        "读取行数（去重前，rows read）": extract.rows_read,
        "无法比对的身份证号（IDs that cannot be matched）": unmatched,
        "读取的文件（files read）": dg.MetadataValue.md(_file_notes(extract)),
    }


RETURNS_SQL = """
CREATE OR REPLACE TABLE department_returns AS
SELECT d.dept, d.name, coalesce(r.returned, false) AS returned, coalesce(r.files, 0) AS files,
       coalesce(r.rows, 0) AS rows, coalesce(r.errors, 0) AS errors, r.error_detail,
       coalesce(r.unmatched_ids, 0) AS unmatched_ids, r.read_at,
       coalesce(r.returned, false) AND coalesce(r.files, 0) > coalesce(r.errors, 0) AS usable
FROM _departments d LEFT JOIN department_reads r ON r.dept = d.dept
ORDER BY d.position
"""


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"}, deps=DEPARTMENT_KEYS)
def department_returns(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """部门反馈：九个部门是否已返回比对数据、文件数和行数。
    Which of the nine departments have returned their extract: per department its name,
    returned (是/否), files, rows, unreadable files and why. A department that has not returned
    blocks sign-off; its cross-checks are not run until it does."""
    departments = pd.DataFrame({"dept": [d.key for d in DEPARTMENTS], "name": [d.name for d in DEPARTMENTS],
                                "position": range(len(DEPARTMENTS))})
    with warehouse.build(context) as con:
        con.execute("BEGIN")
        con.execute(_READS_DDL)
        con.register("_departments", departments)
        con.execute(RETURNS_SQL)
        con.unregister("_departments")
        con.execute("COMMIT")
        rows = con.execute("SELECT name, returned, files, rows, errors FROM department_returns").fetchall()
    missing = [name for name, returned, *_ in rows if not returned]
    table = "| 部门 | 返回 | 文件 | 行数 | 无法读取 |\n| --- | --- | --- | --- | --- |\n" + "\n".join(
        f"| {name} | {'是' if returned else '否'} | {files} | {n} | {errors} |" for name, returned, files, n, errors in rows)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(rows),
        "已反馈（returned）": f"{len(rows) - len(missing)}/{len(rows)}",
        "尚未反馈（not returned yet）": dg.MetadataValue.md("、".join(missing) or "（无）"),
        "各部门（departments）": dg.MetadataValue.md(table),
    })


def answered_departments(con) -> list[str]:
    """Departments whose extract was returned and at least one file of it could be read."""
    if not table_exists(con, "department_returns"):
        return []
    return [r[0] for r in con.execute("SELECT dept FROM department_returns WHERE usable").fetchall()]


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"},
          deps=["households", "members", "household_income", "department_returns", *DEPARTMENT_KEYS])
def household_findings(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                       settings: SettingsResource) -> dg.MaterializeResult:
    """部门比对发现：每条发现一行（X1–X4、D1–D5），只写明疑点，不写原值。
    One row per finding: X1–X4 (hard exclusions: the household leaves 附件2/附件3) and D1–D5
    (doubts for the analyst), matched on the normalized ID and rolled up to the household, with
    what the department record says (evidence) and where it is (file, row). A rule whose
    department has not returned its extract is not run, and is listed here as not checked."""
    with warehouse.build(context) as con:
        ensure_department_tables(con)
        plan = findings_plan(answered_departments(con))
        run_sql(con, plan.sql, settings.get())
        counts = dict(con.execute(
            "SELECT code, count(DISTINCT hh_key) FROM household_findings GROUP BY 1").fetchall())
        n = con.execute("SELECT count(*) FROM household_findings").fetchone()[0]
    by_code = {f"{code} {name}": int(counts.get(code, 0)) for code, name in FINDINGS.items() if code in plan.checked}
    skipped = "\n".join(
        f"- {code} {FINDINGS[code]}：" + "、".join(DEPARTMENTS_BY_KEY[d].name for d in depts) + "未返回"
        for code, depts in plan.skipped.items())
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "各疑点户数（households per finding）": dg.MetadataValue.json(by_code),
        "未比对（not checked）": dg.MetadataValue.md(skipped or "（无）"),
    })
