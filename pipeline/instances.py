"""Which Dagster instance a process uses, and one clear message when it cannot be reached.

Two instance configurations ship with the project: ``config/dagster.yaml`` (SQLite files in
DAGSTER_HOME: the embedded default of ``make run``) and ``config/dagster.postgres.yaml``
(PostgreSQL at ``$DAGSTER_PG_HOST``/``_PORT``/``_DB``/``_USER``/``_PASSWORD``: the office
server's, ``huitoukan service install``). Both have the same warehouse pool and run queue.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parent.parent
ENV_PG_POOL = "HUITOUKAN_PG_POOL"  # 0: a new connection per event, as dagster-postgres does in run workers
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD")
TEMPLATES = {"sqlite": PROJECT / "config" / "dagster.yaml", "postgres": PROJECT / "config" / "dagster.postgres.yaml"}
# not named dagster.yaml at the top: dagster warns about a dagster.yaml outside DAGSTER_HOME
INSTANCE_TEMPLATE = TEMPLATES["sqlite"]
DEFAULT_DAGSTER_HOME = ".dagster_home"


class InstanceUnavailable(Exception):
    """The Dagster instance cannot be opened; the message names it and says what to do."""


def instance_kind(home: Path | str) -> str:
    """``postgres`` when DAGSTER_HOME's dagster.yaml keeps its storage in PostgreSQL, else ``sqlite``."""
    import yaml

    path = Path(home) / "dagster.yaml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return "sqlite"
    storage = config.get("storage") or {}
    return "postgres" if "postgres" in storage or "dagster_postgres" in str(config.get("run_storage")) else "sqlite"


def pg_env(url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables of config/dagster.postgres.yaml from one URL
    ``postgresql://user:password@host:port/db`` (tests, the benchmark, the service installer)."""
    from urllib.parse import unquote

    parts = urlsplit(url)
    return dict(zip(PG_ENV, (parts.hostname or "127.0.0.1", str(parts.port or 5432), parts.path.lstrip("/"),
                             unquote(parts.username or ""), unquote(parts.password or ""))))


def pg_location() -> str:
    """host:port/database and user of the instance's server, never its password."""
    host, port, db, user = (os.environ.get(name, "") for name in PG_ENV[:4])
    if not (host and db):
        return f"（环境变量 {', '.join(PG_ENV[:4])} 未设置）"
    return f"{host}:{port or 5432}/{db}，用户 {user}"


def describe_instance(home: Path | str | None = None) -> str:
    home = Path(home or os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    if instance_kind(home) == "postgres":
        return f"Dagster 实例（PostgreSQL {pg_location()}；DAGSTER_HOME={home}）"
    return f"Dagster 实例（SQLite；DAGSTER_HOME={home}）"


def _root_message(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first = lines[0] if lines else exc.__class__.__name__
    for secret in filter(None, [os.environ.get("DAGSTER_PG_PASSWORD")]):
        first = first.replace(secret, "***")
    return first[:300]


def unavailable_message(exc: BaseException, home: Path | str | None = None) -> str:
    what = describe_instance(home)
    cause = _root_message(exc)
    if "postgres" in what.lower():
        return (f"无法连接 {what}：{cause}。"
                "已排队的运行保存在数据库里，不会丢失：PostgreSQL 恢复后，守护进程（huitoukan-daemon）会接着启动它们。"
                "请检查 PostgreSQL 服务（systemctl status postgresql）和 DAGSTER_PG_* 设置。")
    return f"无法打开 {what}：{cause}"


def open_instance(home: Path | str | None = None):
    """The instance of ``home`` (default $DAGSTER_HOME); InstanceUnavailable when it cannot be
    opened (PostgreSQL down, $DAGSTER_PG_URL not set, a broken dagster.yaml)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    home = Path(home or os.environ["DAGSTER_HOME"]).resolve()
    try:
        instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
        if instance_kind(home) == "postgres" and os.environ.get(ENV_PG_POOL, "1") != "0":
            # dagster-postgres opens a new connection for every event it stores (NullPool); a
            # run in this process holds one instead (Dagster's own switch for the webserver):
            # measured 38 -> 12 ms per event on a loaded machine (bench --instances)
            instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
        instance.get_runs_count()  # the storage answers, not only a lazily built object
    except Exception as exc:  # noqa: BLE001 — whatever the storage raises, the message is the same
        raise InstanceUnavailable(unavailable_message(exc, home)) from exc
    return instance


def ensure_dagster_home(home: Path | str) -> Path:
    """The instance folder, with the project's dagster.yaml copied in when it has none (an edited
    copy is never overwritten)."""
    home = Path(home).resolve()
    write_instance_config(home, "sqlite")
    return home


def write_instance_config(home: Path | str, kind: str) -> Path:
    """DAGSTER_HOME/dagster.yaml from the ``kind`` template, when it has none (an edited copy is
    kept). Returns its path."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(TEMPLATES[kind], target)
    return target
