"""Cleaning one village workbook: typed values, repaired IDs, and the cell-level problems.

Cell-level problems found here: B1/B2 (IDs), B6 (required value missing), B7 (code list), B8
(amounts), W10 (a row or sheet set aside for an unusual reason, from the reader's row
account). Problems that need more than one row (B3–B5, B9, B10, W-rules) are SQL in
``pipeline/rules/sql``.
"""

from __future__ import annotations

import pandas as pd

from pipeline.privacy import mask_id, mask_name
from pipeline.rules.ids import IdStatus, repair_id
from pipeline.rules.problems import Problem
from pipeline.rules.values import apply_distinct, clean_text, normalizer_for
from pipeline.rules.workbook import ROW_COLUMN, SheetRead, SurveyRead
from pipeline.schema import (
    HOUSEHOLD_COLUMNS,
    MEMBER_COLUMNS,
    SHEET_HOUSEHOLDS,
    SHEET_MEMBERS,
    Col,
)

NAME_KEYS = ("name", "head_name")
_CODE_RULE = {"code": "B7", "multi": "B7", "yesno": "B7", "amount": "B8", "int": "B7"}


def household_key(village_code: str, link: str | None) -> str | None:
    return f"{village_code}|{link}" if link else None


def _id_link(raw: object, repaired: str | None) -> str | None:
    """How rows refer to a household: its repaired head ID, else the head ID as typed."""
    if repaired:
        return repaired
    text = clean_text(raw)
    return f"raw:{text}" if text else None


def _link_of(value: object) -> str | None:
    return None if value is None else _id_link(value, repair_id(value).value)


def row_anchors(raw: pd.DataFrame, households: bool) -> pd.Series:
    """What identifies each row for a stable problem id (rules/problems.py): its ID, repaired or
    else as typed; without one, the household's head ID and the name — never the row number, which
    moves when the village fixes other rows. The same expressions are used in rules/quality.py."""
    empty = pd.Series(None, index=raw.index, dtype=object)
    own = raw["head_id" if households else "person_id"].map(_link_of) if (
        "head_id" if households else "person_id") in raw else empty
    name_key = "head_name" if households else "name"
    names = raw[name_key].map(lambda v: clean_text(v) or "") if name_key in raw else pd.Series("", index=raw.index)
    if households:
        fallback = "name:" + names
    else:
        heads = raw["head_id"].map(_link_of) if "head_id" in raw else empty
        fallback = "hh:" + heads.fillna("").astype(str) + "|name:" + names
    return own.where(own.notna(), fallback).astype(str)


def _mask_value(col: Col, raw: object) -> str:
    if raw is None:
        return ""
    if col.kind == "id":
        return mask_id(clean_text(raw) or "")
    if col.key in NAME_KEYS:
        return mask_name(raw)
    return str(raw).strip()[:40]


def clean_sheet(read: SheetRead, columns: tuple[Col, ...], village_code: str, file: str) -> tuple[pd.DataFrame, list[Problem]]:
    raw = read.frame
    out = pd.DataFrame(index=raw.index)
    out["village_code"] = village_code
    out["file"] = file
    out["row"] = raw[ROW_COLUMN].astype("int64")
    problems: list[Problem] = []
    anchors = row_anchors(raw, households=read.sheet == SHEET_HOUSEHOLDS)

    head_links = pd.Series(None, index=raw.index, dtype=object)
    for col in columns:
        if col.key not in raw:
            if col.kind == "amount":
                out[col.key] = 0
            else:
                out[col.key] = None
            if col.required:
                problems.append(Problem("B6", village_code, file, read.sheet, read.header_row, col.label, "",
                                        f"缺少必填列“{col.label}”", f"column:{col.key}"))
            continue
        series = raw[col.key]
        if col.kind == "id":
            results = series.map(repair_id)
            out[col.key] = results.map(lambda r: r.value)
            out[f"{col.key}_status"] = results.map(lambda r: r.status.value)
            if col.key == "head_id":
                # dtype=object: pandas 3 would infer a string column and turn a missing link into NaN,
                # which is truthy ("<村代码>|nan" would join every member without a head ID to every
                # household without one)
                head_links = pd.Series([_id_link(v, r.value) for v, r in zip(series, results)], index=raw.index,
                                       dtype=object)
            for idx in results.index[results.map(lambda r: r.status in (IdStatus.INVALID, IdStatus.DAMAGED))]:
                r = results[idx]
                rule = "B2" if r.status is IdStatus.DAMAGED else "B1"
                problems.append(Problem(rule, village_code, file, read.sheet, int(out.at[idx, "row"]), col.label,
                                        _mask_value(col, series[idx]), f"{col.label}{r.reason}", anchors[idx]))
            missing = results.map(lambda r: r.status is IdStatus.MISSING)
        else:
            values, reasons = apply_distinct(series, normalizer_for(col, series))
            out[col.key] = values
            rule = _CODE_RULE.get(col.kind)
            if rule:
                for idx in reasons.index[reasons != ""]:
                    problems.append(Problem(rule, village_code, file, read.sheet, int(out.at[idx, "row"]), col.label,
                                            _mask_value(col, series[idx]), f"{col.label}{reasons[idx]}", anchors[idx]))
            missing = values.isna() & (reasons == "")  # a value outside its code list is B7, not "未填写"
        if col.required:
            for idx in missing.index[missing]:
                problems.append(Problem("B6", village_code, file, read.sheet, int(out.at[idx, "row"]), col.label, "",
                                        f"{col.label}未填写", anchors[idx]))
    out["hh_key"] = pd.Series([household_key(village_code, link) for link in head_links], index=raw.index,
                              dtype=object)
    out = typed_frame(out, columns)
    for p in problems:
        if p.row is not None and p.anchor and not p.anchor.startswith("column:"):
            match = out.index[out["row"] == p.row]
            if len(match):
                p.hh_key = out.at[match[0], "hh_key"]
    return out, problems


def clean_survey(read: SurveyRead, file: str) -> tuple[pd.DataFrame, pd.DataFrame, list[Problem]]:
    """Both sheets of a read workbook as clean frames, plus every cell-level problem."""
    village = read.village_code or ""
    problems: list[Problem] = []
    frames = []
    for sheet, columns in ((SHEET_HOUSEHOLDS, HOUSEHOLD_COLUMNS), (SHEET_MEMBERS, MEMBER_COLUMNS)):
        sheet_read = read.sheets.get(sheet)
        if sheet_read is None:
            problems.append(Problem("B6", village, file, sheet, None, None, "", f"缺少工作表“{sheet}”", f"sheet:{sheet}"))
            frames.append(empty_frame(columns))
            continue
        frame, found = clean_sheet(sheet_read, columns, village, file)
        frames.append(frame)
        problems.extend(found)
    problems.extend(set_aside_problems(read, file))
    return frames[0], frames[1], problems


def set_aside_problems(read: SurveyRead, file: str) -> list[Problem]:
    """W10 (请核实): rows set aside for an unusual reason, and sheets with content that were not
    read; the usual reasons (blank rows, notes, a repeated header, a 合计 row, instructions or
    empty sheets) are only counted in the row account."""
    village = read.village_code or ""
    problems = []
    for account in read.accounts:
        where = "" if account.table is None or account.sheet_name == account.table else f"（工作表“{account.sheet_name}”）"
        for row, detail in sorted(account.details.items()):
            problems.append(Problem("W10", village, file, account.table, row, None, "", detail + where,
                                    account.anchors.get(row, f"aside:{row}")))
        if account.table is None and account.unusual:
            problems.append(Problem(
                "W10", village, file, account.sheet_name, None, None, "",
                f"工作表“{account.sheet_name}”{account.note}，没有读取（{account.rows_seen}行有内容）",
                f"sheet:{account.sheet_name}"))
    return problems


def empty_frame(columns: tuple[Col, ...]) -> pd.DataFrame:
    names = ["village_code", "file", "row", *[c.key for c in columns]]
    names += [f"{c.key}_status" for c in columns if c.kind == "id"] + ["hh_key"]
    return typed_frame(pd.DataFrame({n: pd.Series(dtype=object) for n in names}), columns)


def typed_frame(frame: pd.DataFrame, columns: tuple[Col, ...]) -> pd.DataFrame:
    """Give every column the type the warehouse expects (cents and counts as integers, rest text)."""
    kinds = {c.key: c.kind for c in columns}
    out = frame.copy()
    for name in out.columns:
        kind = kinds.get(name)
        if name == "row" or kind in ("amount", "int"):
            out[name] = pd.array(out[name].tolist(), dtype="Int64")
        else:
            out[name] = out[name].astype("string")
    return out


def _households_sql() -> str:
    from pipeline.schema import AMOUNT_KEYS

    amounts = ", ".join(f"(h.{k}::DECIMAL(18, 0) * 0.01)::DECIMAL(18, 2) AS {k}" for k in AMOUNT_KEYS)
    return f"""
CREATE OR REPLACE TABLE households AS
SELECT h.village_code || '|' || h.file || '|' || h.row AS hh_uid,
       h.* EXCLUDE ({", ".join(AMOUNT_KEYS)}), {amounts},
       v.village_name, v.subdistrict_code, v.subdistrict_name
FROM stg_households h LEFT JOIN villages v USING (village_code);
"""


HOUSEHOLDS_SQL = _households_sql()
