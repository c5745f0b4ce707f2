"""Progress of a run read from its files: what ``status`` and ``watch`` print."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ..contract.run_status import run_time_now
from ..contract.telemetry_form import last_samples
from ..printable import printable
from ..progress.eta import Eta, estimate, timings_from_manifest
from ..progress.rate import read_rate
from ..progress.render import run_end_line, running_line
from ..progress.resources import samples_text
from ..timeparse import format_duration, parse_timestamp
from ..values import is_real
from .store import RunView

LIVE = ("running", "stuck")


@dataclass(frozen=True)
class LiveProgress:
    """Where a run is now: its running step (if any), its ETA and elapsed time."""

    step: dict[str, Any] | None
    eta: Eta | None
    elapsed_s: float | None


def live_progress(view: RunView, now: float | None = None) -> LiveProgress:
    """``now`` defaults to the store's reading; on the run's clock either way, so a
    stepped system clock shows no negative or day-long elapsed time."""
    doc = view.doc
    if now is not None:
        now = run_time_now(doc, now)
    elif view.run_now is not None:
        now = view.run_now
    else:
        now = run_time_now(doc, time.time())
    if view.status not in LIVE:
        return LiveProgress(None, None, doc.get("duration_s"))
    running = [s for s in doc.get("steps", []) if s.get("status") == "running"]
    start = parse_timestamp(doc.get("started_at"))
    elapsed = max(0.0, now - start) if start is not None else doc.get("elapsed_s")
    eta = estimate(timings_from_manifest(doc, now))
    return LiveProgress(running[-1] if running else None, eta, elapsed)


TAIL_BYTES = 256 * 1024  # the last few samples of a busy machine


def recent_samples(view: RunView, count: int = 6) -> list[dict[str, float]]:
    """The points of the run's last ``count`` resource samples (from the end of its
    telemetry; a torn last line skipped), oldest first."""
    return [_numbers(r) for _, r in last_samples(view.path, count, TAIL_BYTES)]


def _numbers(record: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in record["points"].items()
        if is_real(v) and not isinstance(v, bool) and math.isfinite(v)
    }


def resources_line(view: RunView) -> str:
    """``CPU 187% of 2 · PSS 3.1 GB · GPU0 92% 14/80 GB`` of a live run, from its files."""
    cpu_count = (view.doc.get("environment") or {}).get("cpu_count")
    return samples_text(recent_samples(view), cpu_count if isinstance(cpu_count, int) else None)


def progress_status(view: RunView, now: float | None = None) -> dict[str, Any]:
    """The run's progress as data (``status --json``)."""
    live = live_progress(view, now)
    doc = view.doc
    step = live.step
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
        "elapsed_s": live.elapsed_s,
        "eta_s": None if live.eta is None else live.eta.remaining_s,
        "eta_at_least": None if live.eta is None else live.eta.at_least,
        "heartbeat_at": doc.get("heartbeat_at"),
        "resources": resources_line(view) if view.status in LIVE else None,
    }


def status_lines(view: RunView, now: float | None = None) -> list[str]:
    """Human lines: the same step line the run itself prints, plus any warning."""
    doc = view.doc
    head = f"{view.run_id}  {printable(doc.get('name'))}  {view.status}"
    if view.status in LIVE:
        lines = [head, live_line(view, now)]
        machine = resources_line(view)
        if machine:
            lines.append(machine)
        if view.status == "stuck":
            lines.append(f"STUCK: {printable(view.inference.reason)}")
        return lines
    if view.status == "aborted":
        last = printable(doc.get("last_completed_step") or "none")
        return [head, f"aborted: {printable(view.inference.reason)}; last completed step: {last}"]
    return [head, run_end_line(doc)]


def live_line(view: RunView, now: float | None = None) -> str:
    """A live run's step line, as the run itself prints it (``Step 2/5 – ...``)."""
    live = live_progress(view, now)
    eta = live.eta or Eta(None, at_least=True)
    elapsed = live.elapsed_s or 0.0
    if live.step is None:
        return f"between steps ({eta.text()}, elapsed {format_duration(elapsed, compact=True)})"
    rate = step_rate(live.step, view, now)
    return running_line(view.doc, live.step["index"], eta, elapsed, rate)


def step_rate(step: dict[str, Any], view: RunView, now: float | None = None) -> float | None:
    """The running step's rate from its count and when the count last changed: all
    that a file reader knows (the live display refines it with a window, see
    :mod:`otel_tracker.progress.rate`)."""
    at = run_time_now(view.doc, now) if now is not None else view.run_now
    return None if at is None else read_rate(step, view.doc, at)
