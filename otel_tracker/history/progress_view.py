"""Progress of a run read from its files: what ``status`` and ``watch`` print."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ..contract.run_status import Inference, run_time_now
from ..contract.telemetry_form import last_samples
from ..printable import printable
from ..progress.eta import Eta, estimate, timings_from_manifest
from ..progress.rate import read_rate
from ..progress.render import run_end_line, running_line
from ..progress.resources import samples_text
from ..timeparse import format_duration, parse_timestamp
from ..values import is_real
from .job_view import counts_text, job_counts, rank_doc, ranks_text, slowest_rank
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
        "job": job_counts(doc),
        "slowest_rank": _slowest(view, now),
    }


def _slowest(view: RunView, now: float | None) -> dict[str, Any] | None:
    slowest = slowest_rank_view(view)
    if slowest is None:
        return None
    row, rank_view = slowest
    live = live_progress(rank_view, now)
    return {
        "rank": row.get("rank"),
        "host": row.get("host"),
        "current_step": live.step.get("name") if live.step else None,
        "step_progress": live.step.get("progress") if live.step else None,
        "eta_s": None if live.eta is None else live.eta.remaining_s,
    }


def slowest_rank_view(view: RunView) -> tuple[dict[str, Any], RunView] | None:
    """A live job's slowest rank (its row) and its own record as a view: its step
    line and ETA are the job's (``None`` for a run that is not a live job's)."""
    row = slowest_rank(view.doc) if view.status in LIVE else None
    if row is None:
        return None
    if row.get("rank") == 0:
        return row, view
    doc = rank_doc(view.path, int(row["rank"]))
    if doc is None:
        return None
    inference = Inference(str(row.get("status")), row.get("reason"), True)
    return row, RunView(view.path, doc, inference, run_now=view.run_now)


def status_lines(view: RunView, now: float | None = None) -> list[str]:
    """Human lines: the same step line the run itself prints, plus any warning; for a
    job, its slowest rank's (a job finishes when its slowest rank does)."""
    doc = view.doc
    head = f"{view.run_id}  {printable(doc.get('name'))}  {view.status}"
    slowest = slowest_rank_view(view)
    if slowest is not None:
        row, rank_view = slowest
        where = f"rank {row.get('rank')} on {printable(row.get('host') or '?')}"
        return [
            head,
            f"{live_line(rank_view, now)}  [slowest: {where}]",
            f"{ranks_text(doc['job'])}: {counts_text(doc['job'])}",
            *_live_notes(view),
        ]
    if view.status in LIVE:
        return [head, live_line(view, now), *_live_notes(view)]
    if view.status == "aborted":
        last = printable(doc.get("last_completed_step") or "none")
        lines = [head, f"aborted: {printable(view.inference.reason)}; last completed step: {last}"]
    else:
        lines = [head, run_end_line(doc)]
    if job_counts(doc) is not None:
        lines.append(f"{ranks_text(doc['job'])}: {counts_text(doc['job'])}")
    return lines


def _live_notes(view: RunView) -> list[str]:
    """Below a live run's step line: the machine's resources, and why it is stuck."""
    notes = [resources_line(view)]
    if view.status == "stuck":
        notes.append(f"STUCK: {printable(view.inference.reason)}")
    return [n for n in notes if n]


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
