"""Progress lines: ``Step 2/5 – Collect expert trajectories (ETA 11m, elapsed 2m)``.

Deterministic: the same manifest state and ETA always give the same line.
Steps are numbered among the enabled ones; skipped steps leave the total.
Names and reasons are user data: printed through :func:`printable`, so no control
character reaches a terminal or a log and a newline cannot forge a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..printable import printable
from ..timeparse import format_duration
from .eta import Eta
from .rate import rate_text

DASH = "–"


def position(doc: Mapping[str, Any], index: int) -> tuple[int, int]:
    """(number among enabled steps, enabled total) of step ``index``."""
    enabled = [s for s in doc.get("steps", []) if s.get("status") != "skipped"]
    number = next((i + 1 for i, s in enumerate(enabled) if s.get("index") == index), 0)
    return number, len(enabled)


def _step(doc: Mapping[str, Any], index: int) -> Mapping[str, Any]:
    return doc["steps"][index]


def step_line(
    doc: Mapping[str, Any], index: int, eta: Eta, elapsed_s: float, event: str = "start"
) -> str:
    """The line printed when a step starts or ends."""
    step = _step(doc, index)
    number, total = position(doc, index)
    head = f"Step {number}/{total} {DASH} {printable(step.get('name'))}"
    tail = f"({eta.text()}, elapsed {format_duration(elapsed_s, compact=True)})"
    if event == "start":
        return f"{head} {tail}"
    duration = step.get("duration_s")
    took = format_duration(duration, compact=True) if isinstance(duration, (int, float)) else "?"
    verb = {"completed": "done in", "failed": "failed after"}.get(
        str(step.get("status")), "ended after"
    )
    return f"{head} {verb} {took} {tail}"


def skip_line(doc: Mapping[str, Any], index: int) -> str:
    step = _step(doc, index)
    _, total = position(doc, index)
    reason = f": {printable(step.get('skip_reason'))}" if step.get("skip_reason") else ""
    return f"Skipped {printable(step.get('name'))}{reason} ({total} steps enabled)"


def items_text(step: Mapping[str, Any], rate: float | None) -> str:
    """``4,000/10,000 env steps (40%, 812 env steps/s)`` or ``3/10 epochs (30%,
    42 s/epoch)`` for a step that reports progress (see :mod:`.rate`)."""
    progress = step.get("progress") or {}
    completed, total, unit = (
        progress.get("completed") or 0,
        progress.get("total"),
        progress.get("unit"),
    )
    if not completed and total is None:
        return ""
    unit_text = f" {printable(unit)}" if unit else ""
    details = []
    if total:
        head = f"{completed:,}/{total:,}{unit_text}"
        details.append(f"{100 * completed / total:.0f}%")
    else:
        head = f"{completed:,}{unit_text}"
    shown_rate = rate_text(rate, printable(unit) if unit else None)
    if shown_rate:
        details.append(shown_rate)
    return head + (f" ({', '.join(details)})" if details else "")


def running_line(
    doc: Mapping[str, Any], index: int, eta: Eta, elapsed_s: float, rate: float | None = None
) -> str:
    """The periodic line while a step runs (non-terminal output)."""
    step = _step(doc, index)
    number, total = position(doc, index)
    items = items_text(step, rate)
    items = f": {items}" if items else ""
    name = printable(step.get("name"))
    return f"Step {number}/{total} {DASH} {name}{items} ({eta.text()}, elapsed {format_duration(elapsed_s, compact=True)})"


def run_end_line(doc: Mapping[str, Any]) -> str:
    status = doc.get("status")
    duration = doc.get("duration_s")
    took = format_duration(duration, compact=True) if isinstance(duration, (int, float)) else "?"
    extra = f", {printable(doc['signal'])}" if doc.get("signal") else ""
    return (
        f"Run {printable(doc.get('name'))} {printable(status)} in {took} "
        f"({doc.get('steps_completed')}/{doc.get('steps_enabled')} steps{extra})"
    )
