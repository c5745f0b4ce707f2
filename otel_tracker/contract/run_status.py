"""What a manifest's ``running`` really means: alive, ``aborted`` or ``stuck``.

Evidence, strongest first:

1. Same host, lock recorded: the live run holds an ``flock`` on ``<run>/.lock``;
   if a reader can take it, the process is gone (however it died).
2. Same host: the pid no longer exists, or belongs to a process that started at
   another time (pid reuse).
3. Any host: no heartbeat for longer than ``stale_after`` (and at least four
   heartbeat intervals).

A live run is ``stuck`` when its current step reports progress but the counter
has not moved for ``stuck_after`` (or its expected duration, if longer), or,
for a step that reports no progress, when it has run three times its expected
duration and ``stuck_after`` beyond it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..progress.stuck import stuck_reason
from ..timeparse import format_duration, parse_timestamp
from .liveness import lock_is_held

PID_START_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class Inference:
    """The status a reader should show, and why."""

    status: str
    reason: str | None
    alive: bool | None


def pid_start_time(pid: int) -> float | bool | None:
    """The start time of ``pid``; ``False`` if no such process, ``None`` if unknown."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        return None
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None


def _process_alive(
    process: Mapping[str, Any], probe: Callable[[int], float | bool | None]
) -> tuple[bool | None, str | None]:
    pid = process.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None, None
    started = probe(pid)
    if started is False:
        return False, f"process {pid} no longer exists"
    if started is None:
        return None, None
    recorded = process.get("start_time")
    if (
        isinstance(recorded, (int, float))
        and abs(float(started) - recorded) > PID_START_TOLERANCE_S
    ):
        return False, f"process {pid} is gone (its pid now belongs to another process)"
    return True, None


def run_time_now(doc: Mapping[str, Any], now: float, written_at: float | None = None) -> float:
    """A reader's ``now`` on the clock of a running run's record.

    A run's timestamps advance with its monotonic clock from the wall time at its
    start, so after the system clock is stepped a reader's ``now - started_at``
    is off by the step (negative, or a day too long). The record's last write
    (``heartbeat_at``, when ``elapsed_s`` was taken) plus the age of that write is
    not: the age is ``now`` minus the file's modification time (``written_at``,
    stamped by the same system clock as ``now``) or minus ``heartbeat_at``,
    whichever is the smaller one that is not negative.
    """
    beat = parse_timestamp(doc.get("heartbeat_at"))
    if beat is None or doc.get("status") != "running":
        return now
    ages = [
        a for a in (now - beat, None if written_at is None else now - written_at) if a is not None
    ]
    age = min((a for a in ages if a >= 0), default=0.0)
    return beat + age


def infer_status(
    doc: Mapping[str, Any],
    run_dir: Path,
    *,
    now: float,
    host: str,
    stale_after: float,
    stuck_after: float,
    pid_probe: Callable[[int], float | bool | None] = pid_start_time,
) -> Inference:
    """The effective status of a run from its manifest and the live evidence."""
    recorded = doc.get("status")
    if recorded != "running":
        return Inference(str(recorded), None, False)
    process = doc.get("process") or {}
    tracker = doc.get("tracker") or {}
    alive: bool | None = None
    reason: str | None = None
    if process.get("host") == host:
        lock_file = tracker.get("lock_file")
        if isinstance(lock_file, str) and lock_file and "/" not in lock_file:
            held = lock_is_held(run_dir / lock_file)
            if held is False:
                alive, reason = (
                    False,
                    "its process ended without finishing the record; the run lock is released",
                )
            elif held:
                alive = True
        if alive is None:
            alive, reason = _process_alive(process, pid_probe)
    if alive is None:
        beat = parse_timestamp(doc.get("heartbeat_at"))
        interval = tracker.get("heartbeat_interval_s")
        limit = max(stale_after, 4 * float(interval) if isinstance(interval, (int, float)) else 0.0)
        if beat is not None and now - beat > limit:
            alive, reason = False, f"no heartbeat for {format_duration(now - beat)}"
        else:
            alive = True if beat is not None else None
    if alive is False:
        return Inference("aborted", reason, False)
    stuck = stuck_reason(doc, now, stuck_after)
    if stuck:
        return Inference("stuck", stuck, True)
    return Inference("running", None, alive)
