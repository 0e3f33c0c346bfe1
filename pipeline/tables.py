"""The warehouse's tables: the one list of their names, each with the stage that writes it.

Python code names a table through these constants. The SQL of ``pipeline/rules/`` spells the
names out (it is read as SQL); ``tests/test_architecture.py`` checks that every table the
pipeline creates is listed here and every name listed here is created.
"""

from __future__ import annotations

# ingest
VILLAGES = "villages"
REGISTRY = "registry"
EXCEPTIONS = "exceptions"
SURVEY_FILES = "survey_files"  # every survey file seen, with its status (read, superseded, unreadable)
STG_HOUSEHOLDS = "stg_households"  # rows of the newest readable workbook of each village, as read
STG_MEMBERS = "stg_members"
CELL_PROBLEMS = "cell_problems"  # problems found while reading single cells
CACHE_FILES = "cache_survey_files"  # the reader's cache: a file read before is not read again
CACHE_HOUSEHOLDS = "cache_households"
CACHE_MEMBERS = "cache_members"
CACHE_PROBLEMS = "cache_problems"
# the row account (issue #11): per sheet of every read file, rows seen = used + set aside by reason
SHEET_ACCOUNTS = "survey_sheet_accounts"  # one row per sheet of each read file (latest or superseded)
ROWS_SET_ASIDE = "survey_rows_set_aside"  # one row per row set aside, with its reason
CACHE_SHEET_ACCOUNTS = "cache_sheet_accounts"
CACHE_ROWS_SET_ASIDE = "cache_rows_set_aside"
# intake (one village, as soon as its file lands)
SURVEY_FILE_INDEX = "survey_file_index"
VILLAGE_SUBMISSIONS = "village_submissions"
VILLAGE_SUBMISSION_PROBLEMS = "village_submission_problems"
# clean, income, status
HOUSEHOLDS = "households"
MEMBERS = "members"
HOUSEHOLD_STATUS = "household_status"
HOUSEHOLD_INCOME = "household_income"
HOUSEHOLD_GUARANTEES = "household_guarantees"
# crosscheck
DEPARTMENT_READS = "department_reads"
DEPARTMENT_RETURNS = "department_returns"
DEPARTMENT_PREFIX = "dept_"  # one table per department folder: dept_<key>
HOUSEHOLD_FINDINGS = "household_findings"
# quality and classification
PROBLEMS = "problems"
OPEN_PROBLEMS = "open_problems"
CLASSIFICATION = "classification"
# when each asset the drafts are made from was last built (the sign-off gate reads it)
ASSET_BUILDS = "asset_builds"

ALL_TABLES = frozenset({
    VILLAGES, REGISTRY, EXCEPTIONS, SURVEY_FILES, STG_HOUSEHOLDS, STG_MEMBERS, CELL_PROBLEMS, CACHE_FILES,
    CACHE_HOUSEHOLDS, CACHE_MEMBERS, CACHE_PROBLEMS, SURVEY_FILE_INDEX, VILLAGE_SUBMISSIONS,
    VILLAGE_SUBMISSION_PROBLEMS, HOUSEHOLDS, MEMBERS, HOUSEHOLD_STATUS, HOUSEHOLD_INCOME, HOUSEHOLD_GUARANTEES,
    DEPARTMENT_READS, DEPARTMENT_RETURNS, HOUSEHOLD_FINDINGS, PROBLEMS, OPEN_PROBLEMS, CLASSIFICATION,
    ASSET_BUILDS, SHEET_ACCOUNTS, ROWS_SET_ASIDE, CACHE_SHEET_ACCOUNTS, CACHE_ROWS_SET_ASIDE,
})


def dept_table(key: str) -> str:
    return f"{DEPARTMENT_PREFIX}{key}"
