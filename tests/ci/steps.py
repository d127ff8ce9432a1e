"""Run a CI template's shell steps here, the way GitHub Actions and GitLab CI run them.

Both run a step's script with ``bash --noprofile --norc -eo pipefail`` in the checkout, with
the job's environment; so does this, with ftctl as installed here on PATH. What a CI system
does besides shell (checking out, setting up Python, restoring the cache, uploading
artifacts) the tests do themselves: a "remote" is a bare repository, a checkout is a clone.
The install steps are not run (they reach the package index); tests read them instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftctl.yamlio import parse_yaml
from tests.conftest import PLAN_RECIPE, git, invoke_cli, write

GH = Path(__file__).with_name("fake_gh.py")
BIN = Path(sys.executable).parent  # this environment's python and ftctl console script
HF_TOKEN = "hf_SentinelTokenThatMustNeverBePrinted"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load(path: Path) -> dict[str, Any]:
    data = parse_yaml(path.read_text(encoding="utf-8"), path.name).data
    assert isinstance(data, dict)
    return data


def expand(value: object, context: Mapping[str, str]) -> str:
    """A GitHub value with its ``${{ }}`` expressions replaced from ``context``."""

    def one(match: re.Match[str]) -> str:
        assert match[1] in context, f"the test does not know the expression {match[1]!r}"
        return context[match[1]]

    return EXPRESSION.sub(one, str(value))


@dataclass
class Ran:
    code: int
    log: str  # stdout and stderr, interleaved as the CI log shows them


def run_script(script: str, cwd: Path, env: Mapping[str, str]) -> Ran:
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False, encoding="utf-8") as f:
        f.write(script)
    try:
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", f.name],
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
    finally:
        os.unlink(f.name)
    assert "Traceback" not in proc.stdout, proc.stdout
    return Ran(proc.returncode, proc.stdout)


def base_env(tmp: Path) -> dict[str, str]:
    """A runner's environment: ftctl and a fake ``gh`` on PATH, a home of its own."""
    assert (BIN / "ftctl").is_file(), "ftctl's console script must be installed next to python"
    fake = tmp / "fake-bin"
    if not (fake / "gh").exists():
        fake.mkdir(parents=True, exist_ok=True)
        (fake / "gh").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{GH}" "$@"\n')
        (fake / "gh").chmod(0o755)
    home = tmp / "runner-home"
    home.mkdir(exist_ok=True)
    path = [str(fake), str(BIN), "/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(path),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "LANG": "C.UTF-8",
        "CI": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
    }


@dataclass
class Remote:
    """The hosted repository (a bare one), a developer's clone, and the signing key."""

    origin: Path
    dev: Path
    key_home: Path  # XDG_CONFIG_HOME of whoever ran `ftctl keygen ci`

    @property
    def key(self) -> Path:
        return self.key_home / "ftctl" / "keys" / "ci.key"

    def checkout(self, dest: Path, ref: str) -> Path:
        """What the CI system's checkout leaves: a clone of origin at ``ref``."""
        git(dest.parent, "clone", "-q", str(self.origin), str(dest))
        git(dest, "checkout", "-q", ref)
        return dest

    def push(self, message: str, path: str, text: str, branch: str = "main") -> None:
        """A developer's commit on ``branch``, pushed."""
        git(self.dev, "checkout", "-q", branch)
        write(self.dev / path, text)
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-qm", message)
        git(self.dev, "push", "-q", "origin", branch)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = invoke_cli(*args, cwd=self.dev, env=env)
        assert result.code in (0, 2), result.err
        return result.out


def seed(tmp: Path, system: str) -> Remote:
    """A workspace made by `ftctl init --ci SYSTEM`, with one locked recipe, hosted on main."""
    dev, origin, home = tmp / "dev", tmp / "origin.git", tmp / "keys-home"
    assert invoke_cli("init", str(dev), "--ci", system, cwd=tmp).code == 0
    # The example's base model is on the Hub, which `ftctl lock` would have to reach.
    (dev / "recipes" / "example.yaml").unlink()
    write(dev / "recipes" / "support.yaml", PLAN_RECIPE)
    write(dev / "models" / "tiny" / "config.json", "{}\n")
    write(dev / "data" / "train.jsonl", '{"instruction": "a", "output": "b"}\n')
    remote = Remote(origin, dev, home)
    remote.cli("keygen", "ci", env={"XDG_CONFIG_HOME": str(home)})
    remote.cli("lock")
    git(dev, "symbolic-ref", "HEAD", "refs/heads/main")
    git(dev, "add", "-A")
    git(dev, "commit", "-qm", "a workspace")
    git(tmp, "init", "-q", "--bare", "-b", "main", str(origin))
    git(dev, "remote", "add", "origin", str(origin))
    git(dev, "push", "-q", "origin", "main")
    return remote


def copy(remote: Remote, tmp: Path) -> Remote:
    """A test's own copy of a seeded remote and developer clone."""
    origin, dev = tmp / "origin.git", tmp / "dev"
    shutil.copytree(remote.origin, origin, symlinks=True)
    git(tmp, "clone", "-q", str(origin), str(dev))
    return Remote(origin, dev, remote.key_home)


def attest(remote: Remote, tmp: Path, recipe: str, key: Path, minute: int = 1) -> None:
    """Record a finished run of ``recipe`` in the developer's clone, signed with ``key``."""
    from tests.rundirs import finished_run

    run = finished_run(remote.dev, tmp / f"run-{minute}", recipe, minute=minute)
    remote.cli("attest", str(run), "--recipe", recipe, env={"FTCTL_SIGNING_KEY": str(key)})
