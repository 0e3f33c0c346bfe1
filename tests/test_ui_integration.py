"""The analyst's day, end to end: ``huitoukan run`` on a small district whose second village has
not submitted yet, then ``huitoukan ui`` (dagster dev — webserver and daemon — plus the download
server) on 127.0.0.1 over the same data root and instance, driven through the webserver's
GraphQL API like clicks:

1. the descriptions read as Chinese;
2. "Materialize all" (every unpartitioned asset, no config) succeeds, signs nothing and leaves
   the 签字条件 table; a report downloads through the link in its metadata;
3. a sign-off with signer and decision only is refused with the table (the launchpad shows no
   data path);
4. the first start launched no sensor run (the CLI had read every file): asked here, once both
   sensors have looked a few times while the clicks above ran, rather than first, which waited
   ~10 s for those looks with nothing else to do;
5. the missing village's file dropped into the data root reaches the drafts by itself;
6. the same sign-off is then accepted.

Great Expectations is faked here (tests/fakes.py), in the CLI run and in the UI's code location
(tests/ui_defs.py: the project's definitions and resources but the GE one): its checks report
that nothing was validated. GE is tested for real in test_quality.py, test_ge_worker.py and
test_privacy.py.

The tests share one UI session and run in this order. Bounded waits throughout."""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from clean_district import S2, V2, V2_NAME, build_clean_district
from webui import free_port, graphql

pytestmark = [pytest.mark.integration]

PROJECT = Path(__file__).resolve().parent.parent
START_TIMEOUT, RUN_TIMEOUT, SENSOR_TIMEOUT = 240, 420, 300


def wait_for(what: str, check, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


LOCATIONS = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on RepositoryLocation { name repositories { name } }
                        ... on PythonError { message } } } } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId status } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { runId status jobName } } }"""
LOGS = """query($id: ID!) { logsForRun(runId: $id, limit: 5000) { __typename ... on EventConnection { events {
  __typename
  ... on AssetCheckEvaluationEvent { evaluation { checkName success severity assetKey { path } } }
  ... on MaterializationEvent { assetKey { path } metadataEntries { label ... on UrlMetadataEntry { url }
        ... on MarkdownMetadataEntry { mdStr } ... on TextMetadataEntry { text } } }
  ... on ExecutionStepFailureEvent { stepKey error { message } failureMetadata { description
        metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } } } } } } }"""
RUNS = """{ runsOrError(limit: 100) { __typename ... on Runs { results { runId jobName status
  tags { key value } } } } }"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


ASSETS = """{ assetNodes { assetKey { path } description isPartitioned isExecutable } }"""
DESCRIPTIONS = """query($repo: RepositorySelector!) { repositoryOrError(repositorySelector: $repo) { __typename
  ... on Repository { jobs { name description } sensors { name description } schedules { name description } } } }"""
DEFAULT_CONFIG = """query($selector: PipelineSelector!) { runConfigSchemaOrError(selector: $selector) { __typename
  ... on RunConfigSchema { rootDefaultYaml } } }"""
SIGNER = "王建华"
DRAFT = Path("draft") / "附件2_返贫（重点扶持）人口统计表.xlsx"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory):
    """The instance's folder, on tmpfs where there is one: SQLite commits each of the runs' events
    and the daemon's ticks, and on a busy disk those fsyncs took half of a run's time. It is the
    same persistent SQLite instance, shared by the CLI run, the webserver, the daemon and the run
    workers; the data root, warehouse, reports and log stay under pytest's tmp folder."""
    from conftest import fast_scratch

    with fast_scratch(tmp_path_factory, "ui_instance") as folder:
        yield folder / "dagster_home"


@pytest.fixture(scope="module")
def ui(tmp_path_factory, dagster_home):
    from conftest import run_cli_pipeline

    base = tmp_path_factory.mktemp("ui")
    raw, home = base / "raw", dagster_home
    build_clean_district(raw, skip_villages=(V2,))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUITOUKAN_", "DAGSTER_"))}
    env.update({"DAGSTER_HOME": str(home), "HUITOUKAN_SETTLE_SECONDS": "0", "PYTHONUNBUFFERED": "1"})
    with pytest.MonkeyPatch.context() as mp:  # the CLI run: same data root, warehouse and instance
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("HUITOUKAN_LOG_LEVEL", "CRITICAL")
        from pipeline.instances import ensure_dagster_home

        ensure_dagster_home(home)
        run_cli_pipeline(raw, base)
    workspace = base / "workspace.yaml"  # the project's definitions with GE faked (tests/ui_defs.py)
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_file": {
        "relative_path": str(PROJECT / "tests" / "ui_defs.py"), "working_directory": str(PROJECT)}}]}),
        encoding="utf-8")
    port, files_port = free_port(), free_port()
    log = (base / "ui.log").open("wb")
    huitoukan = Path(sys.executable).parent / "huitoukan"
    proc = subprocess.Popen(
        [str(huitoukan), "ui", "--raw-dir", str(raw), "--warehouse", str(base / "warehouse.duckdb"),
         "--reports-dir", str(base / "reports"), "--port", str(port), "--files-port", str(files_port),
         "--workspace", str(workspace)],
        cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def loaded():
            if proc.poll() is not None:
                raise AssertionError(f"huitoukan ui exited: {(base / 'ui.log').read_text(errors='replace')[-3000:]}")
            data = graphql(port, LOCATIONS)["workspaceOrError"]
            for entry in data.get("locationEntries", []):
                location = entry["locationOrLoadError"]
                if location and location["__typename"] == "RepositoryLocation":
                    return location["name"], location["repositories"][0]["name"]
                if location and location["__typename"] == "PythonError":
                    raise AssertionError(location["message"])
            return None

        location, repository = wait_for("the code location to load", loaded, START_TIMEOUT)
        yield {"port": port, "files_port": files_port, "base": base, "raw": raw, "location": location,
               "repository": repository, "log": base / "ui.log", "reports": base / "reports"}
    finally:
        # Not a test of stopping: the whole session goes at once (a SIGINT has huitoukan ui, then
        # dagster dev, then its code servers stop one after the other, ~12 s, and leaves the code
        # server's proxy behind until its heartbeat times out).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()


def run_status(port: int, run_id: str) -> str:
    return graphql(port, RUN, {"id": run_id})["runOrError"]["status"]


def selector(ui, job: str) -> dict:
    return {"repositoryLocationName": ui["location"], "repositoryName": ui["repository"], "jobName": job}


def launch_and_wait(ui, params: dict) -> tuple[str, list[dict]]:
    launched = graphql(ui["port"], LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = wait_for(f"run {run_id} to finish",
                      lambda: (s := run_status(ui["port"], run_id)) in FINISHED and s, RUN_TIMEOUT)
    return status, graphql(ui["port"], LOGS, {"id": run_id})["logsForRun"]["events"]


def sign(ui, decision: str) -> tuple[str, list[dict]]:
    """The sign-off as the launchpad sends it: signer and decision, nothing else."""
    return launch_and_wait(ui, {"selector": selector(ui, "signoff_job"), "runConfigData": {
        "ops": {"signoff": {"config": {"signer": SIGNER, "decision": decision}}}}})


def materializations(events) -> dict[str, dict]:
    return {"/".join(e["assetKey"]["path"]): {m["label"]: m.get("url") or m.get("mdStr") or m.get("text")
                                              for m in e["metadataEntries"]}
            for e in events if e["__typename"] == "MaterializationEvent"}


def sensor_runs(ui) -> list[dict]:
    runs = graphql(ui["port"], RUNS)["runsOrError"]["results"]
    return [r for r in runs if any(t["key"] == "huitoukan/trigger" for t in r["tags"])]


def test_descriptions_read_as_chinese(ui):
    nodes = graphql(ui["port"], ASSETS)["assetNodes"]
    english = ["/".join(n["assetKey"]["path"]) for n in nodes if not CJK.search((n["description"] or "")[:12])]
    assert english == []
    repo = graphql(ui["port"], DESCRIPTIONS, {"repo": {"repositoryLocationName": ui["location"],
                                                        "repositoryName": ui["repository"]}})["repositoryOrError"]
    for kind in ("jobs", "sensors", "schedules"):
        for item in repo[kind]:
            if not item["name"].startswith("__"):
                assert CJK.search((item["description"] or "")[:12]), (kind, item["name"], item["description"])


def test_materialize_all_succeeds_signs_nothing_and_leaves_the_signoff_conditions(ui):
    nodes = graphql(ui["port"], ASSETS)["assetNodes"]
    keys = [{"path": n["assetKey"]["path"]} for n in nodes if n["isExecutable"] and not n["isPartitioned"]]
    assert {"signoff"} <= {k["path"][0] for k in keys}
    status, events = launch_and_wait(ui, {"selector": {**selector(ui, "__ASSET_JOB"), "assetSelection": keys},
                                          "runConfigData": {}})
    failures = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    assert status == "SUCCESS", failures
    signed = ui["reports"] / "signed"
    assert not signed.exists() or not [p for p in signed.iterdir() if p.is_dir()]
    meta = materializations(events)
    assert meta["signoff"]["结果（outcome）"].startswith("未给出决定：未签字")
    table = meta["signoff_readiness"]["签字条件（sign-off conditions）"]
    assert table.startswith("**暂不能签字**") and "| 签字条件 | 是否满足 |" in table and f"南芬街道{V2_NAME}" in table

    url = meta["annex1"]["下载（download）"]
    assert url.startswith(f"http://127.0.0.1:{ui['files_port']}/draft/")
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == (ui["reports"] / "draft" / "附件1_入户调查汇总表.xlsx").read_bytes()


def test_a_signoff_with_signer_and_decision_only_is_refused_with_the_table(ui):
    default = graphql(ui["port"], DEFAULT_CONFIG, {"selector": {
        "repositoryLocationName": ui["location"], "repositoryName": ui["repository"],
        "pipelineName": "signoff_job"}})["runConfigSchemaOrError"]["rootDefaultYaml"]
    assert str(ui["raw"]) not in default and str(ui["reports"]) not in default  # no data path in the launchpad
    status, events = sign(ui, "同意")
    assert status == "FAILURE"
    [failure] = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    assert failure["failureMetadata"]["description"].splitlines()[0].startswith("不能签字（同意）")
    tables = {m["label"]: m.get("mdStr") for m in failure["failureMetadata"]["metadataEntries"]}
    assert "【未满足】" in tables["签字条件（sign-off conditions）"]


def test_the_first_start_after_a_cli_run_launches_no_sensor_run(ui):
    """Asked after the clicks above, before any file is added: by then both sensors have looked
    several times (each look is logged), so the answer needs no wait of its own; the clicks add no
    file and no sensor run."""
    def both_ticked_then_two_more_survey_ticks():
        lines = ui["log"].read_text(errors="replace").splitlines()
        survey = [i for i, line in enumerate(lines) if "Sensor survey_sensor skipped" in line]
        reference = [i for i, line in enumerate(lines) if "Sensor reference_sensor skipped" in line]
        return survey and reference and len([i for i in survey if i > max(survey[0], reference[0])]) >= 2

    wait_for("both sensors to tick, then the survey sensor twice more", both_ticked_then_two_more_survey_ticks,
             SENSOR_TIMEOUT)
    assert sensor_runs(ui) == []


def test_a_new_file_in_the_data_root_reaches_the_drafts(ui, tmp_path):
    before = (ui["reports"] / DRAFT).stat().st_mtime_ns
    build_clean_district(tmp_path)  # the same district, with the missing village's workbook
    source = tmp_path / "surveys" / S2 / f"{V2_NAME}.xlsx"
    target = ui["raw"] / "surveys" / S2 / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target.with_suffix(".part"))
    os.replace(target.with_suffix(".part"), target)  # arrives whole, as a copy finishing

    wait_for("the drafts to change", lambda: (ui["reports"] / DRAFT).stat().st_mtime_ns != before, SENSOR_TIMEOUT)
    runs = wait_for("the sensor's run to finish",
                    lambda: (r := sensor_runs(ui)) and all(x["status"] in FINISHED for x in r) and r,
                    RUN_TIMEOUT)
    assert len(runs) == 1 and runs[0]["jobName"] == "survey_rebuild" and runs[0]["status"] == "SUCCESS"
    assert "Could not set lock" not in ui["log"].read_text(errors="replace")


def test_the_same_signoff_is_accepted_once_every_condition_is_met(ui):
    status, events = sign(ui, "同意")
    failures = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    assert status == "SUCCESS", failures
    meta = materializations(events)["signoff"]
    assert meta["结果（outcome）"] == "同意：已形成签字包"
    assert "【未满足】" not in meta["签字条件（sign-off conditions）"]
    packages = [p for p in (ui["reports"] / "signed").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert [p.name for p in packages] == [meta["签字包（package）"]]
