"""Data-quality problems that need more than one row (rules.md B3–B5, B9, B10, W1–W9; B11), in SQL.

Each query returns rows with the problem's place (village, file, sheet, Excel row, column), the
raw value and its kind (masked in Python before it is stored), a message and an anchor that keeps
the problem id stable (``HH_ANCHOR``/``MEMBER_ANCHOR``: the same anchors ``rules.clean`` gives
cell-level problems — an ID, else the household and name, never a row number). ``hh_key`` names
the household a blocking problem holds back (write–audit–publish, ``rules.classification``).
Cell-level problems (B1, B2, B6–B8) come from ``pipeline.rules.clean``.
"""

from __future__ import annotations

import pandas as pd

from pipeline.privacy import mask_id, mask_name
from pipeline.rules.problems import (
    ACCEPTED,
    BLOCKING,
    MAX_AGE,
    OPEN,
    PROBLEM_COLUMNS,
    RULES,
    SCHOOL_AGE_RANGES,
    assign_problem_ids,
)
from pipeline.schema import HEAD, HH_REGISTERED, SHEET_HOUSEHOLDS, SHEET_MEMBERS, STATUS_REMOVED

H, M = SHEET_HOUSEHOLDS, SHEET_MEMBERS


def _link(alias: str) -> str:
    """The household link inside hh_key (``<村代码>|<link>``): the head's ID, or ``raw:<as typed>``."""
    return f"substr({alias}.hh_key, length({alias}.village_code) + 2)"


def _mask_name_sql(expr: str) -> str:
    """``mask_name`` in SQL: 张三 -> 张*."""
    return f"coalesce(left({expr}, 1) || repeat('*', greatest(1, length({expr}) - 1)), '')"


def _mask_id_sql(expr: str) -> str:
    """``mask_id`` in SQL: 210505********123X."""
    return f"(left({expr}, 6) || repeat('*', greatest(0, length({expr}) - 10)) || right({expr}, 4))"


HH_ANCHOR = f"coalesce({_link('h')}, 'name:' || coalesce(h.head_name, ''))"
MEMBER_ANCHOR = f"coalesce(m.person_id, 'hh:' || coalesce({_link('m')}, '') || '|name:' || coalesce(m.name, ''))"

_SCHOOL_AGE = " OR ".join(
    f"(m.school_status = '{status}' AND m.age NOT BETWEEN {low} AND {high})"
    for status, (low, high) in SCHOOL_AGE_RANGES.items()
)
_SCHOOL_RANGE_TEXT = "CASE m.school_status " + " ".join(
    f"WHEN '{status}' THEN '{low}–{high}岁'" for status, (low, high) in SCHOOL_AGE_RANGES.items()) + " END"

# Where another row of a person is, in words the village understands (B3).
_PLACE = ("CASE WHEN b.village_code = a.village_code THEN '本村调查表第' || b.row || '行'"
          " || CASE WHEN b.hh_key = a.hh_key THEN '（同一户重复填写）' ELSE '' END"
          " ELSE coalesce(v.subdistrict_name || v.village_name, b.village_code) || '调查表第' || b.row || '行' END")

# Survey files that could not be read, each with the village it belongs to: the 村代码 read from its
# row 2 when that much could be read, else the one roster village whose name is in the file's path
# (the longest such name; none when two villages' names fit equally). Such a village has submitted:
# it gets B11 on the file, never B10 "未报送". A file that is not a workbook at all (a scanned PDF)
# counts only when it is all the village sent.
UNREADABLE_FILES_SQL = """
    SELECT f.file, f.mtime, f.reason, coalesce(f.village_code, g.village_code) AS village_code,
           f.village_code IS NULL AND g.village_code IS NOT NULL AS by_name, f.status = '不是调查表文件' AS other
    FROM survey_files f LEFT JOIN (
        SELECT file, any_value(village_code) AS village_code FROM (
            SELECT f.file, v.village_code, length(v.village_name) AS n,
                   max(length(v.village_name)) OVER (PARTITION BY f.file) AS best
            FROM survey_files f JOIN villages v
              ON length(coalesce(v.village_name, '')) > 0 AND strpos(f.file, v.village_name) > 0
            WHERE f.status IN ('无法读取', '不是调查表文件') AND f.village_code IS NULL)
        WHERE n = best GROUP BY file HAVING count(*) = 1) g USING (file)
    WHERE f.status IN ('无法读取', '不是调查表文件')"""

# rule -> SELECT with columns: village_code, file, sheet, row, column, raw_value, value_kind,
#         message, anchor, hh_key
RELATIONAL_SQL: dict[str, str] = {
    # The same person twice: in two households, twice in one household, or in two villages'
    # latest files (members only holds each village's latest file). A head ID heading two rows of
    # 家庭基本情况 is the same mistake on the household sheet.
    "B3": f"""
        WITH p AS (SELECT member_uid, village_code, file, row, person_id, hh_key FROM members
                   WHERE person_id IS NOT NULL),
        dup AS (SELECT person_id FROM p GROUP BY person_id HAVING count(*) > 1)
        SELECT a.village_code, a.file, '{M}', a.row, '身份证号', a.person_id, 'id',
               '同一身份证号还出现在' || string_agg({_PLACE}, '、' ORDER BY b.village_code, b.row),
               a.person_id, a.hh_key
        FROM p a JOIN dup USING (person_id)
        JOIN p b ON b.person_id = a.person_id AND b.member_uid <> a.member_uid
        LEFT JOIN villages v ON v.village_code = b.village_code
        GROUP BY a.village_code, a.file, a.row, a.person_id, a.hh_key
        UNION ALL
        SELECT a.village_code, a.file, '{H}', a.row, '户主身份证号', a.head_id, 'id',
               '同一户主身份证号还出现在' || string_agg(
                   CASE WHEN b.village_code = a.village_code THEN '本村家庭基本情况表第' || b.row || '行'
                        ELSE coalesce(v.subdistrict_name || v.village_name, b.village_code)
                             || '家庭基本情况表第' || b.row || '行' END, '、' ORDER BY b.village_code, b.row),
               a.head_id, a.hh_key
        FROM households a JOIN households b ON b.head_id = a.head_id AND b.hh_uid <> a.hh_uid
        LEFT JOIN villages v ON v.village_code = b.village_code
        WHERE a.head_id IS NOT NULL
        GROUP BY a.village_code, a.file, a.row, a.head_id, a.hh_key""",
    "B4": f"""
        SELECT h.village_code, h.file, '{H}', h.row, '户主身份证号', h.head_id, 'id',
               '家庭成员情况表中没有该户的成员', {HH_ANCHOR}, h.hh_key
        FROM households h WHERE h.hh_key IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM members m WHERE m.hh_key = h.hh_key)
        UNION ALL
        SELECT m.village_code, m.file, '{M}', m.row, '户主身份证号', m.head_id, 'id',
               CASE WHEN m.hh_key IS NULL THEN '没有填写户主身份证号，无法对应到户'
                    ELSE '该成员的户主身份证号在家庭基本情况表中找不到' END,
               {MEMBER_ANCHOR}, NULL
        FROM members m WHERE m.hh_key IS NULL
           OR NOT EXISTS (SELECT 1 FROM households h WHERE h.hh_key = m.hh_key)""",
    # B5 points where the fix is: an extra 户主 row in 家庭成员情况 (the ones who are not the
    # household's head; when none is, all but the first), or the household row when it has no 户主
    # or its 户主's ID differs from 户主身份证号.
    "B5": f"""
        WITH heads AS (
            SELECT hh_key, count(*) FILTER (WHERE relation = '{HEAD}') AS n_heads,
                   any_value(person_id) FILTER (WHERE relation = '{HEAD}') AS head_person
            FROM members WHERE hh_key IS NOT NULL GROUP BY hh_key),
        extra AS (
            SELECT m.*, x.n_heads,
                   row_number() OVER (PARTITION BY m.hh_key
                                      ORDER BY coalesce(m.person_id = {_link('m')}, false) DESC, m.row) AS k
            FROM members m JOIN heads x USING (hh_key) WHERE x.n_heads > 1 AND m.relation = '{HEAD}')
        SELECT m.village_code, m.file, '{M}', m.row, '与户主关系', m.relation, 'text',
               '该户在家庭成员情况表中有' || m.n_heads || '名户主（应为1名）', {MEMBER_ANCHOR}, m.hh_key
        FROM extra m WHERE m.k > 1
        UNION ALL
        SELECT h.village_code, h.file, '{H}', h.row, NULL, NULL, 'text',
               '家庭成员情况表中该户没有与户主关系为“户主”的成员', {HH_ANCHOR}, h.hh_key
        FROM households h JOIN heads x USING (hh_key)
        WHERE x.n_heads = 0
        UNION ALL
        SELECT h.village_code, h.file, '{H}', h.row, '户主身份证号', h.head_id, 'id',
               '家庭成员情况表中户主本人的身份证号与户主身份证号不一致', {HH_ANCHOR}, h.hh_key
        FROM households h JOIN heads x USING (hh_key)
        WHERE x.n_heads = 1 AND h.head_id IS NOT NULL AND x.head_person IS NOT NULL
          AND x.head_person <> h.head_id""",
    # 漏户: a registered household (any member not 清退) none of whose members is in any survey,
    # in a village that has submitted (a village that has not is one B10, not a B9 per household);
    # it has no place in the village's file, the message names its 户编号. 漏人: a registered member
    # (not 清退) found in no survey while their household was surveyed; it points at that
    # household's row. Names and IDs in messages are masked here, in SQL.
    "B9": f"""
        WITH submitted AS (SELECT DISTINCT village_code FROM households),
        reg AS (SELECT r.*, m.hh_key AS surveyed_hh
                FROM registry r LEFT JOIN members m ON m.person_id = r.person_id
                WHERE r.status <> '{STATUS_REMOVED}' AND r.person_id IS NOT NULL AND r.hh_no IS NOT NULL),
        hh AS (SELECT hh_no, any_value(village_code) AS village_code,
                      any_value(head_name) FILTER (WHERE head_name IS NOT NULL) AS head_name,
                      any_value(surveyed_hh) FILTER (WHERE surveyed_hh IS NOT NULL) AS surveyed_hh
               FROM reg GROUP BY hh_no),
        place AS (SELECT hh_key, any_value(village_code) AS village_code, min(file) AS file, min("row") AS row
                  FROM households GROUP BY hh_key)
        SELECT hh.village_code, NULL, NULL, NULL, NULL, hh.head_name, 'name',
               '建档立卡户（户编号' || hh.hh_no || '，户主' || {_mask_name_sql('hh.head_name')}
               || '）未入户调查（漏户）', 'hh:' || hh.hh_no, NULL
        FROM hh WHERE hh.surveyed_hh IS NULL AND hh.village_code IN (SELECT village_code FROM submitted)
        UNION ALL
        SELECT p.village_code, p.file, '{H}', p.row, NULL, r.name, 'name',
               '建档立卡成员' || {_mask_name_sql('r.name')} || '（' || {_mask_id_sql('r.person_id')}
               || '，户编号' || r.hh_no || '）没有列入本户的家庭成员情况表（漏人）', 'person:' || r.person_id, hh.surveyed_hh
        FROM reg r JOIN hh USING (hh_no) JOIN place p ON p.hh_key = hh.surveyed_hh
        WHERE r.surveyed_hh IS NULL""",
    "B10": f"""
        SELECT v.village_code, NULL, NULL, NULL, NULL, v.village_name, 'text',
               v.subdistrict_name || v.village_name || '（涉农村）没有报送入户调查表', 'village:' || v.village_code, NULL
        FROM villages v WHERE v.farming
          AND v.village_code NOT IN (SELECT village_code FROM survey_files WHERE village_code IS NOT NULL
                                     AND status = '已读取')
          AND v.village_code NOT IN (SELECT village_code FROM ({UNREADABLE_FILES_SQL}) WHERE village_code IS NOT NULL)""",
    # A file that cannot be read, when it is the village's only file or newer than the file in use
    # (a correction that was lost); a file no village can be found for is the district's problem.
    "B11": f"""
        WITH u AS ({UNREADABLE_FILES_SQL}),
        used AS (SELECT village_code, max(mtime) AS mtime, arg_max(file, mtime) AS file FROM survey_files
                 WHERE status = '已读取' GROUP BY village_code)
        SELECT u.village_code, u.file, NULL, NULL, NULL, NULL, 'text',
               '报送的文件无法读取：' || u.reason || '（文件 ' || u.file || '）'
               || CASE WHEN u.by_name THEN '；按文件名判断为本村的文件' ELSE '' END
               || CASE WHEN r.file IS NOT NULL THEN '；目前使用的是较早报送的 ' || r.file ELSE '' END,
               'file:' || u.file, NULL
        FROM u LEFT JOIN used r USING (village_code)
        WHERE CASE WHEN u.other THEN r.mtime IS NULL AND u.village_code IS NOT NULL  -- a PDF beside a workbook is fine
                   ELSE r.mtime IS NULL OR u.mtime > r.mtime END""",
    "W1": f"""
        SELECT h.village_code, h.file, '{H}', h.row, '家庭人口', CAST(h.declared_size AS VARCHAR), 'text',
               '申报家庭人口' || h.declared_size || '人，家庭成员情况表有' || i.size || '人', {HH_ANCHOR}, h.hh_key
        FROM households h JOIN household_income i USING (hh_uid)
        WHERE h.declared_size IS NOT NULL AND h.declared_size <> i.size""",
    "W2": f"""
        SELECT m.village_code, m.file, '{M}', m.row, '性别', m.sex, 'text',
               '性别填“' || m.sex || '”，身份证号显示为“' || m.id_sex || '”', {MEMBER_ANCHOR}, m.hh_key
        FROM members m WHERE m.sex IS NOT NULL AND m.id_sex IS NOT NULL AND m.sex <> m.id_sex""",
    "W3": f"""
        SELECT m.village_code, m.file, '{M}', m.row, '在校生状况', m.school_status, 'text',
               '按身份证号年龄' || m.age || '岁，与在校生状况“' || m.school_status || '”（' || {_SCHOOL_RANGE_TEXT}
               || '）不符', {MEMBER_ANCHOR}, m.hh_key
        FROM members m WHERE m.age IS NOT NULL AND ({_SCHOOL_AGE})""",
    "W4": f"""
        SELECT h.village_code, h.file, '{H}', h.row, '转移性收入合计', CAST(h.transfer_total AS VARCHAR), 'text',
               '转移性收入合计' || h.transfer_total || '元，分项之和' || i.transfer_sub_sum || '元',
               {HH_ANCHOR}, h.hh_key
        FROM households h JOIN household_income i USING (hh_uid)
        WHERE i.transfer_sub_sum <> 0 AND abs(h.transfer_total - i.transfer_sub_sum) > 1""",
    "W5": f"""
        SELECT h.village_code, h.file, '{H}', h.row, '户类型', h.hh_type, 'text',
               '调查表填“' || h.hh_type || '”，建档立卡系统为“' || s.status_type || '”', {HH_ANCHOR}, h.hh_key
        FROM households h JOIN household_status s USING (hh_key)
        WHERE h.hh_type IS NOT NULL AND h.hh_type <> s.status_type
        UNION ALL
        SELECT h.village_code, h.file, '{H}', h.row, '脱贫状态', h.exit_status, 'text',
               '调查表填“' || h.exit_status || '”，建档立卡系统为“' || s.registry_status || '”', {HH_ANCHOR}, h.hh_key
        FROM households h JOIN household_status s USING (hh_key)
        WHERE s.status_type = '{HH_REGISTERED}' AND h.exit_status IS NOT NULL
          AND h.exit_status IS DISTINCT FROM s.registry_status""",
    # 算账式脱贫: per village and line, households just above ([line, line+band)) outnumber those
    # just below ([line-band, line)) more than ratio to one, with at least min_above above; every
    # household just above is flagged. Exact: per capita >= line  <=>  net income >= line × size.
    "W6": """
        WITH lines(line) AS (VALUES ({identification_line}), ({monitoring_line})),
        hh AS (SELECT h.*, i.size, i.per_capita, l.line,
                      i.size > 0 AND i.net_income >= l.line * i.size
                                 AND i.net_income < (l.line + {bunching_band}) * i.size AS above,
                      i.size > 0 AND i.net_income >= (l.line - {bunching_band}) * i.size
                                 AND i.net_income < l.line * i.size AS below
               FROM households h JOIN household_income i USING (hh_uid) CROSS JOIN lines l),
        v AS (SELECT village_code, line, count(*) FILTER (WHERE above) AS n_above,
                     count(*) FILTER (WHERE below) AS n_below
              FROM hh GROUP BY village_code, line
              HAVING count(*) FILTER (WHERE above) >= {bunching_min_above}
                 AND count(*) FILTER (WHERE above) > {bunching_ratio} * count(*) FILTER (WHERE below))
        SELECT h.village_code, h.file, '家庭基本情况', h.row, '年人均纯收入', CAST(h.per_capita AS VARCHAR), 'text',
               '本村年人均纯收入在' || CAST(v.line AS INTEGER) || '–' || CAST(v.line + {bunching_band} AS INTEGER)
               || '元（刚过' || CAST(v.line AS INTEGER) || '元线）的有' || v.n_above || '户，在'
               || CAST(v.line - {bunching_band} AS INTEGER) || '–' || CAST(v.line AS INTEGER) || '元的只有'
               || v.n_below || '户', """
    + f"{HH_ANCHOR} || '@' || CAST(v.line AS INTEGER), h.hh_key" + """
        FROM hh h JOIN v USING (village_code, line) WHERE h.above""",
    "W7": f"""
        SELECT m.village_code, m.file, '{M}', m.row, '身份证号', m.person_id, 'id',
               CASE WHEN m.birth_date > {{ref_date}} THEN '身份证号的出生日期晚于参照日期'
                    ELSE '按身份证号年龄' || m.age || '岁，超过{MAX_AGE}岁' END,
               {MEMBER_ANCHOR}, m.hh_key
        FROM members m WHERE m.birth_date > {{ref_date}} OR m.age > {MAX_AGE}""",
    "W8": f"""
        SELECT h.village_code, h.file, '{H}', h.row, NULL, '0', 'text',
               '工资性、生产经营性、财产性、转移性收入均为0', {HH_ANCHOR}, h.hh_key
        FROM households h JOIN household_income i USING (hh_uid)
        WHERE h.wage_income = 0 AND h.business_income = 0 AND h.property_income = 0 AND i.transfer_used = 0""",
    "W9": f"""
        SELECT h.village_code, h.file, '{H}', h.row, '联系电话', h.phone, 'phone',
               '联系电话不是11位手机号，也不是固定电话', {HH_ANCHOR}, h.hh_key
        FROM households h WHERE h.phone IS NOT NULL AND NOT ({{phone_ok}})""",
}

# A mobile number, or a fixed line: area code 0xx(x) and a 7–8 digit number, or the local number
# alone; separators - and spaces are ignored (W9). Used by the GE suite too.
PHONE_OK_SQL = ("regexp_full_match(regexp_replace(h.phone, '[-—– ()（）]', '', 'g'), "
                "'1[3-9][0-9]{9}|0[1-9][0-9]{8,10}|[2-9][0-9]{6,7}')")


def _mask_phone(value: object) -> str:
    text = "" if value is None else str(value)
    return text[:3] + "*" * max(0, len(text) - 3)


_VALUE_MASKS = {
    "id": lambda v: mask_id(v) if v is not None else "",
    "name": lambda v: mask_name(v) if v is not None else "",
    "phone": _mask_phone,
    "text": lambda v: "" if v is None else str(v)[:40],
}
_SQL_COLUMNS = ["village_code", "file", "sheet", "row", "column", "raw_value", "value_kind", "message", "anchor", "hh_key"]


def relational_sql(rule: str, settings) -> str:
    from pipeline.rules.sqlutil import literals

    return RELATIONAL_SQL[rule].format(**literals(settings), phone_ok=PHONE_OK_SQL)


def relational_problems(con, settings) -> pd.DataFrame:
    frames = []
    for rule in RELATIONAL_SQL:
        frame = con.execute(relational_sql(rule, settings)).df()
        frame.columns = _SQL_COLUMNS
        frame["rule"] = rule
        frames.append(frame)
    return finish_problems(pd.concat(frames, ignore_index=True))


def _blank(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def finish_problems(frame: pd.DataFrame) -> pd.DataFrame:
    """Mask values, attach severity and suggestion (problem ids come later, for all problems at once)."""
    frame = frame.copy()
    if "raw_value" in frame:
        frame["value"] = [_VALUE_MASKS[k](None if _blank(v) else v)
                          for k, v in zip(frame["value_kind"], frame["raw_value"])]
    frame["anchor"] = frame["anchor"].astype(str)
    frame["severity"] = frame["rule"].map(lambda r: RULES[r].severity)
    frame["suggestion"] = frame["rule"].map(lambda r: RULES[r].suggestion)
    frame["problem_id"] = None
    frame["row"] = pd.to_numeric(frame["row"], errors="coerce").astype("Int64")
    return frame[list(PROBLEM_COLUMNS)]


def all_problems(cells: pd.DataFrame, relational: pd.DataFrame) -> pd.DataFrame:
    """Cell-level and relational problems together, each with its stable id, in list order."""
    frame = pd.concat([cells[list(PROBLEM_COLUMNS)], relational[list(PROBLEM_COLUMNS)]], ignore_index=True)
    frame["row"] = pd.to_numeric(frame["row"], errors="coerce").astype("Int64")
    frame = assign_problem_ids(frame.reset_index(drop=True))
    rule_order = {code: i for i, code in enumerate(RULES)}
    frame = frame.assign(_order=frame["rule"].map(rule_order))
    frame = frame.sort_values(["village_code", "_order", "sheet", "row", "column"], na_position="first", kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)


OPEN_PROBLEMS_SQL = f"""
CREATE OR REPLACE TABLE open_problems AS
SELECT p.*, e.problem_id IS NOT NULL AS accepted,
       p.severity = '{BLOCKING}' AND e.problem_id IS NULL AS blocking,
       CASE WHEN e.problem_id IS NULL THEN '{OPEN}' ELSE '{ACCEPTED}' END AS state,
       e.conclusion AS accepted_conclusion, e.checked_by AS accepted_by, e.checked_on AS accepted_on
FROM problems p LEFT JOIN exceptions e USING (problem_id);
"""

# Coverage (不落一户，不落一人): per village, the surveyed households and persons, and how many of
# the registered households and persons (not 清退) the latest surveys found (B9 lists the rest).
COVERAGE_SQL = f"""
WITH reg AS (
    SELECT r.village_code, r.hh_no, r.person_id, m.person_id IS NOT NULL AS found
    FROM registry r LEFT JOIN (SELECT DISTINCT person_id FROM members WHERE person_id IS NOT NULL) m USING (person_id)
    WHERE r.status <> '{STATUS_REMOVED}' AND r.person_id IS NOT NULL AND r.hh_no IS NOT NULL
), reg_hh AS (SELECT village_code, hh_no, bool_or(found) AS found FROM reg GROUP BY 1, 2),
reg_p AS (SELECT village_code, count(*) AS n, count(*) FILTER (WHERE found) AS found FROM reg GROUP BY 1),
reg_h AS (SELECT village_code, count(*) AS n, count(*) FILTER (WHERE found) AS found FROM reg_hh GROUP BY 1),
surveyed AS (SELECT village_code, count(*) AS n FROM households GROUP BY 1),
-- persons are counted one way everywhere (outputs.md): the member rows linked to a surveyed
-- household; a member whose household is not surveyed (B4) is a problem, counted nowhere
persons AS (SELECT village_code, count(*) AS n FROM members
            WHERE hh_key IN (SELECT hh_key FROM households) GROUP BY 1),
codes AS (SELECT village_code FROM villages WHERE farming UNION SELECT village_code FROM households
          UNION SELECT village_code FROM reg WHERE village_code IS NOT NULL)
SELECT c.village_code,
       coalesce(s.n, 0) AS surveyed_households, coalesce(p.n, 0) AS surveyed_persons,
       coalesce(h.n, 0) AS registered_households, coalesce(h.found, 0) AS registered_households_found,
       coalesce(r.n, 0) AS registered_persons, coalesce(r.found, 0) AS registered_persons_found
FROM codes c
LEFT JOIN surveyed s USING (village_code) LEFT JOIN persons p USING (village_code)
LEFT JOIN reg_h h USING (village_code) LEFT JOIN reg_p r USING (village_code)
ORDER BY c.village_code
"""
