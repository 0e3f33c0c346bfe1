"""The warehouse's store of read workbooks: each file version is read and cleaned once.

A file is known by (path, mtime, size). On a run only new or changed files are read; the rows of
files that are gone or changed are replaced in one transaction. The staging tables
(``stg_households``, ``stg_members``, ``cell_problems``) then take the latest readable file of each
village. When the reading code changes, ``READER_VERSION`` changes and every file is read again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.io import inputs
from pipeline.io.inputs import FILE_COLUMNS, FILE_READ, FileResult, concat_accounts, files_frame, mark_latest
from pipeline.io.survey import SET_ASIDE_COLUMNS, SHEET_ACCOUNT_COLUMNS
from pipeline.rules.clean import empty_frame, typed_frame
from pipeline.rules.problems import PROBLEM_COLUMNS
from pipeline.schema import HOUSEHOLD_COLUMNS, MEMBER_COLUMNS
from pipeline.tables import (
    CACHE_FILES,
    CACHE_HOUSEHOLDS,
    CACHE_MEMBERS,
    CACHE_PROBLEMS,
    ROWS_SET_ASIDE,
    SHEET_ACCOUNTS,
)
from pipeline.tables import CACHE_ROWS_SET_ASIDE as CACHE_SET_ASIDE
from pipeline.tables import CACHE_SHEET_ACCOUNTS as CACHE_SHEETS


def _reader_version() -> str:
    from pipeline import schema
    from pipeline.io import survey
    from pipeline.rules import clean, ids, problems, values, workbook

    digest = hashlib.sha256()
    for module in (schema, survey, workbook, clean, ids, problems, values):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


READER_VERSION = _reader_version()


@dataclass
class StoreUpdate:
    files: pd.DataFrame  # survey_files: every file seen with its status
    read: int  # files read this run
    reused: int  # files whose earlier reading was reused
    removed: int  # files gone from disk since the last run


def _known(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    try:
        known = con.execute(f"SELECT * FROM {CACHE_FILES}").df()
    except duckdb.CatalogException:
        return pd.DataFrame(columns=[*FILE_COLUMNS, "reader_version"])
    return known


def _create(con: duckdb.DuckDBPyConnection) -> None:
    frames = {
        CACHE_HOUSEHOLDS: empty_frame(HOUSEHOLD_COLUMNS),
        CACHE_MEMBERS: empty_frame(MEMBER_COLUMNS),
        CACHE_PROBLEMS: _problems_frame([]),
        CACHE_SHEETS: concat_accounts([], SHEET_ACCOUNT_COLUMNS),
        CACHE_SET_ASIDE: concat_accounts([], SET_ASIDE_COLUMNS),
    }
    for name, frame in frames.items():
        con.register("_empty", frame)
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} AS SELECT * FROM _empty LIMIT 0")
        con.unregister("_empty")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {CACHE_FILES} (file VARCHAR PRIMARY KEY, village_code VARCHAR,
                    mtime DOUBLE, size BIGINT, status VARCHAR, reason VARCHAR, households BIGINT, members BIGINT,
                    reader_version VARCHAR)""")


def _problems_frame(results: list[FileResult]) -> pd.DataFrame:
    frame = pd.DataFrame([p.record() for r in results for p in r.problems], columns=list(PROBLEM_COLUMNS))
    frame = frame.astype({c: "string" for c in PROBLEM_COLUMNS if c != "row"})
    frame["row"] = pd.array(frame["row"].tolist(), dtype="Int64")
    return frame


def update_store(con: duckdb.DuckDBPyConnection, root: Path, settle: bool = True,
                 workers: int | None = None) -> StoreUpdate:
    ready, unsettled = inputs.scan_survey_files(root, settle)
    known = _known(con)
    known_versions = {
        row.file: (row.mtime, row.size) for row in known.itertuples() if row.reader_version == READER_VERSION
    }
    to_read, reuse = [], []
    for path in ready:
        stat = path.stat()
        file = inputs.rel(root, path)
        if known_versions.get(file) == (stat.st_mtime, stat.st_size):
            reuse.append(file)
        else:
            to_read.append(path)
    results = inputs.read_survey_files(root, to_read, workers)
    on_disk = {inputs.rel(root, p) for p in ready}
    stale = [f for f in known["file"] if f not in set(reuse)]  # changed, gone, or read by older code
    read_ok = [r for r in results if r.record["status"] == FILE_READ]

    con.execute("BEGIN")
    try:
        _create(con)
        if stale or results:
            doomed = pd.DataFrame({"file": sorted(set(stale) | {r.record["file"] for r in results})})
            con.register("_doomed", doomed)
            for table in (CACHE_FILES, CACHE_HOUSEHOLDS, CACHE_MEMBERS, CACHE_PROBLEMS, CACHE_SHEETS, CACHE_SET_ASIDE):
                con.execute(f"DELETE FROM {table} WHERE file IN (SELECT file FROM _doomed)")
            con.unregister("_doomed")
        if read_ok:
            for table, frames, columns in (
                (CACHE_HOUSEHOLDS, [r.households for r in read_ok], HOUSEHOLD_COLUMNS),
                (CACHE_MEMBERS, [r.members for r in read_ok], MEMBER_COLUMNS),
            ):
                con.register("_new", typed_frame(pd.concat(frames, ignore_index=True), columns))
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _new")
                con.unregister("_new")
            con.register("_new", _problems_frame(read_ok))
            con.execute(f"INSERT INTO {CACHE_PROBLEMS} BY NAME SELECT * FROM _new")
            con.unregister("_new")
            for table, frame in (
                (CACHE_SHEETS, concat_accounts([r.sheets for r in read_ok], SHEET_ACCOUNT_COLUMNS)),
                (CACHE_SET_ASIDE, concat_accounts([r.set_aside for r in read_ok], SET_ASIDE_COLUMNS)),
            ):
                con.register("_new", frame)
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _new")
                con.unregister("_new")
        if results:
            records = pd.DataFrame([r.record for r in results], columns=list(FILE_COLUMNS))
            records["reader_version"] = READER_VERSION
            con.register("_new", records)
            con.execute(f"INSERT INTO {CACHE_FILES} BY NAME SELECT * FROM _new")
            con.unregister("_new")
        cached = con.execute(f"SELECT {', '.join(FILE_COLUMNS)} FROM {CACHE_FILES}").df()
        records = [r for r in cached.to_dict("records") if r["file"] in on_disk] + unsettled
        mark_latest(records)
        files = files_frame(records)
        con.register("_files", files)
        con.execute("CREATE OR REPLACE TABLE survey_files AS SELECT * FROM _files")
        con.unregister("_files")
        latest = f"(SELECT file FROM survey_files WHERE status = '{FILE_READ}')"
        con.execute(f"CREATE OR REPLACE TABLE stg_households AS SELECT * FROM {CACHE_HOUSEHOLDS} WHERE file IN {latest}")
        con.execute(f"CREATE OR REPLACE TABLE stg_members AS SELECT * FROM {CACHE_MEMBERS} WHERE file IN {latest}")
        con.execute(f"CREATE OR REPLACE TABLE cell_problems AS SELECT * FROM {CACHE_PROBLEMS} WHERE file IN {latest}")
        listed = "(SELECT file FROM survey_files)"
        con.execute(f"CREATE OR REPLACE TABLE {SHEET_ACCOUNTS} AS SELECT * FROM {CACHE_SHEETS} WHERE file IN {listed}"
                    " ORDER BY file")
        con.execute(f"CREATE OR REPLACE TABLE {ROWS_SET_ASIDE} AS SELECT * FROM {CACHE_SET_ASIDE} "
                    f"WHERE file IN {listed} ORDER BY file, sheet_name, row")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return StoreUpdate(files=files, read=len(results), reused=len(reuse), removed=len(set(stale) - on_disk))
