"""Terminal output: plain lines for pipes and CI, rich styling on a terminal.

rich is imported only when output goes to a terminal, so scripted runs of the
light commands stay fast. ``NO_COLOR`` is honoured (rich reads it itself).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console


@lru_cache(maxsize=2)
def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _stream(stderr: bool) -> TextIO:
    return sys.stderr if stderr else sys.stdout


def echo(text: str = "", *, markup: str | None = None, stderr: bool = False) -> None:
    """Print ``text``; on a terminal print ``markup`` (rich markup) instead when given."""
    stream = _stream(stderr)
    if markup is not None and stream.isatty():
        _console(stderr).print(markup)
    else:
        stream.write(text + "\n")
        stream.flush()


def escape(text: str) -> str:
    """Escape text for use inside rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def table(headers: list[str], rows: list[list[str]], *, stderr: bool = False) -> None:
    """A table: rich on a terminal, aligned plain text otherwise."""
    stream = _stream(stderr)
    if stream.isatty():
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
