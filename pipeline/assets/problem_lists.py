"""问题清单: one workbook per village with every problem to fix, and the district summary.

The list goes back to the village that typed the data (outputs.md): it names the village's file,
the sheet and Excel row, the household's 户主姓名, and shows 原值 as the village typed it, read
from that very cell of its file (the warehouse keeps only a masked copy, for logs and metadata).
A problem with no cell of the village's file (e.g. a registered household nobody surveyed) shows
the masked value. The W6 detection thresholds never reach a village: its list says what to check,
not the band that was measured, and its 设置 sheet leaves them out. Problems accepted in
exceptions.csv stay listed, with 状态 已接受. The district summary shows no name or ID.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import dagster as dg
import pandas as pd

from pipeline import charts
from pipeline.io.excel import to_text, write_sheets_workbook
from pipeline.io.survey import ROW_COLUMN, UnreadableWorkbook, read_survey
from pipeline.metadata import download_links
from pipeline.readiness import ROW_ACCOUNT_LABELS, office_stamp, row_accounts, village_status
from pipeline.resources import AFTER_DRAFTS, WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource
from pipeline.rules.problems import ACCEPTED, BLOCKING, LIST_COLUMNS, OPEN, RULES
from pipeline.rules.quality import COVERAGE_SQL
from pipeline.schema import SURVEY_SHEETS

# (sheet, column label) -> the schema key the survey reader gives that column
LABEL_KEYS = {(sheet, c.label): c.key for sheet, cols in SURVEY_SHEETS.items() for c in cols}

SUMMARY_FILE = "问题汇总.xlsx"
LIST_SUFFIX = "_问题清单.xlsx"
LIST_SHEET, RULES_SHEET, ROWS_SHEET = "问题清单", "汇总", "行数核对"
NO_PROBLEM = "本村未发现数据问题"
NOT_IN_ROSTER = "（不在村名册）"
TEXT_COLUMNS = frozenset({"问题编号", "规则", "严重程度", "文件", "表", "户主姓名", "列", "原值", "问题", "修改建议",
                          "状态", "办事处", "村代码", "村名称", "名称"})
W6_VILLAGE_MESSAGE = "本村年人均纯收入刚过标准线的户明显偏多，请逐户核实该户收入"

_UNSAFE = re.compile(r'[\\/:*?"<>|\s]+')


def list_path(folder: Path, subdistrict: str, village_code: str, village_name: str) -> Path:
    """<problems folder>/<办事处名称>/<村代码>_<村名称>_问题清单.xlsx"""
    sub = _UNSAFE.sub("_", subdistrict or NOT_IN_ROSTER)
    name = _UNSAFE.sub("_", village_name or "未知村")
    return Path(folder) / sub / f"{village_code}_{name}{LIST_SUFFIX}"


_PROBLEMS_SQL = """
WITH heads AS (SELECT hh_key, any_value(head_name) AS head_name FROM households GROUP BY hh_key)
SELECT p.problem_id AS "问题编号", p.rule AS "规则", p.severity AS "严重程度", p.file AS "文件",
       p.sheet AS "表", p.row AS "原文件行号",
       coalesce(hk.head_name, hr.head_name, hm.head_name) AS "户主姓名",
       p."column" AS "列", p.value AS "原值", p.message AS "问题",
       p.suggestion AS "修改建议", p.state AS "状态", p.village_code
FROM open_problems p
LEFT JOIN heads hk ON hk.hh_key = p.hh_key
LEFT JOIN households hr ON p.sheet = '家庭基本情况' AND hr.file = p.file AND hr."row" = p."row"
LEFT JOIN members m ON p.sheet = '家庭成员情况' AND m.file = p.file AND m."row" = p."row"
LEFT JOIN heads hm ON hm.hh_key = m.hh_key
"""


def typed_values(raw: Path, problems: pd.DataFrame) -> list[object]:
    """原值 as the village typed it: the cell at (文件, 表, 原文件行号, 列) of its own file, or the
    masked value when there is no such cell (or the file can no longer be read)."""
    out = list(problems["原值"])
    for file, group in problems.groupby("文件", dropna=True, sort=False):
        try:
            read = read_survey(Path(raw) / file)
        except (UnreadableWorkbook, OSError):
            continue
        for pos, p in group.iterrows():
            sheet = read.sheets.get(p["表"]) if isinstance(p["表"], str) else None
            key = LABEL_KEYS.get((p["表"], p["列"]))
            if sheet is None or key is None or key not in sheet.frame.columns or pd.isna(p["原文件行号"]):
                continue
            hit = sheet.frame.loc[sheet.frame[ROW_COLUMN] == int(p["原文件行号"]), key]
            if len(hit):
                value = hit.iat[0]
                out[problems.index.get_loc(pos)] = None if value is None or value == "" else to_text(value)
    return out


def _rule_order(frame: pd.DataFrame) -> pd.Series:
    order = {code: i for i, code in enumerate(RULES)}
    return frame["规则"].map(order)


def village_list(problems: pd.DataFrame) -> pd.DataFrame:
    """The 问题清单 rows of one village: 必须修改 first, then by rule, sheet and row. 文件 is the
    file's name; a W6 row says what to check without the band that was measured."""
    if problems.empty:
        row = {c: None for c in LIST_COLUMNS}
        row["问题"] = NO_PROBLEM
        return pd.DataFrame([row], columns=list(LIST_COLUMNS))
    problems = problems.assign(
        文件=problems["文件"].map(lambda f: PurePosixPath(f).name if isinstance(f, str) else f),
        问题=problems["问题"].where(problems["规则"] != "W6", W6_VILLAGE_MESSAGE))
    frame = problems.assign(_rule=_rule_order(problems), _open=(problems["状态"] != OPEN).astype(int))
    frame = frame.sort_values(["_open", "_rule", "表", "原文件行号", "列"], na_position="first", kind="stable")
    return frame[list(LIST_COLUMNS)].reset_index(drop=True)


def rule_summary(problems: pd.DataFrame) -> pd.DataFrame:
    counts = problems.groupby(["规则", "状态"]).size().unstack(fill_value=0) if len(problems) else pd.DataFrame()
    rows = []
    for code, rule in RULES.items():
        open_n = int(counts.at[code, OPEN]) if OPEN in counts and code in counts.index else 0
        accepted_n = int(counts.at[code, ACCEPTED]) if ACCEPTED in counts and code in counts.index else 0
        rows.append({"规则": code, "名称": rule.name, "严重程度": rule.severity, OPEN: open_n, ACCEPTED: accepted_n,
                     "合计": open_n + accepted_n})
    frame = pd.DataFrame(rows)
    total = {"规则": "合计", "名称": "", "严重程度": "", **{c: int(frame[c].sum()) for c in (OPEN, ACCEPTED, "合计")}}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def village_summary(villages: pd.DataFrame, problems: pd.DataFrame, submitted: set[str]) -> pd.DataFrame:
    """问题汇总, 按村: one row per village — open blocking, open warnings, accepted, and per rule."""
    rows = []
    for v in villages.itertuples():
        mine = problems[problems["village_code"] == v.village_code]
        open_ = mine[mine["状态"] == OPEN]
        row = {"办事处": v.subdistrict_name, "村代码": v.village_code, "村名称": v.village_name,
               "已报送": "是" if v.village_code in submitted else "否",
               "必须修改（待修改）": int((open_["严重程度"] == BLOCKING).sum()),
               "请核实（待修改）": int((open_["严重程度"] != BLOCKING).sum()),
               ACCEPTED: int((mine["状态"] == ACCEPTED).sum()), "合计": len(mine)}
        counts = mine["规则"].value_counts()
        row.update({code: int(counts.get(code, 0)) for code in RULES})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    numeric = [c for c in frame.columns if c not in ("办事处", "村代码", "村名称", "已报送")]
    total = {"办事处": "合计", "村代码": "", "村名称": "", "已报送": "", **{c: int(frame[c].sum()) for c in numeric}}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


COVERAGE_COLUMNS = {
    "surveyed_households": "调查户数", "surveyed_persons": "调查人数",
    "registered_households": "建档立卡户（未清退）", "registered_households_found": "其中已调查（户）",
    "registered_persons": "建档立卡人口（未清退）", "registered_persons_found": "其中已调查（人）",
}


def coverage_table(coverage: pd.DataFrame, villages: pd.DataFrame, submitted: set[str]) -> pd.DataFrame:
    """问题汇总, 覆盖情况: per village, who was surveyed and how much of the registry was found
    (不落一户，不落一人); 漏户/漏人 are the registered households and persons not found."""
    names = villages.set_index("village_code")
    frame = coverage.rename(columns=COVERAGE_COLUMNS)
    frame.insert(0, "村名称", [names.at[c, "village_name"] if c in names.index else None for c in frame["village_code"]])
    frame.insert(0, "办事处", [names.at[c, "subdistrict_name"] if c in names.index else None for c in frame["village_code"]])
    frame = frame.rename(columns={"village_code": "村代码"})
    frame.insert(3, "已报送", ["是" if c in submitted else "否" for c in frame["村代码"]])
    frame["漏户"] = frame["建档立卡户（未清退）"] - frame["其中已调查（户）"]
    frame["漏人"] = frame["建档立卡人口（未清退）"] - frame["其中已调查（人）"]
    numeric = [c for c in frame.columns if c not in ("办事处", "村代码", "村名称", "已报送")]
    total = {"办事处": "合计", "村代码": "", "村名称": "", "已报送": "", **{c: int(frame[c].sum()) for c in numeric}}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def village_row_account(accounts: pd.DataFrame, unreadable: pd.DataFrame, village_code: str) -> pd.DataFrame:
    """行数核对 of one village: each sheet of its file in use — rows seen = rows read in + rows set
    aside, by reason — and a file of the village that could not be read, with the reason."""
    from pipeline.rules.workbook import ASIDE_REASONS

    mine = accounts[accounts["village_code"] == village_code].rename(columns=ROW_ACCOUNT_LABELS)
    mine = mine.drop(columns=["村代码"])
    mine["核对"] = mine.pop("balanced").map({True: "平", False: "不平"})
    reasons = [r for r in ASIDE_REASONS if r in mine.columns and mine[r].sum()]
    frame = mine[["文件", "工作表", "用作", "行数", "读入", "未读入", *reasons, "核对"]]
    bad = unreadable[(unreadable["village_code"] == village_code) & unreadable["unreadable_file"].notna()]
    for u in bad.itertuples():
        frame = pd.concat([frame, pd.DataFrame([{"文件": u.unreadable_file, "工作表": "",
                                                 "用作": f"无法读取：{u.unreadable_reason}"}])], ignore_index=True)
    if frame.empty:
        frame = pd.DataFrame([{"文件": "（没有读入的文件）"}], columns=frame.columns)
    return frame


@dg.asset(group_name="step5_quality", pool=WAREHOUSE_POOL, kinds={"excel"}, op_tags=AFTER_DRAFTS,
          deps=["data_problems", "village_roster", "survey_workbooks"])
def problem_lists(paths: PathsResource, warehouse: WarehouseResource,
                  settings: SettingsResource) -> dg.MaterializeResult:
    """问题清单：每个涉农村一份，列出该村要修改或核实的全部问题，另有全区汇总。
    问题清单 for every 涉农 village (and any other village with a problem) under
    reports/problems/<办事处名称>/<村代码>_<村名称>_问题清单.xlsx — 问题编号, 规则, 严重程度, 表,
    文件, 原文件行号, 户主姓名, 列, 原值 (as the village typed it), 问题, 修改建议, 状态 — plus the district summary 问题汇总.xlsx
    (problems by village and rule, and coverage: the registered households and persons each
    village's survey found). Each list also carries 行数核对: the rows of the village's file, read in
    or set aside with the reason (blank, notes, repeated header, 合计…). A village with no problem
    gets a list that says so. Lists of villages no longer concerned are removed."""
    s = settings.get()
    generated = office_stamp(s.tz)
    with warehouse.connect(read_only=True) as con:
        problems = con.execute(_PROBLEMS_SQL).df()
        villages = con.execute("""
            SELECT v.village_code, v.village_name, v.subdistrict_name, v.subdistrict_code, v.farming
            FROM villages v
            WHERE v.farming OR v.village_code IN (SELECT village_code FROM open_problems)
            UNION ALL
            SELECT DISTINCT p.village_code, NULL, NULL, NULL, false FROM open_problems p
            WHERE p.village_code IS NOT NULL AND p.village_code NOT IN (SELECT village_code FROM villages)
            ORDER BY 4 NULLS LAST, 1""").df()
        coverage = con.execute(COVERAGE_SQL).df()
        accounts = row_accounts(con)
        unreadable = village_status(con)[["village_code", "unreadable_file", "unreadable_reason"]]
        all_villages = con.execute("SELECT village_code, village_name, subdistrict_name FROM villages").df()
        submitted = {r[0] for r in con.execute(
            "SELECT DISTINCT village_code FROM survey_files WHERE status = '已读取' AND village_code IS NOT NULL"
        ).fetchall()}
        lines = (s.poverty_line, s.identification_line, s.monitoring_line)
        bins = charts.income_bins(con, lines)
    problems["原文件行号"] = problems["原文件行号"].astype("Int64")
    summary_problems = problems.copy()  # the district summary counts; it shows no value
    problems["原值"] = typed_values(paths.raw, problems)
    written: set[Path] = set()
    with_blocking = 0
    for v in villages.itertuples():
        mine = problems[problems["village_code"] == v.village_code]
        frame = village_list(mine)
        name = v.village_name or "未知村"
        title = f"{v.subdistrict_name or ''}{name}（{v.village_code}）数据质量问题清单"
        path = list_path(paths.problems, v.subdistrict_name, v.village_code, v.village_name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        rows = village_row_account(accounts, unreadable, v.village_code)
        write_sheets_workbook(
            path, {LIST_SHEET: (title, frame), RULES_SHEET: (title, rule_summary(mine)), ROWS_SHEET: (title, rows)},
            s, generated, text_columns=TEXT_COLUMNS | {"文件", "工作表", "用作", "核对"}, number_rows=False,
            for_village=True)
        written.add(path.resolve())
        with_blocking += int(((mine["状态"] == OPEN) & (mine["严重程度"] == BLOCKING)).any())
    summary_path = paths.report_path(paths.problems / SUMMARY_FILE)
    title = f"{s.district_name}脱贫质量“回头看”数据问题汇总"
    write_sheets_workbook(
        summary_path,
        {"按村": (title, village_summary(villages, summary_problems, submitted)),
         "按规则": (title, rule_summary(summary_problems)),
         "覆盖情况": (title, coverage_table(coverage, all_villages, submitted))},
        s, generated, text_columns=TEXT_COLUMNS, number_rows=False,
        charts=[charts.excel_income_chart(bins, lines)])
    picture = charts.write_svg(paths, charts.INCOME_SVG, charts.income_svg(bins, lines))
    removed = 0
    for old in paths.problems.rglob(f"*{LIST_SUFFIX}"):
        if old.resolve() not in written:
            old.unlink()
            removed += 1
    states = problems["状态"].value_counts().to_dict()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(problems),
        "村问题清单数（village lists）": len(written),
        "有未解决“必须修改”问题的村（villages with open blocking problems）": with_blocking,
        "没有问题的村（villages with no problem）": int(sum(1 for v in villages.itertuples()
                                            if not (problems["village_code"] == v.village_code).any())),
        "待修改的问题（open）": int(states.get(OPEN, 0)),
        "已接受的问题（accepted）": int(states.get(ACCEPTED, 0)),
        "删除的过期清单（stale lists removed）": removed,
        "已调查的建档立卡户（registered households surveyed）": f"{int(coverage['registered_households_found'].sum())}"
                                          f"/{int(coverage['registered_households'].sum())}",
        "已调查的建档立卡人（registered persons surveyed）": f"{int(coverage['registered_persons_found'].sum())}"
                                       f"/{int(coverage['registered_persons'].sum())}",
        **download_links(paths, summary_path),
        "收入分布图（incomes around the lines）": dg.MetadataValue.md(
            f"![年人均纯收入分布]({paths.download_url(picture)})\n\n红色：疑似算账式脱贫（W6）村的户；虚线："
            + "、".join(str(int(x)) for x in lines) + " 元标准线。"),
        "收入分布图链接（open the picture）": dg.MetadataValue.url(paths.download_url(picture)),
    })
