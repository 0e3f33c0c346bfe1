"""The notices of 两公示一比对一公告 (outputs.md, "公示"): what each says, from the classification.

- 第一次公示, one per 涉农 village, issued by ``<村名称>村民委员会`` on the first day of the 公示期;
- 第二次公示, one per 办事处, issued by the 办事处, in the 公示期 that follows the first;
- 公告, the district's final list by village, issued by the 填报单位 (南芬区脱贫攻坚领导小组办公室)
  and dated at the signature; written into the signed package only.

A notice names households by 户主姓名 only, with 家庭人口 and 类别 (返贫 / 新识别 / 重点扶持): no ID
number, phone, income, health, disability or 致贫原因 of anyone, and no internal field (数据截至,
生成时间, codes of rules). Plain functions, no Dagster.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

NOTICE_SUFFIX = "_公示.xlsx"
ANNOUNCEMENT_FILE = "公告.xlsx"
FIRST, SECOND, ANNOUNCEMENT = "第一次公示", "第二次公示", "公告"
NOTICE_SHEET = "公示"
ANNOUNCEMENT_SHEET = "公告"
HOUSEHOLDS_PER_PAGE = 30

VILLAGE_COLUMNS = ("序号", "户主姓名", "家庭人口", "类别")
SUBDISTRICT_COLUMNS = ("序号", "村", "户主姓名", "家庭人口", "类别")
DISTRICT_COLUMNS = ("序号", "办事处", "村", "户主姓名", "家庭人口", "类别")
# Every column a notice may print: anything else (an ID, an income, a cause) is never shown.
ALLOWED_COLUMNS = frozenset(DISTRICT_COLUMNS)

_UNSAFE = re.compile(r'[\\/:*?"<>|\s]+')

# The households of 附件2 and 附件3 (the classification's published side), one row each.
NOTICE_SQL = """
SELECT h.subdistrict_code, h.subdistrict_name AS "办事处", h.village_code, h.village_name AS "村",
       h.head_name AS "户主姓名", c.size AS "家庭人口",
       coalesce(c.annex2_category, c.annex3_category) AS "类别"
FROM classification c
JOIN households h ON h.hh_uid = c.hh_uid
WHERE c.annex2_category IS NOT NULL OR c.annex3_category IS NOT NULL
ORDER BY h.subdistrict_code, h.village_code, h.file, h."row"
"""

FARMING_VILLAGES_SQL = """
SELECT village_code, village_name, subdistrict_code, subdistrict_name
FROM villages WHERE farming ORDER BY subdistrict_code, village_code
"""


@dataclass(frozen=True)
class Notice:
    kind: str  # 第一次公示 / 第二次公示 / 公告
    title: str
    lead: str
    rows: pd.DataFrame  # the printed columns, 序号 first
    paragraphs: tuple[str, ...]
    issuer: str
    date: dt.date
    empty_text: str = ""  # said instead of the table when nobody is listed
    sheet: str = NOTICE_SHEET
    meta: dict = field(default_factory=dict)

    @property
    def households(self) -> int:
        return len(self.rows)

    @property
    def persons(self) -> int:
        return int(self.rows["家庭人口"].sum()) if len(self.rows) else 0


def chinese_date(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def safe_name(text: str | None, default: str) -> str:
    return _UNSAFE.sub("_", text or default)


def village_notice_path(folder: Path, subdistrict: str, village_code: str, village_name: str) -> Path:
    """public/<办事处名称>/<村代码>_<村名称>_公示.xlsx"""
    return Path(folder) / safe_name(subdistrict, "未知办事处") / \
        f"{village_code}_{safe_name(village_name, '未知村')}{NOTICE_SUFFIX}"


def subdistrict_notice_path(folder: Path, subdistrict_code: str, subdistrict: str) -> Path:
    """public/<办事处代码>_<办事处名称>_公示.xlsx"""
    return Path(folder) / f"{subdistrict_code}_{safe_name(subdistrict, '未知办事处')}{NOTICE_SUFFIX}"


def _numbered(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = frame[[c for c in columns if c != "序号"]].copy()
    out.insert(0, "序号", range(1, len(out) + 1))
    return out.reset_index(drop=True)


def _basis(settings) -> str:
    return f"根据《{settings.district_name}脱贫质量“回头看”工作实施方案》"


def _period(settings, round_: int) -> str:
    start, end = settings.notice_period(round_)
    return f"公示期：{chinese_date(start)}至{chinese_date(end)}（{settings.notice_days}天）。"


def _phone(settings) -> str:
    return f"监督电话：{settings.supervision_phone or '＿' * 12}"


def village_notice(settings, village_name: str, rows: pd.DataFrame) -> Notice:
    """第一次公示 of one village: its households of 附件2/3 (``rows`` from NOTICE_SQL)."""
    year = settings.reference_date.year
    body = f"{village_name}村民委员会"
    listed = len(rows) > 0
    lead = (f"{_basis(settings)}，经农户申请、村民主评议，现将本村拟纳入（返贫、新识别）人员名单公示如下："
            if listed else f"{_basis(settings)}，经农户申请、村民主评议，现将本村情况公示如下：")
    return Notice(
        kind=FIRST,
        title=f"{village_name}{year}年脱贫质量“回头看”\n拟纳入（返贫、新识别）人员名单公示",
        lead=lead,
        rows=_numbered(rows, VILLAGE_COLUMNS),
        paragraphs=(
            _period(settings, 1),
            "公示期内，对名单有异议的，或认为本村有应纳入而未纳入的，请以书面或当面方式向"
            f"{body}反映，也可拨打监督电话反映；反映情况请实事求是，提倡署真实姓名。{body}"
            "在公示期满前调查核实，并把结果告知反映人。",
            _phone(settings),
        ),
        issuer=body,
        date=settings.notice_period(1)[0],
        empty_text="经农户申请、村民主评议，本村本次没有拟纳入（返贫、新识别）的人员。",
    )


def subdistrict_notice(settings, subdistrict_name: str, rows: pd.DataFrame) -> Notice:
    """第二次公示 of one 办事处: the households of its villages."""
    year = settings.reference_date.year
    body = f"{subdistrict_name}办事处"
    listed = len(rows) > 0
    lead = (f"{_basis(settings)}，经农户申请、村民主评议和村级公示，现将本办事处拟纳入（返贫、新识别）"
            "人员名单第二次公示如下：" if listed else
            f"{_basis(settings)}，经农户申请、村民主评议和村级公示，现将本办事处情况第二次公示如下：")
    return Notice(
        kind=SECOND,
        title=f"{subdistrict_name}{year}年脱贫质量“回头看”\n拟纳入（返贫、新识别）人员名单公示",
        lead=lead,
        rows=_numbered(rows, SUBDISTRICT_COLUMNS),
        paragraphs=(
            _period(settings, 2),
            f"公示期内，对名单有异议的，请以书面或当面方式向{body}反映，也可拨打监督电话反映；"
            f"反映情况请实事求是，提倡署真实姓名。{body}在公示期满前调查核实，并把结果告知反映人。",
            _phone(settings),
        ),
        issuer=body,
        date=settings.notice_period(2)[0],
        empty_text="经农户申请、村民主评议和村级公示，本办事处本次没有拟纳入（返贫、新识别）的人员。",
    )


def announcement(settings, rows: pd.DataFrame, signed_on: dt.date) -> Notice:
    """公告: the district's final list by village, dated at the signature."""
    year = settings.reference_date.year
    listed = len(rows) > 0
    lead = (f"{_basis(settings)}，经农户申请、村民主评议、村和办事处两次公示、区有关部门比对核实，"
            f"现将{settings.district_name}{year}年脱贫质量“回头看”纳入（返贫、新识别）人员名单公告如下："
            if listed else f"{_basis(settings)}，经农户申请、村民主评议、两次公示和区有关部门比对核实，现公告如下：")
    return Notice(
        kind=ANNOUNCEMENT,
        title=f"{settings.district_name}{year}年脱贫质量“回头看”\n纳入（返贫、新识别）人员名单公告",
        lead=lead,
        rows=_numbered(rows, DISTRICT_COLUMNS),
        paragraphs=(
            f"对公告名单有异议的，请以书面或当面方式向{settings.reporting_unit}反映，也可拨打监督电话反映。",
            _phone(settings),
        ),
        issuer=settings.reporting_unit,
        date=signed_on,
        empty_text="本次没有纳入（返贫、新识别）的人员。",
        sheet=ANNOUNCEMENT_SHEET,
    )


def notices(settings, listed: pd.DataFrame, villages: pd.DataFrame, folder: Path) -> list[tuple[Path, Notice]]:
    """(path, notice) of every 第一次公示 (each 涉农 village, also one with nobody to list) and
    every 第二次公示 (each 办事处 with a 涉农 village)."""
    out = []
    for v in villages.itertuples():
        mine = listed[listed["village_code"] == v.village_code]
        out.append((village_notice_path(folder, v.subdistrict_name, v.village_code, v.village_name),
                    village_notice(settings, v.village_name, mine)))
    subs = villages.drop_duplicates("subdistrict_code")
    for s in subs.itertuples():
        mine = listed[listed["subdistrict_code"] == s.subdistrict_code]
        out.append((subdistrict_notice_path(folder, s.subdistrict_code, s.subdistrict_name),
                    subdistrict_notice(settings, s.subdistrict_name, mine)))
    return out
