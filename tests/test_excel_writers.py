"""The Excel writing layer: 附件 tables, multi-sheet workbooks and the blank survey template.

Every workbook is read back with openpyxl (and the sheet XML inspected where a formula could
hide), so these tests check what Excel would open, not what the writer meant to write.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter

from pipeline import schema
from pipeline.io import excel, printing, template
from pipeline.io.excel import (
    SIGNATURE_LINE,
    Totals,
    parse_totals_text,
    summarize,
    write_annex_workbook,
    write_sheets_workbook,
)
from pipeline.settings import Settings

SETTINGS = Settings()
GENERATED = dt.datetime(2019, 5, 18, 9, 30)
ROW2 = "填报单位：南芬区脱贫攻坚领导小组办公室　　数据截至：2019-04-30　　生成时间：2019-05-18 09:30"
UNITS_DETAIL = "　　单位：户、人、元"  # a table counting households and persons, showing amounts
UNITS_SUMMARY = "　　单位：户、人"
SIGNATURE = "审核人：　　　　填报人：　　　　区脱贫攻坚领导小组组长（签字）："

HEAD_ID = "户主身份证号"
PERSON_COLUMNS = ["序号", "办事处", "村", "户编号", "户主姓名", "姓名", "身份证号", "与户主关系",
                  "家庭人口", "脱贫年度", "年人均纯收入", "类别", "三保障问题", "主要致贫原因",
                  "重点人群", "核查疑点"]
HOUSEHOLD_COLUMNS = ["序号", "办事处", "村", "户编号", "户主姓名", "户主身份证号", "家庭人口",
                     "脱贫状态", "工资性收入", "家庭年纯收入", "年人均纯收入", "主要致贫原因", "核查疑点"]
HOUSEHOLD_AMOUNTS = ["工资性收入", "家庭年纯收入", "年人均纯收入"]

FORMULA_LIKE = ["=1+1", "+8613800000000", "-2", "@SUM(A1)", "\t=cmd", "\r=cmd",
                '<r></r></is></c><c r="Z1"><f>1+1</f></c><c r="Y1" t="inlineStr"><is><r></r>']


@pytest.fixture(params=[True, False], ids=["streamed", "api"])
def both_paths(request, monkeypatch):
    """Run a test through the streamed row writer and through xlsxwriter's API."""
    monkeypatch.setattr(excel, "FAST_ROWS", request.param)
    return request.param


def person_rows() -> pd.DataFrame:
    """Five persons of three households in two 办事处, sorted as the caller would."""
    return pd.DataFrame([
        # 办事处, 村, 户编号, 户主姓名, 姓名, 身份证号, 关系, 家庭人口, 脱贫年度, 年人均, 类别, 三保障, 原因,
        # 重点人群, 疑点, 户主身份证号
        ["南芬街道", "南山村", "21050500100001", "张三", "张三", "210505196001011234", "户主", 2, "2017",
         Decimal("4499.995"), "返贫", "", "因病", "", "D1 务工、X3 车辆", "210505196001011234"],
        ["南芬街道", "南山村", "21050500100001", "张三", "李四", "210505196201011220", "配偶", 2, "2017",
         Decimal("4499.995"), "返贫", "", "因病", "", "", "210505196001011234"],
        ["南芬街道", "北山村", "21050500100002", "王五", "王五", "21050519700101123X", "户主", 1, "2018",
         Decimal("2.675"), "重点扶持", "住房", "因残", "重度残疾人", "", "21050519700101123X"],
        ["铁山街道", "东村", "21050500200003", "赵六", "赵六", "210505198001011256", "户主", 2, "2016",
         "3000.5", "返贫", "", "因病", "", None, "210505198001011256"],
        ["铁山街道", "东村", "21050500200003", "赵六", "赵小六", "210505201001011278", "之子", 2, "2016",
         3000.5, "返贫", "义务教育", "因病", "", "", "210505198001011256"],
    ], columns=[c for c in PERSON_COLUMNS if c != "序号"] + [HEAD_ID])


def household_rows() -> pd.DataFrame:
    return pd.DataFrame([
        ["南芬街道", "南山村", "21050500100001", "张三", "210505196001011234", 2, "已脱贫(享受政策)",
         Decimal("1000"), Decimal("8999.99"), Decimal("4499.995"), "因病", ""],
        ["南芬街道", "北山村", None, "王五", "21050519700101123X", "3", "", None, "12", "4", "", ""],
        ["铁山街道", "东村", "21050500200003", "赵六", "210505198001011256", 4, "已脱贫(不再享受政策)",
         2.675, 100, 25, "因学", "W6"],
    ], columns=[c for c in HOUSEHOLD_COLUMNS if c != "序号"])


def write_person_annex(path: Path, rows: pd.DataFrame | None = None, **kwargs) -> excel.WriteStats:
    rows = person_rows() if rows is None else rows
    summary = summarize(rows, household_key=HEAD_ID, unit="person", split_by=["类别", "主要致贫原因"])
    return write_annex_workbook(
        path, title="附件2 返贫（重点扶持）人口统计表", columns=PERSON_COLUMNS, rows=rows,
        summary=summary, settings=SETTINGS, generated_at=GENERATED,
        amount_columns=["年人均纯收入"], unit="person", household_key=HEAD_ID, **kwargs)


def sheet_values(ws) -> list[list]:
    return [[c.value for c in row] for row in ws.iter_rows()]


_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def excel_text(value):
    """A string cell as Excel shows it: OOXML stores control characters as ``_xHHHH_`` (and a
    literal ``_xHHHH_`` as ``_x005F_xHHHH_``); openpyxl leaves inline strings undecoded."""
    if not isinstance(value, str):
        return value
    return _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)


def sheet_xml(path: Path, sheet_index: int) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read(f"xl/worksheets/sheet{sheet_index}.xml").decode("utf-8")


# --------------------------------------------------------------------------------------------
# 明细: layout
# --------------------------------------------------------------------------------------------


def test_detail_sheet_layout(tmp_path, both_paths):
    path = tmp_path / "附件2.xlsx"
    stats = write_person_annex(path)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["明细", "汇总", "设置"]
    ws = wb["明细"]
    last = get_column_letter(len(PERSON_COLUMNS))

    assert ws["A1"].value == "附件2 返贫（重点扶持）人口统计表"
    assert f"A1:{last}1" in {str(r) for r in ws.merged_cells.ranges}
    assert f"A2:{last}2" in {str(r) for r in ws.merged_cells.ranges}
    assert ws["A2"].value == ROW2 + UNITS_DETAIL
    assert [c.value for c in ws[3]] == PERSON_COLUMNS

    data = [[c.value for c in ws[r]] for r in range(4, 9)]
    assert [row[0] for row in data] == [1, 2, 3, 4, 5]
    assert [row[5] for row in data] == ["张三", "李四", "王五", "赵六", "赵小六"]  # caller's order kept
    assert ws["A9"].value == "合计"
    assert parse_totals_text(ws["B9"].value) == (3, 5)
    assert ws["A10"].value == SIGNATURE == SIGNATURE_LINE
    assert ws.max_row == 10
    assert (stats.rows, stats.households, stats.persons) == (5, 3, 5)
    assert stats.path == path
    assert stats.sheets == {"明细": 5, "汇总": 3}


def test_household_unit_totals_sum_family_size(tmp_path, both_paths):
    rows = household_rows()
    path = tmp_path / "附件4.xlsx"
    stats = write_annex_workbook(
        path, title="附件4", columns=HOUSEHOLD_COLUMNS, rows=rows, summary=summarize(rows),
        settings=SETTINGS, generated_at=GENERATED, amount_columns=HOUSEHOLD_AMOUNTS)
    assert (stats.households, stats.persons) == (3, 9)  # 2 + "3" + 4
    ws = openpyxl.load_workbook(path)["明细"]
    assert ws["A7"].value == "合计"
    assert parse_totals_text(ws["B7"].value) == (3, 9)
    assert ws["A8"].value == SIGNATURE


@pytest.mark.parametrize("unit", ["person", "household"])
def test_empty_table_still_has_header_totals_and_signature(tmp_path, unit):
    rows = person_rows().iloc[0:0]
    summary = summarize(rows, household_key=HEAD_ID, unit=unit, split_by=["类别"])
    assert summary.to_dict("records") == [{"办事处": "合计", "户数": 0, "人数": 0}]
    path = tmp_path / "e.xlsx"
    stats = write_annex_workbook(path, title="附件3", columns=PERSON_COLUMNS, rows=rows,
                                 summary=summary, settings=SETTINGS, generated_at=GENERATED,
                                 unit=unit, household_key=HEAD_ID)
    assert (stats.rows, stats.households, stats.persons) == (0, 0, 0)
    ws = openpyxl.load_workbook(path)["明细"]
    assert [c.value for c in ws[3]] == PERSON_COLUMNS
    assert ws["A4"].value == "合计" and parse_totals_text(ws["B4"].value) == (0, 0)
    assert ws["A5"].value == SIGNATURE


def test_person_unit_requires_household_key(tmp_path):
    rows = person_rows()
    with pytest.raises(ValueError, match="household_key"):
        write_annex_workbook(tmp_path / "x.xlsx", title="t", columns=PERSON_COLUMNS, rows=rows,
                             summary=pd.DataFrame({"办事处": ["合计"]}), settings=SETTINGS,
                             generated_at=GENERATED, unit="person")
    assert not (tmp_path / "x.xlsx").exists()


def test_missing_column_is_an_error(tmp_path):
    rows = person_rows().drop(columns=["村"])
    with pytest.raises(ValueError, match="村"):
        write_person_annex(tmp_path / "x.xlsx", rows=rows)
    assert list(tmp_path.iterdir()) == []


def test_print_setup_and_freeze(tmp_path):
    path = tmp_path / "a.xlsx"
    write_person_annex(path, page_label="附件2")
    wb = openpyxl.load_workbook(path)
    for name in ("明细", "汇总"):
        ws = wb[name]
        assert ws.page_setup.orientation == "landscape"
        assert int(ws.page_setup.paperSize) in (9, 8)  # A4 where it fits, else A3
        # a fixed print scale, never "fit to width" (whose scale could go below 8 pt)
        assert not (ws.sheet_properties.pageSetUpPr and ws.sheet_properties.pageSetUpPr.fitToPage)
        assert printing.sheet_printed_scale(ws) * 10 >= printing.MIN_PRINTED_PT
        assert ws.print_title_rows == "$1:$3"
        assert ws.freeze_panes == "A4"
        assert "第 &P 页，共 &N 页" in ws.oddFooter.center.text
        assert ws.oddHeader.left.text == "附件2"  # the 附件 label on every printed page


def test_column_widths_count_cjk_double(tmp_path):
    rows = pd.DataFrame({"a": ["x" * 12] * 3, "b": ["汉" * 12] * 3})
    path = tmp_path / "w.xlsx"
    write_sheets_workbook(path, {"表": ("t", rows)}, SETTINGS, GENERATED)
    ws = openpyxl.load_workbook(path)["表"]
    wa, wb_ = ws.column_dimensions["A"].width, ws.column_dimensions["B"].width
    assert wb_ > wa + 8


# --------------------------------------------------------------------------------------------
# Cell types: IDs, amounts, formulas
# --------------------------------------------------------------------------------------------


def test_ids_are_text_and_unchanged(tmp_path, both_paths):
    rows = person_rows()
    rows["身份证号"] = rows["身份证号"].astype(object)
    rows.loc[2, "身份证号"] = 210505197001011230  # an ID that reached us as an int
    path = tmp_path / "a.xlsx"
    write_person_annex(path, rows=rows)
    ws = openpyxl.load_workbook(path)["明细"]
    col = PERSON_COLUMNS.index("身份证号") + 1
    hh = PERSON_COLUMNS.index("户编号") + 1
    expected = list(rows["身份证号"].astype(str))
    for i, r in enumerate(range(4, 9)):
        cell = ws.cell(row=r, column=col)
        assert cell.data_type == "s"
        assert cell.number_format == "@"
        assert cell.value == expected[i]
        assert ws.cell(row=r, column=hh).data_type == "s"
        assert ws.cell(row=r, column=hh).number_format == "@"
    assert ws.cell(row=6, column=col).value == "210505197001011230"


def test_long_integer_outside_text_columns_stays_exact(tmp_path, both_paths):
    frame = pd.DataFrame({"编号": [210505197001011230, 12], "说明": ["a", "b"]}, dtype=object)
    path = tmp_path / "n.xlsx"
    write_sheets_workbook(path, {"表": ("t", frame)}, SETTINGS, GENERATED)
    ws = openpyxl.load_workbook(path)["表"]
    assert ws["A4"].value == "210505197001011230" and ws["A4"].data_type == "s"
    assert ws["A5"].value == 12 and ws["A5"].data_type == "n"


def test_amounts_rounded_half_up_as_numbers(tmp_path, both_paths):
    rows = household_rows()
    path = tmp_path / "a.xlsx"
    write_annex_workbook(path, title="附件4", columns=HOUSEHOLD_COLUMNS, rows=rows,
                         summary=summarize(rows), settings=SETTINGS, generated_at=GENERATED,
                         amount_columns=HOUSEHOLD_AMOUNTS)
    ws = openpyxl.load_workbook(path)["明细"]

    def cell(r, name):
        return ws.cell(row=r, column=HOUSEHOLD_COLUMNS.index(name) + 1)

    assert cell(4, "年人均纯收入").value == pytest.approx(4499.99)  # Decimal('4499.995'), cut to the cent
    assert cell(4, "家庭年纯收入").value == pytest.approx(8999.99)
    assert cell(6, "工资性收入").value == pytest.approx(2.68)  # float 2.675 as typed
    assert cell(5, "家庭年纯收入").value == 12  # str "12"
    assert cell(5, "工资性收入").value is None  # None -> blank
    for r in (4, 5, 6):
        for name in ("家庭年纯收入", "年人均纯收入"):
            c = cell(r, name)
            assert c.data_type == "n"
            assert c.number_format == "0.00"


@pytest.mark.parametrize("value, expected", [
    (Decimal("4499.995"), Decimal("4500.00")),
    (Decimal("2.675"), Decimal("2.68")),
    (Decimal("-2.675"), Decimal("-2.68")),
    ("2.675", Decimal("2.68")),
    (" 1,234.565 ", Decimal("1234.57")),
    (2.675, Decimal("2.68")),
    (1.005, Decimal("1.01")),
    (7, Decimal("7.00")),
    ("", None), (None, None), (float("nan"), None), ("abc", None), (True, None),
])
def test_to_amount(value, expected):
    assert excel.to_amount(value) == expected


def test_amount_that_is_not_a_number_is_kept_as_text(tmp_path, both_paths):
    frame = pd.DataFrame({"金额": [Decimal("1.005"), "待核实", "=1+1"]})
    path = tmp_path / "m.xlsx"
    write_sheets_workbook(path, {"表": ("t", frame)}, SETTINGS, GENERATED, amount_columns=["金额"])
    ws = openpyxl.load_workbook(path)["表"]
    assert ws["A4"].value == pytest.approx(1.01) and ws["A4"].number_format == "0.00"
    assert ws["A5"].value == "待核实" and ws["A5"].data_type == "s"
    assert ws["A6"].value == "=1+1" and ws["A6"].data_type == "s"


def test_formula_like_input_is_stored_as_string(tmp_path, both_paths):
    n = len(FORMULA_LIKE)
    frame = pd.DataFrame({
        "姓名": FORMULA_LIKE,  # a general column
        "身份证号": FORMULA_LIKE,  # a text column
        "备注": ["x"] * n,
    })
    path = tmp_path / "f.xlsx"
    write_sheets_workbook(path, {"表": ("t", frame)}, SETTINGS, GENERATED,
                          text_columns=["身份证号"])
    ws = openpyxl.load_workbook(path)["表"]
    for i, value in enumerate(FORMULA_LIKE):
        for col in ("A", "B"):
            cell = ws[f"{col}{4 + i}"]
            assert cell.data_type == "s", (col, value)
            assert excel_text(cell.value) == value
    # Nothing in the sheet is a formula, and no cell beyond the three columns appeared.
    xml = sheet_xml(path, 1)
    assert "<f>" not in xml and "<f " not in xml
    assert ws.max_column == 3
    # A formula-like string outside a text column carries Excel's quote prefix, so re-editing
    # the cell in Excel does not turn it into a formula either.
    for i, value in enumerate(FORMULA_LIKE):
        assert ws[f"A{4 + i}"].quotePrefix is value.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert not ws["C4"].quotePrefix


def test_formula_like_title_and_headers_are_strings(tmp_path, both_paths):
    frame = pd.DataFrame({"=A1": ["a"], "-B": ["b"]})
    path = tmp_path / "h.xlsx"
    write_sheets_workbook(path, {"表": ("=HYPERLINK(\"x\")", frame)}, SETTINGS, GENERATED)
    ws = openpyxl.load_workbook(path)["表"]
    assert ws["A1"].value == '=HYPERLINK("x")' and ws["A1"].data_type == "s"
    assert [ws["A3"].value, ws["B3"].value] == ["=A1", "-B"]
    assert "<f>" not in sheet_xml(path, 1)


def test_odd_values(tmp_path, both_paths):
    frame = pd.DataFrame({
        "文本": [" 前后空格 ", "a\x01b", "_x0041_", "x" * 40000, pd.NA, "<b>&amp;"],
        "数": [1, 2.5, float("inf"), Decimal("1E+20"), None, True],
        "日期": [dt.date(2019, 4, 30), pd.Timestamp("2019-05-01 08:00"), pd.NaT, dt.date(1899, 1, 1),
                 None, "2019-01-01"],
    }, dtype=object)
    path = tmp_path / "o.xlsx"
    write_sheets_workbook(path, {"表": ("t", frame)}, SETTINGS, GENERATED, text_columns=["文本"])
    ws = openpyxl.load_workbook(path)["表"]
    assert ws["A4"].value == " 前后空格 "
    assert excel_text(ws["A5"].value) == "a\x01b"
    assert excel_text(ws["A6"].value) == "_x0041_"
    assert len(ws["A7"].value) == excel.EXCEL_MAX_STRING
    assert ws["A8"].value is None
    assert ws["A9"].value == "<b>&amp;"
    assert [ws[f"B{r}"].value for r in range(4, 10)] == [1, 2.5, "inf", "100000000000000000000", None, "是"]
    assert ws["C4"].value == dt.datetime(2019, 4, 30) and ws["C4"].number_format == "yyyy-mm-dd"
    assert ws["C5"].value == dt.datetime(2019, 5, 1, 8, 0)
    assert ws["C6"].value is None
    assert ws["C7"].value == "1899-01-01"
    assert ws["C9"].value == "2019-01-01"


def test_streamed_and_api_paths_write_the_same_cells(tmp_path, monkeypatch):
    rows = person_rows()
    out = {}
    for fast in (True, False):
        monkeypatch.setattr(excel, "FAST_ROWS", fast)
        path = tmp_path / f"{fast}.xlsx"
        write_person_annex(path, rows=rows)
        ws = openpyxl.load_workbook(path)["明细"]
        out[fast] = [[(c.value, c.data_type, c.number_format) for c in row] for row in ws.iter_rows()]
    assert out[True] == out[False]


# --------------------------------------------------------------------------------------------
# 汇总 and 设置
# --------------------------------------------------------------------------------------------


def test_summarize_person_unit_with_splits():
    summary = summarize(person_rows(), household_key=HEAD_ID, unit="person",
                        split_by=["类别", "主要致贫原因"])
    assert list(summary.columns) == [
        "办事处", "户数", "人数", "返贫户数", "返贫人数", "重点扶持户数", "重点扶持人数",
        "因病户数", "因病人数", "因残户数", "因残人数"]
    records = summary.set_index("办事处").to_dict("index")
    assert list(records) == ["南芬街道", "铁山街道", "合计"]
    assert records["南芬街道"] == {"户数": 2, "人数": 3, "返贫户数": 1, "返贫人数": 2, "重点扶持户数": 1,
                                "重点扶持人数": 1, "因病户数": 1, "因病人数": 2, "因残户数": 1, "因残人数": 1}
    assert records["铁山街道"]["户数"] == 1 and records["铁山街道"]["人数"] == 2
    assert records["合计"] == {"户数": 3, "人数": 5, "返贫户数": 2, "返贫人数": 4, "重点扶持户数": 1,
                              "重点扶持人数": 1, "因病户数": 2, "因病人数": 4, "因残户数": 1, "因残人数": 1}


def test_summarize_household_unit_orders_causes_by_code_list_and_marks_blanks():
    rows = household_rows()
    rows.loc[1, "办事处"] = None
    summary = summarize(rows, split_by=["主要致贫原因"])
    assert list(summary["办事处"]) == ["南芬街道", "（未填）", "铁山街道", "合计"]
    assert list(summary["人数"]) == [2, 3, 4, 9]
    # 因病 before 因学 as in schema.POVERTY_CAUSES, although 因学 appears first in no row order
    causes = [c.removesuffix("户数") for c in summary.columns if c.endswith("户数") and c != "户数"]
    assert causes == ["因病", "因学", "（未填）"]


def test_summary_sheet_matches_totals(tmp_path):
    path = tmp_path / "a.xlsx"
    write_person_annex(path)
    ws = openpyxl.load_workbook(path)["汇总"]
    assert ws["A1"].value == "附件2 返贫（重点扶持）人口统计表"
    assert ws["A2"].value == ROW2 + UNITS_SUMMARY
    last = get_column_letter(ws.max_column)
    assert {f"A1:{last}1", f"A2:{last}2"} <= {str(r) for r in ws.merged_cells.ranges}  # 汇总 too
    assert [c.value for c in ws[3]][:3] == ["办事处", "户数", "人数"]
    assert [ws["A4"].value, ws["B4"].value, ws["C4"].value] == ["南芬街道", 2, 3]
    assert [ws["A6"].value, ws["B6"].value, ws["C6"].value] == ["合计", 3, 5]
    assert ws["A6"].font.b and not ws["A4"].font.b


def test_settings_sheet_and_document_properties(tmp_path):
    path = tmp_path / "a.xlsx"
    settings = Settings(monitoring_line=Decimal("5200"))
    write_annex_workbook(path, title="附件6", columns=HOUSEHOLD_COLUMNS, rows=household_rows(),
                         summary=summarize(household_rows()), settings=settings,
                         generated_at=GENERATED)
    wb = openpyxl.load_workbook(path)
    assert wb["设置"].sheet_state == "hidden"  # never printed, never counted in the page totals
    record = {row[0]: row[1] for row in sheet_values(wb["设置"])[1:]}
    assert record == {**settings.as_record(), "生成时间": "2019-05-18 09:30"}
    assert record["返贫/重点扶持监测线（元/人·年）"] == "5200"
    assert wb.properties.title == "附件6"
    assert "返贫/重点扶持监测线（元/人·年）=5200" in wb.properties.description
    assert wb.properties.creator == settings.reporting_unit


# --------------------------------------------------------------------------------------------
# Atomic, private writes
# --------------------------------------------------------------------------------------------


class Exploding:
    def __str__(self) -> str:
        raise RuntimeError("boom")

    __repr__ = __str__


@pytest.mark.parametrize("fast", [True, False], ids=["streamed", "api"])
def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch, fast):
    monkeypatch.setattr(excel, "FAST_ROWS", fast)
    path = tmp_path / "draft" / "附件2.xlsx"
    write_person_annex(path)
    before = path.read_bytes()

    # 明细 and 汇总 are already streamed to disk when the third sheet's value raises.
    extra = pd.DataFrame({"说明": ["ok", Exploding()]}, dtype=object)
    with pytest.raises(RuntimeError, match="boom"):
        write_person_annex(path, extra_sheets={"附注": extra})
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["附件2.xlsx"]  # no temp file left


def test_failure_at_close_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "a.xlsx"
    write_person_annex(path)
    before = path.read_bytes()

    def broken_close(self):
        raise OSError("disk full")

    monkeypatch.setattr(excel.xlsxwriter.Workbook, "close", broken_close)
    with pytest.raises(OSError, match="disk full"):
        write_person_annex(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.xlsx"]


def test_leftovers_of_a_killed_write_are_removed_later(tmp_path):
    path = tmp_path / "附件2.xlsx"
    stale_file = tmp_path / ".附件2.xlsx.abc123.tmp"
    stale_dir = tmp_path / ".附件2.xlsx.abc123.x.xlsxwriter"
    fresh_file = tmp_path / ".附件2.xlsx.def456.tmp"  # maybe another write still running
    other = tmp_path / ".附件3.xlsx.abc123.tmp"
    for f in (stale_file, fresh_file, other):
        f.write_bytes(b"PK")
    stale_dir.mkdir()
    (stale_dir / "rows").write_text("张三 210505196001011234")
    old = dt.datetime.now().timestamp() - 2 * excel.STALE_AFTER_SECONDS
    for item in (stale_file, stale_dir, other):
        os.utime(item, (old, old))
    write_person_annex(path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([path.name, fresh_file.name, other.name])


def test_new_file_is_private_and_parents_created(tmp_path):
    path = tmp_path / "reports" / "draft" / "附件2.xlsx"
    write_person_annex(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# --------------------------------------------------------------------------------------------
# write_sheets_workbook
# --------------------------------------------------------------------------------------------


def test_sheets_workbook_layout_and_flags(tmp_path, both_paths):
    members = person_rows()[["姓名", "身份证号", HEAD_ID]].copy()
    members.insert(0, "序号", [9, 9, 9, 9, 9])  # renumbered by the writer
    households = household_rows()[["户主姓名", "户主身份证号", "家庭人口"]]
    path = tmp_path / "附件1_入户调查汇总表.xlsx"
    stats = write_sheets_workbook(
        path,
        {"家庭基本情况": ("入户调查汇总表（家庭基本情况）", households),
         "家庭成员情况": ("入户调查汇总表（家庭成员情况）", members)},
        SETTINGS, GENERATED,
        totals={"家庭基本情况": Totals("household"), "家庭成员情况": ("person", HEAD_ID)},
        signature={"家庭成员情况"})
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["家庭基本情况", "家庭成员情况", "设置"]
    hh, mem = wb["家庭基本情况"], wb["家庭成员情况"]
    assert hh["A1"].value == "入户调查汇总表（家庭基本情况）" and hh["A2"].value == ROW2 + "　　单位：户、人"
    assert [c.value for c in hh[3]] == ["户主姓名", "户主身份证号", "家庭人口"]
    assert [c.value for c in mem[3]] == ["序号", "姓名", "身份证号", HEAD_ID]
    assert [mem.cell(row=r, column=1).value for r in range(4, 9)] == [1, 2, 3, 4, 5]
    assert hh["A7"].value == "合计" and parse_totals_text(hh["B7"].value) == (3, 9)
    assert hh.max_row == 7  # no signature line on this sheet
    assert mem["A9"].value == "合计" and parse_totals_text(mem["B9"].value) == (3, 5)
    assert mem["A10"].value == SIGNATURE
    assert stats.sheet_totals == {"家庭基本情况": (3, 9), "家庭成员情况": (3, 5)}
    assert (stats.households, stats.persons) == (None, None)
    assert stats.rows == 8 and stats.split == {} and stats.notes == []


def test_sheets_workbook_without_flags_has_no_footer(tmp_path):
    frame = pd.DataFrame({"问题编号": ["P1", "P2"], "问题": ["a", "b"]})
    path = tmp_path / "p.xlsx"
    stats = write_sheets_workbook(path, {"问题清单": ("问题清单", frame)}, SETTINGS, GENERATED)
    ws = openpyxl.load_workbook(path)["问题清单"]
    assert ws.max_row == 5
    assert all(c.value != "合计" for c in ws["A"])
    assert stats.households is None and stats.rows == 2


def test_sheet_past_row_limit_is_split(tmp_path, monkeypatch, both_paths):
    monkeypatch.setattr(excel, "EXCEL_MAX_ROWS", 10)  # 3 header + 2 footer rows: 5 data rows each
    n = 12
    frame = pd.DataFrame({"序号": [None] * n, "姓名": [f"人{i}" for i in range(n)],
                          HEAD_ID: [f"h{i // 2}" for i in range(n)]})
    path = tmp_path / "big.xlsx"
    stats = write_sheets_workbook(path, {"家庭成员情况": ("成员", frame)}, SETTINGS, GENERATED,
                                  totals={"家庭成员情况": ("person", HEAD_ID)}, signature=True)
    assert stats.split == {"家庭成员情况": ("家庭成员情况", "家庭成员情况_2", "家庭成员情况_3")}
    assert stats.sheets == {"家庭成员情况": 5, "家庭成员情况_2": 5, "家庭成员情况_3": 2}
    assert stats.notes and "家庭成员情况_3" in stats.notes[0]
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["家庭成员情况", "家庭成员情况_2", "家庭成员情况_3", "设置"]
    seq = []
    for name in wb.sheetnames[:3]:
        ws = wb[name]
        assert ws.max_row <= 10
        assert [c.value for c in ws[3]] == ["序号", "姓名", HEAD_ID]
        seq += [v for (v,) in ws.iter_rows(min_row=4, max_col=1, values_only=True)
                if isinstance(v, int)]
    assert seq == list(range(1, n + 1))  # 序号 continues across the parts
    first, last = wb["家庭成员情况"], wb["家庭成员情况_3"]
    assert all(c.value != "合计" for c in first["A"])
    assert last["A6"].value == "合计" and parse_totals_text(last["B6"].value) == (6, 12)
    assert last["A7"].value == SIGNATURE


def test_sheets_workbook_rejects_unknown_totals_sheet(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        write_sheets_workbook(tmp_path / "x.xlsx", {"a": ("t", pd.DataFrame({"x": [1]}))},
                              SETTINGS, GENERATED, totals={"b": ("household", None)})


# --------------------------------------------------------------------------------------------
# The blank survey template
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blank_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "附件1_2019年脱贫质量回头看入户调查表.xlsx"
    template.write_survey_template(path, SETTINGS)
    return path


def header_labels(ws, ncols: int) -> list[str]:
    """The column labels of the two-row header: row 4, or row 3 where merged down."""
    return [ws.cell(row=4, column=j).value or ws.cell(row=3, column=j).value
            for j in range(1, ncols + 1)]


def test_template_sheets_and_titles(blank_template):
    wb = openpyxl.load_workbook(blank_template)
    assert wb.sheetnames == ["家庭基本情况", "家庭成员情况", "填表说明", "代码表"]
    assert wb["代码表"].sheet_state == "hidden"
    assert wb["家庭基本情况"]["A1"].value == "2019年脱贫质量“回头看”入户调查表（家庭基本情况）"
    assert wb["家庭成员情况"]["A1"].value == "2019年脱贫质量“回头看”入户调查表（家庭成员情况）"
    for name, columns in schema.SURVEY_SHEETS.items():
        ws = wb[name]
        last = get_column_letter(len(columns))
        assert f"A1:{last}1" in {str(r) for r in ws.merged_cells.ranges}
        assert ws["A2"].value == "填报单位：　　　　村代码：　　　　　　填报人：　　　　填报日期："
        assert ws.freeze_panes is not None and ws.freeze_panes.endswith("5")
        assert ws.print_title_rows == "$1:$4"
        assert ws.page_setup.orientation == "landscape"


def test_template_title_follows_reference_year(tmp_path):
    path = tmp_path / "t.xlsx"
    template.write_survey_template(path, Settings(reference_date=dt.date(2020, 4, 30)))
    ws = openpyxl.load_workbook(path)["家庭基本情况"]
    assert ws["A1"].value == "2020年脱贫质量“回头看”入户调查表（家庭基本情况）"


def test_template_two_row_header(blank_template):
    wb = openpyxl.load_workbook(blank_template)
    for name, columns in schema.SURVEY_SHEETS.items():
        ws = wb[name]
        merged = {str(r) for r in ws.merged_cells.ranges}
        assert header_labels(ws, len(columns)) == [c.label for c in columns]
        j = 0
        while j < len(columns):
            col = columns[j]
            letter = get_column_letter(j + 1)
            if not col.group:
                assert f"{letter}3:{letter}4" in merged, col.label
                assert ws.cell(row=4, column=j + 1).value is None
                j += 1
                continue
            k = j
            while k + 1 < len(columns) and columns[k + 1].group == col.group:
                k += 1
            assert ws.cell(row=3, column=j + 1).value == col.group
            if k > j:
                assert f"{letter}3:{get_column_letter(k + 1)}3" in merged, col.group
            for i in range(j, k + 1):
                assert ws.cell(row=4, column=i + 1).value == columns[i].label
            j = k + 1
    # The household sheet has the four groups of inputs.md, each merged across its columns.
    groups = [ws_value for ws_value in (c.value for c in wb["家庭基本情况"][3]) if ws_value in {
        schema.G_GUARANTEE, schema.G_INCOME, schema.G_TRANSFER, schema.G_EXPENSE}]
    assert groups == [schema.G_GUARANTEE, schema.G_INCOME, schema.G_TRANSFER, schema.G_EXPENSE]


def _validations_by_column(ws) -> dict[str, list]:
    out: dict[str, list] = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            out.setdefault(get_column_letter(rng.min_col), []).append((dv, rng))
    return out


def _list_values(wb, dv) -> list[str]:
    formula = dv.formula1
    if formula.startswith('"'):
        return formula.strip('"').split(",")
    m = re.fullmatch(r"'?代码表'?!\$([A-Z]+)\$(\d+):\$([A-Z]+)\$(\d+)", formula.lstrip("="))
    assert m, formula
    ws = wb["代码表"]
    return [ws[f"{m.group(1)}{r}"].value for r in range(int(m.group(2)), int(m.group(4)) + 1)]


def _check_validations(path: Path) -> None:
    wb = openpyxl.load_workbook(path)
    for name, columns in schema.SURVEY_SHEETS.items():
        ws = wb[name]
        by_col = _validations_by_column(ws)
        for j, col in enumerate(columns, start=1):
            letter = get_column_letter(j)
            found = by_col.get(letter, [])
            if col.kind in ("code", "multi", "yesno"):
                expected = list(col.codes) if col.kind != "yesno" else ["是", "否"]
                lists = [(dv, rng) for dv, rng in found if dv.type == "list"]
                assert lists, f"{name} {col.label}: no dropdown"
                dv, rng = lists[0]
                assert (rng.min_row, rng.max_row) == (5, 2000)
                assert _list_values(wb, dv) == expected, col.label
                assert dv.showErrorMessage is (col.kind != "multi"), col.label
            elif col.kind == "amount":
                assert [(dv.type, dv.operator, dv.formula1) for dv, _ in found] == [
                    ("decimal", "greaterThanOrEqual", "0")], col.label


def test_template_dropdowns_cover_every_code_column(blank_template):
    _check_validations(blank_template)


def test_template_long_lists_go_through_code_sheet(tmp_path, monkeypatch):
    monkeypatch.setattr(template, "INLINE_LIST_LIMIT", 10)  # every list is now "too long"
    path = tmp_path / "t.xlsx"
    template.write_survey_template(path, SETTINGS)
    _check_validations(path)
    ws = openpyxl.load_workbook(path)["家庭成员情况"]
    letter = get_column_letter([c.key for c in schema.MEMBER_COLUMNS].index("relation") + 1)
    (relation, _), = _validations_by_column(ws)[letter]
    assert "代码表" in relation.formula1


def test_template_formats_and_protection(blank_template):
    wb = openpyxl.load_workbook(blank_template)
    for name, columns in schema.SURVEY_SHEETS.items():
        ws = wb[name]
        assert ws.protection.sheet is True
        assert not ws.protection.password
        assert ws["A1"].protection.locked and ws["A3"].protection.locked
        assert ws["A2"].protection.locked is False  # the village fills in row 2
        for j, col in enumerate(columns, start=1):
            dim = template.column_dimension(ws, j)
            assert dim is not None, col.label
            assert dim.protection.locked is False, col.label  # data cells are editable
            if col.kind in ("id", "phone") or col.key == "hh_no":
                assert dim.number_format == "@", col.label
            if col.kind == "amount":
                assert dim.number_format == "0.00", col.label


def test_template_instructions_explain_every_column(blank_template):
    ws = openpyxl.load_workbook(blank_template)["填表说明"]
    rows = [r for r in ws.iter_rows(values_only=True)]
    header = rows.index(("表", "分组", "列名", "必填", "填写要求", "可选值"))
    listed = [(r[0], r[2]) for r in rows[header + 1:]]
    assert listed == [(name, c.label) for name, cols in schema.SURVEY_SHEETS.items() for c in cols]
    by_label = {(r[0], r[2]): r for r in rows[header + 1:]}
    cause = by_label[(schema.SHEET_HOUSEHOLDS, "主要致贫原因")]
    assert cause[5] == "、".join(schema.POVERTY_CAUSES)


def test_fill_template_keeps_layout_and_text(blank_template, tmp_path):
    out = tmp_path / "surveys" / "财神庙村.xlsx"
    households = [
        {"hh_no": 21050500400001, "head_name": "张三", "head_id": "21050519800101123X",
         "declared_size": 2, "hh_type": "建档立卡户", "wage_income": 1200.5, "note": "=1+1"},
        {"head_name": "李四", "head_id": "210505198202021234", "declared_size": 1,
         "hh_type": "一般农户", "phone": 13800000000},
    ]
    members = [
        {"head_id": "21050519800101123X", "name": "张三", "person_id": "21050519800101123X",
         "relation": "户主"},
        {"head_id": "21050519800101123X", "name": "王芳", "person_id": 210505198301011244,
         "relation": "配偶"},
        {"head_id": "210505198202021234", "name": "李四", "person_id": "210505198202021234",
         "relation": "户主"},
    ]
    template.fill_template_for_test(blank_template, out, "210505004201", "财神庙村", "思山岭街道",
                                    households, members, filled_on=dt.date(2019, 4, 26))
    wb = openpyxl.load_workbook(out)
    hh, mem = wb["家庭基本情况"], wb["家庭成员情况"]
    for j, c in enumerate(schema.HOUSEHOLD_COLUMNS, start=1):  # cells keep their column's style
        cell = hh.cell(row=5, column=j)
        if cell.value is not None:
            assert cell.protection.locked is False, c.label
    assert hh["A2"].value == ("填报单位：思山岭街道财神庙村　村代码：210505004201　填报人：测试"
                              "　填报日期：2019-04-26")
    labels = [c.label for c in schema.HOUSEHOLD_COLUMNS]
    col = {label: j + 1 for j, label in enumerate(labels)}
    assert header_labels(hh, len(labels)) == labels
    assert [hh.cell(row=r, column=1).value for r in (5, 6)] == [1, 2]
    for label, r, expected in (("户编号", 5, "21050500400001"), ("户主身份证号", 5, "21050519800101123X"),
                               ("联系电话", 6, "13800000000"), ("备注", 5, "=1+1")):
        cell = hh.cell(row=r, column=col[label])
        assert (cell.value, cell.data_type) == (expected, "s"), label
    assert hh.cell(row=5, column=col["户编号"]).number_format == "@"
    assert hh.cell(row=5, column=col["工资性收入"]).value == 1200.5
    mcol = {c.label: j + 1 for j, c in enumerate(schema.MEMBER_COLUMNS)}
    assert mem.cell(row=6, column=mcol["身份证号"]).value == "210505198301011244"
    assert mem.cell(row=8, column=1).value is None
    # Layout kept: merges, validations, protection, hidden code sheet.
    blank = openpyxl.load_workbook(blank_template)
    for name in schema.SURVEY_SHEETS:
        assert {str(r) for r in wb[name].merged_cells.ranges} == {
            str(r) for r in blank[name].merged_cells.ranges}
        assert len(wb[name].data_validations.dataValidation) == len(
            blank[name].data_validations.dataValidation)
        assert wb[name].protection.sheet
    assert wb["代码表"].sheet_state == "hidden"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_fill_template_rejects_unknown_keys(blank_template, tmp_path):
    with pytest.raises(ValueError, match="nonsense"):
        template.fill_template_for_test(blank_template, tmp_path / "x.xlsx", "210505004201", "村",
                                        "街道", [{"nonsense": 1}], [])


def test_filled_template_reads_back_through_the_survey_reader(blank_template, tmp_path):
    from pipeline.io.survey import read_survey

    out = tmp_path / "v.xlsx"
    template.fill_template_for_test(
        blank_template, out, "210505004201", "财神庙村", "思山岭街道",
        [{"head_name": "张三", "head_id": "21050519800101123X", "declared_size": 1,
          "hh_type": "一般农户", "housing_grade": "A"}],
        [{"head_id": "21050519800101123X", "name": "张三", "person_id": "21050519800101123X",
          "relation": "户主"}])
    read = read_survey(out)
    assert read.village_code == "210505004201"
    households = read.sheets[schema.SHEET_HOUSEHOLDS]
    assert households.missing == [] and households.extra == []
    assert list(households.frame["head_id"]) == ["21050519800101123X"]
    assert list(read.sheets[schema.SHEET_MEMBERS].frame["person_id"]) == ["21050519800101123X"]
