"""Classification (rules.md, "Classification"): who goes into 附件2–6, and why others do not.

Write–audit–publish: this table is computed for every household (staged); the 附件 tables take
only households with no open blocking problem (``blocked``), which stay visible in the problem
lists instead. A household that meets the income or 三保障 condition of 附件2/3 but is left out
gets a 结论 naming the reason, for the 核查比对结果表.
"""

from pipeline.rules.crosscheck import HARD_EXCLUSIONS
from pipeline.schema import HH_ORDINARY, HH_REGISTERED, HH_REMOVED, REVIEW_PASSED, YES

_HARD = ", ".join(f"'{c}'" for c in HARD_EXCLUSIONS)

CLASSIFICATION_SQL = f"""
CREATE OR REPLACE TABLE classification AS
WITH findings AS (
    SELECT hh_key,
           string_agg(DISTINCT code || ' ' || finding, '、' ORDER BY code || ' ' || finding) AS findings_text,
           bool_or(code IN ({_HARD})) AS excluded,
           string_agg(DISTINCT CASE WHEN code IN ({_HARD}) THEN code || ' ' || finding END, '、'
                      ORDER BY CASE WHEN code IN ({_HARD}) THEN code || ' ' || finding END) AS exclusion_text
    FROM household_findings GROUP BY hh_key
), blocked AS (
    SELECT DISTINCT hh_key FROM open_problems WHERE blocking AND hh_key IS NOT NULL
), base AS (
    SELECT h.hh_uid, h.hh_key, s.status_type, s.registry_status, s.exited,
           i.size, i.net_income, i.per_capita, i.below_poverty_line, i.below_identification_line,
           i.below_monitoring_line, g.fails_guarantee, g.guarantee_issues, g.focus_groups,
           f.findings_text, coalesce(f.excluded, false) AS excluded, f.exclusion_text,
           b.hh_key IS NOT NULL OR h.hh_key IS NULL OR coalesce(i.size, 0) = 0 AS blocked,
           h.main_cause, h.applied, h.review_result
    FROM households h
    LEFT JOIN household_status s ON s.hh_key = h.hh_key
    LEFT JOIN household_income i ON i.hh_uid = h.hh_uid
    LEFT JOIN household_guarantees g ON g.hh_uid = h.hh_uid
    LEFT JOIN findings f ON f.hh_key = h.hh_key
    LEFT JOIN blocked b ON b.hh_key = h.hh_key
), cond AS (
    SELECT *,
           coalesce(below_monitoring_line, false) OR coalesce(fails_guarantee, false) AS meets_condition,
           exited AS annex2_population,
           status_type IN ('{HH_ORDINARY}', '{HH_REMOVED}') AS annex3_population
    FROM base
)
SELECT *,
       CASE WHEN annex2_population AND meets_condition AND NOT excluded AND NOT blocked THEN
            CASE WHEN below_poverty_line OR coalesce(fails_guarantee, false) THEN '返贫' ELSE '重点扶持' END
       END AS annex2_category,
       CASE WHEN annex3_population AND meets_condition AND NOT excluded AND NOT blocked
                 AND main_cause IS NOT NULL AND applied = '{YES}' AND review_result = '{REVIEW_PASSED}' THEN
            CASE WHEN below_identification_line OR coalesce(fails_guarantee, false) THEN '新识别' ELSE '重点扶持' END
       END AS annex3_category,
       NOT blocked AND status_type = '{HH_REGISTERED}' AND coalesce(below_monitoring_line, false) AS in_annex4,
       NOT blocked AND coalesce(below_identification_line, false) AS in_annex5,
       NOT blocked AND coalesce(below_monitoring_line, false) AS in_annex6,
       CASE
           WHEN NOT ((annex2_population OR annex3_population) AND meets_condition) THEN NULL
           WHEN blocked THEN '数据问题待核实'
           WHEN excluded THEN '排除：' || exclusion_text
           WHEN annex2_population THEN '列入附件2'
           WHEN coalesce(applied, '') <> '{YES}' THEN '未申请'
           WHEN coalesce(review_result, '') <> '{REVIEW_PASSED}' THEN '评议未通过'
           WHEN main_cause IS NULL THEN '无致贫原因'
           ELSE '列入附件3'
       END AS conclusion
FROM cond;
"""
