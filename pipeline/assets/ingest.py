"""Ingest: the village roster, the 建档立卡 registry, the village survey workbooks, exceptions."""


import dagster as dg
import pandas as pd

from pipeline.io.inputs import FILE_READ, FILE_UNREADABLE, read_registry, read_villages
from pipeline.io.survey_store import update_store
from pipeline.partitions import VILLAGES, partition_key, village_code
from pipeline.readiness import local_time, row_account_metadata, row_accounts, superseded_files, superseded_markdown
from pipeline.resources import WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource, replace_table
from pipeline.schema import EXCEPTIONS_COLUMNS, EXCEPTIONS_FILE

GROUP = "step1_inputs"


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"csv", "duckdb"})
def village_roster(context: dg.AssetExecutionContext, paths: PathsResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """村名册（villages.csv）：全区每个村、所属办事处、是否涉农。
    村名册 (villages.csv): every village of the district, its 办事处, and whether it is 涉农
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
    """建档立卡名单：从全国扶贫开发信息系统导出，每人一行，身份证号已修复。
    建档立卡 roster exported from the national system: one row per registered person, all
    statuses and years, unioned over every file in registry/. IDs repaired as rules.md says."""
    read = read_registry(paths.raw)
    with warehouse.build(context) as con:
        replace_table(con, "registry", read.frame)
    errors = [f"{f['file']}: {f['error']}" for f in read.files if f["error"]]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(read.frame),
        "files": len(read.files),
        "无法读取的文件（unreadable files）": dg.MetadataValue.md("\n".join(f"- {e}" for e in errors) or "（无）"),
        "households (未清退)": int(read.frame.loc[read.frame["status"] != "清退", "hh_no"].nunique()),
    })


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel", "duckdb"})
def survey_workbooks(context: dg.AssetExecutionContext, paths: PathsResource, warehouse: WarehouseResource,
                     settings: SettingsResource) -> dg.MaterializeResult:
    """村入户调查表（附件1）：每村最新的可读调查表，按表头读取、规范取值，每行记下文件和 Excel 行号
    (village survey workbooks under surveys/, the newest readable one of each village). Files that
    cannot be read are listed with the reason; they never stop the other villages. A file read
    before (same name, time and size) is not read again. Each village's file is also recorded on
    its partition of village_submission, with the files it replaced."""
    tz = settings.get().tz
    with warehouse.build(context) as con:
        update = update_store(con, paths.raw)
        n_households, n_members, n_problems = con.execute(
            "SELECT (SELECT count(*) FROM stg_households), (SELECT count(*) FROM stg_members), "
            "(SELECT count(*) FROM cell_problems)").fetchone()
        superseded = superseded_files(con, tz)
        accounts = row_accounts(con)
    files = update.files
    unreadable = files[files["status"] == FILE_UNREADABLE]
    for f in unreadable.itertuples():
        context.log.warning(f"无法读取 {f.file}: {f.reason}")
    record_village_partitions(context, paths.raw, files, superseded, tz)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n_households,
        "文件状态（files by status）": dg.MetadataValue.md(
            "| 状态 | 文件数 |\n|---|---|\n" + "\n".join(
                f"| {k} | {v} |" for k, v in files["status"].value_counts().items())),
        "本次读取的文件（files read this run）": update.read,
        "沿用之前读取结果的文件（files reused）": update.reused,
        "无法读取的文件（unreadable）": dg.MetadataValue.md(
            "\n".join(f"- `{f.file}`: {f.reason}" for f in unreadable.itertuples()) or "（无）"),
        "被替代的文件（superseded files）": dg.MetadataValue.md(superseded_markdown(superseded)),
        "户数（households）": n_households,
        "人数（persons）": n_members,
        "单元格问题（cell problems）": n_problems,
        **row_account_metadata(accounts),
    })


def record_village_partitions(context, root, files, superseded, tz) -> None:
    """Record each village's newest read file on its partition of ``village_submission`` (adding
    the partition ``村代码_村名称`` when the instance has none for the village), so the partitions
    of villages that submitted show green with their file and the files it replaced."""
    read = files[files["status"] == FILE_READ]
    if read.empty:
        return
    try:
        roster = read_villages(root)
        names = dict(zip(roster["village_code"], roster["village_name"]))
    except Exception:
        names = {}
    instance = context.instance
    known = {village_code(k): k for k in instance.get_dynamic_partitions(VILLAGES)}
    missing = sorted({c for c in read["village_code"] if c and c not in known})
    if missing:
        instance.add_dynamic_partitions(VILLAGES, [partition_key(c, names.get(c)) for c in missing])
        known.update({c: partition_key(c, names.get(c)) for c in missing})
    for row in read.itertuples():
        if not row.village_code:
            continue
        mine = superseded[superseded["村代码"] == row.village_code]
        context.log_event(dg.AssetMaterialization(
            asset_key="village_submission", partition=known[row.village_code],
            description="全区重建读取的该村最新调查表（recorded by the district rebuild）",
            metadata={
                "文件（file）": row.file,
                "报送时间（submitted）": local_time(row.mtime, tz),
                "户数（households）": int(row.households or 0),
                "人数（persons）": int(row.members or 0),
                "被替代的文件（superseded files）": dg.MetadataValue.md(superseded_markdown(
                    mine, ("被替代的文件", "其报送时间", "替代它的文件", "替代文件报送时间"))),
            }))


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"csv", "duckdb"})
def exceptions(context: dg.AssetExecutionContext, paths: PathsResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """已接受的问题（exceptions.csv，可选）：人工核实后接受的问题不再阻止签字。
    exceptions.csv (optional): problems the office checked by hand and accepts. An accepted
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
