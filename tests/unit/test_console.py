"""User data in tables and report lines prints as written, never as rich markup."""

from __future__ import annotations

import io

from otel_tracker.console import emit, key_value_table, make_console, render_plain, table


def test_brackets_in_cells_and_lines_survive() -> None:
    console = make_console(io.StringIO())
    out = render_plain(
        table(console, ["step", "status"], [["[x] load", "completed"]], status_column=1),
        key_value_table(console, [("warning", "pip install 'otel-tracker[gpu]'")]),
        "[info] a line with [bold]brackets[/]",
    )
    assert "[x] load" in out
    assert "otel-tracker[gpu]" in out
    assert "[info] a line with [bold]brackets[/]" in out


def test_styled_terminal_output_keeps_brackets_too() -> None:
    from rich.console import Console

    buffer = io.StringIO()
    # a terminal console takes the styled path (status colours, ruled table)
    styled = Console(file=buffer, force_terminal=True, color_system="standard", width=80)
    emit(styled, table(styled, ["step", "status"], [["[x] load", "failed"]], status_column=1))
    assert "[x] load" in buffer.getvalue()
