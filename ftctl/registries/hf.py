"""``hf://ORG/REPO``: adapters published to a Hugging Face model repository.

A publication is one commit on ``main`` (the adapter files, ftctl's model card as
README.md and ``.ftctl/provenance.intoto.json``) and one tag, ``ftctl-<fp12>``: the
fingerprint index restore looks up. Files of the previous publication that this one
lacks leave the branch (never history: their tag keeps them); files someone else put
in the repository stay. The commit is made with ``parent_commit`` and never blindly
retried: after a 412 or a failed attempt the branch head says whether it landed, and
the commit is prepared afresh on the head as it is then. Every reply is hostile input:
bounded, strictly parsed, paths checked before a byte is written.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ftctl import _hf
from ftctl._hf import HubError, HubNotFound, HubRepo, RetryPolicy
from ftctl.cache.stat import StatCache
from ftctl.errors import FtctlError
from ftctl.hashing import IGNORED_DIRS
from ftctl.provenance.manifest import (
    MAX_MANIFEST_BYTES,
    ManifestError,
    VerifiedManifest,
    verify_artifacts,
    verify_bytes,
)
from ftctl.provenance.statement import Statement
from ftctl.recipe.refs import COMMIT_RE, check_hf_id, check_revision
from ftctl.registries.base import PROVENANCE_FILE, Found, Published
from ftctl.registries.card import model_card
from ftctl.registries.hubfiles import CARD, adapter_files, check_digests, download, file_url
from ftctl.registries.hubreplies import (
    MAX_REPLY,
    Entry,
    Refs,
    ReplyError,
    parse_refs,
    parse_tree,
    statement_of,
)

TAG_PREFIX = "ftctl-"
HUB_FILES = (".gitattributes",)  # the Hub's own: never part of an artifact
MAX_ARTIFACT = 64 * 1024**3  # all files of one publication
MAX_PAGES = 100


def parse_target(target: str, *, revision: bool = False) -> HubRepo:
    """``hf://ORG/REPO`` (with ``@REV`` when ``revision``) as a HubRepo; else a one-line error."""
    text = target.removeprefix("hf://")
    repo_id, _, rev = text.partition("@")
    problem = None if target.startswith("hf://") else "it does not start with hf://"
    reason = check_hf_id(repo_id)
    problem = problem or (f"'{repo_id}' {reason}" if reason else None)
    problem = problem or (None if "/" in repo_id else "it has no ORG/")
    if problem is None and "@" in text:
        problem = None if revision else "a publication goes to the repository, not a revision"
        problem = problem or (check_revision(rev) if rev else "nothing follows '@'")
    if problem is not None:
        shown = "hf://ORG/REPO[@REV]" if revision else "hf://ORG/REPO"
        raise FtctlError(f"{target!r} is not a Hub target: {problem}", hint=f"write {shown}")
    return HubRepo(repo_id, rev or None)


def tag_of(fingerprint: str) -> str:
    return TAG_PREFIX + fingerprint.removeprefix("sha256:")[:12]


class UnusableProvenance(FtctlError):
    """A provenance file on the Hub that is not an ftctl manifest."""


class HubRegistry:
    """A model repository on the Hub (or the mirror HF_ENDPOINT names) as a publish target.

    ``hf://ORG/REPO@REV`` names a revision to read; find and fetch go by the tag and
    the found commit, and publish refuses it: a publication goes to main.
    """

    def __init__(self, target: str, policy: RetryPolicy | None = None) -> None:
        parsed = parse_target(target, revision=True)
        self.target = target
        self.repo = HubRepo(parsed.repo_id)
        self.revision = parsed.revision
        self.policy = policy  # None: the environment's (FTCTL_HF_*), read at each call

    def _policy(self) -> RetryPolicy:
        return self.policy or _hf.default_policy()

    # --- find and fetch ------------------------------------------------------------

    def find(self, fingerprint: str) -> Found | None:
        """The publication tagged for ``fingerprint``; None when the repository or the tag is
        missing, or the tagged commit holds no provenance of that fingerprint (a moved tag)."""
        refs = self.refs()
        commit = refs.tags.get(tag_of(fingerprint)) if refs is not None else None
        statement = self.statement_at(commit) if commit is not None else None
        if commit is None or statement is None or statement.fingerprint != fingerprint:
            return None
        return Found(uri=f"hf://{self.repo.repo_id}@{commit}", name=statement.name, commit=commit)

    def fetch_digests(self, found: Found, dest: Path) -> dict[str, str]:
        """:meth:`fetch`, then every fetched file's sha256 (downloads are hashed after landing)."""
        from ftctl.hashing import file_digest, walk_files

        self.fetch(found, dest)
        disabled = StatCache.disabled()
        return {
            rel: file_digest(path, "sha256", disabled) for rel, path in walk_files(dest, str(dest))
        }

    def fetch(self, found: Found, dest: Path) -> None:
        """The publication's files (its subjects and provenance) at its commit, into ``dest``."""
        commit = found.commit or found.uri.rpartition("@")[2]
        if not COMMIT_RE.match(commit):
            raise FtctlError(f"{found.uri}: not a publication at a 40-hex commit")
        at = HubRepo(self.repo.repo_id, commit)
        provenance = self.provenance(at)
        if provenance is None:
            raise HubError(at, f"no {PROVENANCE_FILE} at that commit: not an ftctl publication")
        listed = self.tree(at)
        names = sorted(s.name for s in self._parse(at, provenance).subject)
        missing = [n for n in names if n not in listed]
        if missing:
            raise HubError(at, f"{', '.join(missing)} of the manifest missing at that commit")
        download(
            at, self._bounded(at, [listed[n] for n in names]), provenance, dest, self._policy()
        )

    # --- publish -------------------------------------------------------------------

    def publish(
        self, name: str, fingerprint: str, files: Path, provenance: bytes, card: str | None
    ) -> Published:
        """One commit with every file, then the tag; a fingerprint already tagged is returned."""
        if self.revision is not None:
            parse_target(self.target)  # raises: a publication goes to main
        try:
            statement = statement_of(provenance)
        except ReplyError as exc:
            raise FtctlError(f"{self.target}: the provenance to publish is unusable: {exc}",
                             hint="publish the signed manifest of the run") from None  # fmt: skip
        if statement.fingerprint != fingerprint or statement.name != name:
            raise FtctlError(
                f"{self.target}: the provenance to publish is of recipe {statement.name}, "
                f"fingerprint {statement.fingerprint[7:19]}, not {name} {fingerprint[7:19]}",
                hint="publish the manifest of the run being published",
            )
        adds = adapter_files(files, statement)
        if CARD not in dict(adds):
            text = card if card is not None else model_card(statement, _digest(provenance))
            adds.append((CARD, text.encode("utf-8")))
        adds.append((PROVENANCE_FILE, provenance))
        tag, refs = tag_of(fingerprint), self.refs()
        if refs is not None and tag in refs.tags:
            return self._earlier(tag, refs.tags[tag], fingerprint)
        _hf.create_repo(self.repo, self._policy())
        commit = self._commit(statement, adds, files)
        _hf.create_tag(self.repo, tag, commit, self._policy())
        refs = self.refs()
        pointed = refs.tags.get(tag) if refs is not None else None
        if pointed is None:
            raise HubError(self.repo, f"the tag {tag} is missing after it was made",
                           hint=_hf.PUBLISH_HINT)  # fmt: skip
        if pointed == commit:
            return Published(f"hf://{self.repo.repo_id}@{commit}", commit)
        return self._earlier(tag, pointed, fingerprint)

    def _commit(
        self, statement: Statement, adds: list[tuple[str, Path | bytes]], files: Path
    ) -> str:
        """Commit on top of main's head, re-read after a 412 or a failure; the commit.

        A head that already is this publication (an attempt that landed though its answer
        was lost, or one whose tag failed) is used as it is: nothing is committed twice.
        """
        policy, known, repo = self._policy(), dict[str, str](), self.repo
        for attempt in range(1, policy.attempts + 1):
            refs = self.refs()
            head = refs.branches.get("main") if refs is not None else None
            previous = self._previous(head)
            if previous is not None and _same(previous, statement):
                return str(head)
            stale = self._stale(head, previous, {path for path, _ in adds})
            try:
                prepared = _hf.prepare_commit(
                    repo, adds, stale, known=known, attempt=attempt, policy=policy
                )
                known = _hf.digests(prepared)
                check_digests(known, statement, files)
                message = f"ftctl: {statement.name} {statement.fingerprint[7:19]}"
                return _hf.send_commit(
                    repo, prepared, message=message, parent=head, attempt=attempt, policy=policy
                )
            except HubError as exc:
                if not (exc.transient or exc.status == 412) or attempt == policy.attempts:
                    raise
                time.sleep(0 if exc.status == 412 else policy.delay(attempt))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _previous(self, head: str | None) -> Statement | None:
        """The statement of the publication at ``head``, if it is one ftctl can read."""
        try:
            return self.statement_at(head) if head is not None else None
        except UnusableProvenance:
            return None  # someone else's file there: nothing of ours to tidy

    def _stale(self, head: str | None, previous: Statement | None, ours: set[str]) -> list[str]:
        """The previous publication's files this one lacks (and the branch still has)."""
        gone = {s.name for s in previous.subject} - ours if previous is not None else set()
        if not gone or head is None:
            return []
        return sorted(gone & set(self.tree(HubRepo(self.repo.repo_id, head))))

    def _earlier(self, tag: str, commit: str, fingerprint: str) -> Published:
        """The tag exists: the earlier publication of ``fingerprint``, or a one-line error."""
        statement = self.statement_at(commit)
        if statement is not None and statement.fingerprint == fingerprint:
            return Published(f"hf://{self.repo.repo_id}@{commit}", commit)
        held = f"fingerprint {statement.fingerprint[7:19]}" if statement else "no ftctl provenance"
        raise FtctlError(
            f"{self.repo}: tag {tag} points at commit {commit[:12]}, which holds {held}",
            hint=f"move or delete the tag {tag} on the Hub, then publish again",
        )

    # --- reading the repository ----------------------------------------------------

    def refs(self) -> Refs | None:
        """Branches and tags; None when the repository does not exist."""
        url = f"{_hf.endpoint()}/api/models/{self.repo.repo_id}/refs"
        try:
            data = self._get(self.repo, url, MAX_REPLY)
        except HubNotFound:
            return None
        try:
            return parse_refs(data)
        except ReplyError as exc:
            raise HubError(self.repo, f"the Hub's answer is malformed: {exc}") from None

    def resolve(self, revision: str | None) -> str:
        """The commit a branch, tag or commit names (default: main)."""
        revision = revision or "main"
        if COMMIT_RE.match(revision):
            return revision
        refs = self.refs()
        if refs is None:
            raise HubNotFound(self.repo, "repository not found",
                              hint="check the name, and HF_TOKEN for a private repository")  # fmt: skip
        commit = refs.branches.get(revision) or refs.tags.get(revision)
        if commit is None:
            raise HubNotFound(HubRepo(self.repo.repo_id, revision), "no such branch or tag",
                              hint="name an existing branch, tag or commit")  # fmt: skip
        return commit

    def tree(self, at: HubRepo) -> dict[str, Entry]:
        """Every file at ``at``'s commit (a recursive listing, page by page)."""
        revision = quote(at.revision or "main", safe="")
        base = f"{_hf.endpoint()}/api/models/{at.repo_id}/tree/{revision}"
        url: str | None = f"{base}?recursive=true&expand=false"
        seen: dict[str, Entry] = {}
        for _ in range(MAX_PAGES):
            if url is None:
                return seen
            if not url.startswith(f"{_hf.endpoint()}/"):  # the token goes with every request
                raise HubError(at, "the Hub's file listing continues on another host")
            page = io.BytesIO()
            url = _hf.fetch(at, url, page, limit=MAX_REPLY, policy=self._policy())
            try:
                parse_tree(page.getvalue(), seen)
            except ReplyError as exc:
                raise HubError(at, f"the Hub's answer is malformed: {exc}") from None
        raise HubError(at, f"the Hub's file listing runs past {MAX_PAGES} pages")

    def provenance(self, at: HubRepo) -> bytes | None:
        """The provenance file at ``at``'s commit, at most a manifest's size; None if absent."""
        url = file_url(at, PROVENANCE_FILE)
        try:
            return self._get(at, url, MAX_MANIFEST_BYTES)
        except HubNotFound:
            return None

    def statement_at(self, commit: str) -> Statement | None:
        at = HubRepo(self.repo.repo_id, commit)
        data = self.provenance(at)
        return self._parse(at, data) if data is not None else None

    def _get(self, at: HubRepo, url: str, limit: int) -> bytes:
        buffer = io.BytesIO()
        _hf.fetch(at, url, buffer, limit=limit, policy=self._policy())
        return buffer.getvalue()

    def _parse(self, at: HubRepo, data: bytes) -> Statement:
        try:
            return statement_of(data)
        except ReplyError as exc:
            raise UnusableProvenance(
                f"{at}: {PROVENANCE_FILE} is unusable: {exc}",
                hint="only ftctl writes that file; a tag on that commit is not ftctl's",
            ) from None

    def _bounded(self, at: HubRepo, entries: list[Entry]) -> list[Entry]:
        if sum(e.size for e in entries) > MAX_ARTIFACT:
            raise HubError(at, f"the publication is larger than {MAX_ARTIFACT >> 30} GiB")
        return entries


def _same(there: Statement, ours: Statement) -> bool:
    """The same publication: the same fingerprint and the same files."""
    return there.fingerprint == ours.fingerprint and there.subject == ours.subject


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass(frozen=True)
class PublishedVerification:
    """A publication that verified: ``hf://ORG/REPO@COMMIT``, its manifest, how many files."""

    label: str
    manifest: VerifiedManifest
    files: int


def verify_published(
    target: str, trusted: dict[str, Ed25519PublicKey], *, threshold: int = 1,
    policy: RetryPolicy | None = None,
) -> PublishedVerification:  # fmt: skip
    """Verify ``hf://ORG/REPO[@REV]`` (default main) as ``verify MANIFEST --artifacts DIR`` does.

    The embedded envelope is checked with the trusted keys first (nothing more is
    downloaded for an untrusted one), then every file at the commit against the subjects:
    a changed, missing or extra file fails (the Hub's .gitattributes and ftctl's card
    aside). A failure is a ManifestError naming ``hf://ORG/REPO@COMMIT``.
    """
    registry = HubRegistry(target, policy)
    at = HubRepo(registry.repo.repo_id, registry.resolve(registry.revision))
    label = str(at)
    data = registry.provenance(at)
    if data is None:
        raise ManifestError(label, f"no {PROVENANCE_FILE} at that commit: not an ftctl publication")
    try:
        verified = verify_bytes(data, trusted, Path(PROVENANCE_FILE), threshold)
        subjects = {s.name for s in verified.statement.subject}
        left_out = {*HUB_FILES, CARD} - subjects
        entries = [
            e
            for e in registry.tree(at).values()
            if e.path not in left_out
            and e.path.split("/")[0] != ".ftctl"
            and not IGNORED_DIRS.intersection(e.path.split("/")[:-1])  # walk_files skips them
        ]
        with tempfile.TemporaryDirectory(prefix="ftctl-verify-") as tmp:
            download(at, registry._bounded(at, entries), data, Path(tmp) / "a", registry._policy())
            verify_artifacts(verified, Path(tmp) / "a")
    except ManifestError as exc:
        raise ManifestError(label, exc.reason) from None
    return PublishedVerification(label, verified, len(entries))
