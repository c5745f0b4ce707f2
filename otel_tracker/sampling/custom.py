"""Throughput from ``step.advance()`` and the author's own gauges and counters.

Both are read off the hot path: ``advance()`` stays a plain integer add, and
``run.set_gauge``/``run.add_count`` only store a number; rates are derived here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from .. import semconv
from .points import Point, Unavailable

# (step index) -> (step name, items completed)
Counters = Callable[[], Mapping[int, tuple[str, int]]]


class ThroughputSampler:
    """Items done and items per second of each running step."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._last: dict[int, tuple[float, int]] = {}

    def sample(self, now: float, unavailable: Unavailable) -> list[Point]:
        points = []
        current = self._counters()
        for index, (_name, completed) in current.items():
            points.append(Point("otel_tracker.step.items", completed, "{item}"))
            last = self._last.get(index)
            if last is not None and now > last[0]:
                rate = max(0, completed - last[1]) / (now - last[0])
                points.append(Point("otel_tracker.step.throughput", round(rate, 3), "{item}/s"))
            self._last[index] = (now, completed)
        for index in list(self._last):
            if index not in current:
                del self._last[index]
        return points


class LatestSeries:
    """The latest value of each ``run.log()`` key as the gauge ``otel_tracker.metric``
    (attribute ``otel_tracker.metric.name``), for OTLP and Prometheus; not summarised
    with the resources (the series' own summary is in the manifest)."""

    def __init__(self, latest: Callable[[], Mapping[str, float]]) -> None:
        self._latest = latest

    def sample(self, now: float, unavailable: Unavailable) -> list[Point]:
        return [
            Point(semconv.METRIC, value, "1", ((semconv.METRIC_NAME, key),), summarize=False)
            for key, value in self._latest().items()
        ]


class UserMetrics:
    """Values the author records with ``run.set_gauge`` and ``run.add_count``."""

    def __init__(self) -> None:
        self.gauges: dict[str, float] = {}
        self.counts: dict[str, float] = {}
        # worker threads add to the same total: a read-modify-write loses updates
        # without it (the sampler only reads, a copy, and needs no lock)
        self._adding = threading.Lock()

    def snapshot(self) -> dict[str, dict[str, float]] | None:
        """The manifest's ``user_metrics`` (``None`` when nothing was recorded): what
        a process that does not sample (a joined child, a rank) still records."""
        if not self.gauges and not self.counts:
            return None
        return {"counters": dict(self.counts), "gauges": dict(self.gauges)}

    def add(self, name: str, value: float) -> None:
        """Add ``value`` to the running total ``name`` (safe from any thread)."""
        with self._adding:
            self.counts[name] = self.counts.get(name, 0.0) + value

    def sample(self, now: float, unavailable: Unavailable) -> list[Point]:
        points = [
            Point(f"otel_tracker.user.{name}", value, "1")
            for name, value in list(self.gauges.items())
        ]
        points += [
            Point(f"otel_tracker.user.{name}", value, "1", monotonic=True)
            for name, value in list(self.counts.items())
        ]
        return points
