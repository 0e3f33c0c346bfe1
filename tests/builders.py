"""Builders of small input files with known answers, carrying the mess real files carry."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import xlsxwriter

from pipeline.rules.ids import check_char
from pipeline.schema import (
    HOUSEHOLD_COLUMNS,
    MEMBER_COLUMNS,
    REGISTRY_COLUMNS,
    SHEET_HOUSEHOLDS,
    SHEET_MEMBERS,
    SURVEY_TITLE,
    VILLAGE_COLUMNS,
    Col,
)

VILLAGE = "210505004201"
VILLAGE_NAME = "财神庙村"
SUBDISTRICT = "思山岭街道"


def make_id(birth: str = "19800101", seq: int = 123, area: str = "210505") -> str:
    first17 = f"{area}{birth}{seq:03d}"
    return first17 + check_char(first17)


@dataclass(frozen=True)
class Formula:
    """An amount typed as a formula: Excel saves the formula and the value it computed."""

    text: str  # "=1000+2000"
    value: float


@dataclass
class SheetSpec:
    rows: list[dict]  # keyed by Col.key; a value of type float/int is written as a number cell
    rename: dict[str, str] = field(default_factory=dict)  # label -> label used in this file
    order: list[str] | None = None  # Col.key order
    extra: dict[str, list] = field(default_factory=dict)  # extra columns the village added
    blank_rows_before: list[int] = field(default_factory=list)  # data indexes preceded by a blank row
    repeat_header_before: int | None = None
    notes: bool = True
    merge: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # key -> [(first, last) data idx]
    # The variants of real village files (issue #11); each is accounted for by the reader.
    sheet_name: str | None = None  # the sheet's name in the workbook (default: the table's)
    seq_only_before: list[int] = field(default_factory=list)  # a row with only a 序号 typed
    note_only_before: list[int] = field(default_factory=list)  # a row with only 备注 typed
    extra_only_before: list[int] = field(default_factory=list)  # a row typed only in the first extra column
    totals_after: dict[int, str | None] = field(default_factory=dict)  # data idx -> 合计/小计 label, or None:
    #   a row with no label and no ID whose amounts are the sums (小计: since the last totals row)
    hidden: list[int] = field(default_factory=list)  # data indexes hidden (as a filter hides them)
    freeze: bool = False  # frozen panes below the header
    autofilter: bool = False
    hidden_sheet: bool = False


@dataclass
class Expected:
    """What the reader must account for on one sheet: the builder knows every row it wrote."""

    table: str | None
    rows_seen: int = 0
    used: list[int] = field(default_factory=list)  # Excel rows
    aside: dict[int, str] = field(default_factory=dict)  # Excel row -> reason


# path -> sheet name -> Expected, for every workbook the tests write (checked by check_account).
EXPECTED: dict[Path, dict[str, Expected]] = {}


def write_survey(path: Path, households: SheetSpec, members: SheetSpec, village_code: str = VILLAGE,
                 village_name: str = VILLAGE_NAME, subdistrict: str = SUBDISTRICT, *,
                 before: list[tuple[str, list[list]]] = (), after: list[tuple[str, list[list]]] = (),
                 more_tables: list[tuple[str, SheetSpec]] = (), members_first: bool = False, wps: bool = False,
                 check: bool = True) -> dict[str, dict[int, int]]:
    """Write a survey workbook; returns {sheet: {data index: Excel row}}.

    ``before``/``after``: other sheets (name, rows of cells) before or after the two tables, e.g. a
    ``填表说明`` and an empty ``Sheet3``. ``more_tables``: (table, spec) sheets with a table's layout
    after the two (a template copy with only its header, a duplicate). ``wps``: the file as WPS saves it (its application and
    custom properties, strings inline). Unless ``check=False`` the workbook is read back at once
    and its row account compared with what was written (``check_account``): every workbook the
    tests write goes through here, so the identity rows seen = used + set aside is asserted on all
    of them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
    rows_of = {}
    expected: dict[str, Expected] = {}
    for name, cells in before:
        expected[name] = _write_plain(wb, name, cells)
    tables = [(SHEET_HOUSEHOLDS, HOUSEHOLD_COLUMNS, households), (SHEET_MEMBERS, MEMBER_COLUMNS, members)]
    for sheet, columns, spec in (tables[::-1] if members_first else tables):
        name = spec.sheet_name or sheet
        rows_of[sheet], expected[name] = _write_sheet(wb, name, sheet, columns, spec, village_code, village_name,
                                                      subdistrict)
    for table, spec in more_tables:
        columns = HOUSEHOLD_COLUMNS if table == SHEET_HOUSEHOLDS else MEMBER_COLUMNS
        _, want = _write_sheet(wb, spec.sheet_name, table, columns, spec, village_code, village_name, subdistrict)
        rows = sorted({*want.used, *want.aside})  # a copy with only its header: not used
        expected[spec.sheet_name] = Expected(None, len(rows), [], {r: "工作表未使用" for r in rows})
    for name, cells in after:
        expected[name] = _write_plain(wb, name, cells)
    wb.close()
    if wps:
        as_wps(path)
    EXPECTED[path] = expected
    if check:
        check_account(path)
    return rows_of


def _write_plain(wb, name: str, cells: list[list]) -> Expected:
    ws = wb.add_worksheet(name)
    aside = {}
    for r, row in enumerate(cells):
        for c, value in enumerate(row):
            _write_value(ws, r, c, value)
        if any(v not in (None, "") for v in row):
            aside[r + 1] = "工作表未使用"
    return Expected(None, len(aside), [], aside)


def check_account(path: Path, like: Path | None = None) -> None:
    """The reader's row account of a written workbook (or of ``path``, a copy of the written
    ``like`` in another format) equals what the builder wrote, and balances on every sheet."""
    from pipeline.io.survey import read_survey

    expected = EXPECTED[like or path]
    read = read_survey(path)
    got = {a.sheet_name: a for a in read.accounts}
    assert set(got) == set(expected), (set(got), set(expected))
    for name, want in expected.items():
        a = got[name]
        assert a.balanced(), f"{path.name}/{name}: seen {a.rows_seen} != used {a.rows_used} + set aside {len(a.set_aside)}"
        assert a.table == want.table, (name, a.table, want.table, a.note)
        assert a.used_rows == want.used, (name, a.used_rows, want.used)
        assert a.set_aside == want.aside, (name, a.set_aside, want.aside)
        assert a.rows_seen == want.rows_seen, (name, a.rows_seen, want.rows_seen)


def _amount_keys(columns: tuple[Col, ...]) -> list[str]:
    return [c.key for c in columns if c.kind == "amount" or c.key == "declared_size"]


def _cents(value) -> int:
    from pipeline.rules.values import normalize_amount

    if isinstance(value, Formula):
        value = value.value
    cents, _ = normalize_amount(value)
    return cents or 0


def _write_sheet(wb, name: str, sheet: str, columns: tuple[Col, ...], spec: SheetSpec, village_code, village_name,
                 subdistrict) -> tuple[dict[int, int], Expected]:
    ws = wb.add_worksheet(name)
    by_key = {c.key: c for c in columns}
    keys = spec.order or [c.key for c in columns]
    cols = [by_key[k] for k in keys]
    width = len(cols) + len(spec.extra)
    ws.merge_range(0, 0, 0, width - 1, f"{SURVEY_TITLE}（{sheet}）")
    ws.write_string(1, 0, f"填报单位：{subdistrict}{village_name}　村代码：{village_code}　填报人：王*　填报日期：2019-04-26")
    want = Expected(sheet)

    def header(top: int) -> None:
        c = 0
        while c < len(cols):
            col = cols[c]
            label = spec.rename.get(col.label, col.label)
            if col.group:
                end = c
                while end + 1 < len(cols) and cols[end + 1].group == col.group:
                    end += 1
                if end > c:
                    ws.merge_range(top, c, top, end, col.group)
                else:
                    ws.write_string(top, c, col.group)
                for k in range(c, end + 1):
                    ws.write_string(top + 1, k, spec.rename.get(cols[k].label, cols[k].label))
                c = end + 1
            else:
                ws.merge_range(top, c, top + 1, c, label)
                c += 1
        for i, extra in enumerate(spec.extra):
            ws.merge_range(top, len(cols) + i, top + 1, len(cols) + i, extra)

    header(2)
    r = 4
    positions: dict[int, int] = {}
    amount_cols = [k for k in _amount_keys(columns) if k in keys]
    since = 0  # data index after the last totals row

    def aside(reason: str) -> None:
        nonlocal r
        want.aside[r + 1] = reason
        r += 1

    for i, row in enumerate(spec.rows):
        if i in spec.blank_rows_before:
            aside("空行")
        if i in spec.seq_only_before and "seq" in keys:
            ws.write_number(r, keys.index("seq"), 99)
            aside("空行")
        if i in spec.note_only_before and "note" in keys:
            ws.write_string(r, keys.index("note"), "此户已搬走")
            aside("只有备注")
        if i in spec.extra_only_before and spec.extra:
            ws.write_string(r, len(cols), "王*")
            aside("只有未识别的列有内容")
        if spec.repeat_header_before == i:
            header(r)
            want.aside[r + 1] = want.aside[r + 2] = "重复的表头"
            r += 2
        positions[i] = r + 1
        for c, col in enumerate(cols):
            _write_value(ws, r, c, row.get(col.key))
        for k, (_, values) in enumerate(spec.extra.items()):
            _write_value(ws, r, len(cols) + k, values[i] if i < len(values) else None)
        if i in spec.hidden:
            ws.set_row(r, None, None, {"hidden": True})
        typed = {k for k, v in row.items() if k in keys and v not in (None, "") and not (isinstance(v, str) and not v.strip())}
        typed -= {k for k, spans in spec.merge.items() for first, last in spans if first < i <= last}
        if not typed - {"seq"}:
            want.aside[r + 1] = "空行"
        elif not typed - {"seq", "note"}:
            want.aside[r + 1] = "只有备注"
        else:
            want.used.append(r + 1)
        r += 1
        if i in spec.totals_after:
            label = spec.totals_after[i]
            start = since if label == "小计" else 0
            summed = [spec.rows[j] for j in range(start, i + 1)]
            if label is not None:
                ws.write_string(r, 0, label)
            for key in amount_cols:
                total = sum(_cents(x.get(key)) for x in summed)
                if total:
                    ws.write_number(r, keys.index(key), total / 100)
            assert label is not None or len(summed) >= 2, "a total without a label needs two rows above"
            since = i + 1
            aside("合计行" if label is not None else "疑似合计行")
    for key, spans in spec.merge.items():
        c = keys.index(key)
        for first, last in spans:
            ws.merge_range(positions[first] - 1, c, positions[last] - 1, c, "")
            _write_value(ws, positions[first] - 1, c, spec.rows[first].get(key))
    if spec.notes:
        ws.write_string(r + 1, 0, "填表说明：1.身份证号请以文本格式填写。")
        ws.write_string(r + 2, 0, "填表人：张*　审核人：李*")
        want.aside[r + 1] = "空行"
        want.aside[r + 2] = want.aside[r + 3] = "说明或签字行"
        r += 3
    if spec.hidden_sheet:
        ws.hide()
    if spec.freeze:
        ws.freeze_panes(4, 3)
    if spec.autofilter:
        ws.autofilter(3, 0, max(r - 1, 4), width - 1)
    last_typed = max([*want.used, *(k for k, v in want.aside.items() if v != "空行")], default=4)
    want.aside = {k: v for k, v in want.aside.items() if k <= last_typed}  # trailing blank rows are not rows
    want.rows_seen = max(0, last_typed - 4)
    return positions, want


def _write_value(ws, r: int, c: int, value) -> None:
    if value is None:
        return
    if isinstance(value, Formula):
        ws.write_formula(r, c, value.text, None, value.value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        ws.write_number(r, c, value)
    else:
        ws.write_string(r, c, str(value))


def as_wps(path: Path) -> None:
    """Rewrite an .xlsx the way WPS Office saves it: its application name and KSOProductBuildVer
    custom property, and every string inline in the cell (``t="inlineStr"``) instead of the shared
    string table."""
    import re
    import zipfile
    from xml.sax.saxutils import escape

    with zipfile.ZipFile(path) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    shared = []
    if "xl/sharedStrings.xml" in parts:
        for si in re.findall(rb"<si>(.*?)</si>", parts["xl/sharedStrings.xml"], re.S):
            shared.append(b"".join(re.findall(rb"<t[^>]*>(.*?)</t>", si, re.S)))

    def inline(match):
        attrs, index = match.group(1), int(match.group(2))
        attrs = attrs.replace(b' t="s"', b' t="inlineStr"')
        return b"<c" + attrs + b'><is><t xml:space="preserve">' + shared[index] + b"</t></is></c>"

    for name in [n for n in parts if n.startswith("xl/worksheets/sheet")]:
        parts[name] = re.sub(rb'<c([^>]*? t="s"[^>]*)><v>(\d+)</v></c>', inline, parts[name])
    wps_name = "<Application>WPS 表格</Application>".encode()
    parts["docProps/app.xml"] = re.sub(rb"<Application>.*?</Application>", wps_name, parts["docProps/app.xml"])
    parts["docProps/custom.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Properties '
        'xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
        'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><property '
        'fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="KSOProductBuildVer"><vt:lpwstr>'
        + escape("2052-11.1.0.14309") + "</vt:lpwstr></property></Properties>").encode()
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/docProps/custom.xml" '
        b'ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/></Types>')
    parts["_rels/.rels"] = parts["_rels/.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rIdWps" Type="http://schemas.openxmlformats.org/officeDocument/'
        b'2006/relationships/custom-properties" Target="docProps/custom.xml"/></Relationships>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)


def write_villages(root: Path, villages: list[dict]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "villages.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(VILLAGE_COLUMNS.values())
        for v in villages:
            writer.writerow([v[k] for k in VILLAGE_COLUMNS])


def default_village(code: str = VILLAGE, name: str = VILLAGE_NAME, farming: str = "是") -> dict:
    return {"village_code": code, "village_name": name, "subdistrict_code": code[:9],
            "subdistrict_name": SUBDISTRICT, "farming": farming}


def write_registry(root: Path, rows: list[dict], name: str = "建档立卡.xlsx") -> None:
    folder = root / "registry"
    folder.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(folder / name))
    ws = wb.add_worksheet("Sheet1")
    for c, label in enumerate(REGISTRY_COLUMNS.values()):
        ws.write_string(0, c, label)
    for r, row in enumerate(rows, start=1):
        for c, key in enumerate(REGISTRY_COLUMNS):
            _write_value(ws, r, c, row.get(key))
    wb.close()


def household(head_id: str, **values) -> dict:
    """A clean household row: all guarantees met, housing A, no income unless given."""
    row = {"seq": 1, "head_name": "张*", "head_id": head_id, "hh_type": "一般农户", "resident_foreign": "否",
           "applied": "否", "review_result": "未评议", "food_ok": "是", "clothing_ok": "是", "education_ok": "是",
           "medical_ok": "是", "housing_grade": "A", "water_ok": "是", "phone": "13800000000"}
    row.update(values)
    return row


def member(head_id: str, person_id: str, relation: str = "户主", **values) -> dict:
    digits = "".join(ch for ch in str(person_id) if ch.isdigit())
    sex = "男" if len(digits) > 16 and int(digits[16]) % 2 else "女"
    row = {"seq": 1, "head_id": head_id, "name": "张*", "sex": sex, "person_id": person_id,
           "relation": relation, "ethnicity": "汉族", "education": "初中", "school_status": "非在校生",
           "health": "健康", "labor_skill": "普通劳动力", "work_status": "未务工", "work_months": 0,
           "dibao": "否", "tekun": "否", "disabled_cert": "否", "medical_insured": "是"}
    row.update(values)
    return row


def xlsx_to_xls(src: Path, dst: Path) -> None:
    """The same workbook in the legacy .xls format (values, cell types and merged ranges)."""
    import xlwt
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(src))
    out = xlwt.Workbook(encoding="utf-8")
    for name in wb.sheet_names:
        sheet = wb.get_sheet_by_name(name)
        ws = out.add_sheet(name)
        rows = sheet.to_python(skip_empty_area=False)
        merged = sheet.merged_cell_ranges or []
        covered = set()
        for (r0, c0), (r1, c1) in merged:
            ws.write_merge(r0, r1, c0, c1, rows[r0][c0] if r0 < len(rows) and c0 < len(rows[r0]) else "")
            covered |= {(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)}
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if (r, c) not in covered and value != "":
                    ws.write(r, c, value)
    dst.parent.mkdir(parents=True, exist_ok=True)
    out.save(str(dst))


def id15(id18: str) -> str:
    """The first-generation 15-digit form of an 18-digit ID born in the 1900s."""
    assert id18[6:8] == "19", "only a person born in the 1900s has a 15-digit ID"
    return id18[:6] + id18[8:17]


def write_department(root: Path, key: str, rows: list[dict], name: str | None = None) -> Path:
    """One department extract in the department's real format (inputs.md): ``.xlsx`` with the
    header in row 1, or a CSV in the department's encoding (税务局 GBK, 交警 UTF-8). ``rows`` are
    keyed by the department's Chinese column names; an int/float is written as a number cell."""
    from pipeline.schema import DEPARTMENTS_BY_KEY

    dept = DEPARTMENTS_BY_KEY[key]
    folder = root / "departments" / key
    folder.mkdir(parents=True, exist_ok=True)
    if dept.file_format == "csv":
        path = folder / (name or f"{key}.csv")
        with path.open("w", encoding=dept.encoding, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(dept.columns)
            for row in rows:
                writer.writerow(["" if row.get(c) is None else row.get(c) for c in dept.columns])
        return path
    path = folder / (name or f"{key}.xlsx")
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
    ws = wb.add_worksheet("Sheet1")
    for c, label in enumerate(dept.columns):
        ws.write_string(0, c, label)
    for r, row in enumerate(rows, start=1):
        for c, label in enumerate(dept.columns):
            _write_value(ws, r, c, row.get(label))
    wb.close()
    return path
