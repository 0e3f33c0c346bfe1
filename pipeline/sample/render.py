"""Step 8 of the sample generator: the files, rendered from the finished model.

``villages.csv``, the registry, the department extracts (``departments.py`` renders them) and
the village survey files, each with the mess its village's style calls for: file names, column
layout, cell mess (IDs, amounts, yes/no, stray spaces), merged cells, a degraded first
submission, a lock file and a corrupt file. The files are written by forked worker processes:
each file from the finished model and its own seeded RNG, so the bytes never depend on which
worker writes it or when. ``Files.rowmap`` then says where the rows the answer key cites went.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import math
import multiprocessing
import os
from pathlib import Path
from typing import Any

from pipeline import schema as S
from pipeline.sample import xlsxfast
from pipeline.sample.model import District, Household, Person, Style, Village, person_name

_TASKS_PER_WORKER = 200  # a worker is replaced after this many files (bounds copy-on-write growth)
_FORKED: Files | None = None  # the files a forked worker writes
CREATED = dt.datetime(2019, 4, 26, 9, 0, 0)  # fixed xlsx creation time
TZ = dt.timezone(dt.timedelta(hours=8))
FULLWIDTH = str.maketrans("0123456789.,-X", "０１２３４５６７８９．，－Ｘ")


class Files:
    """The files of one district under ``out``: planned here, written by ``workers`` processes.

    ``book`` is the district's department extracts (``departments.Extracts``)."""

    def __init__(self, d: District, book, out: Path, workers: int):
        self.d = d
        self.book = book
        self.out = out
        self.workers = workers
        self.mtime_base = dt.datetime(2019, 4, 26, 17, 0, tzinfo=TZ).timestamp()
        self.registry_files: list[str] = []
        self.registry_rows = 0
        self.ignored: list[str] = []
        self.unreadable: list[str] = []
        self.rowmap: dict = {}  # (sheet, hh.key, pid|None) -> Excel row, for the rows the answer key cites
        self._needed_rows: set = set()  # the keys of those rows
        self._registry: tuple | None = None  # (header, rows of each file) until the files are written

    def touch(self, path: Path, offset_minutes: float) -> None:
        """A fixed modification time, ``offset_minutes`` after the survey deadline's evening."""
        t = self.mtime_base + offset_minutes * 60
        os.utime(path, (t, t))

    def write_villages_csv(self) -> None:
        path = self.out / S.VILLAGES_FILE
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = S.VILLAGE_COLUMNS
        w.writerow([cols["village_code"], cols["village_name"], cols["subdistrict_code"], cols["subdistrict_name"],
                    cols["farming"]])
        for v in self.d.villages:
            w.writerow([v.code, v.name, v.sub_code, v.sub_name, S.YES if v.farming else S.NO])
        path.write_bytes(buf.getvalue().encode("utf-8-sig"))
        self.touch(path, -60 * 24 * 30)

    def plan(self) -> list:
        """Every file but villages.csv depends only on the finished model and its own seeded RNG:
        plan them all here (names, RNG names, registry rows), as (size, job) for :meth:`write`."""
        return self._plan_registry() + self._plan_departments() + self._plan_surveys()

    def _plan_registry(self) -> list:
        """The registry rows, in files of at most 200,000 rows: one job per file."""
        cols = S.REGISTRY_COLUMNS
        header = [cols[k] for k in ("hh_no", "village_code", "head_name", "name", "person_id", "relation",
                                    "poor_attribute", "status", "identified_year", "exit_year")]
        rows = []
        for hh in self.d.households + self.d.missed_households:
            if hh.kind not in ("reg", "removed"):
                continue
            for p in hh.members:
                if not p.registered:
                    continue
                rows.append((hh.village.code, [hh.hh_no, hh.village.code, hh.head.name, p.name, p.pid, p.relation,
                                               hh.poor_attr, hh.status, hh.ident_year, hh.exit_year]))
        rows.sort(key=lambda r: (r[0], r[1][0]))
        n_files = max(2, math.ceil(len(rows) / 200000))
        per = math.ceil(len(rows) / n_files)
        reg_dir = self.out / S.REGISTRY_DIR
        reg_dir.mkdir(parents=True, exist_ok=True)
        self.registry_files = []
        self._registry = (header, [[vals for _, vals in rows[k * per:(k + 1) * per]] for k in range(n_files)])
        jobs = []
        for k in range(n_files):
            name = f"建档立卡人口花名册_{k + 1}.xlsx"
            self.registry_files.append(f"{S.REGISTRY_DIR}/{name}")
            jobs.append((len(self._registry[1][k]), ("registry", k, str(reg_dir / name))))
        self.registry_rows = len(rows)
        return jobs

    def _write_registry_file(self, k: int, path: str) -> None:
        header, chunks = self._registry
        wb = xlsxfast.Workbook(path, {"in_memory": True, "constant_memory": False})
        wb.set_properties({"created": CREATED, "author": "全国扶贫开发信息系统"})
        ws = wb.add_worksheet("Sheet1")
        for c, h in enumerate(header):
            ws.write_string(0, c, h)
        put_row = ws.put_row
        for r, vals in enumerate(chunks[k], start=1):
            put_row(r, vals)
        wb.close()
        self.touch(Path(path), -60 * 24 * 25 + k)

    def _plan_departments(self) -> list:
        """The department extracts: one job renders them all (their RNG runs through the
        departments in order) and writes them; their names are known here."""
        self.book.plan_names(self.out)
        return [(sum(len(r) for r in self.book.records.values()), ("departments", 0, None))]

    def _plan_surveys(self) -> list:
        """Each village's file names (and the lock and corrupt files, written here): one job per
        survey file, rendered from the village's own RNG."""
        base = self.out / S.SURVEYS_DIR
        minute = 0
        jobs = []
        for i, v in enumerate(self.d.surveyed_villages):
            folder = base / v.sub_name
            folder.mkdir(parents=True, exist_ok=True)
            names = file_names(v)
            ext = ".xls" if v.style.xls else ".xlsx"
            minute += 7
            size = len(v.households)
            if "resubmit" in v.roles:
                old = folder / (names[1] + ext)
                new = folder / (names[1] + "-修改版" + ext)
                jobs.append((size, ("village", i, (str(old), f"render-old:{v.code}", True, minute - 60 * 24 * 2))))
                jobs.append((size, ("village", i, (str(new), f"render:{v.code}", False, minute + 60 * 24 * 10))))
                v.files = [self._rel(old), self._rel(new)]
                self.ignored.append(self._rel(old))
                v.latest = self._rel(new)
            else:
                path = folder / (names[0] + ext)
                jobs.append((size, ("village", i, (str(path), f"render:{v.code}", False, minute))))
                v.files = [self._rel(path)]
                v.latest = v.files[0]
            if "lock" in v.roles:
                lock = folder / ("~$" + Path(v.latest).name)
                lrng = self.d.rng_for("lock")
                owner = v.style.reporter.encode("utf-16-le")
                lock.write_bytes(bytes([len(v.style.reporter)]) + owner + lrng.randbytes(162 - 1 - len(owner)))
                self.touch(lock, minute + 1)
                self.ignored.append(self._rel(lock))
            if "corrupt" in v.roles:
                bad = folder / (names[0] + "(1).xlsx")
                bad.write_bytes(self.d.rng_for("corrupt").randbytes(3000))
                self.touch(bad, minute - 30)
                self.unreadable.append(self._rel(bad))
        return jobs

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def write(self, jobs: list, needed_rows: set, meanwhile=None) -> None:
        """Write the planned files; :attr:`rowmap` then holds where the rows ``needed_rows``
        went. ``meanwhile()`` runs while the workers write (see :meth:`_run_jobs`)."""
        self._needed_rows = needed_rows
        self._run_jobs(jobs, meanwhile)
        self._registry = None  # written: free the rows

    def _run_jobs(self, jobs: list, meanwhile=None) -> None:
        """Write every planned file: in ``self.workers`` forked processes (which inherit the
        finished model and index into it), or here when there is one worker. A file's bytes
        depend only on the model and its own job, never on which process writes it or when.
        ``meanwhile()`` runs here while the workers write (after the files, without workers);
        it must not change anything a file is made from."""
        order = [job for _, job in sorted(jobs, key=lambda sj: -sj[0])]  # largest first: no long tail
        n = min(self.workers, len(order))
        ctx = None
        if n > 1:
            try:
                ctx = multiprocessing.get_context("fork")
            except ValueError:  # no fork on this platform
                ctx = None
        if ctx is None:
            for job in order:
                self._collect(self._do_job(job))
            if meanwhile is not None:
                meanwhile()
            return
        global _FORKED
        _FORKED = self
        gc.freeze()  # the model stays in shared pages: the collector never touches it in workers
        try:
            with ctx.Pool(n, maxtasksperchild=_TASKS_PER_WORKER) as pool:
                results = pool.imap_unordered(_do_job_in_worker, order, chunksize=1)
                if meanwhile is not None:
                    meanwhile()
                for found in results:
                    self._collect(found)
                pool.close()
                pool.join()
        finally:
            _FORKED = None
            gc.unfreeze()

    def _collect(self, found) -> None:
        for key, row in found:
            self.rowmap[key] = row

    def _do_job(self, job) -> list:
        """Write one file; return the rows of it the answer key cites."""
        kind, k, arg = job
        if kind == "registry":
            self._write_registry_file(k, arg)
            return []
        if kind == "departments":
            for rel, when in self.book.write(self.out):
                self.touch(self.out / rel, when)
            return []
        path, rng_name, degrade, minute = arg
        rows = render_village(self.d.surveyed_villages[k], Path(path), self.d.rng_for(rng_name), degrade)
        self.touch(Path(path), minute)
        needed = self._needed_rows
        accounts = [(("account", self._rel(Path(path)), key[1]), row) for key, row in rows.items() if key[0] == "account"]
        return [(key, row) for key, row in rows.items() if key in needed] + accounts


def _do_job_in_worker(job) -> list:
    return _FORKED._do_job(job)


# ------------------------------------------------------------------------------------------
# One survey file
# ------------------------------------------------------------------------------------------


def file_names(v: Village) -> list[str]:
    short = v.name[:-1] if v.name.endswith("村") else v.name
    sub_short = v.sub_name.replace("街道", "").replace("镇", "")
    forms = (f"{v.name}入户调查表", f"{sub_short}-{v.name}", f"附件1 {v.name}", f"2019回头看 {short}",
             f"{v.name}（终稿）", f"{sub_short}{v.name}入户调查")
    return [forms[(v.idx + k) % len(forms)] for k in range(2)]


def _layout(v: Village, cols: tuple, sheet: str, rng) -> list:
    """The columns of one sheet as the village typed them: [(header text, group, key)]."""
    st = v.style
    layout = []
    for c in cols:
        label = c.label
        if st.rename and c.key in ("declared_size", "person_id") and c.aliases:
            label = c.aliases[0]
        layout.append((label, c.group, c.key))
    if st.reorder:
        ungrouped = [i for i, (_, g, k) in enumerate(layout) if not g and k not in ("seq",)]
        i, j = sorted(rng.sample(ungrouped[:10], 2))
        layout[i], layout[j] = layout[j], layout[i]
    if st.extra_col and sheet == S.SHEET_HOUSEHOLDS:
        at = next(i for i, (_, _, k) in enumerate(layout) if k == "phone")
        layout.insert(at, ("入户调查人", "", "_surveyor"))
    return layout


def _yn(v: Village, value: bool, guarantee: bool = False):
    st = v.style
    if value:
        return st.yes
    return st.guarantee_no if guarantee else st.no


def _text(rng, st: Style, s: str | None):
    if not s or not st.text_mess or rng.random() >= st.text_mess:
        return s
    r = rng.random()
    if r < 0.3:
        return " " + s
    if r < 0.55:
        return s + "  "
    if r < 0.75:
        return s + "\u3000"
    return s + "\n"


def _amount(rng, st: Style, c: int | None):
    if c is None:
        return None
    if c == 0:
        return None if rng.random() < st.zero_empty else 0
    yuan, cents = divmod(abs(c), 100)
    number: Any = c / 100 if cents else yuan
    if st.amount_text and rng.random() < st.amount_text:
        plain = f"{yuan}.{cents:02d}" if cents else str(yuan)
        grouped = f"{yuan:,}" + (f".{cents:02d}" if cents else "")
        r = rng.random()
        if r < 0.25:
            return grouped
        if r < 0.5:
            return plain + "元"
        if r < 0.7:
            return f" {plain} "
        if r < 0.85:
            return plain.translate(FULLWIDTH)
        return grouped + "元"
    return number


def _id(rng, st: Style, pid: str):
    if rng.random() >= st.id_mess:
        return pid
    r = rng.random()
    if st.id15 and r < 0.3 and pid[6:8] == "19":
        return pid[:6] + pid[8:17]
    if r < 0.45:
        return f"{pid[:6]} {pid[6:14]} {pid[14:]}"
    if r < 0.6:
        return pid.translate(FULLWIDTH)
    if r < 0.75 and pid.endswith("X"):
        return pid[:17] + "x"
    if r < 0.9:
        return "'" + pid
    return pid + "\u3000"


def _hh_values(v: Village, hh: Household, seq: int, rng) -> dict:
    st = v.style
    vals: dict[str, Any] = {"seq": seq}
    if hh.hh_no:
        vals["hh_no"] = int(hh.hh_no) if st.hh_no_number and rng.random() < 0.5 else hh.hh_no
    vals["head_name"] = _text(rng, st, hh.head.name)
    vals["head_id"] = _id(rng, st, hh.head.pid)
    size = hh.declared_size if hh.declared_size is not None else len(hh.linked())
    vals["declared_size"] = size
    vals["hh_type"] = _text(rng, st, hh.declared_type)
    vals["exit_status"] = hh.declared_status or None
    vals["resident_foreign"] = _yn(v, hh.kind == "foreign")
    vals["applied"] = _yn(v, hh.applied)
    vals["review_result"] = _text(rng, st, hh.review)
    vals["main_cause"] = _text(rng, st, hh.main_cause) or None
    sep = "、" if v.idx % 2 else ","
    vals["other_causes"] = sep.join(hh.other_causes) or None
    vals["food_ok"] = _yn(v, hh.food_ok, True)
    vals["clothing_ok"] = _yn(v, hh.clothing_ok, True)
    vals["education_ok"] = _yn(v, hh.education_ok, True)
    vals["medical_ok"] = _yn(v, hh.medical_ok, True)
    vals["housing_grade"] = _text(rng, st, hh.housing)
    vals["water_ok"] = _yn(v, hh.water_ok, True)
    vals["wage_income"] = _amount(rng, st, hh.wage)
    vals["business_income"] = _amount(rng, st, hh.business)
    vals["property_income"] = _amount(rng, st, hh.prop)
    vals["transfer_total"] = _amount(rng, st, hh.total_written)
    keys = S.TRANSFER_SUB_ITEMS
    if hh.subs is not None:
        for k, amt in zip(keys, hh.subs):
            vals[k] = _amount(rng, st, amt) if amt else None
    vals["business_expense"] = _amount(rng, st, hh.expense)
    vals["one_off_subsidy"] = _amount(rng, st, hh.one_off) if hh.one_off else None
    if st.phone_number and hh.phone.isdigit() and rng.random() < 0.5:
        vals["phone"] = int(hh.phone)
    else:
        vals["phone"] = hh.phone
    vals["note"] = _text(rng, st, hh.note) or None
    vals["_surveyor"] = st.reporter
    vals.update(hh.cell)
    return vals


def _member_values(v: Village, hh: Household, p: Person, seq: int, rng) -> dict:
    st = v.style
    vals: dict[str, Any] = {"seq": seq}
    vals["head_id"] = _id(rng, st, p.orphan_head or hh.head.pid)
    vals["name"] = _text(rng, st, p.name)
    vals["sex"] = p.sex
    vals["person_id"] = _id(rng, st, p.pid)
    vals["relation"] = p.relation if p not in hh.extra_rows else _dup_relation(hh, p)
    vals["ethnicity"] = p.ethnicity
    vals["education"] = p.education
    vals["school_status"] = _text(rng, st, p.school)
    sep = "、" if v.idx % 3 else ","
    vals["health"] = sep.join(p.health) if p.health else "健康"
    vals["labor_skill"] = p.labor
    vals["work_status"] = p.work
    vals["work_months"] = p.work_months
    vals["dibao"] = _yn(v, p.dibao)
    vals["tekun"] = _yn(v, p.tekun)
    vals["disabled_cert"] = _yn(v, p.disabled)
    vals["disability_type"] = p.dis_type or None
    vals["disability_grade"] = p.dis_grade or None
    vals["medical_insured"] = _yn(v, p.insured)
    vals["note"] = p.note or None
    if p.cell:
        vals.update(p.cell)
    return vals


def _dup_relation(hh: Household, p: Person) -> str:
    return "之儿媳" if p.sex == "女" else "之女婿"


def render_village(v: Village, path: Path, rng, degrade: bool = False) -> dict:
    """Write one survey file of ``v``; return where each household and member row went
    ((sheet, hh.key, pid | None) -> Excel row; empty for the degraded first submission)."""
    st = v.style
    rowmap: dict = {}
    households = [hh for hh in v.households if hh.surveyed]
    if degrade:
        households = households[:-1]  # the corrected file adds a household the first one missed
    hh_layout = _layout(v, S.HOUSEHOLD_COLUMNS, S.SHEET_HOUSEHOLDS, rng)
    mem_layout = _layout(v, S.MEMBER_COLUMNS, S.SHEET_MEMBERS, rng)
    hh_rows: list = []
    mem_rows: list = []
    mem_merges: list = []
    mem_special: list = []
    half = len(households) // 2
    mseq = 0
    head_col = next(i for i, (_, _, k) in enumerate(mem_layout) if k == "head_id")
    degrade_k = {3, 11, 19} if degrade else set()
    blank_in_merge = "blank_in_merge" in v.roles
    for n, hh in enumerate(households, start=1):
        if st.blank_rows and rng.random() < 0.015:
            hh_rows.append(None)
        vals = _hh_values(v, hh, n, rng)
        if n in degrade_k:
            if n == 3:
                vals["housing_grade"] = None
            elif n == 11 and vals.get("wage_income"):
                vals["wage_income"] = 999999
        hh_rows.append(vals)
        if not degrade:
            rowmap[(S.SHEET_HOUSEHOLDS, hh.key, None)] = 5 + len(hh_rows) - 1
        if st.header_copy and n == half:
            mem_special.append(len(mem_rows))
            mem_rows.append("HEADER")
            mem_rows.append("HEADER2")
        start = len(mem_rows)
        written = [] if hh.no_member_rows else [p for p in hh.members if p.in_survey and p.orphan_head is None]
        written += hh.extra_rows
        for p in written:
            mseq += 1
            vals = _member_values(v, hh, p, mseq, rng)
            if n == 19 and degrade:
                vals["person_id"] = p.pid[:17] + ("1" if p.pid[17] != "1" else "2")
            if st.merge_ids and len(written) > 1:
                vals["head_id"] = hh.head.pid if p is written[0] else None
                if blank_in_merge and p is written[1]:
                    mem_rows.append(None)  # the clerk left an empty line inside the merged block
                    blank_in_merge = False
            mem_rows.append(vals)
            if not degrade:
                rowmap[(S.SHEET_MEMBERS, hh.key, p.pid)] = 5 + len(mem_rows) - 1
        if st.merge_ids and len(written) > 1:
            mem_merges.append((start, head_col, len(mem_rows) - 1, head_col, hh.head.pid))
        for p in hh.members:
            if p.orphan_head is not None and not hh.no_member_rows:
                mseq += 1
                vals = _member_values(v, hh, p, mseq, rng)
                mem_rows.append(vals)
                if not degrade:
                    rowmap[(S.SHEET_MEMBERS, hh.key, p.pid)] = 5 + len(mem_rows) - 1
        if st.blank_rows and rng.random() < 0.01:
            mem_rows.append(None)
    notes = []
    if st.notes:
        notes = [None, "填表说明：1.本表由村两委成员、驻村第一书记入户填写；2.收入为2018年度数据，单位为元；"
                       "3.一次性补助不计入收入。",
                 f"填表人：{st.reporter}　审核人：{person_name(rng, True)}"]
    if "totals" in v.roles:
        hh_rows.append(_totals_row(hh_layout, hh_rows))
    sub_village = f"{v.sub_name}{v.name}"
    row2 = f"填报单位：{sub_village}　村代码：{v.code}　填报人：{st.reporter}　填报日期：{st.date}"
    names = ("表1 家庭基本情况", "家庭成员情况表") if "sheet_names" in v.roles else (S.SHEET_HOUSEHOLDS, S.SHEET_MEMBERS)
    sheets = [
        (names[0], hh_layout, hh_rows, [], notes),
        (names[1], mem_layout, mem_rows, mem_merges, notes[:2] if notes else []),
    ]
    before, after = ([("填表说明", INSTRUCTIONS)], [("Sheet3", [])]) if "sheet_names" in v.roles else ([], [])
    if st.xls:
        _write_xls(path, sheets, row2)
    else:
        _write_xlsx(path, sheets, row2, before, after)
    for (name, _, rows, _, sheet_notes), table in zip(sheets, (S.SHEET_HOUSEHOLDS, S.SHEET_MEMBERS)):
        rowmap[("account", name)] = _account(name, table, rows, sheet_notes)
    for name, lines in before + after:
        rowmap[("account", name)] = {"sheet": name, "table": None, "rows_seen": len(lines), "rows_used": 0,
                                     "set_aside": {"工作表未使用": len(lines)} if lines else {}}
    return rowmap


# An instructions sheet as villages keep it beside the two tables.
INSTRUCTIONS = ("填表说明", "1. 本表由村两委成员、驻村第一书记入户填写，一户一行。",
                "2. 身份证号请设置为文本格式后录入，不要用科学计数法。", "3. 收入为2018年度数据，单位为元。")
TOTALS_LABEL = "合计"


def _totals_row(layout: list, rows: list) -> dict:
    """A 合计 row under the households: the label in the first column, the amounts and 家庭人口 summed."""
    from pipeline.rules.values import normalize_amount

    keys = [k for _, _, k in layout]
    summed = [c.key for c in S.HOUSEHOLD_COLUMNS if (c.kind == "amount" or c.key == "declared_size") and c.key in keys]
    out: dict = {}
    for key in summed:
        cents = sum(normalize_amount(r.get(key))[0] or 0 for r in rows if isinstance(r, dict))
        if cents:
            out[key] = cents // 100 if cents % 100 == 0 else cents / 100
    out[keys[0]] = TOTALS_LABEL
    out["_totals"] = True
    return out


def _account(name: str, table: str, rows: list, notes: list) -> dict:
    """The row account the reader must give the sheet: every row below the header is used or set
    aside with its reason (trailing blank rows are not rows)."""
    reasons = []
    for row in rows:
        if row is None:
            reasons.append("空行")
        elif row in ("HEADER", "HEADER2"):
            reasons.append("重复的表头")
        elif row.get("_totals"):
            reasons.append("合计行")
        else:
            reasons.append("")
    reasons += ["空行" if note is None else "说明或签字行" for note in notes]
    while reasons and reasons[-1] == "空行":
        reasons.pop()
    aside: dict = {}
    for why in reasons:
        if why:
            aside[why] = aside.get(why, 0) + 1
    return {"sheet": name, "table": table, "rows_seen": len(reasons), "rows_used": reasons.count(""),
            "set_aside": dict(sorted(aside.items()))}


def _header_cells(layout: list):
    """Row 3 and row 4 merges: (r0, c0, r1, c1, text) in header-relative rows 0..1."""
    cells = []
    c = 0
    n = len(layout)
    while c < n:
        label, group, _ = layout[c]
        if not group:
            cells.append((0, c, 1, c, label))
            c += 1
            continue
        end = c
        while end + 1 < n and layout[end + 1][1] == group:
            end += 1
        cells.append((0, c, 0, end, group))
        for k in range(c, end + 1):
            cells.append((1, k, 1, k, layout[k][0]))
        c = end + 1
    return cells


def _write_xlsx(path: Path, sheets, row2: str, before=(), after=()) -> None:
    wb = xlsxfast.Workbook(str(path), {"in_memory": True, "strings_to_numbers": False,
                                       "strings_to_formulas": False, "strings_to_urls": False})
    wb.set_properties({"created": CREATED, "author": "村委会"})
    title_fmt = wb.add_format({"bold": True, "font_size": 14, "align": "center", "valign": "vcenter"})
    head_fmt = wb.add_format({"bold": True, "align": "center", "valign": "vcenter", "border": 1,
                              "text_wrap": True})
    text_fmt = wb.add_format({"num_format": "@"})
    merge_fmt = wb.add_format({"valign": "vcenter", "num_format": "@"})
    for name, lines in before:
        _plain_sheet(wb, name, lines)
    for name, layout, rows, merges, notes in sheets:
        ws = wb.add_worksheet(name)
        ncol = len(layout)
        suffix = "（家庭成员情况）" if "成员" in name else "（家庭基本情况）"
        ws.merge_range(0, 0, 0, ncol - 1, S.SURVEY_TITLE + suffix, title_fmt)
        ws.merge_range(1, 0, 1, ncol - 1, row2)
        header = _header_cells(layout)
        for r0, c0, r1, c1, text in header:
            if (r0, c0) == (r1, c1):
                ws.write_string(2 + r0, c0, text, head_fmt)
            else:
                ws.merge_range(2 + r0, c0, 2 + r1, c1, text, head_fmt)
        keys = [k for _, _, k in layout]
        id_cols = {i for i, k in enumerate(keys) if k in ("head_id", "person_id", "hh_no")}
        for c in id_cols:
            ws.set_column(c, c, 21)
        str_fmts = [text_fmt if c in id_cols else None for c in range(len(keys))]
        put_row = ws.put_row
        r = 4
        for row in rows:
            if row == "HEADER":
                for r0, c0, r1, c1, text in header:
                    if (r0, c0) == (r1, c1):
                        ws.write_string(r + r0, c0, text, head_fmt)
                    else:
                        ws.merge_range(r + r0, c0, r + r1, c1, text, head_fmt)
            elif row is not None and row != "HEADER2":
                put_row(r, [row.get(key) for key in keys], str_fmts)
            r += 1
        for r0, c0, r1, c1, val in merges:
            ws.merge_range(4 + r0, c0, 4 + r1, c1, val, merge_fmt)
        for note in notes:
            if note:
                ws.write_string(r, 0, note)
            r += 1
        ws.freeze_panes(4, 0)
    for name, lines in after:
        _plain_sheet(wb, name, lines)
    wb.close()


def _plain_sheet(wb, name: str, lines) -> None:
    ws = wb.add_worksheet(name)
    for r, line in enumerate(lines):
        ws.write_string(r, 0, line)


def _write_xls(path: Path, sheets, row2: str) -> None:
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    for name, layout, rows, merges, notes in sheets:
        ws = wb.add_sheet(name)
        ncol = len(layout)
        suffix = "（家庭基本情况）" if name == S.SHEET_HOUSEHOLDS else "（家庭成员情况）"
        ws.write_merge(0, 0, 0, ncol - 1, S.SURVEY_TITLE + suffix)
        ws.write_merge(1, 1, 0, ncol - 1, row2)
        header = _header_cells(layout)
        for r0, c0, r1, c1, text in header:
            if (r0, c0) == (r1, c1):
                ws.write(2 + r0, c0, text)
            else:
                ws.write_merge(2 + r0, 2 + r1, c0, c1, text)
        keys = [k for _, _, k in layout]
        merged_cells = {(4 + r0, c0) for r0, c0, r1, c1, _ in merges}
        merged_cells |= {(4 + rr, c0) for r0, c0, r1, c1, _ in merges for rr in range(r0, r1 + 1)}
        r = 4
        for row in rows:
            if row == "HEADER":
                for r0, c0, r1, c1, text in header:
                    if (r0, c0) == (r1, c1):
                        ws.write(r + r0, c0, text)
                    else:
                        ws.write_merge(r + r0, r + r1, c0, c1, text)
            elif row is not None and row != "HEADER2":
                for c, key in enumerate(keys):
                    val = row.get(key)
                    if val is None or (r, c) in merged_cells:
                        continue
                    ws.write(r, c, val)
            r += 1
        for r0, c0, r1, c1, val in merges:
            ws.write_merge(4 + r0, 4 + r1, c0, c1, val)
        for note in notes:
            if note:
                ws.write(r, 0, note)
            r += 1
    wb.save(str(path))

