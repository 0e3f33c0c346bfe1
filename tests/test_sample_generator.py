"""The synthetic sample district: reproducible, laid out as inputs.md says, and its answer key
agrees with the files it describes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from pipeline import schema as S
from pipeline.rules.ids import IdStatus, repair_id
from pipeline.sample.generator import ANSWER_KEY, generate, main
from pipeline.settings import Settings

SMALL = 600
CROSS_RULES = ("X1", "X2", "X3", "X4", "D1", "D2", "D3", "D4", "D5")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    """Written by three worker processes (``huitoukan sample`` uses one per CPU): the serial
    generation in test_parallel_and_serial_generation_write_the_same_files is compared with it."""
    root = tmp_path_factory.mktemp("small") / "raw"
    return root, generate(root, households=SMALL, seed=2019, workers=3)


@pytest.fixture(scope="module")
def default(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("default") / "raw"
    return root, generate(root)


def _digests(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def _rows(path: Path, sheet: str) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def _sheet_name(key: dict, file: str, table: str) -> str:
    """The name of the sheet holding ``table`` in a survey file (a village may name it otherwise)."""
    return next(a["sheet"] for a in key["row_accounts"][file] if a["table"] == table)


def _header_keys(rows: list[list], cols: tuple) -> dict[str, int]:
    """Column index of each schema key, found by label or alias in header rows 3–4."""
    names = {n: c.key for c in cols for n in c.names}
    found = {}
    for r in (2, 3):
        for i, v in enumerate(rows[r]):
            if isinstance(v, str) and v in names:
                found[names[v]] = i
    return found


# ------------------------------------------------------------------------------------------
# reproducibility
# ------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_key(small, tmp_path):
    root, key = small
    again = tmp_path / "again"
    key2 = generate(again, households=SMALL, seed=2019)
    assert key2 == key
    assert _digests(again) == _digests(root)  # bytes and modification times


def test_parallel_and_serial_generation_write_the_same_files(small, tmp_path):
    """Files are written by forked workers in whatever order they finish; each file's bytes come
    from the model and its own seeded RNG, so one process and several give the same district."""
    parallel_root, parallel = small  # three workers
    serial = generate(tmp_path / "serial", households=SMALL, seed=2019, workers=1)
    assert parallel == serial
    assert _digests(parallel_root) == _digests(tmp_path / "serial")


def test_answer_key_file_is_plain_json_dumps(small):
    """The key is streamed to disk a slice of households at a time: the same text json.dumps gives."""
    root, key = small
    text = (root / ANSWER_KEY).read_text(encoding="utf-8")
    assert text == json.dumps(key, ensure_ascii=False, indent=1)


def test_fast_xlsx_rows_are_byte_identical_to_xlsxwriter(tmp_path):
    """xlsxfast.put_row + its sheet/shared-string assembly write what cell-by-cell XlsxWriter does,
    including strings that need escaping or whitespace preserved, dates, merges over put rows,
    column formats and the fallback for rows with options."""
    import datetime as dt

    import xlsxwriter

    from pipeline.sample import xlsxfast

    rows = [
        [1, "210505199001011234", "张三", None, 3.25, -7, 210505199001011234.0, "a&b<c>\"d\"", " lead", "trail ",
         "line\nbreak", "tab\there", "ctl\x01x", "_x0041_", "\u3000全角", dt.date(2018, 3, 5), 1e20, 0, None],
        [None, None, "x" * 20000, "", "<r>rich</r>", 12345678901234, 0.1 + 0.2, "210505199001011234"],
        [],
        ["只有一格"],
    ] + [[r, f"name{r % 37}", r * 1.5, f"210505{r:012d}", "是" if r % 2 else "否"] for r in range(300)]
    fmts = [None, "text", None, None, None] + [None] * 20

    def build(path, fast):
        cls = xlsxfast.Workbook if fast else xlsxwriter.Workbook
        wb = cls(str(path), {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                             "strings_to_urls": False})
        wb.set_properties({"created": dt.datetime(2019, 4, 26, 9, 0, 0)})
        text = wb.add_format({"num_format": "@"})
        date = wb.add_format({"num_format": "yyyy-mm-dd"})
        col = wb.add_format({"bold": True})
        merge = wb.add_format({"valign": "vcenter"})
        for name, with_options in (("甲", False), ("乙", True)):
            ws = wb.add_worksheet(name)
            ws.merge_range(0, 0, 0, 6, "标题", merge)
            ws.set_column(2, 2, 30, col)
            if with_options:
                ws.set_row(7, 30)
            str_fmts = [text if f else None for f in fmts]
            for r, row in enumerate(rows, start=2):
                if fast:
                    ws.put_row(r, row, str_fmts, date)
                    continue
                for c, val in enumerate(row):
                    if val is None:
                        continue
                    if isinstance(val, str):
                        ws.write_string(r, c, val, str_fmts[c])
                    elif isinstance(val, dt.date):
                        ws.write_datetime(r, c, dt.datetime(val.year, val.month, val.day), date)
                    else:
                        ws.write_number(r, c, val)
            ws.merge_range(8, 1, 10, 1, "合并", merge)  # over cells put before
            ws.write_string(len(rows) + 3, 0, "填表说明")
            ws.freeze_panes(2, 0)
        wb.close()
        return path.read_bytes()

    assert build(tmp_path / "fast.xlsx", True) == build(tmp_path / "plain.xlsx", False)


def test_different_seed_differs(small, tmp_path):
    root, key = small
    other = generate(tmp_path / "other", households=SMALL, seed=7)
    assert {h["head_id"] for h in other["households"]} != {h["head_id"] for h in key["households"]}
    mine, theirs = _digests(root), _digests(tmp_path / "other")
    assert mine[ANSWER_KEY][0] != theirs[ANSWER_KEY][0]
    common = set(mine) & set(theirs)
    assert any(mine[f][0] != theirs[f][0] for f in common if f.startswith(S.SURVEYS_DIR))


def test_refuses_a_folder_that_is_not_a_sample(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate(tmp_path, households=SMALL)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_cli_entry(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "cli"), "--households", "300", "--seed", "3"]) == 0
    key = json.loads((tmp_path / "cli" / ANSWER_KEY).read_text(encoding="utf-8"))
    assert key["seed"] == 3 and key["households_requested"] == 300


# ------------------------------------------------------------------------------------------
# layout of the data root and the survey workbooks
# ------------------------------------------------------------------------------------------


def test_data_root_layout(small):
    root, key = small
    assert (root / S.VILLAGES_FILE).exists()
    assert not (root / S.EXCEPTIONS_FILE).exists()
    assert sorted(p.name for p in (root / S.DEPARTMENTS_DIR).iterdir()) == sorted(d.key for d in S.DEPARTMENTS)
    assert list((root / S.REGISTRY_DIR).glob("*.xlsx"))
    with (root / S.VILLAGES_FILE).open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(S.VILLAGE_COLUMNS.values())
    assert {r["村代码"] for r in rows} == {v["village_code"] for v in key["villages"]}
    for r in rows:
        assert len(r["村代码"]) == 12 and r["村代码"].startswith(r["办事处代码"]) and len(r["办事处代码"]) == 9
    assert {"否", "是"} == {r["是否涉农"] for r in rows}
    names = {r["办事处名称"] for r in rows}
    assert {"南芬街道", "铁山街道", "郭家街道", "思山岭街道", "下马塘街道"} <= names


def test_survey_workbook_layout(small):
    root, key = small
    titles = {S.SHEET_HOUSEHOLDS: "（家庭基本情况）", S.SHEET_MEMBERS: "（家庭成员情况）"}
    checked = 0
    for v in key["villages"]:
        if not v["latest_file"] or not v["latest_file"].endswith(".xlsx"):
            continue
        wb = openpyxl.load_workbook(root / v["latest_file"])
        tables = {_sheet_name(key, v["latest_file"], t): t for t in (S.SHEET_HOUSEHOLDS, S.SHEET_MEMBERS)}
        if "sheet_names" in v["roles"]:  # sheets named with extra words, beside instructions and an empty sheet
            assert wb.sheetnames == ["填表说明", "表1 家庭基本情况", "家庭成员情况表", "Sheet3"]
        else:
            assert wb.sheetnames == [S.SHEET_HOUSEHOLDS, S.SHEET_MEMBERS]
        for ws in wb.worksheets:
            if ws.title not in tables:
                continue
            cols = S.SURVEY_SHEETS[tables[ws.title]]
            merged = {str(m) for m in ws.merged_cells.ranges}
            last = openpyxl.utils.get_column_letter(ws.max_column)
            assert ws["A1"].value == S.SURVEY_TITLE + titles[tables[ws.title]]
            assert f"A1:{last}1" in merged
            row2 = ws["A2"].value
            assert row2.startswith(f"填报单位：{v['subdistrict_name']}{v['village_name']}\u3000")
            assert f"村代码：{v['village_code']}\u3000" in row2 and "填报日期：2019-04-" in row2
            labels = {n: c for c in cols for n in c.names}
            seen = set()
            for cell in ws[3]:
                if cell.value in labels:  # ungrouped: merged down rows 3–4
                    assert labels[cell.value].group == ""
                    assert f"{cell.coordinate}:{cell.column_letter}4" in merged
                    seen.add(labels[cell.value].key)
                elif cell.value == "入户调查人":  # a column the village added
                    assert f"{cell.coordinate}:{cell.column_letter}4" in merged
                elif cell.value:  # a group label, merged across its columns in row 3
                    group_cols = [c for c in cols if c.group == cell.value]
                    assert group_cols, cell.value
                    end = openpyxl.utils.get_column_letter(cell.column + len(group_cols) - 1)
                    if len(group_cols) > 1:
                        assert f"{cell.coordinate}:{end}3" in merged
                    under = [ws.cell(4, cell.column + k).value for k in range(len(group_cols))]
                    assert [labels[u].key for u in under] == [c.key for c in group_cols]
                    seen.update(c.key for c in group_cols)
            assert seen == {c.key for c in cols}
            first = [c.value for c in ws[5]]
            assert any(first), "data starts in row 5"
        checked += 1
    assert checked >= 5


def test_answer_key_agrees_with_files(small):
    root, key = small
    by_code = {v["village_code"]: v for v in key["villages"]}
    for v in key["villages"]:
        for f in v["survey_files"]:
            assert (root / f).is_file()
        if v["farming"] and "b10" not in v["roles"]:
            assert v["latest_file"] in v["survey_files"]
        else:
            assert v["latest_file"] is None and v["survey_files"] == []
        if len(v["survey_files"]) > 1:  # a corrected resubmission: the newest file counts
            mtimes = {f: (root / f).stat().st_mtime for f in v["survey_files"]}
            assert max(mtimes, key=mtimes.get) == v["latest_file"]
            assert set(v["survey_files"]) - {v["latest_file"]} <= set(key["ignored_files"])
    b10 = [p for p in key["problems"] if p["rule"] == "B10"]
    assert len(b10) == 1 and by_code[b10[0]["village_code"]]["farming"]
    for f in key["unreadable_files"]:
        assert (root / f).is_file() and not zipfile.is_zipfile(root / f)
    locks = [f for f in key["ignored_files"] if Path(f).name.startswith("~$")]
    assert locks and all((root / f).is_file() for f in locks)

    # households in each latest file: the rows whose 序号 is a number on 家庭基本情况
    per_village: dict[str, int] = {}
    for h in key["households"]:
        per_village[h["village_code"]] = per_village.get(h["village_code"], 0) + 1
    for code, n in per_village.items():
        latest = by_code[code]["latest_file"]
        rows = _rows(root / latest, _sheet_name(key, latest, S.SHEET_HOUSEHOLDS))
        seq = _header_keys(rows, S.HOUSEHOLD_COLUMNS)["seq"]
        assert sum(isinstance(r[seq], (int, float)) and r[seq] != "" for r in rows[4:]) == n
    assert key["counts"]["households"] == len(key["households"])
    assert key["counts"]["persons"] == sum(h["size"] for h in key["households"])


def test_planted_problem_cells(small):
    root, key = small
    seen = set()
    for p in key["problems"]:
        if p["row"] is None or p["column"] is None:
            continue
        path = root / p["file"]
        cols = S.SURVEY_SHEETS[p["sheet"]]
        rows = _rows(path, _sheet_name(key, p["file"], p["sheet"]))
        col = _header_keys(rows, cols)[next(c.key for c in cols if c.label == p["column"])]
        value = rows[p["row"] - 1][col]
        seen.add(p["rule"])
        if p["rule"] == "B2":  # a number Excel kept to 15 significant digits
            assert isinstance(value, float) and len(str(int(value))) == 18
            assert repair_id(value).status == IdStatus.DAMAGED
            if path.suffix == ".xlsx":
                cell = openpyxl.load_workbook(path)[_sheet_name(key, p["file"], p["sheet"])].cell(p["row"], col + 1)
                assert cell.data_type == "n"
        elif p["rule"] == "B1":
            assert isinstance(value, str) and repair_id(value).status == IdStatus.INVALID
        elif p["rule"] == "B6":
            assert value in ("", None)
        elif p["rule"] == "B7":
            assert value not in dict((c.label, c.codes) for c in cols)[p["column"]]
        elif p["rule"] == "B8":
            assert isinstance(value, str) and (value.startswith("-") or not value.replace(".", "").isdigit())
        elif p["rule"] in ("B3",):
            assert repair_id(value).value == p["person_id"]
    assert {"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"} <= seen
    rules = {p["rule"] for p in key["problems"]}
    assert {"B9", "B10", "W1", "W2", "W3", "W4", "W5", "W7", "W8", "W9"} <= rules


def test_held_back_households_match_blocking_problems(small):
    _, key = small
    blocking = {p["head_id"] for p in key["problems"] if p["rule"][0] == "B" and p["rule"] != "B10"
                and p["head_id"] and p["file"]}
    held = {h["head_id"] for h in key["households"] if h["blocking"]}
    assert held == blocking
    for h in key["households"]:
        if h["blocking"]:
            assert not (h["annex2"] or h["annex3"] or h["in_annex4"] or h["in_annex5"] or h["in_annex6"])
    assert len(held) <= 0.1 * len(key["households"])


def test_ids_valid_and_distinct(small):
    _, key = small
    heads = [h["head_id"] for h in key["households"]]
    assert len(heads) == len(set(heads))
    for pid in heads:
        assert repair_id(pid).status == IdStatus.OK
    assert any(pid.endswith("X") for pid in heads)
    assert any(not pid.startswith("210505") for pid in heads)  # 外籍户 registered elsewhere


# ------------------------------------------------------------------------------------------
# the classification in the key follows rules.md
# ------------------------------------------------------------------------------------------


def _check_classification(key: dict, settings: Settings) -> None:
    for h in key["households"]:
        if h["blocking"] or h["net_income"] is None:
            continue
        net, size = Decimal(h["net_income"]), h["size"]
        # shown cut down to the cent (rules.md), so it never contradicts a strict comparison
        assert Decimal(h["per_capita"]) == (net / size).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
        low5, low45 = net < settings.monitoring_line * size, net < settings.identification_line * size
        assert h["in_annex5"] == low45 and h["in_annex6"] == low5
        assert h["in_annex4"] == (h["status_type"] == S.HH_REGISTERED and low5)
        hard = any(f.startswith("X") for f in h["findings"])
        condition = low5 or h["fails_guarantee"]
        exited = h["status_type"] == S.HH_REGISTERED and h["exit_status"] in S.EXITED_STATUSES
        assert bool(h["annex2"]) == (exited and condition and not hard)
        if h["annex2"]:
            poor = net < settings.poverty_line * size or h["fails_guarantee"]
            assert h["annex2"] == ("返贫" if poor else "重点扶持")
        if h["annex3"]:
            assert h["status_type"] in (S.HH_ORDINARY, S.HH_REMOVED) and condition and not hard
            assert h["annex3"] == ("新识别" if low45 or h["fails_guarantee"] else "重点扶持")
        if h["left_out_reason"]:
            assert condition and not h["annex2"] and not h["annex3"]
            assert (h["left_out_reason"] == "排除") == hard
        if condition and h["status_type"] in (S.HH_ORDINARY, S.HH_REMOVED):
            # at most one reason to leave a household out, so that the reason is not a matter of order
            # (one that did not apply was not reviewed either: 未评议 is part of 未申请)
            reasons = [hard, not h["applied"], h["applied"] and h["review"] != S.REVIEW_PASSED,
                       not h["main_cause"]]
            assert sum(reasons) <= 1, h
            expected = ["排除", "未申请", "评议未通过", "无致贫原因"][reasons.index(True)] if any(reasons) else None
            assert h["left_out_reason"] == expected


def test_classification_consistent(small):
    _, key = small
    _check_classification(key, Settings())


# ------------------------------------------------------------------------------------------
# at the default size: every cross-check rule has hits and decoys; boundaries; bunching
# ------------------------------------------------------------------------------------------


def test_default_size_district(default):
    _, key = default
    c = key["counts"]
    assert 7800 <= c["households"] <= 8200 and 18000 <= c["persons"] <= 22000
    assert 28 <= c["villages"] <= 36 and c["farming_villages"] - c["surveyed_villages"] == 1
    assert c["households_by_type"][S.HH_REGISTERED] > 1000 and c["households_by_type"][S.HH_REMOVED] > 50
    for reason in ("排除", "未申请", "评议未通过", "无致贫原因"):
        assert c["left_out"].get(reason, 0) >= 1, reason
    assert set(c["annex2_households"]) == {"返贫", "重点扶持"} and set(c["annex3_households"]) == {"新识别", "重点扶持"}
    for annex in ("annex4_households", "annex5_households", "annex6_households"):
        assert c[annex] > 100
    _check_classification(key, Settings())


def test_every_cross_check_rule_has_hits_and_decoys(default):
    _, key = default
    by_head = {h["head_id"]: h for h in key["households"]}
    hit_heads: dict[str, set] = {}
    for rule in CROSS_RULES:
        planted = [p for p in key["planted"] if p["rule"] == rule]
        assert any(p["kind"] == "hit" for p in planted), rule
        assert any(p["kind"] == "decoy" for p in planted), rule
    for p in key["planted"]:
        findings = by_head[p["head_id"]]["findings"]
        if p["kind"] == "hit":
            assert p["rule"] in findings, p
            hit_heads.setdefault(p["rule"], set()).add(p["head_id"])
        else:
            assert p["rule"] not in findings, p
    for h in key["households"]:  # nothing found that was not planted
        for rule in h["findings"]:
            assert h["head_id"] in hit_heads.get(rule, ()), (rule, h["head_id"])
    # hard exclusions change 附件2/3 membership somewhere
    assert any(h["left_out_reason"] == "排除" for h in key["households"])


def test_boundary_households(default):
    _, key = default
    shown = {}
    for h in key["households"]:
        if h["per_capita"] and not h["blocking"]:
            shown.setdefault(h["per_capita"], []).append(h)
    for pc in ("3999.99", "4000.00", "4499.99", "4500.00", "4999.99", "5000.00"):
        assert pc in shown, pc
    assert all(not h["in_annex6"] for h in shown["5000.00"] if Decimal(h["net_income"]) == 5000 * h["size"])
    assert any(h["in_annex6"] for h in shown["4999.99"])
    # 13499.99 / 3 lies below the line and is shown below it: 4499.99, never 4500.00
    assert any(h["in_annex5"] for h in shown["4499.99"] if Decimal(h["net_income"]) == Decimal("13499.99"))
    assert not any(h["in_annex5"] for h in shown["4500.00"])
    assert not any(h["in_annex6"] for h in shown["5000.00"])
    # income at or below zero, and every income item 0 (W8)
    assert any(Decimal(h["net_income"]) < 0 for h in key["households"] if h["net_income"])
    assert key["counts"]["problems_by_rule"].get("W8", 0) >= 1


def test_bunching_village(default):
    _, key = default
    st = Settings()
    assert key["bunching"], "a 算账式脱贫 village is planted"
    for code, heads in key["bunching"].items():
        hs = [h for h in key["households"] if h["village_code"] == code and not h["blocking"] and h["net_income"]]
        line = st.monitoring_line
        above = [h for h in hs if line * h["size"] <= Decimal(h["net_income"]) < (line + 250) * h["size"]]
        under = [h for h in hs if (line - 250) * h["size"] <= Decimal(h["net_income"]) < line * h["size"]]
        assert len(above) >= 5 and len(above) > 2 * len(under)
        assert set(heads) == {h["head_id"] for h in above}
    decoys = [v for v in key["villages"] if "bunch_decoy" in v["roles"]]
    assert decoys and all(v["village_code"] not in key["bunching"] for v in decoys)


# ------------------------------------------------------------------------------------------
# department extracts and the mess the files carry
# ------------------------------------------------------------------------------------------


def test_department_extracts(small):
    root, key = small
    for d in S.DEPARTMENTS:
        files = key["department_files"][d.key]
        assert files
        for f in files:
            path = root / f
            if d.file_format == "csv":
                text = path.read_bytes().decode(d.encoding)
                header = next(csv.reader(io.StringIO(text)))
            else:
                header = _rows(path, "Sheet1")[0]
            assert list(header) == list(d.columns), f
    tax = (root / key["department_files"]["tax"][0]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        tax.decode("utf-8")  # really GBK
    # repeated rows across batches of one department
    hrss = [tuple(r) for f in key["department_files"]["hrss"] for r in _rows(root / f, "Sheet1")[1:]]
    assert len(hrss) > len(set(hrss))


def test_mess_in_files(small):
    root, key = small
    ids, dates, headers, values = [], [], set(), []
    for d in S.DEPARTMENTS:
        for f in key["department_files"][d.key]:
            path = root / f
            if d.file_format == "csv":
                rows = list(csv.reader(io.StringIO(path.read_bytes().decode(d.encoding))))
            else:
                rows = _rows(path, "Sheet1")
            i = rows[0].index(d.id_column)
            ids += [r[i] for r in rows[1:]]
            for col in d.date_columns:
                j = rows[0].index(col)
                dates += [r[j] for r in rows[1:]]
    assert any(isinstance(x, str) and len(x) == 15 for x in ids)
    assert any(isinstance(x, str) and x.endswith("x") for x in ids)
    assert any(isinstance(x, str) and x != x.strip() for x in ids)
    assert any(not isinstance(x, str) for x in dates)  # real Excel dates
    for form in ("年", "/", "-"):
        assert any(isinstance(x, str) and form in x for x in dates), form
    assert any(isinstance(x, str) and x.isdigit() and len(x) == 8 for x in dates)
    for v in key["villages"]:
        if not v["latest_file"]:
            continue
        for sheet in (S.SHEET_HOUSEHOLDS, S.SHEET_MEMBERS):
            rows = _rows(root / v["latest_file"], _sheet_name(key, v["latest_file"], sheet))
            headers.update(x for x in rows[3] + rows[2] if isinstance(x, str))
            values += [x for r in rows[4:] for x in r if x not in ("", None)]
    assert {"身份证号码", "家庭人口数", "入户调查人"} <= headers
    strings = [x for x in values if isinstance(x, str)]
    assert any(x.endswith("元") for x in strings) and any("," in x and x.replace(",", "").isdigit() for x in strings)
    assert any("\u3000" in x for x in strings) and any("\n" in x for x in strings)
    assert any(x.startswith("填表说明") for x in strings)
    assert any(x.startswith("'") for x in strings)  # a leading apostrophe on an ID
    assert any(len(x) == 15 and x.isdigit() for x in strings)  # a 15-digit first-generation ID
    for token in ("√", "×", "Y", "N", "有", "无", "是", "否"):
        assert token in strings, token
    assert any(Path(v["latest_file"]).suffix == ".xls" for v in key["villages"] if v["latest_file"])


def test_the_three_failures_of_issue_11_are_planted(small):
    """The sample carries each failure of issue #11 — sheets named with extra words beside an
    instructions sheet and an empty Sheet3, a blank line inside a block of merged 户主身份证号
    cells, a 合计 row under the households — and the key says how the reader must account for
    every row of every file (rows seen = used + set aside by reason)."""
    root, key = small
    roles = {role: v for v in key["villages"] for role in v["roles"]}
    assert {"sheet_names", "blank_in_merge", "totals"} <= set(roles)
    for file, accounts in key["row_accounts"].items():
        assert (root / file).is_file()
        for a in accounts:
            assert a["rows_seen"] == a["rows_used"] + sum(a["set_aside"].values()), (file, a)
    named = {a["sheet"]: a for a in key["row_accounts"][roles["sheet_names"]["latest_file"]]}
    assert named["表1 家庭基本情况"]["table"] == S.SHEET_HOUSEHOLDS and named["家庭成员情况表"]["table"] == S.SHEET_MEMBERS
    assert named["填表说明"]["table"] is None and named["Sheet3"]["rows_seen"] == 0
    totals = {a["table"]: a for a in key["row_accounts"][roles["totals"]["latest_file"]]}
    assert totals[S.SHEET_HOUSEHOLDS]["set_aside"]["合计行"] == 1
    rows = _rows(root / roles["totals"]["latest_file"], S.SHEET_HOUSEHOLDS)
    assert any(r[0] == "合计" for r in rows)
    # the blank line lies inside a merged 户主身份证号 block of the members sheet
    path = root / roles["blank_in_merge"]["latest_file"]
    sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(S.SHEET_MEMBERS)
    rows = sheet.to_python(skip_empty_area=False)
    head = _header_keys(rows, S.MEMBER_COLUMNS)["head_id"]
    inside = [r for (r0, c0), (r1, c1) in sheet.merged_cell_ranges if c0 == head and r0 >= 4
              for r in range(r0 + 1, r1 + 1) if all(v in ("", None) for v in rows[r])]
    assert len(inside) == 1
