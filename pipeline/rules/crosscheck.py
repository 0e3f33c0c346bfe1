"""Cross-checks (rules.md, "Cross-checks (比对)"): X1–X4 hard exclusions, D1–D5 doubts.

Person-level matches on the normalized ID (``members.person_id`` = the department row's repaired
``person_id``), rolled up to ``members.hh_key``; D5 matches the recheck's 户主身份证号 to the
household's. Each finding keeps what the department record says (``evidence``: types, states,
dates, amounts — never a name or an ID, since metadata and logs may show it) and where that
record is (``department``, ``source_file``, ``source_row``).

A rule that needs a department's extract runs only when that department has returned a readable
extract: "no 医保 record" means nothing while 医保局 has not answered. Which rules were skipped is
part of the result (:func:`findings_sql` takes the departments that answered).

The department tables ``dept_<key>`` keep the department's own column names (schema.DEPARTMENTS)
with typed values — dates as DATE, amounts as exact DECIMAL, counts as BIGINT — plus
``person_id``, ``id_status``, ``_file`` and ``_row``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import pandas as pd

from pipeline.rules.income import floor_cents
from pipeline.rules.status import status_text_sql
from pipeline.schema import (
    DEPARTMENTS,
    HH_REGISTERED,
    NOT_IN_SCHOOL,
    NOT_WORKING,
    SERIOUS_HEALTH,
    YES,
    Department,
)
from pipeline.tables import dept_table

HARD_EXCLUSIONS = {"X1": "工商", "X2": "商品房", "X3": "车辆", "X4": "个税"}
DOUBTS = {"D1": "务工", "D2": "疾病", "D3": "残疾", "D4": "学籍", "D5": "收入"}
FINDINGS = {**HARD_EXCLUSIONS, **DOUBTS}

# What the rules of rules.md select in the departments' code lists (inputs.md).
EXCLUDING_ENTITY_TYPES = ("个体工商户", "有限责任公司", "个人独资企业")  # not 农民专业合作社
ACTIVE_ENTITY_STATES = ("存续", "在业")
PASSENGER_VEHICLE_WORDS = ("轿车", "客车")
VEHICLE_ACTIVE = "正常"
VEHICLE_PRIVATE_USE = "非营运"
EMPLOYEE_PENSION = "企业职工基本养老保险"
CERTIFICATE_VALID = "有效"
ENROLLED = "在读"
NOT_A_STUDENT = "非在校生"
CAUSE_ILLNESS = "因病"
CAUSE_SCHOOLING = "因学"

FINDING_COLUMNS = ("hh_key", "code", "finding", "person_id", "evidence", "department", "source_file", "source_row")

# The departments each rule needs; a rule runs only when all of them have returned an extract.
RULE_DEPARTMENTS = {
    "X1": ("market",), "X2": ("housing",), "X3": ("vehicles",), "X4": ("tax",),
    "D1": ("hrss",), "D2": ("medical",), "D3": ("disability",), "D4": ("education",),
    "D5": ("income_recheck",),
}


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# --------------------------------------------------------------------------------------------
# Department tables
# --------------------------------------------------------------------------------------------

AMOUNT_TYPE = "DECIMAL(18, 4)"


def _as_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _column_type(dept: Department, column: str) -> str:
    if column in dept.date_columns:
        return "DATE"
    if column in dept.int_columns:
        return "BIGINT"
    if column in dept.amount_columns:
        return AMOUNT_TYPE
    return "VARCHAR"


def load_department_table(con: duckdb.DuckDBPyConnection, dept: Department, frame: pd.DataFrame) -> int:
    """Replace ``dept_<key>`` with the extract's rows (the frame of ``read_department``), typed.

    Values go through text so that DuckDB never guesses a type (an all-empty column, a Decimal
    read as a float): dates are ISO text cast to DATE, amounts exact text cast to DECIMAL."""
    columns = [*dept.columns, "person_id", "id_status", "_file"]
    text = pd.DataFrame({c: pd.array([_as_text(v) for v in frame[c]] if c in frame else [None] * len(frame),
                                     dtype="string") for c in columns})
    text["_row"] = pd.array(frame["_row"].tolist() if "_row" in frame else [], dtype="Int64")
    select = ", ".join(
        f'TRY_CAST("{c}" AS {_column_type(dept, c)}) AS "{c}"' if _column_type(dept, c) != "VARCHAR"
        else f'CAST("{c}" AS VARCHAR) AS "{c}"'
        for c in dept.columns)
    con.register("_dept_frame", text)
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{dept_table(dept.key)}" AS SELECT {select}, '
                    "CAST(person_id AS VARCHAR) AS person_id, CAST(id_status AS VARCHAR) AS id_status, "
                    "CAST(_file AS VARCHAR) AS _file, CAST(_row AS BIGINT) AS _row FROM _dept_frame")
    finally:
        con.unregister("_dept_frame")
    return len(text)


def ensure_department_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Every ``dept_<key>`` exists (empty when the department never ran), so the SQL can name it."""
    for dept in DEPARTMENTS:
        cols = ", ".join(f'"{c}" {_column_type(dept, c)}' for c in dept.columns)
        con.execute(f'CREATE TABLE IF NOT EXISTS "{dept_table(dept.key)}" ({cols}, person_id VARCHAR, '
                    "id_status VARCHAR, _file VARCHAR, _row BIGINT)")


# --------------------------------------------------------------------------------------------
# The rules, one SELECT each: hh_key, code, finding, person_id, evidence, department, file, row
# --------------------------------------------------------------------------------------------

_DAY = "strftime({col}, '%Y-%m-%d')"
_MONTH = "strftime({col}, '%Y-%m')"
_YEAR_START = "make_date({income_year}, 1, 1)"
_YEAR_END = "make_date({income_year}, 12, 31)"


def _money(col: str) -> str:
    return f"CAST(round({col}, 2) AS VARCHAR)"


def _per_capita(net: str, size: str) -> str:
    """net / size cut down to the cent, exactly (as household_income.per_capita), as text."""
    cents = f"CAST(round({net}, 2) * 100 AS BIGINT)"
    return (f"CAST(CAST({floor_cents(cents, size)} AS DECIMAL(18, 0)) * 0.01 "
            "AS DECIMAL(18, 2))::VARCHAR")


def _day(col: str) -> str:
    return _DAY.format(col=col)


def _month(col: str) -> str:
    return _MONTH.format(col=col)


# Persons with a valid ID in a surveyed household.
_PERSONS = """
persons AS (
    SELECT hh_key, person_id, work_status, health, disabled_cert, disability_type, disability_grade,
           school_status
    FROM members WHERE hh_key IS NOT NULL AND person_id IS NOT NULL
)"""

_X1 = f"""
SELECT p.hh_key, 'X1', '{HARD_EXCLUSIONS["X1"]}', p.person_id,
       d."主体类型" || '（' || d."登记状态" || coalesce('，成立于' || {_day('d."成立日期"')}, '') || '）',
       'market', d._file, d._row
FROM persons p JOIN dept_market d ON d.person_id = p.person_id
WHERE d."主体类型" IN {_in(EXCLUDING_ENTITY_TYPES)} AND d."登记状态" IN {_in(ACTIVE_ENTITY_STATES)}"""

_X2 = f"""
SELECT p.hh_key, 'X2', '{HARD_EXCLUSIONS["X2"]}', p.person_id,
       '商品房网签备案' || {_day('d."备案日期"')}
         || coalesce('，' || d."项目名称", '')
         || coalesce('，建筑面积' || {_money('d."建筑面积"')} || '㎡', '')
         || coalesce('，合同总价' || {_money('d."合同总价"')} || '元', ''),
       'housing', d._file, d._row
FROM persons p JOIN dept_housing d ON d.person_id = p.person_id
WHERE d."备案日期" <= {{ref_date}}"""

_PASSENGER = " OR ".join(f"contains(d.\"车辆类型\", '{w}')" for w in PASSENGER_VEHICLE_WORDS)

_X3 = f"""
SELECT p.hh_key, 'X3', '{HARD_EXCLUSIONS["X3"]}', p.person_id,
       d."车辆类型" || '·' || d."使用性质" || '·' || d."机动车状态"
         || coalesce('（初次登记' || {_day('d."初次登记日期"')} || '）', ''),
       'vehicles', d._file, d._row
FROM persons p JOIN dept_vehicles d ON d.person_id = p.person_id
WHERE d."机动车状态" = '{VEHICLE_ACTIVE}' AND d."使用性质" = '{VEHICLE_PRIVATE_USE}'
  AND ({_PASSENGER})"""

# A tax period belongs to the income year when it overlaps it (a period given by one end only
# is that day or month).
_X4 = f"""
SELECT p.hh_key, 'X4', '{HARD_EXCLUSIONS["X4"]}', p.person_id,
       coalesce(d."所得项目", '个人所得税') || '，所属期'
         || coalesce({_day('d."所属期起"')}, '') || '至' || coalesce({_day('d."所属期止"')}, '')
         || '，实缴税额' || {_money('d."实缴税额"')} || '元',
       'tax', d._file, d._row
FROM persons p JOIN dept_tax d ON d.person_id = p.person_id
WHERE d."实缴税额" > 0
  AND coalesce(d."所属期起", d."所属期止") <= {_YEAR_END}
  AND coalesce(d."所属期止", d."所属期起") >= {_YEAR_START}"""

# Contributions overlap the income year; an empty end month means still contributing (up to the
# reference date); a record that says it counts 0 months is no contribution.
_D1 = f"""
SELECT p.hh_key, 'D1', '{DOUBTS["D1"]}', p.person_id,
       d."险种" || '缴费' || coalesce({_month('d."缴费起始年月"')}, '') || '至'
         || coalesce({_month('d."缴费终止年月"')}, '今')
         || coalesce('（累计' || d."累计缴费月数" || '个月）', '') || '；调查：'
         || concat_ws('，', CASE WHEN p.work_status = '{NOT_WORKING}' THEN '本人{NOT_WORKING}' END,
                          CASE WHEN hh.no_wage THEN '户工资性收入为0' END),
       'hrss', d._file, d._row
FROM persons p
JOIN dept_hrss d ON d.person_id = p.person_id
JOIN (SELECT hh_key, bool_or(wage_income = 0) AS no_wage FROM households
      WHERE hh_key IS NOT NULL GROUP BY hh_key) hh ON hh.hh_key = p.hh_key
WHERE d."险种" = '{EMPLOYEE_PENSION}'
  AND coalesce(d."缴费起始年月", d."缴费终止年月") <= {_YEAR_END}
  AND coalesce(d."缴费终止年月", {{ref_date}}) >= {_YEAR_START}
  AND coalesce(d."累计缴费月数", 1) > 0
  AND (p.work_status = '{NOT_WORKING}' OR hh.no_wage)"""

_SERIOUS = " OR ".join(f"contains(coalesce(p.health, ''), '{s}')" for s in SERIOUS_HEALTH)
_SERIOUS_TEXT = "concat_ws('、', " + ", ".join(
    f"CASE WHEN contains(coalesce(p.health, ''), '{s}') THEN '{s}' END" for s in SERIOUS_HEALTH) + ")"

_D2 = f"""
SELECT p.hh_key, 'D2', '{DOUBTS["D2"]}', p.person_id,
       '调查：' || {_SERIOUS_TEXT} || '；医保局无慢特病或大病认定记录',
       'medical', NULL, NULL
FROM persons p
WHERE ({_SERIOUS})
  AND NOT EXISTS (SELECT 1 FROM dept_medical d WHERE d.person_id = p.person_id)
UNION ALL
SELECT h.hh_key, 'D2', '{DOUBTS["D2"]}', NULL,
       '主要致贫原因：{CAUSE_ILLNESS}；医保局无该户任何成员的认定记录',
       'medical', NULL, NULL
FROM households h
WHERE h.hh_key IS NOT NULL AND h.main_cause = '{CAUSE_ILLNESS}'
  AND NOT EXISTS (SELECT 1 FROM persons p JOIN dept_medical d ON d.person_id = p.person_id
                  WHERE p.hh_key = h.hh_key)"""

# 残联 writes 类别 as 肢体 or 肢体残疾, 等级 as 三级, 3级 or 3: compared in the survey's words.
_GRADE_WORDS = {"1": "一", "2": "二", "3": "三", "4": "四", "壹": "一", "贰": "二", "叁": "三", "肆": "四"}


def _norm_grade(col: str) -> str:
    core = f"regexp_replace(trim({col}), '级$', '')"
    cases = " ".join(f"WHEN '{k}' THEN '{v}级'" for k, v in _GRADE_WORDS.items())
    return f"CASE {core} {cases} WHEN '' THEN NULL ELSE {core} || '级' END"


def _norm_type(col: str) -> str:
    return f"nullif(regexp_replace(trim({col}), '(残疾|残)$', ''), '')"


_DISABILITY = f"""
disability AS (
    SELECT person_id, {_norm_type('"残疾类别"')} AS dtype, {_norm_grade('"残疾等级"')} AS dgrade,
           "证件状态" = '{CERTIFICATE_VALID}' AS valid, "证件状态" AS state, _file, _row
    FROM dept_disability WHERE person_id IS NOT NULL
)"""

# Valid records differ when none agrees with the survey on 类别 and 等级 (a side left empty
# cannot disagree).
_D3 = f"""
SELECT p.hh_key, 'D3', '{DOUBTS["D3"]}', p.person_id,
       '调查：持证残疾' || coalesce('（' || p.disability_type || coalesce(p.disability_grade, '') || '）', '')
         || '；残联' || coalesce(
              (SELECT '证件' || string_agg(DISTINCT coalesce(x.state, '状态未填'), '、') || '，无有效持证记录'
               FROM disability x WHERE x.person_id = p.person_id),
              '无持证记录'),
       'disability', NULL, NULL
FROM persons p
WHERE p.disabled_cert = '{YES}'
  AND NOT EXISTS (SELECT 1 FROM disability d WHERE d.person_id = p.person_id AND d.valid)
UNION ALL
SELECT p.hh_key, 'D3', '{DOUBTS["D3"]}', p.person_id,
       '调查：' || coalesce(p.disability_type, '类别未填') || coalesce(p.disability_grade, '等级未填')
         || '；残联有效证：'
         || (SELECT string_agg(DISTINCT coalesce(d.dtype, '类别未填') || coalesce(d.dgrade, '等级未填'), '、')
             FROM disability d WHERE d.person_id = p.person_id AND d.valid),
       'disability',
       (SELECT min(d._file) FROM disability d WHERE d.person_id = p.person_id AND d.valid),
       (SELECT min(d._row) FROM disability d WHERE d.person_id = p.person_id AND d.valid)
FROM persons p
WHERE p.disabled_cert = '{YES}'
  AND EXISTS (SELECT 1 FROM disability d WHERE d.person_id = p.person_id AND d.valid)
  AND NOT EXISTS (SELECT 1 FROM disability d WHERE d.person_id = p.person_id AND d.valid
                  AND (p.disability_type IS NULL OR d.dtype IS NULL OR d.dtype = p.disability_type)
                  AND (p.disability_grade IS NULL OR d.dgrade IS NULL OR d.dgrade = p.disability_grade))"""

_ENROLLED = f"""
enrolled AS (SELECT * FROM dept_education WHERE "学籍状态" = '{ENROLLED}' AND person_id IS NOT NULL)"""

_D4 = f"""
SELECT p.hh_key, 'D4', '{DOUBTS["D4"]}', p.person_id,
       '调查：在校（' || p.school_status || '）；教育局无在读学籍'
         || coalesce((SELECT '（学籍：' || string_agg(DISTINCT coalesce(e."学段", '') || coalesce(e."学籍状态", ''), '、')
                      || '）' FROM dept_education e WHERE e.person_id = p.person_id), ''),
       'education', NULL, NULL
FROM persons p
WHERE p.school_status IS NOT NULL AND p.school_status NOT IN {_in(NOT_IN_SCHOOL)}
  AND NOT EXISTS (SELECT 1 FROM enrolled e WHERE e.person_id = p.person_id)
UNION ALL
SELECT p.hh_key, 'D4', '{DOUBTS["D4"]}', p.person_id,
       '教育局：' || coalesce(e."学段", '') || coalesce(e."年级", '') || '{ENROLLED}；调查：{NOT_A_STUDENT}',
       'education', e._file, e._row
FROM persons p JOIN enrolled e ON e.person_id = p.person_id
WHERE p.school_status = '{NOT_A_STUDENT}'
UNION ALL
SELECT h.hh_key, 'D4', '{DOUBTS["D4"]}', NULL,
       '主要致贫原因：{CAUSE_SCHOOLING}；教育局无该户任何成员的在读学籍',
       'education', NULL, NULL
FROM households h
WHERE h.hh_key IS NOT NULL AND h.main_cause = '{CAUSE_SCHOOLING}'
  AND NOT EXISTS (SELECT 1 FROM persons p JOIN enrolled e ON e.person_id = p.person_id
                  WHERE p.hh_key = h.hh_key)"""

# Exact: with r = 复核家庭年纯收入, k = 复核家庭人口, n = 家庭年纯收入, s = 家庭人口 (all > 0 sizes),
# |r/k − n/s| > t·|n/s|  ⇔  |r·s − n·k| > t·|n|·k, and "r/k < line" ⇔ "r < line·k".
_D5 = f"""
SELECT h.hh_key, 'D5', '{DOUBTS["D5"]}', r.person_id,
       '复核：家庭年纯收入' || {_money('r."复核家庭年纯收入"')} || '元，' || r."复核家庭人口" || '人，人均'
         || {_per_capita('r."复核家庭年纯收入"', 'r."复核家庭人口"')} || '元'
         || coalesce('（' || r."复核单位" || coalesce('，' || {_day('r."复核日期"')}, '') || '）', '')
         || '；调查：人均' || CAST(i.per_capita AS VARCHAR) || '元'
         || CASE WHEN (r."复核家庭年纯收入" < {{monitoring_line}} * r."复核家庭人口")
                      <> (i.net_income < {{monitoring_line}} * i.size)
                 THEN '；分处' || CAST({{monitoring_line}} AS VARCHAR) || '元线两侧' ELSE '' END,
       'income_recheck', r._file, r._row
FROM dept_income_recheck r
JOIN households h ON h.head_id = r.person_id AND h.hh_key IS NOT NULL
JOIN household_income i ON i.hh_uid = h.hh_uid
WHERE r.person_id IS NOT NULL AND r."复核家庭人口" > 0 AND r."复核家庭年纯收入" IS NOT NULL AND i.size > 0
  AND (abs(r."复核家庭年纯收入" * i.size - i.net_income * r."复核家庭人口")
         > {{recheck_tolerance}} * abs(i.net_income) * r."复核家庭人口"
       OR (r."复核家庭年纯收入" < {{monitoring_line}} * r."复核家庭人口")
          <> (i.net_income < {{monitoring_line}} * i.size))"""

RULES_SQL = {"X1": _X1, "X2": _X2, "X3": _X3, "X4": _X4, "D1": _D1, "D2": _D2, "D3": _D3, "D4": _D4, "D5": _D5}


@dataclass(frozen=True)
class FindingsPlan:
    sql: str
    checked: tuple[str, ...]  # rule codes run
    skipped: dict[str, tuple[str, ...]]  # rule code -> departments that have not answered


def findings_plan(answered: Iterable[str]) -> FindingsPlan:
    """The SQL that builds ``household_findings`` from the rules whose departments answered."""
    answered = set(answered)
    run = [code for code, depts in RULE_DEPARTMENTS.items() if set(depts) <= answered]
    skipped = {code: tuple(d for d in depts if d not in answered)
               for code, depts in RULE_DEPARTMENTS.items() if code not in run}
    columns = ", ".join(f"{c}" for c in FINDING_COLUMNS)
    body = "\nUNION ALL\n".join(RULES_SQL[code] for code in run)
    if not body:
        body = "SELECT " + ", ".join(["NULL"] * len(FINDING_COLUMNS)) + " WHERE false"
    sql = f"""
CREATE OR REPLACE TABLE household_findings AS
WITH {_PERSONS}, {_DISABILITY}, {_ENROLLED},
found ({columns}) AS (
{body}
)
SELECT DISTINCT CAST(hh_key AS VARCHAR) AS hh_key, CAST(code AS VARCHAR) AS code,
       CAST(finding AS VARCHAR) AS finding, CAST(person_id AS VARCHAR) AS person_id,
       CAST(evidence AS VARCHAR) AS evidence, CAST(department AS VARCHAR) AS department,
       CAST(source_file AS VARCHAR) AS source_file, CAST(source_row AS BIGINT) AS source_row
FROM found
WHERE hh_key IS NOT NULL
ORDER BY hh_key, code, person_id, source_file, source_row;
"""
    return FindingsPlan(sql, tuple(run), skipped)


def findings_sql(answered: Iterable[str] = tuple(d.key for d in DEPARTMENTS)) -> str:
    return findings_plan(answered).sql


# --------------------------------------------------------------------------------------------
# 核查比对结果表 (outputs.md)
# --------------------------------------------------------------------------------------------

RESULT_FILENAME = "核查比对结果表.xlsx"
RESULT_TITLE = "{year}年脱贫质量“回头看”部门核查比对结果表"
FINDING_LABELS = {code: f"{code} {name}" for code, name in FINDINGS.items()}
RESULT_COLUMNS = ("序号", "办事处", "村", "户主姓名", "户主身份证号", "户状态", "年人均纯收入",
                  *FINDING_LABELS.values(), "结论")
CONCLUSION_NOT_EXITED = "未列入：建档立卡未脱贫户，不属附件2/附件3范围"
CONCLUSION_NOT_MEETING_PREFIX, CONCLUSION_NOT_MEETING_SUFFIX = "未列入：年人均纯收入不低于", "元且两不愁三保障无问题"


def result_table_sql() -> str:
    """One row per household a cross-check touched, or that met the income/三保障 condition of
    附件2/3 and was left out, with each finding's evidence in its own column and the 结论.

    ``classification.conclusion`` gives the 结论 of every household that met the condition; a
    household only touched by a finding gets why it is in neither table."""
    per_code = ",\n       ".join(
        f"string_agg(evidence, '；' ORDER BY evidence) FILTER (WHERE code = '{code}') AS \"{label}\""
        for code, label in FINDING_LABELS.items())
    labels = ", ".join(f'f."{label}"' for label in FINDING_LABELS.values())
    return f"""
WITH f AS (
    SELECT hh_key,
       {per_code}
    FROM household_findings GROUP BY hh_key
)
SELECT h.subdistrict_name AS "办事处", h.village_name AS "村", h.head_name AS "户主姓名",
       h.head_id AS "户主身份证号",
       {status_text_sql('c.status_type', 's.registry_status')} AS "户状态",
       c.per_capita AS "年人均纯收入",
       {labels},
       coalesce(c.conclusion,
                CASE WHEN c.blocked THEN '数据问题待核实'
                     WHEN c.status_type = '{HH_REGISTERED}' AND NOT coalesce(c.exited, false)
                          THEN '{CONCLUSION_NOT_EXITED}'
                     ELSE '{CONCLUSION_NOT_MEETING_PREFIX}' || CAST({{monitoring_line}} AS VARCHAR)
                          || '{CONCLUSION_NOT_MEETING_SUFFIX}'
                END) AS "结论",
       h.hh_key AS _household
FROM classification c
JOIN households h ON h.hh_uid = c.hh_uid
LEFT JOIN household_status s ON s.hh_key = h.hh_key
LEFT JOIN f ON f.hh_key = h.hh_key
WHERE f.hh_key IS NOT NULL
   OR (c.conclusion IS NOT NULL AND c.conclusion NOT IN ('列入附件2', '列入附件3'))
ORDER BY h.subdistrict_code, h.village_code, h.file, h.row
"""
