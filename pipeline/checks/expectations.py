"""Great Expectations suites on the cleaned households and members (and the ID column of each
department extract), built in code.

Each suite validates a pandas frame read from the warehouse (GE's SQLAlchemy path does not work
on DuckDB). The frames hold no name and no ID: rows are named by their surrogate key (``hh_uid``,
``member_uid`` = 村代码|file|Excel row) and IDs are represented by what can be checked without
them — their repair status, their *shape* (every digit written as 9), whether the check character
is right, and a token that is unique exactly when the ID is (a keyed hash with a key drawn afresh
every run, so it identifies nobody). GE therefore never puts a personal value into its results,
its Data Docs or the Dagster metadata built from them.

Every expectation is also a Dagster asset check (``pipeline/checks/asset_checks.py``) on the
asset it guards, named by ``Expect.check``. They are warnings: a failing expectation is a data
problem, and data problems are results (the households concerned are held back one by one by
``rules.classification``), never a reason to stop the district's tables.

Great Expectations is imported lazily, inside :func:`validate`: importing it costs seconds, and
``import pipeline.definitions`` must stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.rules.ids import CHECK_CHARS, WEIGHTS
from pipeline.rules.problems import MAX_AGE, SCHOOL_AGE_RANGES
from pipeline.rules.quality import PHONE_OK_SQL
from pipeline.schema import (
    AMOUNT_KEYS,
    DEPARTMENTS,
    DISABILITY_GRADES,
    DISABILITY_TYPES,
    EDUCATION_LEVELS,
    ETHNICITIES,
    EXIT_STATUSES,
    HEAD,
    HOUSEHOLD_COLUMNS,
    HOUSEHOLD_TYPES,
    HOUSING_GRADES,
    INCOME_ITEMS,
    LABOR_SKILLS,
    NO,
    POVERTY_CAUSES,
    RELATIONS,
    REVIEW_RESULTS,
    SCHOOL_STATUSES,
    SEXES,
    TRANSFER_SUB_ITEMS,
    WORK_STATUSES,
    YES,
)

VALID_ID_STATUSES = ("ok", "repaired")
ID_SHAPE = r"^9{17}[9X]$"
SAMPLE_SIZE = 20


@dataclass(frozen=True)
class Expect:
    """One expectation: the Dagster check name, the GE expectation class and its arguments, what it
    means (shown in the Dagster UI and in the Data Docs) and the rules.md codes it mirrors."""

    check: str
    kind: str  # a class of great_expectations.expectations, e.g. "ExpectColumnValuesToBeInSet"
    kwargs: dict
    description: str
    rules: str = ""

    @property
    def text(self) -> str:
        return f"{self.description}（{self.rules}）" if self.rules else self.description


@dataclass(frozen=True)
class Suite:
    name: str  # the GE suite, data asset and the warehouse table it reads
    asset: str  # the Dagster asset the checks are attached to
    key: str  # surrogate key naming a row in results
    sql: str  # the frame: key + checkable columns, no name, no ID
    id_column: str | None  # the ID behind the shape/check/token columns (read, never validated)
    expectations: tuple[Expect, ...] = field(default=())
    sample_sql: str = ""  # place of a row for masked samples: key, 村代码, file, row, name, ID


def _in_set(check, column, values, description, rules="", **kw) -> Expect:
    return Expect(check, "ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values), **kw},
                  description, rules)


def _not_null(check, column, description, rules="") -> Expect:
    return Expect(check, "ExpectColumnValuesToNotBeNull", {"column": column}, description, rules)


def _between(check, column, description, rules="", **kw) -> Expect:
    return Expect(check, "ExpectColumnValuesToBeBetween", {"column": column, **kw}, description, rules)


def _true(check, column, description, rules="") -> Expect:
    return _in_set(check, column, [True], description, rules)


def _id_expectations(prefix: str, label: str, required_rules: str) -> tuple[Expect, ...]:
    return (
        _in_set(f"{prefix}_valid", f"{prefix}_status", VALID_ID_STATUSES,
                f"{label}填写且有效（可自动修复的格式问题已修复；无效、被Excel损坏或未填写的不通过）", required_rules),
        Expect(f"{prefix}_form", "ExpectColumnValuesToMatchRegex", {"column": f"{prefix}_form", "regex": ID_SHAPE},
               f"清洗后的{label}为18位：17位数字加数字或X", "B1"),
        _true(f"{prefix}_check_character", f"{prefix}_check_ok",
              f"清洗后的{label}校验位正确（GB 11643-1999）", "B1"),
        Expect(f"{prefix}_unique", "ExpectColumnValuesToBeUnique", {"column": f"{prefix}_token"},
               f"同一{label}只出现一次", "B3"),
    )


_AMOUNT_LABELS = {c.key: c.label for c in HOUSEHOLD_COLUMNS if c.kind == "amount"}
_YESNO_LABELS = {c.key: c.label for c in HOUSEHOLD_COLUMNS if c.kind == "yesno"}

HOUSEHOLDS = Suite(
    name="households",
    asset="households",
    key="hh_uid",
    id_column="head_id",
    sql=f"""
        WITH m AS (SELECT hh_key, count(*) AS n_members, count(*) FILTER (WHERE relation = '{HEAD}') AS n_heads,
                          bool_or(relation = '{HEAD}' AND person_id IS NOT NULL
                                  AND person_id = substr(hh_key, length(village_code) + 2)) AS head_listed
                   FROM members WHERE hh_key IS NOT NULL GROUP BY hh_key)
        SELECT h.hh_uid, h.village_code, h.village_name IS NOT NULL AS village_in_roster,
               coalesce(h.head_id_status, 'missing') AS head_id_status,
               regexp_replace(h.head_id, '[0-9]', '9', 'g') AS head_id_form, h.head_id,
               {", ".join(f"h.{k}" for k in ("hh_type", "exit_status", "review_result", "main_cause", "housing_grade",
                                              *_YESNO_LABELS))},
               {", ".join(f"CAST(h.{k} AS DOUBLE) AS {k}" for k in AMOUNT_KEYS)},
               ({" + ".join(f"CAST(h.{k} IS NULL AS INTEGER)" for k in AMOUNT_KEYS)}) = 0 AS amounts_are_numbers,
               CASE WHEN ({" OR ".join(f"h.{k} <> 0" for k in TRANSFER_SUB_ITEMS)})
                    THEN CAST(abs(h.transfer_total - ({" + ".join(f"h.{k}" for k in TRANSFER_SUB_ITEMS)})) AS DOUBLE)
               END AS transfer_gap,
               CAST({" + ".join(f"h.{k}" for k in INCOME_ITEMS)}
                    + CASE WHEN ({" OR ".join(f"h.{k} <> 0" for k in TRANSFER_SUB_ITEMS)})
                           THEN {" + ".join(f"h.{k}" for k in TRANSFER_SUB_ITEMS)} ELSE h.transfer_total END
                    AS DOUBLE) AS income_total,
               CAST(h.declared_size AS DOUBLE) AS declared_size,
               CAST(CASE WHEN h.hh_key IS NOT NULL THEN coalesce(m.n_members, 0) END AS DOUBLE) AS n_members,
               CAST(m.n_heads AS DOUBLE) AS n_heads,
               CASE WHEN m.n_heads = 1 AND h.head_id IS NOT NULL THEN coalesce(m.head_listed, false) END AS head_listed,
               CASE WHEN h.phone IS NOT NULL THEN {PHONE_OK_SQL} END AS phone_ok
        FROM households h
        LEFT JOIN m ON m.hh_key = h.hh_key
        ORDER BY h.hh_uid""",
    sample_sql="SELECT hh_uid AS key, village_code, file, row, head_name AS name, head_id AS id FROM households",
    expectations=(
        _true("village_in_roster", "village_in_roster", "调查表第2行的村代码在村名册 villages.csv 中"),
        *_id_expectations("head_id", "户主身份证号", "B1/B2/B6"),
        _not_null("hh_type_filled", "hh_type", "户类型已填写且在代码表内", "B6/B7"),
        _in_set("hh_type_in_list", "hh_type", HOUSEHOLD_TYPES, "户类型在代码表内", "B7"),
        _in_set("exit_status_in_list", "exit_status", EXIT_STATUSES, "脱贫状态在代码表内", "B7"),
        _in_set("review_result_in_list", "review_result", REVIEW_RESULTS, "民主评议结果在代码表内", "B7"),
        _in_set("main_cause_in_list", "main_cause", POVERTY_CAUSES, "主要致贫原因在代码表内", "B7"),
        _not_null("housing_grade_filled", "housing_grade", "住房安全等级已填写且在代码表内", "B6/B7"),
        _in_set("housing_grade_in_list", "housing_grade", HOUSING_GRADES, "住房安全等级为A、B、C、D", "B7"),
        *(_in_set(f"{k}_yes_no", k, (YES, NO), f"{label}为“是”或“否”", "B7")
          for k, label in _YESNO_LABELS.items()),
        _true("amounts_are_numbers", "amounts_are_numbers", "每个金额都是数字（空白按0计）", "B8"),
        *(_between(f"{k}_not_negative", k, f"{label}不小于0", "B8", min_value=0)
          for k, label in _AMOUNT_LABELS.items()),
        _between("has_members", "n_members", "家庭成员情况表中有该户的成员", "B4", min_value=1),
        _between("one_head", "n_heads", "每户有且只有一名户主", "B5", min_value=1, max_value=1),
        _true("head_is_listed", "head_listed", "户主本人的身份证号与户主身份证号一致", "B5"),
        Expect("declared_size_matches_members", "ExpectColumnPairValuesToBeEqual",
               {"column_A": "declared_size", "column_B": "n_members", "ignore_row_if": "either_value_is_missing"},
               "申报家庭人口与成员表人数一致", "W1"),
        _between("transfers_add_up", "transfer_gap", "转移性收入合计与分项之和相差不超过1元", "W4",
                 min_value=0, max_value=1),
        _between("some_income", "income_total", "至少有一项收入不为0", "W8", min_value=0, strict_min=True),
        _true("phone_form", "phone_ok", "联系电话是11位手机号或固定电话", "W9"),
    ),
)

MEMBERS = Suite(
    name="members",
    asset="members",
    key="member_uid",
    id_column="person_id",
    sql="""
        SELECT m.member_uid, m.village_code,
               coalesce(m.person_id_status, 'missing') AS person_id_status,
               regexp_replace(m.person_id, '[0-9]', '9', 'g') AS person_id_form, m.person_id,
               m.name IS NOT NULL AS has_name,
               m.relation, m.sex, m.id_sex, m.ethnicity, m.education, m.school_status, m.labor_skill, m.work_status,
               CAST(m.work_months AS DOUBLE) AS work_months, m.dibao, m.tekun, m.disabled_cert,
               m.disability_type, m.disability_grade, m.medical_insured,
               CAST(m.age AS DOUBLE) AS age,
               m.hh_key IS NOT NULL AND EXISTS (SELECT 1 FROM households h WHERE h.hh_key = m.hh_key) AS linked
        FROM members m ORDER BY m.member_uid""",
    sample_sql="SELECT member_uid AS key, village_code, file, row, name, person_id AS id FROM members",
    expectations=(
        *_id_expectations("person_id", "身份证号", "B1/B2/B6"),
        _true("name_filled", "has_name", "姓名已填写", "B6"),
        _not_null("relation_filled", "relation", "与户主关系已填写且在代码表内", "B6/B7"),
        _in_set("relation_in_list", "relation", RELATIONS, "与户主关系在代码表内", "B7"),
        _true("linked_to_household", "linked", "成员的户主身份证号能对应到家庭基本情况表中的一户", "B4"),
        _in_set("sex_in_list", "sex", SEXES, "性别为“男”或“女”", "B7"),
        Expect("sex_matches_id", "ExpectColumnPairValuesToBeEqual",
               {"column_A": "sex", "column_B": "id_sex", "ignore_row_if": "either_value_is_missing"},
               "性别与身份证号第17位一致（奇数为男）", "W2"),
        _in_set("ethnicity_in_list", "ethnicity", ETHNICITIES, "民族在代码表内", "B7"),
        _in_set("education_in_list", "education", EDUCATION_LEVELS, "文化程度在代码表内", "B7"),
        _in_set("school_status_in_list", "school_status", SCHOOL_STATUSES, "在校生状况在代码表内", "B7"),
        _in_set("labor_skill_in_list", "labor_skill", LABOR_SKILLS, "劳动技能在代码表内", "B7"),
        _in_set("work_status_in_list", "work_status", WORK_STATUSES, "务工状况在代码表内", "B7"),
        _between("work_months_range", "work_months", "务工时间为0–12个月", "", min_value=0, max_value=12),
        *(_in_set(f"{k}_yes_no", k, (YES, NO), f"{label}为“是”或“否”", "B7")
          for k, label in (("dibao", "是否低保对象"), ("tekun", "是否特困供养"), ("disabled_cert", "是否持证残疾"),
                           ("medical_insured", "是否参加基本医疗保险"))),
        _in_set("disability_type_in_list", "disability_type", DISABILITY_TYPES, "残疾类别在代码表内", "B7"),
        _in_set("disability_grade_in_list", "disability_grade", DISABILITY_GRADES, "残疾等级在代码表内", "B7"),
        _between("age_plausible", "age", f"按身份证号计算的年龄在0–{MAX_AGE}岁（出生日期不晚于参照日期）", "W7",
                 min_value=0, max_value=MAX_AGE),
        *(_between(f"age_fits_{key}", "age", f"在校生状况为“{status}”的，年龄在{low}–{high}岁", "W3",
                   min_value=low, max_value=high, row_condition=f'school_status=="{status}"',
                   condition_parser="pandas")
          for key, (status, (low, high)) in zip(
              ("preschool", "primary", "grades_7_9", "senior_high", "secondary_vocational"),
              SCHOOL_AGE_RANGES.items())),
    ),
)

def department_suite(dept) -> Suite:
    """A department extract (rules/crosscheck.py reads it into ``dept_<key>``): its rows are matched
    on the ID, so an ID that is invalid after repair is a row the cross-check can never use."""
    from pipeline.rules.crosscheck import dept_table

    table = dept_table(dept.key)
    return Suite(
        name=table,
        asset=table,
        key="row_uid",
        id_column="person_id",
        sql=f"""
            SELECT _file || '|' || _row AS row_uid, coalesce(id_status, 'missing') AS person_id_status,
                   regexp_replace(person_id, '[0-9]', '9', 'g') AS person_id_form, person_id
            FROM {table} ORDER BY _file, _row""",
        sample_sql=f"SELECT _file || '|' || _row AS key, '' AS village_code, _file AS file, _row AS row, "
                   f"NULL AS name, person_id AS id FROM {table}",
        expectations=(
            _in_set("person_id_valid", "person_id_status", VALID_ID_STATUSES,
                    f"{dept.name}数据的“{dept.id_column}”有效（15位旧号码、小写x、空格已修复）；无效的行无法比对"),
            Expect("person_id_form", "ExpectColumnValuesToMatchRegex",
                   {"column": "person_id_form", "regex": ID_SHAPE}, "规范化后的证件号码为18位"),
            _true("person_id_check_character", "person_id_check_ok", "规范化后的证件号码校验位正确"),
        ),
    )


SUITES: dict[str, Suite] = {s.name: s for s in (HOUSEHOLDS, MEMBERS, *(department_suite(d) for d in DEPARTMENTS))}


def check_character_ok(value: object) -> bool | None:
    """GB 11643-1999 check of an 18-character ID (None when there is no ID)."""
    if not isinstance(value, str):
        return None
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], WEIGHTS))
    return CHECK_CHARS[total % 11] == value[17]


def check_character_sql(column: str) -> str:
    """:func:`check_character_ok` as a DuckDB expression on ``column``."""
    terms = " + ".join(f"TRY_CAST(substr({column}, {i + 1}, 1) AS INTEGER) * {w}" for i, w in enumerate(WEIGHTS))
    return (f"CASE WHEN {column} IS NULL THEN NULL "
            f"WHEN NOT regexp_full_match({column}, '[0-9]{{17}}[0-9X]') THEN false "
            f"ELSE substr('{CHECK_CHARS}', ({terms}) % 11 + 1, 1) = substr({column}, 18, 1) END")


def validation_sql(suite: Suite) -> str:
    """The suite's frame as SQL: the ID column is replaced, in DuckDB, by its check-character flag
    and a keyed token (``$token_key``, drawn afresh every run), so no ID leaves the warehouse."""
    if not suite.id_column:
        return suite.sql
    column = suite.id_column
    return (f"SELECT * EXCLUDE ({column}), {check_character_sql(column)} AS {column}_check_ok, "
            f"left(sha256($token_key || {column}), 16) AS {column}_token FROM ({suite.sql})")


def validation_frame(con, suite: Suite, key: bytes | None = None) -> pd.DataFrame:
    """The suite's frame: the surrogate key and checkable columns; the ID column is replaced by
    its check-character flag and a per-run token (no ID is read out of DuckDB)."""
    params = {"token_key": (key or os.urandom(32)).hex()} if suite.id_column else {}
    return as_nullable_flags(con.execute(validation_sql(suite), params).df())


def as_nullable_flags(frame: pd.DataFrame) -> pd.DataFrame:
    """Flags with NULLs come back as objects: make them nullable booleans (GE's in-set and
    uniqueness checks then see True/False/<NA>, never a mix of object types)."""
    for column in frame.columns:
        if frame[column].dtype == object:
            first = frame[column].first_valid_index()
            if first is not None and isinstance(frame[column].at[first], (bool, np.bool_)):
                frame[column] = frame[column].astype("boolean")
    return frame


@dataclass
class Outcome:
    """The result of one expectation, with the surrogate keys of a sample of failing rows."""

    suite: str
    check: str
    success: bool
    element_count: int
    unexpected_count: int
    sample_keys: list[str]
    observed: object = None
    error: str = ""


def _ge():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import tqdm

    # GE creates (disabled) tqdm bars; each would start tqdm's monitor thread, and a process with
    # a stray thread must not fork (the survey reader forks workers on the next run).
    tqdm.tqdm.monitor_interval = 0
    import great_expectations as gx

    return gx


def build_context(docs_dir: Path | None):
    """An ephemeral GE context: stores in memory, progress bars and analytics off, and one Data
    Docs site — ``docs_dir`` — when given (nothing else is written anywhere)."""
    gx = _ge()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites, analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False))
    return gx.get_context(project_config=config, mode="ephemeral")


DOCS_SITE = "huitoukan_quality"


def docs_text(e: Expect) -> str:
    """What the Data Docs show for an expectation: its Chinese description and the name of the
    Dagster asset check that carries the same result, so the two can be found from each other."""
    return f"【检查项 {e.check}】{e.text}"


def build_suite(gx, suite: Suite):
    ge_suite = gx.ExpectationSuite(name=suite.name)
    for e in suite.expectations:
        cls = getattr(gx.expectations, e.kind)
        ge_suite.add_expectation(cls(**e.kwargs, description=docs_text(e), meta={"check": e.check, "rules": e.rules}))
    return ge_suite


def validate(frames: dict[str, pd.DataFrame], docs_dir: Path | None = None,
             run_name: str | None = None) -> dict[tuple[str, str], Outcome]:
    """Run every suite on its frame; build the Data Docs into ``docs_dir`` when given.
    Returns {(suite, check): Outcome}."""
    gx = _ge()
    from great_expectations.core.run_identifier import RunIdentifier

    context = build_context(docs_dir)
    source = context.data_sources.add_pandas("warehouse")
    outcomes: dict[tuple[str, str], Outcome] = {}
    run_id = RunIdentifier(run_name=run_name) if run_name else None
    for name, frame in frames.items():
        suite = SUITES[name]
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        ge_suite = context.suites.add(build_suite(gx, suite))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=ge_suite))
        result = definition.run(
            batch_parameters={"dataframe": frame}, run_id=run_id,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [suite.key],
                           "partial_unexpected_count": SAMPLE_SIZE, "return_unexpected_index_query": False})
        for r in result.results:
            check = r.expectation_config.meta["check"]
            res = r.result or {}
            index_list = res.get("partial_unexpected_index_list") or res.get("unexpected_index_list") or []
            keys = [str(item.get(suite.key)) for item in index_list if isinstance(item, dict)][:SAMPLE_SIZE]
            error = ""
            if r.exception_info and r.exception_info.get("raised_exception"):
                error = str(r.exception_info.get("exception_message", ""))[:200]
            outcomes[(name, check)] = Outcome(
                suite=name, check=check, success=bool(r.success), element_count=int(res.get("element_count") or 0),
                unexpected_count=int(res.get("unexpected_count") or 0), sample_keys=keys,
                observed=res.get("observed_value"), error=error)
    if docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE])
    return outcomes


def expectations(suites: Iterable[Suite] = SUITES.values()) -> list[tuple[Suite, Expect]]:
    return [(s, e) for s in suites for e in s.expectations]
