"""One plan action, carried out: train (create/retrain), restore, republish.

Each returns the manifest it recorded. Everything is done by the controller
process except the training itself (the executor's worker), and the signing
key never leaves it. Every step can be repeated after a kill: a finished run
directory is not trained again, a publication of the same fingerprint is a
no-op, and a manifest is written once, last.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ftctl.apply import rundirs
from ftctl.apply.record import published_uri, restored_statement, with_publication
from ftctl.errors import INTERRUPTED, FtctlError
from ftctl.executors.base import PROGRESS, WORKER_LOG, Event, Executor
from ftctl.files import read_small, write_atomic
from ftctl.lock.lockfile import Lockfile
from ftctl.provenance import dsse
from ftctl.provenance.attest import build_statement
from ftctl.provenance.manifest import (
    ManifestError,
    VerifiedManifest,
    sign_statement,
    verify_artifacts,
    verify_bytes,
    write_manifest,
)
from ftctl.provenance.rundir import read_run_dir
from ftctl.provenance.statement import Statement
from ftctl.recipe.load import LoadedRecipe
from ftctl.registries.base import PROVENANCE_FILE, Found, Registry
from ftctl.registries.select import artifact_registry
from ftctl.runspec import RunSpec
from ftctl.workspace import Workspace

# Apply's checkpoint cadence for a recipe that sets none: one every 10 minutes of training (a
# run shorter than that saves none), the newest two kept; FTCTL_CHECKPOINT_SECONDS changes it.
# It changes nothing that is trained (docs/apply.md).
CHECKPOINT_SECONDS = 600.0
LOG_TAIL = 12  # lines of worker.log shown when a training fails


@dataclass(frozen=True)
class Context:
    """What every action of one apply shares."""

    workspace: Workspace
    key: Ed25519PrivateKey
    trusted: dict[str, Ed25519PublicKey]
    executor: Callable[[str], Executor]  # by the recipe's ftctl.executor name
    warn: Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """One recipe as the plan applies it: the recipe, its fresh lock, its registry."""

    loaded: LoadedRecipe
    lock: Lockfile
    lock_path: Path
    registry: Registry
    base_model_dir: Path | None = None  # for base_model: recipe:<name>, the upstream's artifact


@dataclass(frozen=True)
class Done:
    manifest: Path
    artifact: Path  # the local copy of the recorded artifact (a dependant trains on it)
    trained_s: float = 0.0  # wall time of the training itself, 0 when none ran
    resumed_from: int | None = None  # the checkpoint step a resumed training started at


def train(ctx: Context, target: Target, on_event: Callable[[Event], None]) -> Done:
    """create/retrain: train in ``.ftctl/runs/<fp>/`` (resuming a killed run), then record it."""
    root = ctx.workspace.root
    fp = target.lock.fingerprint
    directory = rundirs.run_dir(root, fp)
    resumed: int | None = None
    trained_s = 0.0
    if rundirs.finished(directory) and _recorded(root, directory):
        rundirs.clear_attempt(directory, keep_checkpoints=False)  # --replace: train it again
    if not rundirs.finished(directory):
        checkpoint = rundirs.newest_checkpoint(directory)
        rundirs.clear_attempt(directory, keep_checkpoints=checkpoint is not None)
        if checkpoint is not None:
            resumed = int(checkpoint.name.rsplit("-", 1)[1])
        spec = RunSpec(
            recipe_path=str(target.loaded.path.resolve()),
            name=target.loaded.name,
            workspace=str(root.resolve()),
            output_dir=str(directory.resolve()),
            lock=str(target.lock_path.resolve()),
            base_model_dir=str(target.base_model_dir) if target.base_model_dir else None,
            resume_from=str(checkpoint.resolve()) if checkpoint is not None else None,
            checkpoint_seconds=checkpoint_seconds(),
            progress=str((directory / PROGRESS).resolve()),
        )
        executor = ctx.executor(target.loaded.recipe.ftctl.executor)
        code = executor.run(spec, directory, on_event)
        if code == INTERRUPTED:
            raise KeyboardInterrupt
        if code != 0 or not rundirs.finished(directory):
            raise FtctlError(
                f"training {target.loaded.name} failed (exit {code}): {_log_tail(directory)}",
                hint=f"the worker's log is {directory / WORKER_LOG}; apply again to resume",
            )
        trained_s = _wall_time(directory)
    manifest = record_trained(ctx, target, directory)
    rundirs.remove_checkpoints(directory)
    return Done(manifest, directory / "adapter", trained_s, resumed)


def checkpoint_seconds() -> float:
    """FTCTL_CHECKPOINT_SECONDS, else CHECKPOINT_SECONDS."""
    import os

    from ftctl.errors import EnvVarError

    text = os.environ.get("FTCTL_CHECKPOINT_SECONDS", "")
    if not text:
        return CHECKPOINT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise EnvVarError("FTCTL_CHECKPOINT_SECONDS", text, "a number of seconds", "600")
    return value


def _recorded(root: Path, directory: Path) -> bool:
    """Whether the finished run here has a manifest already (under any recipe name)."""
    from ftctl.provenance.attest import run_id
    from ftctl.provenance.manifest import run_tag

    try:
        tag = run_tag(run_id(read_run_dir(directory)))
    except FtctlError:
        return False  # damaged: recording it reports why
    return any((root / "manifests").glob(f"*/*-{tag}.intoto.json"))


def record_trained(ctx: Context, target: Target, directory: Path) -> Path:
    """Verify the finished run, sign it, publish it, write its manifest (each step repeatable)."""
    root = ctx.workspace.root
    run = read_run_dir(directory)
    envelope = _prepublication(ctx, target, directory)
    statement = _statement_of(envelope, ctx.key.public_key(), directory)
    published = target.registry.publish(
        target.loaded.name,
        target.lock.fingerprint,
        run.adapter,
        envelope,
        _card(statement, envelope),
    )
    final = with_publication(statement, published)
    path, _ = write_manifest(root, final, sign_statement(final, ctx.key))
    return path


def _prepublication(ctx: Context, target: Target, directory: Path) -> bytes:
    """The run's statement signed without its publication, made once and kept for retries."""
    kept = directory / rundirs.PREPUBLICATION
    fp = target.lock.fingerprint
    if kept.is_file() and not kept.is_symlink():
        data = read_small(kept)
        try:
            statement = _statement_of(data, ctx.key.public_key(), directory)
        except ManifestError:
            statement = None  # not ours, or damaged: sign it again
        if (
            statement is not None
            and statement.fingerprint == fp
            and statement.name == target.loaded.name
        ):
            return data
    root = ctx.workspace.root
    lock_bytes = read_small(target.lock_path)
    lock_rel = target.lock_path.resolve().relative_to(root.resolve()).as_posix()
    run = read_run_dir(directory)
    statement = build_statement(
        ctx.workspace,
        target.loaded,
        target.lock,
        lock_rel,
        lock_bytes,
        run,
        executor=ctx.executor(target.loaded.recipe.ftctl.executor).name,
    )
    data = sign_statement(statement, ctx.key)
    write_atomic(kept, data + b"\n")
    return data


def _statement_of(envelope: bytes, public: Ed25519PublicKey, where: Path) -> Statement:
    from ftctl.provenance.keys import keyid

    return verify_bytes(envelope.strip(), {keyid(public): public}, where).statement


def _card(statement: Statement, envelope: bytes) -> str | None:
    from ftctl.registries.card import model_card

    return model_card(statement, "sha256:" + hashlib.sha256(envelope.strip()).hexdigest())


@dataclass(frozen=True)
class Source:
    """An artifact to restore from: where to fetch it, and the verified record vouching for it
    (None for a registry's artifact: its own provenance is verified once fetched)."""

    found: Found
    registry: Registry
    manifest: VerifiedManifest | None = None
    where: str = ""  # the record, as shown (a manifest path; else the artifact's address)


def find_source(
    ctx: Context, fingerprint: str, registry: Registry | None, records: list[VerifiedManifest]
) -> Source | None:
    """An artifact with ``fingerprint``: in the target registry, else where a verified manifest says it was published."""
    found = registry.find(fingerprint) if registry is not None else None
    if found is not None and registry is not None:
        return Source(found, registry, None, found.uri)
    for manifest in records:
        uri = published_uri(manifest.statement)
        if manifest.statement.fingerprint != fingerprint or uri is None:
            continue
        try:
            other = artifact_registry(uri, ctx.workspace.root)
        except FtctlError:
            continue
        commit = uri.split("@", 1)[1] if uri.startswith("hf://") and "@" in uri else None
        shown = manifest.path.relative_to(ctx.workspace.root).as_posix()
        return Source(Found(uri, manifest.statement.name, commit), other, manifest, shown)
    return None


def fetch_verified(ctx: Context, source: Source, artifact: Path) -> tuple[VerifiedManifest, bytes]:
    """Fetch ``source`` into ``artifact`` (unless an earlier attempt left it whole) and check it
    against its record; (the record, the artifact's own provenance envelope)."""
    copy = artifact.parent / RESTORED_PROVENANCE
    if not _holds(artifact, copy, source, ctx.trusted):
        shutil.rmtree(artifact, ignore_errors=True)
        copy.unlink(missing_ok=True)
        artifact.parent.mkdir(parents=True, exist_ok=True)
        digests = source.registry.fetch_digests(source.found, artifact)
        _set_aside_registry_files(artifact, copy)
    else:
        digests = None  # checked whole by _holds just now
    provenance = read_small(copy).strip()
    record = source.manifest or _trusted_provenance(ctx, provenance, source.found.uri)
    if digests is not None:
        problems = _subject_problems(record, digests)
        if problems:
            shutil.rmtree(artifact, ignore_errors=True)
            raise FtctlError(
                f"{source.found.uri} differs from its record {source.where}: {'; '.join(problems)}",
                hint="train it instead: ftctl apply --replace NAME",
            )
    return record, provenance


def _subject_problems(record: VerifiedManifest, digests: dict[str, str]) -> list[str]:
    """What verify_artifacts would say, from digests computed while fetching (no second read)."""
    expected = {s.name: s.digest.get("sha256") for s in record.statement.subject}
    actual = {k: v for k, v in digests.items() if k != "README.md" and not k.startswith(".ftctl/")}
    problems = [
        f"{name} is missing" if name not in actual else f"{name} differs from the recorded digest"
        for name in sorted(expected)
        if actual.get(name) != expected[name]
    ]
    problems += [f"{name} is not in the manifest" for name in sorted(set(actual) - set(expected))]
    return problems


def restore(ctx: Context, target: Target, source: Source) -> Done:
    """restore/republish: fetch the artifact, check it against its record, publish, record."""
    root = ctx.workspace.root
    fp = target.lock.fingerprint
    artifact = rundirs.run_dir(root, fp) / "restored"
    record, provenance = fetch_verified(ctx, source, artifact)
    if record.statement.fingerprint != fp:
        raise FtctlError(
            f"{source.found.uri} records fingerprint {record.statement.fingerprint[7:19]}, "
            f"not {fp[7:19]}",
            hint=f"train it instead: ftctl apply --replace {target.loaded.name}",
        )
    record_bytes = read_small(record.path).strip() if source.manifest else provenance
    statement = restored_statement(
        ctx.workspace,
        target.loaded,
        target.lock,
        target.lock_path,
        record.statement,
        hashlib.sha256(record_bytes).hexdigest(),
        source.where,
    )
    # The registry's copy names the recipe it is published for: this record before publication.
    prepublication = sign_statement(statement, ctx.key)
    published = target.registry.publish(
        target.loaded.name, fp, artifact, prepublication, _card(statement, prepublication)
    )
    final = with_publication(statement, published)
    path, _ = write_manifest(root, final, sign_statement(final, ctx.key))
    return Done(path, artifact)


RESTORED_PROVENANCE = "restored.intoto.json"  # the fetched artifact's provenance, set aside


def _trusted_provenance(ctx: Context, envelope: bytes, uri: str) -> VerifiedManifest:
    try:
        return verify_bytes(envelope, ctx.trusted, Path(uri))
    except ManifestError as exc:
        raise FtctlError(
            f"{uri}: its provenance is not trusted here ({exc.reason})",
            hint="add the key that signed it to keys/, or train the recipe: ftctl apply --replace NAME",
        ) from None


def _holds(
    artifact: Path, copy: Path, source: Source, trusted: dict[str, Ed25519PublicKey]
) -> bool:
    """Whether an earlier, interrupted restore left this artifact whole."""
    if not artifact.is_dir() or not copy.is_file():
        return False
    try:
        record = source.manifest or verify_bytes(read_small(copy).strip(), trusted, copy)
        verify_artifacts(record, artifact)
    except ManifestError:
        return False
    return True


def _set_aside_registry_files(artifact: Path, copy: Path) -> None:
    """Keep the fetched provenance beside the artifact (it is republished as is); drop the old card."""
    embedded = artifact / PROVENANCE_FILE
    if not embedded.is_file():
        raise FtctlError(f"{artifact}: the fetched artifact has no {PROVENANCE_FILE}")
    envelope = read_small(embedded)
    try:
        dsse.parse(envelope.strip())
    except dsse.EnvelopeError as exc:
        raise FtctlError(f"{artifact / PROVENANCE_FILE}: not a manifest ({exc.reason})") from None
    write_atomic(copy, envelope)
    shutil.rmtree(artifact / PROVENANCE_FILE.split("/", 1)[0])
    (artifact / "README.md").unlink(missing_ok=True)


def _log_tail(directory: Path) -> str:
    """The worker's last error line (its own `ftctl: error:` line when it printed one)."""
    try:
        lines = (
            (directory / WORKER_LOG).read_bytes()[-65536:].decode("utf-8", "replace").splitlines()
        )
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("ftctl: error:")]
    if errors:
        return errors[-1].removeprefix("ftctl: error: ")
    tail = [line.strip() for line in lines[-LOG_TAIL:] if line.strip()]
    return tail[-1] if tail else "the worker printed nothing"


def _wall_time(directory: Path) -> float:
    result = read_run_dir(directory).result
    wall = result.get("wall_time_s")
    return float(wall) if isinstance(wall, (int, float)) else 0.0
