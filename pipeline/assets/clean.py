"""Clean: the district's households and members from the latest workbook of every village."""


import dagster as dg

from pipeline.checks.asset_checks import HH_UID_UNIQUE, MEMBER_UID_UNIQUE, unique_key_result
from pipeline.resources import WAREHOUSE_POOL, SettingsResource, WarehouseResource
from pipeline.rules.clean import HOUSEHOLDS_SQL
from pipeline.rules.sqlutil import run_sql
from pipeline.rules.status import MEMBERS_SQL

GROUP = "step2_clean"


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"}, deps=["survey_workbooks", "village_roster"],
          check_specs=[HH_UID_UNIQUE])
def households(context: dg.AssetExecutionContext,
               warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """家庭基本情况：每户一行，取值已规范，金额精确到分。
    家庭基本情况: one row per surveyed household, values normalized, amounts exact to the cent,
    with its 办事处 and 村 from the roster and its place in the village's file."""
    with warehouse.build(context) as con:
        run_sql(con, HOUSEHOLDS_SQL, settings.get())
        per = con.execute("SELECT coalesce(subdistrict_name, '（村名册中没有）'), count(*) FROM households "
                          "GROUP BY 1 ORDER BY 1").fetchall()
        unique = unique_key_result(con, HH_UID_UNIQUE, "hh_uid")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": sum(n for _, n in per),
        "各办事处户数（households per 办事处）": dg.MetadataValue.json(dict(per)),
    }, check_results=[unique])


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"}, deps=["survey_workbooks"],
          check_specs=[MEMBER_UID_UNIQUE])
def members(context: dg.AssetExecutionContext,
            warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """家庭成员情况：每人一行，身份证号已修复，性别、出生日期和年龄由身份证号得出。
    家庭成员情况: one row per surveyed person with the repaired ID, birth date, sex from the ID
    and age in whole years on the reference date."""
    with warehouse.build(context) as con:
        run_sql(con, MEMBERS_SQL, settings.get())
        n, valid = con.execute("SELECT count(*), count(person_id) FROM members").fetchone()
        unique = unique_key_result(con, MEMBER_UID_UNIQUE, "member_uid")
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "valid IDs": valid}, check_results=[unique])
