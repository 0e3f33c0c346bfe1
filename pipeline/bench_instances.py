"""The Dagster bookkeeping per step on each instance, side by side in one benchmark run:

    huitoukan bench --persons 2000 --runs 1 --instances sqlite,postgres --postgres-url postgresql://…

For each instance the same district (same seed) is run through ``bench.bench_size`` — a full
rebuild in a child process, then one village changed — with DAGSTER_HOME pointing at a fresh
home made from the project's template (config/dagster.yaml for SQLite, config/dagster.postgres.yaml
for PostgreSQL, on a database of its own when the role may create one). The bookkeeping is the
time the run spends in ``DagsterInstance.handle_new_event`` (storing each event and the run's
status), per step and per event; the table also shows everything outside the steps per step
(bench's ``overhead_per_step``, which adds run start, resources and the executor). Without
--instances the benchmark is as before (an in-memory instance).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from pipeline.instances import ENV_PG_POOL, PG_ENV, TEMPLATES, pg_env

# postgres-nullpool: a new connection per event, as in the runs the daemon launches (run workers)
INSTANCES = ("ephemeral", "sqlite", "postgres", "postgres-nullpool")


def time_event_bookkeeping() -> dict:
    """Time every ``DagsterInstance.handle_new_event`` of this process (storing the event, the
    run's status, notifying watchers): the instance's bookkeeping, apart from the steps' work.
    Returns the dict it keeps adding to: {"seconds", "events"}."""
    from dagster import DagsterInstance

    totals = {"seconds": 0.0, "events": 0}
    original = DagsterInstance.handle_new_event

    def timed(self, event, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, event, **kwargs)
        finally:
            totals["seconds"] += time.perf_counter() - started
            totals["events"] += 1

    DagsterInstance.handle_new_event = timed
    return totals


@contextlib.contextmanager
def _database(url: str):
    """A fresh database next to the one of ``url`` when the role may create one (dropped after),
    else the database of ``url`` itself."""
    import psycopg2

    name = f"huitoukan_bench_{uuid.uuid4().hex[:8]}"
    plain = url.replace("postgresql+psycopg2://", "postgresql://", 1)
    try:
        con = psycopg2.connect(plain, connect_timeout=10)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        con.close()
    except psycopg2.Error:
        yield pg_env(url)
        return
    env = pg_env(url)
    env["DAGSTER_PG_DB"] = name
    try:
        yield env
    finally:
        with contextlib.suppress(psycopg2.Error):
            con = psycopg2.connect(plain, connect_timeout=10)
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            con.close()


@contextlib.contextmanager
def instance_environment(kind: str, work: Path, postgres_url: str | None) -> Iterator[dict[str, str]]:
    """The children's environment for ``kind``: this process's, with DAGSTER_HOME (a fresh home
    from the project's template) and the PostgreSQL login; this process's own is left alone."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", ENV_PG_POOL, *PG_ENV)}
    nullpool = kind == "postgres-nullpool"
    if nullpool:
        kind, env[ENV_PG_POOL] = "postgres", "0"
    if kind == "ephemeral":
        yield env
        return
    home = work / f"dagster_home_{kind}{'_nullpool' if nullpool else ''}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True, mode=0o700)
    shutil.copyfile(TEMPLATES[kind], home / "dagster.yaml")
    env["DAGSTER_HOME"] = str(home.resolve())
    if kind == "sqlite":
        yield env
        return
    if not postgres_url:
        raise SystemExit("bench --instances postgres needs --postgres-url postgresql://user:pw@127.0.0.1:5432/db "
                         "(or $HUITOUKAN_BENCH_PG_URL)")
    with _database(postgres_url) as login:
        yield {**env, **login}


def bench_instances(persons: int, runs: int, work: Path, kinds: list[str], postgres_url: str | None,
                    bench_size) -> list[dict]:
    """``bench_size`` (pipeline.bench's, handed in: bench imports this module) on each instance."""
    rows = []
    for kind in kinds:
        with instance_environment(kind, work, postgres_url) as env:
            started = time.perf_counter()
            row = bench_size(persons, runs, work / kind, env=env)
        row["instance"] = kind
        row["bench_seconds"] = time.perf_counter() - started
        rows.append(row)
    return rows


def render(rows: list[dict]) -> str:
    head = ("persons", "instance", "steps", "events stored", "full s", "incr s",
            "event storage/step ms", "per event ms", "all outside steps/step ms")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        lines.append(" | ".join([
            f"{r['persons'] or r['persons_requested']:,}", r["instance"], str(r["steps"]), str(r["events_stored"]),
            f"{r['full_wall_seconds']:.1f}", f"{r['incremental_wall_seconds']:.1f}",
            f"{r['event_store_per_step'] * 1000:.0f}", f"{r['event_store_per_event'] * 1000:.1f}",
            f"{r['overhead_per_step'] * 1000:.0f}"]))
    return "\n".join(lines)


def main(args, bench_size) -> int:
    """``huitoukan bench --instances …`` (called by bench.main with its parsed arguments)."""
    import json

    kinds = [k.strip() for k in args.instances.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(INSTANCES))
    if unknown:
        raise SystemExit(f"unknown instance(s) {unknown}; choose from {', '.join(INSTANCES)}")
    url = args.postgres_url or os.environ.get("HUITOUKAN_BENCH_PG_URL")
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for persons in sorted(int(p) for p in args.persons.split(",")):
        rows += bench_instances(persons, args.runs, work, kinds, url, bench_size)
        print(render(rows), flush=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = out / f"bench_instances_{stamp}.json"
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"results: {path}")
    return 0
