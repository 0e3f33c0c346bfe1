"""pipeline.io.departments: real files in a temporary data root, the mess of inputs.md."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import openpyxl
import pytest
import xlsxwriter

from pipeline.io.departments import (
    DepartmentExtract,
    department_columns,
    parse_number,
    read_department,
    read_departments,
)
from pipeline.rules.ids import check_char
from pipeline.schema import DEPARTMENTS, DEPARTMENTS_BY_KEY

MARKET = DEPARTMENTS_BY_KEY["market"]
TAX = DEPARTMENTS_BY_KEY["tax"]
VEHICLES = DEPARTMENTS_BY_KEY["vehicles"]
HRSS = DEPARTMENTS_BY_KEY["hrss"]


def make_id(birth: str = "19800101", seq: int = 123, area: str = "210505") -> str:
    first17 = f"{area}{birth}{seq:03d}"
    return first17 + check_char(first17)


def id_ending_in_x(birth: str = "19750315") -> str:
    return next(i for i in (make_id(birth, s) for s in range(1000)) if i.endswith("X"))


ID_A = make_id("19800101", 123)
ID_B = make_id("19620704", 451)
ID_X = id_ending_in_x()
ID_C = make_id("19911230", 88)
# A first-generation number: area 6, birth YYMMDD, sequence 3.
ID15 = "210505" + "800101" + "123"


def folder(root: Path, key: str) -> Path:
    path = root / "departments" / key
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list], title: str | None = None) -> None:
    """Rows of cells; a ``dt.date`` is written as a real Excel date cell, a number as a number."""
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("Sheet1")
    date_format = wb.add_format({"num_format": "yyyy-mm-dd"})
    r = 0
    if title:
        ws.write(r, 0, title)
        r += 1
    ws.write_row(r, 0, header)
    for row in rows:
        r += 1
        if row is None:  # a blank row
            continue
        for c, value in enumerate(row):
            if isinstance(value, dt.date):
                ws.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date_format)
            elif isinstance(value, (int, float)):
                ws.write_number(r, c, value)
            elif value is not None:
                ws.write_string(r, c, value)
    wb.close()


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


def by_row(extract: DepartmentExtract, file_name: str) -> dict[int, dict]:
    frame = extract.frame[extract.frame["_file"].str.endswith(file_name)]
    return {int(r["_row"]): r for r in frame.to_dict("records")}


# --------------------------------------------------------------------------------------------
# Resident IDs: the helpers themselves
# --------------------------------------------------------------------------------------------


def test_fifteen_digit_upgrade_is_computed_by_hand():
    # 2 1 0 5 0 5 1 9 8 0 0 1 0 1 1 2 3 · 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 = 163; 163 mod 11 = 9 → "3"
    assert ID_A == "210505198001011233"
    assert ID_X.endswith("X") and len(ID_X) == 18


# --------------------------------------------------------------------------------------------
# market: xlsx batches
# --------------------------------------------------------------------------------------------

MARKET_HEADER = list(MARKET.columns)


@pytest.fixture
def market_root(tmp_path: Path) -> Path:
    d = folder(tmp_path, "market")
    header = [" 统一社会信用代码", "主体\n名称", "主体类型", "经营者或法定代表人", "证件　号码", "登记状态", "成立日期"]
    write_xlsx(d / "批次1.xlsx", header, [
        ["92210505MA0000001A", "张三小卖部", "个体工商户", "张三", ID_A, "存续", dt.date(2018, 3, 5)],
        None,  # a blank row in the middle: the next row is still Excel row 4
        ["92210505MA0000002B", "李四养殖场", "个体工商户", "李四", ID_X.lower(), "在业", "2018/3/5"],
        ["93210505MA0000003C", "王五合作社", "农民专业合作社", "王五", f"  {ID_B} ", "注销", "20170102"],
        ["91210505MA0000004D", "某某有限公司", "有限责任公司", "赵六", float(ID_C), "吊销", "2016年7月"],
        ["91210505MA0000005E", "某某独资企业", "个人独资企业", "钱七", "", "存续", "not a date"],
    ])
    write_xlsx(d / "批次2.xlsx", MARKET_HEADER, [
        # the first row of 批次1 again, with the 15-digit number and the date as text: same row
        ["92210505MA0000001A", "张三小卖部", "个体工商户", "张三", ID15, "存续", "2018年3月5日"],
        ["92210505MA0000006F", "孙八商店", "个体工商户", "孙八", ID_B, "存续", 43164],
    ], title="市场主体登记（第二批）")
    (d / "~$批次1.xlsx").write_bytes(b"lock file, not a workbook")
    (d / ".DS_Store").write_bytes(b"\x00\x01")
    (d / "损坏.xlsx").write_bytes(b"PK\x03\x04 this is not really a zip archive")
    return tmp_path


def test_market_batches_are_unioned_and_normalized(market_root: Path):
    ex = read_department(market_root, MARKET)
    assert ex.returned
    assert [f.path for f in ex.files] == [
        "departments/market/批次1.xlsx", "departments/market/批次2.xlsx", "departments/market/损坏.xlsx",
    ]
    assert list(ex.frame.columns) == department_columns(MARKET)
    first = by_row(ex, "批次1.xlsx")
    assert sorted(first) == [2, 4, 5, 6, 7]  # Excel's own row numbers; row 3 is blank

    assert first[2]["person_id"] == ID_A and first[2]["id_status"] == "ok"
    assert first[2]["成立日期"] == dt.date(2018, 3, 5)  # a real Excel date cell
    assert first[4]["person_id"] == ID_X and first[4]["id_status"] == "repaired"  # lowercase x
    assert first[4]["成立日期"] == dt.date(2018, 3, 5)
    assert first[5]["person_id"] == ID_B and first[5]["id_status"] == "repaired"  # padded spaces
    assert first[5]["证件号码"] == ID_B  # the text, stripped
    assert first[5]["成立日期"] == dt.date(2017, 1, 2)
    assert first[6]["person_id"] is None and first[6]["id_status"] == "damaged"  # stored as a number
    assert first[6]["成立日期"] == dt.date(2016, 7, 1)
    assert first[7]["person_id"] is None and first[7]["id_status"] == "missing"
    assert first[7]["成立日期"] is None
    assert first[2]["主体名称"] == "张三小卖部" and first[2]["统一社会信用代码"] == "92210505MA0000001A"

    second = by_row(ex, "批次2.xlsx")
    # a title line above the header: the header is row 2, data from row 3; the repeated row
    # (row 3, same as 批次1 row 2 once normalized) is counted once, the first copy kept
    assert sorted(second) == [4]
    assert second[4]["成立日期"] == dt.date(2018, 3, 5)  # Excel serial stored as a number

    f1, f2, bad = ex.files
    assert (f1.rows, f2.rows) == (5, 2)
    assert f1.error is None and f1.sheet == "Sheet1" and f1.encoding is None
    assert f1.bad_values == {"成立日期": 1}
    assert ex.rows_read == 7 and ex.rows == 6 and ex.duplicates == 1


def test_corrupt_workbook_is_reported_and_the_other_batches_read(market_root: Path):
    ex = read_department(market_root, MARKET)
    assert [e.path for e in ex.errors] == ["departments/market/损坏.xlsx"]
    assert "Excel" in ex.errors[0].error
    assert ex.errors[0].rows == 0
    assert len(ex.frame) == 6


def test_lock_and_hidden_files_are_not_input(market_root: Path):
    paths = [f.path for f in read_department(market_root, MARKET).files]
    assert not any("~$" in p or "/." in p for p in paths)


def test_fifteen_digit_id_becomes_the_exact_eighteen(tmp_path: Path):
    d = folder(tmp_path, "market")
    write_xlsx(d / "a.xlsx", MARKET_HEADER, [["x", "y", "个体工商户", "z", ID15, "存续", "2018-01-01"]])
    ex = read_department(tmp_path, MARKET)
    row = ex.frame.iloc[0]
    assert row["person_id"] == "210505198001011233"
    assert row["id_status"] == "repaired"
    assert row["证件号码"] == ID15  # the department's own text stays as evidence


def test_missing_folder_is_not_returned_yet(tmp_path: Path):
    ex = read_department(tmp_path, MARKET)
    assert ex.returned is False
    assert ex.files == [] and ex.rows == 0
    assert list(ex.frame.columns) == department_columns(MARKET)


def test_folder_with_only_a_lock_file_is_not_returned(tmp_path: Path):
    (folder(tmp_path, "tax") / "~$明细.xlsx").write_bytes(b"x")
    assert read_department(tmp_path, TAX).returned is False


def test_folder_with_only_unreadable_files_is_returned_with_errors(tmp_path: Path):
    (folder(tmp_path, "tax") / "空.csv").write_bytes(b"")
    (folder(tmp_path, "tax") / "说明.pdf").write_bytes(b"%PDF-1.4")
    ex = read_department(tmp_path, TAX)
    assert ex.returned is True
    assert {e.path: e.error for e in ex.errors} == {
        "departments/tax/空.csv": "文件为空",
        "departments/tax/说明.pdf": "不支持的文件类型（.pdf），请提供 .xlsx 或 .csv",
    }
    assert list(ex.frame.columns) == department_columns(TAX) and ex.rows == 0


def test_password_and_sheet_without_id_column(tmp_path: Path):
    d = folder(tmp_path, "market")
    write_xlsx(d / "无证件号.xlsx", ["统一社会信用代码", "主体名称", "身份证"], [["a", "b", ID_A]])
    ex = read_department(tmp_path, MARKET)
    assert ex.returned and ex.rows == 0
    assert "证件号码" in ex.errors[0].error


def test_subfolders_are_read(tmp_path: Path):
    d = folder(tmp_path, "market")
    (d / "第二批").mkdir()
    write_xlsx(d / "第二批" / "补充.xlsx", MARKET_HEADER, [["x", "y", "个体工商户", "z", ID_A, "存续", "2018-01-01"]])
    ex = read_department(tmp_path, MARKET)
    assert ex.frame["_file"].tolist() == ["departments/market/第二批/补充.xlsx"]


def test_legacy_xls(tmp_path: Path):
    xlwt = pytest.importorskip("xlwt")
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Sheet1")
    for c, name in enumerate(MARKET_HEADER):
        ws.write(0, c, name)
    for c, value in enumerate(["x", "y", "个体工商户", "z", ID_A, "在业"]):
        ws.write(1, c, value)
    ws.write(1, 6, dt.datetime(2018, 3, 5), xlwt.easyxf(num_format_str="YYYY-MM-DD"))
    wb.save(str(folder(tmp_path, "market") / "旧.xls"))
    ex = read_department(tmp_path, MARKET)
    assert ex.files[0].error is None
    row = ex.frame.iloc[0]
    assert (row["person_id"], row["成立日期"], row["_row"]) == (ID_A, dt.date(2018, 3, 5), 2)


# --------------------------------------------------------------------------------------------
# tax: GBK CSV with fallbacks
# --------------------------------------------------------------------------------------------

TAX_HEADER = list(TAX.columns)


def test_tax_gbk_csv_with_utf8_bom_and_utf8_batches(tmp_path: Path):
    d = folder(tmp_path, "tax")
    write_csv(d / "2018个税明细.csv", TAX_HEADER, [
        ["张三", "居民身份证", ID_A, "工资、薪金所得", "2018年1月", "20181231", "36,000.00", "120.5"],
        ["李四", "居民身份证", ID15, "劳务报酬所得", "2018/1/1", "2018-12-31", "８０００元", "0"],
        ["王五", "居民身份证", f"{ID_X[:-1]}x", "工资、薪金所得", "2018-01-01", "2018.12.31", "", ""],
    ], encoding="gbk")
    write_csv(d / "补报_bom.csv", TAX_HEADER, [
        ["赵六", "居民身份证", ID_B, "经营所得", "2018-01-01", "2018-12-31", "5000", "12.34"],
    ], encoding="utf-8-sig")
    write_csv(d / "补报_utf8.csv", TAX_HEADER, [
        ["钱七", "居民身份证", ID_C, "经营所得", "2018-01-01", "2018-12-31", "n/a", "1"],
    ], encoding="utf-8")
    ex = read_department(tmp_path, TAX)
    assert {f.path.rsplit("/", 1)[1]: f.encoding for f in ex.files} == {
        "2018个税明细.csv": "gbk", "补报_bom.csv": "utf-8-sig", "补报_utf8.csv": "utf-8-sig",
    }
    assert all(f.error is None for f in ex.files)
    rows = by_row(ex, "2018个税明细.csv")
    assert rows[2]["纳税人姓名"] == "张三" and rows[2]["所得项目"] == "工资、薪金所得"
    assert rows[2]["所属期起"] == dt.date(2018, 1, 1) and rows[2]["所属期止"] == dt.date(2018, 12, 31)
    assert rows[2]["收入额"] == Decimal("36000.00") and rows[2]["实缴税额"] == Decimal("120.5")
    assert rows[3]["person_id"] == "210505198001011233" and rows[3]["id_status"] == "repaired"
    assert rows[3]["收入额"] == Decimal("8000") and rows[3]["实缴税额"] == Decimal("0")
    assert rows[4]["person_id"] == ID_X and rows[4]["收入额"] is None
    bom = by_row(ex, "补报_bom.csv")
    assert bom[2]["纳税人姓名"] == "赵六" and bom[2]["person_id"] == ID_B
    assert by_row(ex, "补报_utf8.csv")[2]["收入额"] is None
    assert [f.bad_values for f in ex.files] == [{}, {}, {"收入额": 1}]
    assert ex.rows == 5


def test_csv_in_no_known_encoding_is_an_error_with_path(tmp_path: Path):
    d = folder(tmp_path, "tax")
    write_csv(d / "good.csv", TAX_HEADER, [["张三", "居民身份证", ID_A, "x", "2018-01-01", "2018-12-31", "1", "1"]], "gbk")
    (d / "utf16.csv").write_bytes("\n".join([",".join(TAX_HEADER), "a,b"]).encode("utf-16"))
    ex = read_department(tmp_path, TAX)
    assert [e.path for e in ex.errors] == ["departments/tax/utf16.csv"]
    assert "无法读取CSV" in ex.errors[0].error and "gbk" in ex.errors[0].error
    assert ex.rows == 1


def test_csv_missing_the_id_column_is_an_error_and_missing_other_columns_is_not(tmp_path: Path):
    d = folder(tmp_path, "tax")
    write_csv(d / "no_id.csv", ["纳税人姓名", "身份证"], [["张三", ID_A]], "gbk")
    write_csv(d / "short.csv", ["纳税人姓名", "证件号码", "多余列"], [["张三", ID_A, "?"]], "gbk")
    ex = read_department(tmp_path, TAX)
    errors = {f.path.rsplit("/", 1)[1]: f for f in ex.files}
    assert "证件号码" in errors["no_id.csv"].error
    short = errors["short.csv"]
    assert short.error is None and short.rows == 1
    assert short.missing_columns == ("证件类型", "所得项目", "所属期起", "所属期止", "收入额", "实缴税额")
    assert short.extra_columns == ("多余列",)
    assert ex.frame.iloc[0]["实缴税额"] is None


def test_errors_never_carry_an_id(tmp_path: Path):
    d = folder(tmp_path, "tax")
    (d / f"{ID_A}.pdf").write_bytes(b"x")
    (d / "bad.csv").write_bytes(f"{ID_A},{ID_B}\n".encode())
    ex = read_department(tmp_path, TAX)
    for e in ex.errors:
        assert not re.search(r"[0-9]{15,}", e.error)


# --------------------------------------------------------------------------------------------
# vehicles: UTF-8 CSV
# --------------------------------------------------------------------------------------------


def test_vehicles_utf8_csv_line_numbers_and_gbk_fallback(tmp_path: Path):
    d = folder(tmp_path, "vehicles")
    header = list(VEHICLES.columns)
    write_csv(d / "机动车.csv", header, [
        ["张三", ID_A, "辽E12345", "小型汽车", "小型普通客车", "非营运", "2015-06-01", "正常"],
        ["李四", ID_B, "辽E54321", "小型汽车", "轿车\n（备注换行）", "非营运", 42156, "正常"],
        ["", "", "", "", "", "", "", ""],
        ["王五", " " + ID_X[:-1] + "x ", "辽E00001", "普通摩托车", "二轮摩托车", "非营运", "2015年6月1日", "报废"],
    ], encoding="utf-8")
    write_csv(d / "gbk导出.csv", header, [
        ["赵六", ID_C, "辽E99999", "大型汽车", "重型货车", "货运", "20150601", "正常"],
    ], encoding="gbk")
    ex = read_department(tmp_path, VEHICLES)
    assert {f.path.rsplit("/", 1)[1]: f.encoding for f in ex.files} == {"gbk导出.csv": "gb18030", "机动车.csv": "utf-8"}
    rows = by_row(ex, "机动车.csv")
    # the quoted line break makes record 3 span lines 3–4: the blank record is line 5, 王五 line 6
    assert sorted(rows) == [2, 3, 6]
    assert rows[3]["车辆类型"] == "轿车\n（备注换行）"
    assert rows[2]["初次登记日期"] == dt.date(2015, 6, 1) == rows[6]["初次登记日期"]
    assert rows[3]["初次登记日期"] == dt.date(2015, 6, 1)  # "42156": a serial in a text file
    assert rows[6]["person_id"] == ID_X
    assert by_row(ex, "gbk导出.csv")[2]["机动车所有人"] == "赵六"


def test_csv_line_numbers_with_blank_lines_and_ragged_rows(tmp_path: Path):
    d = folder(tmp_path, "vehicles")
    text = ",".join(VEHICLES.columns) + "\n\n" + f"张三,{ID_A},辽E1,小型汽车,轿车,非营运,2015-06-01,正常\n"
    text += f"李四,{ID_B},辽E2,小型汽车,轿车,非营运,2015-06-01,正常,多出来的一格\n\n"
    (d / "a.csv").write_text(text, encoding="utf-8")
    ex = read_department(tmp_path, VEHICLES)
    assert ex.frame["_row"].tolist() == [3, 4]
    assert ex.frame["person_id"].tolist() == [ID_A, ID_B]


# --------------------------------------------------------------------------------------------
# hrss: year-months, numbers in text columns, whole numbers
# --------------------------------------------------------------------------------------------


def test_hrss_year_months_and_numbers(tmp_path: Path):
    d = folder(tmp_path, "hrss")
    write_xlsx(d / "参保.xlsx", list(HRSS.columns), [
        ["张三", ID_A, "企业职工基本养老保险", "某公司", 210505, "201801", "2018-12", 12, "3,500.00"],
        ["李四", ID_B, "城乡居民基本养老保险", "", "210505", dt.date(2018, 3, 15), "2018年12月", "12个月", 100],
        ["王五", ID_C, "失业保险", "某厂", "210505", 201601, 201912.0, "十二", "x"],
    ])
    ex = read_department(tmp_path, HRSS)
    rows = by_row(ex, "参保.xlsx")
    assert rows[2]["参保地行政区划"] == "210505"  # a number cell, not "210505.0"
    assert rows[2]["缴费起始年月"] == dt.date(2018, 1, 1) and rows[2]["缴费终止年月"] == dt.date(2018, 12, 1)
    assert rows[2]["累计缴费月数"] == 12 and type(rows[2]["累计缴费月数"]) is int
    assert rows[2]["月缴费基数"] == Decimal("3500.00")
    assert rows[3]["缴费起始年月"] == dt.date(2018, 3, 1)  # a full date reduced to its month
    assert rows[3]["缴费终止年月"] == dt.date(2018, 12, 1)
    assert rows[3]["累计缴费月数"] == 12 and rows[3]["月缴费基数"] == Decimal("100")
    assert rows[3]["参保单位"] is None
    assert rows[4]["缴费起始年月"] == dt.date(2016, 1, 1) and rows[4]["缴费终止年月"] == dt.date(2019, 12, 1)
    assert rows[4]["累计缴费月数"] is None and rows[4]["月缴费基数"] is None
    assert ex.files[0].bad_values == {"累计缴费月数": 1, "月缴费基数": 1}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1,234.50", Decimal("1234.50")), ("１２３４", Decimal("1234")), (" 5000 元", Decimal("5000")),
        ("￥12.5", Decimal("12.5")), ("-3", Decimal("-3")), (12.5, Decimal("12.5")), (3, Decimal("3")),
        ("120.5㎡", Decimal("120.5")), ("", None), (None, None), ("abc", None), ("1.2.3", None),
        (float("nan"), None), (True, None), ("1e5", None),
    ],
)
def test_parse_number(value, expected):
    assert parse_number(value) == expected


# --------------------------------------------------------------------------------------------
# All departments, and the frame in DuckDB
# --------------------------------------------------------------------------------------------


def test_every_department_reads_its_declared_format(tmp_path: Path):
    for dept in DEPARTMENTS:
        row = ["2018-03-05" if c in dept.date_columns else (ID_A if c == dept.id_column else "1")
               for c in dept.columns]
        d = folder(tmp_path, dept.key)
        if dept.file_format == "csv":
            write_csv(d / "x.csv", list(dept.columns), [row], dept.encoding or "utf-8")
        else:
            write_xlsx(d / "x.xlsx", list(dept.columns), [row])
    extracts = read_departments(tmp_path)
    assert set(extracts) == {d.key for d in DEPARTMENTS}
    for key, ex in extracts.items():
        assert ex.returned and ex.rows == 1 and not ex.errors, key
        assert ex.frame.iloc[0]["person_id"] == ID_A, key
        if ex.files[0].encoding:
            assert ex.files[0].encoding == ex.dept.encoding, key


def test_frame_loads_into_duckdb_with_types(market_root: Path):
    frame = read_department(market_root, MARKET).frame  # noqa: F841 — read by DuckDB by name
    types = dict(duckdb.sql("select column_name, column_type from (describe select * from frame)").fetchall())
    assert types["成立日期"] == "DATE" and types["_row"] == "BIGINT" and types["person_id"] == "VARCHAR"
    assert duckdb.sql("select count(*) from frame where 成立日期 = date '2018-03-05'").fetchall() == [(3,)]


def test_reading_never_changes_the_input(market_root: Path):
    before = {p: p.read_bytes() for p in (market_root / "departments").rglob("*") if p.is_file()}
    read_department(market_root, MARKET)
    after = {p: p.read_bytes() for p in (market_root / "departments").rglob("*") if p.is_file()}
    assert before == after


def test_openpyxl_written_workbook(tmp_path: Path):
    """A workbook written by another library (openpyxl), with a real date cell."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(DEPARTMENTS_BY_KEY["disability"].columns))
    ws.append(["张三", ID_A, f"{ID_A}41", "肢体", "三级", dt.datetime(2017, 5, 6), "有效"])
    wb.save(folder(tmp_path, "disability") / "持证.xlsx")
    ex = read_department(tmp_path, DEPARTMENTS_BY_KEY["disability"])
    row = ex.frame.iloc[0]
    assert (row["person_id"], row["发证日期"], row["残疾等级"]) == (ID_A, dt.date(2017, 5, 6), "三级")
