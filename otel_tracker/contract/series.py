"""Metric series (``run.log()``) on disk: ``metrics.jsonl`` and the manifest's summary.

``metrics.jsonl`` holds one JSON line per key per batch the writer flushes::

    {"key": "loss", "stage": "Train", "step": [0, 1, 2], "value": [0.9, 0.7, null],
     "time": [1796140000.125, 1796140000.5, 1796140001.0]}

``step`` is the user's step (or, where none was given, one more than the key's last
step); ``value`` is ``null`` where the logged value was NaN or infinite; ``time`` is
the run's clock in seconds since the epoch; ``stage`` is the pipeline step that
logged through ``step.log()`` (absent for ``run.log()``). Lines are appended whole;
a line torn by a crash is skipped by readers and cut off before the next append.

The manifest's ``metrics`` section keeps, per key, what a listing or a report needs
without reading the file: :class:`KeySummary`.
"""

from __future__ import annotations

import math
from typing import Any

METRICS_NAME = "metrics.jsonl"
DIRECTIONS = ("max", "min")
CURVE_POINTS = 64  # points of a key's curve kept in the manifest (for sparklines)


class KeySummary:
    """Count, first and last step, last, min, max and best (by the key's declared
    direction) of one key, and an evenly thinned curve of at most
    :data:`CURVE_POINTS` ``[step, value]`` points: when full, every other point is
    dropped and only every second later point is kept, so the curve always spans
    the whole series at one stride."""

    __slots__ = (
        "_curve",
        "_seen",
        "_stride",
        "best",
        "best_step",
        "count",
        "direction",
        "first_step",
        "last",
        "last_step",
        "max",
        "min",
        "nonfinite",
    )

    def __init__(self) -> None:
        self.count = 0
        self.nonfinite = 0
        self.first_step: int | None = None
        self.last_step: int | None = None
        self.last: float | None = None
        self.min: float | None = None
        self.max: float | None = None
        self.direction: str | None = None
        self.best: float | None = None
        self.best_step: int | None = None
        self._curve: list[list[float]] = []
        self._stride = 1
        self._seen = 0

    def add(self, step: int, value: float | None) -> None:
        """One point; ``value`` ``None`` for a NaN or infinite one."""
        self.count += 1
        if self.first_step is None:
            self.first_step = step
        self.last_step = step
        self.last = value
        if value is None:
            self.nonfinite += 1
        else:
            if self.min is None or value < self.min:
                self.min = value
            if self.max is None or value > self.max:
                self.max = value
            if self.direction is not None and self._better(value):
                self.best, self.best_step = value, step
        if self._seen % self._stride == 0:
            if len(self._curve) == CURVE_POINTS:
                del self._curve[1::2]
                self._stride *= 2
            if self._seen % self._stride == 0:
                self._curve.append([step, value])  # type: ignore[list-item]
        self._seen += 1

    def declare(self, direction: str) -> None:
        """Which way is better; the best so far is the min or max seen."""
        if direction == self.direction:
            return
        self.direction = direction
        self.best = self.max if direction == "max" else self.min
        self.best_step = None  # known again from the next better point

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.direction == "max" else value < self.best

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_step": self.first_step,
            "last_step": self.last_step,
            "last": self.last,
            "min": self.min,
            "max": self.max,
            "direction": self.direction,
            "best": self.best,
            "best_step": self.best_step,
            "nonfinite": self.nonfinite,
            "curve": [list(point) for point in self._curve],
        }


def finite_or_none(value: float) -> float | None:
    """A value as ``metrics.jsonl`` and the manifest keep it (JSON has no NaN)."""
    return value if math.isfinite(value) else None
