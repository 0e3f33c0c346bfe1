"""Income: 家庭年纯收入 and 年人均纯收入 per household (rules.md, "Income")."""


import dagster as dg

from pipeline.resources import WAREHOUSE_POOL, SettingsResource, WarehouseResource
from pipeline.rules.income import INCOME_SQL
from pipeline.rules.sqlutil import run_sql


@dg.asset(group_name="step3_income", pool=WAREHOUSE_POOL, kinds={"duckdb"}, deps=["households", "members"])
def household_income(context: dg.AssetExecutionContext,
                     warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """家庭收入：每户的家庭人口、家庭年纯收入和年人均纯收入（精确计算）。
    Per household: 家庭人口 (member rows), transfers used, 家庭年纯收入 and 年人均纯收入 (exact;
    shown rounded half-up), and whether it is below the poverty, identification and monitoring
    lines (strict comparisons)."""
    s = settings.get()
    with warehouse.build(context) as con:
        run_sql(con, INCOME_SQL, s)
        n, b4500, b5000 = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE below_identification_line), "
            "count(*) FILTER (WHERE below_monitoring_line) FROM household_income").fetchone()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        f"below {s.identification_line}": b4500,
        f"below {s.monitoring_line}": b5000,
    })
