"""End to end: `huitoukan sample` with a fixed seed, `huitoukan run`, and the exact households of
the 附件 tables compared with what the generator knows it put there.

Then paper the office can print, post and file (issue #13), on the same run: every workbook the
pipeline writes is read back and measured — printed text size from its page setup, and, through
LibreOffice, from the PDF it prints (page count and text size) — and its numbers and fields are
checked against outputs.md and rules.md."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from conftest import read_detail_sheet, run_district
from pg_support import instance_env

from pipeline import charts, cli
from pipeline.io import printing
from pipeline.rules.annex import ANNEXES
from pipeline.rules.notices import ALLOWED_COLUMNS, NOTICE_SUFFIX
from pipeline.settings import DETECTION_THRESHOLDS, LABELS, Settings

pytestmark = pytest.mark.integration
# ~500 households in 10 villages: every rule, finding, planted case and file role of the
# generator (the answer key's counts), every 附件 with dozens of households; 900 planted the same
# cases with one D5 hit more, and cost the file 44 s of CPU instead of 35 (LibreOffice printing
# 附件1, and openpyxl reading it in full, grow with its rows)
SEED, HOUSEHOLDS = 11, 500


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    root = tmp_path_factory.mktemp("district")
    raw = root / "raw"
    assert cli.main(["sample", "--out", str(raw), "--households", str(HOUSEHOLDS), "--seed", str(SEED)]) == 0
    key = json.loads((raw / ".answer_key.json").read_text(encoding="utf-8"))
    with instance_env(root):  # the PostgreSQL instance when HUITOUKAN_TEST_PG_URL is set (.ci/run)
        warehouse, reports, _ = run_district(raw, root)
    return key, warehouse, reports


class Workbooks:
    """Every workbook a test reads, loaded once for the module and shared (full mode: styles,
    page setup, merged cells): loading them is most of the paper tests' time — 附件1's summary,
    ~1,300 member rows, takes seconds, and seven tests read it. The tests only read them, and never
    ask for a cell outside a sheet's used range (openpyxl would create it, and the next test would
    see a larger sheet)."""

    def __init__(self):
        self._loaded: dict[Path, openpyxl.Workbook] = {}

    def __call__(self, path: Path) -> openpyxl.Workbook:
        if path not in self._loaded:
            self._loaded[path] = openpyxl.load_workbook(path)
        return self._loaded[path]


@pytest.fixture(scope="module")
def book() -> Workbooks:
    return Workbooks()


def _rows(book, reports, annex_key):
    return read_detail_sheet(book(reports / "draft" / ANNEXES[annex_key].filename)["明细"])


@pytest.mark.parametrize("annex_key,flag", [("annex4", "in_annex4"), ("annex5", "in_annex5"), ("annex6", "in_annex6")])
def test_household_tables_hold_exactly_the_expected_households(district, book, annex_key, flag):
    key, _, reports = district
    expected = {h["head_id"] for h in key["households"] if h[flag]}
    got = [r["户主身份证号"] for r in _rows(book, reports, annex_key)]
    assert len(got) == len(set(got)), "a household listed twice"
    assert set(got) == expected
    assert expected, "the sample must put households into every table"


def test_household_tables_show_the_expected_income(district, book):
    key, _, reports = district
    truth = {h["head_id"]: h for h in key["households"]}
    for row in _rows(book, reports, "annex6"):
        h = truth[row["户主身份证号"]]
        assert row["家庭人口"] == h["size"]
        assert f"{row['年人均纯收入']:.2f}" == h["per_capita"]
        assert f"{row['家庭年纯收入']:.2f}" == h["net_income"]


@pytest.mark.parametrize("annex_key,field", [("annex2", "annex2"), ("annex3", "annex3")])
def test_person_tables_hold_the_expected_households_and_categories(district, book, annex_key, field):
    key, _, reports = district
    expected = {h["head_id"]: h[field] for h in key["households"] if h[field]}
    got = {r["身份证号"]: r["类别"] for r in _rows(book, reports, annex_key) if r["与户主关系"] == "户主"}
    assert got == expected


def test_blocked_households_are_in_no_table(district, book):
    key, _, reports = district
    blocked = {h["head_id"] for h in key["households"] if h["blocking"]}
    assert blocked, "the sample plants blocking problems"
    for annex_key in ("annex4", "annex5", "annex6"):
        assert not blocked & {r["户主身份证号"] for r in _rows(book, reports, annex_key)}


# --------------------------------------------------------------------------------------------
# Paper (issue #13), on the same run
# --------------------------------------------------------------------------------------------

_ID = re.compile(r"\d{17}[\dXx]")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")


@pytest.fixture(scope="module")
def paper(district):
    key, warehouse, reports = district
    return key, warehouse.parent / "raw", warehouse, reports


def workbooks(reports: Path) -> list[Path]:
    return sorted(p for p in reports.rglob("*.xlsx") if not p.name.startswith("."))


def visible(wb):
    return [ws for ws in wb.worksheets if ws.sheet_state == "visible"]


# --------------------------------------------------------------------------------------------
# 1–2. Legible print, measured from the page setup of every workbook
# --------------------------------------------------------------------------------------------


def test_every_printing_sheet_prints_text_of_at_least_8_pt(paper, book):
    """font size × print scale (paper, orientation, fixed scale or fit-to-width and the column
    widths), for every non-empty cell of every visible sheet of every workbook written."""
    _, _, _, reports = paper
    smallest = []
    for path in workbooks(reports):
        wb = book(path)
        for ws in visible(wb):
            size, cell = printing.smallest_printed_pt(ws)
            smallest.append((size, f"{path.name}/{ws.title}!{cell}"))
            assert size >= printing.MIN_PRINTED_PT - 1e-9, (path.name, ws.title, cell, size)
            setup = ws.page_setup
            assert setup.orientation == "landscape" or ws.title in ("公示", "公告"), (path.name, ws.title)
            assert int(setup.paperSize) in (printing.A4, printing.A3)
            # one page wide, or several with the identifying columns repeated on each
            width = sum(printing.column_points(w) for w in printing.sheet_column_widths(ws))
            fits = width * printing.sheet_printed_scale(ws) <= printing.sheet_printable_width_pt(ws)
            assert fits or ws.print_title_cols, (path.name, ws.title)
    assert len(smallest) > 30
    print("smallest printed text:", min(smallest))


def test_settings_and_code_sheets_are_hidden(paper, book):
    _, _, _, reports = paper
    for path in workbooks(reports):
        wb = book(path)
        for ws in wb.worksheets:
            if ws.title in ("设置", "代码表"):
                assert ws.sheet_state == "hidden", (path.name, ws.title)


def test_wrapped_text_rows_have_their_height(paper, book):
    _, _, _, reports = paper
    ws = book(reports / "draft" / "核查比对结果表.xlsx")["明细"]
    tall = 0
    for row in ws.iter_rows(min_row=4):
        if not isinstance(row[0].value, int):  # 合计, the signature line
            continue
        for cell in row:
            if isinstance(cell.value, str) and cell.alignment.wrap_text:
                width = printing.sheet_column_widths(ws)[cell.column - 1]
                lines = printing.text_lines(cell.value, width - 0.71)
                if lines > 1:
                    height = ws.row_dimensions[cell.row].height
                    assert height and height >= printing.row_height(lines) - 0.1, cell.coordinate
                    tall += 1
    assert tall, "the sample has long findings that wrap"


def test_titles_and_row_2_are_merged_across_the_printed_width(paper, book):
    _, _, _, reports = paper
    for path in [*sorted((reports / "draft").glob("*.xlsx")), reports / "问题汇总.xlsx"
                 if (reports / "问题汇总.xlsx").exists() else reports / "problems" / "问题汇总.xlsx"]:
        wb = book(path)
        for ws in visible(wb):
            if ws.title in (charts.INCOME_SHEET, charts.PROGRESS_SHEET):
                continue  # a chart and its figures, no table
            merged = {str(r) for r in ws.merged_cells.ranges}
            if ws.print_title_cols:  # several pages across: over the repeated columns
                last = ws.print_title_cols.split(":")[1].strip("$")
            else:
                last = openpyxl.utils.get_column_letter(ws.max_column)
            if ws.print_title_cols and f"A1:{last}1" not in merged:
                assert any(m.startswith("A1:") for m in merged), (path.name, ws.title)
                continue
            assert {f"A1:{last}1", f"A2:{last}2"} <= merged, (path.name, ws.title, last)


# --------------------------------------------------------------------------------------------
# 2. … and through LibreOffice: the PDF the office would print
# --------------------------------------------------------------------------------------------


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


# the smallest printed text a PDF may show: MIN_PRINTED_PT, less LibreOffice's rounding
LEGIBLE_PT = printing.MIN_PRINTED_PT - 0.05


def _printed_pages(pdf_path: Path) -> list[tuple[float, str]]:
    """Each page of a PDF: the smallest printed size (pt) of the characters that are not blank,
    and the page's text. A character's size is its font size × the vertical scale of its matrix,
    as pdfium (C++) reads them; pdfminer, in Python, took about a second a page. Both give the
    same characters at the same sizes (to 0.001 pt), except for turned text — a chart's slanted
    axis labels — where pdfminer reports the height of the glyph's upright box instead of its size.

    Every character of a text object has the object's font size and matrix, so the smallest text
    object of a page is a lower bound of its characters' sizes, read in a few calls per object;
    character by character (three calls each, ~450,000 characters on 附件1's 142 pages, most of
    the reading) only where that bound is below LEGIBLE_PT — a blank run may be the small one,
    and blanks do not count — and on every first page, which also checks the bound. The verdict
    is the one that measuring every character gives."""
    import pypdfium2 as pdfium

    pages = []
    doc = pdfium.PdfDocument(pdf_path)
    try:
        for n, page in enumerate(doc, start=1):
            text = page.get_textpage()
            bound = _smallest_text_object(page)
            smallest = bound
            if n == 1 or bound is None or bound < LEGIBLE_PT:
                smallest = _smallest_character(text)
                assert bound is None or bound <= smallest + 1e-6, (pdf_path.name, n, bound, smallest)
            pages.append((smallest, text.get_text_range()))
            text.close()
            page.close()
    finally:
        doc.close()
    return pages


def _smallest_text_object(page) -> float | None:
    """The smallest font size × vertical scale over a page's text objects, blank or not; None when
    the page holds a form XObject (its text's matrices are not the objects' own)."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    smallest, size, matrix = math.inf, ctypes.c_float(), pdfium_c.FS_MATRIX()
    for i in range(pdfium_c.FPDFPage_CountObjects(page.raw)):
        obj = pdfium_c.FPDFPage_GetObject(page.raw, i)
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
            return None
        if kind == pdfium_c.FPDF_PAGEOBJ_TEXT:
            assert pdfium_c.FPDFTextObj_GetFontSize(obj, size) and pdfium_c.FPDFPageObj_GetMatrix(obj, matrix)
            smallest = min(smallest, size.value * math.hypot(matrix.c, matrix.d))
    return smallest


def _smallest_character(text) -> float:
    """The smallest printed size of a page's characters that are not blank, one by one."""
    import pypdfium2.raw as pdfium_c

    smallest, matrix = math.inf, pdfium_c.FS_MATRIX()
    for i in range(text.count_chars()):
        if chr(pdfium_c.FPDFText_GetUnicode(text.raw, i)).strip():
            assert pdfium_c.FPDFText_GetMatrix(text.raw, i, matrix), i
            smallest = min(smallest, pdfium_c.FPDFText_GetFontSize(text.raw, i) * math.hypot(matrix.c, matrix.d))
    return smallest


@pytest.mark.printing
def test_libreoffice_prints_every_output_legibly(paper, book, tmp_path):
    soffice = _soffice()
    if soffice is None:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice (soffice) is not installed: .ci/run installs it")
        pytest.skip("LibreOffice (soffice) is not installed")
    pytest.importorskip("pypdfium2")
    _, _, _, reports = paper
    chosen = [*sorted((reports / "draft").glob("*.xlsx")), *sorted((reports / "template").glob("*.xlsx")),
              reports / "进度.xlsx", reports / "problems" / "问题汇总.xlsx",
              next((reports / "problems").rglob("*_问题清单.xlsx")),
              *sorted((reports / "public").glob(f"*{NOTICE_SUFFIX}"))[:1],
              *sorted((reports / "public").glob(f"*/*{NOTICE_SUFFIX}"))[:2]]
    profile = tmp_path / "profile"
    subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), *map(str, chosen)], check=True, capture_output=True, timeout=600)
    sizes, pages = {}, {}
    for path in chosen:
        pdf_path = tmp_path / (path.stem + ".pdf")
        assert pdf_path.exists(), path.name
        printed = _printed_pages(pdf_path)
        pages[path.name] = len(printed)
        smallest = math.inf
        for n, (page_smallest, text) in enumerate(printed, start=1):
            smallest = min(smallest, page_smallest)
            text = re.sub(r"\s", "", text)  # a cell's text may wrap over lines
            # the page totals count the printed pages only (设置 and 代码表 never print)
            m = re.search(r"第(\d+)页，共(\d+)页", text)
            assert m and int(m.group(1)) == n and int(m.group(2)) == len(printed), (path.name, n)
            assert "设置项" not in text and "算账式脱贫带宽" not in text, (path.name, n)
        sizes[path.name] = smallest
    print("printed pages:", pages)
    print("smallest printed text (pt):", sizes)
    assert min(sizes.values()) >= LEGIBLE_PT, sizes
    notice = next(p.name for p in chosen if p.parent.name != "public" and p.name.endswith(NOTICE_SUFFIX))
    rows = book(next(p for p in chosen if p.name == notice)).active.max_row
    assert pages[notice] <= max(1, math.ceil(rows / 30)) + 1  # about one A4 page per 30 households


# --------------------------------------------------------------------------------------------
# 3. Numbers and fields
# --------------------------------------------------------------------------------------------


def _per_capita(rows):
    return [Decimal(f"{r['年人均纯收入']:.2f}") for r in rows]


def test_incomes_shown_never_contradict_their_table(paper, book):
    _, _, _, reports = paper
    annex = {k: _rows(book, reports, k) for k in ANNEXES}
    assert all(v < 5000 for v in _per_capita(annex["annex4"]) + _per_capita(annex["annex6"]))
    assert all(v < 4500 for v in _per_capita(annex["annex5"]))
    for r in annex["annex2"]:
        if r["类别"] == "重点扶持":
            assert 4000 <= r["年人均纯收入"] < 5000 or r["三保障问题"], r["序号"]
    for r in annex["annex3"]:
        if r["类别"] == "重点扶持":
            assert 4500 <= r["年人均纯收入"] < 5000 or r["三保障问题"], r["序号"]


def test_per_capita_is_cut_down_to_the_cent(paper, book):
    key, _, _, reports = paper
    truth = {h["head_id"]: h for h in key["households"]}
    for r in _rows(book, reports, "annex6"):
        h = truth[r["户主身份证号"]]
        cents = int(Decimal(h["net_income"]) * 100)
        assert Decimal(f"{r['年人均纯收入']:.2f}") == Decimal(cents // h["size"]) / 100


def _totals(ws):
    from pipeline.io.excel import parse_totals_text

    for row in ws.iter_rows(values_only=True):
        if row and row[0] == "合计":
            return next(parse_totals_text(str(v)) for v in row if parse_totals_text(str(v or "")))
    return None


def test_persons_are_counted_one_way(paper, book):
    _, _, warehouse, reports = paper
    wb = book(reports / "draft" / "附件1_入户调查汇总表.xlsx")
    _, persons_hh = _totals(wb["家庭基本情况"])
    _, persons_m = _totals(wb["家庭成员情况"])
    summary = list(wb["汇总"].iter_rows(values_only=True))
    header = summary[2]
    total = next(r for r in summary if r[0] == "合计")
    cover = book(reports / "problems" / "问题汇总.xlsx")["覆盖情况"]
    rows = list(cover.iter_rows(values_only=True))
    surveyed = next(r for r in rows if r[0] == "合计")[rows[2].index("调查人数")]
    assert persons_hh == persons_m == total[header.index("人数")] == surveyed
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    orphans = con.execute("SELECT count(*) FROM members WHERE hh_key NOT IN (SELECT hh_key FROM households)").fetchone()[0]
    con.close()
    assert orphans >= 1, "the sample plants a member whose household is not surveyed (B4)"


def test_village_workbooks_carry_no_detection_threshold(paper, book):
    _, _, _, reports = paper
    labels = {LABELS[k] for k in DETECTION_THRESHOLDS}
    for path in (reports / "problems").rglob("*_问题清单.xlsx"):
        wb = book(path)
        record = {r[0] for r in wb["设置"].iter_rows(values_only=True)}
        assert not labels & record, path.name
        assert not any(label in (wb.properties.description or "") for label in labels)
        for ws in visible(wb):
            for row in ws.iter_rows(values_only=True):
                assert not any(isinstance(v, str) and re.search(r"\d+–\d+元", v) for v in row), path.name
    record = {r[0] for r in book(reports / "draft" / ANNEXES["annex4"].filename)["设置"].iter_rows(values_only=True)}
    assert labels <= record  # the district's own drafts record them


def test_times_are_written_as_people_read_them(paper, book):
    _, _, _, reports = paper
    for path in workbooks(reports):
        for ws in book(path).worksheets:
            for row in ws.iter_rows(max_row=min(40, ws.max_row), values_only=True):
                for v in row:
                    if isinstance(v, str):
                        for m in _TIME.finditer(v):
                            assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", m.group(0)), (path.name, v)


# --------------------------------------------------------------------------------------------
# 4. The notices
# --------------------------------------------------------------------------------------------


def test_a_notice_per_farming_village_and_per_subdistrict(paper):
    key, _, _, reports = paper
    farming = [v for v in key["villages"] if v["farming"]]
    public = reports / "public"
    for v in farming:
        assert (public / v["subdistrict_name"] / f"{v['village_code']}_{v['village_name']}{NOTICE_SUFFIX}").exists()
    subs = {(v["subdistrict_code"], v["subdistrict_name"]) for v in farming}
    for code, name in subs:
        assert (public / f"{code}_{name}{NOTICE_SUFFIX}").exists()
    assert len(list(public.rglob("*.xlsx"))) == len(farming) + len(subs)


def test_notices_list_the_households_of_annex_2_and_3_and_nothing_private(paper, book):
    key, _, _, reports = paper
    expected = {h["head_id"]: (h["annex2"] or h["annex3"]) for h in key["households"] if h["annex2"] or h["annex3"]}
    by_village = {}
    for h in key["households"]:
        if h["head_id"] in expected:
            by_village.setdefault(h["village_code"], []).append((expected[h["head_id"]], h["size"]))
    settings = Settings()
    for v in (v for v in key["villages"] if v["farming"]):
        path = reports / "public" / v["subdistrict_name"] / f"{v['village_code']}_{v['village_name']}{NOTICE_SUFFIX}"
        wb = book(path)
        assert wb.sheetnames == ["公示"]
        ws = wb["公示"]
        cells = [c for row in ws.iter_rows(values_only=True) for c in row if c is not None]
        text = "\n".join(map(str, cells))
        assert ws["A1"].value.replace("\n", "") == f"{v['village_name']}2019年脱贫质量“回头看”拟纳入（返贫、新识别）人员名单公示"
        assert f"{v['village_name']}村民委员会" in text and "监督电话" in text
        assert "公示期：2019年5月1日至2019年5月7日（7天）" in text and "异议" in text and "2019年5月1日" in text
        assert not _ID.search(text)
        for word in ("因病", "因残", "数据截至", "生成时间", "身份证", "收入", "电话：1"):
            assert word not in text, (path.name, word)
        mine = by_village.get(v["village_code"], [])
        if mine:
            assert [c.value for c in ws[3]] == ["序号", "户主姓名", "家庭人口", "类别"]
            assert set(c.value for c in ws[3]) <= ALLOWED_COLUMNS
            got = sorted((r[3], r[2]) for r in ws.iter_rows(min_row=4, max_row=3 + len(mine), values_only=True))
            assert got == sorted(mine)
            assert ws.row_breaks.count == (len(mine) - 1) // 30
        else:
            assert "没有拟纳入" in text
    assert settings.supervision_phone == ""  # a blank line to fill in by hand, never a made-up number


def test_new_settings_are_in_both_lists():
    import dataclasses

    from pipeline.resources.settings import SettingsResource

    fields = [f.name for f in dataclasses.fields(Settings)]
    assert {"notice_start", "notice_days", "supervision_phone", "city_name"} <= set(fields)
    assert set(fields) == set(SettingsResource.model_fields) == set(LABELS)
    assert Settings().notice_days == 7


# --------------------------------------------------------------------------------------------
# 5. Problem lists
# --------------------------------------------------------------------------------------------


def test_problem_lists_name_the_file_the_household_and_what_was_typed(paper, book):
    key, raw, _, reports = paper
    from pipeline.rules.problems import LIST_COLUMNS

    seen_typed = 0
    for path in (reports / "problems").rglob("*_问题清单.xlsx"):
        ws = book(path)["问题清单"]
        rows = list(ws.iter_rows(values_only=True))
        assert list(rows[2]) == list(LIST_COLUMNS)
        files = {p.name for p in (raw / "surveys").rglob("*") if p.is_file()}
        for r in rows[3:]:
            rec = dict(zip(rows[2], r))
            if rec["问题编号"] is None:
                continue
            if rec["文件"]:
                assert rec["文件"] in files and "/" not in rec["文件"]
            if rec["规则"] in ("B1", "B3") and rec["列"] == "身份证号" and rec["原值"]:
                assert "*" not in rec["原值"]  # as typed, unmasked: the list goes back to the typist
                seen_typed += 1
    assert seen_typed
    for ws in book(reports / "problems" / "问题汇总.xlsx").worksheets:
        for row in ws.iter_rows(values_only=True):
            assert not any(isinstance(v, str) and _ID.search(v) for v in row)


# --------------------------------------------------------------------------------------------
# 8. Details a city reviewer would question
# --------------------------------------------------------------------------------------------


def test_annex_titles_labels_units_and_summaries(paper, book):
    _, _, _, reports = paper
    wb2 = book(reports / "draft" / ANNEXES["annex2"].filename)
    assert wb2["明细"]["A1"].value == "本溪市2019年度脱贫质量“回头看”返贫(重点扶持)人口统计表"
    heads = {}
    for k, annex in ANNEXES.items():
        wb = book(reports / "draft" / annex.filename)
        for ws in visible(wb):
            assert ws.oddHeader.left.text == annex.label
            assert "单位：" in ws["A2"].value
        heads[k] = [c.value for c in wb["汇总"][3]]
        assert "单位：户、人" in wb["汇总"]["A2"].value
    assert "元" in book(reports / "draft" / ANNEXES["annex4"].filename)["明细"]["A2"].value
    causes = [h for h in heads["annex2"][7:]]
    assert heads["annex2"][3:7] == ["返贫户数", "返贫人数", "重点扶持户数", "重点扶持人数"]
    assert heads["annex3"][3:7] == ["新识别户数", "新识别人数", "重点扶持户数", "重点扶持人数"]
    assert heads["annex3"][7:] == causes and len(causes) == 2 * 13  # zero columns kept, same order
    a1 = book(reports / "draft" / "附件1_入户调查汇总表.xlsx")
    assert "汇总表（汇总）" not in a1["汇总"]["A1"].value


def test_household_status_is_written_one_way(paper, book):
    _, _, _, reports = paper
    a1 = {r["户状态(比对)"] for r in detail_rows(book(reports / "draft" / "附件1_入户调查汇总表.xlsx")["家庭基本情况"])}
    cc = {r["户状态"] for r in detail_rows(book(reports / "draft" / "核查比对结果表.xlsx")["明细"])}
    pattern = re.compile(r"(建档立卡户·.+|历年清退户|一般农户)")
    assert all(pattern.fullmatch(v) for v in a1 | cc if v), a1 | cc
    assert not any("（" in v for v in a1 | cc if v)


def detail_rows(ws) -> list[dict]:
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[2], r)) for r in rows[3:] if isinstance(r[0], int)]


def test_progress_shows_no_english_folder_paths(paper, book):
    _, _, _, reports = paper
    for ws in book(reports / "进度.xlsx").worksheets:
        if ws.title == "设置":
            continue
        for row in ws.iter_rows(values_only=True):
            for v in row:
                assert not (isinstance(v, str) and re.search(r"[A-Za-z_]+/", v)), (ws.title, v)


def test_template_instructions_and_widths(paper, book):
    _, _, _, reports = paper
    from pipeline.io.template import column_dimension

    wb = book(next((reports / "template").glob("*.xlsx")))
    for row in wb["填表说明"].iter_rows(min_row=2, values_only=True):
        text = row[4] if len(row) > 4 else None
        if isinstance(text, str) and "；" in text:
            parts = text.split("；")
            assert not any(p != q and p in q for p in parts for q in parts), text
    ws = wb["家庭基本情况"]
    col = [c.value for c in ws[4]].index("户编号") + 1 if "户编号" in [c.value for c in ws[4]] else \
        [c.value for c in ws[3]].index("户编号") + 1
    assert column_dimension(ws, col).width >= 16  # 14 digits
    assert ws.oddHeader.left.text == "附件1"
def test_every_row_of_every_survey_file_is_accounted_for_as_the_key_says(district):
    """Issue #11: per file and sheet, rows seen = rows used + rows set aside by reason, exactly as
    the generator wrote them — the sheets named with extra words (and the instructions and empty
    sheet beside them), the blank line inside a merged block and the 合计 row included."""
    import duckdb

    key, warehouse, _ = district
    con = duckdb.connect(str(warehouse), read_only=True)
    got: dict = {}
    for file, name, table, seen, used in con.execute(
            "SELECT file, sheet_name, sheet, rows_seen, rows_used FROM survey_sheet_accounts").fetchall():
        got.setdefault(file, {})[name] = {"sheet": name, "table": table, "rows_seen": seen, "rows_used": used,
                                          "set_aside": {}}
    for file, name, reason, n in con.execute(
            "SELECT file, sheet_name, reason, count(*) FROM survey_rows_set_aside GROUP BY ALL").fetchall():
        got[file][name]["set_aside"][reason] = n
    for sheets in got.values():
        for a in sheets.values():
            a["set_aside"] = dict(sorted(a["set_aside"].items()))
    assert got == {f: {a["sheet"]: a for a in accounts} for f, accounts in key["row_accounts"].items()}
    roles = {role for v in key["villages"] for role in v["roles"]}
    assert {"sheet_names", "blank_in_merge", "totals"} <= roles
    # no problem the failures would have caused: a member or household on a blank or 合计 row
    for village in (v for v in key["villages"] if {"blank_in_merge", "totals", "sheet_names"} & set(v["roles"])):
        expected = {(p["rule"], p["row"]) for p in key["problems"] if p["village_code"] == village["village_code"]}
        found = set(con.execute("SELECT rule, row FROM problems WHERE village_code = ? AND rule NOT LIKE 'W6'",
                                [village["village_code"]]).fetchall())
        assert found <= expected, (village["village_name"], found - expected)
