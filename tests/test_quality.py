"""Data quality: every problem of rules.md (B1–B10, W1–W9) raised where it is and nowhere else,
stable problem ids, write–audit–publish with exceptions.csv, the per-village 问题清单, the
Great Expectations asset checks, and the offline Data Docs.

One district holds a clean village (no problem at all), a village with one household per problem
code, a village bunching just above 4500 (W6), a household that shares a person with another
village (B3), a 涉农 village that sent nothing (B10) and two households held back by a blocking
problem. Four whole-pipeline runs are shared by every test of the module: the district; the
district with exceptions.csv accepting the held-back households' problems; that again with the
problem village's corrected resubmission; and a district of the clean village alone.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import duckdb
import openpyxl
import pandas as pd
import pytest
from builders import SheetSpec, default_village, household, make_id, member, write_registry, write_survey, write_villages
from conftest import read_detail

from pipeline.checks.ge_worker import GEWorker
from pipeline.resources import GreatExpectationsResource

pytestmark = pytest.mark.integration

A, B, C, D, F = (f"2105050042{n:02d}" for n in range(1, 6))
NAMES = {A: "财神庙村", B: "问题村", C: "邻村", D: "未报送村", F: "非涉农村"}
# Three survey files per run, on purpose: the survey reader forks worker processes from 4 files on,
# and a fork taken while DuckDB's threads run can deadlock the child (reported to its owner).
H, M = "家庭基本情况", "家庭成员情况"
EXITED = "已脱贫(享受政策)"
ANNEX = {
    2: "附件2_返贫（重点扶持）人口统计表.xlsx", 3: "附件3_新识别（重点扶持）贫困人口统计表.xlsx",
    4: "附件4_贫困户年人均收入5000元以下统计表.xlsx", 5: "附件5_农户年人均收入4500元以下统计表.xlsx",
    6: "附件6_农户年人均收入5000元以下统计表.xlsx",
}

_seq = iter(range(100, 999))
# Names as villages type them; none may reach the warehouse's problem values, metadata or Data Docs.
PEOPLE = ["王建国", "李秀英", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴芳", "徐海燕"]
REGISTRY_NAMES = ("孙志刚", "孙小明")


def pid(birth: str = "19700101") -> str:
    """A fresh valid ID (sequence numbers never repeat within the module)."""
    return make_id(birth, next(_seq))


def male_id(birth: str) -> str:
    """A fresh valid ID whose sequence digit is odd (男)."""
    while True:
        candidate = pid(birth)
        if int(candidate[16]) % 2:
            return candidate


def hh_no(village: str, n: int) -> str:
    """A 14-digit 户编号 of the national system."""
    return f"{village[:6]}{village[-3:]}{n:05d}"


def wrong_check(id18: str) -> str:
    return id18[:17] + ("0" if id18[17] != "0" else "1")


@dataclass
class VillageFile:
    """Households and members of one village workbook, and where each problem is expected."""

    code: str
    households: list[dict] = field(default_factory=list)
    members: list[dict] = field(default_factory=list)
    # (rule, sheet, data index on that sheet, column label)
    expected: list[tuple] = field(default_factory=list)
    positions: dict = field(default_factory=dict)
    blank_rows_before: tuple[list[int], list[int]] = ([], [])  # households, members

    def add(self, hh: dict, *mm: dict) -> int:
        hh = {**hh, "seq": len(self.households) + 1}
        hh.setdefault("wage_income", 30000)
        self.households.append(hh)
        for m in mm:
            self.members.append({**m, "seq": len(self.members) + 1})
        return len(self.households) - 1

    def member_index(self, person_id) -> int:
        return next(i for i, m in enumerate(self.members) if m["person_id"] == person_id)

    def expect(self, rule: str, sheet: str, index: int, column: str) -> None:
        self.expected.append((rule, sheet, index, column))

    def write(self, raw: Path, name: str | None = None, mtime: float | None = None) -> None:
        path = raw / "surveys" / "思山岭街道" / (name or f"{NAMES[self.code]}.xlsx")
        households = [{**h, "head_name": PEOPLE[i % len(PEOPLE)]} if h.get("head_name") == "张*" else h
                      for i, h in enumerate(self.households)]
        members = [{**m, "name": PEOPLE[(i + 3) % len(PEOPLE)]} if m.get("name") == "张*" else m
                   for i, m in enumerate(self.members)]
        self.positions = write_survey(
            path, SheetSpec(households, blank_rows_before=self.blank_rows_before[0]),
            SheetSpec(members, blank_rows_before=self.blank_rows_before[1]),
            village_code=self.code, village_name=NAMES[self.code])
        if mtime:
            os.utime(path, (mtime, mtime))

    def expected_places(self) -> set[tuple]:
        out = set()
        for rule, sheet, index, column in self.expected:
            row = self.positions[sheet][index]
            out.add((self.code, rule, sheet, row, column))
        return out


def hh_with(head: str, *others: tuple[str, str], hh: dict | None = None, **member_values) -> tuple[dict, list[dict]]:
    return household(head, **(hh or {})), [member(head, head, **member_values), *(member(head, p, r) for p, r in others)]


@dataclass
class District:
    files: dict[str, VillageFile]
    registry: list[dict]
    registry_expected: set[tuple]  # (village, rule, sheet, row, column) of 漏户 (B9)
    held: dict[str, str]  # name -> head ID of the two households held back by a blocking problem
    fixed_b: VillageFile | None = None

    def expected(self) -> set[tuple]:
        out = set(self.registry_expected) | {(D, "B10", None, None, None)}
        for f in self.files.values():
            out |= f.expected_places()
        return out


def build_district(raw: Path) -> District:
    write_villages(raw, [default_village(code, NAMES[code], "否" if code == F else "是") for code in NAMES])
    registry: list[dict] = []

    def register(number: str, village: str, people: list[tuple[str, str]], status: str = EXITED) -> None:
        for person, relation in people:
            registry.append({"hh_no": number, "village_code": village, "head_name": REGISTRY_NAMES[0],
                             "name": REGISTRY_NAMES[relation != "户主"], "person_id": person, "relation": relation,
                             "poor_attribute": "一般贫困户", "status": status, "identified_year": 2014,
                             "exit_year": 2017})

    # --- A: clean ---------------------------------------------------------------------------
    a = VillageFile(A)
    h1, s1 = pid("19700101"), pid("19720101")
    a.add(household(h1, declared_size=2), member(h1, h1), member(h1, s1, "配偶"))
    h2, k2 = pid("19750101"), pid("20090101")
    a.add(household(h2, hh_type="建档立卡户", exit_status=EXITED, wage_income=12000),
          member(h2, h2), member(h2, k2, "之子", school_status="小学", education="小学"))
    register(hh_no(A, 1), A, [(h2, "户主"), (k2, "之子")])
    h3 = pid("19600101")
    a.add(household(h3, wage_income=3000, phone="0414-1234567"), member(h3, h3))

    # --- B: one household per problem ----------------------------------------------------------
    b = VillageFile(B, blank_rows_before=([3, 9], [4]))  # blank rows: Excel rows are not index + 5
    h, bad = pid(), wrong_check(pid("20000101"))
    b.add(household(h), member(h, h), member(h, bad, "之子"))
    b.expect("B1", M, len(b.members) - 1, "身份证号")
    h, damaged = pid(), pid("20010101")
    b.add(household(h), member(h, h), member(h, float(f"{float(damaged):.15g}"), "之子"))
    b.expect("B2", M, len(b.members) - 1, "身份证号")
    twice = pid("19950101")
    for _ in range(2):
        h = pid()
        b.add(household(h), member(h, h), member(h, twice, "之子"))
        b.expect("B3", M, len(b.members) - 1, "身份证号")
    e_head = pid("19650101")  # head of a household in village C, and a son in B
    h = pid()
    b.add(household(h), member(h, h), member(h, e_head, "之子"))
    b.expect("B3", M, len(b.members) - 1, "身份证号")
    b.expect("B4", H, b.add(household(pid())), "户主身份证号")  # no members
    orphan_head = pid()
    b.members.append({**member(orphan_head, pid()), "seq": len(b.members) + 1})
    b.expect("B4", M, len(b.members) - 1, "户主身份证号")
    h = pid()
    b.add(household(h), member(h, h), member(h, pid(), "户主"))  # a second 户主: that row is the one to fix
    b.expect("B5", M, len(b.members) - 1, "与户主关系")
    h = pid()
    b.add(household(h), member(h, h), member(h, pid(), "之女", name=""))
    b.expect("B6", M, len(b.members) - 1, "姓名")
    h = pid()
    b.expect("B6", H, b.add(household(h, housing_grade=""), member(h, h)), "住房安全等级")
    h = pid()
    b.expect("B7", H, b.add(household(h, main_cause="因穷"), member(h, h)), "主要致贫原因")
    h = pid()
    b.expect("B8", H, b.add(household(h, property_income="一千元"), member(h, h)), "财产性收入")
    h = pid()
    b.expect("B8", H, b.add(household(h, business_expense="-100"), member(h, h)), "生产经营性支出")
    # B9 漏户: a registered household of B that is in no survey (no place in B's file); 漏人: a
    # registered son missing from his surveyed household (its row in 家庭基本情况)
    missing_hh = [pid("19580101"), pid("19600202")]
    register(hh_no(B, 1), B, [(missing_hh[0], "户主"), (missing_hh[1], "配偶")])
    registry_expected = {(B, "B9", None, None, None)}
    h, son = pid("19620101"), pid("19900101")
    b.expect("B9", H, b.add(household(h, hh_type="建档立卡户", exit_status=EXITED), member(h, h)), None)
    register(hh_no(B, 2), B, [(h, "户主"), (son, "之子")])
    h = pid()
    b.expect("W1", H, b.add(household(h, declared_size=5), member(h, h), member(h, pid(), "配偶")), "家庭人口")
    h, son = pid(), male_id("19980101")
    b.add(household(h), member(h, h), member(h, son, "之子", sex="女"))
    b.expect("W2", M, len(b.members) - 1, "性别")
    h = pid()
    b.add(household(h), member(h, h), member(h, pid("19890101"), "之子", school_status="小学"))
    b.expect("W3", M, len(b.members) - 1, "在校生状况")
    h = pid()
    b.expect("W4", H, b.add(household(h, transfer_total=5000, pension_income=3000), member(h, h)), "转移性收入合计")
    h = pid()
    b.expect("W5", H, b.add(household(h, hh_type="建档立卡户"), member(h, h)), "户类型")
    h = pid()
    b.add(household(h), member(h, h), member(h, pid("19000101"), "之父"))
    b.expect("W7", M, len(b.members) - 1, "身份证号")
    h = pid()
    b.expect("W8", H, b.add(household(h, wage_income=None), member(h, h)), None)
    h = pid()
    b.expect("W9", H, b.add(household(h, phone="12345"), member(h, h)), "联系电话")

    # --- C: five households just above 4500, none just below (W6) ------------------------------
    c = VillageFile(C)
    for _ in range(5):
        h = pid()
        c.expect("W6", H, c.add(household(h, wage_income=4600), member(h, h)), "年人均纯收入")
    h = pid()
    c.add(household(h, wage_income=20000), member(h, h))
    # its head is also a son in B (B3 across villages)
    c.add(household(e_head), member(e_head, e_head))
    c.expect("B3", M, len(c.members) - 1, "身份证号")
    # two households held back by a blocking problem
    g = c
    g1, g1s = pid("19550101"), pid("19850101")  # 已脱贫, 3000 per person: 附件2 (返贫), 4, 5, 6
    g.add(household(g1, hh_type="建档立卡户", exit_status=EXITED, wage_income=6000),
          member(g1, g1), member(g1, g1s, "之子", ethnicity="火星族"))
    g.expect("B7", M, len(g.members) - 1, "民族")
    register(hh_no(C, 1), C, [(g1, "户主"), (g1s, "之子")])
    g2 = pid("19560101")  # 一般农户 applying, 3000 per person: 附件3 (新识别), 5, 6
    g.add(household(g2, wage_income=3000, main_cause="因病", applied="是", review_result="通过"),
          member(g2, g2, education="博士后"))
    g.expect("B7", M, len(g.members) - 1, "文化程度")

    files = {f.code: f for f in (a, b, c)}
    for f in files.values():
        f.write(raw)
    write_registry(raw, registry)
    return District(files, registry, registry_expected, {"g1": g1, "g2": g2})


def fixed_resubmission(district: District, raw: Path) -> VillageFile:
    """B's corrected workbook: the B8 households are fixed by deleting their rows (every later
    row moves up), the W9 phone is corrected. It is delivered under the same name, newer (a new
    name would make a fourth file: see the note on NAMES); the id never depended on the file."""
    old = district.files[B]
    fixed = VillageFile(B)
    b8 = {i for rule, sheet, i, _ in old.expected if rule == "B8"}
    w9 = next(i for rule, sheet, i, _ in old.expected if rule == "W9")
    remap: dict[int, int] = {}
    for i, hh in enumerate(old.households):
        if i in b8:
            continue
        remap[i] = len(fixed.households)
        fixed.households.append({**hh, "seq": len(fixed.households) + 1, **({"phone": "13900000000"} if i == w9 else {})})
    gone = {old.households[i]["head_id"] for i in b8}
    member_remap: dict[int, int] = {}
    for i, m in enumerate(old.members):
        if m["head_id"] not in gone:
            member_remap[i] = len(fixed.members)
            fixed.members.append({**m, "seq": len(fixed.members) + 1})
    fixed.expected = [(r, s, remap[i] if s == H else member_remap[i], c) for r, s, i, c in old.expected
                      if r not in ("B8", "W9")]
    old_path = next((raw / "surveys").rglob(f"{NAMES[B]}.xlsx"))
    old_mtime = old_path.stat().st_mtime
    fixed.write(raw, mtime=time.time() - 1)  # newer, and settled
    assert old_path.stat().st_mtime > old_mtime
    return fixed


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    warehouse: Path
    reports: Path
    result: object

    def query(self, sql: str, *params):
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, list(params)).fetchall()
        finally:
            con.close()

    def problems(self) -> list[dict]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute("SELECT * FROM open_problems").df().to_dict("records")
        finally:
            con.close()

    def checks(self) -> dict[tuple[str, str], object]:
        return {(e.asset_key.to_user_string(), e.check_name): e for e in self.result.get_asset_check_evaluations()}


class HandedOnGreatExpectations(GreatExpectationsResource):
    """The real Great Expectations worker, handed from one run of the module to the next instead
    of being stopped at the end of one and started at the beginning of the next (a start imports
    GE: 8-14 s of CPU). A worker takes job after job, each in a new GE context (test_ge_worker);
    the first run's starts the worker as every run does, the last stop ends it."""

    parked: ClassVar[list[GEWorker]] = []

    def setup_for_execution(self, context) -> None:
        worker = self.parked.pop() if self.parked else None
        if worker is not None and worker.proc.poll() is not None:  # died in the last run: as a new run would
            worker.stop()
            worker = None
        self._worker = worker or GEWorker().start()

    def teardown_after_execution(self, context) -> None:
        if self._worker is not None:
            if self._worker.pending:  # as stop() does: the job under way finishes (its Data Docs complete)
                with contextlib.suppress(Exception):
                    self._worker.collect()
            self.parked.append(self._worker)
            self._worker = None


@pytest.fixture(scope="module", autouse=True)
def _stop_the_handed_on_worker():
    yield
    while HandedOnGreatExpectations.parked:
        HandedOnGreatExpectations.parked.pop().stop()


def run_district(raw: Path, out: Path, real_ge: bool = True) -> Run:
    """A run with Great Expectations (its checks and Data Docs are asserted here) unless a test's
    subject is elsewhere (the accepted and resubmitted districts: problem ids and exceptions)."""
    import conftest

    ge = HandedOnGreatExpectations() if real_ge else None
    warehouse, reports, result = conftest.run_district(raw, out, ge=ge)
    return Run(warehouse, reports, result)


def materialize(raw: Path, warehouse: Path, reports: Path, selection, **kwargs):
    """Only the selected assets (``dg.materialize``), on ``warehouse`` as it is, GE faked, in an
    in-memory Dagster instance: for a test that reads some tables, not a whole run."""
    import dagster as dg
    from fakes import FakeGreatExpectations

    from pipeline.definitions import all_assets
    from pipeline.resources import build_resources

    resources = build_resources(raw_dir=raw, warehouse=warehouse, reports_dir=reports, ge=FakeGreatExpectations())
    return dg.materialize(all_assets, selection=selection, resources=resources,
                          instance=dg.DagsterInstance.ephemeral(), **kwargs)


def _none(value):
    return None if value is None or value is pd.NA or value != value else value


def _place(p: dict) -> tuple:
    row = _none(p["row"])
    return (p["village_code"], p["rule"], _none(p["sheet"]), None if row is None else int(row), _none(p["column"]))


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    raw = tmp_path_factory.mktemp("district") / "raw"
    return raw, build_district(raw)


@pytest.fixture(scope="module")
def first(district, tmp_path_factory):
    raw, _ = district
    return run_district(raw, tmp_path_factory.mktemp("run1"))


def _accept(raw: Path, run: Run, district: District) -> list[str]:
    ids = [r[0] for r in run.query(
        "SELECT p.problem_id FROM open_problems p JOIN households h ON h.hh_key = p.hh_key "
        "WHERE p.blocking AND h.head_id IN (?, ?)", district.held["g1"], district.held["g2"])]
    with (raw / "exceptions.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["问题编号", "核实结论", "核实人", "核实日期"])
        for pid_ in ids:
            writer.writerow([pid_, "入户核实，民族、文化程度按户口簿为准", "李*", "2019-05-12"])
    return ids


@pytest.fixture(scope="module")
def accepted(district, first, tmp_path_factory):
    """The same district with exceptions.csv accepting the held-back households' problems."""
    raw, d = district
    raw2 = tmp_path_factory.mktemp("district2") / "raw"
    shutil.copytree(raw, raw2)
    ids = _accept(raw2, first, d)
    return run_district(raw2, tmp_path_factory.mktemp("run2"), real_ge=False), ids, raw2


@pytest.fixture(scope="module")
def resubmitted(district, accepted, tmp_path_factory):
    """The accepted district with village B's workbook resubmitted (two problems fixed, rows
    deleted), built up to data_problems: what its one test reads (problem ids and places)."""
    import dagster as dg

    _, d = district
    _, ids, raw2 = accepted
    raw3 = tmp_path_factory.mktemp("district3") / "raw"
    shutil.copytree(raw2, raw3)
    d.fixed_b = fixed_resubmission(d, raw3)
    out = tmp_path_factory.mktemp("run3")
    warehouse, reports = out / "warehouse.duckdb", out / "reports"
    return Run(warehouse, reports, materialize(raw3, warehouse, reports,
                                               dg.AssetSelection.assets("data_problems").upstream()))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A district of the clean village alone (with its registry)."""
    raw = tmp_path_factory.mktemp("clean") / "raw"
    d = build_district(tmp_path_factory.mktemp("scratch") / "raw")
    write_villages(raw, [default_village(A, NAMES[A])])
    d.files[A].write(raw)
    write_registry(raw, [r for r in d.registry if r["village_code"] == A])
    return run_district(raw, tmp_path_factory.mktemp("run_clean"))


# --------------------------------------------------------------------------------------------
# Every problem where it is, and nowhere else
# --------------------------------------------------------------------------------------------

ALL_RULES = [f"B{i}" for i in range(1, 11)] + [f"W{i}" for i in range(1, 10)]


def test_every_rule_is_raised_exactly_where_the_input_has_it(district, first):
    _, d = district
    got = {_place(p) for p in first.problems()}
    expected = d.expected()
    assert got - expected == set(), "raised where no problem was put"
    assert expected - got == set(), "not raised where a problem was put"
    assert {p[1] for p in got} == set(ALL_RULES)


@pytest.mark.parametrize("rule", ALL_RULES)
def test_each_rule_has_an_input_that_raises_it(district, first, rule):
    _, d = district
    expected = {e for e in d.expected() if e[1] == rule}
    got = {_place(p) for p in first.problems() if p["rule"] == rule}
    assert expected and got == expected


def test_clean_village_raises_nothing(first, clean):
    assert not [p for p in first.problems() if p["village_code"] == A]
    assert clean.problems() == []


def test_row_numbers_are_the_rows_excel_shows(district, first):
    """The 原文件行号 of a problem is the row Excel shows: the builder's positions, where the
    village's file has that household's or person's 序号."""
    _, d = district
    b = d.files[B]
    wb = openpyxl.load_workbook(_survey_path(district, B), read_only=True)
    reported = {(p["rule"], p["sheet"], _none(p["column"]), int(p["row"])) for p in first.problems()
                if p["village_code"] == B and p["sheet"] in (H, M)}
    assert reported
    for rule, sheet, index, column in b.expected:
        row = b.positions[sheet][index]
        assert (rule, sheet, column, row) in reported
        assert wb[sheet].cell(row=row, column=1).value == index + 1, (rule, sheet, index)
    assert b.positions[H][3] == 5 + 3 + 1  # one blank row before household 3


def _survey_path(district, code) -> Path:
    raw, _ = district
    return next((raw / "surveys").rglob(f"{NAMES[code]}.xlsx"))


def test_problem_values_and_messages_are_masked(district, first):
    _, d = district
    ids = {r["person_id"] for r in d.registry} | {
        m["person_id"] for f in d.files.values() for m in f.members if isinstance(m["person_id"], str)}
    for p in first.problems():
        for text in (p["value"] or "", p["message"] or ""):
            assert not re.search(r"\d{17}[\dXx]", text), p
            assert not any(i in text for i in ids) and not any(n in text for n in (*PEOPLE, *REGISTRY_NAMES)), p
        if p["column"] in ("身份证号", "户主身份证号") and p["value"]:
            assert "*" in p["value"]
    b9 = sorted(p["message"] for p in first.problems() if p["rule"] == "B9")
    assert b9[0].startswith("建档立卡成员孙**（210505********") and "漏人" in b9[0]
    assert b9[1].startswith(f"建档立卡户（户编号{hh_no(B, 1)}，户主孙**）") and "漏户" in b9[1]


def test_w6_counts_both_sides_of_the_line(first):
    messages = [p["message"] for p in first.problems() if p["rule"] == "W6"]
    assert messages and all("4500–4750元" in m and "有5户" in m and "只有0户" in m for m in messages)


# --------------------------------------------------------------------------------------------
# Stable ids
# --------------------------------------------------------------------------------------------


def test_problem_ids_are_unique_and_stable_across_runs(first, accepted):
    run2, _, _ = accepted
    ids1 = {p["problem_id"]: _place(p) for p in first.problems()}
    ids2 = {p["problem_id"]: _place(p) for p in run2.problems()}
    assert len(ids1) == len(first.problems())
    assert ids1 == ids2


def test_problem_ids_survive_a_resubmission_that_fixes_other_rows(district, first, resubmitted):
    _, d = district
    before = {p["problem_id"]: p for p in first.problems() if p["village_code"] == B}
    after = {p["problem_id"]: p for p in resubmitted.problems() if p["village_code"] == B}
    fixed = {pid_ for pid_, p in before.items() if p["rule"] in ("B8", "W9")}
    assert fixed and set(after) == set(before) - fixed
    moved = [pid_ for pid_ in after if after[pid_]["sheet"] == H and after[pid_]["row"] != before[pid_]["row"]]
    assert moved, "the deleted rows should have moved later household rows up"
    got = {_place(p) for p in resubmitted.problems() if p["village_code"] == B}
    assert got == d.fixed_b.expected_places() | {e for e in d.registry_expected if e[0] == B}
    assert resubmitted.query("SELECT DISTINCT households FROM survey_files WHERE village_code = ?", B) == [
        (len(d.fixed_b.households),)]


# --------------------------------------------------------------------------------------------
# Write–audit–publish and exceptions.csv
# --------------------------------------------------------------------------------------------


def _published(run: Run, district: District) -> dict[int, set[str]]:
    out = {}
    for n, filename in ANNEX.items():
        rows = read_detail(run.reports / "draft" / filename)
        column = "身份证号" if n in (2, 3) else "户主身份证号"
        out[n] = {r[column] for r in rows} & set(district.held.values())
    return out


def test_blocking_problem_holds_the_household_back_from_every_annex(district, first):
    _, d = district
    assert _published(first, d) == {n: set() for n in ANNEX}
    held = first.query("SELECT h.head_id FROM classification c JOIN households h USING (hh_uid) WHERE c.blocked")
    assert set(d.held.values()) <= {h for (h,) in held}


def test_accepting_the_problem_releases_the_household(district, accepted):
    _, d = district
    run2, ids, _ = accepted
    assert len(ids) == 2
    g1, g2 = d.held["g1"], d.held["g2"]
    assert _published(run2, d) == {2: {g1}, 3: {g2}, 4: {g1}, 5: {g1, g2}, 6: {g1, g2}}
    states = dict(run2.query("SELECT problem_id, state FROM open_problems WHERE problem_id IN (?, ?)", *ids))
    assert states == {i: "已接受" for i in ids}
    assert run2.query("SELECT count(*) FROM open_problems WHERE blocking AND problem_id IN (?, ?)", *ids) == [(0,)]


def test_accepted_problem_shows_as_accepted_in_list_summary_and_metadata(accepted):
    run2, ids, _ = accepted
    rows = _list_rows(run2.reports, C)
    assert {r["问题编号"]: r["状态"] for r in rows if r["问题编号"] in ids} == {i: "已接受" for i in ids}
    summary = _sheet_rows(run2.reports / "problems" / "问题汇总.xlsx", "按村")
    row = next(r for r in summary if r["村代码"] == C)
    assert row["已接受"] == 2 and row["必须修改（待修改）"] == 1  # the person shared with B (B3) stays open
    check = run2.checks()[("data_problems", "no_open_blocking_problems")]
    assert check.metadata["已接受（accepted）"].value == 2


# --------------------------------------------------------------------------------------------
# 问题清单
# --------------------------------------------------------------------------------------------

LIST_HEADER = ["问题编号", "规则", "严重程度", "文件", "表", "原文件行号", "户主姓名", "列", "原值", "问题", "修改建议",
               "状态"]


def _sheet_rows(path: Path, sheet: str) -> list[dict]:
    ws = openpyxl.load_workbook(path, read_only=True)[sheet]
    rows = list(ws.iter_rows(values_only=True))
    header = list(rows[2])
    out = []
    for row in rows[3:]:
        if all(v is None for v in row):
            break
        out.append(dict(zip(header, row)))
    return out


def _list_path(reports: Path, code: str) -> Path:
    return reports / "problems" / "思山岭街道" / f"{code}_{NAMES[code]}_问题清单.xlsx"


def _list_rows(reports: Path, code: str) -> list[dict]:
    return _sheet_rows(_list_path(reports, code), "问题清单")


def test_every_farming_village_gets_a_problem_list(first):
    for code in NAMES:
        assert _list_path(first.reports, code).exists() == (code != F), code
    ws = openpyxl.load_workbook(_list_path(first.reports, B), read_only=True)["问题清单"]
    assert [c for c in list(ws.iter_rows(min_row=3, max_row=3, values_only=True))[0] if c] == LIST_HEADER


def test_problem_list_of_a_village_with_no_problem_says_so(first):
    rows = _list_rows(first.reports, A)
    assert len(rows) == 1 and rows[0]["问题"] == "本村未发现数据问题" and rows[0]["问题编号"] is None


def test_problem_list_rows_match_the_warehouse(first):
    problems = {p["problem_id"]: p for p in first.problems() if p["village_code"] == B}
    rows = _list_rows(first.reports, B)
    assert {r["问题编号"] for r in rows} == set(problems)
    for r in rows:
        p = problems[r["问题编号"]]
        assert (r["规则"], r["表"], r["列"], r["状态"]) == (p["rule"], _none(p["sheet"]), _none(p["column"]), "待修改")
        assert r["原文件行号"] == (None if _none(p["row"]) is None else int(p["row"]))
        assert r["严重程度"] == ("必须修改" if p["rule"].startswith("B") else "请核实")
    severities = [r["严重程度"] for r in rows]
    assert severities == sorted(severities, key=lambda s: s != "必须修改"), "必须修改 first"


def test_problem_lists_carry_no_full_id_but_the_village_own(first):
    """The district summary carries no ID; a village's own list shows 原值 as the village typed
    it (it goes back to the people who typed it) — and no ID of another village."""
    for path in (first.reports / "problems").rglob("*.xlsx"):
        if path.name.endswith("_问题清单.xlsx"):
            code = path.name.split("_")[0]
            rows = _sheet_rows(path, "问题清单")
            others = {p["problem_id"] for p in first.problems() if p["village_code"] != code}
            assert not {r["问题编号"] for r in rows} & others
            continue
        wb = openpyxl.load_workbook(path, read_only=True)
        for ws in wb.worksheets:
            for row in ws.iter_rows(values_only=True):
                for v in row:
                    assert not (isinstance(v, str) and re.search(r"\d{17}[\dXx]", v)), (path.name, v)


def test_district_summary_counts_problems_by_village_and_rule(first):
    rows = _sheet_rows(first.reports / "problems" / "问题汇总.xlsx", "按村")
    by_code = {r["村代码"]: r for r in rows}
    problems = first.problems()
    for code in (A, B, C, D):
        mine = [p for p in problems if p["village_code"] == code]
        assert by_code[code]["合计"] == len(mine)
        for rule in ALL_RULES:
            assert by_code[code][rule] == sum(1 for p in mine if p["rule"] == rule), (code, rule)
    assert by_code[D]["已报送"] == "否" and by_code[A]["已报送"] == "是"
    by_rule = {r["规则"]: r for r in _sheet_rows(first.reports / "problems" / "问题汇总.xlsx", "按规则")}
    assert by_rule["B3"]["待修改"] == sum(1 for p in problems if p["rule"] == "B3")


# --------------------------------------------------------------------------------------------
# Asset checks
# --------------------------------------------------------------------------------------------


def test_expectations_are_asset_checks_on_the_assets_they_guard(first):
    from pipeline.checks.expectations import SUITES

    checks = first.checks()
    for suite in SUITES.values():
        for e in suite.expectations:
            assert (suite.asset, e.check) in checks, e.check
    assert ("households", "hh_uid_unique") in checks and ("members", "member_uid_unique") in checks
    for n in range(2, 7):
        assert (f"annex{n}", "no_held_back_household") in checks


def test_great_expectations_validates_beside_the_reports(first):
    """The de-identified batches go to the GE worker as soon as the tables exist; the check that
    collects the outcomes runs last, so the 附件 are written while GE works."""
    order = [e.step_key for e in first.result.all_events if e.event_type_value == "STEP_START"]
    assert order[-1] == "great_expectations", order
    assert order.index("validation_batches") < order.index("classification") < order.index("annex2")
    batches = first.result.asset_materializations_for_node("validation_batches")[-1].metadata
    assert set(batches["rows by table"].value) >= {"households", "members"}


def test_failing_expectation_carries_count_and_masked_sample(first):
    import dagster as dg

    ev = first.checks()[("members", "person_id_valid")]
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN
    assert ev.metadata["不通过的行数（failing count）"].value == 2  # the B1 and B2 members
    sample = ev.metadata["示例（已遮盖，masked sample）"].value
    assert B in sample and "（无效或未填）" in sample
    assert not re.search(r"\d{17}[\dXx]", sample)
    ev = first.checks()[("members", "sex_matches_id")]
    assert ev.metadata["不通过的行数（failing count）"].value == 1
    assert re.search(r"\| [\u4e00-\u9fff]\*+ \| \d{6}\*{8}\d{3}[\dX] \|", ev.metadata["示例（已遮盖，masked sample）"].value)


def test_blocking_checks_pass_and_data_checks_warn(first):
    import dagster as dg

    checks = first.checks()
    for key, ev in checks.items():
        if ev.severity == dg.AssetCheckSeverity.ERROR:
            assert ev.passed, key
    failing = {k for k, ev in checks.items() if not ev.passed}
    assert {("members", "sex_matches_id"), ("households", "declared_size_matches_members"),
            ("households", "one_head"), ("data_problems", "no_open_blocking_problems")} <= failing



def test_structural_checks_are_evaluated_in_their_assets_step(first):
    """The blocking checks are declared on their assets and evaluated in the step that builds them
    (no step of their own: each would cost Dagster's bookkeeping and a warehouse connection)."""
    steps = {(e.event_specific_data.asset_key.to_user_string(), e.event_specific_data.check_name): e.step_key
             for e in first.result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert steps[("households", "hh_uid_unique")] == "households"
    assert steps[("members", "member_uid_unique")] == "members"
    assert steps[("classification", "held_back_households_not_classified")] == "classification"
    for n in range(2, 7):
        assert steps[(f"annex{n}", "no_held_back_household")] == f"annex{n}"


def _from_classification_on(first, district, out: Path):
    """classification and everything after it but the sign-off, on a copy of the first run's warehouse."""
    import dagster as dg

    from pipeline.jobs import SIGNOFF_ASSET

    raw, _ = district
    warehouse = shutil.copy(first.warehouse, out / "warehouse.duckdb")
    selection = dg.AssetSelection.assets("classification").downstream() - dg.AssetSelection.assets(SIGNOFF_ASSET)
    result = materialize(raw, Path(warehouse), out / "reports", selection, raise_on_error=False)
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    return result, started, checks


def test_a_held_back_household_in_the_classification_stops_the_annexes(first, district, tmp_path, monkeypatch):
    """Blocking: when classification gives a held-back household a 附件 flag, its check fails and
    no 附件 and no sign-off readiness is built in that run."""
    import dagster as dg

    from pipeline import runner
    from pipeline.assets import classify

    monkeypatch.setattr(classify, "CLASSIFICATION_SQL",
                        classify.CLASSIFICATION_SQL + "\nUPDATE classification SET in_annex6 = true WHERE blocked;")
    result, started, checks = _from_classification_on(first, district, tmp_path)
    check = checks[("classification", "held_back_households_not_classified")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["failing count"].value == len(first.query("SELECT 1 FROM classification WHERE blocked"))
    assert not result.success
    ((step, cause),) = runner.step_failures(result)  # what `huitoukan run` prints
    assert step == "classification"
    assert cause.endswith("blocking asset check failed with ERROR severity: classification: "
                          "held_back_households_not_classified"), cause
    assert "classification" in started
    assert not started & {"annex2", "annex3", "annex4", "annex5", "annex6", "signoff_readiness"}, started
    assert not (tmp_path / "reports" / "draft").exists() or not list((tmp_path / "reports" / "draft").glob("附件6*"))


def test_a_held_back_household_in_a_written_annex_stops_the_sign_off(first, district, tmp_path, monkeypatch):
    """Write–audit–publish: a 附件 file that lists a held-back household (a writer's fault, the
    classification being right) fails its blocking audit, read back from the file, and the
    sign-off readiness is not built."""
    import dagster as dg

    from pipeline.assets import reports
    from pipeline.rules.annex import annex_sql

    def leaky_frame(con, annex):
        return con.execute(annex_sql(annex).replace(f"WHERE {annex.where}", f"WHERE ({annex.where}) OR c.blocked")).df()

    monkeypatch.setattr(reports, "annex_frame", leaky_frame)
    result, started, checks = _from_classification_on(first, district, tmp_path)
    assert checks[("classification", "held_back_households_not_classified")].passed
    held = len(first.query("SELECT 1 FROM classification WHERE blocked"))
    for n in range(4, 7):  # the household tables: one row per held-back household
        audit = checks[(f"annex{n}", "no_held_back_household")]
        assert not audit.passed and audit.severity == dg.AssetCheckSeverity.ERROR
        assert audit.metadata["failing count"].value == held
        assert (tmp_path / "reports" / "draft" / ANNEX[n]).exists()
    assert not result.success
    assert "signoff_readiness" not in started

def test_clean_district_passes_every_check(clean):
    failing = {k: ev.metadata.get("failing count") for k, ev in clean.checks().items() if not ev.passed}
    assert failing == {}


def test_check_metadata_never_holds_a_full_id_or_name(first):
    for ev in first.checks().values():
        for value in ev.metadata.values():
            text = str(getattr(value, "value", value))
            assert not re.search(r"\d{17}[\dXx]", text)
            assert not any(name in text for name in PEOPLE)


# --------------------------------------------------------------------------------------------
# Data Docs
# --------------------------------------------------------------------------------------------

_REMOTE_ASSET = re.compile(
    r"<(?:link|script|img|iframe|source)\b[^>]*\b(?:href|src)\s*=\s*[\"']?(?:https?:)?//|url\(\s*[\"']?(?:https?:)?//",
    re.I)


def test_data_docs_index_lists_one_validation_per_checked_table(first):
    from pipeline.checks.expectations import SUITES

    index = first.reports / "quality" / "index.html"
    text = index.read_text(encoding="utf-8")
    assert "ge-static-table" in text
    for name in SUITES:
        assert f"validations/{name}/" in text, name
    pages = list((first.reports / "quality" / "validations").rglob("*.html"))
    assert len(pages) == len(SUITES)


def test_data_docs_load_nothing_from_the_network(first):
    files = [p for p in (first.reports / "quality").rglob("*") if p.is_file()]
    assert files
    for path in files:
        if path.suffix in (".html", ".css", ".js", ".json"):
            text = path.read_text(encoding="utf-8")
            assert not _REMOTE_ASSET.search(text), path
            assert "<script" not in text or path.suffix != ".html", path
    css = first.reports / "quality" / "static" / "offline" / "offline.css"
    assert css.exists()
    assert 'href="static/offline/offline.css"' in (first.reports / "quality" / "index.html").read_text("utf-8")


def test_data_docs_hold_no_id_and_no_name(district, first):
    _, d = district
    ids = {m["person_id"] for f in d.files.values() for m in f.members if isinstance(m["person_id"], str)}
    for path in (first.reports / "quality").rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        text = data.decode("utf-8", errors="ignore")
        assert not re.search(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])", text), path
        assert not any(i in text for i in ids), path
        assert not any(name in text for name in PEOPLE), path


def test_data_docs_show_failures_with_surrogate_keys(first):
    page = next((first.reports / "quality" / "validations" / "members").rglob("*.html")).read_text("utf-8")
    assert "member_uid" in page and f"{B}|surveys/" in page
