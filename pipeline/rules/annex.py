"""The 附件 tables of outputs.md: title, columns, and the SQL that gives their rows.

Rows come only from the published side of write–audit–publish: ``classification`` flags
(in_annex4 …, annex2_category …) are false/NULL for a household with an open blocking problem.
Order: 办事处代码, 村代码, household, 户主 first, then member rows as the village listed them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.schema import HEAD, HOUSEHOLD_COLUMNS


@dataclass(frozen=True)
class Annex:
    key: str
    filename: str
    title: str
    columns: tuple[str, ...]  # the exact header of 明细 (序号 first, filled by the writer)
    unit: str  # household | person
    where: str  # SQL condition on classification c
    split_by: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # the values of 类别, in the order of the table's name

    @property
    def label(self) -> str:
        """``附件4``: printed at the top of every page."""
        return self.filename.split("_")[0]

    @property
    def split_values(self) -> dict[str, tuple[str, ...]]:
        """Every 类别 and every 主要致贫原因 gets its columns in 汇总, zeros included."""
        return {"类别": self.categories, "主要致贫原因": CAUSES} if self.split_by else {}

    @property
    def data_columns(self) -> tuple[str, ...]:
        return self.columns[1:]


TEXT_COLUMNS = frozenset({"户编号", "户主身份证号", "身份证号", "户主姓名", "姓名", "办事处", "村"})
AMOUNT_COLUMNS = frozenset({
    "工资性收入", "生产经营性收入", "财产性收入", "转移性收入", "生产经营性支出", "家庭年纯收入", "年人均纯收入",
})

CAUSES = next(c.codes for c in HOUSEHOLD_COLUMNS if c.label == "主要致贫原因")

_HH_INCOME_COLUMNS = ("工资性收入", "生产经营性收入", "财产性收入", "转移性收入", "生产经营性支出", "家庭年纯收入",
                      "年人均纯收入")

ANNEXES: dict[str, Annex] = {
    a.key: a
    for a in (
        Annex("annex2", "附件2_返贫（重点扶持）人口统计表.xlsx", "{city}{year}年度脱贫质量“回头看”返贫(重点扶持)人口统计表",
              ("序号", "办事处", "村", "户编号", "户主姓名", "姓名", "身份证号", "与户主关系", "家庭人口", "脱贫年度",
               "年人均纯收入", "类别", "三保障问题", "主要致贫原因", "重点人群", "核查疑点"),
              "person", "c.annex2_category IS NOT NULL", ("类别", "主要致贫原因"), ("返贫", "重点扶持")),
        Annex("annex3", "附件3_新识别（重点扶持）贫困人口统计表.xlsx", "{year}年“回头看”新识别（重点扶持）贫困人口统计表",
              ("序号", "办事处", "村", "户主姓名", "姓名", "身份证号", "与户主关系", "家庭人口", "户类型", "年人均纯收入",
               "类别", "三保障问题", "主要致贫原因", "重点人群", "民主评议结果", "核查疑点"),
              "person", "c.annex3_category IS NOT NULL", ("类别", "主要致贫原因"), ("新识别", "重点扶持")),
        Annex("annex4", "附件4_贫困户年人均收入5000元以下统计表.xlsx", "{district}贫困户年人均收入{monitoring}元以下统计表",
              ("序号", "办事处", "村", "户编号", "户主姓名", "户主身份证号", "家庭人口", "脱贫状态", "贫困户属性",
               *_HH_INCOME_COLUMNS, "主要致贫原因", "核查疑点"),
              "household", "c.in_annex4"),
        Annex("annex5", "附件5_农户年人均收入4500元以下统计表.xlsx", "{district}农户年人均收入{identification}元以下统计表",
              ("序号", "办事处", "村", "户主姓名", "户主身份证号", "户类型", "脱贫状态", "家庭人口",
               *_HH_INCOME_COLUMNS, "重点人群", "核查疑点"),
              "household", "c.in_annex5"),
        Annex("annex6", "附件6_农户年人均收入5000元以下统计表.xlsx", "{district}农户年人均收入{monitoring}元以下统计表",
              ("序号", "办事处", "村", "户主姓名", "户主身份证号", "户类型", "脱贫状态", "家庭人口",
               *_HH_INCOME_COLUMNS, "重点人群", "核查疑点"),
              "household", "c.in_annex6"),
    )
}

# Every column any 附件 can show, as SQL over households h, classification c, members m.
_EXPRESSIONS = {
    "办事处": "h.subdistrict_name",
    "村": "h.village_name",
    "户编号": "coalesce(s.registry_hh_no, h.hh_no)",
    "户主姓名": "h.head_name",
    "户主身份证号": "h.head_id",
    "姓名": "m.name",
    "身份证号": "m.person_id",
    "与户主关系": "m.relation",
    "家庭人口": "c.size",
    "脱贫年度": "CAST(s.exit_year AS VARCHAR)",
    "脱贫状态": "CASE WHEN c.status_type = '历年清退户' THEN '清退' ELSE s.registry_status END",
    "贫困户属性": "s.poor_attribute",
    "户类型": "c.status_type",
    "工资性收入": "h.wage_income",
    "生产经营性收入": "h.business_income",
    "财产性收入": "h.property_income",
    "转移性收入": "i.transfer_used",
    "生产经营性支出": "h.business_expense",
    "家庭年纯收入": "c.net_income",
    "年人均纯收入": "c.per_capita",
    "类别": "coalesce(c.annex2_category, c.annex3_category)",
    "三保障问题": "c.guarantee_issues",
    "主要致贫原因": "h.main_cause",
    "重点人群": "c.focus_groups",
    "民主评议结果": "h.review_result",
    "核查疑点": "c.findings_text",
}


def annex_sql(annex: Annex) -> str:
    select = ",\n       ".join(f'{_EXPRESSIONS[col]} AS "{col}"' for col in annex.data_columns)
    person = annex.unit == "person"
    members_join = "JOIN members m ON m.hh_key = h.hh_key" if person else ""
    order = "h.subdistrict_code, h.village_code, h.file, h.row" + (
        f", CASE WHEN m.relation = '{HEAD}' THEN 0 ELSE 1 END, m.row" if person else "")
    return f"""
SELECT {select},
       h.hh_key AS _household
FROM classification c
JOIN households h ON h.hh_uid = c.hh_uid
LEFT JOIN household_status s ON s.hh_key = h.hh_key
LEFT JOIN household_income i ON i.hh_uid = h.hh_uid
{members_join}
WHERE {annex.where}
ORDER BY {order}
"""


def annex_title(annex: Annex, settings) -> str:
    return annex.title.format(
        year=settings.reference_date.year,
        city=settings.city_name,
        district=settings.district_name,
        monitoring=int(settings.monitoring_line),
        identification=int(settings.identification_line),
    )


def annex_frame(con, annex: Annex):
    """The rows of one 附件 as a frame with its exact column names (plus ``_household``)."""
    return con.execute(annex_sql(annex)).df()
