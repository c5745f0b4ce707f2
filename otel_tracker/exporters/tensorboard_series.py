"""``run.log()`` series in TensorBoard: one scalar tag per key, x = the user's step.

They go to their own event file in ``<run>/tensorboard/metrics/`` (TensorBoard shows
it as the run's ``metrics`` sub-run): the main file's x is seconds since the run
started and never goes back, which a user's steps (epochs, batches) would break.
Within a tag TensorBoard keeps the points in step order (a step that goes back
replaces the tag's later points, as its own writers do).

At the run's end the HParams experiment names these tags as its metrics (group
``metrics``), beside ``run/duration_s`` and ``run/steps_completed``, so the HParams
table compares runs by their params and final values.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from .tensorboard import SERIES_GROUP, EventFile

SERIES_DIR = SERIES_GROUP
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class TensorBoardSeries:
    """A sink of :class:`~otel_tracker.record.series.MetricLog`'s flushed batches."""

    def __init__(self, logdir: Path) -> None:
        self._logdir = logdir / SERIES_DIR
        self._events: EventFile | None = None
        self._lock = threading.Lock()
        self.tags: list[str] = []  # in order of first appearance
        self.failure: str | None = None

    def __call__(
        self,
        key: str,
        stage: str | None,
        steps: list[int],
        values: list[float | None],
        times: list[float],
    ) -> None:
        with self._lock:
            events = self._open()
            if events is None:
                return
            tag = series_tag(key)
            if tag not in self.tags:
                self.tags.append(tag)
            for step, value, wall in zip(steps, values, times, strict=True):
                if value is not None:  # NaN/inf: a gap, as in the manifest
                    events.scalar_at(tag, value, step, wall)
            events.flush()
            self.failure = events.failure

    def _open(self) -> EventFile | None:
        if self._events is None and self.failure is None:
            try:
                self._events = EventFile(self._logdir)
            except Exception as exc:  # the main file warns for the mirror; note it here
                self.failure = f"{type(exc).__name__}: {exc}"
        return self._events

    def close(self) -> None:
        with self._lock:
            if self._events is not None:
                self._events.close()


def series_tag(key: str) -> str:
    """A key as a tag: as logged (``train/loss`` groups as TensorBoard users expect),
    control characters out."""
    return _CONTROL.sub("_", key) or "_"
