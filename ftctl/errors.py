"""The one error hierarchy of ftctl.

Every error a user can cause is an :class:`FtctlError`: it carries a message,
where it happened (``file:line:col`` and the key path) and a hint saying what
to do. The CLI renders it as one line and exits 1; nothing else prints
tracebacks for a user's mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

INTERRUPTED = (
    130  # the exit code of a command stopped by Ctrl-C: 128 + SIGINT, as a shell reports it
)


# NamedTuples, not frozen dataclasses: every command imports this module, and a frozen
# dataclass costs ~10x as much to define (bench/plan.py, warm).
class Location(NamedTuple):
    """A place in a file: 1-based line and column, either may be unknown."""

    file: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.col is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.col}"


def format_key_path(path: Sequence[str | int]) -> str:
    """``("datasets", 0, "type")`` -> ``datasets[0].type``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class Problem(NamedTuple):
    """One thing wrong with one input, rendered as one line."""

    message: str
    location: Location | None = None
    key_path: tuple[str | int, ...] = ()
    hint: str | None = None

    def render(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.key_path:
            parts.append(format_key_path(self.key_path))
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        parts.append(text)
        return one_line(": ".join(parts))


def one_line(text: str) -> str:
    """Escape newlines and other control characters, so a problem is always one line."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


class FtctlError(Exception):
    """Base of every error caused by input, configuration or environment."""

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        key_path: Sequence[str | int] = (),
        hint: str | None = None,
    ) -> None:
        self.problem = Problem(message, location, tuple(key_path), hint)
        super().__init__(self.problem.render())

    @property
    def problems(self) -> list[Problem]:
        return [self.problem]


class ConfigError(FtctlError):
    """A recipe, workspace file or other YAML input is malformed or invalid."""


class UsageError(FtctlError):
    """The command line asks for something that cannot be done."""


class EnvVarError(FtctlError):
    """An environment variable ftctl reads holds a value it cannot use."""

    def __init__(self, variable: str, value: str, expected: str, example: str) -> None:
        self.variable = variable
        self.value = value
        self.expected = expected
        # A short value is shown; a long one may be a secret pasted into the wrong variable.
        shown = (
            f"{variable}={value!r}"
            if len(value) <= 16
            else f"{variable} (a {len(value)}-character value)"
        )
        super().__init__(
            f"{one_line(shown)} is not {expected}",
            hint=f"write e.g. {variable}={example}, or unset it",
        )


class ValidationFailed(ConfigError):
    """Several problems in one input; each renders as its own line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("ValidationFailed needs at least one problem")
        self._problems = list(problems)
        first = self._problems[0]
        super().__init__(
            first.message, location=first.location, key_path=first.key_path, hint=first.hint
        )

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems)

    def __str__(self) -> str:
        return "\n".join(p.render() for p in self._problems)


def excerpt(text: str, limit: int = 40) -> str:
    """A short, escaped quote of offending input: never more of a file than this."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)
