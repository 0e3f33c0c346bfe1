"""Running the rules' SQL with the settings as literals (settings are typed values, never text
from input files, so formatting them into SQL is safe)."""

from __future__ import annotations

import duckdb

from pipeline.settings import Settings


def literals(settings: Settings) -> dict[str, str]:
    return {
        "ref_date": f"DATE '{settings.reference_date.isoformat()}'",
        "income_year": str(int(settings.income_year)),
        "identification_line": str(settings.identification_line),
        "monitoring_line": str(settings.monitoring_line),
        "poverty_line": str(settings.poverty_line),
        "recheck_tolerance": str(settings.recheck_tolerance),
        "bunching_band": str(int(settings.bunching_band)),
        "bunching_ratio": str(int(settings.bunching_ratio)),
        "bunching_min_above": str(int(settings.bunching_min_above)),
    }


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, settings: Settings) -> None:
    """Execute a script of ';'-separated statements with the settings filled in."""
    con.execute(sql.format(**literals(settings)))


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    # fetchall, not fetchone: DuckDB 2 refuses the connection's next register()/execute() while
    # a result is left unfinished
    # this connection's own database (and its registered frames): the process's DuckDB may have
    # another warehouse attached at the same time (pipeline.resources.warehouse)
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
        "AND table_catalog IN (current_database(), 'temp')", [name]).fetchall()[0][0])
