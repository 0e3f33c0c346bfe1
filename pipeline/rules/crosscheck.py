"""Cross-checks (rules.md, "Cross-checks (比对)"): X1–X4 hard exclusions, D1–D5 doubts.

Person-level matches on the normalized ID, rolled up to the household, in DuckDB SQL over the
department tables. Each finding keeps the department record that caused it (evidence).
"""

HARD_EXCLUSIONS = {"X1": "工商", "X2": "商品房", "X3": "车辆", "X4": "个税"}
DOUBTS = {"D1": "务工", "D2": "疾病", "D3": "残疾", "D4": "学籍", "D5": "收入"}
FINDINGS = {**HARD_EXCLUSIONS, **DOUBTS}

# Until the department tables are joined, the findings table exists and is empty.
EMPTY_FINDINGS_SQL = """
CREATE OR REPLACE TABLE household_findings (
    hh_key VARCHAR, code VARCHAR, finding VARCHAR, person_id VARCHAR, evidence VARCHAR
);
"""
