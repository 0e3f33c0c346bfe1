"""Personal data: nothing leaks, nothing typed in a village file becomes a formula, only the owner
can read what a run writes, and the UI listens on this machine only (outputs.md, "What never
leaves in the clear"; issue #7).

One `huitoukan run` of a sample district (with DEBUG logging and a persistent Dagster instance,
as `make run` uses) is shared by the module; every full ID number and every full name that the
input files hold is then looked for in everything that is not one of the outputs allowed to
carry them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from builders import SheetSpec, household, make_id, member, write_survey
from conftest import fast_scratch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.instances import INSTANCE_TEMPLATE
from pipeline.rules.ids import check_char, repair_id
from pipeline.sample.generator import ANSWER_KEY, generate

PROJECT = Path(__file__).resolve().parent.parent
HUITOUKAN = Path(sys.executable).parent / "huitoukan"
RUN_TIMEOUT = 900

# Strings a village might type that a spreadsheet would take for a formula.
FORMULAS = ('=HYPERLINK("http://x","y")', "+1", "-1", "@SUM(A1)")
FORMULA_VILLAGE, FORMULA_VILLAGE_NAME = "210505004299", "公式测试村"
FORMULA_NAMES = ("欧阳铁柱", "上官翠花")  # real-looking names of that village (they must not leak either)

# Where names and ID numbers may appear (outputs.md): the 附件 drafts, the 公示 lists (names only),
# the problem lists and a signed package. The blank template carries none.
ALLOWED_DIRS = ("draft", "public", "problems", "signed", "template")
NAME_COLUMNS = ("户主姓名", "姓名", "经营者或法定代表人", "纳税人姓名", "买受人", "机动车所有人", "学生姓名")
_CJK = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
_ID_TOKEN = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9Xx])")
_ID18 = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9X]"
                   r"(?![0-9X])")

pytestmark = pytest.mark.integration


_ID_RUN = re.compile(r"[0-9Xx]{15,}")  # every character an ID can have (digits, X as typed or repaired)
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")


def _contained(text: str, wanted: set[str], runs: re.Pattern) -> set[str]:
    """The strings of ``wanted`` that occur in ``text`` (as ``w in text`` finds them), for strings
    made only of the characters ``runs`` matches runs of: each occurrence lies inside one such run,
    so only the runs' windows are looked up — seconds less than a substring search per string in
    a large file (GE's Data Docs ship a 2.4 MB animation)."""
    lengths = sorted({len(w) for w in wanted})
    found = set()
    for run in runs.findall(text):
        for n in lengths:
            found.update(run[k:k + n] for k in range(len(run) - n + 1))
    return found & wanted


@dataclass
class Secrets:
    ids: set[str]  # every ID-like number in the inputs, as typed and repaired, 18- and 15-digit
    names: set[str]  # every full name (2–4 CJK characters) in a name column of the inputs
    vocabulary: str  # text whose words are not personal data (place names, code lists, labels)

    def __post_init__(self):
        # the window search finds what ``in`` finds only for strings of the runs' characters
        assert all(_ID_RUN.fullmatch(i) for i in self.ids), "an ID with a character _ID_RUN does not take"
        assert all(_CJK_RUN.fullmatch(n) for n in self.names)

    def leaks(self, text: str) -> list[str]:
        found = _contained(text, self.ids, _ID_RUN)
        found |= {m for m in _ID18.findall(text) if check_char(m[:17]) == m[17]}
        found |= {n for n in _contained(text, self.names, _CJK_RUN) if n not in self.vocabulary}
        return sorted(found)


@dataclass
class PrivateRun:
    raw: Path
    warehouse: Path
    reports: Path
    home: Path
    stdout: str
    stderr: str
    secrets: Secrets


def _plant_formula_village(raw: Path) -> None:
    """A village whose 户主姓名, 姓名 and 备注 are what a spreadsheet takes for formulas."""
    with (raw / "villages.csv").open("a", encoding="utf-8", newline="") as fh:
        fh.write(f"{FORMULA_VILLAGE},{FORMULA_VILLAGE_NAME},210505004,思山岭街道,是\n")
    heads = [make_id(f"1960010{i + 1}", 31 + 2 * i) for i in range(len(FORMULAS))]
    write_survey(
        raw / "surveys" / "思山岭街道" / f"{FORMULA_VILLAGE_NAME}.xlsx",
        SheetSpec([household(h, seq=i + 1, head_name=f, note=f) for i, (h, f) in enumerate(zip(heads, FORMULAS))]
                  + [household(make_id("19700101", 77), seq=9, head_name=FORMULA_NAMES[0], note="正常户")]),
        SheetSpec([member(h, h, seq=i + 1, name=f, note=f) for i, (h, f) in enumerate(zip(heads, FORMULAS))]
                  + [member(make_id("19700101", 77), make_id("19700101", 77), seq=9, name=FORMULA_NAMES[0]),
                     member(make_id("19700101", 77), make_id("19720202", 88), relation="配偶", seq=10,
                            name=FORMULA_NAMES[1])]),
        village_code=FORMULA_VILLAGE, village_name=FORMULA_VILLAGE_NAME)


def _input_cells(raw: Path):
    """(column header, cell text) of every cell of every input file."""
    from python_calamine import CalamineWorkbook

    for path in sorted(raw.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix.lower() in (".xlsx", ".xls"):
            try:
                wb = CalamineWorkbook.from_path(str(path))
            except Exception:  # the sample's deliberately unreadable file
                continue
            for sheet in wb.sheet_names:
                rows = wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
                header: list[str] = []
                for row in rows:
                    texts = ["" if v is None else str(v) for v in row]
                    if any(t in NAME_COLUMNS for t in texts):  # the header row (names over a 2-row header too)
                        header = texts
                        continue
                    for c, text in enumerate(texts):
                        yield (header[c] if c < len(header) else ""), text
        elif path.suffix.lower() in (".csv", ".txt"):
            data = path.read_bytes()
            for enc in ("utf-8-sig", "gb18030"):
                try:
                    text = data.decode(enc)
                    break
                except UnicodeDecodeError:
                    continue
            lines = [line.split(",") for line in text.splitlines()]
            for row in lines[1:]:
                for c, cell in enumerate(row):
                    yield (lines[0][c] if c < len(lines[0]) else ""), cell


def _secrets(raw: Path) -> Secrets:
    ids: set[str] = set()
    names: set[str] = set()
    for column, text in _input_cells(raw):
        for token in _ID_TOKEN.findall(unicodedata.normalize("NFKC", text).replace(" ", "")):
            ids |= {token, token.upper()}
            repaired = repair_id(token).value
            if repaired:
                ids |= {repaired, repaired[:6] + repaired[8:17]}
        name = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
        if column in NAME_COLUMNS and _CJK.match(name):
            names.add(name)
    key = json.loads((raw / ANSWER_KEY).read_text(encoding="utf-8"))
    for entry in key["households"] + key["problems"]:
        ids |= {v for k, v in entry.items() if k in ("head_id", "person_id") and v}
    # Words that are not personal data even where a name happens to equal them (a 2-character
    # name can be part of a village name, a code list entry or a label of the pipeline itself).
    sources = [p for p in (PROJECT / "pipeline").rglob("*.py") if "sample" not in p.parts]
    vocabulary = "\n".join([(raw / "villages.csv").read_text(encoding="utf-8-sig"),
                            *(p.read_text(encoding="utf-8") for p in sources),
                            *(p.relative_to(raw).as_posix() for p in raw.rglob("*"))])
    assert len(names) > 300 and len(ids) > 300, "the sample must give the scan something to find"
    assert set(FORMULA_NAMES) <= names
    return Secrets(ids, names, vocabulary)


@pytest.fixture(scope="module")
def private_run(tmp_path_factory) -> Iterator[PrivateRun]:
    # on tmpfs where there is one: every Dagster event of the run is a commit of the SQLite
    # instance, each an fsync on a disk; what the tests scan and check is the same on either
    with fast_scratch(tmp_path_factory, "privacy") as root:
        yield _private_run(root)


def _private_run(root: Path) -> PrivateRun:
    raw = root / "raw"
    generate(raw, households=300, seed=7)
    _plant_formula_village(raw)
    secrets = _secrets(raw)
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(INSTANCE_TEMPLATE, home / "dagster.yaml")  # as `make run` has it
    # folders that do not exist yet: the run creates them, and must create them private
    warehouse = root / "data" / "warehouse" / "huitoukan.duckdb"
    reports = root / "out" / "reports"
    env = {**os.environ, "DAGSTER_HOME": str(home), "HUITOUKAN_LOG_LEVEL": "DEBUG", "HUITOUKAN_SETTLE_SECONDS": "0"}
    proc = subprocess.run([str(HUITOUKAN), "run", "--raw-dir", str(raw), "--warehouse", str(warehouse),
                           "--reports-dir", str(reports)], capture_output=True, text=True, env=env,
                          timeout=RUN_TIMEOUT, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DEBUG" in proc.stderr, "the run must have logged at DEBUG level"
    return PrivateRun(raw, warehouse, reports, home, proc.stdout, proc.stderr, secrets)


# --------------------------------------------------------------------------------------------
# Nothing leaks
# --------------------------------------------------------------------------------------------


def test_scanner_finds_what_it_looks_for(private_run):
    """The scan itself works: a full ID and a full name are found, their masked forms are not."""
    from pipeline.privacy import mask_id, mask_name

    secrets = private_run.secrets
    some_id = sorted(i for i in secrets.ids if len(i) == 18)[0]
    some_name = sorted(n for n in secrets.names if n not in secrets.vocabulary)[0]
    assert secrets.leaks(f"x {some_id} y {some_name}") == sorted({some_id, some_name})
    assert secrets.leaks(f"x {mask_id(some_id)} y {mask_name(some_name)}") == []
    assert mask_id("210505198001011234") == "210505********1234"


def test_no_id_or_name_on_stdout_or_stderr_at_debug_level(private_run):
    assert private_run.secrets.leaks(private_run.stdout) == []
    assert private_run.secrets.leaks(private_run.stderr) == []


def _events_text(home: Path) -> tuple[str, int]:
    """Every event of every run of the instance, as readable text (metadata, messages,
    asset-check evaluations, errors)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef
    from dagster_shared.serdes import serialize_value

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    texts, count = [], 0
    try:
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id):
                texts.append(json.dumps(json.loads(serialize_value(entry)), ensure_ascii=False))
                count += 1
    finally:
        instance.dispose()
    return "\n".join(texts), count


def test_no_id_or_name_in_dagster_events_or_metadata(private_run):
    text, count = _events_text(private_run.home)
    assert count > 100 and "ASSET_MATERIALIZATION" in text and "ASSET_CHECK_EVALUATION" in text
    assert private_run.secrets.leaks(text) == []


def test_no_id_in_the_instance_storage_files(private_run):
    """The raw files of DAGSTER_HOME (event log, run and schedule storage, any logs) hold no full ID."""
    ids = {i for i in private_run.secrets.ids if len(i) in (15, 18)}
    for path in private_run.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes().decode("latin-1")  # byte for byte: an ASCII ID is found as in the bytes
            assert not _contained(data, ids, _ID_RUN), path


def test_no_id_or_name_in_asset_check_descriptions(private_run):
    from pipeline.definitions import build_defs

    graph = build_defs().resolve_asset_graph()
    descriptions = [graph.get_check_spec(k).description or "" for k in graph.asset_check_keys]
    assert descriptions
    assert private_run.secrets.leaks("\n".join(descriptions)) == []


def _files_outside_allowed(reports: Path) -> list[Path]:
    return [p for p in sorted(reports.rglob("*"))
            if p.is_file() and p.relative_to(reports).parts[0] not in ALLOWED_DIRS]


def _file_text(path: Path) -> str:
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
    return path.read_bytes().decode("utf-8", "replace")


def test_no_id_or_name_in_the_quality_report(private_run):
    """The Data Docs under reports/quality/ (GE writes raw unexpected values by default)."""
    quality = private_run.reports / "quality"
    pages = [p for p in quality.rglob("*") if p.is_file() and p.suffix in (".html", ".json")]
    assert (quality / "index.html").is_file() and len(pages) > 1, "the quality report must be built by the run"
    for path in pages:
        assert private_run.secrets.leaks(_file_text(path)) == [], path


def test_no_id_or_name_in_any_other_report_file(private_run):
    """Whatever else the run writes under reports/ outside the outputs allowed to carry personal
    data (e.g. the progress sheet) carries none."""
    others = _files_outside_allowed(private_run.reports)
    assert others
    for path in others:
        assert private_run.secrets.leaks(_file_text(path)) == [], path


def test_public_notice_lists_carry_no_id(private_run):
    public = sorted((private_run.reports / "public").rglob("*.xlsx"))
    assert public  # a 第一次公示 per 涉农 village, a 第二次公示 per 办事处
    ids = {i for i in private_run.secrets.ids if len(i) in (15, 18)}
    for path in public:
        text = _file_text(path)
        assert not [i for i in ids if i in text] and not [m for m in _ID18.findall(text)], path


def test_a_failing_step_shows_no_full_id_in_the_error(tmp_path, monkeypatch, capsys):
    """An error message that quotes an ID number is masked before the CLI prints it."""
    from fakes import FakeGreatExpectations

    import pipeline.resources
    from pipeline import cli
    from pipeline.assets import ingest
    from pipeline.privacy import mask_id

    secret = make_id("19800101", 123)

    def broken(root):
        raise ValueError(f"村名册第3行身份证号 {secret} 无法解析")

    monkeypatch.setattr(ingest, "read_villages", broken)
    # the CLI's resources with Great Expectations faked: the run fails before any check, and a
    # GE worker would only be started and killed half-way through its import
    monkeypatch.setattr(pipeline.resources, "GreatExpectationsResource", FakeGreatExpectations)
    (tmp_path / "raw").mkdir()
    for env in ("HUITOUKAN_RAW_DIR", "HUITOUKAN_WAREHOUSE", "HUITOUKAN_REPORTS_DIR"):
        monkeypatch.delenv(env, raising=False)
    code = cli.main(["run", "--raw-dir", str(tmp_path / "raw"), "--warehouse", str(tmp_path / "w.duckdb"),
                     "--reports-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 1
    assert "village_roster" in err and mask_id(secret) in err
    assert secret not in err


@pytest.mark.parametrize("text,hidden", [
    ("身份证号210505198001011234无效", "210505198001011234"),
    ("id 21050519800101123x, row 3", "21050519800101123x"),
    ("旧号码 210505800101123。", "210505800101123"),
    ("(210505198001011234)(110101199003077777)", "110101199003077777"),
])
def test_mask_text_hides_ids_in_free_text(text, hidden):
    from pipeline.privacy import mask_text

    masked = mask_text(text)
    assert hidden not in masked and hidden[:6] in masked and hidden[-4:] in masked


@given(st.sampled_from(["210505", "110101", "650102"]), st.dates(dt.date(1900, 1, 1), dt.date(2019, 12, 31)),
       st.integers(0, 999), st.text(max_size=20), st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_mask_text_never_lets_an_id_through(area, born, seq, before, after):
    from pipeline.privacy import mask_text
    from pipeline.rules.ids import check_char

    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    pid = first17 + check_char(first17)
    # a digit right beside it would make it part of a longer number, not an ID
    assume(before[-1:] not in "0123456789" or not before)
    assume(after[:1] not in "0123456789Xx" or not after)
    assert pid not in mask_text(before + pid + after)
    old = pid[:6] + pid[8:17]
    assert old not in mask_text(before + old + after)


@given(st.text(min_size=1, max_size=6).filter(lambda t: t.strip()))
def test_mask_name_keeps_only_the_first_character(name):
    from pipeline.privacy import mask_name

    masked = mask_name(name)
    assert masked[0] == name.strip()[0] and set(masked[1:]) == {"*"}
    if len(name.strip()) >= 2 and set(name.strip()[1:]) != {"*"}:  # "张*" is its own mask: nothing to hide
        assert name.strip() not in masked


# --------------------------------------------------------------------------------------------
# Nothing typed in a village file becomes a formula
# --------------------------------------------------------------------------------------------


def _workbooks(reports: Path) -> list[Path]:
    return sorted(p for p in reports.rglob("*.xlsx") if not p.name.startswith("."))


@functools.cache
def _typed_cells(path: Path) -> tuple[tuple[str, str, str, object], ...]:
    """(sheet, coordinate, openpyxl's data type, value) of every cell of every worksheet, as
    openpyxl reads them. Read-only mode parses each cell as a full load does (the same parser),
    without building the styled worksheet — seconds less for the 附件; with the stored dimensions
    reset, so every row and column is read whatever they say."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        cells = []
        for ws in wb.worksheets:
            ws.reset_dimensions()
            cells += [(ws.title, c.coordinate, c.data_type, c.value) for row in ws.iter_rows() for c in row
                      if c.value is not None or c.data_type != "n"]  # not the fillers of missing cells
        return tuple(cells)
    finally:
        wb.close()


def test_no_output_cell_is_a_formula(private_run):
    books = _workbooks(private_run.reports)
    assert len(books) > 10
    for path in books:
        with zipfile.ZipFile(path) as z:
            sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
            assert not [n for n in sheets if re.search(rb"<f[ >/]", z.read(n))], path
        formulas = [f"{sheet}!{coordinate}" for sheet, coordinate, data_type, _ in _typed_cells(path)
                    if data_type == "f"]
        assert formulas == [], path


def test_formula_like_input_reaches_the_outputs_as_text(private_run):
    """The planted values are in 附件1 (names, notes) as text, exactly as the village typed them."""
    path = private_run.reports / "draft" / "附件1_入户调查汇总表.xlsx"
    texts = {value for _, _, data_type, value in _typed_cells(path) if data_type == "s" and isinstance(value, str)}
    assert set(FORMULAS) <= texts


# --------------------------------------------------------------------------------------------
# Only the owner can read what a run writes
# --------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_warehouse_and_reports_are_readable_by_the_owner_only(private_run):
    wh = private_run.warehouse
    assert wh.is_file() and _mode(wh) == 0o600
    for sibling in wh.parent.iterdir():  # the lock file, a WAL left for the next open
        assert _mode(sibling) == (0o700 if sibling.is_dir() else 0o600), sibling
    # every folder the run had to create on the way
    assert _mode(wh.parent) == 0o700 and _mode(wh.parent.parent) == 0o700
    reports = private_run.reports
    assert _mode(reports) == 0o700 and _mode(reports.parent) == 0o700
    checked = 0
    for path in reports.rglob("*"):
        rel = path.relative_to(reports)
        if path.is_dir():
            assert _mode(path) == 0o700, rel
        elif rel.parts[0] == "template":
            # the blank survey form handed to villages: no personal data, deliberately 0o644
            assert _mode(path) & 0o022 == 0, rel
        else:
            assert _mode(path) == 0o600, rel
            checked += 1
    assert checked > 20


# --------------------------------------------------------------------------------------------
# The UI listens on this machine only
# --------------------------------------------------------------------------------------------


def test_ui_command_binds_localhost(tmp_path, monkeypatch):
    """`huitoukan ui` starts `dagster dev -h 127.0.0.1` and the file server on 127.0.0.1 (checked
    without starting either)."""
    from pipeline import cli, ui

    started = {}

    class FakeServer:
        server_port = 3001

        def shutdown(self):
            pass

        def server_close(self):
            pass

    class FakeProcess:
        def __init__(self, command, **kwargs):
            started["command"] = command

        def wait(self, timeout=None):
            return 0

    def fake_serve(root, host="127.0.0.1", port=3001):
        started["files_host"] = host
        return FakeServer()

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    for env in ("HUITOUKAN_RAW_DIR", "HUITOUKAN_WAREHOUSE", "HUITOUKAN_REPORTS_DIR", "HUITOUKAN_DOWNLOAD_URL"):
        monkeypatch.setenv(env, "")
    monkeypatch.setattr(ui.subprocess, "Popen", FakeProcess)
    monkeypatch.setattr("pipeline.fileserver.serve_in_background", fake_serve)
    code = cli.main(["ui", "--raw-dir", str(tmp_path / "raw"), "--warehouse", str(tmp_path / "w.duckdb"),
                     "--reports-dir", str(tmp_path / "reports")])
    assert code == 0
    command = started["command"]
    assert command[command.index("-h") + 1] == "127.0.0.1"
    assert "0.0.0.0" not in command and "--host" not in command
    assert started["files_host"] == "127.0.0.1"


def test_file_server_listens_on_localhost(tmp_path):
    from pipeline.fileserver import make_server

    server = make_server(tmp_path, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_readme_explains_shared_use():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Security and personal data"):]
    for needle in ("127.0.0.1", "--read-only", "reverse proxy", "0o600"):
        assert needle in section
