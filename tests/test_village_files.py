"""Real village files (issue #11): a corpus of workbook variants, made by the builders, each
read end to end — households, members, amounts, and the row account (rows seen = used + set
aside by reason) — plus hypothesis over combinations of variants.

Every workbook written here also goes through ``builders.check_account`` (inside
``write_survey``): the reader's account of each sheet equals what the builder wrote.

The decisions (accepted / set aside with the reason / problem code) are those of the table in
``pipeline/io/survey.py``'s docstring; the test names say which variant each covers.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from builders import (
    Formula,
    SheetSpec,
    check_account,
    household,
    make_id,
    member,
    write_survey,
    xlsx_to_xls,
)
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.io.inputs import FILE_READ, FILE_UNREADABLE, ingest_surveys
from pipeline.io.survey import (
    SHEET_EMPTY,
    SHEET_HEADER_ONLY,
    SHEET_INSTRUCTIONS,
    SHEET_NOT_TABLE,
    UnreadableWorkbook,
    read_survey,
)
from pipeline.rules.workbook import (
    ASIDE_BLANK,
    ASIDE_HEADER,
    ASIDE_NOTE_ONLY,
    ASIDE_NOTES,
    ASIDE_SHEET,
    ASIDE_TOTALS,
    ASIDE_TOTALS_BY_SUM,
    ASIDE_UNKNOWN_ONLY,
)
from pipeline.schema import HOUSEHOLD_COLUMNS, MEMBER_COLUMNS, SHEET_HOUSEHOLDS, SHEET_MEMBERS

V1 = "210505004201"
INSTRUCTIONS = [["填表说明"], ["1. 身份证号请以文本格式填写"], ["2. 金额单位：元"]]


def village(n: int = 3, *, spouse: bool = True):
    """n households of 1–2 persons with known amounts: (household rows, member rows, heads)."""
    heads = [make_id("19600101", 11 + 2 * i) for i in range(n)]
    hh, mm = [], []
    for i, h in enumerate(heads):
        size = 2 if spouse else 1
        hh.append(household(h, seq=i + 1, declared_size=size, wage_income=1000 * (i + 1),
                            pension_income=100 * (i + 1), transfer_total=100 * (i + 1)))
        mm.append(member(h, h, seq=len(mm) + 1))
        if spouse:
            mm.append(member(h, make_id("19620202", 11 + 2 * i + 100), "配偶", seq=len(mm) + 1))
    return hh, mm, heads


def merged_heads(n: int, per: int = 2) -> dict:
    """The members' 户主身份证号 typed once per household, merged down over its rows."""
    return {"head_id": [(per * i, per * i + per - 1) for i in range(n)]}


def ingest(raw: Path):
    result = ingest_surveys(raw, workers=1, settle=False)
    return result


def account(result, table: str) -> dict:
    """{reason: rows} of the sheet used as ``table`` (plus 'seen' and 'used')."""
    sheets = result.sheets[result.sheets["sheet"] == table]
    assert len(sheets) == 1, sheets
    row = sheets.iloc[0]
    aside = result.set_aside[(result.set_aside["file"] == row["file"]) & (result.set_aside["sheet_name"] == row["sheet_name"])]
    out = {"seen": int(row["rows_seen"]), "used": int(row["rows_used"]), **aside["reason"].value_counts().to_dict()}
    assert out["seen"] == out["used"] + len(aside)
    return out


def rules(result) -> list[str]:
    return sorted(p.rule for p in result.problems)


def assert_amounts(result, heads: list[str]) -> None:
    hh = result.households.set_index("head_id")
    assert sorted(hh.index) == sorted(heads)
    for i, h in enumerate(heads):
        assert hh.loc[h, "wage_income"] == 100000 * (i + 1)
        assert hh.loc[h, "pension_income"] == 10000 * (i + 1)


# --------------------------------------------------------------------------------------------
# The three failures of the issue
# --------------------------------------------------------------------------------------------


def test_sheets_named_with_extra_words_beside_instructions_and_an_empty_sheet(tmp_path):
    """Failure 1: 表1 家庭基本情况 / 家庭成员情况表 beside 填表说明 and an empty Sheet3 — read,
    the other two sheets listed as ignored with their reason."""
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, sheet_name="表1 家庭基本情况"),
                 SheetSpec(mm, sheet_name="家庭成员情况表", merge=merged_heads(3)),
                 before=[("填表说明", INSTRUCTIONS)], after=[("Sheet3", [])])
    result = ingest(raw)
    assert list(result.files["status"]) == [FILE_READ]
    assert_amounts(result, heads)
    assert len(result.members) == 6 and set(result.members["hh_key"]) == {f"{V1}|{h}" for h in heads}
    sheets = result.sheets.set_index("sheet_name")
    assert sheets.loc["表1 家庭基本情况", "sheet"] == SHEET_HOUSEHOLDS
    assert sheets.loc["家庭成员情况表", "sheet"] == SHEET_MEMBERS
    assert sheets.loc["填表说明", "note"] == SHEET_INSTRUCTIONS and sheets.loc["填表说明", "rows_seen"] == 3
    assert sheets.loc["Sheet3", "note"] == SHEET_EMPTY and sheets.loc["Sheet3", "rows_seen"] == 0
    assert rules(result) == []  # instructions and an empty sheet are no problem


def test_blank_row_inside_a_merged_head_id_block_is_blank(tmp_path):
    """Failure 2: a clerk left an empty line inside a household's block of merged 户主身份证号
    cells. The line holds only a merge copy: blank, never a member with three B6."""
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    # household 2's members are data rows 2 and 3; a blank row before 3 lies inside its merged block
    positions = write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh),
                             SheetSpec(mm, merge=merged_heads(3), blank_rows_before=[3]))
    result = ingest(raw)
    assert len(result.members) == 6
    assert rules(result) == []
    sizes = result.members.groupby("hh_key").size()
    assert sizes.to_dict() == {f"{V1}|{h}": 2 for h in heads}
    rows = positions[SHEET_MEMBERS]
    blank = rows[3] - 1
    aside = result.set_aside.set_index(["sheet", "row"])["reason"]
    assert aside[(SHEET_MEMBERS, blank)] == ASIDE_BLANK
    assert account(result, SHEET_MEMBERS) == {"seen": 10, "used": 6, ASIDE_BLANK: 2, ASIDE_NOTES: 2}


def test_a_totals_row_is_never_a_household(tmp_path):
    """Failure 3: 合计 under the households, the amount columns and 家庭人口 summed."""
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    positions = write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, totals_after={2: "合计"}),
                             SheetSpec(mm, totals_after={5: "合计"}))
    result = ingest(raw)
    assert_amounts(result, heads)
    assert len(result.members) == 6
    assert rules(result) == []
    assert account(result, SHEET_HOUSEHOLDS) == {"seen": 7, "used": 3, ASIDE_TOTALS: 1, ASIDE_BLANK: 1,
                                                 ASIDE_NOTES: 2}
    assert result.set_aside.set_index(["sheet", "row"])["reason"][(SHEET_HOUSEHOLDS, positions[SHEET_HOUSEHOLDS][2] + 1)] \
        == ASIDE_TOTALS


# --------------------------------------------------------------------------------------------
# Totals, blank and odd rows
# --------------------------------------------------------------------------------------------


def test_subtotals_and_a_total_without_a_label(tmp_path):
    """小计 per group and a 合计 row set aside; a row with no label and no ID whose amounts equal
    the sums of the rows above is set aside as 疑似合计行 and asked about (W10)."""
    hh, mm, heads = village(5, spouse=False)
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, totals_after={1: "小计", 3: "小计", 4: None}),
                 SheetSpec(mm))
    result = ingest(raw)
    assert_amounts(result, heads)
    acc = account(result, SHEET_HOUSEHOLDS)
    assert acc[ASIDE_TOTALS] == 2 and acc[ASIDE_TOTALS_BY_SUM] == 1 and acc["used"] == 5
    w10 = [p for p in result.problems if p.rule == "W10"]
    assert len(w10) == 1 and w10[0].sheet == SHEET_HOUSEHOLDS and "合计" in w10[0].message
    assert rules(result) == ["W10"]


def test_a_person_named_like_a_total_is_a_person(tmp_path):
    hh, mm, heads = village()
    hh[1]["head_name"] = "王合计"
    mm[2]["name"] = "王合计"
    mm[3]["name"] = "李小计"
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, order=["head_name", "seq", "head_id"] + [
        c.key for c in HOUSEHOLD_COLUMNS if c.key not in ("head_name", "seq", "head_id")]),
                 SheetSpec(mm, order=["name", "seq", "head_id", "person_id"] + [
                     c.key for c in MEMBER_COLUMNS if c.key not in ("name", "seq", "head_id", "person_id")]))
    result = ingest(raw)
    assert_amounts(result, heads)
    assert len(result.members) == 6 and rules(result) == []


def test_a_household_without_id_is_not_taken_for_a_total(tmp_path):
    """A household row with no 户主身份证号 whose amounts are its own (not the sums above) stays a
    household, with B6 for the missing ID."""
    hh, mm, heads = village(3, spouse=False)
    hh.append(household(None, seq=4, wage_income=123))
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh), SheetSpec(mm))
    result = ingest(raw)
    assert len(result.households) == 4
    assert "B6" in rules(result) and "W10" not in rules(result)


def test_template_rows_with_only_a_seq_are_blank(tmp_path):
    """Pre-numbered template rows (a 序号 and nothing else) are blank rows."""
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, seq_only_before=[1, 2]),
                 SheetSpec(mm, seq_only_before=[4]))
    result = ingest(raw)
    assert_amounts(result, heads)
    assert len(result.members) == 6 and rules(result) == []
    assert account(result, SHEET_HOUSEHOLDS)[ASIDE_BLANK] == 3


def test_rows_typed_only_in_remarks_or_unknown_columns_are_set_aside_and_asked_about(tmp_path):
    """A row with only 备注, or only a column the schema does not know: set aside, W10 — never a
    phantom household or person with three B6."""
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, note_only_before=[1], extra={"入户调查人": ["王*"] * 3},
                                                       extra_only_before=[2]),
                 SheetSpec(mm, note_only_before=[2]))
    result = ingest(raw)
    assert_amounts(result, heads)
    assert len(result.members) == 6
    assert rules(result) == ["W10", "W10", "W10"]
    assert account(result, SHEET_HOUSEHOLDS)[ASIDE_NOTE_ONLY] == 1
    assert account(result, SHEET_HOUSEHOLDS)[ASIDE_UNKNOWN_ONLY] == 1
    messages = " ".join(p.message for p in result.problems)
    assert "入户调查人" in messages and "王" not in messages  # the column is named, the value never shown


def test_repeated_header_and_notes_and_blank_rows(tmp_path):
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, repeat_header_before=1, blank_rows_before=[2]),
                 SheetSpec(mm, repeat_header_before=2, merge=merged_heads(3)))
    result = ingest(raw)
    assert_amounts(result, heads)
    assert account(result, SHEET_HOUSEHOLDS) == {"seen": 9, "used": 3, ASIDE_HEADER: 2, ASIDE_BLANK: 2,
                                                 ASIDE_NOTES: 2}


# --------------------------------------------------------------------------------------------
# Sheets
# --------------------------------------------------------------------------------------------


def test_two_sheets_like_the_same_table_make_the_file_ambiguous(tmp_path):
    hh, mm, heads = village()
    path = tmp_path / "a.xlsx"
    write_survey(path, SheetSpec(hh), SheetSpec(mm),
                 more_tables=[(SHEET_HOUSEHOLDS, SheetSpec(hh[:1], sheet_name="Sheet1"))], check=False)
    with pytest.raises(UnreadableWorkbook, match="都像“家庭基本情况”"):
        read_survey(path)


def test_a_hidden_copy_of_a_table_is_data_too(tmp_path):
    """A hidden sheet is treated like a visible one: a hidden copy with data is ambiguous."""
    hh, mm, heads = village()
    path = tmp_path / "a.xlsx"
    write_survey(path, SheetSpec(hh), SheetSpec(mm),
                 more_tables=[(SHEET_MEMBERS, SheetSpec(mm[:2], sheet_name="备份", hidden_sheet=True))], check=False)
    with pytest.raises(UnreadableWorkbook, match="“家庭成员情况”和“备份”"):
        read_survey(path)


def test_a_template_copy_with_only_its_header_is_not_used(tmp_path):
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh), SheetSpec(mm),
                 more_tables=[(SHEET_HOUSEHOLDS, SheetSpec([], sheet_name="模板", notes=False))])
    result = ingest(raw)
    assert_amounts(result, heads)
    assert result.sheets.set_index("sheet_name").loc["模板", "note"] == SHEET_HEADER_ONLY
    assert rules(result) == []


def test_a_pasted_registry_list_beside_the_members_sheet(tmp_path):
    """A sheet with a few of the members' columns (a pasted 建档立卡 list) beside the full members
    sheet: the full one is used, the other listed as not used, W10 for the village to check."""
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    partial = SheetSpec(mm, sheet_name="建档立卡名单", order=["name", "person_id", "relation", "sex"], notes=False)
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh), SheetSpec(mm),
                 more_tables=[(SHEET_MEMBERS, partial)], check=False)
    result = ingest(raw)
    assert len(result.members) == 6
    note = result.sheets.set_index("sheet_name").loc["建档立卡名单", "note"]
    assert "列更全" in note
    assert rules(result) == ["W10"]


def test_another_sheet_with_content_is_listed_and_asked_about(tmp_path):
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh), SheetSpec(mm),
                 after=[("工作记录", [["4月8日", "入户12户"], ["4月9日", "入户15户"]])])
    result = ingest(raw)
    assert_amounts(result, heads)
    sheets = result.sheets.set_index("sheet_name")
    assert sheets.loc["工作记录", "note"] == SHEET_NOT_TABLE and sheets.loc["工作记录", "rows_set_aside"] == 2
    w10 = [p for p in result.problems if p.rule == "W10"]
    assert len(w10) == 1 and w10[0].sheet == "工作记录"
    aside = result.set_aside[result.set_aside["sheet_name"] == "工作记录"]
    assert set(aside["reason"]) == {ASIDE_SHEET}


def test_members_sheet_first_and_instructions_first(tmp_path):
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, sheet_name="Sheet2"), SheetSpec(mm, sheet_name="Sheet1"),
                 before=[("说明", INSTRUCTIONS)], members_first=True)
    result = ingest(raw)
    assert_amounts(result, heads)
    assert len(result.members) == 6 and rules(result) == []


def test_no_recognisable_sheet_names_every_sheet_and_why(tmp_path):
    path = tmp_path / "a.xlsx"
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("填表说明").write(0, 0, "填表说明")
    wb.add_worksheet("Sheet3")
    wb.close()
    with pytest.raises(UnreadableWorkbook, match="“填表说明”：填表说明或代码表；“Sheet3”：空工作表"):
        read_survey(path)


def test_a_workbook_with_headers_and_no_data(tmp_path):
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec([], notes=False), SheetSpec([], notes=False))
    result = ingest(raw)
    assert list(result.files["status"]) == [FILE_READ]
    assert len(result.households) == 0 and len(result.members) == 0


# --------------------------------------------------------------------------------------------
# How the file was saved
# --------------------------------------------------------------------------------------------


def test_a_workbook_saved_by_wps_reads_like_excel(tmp_path):
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh), SheetSpec(mm, merge=merged_heads(3)), wps=True)
    import zipfile

    with zipfile.ZipFile(raw / "surveys" / "a.xlsx") as zf:
        assert b"inlineStr" in zf.read("xl/worksheets/sheet2.xml") and "docProps/custom.xml" in zf.namelist()
    result = ingest(raw)
    assert_amounts(result, heads)
    assert len(result.members) == 6 and rules(result) == []


def test_frozen_panes_a_filter_and_hidden_rows(tmp_path):
    hh, mm, heads = village()
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, freeze=True, autofilter=True, hidden=[1]),
                 SheetSpec(mm, freeze=True, autofilter=True, hidden=[0, 3]))
    result = ingest(raw)
    assert_amounts(result, heads)
    assert len(result.members) == 6 and rules(result) == []


def test_formulas_and_amounts_as_typed(tmp_path):
    hh, mm, heads = village()
    hh[0]["wage_income"] = Formula("=400+600", 1000)
    hh[1]["wage_income"] = "2,000元"
    hh[2]["wage_income"] = "３０００"
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh, totals_after={2: "合计"}), SheetSpec(mm))
    result = ingest(raw)
    assert_amounts(result, heads)


def test_benren_for_huzhu(tmp_path):
    """本人 typed for 户主 in 与户主关系: accepted as 户主 (no B5, no B7)."""
    hh, mm, heads = village()
    for m in mm:
        if m["relation"] == "户主":
            m["relation"] = "本人"
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh), SheetSpec(mm))
    result = ingest(raw)
    assert set(result.members["relation"]) == {"户主", "配偶"} and rules(result) == []


def test_head_id_only_on_the_first_member_row_is_not_filled_down(tmp_path):
    """户主身份证号 typed on the first member row only, the rows below left empty without a merge:
    not guessed — each such row is B6 (and B4: it belongs to no household) for the village to fill."""
    hh, mm, heads = village()
    for m in mm:
        if m["relation"] == "配偶":
            m["head_id"] = None
    raw = tmp_path / "raw"
    write_survey(raw / "surveys" / "a.xlsx", SheetSpec(hh), SheetSpec(mm))
    result = ingest(raw)
    assert len(result.members) == 6  # every row is kept
    assert rules(result) == ["B6"] * 3
    assert result.members["hh_key"].isna().sum() == 3


def test_a_sheet_protected_against_editing(tmp_path):
    """Sheet protection (not a file password) only stops editing: the values are read."""
    import openpyxl

    hh, mm, heads = village()
    raw = tmp_path / "raw"
    path = raw / "surveys" / "a.xlsx"
    write_survey(path, SheetSpec(hh), SheetSpec(mm))
    wb = openpyxl.load_workbook(path)
    for ws in wb.worksheets:
        ws.protection.sheet = True
        ws.protection.password = "1234"
    wb.save(path)
    result = ingest(raw)
    assert_amounts(result, heads)
    assert len(result.members) == 6 and rules(result) == []


@pytest.mark.parametrize("src_suffix,dst_suffix", [(".xls", ".xlsx"), (".xlsx", ".xls")])
def test_a_workbook_whose_name_says_the_other_format(tmp_path, src_suffix, dst_suffix):
    hh, mm, heads = village()
    src = tmp_path / "src" / "a.xlsx"
    write_survey(src, SheetSpec(hh), SheetSpec(mm, merge=merged_heads(3), blank_rows_before=[3]))
    raw = tmp_path / "raw"
    dst = raw / "surveys" / f"a{dst_suffix}"
    dst.parent.mkdir(parents=True)
    if src_suffix == ".xls":
        xlsx_to_xls(src, tmp_path / "src" / "a.xls")
        shutil.copy(tmp_path / "src" / "a.xls", dst)
    else:
        shutil.copy(src, dst)
    check_account(dst, like=src)
    result = ingest(raw)
    assert list(result.files["status"]) == [FILE_READ]
    assert_amounts(result, heads)
    assert len(result.members) == 6 and rules(result) == []


def test_a_password_protected_file_is_refused_with_its_reason(tmp_path):
    raw = tmp_path / "raw"
    path = raw / "surveys" / "加密.xlsx"
    path.parent.mkdir(parents=True)
    stream = "EncryptionInfo".encode("utf-16-le")
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600 + stream + b"\x00" * 100)
    result = ingest(raw)
    assert result.files.loc[0, "status"] == FILE_UNREADABLE and "密码" in result.files.loc[0, "reason"]


# --------------------------------------------------------------------------------------------
# Combinations of variants (hypothesis): the account balances and nothing is lost or invented
# --------------------------------------------------------------------------------------------


@st.composite
def variant_workbooks(draw):
    n = draw(st.integers(1, 5))
    hh, mm, heads = village(n, spouse=draw(st.booleans()))
    per = 2 if len(mm) == 2 * n else 1
    idx = st.integers(0, n - 1)
    m_idx = st.integers(0, len(mm) - 1)
    h_spec = SheetSpec(
        hh, sheet_name=draw(st.sampled_from(["家庭基本情况", "表1 家庭基本情况", "Sheet1", "户表"])),
        blank_rows_before=draw(st.lists(idx, unique=True, max_size=2)),
        seq_only_before=draw(st.lists(idx, unique=True, max_size=2)),
        note_only_before=draw(st.lists(idx, unique=True, max_size=1)),
        repeat_header_before=draw(st.one_of(st.none(), idx.filter(lambda i: i > 0))),
        notes=draw(st.booleans()),
        totals_after=draw(st.one_of(st.just({}), st.just({n - 1: "合计"}),
                                    st.just({n - 1: None} if n >= 2 else {}))),
        hidden=draw(st.lists(idx, unique=True, max_size=2)),
        freeze=draw(st.booleans()), autofilter=draw(st.booleans()),
        order=draw(st.sampled_from([None, [c.key for c in HOUSEHOLD_COLUMNS][::-1]])),
    )
    merge = merged_heads(n, per) if per == 2 and draw(st.booleans()) else {}
    m_spec = SheetSpec(
        mm, sheet_name=draw(st.sampled_from(["家庭成员情况", "家庭成员情况表", "Sheet2", "成员"])),
        blank_rows_before=draw(st.lists(m_idx, unique=True, max_size=3)),  # also inside merged blocks
        merge=merge,
        # a copy of the header between two households' blocks, never inside one
        repeat_header_before=draw(st.one_of(st.none(), m_idx.filter(lambda i: i > 0 and not (merge and i % 2)))),
        totals_after=draw(st.one_of(st.just({}), st.just({len(mm) - 1: "合计"}))),
        notes=draw(st.booleans()),
    )
    if h_spec.sheet_name == "户表" and m_spec.sheet_name == "成员":
        m_spec.sheet_name = "Sheet2"
    before = draw(st.sampled_from([[], [("填表说明", INSTRUCTIONS)]]))
    after = draw(st.sampled_from([[], [("Sheet3", [])]]))
    return hh, mm, heads, h_spec, m_spec, before, after, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=examples(10, thorough=30), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(variant_workbooks())
def test_combinations_of_variants_lose_and_invent_nothing(book):
    hh, mm, heads, h_spec, m_spec, before, after, wps, members_first = book
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        write_survey(raw / "surveys" / "a.xlsx", h_spec, m_spec, before=before, after=after, wps=wps,
                     members_first=members_first)  # checks the row account against what was written
        result = ingest_surveys(raw, workers=1, settle=False)
    assert list(result.files["status"]) == [FILE_READ], list(result.files["reason"])
    assert_amounts(result, heads)
    assert len(result.members) == len(mm)
    assert sorted(result.members["person_id"]) == sorted(m["person_id"] for m in mm)
    assert set(rules(result)) <= {"W10"}  # only an unlabelled total and a remarks-only row are asked about
    assert rules(result).count("W10") == sum(1 for v in h_spec.totals_after.values() if v is None) + len(
        h_spec.note_only_before)
    for _, sheet in result.sheets.iterrows():
        assert sheet["rows_seen"] == sheet["rows_used"] + sheet["rows_set_aside"]


# --------------------------------------------------------------------------------------------
# The whole pipeline: the three failures, a village whose only file cannot be read, and an
# ambiguous workbook — no household lost or invented, no village wrongly told it did not submit
# --------------------------------------------------------------------------------------------

V4, V4_NAME = "210505004202", "石桥子村"  # its only file is password-protected
V5, V5_NAME = "210505004203", "大堡村"  # its only file has two 家庭基本情况 sheets
V6, V6_NAME = "210505004204", "新城村"  # its only file is in WPS's own format (.et)


def _sheet_rows(path: Path, sheet: str) -> list[dict]:
    """The rows of a report sheet as dicts keyed by its header (the first row with 文件 or 村代码)."""
    import openpyxl

    rows = list(openpyxl.load_workbook(path, read_only=True)[sheet].iter_rows(values_only=True))
    top = next(i for i, r in enumerate(rows) if {"文件", "村代码", "问题编号", "序号"} & set(r))
    return [dict(zip(rows[top], r)) for r in rows[top + 1:] if any(v is not None for v in r)]


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    from builders import write_villages
    from clean_district import H1, H1_WIFE, H2, HH_NO, NAMES, S1, V1_NAME, build_clean_district, village
    from conftest import run_cli_pipeline

    base = tmp_path_factory.mktemp("village_files")
    raw = base / "raw"
    truth = build_clean_district(raw)
    write_villages(raw, [village(V1, V1_NAME, S1), village("210505001201", "南芬村", "南芬街道"),
                         village("210505001001", "南芬社区", "南芬街道", "否"),
                         village(V4, V4_NAME, S1), village(V5, V5_NAME, S1), village(V6, V6_NAME, S1)])
    # 财神庙村 again, as its clerk saved it: the three failures of the issue
    hh = [household(H1, seq=1, head_name=NAMES[H1], hh_no=HH_NO, hh_type="建档立卡户", exit_status="已脱贫(享受政策)",
                    declared_size=2, wage_income=3000, main_cause="因病"),
          household(H2, seq=2, head_name=NAMES[H2], declared_size=1, wage_income=30000)]
    mm = [member(H1, H1, name=NAMES[H1]), member(H1, H1_WIFE, "配偶", name=NAMES[H1_WIFE]),
          member(H2, H2, name=NAMES[H2], work_status="县内务工", work_months=10)]
    write_survey(raw / "surveys" / S1 / f"{V1_NAME}.xlsx",
                 SheetSpec(hh, sheet_name="表1 家庭基本情况", totals_after={1: "合计"}),
                 SheetSpec(mm, sheet_name="家庭成员情况表", merge={"head_id": [(0, 1)]}, blank_rows_before=[1]),
                 village_code=V1, village_name=V1_NAME, subdistrict=S1,
                 before=[("填表说明", INSTRUCTIONS)], after=[("Sheet3", [])])
    locked = raw / "surveys" / S1 / f"{V4_NAME}.xlsx"
    locked.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600 + "EncryptionInfo".encode("utf-16-le"))
    other = make_id("19700707", 71)
    write_survey(raw / "surveys" / S1 / "入户调查表.xlsx", SheetSpec([household(other)]), SheetSpec([member(other, other)]),
                 village_code=V5, village_name=V5_NAME, subdistrict=S1,
                 more_tables=[(SHEET_HOUSEHOLDS, SheetSpec([household(other)], sheet_name="家庭基本情况(2)"))],
                 check=False)
    (raw / "surveys" / S1 / f"{V6_NAME}.et").write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 500)
    (raw / "surveys" / S1 / f"{V1_NAME}签字版.pdf").write_bytes(b"%PDF-1.4\n")  # a scan beside the workbook
    warehouse, reports = run_cli_pipeline(raw, base)
    return raw, warehouse, reports, truth


@pytest.mark.integration
def test_the_three_failures_lose_no_household_and_invent_none(district):
    import duckdb
    from clean_district import V1
    from conftest import read_detail

    raw, warehouse, reports, truth = district
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM households").fetchone()[0] == truth["households"]
    assert con.execute("SELECT count(*) FROM members").fetchone()[0] == truth["persons"]
    sizes = dict(con.execute("SELECT head_id, size FROM households JOIN household_income USING (hh_uid)").fetchall())
    assert sorted(sizes.values()) == [1, 1, 2]  # the blank line in the merged block is nobody
    problems = con.execute("SELECT rule, village_code FROM open_problems").fetchall()
    assert [p for p in problems if p[1] == V1] == []  # no B4/B6/B7/W1 from a total or a blank line
    annex2 = read_detail(reports / "draft" / "附件2_返贫（重点扶持）人口统计表.xlsx")
    annex3 = read_detail(reports / "draft" / "附件3_新识别（重点扶持）贫困人口统计表.xlsx")
    assert len(annex2) == truth["annex2_persons"] and len(annex3) == truth["annex3_persons"]
    annex1 = _sheet_rows(reports / "draft" / "附件1_入户调查汇总表.xlsx", "家庭基本情况")
    assert len([r for r in annex1 if isinstance(r["序号"], int)]) == truth["households"]


@pytest.mark.integration
def test_a_village_whose_only_file_cannot_be_read_is_told_so_never_not_submitted(district):
    import duckdb

    from pipeline.readiness import gate_reasons

    raw, warehouse, reports, truth = district
    con = duckdb.connect(str(warehouse), read_only=True)
    by_rule = con.execute("SELECT rule, village_code, file, message FROM open_problems WHERE rule IN ('B10', 'B11')"
                          " ORDER BY village_code").fetchall()
    assert [(r, v) for r, v, _, _ in by_rule] == [("B11", V4), ("B11", V5), ("B11", V6)]
    assert "WPS表格格式" in by_rule[2][3] and "另存为.xlsx" in by_rule[2][3]
    assert by_rule[0][3].startswith("报送的文件无法读取：文件已加密") and f"{V4_NAME}.xlsx" in by_rule[0][3]
    assert "都像“家庭基本情况”" in by_rule[1][3]
    reasons = gate_reasons(con, raw, reports, None)
    assert not any("未报送" in r for r in reasons)
    assert any(r.startswith(f"涉农村报送的文件无法读取：思山岭街道{V4_NAME}（{V4}）") and "密码" in r for r in reasons)
    status = {r["村代码"]: r for r in _sheet_rows(reports / "进度.xlsx", "村报送情况")}
    assert status[V4]["报送情况"] == status[V5]["报送情况"] == status[V6]["报送情况"] == "已报送（文件无法读取）"
    files = dict(con.execute("SELECT file, status FROM survey_files").fetchall())
    assert files["surveys/思山岭街道/财神庙村签字版.pdf"] == "不是调查表文件"  # listed, never silently passed over
    listed = _sheet_rows(next((reports / "problems").rglob(f"{V4}_*_问题清单.xlsx")), "问题清单")
    assert [r["规则"] for r in listed] == ["B11"] and "密码" in listed[0]["问题"]


@pytest.mark.integration
def test_the_row_account_is_shown_with_every_file(district):
    import duckdb
    from clean_district import V1

    raw, warehouse, reports, truth = district
    con = duckdb.connect(str(warehouse), read_only=True)
    sheets = con.execute("SELECT village_code, sheet_name, sheet, note, rows_seen, rows_used, rows_set_aside "
                         "FROM survey_sheet_accounts").df()
    assert (sheets["rows_seen"] == sheets["rows_used"] + sheets["rows_set_aside"]).all()
    mine = sheets[sheets["village_code"] == V1].set_index("sheet_name")
    assert mine.loc["表1 家庭基本情况", "rows_used"] == 2 and mine.loc["家庭成员情况表", "rows_used"] == 3
    assert mine.loc["Sheet3", "note"] == "空工作表"
    progress = _sheet_rows(reports / "进度.xlsx", "行数核对")
    assert progress and all(r["核对"] == "平" for r in progress)
    v1 = {r["工作表"]: r for r in progress if r["村代码"] == V1}
    assert v1["表1 家庭基本情况"]["合计行"] == 1 and v1["家庭成员情况表"]["空行"] == 2
    listed = _sheet_rows(next((reports / "problems").rglob(f"{V1}_*_问题清单.xlsx")), "行数核对")
    assert {r["工作表"] for r in listed} == {"表1 家庭基本情况", "家庭成员情况表", "填表说明", "Sheet3"}
    assert sum(r["行数"] for r in listed) == sum(r["读入"] + r["未读入"] for r in listed)


def test_which_unreadable_files_are_problems_and_for_whom():
    """B11 and B10 on survey_files and the roster alone (plain SQL, no pipeline): a refused file
    is B11 when it is all the village sent or newer than the file in use; a village found by its
    row-2 code or, failing that, by its name in the path has submitted (no B10); a PDF beside a
    workbook is no problem; a refused file no village can be found for is the district's."""
    import duckdb

    from pipeline.rules.quality import relational_sql
    from pipeline.settings import Settings

    con = duckdb.connect()
    con.execute("""CREATE TABLE villages AS SELECT * FROM (VALUES
        ('210505004201', '甲村', '思山岭街道', true), ('210505004202', '乙村', '思山岭街道', true),
        ('210505004203', '丙村', '思山岭街道', true), ('210505004204', '丁村', '思山岭街道', true),
        ('210505004205', '戊村', '思山岭街道', true), ('210505004206', '己村', '思山岭街道', true))
        v(village_code, village_name, subdistrict_name, farming)""")
    con.execute("""CREATE TABLE survey_files AS SELECT * FROM (VALUES
        ('surveys/甲村.xlsx', '210505004201', 1.0, '已读取', ''),
        ('surveys/甲村-修改版.xlsx', '210505004201', 2.0, '无法读取', '文件已加密'),
        ('surveys/乙村-旧.xlsx', NULL, 1.0, '无法读取', '文件已损坏'),
        ('surveys/乙村.xlsx', '210505004202', 2.0, '已读取', ''),
        ('surveys/丙村.xlsx', NULL, 1.0, '无法读取', '文件已加密'),
        ('surveys/丁村扫描件.pdf', NULL, 1.0, '不是调查表文件', '不是Excel调查表'),
        ('surveys/戊村.xlsx', '210505004205', 1.0, '已读取', ''),
        ('surveys/戊村签字版.pdf', NULL, 2.0, '不是调查表文件', '不是Excel调查表'),
        ('surveys/不知哪里.xlsx', NULL, 1.0, '无法读取', '文件已损坏'))
        f(file, village_code, mtime, status, reason)""")
    settings = Settings()
    b11 = con.execute(relational_sql("B11", settings)).fetchall()
    b10 = con.execute(relational_sql("B10", settings)).fetchall()
    assert sorted((r[0], r[1]) for r in b11 if r[0]) == [
        ("210505004201", "surveys/甲村-修改版.xlsx"),  # newer than the file in use: the correction is lost
        ("210505004203", "surveys/丙村.xlsx"),  # all it sent, found by its name in the path
        ("210505004204", "surveys/丁村扫描件.pdf"),  # a PDF is all it sent
    ]
    assert [r[1] for r in b11 if r[0] is None] == ["surveys/不知哪里.xlsx"]
    assert "目前使用的是较早报送的 surveys/甲村.xlsx" in next(r[7] for r in b11 if r[0] == "210505004201")
    assert "按文件名判断为本村的文件" in next(r[7] for r in b11 if r[0] == "210505004203")
    assert [r[0] for r in b10] == ["210505004206"]  # only the village that sent nothing
