"""Resident ID repair and validation (rules.md, "Resident ID numbers")."""

import pytest
from builders import make_id
from hypothesis import given
from hypothesis import strategies as st

from pipeline.rules.ids import IdStatus, check_char, repair_id, sex_of, upgrade_15


def test_check_character_follows_gb11643():
    # weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, sum mod 11 indexes "10X98765432"
    first17 = "11010519491231002"
    assert check_char(first17) == "X"
    assert repair_id(first17 + "X").status is IdStatus.OK


@pytest.mark.parametrize("birth", ["19300101", "19550615", "19831231", "19120229"])
def test_valid_ids_of_people_born_before_1984_in_nanfen(birth):
    pid = make_id(birth, 17)
    result = repair_id(pid)
    assert result.status is IdStatus.OK and result.value == pid


def test_x_check_character_and_lowercase_x():
    # find a sequence whose check character is X
    pid = next(make_id("19600101", s) for s in range(1000) if make_id("19600101", s).endswith("X"))
    assert repair_id(pid).value == pid
    result = repair_id(pid.lower())
    assert result.status is IdStatus.REPAIRED and result.value == pid


def test_fifteen_digit_first_generation_number_is_converted():
    pid18 = make_id("19650708", 123)
    pid15 = pid18[:6] + pid18[8:17]
    assert len(pid15) == 15
    assert upgrade_15(pid15) == pid18
    result = repair_id(pid15)
    assert result.status is IdStatus.REPAIRED and result.value == pid18


@pytest.mark.parametrize("mess", [
    lambda p: f"  {p} ",                       # surrounding spaces
    lambda p: f"{p[:6]} {p[6:14]} {p[14:]}",   # inner spaces
    lambda p: f"\u3000{p}\u3000",              # full-width spaces
    lambda p: p.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")),  # full-width digits
    lambda p: "'" + p,                         # leading apostrophe
    lambda p: p + "\n",                        # line break
])
def test_repairable_formatting(mess):
    pid = make_id("19720304", 55)
    result = repair_id(mess(pid))
    assert result.status is IdStatus.REPAIRED and result.value == pid


def test_excel_damaged_numbers_are_never_repaired():
    pid = make_id("19800101", 123)
    as_number = float(f"{float(pid):.15g}")  # Excel keeps 15 significant digits
    damaged = repair_id(as_number)
    assert damaged.status is IdStatus.DAMAGED and damaged.value is None
    assert repair_id(int(pid)).status is IdStatus.DAMAGED  # any number with > 15 digits
    assert repair_id("2.10505E+17").status is IdStatus.DAMAGED  # scientific notation as text
    assert repair_id(pid[:15] + "000").status in (IdStatus.DAMAGED, IdStatus.OK)
    zeros = pid[:15] + "000"
    if check_char(zeros[:17]) != "0":
        assert repair_id(zeros).status is IdStatus.DAMAGED


def test_fifteen_digit_number_cell_is_a_first_generation_id():
    pid18 = make_id("19650708", 123)
    pid15 = pid18[:6] + pid18[8:17]
    assert repair_id(float(pid15)).value == pid18


def test_wrong_check_character_and_impossible_dates_are_invalid():
    pid = make_id("19800101", 123)
    wrong = pid[:17] + ("1" if pid[17] != "1" else "2")
    assert repair_id(wrong).status is IdStatus.INVALID
    assert "校验位" in repair_id(wrong).reason
    bad_date = "210505" + "19800231" + "123"
    assert repair_id(bad_date + check_char(bad_date)).status is IdStatus.INVALID
    bad_area = "990505" + "19800101" + "123"
    assert repair_id(bad_area + check_char(bad_area)).status is IdStatus.INVALID
    assert repair_id("12345").status is IdStatus.INVALID
    assert repair_id("").status is IdStatus.MISSING
    assert repair_id(None).status is IdStatus.MISSING


def test_reasons_never_carry_the_number():
    pid = make_id("19800101", 123)
    for value in (pid[:17] + "0", float(pid), pid[:16]):
        assert pid[:10] not in repair_id(value).reason


def test_sex_digit():
    assert sex_of(make_id("19800101", 123)) == "男"
    assert sex_of(make_id("19800101", 124)) == "女"


@given(st.one_of(st.text(max_size=40), st.floats(), st.integers(), st.none(), st.booleans()))
def test_repair_never_crashes(value):
    result = repair_id(value)
    assert result.status in IdStatus
    if result.valid:
        assert len(result.value) == 18 and check_char(result.value[:17]) == result.value[17]
