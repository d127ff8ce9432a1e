"""The Hugging Face Hub, as ftctl uses it: resolve references, read and write its own repositories.

huggingface_hub reads HF_ENDPOINT and HF_TOKEN itself and builds the headers; its
``http_backoff`` retries 408/429/5xx, timeouts and dropped connections (preupload, LFS
uploads). Calls that make one request without it (``create_repo``, ``create_tag``) are
retried here, reads are streamed with a size bound and retried (:func:`fetch`), and the
commit is tried once (:func:`send_commit`). The shared client has no timeout, so
:func:`_session` installs one. Every failure becomes one line that names the recipe or
repository, the reference and the cause; never a token.
"""

from __future__ import annotations

import io
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeVar
from urllib.parse import quote

from ftctl.errors import EnvVarError, FtctlError

if TYPE_CHECKING:
    import httpx2

RETRY_STATUS = (408, 429, 500, 502, 503, 504)
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
NETWORK_HINT = "check the network (and HF_ENDPOINT); a lock that is already complete needs none"
PUBLISH_HINT = "check the network (and HF_ENDPOINT), then run it again"
_NOT_FOUND = {  # (reason, hint) of a missing repository: 401 when unauthenticated
    True: ("not found or private (401 Unauthorized)", "check the name; for a private repository set HF_TOKEN"),
    False: ("repository not found (404)", "check the name (and HF_ENDPOINT if you use a mirror)"),
}  # fmt: skip
OFFLINE_HINTS = {False: "unset HF_HUB_OFFLINE, or pin the reference to a 40-hex commit",
                 True: "unset HF_HUB_OFFLINE where the Hub is reachable"}  # fmt: skip
Kind = Literal["model", "dataset"]
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5  # seconds; doubles each attempt
    max_delay: float = 8.0
    timeout: float = 20.0  # per request (per socket operation for a transfer)

    def delay(self, attempt: int) -> float:  # the wait after attempt ``attempt``
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def default_policy() -> RetryPolicy:
    """The policy, with FTCTL_HF_ATTEMPTS, FTCTL_HF_BACKOFF and FTCTL_HF_TIMEOUT applied."""
    defaults = RetryPolicy()
    attempts = _env_number(
        "FTCTL_HF_ATTEMPTS", defaults.attempts, int, lambda n: n >= 1, "a whole number, 1 or more"
    )
    base = _env_number(
        "FTCTL_HF_BACKOFF", defaults.base_delay, float, lambda n: n >= 0, "a number of seconds"
    )
    timeout = _env_number(
        "FTCTL_HF_TIMEOUT", defaults.timeout, float, lambda n: n > 0, "a number of seconds above 0"
    )
    return RetryPolicy(attempts=int(attempts), base_delay=base, timeout=timeout)


def _env_number(
    name: str, default: float, parse: Callable[[str], float], valid: Callable[[float], bool],
    expected: str,
) -> float:  # fmt: skip
    text = os.environ.get(name, "")
    if not text.strip():
        return default
    try:
        value = parse(text.strip())
    except ValueError:
        raise EnvVarError(name, text, expected, f"{default:g}") from None
    if not math.isfinite(value) or not valid(value):
        raise EnvVarError(name, text, expected, f"{default:g}")
    return value


@dataclass(frozen=True)
class HubRef:
    """A Hub repository (and revision) one recipe refers to."""

    recipe: str
    kind: Kind
    repo_id: str
    revision: str | None

    def __str__(self) -> str:
        ref = f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id
        return f"recipe {self.recipe}: {self.kind} {ref}"

    def api_url(self, endpoint: str) -> str:  # what ``HfApi.model_info`` / ``dataset_info`` ask
        url = f"{endpoint}/api/{self.kind}s/{self.repo_id}"
        return url if self.revision is None else f"{url}/revision/{quote(self.revision, safe='')}"


@dataclass(frozen=True)
class HubRepo:
    """A model repository ftctl publishes to or reads back: ``hf://ORG/REPO[@REV]``."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"hf://{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


class HubError(FtctlError):
    """The Hub failed or refused: ``ref``, ``reason``, the HTTP ``status`` if any, and whether
    another attempt could succeed (``transient``)."""

    def __init__(
        self, ref: HubRef | HubRepo, reason: str, *, hint: str | None = None,
        status: int | None = None, transient: bool = False,
    ) -> None:  # fmt: skip
        self.ref, self.reason, self.status, self.transient = ref, reason, status, transient
        super().__init__(f"{ref}: {reason}", hint=hint)


class HubNotFound(HubError):
    """The repository, revision or file does not exist (or is private and no token can see it)."""


def resolve_commit(
    kind: Kind,
    repo_id: str,
    revision: str | None,
    *,
    recipe: str,
    policy: RetryPolicy | None = None,
) -> str:
    """The 40-hex commit ``revision`` (default: main) of a Hub model or dataset points at.

    ``HfApi.model_info`` makes one request, unretried and unbounded: ask its endpoint
    through :func:`fetch` instead and keep only the commit of the answer.
    """
    from huggingface_hub import constants

    ref = HubRef(recipe, kind, repo_id, revision)
    answer = io.BytesIO()
    fetch(ref, ref.api_url(constants.ENDPOINT), answer, limit=MAX_INFO, policy=policy)
    return _commit_of(ref, answer.getvalue())


MAX_RETRY_AFTER = 20  # seconds: a server's Retry-After beyond this is taken as this
MAX_INFO = 64 * 1024 * 1024  # a model's info lists its files: a few MiB for the largest
_installed: list[float] = []  # the timeout of the client factory installed in the library


def _session(policy: RetryPolicy) -> None:
    """Before any request: the token checked, the shared client one with ``policy.timeout``."""
    from huggingface_hub import set_client_factory

    check_token()
    if _installed != [policy.timeout]:
        set_client_factory(_client_factory(policy.timeout))
        _installed[:] = [policy.timeout]


def check_token() -> None:
    """Refuse, unshown, a token no HTTP header can carry: the client fails on it deep in a request."""
    name = next((n for n in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN") if os.environ.get(n)), "")
    token = os.environ.get(name, "").replace("\r", "").replace("\n", "").strip()  # as the library
    if name and not (token.isascii() and token.isprintable()):
        raise FtctlError(f"{name} holds characters an HTTP header cannot carry", hint="check it")


def _client_factory(timeout: float) -> Callable[[], httpx2.Client]:
    import httpx2

    def bounded(request: httpx2.Request) -> None:
        # Some library calls pass timeout=None explicitly; none of ours may wait forever.
        limits = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {k: timeout if v is None else v for k, v in limits.items()}

    def make() -> httpx2.Client:
        # Private, but the library's own client: its request hook enforces HF_HUB_OFFLINE.
        from huggingface_hub.utils._http import default_client_factory

        client = default_client_factory()
        client.timeout = httpx2.Timeout(timeout)
        hooks = client.event_hooks
        client.event_hooks = {"request": [*hooks["request"], bounded],
                              "response": [*hooks["response"], _clamp_retry_after]}  # fmt: skip
        return client

    return make


def _clamp_retry_after(response: Any) -> None:
    """http_backoff waits whatever Retry-After says; a hostile or broken server must not hang ftctl."""
    value = response.headers.get("Retry-After")
    if value is not None and value.strip().isdigit() and int(value.strip()) > MAX_RETRY_AFTER:
        response.headers["Retry-After"] = str(MAX_RETRY_AFTER)


def _retried() -> tuple[type[Exception], ...]:
    """The failures worth another attempt: those huggingface_hub retries by default."""
    import httpx2

    return (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


@contextmanager
def _library_quiet() -> Iterator[None]:
    """http_backoff logs every retry as a warning and uploads draw progress bars; ftctl reports
    the outcome in one line, and its own progress."""
    import logging

    from huggingface_hub.utils import disable_progress_bars  # type: ignore[attr-defined]
    from huggingface_hub.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)
    try:
        with disable_progress_bars():
            yield
    finally:
        hf_logging.set_verbosity(level)


def _commit_of(ref: HubRef, answer: bytes) -> str:
    import json

    try:
        body = json.loads(answer)
    except (ValueError, RecursionError):  # not JSON, or nested past the decoder's recursion limit
        body = None
    sha = body.get("sha") if isinstance(body, dict) else None
    if not isinstance(sha, str) or not COMMIT_RE.match(sha.lower()):
        raise HubError(ref, "the Hub returned no commit for it")
    return sha.lower()


def explain(ref: HubRef | HubRepo, exc: BaseException, attempts: int) -> HubError:
    """The one-line error for a failure of asking the Hub about ``ref``."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    exc, writing = _root(exc), isinstance(ref, HubRepo)
    network = PUBLISH_HINT if writing else NETWORK_HINT
    if isinstance(exc, HfHubHTTPError):
        return _explain_status(ref, exc, attempts)
    if isinstance(exc, OfflineModeIsEnabled):
        hint = OFFLINE_HINTS[writing]
        return HubError(ref, "HF_HUB_OFFLINE is set, so the Hub cannot be asked", hint=hint)
    if isinstance(exc, _retried()):
        reason = f"no answer from the Hub ({type(exc).__name__}) after {attempts} attempts"
        return HubError(ref, reason, hint=network, transient=True)
    if isinstance(exc, httpx2.HTTPError | httpx2.InvalidURL):
        return HubError(ref, f"no answer from the Hub ({type(exc).__name__})", hint=network)
    # The library read a reply that is not what the Hub sends (not JSON, missing keys).
    return HubError(ref, f"the Hub's answer is malformed ({type(exc).__name__})", hint=network)


def _root(exc: BaseException) -> BaseException:
    """The HTTP failure a library error wraps (an LFS upload raises RuntimeError from it)."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    seen = exc
    while seen.__cause__ is not None and not isinstance(seen, HfHubHTTPError | httpx2.HTTPError):
        seen = seen.__cause__
    return seen if isinstance(seen, HfHubHTTPError | httpx2.HTTPError) else exc


def _explain_status(ref: HubRef | HubRepo, exc: Exception, attempts: int) -> HubError:
    from huggingface_hub import errors

    status = getattr(getattr(exc, "response", None), "status_code", None)
    writing = isinstance(ref, HubRepo)
    if isinstance(exc, errors.RevisionNotFoundError):
        revision = ref.revision or "main"
        return HubNotFound(ref, f"revision '{revision}' does not exist",
                           hint="name an existing branch, tag or commit", status=status)  # fmt: skip
    if isinstance(exc, errors.EntryNotFoundError):
        return HubNotFound(ref, "no such file at that revision (404)", status=status)
    if isinstance(exc, errors.GatedRepoError):
        return HubError(ref, "access is gated (401/403)",
                        hint="accept the model's terms on the Hub and set HF_TOKEN", status=status)  # fmt: skip
    if isinstance(exc, errors.RepositoryNotFoundError):
        reason, hint = _NOT_FOUND[status == 401]
        return HubNotFound(ref, reason, hint=hint, status=status)
    if status in (401, 403):
        can = "write to it (hf auth login, or a write token)" if writing else "read it"
        return HubError(ref, f"not authorized ({status})",
                        hint=f"set HF_TOKEN to a token that can {can}", status=status)  # fmt: skip
    if status in RETRY_STATUS:
        return HubError(ref, f"the Hub answered {status} after {attempts} attempts",
                        hint=PUBLISH_HINT if writing else NETWORK_HINT, status=status, transient=True)  # fmt: skip
    if status == 412:
        return HubError(ref, "the branch kept moving while committing (412)", status=status,
                        hint="someone else is committing to the repository; publish again")  # fmt: skip
    return HubError(ref, f"the Hub answered {status}", status=status)


def _failures() -> tuple[type[BaseException], ...]:
    """HTTP failures, and what the library raises on replies it cannot use (hostile or broken)."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    return (HfHubHTTPError, OfflineModeIsEnabled, httpx2.HTTPError, httpx2.InvalidURL,
            ValueError, KeyError, TypeError, AttributeError, RuntimeError)  # fmt: skip


def _attempts(ref: HubRef | HubRepo, policy: RetryPolicy, call: Callable[[], T]) -> T:
    """``call`` (one request the library does not retry), tried while it fails transiently."""
    _session(policy)
    for attempt in range(1, policy.attempts + 1):
        try:
            with _library_quiet():
                return call()
        except _failures() as exc:
            error = explain(ref, exc, attempt)
            if not error.transient or attempt == policy.attempts:
                raise error from None
            time.sleep(_wait(exc, policy, attempt))
    raise AssertionError("unreachable")  # the loop returns or raises


def _wait(exc: BaseException, policy: RetryPolicy, attempt: int) -> float:
    """The backoff, or the server's Retry-After (at most MAX_RETRY_AFTER)."""
    response = getattr(_root(exc), "response", None)
    value = str(getattr(response, "headers", {}).get("Retry-After", "")).strip()
    return float(min(int(value), MAX_RETRY_AFTER)) if value.isdigit() else policy.delay(attempt)


# --- ftctl's own repositories: read back, bounded


def fetch(
    repo: HubRef | HubRepo, url: str, sink: BinaryIO, *, limit: int, policy: RetryPolicy | None
) -> str | None:
    """GET ``url`` into ``sink`` (at most ``limit`` bytes, else a HubError); the next page's URL.

    Streamed and retried here, not through ``http_stream_backoff``: that retries until the
    headers arrive, and a reply cut halfway must start again from an empty ``sink``.
    """
    from huggingface_hub import get_session
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status  # type: ignore[attr-defined]

    def once() -> str | None:
        sink.seek(0)
        sink.truncate()
        with get_session().stream("GET", url, headers=build_hf_headers()) as response:
            if response.status_code >= 400:
                hf_raise_for_status(_bounded_copy(response))
            size = 0
            for chunk in response.iter_bytes(1 << 20):
                size += len(chunk)
                if size > limit:  # a HubError is not retried
                    raise HubError(repo, f"the Hub's answer is larger than {limit:,} bytes")
                sink.write(chunk)
            return response.links.get("next", {}).get("url")

    return _attempts(repo, policy or default_policy(), once)


def _bounded_copy(response: httpx2.Response, limit: int = 64 * 1024) -> httpx2.Response:
    """An error reply cut to ``limit`` bytes for the library to classify (it reads a body whole)."""
    import httpx2

    head = b""
    for chunk in response.iter_bytes(limit):
        head += chunk
        if len(head) >= limit:
            break
    skip = ("content-length", "content-encoding", "transfer-encoding")
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in skip]
    request = response.request
    return httpx2.Response(response.status_code, headers=headers, content=head, request=request)


# --- ftctl's own repositories: written in one commit


def create_repo(repo: HubRepo, policy: RetryPolicy) -> None:
    """The model repository, made if absent (a second creation is a no-op)."""
    from huggingface_hub import HfApi

    _attempts(repo, policy, lambda: HfApi().create_repo(repo.repo_id, exist_ok=True))


def create_tag(repo: HubRepo, tag: str, commit: str, policy: RetryPolicy) -> None:
    """Tag ``commit``; an existing tag is left as it is, wherever it points (check the refs)."""
    from huggingface_hub import HfApi

    def tag_it() -> None:
        HfApi().create_tag(repo.repo_id, tag=tag, revision=commit, exist_ok=True)

    _attempts(repo, policy, tag_it)


def digests(prepared: list[Any]) -> dict[str, str]:
    """path -> sha256 hex of every file a prepared commit adds (hashed once, by the upload)."""
    adds = (op for op in prepared if hasattr(op, "upload_info"))
    return {op.path_in_repo: op.upload_info.sha256.hex() for op in adds}


def prepare_commit(
    repo: HubRepo, adds: Sequence[tuple[str, Path | bytes]], deletes: Sequence[str], *,
    known: dict[str, str], attempt: int = 1, policy: RetryPolicy,
) -> list[Any]:  # fmt: skip
    """The operations of a commit, with what ``adds`` needs uploaded (the library retries those
    requests). Single-use: each attempt prepares afresh, so the library's "unchanged file" check
    reads the branch as it is then; ``known`` (sha256 of an earlier attempt) saves hashing again.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    additions = []
    for path, source in adds:
        op = CommitOperationAdd(path_in_repo=path, path_or_fileobj=source)
        if path in known:
            op.upload_info.sha256 = bytes.fromhex(known[path])
        additions.append(op)
    _session(policy)
    try:
        with _library_quiet():
            HfApi().preupload_lfs_files(repo.repo_id, additions=additions, free_memory=False)
    except _failures() as exc:
        raise explain(repo, exc, attempt) from None
    return [*additions, *(CommitOperationDelete(path_in_repo=p, is_folder=False) for p in deletes)]


def send_commit(
    repo: HubRepo, prepared: list[Any], *, message: str, parent: str | None, attempt: int = 1,
    policy: RetryPolicy,
) -> str:  # fmt: skip
    """The one commit on main, on top of ``parent``; its 40-hex id. Tried once: a retry after a
    lost answer could commit twice, so the caller reads the branch to learn what landed."""
    from huggingface_hub import HfApi

    _session(policy)
    try:
        with _library_quiet():
            info = HfApi().create_commit(
                repo.repo_id, prepared, commit_message=message, parent_commit=parent
            )
    except _failures() as exc:
        raise explain(repo, exc, attempt) from None
    oid = str(getattr(info, "oid", "")).lower()
    if not COMMIT_RE.match(oid):
        raise HubError(repo, "the Hub returned no commit id for the commit", hint=PUBLISH_HINT)
    return oid


# --- the worker's side: the Hugging Face cache and the client's settings


def in_cache(repo_id: str, filename: str, revision: str | None) -> bool:
    """Whether the local Hugging Face cache holds ``filename`` of the model at ``revision``."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename, revision=revision), str)


def offline() -> bool:
    """Whether huggingface_hub runs offline (HF_HUB_OFFLINE, read once at its import)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def endpoint() -> str:
    """The Hub the client talks to (HF_ENDPOINT or huggingface.co)."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def dataset_snapshot(repo_id: str, revision: str | None, where: str) -> Path:
    """A Hub dataset's files at a revision, through the Hugging Face cache (offline-aware)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    shown = f"{repo_id}@{revision or 'main'}"
    check_token()
    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision))
    except LocalEntryNotFoundError:
        raise FtctlError(
            f"{where}: {shown} is not in the Hugging Face cache and the Hub is not reachable",
            hint="download it where the Hub is reachable (huggingface-cli download --repo-type "
            "dataset) and copy the cache, or unset HF_HUB_OFFLINE",
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "no answer"
        raise FtctlError(
            f"{where}: the Hub refused {shown} ({status})",
            hint="check the name, and HF_TOKEN for a private or gated dataset",
        ) from None
