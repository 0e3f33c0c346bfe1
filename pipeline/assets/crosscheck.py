"""Cross-check (比对): department extracts joined on the normalized ID (rules.md X1–X4, D1–D5)."""


import dagster as dg

from pipeline.resources import SettingsResource, WarehouseResource
from pipeline.rules.crosscheck import EMPTY_FINDINGS_SQL
from pipeline.rules.sqlutil import run_sql


@dg.asset(group_name="crosscheck", kinds={"duckdb"}, deps=["households", "members"])
def household_findings(warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """One row per household finding (X1–X4 hard exclusions, D1–D5 doubts) with the department
    record that caused it."""
    with warehouse.connect() as con:
        run_sql(con, EMPTY_FINDINGS_SQL, settings.get())
        n = con.execute("SELECT count(*) FROM household_findings").fetchone()[0]
    return dg.MaterializeResult(metadata={"dagster/row_count": n})
