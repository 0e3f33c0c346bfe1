"""One source of truth for sheet names, column names and code lists.

Chinese labels are what the user sees (input headers, Excel outputs); the English ``key`` is the
identifier used in code and in the DuckDB warehouse. Every reader, writer, rule and the sample
generator take their names from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------
# Code lists (inputs.md)
# --------------------------------------------------------------------------------------------

YES, NO = "是", "否"

HOUSEHOLD_TYPES = ("建档立卡户", "一般农户", "历年清退户")
HH_REGISTERED, HH_ORDINARY, HH_REMOVED = HOUSEHOLD_TYPES

EXIT_STATUSES = ("未脱贫", "已脱贫(享受政策)", "已脱贫(不再享受政策)", "返贫", "清退")
STATUS_NOT_EXITED, STATUS_EXITED_POLICY, STATUS_EXITED_NO_POLICY, STATUS_RETURNED, STATUS_REMOVED = (
    EXIT_STATUSES
)
EXITED_STATUSES = (STATUS_EXITED_POLICY, STATUS_EXITED_NO_POLICY)

POOR_ATTRIBUTES = ("一般贫困户", "低保贫困户", "特困供养贫困户")

REVIEW_RESULTS = ("通过", "未通过", "未评议")
REVIEW_PASSED = "通过"

POVERTY_CAUSES = (
    "因病", "因残", "因学", "因灾", "缺土地", "缺水", "缺技术", "缺劳力", "缺资金",
    "交通条件落后", "自身发展动力不足", "因婚", "因丧",
)

HOUSING_GRADES = ("A", "B", "C", "D")
DANGEROUS_HOUSING = ("C", "D")

SEXES = ("男", "女")

RELATIONS = (
    "户主", "配偶", "之子", "之女", "之儿媳", "之女婿", "之孙子", "之孙女", "之外孙子", "之外孙女",
    "之父", "之母", "之岳父", "之岳母", "之公公", "之婆婆", "之祖父", "之祖母", "之兄弟姐妹", "其他",
)
HEAD = "户主"

ETHNICITIES = (
    "汉族", "满族", "朝鲜族", "回族", "蒙古族", "锡伯族", "壮族", "苗族", "土家族", "彝族", "藏族",
    "维吾尔族", "达斡尔族", "鄂温克族", "鄂伦春族", "赫哲族", "其他",
)

EDUCATION_LEVELS = ("文盲或半文盲", "学龄前儿童", "小学", "初中", "高中", "大专及以上")

SCHOOL_STATUSES = ("非在校生", "学前教育", "小学", "七至九年级", "高中", "中职", "高职", "大专及以上")
NOT_IN_SCHOOL = ("非在校生", "学前教育")

HEALTH_STATES = ("健康", "长期慢性病", "患有大病", "残疾")
SERIOUS_HEALTH = ("患有大病", "长期慢性病")

LABOR_SKILLS = ("普通劳动力", "技能劳动力", "弱劳动力或半劳动力", "丧失劳动力", "无劳动力")

WORK_STATUSES = ("未务工", "乡镇内务工", "县内务工", "县外省内务工", "省外务工")
NOT_WORKING = "未务工"

DISABILITY_TYPES = ("视力", "听力", "言语", "肢体", "智力", "精神", "多重")
DISABILITY_GRADES = ("一级", "二级", "三级", "四级")

# Variants villages type for yes/no (inputs.md, "What real village files look like").
YES_VARIANTS = ("是", "√", "Y", "y", "YES", "yes", "Yes", "有", "1", "对", "✓", "✔")
NO_VARIANTS = ("否", "×", "N", "n", "NO", "no", "No", "无", "0", "x", "X", "✗", "✘")

# Separators for multi-valued cells (其他致贫原因, 健康状况).
MULTI_SEPARATORS = "、,，;；/ "

# --------------------------------------------------------------------------------------------
# Survey workbook (附件1)
# --------------------------------------------------------------------------------------------

SHEET_HOUSEHOLDS = "家庭基本情况"
SHEET_MEMBERS = "家庭成员情况"
SURVEY_TITLE = "2019年脱贫质量“回头看”入户调查表"


@dataclass(frozen=True)
class Col:
    """A column of an input sheet: English key, Chinese label, kind, and accepted header aliases."""

    key: str
    label: str
    kind: str = "text"  # text | id | yesno | amount | int | code | multi | phone
    group: str = ""
    codes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    required: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return (self.label, *self.aliases)


G_GUARANTEE = "两不愁三保障"
G_INCOME = "上年度家庭收入（元）"
G_TRANSFER = "其中：转移性收入"
G_EXPENSE = "上年度家庭支出（元）"

HOUSEHOLD_COLUMNS: tuple[Col, ...] = (
    Col("seq", "序号", "int"),
    Col("hh_no", "户编号", "text", aliases=("户编码", "户号")),
    Col("head_name", "户主姓名", "text"),
    Col("head_id", "户主身份证号", "id", aliases=("户主身份证号码", "户主证件号码", "户主身份证"),
        required=True),
    Col("declared_size", "家庭人口", "int", aliases=("家庭人口数", "家庭人数", "人口数")),
    Col("hh_type", "户类型", "code", codes=HOUSEHOLD_TYPES, aliases=("农户类型",), required=True),
    Col("exit_status", "脱贫状态", "code", codes=EXIT_STATUSES, aliases=("脱贫情况",)),
    Col("resident_foreign", "是否常住外籍户", "yesno", aliases=("常住外籍户", "是否外籍户")),
    Col("applied", "是否申请纳入", "yesno", aliases=("申请纳入", "是否申请")),
    Col("review_result", "民主评议结果", "code", codes=REVIEW_RESULTS, aliases=("民主评议",)),
    Col("main_cause", "主要致贫原因", "code", codes=POVERTY_CAUSES, aliases=("致贫原因",)),
    Col("other_causes", "其他致贫原因", "multi", codes=POVERTY_CAUSES),
    Col("food_ok", "不愁吃", "yesno", G_GUARANTEE),
    Col("clothing_ok", "不愁穿", "yesno", G_GUARANTEE),
    Col("education_ok", "义务教育有保障", "yesno", G_GUARANTEE, aliases=("义务教育保障",)),
    Col("medical_ok", "基本医疗有保障", "yesno", G_GUARANTEE, aliases=("基本医疗保障",)),
    Col("housing_grade", "住房安全等级", "code", G_GUARANTEE, codes=HOUSING_GRADES,
        aliases=("住房安全", "住房等级", "房屋安全等级"), required=True),
    Col("water_ok", "饮水安全", "yesno", G_GUARANTEE, aliases=("饮水安全有保障",)),
    Col("wage_income", "工资性收入", "amount", G_INCOME),
    Col("business_income", "生产经营性收入", "amount", G_INCOME, aliases=("经营性收入",)),
    Col("property_income", "财产性收入", "amount", G_INCOME),
    Col("transfer_total", "转移性收入合计", "amount", G_INCOME, aliases=("转移性收入",)),
    Col("dibao_income", "低保金", "amount", G_TRANSFER),
    Col("tekun_income", "特困供养金", "amount", G_TRANSFER),
    Col("pension_income", "养老金", "amount", G_TRANSFER),
    Col("eco_income", "生态补偿金", "amount", G_TRANSFER),
    Col("family_planning_income", "计划生育金", "amount", G_TRANSFER),
    Col("support_income", "赡养费", "amount", G_TRANSFER),
    Col("other_transfer_income", "其他转移性收入", "amount", G_TRANSFER),
    Col("business_expense", "生产经营性支出", "amount", G_EXPENSE),
    Col("one_off_subsidy", "一次性补助（不计入收入）", "amount",
        aliases=("一次性补助", "一次性补助(不计入收入)")),
    Col("phone", "联系电话", "phone", aliases=("电话", "手机号")),
    Col("note", "备注", "text"),
)

INCOME_ITEMS = ("wage_income", "business_income", "property_income")
TRANSFER_SUB_ITEMS = (
    "dibao_income", "tekun_income", "pension_income", "eco_income",
    "family_planning_income", "support_income", "other_transfer_income",
)
AMOUNT_KEYS = tuple(c.key for c in HOUSEHOLD_COLUMNS if c.kind == "amount")
GUARANTEE_YESNO = ("food_ok", "clothing_ok", "education_ok", "medical_ok", "water_ok")

MEMBER_COLUMNS: tuple[Col, ...] = (
    Col("seq", "序号", "int"),
    Col("head_id", "户主身份证号", "id", aliases=("户主身份证号码", "户主证件号码"), required=True),
    Col("name", "姓名", "text", required=True),
    Col("sex", "性别", "code", codes=SEXES),
    Col("person_id", "身份证号", "id", aliases=("身份证号码", "证件号码", "公民身份号码"), required=True),
    Col("relation", "与户主关系", "code", codes=RELATIONS, required=True),
    Col("ethnicity", "民族", "code", codes=ETHNICITIES),
    Col("education", "文化程度", "code", codes=EDUCATION_LEVELS),
    Col("school_status", "在校生状况", "code", codes=SCHOOL_STATUSES, aliases=("在校生情况",)),
    Col("health", "健康状况", "multi", codes=HEALTH_STATES),
    Col("labor_skill", "劳动技能", "code", codes=LABOR_SKILLS),
    Col("work_status", "务工状况", "code", codes=WORK_STATUSES, aliases=("务工情况",)),
    Col("work_months", "务工时间（月）", "int", aliases=("务工时间(月)", "务工时间", "务工月数")),
    Col("dibao", "是否低保对象", "yesno", aliases=("低保对象",)),
    Col("tekun", "是否特困供养", "yesno", aliases=("特困供养",)),
    Col("disabled_cert", "是否持证残疾", "yesno", aliases=("持证残疾",)),
    Col("disability_type", "残疾类别", "code", codes=DISABILITY_TYPES),
    Col("disability_grade", "残疾等级", "code", codes=DISABILITY_GRADES),
    Col("medical_insured", "是否参加基本医疗保险", "yesno", aliases=("参加基本医疗保险", "是否参加医保")),
    Col("note", "备注", "text"),
)

SURVEY_SHEETS: dict[str, tuple[Col, ...]] = {
    SHEET_HOUSEHOLDS: HOUSEHOLD_COLUMNS,
    SHEET_MEMBERS: MEMBER_COLUMNS,
}

# --------------------------------------------------------------------------------------------
# villages.csv and the registry
# --------------------------------------------------------------------------------------------

VILLAGE_COLUMNS = {
    "village_code": "村代码",
    "village_name": "村名称",
    "subdistrict_code": "办事处代码",
    "subdistrict_name": "办事处名称",
    "farming": "是否涉农",
}

REGISTRY_COLUMNS = {
    "hh_no": "户编号",
    "village_code": "村代码",
    "head_name": "户主姓名",
    "name": "姓名",
    "person_id": "证件号码",
    "relation": "与户主关系",
    "poor_attribute": "贫困户属性",
    "status": "脱贫状态",
    "identified_year": "识别年度",
    "exit_year": "脱贫年度",
}


@dataclass(frozen=True)
class Department:
    key: str  # folder name under departments/
    name: str  # 区市场监管局 …
    id_column: str  # the column holding the resident ID
    columns: tuple[str, ...]
    encoding: str | None = None  # for CSV extracts
    file_format: str = "xlsx"
    date_columns: tuple[str, ...] = field(default=())
    month_columns: tuple[str, ...] = field(default=())  # of date_columns: a year-month (年月)
    amount_columns: tuple[str, ...] = field(default=())  # numbers, read as Decimal
    int_columns: tuple[str, ...] = field(default=())  # whole numbers (counts, months)


DEPARTMENTS: tuple[Department, ...] = (
    Department("market", "区市场监管局", "证件号码",
               ("统一社会信用代码", "主体名称", "主体类型", "经营者或法定代表人", "证件号码", "登记状态", "成立日期"),
               date_columns=("成立日期",)),
    Department("tax", "税务局", "证件号码",
               ("纳税人姓名", "证件类型", "证件号码", "所得项目", "所属期起", "所属期止", "收入额", "实缴税额"),
               encoding="gbk", file_format="csv", date_columns=("所属期起", "所属期止"),
               amount_columns=("收入额", "实缴税额")),
    Department("hrss", "区人社局", "公民身份号码",
               ("姓名", "公民身份号码", "险种", "参保单位", "参保地行政区划", "缴费起始年月", "缴费终止年月",
                "累计缴费月数", "月缴费基数"),
               date_columns=("缴费起始年月", "缴费终止年月"), month_columns=("缴费起始年月", "缴费终止年月"),
               amount_columns=("月缴费基数",), int_columns=("累计缴费月数",)),
    Department("housing", "区住建局", "证件号码",
               ("买受人", "证件号码", "项目名称", "房屋坐落", "建筑面积", "合同总价", "备案日期"),
               date_columns=("备案日期",), amount_columns=("建筑面积", "合同总价")),
    Department("vehicles", "交警部门", "身份证明号码",
               ("机动车所有人", "身份证明号码", "号牌号码", "号牌种类", "车辆类型", "使用性质", "初次登记日期",
                "机动车状态"),
               encoding="utf-8", file_format="csv", date_columns=("初次登记日期",)),
    Department("education", "区教育局", "身份证件号",
               ("学生姓名", "身份证件号", "学校名称", "学段", "年级", "学籍状态")),
    Department("medical", "区医保局", "身份证号",
               ("姓名", "身份证号", "认定类别", "病种名称", "认定日期", "年度个人自付医疗费用"),
               date_columns=("认定日期",), amount_columns=("年度个人自付医疗费用",)),
    Department("disability", "区残联", "身份证号",
               ("姓名", "身份证号", "残疾人证号", "残疾类别", "残疾等级", "发证日期", "证件状态"),
               date_columns=("发证日期",)),
    Department("income_recheck", "区统计局、区纪委", "户主身份证号",
               ("户主姓名", "户主身份证号", "复核家庭人口", "复核家庭年纯收入", "复核单位", "复核日期", "复核意见"),
               date_columns=("复核日期",), amount_columns=("复核家庭年纯收入",), int_columns=("复核家庭人口",)),
)
DEPARTMENTS_BY_KEY = {d.key: d for d in DEPARTMENTS}

EXCEPTIONS_COLUMNS = ("问题编号", "核实结论", "核实人", "核实日期")

# --------------------------------------------------------------------------------------------
# Input layout of the data root
# --------------------------------------------------------------------------------------------

VILLAGES_FILE = "villages.csv"
REGISTRY_DIR = "registry"
SURVEYS_DIR = "surveys"
DEPARTMENTS_DIR = "departments"
EXCEPTIONS_FILE = "exceptions.csv"
SURVEY_SUFFIXES = (".xlsx", ".xls", ".xlsm")


def is_input_file(name: str) -> bool:
    """Excel lock files (``~$``) and hidden/editor temp files (``.``) are never input."""
    return not (name.startswith("~$") or name.startswith("."))
