"""Data-quality rules without the pipeline: W6 at its boundaries, problem ids, the offline Data Docs
rewrite, and the GE frames (no name, no ID)."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from pipeline.checks.datadocs import offline_html
from pipeline.rules.problems import assign_problem_ids, problem_id
from pipeline.rules.quality import relational_sql
from pipeline.settings import Settings

# --------------------------------------------------------------------------------------------
# W6 算账式脱贫
# --------------------------------------------------------------------------------------------


def _w6(villages: dict[str, list[tuple[str, int]]]) -> dict[str, list[str]]:
    """{village: [(net income, size), …]} -> {village: [anchor@line of each flagged household]}."""
    con = duckdb.connect()
    con.execute("""CREATE TABLE households (hh_uid VARCHAR, hh_key VARCHAR, village_code VARCHAR, file VARCHAR,
                   "row" INTEGER, head_id VARCHAR, head_name VARCHAR)""")
    con.execute("""CREATE TABLE household_income (hh_uid VARCHAR, size INTEGER, net_income DECIMAL(18, 2),
                   per_capita DECIMAL(18, 2))""")
    for village, households in villages.items():
        for i, (net, size) in enumerate(households):
            uid = f"{village}|f|{i}"
            con.execute("INSERT INTO households VALUES (?, ?, ?, 'f', ?, ?, 'x')",
                        [uid, f"{village}|h{i}", village, i + 5, f"h{i}"])
            con.execute("INSERT INTO household_income VALUES (?, ?, ?, round(CAST(? AS DECIMAL(18, 2)) / ?, 2))",
                        [uid, size, net, net, size])
    rows = con.execute(relational_sql("W6", Settings())).fetchall()
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row[8].split("@")[1])
    return out


def test_w6_flags_every_household_just_above_when_they_outnumber_those_below_more_than_two_to_one():
    flagged = _w6({
        "V1": [("4500.00", 1)] * 5 + [("4499.99", 1)] * 2,  # 5 > 2×2: flagged; 4500.00 is above
        "V2": [("4600", 1)] * 6 + [("4300", 1)] * 3,  # 6 is not more than 2×3
        "V3": [("4600", 1)] * 4,  # fewer than 5 above
        "V4": [("9500", 2)] * 5,  # 4750 per person: not in [4500, 4750); below 5000 instead
        "V5": [("10000", 2)] * 3 + [("10499.98", 2)] * 2,  # 5000.00–5249.99 per person, none below
        "V6": [("8999.99", 2)] * 5,  # 4499.995: just below 4500, never above
    })
    assert {v: sorted(lines) for v, lines in flagged.items()} == {"V1": ["4500"] * 5, "V5": ["5000"] * 5}


def test_w6_band_and_ratio_are_settings():
    con_settings = Settings(bunching_min_above=3, bunching_ratio=1)
    con = duckdb.connect()
    con.execute("CREATE TABLE households AS SELECT 'u' || i AS hh_uid, 'V|h' || i AS hh_key, 'V' AS village_code, "
                "'f' AS file, i AS row, 'h' || i AS head_id, 'x' AS head_name FROM range(4) t(i)")
    con.execute("CREATE TABLE household_income AS SELECT 'u' || i AS hh_uid, 1 AS size, "
                "CAST(CASE WHEN i < 3 THEN 4600 ELSE 4400 END AS DECIMAL(18, 2)) AS net_income, "
                "CAST(0 AS DECIMAL(18, 2)) AS per_capita FROM range(4) t(i)")
    assert len(con.execute(relational_sql("W6", con_settings)).fetchall()) == 3  # 3 above > 1 × 1 below
    assert con.execute(relational_sql("W6", Settings())).fetchall() == []


# --------------------------------------------------------------------------------------------
# Problem ids
# --------------------------------------------------------------------------------------------


def _frame(rows):
    return pd.DataFrame(rows, columns=["rule", "village_code", "sheet", "column", "anchor", "row"])


def test_problem_id_depends_on_the_problem_and_its_place_not_on_the_row():
    a = assign_problem_ids(_frame([("B7", "210505004201", "家庭成员情况", "民族", "ID1", 7)]))
    b = assign_problem_ids(_frame([("B7", "210505004201", "家庭成员情况", "民族", "ID1", 12)]))
    assert a["problem_id"][0] == b["problem_id"][0] == problem_id("B7", "210505004201", "家庭成员情况", "民族", "ID1")
    assert a["problem_id"][0].startswith("B7-004201-")
    c = assign_problem_ids(_frame([("B7", "210505004201", "家庭成员情况", "文化程度", "ID1", 7)]))
    assert c["problem_id"][0] != a["problem_id"][0]


def test_a_repeated_anchor_gets_numbered_occurrences_in_row_order():
    rows = [("B3", "V", "家庭成员情况", "身份证号", "ID1", 20), ("B3", "V", "家庭成员情况", "身份证号", "ID1", 9),
            ("B3", "V", "家庭成员情况", "身份证号", "ID2", 30)]
    out = assign_problem_ids(_frame(rows))
    assert out["problem_id"].is_unique
    assert list(out["anchor"]) == ["ID1#2", "ID1", "ID2"]
    again = assign_problem_ids(_frame(rows[::-1]))
    assert set(again["problem_id"]) == set(out["problem_id"])


# --------------------------------------------------------------------------------------------
# Offline Data Docs
# --------------------------------------------------------------------------------------------

GE_PAGE = """<!DOCTYPE html><html><head><title>Data Docs created by Great Expectations</title>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<style>@media (prefers-color-scheme: dark) { .navbar-brand a { background: url('https://x.example/d.png'); } }
.a { color: red; }</style>
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="//cdn.jsdelivr.net/npm/vega@5"></script>
</head><body><nav><a href="#"><img class="NO-CACHE" src="https://assets.example.com/logo-long.png?d=1" /></a></nav>
<table id="t1" class="table-sm" data-toggle="table"></table>
<script>
  $('#t1').bootstrapTable(Object.assign({
      columns: [{'field': 'run_time', 'title': 'Run Time'}, {'field': 'name', 'title': 'Suite'}],
      data: [{'run_time': '2019-05-01', 'name': 'members [x]', '_table_row_link_path': 'validations/m.html',
              '_run_time_sort': 1}],
      toolbar: '#tb'}, {'search': 'true'}));
</script>
<p>see <a href="https://greatexpectations.io">GE</a> and 210505198001011234 here</p>
<footer><p>newsletter <a href="https://greatexpectations.io/newsletter">Subscribe</a></p></footer>
</body></html>"""


def test_offline_page_needs_nothing_from_the_network_and_keeps_its_content():
    out = offline_html(GE_PAGE, depth=2, banner="<div>banner</div>")
    assert "http" not in out and "//cdn" not in out
    assert "<script" not in out
    assert '<link rel="stylesheet" href="../../static/offline/offline.css">' in out
    assert 'src="../../static/images/logo-long.png"' in out
    assert '<table class="ge-static-table"><thead><tr><th>Run Time</th><th>Suite</th></tr></thead>' in out
    assert '<a href="validations/m.html">2019-05-01</a>' in out and "members [x]" in out
    assert ".a { color: red; }" in out and "prefers-color-scheme" not in out
    assert "210505198001011234" not in out and "210505********1234" in out
    assert "<body><div>banner</div>" in out and "newsletter" not in out


# --------------------------------------------------------------------------------------------
# The GE frames
# --------------------------------------------------------------------------------------------


def test_validation_frames_hold_no_id_and_no_name():
    from builders import make_id

    from pipeline.checks.expectations import MEMBERS, check_character_ok, validation_frame

    good = make_id("19800101", 123)
    con = duckdb.connect()
    con.execute("CREATE TABLE households (hh_key VARCHAR)")
    con.execute("INSERT INTO households VALUES ('210505004201|' || ?)", [good])
    con.execute("""CREATE TABLE members AS SELECT * FROM (VALUES
        ('V|f|5', '210505004201', 'f', 5, ?, 'ok', '王建国', '户主', '男', '男', '210505004201|' || ?),
        ('V|f|6', '210505004201', 'f', 6, NULL, 'invalid', '李秀英', '配偶', '女', NULL, '210505004201|' || ?))
        t(member_uid, village_code, file, "row", person_id, person_id_status, name, relation, sex, id_sex, hh_key)""",
                [good, good, good])
    for col in ("ethnicity", "education", "school_status", "labor_skill", "work_status", "dibao", "tekun",
                "disabled_cert", "disability_type", "disability_grade", "medical_insured"):
        con.execute(f"ALTER TABLE members ADD COLUMN {col} VARCHAR")
    con.execute("ALTER TABLE members ADD COLUMN work_months INTEGER")
    con.execute("ALTER TABLE members ADD COLUMN age INTEGER")
    frame = validation_frame(con, MEMBERS)
    text = frame.to_csv()
    assert good not in text and "王建国" not in text and "person_id" not in frame.columns
    assert bool(frame["person_id_check_ok"].iloc[0]) and pd.isna(frame["person_id_check_ok"].iloc[1])
    assert frame["person_id_form"].iloc[0] == "9" * 17 + ("X" if good.endswith("X") else "9")
    assert frame["person_id_token"].iloc[0] and len(frame["person_id_token"].iloc[0]) == 16
    assert list(frame["linked"]) == [True, True]
    assert check_character_ok(good) and not check_character_ok(good[:17] + ("0" if good[17] != "0" else "1"))


@pytest.mark.parametrize("value, expected", [(None, None), ("123", False)])
def test_check_character_of_missing_or_short(value, expected):
    from pipeline.checks.expectations import check_character_ok

    assert check_character_ok(value) is expected


@pytest.mark.parametrize("typed,expected", [
    ("因病、因学", ("因病、因学", "")),
    ("因病,,因病", ("因病", "")),
    (",", (None, "不在代码表内")),  # only separators: something typed that is no code (B7), found by test_fuzz
    ("、 、", (None, "不在代码表内")),
    ("   ", (None, "")),  # blank stays blank
])
def test_a_multi_valued_cell_is_codes_or_a_problem(typed, expected):
    from pipeline.rules.values import normalize_multi
    from pipeline.schema import POVERTY_CAUSES

    assert normalize_multi(typed, POVERTY_CAUSES) == expected
