"""The short summary ``huitoukan run`` prints: counts only, never a name or an ID."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.rules.annex import ANNEXES

_COUNTS = {
    "survey files": "SELECT count(*) FROM survey_files",
    "  read": "SELECT count(*) FROM survey_files WHERE status = '已读取'",
    "  superseded by a newer file": "SELECT count(*) FROM survey_files WHERE status = '已被新版本替代'",
    "  unreadable": "SELECT count(*) FROM survey_files WHERE status = '无法读取'",
    "households": "SELECT count(*) FROM households",
    "persons": "SELECT count(*) FROM members",
    "problems (blocking open)": "SELECT count(*) FILTER (WHERE blocking) FROM open_problems",
    "problems (all)": "SELECT count(*) FROM open_problems",
    "households held back": "SELECT count(*) FROM classification WHERE blocked",
}


def run_summary(warehouse: Path, reports: Path, elapsed: float) -> str:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        lines = [f"回头看 run finished in {elapsed:.1f}s"]
        for label, sql in _COUNTS.items():
            lines.append(f"  {label:<32} {con.execute(sql).fetchone()[0]:>8}")
        rows = con.execute("SELECT rule, count(*) FROM open_problems GROUP BY 1 ORDER BY "
                           "left(rule, 1), CAST(substr(rule, 2) AS INTEGER)").fetchall()
        lines.append("  problems by rule: " + (", ".join(f"{r} {n}" for r, n in rows) or "none"))
        c = con.execute("""SELECT count(*) FILTER (WHERE annex2_category IS NOT NULL),
                                  count(*) FILTER (WHERE annex3_category IS NOT NULL),
                                  count(*) FILTER (WHERE in_annex4), count(*) FILTER (WHERE in_annex5),
                                  count(*) FILTER (WHERE in_annex6) FROM classification""").fetchone()
        for (_key, annex), n in zip(ANNEXES.items(), c):
            lines.append(f"  {annex.filename.split('_')[0]} households {n:>8}")
    finally:
        con.close()
    lines.append(f"outputs: {reports.resolve()}/draft/")
    return "\n".join(lines)
