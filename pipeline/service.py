"""The office's service: the Dagster UI, the Dagster daemon and the download server as systemd
units that keep running (``huitoukan service install|status|uninstall``; docs/deploy.md).

The units are the templates in ``deploy/`` with every ``@NAME@`` filled in. Dagster's own
processes do the work (``dagster-webserver``, ``dagster-daemon``; systemd restarts them): there is
no home-made supervisor. Every process listens on 127.0.0.1 only; the reverse proxy in front of
the UI asks for the login (the UI has none). Settings the processes share — DAGSTER_HOME, the
data folders, the PostgreSQL login — are in one owner-only environment file.
"""

from __future__ import annotations

import argparse
import getpass
import grp
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from pipeline.instances import PG_ENV, TEMPLATES, instance_kind, pg_env, write_instance_config
from pipeline.layout import (
    DEFAULT_RAW_DIR,
    DEFAULT_REPORTS_DIR,
    DEFAULT_WAREHOUSE,
    ENV_DOWNLOAD_URL,
    ENV_RAW_DIR,
    ENV_REPORTS_DIR,
    ENV_WAREHOUSE,
)

PROJECT = Path(__file__).resolve().parent.parent
DEPLOY = PROJECT / "deploy"
WEBSERVER, DAEMON, FILES, VIEWER = "huitoukan-webserver", "huitoukan-daemon", "huitoukan-files", "huitoukan-viewer"
UNITS = (WEBSERVER, DAEMON, FILES)
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_ENV_FILE = Path("/etc/huitoukan/huitoukan.env")
DEFAULT_UI_PORT, DEFAULT_FILES_PORT = 3000, 3001


@dataclass
class ServiceSpec:
    """Everything the units need; paths absolute."""

    project: Path
    bin_dir: Path
    user: str
    group: str
    env_file: Path
    dagster_home: Path
    raw: Path
    warehouse: Path
    reports: Path
    instance: str = "postgres"  # or sqlite
    ui_port: int = DEFAULT_UI_PORT
    files_port: int = DEFAULT_FILES_PORT
    read_only: bool = False
    viewer_port: int | None = None
    download_url: str | None = None  # the address people's browsers reach the downloads at (behind the proxy)


def render_unit(template: str, spec: ServiceSpec, *, port: int | None = None, read_only: bool | None = None) -> str:
    text = (DEPLOY / f"{template}.service").read_text(encoding="utf-8")
    read_only = spec.read_only if read_only is None else read_only
    after = "postgresql.service" if spec.instance == "postgres" else ""
    values = {
        "PROJECT": str(spec.project), "BIN": str(spec.bin_dir), "USER": spec.user, "GROUP": spec.group,
        "ENV_FILE": str(spec.env_file), "REPORTS": str(spec.reports), "UI_PORT": str(port or spec.ui_port),
        "FILES_PORT": str(spec.files_port), "READ_ONLY": " --read-only" if read_only else "", "AFTER": after,
    }
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    leftover = re.findall(r"@[A-Z_]+@", "\n".join(x for x in text.splitlines() if not x.startswith("#")))
    if leftover:
        raise ValueError(f"unit template {template}: unfilled {leftover}")
    return text


def render_units(spec: ServiceSpec) -> dict[str, str]:
    """unit file name -> text."""
    units = {f"{name}.service": render_unit(name, spec) for name in UNITS}
    if spec.viewer_port:
        text = render_unit(WEBSERVER, spec, port=spec.viewer_port, read_only=True)
        units[f"{VIEWER}.service"] = text.replace("Dagster UI (", "Dagster UI, read-only for viewers (").replace(
            "SyslogIdentifier=huitoukan-webserver", "SyslogIdentifier=huitoukan-viewer")
    return units


def _quote_env(value: str) -> str:
    return value if value and all(c.isalnum() or c in "/._-:+@,=" for c in value) else \
        '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_environment(spec: ServiceSpec, pg: dict[str, str] | None = None) -> str:
    values = {
        "DAGSTER_HOME": str(spec.dagster_home),
        ENV_RAW_DIR: str(spec.raw), ENV_WAREHOUSE: str(spec.warehouse), ENV_REPORTS_DIR: str(spec.reports),
        ENV_DOWNLOAD_URL: spec.download_url or f"http://127.0.0.1:{spec.files_port}",
        "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8",
    }
    if spec.instance == "postgres":
        values.update(pg or {})
    lines = ["# 回头看 (huitoukan) service environment, written by `huitoukan service install`.",
             "# Read by the three units (EnvironmentFile=); owner-only: it holds the database password."]
    lines += [f"{k}={_quote_env(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def parse_unit(text: str) -> dict:
    """The keys of a unit a process start depends on: ExecStart (argv), WorkingDirectory,
    EnvironmentFile, Environment, User (single-valued keys: the last one wins)."""
    out: dict = {"Environment": {}}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if key in ("ExecStart", "ExecStartPre"):
            out[key] = shlex.split(value)
        elif key == "Environment":
            for item in shlex.split(value):
                k, _, v = item.partition("=")
                out["Environment"][k] = v
        else:
            out[key] = value
    return out


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd reads them (comments, blank lines, double quotes)."""
    env = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        env[key.strip()] = value
    return env


def unit_process(text: str) -> tuple[list[str], dict[str, str], Path]:
    """argv, environment and working directory of a unit's ExecStart, as systemd would start it
    (a clean environment: systemd's PATH, then Environment= and EnvironmentFile=)."""
    unit = parse_unit(text)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    if unit.get("User"):
        try:
            entry = pwd.getpwnam(unit["User"])
            env.update({"USER": entry.pw_name, "LOGNAME": entry.pw_name, "HOME": entry.pw_dir,
                        "SHELL": entry.pw_shell})
        except KeyError:
            pass
    env.update(unit["Environment"])
    if unit.get("EnvironmentFile"):
        env.update(read_environment_file(Path(unit["EnvironmentFile"].lstrip("-"))))
    return unit["ExecStart"], env, Path(unit.get("WorkingDirectory") or "/")


def unit_pre_start(text: str) -> list[str] | None:
    """The unit's ExecStartPre argv (one at most in ours), or None."""
    return parse_unit(text).get("ExecStartPre")


# --------------------------------------------------------------------------------------------
# install / status / uninstall
# --------------------------------------------------------------------------------------------


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _systemctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120, check=False)


def install(spec: ServiceSpec, unit_dir: Path = DEFAULT_UNIT_DIR, *, pg: dict[str, str] | None = None,
            enable: bool = True) -> list[Path]:
    """Write the environment file, DAGSTER_HOME/dagster.yaml (when it has none) and the units;
    with ``enable``, ``systemctl daemon-reload`` and ``enable --now`` them. Returns the unit paths."""
    unit_dir = Path(unit_dir)
    spec.env_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(spec.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_environment(spec, pg))
    os.chmod(spec.env_file, 0o600)
    config = write_instance_config(spec.dagster_home, spec.instance)
    if os.geteuid() == 0 and spec.user != "root":  # installed by root, run by the service's account
        for path in (spec.dagster_home, config):
            shutil.chown(path, spec.user, spec.group)
    if not unit_dir.is_dir():
        unit_dir.mkdir(parents=True)
        unit_dir.chmod(0o755)
    written = []
    for name, text in render_units(spec).items():
        path = unit_dir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)  # systemd units are world-readable; they hold no secret
        written.append(path)
    if enable:
        for args in (("daemon-reload",), ("enable", "--now", *[p.name for p in written])):
            done = _systemctl(*args)
            if done.returncode != 0:
                raise RuntimeError(f"systemctl {' '.join(args)} 失败：{done.stderr.strip()}")
    return written


def installed_units(unit_dir: Path = DEFAULT_UNIT_DIR) -> list[Path]:
    return [p for p in (Path(unit_dir) / f"{n}.service" for n in (*UNITS, VIEWER)) if p.exists()]


def _http_ok(url: str, timeout: float = 15) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 400
    except OSError:
        return False


def _port(argv: list[str], flag: str, default: int) -> int:
    return int(argv[argv.index(flag) + 1]) if flag in argv else default


def status_lines(unit_dir: Path = DEFAULT_UNIT_DIR) -> tuple[bool, list[str]]:
    """Each unit (systemd's view when systemd runs), whether the UI and the downloads answer on
    loopback, whether the instance opens and the daemon's last heartbeat."""
    units = installed_units(unit_dir)
    if not units:
        return False, [f"未安装：{unit_dir} 中没有 huitoukan 的服务单元（先运行 huitoukan service install）"]
    ok, lines, env = True, [], {}
    use_systemd = systemd_running()
    for path in units:
        text = path.read_text(encoding="utf-8")
        argv, env, _ = unit_process(text)
        state = ""
        if use_systemd:
            active = _systemctl("is-active", path.name).stdout.strip()
            enabled = _systemctl("is-enabled", path.name).stdout.strip()
            state = f"{active}/{enabled}"
            ok &= active == "active"
        probe = ""
        if path.stem in (WEBSERVER, VIEWER):
            port = _port(argv, "-p", DEFAULT_UI_PORT)
            answers = _http_ok(f"http://127.0.0.1:{port}/server_info")
            probe = f"界面 http://127.0.0.1:{port} " + ("有响应" if answers else "无响应")
            ok &= answers
        elif path.stem == FILES:
            port = _port(argv, "--port", DEFAULT_FILES_PORT)
            answers = _http_ok(f"http://127.0.0.1:{port}/")
            probe = f"下载 http://127.0.0.1:{port} " + ("有响应" if answers else "无响应")
            ok &= answers
        lines.append(f"{path.stem}: {state or '（本机 systemd 未运行）'} {probe}".rstrip())
    lines.extend(_instance_lines(env))
    return ok, lines


def _instance_lines(env: dict[str, str]) -> list[str]:
    import time

    from pipeline.instances import InstanceUnavailable, open_instance

    home = env.get("DAGSTER_HOME")
    if not home:
        return ["Dagster 实例：环境文件中没有 DAGSTER_HOME"]
    # the units' login, seen only while the instance loads (its yaml reads DAGSTER_PG_* then)
    try:
        with mock.patch.dict(os.environ, {k: v for k, v in env.items() if k in PG_ENV}):
            instance = open_instance(home)
    except InstanceUnavailable as exc:
        return [str(exc)]
    import dagster as dg

    with instance:
        beats = instance.get_daemon_heartbeats()
        queued = instance.get_runs_count(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    newest = max((b.timestamp for b in beats.values()), default=None)
    age = f"{time.time() - newest:.0f} 秒前" if newest else "从未"
    return [f"Dagster 实例：可以连接（{instance_kind(home)}，DAGSTER_HOME={home}）",
            f"守护进程最近一次心跳：{age}；排队中的运行：{queued}"]


def uninstall(unit_dir: Path = DEFAULT_UNIT_DIR) -> list[Path]:
    """Stop, disable and remove the units (the environment file, DAGSTER_HOME and all data stay)."""
    units = installed_units(unit_dir)
    if units and systemd_running():
        _systemctl("disable", "--now", *[p.name for p in units])
    for path in units:
        path.unlink()
    if units and systemd_running():
        _systemctl("daemon-reload")
    return units


# --------------------------------------------------------------------------------------------
# the commands
# --------------------------------------------------------------------------------------------


def spec_from_args(args: argparse.Namespace) -> ServiceSpec:
    def absolute(value, env, default) -> Path:
        return Path(value or os.environ.get(env) or default).resolve()

    owner = PROJECT.stat().st_uid
    user = args.user or (pwd.getpwuid(owner).pw_name if owner != 0 else getpass.getuser())
    try:
        group = args.group or grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        grp.getgrnam(group)
    except KeyError:
        raise KeyError(user if args.group is None else f"{user}/{args.group}") from None
    return ServiceSpec(
        project=PROJECT, bin_dir=Path(sys.executable).parent, user=user, group=group,
        env_file=Path(args.env_file).resolve(),
        dagster_home=absolute(args.dagster_home, "DAGSTER_HOME", PROJECT / ".dagster_home"),
        raw=absolute(args.raw_dir, ENV_RAW_DIR, PROJECT / DEFAULT_RAW_DIR),
        warehouse=absolute(args.warehouse, ENV_WAREHOUSE, PROJECT / DEFAULT_WAREHOUSE),
        reports=absolute(args.reports_dir, ENV_REPORTS_DIR, PROJECT / DEFAULT_REPORTS_DIR),
        instance=args.instance, ui_port=args.port, files_port=args.files_port, read_only=args.read_only,
        viewer_port=args.viewer_port, download_url=args.download_url)


def cmd_install(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
    except KeyError as exc:
        print(f"错误：账户或用户组 {exc.args[0]} 不存在；先建账户（adduser --system --group huitoukan）", file=sys.stderr)
        return 2
    pg = None
    if spec.instance == "postgres":
        pg = pg_env(args.postgres_url) if args.postgres_url else {k: os.environ[k] for k in PG_ENV if k in os.environ}
        missing = [k for k in PG_ENV[:4] if not pg.get(k)]
        if missing:
            print("错误：PostgreSQL 实例需要连接信息：--postgres-url postgresql://用户:密码@127.0.0.1:5432/库名"
                  f"（或环境变量 {', '.join(PG_ENV)}）；不用 PostgreSQL 时加 --instance sqlite", file=sys.stderr)
            return 2
    home_config = spec.dagster_home / "dagster.yaml"
    if home_config.exists() and instance_kind(spec.dagster_home) != spec.instance:
        print(f"注意：{home_config} 已存在且使用 {instance_kind(spec.dagster_home)}，保留不改；"
              f"要改用 {spec.instance}，请用 {TEMPLATES[spec.instance]} 替换它", file=sys.stderr)
    enable = not args.no_enable
    if enable and not systemd_running():
        print("本机 systemd 未运行：只写入单元文件，不启用（加 --no-enable 可去掉此提示）", file=sys.stderr)
        enable = False
    try:
        written = install(spec, Path(args.unit_dir), pg=pg, enable=enable)
    except (OSError, RuntimeError) as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"已写入 {path}")
    print(f"环境文件（仅属主可读）：{spec.env_file}")
    print(f"Dagster 实例：{spec.instance}，DAGSTER_HOME={spec.dagster_home}")
    print(f"界面 http://127.0.0.1:{spec.ui_port}（只读：{'是' if spec.read_only else '否'}），"
          f"下载 http://127.0.0.1:{spec.files_port}" +
          (f"，只读查看界面 http://127.0.0.1:{spec.viewer_port}" if spec.viewer_port else ""))
    print("已启用并启动（systemctl enable --now）" if enable else
          "未启用：以 root 运行 systemctl daemon-reload && systemctl enable --now " + " ".join(p.name for p in written))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    ok, lines = status_lines(Path(args.unit_dir))
    for line in lines:
        print(line)
    return 0 if ok else 1


def cmd_check(args: argparse.Namespace) -> int:
    """The units' ExecStartPre: the instance of $DAGSTER_HOME opens, or one message naming it."""
    from pipeline.instances import InstanceUnavailable, describe_instance, open_instance

    if not os.environ.get("DAGSTER_HOME"):
        print("错误：DAGSTER_HOME 未设置（服务的环境文件中应有）", file=sys.stderr)
        return 2
    try:
        open_instance().dispose()
    except InstanceUnavailable as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    print(f"{describe_instance()}：可以连接")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    removed = uninstall(Path(args.unit_dir))
    for path in removed:
        print(f"已停用并删除 {path}")
    if not removed:
        print(f"{args.unit_dir} 中没有 huitoukan 的服务单元")
    print("数据、报表、签字包、DAGSTER_HOME 和环境文件都保留未动")
    return 0


def add_commands(subparsers) -> None:
    """``huitoukan service install|status|uninstall``."""
    p = subparsers.add_parser("service", help="常驻服务：界面、守护进程、下载 (systemd units; docs/deploy.md)")
    sub = p.add_subparsers(dest="service_command", required=True)

    q = sub.add_parser("install", help="写入并启用 systemd 单元 (write and enable the units)")
    q.add_argument("--unit-dir", default=str(DEFAULT_UNIT_DIR))
    q.add_argument("--env-file", default=str(DEFAULT_ENV_FILE), help="环境文件（含数据库密码，仅属主可读）")
    q.add_argument("--user", default=None, help="运行服务的账户（默认项目文件夹的属主）")
    q.add_argument("--group", default=None)
    q.add_argument("--dagster-home", default=None, help="默认 $DAGSTER_HOME 或 项目/.dagster_home")
    q.add_argument("--raw-dir", default=None)
    q.add_argument("--warehouse", default=None)
    q.add_argument("--reports-dir", default=None)
    q.add_argument("--instance", choices=["postgres", "sqlite"], default="postgres")
    q.add_argument("--postgres-url", default=None, help="postgresql://用户:密码@127.0.0.1:5432/库名")
    q.add_argument("--port", type=int, default=DEFAULT_UI_PORT, help="界面端口（仅 127.0.0.1）")
    q.add_argument("--files-port", type=int, default=DEFAULT_FILES_PORT, help="下载端口（仅 127.0.0.1）")
    q.add_argument("--read-only", action="store_true", help="界面只读：只能查看，不能启动运行")
    q.add_argument("--viewer-port", type=int, default=None, help="另开一个只读界面给查看的人（端口）")
    q.add_argument("--download-url", default=None, help="浏览器访问下载的地址（经反向代理时），如 https://服务器/files")
    q.add_argument("--no-enable", action="store_true", help="只写文件，不运行 systemctl")
    q.set_defaults(func=cmd_install)

    q = sub.add_parser("status", help="各单元、界面、下载、实例和守护进程的状态")
    q.add_argument("--unit-dir", default=str(DEFAULT_UNIT_DIR))
    q.set_defaults(func=cmd_status)

    q = sub.add_parser("check", help="Dagster 实例能否连接（服务启动前的检查）")
    q.set_defaults(func=cmd_check)

    q = sub.add_parser("uninstall", help="停用并删除单元（数据都保留）")
    q.add_argument("--unit-dir", default=str(DEFAULT_UNIT_DIR))
    q.set_defaults(func=cmd_uninstall)
