"""What git says about the workspace: the HEAD commit and the bytes of a file at a commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ftctl.recipe.refs import COMMIT_RE


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, timeout=60, check=False
    )


def head_commit(root: Path) -> str | None:
    proc = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    text = proc.stdout.decode().strip()
    return text if proc.returncode == 0 and COMMIT_RE.match(text) else None


def file_at(root: Path, commit: str, relpath: str) -> bytes | None:
    """The bytes of ``relpath`` at ``commit``, or None if git does not have them."""
    proc = _git(root, "show", f"{commit}:{relpath}")
    return proc.stdout if proc.returncode == 0 else None


def remote_url(root: Path) -> str | None:
    proc = _git(root, "remote", "get-url", "origin")
    url = proc.stdout.decode().strip()
    return (
        url
        if proc.returncode == 0 and url and "@" not in url.split("://")[-1].split("/")[0]
        else None
    )


def resolve_ref(root: Path, ref: str) -> str | None:
    """The commit ``ref`` (a branch, tag, ``origin/main``, a commit) names, or None."""
    if ref.startswith("-"):  # never an option to git
        return None
    proc = _git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
    text = proc.stdout.decode().strip()
    return text if proc.returncode == 0 and COMMIT_RE.match(text) else None


def files_at(root: Path, commit: str) -> list[str]:
    """Every file path at ``commit`` under ``root`` (relative to ``root``, POSIX)."""
    proc = _git(root, "ls-tree", "-r", "-z", "--name-only", "--full-tree", commit, "--", ".")
    if proc.returncode != 0:
        return []
    prefix = _git(root, "rev-parse", "--show-prefix").stdout.decode().strip()
    names = [n.decode("utf-8", "surrogateescape") for n in proc.stdout.split(b"\0") if n]
    return [n[len(prefix) :] for n in names if n.startswith(prefix)]


def blob_at(root: Path, commit: str, relpath: str) -> bytes | None:
    """The bytes of ``relpath`` (relative to ``root``) at ``commit``, or None."""
    proc = _git(root, "show", f"{commit}:./{relpath}")
    return proc.stdout if proc.returncode == 0 else None


def inside_work_tree(root: Path) -> bool:
    """Whether ``root`` (an existing directory) lies inside a git work tree."""
    try:
        proc = _git(root, "rev-parse", "--is-inside-work-tree")
    except OSError:  # git is not installed
        return False
    return proc.returncode == 0 and proc.stdout.decode().strip() == "true"


def init_repository(root: Path) -> str | None:
    """``git init`` in ``root``; None when done, else why not (one line)."""
    try:
        proc = _git(root, "init", "-q")
    except OSError:
        return "git is not installed"
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:200] if lines else f"git init exited with {proc.returncode}"
    return None
