"""The report for people: rich renderables for the terminal, plain text for files."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

# A terminal table of thousands of rows is unreadable and slow to lay out (rich takes
# ~2 ms a row); past this the first and last rows and every failed one are shown.
# The JSON and Markdown reports keep every row.
MAX_ROWS = 200
MAX_FINDINGS = 50
NOTEWORTHY = frozenset({"failed", "aborted", "running", "stuck"})


def report_renderables(console: Any, report: dict[str, Any], full: bool) -> list[Any]:
    """The report as rich renderables: key values, steps, artifacts, figures, findings."""
    from ..console import key_value_table, lines_text, table
    from .findings import figures_table, finding_lines
    from .report import artifact_kind, key_values, step_table

    parts: list[Any] = [key_value_table(console, key_values(report)), ""]
    headers, rows = step_table(report)
    rows = bounded_rows(rows, "steps", column=1, noteworthy=lambda row: row[2] in NOTEWORTHY)
    parts.append(table(console, headers, rows, status_column=2))
    if report.get("job"):
        from .job_report import rank_table

        headers, rows = rank_table(report["job"])
        rows = bounded_rows(rows, "ranks", noteworthy=lambda row: row[3] in NOTEWORTHY)
        parts += ["", table(console, headers, rows, status_column=3)]
    if report["artifacts"]:
        rows = [
            [
                a["step"] or "-",
                artifact_kind(a),
                a["path"],
                "-" if a.get("size_bytes") is None else f"{a['size_bytes']:,} B",
            ]
            for a in report["artifacts"]
        ]
        parts += [
            "",
            table(console, ["step", "kind", "path", "size"], bounded_rows(rows, "artifacts")),
        ]
    if report["analysis"]:
        headers, rows = figures_table(report["analysis"])
        lines = finding_lines(report["analysis"])
        if len(lines) > 1 + 3 * MAX_FINDINGS:  # the baseline line, then three per finding
            more = (len(lines) - 1) // 3 - MAX_FINDINGS
            lines = [
                *lines[: 1 + 3 * MAX_FINDINGS],
                f"... {more:,} more findings (summary --format json lists all)",
            ]
        parts += ["", table(console, headers, bounded_rows(rows, "steps")), "", *lines]
    if full and report["error"] and report["error"].get("traceback"):
        parts += ["", lines_text(report["error"]["traceback"])]
    if full and report["command"]:
        parts += ["", "command: " + " ".join(report["command"])]
    if report["warnings"]:
        parts += ["", *(f"warning: {w}" for w in report["warnings"][:MAX_FINDINGS])]
    return parts


def bounded_rows(
    rows: list[list[str]],
    what: str,
    *,
    column: int = 0,
    noteworthy: Callable[[list[str]], bool] = lambda row: False,
    limit: int = MAX_ROWS,
) -> list[list[str]]:
    """At most about ``limit`` rows: the first and last halves and the noteworthy ones
    between; each gap is one row saying, in ``column``, how many were left out."""
    if len(rows) <= limit:
        return rows
    half = limit // 2
    keep = {*range(half), *range(len(rows) - half, len(rows))}
    keep.update([i for i, row in enumerate(rows) if noteworthy(row)][:limit])
    out: list[list[str]] = []
    previous = -1
    for i in sorted(keep):
        if i > previous + 1:
            gap = [""] * len(rows[0])
            gap[column] = f"... {i - previous - 1:,} {what} not shown (the JSON report lists all)"
            out.append(gap)
        out.append(rows[i])
        previous = i
    return out


def to_text(report: dict[str, Any]) -> str:
    """The report as the terminal shows it, without terminal codes."""
    from ..console import make_console, render_plain

    console = make_console(io.StringIO())
    return render_plain(*report_renderables(console, report, full=True), width=120)
