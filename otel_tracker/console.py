"""Terminal output for the CLI: rich tables on a TTY, plain aligned text in pipes.

Every cell, value and line passes through :func:`~otel_tracker.printable.printable`
(control characters escaped, long text cut): the data comes from files anyone may
edit. Only rich ``Text`` the code built itself is printed as it is.
rich is imported only when something is printed.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from typing import IO, Any

from .printable import MAX_CHARS, printable

STATUS_STYLE = {
    "completed": "green",
    "running": "cyan",
    "stuck": "magenta",
    "failed": "red",
    "aborted": "red",
    "cancelled": "yellow",
    "skipped": "dim",
    "pending": "dim",
}
PLAIN_WIDTH = 200  # pipes get long lines rather than wrapped cells


def make_console(file: IO[str] | None = None) -> Any:
    """A console that styles only a real terminal."""
    from rich.console import Console

    out = file or sys.stdout
    tty = hasattr(out, "isatty") and out.isatty()
    return Console(
        file=out,
        highlight=False,
        color_system="auto" if tty else None,
        force_terminal=tty,
        width=None if tty else PLAIN_WIDTH,
        soft_wrap=not tty,
    )


def table(
    console: Any,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    status_column: int | None = None,
) -> Any:
    """A rich table: ruled on a terminal, bare aligned columns otherwise."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    styled = console.is_terminal
    t = Table(
        box=box.SIMPLE_HEAD if styled else None,
        show_edge=False,
        pad_edge=False,
        header_style="bold" if styled else "",
    )
    for header in headers:
        t.add_column(header, overflow="fold")
    for row in rows:
        # Text, not markup: run and step names are user data ("[x]" must print as is)
        cells = [Text(printable(cell)) for cell in row]
        if styled and status_column is not None:
            value = printable(row[status_column])
            style = STATUS_STYLE.get(value.split()[0] if value else "", "")
            cells[status_column] = Text(value, style=style)
        t.add_row(*cells)
    return t


def key_value_table(console: Any, rows: Sequence[tuple[str, str]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_column(style="bold" if console.is_terminal else "", no_wrap=True)
    t.add_column(overflow="fold")
    for label, value in rows:
        t.add_row(Text(printable(label)), Text(printable(value)))
    return t


def render_plain(*renderables: Any, width: int = 120) -> str:
    """Render to a string without terminal codes or trailing padding (for pipes and files)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer, color_system=None, force_terminal=False, width=width, highlight=False
    )
    for r in _safe(renderables):
        console.print(r, markup=False)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def emit(console: Any, *renderables: Any) -> None:
    """Print: styled on a terminal, plain and unpadded otherwise."""
    if console.is_terminal:
        for r in _safe(renderables):
            console.print(r, markup=False)
    else:
        console.file.write(render_plain(*renderables, width=PLAIN_WIDTH))


def lines_text(text: str, limit: int = 4 * MAX_CHARS) -> Any:
    """Multi-line text (a traceback) to print: escaped like the rest, newlines kept,
    every line indented so that none can pass for one of ours (``Run ... completed``)."""
    from rich.text import Text

    return Text("\n".join("  " + line for line in printable(text, limit, lines=True).split("\n")))


def _safe(renderables: Sequence[Any]) -> list[Any]:
    # a plain string is one line of data; tables and Text come from the helpers above
    return [printable(r) if isinstance(r, str) else r for r in renderables]
