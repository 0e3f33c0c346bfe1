"""附件1: the blank survey workbook the villages fill in, and the district's 入户调查汇总表."""



import dagster as dg
import pandas as pd

from pipeline.io.excel import SUBDISTRICT_LABEL, Totals, summarize, write_sheets_workbook
from pipeline.io.template import write_survey_template
from pipeline.layout import ANNEX1_FILE
from pipeline.metadata import counts_by, download_links, masked_sample
from pipeline.readiness import office_stamp
from pipeline.resources import AFTER_DRAFTS, WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource
from pipeline.rules.annex import TEXT_COLUMNS
from pipeline.rules.status import status_text_sql
from pipeline.schema import HOUSEHOLD_COLUMNS, MEMBER_COLUMNS, SHEET_HOUSEHOLDS, SHEET_MEMBERS, Col

GROUP = "step7_reports"
SUMMARY_SHEET = "汇总"
VILLAGE_LABEL = "村"
EXTRA_HOUSEHOLD_COLUMNS = ("家庭年纯收入", "年人均纯收入", "户状态(比对)", "重点人群", "问题数")
PROBLEM_COUNT = "问题数"
ANNEX1_LABEL = "附件1"


def template_filename(settings) -> str:
    return f"附件1_{settings.reference_date.year}年脱贫质量回头看入户调查表.xlsx"


@dg.asset(group_name=GROUP, kinds={"excel"}, op_tags=AFTER_DRAFTS)
def survey_template(paths: PathsResource, settings: SettingsResource) -> dg.MaterializeResult:
    """附件1 入户调查表（空白）：发给各村填写的空白调查表。
    附件1 入户调查表（空白）: the workbook every village fills in — both sheets with the two-row
    header of inputs.md, dropdowns for every code list, ID columns as text (so Excel never turns
    an ID into 2.1E+17), amounts as numbers, and a 填表说明 sheet. Send it to the villages."""
    s = settings.get()
    path = paths.report_path(paths.template / template_filename(s))
    write_survey_template(path, s, page_label=ANNEX1_LABEL)
    return dg.MaterializeResult(metadata={
        "工作表（sheets）": dg.MetadataValue.json([SHEET_HOUSEHOLDS, SHEET_MEMBERS]),
        "家庭基本情况列数（household columns）": len(HOUSEHOLD_COLUMNS),
        "家庭成员情况列数（member columns）": len(MEMBER_COLUMNS),
        **download_links(paths, path),
    })


def _value_sql(alias: str, col: Col) -> str:
    return f'{alias}."{col.key}"'


def _households_sql() -> str:
    cols = []
    for col in HOUSEHOLD_COLUMNS:
        if col.key == "seq":
            continue
        # 家庭人口 as rules.md counts it (the member rows); the declared number differing is W1
        expr = "c.size" if col.key == "declared_size" else _value_sql("h", col)
        cols.append(f'{expr} AS "{col.label}"')
    return f"""
WITH counts AS (
    SELECT h.hh_uid, count(DISTINCT p.problem_id) AS n
    FROM households h JOIN open_problems p
      ON p.state = '待修改' AND (p.hh_key = h.hh_key
         OR (p.file = h.file AND p.sheet = '{SHEET_HOUSEHOLDS}' AND p."row" = h."row"))
    GROUP BY h.hh_uid)
SELECT 0 AS "序号", h.subdistrict_name AS "{SUBDISTRICT_LABEL}", h.village_name AS "{VILLAGE_LABEL}",
       {", ".join(cols)},
       c.net_income AS "家庭年纯收入", c.per_capita AS "年人均纯收入",
       {status_text_sql('c.status_type', 'c.registry_status')} AS "户状态(比对)",
       c.focus_groups AS "重点人群", coalesce(k.n, 0) AS "{PROBLEM_COUNT}"
FROM households h
LEFT JOIN classification c ON c.hh_uid = h.hh_uid
LEFT JOIN counts k ON k.hh_uid = h.hh_uid
ORDER BY h.subdistrict_code, h.village_code, h.file, h."row"
"""


def _members_sql() -> str:
    cols = [f'{_value_sql("m", col)} AS "{col.label}"' for col in MEMBER_COLUMNS if col.key != "seq"]
    return f"""
WITH counts AS (
    SELECT m.member_uid, count(DISTINCT p.problem_id) AS n
    FROM members m JOIN open_problems p
      ON p.state = '待修改' AND p.file = m.file AND p.sheet = '{SHEET_MEMBERS}' AND p."row" = m."row"
    GROUP BY m.member_uid)
SELECT 0 AS "序号", v.subdistrict_name AS "{SUBDISTRICT_LABEL}", v.village_name AS "{VILLAGE_LABEL}",
       {", ".join(cols)}, coalesce(k.n, 0) AS "{PROBLEM_COUNT}"
FROM members m
LEFT JOIN villages v USING (village_code)
LEFT JOIN counts k ON k.member_uid = m.member_uid
-- persons are counted one way (outputs.md): the member rows linked to a surveyed household; a
-- member whose household is not surveyed (B4) is in the problem lists, not here
WHERE m.hh_key IN (SELECT hh_key FROM households)
ORDER BY v.subdistrict_code, m.village_code, m.file, m."row"
"""


ANNEX1_TEXT_COLUMNS = frozenset({*TEXT_COLUMNS, "户编号", "联系电话", "户主身份证号", "身份证号", "备注"})
ANNEX1_AMOUNT_COLUMNS = frozenset({c.label for c in HOUSEHOLD_COLUMNS if c.kind == "amount"}
                                  | {"家庭年纯收入", "年人均纯收入"})


def annex1_frames(con) -> tuple[pd.DataFrame, pd.DataFrame]:
    return con.execute(_households_sql()).df(), con.execute(_members_sql()).df()


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel"}, op_tags={"dagster/priority": "-1"},
          deps=["households", "members", "classification", "data_problems"])
def annex1(paths: PathsResource, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """附件1 入户调查汇总表：全部入户调查的户和人，已清洗，可直接打印归档。
    附件1 入户调查汇总表: every surveyed household (sheet 家庭基本情况) and person (家庭成员情况)
    of the district from each village's latest workbook, every input column cleaned, with 办事处,
    村, 家庭年纯收入, 年人均纯收入, 户状态 as the registry has it (比对), 重点人群 and the number of
    open problems (问题数) of the row. Households held back by a blocking problem are listed here
    too (with their 问题数): this is what was surveyed, not what was classified."""
    s = settings.get()
    with warehouse.connect(read_only=True) as con:
        households, members = annex1_frames(con)
    year = s.reference_date.year
    title = f"{year}年脱贫质量“回头看”入户调查汇总表"
    path = paths.report_path(paths.draft / ANNEX1_FILE)
    stats = write_sheets_workbook(
        path,
        {
            SHEET_HOUSEHOLDS: (f"{title}（{SHEET_HOUSEHOLDS}）", households),
            SHEET_MEMBERS: (f"{title}（{SHEET_MEMBERS}）", members),
            SUMMARY_SHEET: (title, summarize(households, by=SUBDISTRICT_LABEL, unit="household")),
        },
        s, office_stamp(s.tz),
        text_columns=ANNEX1_TEXT_COLUMNS, amount_columns=ANNEX1_AMOUNT_COLUMNS,
        totals={SHEET_HOUSEHOLDS: Totals("household"), SHEET_MEMBERS: Totals("person", "户主身份证号")},
        signature={SHEET_HOUSEHOLDS, SHEET_MEMBERS},
        number_rows=True, document_title=title, page_label=ANNEX1_LABEL,
    )
    problems = int((households[PROBLEM_COUNT] > 0).sum()) if len(households) else 0
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(households),
        "户数（households）": len(households),
        "人数（persons）": len(members),
        "各办事处户数（households per 办事处）": counts_by(households, SUBDISTRICT_LABEL),
        "各办事处人数（persons per 办事处）": counts_by(members, SUBDISTRICT_LABEL),
        "有未解决问题的户（households with open problems）": problems,
        "示例（已遮盖，masked sample）": masked_sample(households, columns=[
            SUBDISTRICT_LABEL, VILLAGE_LABEL, "户主姓名", "户主身份证号", "家庭人口", "户状态(比对)", PROBLEM_COUNT]),
        "各工作表行数（rows per sheet）": dg.MetadataValue.json({k: int(v) for k, v in stats.sheets.items()}),
        **download_links(paths, path),
    })
