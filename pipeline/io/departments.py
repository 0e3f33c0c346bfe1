"""Reading the departments' cross-check extracts (inputs.md, "departments/").

Every input file under ``<root>/departments/<dept.key>/`` is read (``.xlsx``/``.xlsm``/``.xls``
with calamine, ``.csv`` in the department's declared encoding with fallbacks); the rows of all
files are unioned and a row repeated across batches counts once. A file that cannot be read is
recorded with its path and the reason and never stops the other files; a missing folder is the
visible state "not returned yet", not an error.

The frame keeps the department's own (Chinese) column names, from :mod:`pipeline.schema`, holding
normalized Python values — ``str``, ``datetime.date``, ``Decimal``, ``int`` — or ``None`` for an
empty cell, plus ``person_id`` (the repaired 18-character ID, ``None`` when not valid),
``id_status`` (:class:`~pipeline.rules.ids.IdStatus` value), ``_file`` (path relative to the data
root) and ``_row`` (the row as Excel or a text editor shows it: header row 1, first data row 2).
The ID column itself keeps the department's text (stripped), as evidence.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io.dates import parse_date, parse_year_month
from pipeline.privacy import mask_text
from pipeline.rules.ids import IdResult, repair_id
from pipeline.schema import DEPARTMENTS, DEPARTMENTS_DIR, Department, is_input_file

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb")
CSV_SUFFIXES = (".csv", ".txt")
FALLBACK_ENCODINGS = ("utf-8-sig", "gb18030")
# The header is row 1; a title line or two above it is tolerated.
HEADER_SEARCH_ROWS = 10
CSV_SNIFF_BYTES = 64 * 1024
EXTRA_COLUMNS = ("person_id", "id_status", "_file", "_row")

_SPACES = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]+")
_EXCEL_TEXT = re.compile(r'^="(.*)"$', re.DOTALL)  # ="0123…", how some systems protect text
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_INVISIBLE = "\ufeff\u200b"
_NUMBER_UNITS = ("元", "人民币", "人", "口", "个月", "月", "平方米", "平米", "㎡", "m2", "m²")


@dataclass(frozen=True)
class FileRead:
    path: str  # relative to the data root, with forward slashes
    rows: int = 0  # data rows in the file (blank rows and repeated headers not counted)
    encoding: str | None = None  # the encoding used for a CSV; None for a workbook
    error: str | None = None  # why the file could not be read (no personal data)
    sheet: str | None = None  # the sheet read, for a workbook
    missing_columns: tuple[str, ...] = ()  # expected columns the file does not have (left empty)
    extra_columns: tuple[str, ...] = ()  # columns the file has that are not expected (ignored)
    bad_values: dict[str, int] = field(default_factory=dict)  # non-empty cells not a date/number

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class DepartmentExtract:
    dept: Department
    returned: bool  # the folder exists and holds at least one input file
    files: list[FileRead]
    frame: pd.DataFrame

    @property
    def rows_read(self) -> int:
        """Rows in all files before a row repeated across batches is counted once."""
        return sum(f.rows for f in self.files)

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def duplicates(self) -> int:
        return self.rows_read - self.rows

    @property
    def errors(self) -> list[FileRead]:
        return [f for f in self.files if f.error]


class _Unreadable(Exception):
    """A file (or one encoding of it) that cannot be read; the message is the reason."""


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def department_columns(dept: Department) -> list[str]:
    return [*dept.columns, *EXTRA_COLUMNS]


def empty_frame(dept: Department) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in department_columns(dept)})
    frame["_row"] = frame["_row"].astype("int64")
    return frame


def department_folder(root: Path, dept: Department) -> Path:
    return Path(root) / DEPARTMENTS_DIR / dept.key


def input_files(folder: Path) -> list[Path]:
    """Every input file under ``folder`` (also in subfolders), in path order."""
    found: list[Path] = []
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if all(is_input_file(p) for p in parts) and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_department(root: Path, dept: Department) -> DepartmentExtract:
    """Read, normalize and union every file of one department. Never raises."""
    root = Path(root)
    folder = department_folder(root, dept)
    try:
        paths = input_files(folder) if folder.is_dir() else []
    except OSError as exc:
        return DepartmentExtract(dept, False, [FileRead(_rel(folder, root), error=_reason(exc))],
                                 empty_frame(dept))
    if not paths:
        return DepartmentExtract(dept, False, [], empty_frame(dept))
    files: list[FileRead] = []
    frames: list[pd.DataFrame] = []
    for path in paths:
        read, frame = read_department_file(path, dept, root)
        files.append(read)
        if frame is not None and len(frame):
            frames.append(frame)
    if not frames:
        return DepartmentExtract(dept, True, files, empty_frame(dept))
    frame = pd.concat(frames, ignore_index=True)
    frame = _drop_repeated_rows(frame, dept)
    return DepartmentExtract(dept, True, files, frame)


def read_departments(root: Path, departments: Iterable[Department] = DEPARTMENTS) -> dict[str, DepartmentExtract]:
    return {d.key: read_department(root, d) for d in departments}


def read_department_file(path: Path, dept: Department, root: Path) -> tuple[FileRead, pd.DataFrame | None]:
    """One file as a normalized frame; on failure a FileRead with the reason and no frame."""
    rel = _rel(path, root)
    try:
        suffix = path.suffix.lower()
        if path.stat().st_size == 0:
            raise _Unreadable("文件为空")
        if suffix in EXCEL_SUFFIXES:
            table = _read_workbook(path, dept)
        elif suffix in CSV_SUFFIXES:
            table = _read_csv(path, dept)
        else:
            raise _Unreadable(f"不支持的文件类型（{suffix or '无扩展名'}），请提供 .xlsx 或 .csv")
        frame, bad = _normalize(table, dept, rel)
    except Exception as exc:  # noqa: BLE001 — one bad file never stops the others
        return FileRead(rel, error=_reason(exc)), None
    return FileRead(
        rel, rows=len(frame), encoding=table.encoding, sheet=table.sheet,
        missing_columns=table.missing, extra_columns=table.extra, bad_values=bad,
    ), frame


# --------------------------------------------------------------------------------------------
# Raw tables
# --------------------------------------------------------------------------------------------


@dataclass
class _Table:
    frame: pd.DataFrame  # expected column -> raw cell values (object; a missing column is None)
    rows: np.ndarray  # row number of each record in the file
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    encoding: str | None = None
    sheet: str | None = None


def normalize_header(value: object) -> str:
    """A header cell compared tolerantly: NFKC, no spaces (also full-width) or line breaks."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return _SPACES.sub("", unicodedata.normalize("NFKC", str(value)))


def _header_index(rows: Sequence[Sequence], dept: Department) -> int | None:
    wanted = normalize_header(dept.id_column)
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if any(normalize_header(cell) == wanted for cell in row):
            return i
    return None


def _map_header(header: Sequence, dept: Department) -> tuple[dict[str, int], tuple[str, ...], tuple[str, ...]]:
    expected = {normalize_header(c): c for c in dept.columns}
    positions: dict[str, int] = {}
    extra: list[str] = []
    for i, cell in enumerate(header):
        name = normalize_header(cell)
        if not name:
            continue
        column = expected.get(name)
        if column is None:
            extra.append(mask_text(name))  # reported in metadata: never a full ID
        elif column not in positions:  # a duplicated header: the first one counts
            positions[column] = i
    missing = tuple(c for c in dept.columns if c not in positions)
    return positions, missing, tuple(extra)


def _table(data: pd.DataFrame, header: Sequence, rows: np.ndarray, dept: Department) -> _Table:
    """``data``: the records below the header, columns by position; ``rows``: their row numbers."""
    positions, missing, extra = _map_header(header, dept)
    frame = pd.DataFrame(
        {c: (data.iloc[:, positions[c]].astype(object) if c in positions and positions[c] < data.shape[1]
             else pd.Series([None] * len(data), dtype=object, index=data.index))
         for c in dept.columns}
    ).reset_index(drop=True)
    return _Table(frame, np.asarray(rows, dtype="int64"), missing, extra)


def _read_workbook(path: Path, dept: Department) -> _Table:
    from python_calamine import CalamineWorkbook

    from pipeline.io.survey import UnreadableWorkbook, check_container

    try:
        check_container(path)  # too large, a zip bomb, encrypted: refused before calamine inflates it
        workbook = CalamineWorkbook.from_path(str(path))
    except UnreadableWorkbook as exc:
        raise _Unreadable(f"无法作为Excel工作簿读取：{exc}") from exc
    except Exception as exc:  # noqa: BLE001
        raise _Unreadable(_workbook_error(exc)) from exc
    try:
        names = [m.name for m in workbook.sheets_metadata
                 if str(m.typ).endswith("WorkSheet") and str(m.visible).endswith("Visible")]
        names += [n for n in workbook.sheet_names if n not in names]  # hidden sheets last
        for name in names:
            sheet = workbook.get_sheet_by_name(name)
            # skip_empty_area=False: the list starts at A1, so list index + 1 is the Excel row.
            at = _header_index(sheet.to_python(skip_empty_area=False, nrows=HEADER_SEARCH_ROWS), dept)
            if at is None:
                continue
            cells = sheet.to_python(skip_empty_area=False)
            data = pd.DataFrame(cells[at + 1:], dtype=object)
            table = _table(data, cells[at], np.arange(at + 2, at + 2 + len(data)), dept)
            table.sheet = name
            return table
    except _Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _Unreadable(_workbook_error(exc)) from exc
    finally:
        close = getattr(workbook, "close", None)
        if close:
            close()
    raise _Unreadable(f"没有一个工作表的前{HEADER_SEARCH_ROWS}行有证件号码列“{dept.id_column}”")


def _workbook_error(exc: Exception) -> str:
    kind = type(exc).__name__
    if "Password" in kind:
        return "工作簿有密码保护，无法读取"
    return f"无法作为Excel工作簿打开（文件损坏或格式不符）：{kind}"


def _encodings(dept: Department) -> list[str]:
    order = [dept.encoding or "utf-8", *FALLBACK_ENCODINGS]
    out: list[str] = []
    for enc in order:
        if codecs.lookup(enc).name not in {codecs.lookup(e).name for e in out}:
            out.append(enc)
    return out


def _read_csv(path: Path, dept: Department) -> _Table:
    """Try the declared encoding, then utf-8-sig, then gb18030: the first that decodes the whole
    file without error *and* shows the ID column in its header wins (GBK decodes many UTF-8
    files into mojibake without an error, so decoding alone proves nothing)."""
    data = path.read_bytes()
    # The header search only needs the top of the file; cut at a line break, which is never
    # part of a multi-byte character in UTF-8, GBK or GB18030.
    head = data[:CSV_SNIFF_BYTES]
    if len(data) > CSV_SNIFF_BYTES:
        head = head[: head.rindex(b"\n") + 1] if b"\n" in head else data
    tried: list[str] = []
    for encoding in _encodings(dept):
        try:
            text = head.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            tried.append(f"{encoding}：解码失败")
            continue
        delimiter = _delimiter(text.lstrip("\ufeff"))
        top = [r for _, r in _csv_records(text.lstrip("\ufeff"), delimiter, limit=HEADER_SEARCH_ROWS)]
        at = _header_index(top, dept)
        if at is None:
            tried.append(f"{encoding}：表头中没有“{dept.id_column}”")
            continue
        try:
            table = _parse_csv(data, encoding, delimiter, at, top[at], dept)
        except UnicodeDecodeError:
            tried.append(f"{encoding}：解码失败")
            continue
        table.encoding = encoding
        return table
    raise _Unreadable("无法读取CSV（" + "；".join(tried) + "）")


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _csv_records(text: str, delimiter: str, limit: int | None = None) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) per record, exact even with line breaks inside quoted fields."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    for i, record in enumerate(reader):
        if limit is not None and i >= limit:
            return
        yield line, record
        line = reader.line_num + 1


def _parse_csv(data: bytes, encoding: str, delimiter: str, at: int, header: list[str], dept: Department) -> _Table:
    """pandas' C parser (one row per physical line with ``skip_blank_lines=False``, so line
    numbers are exact); the csv module when a quoted field spans lines or a row has more fields
    than the header, where only it numbers the lines exactly."""
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.BytesIO(data), encoding=encoding, sep=delimiter, header=None, names=range(len(header)),
                index_col=False, dtype=object, na_filter=False, skip_blank_lines=False, skiprows=at + 1,
            )
        if len(frame) == lines - at - 1:
            return _table(frame, header, np.arange(at + 2, at + 2 + len(frame)), dept)
    except pd.errors.ParserError:
        pass
    text = data.decode(encoding).lstrip("\ufeff")
    records = list(_csv_records(text, delimiter))[at + 1:]
    frame = pd.DataFrame([r for _, r in records], dtype=object)
    return _table(frame, header, np.array([n for n, _ in records], dtype="int64"), dept)


# --------------------------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------------------------


def clean_text(value: object) -> str | None:
    """A cell as text: stripped (also full-width spaces), numbers without ``.0``, dates ISO."""
    if type(value) is str:  # the common case first
        text = value.strip()
        if text and text[0] != "=" and text[0] not in _INVISIBLE and text[-1] not in _INVISIBLE:
            return text
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip().strip("\u3000" + _INVISIBLE).strip()
    if m := _EXCEL_TEXT.match(text):
        text = m.group(1).strip()
    return text or None


def parse_number(value: object) -> Decimal | None:
    """An amount, area or count as ``Decimal``: thousands separators, 元/㎡/人/个月, full-width
    digits and spaces tolerated; ``None`` when empty or not a number."""
    if type(value) is str and _PLAIN_NUMBER.fullmatch(value):  # the common case first
        return Decimal(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value) if Decimal(value).is_finite() else None
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = _SPACES.sub("", unicodedata.normalize("NFKC", value)).replace(",", "")
    if m := _EXCEL_TEXT.match(text):
        text = m.group(1)
    text = text.lstrip("¥￥")
    for unit in _NUMBER_UNITS:
        if text.endswith(unit):
            text = text[: -len(unit)]
            break
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def parse_int(value: object) -> int | None:
    number = parse_number(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _repair(value: object) -> IdResult:
    # The cell as read, so that repair_id records what it repaired (spaces, lowercase x …) and
    # tells an ID Excel stored as a number (damaged) from one typed as text; only an export's
    # ="…" text wrapper is taken off first.
    if isinstance(value, str) and (m := _EXCEL_TEXT.match(value.strip())):
        value = m.group(1)
    return repair_id(value)


def _apply_distinct(values: pd.Series, fn: Callable[[object], object]) -> np.ndarray:
    """``fn`` once per distinct value (a 200k-row column of a few dozen dates costs a few dozen
    calls); an empty cell (None/NaN) is ``fn(None)``."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    for i, u in enumerate(uniques):
        mapped[i] = fn(u)
    mapped[-1] = fn(None)  # code -1
    return mapped[codes]


def _normalize(table: _Table, dept: Department, rel: str) -> tuple[pd.DataFrame, dict[str, int]]:
    raw = table.frame
    texts = pd.DataFrame({c: _apply_distinct(raw[c], clean_text) for c in dept.columns}, dtype=object)
    id_header = normalize_header(dept.id_column)
    keep = texts.notna().any(axis=1).to_numpy() & (
        texts[dept.id_column].map(normalize_header, na_action="ignore") != id_header  # a header repeated mid-file
    ).to_numpy()
    raw, texts = raw.loc[keep].reset_index(drop=True), texts.loc[keep].reset_index(drop=True)

    bad: dict[str, int] = {}
    frame = texts
    for c in dept.columns:
        if c in dept.date_columns:
            parse = parse_year_month if c in dept.month_columns else parse_date
        elif c in dept.int_columns:
            parse = parse_int
        elif c in dept.amount_columns:
            parse = parse_number
        else:
            continue
        parsed = pd.Series(_apply_distinct(raw[c], parse), dtype=object)
        failures = int((parsed.isna() & texts[c].notna()).sum())
        if failures:
            bad[c] = failures
        frame[c] = parsed
    ids = _apply_distinct(raw[dept.id_column], _repair)
    frame["person_id"] = pd.Series([r.value for r in ids], dtype=object)
    frame["id_status"] = pd.Series([r.status.value for r in ids], dtype=object)
    frame["_file"] = pd.Series([rel] * len(frame), dtype=object)
    frame["_row"] = table.rows[keep]
    return frame[department_columns(dept)], bad


def _drop_repeated_rows(frame: pd.DataFrame, dept: Department) -> pd.DataFrame:
    """A row repeated across (or within) batches counts once: compared on the normalized values,
    the ID by its repaired form (a 15-digit and an 18-digit copy of a row are the same row).
    Each column holds one Python type or None, compared by value (Decimal("1.5") == "1.50")."""
    key = frame[list(dept.columns)].copy()
    key[dept.id_column] = frame["person_id"].where(frame["person_id"].notna(), frame[dept.id_column])
    return frame.loc[~key.duplicated(keep="first")].reset_index(drop=True)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _reason(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, _Unreadable) else f"读取失败：{type(exc).__name__}: {exc}"
    return mask_text(text)
