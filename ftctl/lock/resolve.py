"""``ftctl lock``: resolve every moving input of every recipe and pin it in ``lockfiles/``.

Resolution is Cargo-like: a reference that has not changed keeps the revision
its lock recorded (no network), unless the recipe is named in ``--update``.
The result is data (:class:`LockReport`); writing, checking and rendering
are separate steps, so ``lock --check`` is the same computation with a
different destination, and needs no network.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftctl import __version__
from ftctl._dvc import DvcIndex, find_repo, workspace_md5
from ftctl.cache.parse import ParseCache
from ftctl.cache.stat import StatCache
from ftctl.canonical import sha256_of
from ftctl.errors import ConfigError, FtctlError, Location, ValidationFailed, excerpt
from ftctl.files import confined, file_kind, write_atomic
from ftctl.hashing import TreeDigest, tree_digest
from ftctl.lock.fingerprint import fingerprint, training_config
from ftctl.lock.lockfile import (
    DvcPin,
    HfPin,
    LocalPin,
    Lockfile,
    PinsEntry,
    RecipeEntry,
    RecipePin,
    load_lock,
    render,
)
from ftctl.lock.paths import lock_path, locks_dir
from ftctl.lock.pins import read_pins
from ftctl.recipe.check import check_paths
from ftctl.recipe.dag import find_cycle, topological_order
from ftctl.recipe.load import LoadedRecipe
from ftctl.recipe.refs import COMMIT_RE, check_hf_id, parse_model_ref, split_revision, upstream_of
from ftctl.workspace import DATA_LISTS, Workspace, resolve_path
from ftctl.yamlio import display_path, read_bytes


class NeedsNetwork(FtctlError):
    """Resolving this input needs the Hub, and this run may not use it (lock --check)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, hint="run `ftctl lock` where the Hub is reachable")
        self.reason = reason


@dataclass
class _Reads:
    """What computing one recipe's lock read: every path (absent ones too) and the dvc.lock files."""

    recipe: str
    paths: list[Path]
    dvc_locks: bool = False


@dataclass
class LockOutcome:
    """One recipe's lock: what it is on disk and what it should be."""

    name: str
    path: Path
    shown: str
    new: Lockfile | None  # None when it could not be computed without the network
    text: str | None
    old: Lockfile | None
    old_text: str | None
    old_problem: str | None = None  # why the lock on disk could not be read
    stale_reason: str | None = None  # why ``new`` could not be computed
    # Every path the computation read or found absent (absent paths matter too: a new
    # ``<path>.dvc`` changes how a path resolves), and whether it consulted the dvc.lock
    # files; ``ftctl.cache.planmemo`` reuses a fresh lock while none of them changed.
    deps: list[Path] = field(default_factory=list)
    used_dvc_locks: bool = False
    config: dict[str, Any] | None = None  # the training config the lock's recipe.digest is of

    @property
    def status(self) -> str:
        if self.old_text is None:
            return "missing"
        if self.text is not None and self.text == self.old_text:
            return "fresh"
        return "stale"


@dataclass
class LockReport:
    outcomes: list[LockOutcome] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)  # lock files of deleted recipes
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[LockOutcome]:
        return [o for o in self.outcomes if o.status != "fresh"]


def load_workspace_recipes(
    workspace: Workspace, cache: ParseCache | None = None
) -> dict[str, LoadedRecipe]:
    """Every recipe of the workspace, validated; any problem stops the lock."""
    report = check_paths([], workspace.root, cache)
    if report.problems:
        raise ValidationFailed(report.problems)
    return {item.name: item for item in report.recipes}


def compute_locks(
    workspace: Workspace,
    recipes: dict[str, LoadedRecipe],
    names: Iterable[str] = (),
    *,
    update: Iterable[str] | bool = False,
    network: bool = True,
    cache: StatCache | None = None,
    parse_cache: ParseCache | None = None,
) -> LockReport:
    """What every requested lock should be (default: all recipes), and what is on disk."""
    wanted = list(names) or sorted(recipes)
    for name in wanted:
        if name not in recipes:
            from ftctl.recipe.messages import did_you_mean

            raise FtctlError(
                f"no recipe named '{name}'",
                hint=did_you_mean(name, sorted(recipes)) or "see `ftctl validate` for the recipes",
            )
    edges = {name: upstream_of(item.recipe.base_model) for name, item in recipes.items()}
    cycle = find_cycle(edges)
    if cycle:
        raise FtctlError(f"recipes build on each other in a cycle: {' -> '.join(cycle)}")
    needed = _with_upstreams(wanted, edges)
    to_update = set(recipes) if update is True else set(update or ())
    resolver = _Resolver(workspace, cache or StatCache.disabled(), network, parse_cache)
    report = LockReport()
    computed: dict[str, LockOutcome] = {}
    for name in topological_order({n: edges[n] for n in needed}):
        outcome = resolver.lock_one(recipes[name], computed, name in to_update)
        computed[name] = outcome
        report.outcomes.append(outcome)
    report.warnings.extend(resolver.warnings)
    if not list(names):
        report.orphans = sorted(
            p for p in locks_dir(workspace.root).glob("*.lock") if p.stem not in recipes
        )
    return report


def write_locks(report: LockReport) -> tuple[list[LockOutcome], list[Path]]:
    """Write every changed lock atomically and remove the locks of deleted recipes."""
    written = []
    for outcome in report.changed:
        if outcome.text is None:
            raise FtctlError(f"{outcome.name}: {outcome.stale_reason}")
        try:
            write_atomic(outcome.path, outcome.text)
        except OSError as exc:  # lockfiles/ is a file, read-only, full
            raise FtctlError(
                f"{outcome.shown}: cannot write the lock ({exc.strerror})",
                hint="lockfiles/ must be a directory ftctl can write to",
            ) from None
        written.append(outcome)
    for orphan in report.orphans:
        try:
            orphan.unlink()
        except OSError as exc:
            raise FtctlError(
                f"{display_path(orphan)}: cannot remove the lock of a deleted recipe ({exc.strerror})"
            ) from None
    return written, report.orphans


def _with_upstreams(names: list[str], edges: dict[str, str | None]) -> list[str]:
    out: list[str] = []
    for name in names:
        node: str | None = name
        while node is not None and node not in out:
            out.append(node)
            node = edges.get(node)
    return out


class _Resolver:
    def __init__(
        self, workspace: Workspace, cache: StatCache, network: bool, parse_cache: ParseCache | None
    ) -> None:
        self.parse_cache = parse_cache
        self.workspace = workspace
        self.root = workspace.root
        self.cache = cache
        self.network = network
        self.unversioned: dict[str, list[str]] = {}  # path -> recipes using it
        self.dvc_repo = find_repo(self.root)
        self.dvc_index = DvcIndex(self.dvc_repo, parse_cache) if self.dvc_repo is not None else None
        self._trees: dict[
            Path, TreeDigest
        ] = {}  # one digest per path per run, however many recipes share it
        self.real_root = self.root.resolve()
        self._datasets: dict[str, tuple[HfPin | LocalPin | DvcPin, _Reads]] = {}
        self._pins_inside: dict[str, bool] = {}  # every recipe shares one pins file, mostly

    @property
    def warnings(self) -> list[str]:
        out = []
        for path, users in sorted(self.unversioned.items()):
            shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
            out.append(
                f"{path} is not versioned (not tracked by DVC); pinned by content (used by {shown})"
            )
        return out

    def lock_one(
        self, item: LoadedRecipe, computed: dict[str, LockOutcome], update: bool
    ) -> LockOutcome:
        path = lock_path(self.root, item.name)
        shown = display_path(path)
        old, old_text, old_problem = self._read_old(path, shown)
        keep = old if not update else None
        outcome = LockOutcome(item.name, path, shown, None, None, old, old_text, old_problem)
        reads = _Reads(item.name, [item.path, path])
        try:
            outcome.new, outcome.config = self._build(item, keep, computed, reads)
        except NeedsNetwork as signal:
            outcome.stale_reason = signal.reason
        finally:
            outcome.deps, outcome.used_dvc_locks = reads.paths, reads.dvc_locks
        if outcome.new is not None:
            outcome.text = render(outcome.new)
        return outcome

    def _read_old(self, path: Path, shown: str) -> tuple[Lockfile | None, str | None, str | None]:
        if not path.exists() and not path.is_symlink():
            return None, None, None
        if path.is_symlink() and not confined(path, self.root):
            return None, "", "is a symlink leaving the workspace"
        try:
            text = read_bytes(path, shown).decode("utf-8")
        except (ConfigError, UnicodeDecodeError) as exc:
            reason = exc.problem.message if isinstance(exc, ConfigError) else "not utf-8 text"
            return None, "", reason
        try:
            return load_lock(path, shown, self.parse_cache), text, None
        except FtctlError as exc:
            return None, text, exc.problems[0].render()

    def _build(
        self,
        item: LoadedRecipe,
        keep: Lockfile | None,
        computed: dict[str, LockOutcome],
        reads: _Reads,
    ) -> tuple[Lockfile, dict[str, Any]]:
        """The recipe's lock and the training config its ``recipe.digest`` is of."""
        recipe = item.recipe
        where = f"recipe {item.name}"
        # Before anything is read: no path of a recipe leads outside the allowed roots.
        problems = self.workspace.path_problems(item)
        if problems:
            raise ValidationFailed(problems)
        base = self._base_model(recipe.base_model, keep, computed, where, reads)
        adapter = None
        if recipe.lora_model_dir is not None:
            previous = keep.lora_model_dir if keep is not None else None
            adapter = self._model_dir(
                recipe.lora_model_dir, previous, f"{where}: lora_model_dir", reads
            )
        inputs = []
        for list_name in DATA_LISTS:
            for index, entry in enumerate(getattr(recipe, list_name) or ()):
                inputs.append(
                    self._dataset(entry.path, keep, f"{where}: {list_name}[{index}].path", reads)
                )
        pins_path = recipe.ftctl.pins or self.workspace.config.pins
        pins_file = self._pins_file(item, pins_path)
        reads.paths.append(pins_file)
        pins = read_pins(pins_file, pins_path)
        trainer = {"ftctl": __version__}
        config = training_config(recipe)
        identities = [pin.identity() for pin in inputs]
        if recipe.deepspeed is not None:
            identities.append({"deepspeed": self._config_file(recipe.deepspeed, where, reads)})
        if adapter is not None:
            identities.append({"lora_model_dir": adapter.identity()})
        lock = Lockfile(
            version=1,
            recipe=RecipeEntry(
                path=item.path.resolve().relative_to(self.real_root).as_posix(),
                digest=sha256_of(config),
            ),
            base_model=base,
            lora_model_dir=adapter,
            datasets=inputs,
            pins=PinsEntry(path=pins_path, digest=pins.digest, packages=pins.packages),
            trainer=trainer,
            fingerprint=fingerprint(
                _without_refs(config), base.identity(), identities, pins.digest, trainer
            ),
        )
        return lock, config

    def _pins_file(self, item: LoadedRecipe, pins_path: str) -> Path:
        """The pins file, which must lie in the workspace: it is read, and its packages go into the lock."""
        target = resolve_path(self.root, pins_path)
        if pins_path not in self._pins_inside:
            self._pins_inside[pins_path] = confined(target, self.root)
        if self._pins_inside[pins_path]:
            return target
        key: tuple[str, ...] = ("pins",)
        location = Location(display_path(self.workspace.config_path or self.root / "ftctl.yaml"))
        if item.recipe.ftctl.pins is not None:
            key = ("ftctl", "pins")
            location = item.document.location(key)
        raise ConfigError(
            f"{excerpt(pins_path)} is outside the workspace",
            location=location,
            key_path=key,
            hint="keep the pins file in the repository, e.g. lockfiles/requirements.txt",
        )

    def _base_model(
        self,
        text: str,
        keep: Lockfile | None,
        computed: dict[str, LockOutcome],
        where: str,
        reads: _Reads,
    ) -> HfPin | LocalPin | RecipePin:
        ref = parse_model_ref(text)
        if ref.kind == "recipe":
            upstream = computed[ref.value]
            if upstream.new is None:
                raise NeedsNetwork(f"its base recipe {ref.value} is not locked yet")
            return RecipePin(ref=text, source="recipe", fingerprint=upstream.new.fingerprint)
        previous = keep.base_model if keep is not None else None
        return self._model_dir(text, previous, f"{where}: base_model", reads)

    def _model_dir(self, text: str, previous: Any, where: str, reads: _Reads) -> HfPin | LocalPin:
        """A model or adapter: a local directory by content, or a Hub repository at a commit."""
        ref = parse_model_ref(text)
        if ref.kind == "recipe":
            raise FtctlError(f"{where}: {text}: only base_model can name a recipe")
        if ref.kind == "local":
            target = resolve_path(self.root, ref.value)
            reads.paths.append(target)
            if not target.exists():
                raise FtctlError(f"{where} {text}: no such directory")
            return _local_pin(text, self._tree(target, ref.value))
        return self._hf_pin("model", text, ref.value, ref.revision, previous, where, reads)

    def _tree(self, target: Path, display: str) -> TreeDigest:
        if target not in self._trees:
            mode = target.stat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a FIFO would hash as an empty tree
                raise FtctlError(
                    f"{display} is {file_kind(mode)}, not a file or directory",
                    hint="models and datasets are regular files and directories",
                )
            self._trees[target] = tree_digest(target, display, self.cache)
        return self._trees[target]

    def _dataset(
        self, text: str, keep: Lockfile | None, where: str, reads: _Reads
    ) -> HfPin | LocalPin | DvcPin:
        """A dataset's pin; a workspace path shared by many recipes is resolved and hashed once per run."""
        cached = self._datasets.get(text)
        if cached is None:
            own = _Reads(reads.recipe, [])
            pin = self._resolve_dataset(text, keep, where, own)
            if isinstance(pin, HfPin):  # depends on the old lock: not shared
                reads.paths.extend(own.paths)
                reads.dvc_locks |= own.dvc_locks
                return pin
            cached = self._datasets[text] = (pin, own)
        elif isinstance(cached[0], LocalPin):
            self._note_unversioned(text, reads.recipe)
        pin, own = cached
        reads.paths.extend(own.paths)
        reads.dvc_locks |= own.dvc_locks  # this recipe depends on the dvc.lock files too
        return pin

    def _note_unversioned(self, text: str, recipe: str) -> None:
        users = self.unversioned.setdefault(text, [])
        if recipe not in users:
            users.append(recipe)

    def _resolve_dataset(
        self, text: str, keep: Lockfile | None, where: str, reads: _Reads
    ) -> HfPin | LocalPin | DvcPin:
        written = resolve_path(self.root, text)
        try:
            target = written.resolve()
        except (OSError, RuntimeError):
            raise FtctlError(
                f"{where}: {text} is a symlink loop", hint="point the link at the dataset"
            ) from None
        reads.paths.append(target)
        if written != target:  # a symlink on the way: moving it changes what is read
            reads.paths.append(written)
        if (
            self.dvc_index is not None
            and self.dvc_repo is not None
            and target.is_relative_to(self.dvc_repo)
        ):
            reads.paths.append(target.with_name(target.name + ".dvc"))
            record, used_locks = self.dvc_index.lookup(target)
            reads.dvc_locks |= used_locks
            if record is not None:
                if target.exists():
                    actual = workspace_md5(target, record.legacy, self.cache)
                    if actual != record.md5:
                        raise FtctlError(
                            f"{where}: {text} differs from what DVC recorded in {record.source}",
                            hint="run `dvc add` (or `dvc repro`) to record the change, "
                            "or `dvc checkout` to restore the recorded version",
                        )
                return DvcPin(
                    ref=text, source="dvc", md5=record.md5, size=record.size, nfiles=record.nfiles
                )
        if target.exists():
            self._note_unversioned(text, reads.recipe)
            return _local_pin(text, self._tree(target, text))
        from ftctl.recipe.paths import missing_dataset

        missing = missing_dataset(self.root, text)  # a file path, not a Hub id: say what is near
        if missing is not None:
            raise FtctlError(f"{where}: {text}: {missing.message}", hint=missing.hint)
        repo_id, revision = split_revision(text)
        if check_hf_id(repo_id) is not None:
            raise FtctlError(
                f"{where}: {text} is neither a file in the workspace, nor tracked by DVC, "
                "nor a Hub dataset id",
                hint="check the path (relative to the workspace root)",
            )
        previous = None
        if keep is not None:
            previous = next((d for d in keep.datasets if d.ref == text), None)
        return self._hf_pin("dataset", text, repo_id, revision, previous, where, reads)

    def _hf_pin(
        self,
        kind: str,
        text: str,
        repo_id: str,
        revision: str | None,
        previous: Any,
        where: str,
        reads: _Reads,
    ) -> HfPin:
        if isinstance(previous, HfPin) and previous.ref == text:
            return previous
        if revision is not None and COMMIT_RE.match(revision.lower()):
            return HfPin(ref=text, source="hf", revision=revision.lower())
        if not self.network:
            raise NeedsNetwork(f"{where} {text} is not locked to a commit yet")
        from ftctl._hf import resolve_commit

        commit = resolve_commit(
            "model" if kind == "model" else "dataset", repo_id, revision, recipe=reads.recipe
        )
        return HfPin(ref=text, source="hf", revision=commit)

    def _config_file(self, text: str, where: str, reads: _Reads) -> str:
        target = resolve_path(self.root, text)
        reads.paths.append(target)
        if not target.is_file():
            raise FtctlError(
                f"{where}: deepspeed {text}: no such file",
                hint="the path is relative to the workspace root",
            )
        return tree_digest(target, text, self.cache).digest


def _local_pin(text: str, tree: TreeDigest) -> LocalPin:
    return LocalPin(
        ref=text, source="local", digest=tree.digest, size=tree.size, nfiles=tree.nfiles
    )


def _without_refs(config: dict[str, Any]) -> dict[str, Any]:
    """The training config without the references that the lock's identities replace."""
    out = {
        k: v for k, v in config.items() if k not in ("base_model", "deepspeed", "lora_model_dir")
    }
    for list_name in DATA_LISTS:
        if out.get(list_name):
            out[list_name] = [
                {k: v for k, v in entry.items() if k != "path"} for entry in out[list_name]
            ]
    return out
