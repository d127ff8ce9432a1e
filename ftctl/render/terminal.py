"""Terminal output, the one way every command prints: results, progress, warnings, errors.

Results go to stdout (:func:`echo`); progress, warnings and errors to stderr
(:func:`info`, :func:`warn`, :func:`error`). Plain lines for pipes and CI;
rich styling only on a terminal and only without ``NO_COLOR`` (any non-empty
value: no colour, no bold, no dim). rich is imported only when it styles, so
scripted runs of the light commands stay fast.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import TYPE_CHECKING, TextIO

from ftctl.errors import one_line

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console


@lru_cache(maxsize=2)
def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _stream(stderr: bool) -> TextIO:
    return sys.stderr if stderr else sys.stdout


def use_styles(*, stderr: bool = False, environ: Mapping[str, str] | None = None) -> bool:
    """Whether output to stdout (or stderr) is styled: a terminal, and ``NO_COLOR`` unset or empty."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    try:
        return _stream(stderr).isatty()
    except ValueError:  # a closed stream
        return False


def echo(
    text: str = "", *, markup: str | None = None, stderr: bool = False, nl: bool = True
) -> None:
    """Print ``text`` (a result: stdout); styled, print ``markup`` (rich markup) instead."""
    if markup is not None and use_styles(stderr=stderr):
        _console(stderr).print(markup, end="\n" if nl else "")
        return
    stream = _stream(stderr)
    stream.write(text + "\n" if nl else text)
    stream.flush()


def info(text: str, *, markup: str | None = None) -> None:
    """Progress and notes for people, on stderr (stdout stays for results)."""
    echo(text, markup=markup, stderr=True)


def warn(text: str) -> None:
    """``ftctl: warning: TEXT`` on stderr, the one form every warning takes."""
    _tagged(f"ftctl: warning: {one_line(text)}", "yellow")


def error(text: str) -> None:
    """``ftctl: error: TEXT`` on stderr (the CLI's last word before exit 1)."""
    _tagged(f"ftctl: error: {one_line(text)}", "red")


def _tagged(line: str, colour: str) -> None:
    markup = f"[{colour}]{escape(line)}[/{colour}]" if use_styles(stderr=True) else None
    echo(line, markup=markup, stderr=True)


def escape(text: str) -> str:
    """Escape text for use inside rich markup (imports rich: only call it to style)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def table(headers: list[str], rows: list[list[str]], *, stderr: bool = False) -> None:
    """A table: rich on a terminal, aligned plain text otherwise."""
    stream = _stream(stderr)
    if use_styles(stderr=stderr):
        from rich.table import Table

        grid = Table(*headers, show_edge=False, header_style="bold")
        for row in rows:
            grid.add_row(*(escape(cell) for cell in row))
        _console(stderr).print(grid)
        return
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        stream.write(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            + "\n"
        )
    stream.flush()
