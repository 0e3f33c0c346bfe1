"""The synthetic sample district (南芬区 210505): a complete data root and its answer key.

``generate(out, households, seed)`` writes, under ``out``, everything inputs.md describes —
``villages.csv``, ``registry/*.xlsx``, ``surveys/<办事处名称>/<file>.xlsx|.xls`` and
``departments/<dept>/*`` for all nine departments (no ``exceptions.csv``) — carrying the mess
real village and department files carry, and writes the answer key to ``out/.answer_key.json``
(a dot-file, so the pipeline never treats it as input).

The answer key is computed from the generator's own ground truth (the people, households and
department records it made), by the rules of rules.md with the given Settings, and never by
pipeline code. Same seed and size give byte-identical files (xlsx creation time, zip entry
times and file modification times are fixed), however many worker processes write them.

Order of work (each step only looks at what earlier steps fixed):

1. villages and subdistricts; the roles a few villages play (no survey, corrected resubmission,
   legacy .xls, bunching, ...);
2. households and people (registry status, members, health, school, work, guarantees), each
   household's true net income in cents;
3. planted incomes: exact boundary households, a 算账式脱贫 village and a near-miss village;
4. planted data problems (B1–B9, warnings) on a few percent of households;
5. no accidental bunching elsewhere (households nudged until no other village triggers W6);
6. participation (是否申请纳入, 民主评议结果, 主要致贫原因) for the households that need it;
7. planted cross-check hits and decoys (departments.py), then each household's income items;
8. the files, written by forked worker processes (each file from the finished model and its own
   seeded RNG, so the bytes never depend on which worker writes it or when); meanwhile the answer
   key, evaluating the rules on the truth, and last the rows it cites, as the workers report them.

Large districts (a million people) are the benchmark's: the model is built once in this process,
the xlsx cells go through ``xlsxfast`` (XlsxWriter's output, byte for byte, at a fraction of the
cost per cell) and a worker holds one workbook at a time.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import datetime as dt
import gc
import io
import itertools
import json
import math
import multiprocessing
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from pipeline import schema as S
from pipeline.rules.ids import CHECK_CHARS as ID_CHECK_CHARS
from pipeline.rules.ids import WEIGHTS as ID_WEIGHTS
from pipeline.rules.ids import check_char
from pipeline.sample import departments as dep
from pipeline.sample import xlsxfast
from pipeline.settings import Settings

ANSWER_KEY = ".answer_key.json"
_TASKS_PER_WORKER = 200  # a worker is replaced after this many files (bounds copy-on-write growth)
_FORKED: Generator | None = None  # the generator a forked worker writes files for
CREATED = dt.datetime(2019, 4, 26, 9, 0, 0)  # fixed xlsx creation time
TZ = dt.timezone(dt.timedelta(hours=8))

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
# Model
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

FULLWIDTH = str.maketrans("0123456789.,-X", "０１２３４５６７８９．，－Ｘ")


def age_on(birth: dt.date, ref: dt.date) -> int:
    return ref.year - birth.year - ((ref.month, ref.day) < (birth.month, birth.day))


def cents_str(c: int) -> str:
    sign = "-" if c < 0 else ""
    c = abs(c)
    return f"{sign}{c // 100}.{c % 100:02d}"


def per_capita(net: int, size: int) -> Decimal:
    return (Decimal(net) / Decimal(100 * size)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


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


_WEIGHT_TOTALS: dict = {}


def _surname(rng: random.Random) -> str:
    """``rng.choices(SURNAMES, _SURNAME_WEIGHTS)[0]``: the same draw, the same name."""
    return SURNAMES[bisect.bisect(_SURNAME_CUM, rng.random() * _SURNAME_TOTAL, 0, len(SURNAMES) - 1)]


def _wchoice(rng: random.Random, pairs) -> Any:
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
# The generator
# ------------------------------------------------------------------------------------------


class Generator:
    def __init__(self, out: Path, households: int, seed: int, settings: Settings, workers: int | None = None):
        self.out = Path(out)
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self.n = max(200, int(households))
        self.seed = seed
        self.settings = settings
        self.ref = settings.reference_date
        self.scale = self.n / 8000
        self._birth_start: dict[int, int] = {}  # age -> first possible birth day (ordinal)
        self.ids = IdMaker(random.Random(f"{seed}:ids"))
        self.villages: list[Village] = []
        self.households: list[Household] = []
        self.missed_households: list[Household] = []  # 漏户 (registered, not surveyed)
        self.plants: list[dict] = []  # problems planted in files: resolved to rows when written
        self.hh_counter = 0
        self.hhno_counter = 0
        self.ignored: list[str] = []
        self.unreadable: list[str] = []
        self.rowmap: dict = {}  # (sheet, hh.key, pid|None) -> Excel row, for the rows the answer key cites
        self._needed_rows: set = set()  # the keys of those rows
        self._registry: tuple | None = None  # (header, rows of each file) until the files are written
        self.book = dep.Extracts(settings, random.Random(f"{seed}:departments"), self.ids, self)
        self.mtime_base = dt.datetime(2019, 4, 26, 17, 0, tzinfo=TZ).timestamp()

    # -- counts that scale ------------------------------------------------------------------
    def count(self, per8000: float, minimum: int = 1) -> int:
        return max(minimum, round(per8000 * self.scale))

    # ---------------------------------------------------------------------------------------
    def run(self) -> dict:
        self._prepare_out()
        self._make_villages()
        self._make_households()
        self._plant_incomes()
        self._plant_problems()
        self._no_accidental_bunching()
        self._participation()
        self.book.plant(self.rng_for("plant"))
        for hh in self.households + self.missed_households:
            self._split_income(hh)
        self.book.normal_records(self.households)
        self.book.unrelated(self.count(1200, 60))
        self._write_villages_csv()
        # Every other file depends only on the finished model and its own seeded RNG, so the
        # files are planned here (names, RNG names, registry rows) and written by workers.
        jobs = self._plan_registry()
        jobs += self._plan_departments()
        jobs += self._plan_surveys()
        warnings = self._warnings()
        # the rows the key cites (the workers report only these)
        self._needed_rows = {e["row"] for e in warnings}
        for pl in self.plants:
            self._needed_rows.add((S.SHEET_HOUSEHOLDS, pl["hh"].key, None))
            if pl["person"] is not None:
                self._needed_rows.add((S.SHEET_MEMBERS, pl["hh"].key, pl["person"].pid))
        # the answer key is worked out while the workers write (it needs only the model; the
        # rows it cites are filled in from what the workers report, when they are done)
        path = self.out / ANSWER_KEY
        found: list = []

        def meanwhile():
            found.append(self._answer_key(warnings))
            write_json_head(path, found[0][0], stream="households")  # all before "problems" is final

        self._run_jobs(jobs, meanwhile=meanwhile)
        self._registry = None  # written: free the rows
        key = self._finish_key(*found[0])
        write_json_tail(path, key, stream="households")
        self._touch(path, 0)
        return key

    def rng_for(self, part: str) -> random.Random:
        return random.Random(f"{self.seed}:{part}")

    def _prepare_out(self) -> None:
        out = self.out
        if out.exists() and any(not p.name.startswith(".") for p in out.iterdir()):  # .gitkeep is no data
            if not (out / ANSWER_KEY).exists():
                raise FileExistsError(f"{out} is not empty and holds no earlier sample; choose an empty folder")
            for name in (S.REGISTRY_DIR, S.SURVEYS_DIR, S.DEPARTMENTS_DIR):
                if (out / name).exists():
                    shutil.rmtree(out / name)
            for name in (S.VILLAGES_FILE, ANSWER_KEY):
                if (out / name).exists():
                    (out / name).unlink()
        out.mkdir(parents=True, exist_ok=True)

    def _touch(self, path: Path, offset_minutes: float) -> None:
        t = self.mtime_base + offset_minutes * 60
        os.utime(path, (t, t))

    # ---------------------------------------------------------------------------------------
    # 1. Villages
    # ---------------------------------------------------------------------------------------
    def _make_villages(self) -> None:
        rng = self.rng_for("villages")
        n_farm = max(8, round(self.n / 265))
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
        district = self.settings.district_code
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
                self.villages.append(Village(idx, code, names[v], f"{district}{scode}", sname, True))
                idx += 1
            if s < n_nonfarm:
                cname = sname.replace("街道", "").replace("镇", "") + "社区"
                self.villages.append(Village(idx, f"{district}{scode}001", cname, f"{district}{scode}", sname, False))
                idx += 1
        self.villages.sort(key=lambda v: v.code)
        farm = [v for v in self.villages if v.farming]
        # Roles: one 涉农 village sends nothing (B10); the others are surveyed.
        b10 = farm[len(farm) // 2 + 1]
        b10.roles.add("b10")
        surveyed = [v for v in farm if "b10" not in v.roles]
        self.surveyed_villages = surveyed
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
            st.reporter = self._name(rng, rng.random() < 0.5)
            st.date = f"2019-04-{rng.randint(18, 29):02d}"
            v.style = st

    # ---------------------------------------------------------------------------------------
    # 2. Households and people
    # ---------------------------------------------------------------------------------------
    def _name(self, rng: random.Random, male: bool, surname: str | None = None) -> str:
        sur = surname or _surname(rng)
        chars = MALE_CHARS if male else FEMALE_CHARS
        given = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.7 else "")
        return sur + given

    def _birth(self, rng: random.Random, age: int) -> dt.date:
        start = self._birth_start.get(age)
        if start is None:
            ref = self.ref
            start = self._birth_start[age] = dt.date(ref.year - age - 1, ref.month, min(ref.day, 28)).toordinal() + 1
        return dt.date.fromordinal(start + rng.randrange(365))

    def _person(self, rng, relation: str, sex: str, age: int, area: str, surname: str | None, poor: bool) -> Person:
        birth = self._birth(rng, max(0, age))
        real_age = age_on(birth, self.ref)
        male = sex == "男"
        pid = self.ids.make(area, birth, male)
        p = Person(pid, self._name(rng, male, surname), sex, birth, real_age, relation)
        self._attributes(rng, p, poor)
        return p

    def _attributes(self, rng: random.Random, p: Person, poor: bool) -> None:
        a = p.age
        p.ethnicity = _wchoice(rng, ETHNIC_WEIGHTS)
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
                p.education = _wchoice(rng, (("文盲或半文盲", 40), ("小学", 45), ("初中", 15)))
            elif a >= 50:
                p.education = _wchoice(rng, (("文盲或半文盲", 5), ("小学", 35), ("初中", 45), ("高中", 15)))
            else:
                p.education = _wchoice(rng, (("小学", 5), ("初中", 50), ("高中", 30), ("大专及以上", 15)))
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
            p.dis_type = _wchoice(rng, (("肢体", 45), ("视力", 12), ("听力", 12), ("言语", 4), ("智力", 10),
                                         ("精神", 10), ("多重", 7)))
            p.dis_grade = _wchoice(rng, (("一级", 10), ("二级", 25), ("三级", 30), ("四级", 35)))
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
            p.work = _wchoice(rng, (("乡镇内务工", 30), ("县内务工", 30), ("县外省内务工", 25), ("省外务工", 15)))
            p.work_months = rng.randint(3, 12)
        elif p.labor == "弱劳动力或半劳动力" and a <= 60 and rng.random() < 0.1:
            p.work, p.work_months = "乡镇内务工", rng.randint(2, 6)
        p.insured = rng.random() > 0.004

    def _composition(self, rng: random.Random, size: int) -> list[tuple[str, int]]:
        """(relation, age) of each member, head first; sexes follow the relation."""
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

    _FEMALE_REL = ("之女", "之儿媳", "之孙女", "之外孙女", "之母", "之岳母", "之婆婆", "之祖母")

    def _make_households(self) -> None:
        rng = self.rng_for("households")
        surveyed = self.surveyed_villages
        weights = [rng.uniform(0.6, 1.4) for _ in surveyed]
        tw = sum(weights)
        counts = [max(40, round(self.n * w / tw)) for w in weights]
        size_pairs = ((1, 24), (2, 34), (3, 21), (4, 12), (5, 6), (6, 3))
        district = self.settings.district_code
        for v, n in zip(surveyed, counts):
            for _ in range(n):
                r = rng.random()
                kind = "reg" if r < 0.25 else "removed" if r < 0.28 else "foreign" if r < 0.30 else "ordinary"
                self._new_household(rng, v, kind, _wchoice(rng, size_pairs), district)
        # A registered household missed by the survey (漏户, B9), and a 清退 household that was
        # not surveyed either (no B9: the rule is for households whose status is not 清退).
        for k in range(self.count(1)):
            v = surveyed[(k * 7 + 3) % len(surveyed)]
            hh = self._new_household(rng, v, "reg", 2, district, add=False)
            hh.status = S.STATUS_EXITED_POLICY
            hh.surveyed = False
            hh.tags.add("missed")
            self.missed_households.append(hh)
        for k in range(self.count(1)):
            v = surveyed[(k * 5 + 1) % len(surveyed)]
            hh = self._new_household(rng, v, "removed", 1, district, add=False)
            hh.surveyed = False
            hh.tags.add("missed_removed")
            self.missed_households.append(hh)

    def _new_household(self, rng, v: Village, kind: str, size: int, district: str, add: bool = True) -> Household:
        comp = self._composition(rng, size)
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
            elif rel in self._FEMALE_REL:
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
            members.append(self._person(rng, rel, sex, age, parea, sname, poor))
        self.hh_counter += 1
        hh = Household(self.hh_counter, v, kind, members)
        hh.phone = self._phone(rng)
        if kind in ("reg", "removed"):
            self.hhno_counter += rng.randint(1, 40)
            hh.hh_no = f"{district}{self.hhno_counter:08d}"
            if kind == "reg":
                hh.status = _wchoice(rng, ((S.STATUS_NOT_EXITED, 10), (S.STATUS_EXITED_POLICY, 55),
                                           (S.STATUS_EXITED_NO_POLICY, 25), (S.STATUS_RETURNED, 10)))
                hh.ident_year = _wchoice(rng, ((2014, 45), (2015, 20), (2016, 15), (2017, 12), (2018, 8)))
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
        hh.housing = _wchoice(rng, (("A", 40), ("B", 52), ("C", 6), ("D", 2)) if poor
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
            hh.main_cause = self._cause(rng, hh)
            if rng.random() < 0.3:
                hh.other_causes = self._other_causes(rng, hh.main_cause)
        # income: a per-capita target, the household's true net income in cents
        pc = self._draw_pc(rng, kind, hh.status)
        hh.net = round(pc * size) * 100
        hh.one_off = rng.randint(5, 200) * 100 if rng.random() < (0.12 if poor else 0.04) else 0
        hh.declared_type = hh.status_type
        hh.declared_status = hh.status or ""
        hh.note = ""
        if add:
            v.households.append(hh)
            self.households.append(hh)
        return hh

    def _phone(self, rng) -> str:
        if rng.random() < 0.85:
            return "1" + rng.choice("3578") + f"{rng.randrange(10 ** 9):09d}"
        return f"0414-{rng.randint(2, 8)}{rng.randrange(10 ** 6):06d}"

    def _cause(self, rng, hh: Household) -> str:
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
        return _wchoice(rng, options)

    def _other_causes(self, rng, main: str) -> tuple:
        pool = [c for c in ("缺技术", "缺资金", "缺劳力", "因灾", "自身发展动力不足", "交通条件落后") if c != main]
        return tuple(rng.sample(pool, rng.randint(1, 2)))

    def _draw_pc(self, rng, kind: str, status: str | None) -> float:
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

    # ---------------------------------------------------------------------------------------
    # 3. Planted incomes: exact boundaries and bunching
    # ---------------------------------------------------------------------------------------
    def _plant_incomes(self) -> None:
        rng = self.rng_for("incomes")
        special = {"bunch", "bunch_decoy"}
        normal = [hh for hh in self.households if not (special & hh.village.roles)]
        # exact boundaries: (per-capita in cents or None, size, net in cents)
        exact = []
        st = self.settings
        lines = (st.poverty_line, st.identification_line, st.monitoring_line)
        for line in lines:
            cents = int(line * 100)
            for size in (1, 2):
                exact.append((size, (cents - 1) * size))  # e.g. 4499.99
                exact.append((size, cents * size))  # e.g. 4500.00
        # per-capita that shows as the line (rounded half-up) but lies one side of it:
        # 13499.99 / 3 = 4499.9966… shows 4500.00 and is below; 13500.01 / 3 is not
        for line in lines:
            cents = int(line * 100) * 3
            exact.append((3, cents - 1))
            if line == st.identification_line or line == st.monitoring_line:
                exact.append((3, cents + 1))
        by_type = {"exited": [hh for hh in normal if hh.exited],
                   "ordinary": [hh for hh in normal if hh.kind == "ordinary"]}
        reps = self.count(1)
        for group in ("exited", "ordinary"):
            pool = by_type[group]
            rng.shuffle(pool)
            for size, net in exact * reps:
                hh = next((h for h in pool if len(h.members) == size and not h.tags), None)
                if hh is None:
                    continue
                hh.net = net
                hh.tags.add("boundary")
                hh.food_ok = hh.clothing_ok = hh.education_ok = hh.medical_ok = hh.water_ok = True
                hh.housing = "B"
                for p in hh.members:
                    p.insured = True
                    if p.age >= 6 and p.age <= 15:
                        p.school = "小学" if p.age <= 11 else "七至九年级"
                        p.labor = "无劳动力"
        # W8: every income item 0; a few households with a loss (negative net income)
        plain = [hh for hh in normal if not hh.tags]
        for hh in rng.sample(plain, min(len(plain), self.count(4, 2))):
            hh.all_zero = True
            hh.net = 0
            for p in hh.members:
                p.work, p.work_months = "未务工", 0
            hh.tags.add("all_zero")
        plain = [hh for hh in normal if not hh.tags]
        for hh in rng.sample(plain, min(len(plain), self.count(6, 2))):
            hh.net = -rng.randint(300, 4000) * 100 * len(hh.members)
            hh.tags.add("loss")
        # 算账式脱贫: exited households just above 5000, few just below
        line = self.settings.monitoring_line
        for v in self.villages:
            if "bunch" in v.roles:
                self._shape_band(rng, v, line, n_above=7, n_below=2, prefer_exited=True)
            elif "bunch_decoy" in v.roles:
                # exactly two to one: not "more than two to one"
                self._shape_band(rng, v, line, n_above=6, n_below=3, prefer_exited=False)

    def _band_counts(self, v: Village, line: Decimal, include_blocked: bool = True):
        band = self.settings.bunching_band
        above, under = [], []
        lo_line = line - band
        hi_line = line + band
        for hh in v.households:
            if not hh.surveyed or (not include_blocked and hh.tags & {"blocked"}):
                continue
            size = len(hh.linked())
            if size == 0 or hh.unreadable_amount:
                continue
            if not below(hh.net, line, size) and below(hh.net, hi_line, size):
                above.append(hh)
            elif below(hh.net, line, size) and not below(hh.net, lo_line, size):
                under.append(hh)
        return above, under

    def _shape_band(self, rng, v: Village, line: Decimal, n_above: int, n_below: int,
                    prefer_exited: bool = False) -> None:
        band = self.settings.bunching_band
        a, b = self._band_counts(v, line)
        for hh in a + b:  # clear both bands
            size = len(hh.members)
            pc = rng.uniform(float(line) + band + 60, float(line) + band + 3000)
            hh.net = round(pc * size) * 100
        hs = [hh for hh in v.households if not hh.tags]
        ex = [hh for hh in hs if hh.exited] if prefer_exited else []
        rest = [hh for hh in hs if hh not in ex]
        rng.shuffle(ex)
        rng.shuffle(rest)
        chosen = (ex + rest)[: n_above + n_below]
        for k, hh in enumerate(chosen):
            size = len(hh.members)
            if k < n_above:
                pc = rng.uniform(float(line) + 5, float(line) + band - 15)
                hh.tags.add("bunch_above")
            else:
                pc = rng.uniform(float(line) - band + 15, float(line) - 5)
                hh.tags.add("bunch_below")
            hh.net = round(pc * size) * 100
            hh.food_ok = hh.clothing_ok = hh.education_ok = hh.medical_ok = hh.water_ok = True
            hh.housing = "B"
            for p in hh.members:
                p.insured = True
        # other lines in this village must stay quiet
        for other in (self.settings.poverty_line, self.settings.identification_line):
            oa, _ = self._band_counts(v, other)
            for hh in oa:
                if not hh.tags:
                    hh.net = round(rng.uniform(float(line) + band + 60, 12000) * len(hh.members)) * 100

    # ---------------------------------------------------------------------------------------
    # 4. Planted data problems
    # ---------------------------------------------------------------------------------------
    def _plant(self, rule: str, hh: Household, sheet: str, col: str | None, person: Person | None = None,
               **extra) -> None:
        self.plants.append({"rule": rule, "hh": hh, "sheet": sheet, "col": col, "person": person, **extra})

    def _plant_problems(self) -> None:
        rng = self.rng_for("problems")
        special = {"bunch", "bunch_decoy"}
        eligible = [hh for hh in self.households if not (special & hh.village.roles) and not hh.tags]
        rng.shuffle(eligible)
        used: set[int] = set()

        def take(pred, n):
            got = []
            for hh in eligible:
                if len(got) >= n:
                    break
                if hh.key in used or not pred(hh):
                    continue
                used.add(hh.key)
                got.append(hh)
            return got

        def plain_adult(hh, registered_ok=False):
            """A non-head member a department knows nothing about (no records planned)."""
            for p in hh.members[1:]:
                if p.age >= 18 and not p.health and not p.disabled and p.school == "非在校生" and (
                        registered_ok or not p.registered):
                    return p
            return None

        def block(hh, code):
            hh.tags.add("blocked")
            hh.tags.add(code)

        M, H = S.SHEET_MEMBERS, S.SHEET_HOUSEHOLDS
        ordinary = lambda hh: hh.kind in ("ordinary", "foreign")  # noqa: E731
        # B1: invalid after repair (check character, birth date, length)
        for k, hh in enumerate(take(lambda h: ordinary(h) and plain_adult(h), self.count(5, 3))):
            p = plain_adult(hh)
            pid = p.pid
            if k % 3 == 0:
                wrong = [c for c in "0123456789X" if c != pid[17] and c != "0"]
                raw = pid[:17] + rng.choice(wrong)
            elif k % 3 == 1:
                first17 = pid[:10] + "13" + pid[12:17]
                raw = first17 + check_char(first17)
            else:
                raw = pid[:9] + pid[10:]
            p.set_cell("person_id", raw)
            block(hh, "B1")
            self._plant("B1", hh, M, "person_id", p)
        # B2: an ID Excel stored as a number (15 significant digits kept)
        for hh in take(lambda h: ordinary(h) and plain_adult(h) and plain_adult(h).pid[-1] != "X", self.count(5, 2)):
            p = plain_adult(hh)
            p.set_cell("person_id", float(f"{int(p.pid):.15g}"))
            block(hh, "B2")
            self._plant("B2", hh, M, "person_id", p)
        # B3: the same person in two households of one village, and in two villages
        n3 = self.count(2, 2)
        for k, hh in enumerate(take(lambda h: ordinary(h) and plain_adult(h) and len(h.members) >= 2, n3)):
            p = plain_adult(hh)
            if k % 2 == 0:
                other = take(lambda h, v=hh.village: h.village is v and ordinary(h), 1)
            else:
                other = take(lambda h, v=hh.village: h.village is not v and ordinary(h)
                             and "xls" not in h.village.roles, 1)
            if not other:
                continue
            other[0].extra_rows.append(p)
            block(hh, "B3")
            block(other[0], "B3")
            self._plant("B3", hh, M, "person_id", p)
            self._plant("B3", other[0], M, "person_id", p)
        # B4: a member whose 户主身份证号 matches no household (the spouse's ID was typed);
        # and a household whose members were never entered
        for hh in take(lambda h: ordinary(h) and len(h.members) >= 3 and plain_adult(h), self.count(1)):
            p = plain_adult(hh)
            spouse = next((m for m in hh.members[1:] if m is not p), None)
            p.orphan_head = spouse.pid
            hh.declared_size = len(hh.members)
            self._plant("B4", hh, M, "head_id", p, orphan=True)
        for hh in take(lambda h: ordinary(h) and not any(m.registered for m in h.members), self.count(1)):
            hh.no_member_rows = True
            hh.declared_size = len(hh.members)  # the village counted them, but typed no member rows
            hh.unreadable_amount = True  # no members: no per-capita income
            block(hh, "B4")
            self._plant("B4", hh, H, "head_id")
        # B5: two 户主
        for hh in take(lambda h: ordinary(h) and plain_adult(h), self.count(2, 2)):
            p = plain_adult(hh)
            p.set_cell("relation", S.HEAD)
            block(hh, "B5")
            self._plant("B5", hh, M, "relation", p)
        # B6: a required value missing
        b6 = take(lambda h: ordinary(h) and plain_adult(h), self.count(3, 3))
        for k, hh in enumerate(b6):
            if k % 3 == 0:
                hh.cell["housing_grade"] = None
                self._plant("B6", hh, H, "housing_grade")
            else:
                p = plain_adult(hh)
                key = "name" if k % 3 == 1 else "relation"
                p.set_cell(key, None)
                self._plant("B6", hh, M, key, p)
            block(hh, "B6")
        # B7: a value outside its code list
        for k, hh in enumerate(take(lambda h: ordinary(h) and plain_adult(h), self.count(3, 2))):
            if k % 2 == 0:
                hh.cell["housing_grade"] = "E"
                self._plant("B7", hh, H, "housing_grade")
            else:
                p = plain_adult(hh)
                p.set_cell("labor_skill", "强劳动力")
                self._plant("B7", hh, M, "labor_skill", p)
            block(hh, "B7")
        # B8: an amount negative or not a number
        b8_values = (("wage_income", "-500"), ("business_income", "不详"), ("property_income", "约2000元"))
        for k, hh in enumerate(take(lambda h: ordinary(h), self.count(3, 3))):
            key, raw = b8_values[k % 3]
            hh.cell[key] = raw
            hh.unreadable_amount = True
            block(hh, "B8")
            self._plant("B8", hh, H, key)
        # B9 漏人: a registered member the village left out
        def registered_member(h):
            return next((m for m in h.members[1:] if m.registered and not m.health and not m.disabled
                         and m.school == "非在校生"), None)
        for hh in take(lambda h: h.kind == "reg" and registered_member(h), self.count(3, 2)):
            p = registered_member(hh)
            p.in_survey = False
            block(hh, "B9")
            self._plant("B9", hh, H, None, p, missing=True)
        for hh in self.missed_households:
            if hh.kind == "reg":
                self._plant("B9", hh, None, None, None, missed=True)
        # ---- warnings (not blocking) ----
        # W1 declared 家庭人口 differs
        for hh in take(lambda h: True, self.count(30, 2)):
            hh.declared_size = len(hh.members) + rng.choice((-1, 1, 1, 2))
            if hh.declared_size <= 0:
                hh.declared_size = len(hh.members) + 1
        # W2 性别 differs from the ID
        for hh in take(lambda h: True, self.count(10, 2)):
            p = hh.members[-1]
            p.set_cell("sex", "女" if p.sex == "男" else "男")
        # W3 age does not fit 在校生状况 (each such pupil is 在读 at a school: no D4)
        for hh in take(lambda h: any(10 == m.age for m in h.members), self.count(2, 1)):
            p = next(m for m in hh.members if m.age == 10)
            p.school = "七至九年级"
            p.education = "小学"
            p.flag("edu_stage", "小学")
            hh.tags.add("w3")
        for hh in take(lambda h: any(22 <= m.age <= 26 and m.school == "非在校生" and not m.health
                                     and not m.disabled for m in h.members[1:]), self.count(1)):
            p = next(m for m in hh.members[1:] if 22 <= m.age <= 26 and m.school == "非在校生"
                     and not m.health and not m.disabled)
            p.school = "高中"
            p.work, p.work_months, p.labor = "未务工", 0, "无劳动力"
            p.flag("edu_stage", "本科")
            hh.tags.add("w3")
        # W4 转移性收入合计 differs from its sub-items by more than 1 yuan; W4 decoys: exactly 1 yuan
        for hh in take(lambda h: h.net > 200000, self.count(25, 3)):
            hh.tags.add("w4")
        for hh in take(lambda h: h.net > 200000, self.count(5, 2)):
            hh.tags.add("w4_one_yuan")
        # W5 declared 户类型/脱贫状态 disagrees with the registry
        for k, hh in enumerate(take(lambda h: h.kind in ("reg", "removed"), self.count(20, 4))):
            if hh.kind == "removed":
                hh.declared_type, hh.declared_status = S.HH_REGISTERED, S.STATUS_EXITED_NO_POLICY
            elif k % 3 == 0:
                hh.declared_type, hh.declared_status = S.HH_ORDINARY, ""
            elif hh.status == S.STATUS_EXITED_NO_POLICY:
                hh.declared_status = S.STATUS_EXITED_POLICY
            else:
                hh.declared_status = S.STATUS_EXITED_NO_POLICY if hh.status != S.STATUS_EXITED_NO_POLICY \
                    else S.STATUS_NOT_EXITED
        for hh in take(lambda h: h.kind == "ordinary", self.count(3, 1)):
            hh.declared_type, hh.declared_status = S.HH_REGISTERED, S.STATUS_EXITED_POLICY
        # W7 age above 110, and born after the reference date
        for k, hh in enumerate(take(lambda h: ordinary(h) and len(h.members) >= 2, self.count(2, 2))):
            p = hh.members[-1]
            if k % 2 == 0:
                birth = dt.date(self.ref.year - 113, 3, 9)
                p.relation, p.sex = "之母", "女"
            else:
                birth = self.ref + dt.timedelta(days=45)
                p.relation = "之孙子" if p.sex == "男" else "之孙女"
            p.birth = birth
            p.age = age_on(birth, self.ref)
            p.pid = self.ids.make(self.settings.district_code, birth, p.sex == "男")
            p.health = [h for h in p.health if h != "残疾"]
            p.disabled, p.dis_type, p.dis_grade = False, "", ""
            self._attributes(self.rng_for(f"w7:{hh.key}"), p, False)
            p.school = "非在校生"
            p.health, p.disabled, p.dis_type, p.dis_grade = [], False, "", ""
            p.work, p.work_months = "未务工", 0
            p.labor = "无劳动力"
            p.registered = False
            p.dibao = hh.members[0].dibao
        # W9 a bad phone number
        for k, hh in enumerate(take(lambda h: True, self.count(12, 2))):
            good = "1" + rng.choice("3578") + f"{rng.randrange(10 ** 9):09d}"
            hh.phone = good[:10] if k % 2 == 0 else good + str(rng.randrange(10))
            hh.tags.add("w9")

    # ---------------------------------------------------------------------------------------
    # 5. No accidental bunching
    # ---------------------------------------------------------------------------------------
    def _no_accidental_bunching(self) -> None:
        rng = self.rng_for("nudge")
        st = self.settings
        band = st.bunching_band
        lines = (st.poverty_line, st.identification_line, st.monitoring_line)
        for v in self.surveyed_villages:
            planted = v.roles & {"bunch", "bunch_decoy"}
            for line in lines:
                if planted and line == st.monitoring_line:
                    continue
                for _ in range(1000):
                    hit = False
                    for include_blocked in (True, False):
                        above, under = self._band_counts(v, line, include_blocked)
                        if len(above) >= st.bunching_min_above and len(above) > st.bunching_ratio * len(under):
                            hit = True
                            break
                    if not hit:
                        break
                    movable = [hh for hh in above if not hh.tags & {"boundary", "blocked", "bunch_above",
                                                                    "bunch_below"}]
                    hh = movable[rng.randrange(len(movable))]
                    size = len(hh.linked())
                    pc = rng.uniform(float(line) - band + 20, float(line) - 20)
                    hh.net = round(pc * size) * 100

    # ---------------------------------------------------------------------------------------
    # 6. Participation: 是否申请纳入, 民主评议结果, 主要致贫原因
    # ---------------------------------------------------------------------------------------
    def candidate(self, hh: Household) -> bool:
        """Meets the income or 三保障 condition of 附件2/3 (on the linked rows)."""
        size = len(hh.linked())
        if size == 0 or hh.unreadable_amount:
            return False
        return below(hh.net, self.settings.monitoring_line, size) or hh.fails()

    def _participation(self) -> None:
        rng = self.rng_for("participation")
        for hh in self.households:
            if hh.kind in ("ordinary", "foreign", "removed"):
                if self.candidate(hh) and "boundary" in hh.tags:
                    outcome = "in"
                elif self.candidate(hh):
                    outcome = _wchoice(rng, (("in", 50), ("未申请", 22), ("评议未通过", 15), ("无致贫原因", 13)))
                    hh.tags.add("cand3")
                else:
                    outcome = _wchoice(rng, (("none", 95), ("评议未通过", 5)))
                cause = hh.main_cause or self._cause(rng, hh)
                if outcome == "in":
                    hh.applied, hh.review, hh.main_cause = True, "通过", cause
                elif outcome == "未申请":
                    hh.applied, hh.review, hh.main_cause = False, "未评议", cause
                elif outcome == "评议未通过":
                    hh.applied, hh.review, hh.main_cause = True, "未通过", cause
                elif outcome == "无致贫原因":
                    hh.applied, hh.review, hh.main_cause, hh.other_causes = True, "通过", "", ()
                else:
                    hh.applied, hh.review = False, "未评议"
                    if hh.kind != "removed":
                        hh.main_cause, hh.other_causes = "", ()
                if hh.main_cause and not hh.other_causes and rng.random() < 0.2:
                    hh.other_causes = self._other_causes(rng, hh.main_cause)
            else:
                if hh.exited and self.candidate(hh) and rng.random() < 0.15:
                    hh.applied, hh.review = True, "通过"

    # ---------------------------------------------------------------------------------------
    # 7. Income items
    # ---------------------------------------------------------------------------------------
    def _split_income(self, hh: Household) -> None:
        rng = random.Random(f"{self.seed}:income:{hh.key}")
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

    # ---------------------------------------------------------------------------------------
    # 8. Files
    # ---------------------------------------------------------------------------------------
    def _write_villages_csv(self) -> None:
        path = self.out / S.VILLAGES_FILE
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = S.VILLAGE_COLUMNS
        w.writerow([cols["village_code"], cols["village_name"], cols["subdistrict_code"], cols["subdistrict_name"],
                    cols["farming"]])
        for v in self.villages:
            w.writerow([v.code, v.name, v.sub_code, v.sub_name, S.YES if v.farming else S.NO])
        path.write_bytes(buf.getvalue().encode("utf-8-sig"))
        self._touch(path, -60 * 24 * 30)

    def _plan_registry(self) -> list:
        """The registry rows, in files of at most 200,000 rows: one job per file."""
        cols = S.REGISTRY_COLUMNS
        header = [cols[k] for k in ("hh_no", "village_code", "head_name", "name", "person_id", "relation",
                                    "poor_attribute", "status", "identified_year", "exit_year")]
        rows = []
        for hh in self.households + self.missed_households:
            if hh.kind not in ("reg", "removed"):
                continue
            for p in hh.members:
                if not p.registered:
                    continue
                rows.append((hh.village.code, [hh.hh_no, hh.village.code, hh.head.name, p.name, p.pid, p.relation,
                                               hh.poor_attr, hh.status, hh.ident_year, hh.exit_year]))
        rows.sort(key=lambda r: (r[0], r[1][0]))
        n_files = max(2, math.ceil(len(rows) / 200000))
        per = math.ceil(len(rows) / n_files)
        reg_dir = self.out / S.REGISTRY_DIR
        reg_dir.mkdir(parents=True, exist_ok=True)
        self.registry_files = []
        self._registry = (header, [[vals for _, vals in rows[k * per:(k + 1) * per]] for k in range(n_files)])
        jobs = []
        for k in range(n_files):
            name = f"建档立卡人口花名册_{k + 1}.xlsx"
            self.registry_files.append(f"{S.REGISTRY_DIR}/{name}")
            jobs.append((len(self._registry[1][k]), ("registry", k, str(reg_dir / name))))
        self.registry_rows = len(rows)
        return jobs

    def _write_registry_file(self, k: int, path: str) -> None:
        header, chunks = self._registry
        wb = xlsxfast.Workbook(path, {"in_memory": True, "constant_memory": False})
        wb.set_properties({"created": CREATED, "author": "全国扶贫开发信息系统"})
        ws = wb.add_worksheet("Sheet1")
        for c, h in enumerate(header):
            ws.write_string(0, c, h)
        put_row = ws.put_row
        for r, vals in enumerate(chunks[k], start=1):
            put_row(r, vals)
        wb.close()
        self._touch(Path(path), -60 * 24 * 25 + k)

    def _plan_departments(self) -> list:
        """The department extracts: one job renders them all (their RNG runs through the
        departments in order) and writes them; their names are known here."""
        self.book.plan_names(self.out)
        return [(sum(len(r) for r in self.book.records.values()), ("departments", 0, None))]

    # -- surveys ----------------------------------------------------------------------------
    def _file_names(self, v: Village, rng) -> list[str]:
        short = v.name[:-1] if v.name.endswith("村") else v.name
        sub_short = v.sub_name.replace("街道", "").replace("镇", "")
        forms = (f"{v.name}入户调查表", f"{sub_short}-{v.name}", f"附件1 {v.name}", f"2019回头看 {short}",
                 f"{v.name}（终稿）", f"{sub_short}{v.name}入户调查")
        return [forms[(v.idx + k) % len(forms)] for k in range(2)]

    def _plan_surveys(self) -> list:
        """Each village's file names (and the lock and corrupt files, written here): one job per
        survey file, rendered from the village's own RNG."""
        rng = self.rng_for("render")
        base = self.out / S.SURVEYS_DIR
        minute = 0
        jobs = []
        for i, v in enumerate(self.surveyed_villages):
            folder = base / v.sub_name
            folder.mkdir(parents=True, exist_ok=True)
            names = self._file_names(v, rng)
            ext = ".xls" if v.style.xls else ".xlsx"
            minute += 7
            size = len(v.households)
            if "resubmit" in v.roles:
                old = folder / (names[1] + ext)
                new = folder / (names[1] + "-修改版" + ext)
                jobs.append((size, ("village", i, (str(old), f"render-old:{v.code}", True, minute - 60 * 24 * 2))))
                jobs.append((size, ("village", i, (str(new), f"render:{v.code}", False, minute + 60 * 24 * 10))))
                v.files = [self._rel(old), self._rel(new)]
                self.ignored.append(self._rel(old))
                v.latest = self._rel(new)
            else:
                path = folder / (names[0] + ext)
                jobs.append((size, ("village", i, (str(path), f"render:{v.code}", False, minute))))
                v.files = [self._rel(path)]
                v.latest = v.files[0]
            if "lock" in v.roles:
                lock = folder / ("~$" + Path(v.latest).name)
                lrng = self.rng_for("lock")
                owner = v.style.reporter.encode("utf-16-le")
                lock.write_bytes(bytes([len(v.style.reporter)]) + owner + lrng.randbytes(162 - 1 - len(owner)))
                self._touch(lock, minute + 1)
                self.ignored.append(self._rel(lock))
            if "corrupt" in v.roles:
                bad = folder / (names[0] + "(1).xlsx")
                bad.write_bytes(self.rng_for("corrupt").randbytes(3000))
                self._touch(bad, minute - 30)
                self.unreadable.append(self._rel(bad))
        return jobs

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    # -- writing the files, in parallel ------------------------------------------------------
    def _run_jobs(self, jobs: list, meanwhile=None) -> None:
        """Write every planned file: in ``self.workers`` forked processes (which inherit the
        finished model and index into it), or here when there is one worker. A file's bytes
        depend only on the model and its own job, never on which process writes it or when.
        ``meanwhile()`` runs here while the workers write (after the files, without workers);
        it must not change anything a file is made from."""
        order = [job for _, job in sorted(jobs, key=lambda sj: -sj[0])]  # largest first: no long tail
        n = min(self.workers, len(order))
        ctx = None
        if n > 1:
            try:
                ctx = multiprocessing.get_context("fork")
            except ValueError:  # no fork on this platform
                ctx = None
        if ctx is None:
            for job in order:
                self._collect(self._do_job(job))
            if meanwhile is not None:
                meanwhile()
            return
        global _FORKED
        _FORKED = self
        gc.freeze()  # the model stays in shared pages: the collector never touches it in workers
        try:
            with ctx.Pool(n, maxtasksperchild=_TASKS_PER_WORKER) as pool:
                results = pool.imap_unordered(_do_job_in_worker, order, chunksize=1)
                if meanwhile is not None:
                    meanwhile()
                for found in results:
                    self._collect(found)
                pool.close()
                pool.join()
        finally:
            _FORKED = None
            gc.unfreeze()

    def _collect(self, found) -> None:
        for key, row in found:
            self.rowmap[key] = row

    def _do_job(self, job) -> list:
        """Write one file; return the rows of it the answer key cites."""
        kind, k, arg = job
        if kind == "registry":
            self._write_registry_file(k, arg)
            return []
        if kind == "departments":
            for rel, when in self.book.write(self.out):
                self._touch(self.out / rel, when)
            return []
        path, rng_name, degrade, minute = arg
        rows = self._render_village(self.surveyed_villages[k], Path(path), self.rng_for(rng_name), degrade)
        self._touch(Path(path), minute)
        if degrade:
            return []
        needed = self._needed_rows
        return [(key, row) for key, row in rows.items() if key in needed]

    # column layout of one sheet as the village typed it: list of (header text, group, key)
    def _layout(self, v: Village, cols: tuple, sheet: str, rng) -> list:
        st = v.style
        layout = []
        for c in cols:
            label = c.label
            if st.rename and c.key in ("declared_size", "person_id") and c.aliases:
                label = c.aliases[0]
            layout.append((label, c.group, c.key))
        if st.reorder:
            ungrouped = [i for i, (_, g, k) in enumerate(layout) if not g and k not in ("seq",)]
            i, j = sorted(rng.sample(ungrouped[:10], 2))
            layout[i], layout[j] = layout[j], layout[i]
        if st.extra_col and sheet == S.SHEET_HOUSEHOLDS:
            at = next(i for i, (_, _, k) in enumerate(layout) if k == "phone")
            layout.insert(at, ("入户调查人", "", "_surveyor"))
        return layout

    def _yn(self, v: Village, value: bool, guarantee: bool = False):
        st = v.style
        if value:
            return st.yes
        return st.guarantee_no if guarantee else st.no

    def _text(self, rng, st: Style, s: str | None):
        if not s or not st.text_mess or rng.random() >= st.text_mess:
            return s
        r = rng.random()
        if r < 0.3:
            return " " + s
        if r < 0.55:
            return s + "  "
        if r < 0.75:
            return s + "\u3000"
        return s + "\n"

    def _amount(self, rng, st: Style, c: int | None):
        if c is None:
            return None
        if c == 0:
            return None if rng.random() < st.zero_empty else 0
        yuan, cents = divmod(abs(c), 100)
        number: Any = c / 100 if cents else yuan
        if st.amount_text and rng.random() < st.amount_text:
            plain = f"{yuan}.{cents:02d}" if cents else str(yuan)
            grouped = f"{yuan:,}" + (f".{cents:02d}" if cents else "")
            r = rng.random()
            if r < 0.25:
                return grouped
            if r < 0.5:
                return plain + "元"
            if r < 0.7:
                return f" {plain} "
            if r < 0.85:
                return plain.translate(FULLWIDTH)
            return grouped + "元"
        return number

    def _id(self, rng, st: Style, pid: str):
        if rng.random() >= st.id_mess:
            return pid
        r = rng.random()
        if st.id15 and r < 0.3 and pid[6:8] == "19":
            return pid[:6] + pid[8:17]
        if r < 0.45:
            return f"{pid[:6]} {pid[6:14]} {pid[14:]}"
        if r < 0.6:
            return pid.translate(FULLWIDTH)
        if r < 0.75 and pid.endswith("X"):
            return pid[:17] + "x"
        if r < 0.9:
            return "'" + pid
        return pid + "\u3000"

    def _hh_values(self, v: Village, hh: Household, seq: int, rng) -> dict:
        st = v.style
        vals: dict[str, Any] = {"seq": seq}
        if hh.hh_no:
            vals["hh_no"] = int(hh.hh_no) if st.hh_no_number and rng.random() < 0.5 else hh.hh_no
        vals["head_name"] = self._text(rng, st, hh.head.name)
        vals["head_id"] = self._id(rng, st, hh.head.pid)
        size = hh.declared_size if hh.declared_size is not None else len(hh.linked())
        vals["declared_size"] = size
        vals["hh_type"] = self._text(rng, st, hh.declared_type)
        vals["exit_status"] = hh.declared_status or None
        vals["resident_foreign"] = self._yn(v, hh.kind == "foreign")
        vals["applied"] = self._yn(v, hh.applied)
        vals["review_result"] = self._text(rng, st, hh.review)
        vals["main_cause"] = self._text(rng, st, hh.main_cause) or None
        sep = "、" if v.idx % 2 else ","
        vals["other_causes"] = sep.join(hh.other_causes) or None
        vals["food_ok"] = self._yn(v, hh.food_ok, True)
        vals["clothing_ok"] = self._yn(v, hh.clothing_ok, True)
        vals["education_ok"] = self._yn(v, hh.education_ok, True)
        vals["medical_ok"] = self._yn(v, hh.medical_ok, True)
        vals["housing_grade"] = self._text(rng, st, hh.housing)
        vals["water_ok"] = self._yn(v, hh.water_ok, True)
        vals["wage_income"] = self._amount(rng, st, hh.wage)
        vals["business_income"] = self._amount(rng, st, hh.business)
        vals["property_income"] = self._amount(rng, st, hh.prop)
        vals["transfer_total"] = self._amount(rng, st, hh.total_written)
        keys = S.TRANSFER_SUB_ITEMS
        if hh.subs is not None:
            for k, amt in zip(keys, hh.subs):
                vals[k] = self._amount(rng, st, amt) if amt else None
        vals["business_expense"] = self._amount(rng, st, hh.expense)
        vals["one_off_subsidy"] = self._amount(rng, st, hh.one_off) if hh.one_off else None
        if st.phone_number and hh.phone.isdigit() and rng.random() < 0.5:
            vals["phone"] = int(hh.phone)
        else:
            vals["phone"] = hh.phone
        vals["note"] = self._text(rng, st, hh.note) or None
        vals["_surveyor"] = st.reporter
        vals.update(hh.cell)
        return vals

    def _member_values(self, v: Village, hh: Household, p: Person, seq: int, rng) -> dict:
        st = v.style
        vals: dict[str, Any] = {"seq": seq}
        vals["head_id"] = self._id(rng, st, p.orphan_head or hh.head.pid)
        vals["name"] = self._text(rng, st, p.name)
        vals["sex"] = p.sex
        vals["person_id"] = self._id(rng, st, p.pid)
        vals["relation"] = p.relation if p not in hh.extra_rows else self._dup_relation(hh, p)
        vals["ethnicity"] = p.ethnicity
        vals["education"] = p.education
        vals["school_status"] = self._text(rng, st, p.school)
        sep = "、" if v.idx % 3 else ","
        vals["health"] = sep.join(p.health) if p.health else "健康"
        vals["labor_skill"] = p.labor
        vals["work_status"] = p.work
        vals["work_months"] = p.work_months
        vals["dibao"] = self._yn(v, p.dibao)
        vals["tekun"] = self._yn(v, p.tekun)
        vals["disabled_cert"] = self._yn(v, p.disabled)
        vals["disability_type"] = p.dis_type or None
        vals["disability_grade"] = p.dis_grade or None
        vals["medical_insured"] = self._yn(v, p.insured)
        vals["note"] = p.note or None
        if p.cell:
            vals.update(p.cell)
        return vals

    @staticmethod
    def _dup_relation(hh: Household, p: Person) -> str:
        return "之儿媳" if p.sex == "女" else "之女婿"

    def _render_village(self, v: Village, path: Path, rng, degrade: bool = False) -> dict:
        """Write one survey file of ``v``; return where each household and member row went
        ((sheet, hh.key, pid | None) -> Excel row; empty for the degraded first submission)."""
        st = v.style
        rowmap: dict = {}
        households = [hh for hh in v.households if hh.surveyed]
        if degrade:
            households = households[:-1]  # the corrected file adds a household the first one missed
        hh_layout = self._layout(v, S.HOUSEHOLD_COLUMNS, S.SHEET_HOUSEHOLDS, rng)
        mem_layout = self._layout(v, S.MEMBER_COLUMNS, S.SHEET_MEMBERS, rng)
        hh_rows: list = []
        mem_rows: list = []
        mem_merges: list = []
        mem_special: list = []
        half = len(households) // 2
        mseq = 0
        head_col = next(i for i, (_, _, k) in enumerate(mem_layout) if k == "head_id")
        degrade_k = {3, 11, 19} if degrade else set()
        for n, hh in enumerate(households, start=1):
            if st.blank_rows and rng.random() < 0.015:
                hh_rows.append(None)
            vals = self._hh_values(v, hh, n, rng)
            if n in degrade_k:
                if n == 3:
                    vals["housing_grade"] = None
                elif n == 11 and vals.get("wage_income"):
                    vals["wage_income"] = 999999
            hh_rows.append(vals)
            if not degrade:
                rowmap[(S.SHEET_HOUSEHOLDS, hh.key, None)] = 5 + len(hh_rows) - 1
            if st.header_copy and n == half:
                mem_special.append(len(mem_rows))
                mem_rows.append("HEADER")
                mem_rows.append("HEADER2")
            start = len(mem_rows)
            written = [] if hh.no_member_rows else [p for p in hh.members if p.in_survey and p.orphan_head is None]
            written += hh.extra_rows
            for p in written:
                mseq += 1
                vals = self._member_values(v, hh, p, mseq, rng)
                if n == 19 and degrade:
                    vals["person_id"] = p.pid[:17] + ("1" if p.pid[17] != "1" else "2")
                if st.merge_ids and len(written) > 1:
                    vals["head_id"] = hh.head.pid if p is written[0] else None
                mem_rows.append(vals)
                if not degrade:
                    rowmap[(S.SHEET_MEMBERS, hh.key, p.pid)] = 5 + len(mem_rows) - 1
            if st.merge_ids and len(written) > 1:
                mem_merges.append((start, head_col, len(mem_rows) - 1, head_col, hh.head.pid))
            for p in hh.members:
                if p.orphan_head is not None and not hh.no_member_rows:
                    mseq += 1
                    vals = self._member_values(v, hh, p, mseq, rng)
                    mem_rows.append(vals)
                    if not degrade:
                        rowmap[(S.SHEET_MEMBERS, hh.key, p.pid)] = 5 + len(mem_rows) - 1
            if st.blank_rows and rng.random() < 0.01:
                mem_rows.append(None)
        notes = []
        if st.notes:
            notes = [None, "填表说明：1.本表由村两委成员、驻村第一书记入户填写；2.收入为2018年度数据，单位为元；"
                           "3.一次性补助不计入收入。",
                     f"填表人：{st.reporter}　审核人：{self._name(rng, True)}"]
        sub_village = f"{v.sub_name}{v.name}"
        row2 = f"填报单位：{sub_village}　村代码：{v.code}　填报人：{st.reporter}　填报日期：{st.date}"
        sheets = [
            (S.SHEET_HOUSEHOLDS, hh_layout, hh_rows, [], notes),
            (S.SHEET_MEMBERS, mem_layout, mem_rows, mem_merges, notes[:2] if notes else []),
        ]
        if st.xls:
            self._write_xls(path, sheets, row2)
        else:
            self._write_xlsx(path, sheets, row2)
        return rowmap

    @staticmethod
    def _header_cells(layout: list):
        """Row 3 and row 4 merges: (r0, c0, r1, c1, text) in header-relative rows 0..1."""
        cells = []
        c = 0
        n = len(layout)
        while c < n:
            label, group, _ = layout[c]
            if not group:
                cells.append((0, c, 1, c, label))
                c += 1
                continue
            end = c
            while end + 1 < n and layout[end + 1][1] == group:
                end += 1
            cells.append((0, c, 0, end, group))
            for k in range(c, end + 1):
                cells.append((1, k, 1, k, layout[k][0]))
            c = end + 1
        return cells

    def _write_xlsx(self, path: Path, sheets, row2: str) -> None:
        wb = xlsxfast.Workbook(str(path), {"in_memory": True, "strings_to_numbers": False,
                                           "strings_to_formulas": False, "strings_to_urls": False})
        wb.set_properties({"created": CREATED, "author": "村委会"})
        title_fmt = wb.add_format({"bold": True, "font_size": 14, "align": "center", "valign": "vcenter"})
        head_fmt = wb.add_format({"bold": True, "align": "center", "valign": "vcenter", "border": 1,
                                  "text_wrap": True})
        text_fmt = wb.add_format({"num_format": "@"})
        merge_fmt = wb.add_format({"valign": "vcenter", "num_format": "@"})
        for name, layout, rows, merges, notes in sheets:
            ws = wb.add_worksheet(name)
            ncol = len(layout)
            suffix = "（家庭基本情况）" if name == S.SHEET_HOUSEHOLDS else "（家庭成员情况）"
            ws.merge_range(0, 0, 0, ncol - 1, S.SURVEY_TITLE + suffix, title_fmt)
            ws.merge_range(1, 0, 1, ncol - 1, row2)
            header = self._header_cells(layout)
            for r0, c0, r1, c1, text in header:
                if (r0, c0) == (r1, c1):
                    ws.write_string(2 + r0, c0, text, head_fmt)
                else:
                    ws.merge_range(2 + r0, c0, 2 + r1, c1, text, head_fmt)
            keys = [k for _, _, k in layout]
            id_cols = {i for i, k in enumerate(keys) if k in ("head_id", "person_id", "hh_no")}
            for c in id_cols:
                ws.set_column(c, c, 21)
            str_fmts = [text_fmt if c in id_cols else None for c in range(len(keys))]
            put_row = ws.put_row
            r = 4
            for row in rows:
                if row == "HEADER":
                    for r0, c0, r1, c1, text in header:
                        if (r0, c0) == (r1, c1):
                            ws.write_string(r + r0, c0, text, head_fmt)
                        else:
                            ws.merge_range(r + r0, c0, r + r1, c1, text, head_fmt)
                elif row is not None and row != "HEADER2":
                    put_row(r, [row.get(key) for key in keys], str_fmts)
                r += 1
            for r0, c0, r1, c1, val in merges:
                ws.merge_range(4 + r0, c0, 4 + r1, c1, val, merge_fmt)
            for note in notes:
                if note:
                    ws.write_string(r, 0, note)
                r += 1
            ws.freeze_panes(4, 0)
        wb.close()

    def _write_xls(self, path: Path, sheets, row2: str) -> None:
        import xlwt

        wb = xlwt.Workbook(encoding="utf-8")
        for name, layout, rows, merges, notes in sheets:
            ws = wb.add_sheet(name)
            ncol = len(layout)
            suffix = "（家庭基本情况）" if name == S.SHEET_HOUSEHOLDS else "（家庭成员情况）"
            ws.write_merge(0, 0, 0, ncol - 1, S.SURVEY_TITLE + suffix)
            ws.write_merge(1, 1, 0, ncol - 1, row2)
            header = self._header_cells(layout)
            for r0, c0, r1, c1, text in header:
                if (r0, c0) == (r1, c1):
                    ws.write(2 + r0, c0, text)
                else:
                    ws.write_merge(2 + r0, 2 + r1, c0, c1, text)
            keys = [k for _, _, k in layout]
            merged_cells = {(4 + r0, c0) for r0, c0, r1, c1, _ in merges}
            merged_cells |= {(4 + rr, c0) for r0, c0, r1, c1, _ in merges for rr in range(r0, r1 + 1)}
            r = 4
            for row in rows:
                if row == "HEADER":
                    for r0, c0, r1, c1, text in header:
                        if (r0, c0) == (r1, c1):
                            ws.write(r + r0, c0, text)
                        else:
                            ws.write_merge(r + r0, r + r1, c0, c1, text)
                elif row is not None and row != "HEADER2":
                    for c, key in enumerate(keys):
                        val = row.get(key)
                        if val is None or (r, c) in merged_cells:
                            continue
                        ws.write(r, c, val)
                r += 1
            for r0, c0, r1, c1, val in merges:
                ws.write_merge(4 + r0, 4 + r1, c0, c1, val)
            for note in notes:
                if note:
                    ws.write(r, 0, note)
                r += 1
        wb.save(str(path))

    # ---------------------------------------------------------------------------------------
    # 9. The answer key
    # ---------------------------------------------------------------------------------------
    def _answer_key(self, warnings: list) -> tuple[dict, list]:
        """The answer key, but for the rows its problems cite and their order (the files may not
        be written yet): returns (key, [(problem, rowmap key, required)]) for :meth:`_finish_key`."""
        st = self.settings
        findings = self.book.evaluate(self.households)
        problems = []
        deferred = [(e, e["row"], True) for e in warnings]
        blocking: dict[int, set] = {}
        for pl in self.plants:
            hh: Household = pl["hh"]
            v = hh.village
            p: Person | None = pl["person"]
            entry = {"rule": pl["rule"], "village_code": v.code, "file": v.latest, "sheet": pl["sheet"],
                     "row": None, "column": None, "head_id": hh.head.pid}
            if pl.get("missed"):
                entry["file"] = None
            elif pl.get("missing"):
                deferred.append((entry, (S.SHEET_HOUSEHOLDS, hh.key, None), False))
                entry["person_id"] = p.pid
            elif pl["sheet"] == S.SHEET_MEMBERS:
                deferred.append((entry, (S.SHEET_MEMBERS, hh.key, p.pid), True))
                entry["person_id"] = p.pid
            else:
                deferred.append((entry, (S.SHEET_HOUSEHOLDS, hh.key, None), True))
            if pl["col"]:
                cols = S.MEMBER_COLUMNS if pl["sheet"] == S.SHEET_MEMBERS else S.HOUSEHOLD_COLUMNS
                entry["column"] = next(c.label for c in cols if c.key == pl["col"])
            if pl.get("orphan"):
                entry["head_id"] = None  # the row links to no household
            problems.append(entry)
            if pl["rule"].startswith("B") and not pl.get("orphan") and not pl.get("missed"):
                blocking.setdefault(hh.key, set()).add(pl["rule"])
        problems += warnings
        # B10
        for v in self.villages:
            if "b10" in v.roles:
                problems.append({"rule": "B10", "village_code": v.code, "file": None, "sheet": None, "row": None,
                                 "column": None, "head_id": None})
        # households
        entries = []
        bunch_pool: dict[str, list] = {}
        for hh in self.households:
            v = hh.village
            rows = hh.linked()
            size = len(rows)
            blk = sorted(blocking.get(hh.key, ()), key=lambda c: int(c[1:]))
            computable = size > 0 and not hh.unreadable_amount
            net = hh.net if computable else None
            fails = hh.fails()
            f = sorted(findings.get(hh.key, ()), key=lambda c: (c[0] != "X", c))
            hard = [c for c in f if c.startswith("X")]
            annex2 = annex3 = reason = None
            in4 = in5 = in6 = False
            if not blk and computable:
                low5 = below(net, st.monitoring_line, size)
                low45 = below(net, st.identification_line, size)
                low4 = below(net, st.poverty_line, size)
                in5, in6 = low45, low5
                in4 = hh.kind == "reg" and low5
                if hh.exited and (low5 or fails):
                    if hard:
                        reason = "排除"
                    else:
                        annex2 = "返贫" if (low4 or fails) else "重点扶持"
                if hh.kind in ("ordinary", "foreign", "removed") and (low5 or fails):
                    if hard:
                        reason = "排除"
                    elif not hh.applied:
                        reason = "未申请"
                    elif hh.review != S.REVIEW_PASSED:
                        reason = "评议未通过"
                    elif not hh.main_cause:
                        reason = "无致贫原因"
                    else:
                        annex3 = "新识别" if (low45 or fails) else "重点扶持"
                bunch_pool.setdefault(v.code, []).append((hh, net, size))
            entries.append({
                "village_code": v.code,
                "head_id": hh.head.pid,
                "hh_no": hh.hh_no,
                "status_type": hh.status_type,
                "exit_status": hh.status,
                "size": size,
                "net_income": cents_str(net) if net is not None else None,
                "per_capita": str(per_capita(net, size)) if net is not None else None,
                "fails_guarantee": fails,
                "main_cause": hh.main_cause or None,
                "applied": hh.applied,
                "review": hh.review,
                "focus": self._focus(hh),
                "findings": f,
                "blocking": blk,
                "annex2": annex2,
                "annex3": annex3,
                "left_out_reason": reason,
                "in_annex4": in4,
                "in_annex5": in5,
                "in_annex6": in6,
            })
        bunching = self._bunching(bunch_pool)
        key = {
            "seed": self.seed,
            "households_requested": self.n,
            "settings": st.to_json(),
            "villages": [{
                "village_code": v.code, "village_name": v.name, "subdistrict_code": v.sub_code,
                "subdistrict_name": v.sub_name, "farming": v.farming, "survey_files": v.files,
                "latest_file": v.latest, "roles": sorted(v.roles),
            } for v in self.villages],
            "registry_files": self.registry_files,
            "unreadable_files": sorted(self.unreadable),
            "ignored_files": sorted(self.ignored),
            "department_files": self.book.files,
            "households": entries,
            "problems": problems,
            "bunching": bunching,
            "planted": self.book.planted_key(),
        }
        key["counts"] = self._counts(key, entries, problems, findings)  # (no count needs a row)
        return key, deferred

    def _finish_key(self, key: dict, deferred: list) -> dict:
        """Fill in the rows the problems cite (the files are written) and sort the problems."""
        for entry, rowkey, required in deferred:
            entry["row"] = self.rowmap[rowkey] if required else self.rowmap.get(rowkey)
        key["problems"].sort(key=lambda e: (e["rule"][0], int(e["rule"][1:]), e["village_code"], e["file"] or "",
                                            e["sheet"] or "", e["row"] or 0))
        return key

    def _focus(self, hh: Household) -> list:
        rows = hh.linked()
        tags = []
        if hh.housing in S.DANGEROUS_HOUSING:
            tags.append("危房户")
        if any(h in S.SERIOUS_HEALTH for p in rows for h in p.health):
            tags.append("大病慢病户")
        if any(p.disabled for p in rows):
            tags.append("残疾户")
        if any(p.dibao for p in rows):
            tags.append("低保户")
        if any(p.tekun for p in rows):
            tags.append("特困户")
        if any(p.age >= 65 for p in rows):
            tags.append("老年户")
        if hh.kind == "removed":
            tags.append("清退户")
        if hh.kind == "foreign":
            tags.append("外籍户")
        return tags

    def _bunching(self, pool: dict) -> dict:
        st = self.settings
        out: dict[str, list] = {}
        for code, items in pool.items():
            flagged = []
            for line in st.low_income_lines:
                hi = line + st.bunching_band
                lo = line - st.bunching_band
                above = [hh for hh, net, size in items if not below(net, line, size) and below(net, hi, size)]
                under = [hh for hh, net, size in items if below(net, line, size) and not below(net, lo, size)]
                if len(above) >= st.bunching_min_above and len(above) > st.bunching_ratio * len(under):
                    flagged += [hh.head.pid for hh in above]
            if flagged:
                out[code] = sorted(set(flagged))
        return out

    def _warnings(self) -> list:
        """W1–W5, W7–W9 as written in the latest files, from the truth (W6 is under "bunching").

        Each entry's "row" is the row's key in ``self.rowmap`` until the files are written."""
        ref = self.ref
        out = []
        H, M = S.SHEET_HOUSEHOLDS, S.SHEET_MEMBERS
        label = {c.key: c.label for c in S.HOUSEHOLD_COLUMNS}
        mlabel = {c.key: c.label for c in S.MEMBER_COLUMNS}
        school_ages = {"小学": (5, 15), "七至九年级": (11, 18), "高中": (14, 21), "中职": (14, 21)}
        for hh in self.households:
            v = hh.village

            def add(rule, sheet, key, person=None):
                lab = (mlabel if sheet == M else label).get(key) if key else None
                e = {"rule": rule, "village_code": v.code, "file": v.latest, "sheet": sheet,
                     "row": (sheet, hh.key, person.pid if person else None), "column": lab,
                     "head_id": hh.head.pid}
                if person is not None:
                    e["person_id"] = person.pid
                out.append(e)

            rows = hh.linked()
            if hh.declared_size is not None and hh.declared_size != len(rows):
                add("W1", H, "declared_size")
            written = [] if hh.no_member_rows else [p for p in hh.members if p.in_survey and p.orphan_head is None]
            for p in written + hh.extra_rows + [p for p in hh.members if p.orphan_head and not hh.no_member_rows]:
                if p.cell and "person_id" in p.cell:
                    continue  # no valid ID to compare with
                sex = (p.cell or {}).get("sex", p.sex)
                if sex != ("男" if int(p.pid[16]) % 2 else "女"):
                    add("W2", M, "sex", p)
                a = age_on(p.birth, ref)
                if p.school in school_ages:
                    lo, hi = school_ages[p.school]
                    if not lo <= a <= hi:
                        add("W3", M, "school_status", p)
                if a > 110 or p.birth > ref:
                    add("W7", M, "person_id", p)
            if hh.subs is not None and hh.total_written is not None and "B8" not in hh.tags:
                if abs(hh.total_written - sum(hh.subs)) > 100:
                    add("W4", H, "transfer_total")
            expected_status = hh.status if hh.kind in ("reg", "removed") else ""
            if hh.declared_type != hh.status_type or (hh.declared_status or "") != (expected_status or ""):
                add("W5", H, "hh_type" if hh.declared_type != hh.status_type else "exit_status")
            if hh.all_zero:
                add("W8", H, None)
            if "w9" in hh.tags:
                add("W9", H, "phone")
        return out

    def _counts(self, key: dict, entries: list, problems: list, findings: dict) -> dict:
        def tally(items):
            out: dict[str, int] = {}
            for it in items:
                out[it] = out.get(it, 0) + 1
            return dict(sorted(out.items()))

        held = [e for e in entries if e["blocking"]]
        return {
            "villages": len(self.villages),
            "farming_villages": sum(v.farming for v in self.villages),
            "surveyed_villages": sum(1 for v in self.villages if v.latest),
            "survey_files": sum(len(v.files) for v in self.villages),
            "households": len(entries),
            "persons": sum(e["size"] for e in entries),
            "registry_rows": self.registry_rows,
            "households_by_type": tally(e["status_type"] for e in entries),
            "held_back_households": len(held),
            "problems_by_rule": tally(p["rule"] for p in problems),
            "findings_by_rule": tally(c for e in entries for c in e["findings"]),
            "annex2_households": tally(e["annex2"] for e in entries if e["annex2"]),
            "annex2_persons": sum(e["size"] for e in entries if e["annex2"]),
            "annex3_households": tally(e["annex3"] for e in entries if e["annex3"]),
            "annex3_persons": sum(e["size"] for e in entries if e["annex3"]),
            "annex4_households": sum(e["in_annex4"] for e in entries),
            "annex5_households": sum(e["in_annex5"] for e in entries),
            "annex6_households": sum(e["in_annex6"] for e in entries),
            "left_out": tally(e["left_out_reason"] for e in entries if e["left_out_reason"]),
            "bunching_villages": len(key["bunching"]),
            "bunching_households": sum(len(x) for x in key["bunching"].values()),
            "department_rows": self.book.row_counts(),
        }


# ------------------------------------------------------------------------------------------
# The answer key as JSON
# ------------------------------------------------------------------------------------------

_encode_str = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) uses


def _json(obj, level: int) -> str:
    """``json.dumps(obj, ensure_ascii=False, indent=1)`` for a value that starts on a line
    indented by ``level`` spaces (the same text, faster for the key's flat household entries)."""
    cls = obj.__class__
    if cls is str:
        return _encode_str(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if cls is int:
        return int.__repr__(obj)
    if cls is list or cls is tuple:
        if not obj:
            return "[]"
        ind = "\n" + " " * (level + 1)
        return "[" + ind + ("," + ind).join([_json(x, level + 1) for x in obj]) + "\n" + " " * level + "]"
    if cls is dict and all(k.__class__ is str for k in obj):
        if not obj:
            return "{}"
        ind = "\n" + " " * (level + 1)
        return "{" + ind + ("," + ind).join([f"{_encode_str(k)}: {_json(v, level + 1)}" for k, v in obj.items()]) \
            + "\n" + " " * level + "}"
    # anything else (floats, other keys, subclasses): json itself, moved to this indentation
    # (JSON text has no raw line breaks inside strings)
    return json.dumps(obj, ensure_ascii=False, indent=1).replace("\n", "\n" + " " * level)


def _split_at(obj: dict, stream: str) -> tuple[str, str]:
    """The JSON text of ``obj`` before and after the value of ``obj[stream]``."""
    marker = "\x00" + stream + "\x00"
    text = json.dumps({k: (marker if k == stream else v) for k, v in obj.items()}, ensure_ascii=False, indent=1)
    head, tail = text.split(_encode_str(marker))
    return head, tail


def write_json_head(path: Path, obj: dict, stream: str) -> None:
    """Write ``json.dumps(obj, ensure_ascii=False, indent=1)`` to ``path`` (UTF-8) up to and
    including the list ``obj[stream]`` (a slice at a time, never built as one string); the rest
    is :func:`write_json_tail`'s (the values after the list may still change until then)."""
    head, _ = _split_at(obj, stream)
    items = obj[stream]
    with open(path, "w", encoding="utf-8") as f:
        f.write(head)
        if not items:
            f.write("[]")
        else:
            f.write("[\n  ")
            sep = ",\n  "
            for i in range(0, len(items), 2000):
                if i:
                    f.write(sep)
                f.write(sep.join([_json(e, 2) for e in items[i:i + 2000]]))
            f.write("\n ]")


def write_json_tail(path: Path, obj: dict, stream: str) -> None:
    """Append what follows ``obj[stream]`` to the file :func:`write_json_head` began."""
    _, tail = _split_at(obj, stream)
    with open(path, "a", encoding="utf-8") as f:
        f.write(tail)


def write_json(path: Path, obj: dict, stream: str) -> None:
    """``json.dumps(obj, ensure_ascii=False, indent=1)`` to ``path``, ``obj[stream]`` streamed."""
    write_json_head(path, obj, stream)
    write_json_tail(path, obj, stream)


# ------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------


def _do_job_in_worker(job) -> list:
    return _FORKED._do_job(job)


def generate(out: Path, households: int = 8000, seed: int = 2019, settings: Settings | None = None,
             workers: int | None = None) -> dict:
    """Write the sample district under ``out`` and return (and write) its answer key.

    The files are written by ``workers`` processes (default: one per CPU; 1 writes them in this
    process); the output is the same whatever the number."""
    return Generator(Path(out), households, seed, settings or Settings(), workers).run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.sample.generator",
                                 description="Write the synthetic sample district and its answer key.")
    ap.add_argument("--out", required=True, type=Path, help="data root to write (empty or an earlier sample)")
    ap.add_argument("--households", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=2019)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    key = generate(args.out, args.households, args.seed)
    c = key["counts"]
    print(f"{args.out}: {c['villages']} villages, {c['survey_files']} survey files, {c['households']} households, "
          f"{c['persons']} persons, {sum(c['problems_by_rule'].values())} planted problems "
          f"in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
