"""The asset checks of 回头看: Great Expectations results, structural integrity, and the audit of
the published side (write–audit–publish).

Two kinds, on purpose:

- **Warnings** (``AssetCheckSeverity.WARN``, not blocking): every Great Expectations expectation on
  ``households`` and ``members``. A failure is a *data problem* — a result the district office
  reads and sends to the village — and must never stop the district's tables: households with a
  blocking problem are held back one by one by ``rules.classification``.
- **Blocking errors** (``ERROR``, ``blocking=True``): failures that mean the pipeline itself is
  wrong and must not publish — surrogate keys that are not unique (every join would double
  count), a household with an open blocking problem that reached ``classification``'s 附件 flags,
  or one found in a written 附件 file. These are declared on their assets (``check_specs``) and
  evaluated in the asset's own step, right after it is built: the functions here take the step's
  warehouse connection (the audits read the written file back). A failing blocking check fails
  that step — the asset is already written, write–audit–publish — and so stops the downstream
  steps of the run (the 附件 tables, sign-off).

Metadata carries counts and masked samples only (``210505********123X``, ``张*``).
"""


import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.checks.expectations import SUITES, Outcome, expectations
from pipeline.metadata import masked_sample
from pipeline.privacy import mask_id, mask_name
from pipeline.readiness import office_stamp
from pipeline.resources import WAREHOUSE_POOL, PathsResource, WarehouseResource
from pipeline.resources.quality import GreatExpectationsResource
from pipeline.rules.annex import Annex

PRIORITY_TAG = "dagster/priority"  # op tag: among the steps ready to run, the higher goes first
SAMPLE = 10

# --------------------------------------------------------------------------------------------
# Great Expectations
# --------------------------------------------------------------------------------------------

GE_SPECS = [dg.AssetCheckSpec(e.check, asset=s.asset, description=e.text) for s, e in expectations()]


def _sample_md(con, suite, keys: list[str]) -> dg.MetadataValue:
    """Failing rows named by village, file and Excel row, with the name and ID masked."""
    if not keys:
        return dg.MetadataValue.md("(none)")
    con.register("_keys", pd.DataFrame({"key": keys[:SAMPLE]}))
    try:
        rows = con.execute(f"SELECT s.* FROM ({suite.sample_sql}) s JOIN _keys k USING (key) "
                           "ORDER BY s.village_code, s.file, s.row").df()
    finally:
        con.unregister("_keys")
    lines = ["| 村代码 | 文件 | 行 | 姓名 | 身份证号 |", "|---|---|---|---|---|"]
    for r in rows.itertuples():
        cells = [r.village_code, r.file, r.row, mask_name(r.name) if isinstance(r.name, str) else "",
                 mask_id(r.id) if isinstance(r.id, str) else "（无效或未填）"]
        lines.append("| " + " | ".join("" if c is None else str(c).replace("|", "/") for c in cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _result(con, suite, expect, outcome: Outcome | None, failure: str = "") -> dg.AssetCheckResult:
    if outcome is None:
        return dg.AssetCheckResult(asset_key=suite.asset, check_name=expect.check, passed=False,
                                   severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"error": failure or f"table {suite.name} was not built; nothing validated"})
    metadata = {
        "不通过的行数（failing count）": outcome.unexpected_count,
        "检查的行数（rows checked）": outcome.element_count,
        "规则（rules.md）": expect.rules or "—",
        "示例（已遮盖，masked sample）": _sample_md(con, suite, outcome.sample_keys),
    }
    if outcome.element_count:
        metadata["不通过比例 %（failing %）"] = round(100 * outcome.unexpected_count / outcome.element_count, 2)
    if outcome.error:
        metadata["error"] = outcome.error
    return dg.AssetCheckResult(asset_key=suite.asset, check_name=expect.check, passed=outcome.success,
                               severity=dg.AssetCheckSeverity.WARN, metadata=metadata)


def hand_over(context, warehouse: WarehouseResource, paths: PathsResource, ge: GreatExpectationsResource) -> dict:
    """Read the de-identified validation frames out of the warehouse and hand them to the GE worker,
    which validates them and writes the Data Docs while the run goes on. Returns rows per table."""
    from pipeline.checks.expectations import validation_frame
    from pipeline.rules.sqlutil import table_exists

    with warehouse.connect(read_only=True) as con:
        frames = {name: validation_frame(con, suite) for name, suite in SUITES.items()
                  if table_exists(con, suite.name)}
    run = context.run.run_id[:8]
    ge.worker.submit(frames, docs_dir=paths.quality, run_name=run,
                     generated=f"{office_stamp():%Y-%m-%d %H:%M}，运行 {run}")
    return {name: len(frame) for name, frame in frames.items()}


@dg.multi_asset_check(specs=GE_SPECS, name="great_expectations", pool=WAREHOUSE_POOL,
                      op_tags={PRIORITY_TAG: "-10"},  # last: the worker validates while the 附件 are written
                      description="Great Expectations suites on the cleaned households and members and the "
                                  "department extracts' IDs; builds the offline Data Docs under reports/quality/.")
def great_expectations(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                       paths: PathsResource, ge: GreatExpectationsResource):
    """Validate the cleaned 家庭基本情况 and 家庭成员情况 (and the IDs of every department extract)
    with the suites of ``pipeline/checks/expectations.py``; each expectation is one check (WARN) on
    its asset, with the failing count and a masked sample; the Data Docs go to
    reports/quality/index.html. The work is done by the GE worker process, usually handed over
    early by the ``validation_batches`` asset; this step collects it (or hands it over itself when
    the run did not include that asset)."""
    started = time.perf_counter()
    if not ge.worker.pending:
        hand_over(context, warehouse, paths, ge)
    outcomes, failure = collect_outcomes(ge.worker)
    if failure:
        context.log.error(failure)
    context.log.info(f"Great Expectations: {len(outcomes)} expectations; waited {time.perf_counter() - started:.1f}s "
                     "for the worker")
    with warehouse.connect(read_only=True) as con:
        yield from ge_check_results(con, outcomes, failure)


def collect_outcomes(worker) -> tuple[dict, str]:
    """The worker's outcomes, or none and why: a worker that failed or died is reported on every
    expectation (WARN), never a failed run — the 附件 and sign-off go on as for any data problem."""
    try:
        return worker.collect(), ""
    except RuntimeError as exc:
        return {}, f"Great Expectations could not validate: {exc}"


def ge_check_results(con, outcomes: dict, failure: str = "") -> Iterator[dg.AssetCheckResult]:
    for suite, expect in expectations():
        yield _result(con, suite, expect, outcomes.get((suite.name, expect.check)), failure)


# --------------------------------------------------------------------------------------------
# Structural integrity (blocking)
# --------------------------------------------------------------------------------------------


def unique_key_spec(table: str, key: str, label: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(f"{key}_unique", asset=table, blocking=True,
                             description=f"每行{label}有唯一的内部编号 {key}（村代码|文件|Excel行号）。Structural: every "
                                         "join of the pipeline relies on it; nothing downstream runs while it fails.")


HH_UID_UNIQUE = unique_key_spec("households", "hh_uid", "家庭记录")
MEMBER_UID_UNIQUE = unique_key_spec("members", "member_uid", "成员记录")


def unique_key_result(con, spec: dg.AssetCheckSpec, key: str) -> dg.AssetCheckResult:
    """The check ``spec``: ``key`` is filled and unique in the spec's table (its asset)."""
    table = spec.asset_key.to_user_string()
    n, dup, null = con.execute(
        f"SELECT count(*), count(*) - count(DISTINCT {key}), count(*) - count({key}) FROM {table}").fetchone()
    return dg.AssetCheckResult(asset_key=spec.asset_key, check_name=spec.name, passed=dup == 0 and null == 0,
                               severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"rows": n, "failing count": dup + null, "duplicates": dup, "empty": null})


# --------------------------------------------------------------------------------------------
# Audit of the published side (blocking)
# --------------------------------------------------------------------------------------------

HELD_BACK_SQL = """
SELECT h.hh_uid, h.village_name, h.head_id, h.head_name, m.person_id, m.name
FROM classification c JOIN households h USING (hh_uid)
LEFT JOIN members m ON m.hh_key = h.hh_key
WHERE c.blocked
"""


HELD_BACK_NOT_CLASSIFIED = dg.AssetCheckSpec(
    "held_back_households_not_classified", asset="classification", blocking=True,
    description="没有未处理“必须修改”问题的户才进入附件2–6：every household with an open blocking "
                "problem is marked held back and has no 附件 flag. Blocking: the 附件 tables are not "
                "written while it fails.")


def held_back_households_not_classified(con) -> dg.AssetCheckResult:
    """The check HELD_BACK_NOT_CLASSIFIED on the classification just written (``con`` sees it)."""
    leaked = con.execute("""
        SELECT h.village_code, h.file, h.row, h.head_name, h.head_id
        FROM classification c JOIN households h USING (hh_uid)
        WHERE (h.hh_key IN (SELECT hh_key FROM open_problems WHERE blocking) AND NOT c.blocked)
           OR (c.blocked AND (c.annex2_category IS NOT NULL OR c.annex3_category IS NOT NULL
                              OR c.in_annex4 OR c.in_annex5 OR c.in_annex6))
        ORDER BY 1, 2, 3""").df()
    held = con.execute("SELECT count(*) FROM classification WHERE blocked").fetchone()[0]
    return dg.AssetCheckResult(
        asset_key=HELD_BACK_NOT_CLASSIFIED.asset_key, check_name=HELD_BACK_NOT_CLASSIFIED.name,
        passed=leaked.empty, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failing count": len(leaked), "households held back": int(held),
                  "示例（已遮盖，masked sample）": _household_sample(leaked)})


def _household_sample(frame: pd.DataFrame) -> dg.MetadataValue:
    labels = {"village_code": "村", "file": "文件", "row": "行", "head_name": "户主姓名", "head_id": "户主身份证号"}
    return masked_sample(frame.rename(columns=labels), n=SAMPLE, columns=list(labels.values()))


def read_detail_rows(path: Path) -> pd.DataFrame:
    """The data rows of a written 附件's 明细 sheet(s) (header in row 3, up to the 合计 row)."""
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    frames = []
    for name in workbook.sheet_names:
        if not name.startswith("明细"):
            continue
        rows = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
        if len(rows) < 3:
            continue
        header = [str(h) for h in rows[2]]
        data = []
        for row in rows[3:]:
            first = row[0] if row else ""
            if first == "合计" or not isinstance(first, (int, float)) or first == "":
                break
            data.append(row[: len(header)])
        frames.append(pd.DataFrame(data, columns=header, dtype=object))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _published_keys(rows: pd.DataFrame, annex: Annex) -> pd.Series:
    """How a published row names its household (household tables) or person (person tables)."""
    if rows.empty:
        return pd.Series(dtype=str)
    if annex.unit == "person":
        return (rows["村"].map(_text) + "|" + rows["户主姓名"].map(_text) + "|"
                + [(_text(i) or "name:" + _text(n)) for i, n in zip(rows["身份证号"], rows["姓名"])])
    return rows["村"].map(_text) + "|" + [(_text(i) or "name:" + _text(n))
                                         for i, n in zip(rows["户主身份证号"], rows["户主姓名"])]


def _held_keys(held: pd.DataFrame, annex: Annex) -> set[str]:
    if held.empty:
        return set()
    if annex.unit == "person":
        return {f"{_text(v)}|{_text(hn)}|{_text(p) or 'name:' + _text(n)}"
                for v, hn, p, n in zip(held["village_name"], held["head_name"], held["person_id"], held["name"])}
    return {f"{_text(v)}|{_text(h) or 'name:' + _text(n)}"
            for v, h, n in zip(held["village_name"], held["head_id"], held["head_name"])}


def published_audit_spec(annex: Annex) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "no_held_back_household", asset=annex.key, blocking=True, additional_deps=["classification"],
        description=f"{annex.filename.split('_')[0]}的文件中没有被暂缓的户（有未处理“必须修改”问题的户）。"
                    "Audit of the written file: blocking, so sign-off does not run while it fails.")


def held_back_rows(con) -> pd.DataFrame:
    """The held-back households (with their members) the published audits look for."""
    return con.execute(HELD_BACK_SQL).df()


def published_audit(annex: Annex, path: Path, held: pd.DataFrame) -> dg.AssetCheckResult:
    """The check ``no_held_back_household`` of a written 附件: none of the ``held`` households (from
    held_back_rows) is in the file at ``path``, read back as a reader of the file would."""
    spec = published_audit_spec(annex)
    if not path.exists():
        return dg.AssetCheckResult(asset_key=spec.asset_key, check_name=spec.name, passed=False,
                                   severity=dg.AssetCheckSeverity.ERROR,
                                   metadata={"error": f"{path.name} was not written"})
    rows = read_detail_rows(path)
    keys = _published_keys(rows, annex)
    leaked = rows[keys.isin(_held_keys(held, annex)).to_numpy()] if len(rows) else rows
    id_column = "身份证号" if annex.unit == "person" else "户主身份证号"
    return dg.AssetCheckResult(
        asset_key=spec.asset_key, check_name=spec.name, passed=leaked.empty, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failing count": len(leaked), "rows in file": len(rows),
                  "暂不列入的户（households held back）": int(held["hh_uid"].nunique()) if len(held) else 0,
                  "示例（已遮盖，masked sample）": masked_sample(leaked, n=SAMPLE, columns=["村", "户主姓名", id_column])})


# Every check but Great Expectations is declared on its asset (check_specs) and evaluated in the
# asset's own step: a step of its own costs ~0.1 s of Dagster bookkeeping and a warehouse connect.
asset_checks = [great_expectations]
