"""Durations as a command line writes them: ``30s``, ``5m``, ``1h``, ``1m30s``, or bare seconds."""

from __future__ import annotations

import re

from ftctl.errors import UsageError, excerpt

_FORM = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_SECONDS = re.compile(r"[0-9]+")
_MAX = 10**7  # seconds (about 4 months): beyond any wait a person means


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``0s``, ``30s``, ``5m``, ``1h``, ``1m30s`` or a bare integer."""
    written = text.strip()
    match = _FORM.fullmatch(written)
    if _SECONDS.fullmatch(written):
        seconds = int(written)
    elif written and match is not None:
        hours, minutes, secs = (int(part) if part else 0 for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise UsageError(
            f"{excerpt(text)} is not a duration", hint="write e.g. 0s, 30s, 5m, 1h or 1m30s"
        )
    if seconds > _MAX:
        raise UsageError(f"{excerpt(text)} is too long a wait", hint=f"at most {_MAX}s")
    return float(seconds)
