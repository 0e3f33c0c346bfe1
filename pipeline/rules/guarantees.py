"""两不愁三保障 and the focus groups (重点人群) of rules.md.

A household fails 两不愁三保障 when any of 不愁吃, 不愁穿, 义务教育有保障, 基本医疗有保障,
饮水安全 is 否 or 住房安全等级 is C or D. Focus groups are household tags, several allowed.
"""

from pipeline.schema import DANGEROUS_HOUSING, NO, SERIOUS_HEALTH, YES

# (name shown in 三保障问题, SQL condition on households h)
GUARANTEE_FAILURES = (
    ("不愁吃", f"h.food_ok = '{NO}'"),
    ("不愁穿", f"h.clothing_ok = '{NO}'"),
    ("义务教育", f"h.education_ok = '{NO}'"),
    ("基本医疗", f"h.medical_ok = '{NO}'"),
    ("住房安全", "h.housing_grade IN (" + ", ".join(f"'{g}'" for g in DANGEROUS_HOUSING) + ")"),
    ("饮水安全", f"h.water_ok = '{NO}'"),
)

_SERIOUS = " OR ".join(f"contains(coalesce(m.health, ''), '{s}')" for s in SERIOUS_HEALTH)

# (tag, SQL condition over the household h and the aggregated member flags f)
FOCUS_GROUPS = (
    ("危房户", "h.housing_grade IN (" + ", ".join(f"'{g}'" for g in DANGEROUS_HOUSING) + ")"),
    ("大病慢病户", "f.serious_illness"),
    ("残疾户", "f.disabled"),
    ("低保户", "f.dibao"),
    ("特困户", "f.tekun"),
    ("老年户", "f.elderly"),
    ("清退户", "s.status_type = '历年清退户'"),
    ("外籍户", f"h.resident_foreign = '{YES}'"),
)


def _joined(pairs) -> str:
    return "concat_ws('、', " + ", ".join(f"CASE WHEN {cond} THEN '{name}' END" for name, cond in pairs) + ")"


GUARANTEES_SQL = f"""
CREATE OR REPLACE TABLE household_guarantees AS
WITH f AS (
    SELECT hh_key,
           bool_or({_SERIOUS}) AS serious_illness,
           bool_or(disabled_cert = '{YES}') AS disabled,
           bool_or(dibao = '{YES}') AS dibao,
           bool_or(tekun = '{YES}') AS tekun,
           bool_or(age >= 65) AS elderly
    FROM members m WHERE hh_key IS NOT NULL GROUP BY hh_key
)
SELECT h.hh_uid, h.hh_key,
       ({' OR '.join('coalesce(' + c + ', false)' for _, c in GUARANTEE_FAILURES)}) AS fails_guarantee,
       nullif({_joined(GUARANTEE_FAILURES)}, '') AS guarantee_issues,
       nullif({_joined(FOCUS_GROUPS)}, '') AS focus_groups
FROM households h
LEFT JOIN f ON f.hh_key = h.hh_key
LEFT JOIN household_status s ON s.hh_key = h.hh_key;
"""
