"""Reports: the 附件 tables as printable Excel drafts under reports/draft/."""



from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.checks.asset_checks import held_back_rows, published_audit, published_audit_spec
from pipeline.io.excel import summarize, write_annex_workbook, write_notice_workbook, write_sheets_workbook
from pipeline.layout import DRAFT_DIR
from pipeline.metadata import download_links, masked_sample
from pipeline.readiness import office_stamp
from pipeline.resources import WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource
from pipeline.rules.annex import AMOUNT_COLUMNS, ANNEXES, TEXT_COLUMNS, Annex, annex_frame, annex_title
from pipeline.rules.crosscheck import FINDING_LABELS, RESULT_FILENAME, RESULT_TITLE, result_table_sql
from pipeline.rules.notices import (
    FARMING_VILLAGES_SQL,
    FIRST,
    HOUSEHOLDS_PER_PAGE,
    NOTICE_SQL,
    NOTICE_SUFFIX,
    SECOND,
    notices,
)
from pipeline.rules.sqlutil import literals

GROUP = "step7_reports"


def build_annex_asset(annex: Annex) -> dg.AssetsDefinition:
    @dg.asset(name=annex.key, group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel"}, deps=["classification"],
              check_specs=[published_audit_spec(annex)],
              description=f"{annex.filename.removesuffix('.xlsx')}：草稿，位于 reports/{DRAFT_DIR}/，"
                          "可直接打印归档（明细、汇总、设置）。(the draft, laid out to print and file as it is.)")
    def _annex(paths: PathsResource, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
        s = settings.get()
        with warehouse.connect(read_only=True) as con:
            rows = annex_frame(con, annex)
            held = held_back_rows(con)
        path = paths.report_path(paths.draft / annex.filename)
        summary = summarize(rows, by="办事处", household_key="_household", unit=annex.unit,
                            split_by=annex.split_by, split_values=annex.split_values)
        _write(path, annex, rows, summary, s)
        audit = published_audit(annex, path, held)  # the file as written, read back (write–audit–publish)
        per = rows.groupby("办事处")["_household"].nunique().to_dict() if len(rows) else {}
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(rows),
            "户数（households）": int(rows["_household"].nunique()) if len(rows) else 0,
            "各办事处户数（households per 办事处）": dg.MetadataValue.json({k: int(v) for k, v in per.items()}),
            "示例（已遮盖，masked sample）": masked_sample(rows),
            **download_links(paths, path),
        }, check_results=[audit])

    return _annex


def _write(path, annex: Annex, rows, summary, settings):
    return write_annex_workbook(
        path, title=annex_title(annex, settings), columns=annex.columns, rows=rows,
        summary=summary, settings=settings, generated_at=office_stamp(settings.tz),
        text_columns=TEXT_COLUMNS, amount_columns=AMOUNT_COLUMNS, unit=annex.unit, household_key="_household",
        page_label=annex.label,
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


@dg.asset(group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel"}, deps=["classification"])
def public_notices(paths: PathsResource, warehouse: WarehouseResource,
                   settings: SettingsResource) -> dg.MaterializeResult:
    """公示：两公示一比对一公告的公示，可直接打印张贴（每个涉农村的第一次公示、每个办事处的第二次公示）。
    The notices of 两公示一比对一公告, ready to print and post: the 第一次公示 of every 涉农
    village (reports/public/<办事处名称>/<村代码>_<村名称>_公示.xlsx, issued by the 村民委员会; a
    village with nobody to list gets a notice that says so) and the 第二次公示 of every 办事处
    (reports/public/<办事处代码>_<办事处名称>_公示.xlsx). Each lists the households of 附件2/3 by
    户主姓名, 家庭人口 and 类别 — no ID, phone, income, health, disability or 致贫原因 — with the
    公示期, what to do with an objection, the 监督电话, the issuing body and the date. The 公告 is
    written into the signed package at the signature. Notices of villages no longer concerned are
    removed."""
    s = settings.get()
    with warehouse.connect(read_only=True) as con:
        listed = con.execute(NOTICE_SQL).df()
        villages = con.execute(FARMING_VILLAGES_SQL).df()
    written: set[Path] = set()
    per_kind = {FIRST: 0, SECOND: 0}
    for path, notice in notices(s, listed, villages, paths.public):
        write_notice_workbook(paths.report_path(path), notice, households_per_page=HOUSEHOLDS_PER_PAGE)
        written.add(path.resolve())
        per_kind[notice.kind] += 1
    removed = 0
    for old in paths.public.rglob(f"*{NOTICE_SUFFIX}"):
        if old.resolve() not in written:
            old.unlink()
            removed += 1
    for old in paths.public.glob("附件*_公示名单.xlsx"):  # the district-wide lists of earlier versions
        old.unlink()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(listed),
        "第一次公示（village notices）": per_kind[FIRST],
        "第二次公示（subdistrict notices）": per_kind[SECOND],
        "户数（households listed）": len(listed),
        "人数（persons listed）": int(listed["家庭人口"].sum()) if len(listed) else 0,
        "无人公示的村（villages with nobody to list）": int(sum(
            1 for v in villages.itertuples() if not (listed["village_code"] == v.village_code).any())),
        "已删除的旧公示（stale notices removed）": removed,
        **download_links(paths, paths.public),
    })


crosscheck_report_assets = [crosscheck_table, public_notices]
