"""A step's item rate: right from the first items, steady later, never 0 while items move.

- Until :data:`WARMUP_S` of the step have passed (or fewer than three readings
  exist), the rate is the step's count over its elapsed time: the only honest figure
  early, and exact for a steady step.
- After that, it is the count over the last :data:`WINDOW_S` of readings: it follows
  a step that speeds up or slows down within about that time, without the lag of an
  exponential average that starts from zero.
- When no item arrived within the window (one epoch a minute), it falls back to the
  time per item so far: slow is not stopped.

Early and slow, the time per item is measured up to the reading where the count last
changed, not up to now (one epoch done 3 s into a 1.5 s/epoch step is 1.5 s/epoch,
not 3), unless the item under way has already taken longer than that: then it is at
least as slow as the item under way.

A rate below one item a second reads as time per item (``42 s/epoch``,
``3.1 min/item``), faster ones as items per second in the step's unit
(``812 env steps/s``): see :func:`rate_text`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from ..timeparse import parse_timestamp

WARMUP_S = 5.0
WINDOW_S = 15.0
MAX_READINGS = 256


class RateEstimator:
    """Readings ``(t, completed)`` of one step, oldest first; :meth:`rate` in items/s."""

    __slots__ = ("_changed_at", "_readings", "started_at")

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self._readings: deque[tuple[float, int]] = deque(maxlen=MAX_READINGS)
        self._changed_at: float | None = None  # first reading of the current count

    def observe(self, t: float, completed: int) -> None:
        readings = self._readings
        if not readings or completed != readings[-1][1]:
            self._changed_at = t
        if readings and t <= readings[-1][0]:
            if completed != readings[-1][1]:  # the same instant, a newer count
                readings[-1] = (readings[-1][0], completed)
            return
        readings.append((t, completed))
        while len(readings) > 2 and readings[1][0] < t - WINDOW_S:
            readings.popleft()  # keep one reading at or before the window's start

    def rate(self) -> float | None:
        """Items per second now, or None before the first item."""
        if not self._readings:
            return None
        t, completed = self._readings[-1]
        if completed <= 0:
            return None
        elapsed = t - self.started_at
        average = self._per_item_rate(t, completed)
        if elapsed < WARMUP_S or len(self._readings) < 3:
            return average
        start_t, start_count = self._readings[0]
        if completed > start_count and t > start_t:
            return (completed - start_count) / (t - start_t)
        return average

    def _per_item_rate(self, now: float, completed: int) -> float | None:
        return counted_rate(self.started_at, self._changed_at, now, completed)


def counted_rate(
    started_at: float, changed_at: float | None, now: float, completed: int
) -> float | None:
    """Items per second from a count alone: the time per item up to when the count
    last changed (``changed_at``, e.g. a manifest's ``progress.updated_at``), or the
    time the item under way has taken, if longer. What file readers show, and the
    live estimate's early and slow mode."""
    if completed <= 0:
        return None
    changed = changed_at if changed_at is not None and changed_at <= now else now
    per_item = max((changed - started_at) / completed, now - changed)
    return 1 / per_item if per_item > 0 else None


def singular(unit: str) -> str:
    """``epochs`` -> ``epoch``, ``batches`` -> ``batch``, ``env steps`` -> ``env step``."""
    if unit.endswith(("ches", "shes", "sses", "xes")):
        return unit[:-2]
    if unit.endswith("s") and not unit.endswith("ss"):
        return unit[:-1]
    return unit


def rate_text(rate: float | None, unit: str | None = None) -> str:
    """``812 env steps/s``, ``2.5 batches/s``, ``42 s/epoch``, ``3.1 min/item``; ``""``
    when there is no rate."""
    if rate is None or rate <= 0:
        return ""
    if rate >= 1:
        shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"
        return f"{shown} {unit or 'items'}/s"
    each = singular(unit) if unit else "item"
    seconds = 1 / rate
    if seconds < 60:
        return f"{seconds:.0f} s/{each}" if seconds >= 10 else f"{seconds:.1f} s/{each}"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min/{each}"
    return f"{seconds / 3600:.1f} h/{each}"


def read_rate(step: Mapping[str, Any], doc: Mapping[str, Any], now: float) -> float | None:
    """A running step's rate as a reader of the manifest ``doc`` tells it at ``now``:
    the count, when it last changed (``progress.updated_at``), and the time the file
    was written (``heartbeat_at``): a file a few heartbeats old must not read as an
    item that has been under way that long."""
    started = parse_timestamp(step.get("started_at"))
    progress = step.get("progress") or {}
    completed = progress.get("completed")
    if started is None or not isinstance(completed, int) or isinstance(completed, bool):
        return None
    written = parse_timestamp(doc.get("heartbeat_at"))
    at = min(now, written) if written is not None and written > started else now
    if at <= started:
        return None
    return counted_rate(started, parse_timestamp(progress.get("updated_at")), at, completed)
