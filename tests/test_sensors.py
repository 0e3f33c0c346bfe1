"""Sensors, schedules and jobs: new files are picked up without a click, exactly once per version."""

import os
import time

import dagster as dg
import pytest

from builders import SheetSpec, default_village, household, make_id, member, write_survey, write_villages
from pg_support import fresh_instance, shared_instance  # PostgreSQL when HUITOUKAN_TEST_PG_URL is set (.ci/run)
from pipeline import sensors
from pipeline.io import inputs
from pipeline.jobs import full_rebuild, signoff_job, village_intake
from pipeline.partitions import VILLAGES
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


def tick(sensor, root, cursor=None, instance=None):
    context = dg.build_sensor_context(cursor=cursor, instance=instance or shared_instance(),
                                      resources={"paths": PathsResource(raw_dir=str(root), reports_dir=str(root))})
    return sensor(context)


def intake_requests(result):
    return [r for r in result.run_requests if r.job_name == village_intake.name]


def rebuild_requests(result):
    return [r for r in result.run_requests if r.job_name == full_rebuild.name]


def test_new_file_adds_the_partition_and_requests_its_run(tmp_path):
    path = survey(tmp_path, "财神庙村.xlsx")
    age(path)
    result = tick(sensors.survey_sensor, tmp_path)
    assert isinstance(result, dg.SensorResult)
    [request] = intake_requests(result)
    assert request.partition_key == V1
    version = sensors.file_version(path)
    assert version in request.run_key and "surveys/思山岭街道/财神庙村.xlsx" in request.run_key
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == VILLAGES and list(add.partition_keys) == [V1]
    assert len(rebuild_requests(result)) == 1  # the district tables follow
    assert sensors.load_cursor(result.cursor) == {
        "surveys/思山岭街道/财神庙村.xlsx": {"version": version, "village": V1}}


def test_unchanged_file_is_not_handled_again(tmp_path, monkeypatch):
    age(survey(tmp_path, "财神庙村.xlsx"))
    first = tick(sensors.survey_sensor, tmp_path)
    peeked = []
    monkeypatch.setattr(sensors, "peek_village_code", lambda p: peeked.append(p) or V1)
    second = tick(sensors.survey_sensor, tmp_path, cursor=first.cursor)
    assert isinstance(second, dg.SkipReason)
    assert peeked == []  # not even opened


def test_known_partition_is_not_added_again(tmp_path):
    age(survey(tmp_path, "财神庙村.xlsx"))
    instance = fresh_instance()
    instance.add_dynamic_partitions(VILLAGES, [V1])
    result = tick(sensors.survey_sensor, tmp_path, instance=instance)
    assert result.dynamic_partitions_requests == []
    assert [r.partition_key for r in intake_requests(result)] == [V1]


def test_resubmission_under_the_same_name_is_handled(tmp_path):
    path = survey(tmp_path, "财神庙村.xlsx")
    age(path, 900)
    first = tick(sensors.survey_sensor, tmp_path)
    survey(tmp_path, "财神庙村.xlsx", heads=3, seed=41)  # corrected workbook, same name
    age(path, 300)
    second = tick(sensors.survey_sensor, tmp_path, cursor=first.cursor)
    [request] = intake_requests(second)
    assert request.partition_key == V1
    assert request.run_key != intake_requests(first)[0].run_key
    assert sensors.file_version(path) in request.run_key
    assert sensors.load_cursor(second.cursor)["surveys/思山岭街道/财神庙村.xlsx"]["version"] == sensors.file_version(path)


def test_many_files_are_capped_per_tick_and_the_rest_follow(tmp_path):
    n = sensors.MAX_FILES_PER_TICK + 5
    for i in range(n):
        age(survey(tmp_path, f"村{i:02d}.xlsx", village=f"2105050042{i:02d}", seed=100 + 2 * i), 1000 - i)
    first = tick(sensors.survey_sensor, tmp_path)
    assert len(intake_requests(first)) == sensors.MAX_FILES_PER_TICK
    assert len(sensors.load_cursor(first.cursor)) == sensors.MAX_FILES_PER_TICK
    # oldest first: the files written longest ago are handled first
    assert {r.partition_key for r in intake_requests(first)} == {f"2105050042{i:02d}" for i in range(20)}
    second = tick(sensors.survey_sensor, tmp_path, cursor=first.cursor)
    assert {r.partition_key for r in intake_requests(second)} == {f"2105050042{i:02d}" for i in range(20, n)}
    assert len(sensors.load_cursor(second.cursor)) == n
    assert isinstance(tick(sensors.survey_sensor, tmp_path, cursor=second.cursor), dg.SkipReason)


def test_file_still_being_written_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "SETTLE_SECONDS", 60)
    path = survey(tmp_path, "财神庙村.xlsx")  # modified just now
    peeked = []
    real_peek = sensors.peek_village_code
    monkeypatch.setattr(sensors, "peek_village_code", lambda p: peeked.append(p) or real_peek(p))
    first = tick(sensors.survey_sensor, tmp_path)
    assert isinstance(first, dg.SkipReason) and "still being written" in first.skip_message
    assert peeked == []
    age(path, 120)  # the copy has finished
    second = tick(sensors.survey_sensor, tmp_path, cursor=None)
    assert [r.partition_key for r in intake_requests(second)] == [V1]
    assert peeked == [path]


def test_removed_file_rereads_its_village_and_unreadable_file_triggers_the_rebuild(tmp_path):
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
    [request] = intake_requests(second)
    assert request.partition_key == V1 and "b.xlsx@removed" in request.run_key
    assert "surveys/思山岭街道/b.xlsx" not in sensors.load_cursor(second.cursor)
    assert rebuild_requests(second)


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
    [add] = first.dynamic_partitions_requests
    assert list(add.partition_keys) == [V1]  # the 涉农 villages of the roster
    assert isinstance(tick(sensors.reference_sensor, tmp_path, cursor=first.cursor), dg.SkipReason)
    dept.write_text("纳税人姓名\n张*\n", encoding="gbk")
    age(dept, 100)
    second = tick(sensors.reference_sensor, tmp_path, cursor=first.cursor)
    [again] = second.run_requests
    assert again.run_key != rebuild.run_key and second.dynamic_partitions_requests == []


def test_a_queued_rebuild_is_not_requested_twice(tmp_path):
    age(survey(tmp_path, "财神庙村.xlsx"))
    instance = fresh_instance()
    from pipeline.definitions import build_defs

    defs = build_defs()

    # a run created but not started yet (the queue's state before the daemon launches it)
    instance.create_run_for_job(defs.resolve_job_def(full_rebuild.name), status=dg.DagsterRunStatus.NOT_STARTED)
    result = tick(sensors.survey_sensor, tmp_path, instance=instance)
    assert intake_requests(result) and not rebuild_requests(result)


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
    assert meta["file"].value == "surveys/思山岭街道/财神庙村-改.xlsx"
    assert meta["households"].value == 2 and meta["persons"].value == 3
    assert meta["must fix (必须修改)"].value == 1  # the wrong check character (B1)
    assert meta["files of this village"].value == 2
    assert bad[:10] not in str(meta["problems (masked sample)"].value)
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
    from pipeline.runner import INSTANCE_TEMPLATE, ensure_dagster_home

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
