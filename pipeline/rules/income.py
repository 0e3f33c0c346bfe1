"""Income (rules.md, "Income"), exact to the cent.

转移性收入 used = the sum of its seven sub-items when any sub-item is filled (non-zero), otherwise
转移性收入合计. 家庭年纯收入 = 工资性 + 生产经营性 + 财产性 + 转移性 − 生产经营性支出 (may be
negative; 一次性补助 never counted). 家庭人口 = member rows linked to the household. Comparisons
with a line are exact and strict: per capita < line  ⇔  net income < line × 家庭人口. The shown
年人均纯收入 is cut down to the cent (floor: 4499.9967 → 4499.99, −12.345 → −12.35), so a shown
value never contradicts a strict comparison (no household below 5000 shows 5000.00).
"""

from pipeline.schema import INCOME_ITEMS, TRANSFER_SUB_ITEMS


def floor_cents(cents: str, size: str) -> str:
    """floor(cents / size) in integers (DuckDB's ``//`` truncates toward zero)."""
    return (f"(CASE WHEN {cents} >= 0 THEN {cents} // {size} "
            f"ELSE -(({size} - 1 - {cents}) // {size}) END)")


_SUB_SUM = " + ".join(f"h.{k}" for k in TRANSFER_SUB_ITEMS)
_SUB_ANY = " OR ".join(f"h.{k} <> 0" for k in TRANSFER_SUB_ITEMS)
_ITEMS = " + ".join(f"h.{k}" for k in INCOME_ITEMS)

INCOME_SQL = f"""
CREATE OR REPLACE TABLE household_income AS
WITH sizes AS (
    SELECT hh_key, count(*) AS size FROM members WHERE hh_key IS NOT NULL GROUP BY hh_key
), base AS (
    SELECT h.hh_uid, h.hh_key, coalesce(s.size, 0) AS size,
           CASE WHEN {_SUB_ANY} THEN {_SUB_SUM} ELSE h.transfer_total END AS transfer_used,
           {_SUB_SUM} AS transfer_sub_sum,
           {_ITEMS} AS items
    FROM households h LEFT JOIN sizes s ON s.hh_key = h.hh_key
), net AS (
    SELECT b.*, (b.items + b.transfer_used - h.business_expense)::DECIMAL(18, 2) AS net_income
    FROM base b JOIN households h USING (hh_uid)
), cents AS (
    SELECT *, CAST(net_income * 100 AS BIGINT) AS net_cents FROM net
)
SELECT hh_uid, hh_key, size, transfer_used::DECIMAL(18, 2) AS transfer_used,
       transfer_sub_sum::DECIMAL(18, 2) AS transfer_sub_sum, net_income,
       CASE WHEN size > 0 THEN
            {floor_cents('net_cents', 'size')}::DECIMAL(18, 0) * 0.01
       END AS per_capita,
       size > 0 AND net_income < {{poverty_line}} * size AS below_poverty_line,
       size > 0 AND net_income < {{identification_line}} * size AS below_identification_line,
       size > 0 AND net_income < {{monitoring_line}} * size AS below_monitoring_line
FROM cents;
"""
