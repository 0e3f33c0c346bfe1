"""A survey workbook as read: what the reader (``pipeline/io/survey.py``) hands the cleaning rules
(``pipeline/rules/clean.py``) — each table's raw rows with their Excel row numbers, and every
sheet's row account (rows seen = rows used + rows set aside, by reason). Plain data, no reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROW_COLUMN = "_row"  # the Excel row number of a data row

# Why a row below the header is not a household or a member (the row account).
ASIDE_BLANK = "空行"
ASIDE_NOTES = "说明或签字行"
ASIDE_HEADER = "重复的表头"
ASIDE_TOTALS = "合计行"
ASIDE_TOTALS_BY_SUM = "疑似合计行"
ASIDE_UNKNOWN_ONLY = "只有未识别的列有内容"
ASIDE_NOTE_ONLY = "只有备注"
ASIDE_SHEET = "工作表未使用"
ASIDE_REASONS = (ASIDE_BLANK, ASIDE_NOTES, ASIDE_HEADER, ASIDE_TOTALS, ASIDE_TOTALS_BY_SUM,
                 ASIDE_UNKNOWN_ONLY, ASIDE_NOTE_ONLY, ASIDE_SHEET)
# Set aside for an unusual reason: the village is asked to check the row (W10).
UNUSUAL_REASONS = {
    ASIDE_TOTALS_BY_SUM: "没有户主身份证号，各项金额等于上面各行之和，按合计行处理，没有作为一户读入",
    ASIDE_UNKNOWN_ONLY: "只在未识别的列（{columns}）中有内容，没有作为数据读入",
    ASIDE_NOTE_ONLY: "只有备注有内容，没有作为数据读入",
}


@dataclass
class SheetAccount:
    """Every row below a sheet's header: used, or set aside with its reason. For a sheet that is
    not used, every non-empty row is set aside as ``工作表未使用``."""

    sheet_name: str  # as named in the workbook
    table: str | None  # SHEET_HOUSEHOLDS / SHEET_MEMBERS, None when the sheet is not used
    note: str = ""  # why the sheet is not used
    header_row: int | None = None  # Excel row of the (last) header row
    rows_seen: int = 0
    used_rows: list[int] = field(default_factory=list)  # Excel rows
    set_aside: dict[int, str] = field(default_factory=dict)  # Excel row -> reason
    details: dict[int, str] = field(default_factory=dict)  # Excel row -> what the W10 problem says
    anchors: dict[int, str] = field(default_factory=dict)  # Excel row -> what identifies the row (its content)
    hidden: bool = False
    unusual: bool = False  # an unused sheet with content that does not look like instructions

    @property
    def rows_used(self) -> int:
        return len(self.used_rows)

    def by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for reason in self.set_aside.values():
            out[reason] = out.get(reason, 0) + 1
        return out

    def balanced(self) -> bool:
        return self.rows_seen == self.rows_used + len(self.set_aside) and not (
            set(self.used_rows) & set(self.set_aside))


@dataclass
class SheetRead:
    sheet: str  # the table: SHEET_HOUSEHOLDS or SHEET_MEMBERS
    frame: pd.DataFrame  # one column per matched Col.key (raw cell values) plus ROW_COLUMN
    header_row: int  # Excel row of the (last) header row
    matched: dict[str, str] = field(default_factory=dict)  # key -> header text found in the file
    missing: list[str] = field(default_factory=list)  # labels of schema columns not found
    extra: list[str] = field(default_factory=list)  # header texts the schema does not know
    skipped_rows: list[int] = field(default_factory=list)  # rows set aside other than blank ones
    source_sheet: str = ""  # the sheet's name in the workbook
    account: SheetAccount | None = None


@dataclass
class SurveyRead:
    path: Path
    village_code: str | None
    sheets: dict[str, SheetRead]
    info_line: str = ""
    accounts: list[SheetAccount] = field(default_factory=list)  # every sheet, in workbook order
