"""Ingest: the village roster, the 建档立卡 registry, the village survey workbooks, exceptions."""


import dagster as dg
import pandas as pd

from pipeline.io.inputs import FILE_UNREADABLE, read_registry, read_villages
from pipeline.io.survey_store import update_store
from pipeline.resources import WAREHOUSE_POOL, PathsResource, WarehouseResource, replace_table
from pipeline.schema import EXCEPTIONS_COLUMNS, EXCEPTIONS_FILE

GROUP = "ingest"


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"csv", "duckdb"})
def village_roster(context: dg.AssetExecutionContext, paths: PathsResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """村名册 (villages.csv): every village of the district, its 办事处, and whether it is 涉农
    (only 涉农 villages are surveyed)."""
    frame = read_villages(paths.raw)
    with warehouse.build(context) as con:
        replace_table(con, "villages", frame)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame),
        "涉农村": int(frame["farming"].sum()),
        "办事处": int(frame["subdistrict_code"].nunique()),
    })


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel", "duckdb"})
def registry(context: dg.AssetExecutionContext, paths: PathsResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """建档立卡 roster exported from the national system: one row per registered person, all
    statuses and years, unioned over every file in registry/. IDs repaired as rules.md says."""
    read = read_registry(paths.raw)
    with warehouse.build(context) as con:
        replace_table(con, "registry", read.frame)
    errors = [f"{f['file']}: {f['error']}" for f in read.files if f["error"]]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(read.frame),
        "files": len(read.files),
        "unreadable files": dg.MetadataValue.md("\n".join(f"- {e}" for e in errors) or "none"),
        "households (未清退)": int(read.frame.loc[read.frame["status"] != "清退", "hh_no"].nunique()),
    })


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel", "duckdb"})
def survey_workbooks(context: dg.AssetExecutionContext, paths: PathsResource,
                     warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Village survey workbooks (附件1) under surveys/: the newest readable workbook of each village,
    read by header names, values normalized, each row with its file and Excel row number. Files
    that cannot be read are listed with the reason; they never stop the other villages. A file
    read before (same name, time and size) is not read again."""
    with warehouse.build(context) as con:
        update = update_store(con, paths.raw)
        n_households, n_members, n_problems = con.execute(
            "SELECT (SELECT count(*) FROM stg_households), (SELECT count(*) FROM stg_members), "
            "(SELECT count(*) FROM cell_problems)").fetchone()
    files = update.files
    unreadable = files[files["status"] == FILE_UNREADABLE]
    for f in unreadable.itertuples():
        context.log.warning(f"无法读取 {f.file}: {f.reason}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n_households,
        "files by status": dg.MetadataValue.json(files["status"].value_counts().to_dict()),
        "files read this run": update.read,
        "files reused from earlier runs": update.reused,
        "unreadable": dg.MetadataValue.md(
            "\n".join(f"- `{f.file}`: {f.reason}" for f in unreadable.itertuples()) or "none"),
        "households": n_households,
        "members": n_members,
        "cell problems": n_problems,
    })


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"csv", "duckdb"})
def exceptions(context: dg.AssetExecutionContext, paths: PathsResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """exceptions.csv (optional): problems the office checked by hand and accepts. An accepted
    problem no longer blocks sign-off and shows as 已接受 everywhere."""
    path = paths.raw / EXCEPTIONS_FILE
    names = ["problem_id", "conclusion", "checked_by", "checked_on"]
    if path.exists():
        frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
        frame.columns = [c.strip() for c in frame.columns]
        missing = [c for c in EXCEPTIONS_COLUMNS if c not in frame.columns]
        if missing:
            raise dg.Failure(f"{path}: 缺少列 {', '.join(missing)}")
        frame = frame[list(EXCEPTIONS_COLUMNS)].set_axis(names, axis=1)
        frame["problem_id"] = frame["problem_id"].str.strip()
        frame = frame[frame["problem_id"] != ""].drop_duplicates("problem_id", keep="last")
    else:
        frame = pd.DataFrame({n: pd.Series(dtype="string") for n in names})
    with warehouse.build(context) as con:
        replace_table(con, "exceptions", frame.astype("string"))
    return dg.MaterializeResult(metadata={"dagster/row_count": len(frame), "file present": path.exists()})
