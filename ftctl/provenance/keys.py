"""Ed25519 signing keys: ``ftctl keygen``, the signing key from the environment, trusted keys.

keyid = sha256 of the raw 32-byte public key (hex). The private key never
enters the repository: keygen writes it outside (mode 0600) and signing reads
it from ``FTCTL_SIGNING_KEY`` (PEM text or a path), optionally encrypted with
``FTCTL_SIGNING_KEY_PASSPHRASE``. Nothing here ever prints key material.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ftctl.errors import FtctlError
from ftctl.recipe.refs import RECIPE_NAME_RE
from ftctl.workspace import git_top, trusted_key_files

KEY_ENV = "FTCTL_SIGNING_KEY"
PASSPHRASE_ENV = "FTCTL_SIGNING_KEY_PASSPHRASE"


def keyid(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class KeygenResult:
    keyid: str
    private_path: Path
    public_path: Path


def default_private_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ftctl" / "keys"


def _passphrase() -> bytes:
    """The passphrase as the bytes the environment holds (any encoding; never decoded or shown)."""
    return os.environb.get(PASSPHRASE_ENV.encode(), b"")


def keygen(name: str, workspace_root: Path, out: Path | None = None) -> KeygenResult:
    """Create an Ed25519 key pair: private key outside the repository, public key in keys/."""
    if not RECIPE_NAME_RE.match(name):
        raise FtctlError(
            f"'{name}' is not a valid key name", hint="use lowercase letters, digits, '.', '_', '-'"
        )
    private_path = (out or default_private_dir() / f"{name}.key").expanduser().resolve()
    public_path = workspace_root / "keys" / f"{name}.pub"
    # Any git work tree, not only this workspace's: a key inside one is a `git add -A` from leaking.
    tree = git_top(private_path.parent)
    if tree is not None or private_path.is_relative_to(workspace_root.resolve()):
        raise FtctlError(
            f"refusing to write a private key inside a git work tree ({tree or workspace_root})",
            hint="choose --out outside any repository; the default is ~/.config/ftctl/keys/",
        )
    for path in (private_path, public_path):
        if path.exists():
            raise FtctlError(
                f"{path} already exists",
                hint="choose another key name, or remove the old key first",
            )
    key = Ed25519PrivateKey.generate()
    passphrase = _passphrase()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    from ftctl.files import write_atomic

    write_atomic(public_path, public_pem(key.public_key()))
    return KeygenResult(keyid(key.public_key()), private_path, public_path)


def signing_key_from_env() -> Ed25519PrivateKey:
    """The private key named by FTCTL_SIGNING_KEY (PEM text or a path to a PEM file)."""
    value = os.environ.get(KEY_ENV)
    if not value:
        raise FtctlError(
            f"no signing key: {KEY_ENV} is not set",
            hint=f"set {KEY_ENV} to the PEM text or the path of a key made by `ftctl keygen`",
        )
    if "-----BEGIN" in value:
        pem = value.encode()
    else:
        from ftctl.files import UnreadableInput, read_regular

        try:
            pem = read_regular(Path(value).expanduser(), 64 * 1024, KEY_ENV, what="key file")
        except UnreadableInput as exc:
            raise FtctlError(
                f"{KEY_ENV} names a file that cannot be used: {exc.problem.message}",
                hint="give the path of a key made by `ftctl keygen`, or the PEM text",
            ) from None
    passphrase = _passphrase()
    try:
        key = serialization.load_pem_private_key(pem, passphrase or None)
    except TypeError:
        raise FtctlError(
            f"the signing key is encrypted and {PASSPHRASE_ENV} is not set"
            if not passphrase
            else "the signing key is not encrypted but a passphrase was given",
            hint=f"set or unset {PASSPHRASE_ENV}",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise FtctlError(
            f"{KEY_ENV} is not a readable private key (wrong passphrase or not PEM)",
            hint="use a key made by `ftctl keygen`",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise FtctlError(
            "the signing key is not an Ed25519 key", hint="make one with `ftctl keygen`"
        )
    return key


MAX_PUBLIC_KEY_BYTES = 64 * 1024  # an Ed25519 PEM is 113 bytes


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A trusted key file: a regular file (never a FIFO or device) of at most 64 KiB."""
    from ftctl.files import read_regular

    pem = read_regular(path, MAX_PUBLIC_KEY_BYTES, str(path), what="public key")
    return parse_public_key(pem, str(path))


def parse_public_key(pem: bytes, shown: str) -> Ed25519PublicKey:
    """A public key from the bytes of a key file (from the working tree, a git ref or the environment)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise FtctlError(
            f"{shown}: not a readable public key (not an Ed25519 PEM key)",
            hint="regenerate it with `ftctl keygen`",
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise FtctlError(f"{shown}: not an Ed25519 public key")
    return key


def load_trusted(files: list[Path]) -> dict[str, Ed25519PublicKey]:
    """keyid -> public key for each key file."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in files:
        key = load_public_key(path)
        keys[keyid(key)] = key
    return keys


def trusted_keys(root: Path, patterns: list[str]) -> dict[str, Ed25519PublicKey]:
    """keyid -> public key for every key file matching the workspace's ``trust`` globs."""
    files = trusted_key_files(root, patterns)
    for path in files:
        refuse_key_outside(path, root)
    return load_trusted(files)


def refuse_key_outside(path: Path, root: Path) -> None:
    """A trusted key file must lie in the workspace once symlinks are resolved.

    A ``keys/*.pub`` committed as a symlink out would have ftctl read, and trust, a file
    the repository does not hold. The message names the file as the workspace has it.
    """
    from ftctl.files import confined

    if confined(path, root):
        return
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    raise FtctlError(
        f"{shown}: the key file leads outside the workspace",
        hint="commit the public key itself (ftctl keygen writes keys/NAME.pub), "
        "or pin keys with FTCTL_TRUSTED_KEYS",
    )
