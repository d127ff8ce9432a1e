"""The Hugging Face Hub, as ftctl uses it: resolve a reference to a commit.

huggingface_hub reads HF_ENDPOINT and HF_TOKEN itself, and its ``http_backoff``
retries 408/429/5xx, timeouts and dropped connections with exponential backoff
(honouring Retry-After). ``HfApi.model_info`` and ``dataset_info`` do not go
through it (they make one request), so this module asks their endpoint through
``http_backoff`` and keeps only the commit of the answer; the library still
builds the headers (token, user agent) and classifies the errors
(``hf_raise_for_status``). Every failure becomes one line that names the
recipe, the reference and the cause; tokens never appear in messages.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from ftctl.errors import EnvVarError, FtctlError

if TYPE_CHECKING:
    import httpx2

RETRY_STATUS = (408, 429, 500, 502, 503, 504)
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
NETWORK_HINT = "check the network (and HF_ENDPOINT); a lock that is already complete needs none"
Kind = Literal["model", "dataset"]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5  # seconds; doubles each attempt
    max_delay: float = 8.0
    timeout: float = 20.0  # per request


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
    name: str,
    default: float,
    parse: Callable[[str], float],
    valid: Callable[[float], bool],
    expected: str,
) -> float:
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

    def api_url(self, endpoint: str) -> str:
        """The URL ``HfApi.model_info`` / ``dataset_info`` ask."""
        url = f"{endpoint}/api/{self.kind}s/{self.repo_id}"
        return url if self.revision is None else f"{url}/revision/{quote(self.revision, safe='')}"


class HubError(FtctlError):
    """The Hub could not resolve a reference: ``ref``, ``reason`` and the HTTP ``status`` if any."""

    def __init__(
        self, ref: HubRef, reason: str, *, hint: str | None = None, status: int | None = None
    ) -> None:
        self.ref = ref
        self.reason = reason
        self.status = status
        super().__init__(f"{ref}: {reason}", hint=hint)


def resolve_commit(
    kind: Kind,
    repo_id: str,
    revision: str | None,
    *,
    recipe: str,
    policy: RetryPolicy | None = None,
) -> str:
    """The 40-hex commit ``revision`` (default: main) of a Hub model or dataset points at."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    # Public helpers of huggingface_hub.utils; its lazy facade hides them from mypy.
    from huggingface_hub.utils import (  # type: ignore[attr-defined]
        build_hf_headers,
        hf_raise_for_status,
        http_backoff,
    )

    policy = policy or default_policy()
    ref = HubRef(recipe, kind, repo_id, revision)
    _bound_retry_after()
    try:
        with _library_quiet():
            response = http_backoff(
                "GET",
                ref.api_url(constants.ENDPOINT),
                headers=build_hf_headers(),
                timeout=policy.timeout,
                max_retries=policy.attempts - 1,
                base_wait_time=policy.base_delay,
                max_wait_time=policy.max_delay,
                retry_on_exceptions=_retried(),
                retry_on_status_codes=RETRY_STATUS,
            )
            hf_raise_for_status(response)
    except (HfHubHTTPError, OfflineModeIsEnabled, httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise explain(ref, exc, policy.attempts) from None
    return _commit_of(ref, response)


MAX_RETRY_AFTER = 20  # seconds: a server's Retry-After beyond this is taken as this


def _bound_retry_after() -> None:
    """http_backoff waits whatever Retry-After says; a hostile or broken server must not hang lock.

    A response hook on the library's own shared client (its request hook, which enforces
    offline mode, stays) lowers a larger numeric Retry-After before the library reads it.
    """
    from huggingface_hub import get_session

    session = get_session()
    hooks = session.event_hooks
    if _clamp_retry_after not in hooks["response"]:
        hooks["response"].append(_clamp_retry_after)
        session.event_hooks = hooks


def _clamp_retry_after(response: Any) -> None:
    value = response.headers.get("Retry-After")
    if value is not None and value.strip().isdigit() and int(value.strip()) > MAX_RETRY_AFTER:
        response.headers["Retry-After"] = str(MAX_RETRY_AFTER)


def _retried() -> tuple[type[Exception], ...]:
    """The failures worth another attempt: those huggingface_hub retries by default."""
    import httpx2

    return (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


@contextmanager
def _library_quiet() -> Iterator[None]:
    """http_backoff logs every retry as a warning; ftctl reports the outcome in one line."""
    import logging

    from huggingface_hub.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _commit_of(ref: HubRef, response: httpx2.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past the decoder's recursion limit
        body = None
    sha = body.get("sha") if isinstance(body, dict) else None
    if not isinstance(sha, str) or not COMMIT_RE.match(sha.lower()):
        raise HubError(ref, "the Hub returned no commit for it")
    return sha.lower()


def explain(ref: HubRef, exc: Exception, attempts: int) -> HubError:
    """The one-line error for a failure of asking the Hub about ``ref``."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(exc, HfHubHTTPError):
        return _explain_status(ref, exc, attempts)
    if isinstance(exc, OfflineModeIsEnabled):
        return HubError(
            ref,
            "HF_HUB_OFFLINE is set, so the Hub cannot be asked",
            hint="unset HF_HUB_OFFLINE, or pin the reference to a 40-hex commit",
        )
    if isinstance(exc, _retried()):
        return HubError(
            ref,
            f"no answer from the Hub ({type(exc).__name__}) after {attempts} attempts",
            hint=NETWORK_HINT,
        )
    return HubError(ref, f"no answer from the Hub ({type(exc).__name__})", hint=NETWORK_HINT)


def _explain_status(ref: HubRef, exc: Exception, attempts: int) -> HubError:
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    status = _status(exc)
    if isinstance(exc, RevisionNotFoundError):
        return HubError(
            ref,
            f"revision '{ref.revision}' does not exist",
            hint="name an existing branch, tag or commit",
            status=status,
        )
    if isinstance(exc, GatedRepoError):
        return HubError(
            ref,
            "access is gated (401/403)",
            hint="accept the model's terms on the Hub and set HF_TOKEN",
            status=status,
        )
    if isinstance(exc, RepositoryNotFoundError):
        if status == 401:
            return HubError(
                ref,
                "not found or private (401 Unauthorized)",
                hint="check the name; for a private repository set HF_TOKEN",
                status=status,
            )
        return HubError(
            ref,
            "repository not found (404)",
            hint="check the name (and HF_ENDPOINT if you use a mirror)",
            status=status,
        )
    if status in (401, 403):
        return HubError(
            ref,
            f"not authorized ({status})",
            hint="set HF_TOKEN to a token that can read it",
            status=status,
        )
    if status in RETRY_STATUS:
        return HubError(
            ref,
            f"the Hub answered {status} after {attempts} attempts",
            hint=NETWORK_HINT,
            status=status,
        )
    return HubError(ref, f"the Hub answered {status}", status=status)


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


# The worker's side: the Hugging Face cache and the client's settings, read as transformers reads them.


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
