"""Make Great Expectations' Data Docs work on a machine with no network, and keep them clean.

GE's stock pages load Bootstrap, Font Awesome, jQuery, bootstrap-table and Vega from CDNs, and
its index page is an empty ``<table>`` that bootstrap-table fills from a JavaScript literal. Here
every page is rewritten after GE builds it:

- ``<link>``/``<script>``/``<img>`` pointing at the network are removed (the logo points at GE's
  own local copy), as are CSS ``url(http…)`` and links to GE's web site;
- the index tables are rendered as plain HTML from the literal bootstrap-table would have read;
- inline scripts (they all need jQuery) are dropped, and a small stylesheet shipped in this
  package (``pipeline/static/datadocs/offline.css``) gives the pages a readable layout;
- as a last safety net, any 15–18 character ID-like number left in a page is masked.
"""

from __future__ import annotations

import ast
import html
import os
import re
import shutil
from importlib import resources
from pathlib import Path

from pipeline.privacy import mask_text

STYLESHEET = "static/offline/offline.css"
TITLE = "回头看 数据质量报告"

_REMOTE = r"""(?:https?:)?//"""
_LINK_TAG = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']" + _REMOTE + r"[^>]*>", re.I)
_SCRIPT_REMOTE = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']" + _REMOTE + r"[^>]*>\s*</script>", re.I)
_SCRIPT_ANY = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)
_IMG_REMOTE = re.compile(r"(<img\b[^>]*\bsrc\s*=\s*)([\"'])" + _REMOTE + r"[^\"']*?([^/\"'?]+?)(?:\?[^\"']*)?\2", re.I)
_CSS_URL_REMOTE = re.compile(r"url\(\s*[\"']?" + _REMOTE + r"[^)]*\)", re.I)
_ANCHOR_REMOTE = re.compile(r"<a\b[^>]*\bhref\s*=\s*[\"']" + _REMOTE + r"[^>]*>(.*?)</a>", re.I | re.S)
_FOOTER = re.compile(r"<footer\b[^>]*>.*?</footer>", re.I | re.S)
_TITLE = re.compile(r"<title>.*?</title>", re.I | re.S)
_TABLE_CALL = re.compile(r"\$\(\s*'#(?P<id>[^']+)'\s*\)\.bootstrapTable\(")


def _balanced(text: str, start: int) -> int:
    """Index just past the bracket group opening at ``text[start]``, skipping quoted strings."""
    pairs = {"[": "]", "{": "}", "(": ")"}
    stack = [pairs[text[start]]]
    i = start + 1
    quote = None
    while i < len(text) and stack:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in pairs:
            stack.append(pairs[ch])
        elif ch == stack[-1]:
            stack.pop()
        i += 1
    return i


def _literal_after(text: str, label: str, start: int, end: int):
    """The Python-literal list following ``label:`` within text[start:end], or None."""
    match = re.compile(rf"\b{label}\s*:\s*\[").search(text, start, end)
    if not match:
        return None
    open_at = match.end() - 1
    try:
        return ast.literal_eval(text[open_at:_balanced(text, open_at)])
    except (ValueError, SyntaxError):
        return None


def _static_table(columns: list[dict], rows: list[dict]) -> str:
    if rows and "_run_time_sort" in rows[0]:
        rows = sorted(rows, key=lambda r: r.get("_run_time_sort") or 0, reverse=True)
    head = "".join(f"<th>{html.escape(str(c.get('title', c.get('field', ''))))}</th>" for c in columns)
    body = []
    for row in rows:
        link = row.get("_table_row_link_path")
        cells = []
        linked = False
        for c in columns:
            value = str(row.get(c.get("field"), "") or "")
            if link and not linked and "<a " not in value and value.strip() and "<i " not in value:
                value = f'<a href="{html.escape(link, quote=True)}">{value}</a>'
                linked = True
            cells.append(f"<td>{value}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        body.append(f'<tr><td colspan="{max(1, len(columns))}">（无）</td></tr>')
    return (f'<table class="ge-static-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _render_index_tables(text: str) -> str:
    """Replace each empty bootstrap-table ``<table id=…>`` by the rows its script would have drawn."""
    tables = []
    for match in _TABLE_CALL.finditer(text):
        call_end = _balanced(text, match.end() - 1)
        columns = _literal_after(text, "columns", match.end(), call_end)
        rows = _literal_after(text, "data", match.end(), call_end)
        if columns is not None and rows is not None:
            tables.append((match.group("id"), columns, rows))
    for table_id, columns, rows in tables:
        empty = re.compile(r"<table\b[^>]*\bid\s*=\s*[\"']?" + re.escape(table_id) + r"[\"']?[^>]*>\s*</table>", re.S)
        text = empty.sub(lambda _m, c=columns, r=rows: _static_table(c, r), text, count=1)
    return text


def _drop_dark_mode(text: str) -> str:
    """GE's dark-mode overrides assume the Bootstrap theme that is no longer loaded."""
    while (start := text.find("@media (prefers-color-scheme: dark)")) >= 0:
        brace = text.find("{", start)
        if brace < 0:
            break
        text = text[:start] + text[_balanced(text, brace):]
    return text


def offline_html(text: str, depth: int, banner: str = "") -> str:
    """One Data Docs page rewritten to need nothing from the network (``depth``: folders below the
    site root, for relative links to the local stylesheet and logo)."""
    prefix = "../" * depth
    text = _render_index_tables(text)
    text = _LINK_TAG.sub("", text)
    text = _SCRIPT_REMOTE.sub("", text)
    text = _SCRIPT_ANY.sub("", text)
    text = _IMG_REMOTE.sub(lambda m: f"{m.group(1)}{m.group(2)}{prefix}static/images/{m.group(3)}{m.group(2)}", text)
    text = _drop_dark_mode(text)
    text = _CSS_URL_REMOTE.sub("none", text)
    text = _FOOTER.sub("", text)
    text = _ANCHOR_REMOTE.sub(lambda m: m.group(1), text)
    text = _TITLE.sub(f"<title>{TITLE}</title>", text, count=1)
    text = re.sub(r"</head>", f'<link rel="stylesheet" href="{prefix}{STYLESHEET}">\n</head>', text, count=1, flags=re.I)
    if banner:
        text = re.sub(r"(<body\b[^>]*>)", lambda m: m.group(1) + banner, text, count=1, flags=re.I)
    return mask_text(text)


def _banner(generated: str) -> str:
    return ('<div class="huitoukan-banner"><h1>回头看 数据质量报告</h1>'
            f"<p>这是 Great Expectations 对清洗后的家庭基本情况、家庭成员情况和各部门比对数据的自动检查结果"
            f"（{html.escape(generated)}）。</p>"
            "<p><b>怎么看：</b>下表每一行是一次检查（一个数据表一次运行），点开后逐条列出检查项。每条检查项写着"
            "【检查项 名称】和中文说明，括号里是 rules.md 的规则代码；同名的检查在 Dagster 界面的资产检查"
            "（Asset checks）里也能看到。“0% unexpected”表示全部通过；不通过的检查项给出不符合的行数和比例，"
            "行以“村代码|文件|Excel行号”标识，不含姓名和身份证号。要逐条修改的问题见各村问题清单"
            "（reports/problems/）。</p>"
            "<p>(The data-quality report: one validation per checked table per run; each expectation "
            "shows its asset check's name and rules.md code.)</p></div>")


def make_offline(site: Path, generated: str = "") -> list[Path]:
    """Rewrite every page under ``site`` and install the local stylesheet; returns the pages."""
    css = site / STYLESHEET
    css.parent.mkdir(parents=True, exist_ok=True)
    source = resources.files("pipeline").joinpath("static", "datadocs", "offline.css")
    css.write_bytes(source.read_bytes())
    for sheet in site.rglob("*.css"):  # GE's own stylesheet points its dark-mode logo at a CDN
        text = sheet.read_text(encoding="utf-8")
        if _CSS_URL_REMOTE.search(text):
            sheet.write_text(_CSS_URL_REMOTE.sub("none", text), encoding="utf-8")
    pages = sorted(site.rglob("*.html"))
    for page in pages:
        depth = len(page.relative_to(site).parts) - 1
        text = page.read_text(encoding="utf-8")
        banner = _banner(generated) if depth == 0 else ""
        page.write_text(offline_html(text, depth, banner), encoding="utf-8")
    return pages


def clear_site(site: Path) -> None:
    """Remove the pages of earlier runs (validations, suites, index), keeping nothing stale."""
    for name in ("validations", "expectations", "index.html"):
        target = site / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            os.remove(target)
