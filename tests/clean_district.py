"""A small district with known answers and nothing that blocks sign-off: two 涉农 villages that
submitted, one non-farming community, a consistent registry, and a file from every department."""

from __future__ import annotations

import csv
from pathlib import Path

import xlsxwriter
from builders import SheetSpec, household, make_id, member, write_registry, write_survey, write_villages

from pipeline.schema import DEPARTMENTS, DEPARTMENTS_BY_KEY

V1, V1_NAME, S1 = "210505004201", "财神庙村", "思山岭街道"
V2, V2_NAME, S2 = "210505001201", "南芬村", "南芬街道"
V3, V3_NAME = "210505001001", "南芬社区"  # not 涉农: never surveyed

H1, H1_WIFE = make_id("19500101", 11), make_id("19520202", 12)  # registered, exited, income 1500/person
H2 = make_id("19700303", 21)  # ordinary household, well above every line
H3 = make_id("19650505", 31)  # ordinary household, applied and passed review, 3000/person
HH_NO = "21050500420001"
NAMES = {H1: "赵大山", H1_WIFE: "钱秀英", H2: "孙志强", H3: "李建国"}


def village(code: str, name: str, sub_name: str, farming: str = "是") -> dict:
    return {"village_code": code, "village_name": name, "subdistrict_code": code[:9],
            "subdistrict_name": sub_name, "farming": farming}


def write_department_header(root: Path, key: str) -> Path:
    """A department's extract with its header and no rows: returned, nothing found."""
    dept = DEPARTMENTS_BY_KEY[key]
    folder = root / "departments" / key
    folder.mkdir(parents=True, exist_ok=True)
    if dept.file_format == "csv":
        path = folder / f"{key}.csv"
        with path.open("w", encoding=dept.encoding, newline="") as fh:
            csv.writer(fh).writerow(dept.columns)
        return path
    path = folder / f"{key}.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Sheet1")
    for c, label in enumerate(dept.columns):
        ws.write_string(0, c, label)
    wb.close()
    return path


def build_clean_district(root: Path, *, skip_villages: tuple[str, ...] = (), skip_departments: tuple[str, ...] = (),
                         bad_id_in_v1: bool = False) -> dict:
    """Write the district under ``root``; returns what the tables must show."""
    write_villages(root, [village(V1, V1_NAME, S1), village(V2, V2_NAME, S2), village(V3, V3_NAME, S2, "否")])
    write_registry(root, [
        {"hh_no": HH_NO, "village_code": V1, "head_name": NAMES[H1], "name": NAMES[H1], "person_id": H1,
         "relation": "户主", "poor_attribute": "一般贫困户", "status": "已脱贫(享受政策)", "identified_year": 2014,
         "exit_year": 2017},
        {"hh_no": HH_NO, "village_code": V1, "head_name": NAMES[H1], "name": NAMES[H1_WIFE], "person_id": H1_WIFE,
         "relation": "配偶", "poor_attribute": "一般贫困户", "status": "已脱贫(享受政策)", "identified_year": 2014,
         "exit_year": 2017},
    ])
    wife = H1_WIFE
    if bad_id_in_v1:  # a wrong check character: B1, blocking
        wife = H1_WIFE[:17] + ("0" if H1_WIFE[17] != "0" else "1")
    if V1 not in skip_villages:
        write_survey(
            root / "surveys" / S1 / f"{V1_NAME}.xlsx",
            SheetSpec([
                household(H1, seq=1, head_name=NAMES[H1], hh_no=HH_NO, hh_type="建档立卡户",
                          exit_status="已脱贫(享受政策)", declared_size=2, wage_income=3000, main_cause="因病"),
                household(H2, seq=2, head_name=NAMES[H2], declared_size=1, wage_income=30000),
            ]),
            SheetSpec([member(H1, H1, name=NAMES[H1]), member(H1, wife, "配偶", name=NAMES[H1_WIFE]),
                       member(H2, H2, name=NAMES[H2], work_status="县内务工", work_months=10)]),
            village_code=V1, village_name=V1_NAME, subdistrict=S1)
    if V2 not in skip_villages:
        write_survey(
            root / "surveys" / S2 / f"{V2_NAME}.xlsx",
            SheetSpec([household(H3, seq=1, head_name=NAMES[H3], declared_size=1, wage_income=3000,
                                 main_cause="缺技术", applied="是", review_result="通过")]),
            SheetSpec([member(H3, H3, name=NAMES[H3])]),
            village_code=V2, village_name=V2_NAME, subdistrict=S2)
    for dept in DEPARTMENTS:
        if dept.key not in skip_departments:
            write_department_header(root, dept.key)
    return {"households": 3, "persons": 4, "annex2_persons": 2, "annex3_persons": 1}


# --------------------------------------------------------------------------------------------
# The default district, run once per test session
# --------------------------------------------------------------------------------------------

RUN_ENV = ("HUITOUKAN_RAW_DIR", "HUITOUKAN_WAREHOUSE", "HUITOUKAN_REPORTS_DIR", "DAGSTER_HOME", "HUITOUKAN_KEY_DIR")


def _run_once(folder: Path) -> None:
    """build_clean_district(folder / "raw") and the whole pipeline on it (GE faked, an in-memory
    Dagster instance, nothing from the environment): folder/warehouse.duckdb, folder/reports."""
    import dagster as dg
    import pytest
    from conftest import run_district

    with pytest.MonkeyPatch.context() as mp:
        for env in RUN_ENV:
            mp.delenv(env, raising=False)
        mp.setenv("HUITOUKAN_LOG_LEVEL", "CRITICAL")
        build_clean_district(folder / "raw")
        run_district(folder / "raw", folder, inst=dg.DagsterInstance.ephemeral())


def ran_clean_district(tmp_path_factory, base: Path) -> tuple[Path, Path, Path]:
    """``build_clean_district(base / "raw")`` as the whole pipeline left it: (raw, warehouse,
    reports) under ``base``, ready to sign.

    The run is made once per test session — by the first module that asks, shared by the pytest
    workers of the session — and each caller gets its own copy, to change as it likes. A copy is
    what a run on ``base`` would have made (the warehouse and reports hold paths relative to
    their roots only) except for the files' times, which the sign-off's gate reads: the inputs
    arrive when they are copied (their inode change time), so the drafts and notices are copied
    after them with the copy's modification time, later than the inputs and than the builds the
    warehouse recorded, as they are after a run."""
    import os
    import shutil

    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above every worker's
    cache = shared / "clean_district_run"
    with FileLock(str(shared / "clean_district_run.lock")):  # another worker making it: wait
        if not (cache / ".done").exists():
            shutil.rmtree(cache, ignore_errors=True)  # what an interrupted run left
            cache.mkdir()
            _run_once(cache)
            (cache / ".done").touch()
    base.mkdir(parents=True, exist_ok=True)
    raw, warehouse, reports = base / "raw", base / "warehouse.duckdb", base / "reports"
    shutil.copytree(cache / "raw", raw)
    for wal in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        if (cache / wal).exists():
            shutil.copy2(cache / wal, base / wal)
    shutil.copytree(cache / "reports", reports, copy_function=shutil.copy)  # modification time: now
    return raw, warehouse, reports
