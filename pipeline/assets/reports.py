"""Reports: the 附件 tables as printable Excel drafts under reports/draft/."""



import dagster as dg
import pandas as pd

from pipeline.io.excel import UNIT_HOUSEHOLD, Totals, summarize, write_annex_workbook, write_sheets_workbook
from pipeline.layout import DRAFT_DIR, PUBLIC_DIR
from pipeline.metadata import download_links, masked_sample
from pipeline.readiness import office_stamp
from pipeline.resources import WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource
from pipeline.rules.annex import (
    AMOUNT_COLUMNS,
    ANNEXES,
    PUBLIC_NOTICES,
    TEXT_COLUMNS,
    Annex,
    PublicNotice,
    annex_frame,
    annex_title,
    public_frame,
)
from pipeline.rules.crosscheck import FINDING_LABELS, RESULT_FILENAME, RESULT_TITLE, result_table_sql
from pipeline.rules.sqlutil import literals

GROUP = "step7_reports"


def build_annex_asset(annex: Annex) -> dg.AssetsDefinition:
    @dg.asset(name=annex.key, group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel"}, deps=["classification"],
              description=f"{annex.filename.removesuffix('.xlsx')}：草稿，位于 reports/{DRAFT_DIR}/，"
                          "可直接打印归档（明细、汇总、设置）。(the draft, laid out to print and file as it is.)")
    def _annex(paths: PathsResource, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
        s = settings.get()
        with warehouse.connect(read_only=True) as con:
            rows = annex_frame(con, annex)
        path = paths.report_path(paths.draft / annex.filename)
        summary = summarize(rows, by="办事处", household_key="_household", unit=annex.unit,
                            split_by=annex.split_by)
        _write(path, annex, rows, summary, s)
        per = rows.groupby("办事处")["_household"].nunique().to_dict() if len(rows) else {}
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(rows),
            "户数（households）": int(rows["_household"].nunique()) if len(rows) else 0,
            "各办事处户数（households per 办事处）": dg.MetadataValue.json({k: int(v) for k, v in per.items()}),
            "示例（已遮盖，masked sample）": masked_sample(rows),
            **download_links(paths, path),
        })

    return _annex


def _write(path, annex: Annex, rows, summary, settings):
    return write_annex_workbook(
        path, title=annex_title(annex, settings), columns=annex.columns, rows=rows,
        summary=summary, settings=settings, generated_at=office_stamp(settings.tz),
        text_columns=TEXT_COLUMNS, amount_columns=AMOUNT_COLUMNS, unit=annex.unit, household_key="_household",
    )


annex_assets = [build_annex_asset(a) for a in ANNEXES.values()]


# --------------------------------------------------------------------------------------------
# 核查比对结果表 and the 公示 lists (outputs.md)
# --------------------------------------------------------------------------------------------

CROSSCHECK_TEXT_COLUMNS = frozenset({"办事处", "村", "户主姓名", "户主身份证号", "户状态", "结论",
                                     *FINDING_LABELS.values()})


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel"}, deps=["classification", "household_findings"])
def crosscheck_table(paths: PathsResource, warehouse: WarehouseResource,
                     settings: SettingsResource) -> dg.MaterializeResult:
    """核查比对结果表：部门比对涉及的每户一行，写明各项发现和结论。
    核查比对结果表 (reports/draft/): one row per household a department cross-check touched, or
    that met the income/三保障 condition of 附件2/3 and was left out — each finding X1–X4, D1–D5 in
    its own column with what the department record says, and the 结论 (列入附件2/3, 排除：…,
    未申请, 评议未通过, 无致贫原因, 数据问题待核实, or why it is in neither), so that
    “不落一户，不落一人” can be shown. Sheet 汇总 counts households per finding and per 结论."""
    s = settings.get()
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(result_table_sql().format(**literals(s))).df()
    frame = rows.drop(columns=["_household"])
    frame.insert(0, "序号", range(1, len(frame) + 1))
    summary = _crosscheck_summary(rows)
    title = RESULT_TITLE.format(year=s.reference_date.year)
    path = paths.report_path(paths.draft / RESULT_FILENAME)
    write_sheets_workbook(
        path, {"明细": (title, frame), "汇总": (title, summary)}, s, office_stamp(s.tz),
        text_columns=CROSSCHECK_TEXT_COLUMNS, amount_columns=AMOUNT_COLUMNS, signature={"明细"})
    conclusions = rows["结论"].str.split("：").str[0].value_counts().to_dict() if len(rows) else {}
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(rows),
        "各疑点户数（households per finding）": dg.MetadataValue.json(
            {label: int(rows[label].notna().sum()) for label in FINDING_LABELS.values()}),
        "各结论户数（households per 结论）": dg.MetadataValue.json({k: int(v) for k, v in conclusions.items()}),
        **download_links(paths, path),
    })


def _crosscheck_summary(rows):
    items = [("核查疑点", label, int(rows[label].notna().sum())) for label in FINDING_LABELS.values()]
    items += [("结论", k, int(v)) for k, v in rows["结论"].value_counts(sort=False).sort_index().items()]
    return pd.DataFrame(items, columns=["项目", "内容", "户数"])


def build_public_asset(notice: PublicNotice) -> dg.AssetsDefinition:
    annex = ANNEXES[notice.annex_key]

    @dg.asset(name=notice.key, group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel"}, deps=["classification"],
              description=f"{notice.filename.removesuffix('.xlsx')}：公示名单，位于 reports/{PUBLIC_DIR}/，可直接张贴。"
                          f"(the list to post on "
                          f"village notice boards — the households of {annex.filename.split('_')[0]}, one row per "
                          "household: 序号, 办事处, 村, 户主姓名, 家庭人口, 类别, 主要致贫原因. No ID number, no "
                          "health, disability or income detail of anyone.")
    def _public(paths: PathsResource, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
        s = settings.get()
        with warehouse.connect(read_only=True) as con:
            frame = public_frame(annex_frame(con, annex))
        path = paths.report_path(paths.public / notice.filename)
        write_sheets_workbook(
            path, {"明细": (notice.title.format(year=s.reference_date.year), frame)}, s,
            office_stamp(s.tz), text_columns=TEXT_COLUMNS,
            totals={"明细": Totals(UNIT_HOUSEHOLD, None)}, settings_sheet=False)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(frame),
            "人数（persons）": int(frame["家庭人口"].sum()) if len(frame) else 0,
            **download_links(paths, path),
        })

    return _public


crosscheck_report_assets = [crosscheck_table, *(build_public_asset(n) for n in PUBLIC_NOTICES.values())]
