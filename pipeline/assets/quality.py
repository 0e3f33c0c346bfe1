"""Audit: every data-quality problem B1–B10, W1–W9 (rules.md), and which of them are still open."""


import dagster as dg
import pandas as pd

from pipeline.checks.asset_checks import PRIORITY_TAG, hand_over
from pipeline.checks.expectations import SUITES
from pipeline.metadata import masked_sample
from pipeline.resources import WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource, replace_table
from pipeline.resources.quality import GreatExpectationsResource
from pipeline.rules.problems import RULES
from pipeline.rules.quality import OPEN_PROBLEMS_SQL, all_problems, relational_problems
from pipeline.tables import EXCEPTIONS, OPEN_PROBLEMS, PROBLEMS

SAMPLE = 10

PROBLEM_CHECKS = [
    dg.AssetCheckSpec(
        "problem_ids_unique", asset="data_problems", blocking=True,
        description="每个问题编号只对应一个问题。Structural: a 问题编号 naming two problems would let "
                    "exceptions.csv accept the wrong one, so nothing is published while it fails."),
    dg.AssetCheckSpec(
        "no_open_blocking_problems", asset="data_problems",
        description="没有未处理的“必须修改”问题（B1–B10）。A result, not a failure: households with an open "
                    "blocking problem are held back from 附件2–6 one by one and listed in the 问题清单; "
                    "sign-off stays refused until they are fixed or accepted in exceptions.csv."),
    dg.AssetCheckSpec(
        "exceptions_match_problems", asset="data_problems",
        description="已接受问题表 exceptions.csv 中的每个问题编号都对应本次运行的一个问题（否则可能已修改或编号抄错）。"),
]


PROBLEM_SAMPLE_LABELS = {"rule": "规则", "village_code": "村代码", "file": "文件", "sheet": "表", "row": "行",
                         "column": "列", "value": "原值（脱敏）"}


def _masked_sample(frame: pd.DataFrame) -> dg.MetadataValue:
    """Problems as the analyst needs to find them: rule, village, file, row, column, masked value."""
    return masked_sample(frame.rename(columns=PROBLEM_SAMPLE_LABELS), n=SAMPLE,
                         columns=list(PROBLEM_SAMPLE_LABELS.values()))


@dg.asset(group_name="step5_quality", pool=WAREHOUSE_POOL, kinds={"duckdb"}, check_specs=PROBLEM_CHECKS,
          deps=["survey_workbooks", "households", "members", "registry", "village_roster",
                "household_income", "household_status", "exceptions"])
def data_problems(context: dg.AssetExecutionContext,
                  warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """数据问题：rules.md 的全部问题（B1–B10 必须修改，W1–W9 请核实），各有固定的问题编号。
    Every problem of rules.md (B1–B10 必须修改, W1–W9 请核实) with its stable 问题编号, village,
    file, sheet, Excel row as the village sees it, column, masked value and what to do; 已接受 when
    exceptions.csv accepts it. An open blocking problem holds its household back from 附件2–6 until
    it is fixed or accepted (write–audit–publish); the village gets it in its 问题清单."""
    with warehouse.build(context) as con:
        cells = con.execute("SELECT * FROM cell_problems").df()
        relational = relational_problems(con, settings.get())
        frame = all_problems(cells, relational)
        con.execute("BEGIN")
        replace_table(con, PROBLEMS, frame.astype({"row": "Int64"}))
        con.execute(OPEN_PROBLEMS_SQL)
        con.execute("COMMIT")
        by_rule = con.execute(f"""SELECT rule, count(*) FILTER (WHERE NOT accepted), count(*) FILTER (WHERE accepted)
                                 FROM {OPEN_PROBLEMS} GROUP BY 1""").fetchall()
        blocking = con.execute(f"""SELECT village_code, file, sheet, row, "column", rule, value FROM {OPEN_PROBLEMS}
                                  WHERE blocking ORDER BY village_code, file, sheet, row""").df()
        held_back = con.execute(f"SELECT count(DISTINCT hh_key) FROM {OPEN_PROBLEMS} WHERE blocking").fetchone()[0]
        unmatched = con.execute(f"SELECT count(*) FROM {EXCEPTIONS} WHERE problem_id NOT IN "
                                f"(SELECT problem_id FROM {PROBLEMS})").fetchone()[0]
        n_exceptions = con.execute("SELECT count(*) FROM exceptions").fetchone()[0]
    order = {code: i for i, code in enumerate(RULES)}
    by_rule = sorted(by_rule, key=lambda r: order[r[0]])
    duplicates = int(frame["problem_id"].duplicated().sum())
    accepted = sum(r[2] for r in by_rule)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "各规则待修改问题数（open problems by rule）": dg.MetadataValue.json({r: n for r, n, _ in by_rule if n}),
            "各规则已接受问题数（accepted problems by rule）": dg.MetadataValue.json({r: a for r, _, a in by_rule if a}),
            "未解决的必须修改问题（open blocking problems）": len(blocking),
            "已接受（accepted）": accepted,
            "暂不列入的户（households held back）": int(held_back),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="problem_ids_unique", passed=duplicates == 0, severity=dg.AssetCheckSeverity.ERROR,
                metadata={"重复的问题编号（duplicate ids）": duplicates}),
            dg.AssetCheckResult(
                check_name="no_open_blocking_problems", passed=blocking.empty, severity=dg.AssetCheckSeverity.WARN,
                metadata={"不通过的行数（failing count）": len(blocking), "暂不列入的户（households held back）": int(held_back),
                          "已接受（accepted）": accepted,
                          "各规则问题数（by rule）": dg.MetadataValue.json(
                              blocking["rule"].value_counts().reindex([r for r in RULES if r in set(blocking["rule"])])
                              .astype(int).to_dict()),
                          "示例（已遮盖，masked sample）": _masked_sample(blocking)}),
            dg.AssetCheckResult(
                check_name="exceptions_match_problems", passed=unmatched == 0, severity=dg.AssetCheckSeverity.WARN,
                metadata={"failing count": int(unmatched), "exceptions": int(n_exceptions)}),
        ],
    )


@dg.asset(group_name="step5_quality", pool=WAREHOUSE_POOL, kinds={"great_expectations"},
          deps=[dg.AssetKey(suite.asset) for suite in SUITES.values()],
          op_tags={PRIORITY_TAG: "10"})  # as soon as the tables exist: the worker starts validating
def validation_batches(context: dg.AssetExecutionContext, warehouse: WarehouseResource, paths: PathsResource,
                       ge: GreatExpectationsResource) -> dg.MaterializeResult:
    """校验批次：去标识化的清洗数据，供 Great Expectations 校验。
    校验批次: the cleaned households and members and the department extracts, de-identified (a
    surrogate key per row; each ID replaced by its shape, its check-character flag and a token
    drawn afresh every run; no name), handed to the Great Expectations worker. The worker
    validates them and writes the Data Docs while the 附件 are computed and written; the
    ``great_expectations`` check collects the results."""
    rows = hand_over(context, warehouse, paths, ge)
    return dg.MaterializeResult(metadata={"rows by table": dg.MetadataValue.json(rows),
                                          "dagster/row_count": sum(rows.values())})
