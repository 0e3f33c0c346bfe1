"""Pictures where people would rather look than read: the incomes around the lines (per 办事处,
the W6 villages marked), and the submissions and department returns against the notice's
deadlines (on time, late, not yet).

Each picture is made twice from one small table: as a native Excel chart (xlsxwriter, in
问题汇总.xlsx and 进度.xlsx, written through ``write_sheets_workbook(charts=…)``) and as an SVG
under ``reports/charts/`` that the download server serves and the UI shows from Markdown
metadata. SVG because it is text written here with no library (matplotlib would add seconds of
import to every run of the code location) and the browser draws its Chinese labels with its own
fonts. Counts only: no name, no ID, no single household's income.
"""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal
from pathlib import Path

import pandas as pd

CHARTS_DIR = "charts"
INCOME_SVG, PROGRESS_SVG = "收入分布.svg", "报送进度.svg"
INCOME_SHEET, PROGRESS_SHEET = "收入分布图", "进度图"
BIN = 100  # yuan per column
SPAN = 1000  # yuan shown below the lowest and above the highest line
W6_COLOR, OTHER_COLOR, LINE_COLOR = "#C0392B", "#5B8DB8", "#333333"

# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------


def income_bins(con, lines: tuple[Decimal, ...]) -> pd.DataFrame:
    """Households per 办事处 and 100-yuan band of 年人均纯收入 around the lines, split into the
    households of villages flagged W6 (算账式脱贫) and the others. Columns: 办事处, 下限, 标签,
    算账式脱贫疑似村, 其他村."""
    low, high = int(min(lines)) - SPAN, int(max(lines)) + SPAN
    frame = con.execute(f"""
        WITH w6 AS (SELECT DISTINCT village_code FROM problems WHERE rule = 'W6')
        SELECT h.subdistrict_name AS sub, CAST(floor(i.per_capita / {BIN}) * {BIN} AS INTEGER) AS lo,
               count(*) FILTER (WHERE h.village_code IN (SELECT village_code FROM w6)) AS w6,
               count(*) FILTER (WHERE h.village_code NOT IN (SELECT village_code FROM w6)) AS other
        FROM household_income i JOIN households h USING (hh_uid)
        WHERE i.per_capita >= {low} AND i.per_capita < {high}
        GROUP BY 1, 2 ORDER BY 1, 2""").df()
    subs = sorted(frame["sub"].dropna().unique())
    grid = pd.MultiIndex.from_product([subs, range(low, high, BIN)], names=["sub", "lo"])
    frame = frame.set_index(["sub", "lo"]).reindex(grid, fill_value=0).reset_index()
    marks = {int(x) for x in lines}
    return pd.DataFrame({
        "办事处": frame["sub"], "下限": frame["lo"].astype(int),
        "标签": [f"{lo}▲" if lo in marks else str(lo) for lo in frame["lo"]],
        "算账式脱贫疑似村": frame["w6"].astype(int), "其他村": frame["other"].astype(int)})


def deadline_status(villages: pd.DataFrame, departments: pd.DataFrame, survey_deadline: dt.date,
                    crosscheck_deadline: dt.date, tz) -> pd.DataFrame:
    """Against the notice's deadlines: per 办事处 its 涉农 villages that submitted on time (by
    the day of their newest file, office time), late, or not yet; then the departments against
    the cross-check deadline. Columns: 对象, 截止日期, 按时, 逾期, 未交."""
    def day(t):
        return dt.datetime.fromtimestamp(float(t), tz).date() if pd.notna(t) else None

    rows = []
    farming = villages[villages["farming"]]
    for sub, part in farming.groupby("subdistrict_name", sort=True):
        days = [day(t) for t in part["mtime"]]
        rows.append({"对象": f"{sub}（村报送）", "截止日期": survey_deadline.isoformat(),
                     "按时": sum(1 for d in days if d and d <= survey_deadline),
                     "逾期": sum(1 for d in days if d and d > survey_deadline),
                     "未交": sum(1 for d in days if d is None)})
    days = [day(t) if r else None for t, r in zip(departments["latest"], departments["returned"])]
    rows.append({"对象": "部门比对数据", "截止日期": crosscheck_deadline.isoformat(),
                 "按时": sum(1 for d in days if d and d <= crosscheck_deadline),
                 "逾期": sum(1 for d in days if d and d > crosscheck_deadline),
                 "未交": sum(1 for d in days if d is None)})
    return pd.DataFrame(rows, columns=["对象", "截止日期", "按时", "逾期", "未交"])


STATE_COLORS = {"按时": "#2E8B57", "逾期": "#E67E22", "未交": "#9E9E9E"}


# --------------------------------------------------------------------------------------------
# Native Excel charts (called by write_sheets_workbook with the open xlsxwriter workbook)
# --------------------------------------------------------------------------------------------


def excel_income_chart(frame: pd.DataFrame, lines: tuple[Decimal, ...]):
    """A sheet 收入分布图: the bands table and one stacked column chart per 办事处."""
    def write(wb) -> None:
        ws = wb.add_worksheet(INCOME_SHEET)
        bold = wb.add_format({"bold": True})
        ws.write_string(0, 0, "年人均纯收入分布（每100元一档，▲为标准线 " + "/".join(str(int(x)) for x in lines)
                        + " 元所在档；红色为疑似算账式脱贫（W6）村的户）", bold)
        header = ["办事处", "下限", "标签", "算账式脱贫疑似村", "其他村"]
        for c, h in enumerate(header):
            ws.write_string(1, c, h, bold)
        for r, row in enumerate(frame[header].itertuples(index=False), start=2):
            ws.write_string(r, 0, row[0])
            ws.write_number(r, 1, row[1])
            ws.write_string(r, 2, row[2])
            ws.write_number(r, 3, row[3])
            ws.write_number(r, 4, row[4])
        ws.set_column(0, 0, 14)
        ws.set_column(2, 4, 12)
        place = 0
        for sub, part in frame.groupby("办事处", sort=True):
            first, last = 2 + part.index.min(), 2 + part.index.max()
            chart = wb.add_chart({"type": "column", "subtype": "stacked"})
            for col, color in ((3, W6_COLOR), (4, OTHER_COLOR)):
                chart.add_series({
                    "name": [INCOME_SHEET, 1, col],
                    "categories": [INCOME_SHEET, first, 2, last, 2],
                    "values": [INCOME_SHEET, first, col, last, col],
                    "fill": {"color": color}, "gap": 20})
            chart.set_title({"name": f"{sub}：年人均纯收入分布（户）", "name_font": {"size": 11}})
            chart.set_x_axis({"name": "年人均纯收入（元，▲标准线）", "num_font": {"rotation": -45, "size": 8}})
            chart.set_y_axis({"name": "户数", "major_gridlines": {"visible": True}})
            chart.set_legend({"position": "bottom"})
            chart.set_size({"width": 760, "height": 300})
            ws.insert_chart(1 + place * 16, 6, chart)
            place += 1
    return write


def excel_progress_chart(frame: pd.DataFrame):
    """A sheet 进度图: villages per 办事处 and departments, on time / late / not yet, as a
    stacked bar chart beside its table."""
    def write(wb) -> None:
        ws = wb.add_worksheet(PROGRESS_SHEET)
        bold = wb.add_format({"bold": True})
        ws.write_string(0, 0, "对照通知截止日：各办事处涉农村报送、部门反馈（按时 / 逾期 / 未交）", bold)
        header = ["对象", "截止日期", "按时", "逾期", "未交"]
        for c, h in enumerate(header):
            ws.write_string(1, c, h, bold)
        for r, row in enumerate(frame[header].itertuples(index=False), start=2):
            ws.write_string(r, 0, row[0])
            ws.write_string(r, 1, row[1])
            for c in range(2, 5):
                ws.write_number(r, c, row[c])
        ws.set_column(0, 0, 22)
        ws.set_column(1, 4, 11)
        last = 1 + len(frame)
        chart = wb.add_chart({"type": "bar", "subtype": "stacked"})
        for col, state in ((2, "按时"), (3, "逾期"), (4, "未交")):
            chart.add_series({"name": [PROGRESS_SHEET, 1, col], "categories": [PROGRESS_SHEET, 2, 0, last, 0],
                              "values": [PROGRESS_SHEET, 2, col, last, col],
                              "fill": {"color": STATE_COLORS[state]}, "gap": 40,
                              "data_labels": {"value": True}})
        chart.set_title({"name": "报送与反馈：对照通知截止日", "name_font": {"size": 11}})
        chart.set_x_axis({"name": "个数", "major_gridlines": {"visible": True}})
        chart.set_y_axis({"reverse": True})
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": 760, "height": 60 + 45 * len(frame)})
        ws.insert_chart(1, 6, chart)
    return write


# --------------------------------------------------------------------------------------------
# SVG for the UI
# --------------------------------------------------------------------------------------------

FONT = "font-family='Noto Sans CJK SC, Microsoft YaHei, SimHei, sans-serif'"


def _text(x, y, s, size=12, anchor="start", color="#222", weight="normal") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' fill='{color}' "
            f"font-weight='{weight}' {FONT}>{html.escape(str(s))}</text>")


def income_svg(frame: pd.DataFrame, lines: tuple[Decimal, ...]) -> str:
    """Small multiples: one histogram per 办事处, the lines dashed, W6 villages' households red."""
    subs = sorted(frame["办事处"].unique())
    width, panel, left, top = 900, 170, 60, 50
    height = top + max(1, len(subs)) * panel + 30
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>",
           "<rect width='100%' height='100%' fill='white'/>",
           _text(left, 22, "年人均纯收入分布（每100元一档）：虚线为 " + "、".join(f"{int(x)}" for x in lines)
                 + " 元标准线；红色为疑似算账式脱贫（W6）村的户", 14, weight="bold")]
    if frame.empty:
        out.append(_text(left, top + 40, "（没有标准线附近的户）", 13))
    lows = sorted(frame["下限"].unique()) if len(frame) else []
    for p, sub in enumerate(subs):
        part = frame[frame["办事处"] == sub].set_index("下限")
        y0 = top + p * panel + panel - 35  # baseline
        h = panel - 60
        plot_w = width - left - 20
        bar_w = plot_w / max(1, len(lows))
        peak = max(1, int((part["算账式脱贫疑似村"] + part["其他村"]).max()))
        out.append(_text(left, y0 - h - 8, f"{sub}", 13, weight="bold"))
        out.append(f"<line x1='{left}' y1='{y0}' x2='{left + plot_w}' y2='{y0}' stroke='#999'/>")
        out.append(_text(left - 6, y0 - h + 4, peak, 10, "end", "#666"))
        out.append(_text(left - 6, y0 + 4, 0, 10, "end", "#666"))
        for i, lo in enumerate(lows):
            w6, other = int(part.at[lo, "算账式脱贫疑似村"]), int(part.at[lo, "其他村"])
            x = left + i * bar_w
            h_other, h_w6 = h * other / peak, h * w6 / peak
            if other:
                out.append(f"<rect x='{x + 1:.1f}' y='{y0 - h_other:.1f}' width='{bar_w - 2:.1f}' "
                           f"height='{h_other:.1f}' fill='{OTHER_COLOR}'/>")
            if w6:
                out.append(f"<rect x='{x + 1:.1f}' y='{y0 - h_other - h_w6:.1f}' width='{bar_w - 2:.1f}' "
                           f"height='{h_w6:.1f}' fill='{W6_COLOR}'/>")
            if lo % 500 == 0:
                out.append(_text(x, y0 + 14, lo, 10, "middle", "#444"))
        for line in lines:
            if lows:
                x = left + (int(line) - lows[0]) / BIN * bar_w
                out.append(f"<line x1='{x:.1f}' y1='{y0 - h - 4}' x2='{x:.1f}' y2='{y0}' stroke='{LINE_COLOR}' "
                           "stroke-dasharray='4,3' stroke-width='1.5'/>")
    out.append("</svg>")
    return "\n".join(out)


def progress_svg(frame: pd.DataFrame) -> str:
    """Stacked bars: per 办事处 its 涉农 villages on time / late / not yet, then the departments."""
    left, right, top, row_h = 190, 40, 60, 38
    width = 900
    height = top + row_h * max(1, len(frame)) + 50
    plot_w = width - left - right
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>",
           "<rect width='100%' height='100%' fill='white'/>",
           _text(20, 24, "报送与反馈：对照通知截止日（按时 / 逾期 / 未交）", 14, weight="bold")]
    x = left
    for state, color in STATE_COLORS.items():  # legend
        out.append(f"<rect x='{x}' y='36' width='12' height='12' fill='{color}'/>")
        out.append(_text(x + 16, 47, state, 12))
        x += 70
    for i, row in enumerate(frame.itertuples(index=False)):
        y = top + i * row_h
        total = max(1, row.按时 + row.逾期 + row.未交)
        out.append(_text(left - 8, y + 18, row.对象, 12, "end"))
        out.append(_text(left - 8, y + 31, f"截止 {row.截止日期}", 9, "end", "#666"))
        x = left
        for state, color in STATE_COLORS.items():
            n = getattr(row, state)
            w = plot_w * n / total
            if n:
                out.append(f"<rect x='{x:.1f}' y='{y + 4}' width='{w:.1f}' height='{row_h - 12}' fill='{color}'/>")
                out.append(_text(x + w / 2, y + 4 + (row_h - 12) / 2 + 4, n, 11, "middle", "white", "bold"))
            x += w
    out.append("</svg>")
    return "\n".join(out)


def write_svg(paths, name: str, svg: str) -> Path:
    """Write a picture under reports/charts/ (atomically: the UI may be showing the old one)."""
    path = paths.report_path(paths.reports / CHARTS_DIR / name)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(svg, encoding="utf-8")
    tmp.replace(path)
    return path
