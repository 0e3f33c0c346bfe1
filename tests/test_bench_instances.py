"""``huitoukan bench --instances``: each instance's children get their own environment; the
benchmark's own process environment is never changed (issue #14: nothing writes os.environ)."""

import os

import pytest
import yaml

from pipeline.bench_instances import instance_environment
from pipeline.instances import ENV_PG_POOL, TEMPLATES


@pytest.mark.parametrize("kind", ["ephemeral", "sqlite"])
def test_children_get_the_instance_and_this_process_keeps_its_environment(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "the_callers_home"))
    before = dict(os.environ)
    with instance_environment(kind, tmp_path, None) as env:
        assert dict(os.environ) == before
        if kind == "ephemeral":
            assert "DAGSTER_HOME" not in env  # an in-memory instance in the child
        else:
            home = env["DAGSTER_HOME"]
            assert home != before["DAGSTER_HOME"]
            with open(os.path.join(home, "dagster.yaml"), encoding="utf-8") as f:
                assert yaml.safe_load(f) == yaml.safe_load(TEMPLATES["sqlite"].read_text(encoding="utf-8"))
        assert ENV_PG_POOL not in env
    assert dict(os.environ) == before


def test_postgres_without_a_url_says_what_it_needs(tmp_path):
    before = dict(os.environ)
    with pytest.raises(SystemExit, match="--postgres-url"), instance_environment("postgres-nullpool", tmp_path, None):
        pass
    assert dict(os.environ) == before
