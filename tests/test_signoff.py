"""Sign-off: refused for each reason, accepted on a clean district, the package verified, read-only,
and never touched by anything that runs later. Also 附件1 and the progress sheet of that district.

Whole-pipeline runs are shared (module scope); every test leaves the district as it found it, so
the tests need no order and may be spread over workers (each worker then has its own districts).
The clean district is a copy of the session's one run of it (clean_district.ran_clean_district),
which test_package_signing copies too; the dirty one is run here.
"""

import hashlib
import json
import os
import re
import shutil
import stat
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from clean_district import H1, H1_WIFE, H2, H3, NAMES, V1, V2, build_clean_district, ran_clean_district
from conftest import read_detail, run_district
from fakes import FakeGreatExpectations

from pipeline import cli, runner
from pipeline.assets.signoff import CONFIRMATION_FILE, LOG_FILE, MANIFEST_FILE
from pipeline.instances import ensure_dagster_home
from pipeline.readiness import PACKAGE_ASSETS, gate_reasons, input_files, package_files
from pipeline.resources import build_resources
from pipeline.rules.notices import ANNOUNCEMENT_FILE

pytestmark = [pytest.mark.integration]

SIGNER = "王建华"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict:
    """Every file of a folder with its bytes' hash, mode and modification time."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        out[p.relative_to(folder).as_posix()] = (sha(p) if p.is_file() else None, stat.S_IMODE(st.st_mode),
                                                st.st_mtime_ns)
    out["."] = (None, stat.S_IMODE(folder.stat().st_mode), folder.stat().st_mtime_ns)
    return out


class World:
    def __init__(self, base: Path):
        self.base, self.raw = base, base / "raw"
        self.warehouse, self.reports = base / "warehouse.duckdb", base / "reports"
        # in memory: the Dagster bookkeeping of a SQLite instance is not what these tests are about
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = build_resources(raw_dir=self.raw, warehouse=self.warehouse, reports_dir=self.reports,
                                         ge=FakeGreatExpectations())

    def run(self) -> None:
        run_district(self.raw, self.base, inst=self.instance)

    def sign(self, decision: str = "同意", comment: str = "", signer: str = SIGNER):
        return runner.run_signoff(self.resources, signer, decision, comment, inst=self.instance)

    @property
    def signed(self) -> Path:
        return self.reports / "signed"

    def packages(self) -> list[Path]:
        return sorted(p for p in self.signed.iterdir() if p.is_dir()) if self.signed.exists() else []

    def log(self) -> list[dict]:
        path = self.signed / LOG_FILE
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def _world(tmp_path_factory, name: str, prepare):
    """A district run once (``prepare(world)``), with its own Dagster instance (DAGSTER_HOME) and paths."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp(name)
        for env in ("HUITOUKAN_RAW_DIR", "HUITOUKAN_WAREHOUSE", "HUITOUKAN_REPORTS_DIR", "DAGSTER_HOME"):
            mp.delenv(env, raising=False)
        mp.setenv("HUITOUKAN_LOG_LEVEL", "CRITICAL")
        home = ensure_dagster_home(base / "dagster_home")  # the project's dagster.yaml: pools, queue
        mp.setenv("DAGSTER_HOME", str(home))
        world = World(base)
        prepare(world)
        yield world


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    # the default district as the whole pipeline left it: its one run in this session, copied here
    # (test_package_signing signs a copy of it too)
    yield from _world(tmp_path_factory, "clean", lambda world: ran_clean_district(tmp_path_factory, world.base))


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    # a blocking problem (B1 in 财神庙村), 南芬村 has not submitted, 税务局 has not returned
    def prepare(world):
        build_clean_district(world.raw, skip_villages=(V2,), skip_departments=("tax",), bad_id_in_v1=True)
        world.run()

    yield from _world(tmp_path_factory, "dirty", prepare)


def failure_text(result) -> str:
    assert not result.success
    return runner.failure_description(result)


# --------------------------------------------------------------------------------------------
# The clean district: 附件1, progress, acceptance
# --------------------------------------------------------------------------------------------


def test_annex1_lists_every_surveyed_household_and_person_cleaned(clean):
    path = clean.reports / "draft" / "附件1_入户调查汇总表.xlsx"
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames[:3] == ["家庭基本情况", "家庭成员情况", "汇总"]
    rows = list(wb["家庭基本情况"].iter_rows(values_only=True))
    header = rows[2]
    assert header[:3] == ("序号", "办事处", "村")
    for extra in ("家庭年纯收入", "年人均纯收入", "户状态(比对)", "重点人群", "问题数", "户主身份证号", "工资性收入",
                  "住房安全等级", "一次性补助（不计入收入）", "联系电话"):
        assert extra in header
    data = [dict(zip(header, r)) for r in rows[3:] if isinstance(r[0], int)]
    # 办事处代码 order: 南芬街道 (001) before 思山岭街道 (004)
    assert [d["户主身份证号"] for d in data] == [H3, H1, H2]
    assert [d["序号"] for d in data] == [1, 2, 3]
    first = data[1]
    assert first["村"] == "财神庙村" and first["户状态(比对)"] == "建档立卡户·已脱贫(享受政策)"
    assert first["家庭人口"] == 2 and first["年人均纯收入"] == 1500 and first["问题数"] == 0
    assert first["户主姓名"] == NAMES[H1] and first["重点人群"] == "老年户"  # born 1950
    assert data[0]["户状态(比对)"] == "一般农户" and data[0]["年人均纯收入"] == 3000
    assert rows[3 + len(data)][:2] == ("合计", "共3户4人")
    members = [r for r in wb["家庭成员情况"].iter_rows(values_only=True)][3:]
    assert [m[6] for m in members if isinstance(m[0], int)] == [H3, H1, H1_WIFE, H2]


def test_progress_shows_who_submitted_and_the_days_left(clean):
    from pipeline.definitions import build_defs

    job = build_defs(clean.resources).resolve_job_def("full_rebuild")
    result = job.execute_in_process(
        instance=clean.instance, asset_selection=[dg.AssetKey("progress")],
        run_config={"ops": {"progress": {"config": {"today": "2019-04-28"}}}})
    meta = result.asset_materializations_for_node("progress")[0].metadata
    assert meta["涉农村已报送（villages submitted）"].value == "2/2"
    assert meta["部门已反馈（departments returned）"].value == "9/9"
    assert meta["剩余天数（days left）"].value == {"村入户调查": 2, "办事处汇总、问题整改": 12, "部门比对": 18,
                                             "区级汇总、签字": 22}
    assert meta["下载（download）"].value.startswith("http://127.0.0.1:3001/")
    assert meta["数据质量报告（quality report）"].value == "http://127.0.0.1:3001/quality/"
    villages = meta["各村报送情况（villages）"].value
    assert villages.startswith("| 办事处 | 村名称 | 村代码 | 报送情况 | 报送时间 |") and V1 in villages and V2 in villages
    import openpyxl

    ws = openpyxl.load_workbook(clean.reports / "进度.xlsx", read_only=True)["村报送情况"]
    rows = {r[2]: r for r in ws.iter_rows(min_row=4, values_only=True) if r[0] is not None}
    assert rows[V1][5] == "已报送" and rows["210505001001"][5] == "不需报送"


def test_no_decision_signs_nothing_and_shows_the_conditions(clean):
    """What "Materialize all" does to the sign-off asset: no config, nothing signed, no log line."""
    before, logged = clean.packages(), len(clean.log())
    result = clean.sign("", signer="")
    assert result.success
    meta = result.asset_materializations_for_node("signoff")[0].metadata
    assert meta["结果（outcome）"].value.startswith("未给出决定：未签字")
    table = meta["签字条件（sign-off conditions）"].value
    assert "| 签字条件 | 是否满足 |" in table and "【未满足】" not in table and table.startswith("**可以签字**")
    assert clean.packages() == before and len(clean.log()) == logged


def test_a_wrong_decision_is_refused_in_chinese(clean):
    before = clean.packages()
    result = clean.sign("OK")
    assert not result.success
    assert runner.failure_description(result).startswith("决定只能填写“同意”或“不同意”")
    assert clean.packages() == before


def test_disagreement_is_recorded_without_a_package(clean):
    before, logged = clean.packages(), len(clean.log())
    result = clean.sign("不同意", comment="收入核算需复核")
    assert result.success
    meta = result.asset_materializations_for_node("signoff")[0].metadata
    assert meta["决定（decision）"].value == "不同意"
    assert meta["签字人（signer, masked）"].value == "王**"
    assert clean.packages() == before
    [entry] = clean.log()[logged:]
    assert entry["decision"] == "不同意" and entry["signer"] == SIGNER and entry["comment"] == "收入核算需复核"
    assert entry["outcome"] == "recorded"


def test_agreement_writes_a_verified_read_only_package_that_later_runs_never_change(clean):
    before = set(clean.packages())
    result = clean.sign("同意", comment="同意上报")
    assert result.success, failure_text(result)
    [package] = set(clean.packages()) - before
    assert len(package.name) == len("20190520T093000") and package.name[8] == "T"
    names = sorted(p.name for p in package.iterdir())
    files = package_files(clean.reports)
    assert names == sorted([*(f.name for f in files), ANNOUNCEMENT_FILE, CONFIRMATION_FILE, MANIFEST_FILE])
    assert len([n for n in names if n.startswith("附件")]) == 6  # 附件1–6
    notices = [n for n in names if n.endswith("_公示.xlsx")]
    assert len(notices) == 2 + 2  # 第一次公示 of 财神庙村 and 南芬村, 第二次公示 of their two 办事处

    manifest = json.loads((package / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["decision"] == "同意" and manifest["signer"] == SIGNER and manifest["comment"] == "同意上报"
    listed = {o["file"]: o["sha256"] for o in manifest["outputs"]}
    assert set(listed) == set(names) - {MANIFEST_FILE}
    for name, digest in listed.items():
        assert sha(package / name) == digest, name
    for item in files:  # the package holds exactly the drafts and notices that were signed
        assert sha(package / item.name) == sha(clean.reports / item.relative)
    inputs = {i["file"]: i["sha256"] for i in manifest["inputs"]}
    on_disk = {p.relative_to(clean.raw).as_posix(): sha(p) for p in input_files(clean.raw)}
    assert inputs == on_disk and len(inputs) == 1 + 1 + 2 + 9  # roster, registry, 2 surveys, 9 departments
    assert manifest["settings"]["reference_date"] == "2019-04-30"
    assert manifest["software"]["dagster"].startswith("1.13")

    assert stat.S_IMODE(package.stat().st_mode) == 0o555
    for p in package.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o444
    if os.geteuid() != 0:  # root ignores permissions
        with pytest.raises(PermissionError):
            (package / MANIFEST_FILE).write_text("{}")

    import openpyxl

    ws = openpyxl.load_workbook(package / CONFIRMATION_FILE, read_only=True)["签字确认单"]
    record = {r[0]: r[1] for r in ws.iter_rows(min_row=4, values_only=True) if r[0]}
    assert record["签字人"] == SIGNER and record["决定"] == "同意" and record["意见"] == "同意上报"
    counts = {(c["表"], c["工作表"]): (c["户数"], c["人数"]) for c in manifest["counts"]}
    assert counts[("附件1", "家庭基本情况")] == (3, 4)
    assert counts[("附件2", "明细")] == (1, 2) and counts[("附件3", "明细")] == (1, 1)
    assert len(read_detail(package / "附件2_返贫（重点扶持）人口统计表.xlsx")) == 2
    # the 公告: the district's final list (附件2 and 附件3 households), dated at the signature, by
    # 户主姓名 only, printing legibly
    assert counts[("公告", "公告")] == (2, 3)
    wb = openpyxl.load_workbook(package / ANNOUNCEMENT_FILE)
    ws = wb["公告"]
    assert [c.value for c in ws[3]] == ["序号", "办事处", "村", "户主姓名", "家庭人口", "类别"]
    text = "\n".join(str(v) for row in ws.iter_rows(values_only=True) for v in row if v is not None)
    assert "南芬区脱贫攻坚领导小组办公室" in text and "监督电话" in text
    assert f"{package.name[:4]}年{int(package.name[4:6])}月{int(package.name[6:8])}日" in text
    assert not re.search(r"\d{17}[\dXx]", text) and "因病" not in text and "收入" not in text
    from pipeline.io import printing

    assert printing.smallest_printed_pt(ws)[0] >= printing.MIN_PRINTED_PT
    for name in (CONFIRMATION_FILE,):
        for sheet in openpyxl.load_workbook(package / name).worksheets:
            if sheet.sheet_state == "visible":
                assert printing.smallest_printed_pt(sheet)[0] >= printing.MIN_PRINTED_PT

    meta = result.asset_materializations_for_node("signoff")[0].metadata
    assert meta["签字包（package）"].value == package.name
    assert SIGNER not in json.dumps({k: str(v.value) for k, v in meta.items()}, ensure_ascii=False)
    assert clean.log()[-1]["outcome"] == "signed" and clean.log()[-1]["package"] == package.name

    # later: the pipeline runs again and the leader signs again — the first package stays as it was
    first = snapshot(package)
    clean.run()
    result = clean.sign("同意", comment="第二次")
    assert result.success, failure_text(result)
    [second] = set(clean.packages()) - before - {package}
    assert snapshot(package) == first  # byte-identical, same modes, untouched
    assert json.loads((second / MANIFEST_FILE).read_text(encoding="utf-8"))["comment"] == "第二次"


def _gate(world: World, tmp_path: Path, sql: str) -> list[str]:
    """The gate's reasons on a copy of the warehouse changed by ``sql``."""
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(world.warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        if sql:
            con.execute(sql)
        return gate_reasons(con, world.raw, world.reports, None)
    finally:
        con.close()


def test_gate_is_open_on_the_clean_district(clean, tmp_path):
    assert _gate(clean, tmp_path, "") == []


def test_gate_refuses_an_open_blocking_problem(clean, tmp_path):
    reasons = _gate(clean, tmp_path, f"""
        CREATE OR REPLACE TABLE open_problems (problem_id VARCHAR, rule VARCHAR, severity VARCHAR,
            village_code VARCHAR, blocking BOOLEAN, accepted BOOLEAN, state VARCHAR);
        INSERT INTO open_problems (problem_id, rule, severity, village_code, blocking, accepted, state)
        VALUES ('B1-004201-ABCDEF12', 'B1', '必须修改', '{V1}', true, false, '待修改'),
               ('W2-004201-00000000', 'W2', '请核实', '{V1}', false, false, '待修改'),
               ('B2-004201-11111111', 'B2', '必须修改', '{V1}', false, true, '已接受')""")
    assert len(reasons) == 1 and "1 个“必须修改”" in reasons[0] and "B1-004201-ABCDEF12" in reasons[0]
    assert "思山岭街道财神庙村（1个）" in reasons[0]


def test_gate_refuses_a_farming_village_without_submission(clean, tmp_path):
    reasons = _gate(clean, tmp_path, f"DELETE FROM survey_files WHERE village_code = '{V2}'")
    assert reasons == ["涉农村未报送入户调查表：南芬街道南芬村（210505001201）"]


def test_gate_refuses_a_department_that_has_not_returned(clean, tmp_path):
    reasons = _gate(clean, tmp_path, "UPDATE department_returns SET returned = false WHERE dept = 'medical'")
    assert reasons == ["部门未反馈比对数据：区医保局（departments/medical/）"]


def test_gate_reads_department_folders_when_the_table_is_missing(clean, tmp_path):
    from pipeline.readiness import department_status

    raw = tmp_path / "raw"
    shutil.copytree(clean.raw, raw)
    shutil.rmtree(raw / "departments" / "medical")
    con = duckdb.connect()
    try:
        status = department_status(con, raw).set_index("key")
    finally:
        con.close()
    assert not status.loc["medical", "returned"] and status.loc["tax", "returned"]
    assert set(status["source"]) == {"folder"}


def test_refused_when_the_warehouse_was_rebuilt_after_the_drafts(clean):
    from pipeline.definitions import build_defs

    build_defs(clean.resources).resolve_job_def("full_rebuild").execute_in_process(
        instance=clean.instance, asset_selection=[dg.AssetKey("classification")])
    before = clean.packages()
    try:
        text = failure_text(clean.sign("同意"))
        assert "早于数据仓库的最近一次构建" in text and "classification" in text
        assert "早于输入文件" not in text
        assert clean.packages() == before  # no new package
        assert clean.log()[-1]["outcome"] == "refused"
    finally:  # the drafts again, for the tests that follow on this district
        build_defs(clean.resources).resolve_job_def("full_rebuild").execute_in_process(
            instance=clean.instance,
            asset_selection=[dg.AssetKey(k) for k in PACKAGE_ASSETS])


def test_refused_when_an_input_arrived_after_the_drafts(clean):
    before = clean.packages()
    late = clean.raw / "departments" / "medical" / "补充.xlsx"
    shutil.copy2(clean.raw / "departments" / "medical" / "medical.xlsx", late)  # old mtime kept, as Explorer does
    # its inode change time (now) is what makes it new
    try:
        text = failure_text(clean.sign("同意"))
    finally:
        late.unlink()
    assert "早于输入文件 departments/medical/补充.xlsx" in text
    assert clean.packages() == before


def test_cli_signoff_reports_the_refusal_and_exits_non_zero(clean, capsys):
    late = clean.raw / "surveys" / "思山岭街道" / "~$财神庙村.xlsx"  # an Excel lock file is not input…
    late.write_bytes(b"lock")
    extra = clean.raw / "exceptions.csv"  # …but exceptions.csv is
    extra.write_text("问题编号,核实结论,核实人,核实日期\n", encoding="utf-8")
    args = ["signoff", "--raw-dir", str(clean.raw), "--warehouse", str(clean.warehouse),
            "--reports-dir", str(clean.reports), "--signer", SIGNER, "--decision", "同意"]
    try:
        code = cli.main(args)
    finally:
        late.unlink()
        extra.unlink()
    assert code == 1
    err = capsys.readouterr().err
    assert "不能签字" in err and "早于输入文件 exceptions.csv" in err and "~$" not in err


# --------------------------------------------------------------------------------------------
# A district with everything wrong at once: every reason is listed, masked
# --------------------------------------------------------------------------------------------


def test_every_reason_is_listed_and_masked(dirty):
    os.utime(dirty.raw / "villages.csv")  # the roster changed after the drafts were made
    result = dirty.sign("同意")
    text = failure_text(result)
    assert "不能签字（同意）：4 个条件未满足" in text
    assert "“必须修改”的数据问题未解决" in text and "B1 1个" in text
    assert "涉农村未报送入户调查表：南芬街道南芬村（210505001201）" in text
    assert "部门未反馈比对数据：税务局（departments/tax/）" in text
    assert "早于输入文件 villages.csv" in text
    for secret in (H1, H1_WIFE, H1_WIFE[:17], *NAMES.values()):
        assert secret not in text
    [failure] = [e.step_failure_data.user_failure_data for e in result.all_events if e.is_step_failure]
    table = failure.metadata["签字条件（sign-off conditions）"].value
    assert table.startswith("**暂不能签字**：4 个条件未满足") and table.count("【未满足】") == 4
    assert "南芬街道南芬村" in table and "税务局（departments/tax/）" in table
    assert dirty.packages() == []
    entry = dirty.log()[-1]
    assert entry["outcome"] == "refused" and len(entry["reasons"]) == 4


def test_disagreement_is_recorded_even_when_the_gate_is_closed(dirty):
    result = dirty.sign("不同意", comment="南芬村未报送")
    assert result.success
    assert dirty.packages() == []
    entry = dirty.log()[-1]
    assert entry["outcome"] == "recorded" and entry["decision"] == "不同意"
    assert len(entry["open_reasons"]) >= 3  # problem, village, department (and stale drafts, if touched)
