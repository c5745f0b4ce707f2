"""Metric series (``run.log()``) on disk: ``metrics.jsonl`` and the manifest's summary.

``metrics.jsonl`` holds one JSON line per key per batch the writer flushes::

    {"key": "loss", "stage": "Train", "step": [0, 1, 2], "value": [0.9, 0.7, null],
     "time": [1796140000.125, 1796140000.5, 1796140001.0]}

``step`` is the user's step (or, where none was given, one more than the key's last
step); ``value`` is ``null`` where the logged value was NaN or infinite; ``time`` is
the run's clock in seconds since the epoch; ``stage`` is the pipeline step that
logged through ``step.log()`` (absent for ``run.log()``); ``source`` names the other
tool's files a key was read from (``"tensorboard:runs/exp1"``, ``"wandb:wandb/offline-run-..."``:
see :mod:`otel_tracker.launch.artifact_content`; absent for what the run logged). Lines are appended whole;
a line torn by a crash is skipped by readers and cut off before the next append.

The manifest's ``metrics`` section keeps, per key, what a listing or a report needs
without reading the file: :class:`KeySummary`.
"""

from __future__ import annotations

import math
from typing import Any

from .jsonfile import MAX_MAGNITUDE

METRICS_NAME = "metrics.jsonl"
DIRECTIONS = ("max", "min")
CURVE_POINTS = 64  # points of a key's curve kept in the manifest (for sparklines)


class KeySummary:
    """Count, first and last step, last, min, max and best (by the key's declared
    direction) of one key, and an evenly thinned curve of at most
    :data:`CURVE_POINTS` ``[step, value]`` points: when full, every other point is
    dropped and only every second later point is kept, so the curve spans the whole
    series at one stride, and ends at the last point."""

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
        "last_finite",
        "last_step",
        "max",
        "max_step",
        "min",
        "min_step",
        "nonfinite",
        "source",
    )

    def __init__(self) -> None:
        self.count = 0
        self.nonfinite = 0
        self.first_step: int | None = None
        self.last_step: int | None = None
        self.last: float | None = None
        self.last_finite: float | None = None
        self.min: float | None = None
        self.max: float | None = None
        self.min_step: int | None = None
        self.max_step: int | None = None
        self.direction: str | None = None
        self.best: float | None = None
        self.best_step: int | None = None
        self.source: str | None = None  # the other tool's files it was read from
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
            self.last_finite = value
            if self.min is None or value < self.min:
                self.min, self.min_step = value, step
            if self.max is None or value > self.max:
                self.max, self.max_step = value, step
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
        if direction == "max":
            self.best, self.best_step = self.max, self.max_step
        else:
            self.best, self.best_step = self.min, self.min_step

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.direction == "max" else value < self.best

    def _curve_to_last(self) -> list[list[float]]:
        """The thinned curve, ending at the last point logged (so that it spans the
        whole series, whatever the stride left out at its end)."""
        curve = [list(point) for point in self._curve]
        if self.last_step is not None and (not curve or curve[-1][0] != self.last_step):
            if len(curve) == CURVE_POINTS:
                curve.pop()
            curve.append([self.last_step, self.last])  # type: ignore[list-item]
        return curve

    def to_dict(self) -> dict[str, Any]:
        source = {"source": self.source} if self.source is not None else {}
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
            "curve": self._curve_to_last(),
            **source,
        }


def finite_or_none(value: float) -> float | None:
    """A value as ``metrics.jsonl`` and the manifest keep it: ``None`` for NaN and
    infinities (JSON has none) and beyond ±1e18 (what every reader accepts; an
    exploding gradient norm is recorded as a gap, counted, not as a file no reader
    can open)."""
    return value if math.isfinite(value) and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE else None


def merged_summary(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One key's summary over two processes that both logged it (a run and the
    parts that joined it): counts add up, min/max/best are over both, ``last`` is
    the one at the later step, and the curve is both curves, thinned."""
    count = int(first["count"]) + int(second["count"])
    later = second if (second.get("last_step") or 0) >= (first.get("last_step") or 0) else first
    direction = first.get("direction") or second.get("direction")
    merged = {
        "count": count,
        "first_step": _extreme(min, first.get("first_step"), second.get("first_step")),
        "last_step": _extreme(max, first.get("last_step"), second.get("last_step")),
        "last": later.get("last"),
        "min": _extreme(min, first.get("min"), second.get("min")),
        "max": _extreme(max, first.get("max"), second.get("max")),
        "direction": direction,
        "best": None,
        "best_step": None,
        "nonfinite": int(first.get("nonfinite") or 0) + int(second.get("nonfinite") or 0),
    }
    bests = [s for s in (first, second) if s.get("best") is not None]
    if direction and bests:
        pick = max if direction == "max" else min
        best = pick(bests, key=lambda s: s["best"])
        merged["best"], merged["best_step"] = best["best"], best.get("best_step")
    curve = sorted(
        [p for p in [*first.get("curve", []), *second.get("curve", [])] if isinstance(p, list)],
        key=lambda p: p[0] if isinstance(p[0], (int, float)) else 0,
    )
    stride = max(1, -(-len(curve) // CURVE_POINTS))
    merged["curve"] = curve[::stride]
    source = first.get("source") or second.get("source")
    if isinstance(source, str):
        merged["source"] = source
    return merged


def _extreme(pick: Any, a: Any, b: Any) -> Any:
    present = [v for v in (a, b) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return pick(present) if present else None
