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


def write_survey(path: Path, households: SheetSpec, members: SheetSpec, village_code: str = VILLAGE,
                 village_name: str = VILLAGE_NAME, subdistrict: str = SUBDISTRICT) -> dict[str, dict[int, int]]:
    """Write a survey workbook; returns {sheet: {data index: Excel row}}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
    rows_of = {}
    for sheet, columns, spec in ((SHEET_HOUSEHOLDS, HOUSEHOLD_COLUMNS, households),
                                 (SHEET_MEMBERS, MEMBER_COLUMNS, members)):
        rows_of[sheet] = _write_sheet(wb, sheet, columns, spec, village_code, village_name, subdistrict)
    wb.close()
    return rows_of


def _write_sheet(wb, sheet: str, columns: tuple[Col, ...], spec: SheetSpec, village_code, village_name,
                 subdistrict) -> dict[int, int]:
    ws = wb.add_worksheet(sheet)
    by_key = {c.key: c for c in columns}
    keys = spec.order or [c.key for c in columns]
    cols = [by_key[k] for k in keys]
    width = len(cols) + len(spec.extra)
    ws.merge_range(0, 0, 0, width - 1, f"{SURVEY_TITLE}（{sheet}）")
    ws.write_string(1, 0, f"填报单位：{subdistrict}{village_name}　村代码：{village_code}　填报人：王*　填报日期：2019-04-26")

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
        for i, name in enumerate(spec.extra):
            ws.merge_range(top, len(cols) + i, top + 1, len(cols) + i, name)

    header(2)
    r = 4
    positions: dict[int, int] = {}
    for i, row in enumerate(spec.rows):
        if i in spec.blank_rows_before:
            r += 1
        if spec.repeat_header_before == i:
            header(r)
            r += 2
        positions[i] = r + 1
        for c, col in enumerate(cols):
            _write_value(ws, r, c, row.get(col.key))
        for k, (name, values) in enumerate(spec.extra.items()):
            _write_value(ws, r, len(cols) + k, values[i] if i < len(values) else None)
        r += 1
    for key, spans in spec.merge.items():
        c = keys.index(key)
        for first, last in spans:
            ws.merge_range(positions[first] - 1, c, positions[last] - 1, c, "")
            _write_value(ws, positions[first] - 1, c, spec.rows[first].get(key))
    if spec.notes:
        ws.write_string(r + 1, 0, "填表说明：1.身份证号请以文本格式填写。")
        ws.write_string(r + 2, 0, "填表人：张*　审核人：李*")
    return positions


def _write_value(ws, r: int, c: int, value) -> None:
    if value is None:
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        ws.write_number(r, c, value)
    else:
        ws.write_string(r, c, str(value))


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
