"""The analyst's day, end to end: ``huitoukan ui`` (dagster dev — webserver and daemon — plus the
download server) on 127.0.0.1 over a small data root; a full_rebuild launched through the
webserver's GraphQL API like a click on *Launch*, its run status and asset checks read back, a
report downloaded through the link in its metadata; the sensor picks the village files up by
itself; nothing fails on the warehouse lock. Bounded waits throughout."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from clean_district import V1, V2, build_clean_district

pytestmark = [pytest.mark.integration]

PROJECT = Path(__file__).resolve().parent.parent
START_TIMEOUT, RUN_TIMEOUT, SENSOR_TIMEOUT = 240, 420, 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_for(what: str, check, timeout: float, every: float = 2.0):
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
  ... on MaterializationEvent { assetKey { path } metadataEntries { label ... on UrlMetadataEntry { url } } }
  ... on ExecutionStepFailureEvent { stepKey error { message } } } } } }"""
RUNS = """{ runsOrError(limit: 100) { __typename ... on Runs { results { runId jobName status
  tags { key value } } } } }"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    base = tmp_path_factory.mktemp("ui")
    raw = base / "raw"
    build_clean_district(raw)
    port, files_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUITOUKAN_", "DAGSTER_"))}
    env.update({"DAGSTER_HOME": str(base / "dagster_home"), "HUITOUKAN_SETTLE_SECONDS": "0",
                "PYTHONUNBUFFERED": "1"})
    log = (base / "ui.log").open("wb")
    huitoukan = Path(sys.executable).parent / "huitoukan"
    proc = subprocess.Popen(
        [str(huitoukan), "ui", "--raw-dir", str(raw), "--warehouse", str(base / "warehouse.duckdb"),
         "--reports-dir", str(base / "reports"), "--port", str(port), "--files-port", str(files_port),
         "--workspace", str(PROJECT / "workspace.yaml")],
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
               "repository": repository, "log": base / "ui.log"}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # huitoukan ui stops dagster dev and the file server
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()


def run_status(port: int, run_id: str) -> str:
    return graphql(port, RUN, {"id": run_id})["runOrError"]["status"]


def test_a_launched_full_rebuild_succeeds_and_its_checks_and_downloads_are_one_click_away(ui):
    port = ui["port"]
    params = {"selector": {"repositoryLocationName": ui["location"], "repositoryName": ui["repository"],
                           "jobName": "full_rebuild"}, "runConfigData": {}}
    launched = graphql(port, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = wait_for("the full_rebuild run to finish",
                      lambda: (s := run_status(port, run_id)) in FINISHED and s, RUN_TIMEOUT, every=3)
    events = graphql(port, LOGS, {"id": run_id})["logsForRun"]["events"]
    failures = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    assert status == "SUCCESS", failures

    checks = [e["evaluation"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"]
    blocking_failed = [c for c in checks if not c["success"] and c["severity"] == "ERROR"]
    assert blocking_failed == []  # the clean district passes every blocking check

    materialized = {"/".join(e["assetKey"]["path"]): e for e in events if e["__typename"] == "MaterializationEvent"}
    assert {"annex1", "annex2", "progress", "survey_template"} <= set(materialized)
    url = next(m["url"] for m in materialized["annex1"]["metadataEntries"] if m["label"] == "下载（download）")
    assert url.startswith(f"http://127.0.0.1:{ui['files_port']}/draft/")
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    assert body == (ui["base"] / "reports" / "draft" / "附件1_入户调查汇总表.xlsx").read_bytes()


def test_the_sensor_picks_the_village_files_up_and_no_run_meets_the_lock(ui):
    port = ui["port"]

    def intake_done():
        runs = graphql(port, RUNS)["runsOrError"]["results"]
        intake = [r for r in runs if r["jobName"] == "village_intake"]
        keys = {t["value"] for r in intake for t in r["tags"] if t["key"] == "dagster/partition"}
        return runs if keys >= {V1, V2} and all(r["status"] in FINISHED for r in intake) else None

    runs = wait_for("the survey sensor's village runs", intake_done, SENSOR_TIMEOUT, every=5)
    finished = [r for r in runs if r["status"] in FINISHED]
    assert [r for r in finished if r["status"] != "SUCCESS"] == []
    triggers = {t["value"] for r in runs for t in r["tags"] if t["key"] == "huitoukan/trigger"}
    assert "survey_sensor" in triggers
    assert "Could not set lock" not in ui["log"].read_text(errors="replace")
