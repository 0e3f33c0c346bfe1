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

from pipeline.io.inputs import FILE_READ, list_files
from pipeline.layout import ANNEX1_FILE, DRAFT_DIR, PUBLIC_DIR
from pipeline.rules.annex import ANNEXES
from pipeline.rules.notices import FIRST, NOTICE_SUFFIX, SECOND
from pipeline.rules.sqlutil import table_exists
from pipeline.schema import DEPARTMENTS, DEPARTMENTS_DIR
from pipeline.settings import TIME_FORMAT
from pipeline.tables import DEPARTMENT_RETURNS, OPEN_PROBLEMS, SURVEY_FILES, VILLAGE_SUBMISSIONS, VILLAGES

OFFICE_TZ = ZoneInfo("Asia/Shanghai")  # the district office's clock (schedules, signatures)


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


def office_now() -> dt.datetime:
    return dt.datetime.now(OFFICE_TZ).replace(microsecond=0)


def local_time(timestamp: float | None) -> str:
    if timestamp is None or pd.isna(timestamp):
        return ""
    return dt.datetime.fromtimestamp(float(timestamp), OFFICE_TZ).strftime(TIME_FORMAT)


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
                 WHERE village_code IS NOT NULL GROUP BY village_code)
        SELECT v.village_code, v.village_name, v.subdistrict_code, v.subdistrict_name, v.farming,
               l.file, l.mtime, l.households, l.members, coalesce(s.files, 0) AS files
        FROM villages v LEFT JOIN latest l USING (village_code) LEFT JOIN seen s USING (village_code)
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
        reasons.append(f"涉农村未报送入户调查表：{v.subdistrict_name}{v.village_name}（{v.village_code}）")

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
