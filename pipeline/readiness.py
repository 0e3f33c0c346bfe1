"""Where the review stands: who has submitted, which departments have returned, which problems
still block, and whether the drafts are newer than what they were made from.

The progress report (reports/进度.xlsx) shows these; the sign-off gate refuses while any of them
is not met. Nothing here returns a name or an ID: villages and departments are named, problems
are counted and referred to by their 问题编号.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from pipeline.io.inputs import FILE_READ, FILE_SUPERSEDED, list_files
from pipeline.layout import ANNEX1_FILE, DRAFT_DIR, PUBLIC_DIR
from pipeline.privacy import mask_text
from pipeline.rules.annex import ANNEXES
from pipeline.rules.notices import FIRST, NOTICE_SUFFIX, SECOND
from pipeline.rules.quality import UNREADABLE_FILES_SQL
from pipeline.rules.sqlutil import table_exists
from pipeline.schema import DEPARTMENTS, DEPARTMENTS_DIR
from pipeline.settings import TIME_FORMAT
from pipeline.tables import DEPARTMENT_RETURNS, OPEN_PROBLEMS, SURVEY_FILES, VILLAGE_SUBMISSIONS, VILLAGES

OFFICE_TZ = ZoneInfo("Asia/Shanghai")  # the default of Settings.timezone (schedules are fixed to it)


@dataclass(frozen=True)
class PackageFile:
    label: str  # 附件1 … / 附件2公示 …
    relative: str  # under the reports root

    @property
    def name(self) -> str:
        return Path(self.relative).name


# What a signed package holds (outputs.md, "Sign-off"): the six 附件, every notice (公示) under
# public/ (package_files) and the 公告, which the sign-off writes.
PACKAGE_FILES: tuple[PackageFile, ...] = (
    PackageFile("附件1", f"{DRAFT_DIR}/{ANNEX1_FILE}"),
    *(PackageFile(a.filename.split("_")[0], f"{DRAFT_DIR}/{a.filename}") for a in ANNEXES.values()),
)
PACKAGE_ASSETS = ("annex1", *ANNEXES, "public_notices")  # the assets that write those files


def package_files(reports: Path) -> list[PackageFile]:
    """PACKAGE_FILES and the notices: each village's 第一次公示 (public/<办事处>/…) and each
    办事处's 第二次公示 (public/…), as they are on disk."""
    public = Path(reports) / PUBLIC_DIR
    found = sorted(public.rglob(f"*{NOTICE_SUFFIX}")) if public.is_dir() else []
    return [*PACKAGE_FILES,
            *(PackageFile(FIRST if p.parent != public else SECOND, p.relative_to(reports).as_posix())
              for p in found)]


def office_tz() -> ZoneInfo:
    """The time zone of every time shown to people: ``Settings.timezone`` (settings file or
    default); Asia/Shanghai if the settings cannot be read (the run reports that elsewhere)."""
    from pipeline.settings import load_settings

    try:
        return load_settings().tz
    except Exception:
        return OFFICE_TZ


def office_now(tz: ZoneInfo | None = None) -> dt.datetime:
    """Now on the office's clock (aware), to the second."""
    return dt.datetime.now(tz or office_tz()).replace(microsecond=0)


def office_stamp(tz: ZoneInfo | None = None) -> dt.datetime:
    """Now on the office's clock without its zone: the 生成时间 written into workbooks."""
    return office_now(tz).replace(tzinfo=None)


def local_time(timestamp: float | None, tz: ZoneInfo | None = None) -> str:
    """A file time (seconds since the epoch) as the office reads it: 2019-04-28 09:30:00."""
    if timestamp is None or pd.isna(timestamp):
        return ""
    return dt.datetime.fromtimestamp(float(timestamp), tz or office_tz()).strftime(TIME_FORMAT)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def input_files(root: Path) -> list[Path]:
    """Every input file under the data root (Excel lock files and dot-files are not input)."""
    return list_files(Path(root))


def arrival_time(path: Path) -> float:
    """When a file arrived or last changed. The inode change time counts too: a file copied in
    with its old modification time kept (``cp -p``, Explorer, unzip) is still new here."""
    stat = path.stat()
    return max(stat.st_mtime, stat.st_ctime)


def newest_input(root: Path) -> tuple[str, float] | None:
    newest = None
    for path in input_files(root):
        try:
            t = arrival_time(path)
        except FileNotFoundError:
            continue
        if newest is None or t > newest[1]:
            newest = (path.relative_to(root).as_posix(), t)
    return newest


# --------------------------------------------------------------------------------------------
# Departments
# --------------------------------------------------------------------------------------------


def _returns_table(con) -> dict[str, bool] | None:
    """{dept key: returned} from the cross-check's department_returns table, if it exists."""
    if con is None or not table_exists(con, DEPARTMENT_RETURNS):
        return None
    return {str(k): bool(v) for k, v in con.execute(f"SELECT dept, returned FROM {DEPARTMENT_RETURNS}").fetchall()}


def department_status(con, root: Path) -> pd.DataFrame:
    """One row per department of schema.DEPARTMENTS: returned?, files, newest file time. 'Returned'
    comes from the department_returns table when the warehouse has it, else from the folder
    (departments/<key>/ holding at least one input file)."""
    table = _returns_table(con)
    rows = []
    for dept in DEPARTMENTS:
        files = list_files(Path(root) / DEPARTMENTS_DIR / dept.key)
        times = [f.stat().st_mtime for f in files]
        returned = table.get(dept.key, bool(files)) if table is not None else bool(files)
        rows.append({"key": dept.key, "name": dept.name, "folder": f"{DEPARTMENTS_DIR}/{dept.key}/",
                     "returned": returned, "files": len(files), "latest": max(times) if times else None,
                     "source": DEPARTMENT_RETURNS if table is not None else "folder"})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Villages and problems
# --------------------------------------------------------------------------------------------


def village_status(con) -> pd.DataFrame:
    """One row per village of the roster: its newest read workbook (from the last rebuild, or
    from the village's intake run if that is newer), households, persons and open problems."""
    frame = con.execute(f"""
        WITH latest AS (
            SELECT village_code, arg_max(file, mtime) AS file, max(mtime) AS mtime,
                   arg_max(households, mtime) AS households, arg_max(members, mtime) AS members
            FROM survey_files WHERE status = '{FILE_READ}' GROUP BY village_code),
        seen AS (SELECT village_code, count(*) AS files FROM survey_files
                 WHERE village_code IS NOT NULL GROUP BY village_code),
        unread AS (SELECT village_code, arg_max(file, mtime) AS unreadable_file,
                          arg_max(reason, mtime) AS unreadable_reason, max(mtime) AS unreadable_mtime
                   FROM ({UNREADABLE_FILES_SQL}) WHERE village_code IS NOT NULL AND (NOT other OR village_code NOT IN
                       (SELECT village_code FROM survey_files WHERE status = '{FILE_READ}' AND village_code IS NOT NULL))
                   GROUP BY village_code)
        SELECT v.village_code, v.village_name, v.subdistrict_code, v.subdistrict_name, v.farming,
               l.file, l.mtime, l.households, l.members, coalesce(s.files, 0) AS files,
               u.unreadable_file, u.unreadable_reason, u.unreadable_mtime
        FROM villages v LEFT JOIN latest l USING (village_code) LEFT JOIN seen s USING (village_code)
        LEFT JOIN unread u USING (village_code)
        ORDER BY v.subdistrict_code, v.village_code""").df()
    frame["pending_rebuild"] = False
    if table_exists(con, VILLAGE_SUBMISSIONS):
        intake = con.execute(f"SELECT village_code, file, mtime, households, members FROM {VILLAGE_SUBMISSIONS} "
                             f"WHERE status = '{FILE_READ}'").df().set_index("village_code")
        for i, row in frame.iterrows():
            if row.village_code in intake.index:
                new = intake.loc[row.village_code]
                if pd.isna(row.mtime) or new.mtime > row.mtime:
                    for col in ("file", "mtime", "households", "members"):
                        frame.at[i, col] = new[col]
                    frame.at[i, "pending_rebuild"] = True
    counts = problem_counts(con)
    frame = frame.merge(counts, how="left", on="village_code")
    for col in ("blocking", "warnings"):
        frame[col] = frame[col].fillna(0).astype(int)
    frame["submitted"] = frame["file"].notna()
    return frame


def unattributed_unreadable(con) -> pd.DataFrame:
    """Survey files that could not be read and that no village can be found for."""
    return con.execute(f"SELECT file, reason FROM ({UNREADABLE_FILES_SQL}) WHERE village_code IS NULL AND NOT other "
                       "ORDER BY file").df()


# The row account shown with each file (inputs.md): per sheet of every read file, rows seen, used,
# and set aside by reason. Columns: the reasons of pipeline.io.survey.ASIDE_REASONS.
ROW_ACCOUNT_LABELS = {"village_code": "村代码", "file": "文件", "sheet_name": "工作表", "used_as": "用作",
                      "rows_seen": "行数", "rows_used": "读入", "rows_set_aside": "未读入"}


def row_accounts(con, latest_only: bool = True) -> pd.DataFrame:
    """One row per sheet of each read survey file (the latest of each village, or every file
    read): rows seen, used and set aside, and the set-aside rows by reason, and whether the
    account balances (seen = used + set aside). Plain SQL, no names or IDs."""
    from pipeline.rules.workbook import ASIDE_REASONS
    from pipeline.tables import ROWS_SET_ASIDE, SHEET_ACCOUNTS

    labels = list(ROW_ACCOUNT_LABELS) + list(ASIDE_REASONS) + ["balanced"]
    if not table_exists(con, SHEET_ACCOUNTS):
        return pd.DataFrame(columns=labels)
    by_reason = ", ".join(f"count(a.row) FILTER (WHERE a.reason = '{r}') AS \"{r}\"" for r in ASIDE_REASONS)
    status = f"= '{FILE_READ}'" if latest_only else "IS NOT NULL"
    frame = con.execute(f"""
        SELECT s.village_code, s.file, s.sheet_name,
               coalesce(s.sheet, '未使用（' || s.note || '）') AS used_as,
               s.rows_seen, s.rows_used, s.rows_set_aside, {by_reason}, count(a.row) AS listed
        FROM {SHEET_ACCOUNTS} s JOIN survey_files f USING (file)
        LEFT JOIN {ROWS_SET_ASIDE} a ON a.file = s.file AND a.sheet_name = s.sheet_name
        WHERE f.status {status}
        GROUP BY s.village_code, s.file, s.sheet_name, s.sheet, s.note, s.rows_seen, s.rows_used, s.rows_set_aside
        ORDER BY s.village_code, s.file, s.sheet IS NULL, s.sheet, s.sheet_name""").df()
    frame["balanced"] = (frame["rows_seen"] == frame["rows_used"] + frame["listed"]) & (
        frame["rows_set_aside"] == frame["listed"])
    return frame[labels]


def row_account_metadata(accounts: pd.DataFrame, listed: int = 40) -> dict:
    """The row account as Dagster metadata: totals by reason, whether every sheet balances, and
    the sheets of the files in use (the first ``listed``; sheets with rows set aside first)."""
    import dagster as dg

    from pipeline.rules.workbook import ASIDE_REASONS

    totals = {"rows seen": int(accounts["rows_seen"].sum()), "rows used": int(accounts["rows_used"].sum()),
              **{r: int(accounts[r].sum()) for r in ASIDE_REASONS if int(accounts[r].sum())}}
    shown = accounts.assign(_aside=accounts["rows_set_aside"] > 0).sort_values(
        ["_aside", "file", "sheet_name"], ascending=[False, True, True]).head(listed)
    lines = ["| 文件 | 工作表 | 用作 | 行数 | 读入 | 未读入（按原因） |", "|---|---|---|---|---|---|"]
    for row in shown.to_dict("records"):
        why = "、".join(f"{k} {int(row[k])}" for k in ASIDE_REASONS if row.get(k)) or "—"
        lines.append(f"| `{row['file']}` | {row['sheet_name']} | {row['used_as']} | {row['rows_seen']} "
                     f"| {row['rows_used']} | {why} |")
    if len(accounts) > listed:
        lines.append(f"| …另有 {len(accounts) - listed} 个工作表 | | | | | |")
    return {
        "行数核对（row account: seen = used + set aside）": dg.MetadataValue.json(totals),
        "行数核对是否平（row account balances）": bool(accounts["balanced"].all()) if len(accounts) else True,
        "各工作表行数（row account by sheet）": dg.MetadataValue.md("\n".join(lines)),
    }


SUPERSEDED_COLUMNS = ("办事处", "村代码", "村名称", "被替代的文件", "其报送时间", "替代它的文件", "替代文件报送时间")


def superseded_files(con, tz=None) -> pd.DataFrame:
    """Every workbook a newer one of the same village replaced: the file, when it was submitted,
    and the file (and time) that replaced it — one row per superseded file, by village."""
    if con is None or not table_exists(con, SURVEY_FILES):
        return pd.DataFrame(columns=list(SUPERSEDED_COLUMNS))
    villages = "LEFT JOIN villages v USING (village_code)" if table_exists(con, VILLAGES) else ""
    names = "v.subdistrict_name, v.village_name" if villages else "NULL, NULL"
    frame = con.execute(f"""
        SELECT {names}, o.village_code, o.file, o.mtime, n.file AS new_file, n.mtime AS new_mtime
        FROM survey_files o
        JOIN (SELECT village_code, arg_max(file, mtime) AS file, max(mtime) AS mtime FROM survey_files
              WHERE status = '{FILE_READ}' GROUP BY village_code) n USING (village_code)
        {villages}
        WHERE o.status = '{FILE_SUPERSEDED}'
        ORDER BY o.village_code, o.mtime, o.file""").df()
    frame.columns = ["subdistrict_name", "village_name", "village_code", "file", "mtime", "new_file", "new_mtime"]
    return pd.DataFrame({
        "办事处": frame["subdistrict_name"].fillna(""), "村代码": frame["village_code"],
        "村名称": frame["village_name"].fillna(""), "被替代的文件": frame["file"],
        "其报送时间": frame["mtime"].map(lambda t: local_time(t, tz)), "替代它的文件": frame["new_file"],
        "替代文件报送时间": frame["new_mtime"].map(lambda t: local_time(t, tz)),
    }, columns=list(SUPERSEDED_COLUMNS))


def superseded_markdown(frame: pd.DataFrame, columns=SUPERSEDED_COLUMNS) -> str:
    """The superseded files as a Markdown table (file names are the villages' own, not personal)."""
    if frame.empty:
        return "（没有被替代的文件）"
    columns = list(columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame[columns].itertuples(index=False):
        lines.append("| " + " | ".join(mask_text(str(v)).replace("|", "/") for v in row) + " |")
    return "\n".join(lines)


def problem_counts(con) -> pd.DataFrame:
    if not table_exists(con, OPEN_PROBLEMS):
        return pd.DataFrame({"village_code": pd.Series(dtype=str), "blocking": pd.Series(dtype=int),
                             "warnings": pd.Series(dtype=int)})
    return con.execute("""
        SELECT village_code, count(*) FILTER (WHERE blocking) AS blocking,
               count(*) FILTER (WHERE NOT blocking AND NOT accepted) AS warnings
        FROM open_problems WHERE village_code IS NOT NULL GROUP BY village_code""").df()


def open_blocking(con) -> pd.DataFrame:
    """Open blocking problems (not accepted in exceptions.csv): id, rule, village — no values."""
    if not table_exists(con, OPEN_PROBLEMS):
        return pd.DataFrame(columns=["problem_id", "rule", "village_code"])
    return con.execute("SELECT problem_id, rule, village_code FROM open_problems WHERE blocking "
                       "ORDER BY village_code, rule, problem_id").df()


# --------------------------------------------------------------------------------------------
# The sign-off gate
# --------------------------------------------------------------------------------------------

MAX_LISTED = 30  # problems listed one by one in a refusal; the rest are counted


def gate_reasons(con, root: Path, reports: Path, last_build: tuple[str, float] | None) -> list[str]:
    """Every reason the result cannot be signed now (empty when it can), in the analyst's words.
    ``last_build``: (asset, time) of the newest materialization the drafts were made from."""
    reasons: list[str] = []
    if not table_exists(con, VILLAGES) or not table_exists(con, SURVEY_FILES):
        return ["数据仓库中没有全区数据：请先运行 full_rebuild"]

    villages = village_status(con)
    names = {v.village_code: f"{v.subdistrict_name}{v.village_name}" for v in villages.itertuples()}
    blocking = open_blocking(con)
    if len(blocking):
        by_rule = blocking["rule"].value_counts().sort_index()
        by_village = blocking["village_code"].fillna("").value_counts().sort_index()
        reasons.append(
            f"有 {len(blocking)} 个“必须修改”的数据问题未解决（也未在 exceptions.csv 中接受）："
            + "、".join(f"{r} {n}个" for r, n in by_rule.items())
            + "；涉及 " + "、".join(f"{names.get(v, v or '全区')}（{n}个）" for v, n in by_village.items())
            + "；问题编号：" + "、".join(blocking["problem_id"].head(MAX_LISTED))
            + ("……" if len(blocking) > MAX_LISTED else "") + "。请各村按问题清单修改后重新报送")

    missing = villages[villages["farming"] & ~villages["submitted"]]
    for v in missing.itertuples():
        if isinstance(v.unreadable_file, str):  # it has submitted: its file could not be read
            reasons.append(f"涉农村报送的文件无法读取：{v.subdistrict_name}{v.village_name}（{v.village_code}）"
                           f"：{v.unreadable_file}：{v.unreadable_reason}")
        else:
            reasons.append(f"涉农村未报送入户调查表：{v.subdistrict_name}{v.village_name}（{v.village_code}）")
    for f in unattributed_unreadable(con).itertuples():
        reasons.append(f"报送的文件无法读取，也无法判断是哪个村的：{f.file}：{f.reason}")

    for d in department_status(con, root).itertuples():
        if not d.returned:
            reasons.append(f"部门未反馈比对数据：{d.name}（{d.folder}）")

    newest = newest_input(root)
    absent, older_than_input, older_than_build = [], [], []
    if not any(item.label == SECOND for item in package_files(reports)):
        absent.append(f"{PUBLIC_DIR}/*{NOTICE_SUFFIX}")
    for item in package_files(reports):
        path = Path(reports) / item.relative
        if not path.exists():
            absent.append(item.relative)
            continue
        made = path.stat().st_mtime
        label = item.label if item.label not in (FIRST, SECOND) else "公示"
        if label in older_than_input or label in older_than_build:
            continue
        if newest is not None and made < newest[1]:
            older_than_input.append(label)
        elif last_build is not None and made < last_build[1]:
            older_than_build.append(label)
    if absent:
        reasons.append("缺少草稿：" + "、".join(absent) + "：请先运行 full_rebuild")
    if older_than_input:
        reasons.append("、".join(older_than_input) + f"草稿早于输入文件 {newest[0]}（{local_time(newest[1])}）："
                       "请重新运行 full_rebuild")
    if older_than_build:
        reasons.append("、".join(older_than_build) + f"草稿早于数据仓库的最近一次构建（{last_build[0]}，"
                       f"{local_time(last_build[1])}）：请重新运行 full_rebuild")
    return reasons


# --------------------------------------------------------------------------------------------
# 签字条件: the gate as a table, one row per condition of outputs.md
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One condition of the sign-off (outputs.md, 签字): met or not, how many, and who."""

    label: str  # 条件
    met: bool
    count: str  # e.g. "0 个", "2/3"
    concerned: tuple[str, ...] = ()  # villages, departments or drafts, Markdown (links allowed)


MET, NOT_MET = "【满足】", "【未满足】"  # plain text: every font of an office PC has it
MAX_CONCERNED = 20  # names listed in one cell; the rest are counted


def signoff_conditions(con, root: Path, reports: Path, last_build: tuple[str, float] | None,
                       problem_link=None, tz=None) -> list[Condition]:
    """The four conditions of the sign-off, each met or not, with counts and who is concerned.
    ``problem_link(village row) -> url`` links a village to its 问题清单 (None: no links)."""
    if con is None or not table_exists(con, VILLAGES) or not table_exists(con, SURVEY_FILES):
        return [Condition("数据仓库已有全区数据（warehouse built）", False, "0",
                          ("请先运行 full_rebuild（物化全部资产）",))]
    villages = village_status(con)
    by_code = {v.village_code: v for v in villages.itertuples()}

    def village_cell(code: str, extra: str = "") -> str:
        v = by_code.get(code)
        name = f"{v.subdistrict_name}{v.village_name}" if v is not None else (code or "全区")
        text = f"{name}{extra}"
        url = problem_link(v) if (problem_link and v is not None) else None
        return f"[{text}]({url})" if url else text

    blocking = open_blocking(con)
    per_village = blocking["village_code"].fillna("").value_counts().sort_index()
    problems = Condition(
        "没有未解决的“必须修改”问题（no open blocking problem）", len(blocking) == 0, f"{len(blocking)} 个",
        tuple(village_cell(code, f"（{n}个）") for code, n in per_village.items()))

    farming = villages[villages["farming"]]
    missing = farming[~farming["submitted"]]
    submitted = Condition(
        "涉农村均已报送入户调查表（every 涉农 village submitted）", missing.empty,
        f"已报送 {len(farming) - len(missing)}/{len(farming)}",
        tuple(village_cell(code) for code in missing["village_code"]))

    departments = department_status(con, root)
    absent = departments[~departments["returned"]]
    returned = Condition(
        "各部门均已反馈比对数据（every department returned）", absent.empty,
        f"已反馈 {len(departments) - len(absent)}/{len(departments)}",
        tuple(f"{d.name}（{d.folder}）" for d in absent.itertuples()))

    newest = newest_input(root)
    stale = []
    for item in PACKAGE_FILES:
        path = Path(reports) / item.relative
        if not path.exists():
            stale.append(f"{item.label}：缺少")
            continue
        made = path.stat().st_mtime
        if newest is not None and made < newest[1]:
            stale.append(f"{item.label}：早于输入文件（{local_time(newest[1], tz)}）")
        elif last_build is not None and made < last_build[1]:
            stale.append(f"{item.label}：早于最近一次构建（{local_time(last_build[1], tz)}）")
    drafts = Condition(
        "附件草稿齐全且不早于输入（drafts complete and up to date）", not stale,
        f"最新 {len(PACKAGE_FILES) - len(stale)}/{len(PACKAGE_FILES)}", tuple(stale))
    return [problems, submitted, returned, drafts]


def conditions_markdown(conditions: list[Condition]) -> str:
    """The 签字条件 table (Markdown), as the UI shows it."""
    lines = ["| 签字条件 | 是否满足 | 数量 | 涉及（村、部门或草稿） |", "|---|---|---|---|"]
    for c in conditions:
        shown = list(c.concerned[:MAX_CONCERNED])
        if len(c.concerned) > MAX_CONCERNED:
            shown.append(f"……等 {len(c.concerned)} 项")
        cell = "、".join(shown).replace("|", "/") or "—"
        lines.append(f"| {c.label} | {MET if c.met else NOT_MET} | {c.count} | {cell} |")
    met = sum(c.met for c in conditions)
    verdict = "**可以签字**（all conditions met）" if met == len(conditions) else \
        f"**暂不能签字**：{len(conditions) - met} 个条件未满足（not ready to sign）"
    return verdict + "\n\n" + "\n".join(lines)


def git_commit(repo: Path | None = None) -> dict[str, object] | None:
    """The source's git commit (and whether the tree had uncommitted changes), if available."""
    import subprocess

    repo = repo or Path(__file__).resolve().parent.parent
    if not (repo / ".git").exists():
        return None
    try:
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, env=env, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, env=env).stdout.strip()
        return {"commit": commit, "uncommitted_changes": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return None
