"""Audit: every data-quality problem B1–B10, W1–W9 (rules.md), and which of them are still open."""


import dagster as dg
import pandas as pd

from pipeline.resources import SettingsResource, WarehouseResource, replace_table
from pipeline.rules.quality import OPEN_PROBLEMS_SQL, relational_problems


@dg.asset(group_name="quality", kinds={"duckdb"},
          deps=["survey_workbooks", "households", "members", "registry", "village_roster",
                "household_income", "household_status", "exceptions"])
def data_problems(warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """Every problem with its stable 问题编号, rule, severity, village, file, sheet, Excel row,
    column, masked value and what to do; 已接受 when exceptions.csv accepts it. Blocking problems
    hold their household back from 附件2–6 until fixed or accepted."""
    with warehouse.connect() as con:
        cells = con.execute("SELECT * FROM cell_problems").df()
        relational = relational_problems(con, settings.get())
        frame = pd.concat([cells, relational], ignore_index=True)
        frame = frame.drop_duplicates("problem_id").sort_values(["village_code", "rule", "file", "row"])
        con.execute("BEGIN")
        replace_table(con, "problems", frame.astype({"row": "Int64"}))
        con.execute(OPEN_PROBLEMS_SQL)
        con.execute("COMMIT")
        by_rule = dict(con.execute("SELECT rule, count(*) FROM open_problems GROUP BY 1 ORDER BY 1").fetchall())
        blocking = con.execute("SELECT count(*), count(DISTINCT hh_key) FROM open_problems WHERE blocking").fetchone()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "problems by rule": dg.MetadataValue.json(by_rule),
        "open blocking problems": blocking[0],
        "households held back": blocking[1],
    })
