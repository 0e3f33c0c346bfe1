"""Reading one village survey workbook (附件1) as the village typed it.

Sheets are recognised by their header, not by their name: every sheet of the workbook is read
and its header (the names across the two header rows, found by the schema's labels and aliases)
says whether it is 家庭基本情况, 家庭成员情况 or neither. The village comes from the 村代码 in
row 2. Every row below the header is accounted for: it becomes a household or a member, or it
is set aside with its reason, and ``rows seen = rows used + rows set aside`` holds for every
sheet (``SheetAccount``; checked on every read). Every data row keeps its row number as Excel
shows it. Values stay raw (their cell type too: a number is how Excel damages an ID); cleaning
is a later stage.

Merged cells are read once per sheet (the ranges calamine lists) and every cell they cover is
marked as *copied*: it carries the top-left cell's value (a 户主身份证号 typed once for a
household's rows is used on each row), but it is not something typed in that row. A row with
nothing typed in it (only merge copies, or only a 序号) is blank.

What the reader accepts and what it sets aside or refuses — the variants of inputs.md and the
issue (#11), and the ones found beyond them. "W10" is a 请核实 problem on the set-aside row or
sheet, "B11" a blocking problem on the file (both raised from what is recorded here):

==========================================================  ===========================================
variant                                                     decision
==========================================================  ===========================================
sheets named ``表1 家庭基本情况``, ``家庭成员情况表``,       accepted: the header decides
``Sheet1``
an instructions sheet (``填表说明``, ``说明``, code lists),  ignored, listed as ignored (no problem)
an empty ``Sheet3``
another sheet with content but no survey header             ignored, listed, W10 (data may be there)
two sheets with the header of the same table and data       file refused as ambiguous (B11), not guessed
the same, one of them only a header (an unused template)    the one with data is used, the other listed
a sheet matching a few columns of a table beside a sheet    the full one is used; the partial one is
matching most of them (e.g. a pasted 建档立卡 list)           listed as ignored with W10
a hidden sheet                                              treated like any other sheet (it is data)
a chart sheet                                               ignored, listed
blank row, also inside a block of merged cells              set aside: 空行
a row with only a 序号 (pre-numbered template rows)          set aside: 空行
a row whose only values are merge copies                    set aside: 空行
notes after the data (填表说明：…, 填表人：… 审核人：…)       set aside: 说明或签字行
a second copy of the header halfway down                    set aside: 重复的表头
合计 / 小计 / 总计 / 共计 in the first four columns          set aside: 合计行 (not when the row has
(e.g. in 序号, or merged across the first cells)            an ID typed: a person named 张合计 is a person)
a row with no 户主身份证号 whose amounts equal the sums      set aside: 疑似合计行, W10 (if it was a
of the rows above (since the start or the last total)       household, the village adds the ID)
a row typed only in columns the schema does not know        set aside: 只有未识别的列有内容, W10
a row typed only in 备注                                    set aside: 只有备注, W10 (never a phantom
                                                            household or person with three B6)
a member row far from its household's other rows            accepted (rows link by 户主身份证号)
户主身份证号 typed on a household's first member row only,   not filled down (a blank may mean "same as
left empty below (no merge)                                 above" or "not known"): B6/B4 on each row
a sheet protected against editing (not the file)            accepted: protection does not hide values
rows hidden by a filter, frozen panes, an autofilter        accepted: hiding is a view, the rows are data
amounts as formulas                                         accepted: the value Excel saved counts
a title row above the header, row 2 across several cells    accepted
line breaks in header cells, a column renamed slightly      accepted (aliases in pipeline/schema.py)
本人 typed for 户主 in 与户主关系                            accepted as 户主 (pipeline/rules/values.py)
a workbook saved by WPS (its own app/custom properties,     accepted: the content is read, not the
shared or inline strings)                                   producing application
an ``.xls`` saved as ``.xlsx`` or the reverse               accepted: the content decides the format
a password-protected or damaged file, not a workbook        refused with the reason (B11)
a WPS .et, .ods or .csv file under surveys/                 refused: save it again as .xlsx (B11)
a scanned PDF or a photo beside the workbook                listed as not a survey workbook; B11 only when
                                                            it is all the village sent
the only file of a village refused                          B11 on that file, never B10 "未报送"
a newer file of a village refused beside an older one       the older file is used; B11 on the newer one
                                                            (the correction did not arrive)
==========================================================  ===========================================
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.rules.workbook import (  # the reader's output, which the cleaning rules take
    ASIDE_BLANK,
    ASIDE_HEADER,
    ASIDE_NOTE_ONLY,
    ASIDE_NOTES,
    ASIDE_SHEET,
    ASIDE_TOTALS,
    ASIDE_TOTALS_BY_SUM,
    ASIDE_UNKNOWN_ONLY,
    ROW_COLUMN,
    UNUSUAL_REASONS,
    SheetAccount,
    SheetRead,
    SurveyRead,
)
from pipeline.schema import SHEET_HOUSEHOLDS, SHEET_MEMBERS, SURVEY_SHEETS, Col

HEADER_SCAN_ROWS = 12
MAX_FILE_BYTES = 200 * 1024 * 1024  # refuse larger workbooks (bounded resources)
MAX_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024  # zip bomb guard for .xlsx
NOTES_PREFIXES = ("填表说明", "填表人", "审核人", "说明", "注：", "注:", "备注：", "制表", "联系人")
MIN_DISTINCT_COLUMNS = 3  # a sheet "looks like" a table when it has this many of its own columns
TOTALS_COLUMNS = 4  # 合计/小计 is looked for in the first columns of a row

# Why a sheet is not used.
SHEET_EMPTY = "空工作表"
SHEET_NOT_TABLE = "不是调查表（找不到调查表的列名）"
SHEET_INSTRUCTIONS = "填表说明或代码表"
SHEET_HEADER_ONLY = "只有表头，没有数据"
SHEET_PARTIAL = "只有少数列像{table}，已使用列更全的工作表“{other}”"
SHEET_CHART = "图表，不是工作表"
_INSTRUCTION_WORDS = ("说明", "填表", "代码", "字典", "指标解释", "注意事项", "目录", "封面")

_WHITESPACE = re.compile(r"\s+")
_VILLAGE_CODE = re.compile(r"村代码[:：]?\s*([0-9]{12})")
_TOTALS = re.compile(r"(合计|小计|总计|共计)")
_BLANK_TEXT = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]*")


class UnreadableWorkbook(Exception):
    """The file cannot be read as a survey workbook; the message says why (no personal data)."""


def normalize_label(text: object) -> str:
    """A header cell as a comparable key: NFKC, no spaces/newlines, ASCII parentheses."""
    return _normalize_label(text) if isinstance(text, str) else _normalize_label(str(text or ""))


@functools.lru_cache(maxsize=65536)
def _normalize_label(text: str) -> str:
    s = unicodedata.normalize("NFKC", text)
    return _WHITESPACE.sub("", s).replace("（", "(").replace("）", ")")


def _label_index(columns: tuple[Col, ...]) -> dict[str, Col]:
    index: dict[str, Col] = {}
    for col in columns:
        for name in col.names:
            index.setdefault(normalize_label(name), col)
    return index


def _is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value or _BLANK_TEXT.fullmatch(value) is not None
    return isinstance(value, float) and value != value


_BLANK_CELLS = np.frompyfunc(_is_blank, 1, 1)


def check_container(path: Path) -> None:
    """Refuse, before any parser sees it, a workbook that is empty, too large, a zip bomb,
    encrypted or not a workbook at all; every workbook input goes through here first (calamine
    inflates a zip part into memory whole: a small file can ask for gigabytes)."""
    size = path.stat().st_size
    if size == 0:
        raise UnreadableWorkbook("文件为空（0字节）")
    if size > MAX_FILE_BYTES:
        raise UnreadableWorkbook(f"文件过大（{size // (1024 * 1024)} MB，上限 {MAX_FILE_BYTES // (1024 * 1024)} MB）")
    with path.open("rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                total = sum(info.file_size for info in zf.infolist())
        except zipfile.BadZipFile as exc:
            raise UnreadableWorkbook("文件已损坏（不是有效的xlsx压缩包）") from exc
        if total > MAX_UNCOMPRESSED_BYTES:
            raise UnreadableWorkbook("解压后过大，疑似压缩炸弹，拒绝读取")
    elif magic.startswith(b"\xd0\xcf\x11\xe0"):
        if path.suffix.lower() != ".xls" and not _is_legacy_workbook(path):
            # An OLE container that is not a legacy workbook is how Excel stores a password-protected one.
            raise UnreadableWorkbook("文件已加密（设置了打开密码），请去掉密码后重新报送")
    else:
        raise UnreadableWorkbook("不是Excel文件（文件头无法识别）或文件已损坏")


def _is_legacy_workbook(path: Path) -> bool:
    """An .xls workbook saved under an .xlsx name (an OLE container with a workbook stream, not
    the EncryptionInfo stream of a password-protected .xlsx)."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    workbook = "Workbook".encode("utf-16-le") in head or "Book".encode("utf-16-le") in head
    encrypted = "EncryptionInfo".encode("utf-16-le") in head or "EncryptedPackage".encode("utf-16-le") in head
    return workbook and not encrypted


_check_container = check_container  # the name pipeline.io.peek imports


def open_workbook(path: Path):
    """A calamine workbook; the format comes from the content when the name's suffix is wrong."""
    from python_calamine import CalamineWorkbook

    try:
        return CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises several types for damaged files
        first = exc
    try:
        with path.open("rb") as fh:
            return CalamineWorkbook.from_filelike(fh)
    except Exception:
        raise UnreadableWorkbook(f"无法打开：{type(first).__name__}") from first


# --------------------------------------------------------------------------------------------
# One sheet: the grid, the merges, the header
# --------------------------------------------------------------------------------------------


@dataclass
class _Grid:
    values: np.ndarray  # object, merge-filled
    typed: np.ndarray  # bool: a value typed in this cell (not blank, not a merge copy)
    filled: np.ndarray  # bool: the cell holds a value (typed or copied)


def _grid(rows: list[list], merges) -> _Grid:
    width = max((len(r) for r in rows), default=0)
    values = np.empty((len(rows), width), dtype=object)
    values[:] = ""
    for r, row in enumerate(rows):
        if row:
            values[r, : len(row)] = row
    blank = _BLANK_CELLS(values).astype(bool) if values.size else np.zeros(values.shape, dtype=bool)
    copied = np.zeros(values.shape, dtype=bool)
    filled_blank = blank.copy()
    n_rows, n_cols = values.shape
    for (r0, c0), (r1, c1) in merges or []:
        if r0 >= n_rows or c0 >= n_cols:
            continue
        r1, c1 = min(r1, n_rows - 1), min(c1, n_cols - 1)
        value, is_blank = values[r0, c0], blank[r0, c0]
        values[r0: r1 + 1, c0: c1 + 1] = value  # cell values are scalars (str, number, date, bool)
        copied[r0: r1 + 1, c0: c1 + 1] = True
        copied[r0, c0] = False
        filled_blank[r0: r1 + 1, c0: c1 + 1] = is_blank
    return _Grid(values, ~blank & ~copied, ~filled_blank)


def _header_names(values: np.ndarray, top: int, span: int) -> list[str]:
    """Column names from a header of one or two rows: the lower row's label, else the upper
    (merged down)."""
    upper = values[top]
    if span == 1:
        return [normalize_label(v) for v in upper]
    lower = values[top + 1] if top + 1 < len(values) else [""] * len(upper)
    return [normalize_label(low) or normalize_label(up) for up, low in zip(upper, lower)]


_INDEXES = {sheet: _label_index(columns) for sheet, columns in SURVEY_SHEETS.items()}
_SHARED_KEYS = {col.key for col in SURVEY_SHEETS[SHEET_HOUSEHOLDS]} & {col.key for col in SURVEY_SHEETS[SHEET_MEMBERS]}
_DISTINCT = {sheet: len({c.key for c in columns} - _SHARED_KEYS) for sheet, columns in SURVEY_SHEETS.items()}


@dataclass
class _Header:
    table: str
    score: int  # columns of the table found that the other table does not have
    row: int  # 0-based index of the (last) header row
    span: int
    names: list[str]


def _find_header(values: np.ndarray, table: str) -> _Header | None:
    index = _INDEXES[table]
    best: _Header | None = None
    best_total = 0
    for top in range(min(HEADER_SCAN_ROWS, len(values))):
        for span in (2, 1):
            if top + span > len(values):
                continue
            names = _header_names(values, top, span)
            keys = {index[n].key for n in names if n in index}
            score, total = len(keys - _SHARED_KEYS), len(keys)
            # On a tie the header's second row wins when it holds labels (the rows below the header
            # are the data); a copy of the header further down never does.
            lower_is_header = (top + span - 1 == (best.row + 1 if best else -1)
                               and any(normalize_label(v) in index for v in values[top + span - 1]))
            if best is None or (score, total) > (best.score, best_total) or (
                    (score, total) == (best.score, best_total) and lower_is_header):
                best = _Header(table, score, top + span - 1, span, names)
                best_total = total
    return best if best is not None and best.score >= MIN_DISTINCT_COLUMNS else None


def _which_table(values: np.ndarray, sheet_name: str) -> _Header | None:
    """The table whose header the sheet carries; on a tie the sheet's name decides, else neither."""
    found = [h for h in (_find_header(values, t) for t in SURVEY_SHEETS) if h is not None]
    if not found:
        return None
    found.sort(key=lambda h: h.score, reverse=True)
    if len(found) == 1 or found[0].score > found[1].score:
        return found[0]
    name = normalize_label(sheet_name)
    named = [h for h in found if normalize_label(h.table)[:4] in name]
    return named[0] if len(named) == 1 else None


# --------------------------------------------------------------------------------------------
# Reading the workbook
# --------------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    read: SheetRead
    header: _Header
    values: np.ndarray


def read_survey(path: Path) -> SurveyRead:
    """Read a survey workbook; raises UnreadableWorkbook with a reason when it cannot."""
    check_container(path)
    workbook = open_workbook(path)
    try:
        meta = {m.name: m for m in workbook.sheets_metadata}
    except Exception:
        meta = {}
    accounts: list[SheetAccount] = []
    candidates: dict[str, list[_Candidate]] = {t: [] for t in SURVEY_SHEETS}
    village_code: str | None = None
    info_line = ""
    for sheet_name in workbook.sheet_names:
        info = meta.get(sheet_name)
        hidden = info is not None and str(getattr(info, "visible", "Visible")).split(".")[-1] != "Visible"
        if info is not None and str(getattr(info, "typ", "WorkSheet")).split(".")[-1] != "WorkSheet":
            accounts.append(SheetAccount(sheet_name, None, SHEET_CHART, hidden=hidden))
            continue
        try:
            sheet = workbook.get_sheet_by_name(sheet_name)
            rows = sheet.to_python(skip_empty_area=False)
            merges = sheet.merged_cell_ranges or []
        except Exception as exc:
            raise UnreadableWorkbook(f"工作表“{sheet_name}”无法读取：{type(exc).__name__}") from exc
        grid = _grid(rows, merges)
        if not grid.typed.any():
            accounts.append(SheetAccount(sheet_name, None, SHEET_EMPTY, hidden=hidden))
            continue
        header = _which_table(grid.values, sheet_name)
        if header is None:
            accounts.append(_unused(sheet_name, grid, SHEET_NOT_TABLE, hidden))
            continue
        read = _read_sheet(sheet_name, grid, header, SURVEY_SHEETS[header.table])
        read.account.hidden = hidden
        candidates[header.table].append(_Candidate(read, header, grid.values))
        accounts.append(read.account)
    sheets: dict[str, SheetRead] = {}
    for table, found in candidates.items():
        chosen = _choose(table, found)
        if chosen is None:
            continue
        sheets[table] = chosen.read
        if village_code is None:
            village_code, info_line = _find_village(chosen.values[:4].tolist())
    if not sheets:
        seen = "；".join(f"“{a.sheet_name}”：{a.note}" for a in accounts) or "工作簿中没有工作表"
        raise UnreadableWorkbook("没有可识别的工作表：找不到“" + "”或“".join(SURVEY_SHEETS) + f"”的表头（列名）（{seen}）")
    if village_code is None:  # the line may be on a sheet that is not a table (a cover sheet)
        for candidate in (c for found in candidates.values() for c in found):
            village_code, info_line = _find_village(candidate.values[:4].tolist())
            if village_code:
                break
    for account in accounts:
        if not account.balanced():  # the guarantee of the row account: never silently broken
            raise RuntimeError(f"工作表“{account.sheet_name}”行数核对不平")
    return SurveyRead(path=path, village_code=village_code, sheets=sheets, info_line=info_line, accounts=accounts)


def _choose(table: str, found: list[_Candidate]) -> _Candidate | None:
    """The one sheet that is the table. Sheets that carry only its header are unused templates;
    a sheet matching a few of its columns beside one matching most of them is set aside (and
    checked by the village); two sheets that both look like the table make the file ambiguous."""
    if not found:
        return None
    with_data = [c for c in found if c.read.account.rows_used]
    for c in found:
        if not c.read.account.rows_used and (with_data or c is not found[0]):
            _set_unused(c.read.account, SHEET_HEADER_ONLY)
    if not with_data:
        return found[0]
    strong = [c for c in with_data if c.header.score * 2 >= _DISTINCT[table]]
    if len(with_data) == 1:
        return with_data[0]
    if len(strong) == 1:
        for c in with_data:
            if c is not strong[0]:
                _set_unused(c.read.account, SHEET_PARTIAL.format(table=table, other=strong[0].read.source_sheet))
                c.read.account.unusual = True
        return strong[0]
    names = "”和“".join(c.read.source_sheet for c in with_data)
    raise UnreadableWorkbook(f"有{len(with_data)}个工作表（“{names}”）都像“{table}”表，无法判断该用哪一个："
                             "请只保留一个后重新报送")


def _unused(sheet_name: str, grid: _Grid, note: str, hidden: bool) -> SheetAccount:
    """A sheet that is not a table: every row with content is set aside with the sheet."""
    rows = np.flatnonzero(grid.typed.any(axis=1)) + 1
    account = SheetAccount(sheet_name, None, note, rows_seen=len(rows),
                           set_aside={int(r): ASIDE_SHEET for r in rows}, hidden=hidden)
    first = next((str(v) for v in grid.values[grid.typed] if isinstance(v, str)), "")
    words = normalize_label(sheet_name) + normalize_label(first)[:20]
    if any(w in words for w in _INSTRUCTION_WORDS):
        account.note = SHEET_INSTRUCTIONS
    else:
        account.unusual = True
    return account


def _set_unused(account: SheetAccount, note: str) -> None:
    rows = sorted({*account.used_rows, *account.set_aside})
    account.table, account.note = None, note
    account.set_aside = {r: ASIDE_SHEET for r in rows}
    account.used_rows = []
    account.rows_seen = len(rows)
    account.details = {}


def _find_village(rows: list[list]) -> tuple[str | None, str]:
    for row in rows[:4]:
        text = unicodedata.normalize("NFKC", "".join(str(v) for v in row if not _is_blank(v)))
        match = _VILLAGE_CODE.search(re.sub(r"\s+", "", text))
        if match:
            return match.group(1), text
    return None, ""


# --------------------------------------------------------------------------------------------
# Rows of a table: used or set aside
# --------------------------------------------------------------------------------------------


def _read_sheet(sheet_name: str, grid: _Grid, header: _Header, columns: tuple[Col, ...]) -> SheetRead:
    table = header.table
    index = _INDEXES[table]
    names = header.names
    positions: dict[str, int] = {}
    matched: dict[str, str] = {}
    extra: list[str] = []
    groups = {normalize_label(c.group) for c in columns if c.group}
    for c, name in enumerate(names):
        col = index.get(name)
        if col is None:
            if name and name not in groups:
                extra.append(name)
            continue
        if col.key not in positions:
            positions[col.key] = c
            matched[col.key] = name
    missing = [c.label for c in columns if c.key not in positions]
    header_row = header.row

    typed_rows = np.flatnonzero(grid.typed.any(axis=1))
    last = int(typed_rows.max()) if len(typed_rows) else -1
    first = header_row + 1
    account = SheetAccount(sheet_name, table, header_row=header_row + 1, rows_seen=max(0, last - header_row))
    keys = list(positions)
    if last < first:
        frame = pd.DataFrame({k: pd.Series(dtype=object) for k in keys})
        frame[ROW_COLUMN] = pd.array([], dtype="int64")
        return SheetRead(table, frame, header_row + 1, matched, missing, extra, [], sheet_name, account)

    values = grid.values[first: last + 1]
    typed = grid.typed[first: last + 1]
    filled = grid.filled[first: last + 1]
    n = len(values)
    excel_rows = np.arange(first + 1, last + 2)
    reason = np.full(n, "", dtype=object)

    # Repeated header: three or more cells hold header texts (as typed in this file or the schema's).
    texts = {v for v in grid.values[max(0, header_row - 1): header_row + 1].ravel() if isinstance(v, str) and v}
    texts |= {t.strip() for t in texts} | {name for col in columns for name in col.names}
    texts |= {c.group for c in columns if c.group}
    hits = pd.DataFrame(values).isin(texts).to_numpy() & filled
    reason[hits.sum(axis=1) >= 3] = ASIDE_HEADER

    # Notes and totals: the first typed cell of the row, and the first columns.
    any_typed = typed.any(axis=1)
    first_col = typed.argmax(axis=1)
    for i in np.flatnonzero(any_typed & (reason == "")):
        if _is_notes_value(values[i, first_col[i]]):
            reason[i] = ASIDE_NOTES
    lead = min(TOTALS_COLUMNS, values.shape[1])
    # a row with an ID typed in it is a household or a person, whatever its name (张合计)
    ids = [positions[k] for k in ("head_id", "person_id") if k in positions]
    has_id = typed[:, ids].any(axis=1) if ids else np.zeros(n, dtype=bool)
    for i in np.flatnonzero(typed[:, :lead].any(axis=1) & (reason == "") & ~has_id):
        if any(_is_totals_label(values[i, c]) for c in range(lead) if typed[i, c]):
            reason[i] = ASIDE_TOTALS

    # Blank: nothing typed but a 序号 (merge copies are not typed in the row).
    meaningful = typed.copy()
    if "seq" in positions:
        meaningful[:, positions["seq"]] = False
    known = np.zeros(values.shape[1], dtype=bool)
    known[[c for k, c in positions.items() if k not in ("seq", "note")]] = True
    note_col = np.zeros(values.shape[1], dtype=bool)
    if "note" in positions:
        note_col[positions["note"]] = True
    open_ = reason == ""
    reason[open_ & ~meaningful.any(axis=1)] = ASIDE_BLANK
    open_ = reason == ""
    in_known = (meaningful & known).any(axis=1)
    in_note = (meaningful & note_col).any(axis=1)
    reason[open_ & ~in_known & ~in_note] = ASIDE_UNKNOWN_ONLY
    reason[open_ & ~in_known & in_note] = ASIDE_NOTE_ONLY

    details: dict[int, str] = {}
    for i in np.flatnonzero(reason == ASIDE_UNKNOWN_ONLY):
        cols = [names[c] or f"第{c + 1}列" for c in np.flatnonzero(meaningful[i])]
        details[int(excel_rows[i])] = UNUSUAL_REASONS[ASIDE_UNKNOWN_ONLY].format(columns="、".join(cols[:3]))
    if table == SHEET_HOUSEHOLDS:
        for i in _totals_by_sum(values, filled, reason, positions, columns):
            reason[i] = ASIDE_TOTALS_BY_SUM
            details[int(excel_rows[i])] = UNUSUAL_REASONS[ASIDE_TOTALS_BY_SUM]
    for i in np.flatnonzero(reason == ASIDE_NOTE_ONLY):
        details[int(excel_rows[i])] = UNUSUAL_REASONS[ASIDE_NOTE_ONLY]
    anchors = {}
    for i in np.flatnonzero(np.isin(reason, list(UNUSUAL_REASONS))):
        text = "\x1f".join(str(v) for v in values[i][typed[i]])
        anchors[int(excel_rows[i])] = f"aside:{reason[i]}:{hashlib.sha1(text.encode()).hexdigest()[:12]}"

    used = reason == ""
    account.used_rows = [int(r) for r in excel_rows[used]]
    account.set_aside = {int(r): str(why) for r, why in zip(excel_rows[~used], reason[~used])}
    account.details = details
    account.anchors = anchors
    frame = pd.DataFrame(values[used][:, [positions[k] for k in keys]] if keys else np.empty((int(used.sum()), 0)),
                         columns=keys, dtype=object)
    frame[ROW_COLUMN] = pd.array(excel_rows[used].tolist(), dtype="int64")
    skipped = [r for r, why in account.set_aside.items() if why != ASIDE_BLANK]
    return SheetRead(table, frame, header_row + 1, matched, missing, extra, skipped, sheet_name, account)


def _is_notes_value(value: object) -> bool:
    if not isinstance(value, str):
        return False
    first = normalize_label(value)
    if any(first.startswith(normalize_label(p)) for p in NOTES_PREFIXES):
        return True
    return bool(_VILLAGE_CODE.search(first)) or first.startswith(normalize_label("填报单位"))


def _is_totals_label(value: object) -> bool:
    if not isinstance(value, str):
        return False
    text = normalize_label(value)
    return len(text) <= 12 and _TOTALS.search(text) is not None


def _totals_by_sum(values: np.ndarray, filled: np.ndarray, reason: np.ndarray, positions: dict[str, int],
                   columns: tuple[Col, ...]) -> list[int]:
    """Rows with no 户主身份证号 whose nonzero amounts (and 家庭人口) all equal the sums of the
    used rows above them, since the start or since the last totals row; at least two rows above."""
    from pipeline.rules.values import normalize_amount

    head = positions.get("head_id")
    summed = [positions[c.key] for c in columns if c.key in positions and (c.kind == "amount" or c.key == "declared_size")]
    if not summed:
        return []
    open_ = reason == ""
    no_id = ~filled[:, head] if head is not None else np.ones(len(values), dtype=bool)
    candidates = np.flatnonzero(open_ & no_id & filled[:, summed].any(axis=1))
    if not len(candidates):
        return []
    parse = np.frompyfunc(lambda v: normalize_amount(v)[0], 1, 1)
    amounts = parse(values[:, summed])
    ok = ~np.equal(amounts, None)
    cents = np.where(ok, amounts, 0).astype(np.int64)
    found: list[int] = []
    used = open_.copy()
    totals = set(np.flatnonzero(reason == ASIDE_TOTALS).tolist())
    for i in candidates:
        row = cents[i]
        nonzero = (row != 0) & ok[i]
        if not nonzero.any() or not ok[i][filled[i, summed]].all():
            continue
        since = max((t + 1 for t in totals if t < i), default=0)  # after the last totals row
        for start in sorted({0, since}, reverse=True):
            rows = np.flatnonzero(used[start:i]) + start
            if len(rows) >= 2 and (cents[rows].sum(axis=0)[nonzero] == row[nonzero]).all():
                found.append(int(i))
                used[i] = False
                totals.add(int(i))
                break
    return found


# --------------------------------------------------------------------------------------------
# The row account as tables (the warehouse keeps them beside the rows)
# --------------------------------------------------------------------------------------------

SHEET_ACCOUNT_COLUMNS = ("file", "village_code", "sheet_name", "sheet", "note", "hidden", "header_row",
                         "rows_seen", "rows_used", "rows_set_aside")
SET_ASIDE_COLUMNS = ("file", "village_code", "sheet_name", "sheet", "row", "reason")


def account_frames(accounts: list[SheetAccount], file: str, village_code: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per sheet (rows seen, used, set aside), and one row per set-aside row with its reason."""
    sheets = pd.DataFrame([
        {"file": file, "village_code": village_code, "sheet_name": a.sheet_name, "sheet": a.table, "note": a.note,
         "hidden": a.hidden, "header_row": a.header_row, "rows_seen": a.rows_seen, "rows_used": a.rows_used,
         "rows_set_aside": len(a.set_aside)} for a in accounts], columns=list(SHEET_ACCOUNT_COLUMNS))
    rows = pd.DataFrame([
        {"file": file, "village_code": village_code, "sheet_name": a.sheet_name, "sheet": a.table, "row": r,
         "reason": why} for a in accounts for r, why in sorted(a.set_aside.items())], columns=list(SET_ASIDE_COLUMNS))
    return typed_account(sheets, SHEET_ACCOUNT_COLUMNS), typed_account(rows, SET_ASIDE_COLUMNS)


def typed_account(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = frame.copy()
    for name in columns:
        if name in ("header_row", "rows_seen", "rows_used", "rows_set_aside", "row"):
            out[name] = pd.array(out[name].tolist(), dtype="Int64")
        elif name == "hidden":
            out[name] = pd.array(out[name].tolist(), dtype="boolean")
        else:
            out[name] = out[name].astype("string")
    return out[list(columns)]
