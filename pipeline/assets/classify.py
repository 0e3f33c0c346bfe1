"""Classify: registry status, 两不愁三保障 and focus groups, and who goes into 附件2–6."""


import dagster as dg

from pipeline.checks.asset_checks import HELD_BACK_NOT_CLASSIFIED, held_back_households_not_classified
from pipeline.resources import WAREHOUSE_POOL, SettingsResource, WarehouseResource
from pipeline.rules.classification import CLASSIFICATION_SQL
from pipeline.rules.guarantees import GUARANTEES_SQL
from pipeline.rules.sqlutil import run_sql
from pipeline.rules.status import STATUS_SQL

GROUP = "step6_classify"


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"}, deps=["households", "members", "registry"])
def household_status(context: dg.AssetExecutionContext,
                     warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """户状态：以建档立卡名单为准（建档立卡户及其脱贫状态、历年清退户或一般农户）。
    户状态 from the registry (authoritative): 建档立卡户 with its 脱贫状态, 历年清退户, or
    一般农户 — never what the survey declares."""
    with warehouse.build(context) as con:
        run_sql(con, STATUS_SQL, settings.get())
        counts = dict(con.execute("SELECT status_type, count(*) FROM household_status GROUP BY 1").fetchall())
    return dg.MaterializeResult(metadata={"dagster/row_count": sum(counts.values()),
                                          "各户状态户数（households by status）": dg.MetadataValue.json(counts)})


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"}, deps=["households", "members", "household_status"])
def household_guarantees(context: dg.AssetExecutionContext,
                         warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """两不愁三保障：每户未达标的项目和所属重点人群。
    两不愁三保障 failures and focus-group tags (重点人群) per household."""
    with warehouse.build(context) as con:
        run_sql(con, GUARANTEES_SQL, settings.get())
        n, fails = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE fails_guarantee) FROM household_guarantees").fetchone()
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "fail 两不愁三保障": fails})


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"duckdb"},
          deps=["household_income", "household_guarantees", "household_findings", "data_problems"],
          check_specs=[HELD_BACK_NOT_CLASSIFIED])
def classification(context: dg.AssetExecutionContext,
                   warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """分类结果：每户的附件2、附件3类别，是否列入附件4–6，以及核查疑点。
    Per household: 附件2 类别 (返贫/重点扶持), 附件3 类别 (新识别/重点扶持), membership of
    附件4–6, and for a household that meets the condition of 附件2/3 but is left out, the reason.
    Households with an open blocking problem are held back (write–audit–publish)."""
    with warehouse.build(context) as con:
        run_sql(con, CLASSIFICATION_SQL, settings.get())
        row = con.execute("""SELECT count(*) FILTER (WHERE annex2_category IS NOT NULL),
                                    count(*) FILTER (WHERE annex3_category IS NOT NULL),
                                    count(*) FILTER (WHERE in_annex4), count(*) FILTER (WHERE in_annex5),
                                    count(*) FILTER (WHERE in_annex6), count(*) FILTER (WHERE blocked)
                             FROM classification""").fetchone()
        held_back = held_back_households_not_classified(con)
    return dg.MaterializeResult(metadata=dict(zip(
        ["附件2 households", "附件3 households", "附件4 households", "附件5 households", "附件6 households",
         "held back (blocking problems)"], row)), check_results=[held_back])
