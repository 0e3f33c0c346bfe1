"""Property-based tests (hypothesis): whatever a village types into a cell, ingestion never
crashes — every cell ends as a clean value or a problem record, and one bad cell never makes a
whole workbook unreadable (issue #7). The same for resident-ID repair and the department
readers' value parsers."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from builders import SheetSpec, household, make_id, member, write_survey
from conftest import examples
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.io.dates import parse_date, parse_year_month
from pipeline.io.departments import clean_text as dept_clean_text
from pipeline.io.departments import parse_int, parse_number
from pipeline.io.inputs import FILE_READ, ingest_surveys
from pipeline.rules.clean import clean_sheet
from pipeline.rules.ids import IdStatus, check_char, repair_id
from pipeline.rules.problems import RULES
from pipeline.rules.workbook import ROW_COLUMN, SheetRead
from pipeline.schema import HOUSEHOLD_COLUMNS, MEMBER_COLUMNS, NO, SHEET_HOUSEHOLDS, SHEET_MEMBERS, YES

_VALID18 = re.compile(r"[0-9]{17}[0-9X]")
_LONG_DIGITS = re.compile(r"[0-9]{11,}")

# --------------------------------------------------------------------------------------------
# Strategies: what real village cells hold, and anything else
# --------------------------------------------------------------------------------------------


@st.composite
def valid_ids(draw) -> str:
    area = draw(st.sampled_from(["210505", "210502", "110101", "220102", "370202", "650102"]))
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2019, 4, 30)))
    first17 = f"{area}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    return first17 + check_char(first17)


_FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


@st.composite
def messy_ids(draw) -> tuple[str, str]:
    """(the ID, how a village typed it): only the mess rules.md says to repair silently."""
    pid = draw(valid_ids())
    text = pid
    if draw(st.booleans()):
        text = text.replace("X", "x")
    if draw(st.booleans()):
        text = text.translate(_FULL_WIDTH)
    spaces = draw(st.lists(st.sampled_from([" ", "\u3000", "\t"]), max_size=3))
    for space in spaces:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + space + text[at:]
    if draw(st.booleans()):
        text = "'" + text
    return pid, text


CODE_WORDS = sorted({code for col in HOUSEHOLD_COLUMNS + MEMBER_COLUMNS for code in col.codes})
MESS_WORDS = ["是", "否", "√", "×", "Y", "N", "有", "无", "1", "0", "1,000元", "１２３", " 3 人", "12个月", "-5",
              "1e20", "1e30", "1E999999999", "NaN", "inf", "-0", "=1+1", "+1", "@SUM(A1)", "'", "\n", "\u3000",
              "2.10505E+17", "210505198001011234.0", "填表说明：无"]

text_cells = st.text(max_size=25)
number_strings = st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,6})?([eE][+-]?[0-9]{1,10})?", fullmatch=True)
cells = st.one_of(
    st.none(),
    text_cells,
    number_strings,
    st.sampled_from(CODE_WORDS + MESS_WORDS),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    valid_ids(),
    messy_ids().map(lambda pair: pair[1]),
    valid_ids().map(lambda pid: float(pid[:17] + "1")),  # an ID Excel stored as a number
)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (
        isinstance(value, str) and not re.sub(r"[\s\u3000\u200b\ufeff]", "", value))


# --------------------------------------------------------------------------------------------
# Resident IDs
# --------------------------------------------------------------------------------------------


def _assert_id_result(result) -> None:
    assert isinstance(result.status, IdStatus)
    if result.status in (IdStatus.OK, IdStatus.REPAIRED):
        assert result.value and _VALID18.fullmatch(result.value)
        assert check_char(result.value[:17]) == result.value[17]
        dt.date(int(result.value[6:10]), int(result.value[10:12]), int(result.value[12:14]))
    else:
        assert result.value is None
        if result.status is not IdStatus.MISSING:
            assert result.reason  # a problem record will say why
    assert not _LONG_DIGITS.search(result.reason), "a reason never quotes the number"


@settings(max_examples=examples(300, thorough=1500), deadline=None)
@given(cells)
def test_id_repair_never_crashes_and_gives_a_valid_id_or_a_reason(value):
    _assert_id_result(repair_id(value))


@settings(max_examples=examples(100, thorough=500), deadline=None)
@given(messy_ids())
def test_id_repair_undoes_the_mess_rules_md_lists(pair):
    pid, typed = pair
    result = repair_id(typed)
    assert result.value == pid
    assert result.status is (IdStatus.OK if typed == pid else IdStatus.REPAIRED)
    assert repair_id(result.value).status is IdStatus.OK  # idempotent


@settings(max_examples=examples(100, thorough=300), deadline=None)
@given(valid_ids().filter(lambda p: p[6:8] == "19"))
def test_first_generation_numbers_are_upgraded(pid):
    assert repair_id(pid[:6] + pid[8:17]).value == pid


@settings(max_examples=examples(100, thorough=300), deadline=None)
@given(valid_ids())
def test_an_id_excel_turned_into_a_number_is_never_repaired(pid):
    digits = pid[:17] + "0"
    for damaged in (float(digits), int(float(digits)), f"{float(digits):.5E}"):
        result = repair_id(damaged)
        assert result.status is IdStatus.DAMAGED and result.value is None
    lost = pid[:15] + "000"  # the text of a number that lost its last digits
    if lost != pid:
        assert repair_id(lost).value != pid


# --------------------------------------------------------------------------------------------
# clean_sheet on synthetic sheets
# --------------------------------------------------------------------------------------------


@st.composite
def sheets(draw, columns):
    keys = draw(st.lists(st.sampled_from([c.key for c in columns]), unique=True, min_size=1))
    n = draw(st.integers(0, 6))
    rows = [[draw(cells) for _ in keys] for _ in range(n)]
    frame = pd.DataFrame(rows, columns=keys, dtype=object)
    frame[ROW_COLUMN] = pd.array(range(5, 5 + n), dtype="int64")
    return frame


def _check_clean(columns, sheet_name, frame):
    read = SheetRead(sheet_name, frame, header_row=4)
    out, problems = clean_sheet(read, columns, "210505004201", "surveys/x.xlsx")
    assert len(out) == len(frame) and list(out["row"]) == list(frame[ROW_COLUMN])
    flagged = {(p.row, p.column) for p in problems}
    for p in problems:
        assert p.rule in RULES and p.message
        if p.column in {c.label for c in columns if c.kind == "id"}:
            assert not _LONG_DIGITS.search(p.value or ""), "an ID is masked in a problem record"
    for col in columns:
        values = out[col.key].tolist()
        raws = frame[col.key].tolist() if col.key in frame else [None] * len(frame)
        for row, raw, value in zip(frame[ROW_COLUMN], raws, values):
            value = None if pd.isna(value) else value
            if col.kind == "id":
                assert value is None or (_VALID18.fullmatch(value) and check_char(value[:17]) == value[17])
                ok = value is not None
            elif col.kind == "code":
                assert value is None or value in col.codes
                ok = value is not None
            elif col.kind == "multi":
                assert value is None or set(value.split("、")) <= set(col.codes)
                ok = value is not None
            elif col.kind == "yesno":
                assert value in (None, YES, NO)
                ok = value is not None
            elif col.kind in ("amount", "int"):
                assert value is None or isinstance(value, int)
                ok = value is not None and (col.kind == "int" or value >= 0)
            else:
                assert value is None or (isinstance(value, str) and value == value.strip() and value)
                ok = True
            if col.key in frame and not _blank(raw) and not ok:
                assert (int(row), col.label) in flagged, f"{col.label}: {raw!r} became {value!r} without a problem"


@settings(max_examples=examples(50, thorough=300), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sheets(HOUSEHOLD_COLUMNS))
def test_household_cells_become_clean_values_or_problems(frame):
    _check_clean(HOUSEHOLD_COLUMNS, SHEET_HOUSEHOLDS, frame)


@settings(max_examples=examples(50, thorough=300), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sheets(MEMBER_COLUMNS))
def test_member_cells_become_clean_values_or_problems(frame):
    _check_clean(MEMBER_COLUMNS, SHEET_MEMBERS, frame)


# --------------------------------------------------------------------------------------------
# Whole workbooks: random cells written by Excel's rules, read back by the survey reader
# --------------------------------------------------------------------------------------------

workbook_cells = st.one_of(
    st.none(),
    text_cells.filter(lambda t: "\x00" not in t),
    number_strings,
    st.sampled_from(CODE_WORDS + MESS_WORDS),
    st.integers(min_value=-(10**17), max_value=10**17),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    messy_ids().map(lambda pair: pair[1]),
)
HH_KEYS = [c.key for c in HOUSEHOLD_COLUMNS if c.key not in ("seq", "head_id")]
MEMBER_KEYS = [c.key for c in MEMBER_COLUMNS if c.key not in ("seq", "head_id", "person_id")]


@st.composite
def workbooks(draw):
    n = draw(st.integers(1, 4))
    heads = [make_id("19500101", 11 + 2 * i) for i in range(n)]
    hh_rows = [household(h, seq=i + 1, **{k: draw(workbook_cells) for k in draw(st.sets(st.sampled_from(HH_KEYS)))})
               for i, h in enumerate(heads)]
    m_rows = [member(h, h, seq=i + 1, **{k: draw(workbook_cells) for k in draw(st.sets(st.sampled_from(MEMBER_KEYS)))})
              for i, h in enumerate(heads)]
    return hh_rows, m_rows


def _xml_safe(rows: list[dict]) -> list[dict]:
    """xlsxwriter refuses control characters in strings, as Excel does: what a workbook can hold."""
    bad = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
    return [{k: bad.sub("", v) if isinstance(v, str) else v for k, v in row.items()} for row in rows]


@pytest.mark.integration
@example(([household(make_id("19500101", 11), transfer_total="210505200001010003")],  # an ID in an amount cell
          [member(make_id("19500101", 11), make_id("19500101", 11), work_months=1e20)]))
@settings(max_examples=examples(10, thorough=25), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(workbooks())
def test_random_cells_never_make_a_workbook_unreadable(book):
    hh_rows, m_rows = book
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        write_survey(raw / "surveys" / "a.xlsx", SheetSpec(_xml_safe(hh_rows), notes=False),
                     SheetSpec(_xml_safe(m_rows), notes=False))
        result = ingest_surveys(raw, workers=1, settle=False)
    assert list(result.files["status"]) == [FILE_READ], list(result.files["reason"])
    assert len(result.households) == len(hh_rows) and len(result.members) == len(m_rows)
    for p in result.problems:
        assert p.rule in RULES


def test_a_huge_exponent_is_refused_at_once():
    """"1E999999999" in a count column: converting it to an integer would never end."""
    code = ("from pipeline.rules.values import normalize_amount, normalize_int\n"
            "assert normalize_int('1E999999999') == (None, '不是整数')\n"
            "assert normalize_amount('1E999999999')[0] is None\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------------------------
# The department readers' value parsers
# --------------------------------------------------------------------------------------------


@settings(max_examples=examples(300, thorough=1000), deadline=None)
@given(cells)
def test_department_value_parsers_never_crash(value):
    text = dept_clean_text(value)
    assert text is None or (isinstance(text, str) and text == text.strip())
    number = parse_number(value)
    assert number is None or number.is_finite()
    parse_int(value)
    for parsed in (parse_date(value), parse_year_month(value)):
        assert parsed is None or isinstance(parsed, dt.date)
