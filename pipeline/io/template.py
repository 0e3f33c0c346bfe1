"""The blank survey workbook (附件1) the villages fill in, in exactly the layout inputs.md gives.

Both sheets (家庭基本情况, 家庭成员情况): row 1 the title merged across the columns; row 2 (cell
A2, unlocked) the line the village fills in (填报单位, 村代码, 填报人, 填报日期); rows 3–4 the two-row header
(a grouped column has its group in row 3, merged across the group, and its label in row 4; an
ungrouped column is merged down rows 3–4); data from row 5. Columns, labels, groups and code
lists all come from :mod:`pipeline.schema`.

For the data rows 5–2000 every code-list and 是/否 column has a dropdown, amounts must be
numbers ≥ 0, ID, 户编号 and phone columns are text (so Excel never turns an ID into 2.1E+17).
The header rows are protected (no password) and the data cells and row 2 are not. A sheet
``填表说明`` explains every column and code list; the dropdown lists too long to be written into
a validation live on the hidden sheet ``代码表``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from copy import copy
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_range_abs

from pipeline import schema
from pipeline.io.excel import apply_print_layout, atomic_path, display_width
from pipeline.io.printing import choose_layout, row_height, stored_width, text_lines
from pipeline.schema import Col
from pipeline.settings import Settings

INSTRUCTIONS_SHEET = "填表说明"
CODES_SHEET = "代码表"

TITLE_ROW, FILL_ROW, GROUP_ROW, LABEL_ROW = 1, 2, 3, 4  # Excel row numbers
FIRST_DATA_ROW = 5
LAST_DATA_ROW = 2000  # the rows that get dropdowns, formats and validations

FILL_LINE = "填报单位：　　　　村代码：　　　　　　填报人：　　　　填报日期："

# Excel refuses a list validation whose source, written out, is longer than this.
INLINE_LIST_LIMIT = 255

YES_NO = (schema.YES, schema.NO)

# Whole-number bounds per column key (others: ≥ 0).
_INT_BOUNDS: dict[str, tuple[int, int | None]] = {
    "seq": (1, None),
    "declared_size": (1, 99),
    "work_months": (0, 12),
}

# What each kind of column asks for.
_KIND_HELP = {
    "id": "18位居民身份证号码（末位可为X），按文本填写",
    "yesno": "填“是”或“否”（可从下拉列表选择）",
    "amount": "金额（元），填数字，可保留两位小数，不小于0；没有的填0",
    "int": "整数",
    "code": "从下拉列表中选择一项",
    "multi": "可填多项，用“、”分隔（下拉列表列出各单项）",
    "phone": "手机或固定电话号码，按文本填写",
    "text": "",
}

# What a particular column means (inputs.md), by schema key and sheet.
_COLUMN_HELP: dict[tuple[str, str], str] = {
    (schema.SHEET_HOUSEHOLDS, "seq"): "从1开始顺序编号",
    (schema.SHEET_HOUSEHOLDS, "hh_no"): "建档立卡系统中的14位户编号；不在建档立卡系统中的户留空",
    (schema.SHEET_HOUSEHOLDS, "head_id"): "户主的身份证号；家庭成员情况表用它把成员与本户关联",
    (schema.SHEET_HOUSEHOLDS, "declared_size"): "本户家庭人口数，应与家庭成员情况表中本户的人数一致",
    (schema.SHEET_HOUSEHOLDS, "exit_status"): "按建档立卡系统填写；一般农户留空",
    (schema.SHEET_HOUSEHOLDS, "resident_foreign"): "在本村常住、户籍在外地的户填“是”",
    (schema.SHEET_HOUSEHOLDS, "applied"): "本户申请（重新）纳入的填“是”",
    (schema.SHEET_HOUSEHOLDS, "main_cause"): "只填一项；没有致贫原因的留空",
    (schema.SHEET_HOUSEHOLDS, "other_causes"): "最多两项",
    (schema.SHEET_HOUSEHOLDS, "education_ok"):
        "有6–15岁子女因健康以外的原因失学辍学的填“否”",
    (schema.SHEET_HOUSEHOLDS, "medical_ok"): "有家庭成员未参加基本医疗保险的填“否”",
    (schema.SHEET_HOUSEHOLDS, "housing_grade"): "C、D级为危房",
    (schema.SHEET_HOUSEHOLDS, "transfer_total"): "应等于下列“其中：转移性收入”各项之和",
    (schema.SHEET_HOUSEHOLDS, "one_off_subsidy"): "只作记录，不计入家庭收入",
    (schema.SHEET_MEMBERS, "seq"): "从1开始顺序编号",
    (schema.SHEET_MEMBERS, "head_id"): "本人所在户的户主身份证号，与家庭基本情况表一致",
    (schema.SHEET_MEMBERS, "person_id"): "本人的18位身份证号码",
    (schema.SHEET_MEMBERS, "health"): "可填多项",
    (schema.SHEET_MEMBERS, "work_months"): "0–12的整数",
    (schema.SHEET_MEMBERS, "disability_type"): "无残疾的留空",
    (schema.SHEET_MEMBERS, "disability_grade"): "无残疾的留空",
}

_GENERAL_NOTES = (
    "1. 每村填写一个工作簿，包括“{households}”和“{members}”两张表；不要改动表名、表头和列的顺序，不要增删列。",
    "2. 第2行填写填报单位（办事处和村名称）、12位村代码、填报人和填报日期，例如："
    "填报单位：思山岭街道财神庙村　村代码：210505004201　填报人：张三　填报日期：2019-04-26。",
    "3. 数据从第5行开始，每户（每人）一行，中间不要留空行，不要合并单元格。",
    "4. 家庭成员情况表中每户的户主也要填一行（与户主关系填“户主”），成员通过“户主身份证号”与本户关联。",
    "5. 身份证号、户编号、联系电话按文本填写，不要写成数字（否则Excel会变成2.1E+17之类而丢失数字）。",
    "6. 金额单位为元，填数字；没有的填0。",
    "7. 有下拉列表的列请从列表中选择；下表列出每一列的填写要求和可选值。",
)


def survey_title(settings: Settings, sheet: str) -> str:
    """``2019年脱贫质量“回头看”入户调查表（家庭基本情况）``, with the year of the reference date."""
    year = settings.reference_date.year
    base = re.sub(r"^\d{4}年", f"{year}年", schema.SURVEY_TITLE)
    return f"{base}（{sheet}）"


def header_groups(columns: Sequence[Col]) -> list[tuple[str, int, int]]:
    """Runs of adjacent columns: (group, first index, last index); group '' for a single column."""
    runs: list[tuple[str, int, int]] = []
    for j, col in enumerate(columns):
        if col.group and runs and runs[-1][0] == col.group and runs[-1][2] == j - 1:
            runs[-1] = (col.group, runs[-1][1], j)
        else:
            runs.append((col.group, j, j))
    return runs


def _choices(col: Col) -> tuple[str, ...]:
    if col.kind == "yesno":
        return YES_NO
    return col.codes


def _is_text(col: Col) -> bool:
    return col.kind in ("id", "phone", "text")


def _fits_inline(values: Sequence[str]) -> bool:
    joined = ",".join(values)
    return len(joined) + 2 <= INLINE_LIST_LIMIT and not any("," in v or '"' in v for v in values)


def _column_width(col: Col) -> float:
    label = display_width(col.label)
    width = label if label <= 8 else max(8, -(-label // 2))  # a long label wraps onto two lines
    width = max(width, 6)
    if col.kind == "id":
        width = max(width, 20)
    elif col.key == "hh_no":
        width = max(width, 16)  # 14 digits
    elif col.kind == "phone":
        width = max(width, 13)
    elif col.kind in ("code", "multi") and col.codes:
        width = max(width, max(display_width(c) for c in col.codes))
    elif col.kind == "text" and col.key == "note":
        width = max(width, 20)
    return min(width + 2, 24)


def _help_text(sheet: str, col: Col) -> str:
    parts = [p for p in (_COLUMN_HELP.get((sheet, col.key), ""), _KIND_HELP.get(col.kind, "")) if p]
    if col.kind == "int" and col.key in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[col.key]
        parts.append(f"不小于{lo}" if hi is None else f"{lo}–{hi}")
    parts = list(dict.fromkeys(parts))
    # a phrase another part already says ("可填多项" in "可填多项，用“、”分隔…") is said once
    parts = [p for p in parts if not any(p != q and p.rstrip("。") in q for q in parts)]
    return "；".join(parts)


def write_survey_template(path: Path, settings: Settings, page_label: str | None = None) -> None:
    """Write the blank 附件1 survey workbook to ``path`` (atomically). Every sheet prints with text
    at least 8 pt (printing.py); ``page_label`` (附件1) is printed at the top of every page."""
    sheets = [(name, cols) for name, cols in schema.SURVEY_SHEETS.items()]
    with atomic_path(Path(path), mode=0o644) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), {
            "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
        })
        try:
            _build(wb, sheets, settings, page_label)
        except BaseException:
            wb.fileclosed = True
            raise
        wb.close()


def _build(wb: xlsxwriter.Workbook, sheets: list[tuple[str, tuple[Col, ...]]],
           settings: Settings, page_label: str | None = None) -> None:
    base = {"font_size": 10, "valign": "vcenter"}
    title_fmt = wb.add_format({**base, "bold": True, "font_size": 16, "align": "center"})
    # a sheet several pages wide: the title starts on the first page, not in the middle of all
    left_title_fmt = wb.add_format({**base, "bold": True, "font_size": 16, "align": "left"})
    fill_fmt = wb.add_format({**base, "locked": False, "align": "left", "text_wrap": True})
    header_fmt = wb.add_format({**base, "bold": True, "border": 1, "align": "center",
                                "text_wrap": True, "bg_color": "#D9D9D9"})
    data_fmts = {
        "text": wb.add_format({**base, "locked": False, "num_format": "@"}),
        "amount": wb.add_format({**base, "locked": False, "num_format": "0.00"}),
        "other": wb.add_format({**base, "locked": False}),
    }

    data_sheets = [wb.add_worksheet(name) for name, _ in sheets]
    instructions = wb.add_worksheet(INSTRUCTIONS_SHEET)
    codes_ws = wb.add_worksheet(CODES_SHEET)
    code_ranges = _write_code_sheet(wb, codes_ws, sheets)

    first, last = FIRST_DATA_ROW - 1, LAST_DATA_ROW - 1  # zero-based
    for ws, (name, columns) in zip(data_sheets, sheets):
        ncols = len(columns)
        widths = [_column_width(col) for col in columns]
        for j, col in enumerate(columns):
            kind = "text" if _is_text(col) else "amount" if col.kind == "amount" else "other"
            ws.set_column(j, j, widths[j], data_fmts[kind])
        layout = choose_layout([stored_width(w) for w in widths], [c.label for c in columns])

        ws.set_row(TITLE_ROW - 1, 30)
        fmt = title_fmt if layout.pages_across == 1 else left_title_fmt
        ws.merge_range(TITLE_ROW - 1, 0, TITLE_ROW - 1, ncols - 1, "", fmt)
        ws.write_string(TITLE_ROW - 1, 0, survey_title(settings, name), fmt)
        ws.set_row(FILL_ROW - 1, 22)
        # Merged across the printed width like every title row; the village fills in A2.
        ws.merge_range(FILL_ROW - 1, 0, FILL_ROW - 1, ncols - 1, "", fill_fmt)
        ws.write_string(FILL_ROW - 1, 0, FILL_LINE, fill_fmt)

        ws.set_row(GROUP_ROW - 1, 24)
        label_lines = max(text_lines(c.label, w) for c, w in zip(columns, widths))
        ws.set_row(LABEL_ROW - 1, max(42.0, row_height(label_lines)))
        g, lab = GROUP_ROW - 1, LABEL_ROW - 1
        for group, lo, hi in header_groups(columns):
            if group:
                if hi > lo:
                    ws.merge_range(g, lo, g, hi, "", header_fmt)
                ws.write_string(g, lo, group, header_fmt)
                for j in range(lo, hi + 1):
                    ws.write_string(lab, j, columns[j].label, header_fmt)
            else:
                ws.merge_range(g, lo, lab, lo, "", header_fmt)
                ws.write_string(g, lo, columns[lo].label, header_fmt)

        for j, col in enumerate(columns):
            _validate(ws, first, last, j, name, col, code_ranges)

        freeze = next((j + 1 for j, c in enumerate(columns) if c.key in ("head_name", "name")), 0)
        ws.freeze_panes(LABEL_ROW, freeze)
        apply_print_layout(ws, layout, page_label)
        ws.repeat_rows(0, LABEL_ROW - 1)
        ws.protect("", {
            "format_columns": True, "format_rows": True, "insert_rows": True, "delete_rows": True,
            "sort": True, "autofilter": True,
            "select_locked_cells": True, "select_unlocked_cells": True,
        })

    _write_instructions(wb, instructions, sheets, settings, page_label)
    codes_ws.hide()
    codes_ws.protect("")
    data_sheets[0].activate()


def _write_code_sheet(wb: xlsxwriter.Workbook, ws: Any,
                      sheets: list[tuple[str, tuple[Col, ...]]]) -> dict[tuple[str, str], str]:
    """Every dropdown list as a column of 代码表; returns (sheet, key) -> absolute range."""
    header = wb.add_format({"bold": True, "font_size": 10})
    ranges: dict[tuple[str, str], str] = {}
    j = 0
    for name, columns in sheets:
        for col in columns:
            values = _choices(col)
            if not values:
                continue
            ws.write_string(0, j, f"{name}·{col.label}", header)
            for i, v in enumerate(values, start=1):
                ws.write_string(i, j, v)
            ws.set_column(j, j, max(display_width(f"{name}·{col.label}"), 8) + 2)
            ranges[(name, col.key)] = f"='{CODES_SHEET}'!{xl_range_abs(1, j, len(values), j)}"
            j += 1
    return ranges


def _validate(ws: Any, first: int, last: int, j: int, sheet: str, col: Col,
              code_ranges: Mapping[tuple[str, str], str]) -> None:
    values = _choices(col)
    title = col.label[:32]
    if values:
        source: Any = list(values) if _fits_inline(values) else code_ranges[(sheet, col.key)]
        multi = col.kind == "multi"
        options = {
            "validate": "list",
            "source": source,
            "input_title": title,
            "input_message": (_help_text(sheet, col) or "从下拉列表中选择")[:255],
            "error_title": title,
            "error_message": "请从下拉列表中选择"[:255],
            "error_type": "stop",
        }
        if multi:  # several codes joined by 、 are fine: show the list, accept other text
            options["show_error"] = False
        ws.data_validation(first, j, last, j, options)
    elif col.kind == "amount":
        ws.data_validation(first, j, last, j, {
            "validate": "decimal", "criteria": ">=", "value": 0,
            "input_title": title, "input_message": _help_text(sheet, col)[:255],
            "error_title": title, "error_message": "请填写不小于0的数字（单位：元）",
        })
    elif col.kind == "int":
        lo, hi = _INT_BOUNDS.get(col.key, (0, None))
        options = {"validate": "integer", "input_title": title,
                   "input_message": _help_text(sheet, col)[:255], "error_title": title}
        if hi is None:
            options.update(criteria=">=", value=lo, error_message=f"请填写不小于{lo}的整数")
        else:
            options.update(criteria="between", minimum=lo, maximum=hi,
                           error_message=f"请填写{lo}到{hi}之间的整数")
        ws.data_validation(first, j, last, j, options)
    elif col.kind == "id":
        ws.data_validation(first, j, last, j, {
            "validate": "length", "criteria": "==", "value": 18,
            "input_title": title, "input_message": _help_text(sheet, col)[:255],
            "error_title": title, "error_message": "身份证号应为18位，请核对",
            "error_type": "warning",
        })


def _write_instructions(wb: xlsxwriter.Workbook, ws: Any, sheets: list[tuple[str, tuple[Col, ...]]],
                        settings: Settings, page_label: str | None = None) -> None:
    title_fmt = wb.add_format({"bold": True, "font_size": 14})
    note_fmt = wb.add_format({"font_size": 10, "text_wrap": True, "valign": "top"})
    header = wb.add_format({"bold": True, "font_size": 10, "border": 1, "bg_color": "#D9D9D9",
                            "align": "center", "valign": "vcenter", "text_wrap": True})
    cell = wb.add_format({"font_size": 10, "border": 1, "text_wrap": True, "valign": "top"})
    headers = ("表", "分组", "列名", "必填", "填写要求", "可选值")
    widths = (14, 16, 24, 6, 44, 44)
    for j, w in enumerate(widths):
        ws.set_column(j, j, w)
    layout = choose_layout([stored_width(w) for w in widths], headers)
    title_text = f"{survey_title(settings, '').removesuffix('（）')}　填表说明"
    ws.merge_range(0, 0, 0, len(headers) - 1, "", title_fmt)
    ws.write_string(0, 0, title_text, title_fmt)
    ws.set_row(0, 26)
    households, members = list(schema.SURVEY_SHEETS)[:2]
    r = 1
    for note in _GENERAL_NOTES:
        text = note.format(households=households, members=members)
        ws.merge_range(r, 0, r, len(headers) - 1, "", note_fmt)
        ws.write_string(r, 0, text, note_fmt)
        ws.set_row(r, row_height(text_lines(text, sum(widths))))
        r += 1
    r += 1
    for j, h in enumerate(headers):
        ws.write_string(r, j, h, header)
    ws.repeat_rows(r, r)
    r += 1
    for name, columns in sheets:
        for col in columns:
            row = (name, col.group, col.label, schema.YES if col.required else "",
                   _help_text(name, col), "、".join(_choices(col)))
            for j, v in enumerate(row):
                ws.write_string(r, j, v, cell)
            ws.set_row(r, row_height(max(text_lines(v, w) for v, w in zip(row, widths) if v)))
            r += 1
    apply_print_layout(ws, layout, page_label)


# --------------------------------------------------------------------------------------------
# Filling the template (tests and the sample district)
# --------------------------------------------------------------------------------------------


def column_dimension(ws: Any, column: int) -> Any:
    """The openpyxl column dimension covering 1-based ``column`` (adjacent columns with the same
    width and style share one ``<col min max>`` entry), or None."""
    for dim in ws.column_dimensions.values():
        if dim.min is not None and dim.max is not None and dim.min <= column <= dim.max:
            return dim
    return None


def fill_template_for_test(template: Path, out: Path, village_code: str, village_name: str,
                           subdistrict_name: str, households: list[dict], members: list[dict],
                           *, reporter: str = "测试", filled_on: dt.date | None = None) -> None:
    """Fill a copy of the blank template the way a village would: row 2 and the data rows from
    row 5 (dict keys are schema ``Col.key``), keeping the layout. A missing ``seq`` is numbered
    1..n; an int given for an ID/户编号/phone column is written as text (a float is written as
    it is, to imitate an ID Excel has damaged); strings are always strings, never formulas."""
    import openpyxl

    wb = openpyxl.load_workbook(template)
    filled_on = filled_on or dt.date.today()
    line = (f"填报单位：{subdistrict_name}{village_name}　村代码：{village_code}"
            f"　填报人：{reporter}　填报日期：{filled_on.isoformat()}")
    for sheet, records in ((schema.SHEET_HOUSEHOLDS, households), (schema.SHEET_MEMBERS, members)):
        ws = wb[sheet]
        ws.cell(row=FILL_ROW, column=1).value = line
        columns = schema.SURVEY_SHEETS[sheet]
        unknown = {k for rec in records for k in rec} - {c.key for c in columns}
        if unknown:
            raise ValueError(f"{sheet}: unknown column key(s) {', '.join(sorted(unknown))}")
        for i, record in enumerate(records):
            r = FIRST_DATA_ROW + i
            for j, col in enumerate(columns, start=1):
                if col.key == "seq" and "seq" not in record:
                    value: Any = i + 1
                else:
                    value = record.get(col.key)
                if value is None:
                    continue
                cell = ws.cell(row=r, column=j)
                dim = column_dimension(ws, j)
                if dim is not None:  # the column's style, as Excel gives a cell typed into it
                    cell.number_format = dim.number_format
                    cell.protection = copy(dim.protection)
                if _is_text(col) and isinstance(value, int) and not isinstance(value, bool):
                    value = str(value)
                cell.value = value
                if isinstance(value, str):
                    cell.data_type = "s"  # openpyxl would take a leading '=' for a formula
    with atomic_path(Path(out)) as tmp:
        wb.save(tmp)
