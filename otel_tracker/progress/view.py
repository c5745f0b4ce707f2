"""Progress of a run read from its files: what ``status`` and ``watch`` print."""

from __future__ import annotations

import time
from typing import Any

from ..store import RunView
from .eta import estimate, timings_from_manifest
from .render import compact_duration, run_end_line, running_line


def progress_status(view: RunView, now: float | None = None) -> dict[str, Any]:
    """The run's progress as data (``status --json``)."""
    now = time.time() if now is None else now
    doc = view.doc
    running = [s for s in doc.get("steps", []) if s.get("status") == "running"]
    live = view.status in ("running", "stuck")
    eta = estimate(timings_from_manifest(doc, now)) if live else None
    started = doc.get("started_at")
    from ..timeparse import parse_timestamp

    start_ts = parse_timestamp(started)
    elapsed = (
        doc.get("duration_s")
        if not live
        else (now - start_ts if start_ts else doc.get("elapsed_s"))
    )
    step = running[-1] if running and live else None
    return {
        "run_id": view.run_id,
        "name": doc.get("name"),
        "status": view.status,
        "status_reason": view.inference.reason,
        "current_step": step.get("name") if step else None,
        "step_progress": step.get("progress") if step else None,
        "steps_completed": doc.get("steps_completed"),
        "steps_enabled": doc.get("steps_enabled"),
        "last_completed_step": doc.get("last_completed_step"),
        "elapsed_s": elapsed,
        "eta_s": None if eta is None else eta.remaining_s,
        "eta_at_least": None if eta is None else eta.at_least,
        "heartbeat_at": doc.get("heartbeat_at"),
        "_eta": eta,
        "_step_index": step.get("index") if step else None,
    }


def status_lines(view: RunView, now: float | None = None) -> list[str]:
    """Human lines: the same step line the run itself prints, plus any warning."""
    info = progress_status(view, now)
    doc = view.doc
    head = f"{view.run_id}  {doc.get('name')}  {view.status}"
    if view.status in ("running", "stuck"):
        lines = [head]
        if info["_step_index"] is not None:
            lines.append(
                running_line(doc, info["_step_index"], info["_eta"], info["elapsed_s"] or 0.0)
            )
        else:
            lines.append(
                f"between steps ({info['_eta'].text()}, elapsed {compact_duration(info['elapsed_s'] or 0)})"
            )
        if view.status == "stuck":
            lines.append(f"STUCK: {view.inference.reason}")
        return lines
    if view.status == "aborted":
        last = doc.get("last_completed_step") or "none"
        return [head, f"aborted: {view.inference.reason}; last completed step: {last}"]
    return [head, run_end_line(doc)]
