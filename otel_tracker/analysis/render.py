"""The report for people: rich renderables for the terminal, plain text for files."""

from __future__ import annotations

import io
from typing import Any


def report_renderables(console: Any, report: dict[str, Any], full: bool) -> list[Any]:
    """The report as rich renderables: key values, steps, artifacts, figures, findings."""
    from ..console import key_value_table, table
    from .findings import figures_table, finding_lines
    from .report import key_values, step_table

    parts: list[Any] = [key_value_table(console, key_values(report)), ""]
    headers, rows = step_table(report)
    parts.append(table(console, headers, rows, status_column=2))
    if report["artifacts"]:
        rows = [
            [
                a["step"] or "-",
                a.get("kind") or "-",
                a["path"],
                "-" if a.get("size_bytes") is None else f"{a['size_bytes']:,} B",
            ]
            for a in report["artifacts"]
        ]
        parts += ["", table(console, ["step", "kind", "path", "size"], rows)]
    if report["analysis"]:
        headers, rows = figures_table(report["analysis"])
        parts += ["", table(console, headers, rows), "", *finding_lines(report["analysis"])]
    if full and report["error"] and report["error"].get("traceback"):
        parts += ["", report["error"]["traceback"]]
    if full and report["command"]:
        parts += ["", "command: " + " ".join(report["command"])]
    if report["warnings"]:
        parts += ["", *(f"warning: {w}" for w in report["warnings"])]
    return parts


def to_text(report: dict[str, Any]) -> str:
    """The report as the terminal shows it, without terminal codes."""
    from ..console import make_console, render_plain

    console = make_console(io.StringIO())
    return render_plain(*report_renderables(console, report, full=True), width=120)
