"""How a sheet prints: paper, scale and the columns repeated on every page (outputs.md, "Printed
text is at least 8 pt").

The rule of every writer: text prints at least ``MIN_PRINTED_PT`` at the scale the page setup
gives (font size × print scale). A table goes on

1. one A4 landscape page wide, when it fits there at a scale that keeps the text legible;
2. else one A3 landscape page wide, on the same condition;
3. else A3 landscape at the smallest legible scale, several pages across, with the identifying
   columns (序号 … 户主姓名/姓名, the run of columns from the first to the last of them)
   repeated at the left of every page (print titles for columns).

The scale is written as a fixed print scale (never "fit to width", whose scale the spreadsheet
program computes from its own font metrics and could take below the limit). Widths are in Excel's
character units; :func:`column_points` converts them as Excel and LibreOffice do for the default
font (7 px per character, 96 px per inch), and a margin of ``SAFETY`` covers the difference
between programs.

:func:`printed_scale` reads the same numbers back from a workbook opened with openpyxl, so the
tests measure what was written, not what the writer meant.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

MIN_PRINTED_PT = 8.0
BODY_PT = 10  # data, header, row 2, signature
TITLE_PT = 16

A4, A3 = 9, 8  # Excel paper codes
# landscape (width, height) in mm
PAPER_MM = {A4: (297.0, 210.0), A3: (420.0, 297.0)}
PAPER_NAMES = {A4: "A4", A3: "A3"}
MARGIN_LR_IN = 0.4
MARGIN_TB_IN = 0.6
HEADER_FOOTER_IN = 0.3
SAFETY = 1.10  # LibreOffice renders the default font (Carlito) about 6 % wider than Excel

PX_PER_CHAR = 7  # the max digit width of the default font (Calibri 11) in pixels
CELL_PADDING_PX = 5

LINE_PT = 14.5  # the height of one line of 10 pt text, CJK fonts included
ROW_PAD_PT = 3.0

IDENTIFYING = ("序号", "办事处", "村", "户主姓名", "姓名")


_WIDE = frozenset("WF")


def display_width(text: str) -> int:
    """Width in Excel character units: CJK and full-width characters count two."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in _WIDE else 1 for ch in text)


def min_scale(font_pt: float = BODY_PT) -> int:
    """The smallest print scale (percent) at which ``font_pt`` prints at MIN_PRINTED_PT."""
    return math.ceil(MIN_PRINTED_PT / font_pt * 100 - 1e-9)


def stored_width(width: float) -> float:
    """The width Excel stores for a column set to ``width`` characters (xlsxwriter adds the
    cell padding: 5 px)."""
    if width <= 0:
        return 0.0
    px = int(width * PX_PER_CHAR + 0.5) + CELL_PADDING_PX
    return px / PX_PER_CHAR


def column_points(stored: float) -> float:
    """Points a column of stored width ``stored`` takes on paper at 100 %."""
    return stored * PX_PER_CHAR * 0.75


def printable_width_pt(paper: int) -> float:
    return (PAPER_MM[paper][0] / 25.4 - 2 * MARGIN_LR_IN) * 72


@dataclass(frozen=True)
class PrintLayout:
    paper: int
    scale: int  # percent
    repeat_columns: tuple[int, int] | None  # first, last (0-based) repeated on every page
    pages_across: int

    @property
    def paper_name(self) -> str:
        return PAPER_NAMES[self.paper]


def identifying_span(columns: Sequence[str]) -> tuple[int, int] | None:
    """The columns to repeat on every page: from column A to the last identifying column, when
    the identifying columns come first (at most 8 columns in)."""
    idx = [j for j, c in enumerate(columns) if c in IDENTIFYING]
    if not idx or idx[-1] > 7:
        return None
    return (0, idx[-1])


def choose_layout(stored_widths: Sequence[float], columns: Sequence[str] = (),
                  font_pt: float = BODY_PT) -> PrintLayout:
    """The paper and scale of a table whose columns have these stored widths."""
    points = [column_points(w) * SAFETY for w in stored_widths]
    total = sum(points) or 1.0
    lowest = min_scale(font_pt)
    for paper in (A4, A3):
        scale = min(100, math.floor(printable_width_pt(paper) / total * 100))
        if scale >= lowest:
            return PrintLayout(paper, scale, None, 1)
    span = identifying_span(columns)
    return PrintLayout(A3, lowest, span, pages_across(points, A3, lowest, span))


def pages_across(points: Sequence[float], paper: int, scale: int,
                 span: tuple[int, int] | None) -> int:
    """How many pages wide the table prints (columns never split; repeated ones on each page)."""
    room = printable_width_pt(paper) * 100 / scale
    repeat = sum(points[span[0]:span[1] + 1]) if span else 0.0
    start = span[1] + 1 if span else 0
    pages, used = 1, repeat
    for w in points[start:]:
        if used + w > room and used > repeat:
            pages += 1
            used = repeat
        used += w
    return pages


def first_page_columns(stored_widths: Sequence[float], layout: PrintLayout) -> int:
    """How many columns (from A) print on the first page."""
    points = [column_points(w) * SAFETY for w in stored_widths]
    room = printable_width_pt(layout.paper) * 100 / layout.scale
    used, n = 0.0, 0
    for w in points:
        if used + w > room and n:
            break
        used += w
        n += 1
    return n


def text_lines(text: str, width_chars: float) -> int:
    """Lines a wrapped text takes in a column ``width_chars`` wide (CJK counts two)."""
    room = max(1.0, width_chars - 1.5)
    return sum(max(1, math.ceil(display_width(part) / room)) for part in str(text).split("\n"))


def row_height(lines: int, font_pt: float = BODY_PT) -> float:
    return round(lines * LINE_PT * font_pt / BODY_PT + ROW_PAD_PT, 1)


# --------------------------------------------------------------------------------------------
# Reading back (tests, and anyone checking a workbook)
# --------------------------------------------------------------------------------------------


def sheet_column_widths(ws) -> list[float]:
    """The stored width of every used column of an openpyxl worksheet (adjacent columns of the
    same width share one ``<col min max>`` entry; an unset column has the default width)."""
    default = ws.sheet_format.defaultColWidth or 8.43
    widths = [float(default)] * (ws.max_column or 1)
    for dim in list(ws.column_dimensions.values()):
        if dim.min is None or dim.max is None or not dim.customWidth and not dim.width:
            continue
        for c in range(dim.min, min(dim.max, len(widths)) + 1):
            widths[c - 1] = 0.0 if dim.hidden else float(dim.width or default)
    return widths


def sheet_printed_scale(ws) -> float:
    """The scale (1.0 = 100 %) an openpyxl worksheet prints at: its fixed print scale, or with
    "fit to N pages wide" the scale that fits its columns into N page widths of its paper."""
    setup = ws.page_setup
    fit = bool(ws.sheet_properties.pageSetUpPr and ws.sheet_properties.pageSetUpPr.fitToPage)
    if not fit:
        return (int(setup.scale) if setup.scale else 100) / 100
    total = sum(column_points(w) for w in sheet_column_widths(ws))
    wide = int(setup.fitToWidth) if setup.fitToWidth not in (None, 0) else 1
    return min(1.0, sheet_printable_width_pt(ws) * wide / total) if total else 1.0


def sheet_printable_width_pt(ws) -> float:
    """The width inside the margins of an openpyxl worksheet's paper, in points."""
    setup = ws.page_setup
    paper = int(setup.paperSize or A4)
    mm = PAPER_MM.get(paper, PAPER_MM[A4])
    width_mm = mm[0] if setup.orientation == "landscape" else mm[1]
    margins = ws.page_margins
    return (width_mm / 25.4 - (margins.left or 0) - (margins.right or 0)) * 72


def smallest_printed_pt(ws) -> tuple[float, str]:
    """(smallest font size × print scale over the non-empty cells, the cell), for one sheet."""
    scale = sheet_printed_scale(ws)
    smallest, where = math.inf, ""
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None or cell.value == "":
                continue
            font = cell.font  # each access builds a new style proxy
            size = float(font.sz) if font is not None and font.sz else 11.0
            if size * scale < smallest:
                smallest, where = size * scale, cell.coordinate
    return smallest, where
