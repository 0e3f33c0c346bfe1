"""The short summary ``huitoukan run`` prints: counts only, never a name or an ID."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline import tables as T
from pipeline.io.inputs import FILE_OTHER, FILE_READ, FILE_SUPERSEDED, FILE_UNREADABLE
from pipeline.rules.annex import ANNEXES

_COUNTS = {
    "survey files": f"SELECT count(*) FROM {T.SURVEY_FILES}",
    "  read": f"SELECT count(*) FROM {T.SURVEY_FILES} WHERE status = '{FILE_READ}'",
    "  superseded by a newer file": f"SELECT count(*) FROM {T.SURVEY_FILES} WHERE status = '{FILE_SUPERSEDED}'",
    "  unreadable": f"SELECT count(*) FROM {T.SURVEY_FILES} WHERE status = '{FILE_UNREADABLE}'",
    "  not a survey workbook": f"SELECT count(*) FROM {T.SURVEY_FILES} WHERE status = '{FILE_OTHER}'",
    "rows below the headers": f"SELECT coalesce(sum(rows_seen), 0) FROM {T.SHEET_ACCOUNTS} JOIN {T.SURVEY_FILES} f "
                              f"USING (file) WHERE f.status = '{FILE_READ}'",
    "  used": f"SELECT coalesce(sum(rows_used), 0) FROM {T.SHEET_ACCOUNTS} JOIN {T.SURVEY_FILES} f "
              f"USING (file) WHERE f.status = '{FILE_READ}'",
    "  set aside": f"SELECT count(*) FROM {T.ROWS_SET_ASIDE} JOIN {T.SURVEY_FILES} f USING (file) "
                   f"WHERE f.status = '{FILE_READ}'",
    "households": f"SELECT count(*) FROM {T.HOUSEHOLDS}",
    "persons": f"SELECT count(*) FROM {T.MEMBERS}",
    "problems (blocking open)": f"SELECT count(*) FILTER (WHERE blocking) FROM {T.OPEN_PROBLEMS}",
    "problems (all)": f"SELECT count(*) FROM {T.OPEN_PROBLEMS}",
    "households held back": f"SELECT count(*) FROM {T.CLASSIFICATION} WHERE blocked",
}


def run_summary(con: duckdb.DuckDBPyConnection, reports: Path, elapsed: float) -> str:
    """The summary of the warehouse ``con`` reads (the caller opens it: WarehouseResource.connect)."""
    lines = [f"回头看 run finished in {elapsed:.1f}s"]
    for label, sql in _COUNTS.items():
        lines.append(f"  {label:<32} {con.execute(sql).fetchone()[0]:>8}")
    rows = con.execute(f"SELECT rule, count(*) FROM {T.OPEN_PROBLEMS} GROUP BY 1 ORDER BY "
                       "left(rule, 1), CAST(substr(rule, 2) AS INTEGER)").fetchall()
    aside = con.execute(f"SELECT a.reason, count(*) FROM {T.ROWS_SET_ASIDE} a JOIN {T.SURVEY_FILES} f USING (file) "
                        f"WHERE f.status = '{FILE_READ}' GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
    lines.append("  rows set aside by reason: " + (", ".join(f"{r} {n}" for r, n in aside) or "none"))
    lines.append("  problems by rule: " + (", ".join(f"{r} {n}" for r, n in rows) or "none"))
    c = con.execute(f"""SELECT count(*) FILTER (WHERE annex2_category IS NOT NULL),
                              count(*) FILTER (WHERE annex3_category IS NOT NULL),
                              count(*) FILTER (WHERE in_annex4), count(*) FILTER (WHERE in_annex5),
                              count(*) FILTER (WHERE in_annex6) FROM {T.CLASSIFICATION}""").fetchone()
    for (_key, annex), n in zip(ANNEXES.items(), c):
        lines.append(f"  {annex.filename.split('_')[0]} households {n:>8}")
    lines.append(f"outputs: {reports.resolve()}/draft/")
    return "\n".join(lines)
