"""Reading one village survey workbook (附件1) as the village typed it.

The header is found by its names across the two header rows (not by position), the village by
the 村代码 in row 2, merged cells in the data area are filled, and blank rows, notes rows and
repeated header rows are skipped. Every data row keeps its row number as Excel shows it. Values
stay raw (their cell type too: a number is how Excel damages an ID); cleaning is a later stage.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.schema import SURVEY_SHEETS, Col

ROW_COLUMN = "_row"  # the Excel row number of a data row
HEADER_SCAN_ROWS = 12
MAX_FILE_BYTES = 200 * 1024 * 1024  # refuse larger workbooks (bounded resources)
MAX_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024  # zip bomb guard for .xlsx
NOTES_PREFIXES = ("填表说明", "填表人", "审核人", "说明", "注：", "注:", "备注：", "制表", "联系人")

_WHITESPACE = re.compile(r"\s+")
_VILLAGE_CODE = re.compile(r"村代码[:：]?\s*([0-9]{12})")


class UnreadableWorkbook(Exception):
    """The file cannot be read as a survey workbook; the message says why (no personal data)."""


@dataclass
class SheetRead:
    sheet: str
    frame: pd.DataFrame  # one column per matched Col.key (raw cell values) plus ROW_COLUMN
    header_row: int  # Excel row of the (last) header row
    matched: dict[str, str] = field(default_factory=dict)  # key -> header text found in the file
    missing: list[str] = field(default_factory=list)  # labels of schema columns not found
    extra: list[str] = field(default_factory=list)  # header texts the schema does not know
    skipped_rows: list[int] = field(default_factory=list)  # repeated headers and notes


@dataclass
class SurveyRead:
    path: Path
    village_code: str | None
    sheets: dict[str, SheetRead]
    info_line: str = ""


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
    return value is None or (isinstance(value, str) and not value.strip())


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
        if path.suffix.lower() != ".xls":
            # An OLE container named .xlsx is how Excel stores a password-protected workbook.
            raise UnreadableWorkbook("文件已加密（设置了打开密码），请去掉密码后重新报送")
    else:
        raise UnreadableWorkbook("不是Excel文件（文件头无法识别）或文件已损坏")


_check_container = check_container  # the name pipeline.io.peek imports


def read_survey(path: Path) -> SurveyRead:
    """Read a survey workbook; raises UnreadableWorkbook with a reason when it cannot."""
    from python_calamine import CalamineWorkbook

    check_container(path)
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises several types for damaged files
        raise UnreadableWorkbook(f"无法打开：{type(exc).__name__}") from exc
    names = {normalize_label(n): n for n in workbook.sheet_names}
    sheets: dict[str, SheetRead] = {}
    village_code: str | None = None
    info_line = ""
    for sheet_name, columns in SURVEY_SHEETS.items():
        actual = names.get(normalize_label(sheet_name))
        if actual is None:
            continue
        try:
            sheet = workbook.get_sheet_by_name(actual)
            rows = sheet.to_python(skip_empty_area=False)
            merges = sheet.merged_cell_ranges or []
        except Exception as exc:
            raise UnreadableWorkbook(f"工作表“{sheet_name}”无法读取：{type(exc).__name__}") from exc
        _fill_merged(rows, merges)
        if village_code is None:
            village_code, info_line = _find_village(rows)
        sheets[sheet_name] = _read_sheet(sheet_name, rows, columns)
    if not sheets:
        raise UnreadableWorkbook(
            "没有可识别的工作表（需要“" + "”和“".join(SURVEY_SHEETS) + "”）"
        )
    return SurveyRead(path=path, village_code=village_code, sheets=sheets, info_line=info_line)


def _fill_merged(rows: list[list], merges) -> None:
    """Give every cell of a merged range the value of its top-left cell."""
    for (r0, c0), (r1, c1) in merges:
        if r0 >= len(rows):
            continue
        value = rows[r0][c0] if c0 < len(rows[r0]) else ""
        for r in range(r0, min(r1, len(rows) - 1) + 1):
            row = rows[r]
            for c in range(c0, min(c1, len(row) - 1) + 1):
                if (r, c) != (r0, c0):
                    row[c] = value


def _find_village(rows: list[list]) -> tuple[str | None, str]:
    for row in rows[:4]:
        text = unicodedata.normalize("NFKC", "".join(str(v) for v in row if not _is_blank(v)))
        match = _VILLAGE_CODE.search(re.sub(r"\s+", "", text))
        if match:
            return match.group(1), text
    return None, ""


def _header_names(rows: list[list], top: int, width: int) -> list[str]:
    """Column names from a two-row header: the lower row's label, else the upper (merged down)."""
    upper = rows[top] if top < len(rows) else []
    lower = rows[top + 1] if top + 1 < len(rows) else []
    names = []
    for c in range(width):
        low = lower[c] if c < len(lower) else ""
        up = upper[c] if c < len(upper) else ""
        names.append(normalize_label(low) or normalize_label(up))
    return names


def _read_sheet(sheet_name: str, rows: list[list], columns: tuple[Col, ...]) -> SheetRead:
    index = _label_index(columns)
    width = max((len(r) for r in rows[: HEADER_SCAN_ROWS + 2]), default=0)
    best: tuple[int, int, list[str]] | None = None
    for top in range(min(HEADER_SCAN_ROWS, len(rows))):
        for span in (2, 1):
            names = (
                _header_names(rows, top, width)
                if span == 2
                else [normalize_label(v) for v in rows[top]] + [""] * (width - len(rows[top]))
            )
            score = len({index[n].key for n in names if n in index})
            if best is None or score > best[0]:
                best = (score, top + span - 1, names)
    if best is None or best[0] < 3:
        raise UnreadableWorkbook(f"工作表“{sheet_name}”找不到表头（第3–4行应为列名）")
    _, header_row, names = best
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
    header_labels = set(index) | groups
    records: list[list] = []
    row_numbers: list[int] = []
    skipped: list[int] = []
    keys = list(positions)
    for r in range(header_row + 1, len(rows)):
        row = rows[r]
        values = [row[positions[k]] if positions[k] < len(row) else "" for k in keys]
        if all(_is_blank(v) for v in values):
            continue
        if _is_repeated_header(row, header_labels) or _is_notes_row(row):
            skipped.append(r + 1)
            continue
        records.append(values)
        row_numbers.append(r + 1)
    frame = pd.DataFrame(records, columns=keys, dtype=object)
    frame[ROW_COLUMN] = pd.array(row_numbers, dtype="int64")
    return SheetRead(sheet_name, frame, header_row + 1, matched, missing, extra, skipped)


def _is_repeated_header(row: list, header_labels: set[str]) -> bool:
    hits = 0
    for v in row:
        if isinstance(v, str) and len(v) <= 30 and normalize_label(v) in header_labels:
            hits += 1
            if hits >= 3:
                return True
    return False


def _is_notes_row(row: list) -> bool:
    filled = [v for v in row if not _is_blank(v)]
    if not filled:
        return False
    first = normalize_label(filled[0])
    if any(first.startswith(normalize_label(p)) for p in NOTES_PREFIXES):
        return True
    return bool(_VILLAGE_CODE.search(first)) or first.startswith(normalize_label("填报单位"))
