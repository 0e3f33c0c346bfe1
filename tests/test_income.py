"""Income exactly per rules.md, at the lines, through the real files and the whole pipeline."""

from decimal import Decimal

import duckdb
import pytest
from builders import SheetSpec, default_village, household, make_id, member, write_survey, write_villages
from conftest import read_detail, run_cli_pipeline

# name -> (household values, number of members, expected 家庭年纯收入, expected 年人均纯收入 shown:
# cut down to the cent, rules.md)
CASES = {
    "pc_4499.99": ({"wage_income": "8,999.98元"}, 2, "8999.98", "4499.99"),
    "pc_4500.00": ({"wage_income": "９０００"}, 2, "9000.00", "4500.00"),
    "pc_4999.99": ({"wage_income": " 9999.98 "}, 2, "9999.98", "4999.99"),
    "pc_5000.00": ({"wage_income": 10000}, 2, "10000.00", "5000.00"),
    "third_below_4500": ({"wage_income": 13499.99}, 3, "13499.99", "4499.99"),  # 4499.9966… shown 4499.99
    "third_above_5000": ({"wage_income": 15000.01}, 3, "15000.01", "5000.00"),  # 5000.0033…
    "transfer_total_only": ({"transfer_total": "6000"}, 2, "6000.00", "3000.00"),
    "transfer_sub_items": ({"transfer_total": 9999, "pension_income": 1000, "dibao_income": "2,000"}, 2,
                           "3000.00", "1500.00"),
    "negative": ({"business_income": 1000, "business_expense": 5000}, 2, "-4000.00", "-2000.00"),
    "negative_floor": ({"business_expense": 24.69}, 2, "-24.69", "-12.35"),  # −12.345 cut down
    "one_off_not_counted": ({"wage_income": 10000, "one_off_subsidy": 50000}, 2, "10000.00", "5000.00"),
    "declared_size_ignored": ({"wage_income": 9000, "declared_size": 5}, 2, "9000.00", "4500.00"),
    "empty_means_zero": ({"wage_income": "", "property_income": None, "business_income": 4000}, 1,
                         "4000.00", "4000.00"),
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("income")
    raw = root / "raw"
    write_villages(raw, [default_village()])
    hh, mm, heads = [], [], {}
    for i, (name, (values, size, _, _)) in enumerate(CASES.items()):
        head = make_id("19600101", 100 + i * 10)
        heads[name] = head
        hh.append(household(head, seq=i + 1, **values))
        mm.append(member(head, head))
        for k in range(1, size):
            mm.append(member(head, make_id("19900101", 100 + i * 10 + k), "之子"))
    write_survey(raw / "surveys" / "v.xlsx", SheetSpec(hh), SheetSpec(mm))
    warehouse, reports = run_cli_pipeline(raw, root)
    return heads, warehouse, reports


def test_net_and_per_capita_income_are_exact(outputs):
    heads, warehouse, _ = outputs
    con = duckdb.connect(str(warehouse), read_only=True)
    got = {hid: (net, pc, size) for hid, net, pc, size in con.execute(
        "SELECT h.head_id, i.net_income, i.per_capita, i.size FROM household_income i JOIN households h USING (hh_uid)"
    ).fetchall()}
    for name, (_, size, net, pc) in CASES.items():
        assert got[heads[name]] == (Decimal(net), Decimal(pc), size), name


def _heads_in(reports, filename):
    return {row["户主身份证号"] for row in read_detail(reports / "draft" / filename)}


def test_annex5_is_strictly_below_4500(outputs):
    heads, _, reports = outputs
    got = _heads_in(reports, "附件5_农户年人均收入4500元以下统计表.xlsx")
    expected = {heads[n] for n in ("pc_4499.99", "third_below_4500", "transfer_total_only", "transfer_sub_items",
                                   "negative", "negative_floor", "empty_means_zero")}
    assert got == expected


def test_annex6_is_strictly_below_5000(outputs):
    heads, _, reports = outputs
    got = _heads_in(reports, "附件6_农户年人均收入5000元以下统计表.xlsx")
    expected = {heads[n] for n in ("pc_4499.99", "pc_4500.00", "pc_4999.99", "third_below_4500",
                                   "transfer_total_only", "transfer_sub_items", "negative", "negative_floor",
                                   "declared_size_ignored", "empty_means_zero")}
    assert got == expected


def test_tables_show_two_decimal_amounts(outputs):
    heads, _, reports = outputs
    rows = {r["户主身份证号"]: r for r in read_detail(reports / "draft" / "附件6_农户年人均收入5000元以下统计表.xlsx")}
    row = rows[heads["third_below_4500"]]
    # below 4500 and shown below it: no "低于4500元" table shows 4500.00 (an Excel filter <4500 keeps it)
    assert row["年人均纯收入"] == pytest.approx(4499.99) and row["家庭年纯收入"] == pytest.approx(13499.99)
    assert rows[heads["negative_floor"]]["年人均纯收入"] == pytest.approx(-12.35)
    assert rows[heads["transfer_sub_items"]]["转移性收入"] == pytest.approx(3000)
    assert rows[heads["declared_size_ignored"]]["家庭人口"] == 2
