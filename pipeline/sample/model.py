"""Steps 1, 2 and 7 of the sample generator: the district's truth.

The villages and subdistricts, with the roles a few villages play and the style of each
village's files (step 1); the households and people, each household's true net income in cents
(step 2); and, once the planted problems have tagged the households, each household's income
items (step 7). Nothing here is messy: this is what the files would say if they were right, and
what the answer key is computed from.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pipeline import schema as S
from pipeline.rules.ids import CHECK_CHARS as ID_CHECK_CHARS
from pipeline.rules.ids import WEIGHTS as ID_WEIGHTS
from pipeline.rules.ids import check_char
from pipeline.settings import Settings

# ------------------------------------------------------------------------------------------
# Names and places
# ------------------------------------------------------------------------------------------

REAL_SUBDISTRICTS = (
    ("001", "南芬街道"), ("002", "铁山街道"), ("003", "郭家街道"), ("004", "思山岭街道"), ("005", "下马塘街道"),
)
REAL_VILLAGES = {
    "001": ("南芬村", "庙儿沟村", "黄柏峪村", "大阳沟村", "新立屯村", "河东村"),
    "002": ("铁山村", "金坑村", "小河口村", "三道河村", "卧龙村", "大堡村"),
    "003": ("郭家村", "松树台村", "白家堡子村", "腰堡村", "石桥子村", "岔沟村"),
    "004": ("财神庙村", "思山岭村", "杨木沟村", "偏岭村", "桦树甸村", "甜水村"),
    "005": ("下马塘村", "连山关村", "马家堡子村", "西岔村", "泉眼沟村", "红旗村"),
}
SUB_STEMS = (
    "河东", "河西", "城南", "城北", "东山", "西山", "北台", "南台", "松山", "柳河", "桦甸", "青峪", "石湖",
    "金山", "碱厂", "草河", "田师傅", "小市", "高官", "连山", "清河城", "南甸", "兰河峪", "东营坊",
    "偏岭", "泉水", "草河口", "通远堡", "刘家河", "大堡", "沙河", "火连寨", "歪头山", "彩屯", "卧龙",
)
VILLAGE_PREFIX = (
    "王家", "李家", "张家", "刘家", "赵家", "孙家", "于家", "高家", "关家", "佟家", "大", "小", "东", "西",
    "南", "北", "前", "后", "上", "下", "老", "新", "黄", "白", "红", "青", "石", "柳", "杨", "榆", "松",
    "桦", "梨", "杏", "马", "牛",
)
VILLAGE_SUFFIX = (
    "堡子", "沟", "岭", "甸子", "台", "屯", "峪", "河", "岔", "营子", "窝棚", "庄", "湾", "洼", "坎", "泉",
)

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫"
    "孔向汤关佟那富常鲁温"
)
_SURNAME_WEIGHTS = [1.0 / (i + 6) for i in range(len(SURNAMES))]
# for rng.choices(SURNAMES, _SURNAME_WEIGHTS)[0] without accumulating the weights at every call
_SURNAME_CUM = list(itertools.accumulate(_SURNAME_WEIGHTS))
_SURNAME_TOTAL = _SURNAME_CUM[-1] + 0.0
MALE_CHARS = (
    "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信"
    "子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆磊民友裕河哲江超"
    "浩亮政谦奇翰朗宏言鸣朋斌栋维启克伦翔旭鹏泽晨辰士建家致树德行时泰盛雄钧冠策腾航弘"
)
FEMALE_CHARS = (
    "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月媛艳瑞凡佳"
    "嘉琼勤珍贞莉桂娣叶璐娅琦晶妍茜秋珊莎锦青倩婷婉娴颖露瑶怡雁蓓仪荷丹蓉君琴蕊薇菁梦岚婕馨韵艺卿澜纯"
    "悦昭冰爽茗羽希欣滢筠柔竹凝晓欢枫芸菲亚宜可舒影丽阳妮宝"
)
# Areas other than the district where a 外籍户 (or a married-in spouse) is registered.
OTHER_AREAS = (
    "210502", "210503", "210504", "210521", "210522", "210102", "210103", "210111", "210302",
    "210402", "210602", "211002", "220102", "230103", "370102", "370202", "130102", "410105",
)
ETHNIC_WEIGHTS = (("汉族", 75), ("满族", 20), ("朝鲜族", 2), ("回族", 1.5), ("蒙古族", 1), ("锡伯族", 0.5))

# ------------------------------------------------------------------------------------------
# People, villages and households
# ------------------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Person:
    pid: str  # the true, normalized 18-character ID
    name: str
    sex: str
    birth: dt.date
    age: int
    relation: str
    ethnicity: str = "汉族"
    education: str = "初中"
    school: str = "非在校生"
    health: list = field(default_factory=list)  # subset of HEALTH_STATES; empty = 健康
    labor: str = "普通劳动力"
    work: str = "未务工"
    work_months: int = 0
    dibao: bool = False
    tekun: bool = False
    disabled: bool = False
    dis_type: str = ""
    dis_grade: str = ""
    insured: bool = True
    registered: bool = False
    in_survey: bool = True  # False: a registered member the village left out (B9 漏人)
    orphan_head: str | None = None  # written with this 户主身份证号 instead (B4)
    cell: dict | None = None  # column key -> raw value written instead of the truth
    plant: dict | None = None  # department planting flags (departments.py)
    note: str = ""

    def flag(self, key: str, value: Any = True) -> None:
        if self.plant is None:
            self.plant = {}
        self.plant[key] = value

    def has(self, key: str) -> Any:
        return self.plant.get(key) if self.plant else None

    def set_cell(self, key: str, raw: Any) -> None:
        if self.cell is None:
            self.cell = {}
        self.cell[key] = raw


@dataclass(eq=False)
class Village:
    idx: int
    code: str
    name: str
    sub_code: str
    sub_name: str
    farming: bool
    households: list = field(default_factory=list)
    roles: set = field(default_factory=set)
    style: Any = None
    files: list = field(default_factory=list)
    latest: str | None = None


@dataclass(eq=False, slots=True)
class Household:
    key: int
    village: Village
    kind: str  # reg | removed | ordinary | foreign
    members: list
    hh_no: str | None = None
    status: str | None = None  # registry 脱贫状态 (清退 for removed)
    poor_attr: str | None = None
    ident_year: int | None = None
    exit_year: int | None = None
    applied: bool = False
    review: str = "未评议"
    main_cause: str = ""
    other_causes: tuple = ()
    food_ok: bool = True
    clothing_ok: bool = True
    education_ok: bool = True
    medical_ok: bool = True
    water_ok: bool = True
    housing: str = "A"
    net: int = 0  # cents, the truth
    wage: int = 0
    business: int = 0
    prop: int = 0
    transfer: int = 0  # the transfer income the rules use
    subs: list | None = None  # seven sub-items in cents, None = not written
    total_written: int | None = None  # 转移性收入合计 as written, None = empty
    expense: int = 0
    one_off: int = 0
    phone: str = ""
    note: str = ""
    declared_type: str = ""
    declared_status: str = ""
    declared_size: int | None = None  # None: the number of member rows written
    surveyed: bool = True  # False: a registered household the village missed (B9 漏户)
    extra_rows: list = field(default_factory=list)  # B3: someone else's member also written here
    no_member_rows: bool = False  # B4: the village forgot the members
    cell: dict = field(default_factory=dict)  # household column key -> raw value
    tags: set = field(default_factory=set)
    force_zero_wage: bool = False
    all_zero: bool = False
    unreadable_amount: bool = False  # B8: the truth cannot be read back from the file

    @property
    def head(self) -> Person:
        return self.members[0]

    @property
    def status_type(self) -> str:
        if self.kind == "reg":
            return S.HH_REGISTERED
        if self.kind == "removed":
            return S.HH_REMOVED
        return S.HH_ORDINARY

    @property
    def exited(self) -> bool:
        return self.kind == "reg" and self.status in S.EXITED_STATUSES

    def linked(self) -> list:
        """The member rows linked to this household in the village's file."""
        if self.no_member_rows:
            return list(self.extra_rows)
        return [p for p in self.members if p.in_survey and p.orphan_head is None] + self.extra_rows

    def fails(self) -> bool:
        return not (self.food_ok and self.clothing_ok and self.education_ok and self.medical_ok
                    and self.water_ok) or self.housing in S.DANGEROUS_HOUSING


# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------


def age_on(birth: dt.date, ref: dt.date) -> int:
    return ref.year - birth.year - ((ref.month, ref.day) < (birth.month, birth.day))


_LINE_CENTS: dict = {}


def below(net: int, line: Decimal, size: int) -> bool:
    """Exact, strict: net / size < line (net in cents)."""
    cents = _LINE_CENTS.get(line)
    if cents is None:
        cents = _LINE_CENTS[line] = int(line * 100)
    return net < cents * size


_W14, _W15, _W16 = ID_WEIGHTS[14:17]  # the weights of the three sequence digits


class IdMaker:
    """Distinct valid resident IDs (GB 11643 check character) across the whole district."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()
        self._sums: dict = {}  # area or birth date -> its part of the check sum

    def _sum(self, key, digits: str, offset: int) -> int:
        total = self._sums.get(key)
        if total is None:
            total = self._sums[key] = sum(int(c) * w for c, w in zip(digits, ID_WEIGHTS[offset:]))
        return total

    def make(self, area: str, birth: dt.date, male: bool) -> str:
        ymd = f"{birth.year:04d}{birth.month:02d}{birth.day:02d}"
        rng = self.rng
        fast = len(area) == 6 and area.isdigit() and len(ymd) == 8
        # check_char(first17), from the cached sums of the area and date digits
        base = self._sum(area, area, 0) + self._sum(birth, ymd, 6) if fast else 0
        while True:
            seq = 2 * rng.randrange(500) + 1 if male else 2 * rng.randrange(1, 500)
            first17 = f"{area}{ymd}{seq:03d}"
            if first17 not in self.used:
                self.used.add(first17)
                if fast:
                    total = base + _W14 * (seq // 100) + _W15 * (seq // 10 % 10) + _W16 * (seq % 10)
                    return first17 + ID_CHECK_CHARS[total % 11]
                return first17 + check_char(first17)


def _surname(rng: random.Random) -> str:
    """``rng.choices(SURNAMES, _SURNAME_WEIGHTS)[0]``: the same draw, the same name."""
    return SURNAMES[bisect.bisect(_SURNAME_CUM, rng.random() * _SURNAME_TOTAL, 0, len(SURNAMES) - 1)]


def person_name(rng: random.Random, male: bool, surname: str | None = None) -> str:
    sur = surname or _surname(rng)
    chars = MALE_CHARS if male else FEMALE_CHARS
    given = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.7 else "")
    return sur + given


_WEIGHT_TOTALS: dict = {}


def wchoice(rng: random.Random, pairs) -> Any:
    """A value of ``pairs`` ((value, weight), ...), drawn with one ``rng.random()``."""
    if pairs.__class__ is tuple:  # the fixed tables: their total once
        total = _WEIGHT_TOTALS.get(pairs)
        if total is None:
            total = _WEIGHT_TOTALS[pairs] = sum(w for _, w in pairs)
    else:
        total = sum(w for _, w in pairs)
    r = rng.random() * total
    for value, w in pairs:
        r -= w
        if r < 0:
            return value
    return pairs[-1][0]


# ------------------------------------------------------------------------------------------
# Village file styles
# ------------------------------------------------------------------------------------------

YESNO_STYLES = (("是", "否"), ("√", "×"), ("√", None), ("Y", "N"), ("有", "无"), (1, 0))


@dataclass
class Style:
    """How a village types its survey file: fixed in step 1, applied by ``render``."""

    yes: Any = "是"
    no: Any = "否"
    guarantee_no: Any = "否"  # for 两不愁三保障 a village never leaves 否 empty
    zero_empty: float = 0.3  # probability an amount of 0 is left empty
    amount_text: float = 0.0  # probability an amount is typed as text (元, thousands, spaces...)
    text_mess: float = 0.0  # stray spaces/full-width spaces/line breaks in text cells
    id_mess: float = 0.01  # repairable ID forms (spaces, full-width, x, apostrophe, 15 digits)
    id15: bool = False  # this village types some 15-digit first-generation numbers
    reorder: bool = False
    rename: bool = False
    extra_col: bool = False
    merge_ids: bool = False
    blank_rows: bool = False
    notes: bool = True
    header_copy: bool = False
    hh_no_number: bool = False
    phone_number: bool = False
    xls: bool = False
    reporter: str = ""
    date: str = "2019-04-26"


# ------------------------------------------------------------------------------------------
# The district
# ------------------------------------------------------------------------------------------


class District:
    """The truth of the sample district, as the steps build it up."""

    def __init__(self, households: int, seed: int, settings: Settings):
        self.n = max(200, int(households))
        self.seed = seed
        self.settings = settings
        self.ref = settings.reference_date
        self.scale = self.n / 8000
        self.ids = IdMaker(random.Random(f"{seed}:ids"))
        self.villages: list[Village] = []
        self.surveyed_villages: list[Village] = []
        self.households: list[Household] = []
        self.missed_households: list[Household] = []  # 漏户 (registered, not surveyed)

    def count(self, per8000: float, minimum: int = 1) -> int:
        """A count given for 8000 households, scaled to this district's size."""
        return max(minimum, round(per8000 * self.scale))

    def rng_for(self, part: str) -> random.Random:
        return random.Random(f"{self.seed}:{part}")

    def candidate(self, hh: Household) -> bool:
        """Meets the income or 三保障 condition of 附件2/3 (on the linked rows)."""
        size = len(hh.linked())
        if size == 0 or hh.unreadable_amount:
            return False
        return below(hh.net, self.settings.monitoring_line, size) or hh.fails()


# ------------------------------------------------------------------------------------------
# 1. Villages
# ------------------------------------------------------------------------------------------


def make_villages(d: District) -> None:
    """Villages and subdistricts, the roles a few villages play, and each village's file style."""
    rng = d.rng_for("villages")
    n_farm = max(8, round(d.n / 265))
    n_nonfarm = max(2, round(n_farm / 14))
    n_sub = max(5, math.ceil((n_farm + n_nonfarm) / 12))
    subs = list(REAL_SUBDISTRICTS)
    stems = list(SUB_STEMS)
    rng.shuffle(stems)
    i = 0
    while len(subs) < n_sub:
        stem = stems[i % len(stems)] + ("" if i < len(stems) else str(i // len(stems) + 1))
        suffix = "街道" if i % 3 else "镇"
        subs.append((f"{len(subs) + 1:03d}", stem + suffix))
        i += 1
    farm_per_sub = [0] * n_sub
    for k in range(n_farm):
        farm_per_sub[k % n_sub] += 1
    idx = 0
    district = d.settings.district_code
    for s, (scode, sname) in enumerate(subs):
        names = list(REAL_VILLAGES.get(scode, ()))
        taken = set(names)
        while len(names) < farm_per_sub[s]:
            name = rng.choice(VILLAGE_PREFIX) + rng.choice(VILLAGE_SUFFIX) + "村"
            if name not in taken:
                taken.add(name)
                names.append(name)
        for v in range(farm_per_sub[s]):
            code = f"{district}{scode}{201 + v:03d}"
            d.villages.append(Village(idx, code, names[v], f"{district}{scode}", sname, True))
            idx += 1
        if s < n_nonfarm:
            cname = sname.replace("街道", "").replace("镇", "") + "社区"
            d.villages.append(Village(idx, f"{district}{scode}001", cname, f"{district}{scode}", sname, False))
            idx += 1
    d.villages.sort(key=lambda v: v.code)
    farm = [v for v in d.villages if v.farming]
    # Roles: one 涉农 village sends nothing (B10); the others are surveyed.
    b10 = farm[len(farm) // 2 + 1]
    b10.roles.add("b10")
    surveyed = [v for v in farm if "b10" not in v.roles]
    d.surveyed_villages = surveyed
    pool = list(surveyed)
    rng.shuffle(pool)
    n_bunch = max(1, len(surveyed) // 30)
    roles = ["bunch"] * n_bunch + ["bunch_decoy"] * n_bunch + ["xls", "resubmit", "lock", "header_copy"]
    for v, role in zip(pool, roles):
        v.roles.add(role)
    # the corrupt file sits in the folder of a village that also has a good file
    pool[-1].roles.add("corrupt")
    # styles
    for k, v in enumerate(surveyed):
        st = Style()
        yes, no = YESNO_STYLES[0] if k % 3 == 0 else YESNO_STYLES[1 + (k // 3 + k) % 5]
        if k < len(YESNO_STYLES):
            yes, no = YESNO_STYLES[(k + 1) % len(YESNO_STYLES)]
        st.yes, st.no = yes, no
        st.guarantee_no = "×" if no is None else no
        messy = k % 3 == 1 or k < 4
        st.amount_text = 0.12 if messy else 0.0
        st.text_mess = 0.05 if messy or k % 4 == 2 else 0.0
        st.id_mess = 0.03 if k % 2 else 0.01
        st.id15 = k % 4 == 3 or k == 0
        st.reorder = k % 4 == 1
        st.rename = k % 4 == 2 or k == 0
        st.extra_col = k % 5 == 3
        st.merge_ids = k % 3 == 2
        st.blank_rows = k % 3 == 0
        st.notes = k % 2 == 0 or k < 3
        st.header_copy = "header_copy" in v.roles
        st.hh_no_number = k % 5 == 1
        st.phone_number = k % 6 == 4
        st.xls = "xls" in v.roles
        st.reporter = person_name(rng, rng.random() < 0.5)
        st.date = f"2019-04-{rng.randint(18, 29):02d}"
        v.style = st
    # The three failures of issue #11, one village each (no random draw: the rest stays as it was):
    # sheets named with extra words beside an instructions sheet and an empty Sheet3; a blank line
    # inside a household's block of merged 户主身份证号 cells; a 合计 row under the households.
    plain = [v for v in surveyed if not v.roles & {"xls", "resubmit", "corrupt"}]
    merged = [v for v in plain if v.style.merge_ids]
    if merged:
        merged[0].roles.add("blank_in_merge")
    rest = [v for v in plain if not v.roles & {"blank_in_merge"}]
    for v, role in zip(rest, ("sheet_names", "totals")):
        v.roles.add(role)


# ------------------------------------------------------------------------------------------
# 2. Households and people
# ------------------------------------------------------------------------------------------

FEMALE_RELATIONS = ("之女", "之儿媳", "之孙女", "之外孙女", "之母", "之岳母", "之婆婆", "之祖母")


def make_households(d: District) -> None:
    """The households of every surveyed village, and the registered ones the survey missed."""
    rng = d.rng_for("households")
    census = _Census(d, rng)
    surveyed = d.surveyed_villages
    weights = [rng.uniform(0.6, 1.4) for _ in surveyed]
    tw = sum(weights)
    counts = [max(40, round(d.n * w / tw)) for w in weights]
    size_pairs = ((1, 24), (2, 34), (3, 21), (4, 12), (5, 6), (6, 3))
    for v, n in zip(surveyed, counts):
        for _ in range(n):
            r = rng.random()
            kind = "reg" if r < 0.25 else "removed" if r < 0.28 else "foreign" if r < 0.30 else "ordinary"
            census.household(v, kind, wchoice(rng, size_pairs))
    # A registered household missed by the survey (漏户, B9), and a 清退 household that was
    # not surveyed either (no B9: the rule is for households whose status is not 清退).
    for k in range(d.count(1)):
        v = surveyed[(k * 7 + 3) % len(surveyed)]
        hh = census.household(v, "reg", 2, add=False)
        hh.status = S.STATUS_EXITED_POLICY
        hh.surveyed = False
        hh.tags.add("missed")
        d.missed_households.append(hh)
    for k in range(d.count(1)):
        v = surveyed[(k * 5 + 1) % len(surveyed)]
        hh = census.household(v, "removed", 1, add=False)
        hh.surveyed = False
        hh.tags.add("missed_removed")
        d.missed_households.append(hh)


class _Census:
    """Makes households and their people from one RNG, numbering households and 户编号 in order."""

    def __init__(self, d: District, rng: random.Random):
        self.d = d
        self.rng = rng
        self.ref = d.ref
        self.district = d.settings.district_code
        self._birth_start: dict[int, int] = {}  # age -> first possible birth day (ordinal)
        self.hh_counter = 0
        self.hhno_counter = 0

    def household(self, v: Village, kind: str, size: int, add: bool = True) -> Household:
        rng = self.rng
        district = self.district
        comp = self._composition(size)
        poor = kind == "reg"
        foreign = kind == "foreign"
        area = rng.choice(OTHER_AREAS) if foreign else district
        head_male = rng.random() < 0.85
        members: list[Person] = []
        surname = _surname(rng)
        head_sex = "男" if head_male else "女"
        for rel, age in comp:
            if rel == "户主":
                sex = head_sex
            elif rel == "配偶":
                sex = "女" if head_male else "男"
            elif rel in FEMALE_RELATIONS:
                sex = "女"
            else:
                sex = "男"
            # the head's children carry the father's surname
            sname = None
            if rel in ("户主",):
                sname = surname
            elif rel in ("之子", "之女", "之孙子", "之孙女") and head_male:
                sname = surname
            parea = area
            if not foreign and rel in ("配偶", "之儿媳") and rng.random() < 0.08:
                parea = rng.choice(OTHER_AREAS)
            members.append(self._person(rel, sex, age, parea, sname, poor))
        self.hh_counter += 1
        hh = Household(self.hh_counter, v, kind, members)
        hh.phone = _phone(rng)
        if kind in ("reg", "removed"):
            self.hhno_counter += rng.randint(1, 40)
            hh.hh_no = f"{district}{self.hhno_counter:08d}"
            if kind == "reg":
                hh.status = wchoice(rng, ((S.STATUS_NOT_EXITED, 10), (S.STATUS_EXITED_POLICY, 55),
                                           (S.STATUS_EXITED_NO_POLICY, 25), (S.STATUS_RETURNED, 10)))
                hh.ident_year = wchoice(rng, ((2014, 45), (2015, 20), (2016, 15), (2017, 12), (2018, 8)))
                if hh.status in S.EXITED_STATUSES:
                    hh.exit_year = rng.randint(max(2015, hh.ident_year), 2018)
                if hh.ident_year == 2018 and hh.status in S.EXITED_STATUSES:
                    hh.exit_year = 2018
            else:
                hh.status = S.STATUS_REMOVED
                hh.ident_year = rng.randint(2014, 2016)
            for p in members:
                # newborns are often not yet in the national system
                p.registered = not (p.age <= 1 and rng.random() < 0.5)
        # focus-group attributes that live on the household
        if kind == "reg" and rng.random() < 0.3 or kind != "reg" and rng.random() < 0.02:
            for p in members:
                p.dibao = True
        if size == 1 and members[0].age >= 60 and (kind == "reg" and rng.random() < 0.4):
            members[0].tekun = True
            members[0].dibao = False
        if kind in ("reg", "removed"):
            hh.poor_attr = ("特困供养贫困户" if members[0].tekun
                            else "低保贫困户" if members[0].dibao else "一般贫困户")
        # guarantees
        hh.housing = wchoice(rng, (("A", 40), ("B", 52), ("C", 6), ("D", 2)) if poor
                              else (("A", 60), ("B", 38.5), ("C", 1.2), ("D", 0.3)))
        hh.water_ok = rng.random() > (0.015 if poor else 0.004)
        if poor and rng.random() < 0.004:
            hh.food_ok = False
        if poor and rng.random() < 0.003:
            hh.clothing_ok = False
        if rng.random() < 0.003:
            hh.medical_ok = False
            members[-1].insured = False
        kids = [p for p in members if 6 <= p.age <= 15]
        if kids and rng.random() < (0.03 if poor else 0.005):
            hh.education_ok = False
            kids[0].school = "非在校生"
            kids[0].labor = "无劳动力"
        # registry cause (建档立卡 households were identified with one)
        if kind in ("reg", "removed"):
            hh.main_cause = draw_cause(rng, hh)
            if rng.random() < 0.3:
                hh.other_causes = draw_other_causes(rng, hh.main_cause)
        # income: a per-capita target, the household's true net income in cents
        pc = _draw_pc(rng, kind, hh.status)
        hh.net = round(pc * size) * 100
        hh.one_off = rng.randint(5, 200) * 100 if rng.random() < (0.12 if poor else 0.04) else 0
        hh.declared_type = hh.status_type
        hh.declared_status = hh.status or ""
        hh.note = ""
        if add:
            v.households.append(hh)
            self.d.households.append(hh)
        return hh

    def _person(self, relation: str, sex: str, age: int, area: str, surname: str | None, poor: bool) -> Person:
        rng = self.rng
        birth = self._birth(max(0, age))
        real_age = age_on(birth, self.ref)
        male = sex == "男"
        pid = self.d.ids.make(area, birth, male)
        p = Person(pid, person_name(rng, male, surname), sex, birth, real_age, relation)
        draw_attributes(rng, p, poor)
        return p

    def _birth(self, age: int) -> dt.date:
        start = self._birth_start.get(age)
        if start is None:
            ref = self.ref
            start = self._birth_start[age] = dt.date(ref.year - age - 1, ref.month, min(ref.day, 28)).toordinal() + 1
        return dt.date.fromordinal(start + self.rng.randrange(365))

    def _composition(self, size: int) -> list[tuple[str, int]]:
        """(relation, age) of each member, head first; sexes follow the relation."""
        rng = self.rng

        def child_age(parent: int) -> int:
            return max(0, parent - rng.randint(22, 34))

        if size == 1:
            return [("户主", rng.randint(40, 88) if rng.random() < 0.7 else rng.randint(25, 60))]
        r = rng.random()
        if size == 2:
            if r < 0.7:
                h = rng.randint(30, 86)
                return [("户主", h), ("配偶", max(20, h + rng.randint(-6, 4)))]
            if r < 0.9:
                h = rng.randint(40, 78)
                return [("户主", h), ("之子" if rng.random() < 0.55 else "之女", child_age(h))]
            h = rng.randint(30, 58)
            return [("户主", h), ("之母" if rng.random() < 0.6 else "之父", min(98, h + rng.randint(22, 32)))]
        h = rng.randint(28, 62)
        out = [("户主", h), ("配偶", max(20, h + rng.randint(-6, 4)))]
        if size == 3:
            if r < 0.75:
                out.append(("之子" if rng.random() < 0.52 else "之女", child_age(h)))
            else:
                out.append(("之母" if rng.random() < 0.6 else "之父", min(98, h + rng.randint(22, 32))))
            return out
        if size == 4:
            out.append(("之子" if rng.random() < 0.52 else "之女", child_age(h)))
            if r < 0.7:
                out.append(("之子" if rng.random() < 0.52 else "之女", child_age(h)))
            else:
                out.append(("之母" if rng.random() < 0.6 else "之父", min(98, h + rng.randint(22, 32))))
            return out
        if size == 5 and r < 0.5:
            out.append(("之子", child_age(h)))
            out.append(("之女" if rng.random() < 0.5 else "之子", child_age(h)))
            out.append(("之母", min(98, h + rng.randint(22, 32))))
            return out
        # three generations: head 50–75, son and daughter-in-law, grandchildren
        h = rng.randint(50, 75)
        out = [("户主", h), ("配偶", max(40, h + rng.randint(-5, 3)))]
        son = max(22, h - rng.randint(22, 30))
        out.append(("之子", son))
        out.append(("之儿媳", max(20, son + rng.randint(-4, 3))))
        for _ in range(size - 4):
            out.append(("之孙子" if rng.random() < 0.52 else "之孙女", max(0, son - rng.randint(22, 32))))
        return out


def draw_attributes(rng: random.Random, p: Person, poor: bool) -> None:
    """Ethnicity, education and school, health and disability, labour and work of ``p``, for
    its age (health problems more likely in a poor household)."""
    a = p.age
    p.ethnicity = wchoice(rng, ETHNIC_WEIGHTS)
    if a < 3:
        p.school, p.education = "非在校生", "学龄前儿童"
    elif a < 6:
        p.school, p.education = ("学前教育" if rng.random() < 0.75 else "非在校生"), "学龄前儿童"
    elif a <= 11:
        p.school, p.education = "小学", "小学"
    elif a <= 14:
        p.school, p.education = "七至九年级", "初中"
    elif a <= 17:
        r = rng.random()
        p.school, p.education = ("高中", "高中") if r < 0.55 else ("中职", "高中") if r < 0.8 else ("非在校生", "初中")
    elif a <= 21:
        r = rng.random()
        if r < 0.25:
            p.school, p.education = "大专及以上", "大专及以上"
        elif r < 0.35:
            p.school, p.education = "高职", "大专及以上"
        else:
            p.school, p.education = "非在校生", ("高中" if r < 0.7 else "初中")
    else:
        p.school = "非在校生"
        if a >= 70:
            p.education = wchoice(rng, (("文盲或半文盲", 40), ("小学", 45), ("初中", 15)))
        elif a >= 50:
            p.education = wchoice(rng, (("文盲或半文盲", 5), ("小学", 35), ("初中", 45), ("高中", 15)))
        else:
            p.education = wchoice(rng, (("小学", 5), ("初中", 50), ("高中", 30), ("大专及以上", 15)))
    mult = 1.8 if poor else 1.0
    if a >= 60:
        chronic, serious = 0.22, 0.04
    elif a >= 40:
        chronic, serious = 0.07, 0.015
    else:
        chronic, serious = 0.01, 0.004
    health = []
    r = rng.random()
    if r < serious * mult:
        health.append("患有大病")
    elif r < (serious + chronic) * mult:
        health.append("长期慢性病")
    if a >= 16 and rng.random() < (0.05 if poor else 0.012):
        p.disabled = True
        p.dis_type = wchoice(rng, (("肢体", 45), ("视力", 12), ("听力", 12), ("言语", 4), ("智力", 10),
                                     ("精神", 10), ("多重", 7)))
        p.dis_grade = wchoice(rng, (("一级", 10), ("二级", 25), ("三级", 30), ("四级", 35)))
        health.append("残疾")
    p.health = health
    student = p.school not in S.NOT_IN_SCHOOL
    if a < 16 or student:
        p.labor = "无劳动力"
    elif a >= 75:
        p.labor = "丧失劳动力" if rng.random() < 0.5 else "无劳动力"
    elif "患有大病" in health or (p.disabled and p.dis_grade in ("一级", "二级")):
        p.labor = "丧失劳动力"
    elif a >= 60 or health:
        p.labor = "弱劳动力或半劳动力"
    else:
        p.labor = "技能劳动力" if rng.random() < 0.25 else "普通劳动力"
    if p.labor in ("普通劳动力", "技能劳动力") and 18 <= a <= 60 and rng.random() < (0.45 if poor else 0.6):
        p.work = wchoice(rng, (("乡镇内务工", 30), ("县内务工", 30), ("县外省内务工", 25), ("省外务工", 15)))
        p.work_months = rng.randint(3, 12)
    elif p.labor == "弱劳动力或半劳动力" and a <= 60 and rng.random() < 0.1:
        p.work, p.work_months = "乡镇内务工", rng.randint(2, 6)
    p.insured = rng.random() > 0.004


def _phone(rng) -> str:
    if rng.random() < 0.85:
        return "1" + rng.choice("3578") + f"{rng.randrange(10 ** 9):09d}"
    return f"0414-{rng.randint(2, 8)}{rng.randrange(10 ** 6):06d}"


def draw_cause(rng, hh: Household) -> str:
    """A main 致贫原因, likelier where a member's illness, disability or schooling explains it."""
    members = hh.members
    options: list[tuple[str, float]] = [("缺技术", 8), ("缺资金", 8), ("缺劳力", 6), ("自身发展动力不足", 4),
                                        ("因灾", 2), ("缺土地", 2), ("交通条件落后", 1), ("因婚", 0.5),
                                        ("因丧", 0.5), ("缺水", 0.5)]
    if any(h in S.SERIOUS_HEALTH for p in members for h in p.health):
        options.append(("因病", 30))
    if any(p.disabled for p in members):
        options.append(("因残", 18))
    if any(p.school not in S.NOT_IN_SCHOOL for p in members):
        options.append(("因学", 8))
    return wchoice(rng, options)


def draw_other_causes(rng, main: str) -> tuple:
    pool = [c for c in ("缺技术", "缺资金", "缺劳力", "因灾", "自身发展动力不足", "交通条件落后") if c != main]
    return tuple(rng.sample(pool, rng.randint(1, 2)))


def _draw_pc(rng, kind: str, status: str | None) -> float:
    """A per-capita net income in yuan: a few households in the bands below the lines, the
    rest log-normal above them."""
    r = rng.random()
    if kind == "reg" and status in (S.STATUS_NOT_EXITED, S.STATUS_RETURNED):
        bands, median = ((0.30, 1500, 4000), (0.50, 4000, 5000)), 6500
    elif kind == "reg":
        bands, median = ((0.09, 1800, 4000), (0.16, 4000, 4500), (0.24, 4500, 5000)), 8500
    elif kind == "removed":
        bands, median = ((0.05, 800, 4000), (0.08, 4000, 4500), (0.12, 4500, 5000)), 11000
    else:
        bands, median = ((0.02, 300, 4000), (0.032, 4000, 4500), (0.046, 4500, 5000)), 15000
    for cum, lo, hi in bands:
        if r < cum:
            return rng.uniform(lo, hi)
    while True:
        x = rng.lognormvariate(math.log(median), 0.45)
        if 5000 <= x < 200000:
            return x


# ------------------------------------------------------------------------------------------
# 7. Income items
# ------------------------------------------------------------------------------------------


def split_income(d: District, hh: Household) -> None:
    """The household's income items and transfer sub-items, adding up to its true net income
    (or, where a W4 problem was planted, a 转移性收入合计 that does not add up)."""
    rng = random.Random(f"{d.seed}:income:{hh.key}")
    members = hh.members
    net = hh.net
    if hh.all_zero:
        hh.wage = hh.business = hh.prop = hh.transfer = hh.expense = 0
        hh.subs, hh.total_written = None, 0
        return
    workers = any(p.work != S.NOT_WORKING for p in members)
    expense = rng.randint(5, 60) * 10000 if rng.random() < 0.3 else 0
    if net < 0:
        gross = rng.randint(10, 50) * 10000
        expense = gross - net
    else:
        gross = net + expense
    if workers and not hh.force_zero_wage:
        w, b = rng.uniform(0.5, 0.85), rng.uniform(0, 0.3 if expense else 0.1)
    else:
        w, b = 0.0, rng.uniform(0.2, 0.6) if expense else rng.uniform(0, 0.3)
    p = rng.uniform(0, 0.05) if rng.random() < 0.3 else 0.0
    if w + b + p > 0.95:  # the shares must leave a transfer ≥ 0: no amount is ever negative
        w, b, p = (x * 0.95 / (w + b + p) for x in (w, b, p))
    wage = int(gross * w) // 100 * 100
    if workers and not hh.force_zero_wage and wage == 0 and gross >= 100:
        wage = 100
    business = int(gross * b) // 100 * 100
    prop = int(gross * p) // 100 * 100
    transfer = gross - wage - business - prop
    if hh.force_zero_wage:
        business += wage
        wage = 0
    if expense and business < expense // 2 and transfer > expense:
        shift = min(transfer, expense) // 100 * 100
        business += shift
        transfer -= shift
    hh.wage, hh.business, hh.prop, hh.transfer, hh.expense = wage, business, prop, transfer, expense
    # transfer sub-items
    mode_total_only = rng.random() < 0.35
    if transfer == 0:
        hh.subs, hh.total_written = None, 0
        return
    if mode_total_only and not hh.tags & {"w4", "w4_one_yuan"}:
        hh.subs, hh.total_written = None, transfer
        return
    slots = []
    if any(m.dibao for m in members):
        slots.append(0)
    if any(m.tekun for m in members):
        slots.append(1)
    if any(m.age >= 60 for m in members):
        slots.append(2)
    if rng.random() < 0.4:
        slots.append(3)
    if rng.random() < 0.1:
        slots.append(4)
    if any(m.age >= 60 for m in members) and rng.random() < 0.3:
        slots.append(5)
    slots.append(6)
    subs = [0] * 7
    remaining = transfer
    weights = [rng.uniform(0.2, 1.0) for _ in slots]
    tw = sum(weights)
    for s, wt in zip(slots[:-1], weights[:-1]):
        amt = int(transfer * wt / tw) // 100 * 100
        subs[s] = amt
        remaining -= amt
    subs[slots[-1]] += remaining
    hh.subs = subs
    if "w4" in hh.tags:
        delta = rng.randint(50, 600) * 100 * len(hh.linked() or [0])
        hh.total_written = transfer + (delta if rng.random() < 0.75 or transfer <= delta else -delta)
    elif "w4_one_yuan" in hh.tags:
        hh.total_written = transfer + (100 if rng.random() < 0.5 else -100)
    else:
        hh.total_written = transfer
