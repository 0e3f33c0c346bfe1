"""A faster XlsxWriter for the sample generator's bulk rows, byte-identical to plain XlsxWriter.

The generator writes hundreds of thousands of plain cells (strings, numbers, dates) per run.
XlsxWriter spends most of its time per cell: the A1-notation wrapper, the dimension check and a
namedtuple per ``write_*`` call, then an attribute list, escaping and a ``write`` per cell when the
sheet XML is assembled. :class:`Workbook` here is an ordinary ``xlsxwriter.Workbook`` whose sheets
additionally have :meth:`Worksheet.put_row` (a whole row of plain values at once) and assemble
their ``<sheetData>`` and the shared-string table with one join per sheet instead of one call per
cell. Everything else (styles, merges, panes, columns, document properties, zip packaging) is
XlsxWriter's own, and the bytes written are the same as writing every cell with ``write_string``/
``write_number``/``write_datetime`` in the same order (tests compare whole generated districts).

Only what the generator uses takes the fast path; a sheet with row options or comments, or a cell
type other than string/number/date/blank, falls back to XlsxWriter's own code.
"""

from __future__ import annotations

import datetime as dt
import re

import xlsxwriter
from xlsxwriter.packager import Packager as _Packager
from xlsxwriter.sharedstrings import SharedStrings as _SharedStrings
from xlsxwriter.utility import _preserve_whitespace, xl_col_to_name
from xlsxwriter.worksheet import Worksheet as _Worksheet

# A shared string is written as "<si><t>s</t></si>" unless it needs an escape (XML or _xHHHH_),
# a preserve-whitespace attribute or is a rich string: those go through XlsxWriter's own rules.
_SPECIAL = re.compile("[\x00-\x08\x0b-\x1f&<>\ufffe\uffff]|_x[0-9a-fA-F]{4}_|^\\s|\\s$")
_MAX_FAST_STRING = 16383  # longer strings may need XlsxWriter's 32k truncation check
_INF = (float("inf"), float("-inf"))
_COLS: list[str] = [xl_col_to_name(c) for c in range(256)]


class SharedStrings(_SharedStrings):
    def _write_sst_strings(self) -> None:
        special = _SPECIAL.search
        out = []
        append = out.append
        for string in self.string_table.string_array:
            if special(string) is None:
                append(f"<si><t>{string}</t></si>")
                continue
            # XlsxWriter's _write_si(), as a string
            string = self._escape_control_characters(string)
            attr = ' xml:space="preserve"' if _preserve_whitespace(string) else ""
            if string.startswith("<r>") and string.endswith("</r>"):
                append(f"<si>{string}</si>")
            else:
                append(f"<si><t{attr}>{self._escape_data(string)}</t></si>")
        self.fh.write("".join(out))


class Packager(_Packager):
    def _write_shared_strings_file(self) -> None:
        sst = SharedStrings()
        sst.string_table = self.workbook.str_table
        if not self.workbook.str_table.count:
            return
        sst._set_xml_writer(self._filename("xl/sharedStrings.xml"))
        sst._assemble_xml_file()


class Worksheet(_Worksheet):
    """A worksheet with :meth:`put_row` and a one-join ``<sheetData>``."""

    def put_row(self, row: int, values, str_formats=None, date_format=None) -> None:
        """Write ``values[c]`` into column ``c`` of ``row`` as write_string / write_number /
        write_datetime would, one cell after the other from the left (None: nothing written).

        A string in column ``c`` gets the format ``str_formats[c]`` (None: no format), a number
        none, a date (``datetime.date``, written as midnight of its day) ``date_format``.
        """
        if row < 0 or row >= self.xls_rowmax or self.constant_memory:
            raise ValueError(f"put_row: row {row} not supported")
        cells = self.table[row]
        st = self.str_table
        stab = st.string_table
        n_str = 0
        lo = hi = -1
        # a cell here is (format, value, is_string): value is the shared-string index or the number
        for c, val in enumerate(values):
            if val is None:
                continue
            if lo < 0:
                lo = c
            hi = c
            cls = val.__class__
            if cls is str:
                if len(val) > _MAX_FAST_STRING:
                    self._write_string(row, c, val, str_formats[c] if str_formats is not None else None)
                    continue
                idx = stab.get(val)
                if idx is None:
                    idx = st.unique_count
                    stab[val] = idx
                    st.unique_count = idx + 1
                n_str += 1
                cells[c] = (str_formats[c] if str_formats is not None else None, idx, True)
            elif cls is int or (cls is float and val == val and val not in _INF):
                cells[c] = (None, val, False)
            elif isinstance(val, dt.date):
                number = self._convert_date_time(dt.datetime(val.year, val.month, val.day))
                cells[c] = (date_format, number, False)
            elif isinstance(val, str):
                self._write_string(row, c, val, str_formats[c] if str_formats is not None else None)
            else:  # bool, nan, Decimal, ...: XlsxWriter's own handling
                self._write_number(row, c, val)
        st.count += n_str
        if lo < 0:
            return
        if hi >= self.xls_colmax:
            raise ValueError("put_row: too many columns")
        if self.dim_rowmin is None or row < self.dim_rowmin:
            self.dim_rowmin = row
        if self.dim_rowmax is None or row > self.dim_rowmax:
            self.dim_rowmax = row
        if self.dim_colmin is None or lo < self.dim_colmin:
            self.dim_colmin = lo
        if self.dim_colmax is None or hi > self.dim_colmax:
            self.dim_colmax = hi

    def _write_rows(self) -> None:
        if (self.row_info or self.comments or self.excel_version == 2010
                or self.default_row_height != self.original_row_height):
            self._fast_to_slow()
            return super()._write_rows()
        table = self.table
        rows = sorted(r for r, cells in table.items() if cells)
        # the "spans" of each block of 16 rows: first and last column used in the block
        spans: dict[int, list] = {}
        for r in rows:
            cells = table[r]
            lo, hi = min(cells), max(cells)
            s = spans.get(r >> 4)
            if s is None:
                spans[r >> 4] = [lo, hi]
            else:
                if lo < s[0]:
                    s[0] = lo
                if hi > s[1]:
                    s[1] = hi
        span_text = {b: f"{lo + 1}:{hi + 1}" for b, (lo, hi) in spans.items()}
        # ' s="n"' of a cell by its format (None: the column's format, if any)
        col_attr = {c: info.column_format for c, info in self.col_info.items()
                    if info is not None and info.column_format is not None}
        xf: dict[int, str] = {}

        def s_attr(fmt, c) -> str:
            if not fmt:
                fmt = col_attr.get(c)
                if fmt is None:
                    return ""
            key = id(fmt)
            text = xf.get(key)
            if text is None:
                text = xf[key] = f' s="{fmt._get_xf_index()}"'
            return text

        plain = not col_attr
        out: list[str] = []
        append = out.append
        fh = self.fh
        cols = _COLS
        for r in rows:
            r1 = r + 1
            cells = table[r]
            append(f'<row r="{r1}" spans="{span_text[r >> 4]}">')
            for c in sorted(cells):
                cell = cells[c]
                name = cols[c] if c < 256 else xl_col_to_name(c)
                if cell.__class__ is tuple:
                    fmt, val, is_str = cell
                    attr = "" if (fmt is None and plain) else s_attr(fmt, c)
                    if is_str:
                        append(f'<c r="{name}{r1}"{attr} t="s"><v>{val}</v></c>')
                    else:
                        append(f'<c r="{name}{r1}"{attr}><v>{val:.16G}</v></c>')
                    continue
                kind = cell.__class__.__name__
                if kind in ("String", "RichString"):
                    append(f'<c r="{name}{r1}"{s_attr(cell.format, c)} t="s"><v>{cell.string}</v></c>')
                elif kind in ("Number", "Datetime"):
                    append(f'<c r="{name}{r1}"{s_attr(cell.format, c)}><v>{cell.number:.16G}</v></c>')
                elif kind == "Blank":
                    append(f'<c r="{name}{r1}"{s_attr(cell.format, c)}/>')
                else:  # anything else: XlsxWriter's own writer, in place
                    fh.write("".join(out))
                    out.clear()
                    self._write_cell(r, c, cell)
            append("</row>")
            if len(out) > 100000:  # a big sheet goes out in pieces, not as one list of cells
                fh.write("".join(out))
                out.clear()
        fh.write("".join(out))

    def _fast_to_slow(self) -> None:
        """Turn put_row cells back into XlsxWriter's cell tuples (for the fallback)."""
        from xlsxwriter.worksheet import CellNumberTuple, CellStringTuple

        for cells in self.table.values():
            for c, cell in list(cells.items()):
                if cell.__class__ is tuple:
                    fmt, val, is_str = cell
                    cells[c] = CellStringTuple(val, fmt) if is_str else CellNumberTuple(val, fmt)


class Workbook(xlsxwriter.Workbook):
    worksheet_class = Worksheet

    def _get_packager(self):
        return Packager()
