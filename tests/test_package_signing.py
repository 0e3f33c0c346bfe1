"""Packages the city can verify: ``huitoukan keys init`` (owner-only private key outside
reports/), the sign-off's detached Ed25519 signature of manifest.json, and ``huitoukan verify``:
every file changed, added or removed — of each kind in a package — and a swapped key or another
office's package is caught and named, in Chinese, with a non-zero exit."""

import json
import shutil
import stat
from pathlib import Path

import dagster as dg
import pytest
from clean_district import ran_clean_district
from fakes import FakeGreatExpectations

from pipeline import cli, runner
from pipeline.package_signing import (
    MANIFEST_FILE,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    SIGNATURE_FILE,
    SigningKeyError,
    fingerprint,
    init_keys,
    load_private_key,
    load_public_key,
    verify_package,
)
from pipeline.resources import build_resources

SIGNER = "王建华"


# --------------------------------------------------------------------------------------------
# keys
# --------------------------------------------------------------------------------------------


def test_keys_init_makes_an_owner_only_private_key_and_prints_the_public_key(tmp_path, capsys):
    key_dir = tmp_path / "home" / "keys"
    assert cli.main(["keys", "init", "--key-dir", str(key_dir), "--reports-dir", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    private, public = key_dir / PRIVATE_KEY_FILE, key_dir / PUBLIC_KEY_FILE
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert "BEGIN PUBLIC KEY" in out and "BEGIN PRIVATE KEY" not in out
    assert fingerprint(load_public_key(public)) in out
    # never replaced: packages signed with it stay verifiable
    before = private.read_bytes()
    assert cli.main(["keys", "init", "--key-dir", str(key_dir)]) == 1
    assert "已经存在" in capsys.readouterr().err and private.read_bytes() == before


def test_the_private_key_is_never_put_under_reports(tmp_path):
    with pytest.raises(SigningKeyError, match="报表文件夹"):
        init_keys(tmp_path / "reports" / "keys", reports_dir=tmp_path / "reports")
    assert not (tmp_path / "reports").exists()


def test_a_private_key_others_can_read_is_refused(tmp_path):
    init_keys(tmp_path / "keys")
    (tmp_path / "keys" / PRIVATE_KEY_FILE).chmod(0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_private_key(tmp_path / "keys")


# --------------------------------------------------------------------------------------------
# a real package, signed by the sign-off
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    """A clean district run and signed (同意) with the office's key; plus a second office's key."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("signed")
        for env in ("HUITOUKAN_RAW_DIR", "HUITOUKAN_WAREHOUSE", "HUITOUKAN_REPORTS_DIR", "DAGSTER_HOME",
                    "HUITOUKAN_KEY_DIR"):
            mp.delenv(env, raising=False)
        mp.setenv("HUITOUKAN_LOG_LEVEL", "CRITICAL")
        home = base / "dagster_home"
        mp.setenv("DAGSTER_HOME", str(home))  # where the office's key is: $DAGSTER_HOME/keys
        # the default district as the whole pipeline left it (its one run in this session, copied)
        raw, warehouse, reports = ran_clean_district(tmp_path_factory, base)
        inst = dg.DagsterInstance.ephemeral()  # the Dagster bookkeeping is not the subject here
        assert cli.main(["keys", "init"]) == 0  # $DAGSTER_HOME/keys
        resources = build_resources(raw_dir=raw, warehouse=warehouse, reports_dir=reports, ge=FakeGreatExpectations())
        result = runner.run_signoff(resources, SIGNER, "同意", inst=inst)
        assert result.success
        meta = result.asset_materializations_for_node("signoff")[-1].metadata
        [package] = [p for p in (reports / "signed").iterdir() if p.is_dir()]
        other_keys = base / "other_office"
        init_keys(other_keys)
        yield {"package": package, "meta": meta, "public": home / "keys" / PUBLIC_KEY_FILE,
               "other_public": other_keys / PUBLIC_KEY_FILE, "other_keys": other_keys, "base": base,
               "reports": reports, "home": home}


def copy_package(package: Path, target: Path) -> Path:
    shutil.copytree(package, target)
    target.chmod(0o700)
    for p in target.iterdir():
        p.chmod(0o600)
    return target


def verify_cli(capsys, package: Path, public: Path) -> tuple[int, str, str]:
    code = cli.main(["verify", str(package), "--public-key", str(public)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_signed_package_verifies(office, capsys):
    package = office["package"]
    assert stat.S_IMODE((package / SIGNATURE_FILE).stat().st_mode) == 0o444  # read-only like the rest
    manifest = json.loads((package / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["signature"]["status"] == "signed"
    assert manifest["signature"]["public_key_fingerprint"] == fingerprint(load_public_key(office["public"]))
    assert office["meta"]["signature"].value.startswith("已签名（Ed25519")
    code, out, err = verify_cli(capsys, package, office["public"])
    print(out)
    assert code == 0 and out.startswith("核验通过") and "签名有效" in out and not err
    assert SIGNER not in out  # the signer's name is not printed
    # without --public-key: the office's own public key from $DAGSTER_HOME/keys
    assert cli.main(["verify", str(package)]) == 0


def _kinds(package: Path) -> dict[str, str]:
    """One file of each kind in a package: a 附件, a 公示 list, the confirmation, the manifest, the signature."""
    names = sorted(p.name for p in package.iterdir())
    return {"附件": next(n for n in names if n.startswith("附件") and "公示" not in n),
            "公示名单": next(n for n in names if "公示" in n),
            "签字确认单": "签字确认单.xlsx", "清单": MANIFEST_FILE, "签名": SIGNATURE_FILE}


KINDS = ["附件", "公示名单", "签字确认单", "清单", "签名"]
EXPECTED_CHANGED = {
    "附件": "文件被改动：{name}", "公示名单": "文件被改动：{name}", "签字确认单": "文件被改动：{name}",
    "清单": "签名核对失败：清单 manifest.json", "签名": "签名核对失败",
}
EXPECTED_REMOVED = {
    "附件": "缺少文件：{name}", "公示名单": "缺少文件：{name}", "签字确认单": "缺少文件：{name}",
    "清单": "缺少清单文件 manifest.json", "签名": "缺少签名文件 manifest.json.sig",
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_changed_file_of_each_kind_is_caught_and_named(office, tmp_path, capsys, kind):
    package = copy_package(office["package"], tmp_path / office["package"].name)
    name = _kinds(package)[kind]
    path = package / name
    data = bytearray(path.read_bytes())
    if kind == "清单":  # a changed count, as a hand edit would make it
        manifest = json.loads(data.decode("utf-8"))
        manifest["counts"][0]["户数"] = (manifest["counts"][0]["户数"] or 0) + 1
        path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    elif kind == "签名":
        path.write_text("AAAA" + path.read_text(encoding="ascii")[4:], encoding="ascii")
    else:
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    code, out, err = verify_cli(capsys, package, office["public"])
    print(f"[{kind} changed]\n{err}")
    assert code == 1 and not out and err.startswith("核验不通过")
    assert EXPECTED_CHANGED[kind].format(name=name) in err


@pytest.mark.parametrize("kind", KINDS)
def test_a_removed_file_of_each_kind_is_caught_and_named(office, tmp_path, capsys, kind):
    package = copy_package(office["package"], tmp_path / office["package"].name)
    name = _kinds(package)[kind]
    (package / name).unlink()
    code, out, err = verify_cli(capsys, package, office["public"])
    print(f"[{kind} removed]\n{err}")
    assert code == 1 and EXPECTED_REMOVED[kind].format(name=name) in err


@pytest.mark.parametrize("added", ["附件7_补充名单.xlsx", "manifest (1).json", ".隐藏.xlsx", "补充/说明.txt"])
def test_an_added_file_is_caught_and_named(office, tmp_path, capsys, added):
    package = copy_package(office["package"], tmp_path / office["package"].name)
    path = package / added
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"not in the manifest")
    code, out, err = verify_cli(capsys, package, office["public"])
    print(f"[added {added}]\n{err}")
    assert code == 1 and f"多出的文件：{added}" in err


def test_a_file_replaced_with_a_copy_of_another_is_named(office, tmp_path, capsys):
    package = copy_package(office["package"], tmp_path / office["package"].name)
    kinds = _kinds(package)
    shutil.copyfile(package / kinds["公示名单"], package / kinds["附件"])
    code, _, err = verify_cli(capsys, package, office["public"])
    assert code == 1 and f"文件被改动：{kinds['附件']}" in err and kinds["公示名单"] not in err


def test_a_swapped_key_is_caught(office, capsys):
    code, out, err = verify_cli(capsys, office["package"], office["other_public"])
    print(f"[another office's public key]\n{err}")
    assert code == 1 and "可能来自其他办公室" in err


def test_a_package_from_another_office_fails_clearly(office, tmp_path, capsys):
    """Re-signed (manifest and all) with another office's key: its files agree with its manifest,
    but it is not the office's package."""
    from pipeline.package_signing import sign_manifest, signature_entry

    package = copy_package(office["package"], tmp_path / office["package"].name)
    other = load_private_key(office["other_keys"])
    manifest = json.loads((package / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["signature"] = signature_entry(other)
    (package / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    sign_manifest(package, other)
    assert verify_package(package, load_public_key(office["other_public"])).ok  # its own office's key: fine
    code, out, err = verify_cli(capsys, package, office["public"])
    print(f"[another office's package]\n{err}")
    assert code == 1 and "不是由这把公钥所属的办公室签发的（可能来自其他办公室）" in err


def test_a_folder_that_is_not_a_package_and_a_bad_key_are_refused(office, tmp_path, capsys):
    code, _, err = verify_cli(capsys, tmp_path, office["public"])
    assert code == 1 and "缺少清单文件" in err
    (tmp_path / "bad.pem").write_text("not a key")
    code, _, err = verify_cli(capsys, office["package"], tmp_path / "bad.pem")
    assert code == 2 and "公钥" in err and "无法读取" in err


def test_without_a_key_the_package_says_it_is_unsigned(office, tmp_path, capsys):
    """write_package with no key: manifest and metadata say so; verify fails and says why."""
    from pipeline.assets.signoff import write_package
    from pipeline.readiness import office_now
    from pipeline.settings import load_settings

    folder, manifest = write_package(office["reports"], office["reports"] / "signed", office["base"] / "raw",
                                     signer=SIGNER, comment="",
                                     now=office_now(), settings=load_settings(), reasons_checked=[],
                                     key_dir=tmp_path / "no_keys")
    assert manifest["signature"]["status"] == "unsigned" and "huitoukan keys init" in manifest["signature"]["reason"]
    assert not (folder / SIGNATURE_FILE).exists()
    code, _, err = verify_cli(capsys, folder, office["public"])
    print(f"[unsigned package]\n{err}")
    assert code == 1 and "此签字包没有数字签名" in err
    assert "文件被改动" not in err and "多出的文件" not in err  # its files are fine
