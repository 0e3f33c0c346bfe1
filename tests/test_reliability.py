"""Faults survived, nothing lost (issue #7).

- Unreadable and hostile inputs (corrupt, truncated, encrypted, empty, no survey sheet, a
  department CSV in an unexpected encoding, a 200 MB workbook, zip bombs, XML entity attacks) are
  refused with their path and reason, in bounded time and memory, while every other file is
  processed.
- A file still being copied is not read half-written; one whose copy stalled is read once complete.
- A `huitoukan run` killed (SIGKILL) while ingesting, while writing the warehouse, while writing the
  reports, or as a step picked at random starts leaves the warehouse and the drafts as the previous
  run left them, and the next run recovers on its own.
- Two runs on one warehouse take turns; a run that cannot get the warehouse in time says so and
  changes nothing.
- Re-running with unchanged inputs changes no table and no report cell.

The `huitoukan run`s of the killed-runs part fake Great Expectations and pin the day the progress
report counts from (RUN says why): GE is not what they are about, and the clock must not be.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from builders import SheetSpec, default_village, household, make_id, member, write_registry, write_survey, write_villages

from pipeline.instances import INSTANCE_TEMPLATE
from pipeline.io.inputs import FILE_READ, FILE_UNREADABLE
from pipeline.io.survey import MAX_FILE_BYTES

PROJECT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 900  # one whole run of a small district, on a loaded 2-core machine
PAUSE_TIMEOUT = 600  # until a hooked run reaches its pause point

GOOD_VILLAGE = "210505004201"
GOOD_HEADS = (make_id("19500101", 11), make_id("19620202", 13))

# ============================================================================================
# Crafted files
# ============================================================================================

_MIB = 1 << 20
SST_HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
            b"<si><t>")
SST_TAIL = b"</t></si></sst>"
LAUGHS_DTD = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<!DOCTYPE %s [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
 <!ENTITY xxe SYSTEM "file:///etc/passwd">
]>
"""
ATTACK = b"&lol9;&xxe;"


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


@functools.cache  # six bombs of one size: the crc32 of 1.5 GB costs ~1 s each time
def _bomb_part(head: bytes, megabytes: int, tail: bytes) -> tuple[bytes, int, int]:
    """(raw deflate stream, crc32, size) of ``head + "A" * megabytes MiB + tail``, built in
    milliseconds: after a full flush the compressor's output for the same 1 MiB repeats."""
    chunk = b"A" * _MIB
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    end = c.compress(tail) + c.flush()
    crc = zlib.crc32(head)
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
    return start + piece * megabytes + end, zlib.crc32(tail, crc), len(head) + megabytes * _MIB + len(tail)


def _write_zip(path: Path, entries: list[tuple[str, bytes, int, int]]) -> None:
    """A zip of (name, deflated data, crc32, declared uncompressed size), written by hand so the
    declared size can be anything."""
    out, central = bytearray(), bytearray()
    for name, data, crc, size in entries:
        raw = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(raw), 0)
        out += raw + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data), size, len(raw),
                               0, 0, 0, 0, 0, offset) + raw
    at = len(out)
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), at, 0)
    path.write_bytes(bytes(out))


def _rebuild(src: Path, dst: Path, parts: dict[str, bytes | tuple[bytes, int, int]],
             declare: dict[str, int] | None = None) -> Path:
    """``src`` with some parts replaced (plain bytes, or a ready deflate stream) and, optionally,
    other sizes declared than the real ones."""
    entries = []
    with zipfile.ZipFile(src) as z:
        for name in z.namelist():
            part = parts.get(name, None)
            if isinstance(part, tuple):
                data, crc, size = part
            else:
                content = z.read(name) if part is None else part
                data, crc, size = _deflate(content), zlib.crc32(content), len(content)
            entries.append((name, data, crc, (declare or {}).get(name, size)))
    dst.parent.mkdir(parents=True, exist_ok=True)
    _write_zip(dst, entries)
    return dst


def _strip_declaration(xml: bytes) -> bytes:
    return xml[xml.index(b"?>") + 2:].lstrip() if xml.startswith(b"<?xml") else xml


def _good_survey(path: Path, heads=GOOD_HEADS, village=GOOD_VILLAGE) -> Path:
    write_survey(path, SheetSpec([household(h, seq=i + 1) for i, h in enumerate(heads)]),
                 SheetSpec([member(h, h, seq=i + 1) for i, h in enumerate(heads)]), village_code=village)
    return path


def _shared_strings_part(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return next(n for n in z.namelist() if n.endswith("sharedStrings.xml"))


def craft_zip_bomb(good: Path, dst: Path, megabytes: int = 1500, declare: int | None = None) -> Path:
    """A workbook whose shared strings unpack to ``megabytes`` MiB of one string (honestly
    declared unless ``declare`` says otherwise)."""
    name = _shared_strings_part(good)
    part = _bomb_part(SST_HEAD, megabytes, SST_TAIL)
    return _rebuild(good, dst, {name: part}, {name: declare} if declare is not None else None)


def craft_xml_attack(good: Path, dst: Path, where: str) -> Path:
    """A workbook whose shared strings (``where="strings"``) or first sheet (``"sheet"``) carries
    a billion-laughs DTD and an external entity on /etc/passwd, used in a cell."""
    with zipfile.ZipFile(good) as z:
        if where == "strings":
            name = _shared_strings_part(good)
            xml = _strip_declaration(z.read(name))
            start = xml.index(b"<si><t>") + len(b"<si><t>")
            xml = xml[:start] + ATTACK + xml[xml.index(b"</t>", start):]
            root = b"sst"
        else:
            name = "xl/worksheets/sheet1.xml"
            xml = _strip_declaration(z.read(name))
            at = xml.index(b"</sheetData>")
            xml = xml[:at] + b'<row r="900"><c r="A900" t="inlineStr"><is><t>' + ATTACK + b"</t></is></c></row>" + xml[at:]
            root = b"worksheet"
    return _rebuild(good, dst, {name: LAUGHS_DTD % root + xml})


def craft_huge(good: Path, dst: Path) -> Path:
    """A workbook just over the size limit: a real xlsx extended into a sparse file."""
    shutil.copyfile(good, dst)
    with dst.open("r+b") as fh:
        fh.truncate(MAX_FILE_BYTES + _MIB)
    return dst


# ============================================================================================
# Bounded reading: each hostile file read in a child process limited to 2 GB of address space
# ============================================================================================

MEMORY_LIMIT = 2 << 30
READ_TIMEOUT = 300
READER = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (%d, %d))
from pathlib import Path
from pipeline.io.survey import UnreadableWorkbook, read_survey
from pipeline.io.departments import read_department_file
from pipeline.io.inputs import read_registry
from pipeline.schema import DEPARTMENTS
import openpyxl


def read(path, reader):
    if reader == "survey":
        return {k: s.frame.astype(str).to_dict("list") for k, s in read_survey(path).sheets.items()}
    if reader == "department":
        f, frame = read_department_file(path, DEPARTMENTS[0], path.parent)
        if f.error:
            raise UnreadableWorkbook(f.error)
        return frame.astype(str).to_dict("list")
    if reader == "registry":
        f = read_registry(path.parent.parent).files[0]
        if f["error"]:
            raise UnreadableWorkbook(f["error"])
        return f
    wb = openpyxl.load_workbook(path, read_only=reader == "openpyxl-read-only")
    return [[str(v) for v in row] for ws in wb.worksheets for row in ws.iter_rows(values_only=True)]


for key, path, reader in json.loads(sys.argv[1]):
    print(json.dumps({"key": key, "started": True}), flush=True)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"key": key}
    try:
        out["ok"] = read(Path(path), reader)
    except UnreadableWorkbook as exc:
        out["refused"] = str(exc)
    except Exception as exc:
        cause = exc.__cause__ or exc.__context__
        out["error"] = f"{type(exc).__name__}: {exc}" + (f" <- {type(cause).__name__}: {cause}" if cause else "")
    out["seconds"] = time.perf_counter() - started
    out["grew_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
    print(json.dumps(out, ensure_ascii=False), flush=True)
""" % (MEMORY_LIMIT, MEMORY_LIMIT)  # noqa: UP031 (the script holds braces)


def read_bounded(cases: list[tuple[str, Path, str]]) -> dict[str, dict]:
    """Read each (key, path, reader) in one child process limited to 2 GB of address space: a
    reader that inflated a bomb would die there, not here. Returns {key: outcome}; a case that
    killed the child has the child's last words instead."""
    proc = subprocess.run([sys.executable, "-c", READER, json.dumps([(k, str(p), r) for k, p, r in cases])],
                          capture_output=True, text=True, timeout=READ_TIMEOUT, cwd=PROJECT)
    out: dict[str, dict] = {}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if record.pop("started", False):
            out[record["key"]] = {"died": f"exit {proc.returncode}: {proc.stderr[-1500:]}"}
        else:
            out[record["key"]] = record
    for record in out.values():
        record["raw"] = json.dumps(record, ensure_ascii=False)
    return out


HOSTILE = ("huge", "zip_bomb", "lying_zip_bomb", "xml_strings", "xml_sheet")
READERS = ("survey", "department", "registry")
XML_READERS = ("openpyxl", "openpyxl-read-only")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    good = _good_survey(d / "good.xlsx")
    files = {
        "good": good,
        "huge": craft_huge(good, d / "huge.xlsx"),
        "zip_bomb": craft_zip_bomb(good, d / "zip_bomb.xlsx"),  # declares 1.5 GB, unpacks to it
        "lying_zip_bomb": craft_zip_bomb(good, d / "lying_zip_bomb.xlsx", declare=1000),  # declares 1 kB
        "xml_strings": craft_xml_attack(good, d / "xml_strings.xlsx", "strings"),
        "xml_sheet": craft_xml_attack(good, d / "xml_sheet.xlsx", "sheet"),
    }
    for name, path in files.items():  # the registry reader reads registry/ of a data root
        folder = d / f"root_{name}" / "registry"
        folder.mkdir(parents=True)
        os.link(path, folder / path.name)
    return files


@pytest.fixture(scope="module")
def bounded_reads(hostile) -> dict[str, dict]:
    cases = [("good/survey", hostile["good"], "survey")]
    for name in HOSTILE:
        path = hostile[name]
        for reader in READERS:
            at = path.parent / f"root_{name}" / "registry" / path.name if reader == "registry" else path
            cases.append((f"{name}/{reader}", at, reader))
    cases += [(f"{name}/{reader}", hostile[name], reader) for name in ("xml_strings", "xml_sheet")
              for reader in XML_READERS]
    return read_bounded(cases)


def test_crafted_files_are_what_they_claim(hostile, bounded_reads):
    """The bombs really unpack to gigabytes (checked on a prefix), and the good file reads."""
    assert bounded_reads["good/survey"].get("ok"), bounded_reads["good/survey"]
    with zipfile.ZipFile(hostile["zip_bomb"]) as z:
        info = z.getinfo(_shared_strings_part(hostile["good"]))
        assert info.file_size > 1 << 30
        with z.open(info) as fh:
            assert fh.read(20 * _MIB).count(b"A") > 19 * _MIB
    assert hostile["huge"].stat().st_size > MAX_FILE_BYTES
    assert hostile["huge"].stat().st_blocks * 512 < 10 * _MIB  # sparse: costs no disk


@pytest.mark.parametrize("name,reason", [
    ("huge", "过大"), ("zip_bomb", "压缩炸弹"), ("lying_zip_bomb", ""), ("xml_strings", ""), ("xml_sheet", ""),
])
@pytest.mark.parametrize("reader", READERS)
def test_hostile_workbook_is_refused_in_bounded_time_and_memory(bounded_reads, name, reason, reader):
    out = bounded_reads[f"{name}/{reader}"]
    assert "died" not in out, out["died"]
    assert "ok" not in out, f"{name} was read as data by the {reader} reader"
    assert reason in (out.get("refused") or out.get("error") or "")
    assert out["seconds"] < 30 and out["grew_mb"] < 500, out
    assert "root:" not in out["raw"] and "lollol" not in out["raw"]


@pytest.mark.parametrize("name", ["xml_strings", "xml_sheet"])
@pytest.mark.parametrize("reader", XML_READERS)
def test_openpyxl_does_not_expand_entities(bounded_reads, name, reader):
    out = bounded_reads[f"{name}/{reader}"]
    assert "died" not in out and "ok" not in out, out
    assert "EntitiesForbidden" in out["error"] or "DTDForbidden" in out["error"]
    assert out["seconds"] < 30 and out["grew_mb"] < 500
    assert "root:" not in out["raw"] and "lollol" not in out["raw"]


def test_openpyxl_reads_through_defusedxml():
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML


# ============================================================================================
# Every kind of unreadable input in one data root beside a good village, through the pipeline
# ============================================================================================

BAD_SURVEYS = {  # file under surveys/坏文件/ -> a word its reason must contain
    "损坏.xlsx": "不是Excel文件",
    "截断.xlsx": "损坏",
    "加密.xlsx": "密码",
    "空文件.xlsx": "空",
    "空工作簿.xlsx": "表头",
    "无调查表.xlsx": "工作表",
    "超大.xlsx": "过大",
    "压缩炸弹.xlsx": "压缩炸弹",
    "谎报大小.xlsx": "无法",
    "XML实体.xlsx": "无法",
    "旧格式损坏.xls": "无法打开",
}


def _empty_workbook(path: Path, sheets: list[str]) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    for name in sheets:
        wb.add_worksheet(name)
    wb.close()


def build_faulty_root(raw: Path, scratch: Path) -> None:
    write_villages(raw, [default_village()])
    good = _good_survey(raw / "surveys" / "思山岭街道" / "财神庙村.xlsx")
    write_registry(raw, [{"hh_no": "21050500420100", "village_code": GOOD_VILLAGE, "head_name": "张*", "name": "张*",
                          "person_id": GOOD_HEADS[0], "relation": "户主", "poor_attribute": "一般贫困户",
                          "status": "已脱贫(享受政策)", "identified_year": 2015, "exit_year": 2017}])
    bad = raw / "surveys" / "坏文件"
    bad.mkdir(parents=True)
    data = good.read_bytes()
    (bad / "损坏.xlsx").write_bytes(hashlib.sha256(b"x").digest() * 200)
    (bad / "截断.xlsx").write_bytes(data[: len(data) // 2])
    (bad / "加密.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4096)  # how Excel stores it
    (bad / "空文件.xlsx").write_bytes(b"")
    _empty_workbook(bad / "空工作簿.xlsx", ["家庭基本情况", "家庭成员情况"])
    _empty_workbook(bad / "无调查表.xlsx", ["Sheet1"])
    craft_huge(good, bad / "超大.xlsx")
    craft_zip_bomb(good, bad / "压缩炸弹.xlsx")
    craft_zip_bomb(good, bad / "谎报大小.xlsx", declare=1000)
    craft_xml_attack(good, bad / "XML实体.xlsx", "strings")
    (bad / "旧格式损坏.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x01" * 4096)
    # departments: a good tax batch in GBK beside one in UTF-16; a zip bomb as a market extract;
    # and the registry: a zip bomb beside the good roster
    tax = raw / "departments" / "tax"
    tax.mkdir(parents=True)
    header = "纳税人姓名,证件类型,证件号码,所得项目,所属期起,所属期止,收入额,实缴税额\n"
    row = f"张*,居民身份证,{GOOD_HEADS[1]},工资薪金所得,2018-01-01,2018-12-31,90000,1200\n"
    (tax / "第1批.csv").write_bytes((header + row).encode("gbk"))
    (tax / "第2批.csv").write_bytes((header + row).encode("utf-16"))
    craft_zip_bomb(good, raw / "departments" / "market" / "市场主体登记.xlsx")
    craft_zip_bomb(good, raw / "registry" / "炸弹.xlsx")


# (`make test` hands whole files to its workers: a module fixture's run is made once.)
FAULTY = pytest.mark.integration


@dataclass
class FaultyRun:
    raw: Path
    warehouse: Path
    reports: Path
    result: object  # the Dagster result
    grew_mb: int  # how far the run pushed this process's (and its workers') peak memory


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory) -> FaultyRun:
    from conftest import run_district

    root = tmp_path_factory.mktemp("faulty")
    raw, warehouse, reports = root / "raw", root / "w.duckdb", root / "reports"
    build_faulty_root(raw, root)
    peak = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    warehouse, reports, result = run_district(raw, root)
    grew = max(resource.getrusage(who).ru_maxrss - before
               for who, before in zip((resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN), peak))
    return FaultyRun(raw, warehouse, reports, result, grew // 1024)


@FAULTY
def test_faulty_files_do_not_stop_the_run(faulty_run):
    failures = [e.step_key for e in faulty_run.result.all_events if e.is_step_failure]
    assert faulty_run.result.success, failures


@FAULTY
def test_the_hostile_files_cost_no_memory(faulty_run):
    """Three bombs of 1.5 GB each (a survey, a department extract, a registry file): none inflated."""
    assert faulty_run.grew_mb < 700


@FAULTY
def test_each_unreadable_survey_is_reported_with_path_and_reason(faulty_run):
    with duckdb.connect(str(faulty_run.warehouse), read_only=True) as con:
        files = {f: (s, r) for f, s, r in con.execute("SELECT file, status, reason FROM survey_files").fetchall()}
    assert files.pop("surveys/思山岭街道/财神庙村.xlsx")[0] == FILE_READ
    assert set(files) == {f"surveys/坏文件/{name}" for name in BAD_SURVEYS}
    for name, word in BAD_SURVEYS.items():
        status, reason = files[f"surveys/坏文件/{name}"]
        assert status == FILE_UNREADABLE and word in reason, (name, reason)
    metadata = faulty_run.result.asset_materializations_for_node("survey_workbooks")[-1].metadata
    listed = metadata["无法读取的文件（unreadable）"].value
    for name in BAD_SURVEYS:
        assert f"surveys/坏文件/{name}" in listed


@FAULTY
def test_the_good_village_is_processed_beside_them(faulty_run):
    import openpyxl

    with duckdb.connect(str(faulty_run.warehouse), read_only=True) as con:
        heads = {r[0] for r in con.execute("SELECT head_id FROM households").fetchall()}
        registry = con.execute("SELECT count(*) FROM registry").fetchone()[0]
    assert heads == set(GOOD_HEADS)
    assert registry == 1  # the good roster is read, the bomb beside it is not
    annex1 = faulty_run.reports / "draft" / "附件1_入户调查汇总表.xlsx"
    ws = openpyxl.load_workbook(annex1, read_only=True)["家庭基本情况"]
    texts = {v for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)}
    assert set(GOOD_HEADS) <= texts


@FAULTY
def test_unreadable_department_and_registry_files_are_reported(faulty_run):
    with duckdb.connect(str(faulty_run.warehouse), read_only=True) as con:
        returns = {r[0]: r[1:] for r in con.execute(
            "SELECT dept, files, rows, errors, error_detail FROM department_returns").fetchall()}
    files, rows, errors, detail = returns["tax"]
    assert (files, rows, errors) == (2, 1, 1)  # the GBK batch is read, the UTF-16 one is refused
    assert "departments/tax/第2批.csv" in detail and "无法读取CSV" in detail
    files, rows, errors, detail = returns["market"]
    assert (files, rows, errors) == (1, 0, 1) and "压缩炸弹" in detail
    registry = faulty_run.result.asset_materializations_for_node("registry")[-1].metadata
    assert "registry/炸弹.xlsx" in registry["无法读取的文件（unreadable files）"].value
    assert "压缩炸弹" in registry["无法读取的文件（unreadable files）"].value


# ============================================================================================
# Files still being copied
# ============================================================================================


def test_a_file_dated_ahead_of_the_clock_is_read(tmp_path, monkeypatch):
    """Copied with its time from a machine whose clock runs ahead: not "still being written"."""
    from pipeline.io.survey_store import update_store

    raw = tmp_path / "raw"
    path = _good_survey(raw / "surveys" / "a.xlsx")
    ahead = time.time() + 86400
    os.utime(path, (ahead, ahead))
    monkeypatch.setattr("pipeline.io.inputs.SETTLE_SECONDS", 60)
    con = duckdb.connect()
    assert update_store(con, raw, settle=True).read == 1
    assert {r[0] for r in con.execute("SELECT head_id FROM stg_households").fetchall()} == set(GOOD_HEADS)


def test_a_copy_that_stalled_half_way_is_read_once_complete(tmp_path):
    """A copy that paused longer than the settle time is seen truncated and refused; when the
    copy completes (new time and size) the file is read, with no manual step."""
    from pipeline.io.survey_store import update_store

    raw = tmp_path / "raw"
    whole = _good_survey(tmp_path / "source.xlsx").read_bytes()
    path = raw / "surveys" / "a.xlsx"
    path.parent.mkdir(parents=True)
    path.write_bytes(whole[: len(whole) // 2])
    os.utime(path, (1_556_000_000, 1_556_000_000))
    con = duckdb.connect()
    update_store(con, raw, settle=True)
    status, reason = con.execute("SELECT status, reason FROM survey_files").fetchone()
    assert status == FILE_UNREADABLE and "损坏" in reason
    assert con.execute("SELECT count(*) FROM stg_households").fetchone()[0] == 0
    path.write_bytes(whole)
    os.utime(path, (1_556_000_100, 1_556_000_100))
    assert update_store(con, raw, settle=True).read == 1
    assert con.execute("SELECT status FROM survey_files").fetchone()[0] == FILE_READ
    assert {r[0] for r in con.execute("SELECT head_id FROM stg_households").fetchall()} == set(GOOD_HEADS)


# ============================================================================================
# Killed runs, concurrent runs, re-runs: `huitoukan run` subprocesses on a sample district
# ============================================================================================

# What DuckDB or Dagster say when two writers meet: never shown to the user.
LOCK_ERRORS = ("Traceback", "IOException", "Could not set lock", "Conflicting lock", "database is locked")
# Columns that record when something happened, not what: they differ between any two runs.
VOLATILE_COLUMNS = {"read_at", "built_at", "run_id"}  # asset_builds: when, not what


def warehouse_snapshot(path: Path) -> dict[str, str]:
    """Every table's sorted content hash, read from a copy of the warehouse (with its WAL), so the
    check neither needs nor changes the state the next run finds."""
    with tempfile.TemporaryDirectory() as tmp:
        for item in path.parent.glob(path.name + "*"):
            if item.is_file() and not item.name.endswith(".lock"):
                shutil.copy2(item, Path(tmp) / item.name)
        con = duckdb.connect(str(Path(tmp) / path.name))
        try:
            tables = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
            out = {}
            for table in tables:
                columns = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall() if r[0] not in VOLATILE_COLUMNS]
                rows = con.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} FROM "{table}"').fetchall()
                out[table] = hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()
        finally:
            con.close()
    return out


def reports_snapshot(reports: Path) -> dict[str, list]:
    """Every cell of every sheet of every output workbook (each must load), except the lines that
    say when it was generated; hidden files (a killed write's leftovers) are not outputs."""
    out = {}
    for path in sorted(reports.rglob("*.xlsx")):
        rel = path.relative_to(reports)
        if any(part.startswith(".") for part in rel.parts) or rel.parts[0] in ("signed", "template"):
            continue
        digest = hashlib.sha256(path.read_bytes()).digest()
        if digest not in _CELLS:
            _CELLS[digest] = _workbook_cells(path)
        out[rel.as_posix()] = _CELLS[digest]
    return out


# The cells of each workbook read so far, by the hash of its bytes: the same bytes hold the same
# cells, so a workbook a killed run left untouched is not parsed again (~2 s a snapshot).
_CELLS: dict[bytes, list] = {}


def _workbook_cells(path: Path) -> list:
    """Every cell value of every sheet, row by row from A1 (python-calamine, the pipeline's own
    reader: the snapshots only compare one run's values with another's, and openpyxl parsed the
    same cells ~10x slower)."""
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    cells = []
    for name in wb.sheet_names:
        for r, row in enumerate(wb.get_sheet_by_name(name).to_python(skip_empty_area=False), start=1):
            if not any(isinstance(v, str) and "生成时间" in v for v in row):
                cells.append((name, r, tuple(row)))
    wb.close()
    return cells


def assert_same(got: dict, expected: dict, what: str) -> None:
    assert sorted(got) == sorted(expected), f"{what}: different set of tables/files"
    changed = [k for k in expected if got[k] != expected[k]]
    assert not changed, f"{what} changed: {changed}"


# Every `huitoukan run` of this section is started through RUN: the real command
# (`pipeline.cli.main`: its argument parsing, the warehouse's run lock, the runner, the persistent
# Dagster instance), with two things these tests are not about held still, and, when
# TEST_PAUSE_AT says so, a pause at a chosen point where the test kills it. The hooks wrap
# functions of the pipeline before it runs; nothing in the pipeline knows about them.
# - Great Expectations is faked and its check left out (tests/fakes.py), in every run alike so
#   the snapshots compare: the real resource starts a worker process that imports GE (8–14 s of
#   CPU per run, seven runs here). What a killed run does to its GE worker is test_ge_worker's
#   test_a_worker_whose_run_was_killed_ends_and_its_folder_goes; the expectations are
#   test_quality's.
# - The day the progress report counts from (进度.xlsx: 截至…, 剩余天数, 是否逾期) is the
#   District's, given as the `progress` asset's own `today` config: on the real clock a run after
#   midnight in Beijing (16:00 UTC) would change those cells, and the comparison of every cell
#   with the first run's would fail for a reason that is not the test's.
RUN = r"""
import os, sys, time
from pathlib import Path

sys.path.insert(0, %(tests)r)
import pipeline.resources
import pipeline.runner
from fakes import WITHOUT_GE_CHECK, FakeGreatExpectations

build_resources = pipeline.resources.build_resources  # looked up by pipeline.cli when it runs


def build_resources_faking_ge(*args, ge=None, **kwargs):
    return build_resources(*args, ge=ge or FakeGreatExpectations(), **kwargs)


pipeline.resources.build_resources = build_resources_faking_ge
run_pipeline = pipeline.runner.run_pipeline  # looked up by pipeline.cli when it runs


def run_pipeline_on_the_test_day(resources, *, run_config=None, **kwargs):
    config = dict(run_config or {})
    config["ops"] = {**config.get("ops", {}), "progress": {"config": {"today": os.environ["TEST_TODAY"]}}}
    return run_pipeline(resources, run_config=config, checks=WITHOUT_GE_CHECK, **kwargs)


pipeline.runner.run_pipeline = run_pipeline_on_the_test_day
point, _, arg = os.environ.get("TEST_PAUSE_AT", "").partition(":")


def hold(what):
    Path(os.environ["TEST_PAUSE_MARKER"]).write_text(what)
    time.sleep(%(pause)d)  # the test kills this process long before
    os._exit(97)


if point == "ingest":
    # inside update_store's transaction: the cache rows of a re-read file deleted and inserted again
    from pipeline.io import survey_store
    files_frame = survey_store.files_frame

    def paused_files_frame(records):
        frame = files_frame(records)
        hold("ingest")
        return frame

    survey_store.files_frame = paused_files_frame
elif point == "warehouse":
    # a table just replaced inside its asset's transaction (data_problems: problems, then
    # open_problems, then COMMIT): the new rows written, not committed
    from pipeline.resources import warehouse
    replace_table = warehouse.replace_table

    def paused_replace_table(con, name, frame):
        count = replace_table(con, name, frame)
        if name == arg:
            hold("warehouse:" + name)
        return count

    warehouse.replace_table = pipeline.resources.replace_table = paused_replace_table
elif point == "report":
    # a workbook being written: its rows streamed to the temp folder, the file not yet renamed
    import xlsxwriter
    close = xlsxwriter.Workbook.close

    def paused_close(self):
        if arg in Path(self.filename).name:
            hold("report:" + Path(self.filename).name)
        return close(self)

    xlsxwriter.Workbook.close = paused_close

from pipeline.cli import main
sys.exit(main(sys.argv[1:]))
""" % {"tests": str(Path(__file__).resolve().parent), "pause": PAUSE_TIMEOUT}  # noqa: UP031 (the script holds braces)


KILLED = pytest.mark.integration


@dataclass
class District:
    root: Path
    raw: Path
    warehouse: Path
    reports: Path
    home: Path
    tables: dict[str, str]
    cells: dict[str, list]
    steps: list[str]  # the first run's steps, in the order they started
    kills: int = 0  # runs this module killed
    today: str = "2019-05-12"  # every run's progress report counts the days left from here (see RUN)

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DAGSTER_HOME": str(self.home), "HUITOUKAN_SETTLE_SECONDS": "0",
                "HUITOUKAN_LOG_LEVEL": "ERROR", "TEST_TODAY": self.today, **extra}

    def args(self) -> list[str]:
        return ["run", "--raw-dir", str(self.raw), "--warehouse", str(self.warehouse), "--reports-dir", str(self.reports)]

    def command(self) -> list[str]:
        return [sys.executable, "-c", RUN, *self.args()]

    def start(self, name: str, **env: str) -> subprocess.Popen:
        """A run (through RUN) in its own process group, its output in files (DEBUG logs
        overflow a pipe)."""
        out = (self.root / f"{name}.out").open("w")
        err = (self.root / f"{name}.err").open("w")
        return subprocess.Popen(self.command(), env=self.env(**env), stdout=out, stderr=err,
                                cwd=self.root, start_new_session=True)

    def output(self, name: str) -> tuple[str, str]:
        return (self.root / f"{name}.out").read_text(), (self.root / f"{name}.err").read_text()

    def run(self, name: str, **env: str) -> tuple[int, str, str]:
        proc = self.start(name, **env)
        try:
            code = proc.wait(timeout=RUN_TIMEOUT)
        finally:
            _kill(proc)
        return (code, *self.output(name))

    def instance(self):
        import dagster as dg
        from dagster._core.instance.ref import InstanceRef

        return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(self.home)))


def _kill(proc: subprocess.Popen) -> bool:
    """SIGKILL the run and anything it started (its own process group), then reap it; whether it
    was still running."""
    running = proc.poll() is None
    if running:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return running


@pytest.fixture(scope="module")
def district(tmp_path_factory) -> Iterator[District]:
    from conftest import fast_scratch

    with fast_scratch(tmp_path_factory, "killed") as root:  # tmpfs: the same SIGKILLs, no fsync per event
        yield _first_run(root)


def _first_run(root: Path) -> District:
    from pipeline.sample.generator import generate

    raw = root / "raw"
    generate(raw, households=300, seed=23)
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(INSTANCE_TEMPLATE, home / "dagster.yaml")  # the warehouse pool `make run` and `make ui` use
    d = District(root, raw, root / "warehouse" / "huitoukan.duckdb", root / "reports", home, {}, {}, [])
    code, _, err = d.run("first")
    assert code == 0, err[-3000:]
    import dagster as dg

    instance = d.instance()
    (run,) = instance.get_runs()
    d.steps = [e.step_key for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)]
    instance.dispose()
    assert len(d.steps) > 20
    d.tables, d.cells = warehouse_snapshot(d.warehouse), reports_snapshot(d.reports)
    assert len(d.tables) > 20 and any(k.startswith("draft/附件") for k in d.cells)
    assert any(f"截至{d.today}" in str(row) for _, _, row in d.cells["进度.xlsx"])  # RUN's day, not the clock's
    return d


def kill_at(d: District, name: str, point: str) -> str:
    """Start a hooked run, wait until it holds at ``point``, SIGKILL it; returns where it held."""
    marker = d.root / f"{name}.paused"
    proc = d.start(name, TEST_PAUSE_AT=point, TEST_PAUSE_MARKER=str(marker))
    deadline = time.monotonic() + PAUSE_TIMEOUT
    try:
        while not marker.exists():
            assert proc.poll() is None, f"the run ended before {point}: {d.output(name)[1][-3000:]}"
            assert time.monotonic() < deadline, f"the run never reached {point}"
            time.sleep(0.2)
    finally:
        d.kills += _kill(proc)
    return marker.read_text()


def assert_as_before(d: District, what: str) -> None:
    assert_same(warehouse_snapshot(d.warehouse), d.tables, f"warehouse after {what}")
    assert_same(reports_snapshot(d.reports), d.cells, f"reports after {what}")


@KILLED
def test_killed_while_ingesting(district):
    d = district
    survey = sorted((d.raw / "surveys").rglob("*.xlsx"))[0]
    stat = survey.stat()
    os.utime(survey, (stat.st_atime, stat.st_mtime + 1))  # so the run reads it again, in the transaction
    try:
        assert kill_at(d, "kill_ingest", "ingest") == "ingest"
    finally:
        os.utime(survey, (stat.st_atime, stat.st_mtime))
    assert_as_before(d, "a kill while ingesting")


@KILLED
def test_killed_while_writing_the_warehouse(district):
    assert kill_at(district, "kill_warehouse", "warehouse:problems") == "warehouse:problems"
    assert_as_before(district, "a kill while a table was being replaced")


@KILLED
def test_killed_while_writing_the_reports(district):
    """Held while 附件4 is being written, after 附件1–3 of this run were already renamed into place."""
    d = district
    where = kill_at(d, "kill_report", "report:附件4")
    assert where.startswith("report:.附件4")
    assert_as_before(d, "a kill while writing the reports")
    # what the killed write left: hidden, owner-only, removed by a later write once stale
    leftovers = [p for p in (d.reports / "draft").iterdir() if p.name.startswith(".")]
    assert leftovers
    for item in leftovers:
        assert (item.stat().st_mode & 0o077) == 0, item


@KILLED
def test_killed_at_a_step_picked_at_random(district):
    """SIGKILL as soon as a step picked at random from the first run's steps has started (the
    step is named in any failure, to reproduce it)."""
    import dagster as dg

    d = district
    step = random.choice(d.steps[1:-3])
    instance = d.instance()
    known = {r.run_id for r in instance.get_runs()}
    proc = d.start("kill_random")
    deadline = time.monotonic() + PAUSE_TIMEOUT
    try:
        while True:
            assert proc.poll() is None, f"the run ended before step {step} started"
            assert time.monotonic() < deadline, f"step {step} never started"
            new = [r.run_id for r in instance.get_runs() if r.run_id not in known]
            if new and step in {e.step_key for e in instance.all_logs(new[0], of_type=dg.DagsterEventType.STEP_START)}:
                break
            time.sleep(0.2)
    finally:
        d.kills += _kill(proc)
        instance.dispose()
    assert_as_before(d, f"a kill when step {step} had started")


@dataclass
class TwoRuns:
    codes: list[int]
    errs: list[str]  # their stderr
    tables: dict[str, str]  # the warehouse and the reports once both had ended
    cells: dict[str, list]


@pytest.fixture(scope="module")
def two_runs(district) -> TwoRuns:
    """After the kills above, two `huitoukan run`s started at once: the first to get the warehouse
    is the run after the kills (it has to recover), the other waits for it and then re-runs with
    unchanged inputs. Made once for the two tests below: each of these runs costs a whole run."""
    d = district
    first, second = d.start("together_1"), d.start("together_2")
    try:
        codes = [first.wait(timeout=2 * RUN_TIMEOUT), second.wait(timeout=2 * RUN_TIMEOUT)]
    finally:
        _kill(first)
        _kill(second)
    errs = [d.output("together_1")[1], d.output("together_2")[1]]
    if codes != [0, 0]:  # the tests say which failed and how
        return TwoRuns(codes, errs, {}, {})
    return TwoRuns(codes, errs, warehouse_snapshot(d.warehouse), reports_snapshot(d.reports))


@KILLED
def test_next_run_recovers_and_changes_nothing(district, two_runs):
    """After the kills above: exit 0 with no manual cleanup, every table and report cell as the
    first run left them (a re-run with unchanged inputs changes nothing), the killed runs closed
    and the warehouse pool's slot free again. (Whichever of the two runs got the warehouse first
    recovered; both must end like this.)"""
    d = district
    for code, err in zip(two_runs.codes, two_runs.errs):
        assert code == 0, err[-3000:]
        assert "Traceback" not in err
    assert_same(two_runs.tables, d.tables, "warehouse after the recovery run")
    assert_same(two_runs.cells, d.cells, "reports after the recovery run")
    instance = d.instance()
    try:
        import dagster as dg

        statuses = [r.status for r in instance.get_runs()]
        assert statuses.count(dg.DagsterRunStatus.FAILURE) == d.kills  # each killed run closed by the next
        assert dg.DagsterRunStatus.STARTED not in statuses
        assert instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots == []
    finally:
        instance.dispose()


@KILLED
def test_two_runs_at_once_take_turns(district, two_runs):
    errs = two_runs.errs
    assert two_runs.codes == [0, 0], errs
    assert sum("等待" in e for e in errs) == 1, errs  # exactly one of them waited, and said so
    for err in errs:
        assert not [s for s in LOCK_ERRORS if s in err], err
    assert_same(two_runs.tables, district.tables, "warehouse after two runs at once")
    assert_same(two_runs.cells, district.cells, "reports after two runs at once")


@KILLED
def test_a_run_that_cannot_get_the_warehouse_gives_up_cleanly(district, monkeypatch, capsys):
    """While another holder has the warehouse's lock, a run waits up to its timeout, then says so,
    exits non-zero, and has changed nothing: no table, no report, no Dagster run. The command
    (`pipeline.cli.main`, what `huitoukan` calls) runs in this process: it gives up before a run
    starts, so a process of its own would add nothing but its imports (~3 s of CPU); the lock is
    an flock, which an open file of this process holds against another exactly as another process
    would (two processes meeting: test_two_runs_at_once_take_turns)."""
    from pipeline.cli import main

    d = district
    before = {p: p.stat().st_mtime_ns for p in [d.warehouse, *d.reports.rglob("*.xlsx")]}
    instance = d.instance()
    runs_before = len(instance.get_runs())
    for name, value in d.env(HUITOUKAN_LOCK_TIMEOUT="1").items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    lock = d.warehouse.with_name(d.warehouse.name + ".lock")
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        capsys.readouterr()
        code = main(d.args())
    err = capsys.readouterr().err
    assert code == 3
    assert "等待" in err and "仍被另一个运行占用" in err and "Traceback" not in err
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert len(instance.get_runs()) == runs_before
    instance.dispose()
