"""End to end: `huitoukan sample` with a fixed seed, `huitoukan run`, and the exact households of
the 附件 tables compared with what the generator knows it put there."""

import json

import pytest

from conftest import read_detail, run_district
from pg_support import instance_env
from pipeline import cli
from pipeline.rules.annex import ANNEXES

pytestmark = pytest.mark.integration
SEED, HOUSEHOLDS = 11, 900


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    root = tmp_path_factory.mktemp("district")
    raw = root / "raw"
    assert cli.main(["sample", "--out", str(raw), "--households", str(HOUSEHOLDS), "--seed", str(SEED)]) == 0
    key = json.loads((raw / ".answer_key.json").read_text(encoding="utf-8"))
    with instance_env(root):  # the PostgreSQL instance when HUITOUKAN_TEST_PG_URL is set (.ci/run)
        warehouse, reports, _ = run_district(raw, root)
    return key, warehouse, reports


def _rows(reports, annex_key):
    return read_detail(reports / "draft" / ANNEXES[annex_key].filename)


@pytest.mark.parametrize("annex_key,flag", [("annex4", "in_annex4"), ("annex5", "in_annex5"), ("annex6", "in_annex6")])
def test_household_tables_hold_exactly_the_expected_households(district, annex_key, flag):
    key, _, reports = district
    expected = {h["head_id"] for h in key["households"] if h[flag]}
    got = [r["户主身份证号"] for r in _rows(reports, annex_key)]
    assert len(got) == len(set(got)), "a household listed twice"
    assert set(got) == expected
    assert expected, "the sample must put households into every table"


def test_household_tables_show_the_expected_income(district):
    key, _, reports = district
    truth = {h["head_id"]: h for h in key["households"]}
    for row in _rows(reports, "annex6"):
        h = truth[row["户主身份证号"]]
        assert row["家庭人口"] == h["size"]
        assert f"{row['年人均纯收入']:.2f}" == h["per_capita"]
        assert f"{row['家庭年纯收入']:.2f}" == h["net_income"]


@pytest.mark.parametrize("annex_key,field", [("annex2", "annex2"), ("annex3", "annex3")])
def test_person_tables_hold_the_expected_households_and_categories(district, annex_key, field):
    key, _, reports = district
    expected = {h["head_id"]: h[field] for h in key["households"] if h[field]}
    got = {r["身份证号"]: r["类别"] for r in _rows(reports, annex_key) if r["与户主关系"] == "户主"}
    assert got == expected


def test_blocked_households_are_in_no_table(district):
    key, _, reports = district
    blocked = {h["head_id"] for h in key["households"] if h["blocking"]}
    assert blocked, "the sample plants blocking problems"
    for annex_key in ("annex4", "annex5", "annex6"):
        assert not blocked & {r["户主身份证号"] for r in _rows(reports, annex_key)}


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
