"""Steps 3 to 6 of the sample generator: what the answer key must find, planted in the truth.

3. planted incomes: exact boundary households, a 算账式脱贫 village and a near-miss village;
4. planted data problems (B1–B9, warnings) on a few percent of households;
5. no accidental bunching elsewhere (households nudged until no other village triggers W6);
6. participation (是否申请纳入, 民主评议结果, 主要致贫原因) for the households that need it.

Each step changes the model of ``model.py`` in place and draws from its own seeded RNG.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from pipeline import schema as S
from pipeline.rules.ids import check_char
from pipeline.sample.model import (
    District,
    Household,
    Person,
    Village,
    age_on,
    below,
    draw_attributes,
    draw_cause,
    draw_other_causes,
    wchoice,
)


@dataclass(frozen=True)
class Planted:
    """A data problem planted in a household, for the answer key to cite where the files put it."""

    rule: str
    hh: Household
    sheet: str | None
    col: str | None  # the column key; None: the row as a whole
    person: Person | None = None
    orphan: bool = False  # B4: the member row links to no household
    missing: bool = False  # B9: the member is in no file
    missed: bool = False  # B9: the household is in no file

# ------------------------------------------------------------------------------------------
# 3. Planted incomes: exact boundaries and bunching
# ------------------------------------------------------------------------------------------


def plant_incomes(d: District) -> None:
    """Exact boundary incomes, the all-zero and loss households (W8), and the bunched and
    near-miss villages around the monitoring line."""
    rng = d.rng_for("incomes")
    special = {"bunch", "bunch_decoy"}
    normal = [hh for hh in d.households if not (special & hh.village.roles)]
    # exact boundaries: (per-capita in cents or None, size, net in cents)
    exact = []
    st = d.settings
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
    reps = d.count(1)
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
    for hh in rng.sample(plain, min(len(plain), d.count(4, 2))):
        hh.all_zero = True
        hh.net = 0
        for p in hh.members:
            p.work, p.work_months = "未务工", 0
        hh.tags.add("all_zero")
    plain = [hh for hh in normal if not hh.tags]
    for hh in rng.sample(plain, min(len(plain), d.count(6, 2))):
        hh.net = -rng.randint(300, 4000) * 100 * len(hh.members)
        hh.tags.add("loss")
    # 算账式脱贫: exited households just above 5000, few just below
    line = d.settings.monitoring_line
    for v in d.villages:
        if "bunch" in v.roles:
            _shape_band(d, rng, v, line, n_above=7, n_below=2, prefer_exited=True)
        elif "bunch_decoy" in v.roles:
            # exactly two to one: not "more than two to one"
            _shape_band(d, rng, v, line, n_above=6, n_below=3, prefer_exited=False)


def _band_counts(d: District, v: Village, line: Decimal, include_blocked: bool = True):
    """The households of ``v`` just above ``line`` and just below it (within the band)."""
    band = d.settings.bunching_band
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


def _shape_band(d: District, rng, v: Village, line: Decimal, n_above: int, n_below: int,
                prefer_exited: bool = False) -> None:
    """``n_above`` households of ``v`` just above ``line`` and ``n_below`` just below, the rest
    of the band cleared, and the other lines of the village kept quiet."""
    band = d.settings.bunching_band
    a, b = _band_counts(d, v, line)
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
    for other in (d.settings.poverty_line, d.settings.identification_line):
        oa, _ = _band_counts(d, v, other)
        for hh in oa:
            if not hh.tags:
                hh.net = round(rng.uniform(float(line) + band + 60, 12000) * len(hh.members)) * 100


# ------------------------------------------------------------------------------------------
# 4. Planted data problems
# ------------------------------------------------------------------------------------------


def plant_problems(d: District) -> list[Planted]:
    """Plant the data problems (B1–B9) and warnings in the model; return the problems."""
    plants: list[Planted] = []
    rng = d.rng_for("problems")
    special = {"bunch", "bunch_decoy"}
    eligible = [hh for hh in d.households if not (special & hh.village.roles) and not hh.tags]
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
    for k, hh in enumerate(take(lambda h: ordinary(h) and plain_adult(h), d.count(5, 3))):
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
        plants.append(Planted("B1", hh, M, "person_id", p))
    # B2: an ID Excel stored as a number (15 significant digits kept)
    for hh in take(lambda h: ordinary(h) and plain_adult(h) and plain_adult(h).pid[-1] != "X", d.count(5, 2)):
        p = plain_adult(hh)
        p.set_cell("person_id", float(f"{int(p.pid):.15g}"))
        block(hh, "B2")
        plants.append(Planted("B2", hh, M, "person_id", p))
    # B3: the same person in two households of one village, and in two villages
    n3 = d.count(2, 2)
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
        plants.append(Planted("B3", hh, M, "person_id", p))
        plants.append(Planted("B3", other[0], M, "person_id", p))
    # B4: a member whose 户主身份证号 matches no household (the spouse's ID was typed);
    # and a household whose members were never entered
    for hh in take(lambda h: ordinary(h) and len(h.members) >= 3 and plain_adult(h), d.count(1)):
        p = plain_adult(hh)
        spouse = next((m for m in hh.members[1:] if m is not p), None)
        p.orphan_head = spouse.pid
        hh.declared_size = len(hh.members)
        plants.append(Planted("B4", hh, M, "head_id", p, orphan=True))
    for hh in take(lambda h: ordinary(h) and not any(m.registered for m in h.members), d.count(1)):
        hh.no_member_rows = True
        hh.declared_size = len(hh.members)  # the village counted them, but typed no member rows
        hh.unreadable_amount = True  # no members: no per-capita income
        block(hh, "B4")
        plants.append(Planted("B4", hh, H, "head_id"))
    # B5: two 户主
    for hh in take(lambda h: ordinary(h) and plain_adult(h), d.count(2, 2)):
        p = plain_adult(hh)
        p.set_cell("relation", S.HEAD)
        block(hh, "B5")
        plants.append(Planted("B5", hh, M, "relation", p))
    # B6: a required value missing
    b6 = take(lambda h: ordinary(h) and plain_adult(h), d.count(3, 3))
    for k, hh in enumerate(b6):
        if k % 3 == 0:
            hh.cell["housing_grade"] = None
            plants.append(Planted("B6", hh, H, "housing_grade"))
        else:
            p = plain_adult(hh)
            key = "name" if k % 3 == 1 else "relation"
            p.set_cell(key, None)
            plants.append(Planted("B6", hh, M, key, p))
        block(hh, "B6")
    # B7: a value outside its code list
    for k, hh in enumerate(take(lambda h: ordinary(h) and plain_adult(h), d.count(3, 2))):
        if k % 2 == 0:
            hh.cell["housing_grade"] = "E"
            plants.append(Planted("B7", hh, H, "housing_grade"))
        else:
            p = plain_adult(hh)
            p.set_cell("labor_skill", "强劳动力")
            plants.append(Planted("B7", hh, M, "labor_skill", p))
        block(hh, "B7")
    # B8: an amount negative or not a number
    b8_values = (("wage_income", "-500"), ("business_income", "不详"), ("property_income", "约2000元"))
    for k, hh in enumerate(take(lambda h: ordinary(h), d.count(3, 3))):
        key, raw = b8_values[k % 3]
        hh.cell[key] = raw
        hh.unreadable_amount = True
        block(hh, "B8")
        plants.append(Planted("B8", hh, H, key))
    # B9 漏人: a registered member the village left out
    def registered_member(h):
        return next((m for m in h.members[1:] if m.registered and not m.health and not m.disabled
                     and m.school == "非在校生"), None)
    for hh in take(lambda h: h.kind == "reg" and registered_member(h), d.count(3, 2)):
        p = registered_member(hh)
        p.in_survey = False
        block(hh, "B9")
        plants.append(Planted("B9", hh, H, None, p, missing=True))
    for hh in d.missed_households:
        if hh.kind == "reg":
            plants.append(Planted("B9", hh, None, None, None, missed=True))
    # ---- warnings (not blocking) ----
    # W1 declared 家庭人口 differs
    for hh in take(lambda h: True, d.count(30, 2)):
        hh.declared_size = len(hh.members) + rng.choice((-1, 1, 1, 2))
        if hh.declared_size <= 0:
            hh.declared_size = len(hh.members) + 1
    # W2 性别 differs from the ID
    for hh in take(lambda h: True, d.count(10, 2)):
        p = hh.members[-1]
        p.set_cell("sex", "女" if p.sex == "男" else "男")
    # W3 age does not fit 在校生状况 (each such pupil is 在读 at a school: no D4)
    for hh in take(lambda h: any(10 == m.age for m in h.members), d.count(2, 1)):
        p = next(m for m in hh.members if m.age == 10)
        p.school = "七至九年级"
        p.education = "小学"
        p.flag("edu_stage", "小学")
        hh.tags.add("w3")
    for hh in take(lambda h: any(22 <= m.age <= 26 and m.school == "非在校生" and not m.health
                                 and not m.disabled for m in h.members[1:]), d.count(1)):
        p = next(m for m in hh.members[1:] if 22 <= m.age <= 26 and m.school == "非在校生"
                 and not m.health and not m.disabled)
        p.school = "高中"
        p.work, p.work_months, p.labor = "未务工", 0, "无劳动力"
        p.flag("edu_stage", "本科")
        hh.tags.add("w3")
    # W4 转移性收入合计 differs from its sub-items by more than 1 yuan; W4 decoys: exactly 1 yuan
    for hh in take(lambda h: h.net > 200000, d.count(25, 3)):
        hh.tags.add("w4")
    for hh in take(lambda h: h.net > 200000, d.count(5, 2)):
        hh.tags.add("w4_one_yuan")
    # W5 declared 户类型/脱贫状态 disagrees with the registry
    for k, hh in enumerate(take(lambda h: h.kind in ("reg", "removed"), d.count(20, 4))):
        if hh.kind == "removed":
            hh.declared_type, hh.declared_status = S.HH_REGISTERED, S.STATUS_EXITED_NO_POLICY
        elif k % 3 == 0:
            hh.declared_type, hh.declared_status = S.HH_ORDINARY, ""
        elif hh.status == S.STATUS_EXITED_NO_POLICY:
            hh.declared_status = S.STATUS_EXITED_POLICY
        else:
            hh.declared_status = S.STATUS_EXITED_NO_POLICY if hh.status != S.STATUS_EXITED_NO_POLICY \
                else S.STATUS_NOT_EXITED
    for hh in take(lambda h: h.kind == "ordinary", d.count(3, 1)):
        hh.declared_type, hh.declared_status = S.HH_REGISTERED, S.STATUS_EXITED_POLICY
    # W7 age above 110, and born after the reference date
    for k, hh in enumerate(take(lambda h: ordinary(h) and len(h.members) >= 2, d.count(2, 2))):
        p = hh.members[-1]
        if k % 2 == 0:
            birth = dt.date(d.ref.year - 113, 3, 9)
            p.relation, p.sex = "之母", "女"
        else:
            birth = d.ref + dt.timedelta(days=45)
            p.relation = "之孙子" if p.sex == "男" else "之孙女"
        p.birth = birth
        p.age = age_on(birth, d.ref)
        p.pid = d.ids.make(d.settings.district_code, birth, p.sex == "男")
        p.health = [h for h in p.health if h != "残疾"]
        p.disabled, p.dis_type, p.dis_grade = False, "", ""
        draw_attributes(d.rng_for(f"w7:{hh.key}"), p, False)
        p.school = "非在校生"
        p.health, p.disabled, p.dis_type, p.dis_grade = [], False, "", ""
        p.work, p.work_months = "未务工", 0
        p.labor = "无劳动力"
        p.registered = False
        p.dibao = hh.members[0].dibao
    # W9 a bad phone number
    for k, hh in enumerate(take(lambda h: True, d.count(12, 2))):
        good = "1" + rng.choice("3578") + f"{rng.randrange(10 ** 9):09d}"
        hh.phone = good[:10] if k % 2 == 0 else good + str(rng.randrange(10))
        hh.tags.add("w9")
    return plants


# ------------------------------------------------------------------------------------------
# 5. No accidental bunching
# ------------------------------------------------------------------------------------------


def no_accidental_bunching(d: District) -> None:
    """Move households out of the band above a line until no village but the planted ones
    triggers W6 (with or without its held-back households)."""
    rng = d.rng_for("nudge")
    st = d.settings
    band = st.bunching_band
    lines = (st.poverty_line, st.identification_line, st.monitoring_line)
    for v in d.surveyed_villages:
        planted = v.roles & {"bunch", "bunch_decoy"}
        for line in lines:
            if planted and line == st.monitoring_line:
                continue
            for _ in range(1000):
                hit = False
                for include_blocked in (True, False):
                    above, under = _band_counts(d, v, line, include_blocked)
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


# ------------------------------------------------------------------------------------------
# 6. Participation: 是否申请纳入, 民主评议结果, 主要致贫原因
# ------------------------------------------------------------------------------------------


def participation(d: District) -> None:
    """Whether each household applied, the 民主评议 result and its 致贫原因: every outcome the
    annexes tell apart, for the households that meet a condition, and a few that do not."""
    rng = d.rng_for("participation")
    for hh in d.households:
        if hh.kind in ("ordinary", "foreign", "removed"):
            if d.candidate(hh) and "boundary" in hh.tags:
                outcome = "in"
            elif d.candidate(hh):
                outcome = wchoice(rng, (("in", 50), ("未申请", 22), ("评议未通过", 15), ("无致贫原因", 13)))
                hh.tags.add("cand3")
            else:
                outcome = wchoice(rng, (("none", 95), ("评议未通过", 5)))
            cause = hh.main_cause or draw_cause(rng, hh)
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
                hh.other_causes = draw_other_causes(rng, hh.main_cause)
        else:
            if hh.exited and d.candidate(hh) and rng.random() < 0.15:
                hh.applied, hh.review = True, "通过"
