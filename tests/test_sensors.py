"""Sensors, schedules and jobs: new files are picked up without a click, exactly once per version."""

import os
import time

import dagster as dg
import pytest
from builders import SheetSpec, default_village, household, make_id, member, write_survey, write_villages
from pg_support import fresh_instance, shared_instance  # PostgreSQL when HUITOUKAN_TEST_PG_URL is set (.ci/run)

from pipeline import sensors
from pipeline.io import inputs
from pipeline.jobs import full_rebuild, signoff_job, survey_rebuild
from pipeline.partitions import VILLAGES, village_code
from pipeline.resources import PathsResource, WarehouseResource
from pipeline.schedules import nightly_rebuild

V1, V2 = "210505004201", "210505004202"


def survey(root, name, village=V1, heads=1, seed=11):
    heads_ids = [make_id("19500101", seed + 2 * i) for i in range(heads)]
    path = root / "surveys" / "思山岭街道" / name
    write_survey(path, SheetSpec([household(h, seq=i + 1) for i, h in enumerate(heads_ids)]),
                 SheetSpec([member(h, h) for h in heads_ids]), village_code=village)
    return path


def age(path, seconds=600):
    """Make a file look as if it was written ``seconds`` ago (settled)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def tick(sensor, root, cursor=None, instance=None, warehouse=None):
    context = dg.build_sensor_context(cursor=cursor, instance=instance or shared_instance(),
                                      resources={"paths": PathsResource(raw_dir=str(root), reports_dir=str(root)),
                                                 "warehouse": WarehouseResource(
                                                     database=str(warehouse or root / "none.duckdb"))})
    return sensor(context)


def rebuild_requests(result):
    return [r for r in getattr(result, "run_requests", None) or [] if r.job_name in (full_rebuild.name, survey_rebuild.name)]


def added(result) -> list[str]:
    return [k for r in getattr(result, "dynamic_partitions_requests", None) or [] for k in r.partition_keys]


def warehouse_that_read(path_db, root, *files):
    """A warehouse whose reader's cache holds these files as they are now (as a CLI run leaves it)."""
    import duckdb

    con = duckdb.connect(str(path_db))
    con.execute("CREATE TABLE cache_survey_files (file VARCHAR, village_code VARCHAR, mtime DOUBLE, size BIGINT)")
    for f in files:
        st = f.stat()
        con.execute("INSERT INTO cache_survey_files VALUES (?, ?, ?, ?)",
                    [f.relative_to(root).as_posix(), V1, st.st_mtime, st.st_size])
    con.close()
    return path_db


def test_new_file_adds_the_named_partition_and_requests_one_rebuild(tmp_path):
    write_villages(tmp_path, [default_village(V1)])
    path = survey(tmp_path, "财神庙村.xlsx")
    age(path)
    result = tick(sensors.survey_sensor, tmp_path)
    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests
    assert request.job_name == survey_rebuild.name and request.tags[sensors.TRIGGER_TAG] == "survey_sensor"
    [key] = added(result)
    assert key.startswith(V1 + "_") and village_code(key) == V1  # 村代码_村名称
    version = sensors.file_version(path)
    assert sensors.load_cursor(result.cursor) == {
        "surveys/思山岭街道/财神庙村.xlsx": {"version": version, "village": V1}}


def test_unchanged_file_is_not_handled_again(tmp_path, monkeypatch):
    age(survey(tmp_path, "财神庙村.xlsx"))
    first = tick(sensors.survey_sensor, tmp_path)
    peeked = []
    monkeypatch.setattr(sensors, "peek_village_code", lambda p: peeked.append(p) or V1)
    second = tick(sensors.survey_sensor, tmp_path, cursor=first.cursor)
    assert not rebuild_requests(second)
    assert peeked == []  # not even opened


def test_a_file_the_warehouse_has_read_starts_nothing_on_a_first_start(tmp_path, monkeypatch):
    """After ``huitoukan run`` the UI's first tick (empty cursor) starts no run."""
    path = survey(tmp_path, "财神庙村.xlsx")
    age(path)
    db = warehouse_that_read(tmp_path / "w.duckdb", tmp_path, path)
    peeked = []
    monkeypatch.setattr(sensors, "peek_village_code", lambda p: peeked.append(p) or V1)
    result = tick(sensors.survey_sensor, tmp_path, warehouse=db)
    assert rebuild_requests(result) == [] and peeked == []
    survey(tmp_path, "财神庙村.xlsx", heads=2, seed=41)  # a new version of the same file: it is new
    age(path, 60)
    assert len(rebuild_requests(tick(sensors.survey_sensor, tmp_path, warehouse=db))) == 1


def test_many_new_files_give_one_rebuild(tmp_path):
    for i in range(25):
        age(survey(tmp_path, f"村{i:02d}.xlsx", village=f"2105050042{i:02d}", seed=100 + 2 * i), 1000 - i)
    first = tick(sensors.survey_sensor, tmp_path)
    assert len(first.run_requests) == 1
    assert len(added(first)) == 25
    assert len(sensors.load_cursor(first.cursor)) == 25
    assert not rebuild_requests(tick(sensors.survey_sensor, tmp_path, cursor=first.cursor))


def test_resubmission_under_the_same_name_is_handled(tmp_path):
    path = survey(tmp_path, "财神庙村.xlsx")
    age(path, 900)
    first = tick(sensors.survey_sensor, tmp_path)
    survey(tmp_path, "财神庙村.xlsx", heads=3, seed=41)  # corrected workbook, same name
    age(path, 300)
    second = tick(sensors.survey_sensor, tmp_path, cursor=first.cursor)
    [request] = rebuild_requests(second)
    assert request.run_key != rebuild_requests(first)[0].run_key
    assert sensors.load_cursor(second.cursor)["surveys/思山岭街道/财神庙村.xlsx"]["version"] == sensors.file_version(path)


def test_file_still_being_written_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "SETTLE_SECONDS", 60)
    path = survey(tmp_path, "财神庙村.xlsx")  # modified just now
    peeked = []
    real_peek = sensors.peek_village_code
    monkeypatch.setattr(sensors, "peek_village_code", lambda p: peeked.append(p) or real_peek(p))
    first = tick(sensors.survey_sensor, tmp_path)
    assert isinstance(first, dg.SkipReason) and "仍在写入" in first.skip_message
    assert peeked == []
    age(path, 120)  # the copy has finished
    second = tick(sensors.survey_sensor, tmp_path, cursor=None)
    assert len(rebuild_requests(second)) == 1
    assert peeked == [path]


def test_removed_file_and_unreadable_file_trigger_the_rebuild(tmp_path):
    keep, gone = survey(tmp_path, "a.xlsx"), survey(tmp_path, "b.xlsx", seed=51)
    broken = tmp_path / "surveys" / "坏.xlsx"
    broken.write_bytes(b"PK\x03\x04 not a workbook")
    for p in (keep, gone, broken):
        age(p)
    first = tick(sensors.survey_sensor, tmp_path)
    assert sensors.load_cursor(first.cursor)["surveys/坏.xlsx"] == {"version": sensors.file_version(broken),
                                                                    "village": None}
    gone.unlink()
    second = tick(sensors.survey_sensor, tmp_path, cursor=first.cursor)
    assert len(rebuild_requests(second)) == 1
    assert sensors.load_cursor(second.cursor)["surveys/思山岭街道/b.xlsx"] == {"version": "removed"}
    assert not rebuild_requests(tick(sensors.survey_sensor, tmp_path, cursor=second.cursor))


def test_reference_files_request_a_rebuild_once_per_version(tmp_path):
    write_villages(tmp_path, [default_village(V1), default_village(V2, "二村", farming="否")])
    (tmp_path / "registry").mkdir()
    reg = tmp_path / "registry" / "建档立卡.xlsx"
    reg.write_bytes(b"x")
    dept = tmp_path / "departments" / "tax" / "个税.csv"
    dept.parent.mkdir(parents=True)
    dept.write_text("纳税人姓名\n", encoding="gbk")
    for p in (reg, dept, tmp_path / "villages.csv"):
        age(p)
    first = tick(sensors.reference_sensor, tmp_path)
    [rebuild] = first.run_requests
    assert rebuild.job_name == full_rebuild.name
    assert [village_code(k) for k in added(first)] == [V1]  # the 涉农 villages of the roster
    assert not rebuild_requests(tick(sensors.reference_sensor, tmp_path, cursor=first.cursor))
    dept.write_text("纳税人姓名\n张*\n", encoding="gbk")
    age(dept, 100)
    second = tick(sensors.reference_sensor, tmp_path, cursor=first.cursor)
    [again] = second.run_requests
    assert again.run_key != rebuild.run_key


def test_reference_files_read_by_an_earlier_rebuild_start_nothing(tmp_path):
    import duckdb

    write_villages(tmp_path, [default_village(V1)])
    age(tmp_path / "villages.csv", 600)
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE asset_builds (asset VARCHAR, built_at DOUBLE, run_id VARCHAR)")
    con.execute("INSERT INTO asset_builds VALUES ('village_roster', ?, 'cli')", [time.time()])
    con.close()
    assert not rebuild_requests(tick(sensors.reference_sensor, tmp_path, warehouse=db))


def test_a_rebuild_in_flight_or_a_cli_run_holds_new_files_for_the_next_tick(tmp_path):
    import fcntl

    age(survey(tmp_path, "财神庙村.xlsx"))
    instance = fresh_instance()
    from pipeline.definitions import build_defs

    run = instance.create_run_for_job(build_defs().resolve_job_def(full_rebuild.name),
                                      status=dg.DagsterRunStatus.NOT_STARTED)
    held = tick(sensors.survey_sensor, tmp_path, instance=instance)
    assert not rebuild_requests(held) and "全区重建已在队列或运行中" in str(held)
    instance.report_run_failed(run)
    db = tmp_path / "w.duckdb"
    fd = os.open(tmp_path / "w.duckdb.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what runner.run_lock holds during `huitoukan run`
    try:
        assert not rebuild_requests(tick(sensors.survey_sensor, tmp_path, instance=instance, warehouse=db))
    finally:
        os.close(fd)
    assert len(rebuild_requests(tick(sensors.survey_sensor, tmp_path, instance=instance, warehouse=db))) == 1


def test_village_intake_reads_the_newest_workbook_of_its_village(tmp_path):
    raw = tmp_path / "raw"
    bad = make_id("19600101", 61)
    old = survey(raw, "财神庙村.xlsx", heads=1, seed=71)
    age(old, 900)
    new = raw / "surveys" / "思山岭街道" / "财神庙村-改.xlsx"
    heads = [make_id("19500101", 81), make_id("19500101", 83)]
    write_survey(new, SheetSpec([household(h, seq=i) for i, h in enumerate(heads)]),
                 SheetSpec([member(heads[0], heads[0]), member(heads[1], heads[1]),
                            member(heads[1], bad[:17] + ("0" if bad[17] != "0" else "1"), "之子")]))
    age(new, 300)
    age(survey(raw, "二村.xlsx", village=V2, seed=91), 100)
    instance = fresh_instance()
    instance.add_dynamic_partitions(VILLAGES, [V1])
    from pipeline.assets.intake import village_submission

    warehouse = tmp_path / "w.duckdb"
    result = dg.materialize([village_submission], partition_key=V1, instance=instance, resources={
        "paths": PathsResource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports")),
        "warehouse": WarehouseResource(database=str(warehouse))})
    assert result.success
    meta = result.asset_materializations_for_node("village_submission")[0].metadata
    assert meta["文件（file）"].value == "surveys/思山岭街道/财神庙村-改.xlsx"
    assert meta["户数（households）"].value == 2 and meta["人数（persons）"].value == 3
    assert meta["必须修改（must fix）"].value == 1  # the wrong check character (B1)
    assert meta["该村文件数（files of this village）"].value == 2
    assert bad[:10] not in str(meta["问题示例（已遮盖，masked sample）"].value)
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("SELECT village_code, households, status FROM village_submissions").fetchall() == [
        (V1, 2, "已读取")]
    assert con.execute("SELECT rule FROM village_submission_problems").fetchall() == [("B1",)]
    con.close()


def test_schedule_sensors_and_jobs_are_wired_for_an_unattended_office():
    from pipeline.definitions import build_defs

    defs = build_defs()

    assert nightly_rebuild.cron_schedule == "0 2 * * *"
    assert nightly_rebuild.execution_timezone == "Asia/Shanghai"
    assert nightly_rebuild.job_name == "full_rebuild"
    assert nightly_rebuild.default_status == dg.DefaultScheduleStatus.RUNNING
    for sensor in (sensors.survey_sensor, sensors.reference_sensor):
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    rebuild = defs.resolve_job_def("full_rebuild")
    keys = {k.to_user_string() for k in rebuild.asset_layer.executable_asset_keys}
    assert "signoff" not in keys and "village_submission" not in keys
    assert {"annex1", "survey_template", "progress", "annex2"} <= keys
    assert {k.to_user_string() for k in defs.resolve_job_def(signoff_job.name).asset_layer.executable_asset_keys} == {
        "signoff"}


def test_every_asset_that_opens_the_warehouse_is_in_the_warehouse_pool():
    from pipeline.definitions import build_defs

    defs = build_defs()
    from pipeline.resources import WAREHOUSE_POOL

    missing = [
        key.to_user_string()
        for node in defs.resolve_asset_graph().asset_nodes
        for key in [node.key]
        if node.is_executable and "warehouse" in defs.resolve_assets_def(key).required_resource_keys
        and defs.resolve_assets_def(key).op.pool != WAREHOUSE_POOL
    ]
    assert missing == []


def test_instance_template_limits_the_warehouse_pool_and_the_run_queue(tmp_path):
    import yaml

    from pipeline import runner
    from pipeline.instances import INSTANCE_TEMPLATE, ensure_dagster_home

    config = yaml.safe_load(INSTANCE_TEMPLATE.read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    home = tmp_path / "home"
    instance = runner.instance(home)
    try:
        assert instance.event_log_storage.get_pool_config().default_pool_limit == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == \
            config["concurrency"]["runs"]["max_concurrent_runs"]
    finally:
        instance.dispose()
    (home / "dagster.yaml").write_text("# edited by the office\n")
    ensure_dagster_home(home)
    assert (home / "dagster.yaml").read_text() == "# edited by the office\n"  # never overwritten


@pytest.mark.parametrize("text", [None, "", "not json", '{"files": 3}', "[1, 2]"])
def test_a_damaged_cursor_starts_over_instead_of_failing(text):
    assert sensors.load_cursor(text) == {}
