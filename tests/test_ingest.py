"""Ingestion of village workbooks carrying the mess of inputs.md, with no Dagster involved."""

import os

import pytest
from builders import (
    SheetSpec,
    household,
    make_id,
    member,
    write_survey,
    xlsx_to_xls,
)

from pipeline.io.inputs import FILE_READ, FILE_SUPERSEDED, FILE_UNREADABLE, ingest_surveys
from pipeline.io.survey import UnreadableWorkbook, read_survey
from pipeline.schema import HOUSEHOLD_COLUMNS, MEMBER_COLUMNS

V1, V2 = "210505004201", "210505004202"


def messy_village(path, village=V1):
    """A workbook with every kind of mess; returns what the clean reading must be."""
    h1, h2, h3 = make_id("19500101", 11), make_id("19600101", 21), make_id("19700101", 31)
    x_id = next(make_id("19550505", s) for s in range(300) if make_id("19550505", s).endswith("X"))
    damaged = make_id("19800101", 41)
    wrong_check = make_id("19810101", 51)
    wrong_check = wrong_check[:17] + ("0" if wrong_check[17] != "0" else "1")
    hh_rows = [
        household(f" {h1}\u3000", seq=1, head_name=" 张\n三 ", declared_size="2人", food_ok="√", clothing_ok="√",
                  education_ok="Y", water_ok="有", medical_ok="1", wage_income="3,000元", housing_grade="c"),
        household(h2.translate(str.maketrans("0123456789", "０１２３４５６７８９")), seq=2, food_ok="√",
                  clothing_ok="", education_ok="N", water_ok="无", medical_ok="0", wage_income=" 1 200.50 ",
                  main_cause="因病", other_causes="因残、缺技术", exit_status="已脱贫（享受政策）"),
        household(h3, seq=3, food_ok="√", clothing_ok="√", wage_income="", property_income="１００",
                  main_cause="因穷"),  # not a code: B7
    ]
    mm_rows = [
        member(h1, h1, name="张三"), member(h1, x_id.lower(), "配偶", name="李四"),
        member(h2, h2), member(h2, float(f"{float(damaged):.15g}"), "之子"),  # Excel damage: B2
        member(h3, h3), member(h3, wrong_check, "之女"),  # B1
    ]
    # The members sheet types the household's 户主身份证号 once, merged down over its rows.
    positions = write_survey(
        path,
        SheetSpec(hh_rows, rename={"家庭人口": "家庭人口数"}, extra={"入户调查人": ["王*", "王*", "王*"]},
                  order=[c.key for c in HOUSEHOLD_COLUMNS][::-1], blank_rows_before=[1]),
        SheetSpec(mm_rows, rename={"身份证号": "身份证号码"}, repeat_header_before=4, blank_rows_before=[2],
                  merge={"head_id": [(0, 1), (2, 3)]}),
        village_code=village,
    )
    return {"heads": (h1, h2, h3), "x_id": x_id, "positions": positions}


@pytest.fixture
def messy(tmp_path):
    raw = tmp_path / "raw"
    truth = messy_village(raw / "surveys" / "思山岭街道" / "财神庙村.xlsx")
    return raw, truth


def test_values_are_normalized(messy):
    raw, truth = messy
    result = ingest_surveys(raw)
    hh = result.households.set_index("head_id")
    h1, h2, h3 = truth["heads"]
    assert list(hh.index) == [h1, h2, h3]
    assert hh.loc[h1, "head_name"] == "张三"
    assert hh.loc[h1, "declared_size"] == 2
    assert hh.loc[h1, "wage_income"] == 300000  # cents
    assert hh.loc[h2, "wage_income"] == 120050
    assert hh.loc[h3, "property_income"] == 10000 and hh.loc[h3, "wage_income"] == 0
    assert [hh.loc[h1, k] for k in ("food_ok", "education_ok", "water_ok", "medical_ok")] == ["是"] * 4
    assert [hh.loc[h2, k] for k in ("education_ok", "water_ok", "medical_ok")] == ["否"] * 3
    assert hh.loc[h2, "clothing_ok"] == "否"  # a √/empty column: empty means no
    assert hh.loc[h1, "housing_grade"] == "C"
    assert hh.loc[h2, "exit_status"] == "已脱贫(享受政策)"
    assert hh.loc[h2, "other_causes"] == "因残、缺技术"
    assert hh.loc[h3, "main_cause"] is None or str(hh.loc[h3, "main_cause"]) == "<NA>"


def test_members_follow_merged_head_ids_and_repaired_ids(messy):
    raw, truth = messy
    result = ingest_surveys(raw)
    mm = result.members
    h1, h2, h3 = truth["heads"]
    assert len(mm) == 6
    assert list(mm["head_id"].iloc[:4]) == [h1, h1, h2, h2]  # merged cells filled down
    assert truth["x_id"] in set(mm["person_id"])  # lowercase x repaired
    assert set(mm["hh_key"].dropna()) == {f"{V1}|{h}" for h in (h1, h2, h3)}


def test_row_numbers_and_problems_point_at_the_village_file(messy):
    raw, truth = messy
    result = ingest_surveys(raw)
    members_rows = truth["positions"]["家庭成员情况"]
    assert list(result.members["row"]) == [members_rows[i] for i in range(6)]
    # blank row before the 3rd member and a repeated header before the 5th shift the rows
    assert members_rows[2] == members_rows[1] + 2 and members_rows[4] == members_rows[3] + 3
    found = {(p.rule, p.sheet, p.row, p.column) for p in result.problems}
    assert ("B2", "家庭成员情况", members_rows[3], "身份证号") in found
    assert ("B1", "家庭成员情况", members_rows[5], "身份证号") in found
    hh_rows = truth["positions"]["家庭基本情况"]
    assert ("B7", "家庭基本情况", hh_rows[2], "主要致贫原因") in found
    assert len(found) == 3
    # the damaged ID is never shown in full
    for p in result.problems:
        assert len([ch for ch in p.value if ch.isdigit()]) <= 10


def test_legacy_xls_reads_the_same(tmp_path):
    src = tmp_path / "x" / "a.xlsx"
    truth = messy_village(src)
    raw = tmp_path / "raw"
    xlsx_to_xls(src, raw / "surveys" / "旧电脑.xls")
    result = ingest_surveys(raw)
    assert list(result.files["status"]) == [FILE_READ]
    assert set(result.households["head_id"]) == set(truth["heads"])
    assert len(result.members) == 6
    assert {p.rule for p in result.problems} == {"B1", "B2", "B7"}


def test_resubmission_lock_file_and_corrupt_file(tmp_path):
    raw = tmp_path / "raw"
    folder = raw / "surveys" / "思山岭街道"
    messy_village(folder / "财神庙村.xlsx")
    fixed_head = make_id("19450101", 71)
    write_survey(folder / "财神庙村-修改版.xlsx", SheetSpec([household(fixed_head)]),
                 SheetSpec([member(fixed_head, fixed_head)]))
    os.utime(folder / "财神庙村.xlsx", (1_556_000_000, 1_556_000_000))
    os.utime(folder / "财神庙村-修改版.xlsx", (1_556_500_000, 1_556_500_000))
    other = make_id("19450202", 81)
    write_survey(folder / "二村.xlsx", SheetSpec([household(other)]), SheetSpec([member(other, other)]), village_code=V2)
    (folder / "~$二村.xlsx").write_bytes(b"\x00lock")
    (folder / "损坏.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    (folder / "空.xlsx").write_bytes(b"")
    result = ingest_surveys(raw)
    status = dict(zip(result.files["file"], result.files["status"]))
    assert status == {
        "surveys/思山岭街道/财神庙村.xlsx": FILE_SUPERSEDED,
        "surveys/思山岭街道/财神庙村-修改版.xlsx": FILE_READ,
        "surveys/思山岭街道/二村.xlsx": FILE_READ,
        "surveys/思山岭街道/损坏.xlsx": FILE_UNREADABLE,
        "surveys/思山岭街道/空.xlsx": FILE_UNREADABLE,
    }
    reasons = dict(zip(result.files["file"], result.files["reason"]))
    assert "损坏" in reasons["surveys/思山岭街道/损坏.xlsx"]
    assert "空" in reasons["surveys/思山岭街道/空.xlsx"]
    assert set(result.households["head_id"]) == {fixed_head, other}
    assert {p.rule for p in result.problems} == set()  # the old file's problems are gone with it


def test_workbook_without_survey_sheets_is_refused(tmp_path):
    import xlsxwriter

    path = tmp_path / "x.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("Sheet1").write(0, 0, "hello")
    wb.close()
    with pytest.raises(UnreadableWorkbook, match="工作表"):
        read_survey(path)


def test_password_protected_workbook_is_reported(tmp_path):
    raw = tmp_path / "raw"
    path = raw / "surveys" / "加密.xlsx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)  # an OLE container named .xlsx
    result = ingest_surveys(raw)
    assert result.files.loc[0, "status"] == FILE_UNREADABLE
    assert "密码" in result.files.loc[0, "reason"]


def test_schema_labels_are_what_the_reader_matches():
    # every schema label is found by the reader (guards against a typo in one place only)
    from pipeline.io.survey import _label_index, normalize_label

    for columns in (HOUSEHOLD_COLUMNS, MEMBER_COLUMNS):
        index = _label_index(columns)
        assert all(index[normalize_label(c.label)] is c for c in columns)


def test_a_small_read_stays_in_one_process_and_a_large_one_takes_every_core(tmp_path, monkeypatch):
    """The pool of readers starts only where a second core wins its start back
    (PARALLEL_READ_MIN_BYTES of workbooks, 4 files or more); a count given by the caller or by
    $HUITOUKAN_INGEST_WORKERS is taken as given."""
    from pipeline.io.inputs import PARALLEL_READ_MIN_BYTES, read_workers

    monkeypatch.delenv("HUITOUKAN_INGEST_WORKERS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    def files(n: int, each: int) -> list:
        folder = tmp_path / f"{n}x{each}"
        folder.mkdir()
        for i in range(n):
            (folder / f"{i}.xlsx").write_bytes(b"\0" * each)
        return sorted(folder.iterdir())

    small = files(9, PARALLEL_READ_MIN_BYTES // 9 - 1)
    large = files(9, PARALLEL_READ_MIN_BYTES // 9 + 1)
    few = files(3, PARALLEL_READ_MIN_BYTES)
    assert [read_workers(small), read_workers(large), read_workers(few)] == [1, 2, 1]
    assert read_workers(small, workers=2) == 2 and read_workers(few, workers=2) == 1
    monkeypatch.setenv("HUITOUKAN_INGEST_WORKERS", "3")
    assert [read_workers(small), read_workers(large)] == [3, 3]
    (large[0]).unlink()  # a file gone since the scan counts for nothing (its read reports it)
    monkeypatch.delenv("HUITOUKAN_INGEST_WORKERS")
    assert read_workers(large) == 1
