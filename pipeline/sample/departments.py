"""Department cross-check extracts of the sample district, and the X/D rules on the truth.

Records are kept structured (true ID, dates as dates, amounts as numbers) and rendered with the
mess of old department systems only when written: 15-digit first-generation IDs, lowercase x,
padding spaces, dates as ``2018-03-05``/``2018/3/5``/``20180305``/Excel dates/``2018年3月5日``/
``2018年3月``, a department answering in several batches with some rows repeated.

Every rule X1–X4 and D1–D5 gets planted hits and decoys (records that look close but must not
produce a finding); the answer key's findings are computed by :meth:`Extracts.evaluate` on the
structured records and the survey truth, and :meth:`Extracts.planted_key` lists the intent so a
test can check that every hit is found and no decoy is.

It works on the district model of model.py, after the planted problems and participation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from decimal import Decimal
from pathlib import Path

from pipeline import schema as S
from pipeline.sample import xlsxfast
from pipeline.sample.model import person_name

CREATED = dt.datetime(2019, 5, 12, 10, 0, 0)
DEPT = S.DEPARTMENTS_BY_KEY
EXCLUDING_ENTITY_TYPES = ("个体工商户", "有限责任公司", "个人独资企业")
ACTIVE_ENTITY = ("存续", "在业")
EMPLOYEE_PENSION = "企业职工基本养老保险"
RESIDENT_PENSION = "城乡居民基本养老保险"
IN_SCHOOL_RECORD = "在读"
VALID_CERT = "有效"

FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
SHOPS = ("小卖部", "便民超市", "农资经销部", "烧烤店", "修车铺", "豆腐坊", "理发店", "粮油店", "五金商店", "早餐店")
COMPANIES = ("商贸", "建材", "矿产品", "物流", "农业科技", "林业", "餐饮管理", "石材")
COOP_PRODUCTS = ("中药材", "食用菌", "林蛙", "蓝莓", "山野菜", "养蜂", "香菇", "寒富苹果")
PROJECTS = ("锦绣家园", "溪湖名都", "枫林苑", "明山华府", "太子城", "滨河新城", "沈溪新城", "万达广场")
CITIES = ("本溪市平山区", "本溪市明山区", "本溪市溪湖区", "沈阳市浑南区", "沈阳市于洪区", "丹东市振兴区")
CHRONIC = ("高血压", "糖尿病", "冠心病", "慢性阻塞性肺疾病", "类风湿性关节炎", "脑血管病后遗症", "慢性肾病")
SERIOUS = ("恶性肿瘤", "尿毒症透析", "白血病", "器官移植术后", "重性精神病")
SCHOOLS = {"学前": "中心幼儿园", "小学": "中心小学", "初中": "中学", "高中": "本溪市高级中学",
           "中职": "本溪市职业教育中心", "高职": "辽宁冶金职业技术学院", "本科": "辽宁科技学院"}
STAGE_OF_SCHOOL = {"学前教育": "学前", "小学": "小学", "七至九年级": "初中", "高中": "高中", "中职": "中职",
                   "高职": "高职", "大专及以上": "本科"}
DIS_CODES = {"视力": "1", "听力": "2", "言语": "3", "肢体": "4", "智力": "5", "精神": "6", "多重": "7"}
GRADE_CODES = {"一级": "1", "二级": "2", "三级": "3", "四级": "4"}
DAY_FORMS = ("iso", "iso", "slash", "digits", "excel", "cn", "cn_month")
EXACT_DAY_FORMS = ("iso", "slash", "digits", "excel", "cn")
MONTH_FORMS = ("ym_dash", "ym6", "cn_month", "excel", "slash_month")
BATCHES = {"market": 2, "tax": 1, "hrss": 3, "housing": 1, "vehicles": 2, "education": 2, "medical": 1,
           "disability": 2, "income_recheck": 2}
FILE_STEMS = {"market": "市场主体登记", "tax": "个人所得税缴纳明细", "hrss": "社会保险参保缴费",
              "housing": "商品房网签备案", "vehicles": "机动车登记", "education": "学籍信息",
              "medical": "慢特病及大病认定", "disability": "持证残疾人", "income_recheck": "收入复核"}


class Who:
    """Someone a department knows who is not in the survey."""

    __slots__ = ("pid", "name", "age", "sex")

    def __init__(self, pid: str, name: str, age: int, sex: str):
        self.pid, self.name, self.age, self.sex = pid, name, age, sex


def _months_overlap(start: dt.date, end: dt.date, year: int) -> bool:
    return start <= dt.date(year, 12, 31) and end >= dt.date(year, 1, 1)


class Extracts:
    def __init__(self, district, rng: random.Random):
        self.st = district.settings
        self.rng = rng
        self.ids = district.ids  # shared: IDs stay distinct across the whole district
        self.district = district
        self.records: dict[str, list[dict]] = {d.key: [] for d in S.DEPARTMENTS}
        self.by_pid: dict[str, list[tuple[str, dict]]] = {}
        self.planted: list[dict] = []
        self.files: dict[str, list[str]] = {}
        self.serial = 0

    # ---------------------------------------------------------------------------------------
    # records
    # ---------------------------------------------------------------------------------------
    def _add(self, key: str, pid: str, exact: bool = False, **fields) -> dict:
        rec = dict(fields)
        rec["_pid"] = pid
        rec["_exact"] = exact
        self.records[key].append(rec)
        self.by_pid.setdefault(pid, []).append((key, rec))
        return rec

    def _next(self) -> int:
        self.serial += 1
        return self.serial

    def _date(self, rng, start_year: int, end: dt.date | None = None) -> dt.date:
        end = end or self.st.reference_date - dt.timedelta(days=10)
        lo = dt.date(start_year, 1, 1).toordinal()
        return dt.date.fromordinal(rng.randint(lo, end.toordinal()))

    def market(self, who, etype: str, status: str, rng, village: str = "南芬") -> dict:
        n = self._next()
        if etype == "个体工商户":
            code, name = f"92210505MA{n:07d}{rng.choice('0123456789ABCDEFGHJK')}", f"南芬区{who.name}{rng.choice(SHOPS)}"
        elif etype == "农民专业合作社":
            code = f"93210505MA{n:07d}{rng.choice('0123456789ABCDEFGHJK')}"
            name = f"本溪市南芬区{village}{rng.choice(COOP_PRODUCTS)}专业合作社"
        elif etype == "有限责任公司":
            code = f"91210505MA{n:07d}{rng.choice('0123456789ABCDEFGHJK')}"
            name = f"本溪{rng.choice('鑫盛源隆兴旺达恒泰')}{rng.choice(COMPANIES)}有限公司"
        else:
            code = f"91210505MA{n:07d}{rng.choice('0123456789ABCDEFGHJK')}"
            name = f"南芬区{who.name[0]}氏{rng.choice(COMPANIES)}经销处"
        return self._add("market", who.pid, 统一社会信用代码=code, 主体名称=name, 主体类型=etype,
                         经营者或法定代表人=who.name, 证件号码=who.pid, 登记状态=status,
                         成立日期=self._date(rng, 2008))

    def tax(self, who, start: dt.date, end: dt.date, income: Decimal, paid: Decimal, rng) -> dict:
        item = rng.choice(("工资、薪金所得", "工资、薪金所得", "劳务报酬所得", "经营所得"))
        return self._add("tax", who.pid, 纳税人姓名=who.name, 证件类型="居民身份证", 证件号码=who.pid, 所得项目=item,
                         所属期起=start, 所属期止=end, 收入额=income, 实缴税额=paid)

    def hrss(self, who, kind: str, start: dt.date, end: dt.date, rng) -> dict:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        if kind == RESIDENT_PENSION:
            unit, base = f"{rng.choice(('南芬街道', '铁山街道', '郭家街道', '思山岭街道', '下马塘街道'))}社保所", Decimal(100)
        else:
            unit = f"本溪{rng.choice('鑫盛源隆兴旺达恒泰')}{rng.choice(COMPANIES)}有限公司"
            base = Decimal(rng.choice((2400, 2600, 2856, 3200, 3600, 4100)))
        area = rng.choice(("210505", "210505", "210502", "210503", "210102"))
        return self._add("hrss", who.pid, 姓名=who.name, 公民身份号码=who.pid, 险种=kind, 参保单位=unit,
                         参保地行政区划=area, 缴费起始年月=start, 缴费终止年月=end, 累计缴费月数=months,
                         月缴费基数=base)

    def housing(self, who, when: dt.date, rng) -> dict:
        area = Decimal(rng.randint(4500, 12000)) / 100
        price = (area * rng.randint(3200, 6500)).quantize(Decimal("1"))
        project = rng.choice(PROJECTS)
        return self._add("housing", who.pid, exact=True, 买受人=who.name, 证件号码=who.pid, 项目名称=project,
                         房屋坐落=f"{rng.choice(CITIES)}{project}{rng.randint(1, 30)}号楼{rng.randint(1, 6)}单元"
                                  f"{rng.randint(1, 18)}0{rng.randint(1, 4)}室",
                         建筑面积=area, 合同总价=price, 备案日期=when)

    def vehicle(self, who, vtype: str, use: str, status: str, rng) -> dict:
        if "摩托" in vtype:
            ptype, plate = "普通摩托车", f"辽E{rng.randrange(10000, 99999)}"
        elif "拖拉机" in vtype:
            ptype, plate = "拖拉机", f"辽05-{rng.randrange(10000, 99999)}"
        elif "三轮" in vtype or "低速" in vtype:
            ptype, plate = "低速车", f"辽E{rng.randrange(10000, 99999)}"
        elif vtype.startswith("中型") or vtype.startswith("重型") or vtype.startswith("大型"):
            ptype, plate = "大型汽车", f"辽E{rng.randrange(10000, 99999)}"
        else:
            ptype, plate = "小型汽车", f"辽E{rng.choice('ABCDEFGHJK')}{rng.randrange(1000, 9999)}"
        return self._add("vehicles", who.pid, 机动车所有人=who.name, 身份证明号码=who.pid, 号牌号码=plate,
                         号牌种类=ptype, 车辆类型=vtype, 使用性质=use, 初次登记日期=self._date(rng, 2006),
                         机动车状态=status)

    def education(self, who, stage: str, status: str, rng) -> dict:
        grade = {"学前": "大班", "小学": f"{rng.randint(1, 6)}年级", "初中": f"{rng.randint(7, 9)}年级",
                 "高中": f"高{rng.randint(1, 3)}", "中职": f"{rng.randint(1, 3)}年级",
                 "高职": f"{rng.randint(1, 3)}年级", "本科": f"{rng.randint(1, 4)}年级"}[stage]
        prefix = "南芬区" if stage in ("学前", "小学", "初中") else ""
        return self._add("education", who.pid, 学生姓名=who.name, 身份证件号=who.pid,
                         学校名称=prefix + SCHOOLS[stage], 学段=stage, 年级=grade, 学籍状态=status)

    def medical(self, who, serious: bool, rng) -> dict:
        cat = "重特大疾病" if serious else rng.choice(("门诊慢性病", "门诊慢性病", "门诊特殊病"))
        disease = rng.choice(SERIOUS if serious else CHRONIC)
        cost = Decimal(rng.randint(300, 60000 if serious else 8000)) + Decimal(rng.randint(0, 99)) / 100
        return self._add("medical", who.pid, 姓名=who.name, 身份证号=who.pid, 认定类别=cat, 病种名称=disease,
                         认定日期=self._date(rng, 2012), 年度个人自付医疗费用=cost)

    def disability(self, who, dtype: str, grade: str, status: str, rng) -> dict:
        cert = f"{who.pid}{DIS_CODES[dtype]}{GRADE_CODES[grade]}"
        return self._add("disability", who.pid, 姓名=who.name, 身份证号=who.pid, 残疾人证号=cert, 残疾类别=dtype,
                         残疾等级=grade, 发证日期=self._date(rng, 2008), 证件状态=status)

    def recheck(self, hh, size: int, net_yuan: int, opinion: str, rng) -> dict:
        head = hh.head
        return self._add("income_recheck", head.pid, 户主姓名=head.name, 户主身份证号=head.pid, 复核家庭人口=size,
                         复核家庭年纯收入=Decimal(net_yuan), 复核单位=rng.choice(("区统计局", "区纪委监委")),
                         复核日期=dt.date(self.st.reference_date.year, 5, rng.randint(11, 15)), 复核意见=opinion)

    # ---------------------------------------------------------------------------------------
    # planting hits and decoys
    # ---------------------------------------------------------------------------------------
    def _intent(self, rule: str, kind: str, hh, person, what: str) -> None:
        self.planted.append({"rule": rule, "kind": kind, "village_code": hh.village.code, "head_id": hh.head.pid,
                             "person_id": person.pid if person is not None else None, "what": what})

    def planted_key(self) -> list:
        return list(self.planted)

    def plant(self, rng: random.Random) -> None:
        district = self.district
        st = self.st
        skip = {"blocked", "boundary", "bunch_above", "bunch_below", "all_zero", "loss", "w3", "missed"}
        hs = [hh for hh in district.households if not (hh.tags & skip) and not hh.unreadable_amount
              and not hh.village.roles & {"bunch", "bunch_decoy"}]
        cand2 = [hh for hh in hs if hh.exited and district.candidate(hh)]
        cand3 = [hh for hh in hs if hh.kind in ("ordinary", "foreign", "removed") and district.candidate(hh)
                 and hh.applied and hh.review == S.REVIEW_PASSED and hh.main_cause]
        low = [hh for hh in hs if district.candidate(hh)]
        anyone = hs
        used: set[int] = set()
        year = st.income_year
        ref = st.reference_date

        def pick(pools, pred=lambda h: True):
            for pool in pools:
                if not pool:
                    continue
                n = len(pool)
                start = rng.randrange(n)
                for i in range(n):
                    hh = pool[(start + i) % n]
                    if hh.key not in used and pred(hh):
                        used.add(hh.key)
                        return hh
            return None

        def adult(hh, lo=18, hi=75, pred=lambda p: True):
            ps = [p for p in hh.linked() if lo <= p.age <= hi and pred(p)]
            return ps[0] if ps else None

        def hit_pools():
            # hits mostly where they change 附件2/3 membership
            r = rng.random()
            if r < 0.4:
                return [cand2, cand3, low, anyone]
            if r < 0.7:
                return [cand3, cand2, low, anyone]
            if r < 0.85:
                return [low, anyone]
            return [anyone]

        def decoy_pools():
            return [low, anyone] if rng.random() < 0.5 else [anyone]

        c = self.district.count

        # ---- X1 工商 ----
        hits = [("个体工商户", "存续"), ("个体工商户", "在业"), ("有限责任公司", "存续"), ("个人独资企业", "在业")]
        decoys = [("农民专业合作社", "存续"), ("个体工商户", "注销"), ("有限责任公司", "吊销"), ("农民专业合作社", "在业")]
        self._plant_simple("X1", hits, decoys, c(5, 4), c(5, 4), pick, hit_pools, decoy_pools, adult,
                           lambda p, spec, hh: self.market(p, spec[0], spec[1], rng, hh.village.name[:-1]),
                           lambda spec: f"{spec[0]} {spec[1]}")
        # ---- X2 商品房 ----
        hits = [ref, dt.date(2016, 8, 12), dt.date(2018, 11, 3), dt.date(2019, 3, 28)]
        decoys = [ref + dt.timedelta(days=1), dt.date(2019, 5, 14)]
        self._plant_simple("X2", hits, decoys, c(4, 3), c(2, 2), pick, hit_pools, decoy_pools, adult,
                           lambda p, when, hh: self.housing(p, when, rng), lambda when: f"备案日期 {when}")
        # ---- X3 车辆 ----
        hits = [("小型轿车", "非营运", "正常"), ("小型普通客车", "非营运", "正常"), ("小型轿车", "非营运", "正常"),
                ("中型普通客车", "非营运", "正常")]
        decoys = [("轻型普通货车", "非营运", "正常"), ("三轮汽车", "非营运", "正常"), ("普通二轮摩托车", "非营运", "正常"),
                  ("轮式拖拉机", "非营运", "正常"), ("小型轿车", "非营运", "报废"), ("小型轿车", "非营运", "注销"),
                  ("小型轿车", "出租客运", "正常"), ("小型普通客车", "营运", "正常"), ("小型轿车", "非营运", "转出")]
        self._plant_simple("X3", hits, decoys, c(5, 4), c(9, 9), pick, hit_pools, decoy_pools, adult,
                           lambda p, spec, hh: self.vehicle(p, *spec, rng), lambda spec: " ".join(spec))
        # ---- X4 个税 ----
        hits = [(dt.date(year, 1, 1), dt.date(year, 12, 31), 1), (dt.date(year, 3, 1), dt.date(year, 3, 31), 1),
                (dt.date(year, 7, 1), dt.date(year, 9, 30), 1)]
        decoys = [(dt.date(year, 1, 1), dt.date(year, 12, 31), 0), (dt.date(year - 1, 1, 1), dt.date(year - 1, 12, 31), 1),
                  (dt.date(year + 1, 1, 1), dt.date(year + 1, 3, 31), 1)]

        def tax(p, spec, hh):
            start, end, paid = spec
            income = Decimal(rng.randint(36000, 120000))
            amount = (income * Decimal("0.03")).quantize(Decimal("0.01")) if paid else Decimal(0)
            return self.tax(p, start, end, income, amount, rng)

        self._plant_simple("X4", hits, decoys, c(3, 3), c(3, 3), pick, hit_pools, decoy_pools, adult, tax,
                           lambda spec: f"{spec[0]}..{spec[1]} 实缴{'>0' if spec[2] else '=0'}")

        # ---- D1 务工 ----
        def not_working(p):
            return p.work == S.NOT_WORKING and p.school == "非在校生"

        for _ in range(c(4, 3)):
            hh = pick(hit_pools(), lambda h: adult(h, 20, 59, not_working))
            if hh:
                p = adult(hh, 20, 59, not_working)
                self.hrss(p, EMPLOYEE_PENSION, dt.date(year - 1, 3, 1), dt.date(year, 10, 1), rng)
                self._intent("D1", "hit", hh, p, "企业职工养老 2017-03..2018-10，调查为未务工")
        for _ in range(c(2, 1)):
            hh = pick(hit_pools(), lambda h: adult(h, 20, 59, lambda p: p.work != S.NOT_WORKING) and h.net > 0)
            if hh:
                p = adult(hh, 20, 59, lambda p: p.work != S.NOT_WORKING)
                hh.force_zero_wage = True
                self.hrss(p, EMPLOYEE_PENSION, dt.date(year, 1, 1), dt.date(year, 12, 1), rng)
                self._intent("D1", "hit", hh, p, "企业职工养老 2018，工资性收入为0")
        for _ in range(c(2, 2)):
            hh = pick(decoy_pools(), lambda h: adult(h, 20, 59, lambda p: p.work != S.NOT_WORKING) and h.net >= 300000)
            if hh:
                p = adult(hh, 20, 59, lambda p: p.work != S.NOT_WORKING)
                self.hrss(p, EMPLOYEE_PENSION, dt.date(year - 1, 1, 1), dt.date(year + 1, 3, 1), rng)
                self._intent("D1", "decoy", hh, p, "企业职工养老，务工且有工资性收入")
        decoy_specs = [(RESIDENT_PENSION, dt.date(2012, 1, 1), dt.date(year + 1, 3, 1)),
                       (EMPLOYEE_PENSION, dt.date(year - 4, 1, 1), dt.date(year - 2, 12, 1)),
                       ("失业保险", dt.date(year, 1, 1), dt.date(year, 12, 1))]
        for k in range(c(3, 3)):
            kind, start, end = decoy_specs[k % 3]
            hh = pick(decoy_pools(), lambda h: adult(h, 20, 59, not_working))
            if hh:
                p = adult(hh, 20, 59, not_working)
                self.hrss(p, kind, start, end, rng)
                self._intent("D1", "decoy", hh, p, f"{kind} {start:%Y-%m}..{end:%Y-%m}，未务工")

        # ---- D2 疾病 ----
        for _ in range(c(3, 2)):
            hh = pick(hit_pools(), lambda h: adult(h, 30, 80))
            if hh:
                p = adult(hh, 30, 80)
                if "患有大病" not in p.health:
                    p.health = ["患有大病"] + [x for x in p.health if x not in S.SERIOUS_HEALTH]
                p.flag("no_med")
                self._intent("D2", "hit", hh, p, "自报患有大病，无医保认定")
        for _ in range(c(2, 2)):
            hh = pick(hit_pools(), lambda h: bool(h.main_cause) and not any(
                x in S.SERIOUS_HEALTH for m in h.linked() for x in m.health))
            if hh:
                hh.main_cause = "因病"
                hh.other_causes = tuple(x for x in hh.other_causes if x != "因病")
                self._intent("D2", "hit", hh, None, "主要致贫原因因病，无成员有医保认定")
        for _ in range(c(2, 2)):
            hh = pick(decoy_pools(), lambda h: adult(h, 30, 80))
            if hh:
                p = adult(hh, 30, 80)
                if not any(x in S.SERIOUS_HEALTH for x in p.health):
                    p.health = ["长期慢性病"] + p.health
                self._intent("D2", "decoy", hh, p, "自报长期慢性病，有医保认定")
        for _ in range(c(2, 2)):
            hh = pick(decoy_pools(), lambda h: adult(h, 18, 80, lambda p: not p.health))
            if hh:
                p = adult(hh, 18, 80, lambda p: not p.health)
                p.flag("med_extra")
                self._intent("D2", "decoy", hh, p, "有医保认定，未自报疾病")
        for _ in range(c(1, 1)):
            hh = pick(decoy_pools(), lambda h: bool(h.main_cause) and any(
                x in S.SERIOUS_HEALTH for m in h.linked() for x in m.health))
            if hh:
                hh.main_cause = "因病"
                hh.other_causes = tuple(x for x in hh.other_causes if x != "因病")
                self._intent("D2", "decoy", hh, None, "主要致贫原因因病，有成员有医保认定")

        # ---- D3 残疾 ----
        def make_disabled(p):
            if not p.disabled:
                p.disabled = True
                p.dis_type = rng.choice(("肢体", "视力", "听力", "智力"))
                p.dis_grade = rng.choice(S.DISABILITY_GRADES)
                p.health = [x for x in p.health if x != "残疾"] + ["残疾"]

        for flag in ["none", "cancelled", "grade", "type"] * c(1, 1):
            hh = pick(hit_pools(), lambda h: adult(h, 18, 80))
            if hh:
                p = adult(hh, 18, 80)
                make_disabled(p)
                p.flag("dis", flag)
                what = {"none": "持证残疾无残联记录", "cancelled": "残联记录已注销", "grade": "残联记录等级不同",
                        "type": "残联记录类别不同"}[flag]
                self._intent("D3", "hit", hh, p, what)
        for flag in ["match", "extra", "old_cancelled"] * c(1, 1):
            pred = (lambda p: not p.disabled) if flag == "extra" else (lambda p: True)
            hh = pick(decoy_pools(), lambda h: adult(h, 18, 80, pred))
            if hh:
                p = adult(hh, 18, 80, pred)
                if flag != "extra":
                    make_disabled(p)
                p.flag("dis", flag)
                what = {"match": "持证残疾，残联有效记录一致", "extra": "残联有效记录，调查未填持证",
                        "old_cancelled": "旧证注销，新证有效且一致"}[flag]
                self._intent("D3", "decoy", hh, p, what)

        # ---- D4 学籍 ----
        def pupil(p):
            return p.school not in S.NOT_IN_SCHOOL and not p.has("edu_stage")

        def out_of_school_young(p):
            return p.school == "非在校生" and 18 <= p.age <= 24

        for flag in ["none", "suspended"] * c(1, 1):
            hh = pick(hit_pools(), lambda h: any(pupil(m) for m in h.linked()))
            if hh:
                p = next(m for m in hh.linked() if pupil(m))
                p.flag("edu", flag)
                self._intent("D4", "hit", hh, p, "在校生无在读学籍" if flag == "none" else "学籍为休学，无在读")
        for _ in range(c(1, 1)):
            hh = pick(hit_pools(), lambda h: any(out_of_school_young(m) for m in h.linked()))
            if hh:
                p = next(m for m in hh.linked() if out_of_school_young(m))
                p.flag("edu", "reading")
                self._intent("D4", "hit", hh, p, "学籍在读，调查为非在校生")
        for _ in range(c(1, 1)):
            hh = pick(hit_pools(), lambda h: bool(h.main_cause) and not any(
                m.school not in S.NOT_IN_SCHOOL for m in h.linked()))
            if hh:
                hh.main_cause = "因学"
                hh.other_causes = tuple(x for x in hh.other_causes if x != "因学")
                self._intent("D4", "hit", hh, None, "主要致贫原因因学，无成员在读")
        for flag in ["graduated", "dropped"] * c(1, 1):
            if flag == "graduated":
                pred = out_of_school_young
            else:
                def pred(p):
                    return p.school == "非在校生" and 16 <= p.age <= 17
            hh = pick(decoy_pools(), lambda h: any(pred(m) for m in h.linked()))
            if hh:
                p = next(m for m in hh.linked() if pred(m))
                p.flag("edu", flag)
                self._intent("D4", "decoy", hh, p, "学籍毕业，调查为非在校生" if flag == "graduated"
                             else "学籍辍学，调查为非在校生")
        for _ in range(c(1, 1)):
            hh = pick(decoy_pools(), lambda h: bool(h.main_cause) and any(pupil(m) for m in h.linked()))
            if hh:
                hh.main_cause = "因学"
                hh.other_causes = tuple(x for x in hh.other_causes if x != "因学")
                self._intent("D4", "decoy", hh, None, "主要致贫原因因学，有成员在读")
        for _ in range(c(1, 1)):
            hh = pick(decoy_pools(), lambda h: any(pupil(m) for m in h.linked()))
            if hh:
                p = next(m for m in hh.linked() if pupil(m))
                self._intent("D4", "decoy", hh, p, "在校生，有在读学籍")

        # ---- D5 收入 ----
        line = st.monitoring_line

        def pc_of(hh):
            return Decimal(hh.net) / 100 / len(hh.linked())

        specs = [("low", Decimal("0.55")), ("high", Decimal("1.5")), ("cross_up", None), ("cross_down", None)]
        for k in range(c(5, 4)):
            name, factor = specs[k % 4]
            if name == "cross_up":
                hh = pick(hit_pools(), lambda h: Decimal(4700) <= pc_of(h) < Decimal(4950))
                target = Decimal(5120) if hh else None
            elif name == "cross_down":
                hh = pick([anyone], lambda h: Decimal(5050) <= pc_of(h) < Decimal(5400))
                target = Decimal(4880) if hh else None
            else:
                hh = pick(hit_pools(), lambda h: pc_of(h) >= 2000)
                target = pc_of(hh) * factor if hh else None
            if hh:
                size = len(hh.linked())
                self.recheck(hh, size, int(target * size), "收入与调查不符，建议重新核实", rng)
                self._intent("D5", "hit", hh, None, {"low": "复核人均低45%", "high": "复核人均高50%",
                                                     "cross_up": "复核人均跨过5000（调查低于）",
                                                     "cross_down": "复核人均低于5000（调查高于）"}[name])
        for k in range(c(6, 4)):
            # within the tolerance whether measured against the survey or the recheck value
            factor = (Decimal("0.97"), Decimal("1.03"), Decimal("1.18"), Decimal("0.86"))[k % 4]
            hh = pick(decoy_pools(), lambda h: pc_of(h) >= 1000 and (
                pc_of(h) * factor < line * Decimal("0.98") if pc_of(h) < line else pc_of(h) * factor > line * Decimal("1.02")))
            if hh:
                size = len(hh.linked())
                net_yuan = int(pc_of(hh) * factor * size)
                self.recheck(hh, size, net_yuan, "基本属实", rng)
                self._intent("D5", "decoy", hh, None, f"复核人均为调查的{factor}倍，同侧")

    def _plant_simple(self, rule, hits, decoys, n_hits, n_decoys, pick, hit_pools, decoy_pools, adult, make, what):
        district = self.district

        def one_reason(h):
            """An exclusion must be the only reason a 附件3 candidate is left out."""
            return not (h.kind in ("ordinary", "foreign", "removed") and district.candidate(h)) or (
                h.applied and h.review == S.REVIEW_PASSED and bool(h.main_cause))

        for kind, specs, n, pools in (("hit", hits, n_hits, hit_pools), ("decoy", decoys, n_decoys, decoy_pools)):
            for k in range(n):
                spec = specs[k % len(specs)]
                hh = pick(pools(), lambda h: adult(h, 20, 70) and (kind == "decoy" or one_reason(h)))
                if hh is None:
                    continue
                p = adult(hh, 20, 70)
                make(p, spec, hh)
                self._intent(rule, kind, hh, p, what(spec))

    # ---------------------------------------------------------------------------------------
    # records everyone has (consistent with the survey), and people not in the survey
    # ---------------------------------------------------------------------------------------
    def normal_records(self, households) -> None:
        rng = self.rng
        st = self.st
        year = st.income_year
        line = st.monitoring_line
        for hh in households:
            rows = hh.linked()
            for p in rows:
                edu = p.has("edu")
                stage = p.has("edu_stage") or STAGE_OF_SCHOOL.get(p.school)
                if p.school not in S.NOT_IN_SCHOOL:
                    if edu == "suspended":
                        self.education(p, stage, "休学", rng)
                    elif edu != "none":
                        self.education(p, stage, IN_SCHOOL_RECORD, rng)
                elif edu == "reading":
                    self.education(p, "本科" if p.age >= 18 else "高中", IN_SCHOOL_RECORD, rng)
                elif edu == "graduated":
                    self.education(p, rng.choice(("高中", "中职", "高职")), "毕业", rng)
                elif edu == "dropped" or (6 <= p.age <= 15 and p.school == "非在校生"):
                    self.education(p, "初中" if p.age >= 12 else "小学", "辍学", rng)
                claims = [x for x in p.health if x in S.SERIOUS_HEALTH]
                if claims and not p.has("no_med"):
                    self.medical(p, "患有大病" in claims, rng)
                elif p.has("med_extra"):
                    self.medical(p, False, rng)
                dis = p.has("dis")
                if p.disabled or dis == "extra":
                    dtype = p.dis_type or rng.choice(("肢体", "视力"))
                    grade = p.dis_grade or "四级"
                    if dis == "none":
                        pass
                    elif dis == "cancelled":
                        self.disability(p, dtype, grade, "注销", rng)
                    elif dis == "grade":
                        other = [g for g in S.DISABILITY_GRADES if g != grade]
                        self.disability(p, dtype, rng.choice(other), VALID_CERT, rng)
                    elif dis == "type":
                        other = [t for t in S.DISABILITY_TYPES if t != dtype]
                        self.disability(p, rng.choice(other), grade, VALID_CERT, rng)
                    elif dis == "old_cancelled":
                        other = [g for g in S.DISABILITY_GRADES if g != grade]
                        self.disability(p, dtype, rng.choice(other), "注销", rng)
                        self.disability(p, dtype, grade, VALID_CERT, rng)
                    else:
                        self.disability(p, dtype, grade, VALID_CERT, rng)
                if p.age >= 60 and rng.random() < 0.5:
                    self.hrss(p, RESIDENT_PENSION, dt.date(rng.randint(2010, 2013), 1, 1), dt.date(year + 1, 3, 1), rng)
                elif p.work != S.NOT_WORKING and hh.wage > 0 and rng.random() < 0.2:
                    self.hrss(p, EMPLOYEE_PENSION, dt.date(rng.randint(2012, year), rng.randint(1, 12), 1),
                              dt.date(year + 1, rng.randint(1, 3), 1), rng)
                elif p.work == S.NOT_WORKING and 18 <= p.age < 60 and p.school == "非在校生" and rng.random() < 0.25:
                    self.hrss(p, RESIDENT_PENSION, dt.date(rng.randint(2011, 2016), 1, 1), dt.date(year + 1, 3, 1), rng)
            # rechecks of low-income households, within tolerance and on the same side of the line
            size = len(rows)
            if (size and not hh.unreadable_amount and not hh.tags & {"blocked", "boundary", "bunch_above",
                                                                     "bunch_below"}
                    and not any(k == "income_recheck" for k, _ in self.by_pid.get(hh.head.pid, ()))
                    and self.district.candidate(hh) and rng.random() < 0.3):
                pc = Decimal(hh.net) / 100 / size
                if pc >= 1000 and abs(pc - line) > 300:
                    factor = Decimal(rng.randint(95, 105)) / 100
                    self.recheck(hh, size, int(pc * factor * size), "基本属实", rng)

    def unrelated(self, n: int) -> None:
        """People the departments know who are not in the survey (other districts, towns)."""
        rng = self.rng
        year = self.st.income_year
        ref = self.st.reference_date
        areas = ("210505", "210502", "210503", "210504", "210521", "210102", "210103", "210302", "370102", "220102")
        for _ in range(n):
            age = rng.randint(6, 80)
            male = rng.random() < 0.5
            birth = dt.date.fromordinal(dt.date(ref.year - age - 1, 6, 1).toordinal() + rng.randrange(365))
            pid = self.ids.make(rng.choice(areas), birth, male)
            who = Who(pid, person_name(rng, male), age, "男" if male else "女")
            r = rng.random()
            if age < 19:
                stage = "小学" if age <= 11 else "初中" if age <= 14 else "高中"
                self.education(who, stage, rng.choice((IN_SCHOOL_RECORD, IN_SCHOOL_RECORD, "毕业", "休学")), rng)
                continue
            if r < 0.12:
                self.market(who, rng.choice(("个体工商户", "有限责任公司", "农民专业合作社", "个人独资企业")),
                            rng.choice(("存续", "在业", "注销", "吊销")), rng)
            elif r < 0.25:
                start = dt.date(rng.choice((year - 1, year, year + 1)), rng.randint(1, 12), 1)
                self.tax(who, start, start.replace(day=28), Decimal(rng.randint(6000, 30000)),
                         Decimal(rng.randint(0, 900)), rng)
            elif r < 0.55:
                kind = rng.choice((EMPLOYEE_PENSION, RESIDENT_PENSION, "失业保险", "工伤保险"))
                self.hrss(who, kind, dt.date(rng.randint(2008, 2018), rng.randint(1, 12), 1),
                          dt.date(year + 1, rng.randint(1, 3), 1), rng)
            elif r < 0.62:
                self.housing(who, self._date(rng, 2012, ref + dt.timedelta(days=20)), rng)
            elif r < 0.75:
                vtype = rng.choice(("小型轿车", "小型普通客车", "轻型普通货车", "普通二轮摩托车", "三轮汽车"))
                self.vehicle(who, vtype, rng.choice(("非营运", "非营运", "营运")),
                             rng.choice(("正常", "正常", "注销", "报废")), rng)
            elif r < 0.87:
                self.medical(who, rng.random() < 0.2, rng)
            else:
                self.disability(who, rng.choice(S.DISABILITY_TYPES), rng.choice(S.DISABILITY_GRADES),
                                rng.choice((VALID_CERT, VALID_CERT, "注销")), rng)

    # ---------------------------------------------------------------------------------------
    # the rules on the truth
    # ---------------------------------------------------------------------------------------
    def evaluate(self, households) -> dict[int, set]:
        st = self.st
        year = st.income_year
        ref = st.reference_date
        line = st.monitoring_line
        tol = st.recheck_tolerance
        out: dict[int, set] = {}
        for hh in households:
            rows = hh.linked()
            found: set = set()
            any_med = any_reading = False
            for p in rows:
                recs = self.by_pid.get(p.pid, ())
                has_med = False
                reading = False
                valid_dis = []
                for key, r in recs:
                    if key == "market":
                        if r["主体类型"] in EXCLUDING_ENTITY_TYPES and r["登记状态"] in ACTIVE_ENTITY:
                            found.add("X1")
                    elif key == "housing":
                        if r["备案日期"] <= ref:
                            found.add("X2")
                    elif key == "vehicles":
                        t = r["车辆类型"]
                        if r["机动车状态"] == "正常" and ("轿车" in t or "客车" in t) and r["使用性质"] == "非营运":
                            found.add("X3")
                    elif key == "tax":
                        if r["实缴税额"] > 0 and _months_overlap(r["所属期起"], r["所属期止"], year):
                            found.add("X4")
                    elif key == "hrss":
                        if r["险种"] == EMPLOYEE_PENSION and _months_overlap(r["缴费起始年月"], r["缴费终止年月"], year):
                            if p.work == S.NOT_WORKING or hh.wage == 0:
                                found.add("D1")
                    elif key == "medical":
                        has_med = True
                    elif key == "education":
                        if r["学籍状态"] == IN_SCHOOL_RECORD:
                            reading = True
                    elif key == "disability":
                        if r["证件状态"] == VALID_CERT:
                            valid_dis.append((r["残疾类别"], r["残疾等级"]))
                any_med |= has_med
                any_reading |= reading
                if any(x in S.SERIOUS_HEALTH for x in p.health) and not has_med:
                    found.add("D2")
                if p.disabled and (p.dis_type, p.dis_grade) not in valid_dis:
                    found.add("D3")
                if p.school not in S.NOT_IN_SCHOOL and not reading:
                    found.add("D4")
                if p.school == "非在校生" and reading:
                    found.add("D4")
            if hh.main_cause == "因病" and not any_med:
                found.add("D2")
            if hh.main_cause == "因学" and not any_reading:
                found.add("D4")
            size = len(rows)
            if size and not hh.unreadable_amount:
                survey_pc = Decimal(hh.net) / 100 / size
                for key, r in self.by_pid.get(hh.head.pid, ()):
                    if key != "income_recheck":
                        continue
                    recheck_pc = r["复核家庭年纯收入"] / r["复核家庭人口"]
                    if abs(recheck_pc - survey_pc) > tol * abs(survey_pc) or (recheck_pc < line) != (survey_pc < line):
                        found.add("D5")
            if found:
                out[hh.key] = found
        return out

    # ---------------------------------------------------------------------------------------
    # files
    # ---------------------------------------------------------------------------------------
    def _render_id(self, rng, pid: str) -> str:
        r = rng.random()
        if r < 0.05 and pid[6:8] == "19":
            return pid[:6] + pid[8:17]
        if pid.endswith("X") and r < 0.35:
            return pid[:17] + "x"
        if 0.9 < r < 0.95:
            return " " + pid
        if r >= 0.95:
            return pid + "  "
        return pid

    @staticmethod
    def _render_date(d: dt.date, form: str, csv_file: bool):
        if form == "excel" and csv_file:
            form = "iso"
        if form == "iso":
            return d.isoformat()
        if form == "slash":
            return f"{d.year}/{d.month}/{d.day}"
        if form == "digits":
            return f"{d.year}{d.month:02d}{d.day:02d}"
        if form == "excel":
            return d
        if form == "cn":
            return f"{d.year}年{d.month}月{d.day}日"
        if form == "cn_month":
            return f"{d.year}年{d.month}月"
        if form == "ym_dash":
            return f"{d.year}-{d.month:02d}"
        if form == "ym6":
            return f"{d.year}{d.month:02d}"
        if form == "slash_month":
            return f"{d.year}/{d.month}"
        raise ValueError(form)

    def _render(self, key: str, rec: dict, rng) -> list:
        d = DEPT[key]
        csv_file = d.file_format == "csv"
        month_cols = getattr(d, "month_columns", ())
        out = []
        for col in d.columns:
            val = rec.get(col)
            if col == d.id_column:
                val = self._render_id(rng, rec["_pid"])
            elif isinstance(val, dt.date):
                if col in month_cols:
                    form = rng.choice(MONTH_FORMS)
                elif rec["_exact"] or key == "tax":
                    form = rng.choice(EXACT_DAY_FORMS)
                else:
                    form = rng.choice(DAY_FORMS)
                val = self._render_date(val, form, csv_file)
            elif isinstance(val, Decimal):
                val = str(val) if csv_file else (int(val) if val == int(val) else float(val))
            elif isinstance(val, int) and csv_file:
                val = str(val)
            out.append(val)
        return out

    def write(self, out: Path) -> list[tuple[str, float]]:
        """Write every extract, a department at a time; return (rel path, minutes) of each."""
        return [self.write_file(out, job) for job in self.iter_files(out)]

    def iter_files(self, out: Path):
        """Render the records (the RNG runs through the departments in order) and split the rows
        into the files a department sends: yields (rel path, department key, rows, minutes) per
        file, for :meth:`write_file` (which uses no RNG). A department's rows are rendered when
        the files of the one before have been taken."""
        rng = random.Random(f"{self.rng.random()}:files")
        for n_dept, d in enumerate(S.DEPARTMENTS):
            folder = out / S.DEPARTMENTS_DIR / d.key
            folder.mkdir(parents=True, exist_ok=True)
            rows = [self._render(d.key, rec, rng) for rec in self.records[d.key]]
            order = list(range(len(rows)))
            rng.shuffle(order)
            n = BATCHES[d.key]
            batches: list[list] = [[] for _ in range(n)]
            for pos, i in enumerate(order):
                b = pos * n // max(1, len(order))
                batches[b].append(rows[i])
                if n > 1 and rng.random() < 0.03:  # sent again in the next batch
                    batches[(b + 1) % n].append(rows[i])
            del rows, order
            for (rel, when), batch in zip(self._names(out, n_dept, d), batches):
                yield rel, d.key, batch, when

    def plan_names(self, out: Path) -> None:
        """The files each department sends (``self.files``), without rendering anything."""
        for n_dept, d in enumerate(S.DEPARTMENTS):
            (out / S.DEPARTMENTS_DIR / d.key).mkdir(parents=True, exist_ok=True)
            self._names(out, n_dept, d)

    def _names(self, out: Path, n_dept: int, d) -> list[tuple[str, float]]:
        """(rel path, minutes) of each batch file of department ``d``; sets ``self.files``."""
        n = BATCHES[d.key]
        names = []
        for b in range(n):
            ext = ".csv" if d.file_format == "csv" else ".xlsx"
            suffix = f"_第{b + 1}批" if n > 1 else ""
            name = f"{FILE_STEMS[d.key]}{suffix}{ext}"
            # batches of one department arrive a day apart, departments an hour apart
            names.append(((out / S.DEPARTMENTS_DIR / d.key / name).relative_to(out).as_posix(),
                          60 * 24 * (16 + b) + 60 * n_dept))
        self.files[d.key] = [rel for rel, _ in names]
        return names

    def write_file(self, out: Path, job: tuple) -> tuple[str, float]:
        """Write one file from :meth:`iter_files`; return (rel path, minutes)."""
        rel, key, rows, when = job
        d = DEPT[key]
        path = out / rel
        if d.file_format == "csv":
            self._write_csv(path, d, rows)
        else:
            self._write_xlsx(path, d, rows)
        return rel, when

    @staticmethod
    def _write_csv(path: Path, d, rows: list) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(d.columns)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
        path.write_bytes(buf.getvalue().encode(d.encoding or "utf-8"))

    @staticmethod
    def _write_xlsx(path: Path, d, rows: list) -> None:
        wb = xlsxfast.Workbook(str(path), {"in_memory": True, "strings_to_numbers": False,
                                           "strings_to_formulas": False, "strings_to_urls": False})
        wb.set_properties({"created": CREATED, "author": d.name})
        date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
        ws = wb.add_worksheet("Sheet1")
        for c, h in enumerate(d.columns):
            ws.write_string(0, c, h)
        put_row = ws.put_row
        for r, row in enumerate(rows, start=1):
            put_row(r, row, None, date_fmt)
        wb.close()

    def row_counts(self) -> dict:
        return {k: len(v) for k, v in self.records.items()}
