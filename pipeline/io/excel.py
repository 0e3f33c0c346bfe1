"""Writing the Excel outputs: the 附件 tables and every other multi-sheet workbook.

Layout (outputs.md, "Common layout of the 附件 tables"): row 1 the title merged across the
columns, row 2 ``填报单位：…　　数据截至：…　　生成时间：…``, row 3 the header, then the data, then
optionally a ``合计`` row and the signature line. Every sheet prints A4 landscape, one page wide,
with rows 1–3 repeated on every page, and the panes are frozen below the header.

Safety and robustness, whatever the data holds:

- a value from an input is never a formula: every string goes through ``write_string`` (never
  ``write()``), and the workbook is opened with ``strings_to_formulas/urls/numbers`` off;
- IDs and other text columns are text cells with the ``@`` format, so Excel never shows an ID as
  ``2.1E+17``; an integer of 16+ digits in any other column is written as text too (Excel keeps
  only 15 significant digits);
- amounts are numbers rounded half-up to two decimals, shown as ``0.00``;
- writes are atomic (a temp file in the target directory, then ``os.replace``) and the file is
  readable by its owner only (``0o600``: the tables carry names and ID numbers).

The workbook is written with xlsxwriter in ``constant_memory`` mode (rows are streamed to disk in
order), so a sheet of a million rows needs little memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import numbers
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from pipeline import schema
from pipeline.io.printing import (
    A4,
    BODY_PT,
    HEADER_FOOTER_IN,
    MARGIN_LR_IN,
    MARGIN_TB_IN,
    TITLE_PT,
    PrintLayout,
    choose_layout,
    display_width,
    first_page_columns,
    row_height,
    stored_width,
    text_lines,
)
from pipeline.settings import Settings, show_time

# --------------------------------------------------------------------------------------------
# Labels. Input column labels come from schema; these are the output-only words of outputs.md.
# --------------------------------------------------------------------------------------------

DETAIL_SHEET = "明细"
SUMMARY_SHEET = "汇总"
SETTINGS_SHEET = "设置"
TOTAL_LABEL = "合计"
HOUSEHOLDS_LABEL = "户数"
PERSONS_LABEL = "人数"
SUBDISTRICT_LABEL = "办事处"
UNSPECIFIED_LABEL = "（未填）"
GENERATED_AT_LABEL = "生成时间"
SETTING_NAME_LABEL = "设置项"
SETTING_VALUE_LABEL = "值"
SIGNATURE_LINE = "审核人：　　　　填报人：　　　　区脱贫攻坚领导小组组长（签字）："

UNIT_HOUSEHOLD = "household"
UNIT_PERSON = "person"
UNITS = (UNIT_HOUSEHOLD, UNIT_PERSON)


def _label(columns: tuple[schema.Col, ...], key: str) -> str:
    return next(c.label for c in columns if c.key == key)


SEQ_LABEL = _label(schema.HOUSEHOLD_COLUMNS, "seq")  # 序号
SIZE_LABEL = _label(schema.HOUSEHOLD_COLUMNS, "declared_size")  # 家庭人口

_ALL_INPUT_COLUMNS = schema.HOUSEHOLD_COLUMNS + schema.MEMBER_COLUMNS

# Columns that are text whatever the caller says: every ID, household number, code and phone.
ALWAYS_TEXT_COLUMNS: frozenset[str] = frozenset(
    {c.label for c in _ALL_INPUT_COLUMNS if c.kind in ("id", "phone") or c.key == "hh_no"}
    | {schema.VILLAGE_COLUMNS["village_code"], schema.VILLAGE_COLUMNS["subdistrict_code"]}
    | {schema.REGISTRY_COLUMNS["hh_no"], schema.REGISTRY_COLUMNS["person_id"]}
    | {d.id_column for d in schema.DEPARTMENTS}
)
# Columns that are amounts whatever the caller says: the survey's income and expense items.
ALWAYS_AMOUNT_COLUMNS: frozenset[str] = frozenset(
    c.label for c in schema.HOUSEHOLD_COLUMNS if c.kind == "amount"
)

# Computed per-capita values: shown cut down to the cent (rules.md: 4499.9967 → 4499.99, −12.345 →
# −12.35), so a shown value never contradicts a strict comparison with a line.
FLOOR_COLUMNS: frozenset[str] = frozenset({"年人均纯收入"})

# --------------------------------------------------------------------------------------------
# Excel limits
# --------------------------------------------------------------------------------------------

EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLS = 16_384
EXCEL_MAX_SHEET_NAME = 31
EXCEL_MAX_STRING = 32_767
_HALF_MAX_STRING = EXCEL_MAX_STRING // 2
_MAX_EXACT_INT = 10**15  # Excel keeps 15 significant digits

HEADER_ROWS = 3  # title, row 2, column header
# Text longer than the cap wraps; the cap narrows (down the list) until the table fits a page.
WRAP_CAPS = (30, 24, 20, 16, 12)
MAX_COLUMN_WIDTH = WRAP_CAPS[0]
WRAP_MIN_WIDTH = 12
NEVER_WRAP_WIDTH = 20  # an ID (18), a 户编号 (14) or a phone number is never broken over lines
HEADER_MIN_WIDTH = 8  # a longer header wraps onto two lines
NARROW_TABLE_WIDTH = 130  # a narrow table is widened to its title, up to about one A4 width
MIN_TITLE_SPAN = 40  # characters: narrower, a title would stand on more than three lines
CHART_LAYOUT = PrintLayout(A4, 100, None, 1)  # a chart sheet (pipeline/charts.py): one A4 page
_WIDTH_SAMPLE = 2000
_ZIP64_CELLS = 20_000_000  # above this many cells the package may pass 4 GB uncompressed

# Leading characters that make a spreadsheet (or a CSV made from it) treat a cell as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")

_CENT = Decimal("0.01")


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteStats:
    """What a write produced. ``rows`` counts data rows (not title, header, 合计 or signature)."""

    rows: int
    households: int | None
    persons: int | None
    path: Path
    sheets: Mapping[str, int] = field(default_factory=dict)  # sheet written -> its data rows
    split: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # table -> its sheets
    sheet_totals: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # table -> (户, 人)
    seconds: float = 0.0

    @property
    def notes(self) -> list[str]:
        """Human-readable remarks, e.g. a table split over several sheets."""
        return [
            f"{name} 超过 Excel 单表 {EXCEL_MAX_ROWS:,} 行上限，已拆分为 {len(parts)} 个工作表："
            + "、".join(parts)
            for name, parts in self.split.items()
        ]


class Totals(NamedTuple):
    """How to count a sheet's 合计 row: persons = rows (person unit) or Σ家庭人口 (household)."""

    unit: str = UNIT_HOUSEHOLD
    household_key: str | None = None


# --------------------------------------------------------------------------------------------
# Atomic files
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = 0o600) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success fsync, chmod and ``os.replace`` it over
    ``path``; on any error delete it, leaving the previous ``path`` untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_leftovers(path)
    # A leading dot: never mistaken for an input or an output by anything listing the folder.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (not on every OS)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


STALE_AFTER_SECONDS = 3600


def _remove_stale_leftovers(path: Path) -> None:
    """Delete what a killed earlier write of ``path`` left behind (its temp file and streamed-row
    folder, which hold personal data); only items older than an hour, so a write of the same
    file still running elsewhere is left alone."""
    cutoff = time.time() - STALE_AFTER_SECONDS
    for item in path.parent.glob(f".{glob_escape(path.name)}.*"):
        with contextlib.suppress(OSError):
            if item.lstat().st_mtime >= cutoff:
                continue
            if item.is_symlink():
                continue
            if item.is_dir() and item.name.endswith(".xlsxwriter"):
                shutil.rmtree(item, ignore_errors=True)
            elif item.is_file() and item.name.endswith(".tmp"):
                item.unlink()


@contextlib.contextmanager
def _workbook(tmp: Path, cells: int) -> Iterator[xlsxwriter.Workbook]:
    """An xlsxwriter workbook writing to ``tmp``. Its streamed-row files (personal data in plain
    text) live in a private folder next to the target that is removed whatever happens."""
    # tmp is ".<name>.<random>.tmp": the folder ".<name>.<random>.xlsxwriter" goes with it.
    scratch = tempfile.mkdtemp(prefix=tmp.name.removesuffix(".tmp") + ".", suffix=".xlsxwriter",
                               dir=tmp.parent)  # mode 0o700
    options = {
        "constant_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "remove_timezone": True,
        "tmpdir": scratch,
    }
    if cells > _ZIP64_CELLS:
        options["use_zip64"] = True
    wb = xlsxwriter.Workbook(str(tmp), options)
    try:
        try:
            yield wb
        except BaseException:
            wb.fileclosed = True  # do not let xlsxwriter finish a half-written workbook on GC
            for ws in wb.worksheets():
                fh = getattr(ws, "row_data_fh", None)
                if fh is not None:
                    with contextlib.suppress(Exception):
                        fh.close()
            raise
        wb.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return value != value
    if isinstance(value, Decimal):
        return value.is_nan()
    return False


def _exact_decimal(value: Any) -> Decimal | None:
    """The exact number a value holds, or None when empty or not a finite number. A float goes
    through its shortest repr, so ``2.675`` (stored as 2.67499…) is 2.675 as typed."""
    if is_missing(value) or isinstance(value, (bool, np.bool_)):
        return None
    try:
        if isinstance(value, Decimal):
            d = value
        elif isinstance(value, numbers.Integral):
            d = Decimal(int(value))
        elif isinstance(value, numbers.Real):
            d = Decimal(repr(float(value)))
        elif isinstance(value, str):
            text = value.strip().replace(",", "").replace("，", "")
            if not text:
                return None
            d = Decimal(text)
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _quantize(value: Any, rounding: str) -> Decimal | None:
    d = _exact_decimal(value)
    if d is None:
        return None
    try:
        return d.quantize(_CENT, rounding=rounding)
    except InvalidOperation:  # more digits than the decimal context holds
        return None


def to_amount(value: Any) -> Decimal | None:
    """An amount rounded half-up to 0.01, or None when the value is empty or not a number."""
    return _quantize(value, ROUND_HALF_UP)


def to_floor_amount(value: Any) -> Decimal | None:
    """A computed per-capita amount cut down to the cent (floor), or None."""
    return _quantize(value, ROUND_FLOOR)


def to_text(value: Any) -> str | None:
    """The text of a value for a text cell; None when empty. Integral floats lose their ``.0``
    (an ID that reached us as a float is shown as digits, not ``2.1E+17``)."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, (bool, np.bool_)):
        return schema.YES if value else schema.NO
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value) or None


def is_formula_like(text: str) -> bool:
    return text.startswith(FORMULA_TRIGGERS)




# --------------------------------------------------------------------------------------------
# Cells: each value is classified once into (type, payload, style) and then either rendered
# straight into the sheet XML (fast path) or passed to xlsxwriter's typed write_* methods.
# --------------------------------------------------------------------------------------------

_BASE = {"font_size": 10, "valign": "vcenter", "border": 1}

# Style keys of a data cell.
S_GENERAL, S_TEXT, S_QUOTED, S_AMOUNT, S_DATE, S_DATETIME = range(6)
_STYLE_PROPS: dict[int, dict[str, Any]] = {
    S_GENERAL: {},
    S_TEXT: {"num_format": "@"},
    S_QUOTED: {"quote_prefix": True},  # a formula-like string outside a text column
    S_AMOUNT: {"num_format": "0.00"},
    S_DATE: {"num_format": "yyyy-mm-dd"},
    S_DATETIME: {"num_format": "yyyy-mm-dd hh:mm:ss"},
}

# Cell types.
T_STRING, T_NUMBER, T_BLANK = "s", "n", "b"
Cell = tuple[str, Any, int]


class _Formats:
    """Workbook formats, created once per distinct property set."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self._wb = wb
        self._cache: dict[tuple, Format] = {}

    def get(self, **props: Any) -> Format:
        return self._make({**_BASE, **props})

    def plain(self, **props: Any) -> Format:
        """A format without the cell border (title, row 2, notes)."""
        return self._make({"font_size": 10, "valign": "vcenter", **props})

    def _make(self, props: dict[str, Any]) -> Format:
        key = tuple(sorted(props.items()))
        fmt = self._cache.get(key)
        if fmt is None:
            fmt = self._cache[key] = self._wb.add_format(props)
        return fmt

    def styles(self, *, wrap: bool, bold: bool) -> list[Format]:
        """The data-cell formats of a column, indexed by style key."""
        extra: dict[str, Any] = {}
        if wrap:
            extra["text_wrap"] = True
        if bold:
            extra["bold"] = True
        return [self.get(**_STYLE_PROPS[k], **extra) for k in sorted(_STYLE_PROPS)]


_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_FIRST_SAFE_DATE = dt.datetime(1900, 3, 1)  # before it Excel's 1900 leap-year bug shifts serials


def _excel_serial(value: dt.datetime) -> float:
    return (value - _EXCEL_EPOCH) / dt.timedelta(days=1)


def _classify_date(v: dt.date) -> Cell:
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.replace(tzinfo=None)
        if isinstance(v, pd.Timestamp):
            v = v.to_pydatetime()
        if v < _FIRST_SAFE_DATE:
            return T_STRING, to_text(v), S_TEXT
        return T_NUMBER, _excel_serial(v), S_DATETIME
    d = dt.datetime(v.year, v.month, v.day)
    if d < _FIRST_SAFE_DATE:
        return T_STRING, v.isoformat(), S_TEXT
    return T_NUMBER, _excel_serial(d), S_DATE


def classify_text(v: Any) -> Cell:
    """A cell of a text column: always a string (``@`` format), never a number or formula."""
    if v.__class__ is not str:
        v = to_text(v)
        if v is None:
            return T_BLANK, None, S_TEXT
    if not v:
        return T_BLANK, None, S_TEXT
    return T_STRING, v, S_TEXT


def _string_cell(s: str) -> Cell:
    return T_STRING, s, (S_QUOTED if s.startswith(FORMULA_TRIGGERS) else S_GENERAL)


def classify_amount(v: Any) -> Cell:
    """A cell of an amount column: the number rounded half-up to 0.01; a value that is not a
    number stays as text rather than being lost."""
    cls = v.__class__
    if cls is Decimal and v.is_finite():  # the common case, kept short
        try:
            f = float(v.quantize(_CENT, rounding=ROUND_HALF_UP))
        except InvalidOperation:
            f = math.inf
        if math.isfinite(f):
            return T_NUMBER, f, S_AMOUNT
    d = to_amount(v)
    if d is not None:
        f = float(d)
        if math.isfinite(f):
            return T_NUMBER, f, S_AMOUNT
    s = to_text(v)
    if s is None or not s.strip():
        return T_BLANK, None, S_AMOUNT
    return _string_cell(s)


def classify_floor_amount(v: Any) -> Cell:
    """A cell of a per-capita column: the number cut down to the cent (floor)."""
    d = to_floor_amount(v)
    if d is not None:
        f = float(d)
        if math.isfinite(f):
            return T_NUMBER, f, S_AMOUNT
    return classify_amount(v)


def classify_general(v: Any) -> Cell:
    """Any other cell: numbers as numbers, strings as strings, dates as dates."""
    cls = v.__class__
    if cls is str:
        return _string_cell(v) if v else (T_BLANK, None, S_GENERAL)
    if cls is int:
        if -_MAX_EXACT_INT < v < _MAX_EXACT_INT:
            return T_NUMBER, v, S_GENERAL
        return T_STRING, str(v), S_TEXT  # Excel would keep only 15 digits
    if cls is float:
        if v != v:
            return T_BLANK, None, S_GENERAL
        if math.isfinite(v):
            return T_NUMBER, v, S_GENERAL
        return T_STRING, repr(v), S_TEXT
    if is_missing(v):
        return T_BLANK, None, S_GENERAL
    if isinstance(v, (bool, np.bool_)):
        return T_STRING, (schema.YES if v else schema.NO), S_GENERAL
    if isinstance(v, numbers.Integral):
        return classify_general(int(v))
    if isinstance(v, Decimal):
        if v.is_finite() and abs(v) < _MAX_EXACT_INT:
            return T_NUMBER, float(v), S_GENERAL
        return T_STRING, format(v, "f"), S_TEXT
    if isinstance(v, numbers.Real):
        return classify_general(float(v))
    if isinstance(v, dt.date):
        return _classify_date(v)
    s = to_text(v)
    if s is None:
        return T_BLANK, None, S_GENERAL
    return _string_cell(s)


_CLASSIFIERS: dict[str, Callable[[Any], Cell]] = {
    "text": classify_text,
    "amount": classify_amount,
    "floor": classify_floor_amount,
    "general": classify_general,
}


def _column_kind(name: str, text_columns: Collection[str], amount_columns: Collection[str]) -> str:
    if name in text_columns or name in ALWAYS_TEXT_COLUMNS:
        return "text"
    if name in FLOOR_COLUMNS:
        return "floor"
    if name in amount_columns or name in ALWAYS_AMOUNT_COLUMNS:
        return "amount"
    return "general"


def _truncate(s: str) -> str:
    """At most Excel's 32,767 UTF-16 units in a cell."""
    if len(s) <= EXCEL_MAX_STRING // 2:
        return s
    encoded = s.encode("utf-16-le")
    if len(encoded) <= 2 * EXCEL_MAX_STRING:
        return s
    cut = encoded[: 2 * EXCEL_MAX_STRING].decode("utf-16-le", errors="ignore")
    return cut


def put_string(ws: Worksheet, row: int, col: int, s: str, fmt: Format, run_fmt: Format) -> None:
    """Write a string through xlsxwriter's API as a plain string, whatever it holds.

    xlsxwriter writes a string that starts with ``<r>`` and ends with ``</r>`` into the sheet XML
    unescaped (it takes it for one of its own rich strings), which would let a cell value inject
    XML, formulas included. Such a string is written as a two-run rich string instead, whose runs
    xlsxwriter escapes; the cell's text is unchanged.
    """
    s = _truncate(s)
    if s.startswith("<r>") and s.endswith("</r>"):
        ws.write_rich_string(row, col, run_fmt, s[:1], run_fmt, s[1:], fmt)
    else:
        ws.write_string(row, col, s, fmt)


# --- the fast path: data rows rendered straight into the worksheet's row stream ---------------

_XML_SPECIAL = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_ESCAPED_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")

# Set to False to write every cell through xlsxwriter's public API (slower; same workbook).
FAST_ROWS = True


def _xml_text(s: str) -> str:
    """Escape cell text as xlsxwriter does: literal ``_xHHHH_`` escaped, control characters as
    ``_xHHHH_``, then the XML specials."""
    s = _ESCAPED_ESCAPE.sub(r"_x005F\1", s)
    s = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", s)
    s = s.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _can_stream(ws: Worksheet, first_row: int) -> bool:
    return (
        FAST_ROWS
        and getattr(ws, "constant_memory", False)
        and getattr(ws, "row_data_fh", None) is not None
        and not getattr(ws, "row_data_fh_closed", True)
        and hasattr(ws, "_write_single_row")
        and hasattr(ws, "_check_dimensions")
        and getattr(ws, "previous_row", None) == first_row - 1
    )


_STREAM_CHUNK = 20_000  # rows rendered per batch (bounds memory)
_TAIL_CACHE = 20_000  # distinct strings remembered per column (办事处, 村, codes repeat a lot)


def _render_tail(cell: Cell, xf: list[str]) -> str:
    """The XML of a cell after its reference: ``<c r="B7`` + tail."""
    t, p, k = cell
    s = xf[k]
    if t == T_STRING:
        if len(p) > _HALF_MAX_STRING:
            p = _truncate(p)
        if _XML_SPECIAL.search(p):
            p = _xml_text(p)
        if p[0].isspace() or p[-1].isspace():
            return f'" s="{s}" t="inlineStr"><is><t xml:space="preserve">{p}</t></is></c>'
        return f'" s="{s}" t="inlineStr"><is><t>{p}</t></is></c>'
    if t == T_NUMBER:
        return f'" s="{s}"><v>{p:.16G}</v></c>'
    return f'" s="{s}"/>'


def _render_column(values: Sequence[Any], classify: Callable[[Any], Cell], xf: list[str],
                   cache: dict[str, str]) -> list[str]:
    out = []
    append = out.append
    for v in values:
        if v.__class__ is str:
            tail = cache.get(v)
            if tail is None:
                tail = _render_tail(classify(v), xf)
                if len(cache) < _TAIL_CACHE:
                    cache[v] = tail
        else:
            tail = _render_tail(classify(v), xf)
        append(tail)
    return out


def _stream_rows(ws: Worksheet, first_row: int, columns: list[Sequence[Any]], classifiers: list,
                 xf: list[list[int]], heights: Sequence[float | None] = ()) -> int:
    """Render data rows as sheet XML into the worksheet's constant_memory row stream.

    Uses xlsxwriter's stream protocol: flush the rows written so far, append ``<row>`` elements
    to the row file, then move ``previous_row`` past them and record the sheet dimension, so the
    rows written after (合计, signature) continue through the API. Every string is escaped here;
    nothing is ever written as a formula. Returns the next free row."""
    ws._write_single_row(first_row)  # flush the header rows; previous_row = first_row
    ncols = len(columns)
    n = len(columns[0]) if columns else 0
    heads = [f'<c r="{xl_col_to_name(j)}' for j in range(ncols)]
    xf_text = [[str(i) for i in col] for col in xf]
    caches: list[dict[str, str]] = [{} for _ in range(ncols)]
    fh = ws.row_data_fh
    r = first_row
    for lo in range(0, n, _STREAM_CHUNK):
        hi = min(n, lo + _STREAM_CHUNK)
        tails = [_render_column(columns[j][lo:hi], classifiers[j], xf_text[j], caches[j])
                 for j in range(ncols)]
        out = []
        append = out.append
        for k, row_tails in enumerate(zip(*tails), start=lo):
            r += 1
            rn = str(r)
            h = heights[k] if k < len(heights) else None
            append(f'<row r="{rn}" ht="{h:g}" customHeight="1">' if h else f'<row r="{rn}">')
            append("".join([h + rn + t for h, t in zip(heads, row_tails)]))
            append("</row>")
        fh.write("".join(out))
    if r > first_row:
        ws._check_dimensions(first_row, 0)
        ws._check_dimensions(r - 1, ncols - 1)
    ws.previous_row = r
    return r


def _is_total_label(value: Any) -> bool:
    return value.__class__ is str and value == TOTAL_LABEL


def _api_rows(ws: Worksheet, first_row: int, rows: Iterator[tuple], classifiers: list,
              formats: list[list[Format]], bold_formats: list[list[Format]] | None,
              run_fmt: Format, heights: Sequence[float | None] = ()) -> int:
    """The same rows through xlsxwriter's typed write_* methods."""
    r = first_row
    for k, row in enumerate(rows):
        if k < len(heights) and heights[k]:
            ws.set_row(r, heights[k])
        styles = bold_formats if (bold_formats is not None and _is_total_label(row[0])) else formats
        for j, v in enumerate(row):
            t, p, k = classifiers[j](v)
            fmt = styles[j][k]
            if t == T_STRING:
                put_string(ws, r, j, p, fmt, run_fmt)
            elif t == T_NUMBER:
                ws.write_number(r, j, p, fmt)
            else:
                ws.write_blank(r, j, None, fmt)
        r += 1
    return r


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


@dataclass
class _Table:
    name: str
    title: str
    frame: pd.DataFrame
    columns: list[str]
    number_rows: bool = True  # fill 序号 with 1..n
    totals: tuple[int, int] | None = None  # (households, persons) for the 合计 row
    signature: bool = False
    emphasize_total_row: bool = False  # bold a data row whose first cell is 合计 (汇总)
    autofilter: bool = True


def row2_text(settings: Settings, generated_at: dt.datetime) -> str:
    return (
        f"填报单位：{settings.reporting_unit}　　数据截至：{settings.reference_date.isoformat()}"
        f"　　生成时间：{show_time(generated_at, settings)}"
    )


def unit_text(columns: Sequence[str], kinds: Sequence[str], counted: bool) -> str:
    """The 单位 line of a table: 户 and 人 where it counts them, 元 where it shows amounts."""
    units = []
    if counted or any(c.endswith(HOUSEHOLDS_LABEL) for c in columns):
        units.append("户")
    if counted or any(c.endswith(PERSONS_LABEL) or c == SIZE_LABEL for c in columns):
        units.append("人")
    if any(k in ("amount", "floor") for k in kinds):
        units.append("元")
    return "单位：" + "、".join(units) if units else ""


def totals_text(households: int, persons: int) -> str:
    return f"共{households}户{persons}人"


_TOTALS_RE = re.compile(r"共(\d+)户(\d+)人")


def parse_totals_text(text: str) -> tuple[int, int] | None:
    """Inverse of :func:`totals_text` (for readers and tests)."""
    m = _TOTALS_RE.search(text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def _part_names(name: str, parts: int) -> list[str]:
    names = [name]
    for k in range(2, parts + 1):
        suffix = f"_{k}"
        names.append(name[: EXCEL_MAX_SHEET_NAME - len(suffix)] + suffix)
    return names


def _sample_positions(n: int) -> Sequence[int]:
    if n <= _WIDTH_SAMPLE:
        return range(n)
    half = _WIDTH_SAMPLE // 2
    step = max(1, (n - half) // half)
    return [*range(half), *range(half, n, step)]


def _cell_text(v: Any, kind: str) -> str | None:
    """The text a cell shows (amounts with two decimals), for widths and row heights."""
    if kind in ("amount", "floor"):
        d = to_floor_amount(v) if kind == "floor" else to_amount(v)
        return f"{d:.2f}" if d is not None else to_text(v)
    return to_text(v)


def _natural_widths(table: _Table, kinds: list[str]) -> list[tuple[int, int, list[int]]]:
    """Per column: (header width, widest value, the values' widths) from the header and a sample
    of the values (CJK counts 2)."""
    frame = table.frame
    positions = _sample_positions(len(frame))
    out = []
    for name, kind in zip(table.columns, kinds):
        lengths: list[int] = []
        if name == SEQ_LABEL and table.number_rows:
            lengths = [len(str(len(frame)))]
        elif name in frame.columns:
            column = frame[name]
            for i in positions:
                s = _cell_text(column.iat[i], kind)
                if s:
                    lengths.append(max(display_width(part) for part in s.split("\n")))
        out.append((display_width(name), max(lengths, default=0), lengths))
    return out


def _fit_widths(natural: list[tuple[int, int, list[int]]], kinds: list[str],
                cap: int) -> list[tuple[float, bool]]:
    """(width, wrap) per column: as wide as the content, a long header wrapping onto two lines,
    text longer than ``cap`` wrapping (the column then as wide as most of its values, at most
    ``cap``). Numbers never wrap."""
    out = []
    for (header, widest, lengths), kind in zip(natural, kinds):
        head = header if header <= HEADER_MIN_WIDTH else max(HEADER_MIN_WIDTH, math.ceil(header / 2))
        if widest <= max(cap, NEVER_WRAP_WIDTH) or kind in ("amount", "floor"):
            out.append((max(head, widest, 4) + 2, False))
            continue
        ordered = sorted(lengths)
        typical = ordered[int(0.9 * (len(ordered) - 1))]
        out.append((max(head, min(cap, max(typical, WRAP_MIN_WIDTH))) + 2, True))
    return out


def _column_widths(table: _Table, kinds: list[str]) -> tuple[list[tuple[float, bool]], PrintLayout]:
    """(width, wrap) per column, and the print layout: the widest cap for wrapped text at which
    the table prints on the fewest pages across, preferring A4 to A3 (see printing.py)."""
    natural = _natural_widths(table, kinds)
    best = None
    for cap in WRAP_CAPS:
        widths = _fit_widths(natural, kinds, cap)
        layout = choose_layout([stored_width(w) for w, _ in widths], table.columns)
        rank = (layout.pages_across, layout.paper != A4)
        if best is None or rank < best[0]:
            best = (rank, widths, layout)
        if rank == (1, False):
            break
    return best[1], best[2]


def _widen(widths: list[tuple[float, bool]], need: float) -> list[tuple[float, bool]]:
    """Widen a narrow table to ``need`` characters, spread over its columns."""
    total = sum(w for w, _ in widths)
    if total >= need:
        return widths
    extra = (need - total) / len(widths)
    return [(round(w + extra, 1), wrap) for w, wrap in widths]


def _merge_row(ws: Worksheet, row: int, ncols: int, text: str, fmt: Format, run_fmt: Format) -> None:
    """A text line across all columns; the text always as a plain string."""
    if ncols > 1:
        ws.merge_range(row, 0, row, ncols - 1, "", fmt)
    put_string(ws, row, 0, text, fmt, run_fmt)


FOOTER = "&C第 &P 页，共 &N 页"


def _print_setup(ws: Worksheet, header_rows: int, layout: PrintLayout, label: str | None = None,
                 freeze_cols: int = 0) -> None:
    """Paper, fixed print scale (text at least 8 pt), repeated header rows (and identifying
    columns when the table runs several pages across), page numbers and the 附件N label."""
    apply_print_layout(ws, layout, label)
    ws.repeat_rows(0, header_rows - 1)
    ws.freeze_panes(header_rows, freeze_cols)


def apply_print_layout(ws: Worksheet, layout: PrintLayout, label: str | None = None) -> None:
    """The page setup of a printing sheet (shared with the survey template)."""
    ws.set_paper(layout.paper)
    ws.set_landscape()
    ws.set_print_scale(layout.scale)
    if layout.repeat_columns is not None:
        ws.repeat_columns(*layout.repeat_columns)
        ws.print_across()
    ws.set_margins(left=MARGIN_LR_IN, right=MARGIN_LR_IN, top=MARGIN_TB_IN, bottom=MARGIN_TB_IN)
    if layout.pages_across == 1:
        ws.center_horizontally()
    if label:
        ws.set_header(f"&L{label}", {"margin": HEADER_FOOTER_IN})
    ws.set_footer(FOOTER, {"margin": HEADER_FOOTER_IN})


def _row_heights(values: list[Sequence[Any]], kinds: list[str], widths: list[tuple[float, bool]],
                 start: int, stop: int) -> list[float | None]:
    """The height of each data row whose wrapped text needs more than one line (else None)."""
    wrapped = [j for j, (_, wrap) in enumerate(widths) if wrap]
    heights: list[float | None] = [None] * (stop - start)
    if not wrapped:
        return heights
    for j in wrapped:
        width, kind, column = widths[j][0], kinds[j], values[j]
        for i in range(start, stop):
            v = column[i]
            if v is None or (v.__class__ is float and v != v):
                continue
            s = _cell_text(v, kind)
            if not s:
                continue
            lines = text_lines(s, width)
            if lines > 1:
                h = row_height(lines)
                k = i - start
                if heights[k] is None or h > heights[k]:
                    heights[k] = h
    return heights


def _write_table(wb: xlsxwriter.Workbook, fmts: _Formats, table: _Table, *, row2: str,
                 text_columns: Collection[str], amount_columns: Collection[str],
                 label: str | None = None) -> list[tuple[str, int]]:
    """Write one table, split over several sheets past Excel's row limit; [(sheet, rows)]."""
    columns = table.columns
    ncols = len(columns)
    if ncols == 0:
        raise ValueError(f"sheet {table.name}: no columns")
    if ncols > EXCEL_MAX_COLS:
        raise ValueError(f"sheet {table.name}: {ncols} columns exceed Excel's {EXCEL_MAX_COLS}")
    if len(set(columns)) != ncols:
        raise ValueError(f"sheet {table.name}: duplicate column names")
    source = [c for c in columns if not (c == SEQ_LABEL and table.number_rows)]
    missing = [c for c in source if c not in table.frame.columns]
    if missing:
        raise ValueError(f"sheet {table.name}: data lacks column(s) {', '.join(missing)}")

    n = len(table.frame)
    footer = (table.totals is not None) + table.signature
    capacity = EXCEL_MAX_ROWS - HEADER_ROWS - footer
    parts = max(1, math.ceil(n / capacity))
    names = _part_names(table.name, parts)

    kinds = [_column_kind(c, text_columns, amount_columns) for c in columns]
    classifiers = [_CLASSIFIERS[k] for k in kinds]
    unit = unit_text(columns, kinds, table.totals is not None)
    if unit:
        row2 = f"{row2}　　{unit}"
    widths, layout = _column_widths(table, kinds)
    # A narrow table (a 汇总) is widened so its title and row 2 stand on one line each.
    title_need = display_width(table.title) * TITLE_PT / BODY_PT + 4
    widths = _widen(widths, min(max(title_need, display_width(row2) + 2), NARROW_TABLE_WIDTH))
    layout = choose_layout([stored_width(w) for w, _ in widths], columns)
    printed = sum(w for w, _ in widths)  # characters across the merged title
    span = ncols  # the title, row 2 and the signature are merged across the printed width …
    if layout.pages_across > 1:
        # … which, when the table runs several pages across, is the columns repeated on every
        # page, so each page shows the title whole (a merge over all columns is cut at the page
        # edge); when those are too narrow for the title, the columns of the first page
        span = layout.repeat_columns[1] + 1 if layout.repeat_columns else 1
        if sum(w for w, _ in widths[:span]) < MIN_TITLE_SPAN:
            span = first_page_columns([stored_width(w) for w, _ in widths], layout)
        printed = sum(w for w, _ in widths[:span])
    title_lines = text_lines(table.title, printed * BODY_PT / TITLE_PT)
    row2_lines = text_lines(row2, printed)
    header_lines = max(text_lines(c, w) for c, (w, _) in zip(columns, widths))
    values: list[Sequence[Any]] = []
    for c in columns:
        if c == SEQ_LABEL and table.number_rows:
            values.append(range(1, n + 1))
        else:
            values.append(table.frame[c].tolist())

    formats = [fmts.styles(wrap=w, bold=False) for _, w in widths]
    bold_formats = [fmts.styles(wrap=w, bold=True) for _, w in widths] if table.emphasize_total_row else None
    run_fmt = fmts.plain()
    title_fmt = fmts.plain(bold=True, font_size=TITLE_PT, align="center", text_wrap=True)
    row2_fmt = fmts.plain(align="left", text_wrap=True)
    header_fmt = fmts.get(bold=True, align="center", text_wrap=True, bg_color="#D9D9D9", num_format="@")
    total_label_fmt = fmts.get(bold=True, align="center")
    total_fmt = fmts.get(bold=True, align="left")
    sign_fmt = fmts.plain(align="left", text_wrap=True)

    written = []
    for part, sheet_name in enumerate(names):
        ws = wb.add_worksheet(sheet_name)
        for j, (width, _) in enumerate(widths):
            ws.set_column(j, j, width)
        ws.set_row(0, max(30.0, row_height(title_lines, TITLE_PT)))
        _merge_row(ws, 0, span, table.title, title_fmt, run_fmt)
        ws.set_row(1, max(20.0, row_height(row2_lines)))
        _merge_row(ws, 1, span, row2, row2_fmt, run_fmt)
        ws.set_row(2, max(20.0, row_height(header_lines)))
        for j, name in enumerate(columns):
            put_string(ws, 2, j, name, header_fmt, run_fmt)

        start, stop = part * capacity, min(n, (part + 1) * capacity)
        heights = _row_heights(values, kinds, widths, start, stop)
        if stop > start and bold_formats is None and _can_stream(ws, HEADER_ROWS):
            xf = [[f._get_xf_index() for f in col] for col in formats]
            part_values = [v[start:stop] for v in values]
            r = _stream_rows(ws, HEADER_ROWS, part_values, classifiers, xf, heights)
        else:
            rows = zip(*(v[start:stop] for v in values))
            r = _api_rows(ws, HEADER_ROWS, rows, classifiers, formats, bold_formats, run_fmt, heights)
        last_data_row = r - 1

        if part == parts - 1:
            if table.totals is not None:
                households, persons = table.totals
                if ncols > 1:
                    put_string(ws, r, 0, TOTAL_LABEL, total_label_fmt, run_fmt)
                    ws.merge_range(r, 1, r, ncols - 1, "", total_fmt)
                    put_string(ws, r, 1, totals_text(households, persons), total_fmt, run_fmt)
                else:
                    put_string(ws, r, 0, TOTAL_LABEL + totals_text(households, persons), total_fmt,
                               run_fmt)
                r += 1
            if table.signature:
                ws.set_row(r, max(30.0, row_height(text_lines(SIGNATURE_LINE, printed))))
                _merge_row(ws, r, span, SIGNATURE_LINE, sign_fmt, run_fmt)
                r += 1

        _print_setup(ws, HEADER_ROWS, layout, label)
        if table.autofilter and last_data_row >= HEADER_ROWS:
            ws.autofilter(HEADER_ROWS - 1, 0, last_data_row, ncols - 1)
        written.append((sheet_name, stop - start))
    return written


def _write_settings_sheet(wb: xlsxwriter.Workbook, fmts: _Formats, record: Mapping[str, str]) -> None:
    """The hidden 设置 sheet: never printed, never counted in the page totals."""
    ws = wb.add_worksheet(SETTINGS_SHEET)
    ws.set_column(0, 0, max(display_width(k) for k in record) + 2)
    ws.set_column(1, 1, min(MAX_COLUMN_WIDTH, max(display_width(v) for v in record.values()) + 2))
    header = fmts.get(bold=True, bg_color="#D9D9D9")
    cell = fmts.get(num_format="@")
    run_fmt = fmts.plain()
    put_string(ws, 0, 0, SETTING_NAME_LABEL, header, run_fmt)
    put_string(ws, 0, 1, SETTING_VALUE_LABEL, header, run_fmt)
    for i, (k, v) in enumerate(record.items(), start=1):
        put_string(ws, i, 0, k, cell, run_fmt)
        put_string(ws, i, 1, v, cell, run_fmt)
    ws.hide()


def settings_record(settings: Settings, generated_at: dt.datetime, *,
                    for_village: bool = False) -> dict[str, str]:
    """The settings that shaped an output, with Chinese labels, plus 生成时间 (district time,
    ``2019-05-20 09:30``); without the detection thresholds when it goes to a village."""
    return {**settings.as_record(for_village=for_village),
            GENERATED_AT_LABEL: show_time(generated_at, settings)}


def _set_properties(wb: xlsxwriter.Workbook, record: Mapping[str, str], settings: Settings,
                    generated_at: dt.datetime, title: str) -> None:
    created = generated_at
    if created.tzinfo is not None:
        created = created.astimezone(dt.UTC).replace(tzinfo=None)
    wb.set_properties({
        "title": title,
        "subject": f"{settings.district_name}{settings.reference_date.year}年脱贫质量“回头看”",
        "author": settings.reporting_unit,
        "company": settings.reporting_unit,
        "comments": "；".join(f"{k}={v}" for k, v in record.items()),
        "created": created,
    })


def _check_unit(unit: str, household_key: str | None) -> None:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    if unit == UNIT_PERSON and not household_key:
        raise ValueError("a person-unit table needs household_key to count households")


# --------------------------------------------------------------------------------------------
# Counting households and persons
# --------------------------------------------------------------------------------------------


def _blank_mask(values: pd.Series) -> pd.Series:
    """True where a value is missing or a blank string."""
    mask = values.isna()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        strings = values[~mask].map(lambda v: isinstance(v, str) and not v.strip())
        mask = mask | strings.reindex(values.index, fill_value=False).astype(bool)
    return mask


def _key_series(values: pd.Series) -> pd.Series:
    """A grouping key with missing and blank values as 未填."""
    return values.astype(object).where(~_blank_mask(values), UNSPECIFIED_LABEL)


def _household_ids(rows: pd.DataFrame, household_key: str) -> pd.Series:
    if household_key not in rows.columns:
        raise ValueError(f"household_key {household_key!r} is not a column of the rows")
    values = rows[household_key]
    return values.astype(object).where(~_blank_mask(values), None)


def _sizes(rows: pd.DataFrame) -> pd.Series:
    """家庭人口 as numbers (0 where empty or not a number)."""
    if SIZE_LABEL not in rows.columns:
        raise ValueError(f"a household-unit table needs the column {SIZE_LABEL} to count persons")
    values = rows[SIZE_LABEL]
    if not pd.api.types.is_numeric_dtype(values.dtype):
        values = values.map(to_text)
    return pd.to_numeric(values, errors="coerce").fillna(0)


def count_households_persons(rows: pd.DataFrame, *, unit: str,
                             household_key: str | None = None) -> tuple[int, int]:
    """(households, persons): person unit — distinct household_key values and rows;
    household unit — rows and the sum of 家庭人口."""
    _check_unit(unit, household_key)
    if unit == UNIT_PERSON:
        return int(_household_ids(rows, household_key).nunique(dropna=True)), len(rows)
    return len(rows), int(round(float(_sizes(rows).sum())))


def _ordered_values(label: str, present: Sequence[Any], every: Sequence[Any] | None = None) -> list[Any]:
    """The values of a split column in code-list order; with ``every``, all of those values
    (a value nobody has keeps its zero columns) in that order, then any other value present."""
    codes = next((c.codes for c in _ALL_INPUT_COLUMNS if c.label == label and c.codes), ())
    seen = list(dict.fromkeys(present))
    ordered = list(every) if every is not None else [c for c in codes if c in seen]
    ordered += [v for v in seen if v not in ordered and v != UNSPECIFIED_LABEL]
    if UNSPECIFIED_LABEL in seen:
        ordered.append(UNSPECIFIED_LABEL)
    return ordered


def summarize(rows: pd.DataFrame, by: str = SUBDISTRICT_LABEL, *, household_key: str | None = None,
              unit: str = UNIT_HOUSEHOLD, split_by: Sequence[str] = (),
              split_values: Mapping[str, Sequence[Any]] | None = None) -> pd.DataFrame:
    """The 汇总 sheet: one row per ``by`` value (in order of first appearance) plus a 合计 row,
    with 户数 and 人数, and for each ``split_by`` column and each of its values the columns
    ``<value>户数`` and ``<value>人数`` (values in code-list order where schema has one; for a
    column of ``split_values``, every value listed there, in that order, zeros included)."""
    _check_unit(unit, household_key)
    if by not in rows.columns:
        raise ValueError(f"summary column {by!r} is not a column of the rows")
    work = pd.DataFrame({"_g": _key_series(rows[by]).to_numpy()}, index=range(len(rows)))
    if unit == UNIT_PERSON:
        work["_h"] = _household_ids(rows, household_key).to_numpy()
    else:
        work["_p"] = _sizes(rows).to_numpy()

    def counts(keys: list[str]) -> pd.DataFrame:
        g = work.groupby(keys, sort=False, dropna=False)
        if unit == UNIT_PERSON:
            return pd.DataFrame({"h": g["_h"].nunique(), "p": g.size()})
        return pd.DataFrame({"h": g.size(), "p": g["_p"].sum()})

    groups = list(dict.fromkeys(work["_g"]))
    base = counts(["_g"]).reindex(groups)
    out = pd.DataFrame({by: groups + [TOTAL_LABEL]})
    total_h, total_p = count_households_persons(rows, unit=unit, household_key=household_key)
    out[HOUSEHOLDS_LABEL] = [*base["h"].astype(int), total_h]
    out[PERSONS_LABEL] = [*base["p"].round().astype(int), total_p]

    used: set[str] = set(out.columns)
    for split in split_by:
        if split not in rows.columns:
            raise ValueError(f"split column {split!r} is not a column of the rows")
        work["_s"] = _key_series(rows[split]).to_numpy()
        sub = counts(["_g", "_s"])
        whole = counts(["_s"])
        for value in _ordered_values(split, list(work["_s"]), (split_values or {}).get(split)):
            for stat, label in (("h", HOUSEHOLDS_LABEL), ("p", PERSONS_LABEL)):
                name = f"{value}{label}"
                if name in used:
                    name = f"{split}·{value}{label}"
                used.add(name)
                per_group = [sub[stat].get((g, value), 0) for g in groups]
                out[name] = [int(round(float(x))) for x in [*per_group, whole[stat].get(value, 0)]]
    return out


# --------------------------------------------------------------------------------------------
# Public writers
# --------------------------------------------------------------------------------------------


def write_annex_workbook(
    path: Path,
    *,
    title: str,
    columns: Sequence[str],
    rows: pd.DataFrame,
    summary: pd.DataFrame,
    settings: Settings,
    generated_at: dt.datetime,
    text_columns: Collection[str] = (),
    amount_columns: Collection[str] = (),
    unit: str = UNIT_HOUSEHOLD,
    household_key: str | None = None,
    extra_sheets: Mapping[str, pd.DataFrame] | None = None,
    detail_sheet: str = DETAIL_SHEET,
    page_label: str | None = None,
    summary_title: str | None = None,
) -> WriteStats:
    """Write a 附件 table: sheets 明细 (title, row 2, header = ``columns``, rows numbered 1..n in
    序号, 合计 and the signature line), 汇总 (``summary`` as given), any ``extra_sheets`` (same
    title/header layout) and the hidden 设置. ``rows`` holds every column of ``columns`` except 序号,
    already sorted; it may hold more (e.g. ``household_key``), which are not written.
    ``page_label`` (e.g. ``附件4``) is printed at the top left of every page."""
    started = time.perf_counter()
    path = Path(path)
    _check_unit(unit, household_key)
    columns = list(columns)
    if len(set(columns)) != len(columns):
        raise ValueError("duplicate column names in columns")
    households, persons = count_households_persons(rows, unit=unit, household_key=household_key)
    row2 = row2_text(settings, generated_at)
    tables = [
        _Table(detail_sheet, title, rows, columns, totals=(households, persons), signature=True),
        _Table(SUMMARY_SHEET, summary_title or title, summary, [str(c) for c in summary.columns],
               number_rows=False, emphasize_total_row=True, autofilter=False),
    ]
    for name, frame in (extra_sheets or {}).items():
        tables.append(_Table(name, title, frame, [str(c) for c in frame.columns], number_rows=False))
    sheets, split = _write_workbook(path, tables, settings=settings, generated_at=generated_at,
                                    title=title, row2=row2, text_columns=text_columns,
                                    amount_columns=amount_columns, page_label=page_label)
    return WriteStats(rows=len(rows), households=households, persons=persons, path=path,
                      sheets=sheets, split=split,
                      sheet_totals={detail_sheet: (households, persons)},
                      seconds=time.perf_counter() - started)


def write_sheets_workbook(
    path: Path,
    sheets: Mapping[str, tuple[str, pd.DataFrame]],
    settings: Settings,
    generated_at: dt.datetime,
    text_columns: Collection[str] = (),
    amount_columns: Collection[str] = (),
    *,
    totals: Mapping[str, Totals | tuple[str, str | None]] | None = None,
    signature: bool | Collection[str] = False,
    number_rows: bool = True,
    settings_sheet: bool = True,
    document_title: str | None = None,
    page_label: str | None = None,
    for_village: bool = False,
    charts: Collection = (),
) -> WriteStats:
    """Write several tables, one sheet each (``sheets``: name -> (title, frame); every column of
    the frame is written, in order), with the title/row 2/header layout and print setup of the
    附件 tables. A frame's 序号 column is renumbered 1..n unless ``number_rows`` is False.

    ``totals`` (sheet -> ``Totals(unit, household_key)``) adds a 合计 row to those sheets;
    ``signature`` (True, or a set of sheet names) adds the signature line. A sheet longer than
    Excel's row limit continues in ``<name>_2``, ``<name>_3``… (``WriteStats.split``/``notes``).
    ``WriteStats.households/persons`` are given when exactly one sheet has totals; per sheet they
    are in ``sheet_totals``. ``page_label`` is printed at the top left of every page; a workbook
    ``for_village`` records its settings without the detection thresholds. ``charts``: callables
    given the open xlsxwriter workbook after the tables, each adding a sheet with a native chart
    (pipeline/charts.py)."""
    started = time.perf_counter()
    path = Path(path)
    if not sheets:
        raise ValueError("no sheets to write")
    totals = {k: Totals(*v) for k, v in (totals or {}).items()}
    unknown = set(totals) - set(sheets)
    if unknown:
        raise ValueError(f"totals given for unknown sheet(s): {', '.join(sorted(unknown))}")
    signed = set(sheets) if signature is True else set(signature or ())
    tables = []
    sheet_totals: dict[str, tuple[int, int]] = {}
    for name, (title, frame) in sheets.items():
        counted = None
        if name in totals:
            t = totals[name]
            counted = sheet_totals[name] = count_households_persons(
                frame, unit=t.unit, household_key=t.household_key)
        tables.append(_Table(name, title, frame, [str(c) for c in frame.columns],
                             number_rows=number_rows, totals=counted, signature=name in signed))
    first_title = next(iter(sheets.values()))[0]
    written, split = _write_workbook(
        path, tables, settings=settings, generated_at=generated_at,
        title=document_title or first_title, row2=row2_text(settings, generated_at),
        text_columns=text_columns, amount_columns=amount_columns, settings_sheet=settings_sheet,
        page_label=page_label, for_village=for_village, charts=charts)
    only = next(iter(sheet_totals.values())) if len(sheet_totals) == 1 else (None, None)
    return WriteStats(rows=sum(written.values()), households=only[0], persons=only[1], path=path,
                      sheets=written, split=split, sheet_totals=sheet_totals,
                      seconds=time.perf_counter() - started)


def _write_workbook(path: Path, tables: list[_Table], *, settings: Settings,
                    generated_at: dt.datetime, title: str, row2: str,
                    text_columns: Collection[str], amount_columns: Collection[str],
                    settings_sheet: bool = True, page_label: str | None = None,
                    for_village: bool = False,
                    charts: Collection = ()) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
    text_columns = frozenset(text_columns)
    amount_columns = frozenset(amount_columns)
    cells = sum(len(t.frame) * len(t.columns) for t in tables)
    sheets: dict[str, int] = {}
    split: dict[str, tuple[str, ...]] = {}
    with atomic_path(path) as tmp, _workbook(tmp, cells) as wb:
        fmts = _Formats(wb)
        record = settings_record(settings, generated_at, for_village=for_village)
        _set_properties(wb, record, settings, generated_at, title)
        for table in tables:
            parts = _write_table(wb, fmts, table, row2=row2, text_columns=text_columns,
                                 amount_columns=amount_columns, label=page_label)
            sheets.update(parts)
            if len(parts) > 1:
                split[table.name] = tuple(name for name, _ in parts)
        before = len(wb.worksheets())
        for chart in charts:
            chart(wb)
        for ws in wb.worksheets()[before:]:  # a chart's sheet prints like the rest: A4 landscape
            apply_print_layout(ws, CHART_LAYOUT, page_label)
        if settings_sheet:
            _write_settings_sheet(wb, fmts, record)
    return sheets, split


# --------------------------------------------------------------------------------------------
# Notices (公示, 公告): a page to post, A4 portrait, 30 households a page
# --------------------------------------------------------------------------------------------

NOTICE_PT = 12  # body text of a notice, read standing at a notice board
NOTICE_TITLE_PT = 18
NOTICE_ROW_PT = 21.0
NOTICE_WIDTH = 84  # characters across an A4 portrait page at 100 %
_NOTICE_WIDTHS = {"序号": 6, "办事处": 14, "村": 14, "户主姓名": 18, "家庭人口": 10, "类别": 14}


def write_notice_workbook(path: Path, notice: Any, *, households_per_page: int = 30) -> WriteStats:
    """Write a notice (``pipeline.rules.notices.Notice``) as a one-sheet workbook that prints on
    A4 portrait at 100 %: the title, the lead, the list (序号, …, 户主姓名, 家庭人口, 类别) with a
    page break every ``households_per_page`` rows and the title, lead and header repeated, a 合计
    line, then the text of the notice, the issuing body and the date. No 设置 sheet and no internal
    field: it is posted on a notice board as it is."""
    started = time.perf_counter()
    path = Path(path)
    frame = notice.rows
    columns = [str(c) for c in frame.columns]
    ncols = len(columns)
    base = [_NOTICE_WIDTHS.get(c, 12) for c in columns]
    widths = [w * NOTICE_WIDTH / sum(base) for w in base]
    chars = sum(widths) * BODY_PT / NOTICE_PT  # 12-pt characters across
    with atomic_path(path) as tmp, _workbook(tmp, len(frame) * ncols) as wb:  # owner-only: names
        wb.set_properties({"title": notice.title, "author": notice.issuer})
        fmts = _Formats(wb)
        run_fmt = fmts.plain()
        title_fmt = fmts.plain(bold=True, font_size=NOTICE_TITLE_PT, align="center", text_wrap=True)
        text_fmt = fmts.plain(font_size=NOTICE_PT, align="left", text_wrap=True)
        right_fmt = fmts.plain(font_size=NOTICE_PT, align="right")
        header_fmt = fmts.get(bold=True, font_size=NOTICE_PT, align="center", bg_color="#D9D9D9")
        cell_fmt = {c: fmts.get(font_size=NOTICE_PT, align="center" if c in ("序号", "家庭人口") else "left",
                                num_format="@" if c not in ("序号", "家庭人口") else "General")
                    for c in columns}
        ws = wb.add_worksheet(notice.sheet)
        for j, w in enumerate(widths):
            ws.set_column(j, j, w)
        ws.set_row(0, row_height(text_lines(notice.title, chars * NOTICE_PT / NOTICE_TITLE_PT),
                                 NOTICE_TITLE_PT) + 6)
        _merge_row(ws, 0, ncols, notice.title, title_fmt, run_fmt)
        ws.set_row(1, row_height(text_lines(notice.lead, chars), NOTICE_PT) + 4)
        _merge_row(ws, 1, ncols, notice.lead, text_fmt, run_fmt)
        r = 2
        if len(frame):
            ws.set_row(r, NOTICE_ROW_PT)
            for j, c in enumerate(columns):
                put_string(ws, r, j, c, header_fmt, run_fmt)
            r += 1
            for row in frame.itertuples(index=False):
                ws.set_row(r, NOTICE_ROW_PT)
                for j, (c, v) in enumerate(zip(columns, row)):
                    t, p, _ = classify_general(v) if c in ("序号", "家庭人口") else classify_text(v)
                    if t == T_NUMBER:
                        ws.write_number(r, j, p, cell_fmt[c])
                    elif t == T_STRING:
                        put_string(ws, r, j, p, cell_fmt[c], run_fmt)
                    else:
                        ws.write_blank(r, j, None, cell_fmt[c])
                r += 1
            ws.set_row(r, NOTICE_ROW_PT)
            _merge_row(ws, r, ncols, f"{TOTAL_LABEL}：{totals_text(notice.households, notice.persons)}", text_fmt, run_fmt)
            r += 1
            ws.repeat_rows(0, 2)
            ws.set_h_pagebreaks(list(range(3 + households_per_page, 3 + len(frame), households_per_page)))
        else:
            ws.set_row(r, row_height(text_lines(notice.empty_text, chars), NOTICE_PT) + 8)
            _merge_row(ws, r, ncols, notice.empty_text, text_fmt, run_fmt)
            r += 1
        r += 1  # a blank line before the text of the notice
        for text in notice.paragraphs:
            ws.set_row(r, row_height(text_lines(text, chars), NOTICE_PT) + 2)
            _merge_row(ws, r, ncols, text, text_fmt, run_fmt)
            r += 1
        r += 1
        for text in (notice.issuer, f"{notice.date.year}年{notice.date.month}月{notice.date.day}日"):
            ws.set_row(r, NOTICE_ROW_PT)
            if ncols > 1:
                ws.merge_range(r, 0, r, ncols - 1, "", right_fmt)
            put_string(ws, r, 0, text, right_fmt, run_fmt)
            r += 1
        ws.set_paper(A4)
        ws.set_portrait()
        ws.set_print_scale(100)
        ws.set_margins(left=0.6, right=0.6, top=0.6, bottom=0.6)
        ws.center_horizontally()
        ws.set_footer(FOOTER, {"margin": HEADER_FOOTER_IN})
    return WriteStats(rows=len(frame), households=notice.households, persons=notice.persons, path=path,
                      sheets={notice.sheet: len(frame)}, seconds=time.perf_counter() - started)
