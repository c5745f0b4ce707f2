"""Streaming aggregates with bounded memory: min, mean, max and p95 per series.

p95 comes from a fixed-size uniform reservoir (Vitter's algorithm R), so a
24-hour run costs the same memory as a 5-minute one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

from .points import Point

RESERVOIR = 512


class StreamingStats:
    """Count, sum, min, max and a reservoir for quantiles."""

    __slots__ = ("_rng", "count", "max", "min", "reservoir", "total")

    def __init__(self, rng: random.Random | None = None) -> None:
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.reservoir: list[float] = []
        # shared by all the series of one run: a Random is 2.5 KB, a series 4 KB
        self._rng = rng if rng is not None else random.Random(0)

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        if len(self.reservoir) < RESERVOIR:
            self.reservoir.append(value)
        else:
            j = self._rng.randrange(self.count)
            if j < RESERVOIR:
                self.reservoir[j] = value

    def quantile(self, q: float) -> float:
        ordered = sorted(self.reservoir)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def summary(self) -> dict[str, Any]:
        if not self.count:
            return {"count": 0}
        return {
            "count": self.count,
            "min": round(self.min, 6),
            "mean": round(self.total / self.count, 6),
            "max": round(self.max, 6),
            "p95": round(self.quantile(0.95), 6),
        }


class Aggregates:
    """Per-series stats for the whole run and for each step.

    A step's stats are dropped when it is closed (its summary goes into the
    manifest), so memory is bounded by the series and the steps running at
    once, not by the length of the pipeline.
    """

    def __init__(self, seed: int = 0) -> None:
        self.run: dict[str, StreamingStats] = {}
        self.steps: dict[int, dict[str, StreamingStats]] = {}
        self._rng = random.Random(seed)
        self._closed: set[int] = set()

    def add(self, points: Iterable[Point], step_index: int | None) -> None:
        points = [p for p in points if p.summarize]
        if step_index in self._closed:  # a sample taken as its step was closing
            step_index = None
        for point in points:
            self.run.setdefault(point.key, StreamingStats(self._rng)).add(point.value)
            if step_index is not None:
                self.steps.setdefault(step_index, {}).setdefault(
                    point.key, StreamingStats(self._rng)
                ).add(point.value)

    def close_step(self, index: int) -> dict[str, Any]:
        """The step's summary; its stats are dropped and later samples not counted."""
        self._closed.add(index)
        stats = self.steps.pop(index, {})
        return {key: s.summary() for key, s in sorted(stats.items())}

    def run_summary(self) -> dict[str, Any]:
        return {key: stats.summary() for key, stats in sorted(self.run.items())}

    def step_summary(self, index: int) -> dict[str, Any]:
        return {key: stats.summary() for key, stats in sorted(self.steps.get(index, {}).items())}
