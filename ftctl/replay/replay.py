"""`ftctl replay`: train a recorded run again from its bundle, offline, and say whether it reproduced.

The bundle is checked against its index and the manifest's signature before
anything runs; the worker (the local executor, as apply uses it) trains in a
temporary workspace made of the bundle alone, with the Hub clients offline;
the outputs are compared with the manifest's subjects, tensor by tensor where
the bytes differ, and the environment differences that can explain a
divergence are listed from the recorded and the replayed environment.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ftctl.canonical import JSONError, strict_loads
from ftctl.errors import INTERRUPTED, FtctlError, UsageError
from ftctl.executors.base import WORKER_LOG, Event
from ftctl.files import read_small
from ftctl.provenance.manifest import ManifestError, VerifiedManifest, verify_bytes
from ftctl.provenance.rundir import artifact_digests
from ftctl.replay.bundle import INDEX, KEYS, ORIGINAL, BundleIndex
from ftctl.replay.hubcache import BUNDLE_CACHE
from ftctl.workspace import Workspace

if TYPE_CHECKING:
    from ftctl.provenance.trust import Trust

Verdict = Literal["bitwise", "tensor-exact", "within-tolerance", "diverged"]
ORDER: tuple[Verdict, ...] = ("bitwise", "tensor-exact", "within-tolerance", "diverged")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
COMPARE_TIMEOUT_S = 600
RUN = ".ftctl/runs/replay"


@dataclass(frozen=True)
class Tolerance:
    abs: float = 1e-6
    rel: float = 1e-4

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """``abs=X,rel=Y`` (either may be left out: its default stands)."""
        values = {"abs": cls.abs, "rel": cls.rel}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            try:
                number = float(value)
            except ValueError:
                number = -1.0
            if key not in values or not number >= 0 or number == float("inf"):
                raise UsageError(
                    f"--tolerance {text!r}: expected abs=X,rel=Y with non-negative numbers",
                    hint="e.g. --tolerance abs=1e-6,rel=1e-4",
                )
            values[key] = number
        return cls(values["abs"], values["rel"])


@dataclass(frozen=True)
class FileOutcome:
    name: str
    verdict: Verdict
    detail: str = ""


@dataclass
class Replayed:
    verdict: Verdict
    manifest: VerifiedManifest
    manifest_sha256: str
    index_sha256: str
    tolerance: Tolerance
    files: list[FileOutcome]
    tensors: list[dict[str, Any]]
    environment: list[dict[str, Any]]
    trust: str  # where the keys that verified the manifest came from
    notes: list[str] = field(default_factory=list)

    def worst(self, key: str) -> dict[str, Any] | None:
        figures = [t for t in self.tensors if isinstance(t.get(key), float)]
        if not figures:
            return None
        top = max(figures, key=lambda t: float(t[key]))
        return {"name": top["name"], "value": top[key]}


def replay_workspace(
    ws: Path,
    index: BundleIndex,
    trusted: dict[str, Ed25519PublicKey] | None,
    trust_source: str,
    tolerance: Tolerance,
    on_event: Callable[[Event], None],
) -> Replayed:
    """Verify, train and compare in ``ws``, which holds an unpacked (or freshly made) bundle."""
    data = read_small(ws / index.manifest, 16 << 20)
    notes: list[str] = []
    if trusted is None:
        trusted = _bundle_keys(ws)
        trust_source = "the bundle's own keys"
        notes.append(
            "the manifest was verified with the keys inside the bundle: set FTCTL_TRUSTED_KEYS "
            "(or replay inside the workspace) to pin the trust outside it"
        )
    try:
        manifest = verify_bytes(data.strip(), trusted, Path(index.manifest))
    except ManifestError as exc:
        raise FtctlError(
            f"{index.manifest}: {exc.reason}", hint="replay only a manifest a trusted key signed"
        ) from None
    _check_matches(ws, index, manifest)
    run_dir = ws / RUN
    run_dir.mkdir(parents=True)
    _train(ws, index, manifest, run_dir, on_event)
    files, tensors = _compare(ws, index, manifest, run_dir / "adapter", tolerance)
    verdict: Verdict = max((f.verdict for f in files), key=ORDER.index, default="bitwise")
    return Replayed(
        verdict=verdict,
        manifest=manifest,
        manifest_sha256=hashlib.sha256(data.strip()).hexdigest(),
        index_sha256=hashlib.sha256(read_small(ws / INDEX, 64 << 20)).hexdigest()
        if (ws / INDEX).is_file()
        else "",
        tolerance=tolerance,
        files=files,
        tensors=tensors,
        environment=environment_differences(manifest, ws, run_dir),
        trust=trust_source,
        notes=notes,
    )


def _bundle_keys(ws: Path) -> dict[str, Ed25519PublicKey]:
    from ftctl.provenance.keys import load_trusted

    return load_trusted(sorted((ws / KEYS).glob("*.pub")))


def _check_matches(ws: Path, index: BundleIndex, manifest: VerifiedManifest) -> None:
    """The bundle's recipe and lock are the ones the signed manifest records, byte for byte."""
    definition = manifest.statement.predicate.buildDefinition
    if index.name != manifest.statement.name:
        raise FtctlError(
            f"{INDEX} names recipe {index.name}, the manifest {manifest.statement.name}"
        )
    for what, ref, rel in (
        ("recipe", definition.externalParameters.recipe, index.recipe),
        ("lock", definition.internalParameters.lock, index.lock),
    ):
        digest = hashlib.sha256(read_small(ws / rel)).hexdigest()
        if ref.path != rel or digest != ref.digest["sha256"]:
            raise FtctlError(
                f"{rel}: the bundle's {what} differs from the {what} the manifest records",
                hint="make the bundle again with `ftctl bundle`",
            )


@contextmanager
def _worker_environment(extra: dict[str, str]) -> Iterator[None]:
    """The executor builds the worker's environment from this process's: set ours around it."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _train(
    ws: Path,
    index: BundleIndex,
    manifest: VerifiedManifest,
    run_dir: Path,
    on_event: Callable[[Event], None],
) -> None:
    from ftctl.executors.local import LocalExecutor
    from ftctl.runspec import RunSpec

    if index.dvc:
        (ws / ".dvc").mkdir(exist_ok=True)  # DVC's records are found from the repository root
    (ws / ".git").mkdir(exist_ok=True)  # the workspace ends here, never in a directory above it
    extra = dict(OFFLINE_ENV)
    if index.hf_cache:
        extra["HF_HUB_CACHE"] = str(ws / BUNDLE_CACHE)
    spec = RunSpec(
        recipe_path=str(ws / index.recipe),
        name=manifest.statement.name,
        workspace=str(ws),
        output_dir=str(run_dir),
        lock=str(ws / index.lock),
    )
    with _worker_environment(extra):
        code = LocalExecutor().run(spec, run_dir, on_event)
    if code == INTERRUPTED:
        raise KeyboardInterrupt
    if code != 0 or not (run_dir / "result.json").is_file():
        raise FtctlError(
            f"the replayed training of {manifest.statement.name} failed (exit {code}): "
            f"{_log_tail(run_dir / WORKER_LOG)}",
            hint="the worker's log is shown above; the bundle's inputs were all verified",
        )


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_bytes()[-65536:].decode("utf-8", "replace").splitlines()
    except OSError:
        return "no log"
    errors = [
        line.removeprefix("ftctl: error: ") for line in lines if line.startswith("ftctl: error:")
    ]
    tail = errors or [line.strip() for line in lines if line.strip()]
    return tail[-1] if tail else "the worker printed nothing"


def _compare(
    ws: Path, index: BundleIndex, manifest: VerifiedManifest, adapter: Path, tolerance: Tolerance
) -> tuple[list[FileOutcome], list[dict[str, Any]]]:
    actual = artifact_digests(adapter)
    expected = {s.name: s.digest["sha256"] for s in manifest.statement.subject}
    files: list[FileOutcome] = []
    tensors: list[dict[str, Any]] = []
    for name in sorted(expected):
        if name not in actual:
            files.append(FileOutcome(name, "diverged", "the replay did not write it"))
        elif actual[name] == expected[name]:
            files.append(FileOutcome(name, "bitwise"))
        elif not name.endswith(".safetensors"):
            files.append(FileOutcome(name, "diverged", "its bytes differ (not a tensor file)"))
        elif not index.original:
            files.append(
                FileOutcome(
                    name,
                    "diverged",
                    "its bytes differ; the bundle has no recorded adapter to compare tensors with",
                )
            )
        else:
            outcome, figures = compare_tensor_files(
                ws / ORIGINAL / name, adapter / name, tolerance, name
            )
            files.append(outcome)
            tensors += [{"file": name, **t} for t in figures]
    files += [
        FileOutcome(n, "diverged", "not in the manifest")
        for n in sorted(set(actual) - set(expected))
    ]
    return files, tensors


def compare_tensor_files(
    recorded: Path, replayed: Path, tolerance: Tolerance, name: str
) -> tuple[FileOutcome, list[dict[str, Any]]]:
    """Run the worker's tensor comparison (only the worker imports torch); its classification."""
    from ftctl.launch import SAFE_PYTHON, worker_env

    command = [
        *SAFE_PYTHON,
        *("-m", "ftctl.worker.compare", str(recorded), str(replayed)),
        *(repr(tolerance.abs), repr(tolerance.rel)),
    ]
    proc = subprocess.run(
        command,
        capture_output=True,
        env=worker_env(),
        cwd=replayed.parent,
        timeout=COMPARE_TIMEOUT_S,
        check=False,
    )
    try:
        answer = strict_loads(proc.stdout.strip() or b"{}")
    except JSONError:
        answer = {}
    if not isinstance(answer, dict) or not isinstance(answer.get("tensors"), list):
        reason = answer.get("error") if isinstance(answer, dict) else None
        raise FtctlError(
            f"{name}: the tensors could not be compared ({reason or f'exit {proc.returncode}'})"
        )
    figures: list[dict[str, Any]] = [t for t in answer["tensors"] if isinstance(t, dict)]
    statuses = {t.get("status") for t in figures}
    if statuses <= {"equal"}:
        return FileOutcome(name, "tensor-exact", "same tensors, other bytes"), figures
    if statuses <= {"equal", "within"}:
        return FileOutcome(name, "within-tolerance"), figures
    bad = next(t for t in figures if t.get("status") not in ("equal", "within"))
    return FileOutcome(name, "diverged", f"{bad.get('name')}: {bad.get('status')}"), figures


def environment_differences(
    manifest: VerifiedManifest, ws: Path, run_dir: Path
) -> list[dict[str, Any]]:
    """What differs between the recorded platform, pins and determinism and the replay's."""
    from ftctl.lock.lockfile import load_lock
    from ftctl.provenance.rundir import read_run_dir

    internal = manifest.statement.predicate.buildDefinition.internalParameters
    run = read_run_dir(run_dir)
    env = run.environment
    listed = env.get("packages")
    packages: dict[str, Any] = listed if isinstance(listed, dict) else {}
    differences: list[dict[str, Any]] = []
    for key, recorded in sorted(internal.platform.items()):
        if key == "host":
            continue
        current = env.get(key, packages.get(key))
        if current != recorded:
            differences.append({"field": key, "recorded": recorded, "replay": current})
    lock = load_lock(
        ws / manifest.statement.predicate.buildDefinition.internalParameters.lock.path, "lock"
    )
    for package, pinned in sorted(lock.pins.packages.items()):
        current = packages.get(package)
        if current != pinned:
            differences.append({"field": f"pins.{package}", "recorded": pinned, "replay": current})
    determinism = run.result.get("determinism")
    replayed = determinism if isinstance(determinism, dict) else {}
    for key in sorted(set(internal.determinism) | set(replayed)):
        if internal.determinism.get(key) != replayed.get(key):
            differences.append(
                {
                    "field": f"determinism.{key}",
                    "recorded": internal.determinism.get(key),
                    "replay": replayed.get(key),
                }
            )
    return differences


def replay(
    source: str,
    workspace: Workspace | None,
    trust: Trust | None,
    tolerance: Tolerance,
    on_event: Callable[[Event], None],
) -> Replayed:
    """Replay a bundle (directory, .tar, .tar.zst), or a manifest (NAME or file) of ``workspace``.

    ``trust`` pins the keys the manifest must be signed by; None: the bundle's own keys.
    """
    from ftctl.replay.bundle import find_manifest, make_bundle
    from ftctl.replay.unpack import fresh_workspace, parse_index, remove_workspace, unpack

    path = Path(source)
    scratch = fresh_workspace()
    ws = scratch / "workspace"
    try:
        if is_bundle(path):
            index = unpack(path, ws)
        else:
            if workspace is None or trust is None:
                raise UsageError(
                    f"{source} is not a bundle, and there is no workspace to find its manifest in",
                    hint="name a bundle made by `ftctl bundle`, or run ftctl in the workspace",
                )
            manifest = find_manifest(workspace.root, source, trust.keys())
            index = make_bundle(workspace, manifest, trust, ws).index  # checked as it is copied
            index = parse_index(read_small(ws / INDEX, 64 << 20), str(ws))
        keys = trust.keys() if trust is not None else None
        shown = trust.source if trust is not None else ""
        return replay_workspace(ws, index, keys, shown, tolerance, on_event)
    finally:
        remove_workspace(scratch)


def is_bundle(path: Path) -> bool:
    if path.is_dir():
        return (path / INDEX).exists()
    return path.name.endswith((".tar", ".tar.zst")) and path.exists()
