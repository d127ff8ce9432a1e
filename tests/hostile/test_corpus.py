"""Run every hostile-input case (``cases.py``) against every command that reads its input.

Each command runs as ``python -m ftctl`` in a subprocess with a timeout, so a
hang, a segfault or an unbounded read shows as a failure of its own. For
every run: the expected exit status and one ``ftctl: error:``/``warning:``
line, no traceback, no planted secret in any output or written file, and no
byte changed outside the paths the case allows.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PLAN_RECIPE, REPO, git
from tests.hostile.cases import CASES as FIRST_CASES
from tests.hostile.cases import MD_RECIPE, Case, Plant, Run
from tests.hostile.hub import hostile_hub
from tests.hostile.more_cases import MORE_CASES

CASES = FIRST_CASES + MORE_CASES

INPUTS = Path(__file__).parent / "inputs"
SECRETS = ("hf_SECRETMARKER", "PASSMARKER")
# stderr lines: ftctl's one-line messages, verify's verdict, progress lines of lock and validate's summary
REPORT_PREFIXES = ("ftctl: ", "FAILED ", "locked ", "unchanged ")
SUMMARY = re.compile(r"^\d+ problems? in \d+ of \d+ files?$")
TIMEOUT = 30  # seconds per command: far above any case's honest run on a loaded machine
RECIPE = PLAN_RECIPE  # the shared test recipe
ADAPTER_CONFIG = '{"r": 8, "lora_alpha": 16, "base_model_name_or_path": "./models/tiny"}\n'
RESULT = {
    "started_at": "2026-11-24T10:01:00Z",
    "finished_at": "2026-11-24T11:01:00Z",
    "metrics": {"train_loss": 1.0, "x\x1b[2J\nftctl: warning: forged": 2.0},
    "host": "ci",
}


def base_env(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FTCTL_", "HF_", "GIT_", "XDG_"))
    }
    env.update(
        XDG_CONFIG_HOME=str(home),
        FTCTL_SIGNING_KEY=str(home / "ftctl" / "keys" / "ci.key"),
        FTCTL_SIGNING_KEY_PASSPHRASE=SECRETS[1],
        HF_TOKEN=SECRETS[0],
        HF_ENDPOINT="http://127.0.0.1:9",  # nothing listens: a stray request fails at once
        FTCTL_HF_ATTEMPTS="2",
        FTCTL_HF_BACKOFF="0.01",
        FTCTL_HF_TIMEOUT="5",
        NO_COLOR="1",
        PYTHONPATH=str(REPO),
    )
    return env


def ftctl(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ftctl", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete workspace: recipe, lock, key, signed manifest, its run, warm caches."""
    top = tmp_path_factory.mktemp("hostile-template")
    ws, home = top / "ws", top / "home"
    (top / "outside").mkdir()
    for rel, text in {
        "recipes/alpha.yaml": RECIPE,
        "models/tiny/config.json": "{}\n",
        "data/train.jsonl": '{"instruction": "a", "output": "b"}\n',
        ".gitignore": ".ftctl/\n.runs/\n",
        ".runs/alpha-1/adapter/adapter_model.safetensors": "weights",
        ".runs/alpha-1/adapter/adapter_config.json": ADAPTER_CONFIG,
        ".runs/alpha-1/train-log.jsonl": '{"step": 1, "loss": 1.0}\n',
        ".runs/alpha-1/environment.json": '{"python": "3.11.7"}\n',
        ".runs/alpha-1/result.json": json.dumps(RESULT),
    }.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text, encoding="utf-8")
    git(ws, "init", "-q")
    env = base_env(home)
    for args in (
        ("keygen", "ci"),
        ("lock",),
        ("attest", ".runs/alpha-1", "--recipe", "alpha", "--external"),
    ):
        done = ftctl(ws, env, *args)
        assert done.returncode == 0, done.stderr.decode()
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "template")
    assert ftctl(ws, env, "plan").returncode == 0
    return top


def _manifest(ws: Path) -> str:
    """The template's manifest (the first in name order: a case may add others)."""
    found = sorted((ws / "manifests" / "alpha").glob("*.intoto.json"))
    return str(found[0].relative_to(ws))


def expand(text: str, ws: Path) -> str:
    return text.replace("{manifest}", _manifest(ws)).replace("{run}", ".runs/alpha-1")


def plant(ws: Path, item: Plant, manifest: str) -> None:
    path = ws / item.path.replace("{manifest}", manifest).replace("{run}", ".runs/alpha-1")
    path.parent.mkdir(parents=True, exist_ok=True)
    if item.kind in _REPLACING:
        if path.is_symlink() or path.is_file():
            path.unlink()
        _REPLACING[item.kind](path, item)
    elif item.kind == "file":
        path.write_text(item.value, encoding="utf-8")
    elif item.kind == "input":
        shutil.copyfile(INPUTS / item.value, path)
    elif item.kind == "copy":
        shutil.copyfile(ws / item.value.replace("{manifest}", manifest), path)
    elif item.kind == "append":
        path.write_text(path.read_text(encoding="utf-8") + item.value, encoding="utf-8")
    elif item.kind == "replace":
        text = path.read_text(encoding="utf-8")
        assert item.value in text, (item, text)
        path.write_text(text.replace(item.value, item.extra), encoding="utf-8")
    elif item.kind == "move":
        shutil.move(path, ws / item.value)
    elif item.kind == "remove":
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    elif item.kind == "age":
        old = path.stat().st_mtime - int(item.value)
        os.utime(path, (old, old))
    else:
        raise AssertionError(f"unknown plant {item.kind}")


def _fifo(path: Path, item: Plant) -> None:
    os.mkfifo(path)


def _symlink(path: Path, item: Plant) -> None:
    path.symlink_to(item.value)


# Plants that take the place of a file already there.
_REPLACING: dict[str, Callable[[Path, Plant], None]] = {"fifo": _fifo, "symlink": _symlink}


def snapshot(top: Path) -> dict[str, tuple[str, bytes]]:
    """Every entry under ``top`` (symlinks not followed): its type and bytes (or link target)."""
    out: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = str(path.relative_to(top))
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                out[rel] = ("link", os.readlink(path).encode())
            elif stat.S_ISREG(mode):
                out[rel] = ("file", path.read_bytes())
            else:
                out[rel] = ("dir" if stat.S_ISDIR(mode) else "other", b"")
    return out


def _allowed(rel: str, case: Case) -> bool:
    if not rel.startswith("ws/"):
        return False
    inner = rel[3:]
    return any(fnmatch.fnmatch(inner, pattern) or inner == pattern for pattern in case.changes)


def check_run(case: Case, run: Run, done: subprocess.CompletedProcess[bytes], ws: Path) -> None:
    out = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace")
    shown = f"{run.argv}: rc={done.returncode}\nstdout: {out[:2000]}\nstderr: {err[:2000]}"
    assert done.returncode >= 0, f"killed by signal {-done.returncode}: " + shown
    assert "Traceback" not in out + err, shown
    assert "internal error" not in err, shown
    for secret in SECRETS:
        assert secret not in out + err, f"secret in output: {shown}"
    for line in (out + "\n" + err).splitlines():
        for pattern in case.forbid:
            assert not re.search(pattern, line), f"forbidden {pattern!r} in {line!r}: {shown}"
    for line in err.splitlines():
        assert line.startswith(REPORT_PREFIXES) or not line.strip() or SUMMARY.match(line), (
            f"stray stderr line {line!r}: {shown}"
        )
    # verify's failure line is its one error line
    errors = [line for line in err.splitlines() if line.startswith(("ftctl: error:", "FAILED "))]
    warnings = [line for line in err.splitlines() if line.startswith("ftctl: warning:")]
    match = expand(run.match, ws)
    if run.outcome == "error":
        assert done.returncode == 1, shown
        assert len(errors) == 1, shown
        assert match in errors[0], f"{match!r} not in the error: {shown}"
    elif run.outcome == "problems":
        assert done.returncode == 1, shown
        assert match in out, f"{match!r} not in the problems: {shown}"
    elif run.outcome == "report":
        assert done.returncode == 1, shown
        assert match in out + err, f"{match!r} not in the report: {shown}"
    elif run.outcome == "warning":
        assert done.returncode == 0, shown
        assert len([w for w in warnings if match in w]) == 1, shown
    else:
        assert run.outcome == "ok"
        assert done.returncode == 0, shown
        assert not errors, shown


@pytest.fixture(scope="module")
def hub_url() -> Iterator[str]:
    with hostile_hub() as url:
        yield url


@pytest.mark.slow  # ~80 cases of whole processes: minutes on a 2-core machine
@pytest.mark.parametrize("case", CASES, ids=[f"{c.cls}-{c.id}" for c in CASES])
def test_hostile_input(case: Case, template: Path, tmp_path: Path, hub_url: str) -> None:
    top = tmp_path / "case"
    shutil.copytree(template, top, symlinks=True)
    ws = top / "ws"
    manifest = _manifest(ws)
    for item in case.plants:
        plant(ws, item, manifest)
    env = {**base_env(top / "home"), **case.env}
    if case.hub:
        env["HF_ENDPOINT"] = hub_url
    before = snapshot(top)
    for run in case.runs:
        argv = [expand(a, ws) if "{" in a else a for a in run.argv]
        try:
            done = ftctl(ws, env, *argv)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{argv}: still running after {TIMEOUT} s (a hang)")
        check_run(case, run, done, ws)
    after = snapshot(top)
    changed = sorted(rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel))
    unexpected = [rel for rel in changed if not _allowed(rel, case)]
    assert not unexpected, f"changed outside the expected output: {unexpected}"
    for rel in changed:
        _kind, data = after.get(rel, ("gone", b""))
        for secret in SECRETS:
            assert secret.encode() not in data, f"secret written to {rel}"


def test_the_corpus_covers_every_class() -> None:
    classes = {case.cls for case in CASES}
    assert classes == {"secret", "crash", "traceback", "hang", "clobber", "injection"}
    assert len({case.id for case in CASES}) == len(CASES)
    assert MD_RECIPE.startswith("base_model")
