"""Cross-checks X1–X4, D1–D5, 附件2/附件3, the 核查比对结果表 and the 公示 lists, end to end.

One planted district, run once through the whole pipeline: each household is written into the
village workbook (and the registry when it is registered), each department record into that
department's extract in its real format (xlsx; 税务局 GBK CSV; 交警 UTF-8 CSV), with 15-digit IDs,
lowercase x, spaces and dates as text. Every household says which findings it must have; the
decoys must have none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import openpyxl
import pytest
from builders import (
    SheetSpec,
    default_village,
    household,
    id15,
    make_id,
    member,
    write_department,
    write_registry,
    write_survey,
    write_villages,
)
from conftest import read_detail, run_cli_pipeline

from pipeline.rules.crosscheck import FINDINGS, findings_plan
from pipeline.schema import DEPARTMENTS, VILLAGES_FILE

VILLAGE = "210505004201"
EXITED, EXITED_NO_POLICY, NOT_EXITED, REMOVED = "已脱贫(享受政策)", "已脱贫(不再享受政策)", "未脱贫", "清退"

_seq = {"head": 100, "spouse": 100, "child": 100, "teen": 100}
_BIRTHS = {"head": "19650315", "spouse": "19680520", "child": "20080901", "teen": "20040110"}


def new_id(role: str = "head") -> str:
    _seq[role] += 1
    return make_id(_BIRTHS[role], _seq[role])


def id_ending_in_x() -> str:
    while True:
        candidate = new_id("head")
        if candidate.endswith("X"):
            return candidate


@dataclass
class Planted:
    key: str
    head: str
    members: list[str]  # person IDs, head first
    expect: set[str] = field(default_factory=set)


HOUSEHOLDS: dict[str, Planted] = {}
_SURVEY_HH: list[dict] = []
_SURVEY_MM: list[dict] = []
_REGISTRY: list[dict] = []
DEPT: dict[str, list[dict]] = {d.key: [] for d in DEPARTMENTS}


def plant(key: str, *, expect: set[str] = frozenset(), size: int = 2, head_id: str | None = None,
          members: list[dict] | None = None, registry: str | None = None, exit_year: int | None = None,
          **values) -> Planted:
    """A household of ``size`` members (head, spouse, then children), income 3000 per person from
    wages unless ``values`` say otherwise; ``members[i]`` overrides member i's values."""
    n = len(HOUSEHOLDS) + 1
    head = head_id or new_id("head")
    roles = ["head", "spouse"] + ["child"] * max(0, size - 2)
    relations = ["户主", "配偶"] + ["之子"] * max(0, size - 2)
    ids = [head] + [new_id(r) for r in roles[1:size]]
    row = {"seq": n, "head_name": f"测试户{n:02d}", "wage_income": 3000 * size}
    if registry is not None:
        hh_no = f"2105050042{n:04d}"
        row.update(hh_no=hh_no, hh_type="历年清退户" if registry == REMOVED else "建档立卡户", exit_status=registry)
        for pid, rel in zip(ids, relations):
            _REGISTRY.append({"hh_no": hh_no, "village_code": VILLAGE, "head_name": row["head_name"], "name": "某某",
                              "person_id": pid, "relation": rel, "poor_attribute": "一般贫困户", "status": registry,
                              "identified_year": 2014, "exit_year": exit_year})
    row.update(values)
    _SURVEY_HH.append(household(head, **row))
    for i, (pid, rel) in enumerate(zip(ids, relations)):
        extra = dict(members[i]) if members and i < len(members) else {}
        rel = extra.pop("relation", rel)
        name = row["head_name"] if i == 0 else f"测试员{n:02d}{i}"
        _SURVEY_MM.append(member(head, pid, rel, seq=len(_SURVEY_MM) + 1, name=name, **extra))
    planted = Planted(key, head, ids, set(expect))
    HOUSEHOLDS[key] = planted
    return planted


def dept(key: str, **row) -> None:
    DEPT[key].append(row)


# ------------------------------------------------------------------ X1 工商 (区市场监管局, xlsx)
h = plant("x1_shop", expect={"X1"})
dept("market", 统一社会信用代码="92210505MA0000001A", 主体名称="南芬区某某小卖部", 主体类型="个体工商户",
     经营者或法定代表人="王某", 证件号码=id15(h.head), 登记状态="存续", 成立日期="2015年3月5日")
h = plant("x1_company", expect={"X1"})
dept("market", 统一社会信用代码="91210505MA0000002B", 主体名称="本溪某某商贸有限公司", 主体类型="有限责任公司",
     经营者或法定代表人="李某", 证件号码=f" {h.members[1]} ", 登记状态="在业", 成立日期=43164)
h = plant("x1_sole", expect={"X1"})
dept("market", 统一社会信用代码="91210505MA0000007G", 主体名称="某某加工厂", 主体类型="个人独资企业",
     经营者或法定代表人="周某", 证件号码=h.head, 登记状态="存续", 成立日期="20170801")
h = plant("x1_decoys")
dept("market", 统一社会信用代码="93210505MA0000003C", 主体名称="某某种植专业合作社", 主体类型="农民专业合作社",
     经营者或法定代表人="赵某", 证件号码=h.head, 登记状态="存续", 成立日期="2016-06-01")
dept("market", 统一社会信用代码="92210505MA0000004D", 主体名称="某某商店", 主体类型="个体工商户",
     经营者或法定代表人="钱某", 证件号码=h.members[1], 登记状态="注销", 成立日期="2012/3/5")
dept("market", 统一社会信用代码="91210505MA0000005E", 主体名称="某某建材有限公司", 主体类型="有限责任公司",
     经营者或法定代表人="赵某", 证件号码=h.head, 登记状态="吊销", 成立日期="2010年1月")

# ------------------------------------------------------------------ X2 商品房 (区住建局, xlsx)
h = plant("x2_house", expect={"X2"})
dept("housing", 买受人="孙某", 证件号码=h.head, 项目名称="某某花园", 房屋坐落="平山区某路1号", 建筑面积="89.5",
     合同总价="450,000元", 备案日期="2018/3/5")
h = plant("x2_on_reference_date", expect={"X2"})
dept("housing", 买受人="周某", 证件号码=id15(h.members[1]), 项目名称="某某小区", 房屋坐落="明山区某路2号", 建筑面积=72,
     合同总价=320000, 备案日期="2019年4月30日")
h = plant("x2_after_reference_date")
dept("housing", 买受人="吴某", 证件号码=h.head, 项目名称="某某府", 房屋坐落="溪湖区某路3号", 建筑面积="101.2㎡",
     合同总价="600000", 备案日期="20190501")

# ------------------------------------------------------------------ X3 车辆 (交警, UTF-8 CSV)
h = plant("x3_car", expect={"X3"}, head_id=id_ending_in_x())
dept("vehicles", 机动车所有人="郑某", 身份证明号码=h.head.lower(), 号牌号码="辽E12345", 号牌种类="小型汽车",
     车辆类型="小型普通客车", 使用性质="非营运", 初次登记日期="2016-05-01", 机动车状态="正常")
h = plant("x3_sedan", expect={"X3"})
dept("vehicles", 机动车所有人="冯某", 身份证明号码=id15(h.members[1]), 号牌号码="辽E23456", 号牌种类="小型汽车",
     车辆类型="小型轿车", 使用性质="非营运", 初次登记日期="2017/7/7", 机动车状态="正常")
h = plant("x3_decoys")
for vtype, use, state, who in (("轻型普通货车", "非营运", "正常", 0), ("三轮汽车", "非营运", "正常", 0),
                               ("普通二轮摩托车", "非营运", "正常", 0), ("手扶拖拉机", "非营运", "正常", 0),
                               ("小型轿车", "非营运", "报废", 1), ("小型普通客车", "非营运", "注销", 1),
                               ("小型轿车", "营运", "正常", 1)):
    dept("vehicles", 机动车所有人="陈某", 身份证明号码=h.members[who], 号牌号码="辽E00000", 号牌种类="小型汽车",
         车辆类型=vtype, 使用性质=use, 初次登记日期="2015年6月1日", 机动车状态=state)

# ------------------------------------------------------------------ X4 个税 (税务局, GBK CSV)
h = plant("x4_tax", expect={"X4"})
dept("tax", 纳税人姓名="褚某", 证件类型="居民身份证", 证件号码=id15(h.head), 所得项目="工资、薪金所得",
     所属期起="2018-01-01", 所属期止="2018-12-31", 收入额="96,000.00", 实缴税额="350.00")
h = plant("x4_decoys")
dept("tax", 纳税人姓名="卫某", 证件类型="居民身份证", 证件号码=h.head, 所得项目="工资、薪金所得",
     所属期起="2018-03-01", 所属期止="2018-03-31", 收入额="4800", 实缴税额="0.00")
dept("tax", 纳税人姓名="蒋某", 证件类型="居民身份证", 证件号码=h.members[1], 所得项目="劳务报酬所得",
     所属期起="2017/1/1", 所属期止="2017/12/31", 收入额="30000", 实缴税额="120")
dept("tax", 纳税人姓名="卫某", 证件类型="居民身份证", 证件号码=h.head, 所得项目="工资、薪金所得",
     所属期起="20190101", 所属期止="20190331", 收入额="15000", 实缴税额="88")

# ------------------------------------------------------------------ D1 务工 (区人社局, xlsx)
h = plant("d1_not_working", expect={"D1"})  # head 未务工 (the builder's default), wages 6000
dept("hrss", 姓名="沈某", 公民身份号码=id15(h.head), 险种="企业职工基本养老保险", 参保单位="某某公司",
     参保地行政区划="210505", 缴费起始年月="2017年1月", 缴费终止年月="201806", 累计缴费月数=18, 月缴费基数="3,000")
h = plant("d1_no_wages", expect={"D1"}, wage_income=0, business_income=6000,
          members=[{"work_status": "县内务工", "work_months": 10}, {"work_status": "县内务工", "work_months": 10}])
dept("hrss", 姓名="韩某", 公民身份号码=h.head, 险种="企业职工基本养老保险", 参保单位="某某厂",
     参保地行政区划="210505", 缴费起始年月="2018-03", 缴费终止年月=None, 累计缴费月数=14, 月缴费基数=2800)
h = plant("d1_decoys", size=3, members=[{}, {}, {"work_status": "县外省内务工", "work_months": 12}])
dept("hrss", 姓名="杨某", 公民身份号码=h.head, 险种="城乡居民基本养老保险", 参保单位="",
     参保地行政区划="210505", 缴费起始年月="2018-01", 缴费终止年月="2018-12", 累计缴费月数=12, 月缴费基数=100)
dept("hrss", 姓名="朱某", 公民身份号码=h.members[1], 险种="企业职工基本养老保险", 参保单位="某某厂",
     参保地行政区划="210505", 缴费起始年月="2015年1月", 缴费终止年月="2016年12月", 累计缴费月数=24, 月缴费基数=2500)
dept("hrss", 姓名="秦某", 公民身份号码=h.members[2], 险种="企业职工基本养老保险", 参保单位="某某公司",
     参保地行政区划="210502", 缴费起始年月="2018-01", 缴费终止年月="2018-12", 累计缴费月数=12, 月缴费基数=3500)

# ------------------------------------------------------------------ D2 疾病 (区医保局, xlsx)
plant("d2_no_record", expect={"D2"}, members=[{}, {"health": "患有大病"}])
plant("d2_cause_illness", expect={"D2"}, main_cause="因病")
h = plant("d2_decoy", main_cause="因病", members=[{"health": "长期慢性病"}, {}])
dept("medical", 姓名="尤某", 身份证号=h.head, 认定类别="门诊慢性病", 病种名称="高血压", 认定日期="2017年5月6日",
     年度个人自付医疗费用="1,200.50")

# ------------------------------------------------------------------ D3 残疾 (区残联, xlsx)
plant("d3_no_record", expect={"D3"},
      members=[{"disabled_cert": "是", "disability_type": "肢体", "disability_grade": "二级", "health": "残疾"}, {}])
h = plant("d3_other_grade", expect={"D3"},
          members=[{"disabled_cert": "是", "disability_type": "肢体", "disability_grade": "二级", "health": "残疾"}, {}])
dept("disability", 姓名="许某", 身份证号=h.head, 残疾人证号=h.head + "42", 残疾类别="肢体", 残疾等级="三级",
     发证日期="2016-01-01", 证件状态="有效")
h = plant("d3_cancelled", expect={"D3"},
          members=[{"disabled_cert": "是", "disability_type": "视力", "disability_grade": "一级", "health": "残疾"}, {}])
dept("disability", 姓名="何某", 身份证号=id15(h.head), 残疾人证号=h.head + "11", 残疾类别="视力", 残疾等级="一级",
     发证日期="2012/5/1", 证件状态="注销")
h = plant("d3_decoy",
          members=[{"disabled_cert": "是", "disability_type": "肢体", "disability_grade": "二级", "health": "残疾"}, {}])
dept("disability", 姓名="吕某", 身份证号=h.head, 残疾人证号=h.head + "42", 残疾类别="肢体残疾", 残疾等级="2级",
     发证日期="2018年3月5日", 证件状态="有效")
dept("disability", 姓名="吕某", 身份证号=h.head, 残疾人证号=h.head + "43", 残疾类别="肢体", 残疾等级="三级",
     发证日期="2010年3月5日", 证件状态="注销")

# ------------------------------------------------------------------ D4 学籍 (区教育局, xlsx)
plant("d4_no_enrolment", expect={"D4"}, size=3, members=[{}, {}, {"school_status": "小学", "education": "小学"}])
h = plant("d4_enrolled_but_not_student", expect={"D4"}, size=3)  # the child: 非在校生 (builder default)
dept("education", 学生姓名="施某", 身份证件号=h.members[2], 学校名称="南芬区某某中学", 学段="初中", 年级="七年级",
         学籍状态="在读")
plant("d4_cause_schooling", expect={"D4"}, main_cause="因学", size=3)
h = plant("d4_decoys", main_cause="因学", size=4,
          members=[{}, {}, {"school_status": "七至九年级"}, {"school_status": "学前教育", "education": "学龄前儿童"}])
dept("education", 学生姓名="张某", 身份证件号=f"　{h.members[2]} ", 学校名称="南芬区某某中学", 学段="初中", 年级="八年级",
     学籍状态="在读")
dept("education", 学生姓名="孔某", 身份证件号=h.members[1], 学校名称="某某高中", 学段="高中", 年级="三年级",
     学籍状态="毕业")

# ------------------------------------------------------------------ D5 收入 (区统计局、区纪委, xlsx)
h = plant("d5_beyond_tolerance", expect={"D5"})  # 3000 per person; recheck 4000 (+33%)
dept("income_recheck", 户主姓名="曹某", 户主身份证号=h.head, 复核家庭人口=2, 复核家庭年纯收入="8,000.00元",
     复核单位="区统计局", 复核日期="2019年5月12日", 复核意见="收入偏低")
h = plant("d5_across_5000", expect={"D5"}, wage_income=9900)  # 4950 per person; recheck 5050
dept("income_recheck", 户主姓名="严某", 户主身份证号=id15(h.head), 复核家庭人口="2", 复核家庭年纯收入="10100",
     复核单位="区纪委", 复核日期="20190513", 复核意见="")
h = plant("d5_exactly_tolerance", size=3, wage_income=10000)  # 3333.33…; recheck 4000.00: exactly 20 %
dept("income_recheck", 户主姓名="华某", 户主身份证号=h.head, 复核家庭人口=3, 复核家庭年纯收入=12000,
     复核单位="区统计局", 复核日期="2019-05-12", 复核意见="")
h = plant("d5_at_5000", wage_income=10000)  # 5000.00 per person; recheck 5000.00: the same side
dept("income_recheck", 户主姓名="金某", 户主身份证号=h.head, 复核家庭人口=1, 复核家庭年纯收入="5000",
     复核单位="区统计局", 复核日期="2019-05-12", 复核意见="")

# ------------------------------------------------------------------ several findings in one household
h = plant("d1_and_x3", expect={"D1", "X3"})
dept("hrss", 姓名="魏某", 公民身份号码=h.head, 险种="企业职工基本养老保险", 参保单位="某某公司",
     参保地行政区划="210505", 缴费起始年月="2018-01", 缴费终止年月="2018-12", 累计缴费月数=12, 月缴费基数=3000)
dept("vehicles", 机动车所有人="魏某", 身份证明号码=h.head, 号牌号码="辽E34567", 号牌种类="小型汽车",
     车辆类型="小型轿车", 使用性质="非营运", 初次登记日期="20180808", 机动车状态="正常")
# A department row about nobody surveyed: no finding, no failure.
dept("vehicles", 机动车所有人="陶某", 身份证明号码=make_id("19700101", 999), 号牌号码="辽E99999", 号牌种类="小型汽车",
     车辆类型="小型轿车", 使用性质="非营运", 初次登记日期="2018-08-08", 机动车状态="正常")

# ------------------------------------------------------------------ 附件2 (registered, exited)
plant("a2_return", expect={"D2"}, registry=EXITED, exit_year=2017, wage_income=7999.98,
      members=[{}, {"health": "患有大病"}])  # 3999.99 → 返贫, doubt shown, stays
plant("a2_focus", registry=EXITED_NO_POLICY, exit_year=2018, wage_income=8000)  # 4000.00 → 重点扶持
plant("a2_fails_guarantee", registry=EXITED, exit_year=2016, wage_income=12000, housing_grade="C")  # 6000, 危房 → 返贫
h = plant("a2_excluded", expect={"X3"}, registry=EXITED, exit_year=2017)
dept("vehicles", 机动车所有人="戚某", 身份证明号码=h.head, 号牌号码="辽E45678", 号牌种类="小型汽车",
     车辆类型="小型普通客车", 使用性质="非营运", 初次登记日期="2018-01-01", 机动车状态="正常")
plant("a2_at_5000", registry=EXITED, exit_year=2017, wage_income=10000)
h = plant("registered_not_exited", expect={"X4"}, registry=NOT_EXITED)
dept("tax", 纳税人姓名="谢某", 证件类型="居民身份证", 证件号码=h.members[1], 所得项目="经营所得",
     所属期起="2018年1月", 所属期止="2018年12月", 收入额="50000", 实缴税额="1,000.00")

# ------------------------------------------------------------------ 附件3 (一般农户 / 历年清退户)
APPLIED = {"applied": "是", "review_result": "通过"}
plant("a3_new", wage_income=8999.98, main_cause="缺技术", **APPLIED)  # 4499.99 → 新识别
plant("a3_focus", wage_income=9000, main_cause="缺资金", **APPLIED)  # 4500.00 → 重点扶持
plant("a3_fails_guarantee", wage_income=16000, water_ok="否", main_cause="缺水", **APPLIED)  # 8000 → 新识别
plant("a3_removed", registry=REMOVED, main_cause="因灾", **APPLIED)  # 历年清退户, 3000 → 新识别
h = plant("a3_excluded", expect={"X1"}, main_cause="缺资金", **APPLIED)
dept("market", 统一社会信用代码="92210505MA0000006F", 主体名称="某某饭店", 主体类型="个体工商户",
     经营者或法定代表人="柏某", 证件号码=h.members[1], 登记状态="存续", 成立日期="2018-09-09")
plant("a3_not_applied", main_cause="缺劳力", applied="否", review_result="未评议")
plant("a3_review_failed", main_cause="缺劳力", applied="是", review_result="未通过")
plant("a3_no_cause", **APPLIED)
plant("a3_at_5000", wage_income=10000, main_cause="缺技术", **APPLIED)
plant("a3_blocked", main_cause="缺技术", members=[{}, {"relation": None}], **APPLIED)  # B6: 与户主关系 missing
plant("touched_not_meeting", expect={"D2"}, wage_income=16000, members=[{}, {"health": "长期慢性病"}])

ANNEX2 = {"a2_return": "返贫", "a2_focus": "重点扶持", "a2_fails_guarantee": "返贫"}
ANNEX3 = {"a3_new": "新识别", "a3_focus": "重点扶持", "a3_fails_guarantee": "新识别", "a3_removed": "新识别"}
CONCLUSIONS = {
    "a2_return": "列入附件2", "a2_excluded": "排除：X3 车辆", "a3_new": None, "a3_excluded": "排除：X1 工商",
    "a3_not_applied": "未申请", "a3_review_failed": "评议未通过", "a3_no_cause": "无致贫原因",
    "a3_blocked": "数据问题待核实", "x1_shop": "排除：X1 工商", "d2_no_record": "未申请",
    "registered_not_exited": "未列入：建档立卡未脱贫户，不属附件2/附件3范围",
    "touched_not_meeting": "未列入：年人均纯收入不低于5000元且两不愁三保障无问题",
}
NOT_IN_RESULT = ("a3_new", "a2_focus", "a2_at_5000", "a3_at_5000", "d5_at_5000")
_ID_LIKE = re.compile(r"(?<![0-9])[0-9]{15}(?:[0-9]{2}[0-9Xx])?(?![0-9])")


def findings_text(codes: set[str]) -> str | None:
    return "、".join(f"{c} {FINDINGS[c]}" for c in sorted(codes)) or None


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    root = tmp_path_factory.mktemp("crosscheck")
    raw = root / "raw"
    write_villages(raw, [default_village(VILLAGE)])
    write_survey(raw / "surveys" / "财神庙村.xlsx", SheetSpec(_SURVEY_HH), SheetSpec(_SURVEY_MM))
    write_registry(raw, _REGISTRY)
    for key, rows in DEPT.items():
        write_department(raw, key, rows)
    assert (raw / VILLAGES_FILE).exists()
    warehouse, reports = run_cli_pipeline(raw, root)
    return warehouse, reports


def _query(warehouse, sql):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _by_head(rows: list[dict], column: str = "户主身份证号") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row[column], []).append(row)
    return out


def test_every_department_was_read_and_returned(district):
    warehouse, _ = district
    got = {d: (returned, rows) for d, returned, rows in _query(
        warehouse, "SELECT dept, returned, rows FROM department_returns")}
    assert got == {key: (True, len(rows)) for key, rows in DEPT.items()}



def test_one_department_is_rebuilt_alone_in_the_step_that_builds_all_nine(district, tmp_path):
    """The nine department tables are one step (one Dagster step, one warehouse connection) but
    stay nine assets: materializing one rebuilds that one, with its own metadata and build time."""
    import shutil

    import dagster as dg

    from pipeline.assets.crosscheck import department_extracts
    from pipeline.resources import build_resources

    warehouse, _ = district
    copy = shutil.copy(warehouse, tmp_path / "w.duckdb")
    before = dict(_query(copy, "SELECT asset, built_at FROM asset_builds WHERE asset LIKE 'dept_%'"))
    assert set(before) == {f"dept_{d.key}" for d in DEPARTMENTS}
    resources = build_resources(raw_dir=warehouse.parent / "raw", warehouse=copy, reports_dir=tmp_path / "reports")
    result = dg.materialize([department_extracts], selection=["dept_tax"], resources=resources,
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    (materialization,) = result.get_asset_materialization_events()
    assert materialization.asset_key == dg.AssetKey("dept_tax")
    meta = materialization.materialization.metadata
    assert meta["dagster/row_count"].value == len(DEPT["tax"]) and meta["status"].value == "已返回"
    after = dict(_query(copy, "SELECT asset, built_at FROM asset_builds WHERE asset LIKE 'dept_%'"))
    assert after["dept_tax"] > before["dept_tax"]
    assert {k: v for k, v in after.items() if k != "dept_tax"} == {k: v for k, v in before.items() if k != "dept_tax"}

def test_findings_per_household_are_exactly_the_planted_ones(district):
    warehouse, _ = district
    got: dict[str, set[str]] = {}
    for head, code in _query(warehouse, """SELECT DISTINCT h.head_id, f.code FROM household_findings f
                                          JOIN households h ON h.hh_key = f.hh_key"""):
        got.setdefault(head, set()).add(code)
    expected = {p.head: p.expect for p in HOUSEHOLDS.values() if p.expect}
    names = {p.head: k for k, p in HOUSEHOLDS.items()}
    assert {names[h]: c for h, c in got.items()} == {names[h]: c for h, c in expected.items()}


def test_every_code_has_a_hit_and_a_decoy():
    hits = {c for p in HOUSEHOLDS.values() for c in p.expect}
    assert hits == set(FINDINGS)
    for code in FINDINGS:
        assert any(k.startswith(code.lower()) and not p.expect for k, p in HOUSEHOLDS.items()), code


def test_evidence_names_the_record_but_no_id_or_name(district):
    warehouse, _ = district
    rows = _query(warehouse, "SELECT code, evidence FROM household_findings")
    names = {v for rows_ in DEPT.values() for r in rows_ for k, v in r.items() if k in (
        "经营者或法定代表人", "纳税人姓名", "姓名", "买受人", "机动车所有人", "学生姓名", "户主姓名")}
    names |= {row["name"] for row in _SURVEY_MM}
    for code, evidence in rows:
        assert evidence and not _ID_LIKE.search(evidence), (code, evidence)
        assert not any(name and name in evidence for name in names), (code, evidence)
    evidence = {code: [e for c, e in rows if c == code] for code in FINDINGS}
    assert any("个体工商户" in e and "存续" in e for e in evidence["X1"])
    assert any("小型普通客车" in e and "非营运" in e and "正常" in e for e in evidence["X3"])
    assert any("2018-01-01至2018-12-31" in e and "350.00" in e for e in evidence["X4"])
    assert any("4000.00" in e and "3000.00" in e for e in evidence["D5"])
    assert any("三级" in e for e in evidence["D3"])


def test_findings_in_the_annex_tables(district):
    _, reports = district
    draft = reports / "draft"
    annex6 = _by_head(read_detail(draft / "附件6_农户年人均收入5000元以下统计表.xlsx"))
    below_5000 = [k for k in HOUSEHOLDS if k not in (
        "a2_fails_guarantee", "a2_at_5000", "a3_fails_guarantee", "a3_at_5000", "d5_at_5000",
        "touched_not_meeting", "a3_blocked")]
    for key in below_5000:
        planted = HOUSEHOLDS[key]
        assert planted.head in annex6, key
        assert annex6[planted.head][0]["核查疑点"] == findings_text(planted.expect), key
    assert annex6[HOUSEHOLDS["d1_and_x3"].head][0]["核查疑点"] == "D1 务工、X3 车辆"
    annex4 = _by_head(read_detail(draft / "附件4_贫困户年人均收入5000元以下统计表.xlsx"))
    assert annex4[HOUSEHOLDS["a2_excluded"].head][0]["核查疑点"] == "X3 车辆"
    assert annex4[HOUSEHOLDS["registered_not_exited"].head][0]["核查疑点"] == "X4 个税"
    annex5 = _by_head(read_detail(draft / "附件5_农户年人均收入4500元以下统计表.xlsx"))
    assert annex5[HOUSEHOLDS["a3_excluded"].head][0]["核查疑点"] == "X1 工商"


def test_annex2_persons_and_categories(district):
    _, reports = district
    rows = read_detail(reports / "draft" / "附件2_返贫（重点扶持）人口统计表.xlsx")
    expected = {pid: ANNEX2[k] for k in ANNEX2 for pid in HOUSEHOLDS[k].members}
    assert {r["身份证号"]: r["类别"] for r in rows} == expected
    assert len(rows) == len(expected)
    by_head = _by_head(rows, "户主姓名")
    first = {k: by_head[f"测试户{list(HOUSEHOLDS).index(k) + 1:02d}"][0] for k in ANNEX2}
    assert first["a2_return"]["核查疑点"] == "D2 疾病"
    assert first["a2_return"]["脱贫年度"] == "2017" and first["a2_focus"]["脱贫年度"] == "2018"
    assert first["a2_return"]["三保障问题"] is None
    assert first["a2_fails_guarantee"]["三保障问题"] == "住房安全"
    assert "危房户" in first["a2_fails_guarantee"]["重点人群"]
    assert first["a2_return"]["与户主关系"] == "户主"


def test_annex3_persons_and_categories(district):
    _, reports = district
    rows = read_detail(reports / "draft" / "附件3_新识别（重点扶持）贫困人口统计表.xlsx")
    expected = {pid: ANNEX3[k] for k in ANNEX3 for pid in HOUSEHOLDS[k].members}
    assert {r["身份证号"]: r["类别"] for r in rows} == expected
    types = {r["身份证号"]: r["户类型"] for r in rows}
    assert types[HOUSEHOLDS["a3_removed"].head] == "历年清退户"
    assert types[HOUSEHOLDS["a3_new"].head] == "一般农户"
    fails = [r for r in rows if r["身份证号"] == HOUSEHOLDS["a3_fails_guarantee"].head][0]
    assert fails["三保障问题"] == "饮水安全" and fails["民主评议结果"] == "通过"


def test_crosscheck_table_rows_and_conclusions(district):
    _, reports = district
    rows = read_detail(reports / "draft" / "核查比对结果表.xlsx")
    header = list(rows[0])
    assert header == ["序号", "办事处", "村", "户主姓名", "户主身份证号", "户状态", "年人均纯收入",
                      "X1 工商", "X2 商品房", "X3 车辆", "X4 个税", "D1 务工", "D2 疾病", "D3 残疾", "D4 学籍", "D5 收入",
                      "结论"]
    by_head = _by_head(rows)
    for key, conclusion in CONCLUSIONS.items():
        head = HOUSEHOLDS[key].head
        if conclusion is None:
            assert head not in by_head, key
        else:
            assert by_head[head][0]["结论"] == conclusion, key
    for key in NOT_IN_RESULT:
        assert HOUSEHOLDS[key].head not in by_head, key
    for key, planted in HOUSEHOLDS.items():  # every household a cross-check touched is listed
        if planted.expect:
            row = by_head[planted.head][0]
            filled = {label.split()[0] for label in header[7:16] if row[label]}
            assert filled == planted.expect, key
    assert len(rows) == len({r["户主身份证号"] for r in rows})
    x3 = by_head[HOUSEHOLDS["a2_excluded"].head][0]
    assert "小型普通客车" in x3["X3 车辆"] and x3["户状态"].startswith("建档立卡户")


def test_notices_list_the_households_of_annex_2_and_3_and_no_private_detail(district):
    """The 第一次公示 of each village and the 第二次公示 of each 办事处 name the households of
    附件2 and 附件3 by 户主姓名, 家庭人口 and 类别 only: no ID, health, disability, income or cause."""
    _, reports = district
    public = reports / "public"
    expected = {f"测试户{list(HOUSEHOLDS).index(k) + 1:02d}": (cat, len(HOUSEHOLDS[k].members))
                for annex in (ANNEX2, ANNEX3) for k, cat in annex.items()}
    for level, paths in (("village", sorted(public.glob("*/*_公示.xlsx"))), ("办事处", sorted(public.glob("*_公示.xlsx")))):
        assert paths, level
        got = {}
        for path in paths:
            ws = openpyxl.load_workbook(path, read_only=True)["公示"]
            rows = list(ws.iter_rows(values_only=True))
            for row in rows:
                for cell in row:
                    assert cell is None or not _ID_LIKE.search(str(cell)), (path.name, cell)
                    assert not any(w in str(cell) for w in ("因病", "因残", "收入", "身份证", "生成时间", "数据截至"))
            if rows[2][0] != "序号":
                continue  # nobody to list: the notice says so
            header = [h for h in rows[2] if h]
            assert header in (["序号", "户主姓名", "家庭人口", "类别"], ["序号", "村", "户主姓名", "家庭人口", "类别"])
            for row in rows[3:]:
                if not isinstance(row[0], int):
                    break
                r = dict(zip(header, row))
                got[r["户主姓名"]] = (r["类别"], r["家庭人口"])
        assert got == expected, level


def test_a_rule_whose_department_has_not_returned_is_not_run():
    plan = findings_plan({d.key for d in DEPARTMENTS} - {"medical"})
    assert "D2" not in plan.checked and plan.skipped == {"D2": ("medical",)}
    assert set(plan.checked) == set(FINDINGS) - {"D2"}
