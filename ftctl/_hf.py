"""The Hugging Face Hub, as ftctl uses it: resolve a reference to a commit.

huggingface_hub reads HF_ENDPOINT and HF_TOKEN itself; this module adds
retries with exponential backoff on 408/429/5xx, timeouts and dropped
connections (honouring Retry-After), and turns every failure into one line
that names the recipe, the reference and the cause. Tokens never appear in
messages.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ftctl.errors import FtctlError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
Kind = Literal["model", "dataset"]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5  # seconds; doubles each attempt
    max_delay: float = 8.0
    timeout: float = 20.0  # per request


def default_policy() -> RetryPolicy:
    timeout = float(os.environ.get("FTCTL_HF_TIMEOUT", "20"))
    attempts = int(os.environ.get("FTCTL_HF_ATTEMPTS", "5"))
    base = float(os.environ.get("FTCTL_HF_BACKOFF", "0.5"))
    return RetryPolicy(attempts=attempts, base_delay=base, timeout=timeout)


class HubError(FtctlError):
    """The Hub could not resolve a reference."""


def resolve_commit(
    kind: Kind,
    repo_id: str,
    revision: str | None,
    *,
    recipe: str,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The 40-hex commit ``revision`` (default: main) of a Hub model or dataset points at."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import _http

    policy = policy or default_policy()
    ref = f"{repo_id}@{revision}" if revision else repo_id
    where = f"recipe {recipe}: {kind} {ref}"
    api = HfApi()
    transient = _http._DEFAULT_RETRY_ON_EXCEPTIONS  # httpx2 timeouts, network and protocol errors
    last = ""
    for attempt in range(policy.attempts):
        delay = min(policy.max_delay, policy.base_delay * 2**attempt)
        try:
            getter = api.model_info if kind == "model" else api.dataset_info
            info = getter(repo_id, revision=revision, timeout=policy.timeout)
        except RevisionNotFoundError:
            raise HubError(
                f"{where}: revision '{revision}' does not exist",
                hint="name an existing branch, tag or commit",
            ) from None
        except GatedRepoError:
            raise HubError(
                f"{where}: access is gated (401/403)",
                hint="accept the model's terms on the Hub and set HF_TOKEN",
            ) from None
        except RepositoryNotFoundError as exc:
            status = _status(exc)
            if status == 401:
                raise HubError(
                    f"{where}: not found or private (401 Unauthorized)",
                    hint="check the name; for a private repository set HF_TOKEN",
                ) from None
            raise HubError(
                f"{where}: repository not found (404)",
                hint="check the name (and HF_ENDPOINT if you use a mirror)",
            ) from None
        except HfHubHTTPError as exc:
            status = _status(exc)
            if status == 401 or status == 403:
                raise HubError(
                    f"{where}: not authorized ({status})",
                    hint="set HF_TOKEN to a token that can read it",
                ) from None
            if status not in RETRY_STATUS:
                raise HubError(f"{where}: the Hub answered {status}") from None
            last = f"the Hub answered {status}"
            delay = max(delay, _retry_after(exc))
        except transient as exc:
            last = f"no answer from the Hub ({type(exc).__name__})"
        else:
            sha = getattr(info, "sha", None)
            if not isinstance(sha, str) or len(sha) != 40:
                raise HubError(f"{where}: the Hub returned no commit for it")
            return sha.lower()
        if attempt + 1 < policy.attempts:
            sleep(delay)
    raise HubError(
        f"{where}: {last} after {policy.attempts} attempts",
        hint="check the network (and HF_ENDPOINT); a lock that is already complete needs none",
    )


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(exc: Exception) -> float:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return min(30.0, float(headers.get("Retry-After", 0)))
    except (TypeError, ValueError):
        return 0.0
