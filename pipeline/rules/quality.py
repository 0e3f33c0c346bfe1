"""Data-quality problems that need more than one row (rules.md B3–B5, B9, B10, W1–W9), in SQL.

Each query returns rows with the problem's place (village, file, sheet, row, column), the raw
value and its kind (masked in Python before it is stored), a message and an anchor that keeps the
problem id stable. Cell-level problems (B1, B2, B6–B8) come from ``pipeline.rules.clean``.
"""

from __future__ import annotations

import pandas as pd

from pipeline.privacy import mask_id, mask_name
from pipeline.rules.problems import PROBLEM_COLUMNS, RULES, problem_id
from pipeline.schema import (
    EXITED_STATUSES,
    HEAD,
    HH_REGISTERED,
    SHEET_HOUSEHOLDS,
    SHEET_MEMBERS,
)

H, M = SHEET_HOUSEHOLDS, SHEET_MEMBERS
_REGISTRY_ACTIVE = "r.status <> '清退'"

# rule -> SELECT with columns: village_code, file, sheet, row, column, raw_value, value_kind,
#         message, anchor, hh_key
RELATIONAL_SQL: dict[str, str] = {
    "B3": f"""
        WITH dup AS (SELECT person_id FROM members WHERE person_id IS NOT NULL
                     GROUP BY person_id HAVING count(DISTINCT coalesce(hh_key, member_uid)) > 1)
        SELECT m.village_code, m.file, '{M}', m.row, '身份证号', m.person_id, 'id',
               '同一身份证号出现在' || (SELECT count(DISTINCT coalesce(hh_key, member_uid)) FROM members x
                                     WHERE x.person_id = m.person_id) || '户中', m.person_id, m.hh_key
        FROM members m JOIN dup USING (person_id)""",
    "B4": f"""
        SELECT h.village_code, h.file, '{H}', h.row, '户主身份证号', h.head_id, 'id',
               '家庭成员表中没有该户的成员', coalesce(h.head_id, h.hh_uid), h.hh_key
        FROM households h WHERE h.hh_key IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM members m WHERE m.hh_key = h.hh_key)
        UNION ALL
        SELECT m.village_code, m.file, '{M}', m.row, '户主身份证号', m.head_id, 'id',
               '该成员的户主身份证号在家庭基本情况表中找不到', coalesce(m.person_id, m.member_uid), NULL
        FROM members m WHERE m.hh_key IS NULL
           OR NOT EXISTS (SELECT 1 FROM households h WHERE h.hh_key = m.hh_key)""",
    "B5": f"""
        WITH heads AS (
            SELECT hh_key, count(*) FILTER (WHERE relation = '{HEAD}') AS n_heads,
                   bool_or(relation = '{HEAD}' AND person_id IS NOT NULL
                           AND person_id = split_part(hh_key, '|', 2)) AS head_matches
            FROM members WHERE hh_key IS NOT NULL GROUP BY hh_key)
        SELECT h.village_code, h.file, '{H}', h.row, '与户主关系', CAST(x.n_heads AS VARCHAR), 'text',
               CASE WHEN x.n_heads <> 1 THEN '该户有' || x.n_heads || '名户主（应为1名）'
                    ELSE '户主的身份证号与户主身份证号不一致' END,
               coalesce(h.head_id, h.hh_uid), h.hh_key
        FROM households h JOIN heads x USING (hh_key)
        WHERE x.n_heads <> 1 OR NOT coalesce(x.head_matches, false)""",
    "B9": f"""
        WITH surveyed_villages AS (SELECT DISTINCT village_code FROM households),
        reg AS (SELECT r.*, m.hh_key AS surveyed_hh FROM registry r
                LEFT JOIN members m ON m.person_id = r.person_id
                WHERE {_REGISTRY_ACTIVE} AND r.person_id IS NOT NULL),
        hh AS (SELECT hh_no, any_value(village_code) AS village_code, any_value(_file) AS file,
                      min(_row) AS row, any_value(head_name) AS head_name,
                      any_value(surveyed_hh) FILTER (WHERE surveyed_hh IS NOT NULL) AS surveyed_hh
               FROM reg GROUP BY hh_no)
        SELECT hh.village_code, hh.file, '建档立卡名册', hh.row, '户编号', hh.head_name, 'name',
               '建档立卡户未入户调查（漏户）', 'hh:' || hh.hh_no, NULL
        FROM hh WHERE hh.surveyed_hh IS NULL AND hh.village_code IN (SELECT village_code FROM surveyed_villages)
        UNION ALL
        SELECT r.village_code, r._file, '建档立卡名册', r._row, '姓名', r.name, 'name',
               '建档立卡成员不在已调查的户中（漏人）', 'person:' || r.person_id, hh.surveyed_hh
        FROM reg r JOIN hh USING (hh_no)
        WHERE r.surveyed_hh IS NULL AND hh.surveyed_hh IS NOT NULL""",
    "B10": """
        SELECT v.village_code, NULL, NULL, NULL, NULL, v.village_name, 'text',
               v.subdistrict_name || v.village_name || '（涉农村）没有报送入户调查表', 'village:' || v.village_code, NULL
        FROM villages v WHERE v.farming
          AND v.village_code NOT IN (SELECT village_code FROM survey_files WHERE village_code IS NOT NULL
                                     AND status = '已读取')""",
    "W1": f"""
        SELECT h.village_code, h.file, '{H}', h.row, '家庭人口', CAST(h.declared_size AS VARCHAR), 'text',
               '申报家庭人口' || h.declared_size || '人，成员表有' || i.size || '人', coalesce(h.head_id, h.hh_uid), h.hh_key
        FROM households h JOIN household_income i USING (hh_uid)
        WHERE h.declared_size IS NOT NULL AND i.size > 0 AND h.declared_size <> i.size""",
    "W2": f"""
        SELECT village_code, file, '{M}', row, '性别', sex, 'text', '性别为“' || sex || '”，身份证号显示为“' || id_sex || '”',
               person_id, hh_key
        FROM members WHERE sex IS NOT NULL AND id_sex IS NOT NULL AND sex <> id_sex""",
    "W3": f"""
        SELECT village_code, file, '{M}', row, '在校生状况', school_status, 'text',
               '年龄' || age || '岁，与在校生状况“' || school_status || '”不符', person_id, hh_key
        FROM members WHERE age IS NOT NULL AND (
             (school_status = '学前教育' AND age NOT BETWEEN 2 AND 7)
          OR (school_status = '小学' AND age NOT BETWEEN 5 AND 15)
          OR (school_status = '七至九年级' AND age NOT BETWEEN 11 AND 18)
          OR (school_status IN ('高中', '中职') AND age NOT BETWEEN 14 AND 21))""",
    "W4": f"""
        SELECT h.village_code, h.file, '{H}', h.row, '转移性收入合计', CAST(h.transfer_total AS VARCHAR), 'text',
               '合计' || h.transfer_total || '元，分项之和' || i.transfer_sub_sum || '元',
               coalesce(h.head_id, h.hh_uid), h.hh_key
        FROM households h JOIN household_income i USING (hh_uid)
        WHERE i.transfer_sub_sum <> 0 AND abs(h.transfer_total - i.transfer_sub_sum) > 1""",
    "W5": f"""
        SELECT h.village_code, h.file, '{H}', h.row,
               CASE WHEN h.hh_type IS DISTINCT FROM s.status_type THEN '户类型' ELSE '脱贫状态' END,
               CASE WHEN h.hh_type IS DISTINCT FROM s.status_type THEN h.hh_type ELSE h.exit_status END, 'text',
               CASE WHEN h.hh_type IS DISTINCT FROM s.status_type
                    THEN '调查表填“' || coalesce(h.hh_type, '空') || '”，建档立卡系统为“' || s.status_type || '”'
                    ELSE '调查表填“' || coalesce(h.exit_status, '空') || '”，建档立卡系统为“' || s.registry_status || '”' END,
               coalesce(h.head_id, h.hh_uid), h.hh_key
        FROM households h JOIN household_status s USING (hh_key)
        WHERE h.hh_type IS NOT NULL AND (h.hh_type IS DISTINCT FROM s.status_type
           OR (s.status_type = '{HH_REGISTERED}' AND h.exit_status IS NOT NULL
               AND h.exit_status IS DISTINCT FROM s.registry_status))""",
    "W6": """
        WITH lines(line) AS (VALUES ({identification_line}), ({monitoring_line})),
        hh AS (SELECT h.*, i.size, i.net_income, l.line,
                      i.size > 0 AND i.net_income >= l.line * i.size
                                 AND i.net_income < (l.line + {bunching_band}) * i.size AS above,
                      i.size > 0 AND i.net_income >= (l.line - {bunching_band}) * i.size
                                 AND i.net_income < l.line * i.size AS below
               FROM households h JOIN household_income i USING (hh_uid) CROSS JOIN lines l),
        v AS (SELECT village_code, line, count(*) FILTER (WHERE above) AS n_above,
                     count(*) FILTER (WHERE below) AS n_below
              FROM hh GROUP BY village_code, line
              HAVING n_above >= {bunching_min_above} AND n_above > {bunching_ratio} * n_below)
        SELECT hh.village_code, hh.file, '家庭基本情况', hh.row, '年人均纯收入', NULL, 'text',
               '本村年人均纯收入在' || CAST(v.line AS INTEGER) || '–' || CAST(v.line + {bunching_band} AS INTEGER)
               || '元的有' || v.n_above || '户，刚低于' || CAST(v.line AS INTEGER) || '元的只有' || v.n_below || '户',
               coalesce(hh.head_id, hh.hh_uid) || '@' || CAST(v.line AS INTEGER), hh.hh_key
        FROM hh JOIN v USING (village_code, line) WHERE hh.above""",
    "W7": f"""
        SELECT village_code, file, '{M}', row, '身份证号', person_id, 'id',
               CASE WHEN birth_date > {{ref_date}} THEN '出生日期晚于参照日期' ELSE '年龄' || age || '岁，超过110岁' END,
               person_id, hh_key
        FROM members WHERE birth_date > {{ref_date}} OR age > 110""",
    "W8": f"""
        SELECT h.village_code, h.file, '{H}', h.row, '工资性收入', '0', 'text', '各项收入均为0',
               coalesce(h.head_id, h.hh_uid), h.hh_key
        FROM households h JOIN household_income i USING (hh_uid)
        WHERE h.wage_income = 0 AND h.business_income = 0 AND h.property_income = 0 AND i.transfer_used = 0""",
    "W9": f"""
        SELECT village_code, file, '{H}', row, '联系电话', phone, 'text', '联系电话格式不对',
               coalesce(head_id, hh_uid), hh_key
        FROM households WHERE phone IS NOT NULL
          AND NOT regexp_full_match(phone, '1[3-9][0-9]{{{{9}}}}')
          AND NOT regexp_full_match(replace(replace(phone, '-', ''), '—', ''), '0[0-9]{{{{9,11}}}}|[2-9][0-9]{{{{6,7}}}}')""",
}

_VALUE_MASKS = {"id": mask_id, "name": mask_name, "text": lambda v: "" if v is None else str(v)[:40]}
_SQL_COLUMNS = ["village_code", "file", "sheet", "row", "column", "raw_value", "value_kind", "message", "anchor", "hh_key"]


def relational_problems(con, settings) -> pd.DataFrame:
    from pipeline.rules.sqlutil import literals

    frames = []
    for rule, sql in RELATIONAL_SQL.items():
        frame = con.execute(sql.format(**literals(settings))).df()
        frame.columns = _SQL_COLUMNS
        frame["rule"] = rule
        frames.append(frame)
    return finish_problems(pd.concat(frames, ignore_index=True))


def finish_problems(frame: pd.DataFrame) -> pd.DataFrame:
    """Mask values, attach severity, suggestion and the stable problem id."""
    if "raw_value" in frame:
        frame["value"] = [_VALUE_MASKS[k](v) for k, v in zip(frame["value_kind"], frame["raw_value"])]
        frame["anchor"] = frame["anchor"].astype(str)
    frame["severity"] = frame["rule"].map(lambda r: RULES[r].severity)
    frame["suggestion"] = frame["rule"].map(lambda r: RULES[r].suggestion)
    frame["problem_id"] = [
        problem_id(r, v, s, c, a)
        for r, v, s, c, a in zip(frame["rule"], frame["village_code"], frame["sheet"], frame["column"], frame["anchor"])
    ]
    frame["row"] = pd.to_numeric(frame["row"], errors="coerce").astype("Int64")
    return frame[list(PROBLEM_COLUMNS)]


OPEN_PROBLEMS_SQL = """
CREATE OR REPLACE TABLE open_problems AS
SELECT p.*, e.problem_id IS NOT NULL AS accepted,
       p.severity = '必须修改' AND e.problem_id IS NULL AS blocking,
       CASE WHEN e.problem_id IS NULL THEN '待修改' ELSE '已接受' END AS state
FROM problems p LEFT JOIN exceptions e USING (problem_id);
"""
