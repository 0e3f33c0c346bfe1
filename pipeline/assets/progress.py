"""Progress against the notice's timeline: who has submitted, which departments have returned,
what is still open, and how many days are left to each deadline (reports/进度.xlsx)."""


import datetime as dt
from pathlib import PurePosixPath

import dagster as dg
import pandas as pd
from pydantic import Field

from pipeline import charts
from pipeline.io.excel import write_sheets_workbook
from pipeline.metadata import download_links
from pipeline.readiness import (
    ROW_ACCOUNT_LABELS,
    SUPERSEDED_COLUMNS,
    department_status,
    local_time,
    office_now,
    office_stamp,
    open_blocking,
    row_accounts,
    superseded_files,
    superseded_markdown,
    village_status,
)
from pipeline.resources import AFTER_DRAFTS, WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource

ROW_ACCOUNT_SHEET = "行数核对"
UNREADABLE = "已报送（文件无法读取）"
DONE, ONGOING, OVERDUE = "已完成", "进行中", "已逾期"


class ProgressConfig(dg.Config):
    today: str | None = Field(
        default=None, description="从这一天起算剩余天数（YYYY-MM-DD）；留空：今天 (count days left from this date).")


def signed_packages(folder) -> list[str]:
    """The signed packages in the signed folder, oldest first."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if folder.is_dir() else []


def stages(settings, today: dt.date, villages: pd.DataFrame, departments: pd.DataFrame,
           blocking: int, signed: list[str]) -> pd.DataFrame:
    """One row per stage of the notice: deadline, days left, what is done, and the state."""
    farming = villages[villages["farming"]]
    submitted = int(farming["submitted"].sum())
    unreadable = int((~farming["submitted"] & farming["unreadable_file"].notna()).sum()) \
        if "unreadable_file" in farming else 0
    returned = int(departments["returned"].sum())
    rows = [
        ("村入户调查", "04-08至04-30", settings.survey_deadline, submitted == len(farming) and len(farming) > 0,
         f"涉农村已报送 {submitted}/{len(farming)}" + (f"（另有 {unreadable} 个村报送的文件无法读取）" if unreadable else "")),
        ("办事处汇总、问题整改", "04-30至05-10", settings.subdistrict_deadline,
         submitted == len(farming) and len(farming) > 0 and blocking == 0,
         f"必须修改的问题 {blocking} 个"),
        ("部门比对", "05-10至05-16", settings.crosscheck_deadline, returned == len(departments),
         f"部门已反馈 {returned}/{len(departments)}"),
        ("区级汇总、签字", "05-16至05-20", settings.signoff_deadline, bool(signed),
         f"已签字 {len(signed)} 次" + (f"（最近 {signed[-1]}）" if signed else "")),
    ]
    out = []
    for name, window, deadline, done, detail in rows:
        left = (deadline - today).days
        state = DONE if done else (OVERDUE if left < 0 else ONGOING)
        out.append({"阶段": name, "时间安排": window, "截止日期": deadline.isoformat(), "剩余天数": left,
                    "完成情况": detail, "状态": state})
    return pd.DataFrame(out)


@dg.asset(group_name="step8_progress", pool=WAREHOUSE_POOL, kinds={"excel"}, op_tags=AFTER_DRAFTS,
          deps=["survey_workbooks", "village_roster", "data_problems"])
def progress(context: dg.AssetExecutionContext, config: ProgressConfig, paths: PathsResource,
             warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """工作进度：各村报送、部门反馈、未解决问题和各阶段剩余天数，写入 reports/进度.xlsx
    (progress against the notice's timeline (04-08..04-30 village surveys, 05-10 subdistrict
    aggregation, 05-16 department cross-checks, 05-20 sign-off): which 涉农 villages have
    submitted and when (the workbook's modification time), which departments have returned their
    extracts, the open problems of every village, and the days left to each deadline (negative:
    overdue). Also written to reports/进度.xlsx."""
    s = settings.get()
    today = dt.date.fromisoformat(config.today) if config.today else office_now(s.tz).date()
    with warehouse.connect(read_only=True) as con:
        villages = village_status(con)
        departments = department_status(con, paths.raw)
        blocking = len(open_blocking(con))
        superseded = superseded_files(con, s.tz)
        con_accounts = row_accounts(con)
    signed = signed_packages(paths.signed)
    timeline = stages(s, today, villages, departments, blocking, signed)

    village_sheet = pd.DataFrame({
        "序号": range(1, len(villages) + 1),
        "办事处": villages["subdistrict_name"], "村代码": villages["village_code"], "村名称": villages["village_name"],
        "是否涉农": villages["farming"].map({True: "是", False: "否"}),
        "报送情况": [("已报送（待全区重建）" if p else "已报送") if sub else
                 (UNREADABLE if isinstance(bad, str) else ("未报送" if farm else "不需报送"))
                 for sub, p, farm, bad in zip(villages["submitted"], villages["pending_rebuild"], villages["farming"],
                                              villages["unreadable_file"])],
        "报送文件": villages["file"].map(_file_name),
        "报送时间": villages["mtime"].map(lambda t: local_time(t, s.tz)),
        "是否逾期": [_late(m, farm, s.survey_deadline, today, s.tz) for m, farm in zip(villages["mtime"], villages["farming"])],
        "户数": villages["households"].fillna(0).astype(int),
        "人数": villages["members"].fillna(0).astype(int),
        "必须修改": villages["blocking"], "请核实": villages["warnings"],
        "无法读取的文件": villages["unreadable_file"].map(_file_name),
        "无法读取的原因": villages["unreadable_reason"].fillna(""),
    })
    accounts = row_account_sheet(con_accounts, villages)
    dept_sheet = pd.DataFrame({
        "序号": range(1, len(departments) + 1),
        "部门": departments["name"],
        "是否反馈": departments["returned"].map({True: "已反馈", False: "未反馈"}),
        "文件数": departments["files"], "最新文件时间": departments["latest"].map(lambda t: local_time(t, s.tz)),
    })
    by_sub = village_sheet[village_sheet["是否涉农"] == "是"].groupby("办事处", sort=False).agg(
        涉农村=("村代码", "size"), 已报送=("报送情况", lambda v: int(v.str.startswith("已报送").sum())),
        户数=("户数", "sum"), 人数=("人数", "sum"), 必须修改=("必须修改", "sum"), 请核实=("请核实", "sum"),
    ).reset_index()
    by_sub.insert(3, "未报送", by_sub["涉农村"] - by_sub["已报送"])

    against = charts.deadline_status(villages, departments, s.survey_deadline, s.crosscheck_deadline, s.tz)
    picture = charts.write_svg(paths, charts.PROGRESS_SVG, charts.progress_svg(against))
    path = paths.report_path(paths.progress)
    title = f"{s.reference_date.year}年脱贫质量“回头看”工作进度（截至{today.isoformat()}）"
    write_sheets_workbook(path, {
        "时间节点": (title, timeline),
        "村报送情况": (title, village_sheet),
        "办事处": (title, by_sub),
        "部门反馈情况": (title, dept_sheet),
        "被替代的文件": (title, superseded.assign(
            序号=range(1, len(superseded) + 1),
            # the villages' own file names, without the data root's folders (surveys/…)
            被替代的文件=superseded["被替代的文件"].map(_file_name),
            替代它的文件=superseded["替代它的文件"].map(_file_name))[["序号", *SUPERSEDED_COLUMNS]]),
        ROW_ACCOUNT_SHEET: (title, accounts),
    }, s, office_stamp(s.tz),
        text_columns={"村代码", "办事处", "村名称", "报送文件", "部门", "文件夹", "被替代的文件", "替代它的文件",
                      "文件", "工作表", "用作", "无法读取的文件", "无法读取的原因", "核对"},
        number_rows=True,
        charts=[charts.excel_progress_chart(against)])

    farming = village_sheet[village_sheet["是否涉农"] == "是"]
    return dg.MaterializeResult(metadata={
        "时间节点（timeline）": dg.MetadataValue.md(markdown_table(
            timeline, ["阶段", "截止日期", "剩余天数", "完成情况", "状态"])),
        "进度图（submissions against the deadlines）": dg.MetadataValue.md(
            f"![报送与反馈进度]({paths.download_url(picture)})"),
        "进度图链接（open the picture）": dg.MetadataValue.url(paths.download_url(picture)),
        "今天（today）": today.isoformat(),
        "剩余天数（days left）": dg.MetadataValue.json(dict(zip(timeline["阶段"], map(int, timeline["剩余天数"])))),
        "涉农村已报送（villages submitted）": f"{int(farming['报送情况'].str.startswith('已报送').sum())}/{len(farming)}",
        "各村报送情况（villages）": dg.MetadataValue.md(markdown_table(
            farming, ["办事处", "村名称", "村代码", "报送情况", "报送时间", "是否逾期", "户数", "人数", "必须修改", "请核实"])),
        "部门已反馈（departments returned）": f"{int(departments['returned'].sum())}/{len(departments)}",
        "部门反馈情况（departments）": dg.MetadataValue.md(markdown_table(
            dept_sheet, ["部门", "是否反馈", "文件数", "最新文件时间"])),
        "被替代的文件（superseded files）": dg.MetadataValue.md(superseded_markdown(superseded)),
        "文件无法读取的村（villages whose file could not be read）": dg.MetadataValue.json(
            [f"{r.办事处}{r.村名称}（{r.村代码}）" for r in farming[farming["报送情况"] == UNREADABLE].itertuples()]),
        "行数核对（row account: seen = used + set aside）": dg.MetadataValue.json(
            {k: int(accounts[k].sum()) for k in ("行数", "读入", "未读入")} if len(accounts) else {}),
        "已签字（signed packages）": dg.MetadataValue.json(signed),
        "数据质量报告（quality report）": dg.MetadataValue.url(paths.download_url(paths.quality) + "/"),
        "全部报表（all reports）": dg.MetadataValue.url(paths.download_url(paths.reports)),
        **download_links(paths, path),
    })


def row_account_sheet(accounts: pd.DataFrame, villages: pd.DataFrame) -> pd.DataFrame:
    """行数核对: per village, file and sheet, rows seen = rows used + rows set aside by reason."""
    from pipeline.rules.workbook import ASIDE_REASONS

    names = villages.set_index("village_code")
    frame = accounts.rename(columns=ROW_ACCOUNT_LABELS)
    frame.insert(1, "村名称", [names.at[c, "village_name"] if c in names.index else "" for c in frame["村代码"]])
    frame.insert(0, "办事处", [names.at[c, "subdistrict_name"] if c in names.index else "" for c in frame["村代码"]])
    frame["核对"] = frame.pop("balanced").map({True: "平", False: "不平"})
    frame["文件"] = frame["文件"].map(_file_name)  # the village's own file name, no data-root folders
    reasons = [r for r in ASIDE_REASONS if r in frame.columns]
    return frame[["办事处", "村代码", "村名称", "文件", "工作表", "用作", "行数", "读入", "未读入", *reasons, "核对"]]


def markdown_table(frame: pd.DataFrame, columns: list[str]) -> str:
    """Rows of a progress sheet as a Markdown table with its Chinese headers (no name, no ID)."""
    if frame.empty:
        return "（无）"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame[columns].itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines)


def _file_name(path) -> str:
    """A village's file by its own name, without the data root's folders (surveys/…)."""
    return PurePosixPath(path).name if isinstance(path, str) else ""


def _late(mtime, farming: bool, deadline: dt.date, today: dt.date, tz) -> str:
    if not farming:
        return ""
    if mtime is None or pd.isna(mtime):
        return "是（未报送）" if today > deadline else ""
    submitted = dt.datetime.fromtimestamp(float(mtime), tz).date()
    return "是" if submitted > deadline else "否"
