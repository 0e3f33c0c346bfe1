"""Packages the city can verify: the office's Ed25519 key pair and the detached signature of a
signed package's ``manifest.json``, and the check of a package a clerk was sent.

- ``huitoukan keys init`` makes the key pair once: the private key (owner-only, 0o600, in a
  0o700 folder outside ``reports/``: ``$HUITOUKAN_KEY_DIR``, else ``$DAGSTER_HOME/keys``) and the
  public key, printed with its fingerprint for the city.
- The sign-off (``write_package``) writes ``manifest.json.sig`` — the Ed25519 signature of the
  exact bytes of ``manifest.json`` — into the package when the office has a key; the manifest
  says which key (its fingerprint), or that the package is unsigned and why.
- ``huitoukan verify PACKAGE [--public-key K]`` checks every file against the manifest's sha256
  (naming each file added, removed or changed) and the signature; it exits non-zero with the
  reasons in words a city clerk understands.

The cryptography is the ``cryptography`` package's; nothing here is hand-written crypto.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ENV_KEY_DIR = "HUITOUKAN_KEY_DIR"
PRIVATE_KEY_FILE = "office_signing_key.pem"
PUBLIC_KEY_FILE = "office_public_key.pem"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.json.sig"
ALGORITHM = "Ed25519"
UNSIGNED_REASON = "签字时本办公室还没有签名密钥（huitoukan keys init）"


class SigningKeyError(Exception):
    """The office's key cannot be made or used; the message says why, in Chinese."""


# --------------------------------------------------------------------------------------------
# the office's keys
# --------------------------------------------------------------------------------------------


def default_key_dir() -> Path | None:
    """``$HUITOUKAN_KEY_DIR``, else ``$DAGSTER_HOME/keys``; None when neither is set."""
    if os.environ.get(ENV_KEY_DIR):
        return Path(os.environ[ENV_KEY_DIR])
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"]) / "keys"
    return None


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """The sha256 of the raw public key, in groups of four hex digits (to read out on the phone)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).hexdigest()
    return " ".join(digest[i:i + 4] for i in range(0, len(digest), 4))


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def init_keys(key_dir: Path, reports_dir: Path | None = None) -> tuple[Path, Path, Ed25519PublicKey]:
    """Make the office's key pair in ``key_dir``; returns (private path, public path, public key).
    Never replaces a key: packages signed with it must stay verifiable."""
    key_dir = Path(key_dir)
    if reports_dir is not None and _inside(key_dir, Path(reports_dir)):
        raise SigningKeyError(f"私钥不能放在报表文件夹 {reports_dir} 里（报表会被下载和拷贝）；请用 --key-dir 另选文件夹")
    private, public = key_dir / PRIVATE_KEY_FILE, key_dir / PUBLIC_KEY_FILE
    if private.exists():
        raise SigningKeyError(f"本办公室的签名密钥已经存在：{private}。不会覆盖（已签发的签字包要靠它对应的公钥核验）；"
                              "查看公钥用 huitoukan keys show")
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_dir.chmod(0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(private, 0o600)  # whatever the umask
    public.write_text(public_key_pem(key.public_key()), encoding="ascii")
    public.chmod(0o644)
    return private, public, key.public_key()


def load_private_key(key_dir: Path | None) -> Ed25519PrivateKey | None:
    """The office's signing key, or None when it has none. A key others may read is refused."""
    if key_dir is None:
        return None
    path = Path(key_dir) / PRIVATE_KEY_FILE
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SigningKeyError(f"私钥文件 {path} 的权限是 {mode:o}，别人也能读取；请改为只有本人可读（chmod 600）后再签字")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"私钥文件 {path} 无法读取（{exc}）") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"私钥文件 {path} 不是 Ed25519 密钥")
    return key


def load_public_key(spec: str | Path) -> Ed25519PublicKey:
    """A public key from a PEM file, PEM text, or the base64 of its 32 raw bytes."""
    text = str(spec).strip()
    data: bytes | None = None
    if "BEGIN PUBLIC KEY" in text:
        data = text.encode("ascii", "replace")
    else:
        path = Path(text)
        if path.is_file():
            data = path.read_bytes()
    try:
        if data is not None:
            key = serialization.load_pem_public_key(data)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise SigningKeyError(f"公钥 {text[:80]} 无法读取：既不是公钥文件，也不是公钥文本（{exc.__class__.__name__}）") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("所给公钥不是 Ed25519 公钥")
    return key


# --------------------------------------------------------------------------------------------
# signing (called by the sign-off while the package is still being written)
# --------------------------------------------------------------------------------------------


def signature_entry(key: Ed25519PrivateKey | None, reason: str = UNSIGNED_REASON) -> dict:
    """What the manifest says about its signature (written before the signature is made)."""
    if key is None:
        return {"status": "unsigned", "reason": reason}
    return {"status": "signed", "algorithm": ALGORITHM, "file": SIGNATURE_FILE,
            "public_key_fingerprint": fingerprint(key.public_key())}


def sign_manifest(folder: Path, key: Ed25519PrivateKey) -> Path:
    """Write the detached signature of ``folder/manifest.json`` (base64, one line)."""
    signature = key.sign((Path(folder) / MANIFEST_FILE).read_bytes())
    path = Path(folder) / SIGNATURE_FILE
    path.write_text(base64.b64encode(signature).decode("ascii") + "\n", encoding="ascii")
    return path


def describe(entry: dict) -> str:
    """One line for the asset's metadata and the CLI."""
    if entry.get("status") == "signed":
        return f"已签名（{ALGORITHM}，公钥指纹 {entry['public_key_fingerprint']}）"
    return f"未签名：{entry.get('reason', UNSIGNED_REASON)}"


# --------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------


@dataclass
class Verification:
    package: Path
    problems: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    signature_ok: bool = False
    files_checked: int = 0
    manifest: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MB chunks (the manifest's and verify's one way)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _listing(folder: Path) -> dict[str, Path]:
    """Every entry under the package (relative posix path -> path), links not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            out[path.relative_to(folder).as_posix()] = path
    return out


def verify_package(package: Path, public_key: Ed25519PublicKey | None) -> Verification:
    """Check a signed package: every file against the manifest's sha256, and the signature of
    the manifest with ``public_key`` (the office's, as the city received it)."""
    package = Path(package)
    result = Verification(package)
    if not package.is_dir():
        result.problems.append(f"找不到签字包文件夹 {package}")
        return result
    manifest_path = package / MANIFEST_FILE
    if not manifest_path.is_file() or manifest_path.is_symlink():
        result.problems.append(f"这不是一个完整的签字包：缺少清单文件 {MANIFEST_FILE}，无法核对任何文件")
        return result
    manifest_bytes = manifest_path.read_bytes()
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
        outputs = {str(o["file"]): str(o["sha256"]) for o in manifest["outputs"]}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        result.problems.append(f"清单文件 {MANIFEST_FILE} 已损坏或被改动，读不出文件列表")
        manifest, outputs = None, {}
    result.manifest = manifest

    _check_signature(result, package, manifest, manifest_bytes, public_key)

    if manifest is None:
        return result
    present = _listing(package)
    ours = {MANIFEST_FILE, SIGNATURE_FILE}
    for name in sorted(set(present) - set(outputs) - ours):
        result.added.append(name)
        result.problems.append(f"多出的文件：{name}（清单中没有这个文件，是签字后放进来的）")
    for name, expected in sorted(outputs.items()):
        path = present.get(name)
        if path is None:
            result.removed.append(name)
            result.problems.append(f"缺少文件：{name}（清单中有，签字包里没有）")
        elif path.is_symlink() or not path.is_file():
            result.changed.append(name)
            result.problems.append(f"文件被替换：{name}（不再是原来的文件）")
        else:
            result.files_checked += 1
            if sha256_file(path) != expected:
                result.changed.append(name)
                result.problems.append(f"文件被改动：{name}（内容与清单记录的校验值 sha256 不一致）")
    return result


def _check_signature(result: Verification, package: Path, manifest: dict | None, manifest_bytes: bytes,
                     public_key: Ed25519PublicKey | None) -> None:
    declared = (manifest or {}).get("signature") or {}
    sig_path = package / SIGNATURE_FILE
    if not sig_path.is_file():
        if declared.get("status") == "unsigned":
            result.problems.append(f"此签字包没有数字签名：{declared.get('reason', UNSIGNED_REASON)}，"
                                   "无法确认它来自哪个办公室")
        else:
            result.problems.append(f"缺少签名文件 {SIGNATURE_FILE}：无法确认签字包的来源和清单是否被改动")
        return
    if public_key is None:
        result.problems.append("没有用来核对签名的公钥：请用 --public-key 指定区扶贫办提供的公钥文件")
        return
    try:
        signature = base64.b64decode(sig_path.read_text(encoding="ascii").strip(), validate=True)
    except (UnicodeDecodeError, ValueError, binascii.Error):
        result.problems.append(f"签名文件 {SIGNATURE_FILE} 已损坏或被改动")
        return
    try:
        public_key.verify(signature, manifest_bytes)
    except InvalidSignature:
        if declared.get("public_key_fingerprint") not in (None, fingerprint(public_key)):
            result.problems.append(
                "签名与所给公钥不符：此签字包不是由这把公钥所属的办公室签发的（可能来自其他办公室），"
                f"或清单 {MANIFEST_FILE} 被改动过。所给公钥指纹 {fingerprint(public_key)}")
        else:
            result.problems.append(f"签名核对失败：清单 {MANIFEST_FILE}（或签名文件）在签字后被改动过，"
                                   "签字包内容不能作为正式材料使用")
        return
    result.signature_ok = True


def report_lines(result: Verification, public_key: Ed25519PublicKey | None) -> list[str]:
    """What ``huitoukan verify`` prints (no personal data: the signer's name is not shown)."""
    name = result.package.name
    m = result.manifest or {}
    head = f"签字包 {name}" + (f"（签字时间 {m['signed_at']}）" if m.get("signed_at") else "")
    if result.ok:
        return [f"核验通过：{head}",
                f"  {result.files_checked} 个文件与清单完全一致，没有多出或缺少的文件",
                f"  签名有效（{ALGORITHM}，公钥指纹 {fingerprint(public_key)}）" if public_key else ""]
    lines = [f"核验不通过：{head}，发现 {len(result.problems)} 个问题（verification failed）："]
    lines += [f"  {i}. {p}" for i, p in enumerate(result.problems, start=1)]
    lines.append("请不要使用此签字包，并联系出具签字包的区扶贫办重新发送。")
    return lines


# --------------------------------------------------------------------------------------------
# the commands
# --------------------------------------------------------------------------------------------


def cmd_keys_init(args: argparse.Namespace) -> int:
    key_dir = Path(args.key_dir) if args.key_dir else default_key_dir()
    if key_dir is None:
        print("错误：请用 --key-dir 指定存放私钥的文件夹（或设置 DAGSTER_HOME / HUITOUKAN_KEY_DIR）", file=sys.stderr)
        return 2
    reports = Path(args.reports_dir or os.environ.get("HUITOUKAN_REPORTS_DIR") or "reports")
    try:
        private, public, key = init_keys(key_dir, reports)
    except SigningKeyError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    print(f"已生成本办公室的签名密钥（{ALGORITHM}）。")
    print(f"私钥（只有本账户可读，请备份到安全处，切勿发给任何人）：{private}")
    print(f"公钥文件（发给市里，用于核验签字包）：{public}")
    print(f"公钥指纹（请电话向市里核对）：{fingerprint(key)}")
    print(public_key_pem(key), end="")
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    key_dir = Path(args.key_dir) if args.key_dir else default_key_dir()
    public = key_dir / PUBLIC_KEY_FILE if key_dir else None
    if public is None or not public.is_file():
        print(f"错误：找不到公钥（{public or '未设置密钥文件夹'}）；先运行 huitoukan keys init", file=sys.stderr)
        return 1
    key = load_public_key(public)
    print(f"公钥文件：{public}")
    print(f"公钥指纹：{fingerprint(key)}")
    print(public_key_pem(key), end="")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        if args.public_key:
            key = load_public_key(args.public_key)
        else:
            key_dir = Path(args.key_dir) if args.key_dir else default_key_dir()
            public = key_dir / PUBLIC_KEY_FILE if key_dir else None
            key = load_public_key(public) if public is not None and public.is_file() else None
    except SigningKeyError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    result = verify_package(Path(args.package), key)
    out = sys.stdout if result.ok else sys.stderr
    for line in report_lines(result, key):
        if line:
            print(line, file=out)
    return 0 if result.ok else 1


def add_commands(subparsers) -> None:
    """``huitoukan keys init|show`` and ``huitoukan verify``."""
    p = subparsers.add_parser("keys", help="本办公室的签名密钥 (the office's Ed25519 signing key)")
    keys = p.add_subparsers(dest="keys_command", required=True)
    q = keys.add_parser("init", help="生成密钥对，打印给市里的公钥 (make the key pair once)")
    q.add_argument("--key-dir", default=None, help=f"私钥文件夹（默认 ${ENV_KEY_DIR} 或 $DAGSTER_HOME/keys）")
    q.add_argument("--reports-dir", default=None, help="报表文件夹（私钥不能放在其中）")
    q.set_defaults(func=cmd_keys_init)
    q = keys.add_parser("show", help="再次打印公钥和指纹 (print the public key again)")
    q.add_argument("--key-dir", default=None)
    q.set_defaults(func=cmd_keys_show)

    p = subparsers.add_parser("verify", help="核验签字包：文件校验值和签名 (verify a signed package)")
    p.add_argument("package", help="签字包文件夹，例如 reports/signed/20190520T093000")
    p.add_argument("--public-key", default=None,
                   help="区扶贫办的公钥文件（或公钥文本）；默认用本机的 $DAGSTER_HOME/keys/office_public_key.pem")
    p.add_argument("--key-dir", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_verify)
