"""Sign-off (签字): the leader's decision on the drafts, the gate before anything is final.

Materialize ``signoff`` (UI launchpad, or ``huitoukan signoff``) with run config ``signer``,
``decision`` (同意 / 不同意) and ``comment`` — nothing else: the data paths are the deployment's
resources (``build_resources``), not run config.

Why the config is optional: the UI's "Materialize all" selects every asset, the sign-off too,
and the UI offers no way to leave one out; a required ``signer``/``decision`` made that button
fail (RunConfigValidationInvalid) and its remedy was to type 同意. A separate job or op that
Materialize-all cannot reach would hide the sign-off from the lineage where outputs.md puts it.
So with no decision the asset signs nothing, writes nothing under signed/, and records only
"未给出决定：未签字" beside the 签字条件 table — Materialize-all succeeds and never signs. A
decision other than 同意/不同意 fails with a Chinese message (the launchpad's own enum error is
English, so the value is a string checked here). 同意 is refused — the run fails with every reason
listed — while a blocking problem is open, a 涉农 village has not submitted, a department has
not returned its extract, or a draft is missing or older than its inputs or than the last build
of the warehouse. Otherwise it writes ``reports/signed/<签字时间>/``: the six 附件, the two 公示
lists, 签字确认单.xlsx and manifest.json (sha256 of every file in the package and of every input
file), read-only, never overwritten. Every decision (and every refusal) is appended to
``reports/signed/签字记录.jsonl``.
"""


import datetime as dt
import enum
import json
import os
import platform
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from pipeline.assets.signoff_readiness import conditions_table
from pipeline.io.excel import TOTAL_LABEL, parse_totals_text, write_notice_workbook, write_sheets_workbook
from pipeline.metadata import download_links
from pipeline.package_signing import (
    SigningKeyError,
    default_key_dir,
    describe,
    load_private_key,
    sha256_file,
    sign_manifest,
    signature_entry,
)
from pipeline.privacy import mask_name, mask_text
from pipeline.readiness import (
    PACKAGE_ASSETS,
    gate_reasons,
    git_commit,
    input_files,
    office_now,
    package_files,
)
from pipeline.resources import WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource
from pipeline.resources.warehouse import last_build
from pipeline.rules.notices import ANNOUNCEMENT_FILE, HOUSEHOLDS_PER_PAGE, NOTICE_SQL, announcement
from pipeline.settings import show_time

LOG_FILE = "签字记录.jsonl"
CONFIRMATION_FILE = "签字确认单.xlsx"
MANIFEST_FILE = "manifest.json"
FOLDER_FORMAT = "%Y%m%dT%H%M%S"  # 20190520T093000
SIGNED_AT, AGREED, DISAGREED, REFUSED = "signed", "同意", "不同意", "refused"
FILE_MODE, DIR_MODE = 0o444, 0o555


class Decision(enum.Enum):
    同意 = "同意"
    不同意 = "不同意"


NO_DECISION = "未给出决定：未签字（no decision given: nothing signed）"


class SignoffConfig(dg.Config):
    signer: str = Field(default="", description="签字人：区脱贫攻坚领导小组组长（或代为操作的分析员写明“某某代签”）")
    decision: str = Field(default="", description="同意：签发附件1–6；不同意：记录意见，不形成签字包；"
                                                  "留空：不签字（“物化全部”时即如此）")
    comment: str = Field(default="", description="意见（不同意时请写明原因）")


def parse_decision(value: str) -> Decision | None:
    """同意 / 不同意, or None when no decision is given; anything else fails in Chinese."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return Decision(text)
    except ValueError:
        raise dg.Failure(description=f"决定只能填写“同意”或“不同意”，不能是“{mask_text(text)[:20]}”"
                                     "（decision must be 同意 or 不同意）", allow_retries=False) from None


class SignoffRefused(Exception):
    pass


def append_log(folder: Path, entry: dict) -> Path:
    """Append one decision to 签字记录.jsonl in the signed folder (never rewritten; owner-readable
    only: it names the signer)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / LOG_FILE
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def table_counts(path: Path) -> list[dict]:
    """Households and persons of each data sheet of a packaged workbook, from its 合计 row (or
    the number of data rows when a sheet has none, e.g. a 公示 list)."""
    from python_calamine import CalamineWorkbook

    out = []
    wb = CalamineWorkbook.from_path(str(path))
    for name in wb.sheet_names:
        if name in ("汇总", "设置"):
            continue
        rows = wb.get_sheet_by_name(name).to_python()
        totals = None
        for row in rows:
            if row and str(row[0]).strip().startswith(TOTAL_LABEL):
                totals = next((parse_totals_text(str(v)) for v in row if parse_totals_text(str(v))), None)
                break
        data = sum(1 for row in rows[3:] if row and isinstance(row[0], (int, float)) and not isinstance(row[0], bool))
        out.append({"sheet": name, "households": totals[0] if totals else None,
                    "persons": totals[1] if totals else None, "rows": data})
    return out


def _reserve_package_folder(signed: Path, now: dt.datetime) -> tuple[Path, str]:
    """Create (exclusively) a folder no package has used: the signing time, -2, -3… within the
    same second. Reserving it empty means a concurrent sign-off can never pick the same name."""
    base = now.strftime(FOLDER_FORMAT)
    for n in range(1, 1000):
        name = base if n == 1 else f"{base}-{n}"
        try:
            (signed / name).mkdir(mode=0o700)
            return signed / name, name
        except FileExistsError:
            continue
    raise SignoffRefused("无法创建签字包文件夹")


def write_package(reports: Path, signed: Path, raw: Path, *, signer: str, comment: str, now: dt.datetime,
                  settings, reasons_checked: list[str], key_dir: Path | None = None,
                  announced: pd.DataFrame | None = None) -> tuple[Path, dict]:
    """Build the package in a hidden folder next to the signed ones, verify every copy, sign its
    manifest with the office's key (``key_dir``, default package_signing.default_key_dir(); none:
    the manifest says it is unsigned), make it read-only and only then give it its final name (so
    a half-written package is never seen). ``announced`` (rows of rules.notices.NOTICE_SQL: the
    households of 附件2/3) becomes the 公告, dated at the signature; it exists only in the package."""
    try:
        key = load_private_key(key_dir or default_key_dir())
    except SigningKeyError as exc:
        raise SignoffRefused(str(exc)) from exc
    signed.mkdir(parents=True, exist_ok=True, mode=0o700)
    final, name = _reserve_package_folder(signed, now)
    staging = signed / f".incoming-{name}-{os.getpid()}"
    try:
        staging.mkdir(mode=0o700)
        outputs, counts = [], []
        for item in package_files(reports):
            source = reports / item.relative
            expected = sha256_file(source)
            target = staging / item.name
            shutil.copyfile(source, target)
            digest = sha256_file(target)
            if digest != expected:
                raise SignoffRefused(f"{item.relative} 在复制时被改写，请稍后重试")
            outputs.append({"file": item.name, "table": item.label, "source": item.relative,
                            "sha256": digest, "bytes": target.stat().st_size})
            for c in table_counts(target):
                counts.append({"表": item.label, "工作表": c["sheet"], "户数": c["households"],
                               "人数": c["persons"], "数据行数": c["rows"]})
        if announced is not None:
            notice = announcement(settings, announced, now.date())
            target = staging / ANNOUNCEMENT_FILE
            write_notice_workbook(target, notice, households_per_page=HOUSEHOLDS_PER_PAGE)
            outputs.append({"file": ANNOUNCEMENT_FILE, "table": "公告", "source": None,
                            "sha256": sha256_file(target), "bytes": target.stat().st_size})
            counts.append({"表": "公告", "工作表": notice.sheet, "户数": notice.households,
                           "人数": notice.persons, "数据行数": notice.households})
        confirmation = staging / CONFIRMATION_FILE
        _write_confirmation(confirmation, settings, signer=signer, comment=comment, now=now,
                            package=name, counts=counts, outputs=outputs)
        outputs.append({"file": CONFIRMATION_FILE, "table": "签字确认单", "source": None,
                        "sha256": sha256_file(confirmation), "bytes": confirmation.stat().st_size})
        manifest = {
            "package": name,
            "signed_at": now.isoformat(),
            "signer": signer,
            "decision": AGREED,
            "comment": comment,
            "outputs": outputs,
            "inputs": [{"file": p.relative_to(raw).as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size,
                        "modified": dt.datetime.fromtimestamp(p.stat().st_mtime, now.tzinfo).isoformat()}
                       for p in input_files(raw)],
            "counts": counts,
            "settings": settings.to_json(),
            "software": _software(),
            "source": git_commit(),
            "gate": {"checked_at": now.isoformat(), "reasons": reasons_checked},
            "signature": signature_entry(key),
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        if key is not None:
            sign_manifest(staging, key)  # manifest.json.sig: huitoukan verify checks it
        for path in staging.iterdir():
            path.chmod(FILE_MODE)
        staging.chmod(DIR_MODE)
        os.rename(staging, final)  # onto the empty folder reserved above; never onto a package
    except BaseException:
        if staging.exists():
            staging.chmod(0o700)
            shutil.rmtree(staging, ignore_errors=True)
        if final.is_dir() and not any(final.iterdir()):
            final.rmdir()
        raise
    return final, manifest


def _software() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("huitoukan", "dagster", "duckdb", "pandas", "great-expectations", "openpyxl", "xlsxwriter"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return versions


def _write_confirmation(path: Path, settings, *, signer: str, comment: str, now: dt.datetime, package: str,
                        counts: list[dict], outputs: list[dict]) -> None:
    title = f"{settings.reference_date.year}年脱贫质量“回头看”签字确认单"
    record = pd.DataFrame({
        "项目": ["签字人", "签字时间", "决定", "意见", "签字包"],
        "内容": [signer, show_time(now, settings), AGREED, comment or "（无）", package],
    })
    files = pd.DataFrame([{"文件": o["file"], "表": o["table"], "字节": o["bytes"], "sha256": o["sha256"]}
                          for o in outputs])
    write_sheets_workbook(path, {
        "签字确认单": (title, record),
        "各表户数人数": (title, pd.DataFrame(counts, columns=["表", "工作表", "户数", "人数", "数据行数"])),
        "文件校验": (title, files),
    }, settings, now.replace(tzinfo=None), text_columns={"内容", "文件", "sha256", "表", "工作表"},
        number_rows=False, signature={"签字确认单"}, document_title=title)
    path.chmod(0o600)


@dg.asset(
    group_name="step9_signoff", pool=WAREHOUSE_POOL, kinds={"excel"},
    deps=[*PACKAGE_ASSETS, "signoff_readiness"],
)
def signoff(context: dg.AssetExecutionContext, config: SignoffConfig, paths: PathsResource,
            warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """签字：领导小组组长对草稿的决定（sign-off）。填写 signer（签字人）、decision（同意/不同意）、
    comment（意见）后物化；不填决定时（如“物化全部”）不签字，只显示签字条件。
    (Launch it with config ``signer``, ``decision``, ``comment``.) 同意 is refused, with every reason
    listed, while a blocking problem is open, a
    涉农 village has not submitted, a department has not returned its extract, or a 附件 draft is
    missing or older than its inputs; otherwise it writes the read-only package
    reports/signed/<签字时间>/ (附件1–6, 公示 lists, 签字确认单.xlsx, manifest.json with sha256 of
    every output and input). 不同意 is recorded in reports/signed/签字记录.jsonl, with no package.
    A signed package is never changed afterwards."""
    signer = config.signer.strip()
    chosen = parse_decision(config.decision)
    comment = config.comment.strip()
    tz = settings.get().tz
    now = office_now(tz)
    with warehouse.connect(read_only=True) as con:
        built = last_build(con)
        reasons = gate_reasons(con, paths.raw, paths.reports, built)
        table = conditions_table(con, paths, built, tz)
        announced = con.execute(NOTICE_SQL).df()  # the 公告's households (附件2/3), if it is signed
    if chosen is None:  # Materialize-all, or a launch without a decision: nothing is signed
        return dg.MaterializeResult(metadata={
            "结果（outcome）": NO_DECISION, "签字条件（sign-off conditions）": table,
            "时间（time）": now.isoformat()})
    if not signer:
        raise dg.Failure(description="签字人不能为空（signer is required with a decision）",
                         metadata={"签字条件（sign-off conditions）": table}, allow_retries=False)
    decision = chosen.value
    entry = {"time": now.isoformat(), "signer": signer, "decision": decision, "comment": comment,
             "run_id": context.run_id}
    base_meta = {"决定（decision）": decision, "签字人（signer, masked）": mask_name(signer),
                 "时间（time）": now.isoformat(), "签字条件（sign-off conditions）": table}

    if decision == DISAGREED:
        log = append_log(paths.signed, {**entry, "outcome": "recorded", "open_reasons": reasons})
        return dg.MaterializeResult(metadata={
            **base_meta,
            "结果（outcome）": "不同意：已记录，未形成签字包",
            "当时未满足的条件（open reasons）": dg.MetadataValue.md(
                "\n".join(f"- {mask_text(r)}" for r in reasons) or "（无）"),
            "签字记录（log）": dg.MetadataValue.path(str(log.resolve())),
        })

    if reasons:
        append_log(paths.signed, {**entry, "outcome": REFUSED, "reasons": reasons})
        listed = "\n".join(f"{i}. {mask_text(r)}" for i, r in enumerate(reasons, start=1))
        raise dg.Failure(
            description=f"不能签字（同意）：{len(reasons)} 个条件未满足：\n{listed}",
            metadata={"签字条件（sign-off conditions）": table,
                      "未满足的原因（reasons）": dg.MetadataValue.md("\n".join(f"- {mask_text(r)}" for r in reasons)),
                      "原因数（reason count）": len(reasons)},
            allow_retries=False,
        )

    try:
        folder, manifest = write_package(paths.reports, paths.signed, paths.raw, signer=signer, comment=comment, now=now,
                                         settings=settings.get(), reasons_checked=reasons, announced=announced)
    except SignoffRefused as exc:
        append_log(paths.signed, {**entry, "outcome": REFUSED, "reasons": [str(exc)]})
        raise dg.Failure(description=f"不能签字（同意）：{exc}", allow_retries=False) from exc
    append_log(paths.signed, {**entry, "outcome": SIGNED_AT, "package": folder.name,
                               "manifest_sha256": sha256_file(folder / MANIFEST_FILE)})
    counts = {f"{c['表']}/{c['工作表']}": [c["户数"], c["人数"]] for c in manifest["counts"]}
    return dg.MaterializeResult(metadata={
        **base_meta,
        "结果（outcome）": "同意：已形成签字包",
        "签字包（package）": folder.name,
        "文件数（files）": len(manifest["outputs"]),
        "已计算校验值的输入文件（inputs hashed）": len(manifest["inputs"]),
        "各表户数/人数（households/persons per table）": dg.MetadataValue.json(counts),
        "manifest sha256": sha256_file(folder / MANIFEST_FILE),
        "signature": describe(manifest["signature"]),
        **download_links(paths, folder / CONFIRMATION_FILE, folder / MANIFEST_FILE),
        "path": dg.MetadataValue.path(str(folder.resolve())),
    })
