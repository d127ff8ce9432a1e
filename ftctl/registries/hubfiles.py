"""The files of a Hub publication on this side: what is published, and what comes back.

Publishing checks the adapter directory against the manifest it goes with (the same
names, and the digests the upload computed), so a repository never holds files its
provenance does not vouch for. Downloads go into a temp directory beside ``dest``,
every path confined to it, every file at most its listed size, then renamed into
place: ``dest`` holds the whole publication or does not exist.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ftctl import _hf
from ftctl._hf import HubError, HubRepo, RetryPolicy
from ftctl.errors import FtctlError
from ftctl.files import confined, current_umask
from ftctl.hashing import walk_files
from ftctl.provenance.rundir import PROVENANCE_DIR
from ftctl.provenance.statement import Statement
from ftctl.registries.base import PROVENANCE_FILE
from ftctl.registries.hubreplies import Entry

CARD = "README.md"
SAME_FILES_HINT = "publish the adapter directory the manifest was signed for"


def adapter_files(files: Path, statement: Statement) -> list[tuple[str, Path | bytes]]:
    """The adapter directory's files (its .ftctl/ aside): exactly the statement's subjects."""
    found: list[tuple[str, Path | bytes]] = [
        (rel, path)
        for rel, path in walk_files(files, str(files))
        if rel.split("/")[0] != PROVENANCE_DIR
    ]
    names = {rel for rel, _ in found}
    subjects = {s.name for s in statement.subject}
    if names != subjects:
        problems = [f"{n} is missing" for n in sorted(subjects - names)]
        problems += [f"{n} is not in the manifest" for n in sorted(names - subjects)]
        raise FtctlError(
            f"{files}: not the files the manifest records: {'; '.join(problems)}",
            hint=SAME_FILES_HINT,
        )
    return found


def check_digests(digests: dict[str, str], statement: Statement, files: Path) -> None:
    """Every adapter file as uploaded has its subject's digest (hashed once, by the upload)."""
    differs = [s.name for s in statement.subject if digests.get(s.name) != s.digest["sha256"]]
    if differs:
        raise FtctlError(
            f"{files}: {', '.join(sorted(differs))} differ from the manifest's digests; "
            "nothing was committed",
            hint=SAME_FILES_HINT,
        )


def file_url(at: HubRepo, path: str) -> str:
    from urllib.parse import quote

    revision = quote(at.revision or "main", safe="")
    return f"{_hf.endpoint()}/{at.repo_id}/resolve/{revision}/{quote(path, safe='/')}"


def download(
    at: HubRepo, entries: list[Entry], provenance: bytes, dest: Path, policy: RetryPolicy
) -> None:
    """``entries`` at ``at``'s commit, and the provenance, as real files under ``dest``."""
    if dest.exists() or dest.is_symlink():
        raise FtctlError(f"{dest} exists", hint="fetch into a directory that does not exist yet")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        for entry in entries:
            _download_one(at, entry, tmp, policy)
        (tmp / PROVENANCE_DIR).mkdir(exist_ok=True)
        with open(tmp / PROVENANCE_FILE, "xb") as handle:
            handle.write(provenance)
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it 0700
        os.rename(tmp, dest)
    except OSError as exc:  # e.g. a listing naming both "a" and "a/b"
        shutil.rmtree(tmp, ignore_errors=True)
        raise FtctlError(f"{dest}: cannot write the download ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _download_one(at: HubRepo, entry: Entry, root: Path, policy: RetryPolicy) -> None:
    target = root / entry.path  # a checked relative path (hubreplies.parse_tree)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not confined(target.parent, root):
        raise HubError(at, f"{entry.path} would be written outside the download")
    with open(target, "xb") as handle:  # never through a link a hostile name made
        _hf.fetch(at, file_url(at, entry.path), handle, limit=entry.size, policy=policy)
        if handle.tell() != entry.size:
            raise HubError(
                at,
                f"{entry.path}: the Hub sent {handle.tell():,} bytes; its listing says {entry.size:,}",
            )
