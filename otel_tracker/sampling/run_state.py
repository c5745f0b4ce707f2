"""Where the run stands, as metric points: elapsed, ETA, step position, step durations.

Dashboards fed only by metrics (Prometheus, OTLP) need what the console line
``Step 2/5 – Collect expert trajectories (ETA 11m, elapsed 2m)`` says. These points
are read from the run's manifest document at each sample; they are kept out of the
run/step aggregates (an aggregate of "elapsed" means nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .. import semconv
from ..progress.eta import estimate, timings_from_manifest
from .points import Point, Unavailable

# per finished step: a series each, so they stay out of telemetry.jsonl lines
STEP_DURATION = "otel_tracker.step.duration"
# Only the most recently finished steps report their duration: every point is
# kept in each snapshot of the ring buffer and written by every mirror at every
# sample, so all of a 500-step run's durations cost ~0.2 MiB per step over a day.
# A backend has each one from the samples while it was recent (a Prometheus
# series goes stale after that; max_over_time still finds it).
RECENT_STEP_DURATIONS = 16


class RunStateSampler:
    """Points from ``document()`` (the manifest as it would be written now)."""

    def __init__(self, document: Callable[[], Mapping[str, Any]], wall: Callable[[], float]):
        self._document = document
        self._wall = wall

    def sample(self, now: float, unavailable: Unavailable) -> list[Point]:
        doc = self._document()
        steps = doc.get("steps") or []
        enabled = [s for s in steps if s.get("status") != "skipped"]
        points = [
            _point("otel_tracker.run.elapsed", doc.get("elapsed_s") or 0.0, "s"),
            _point("otel_tracker.run.steps.completed", doc.get("steps_completed", 0), "{step}"),
            _point("otel_tracker.run.steps.enabled", len(enabled), "{step}"),
        ]
        eta = estimate(timings_from_manifest(doc, self._wall()))
        if eta.remaining_s is not None:
            points.append(_point("otel_tracker.run.eta", round(eta.remaining_s, 3), "s"))
        running = [s for s in steps if s.get("status") == "running"]
        if running:
            current = running[-1]
            number = 1 + sum(1 for s in enabled if s.get("index", 0) < current.get("index", 0))
            points.append(_point("otel_tracker.step.number", number, "{step}"))
            points.append(_point("otel_tracker.step.elapsed", current.get("elapsed_s") or 0.0, "s"))
        finished = [
            s
            for s in steps
            if s.get("status") in ("completed", "failed") and s.get("duration_s") is not None
        ]
        finished.sort(key=lambda s: str(s.get("ended_at") or ""))
        for step in finished[-RECENT_STEP_DURATIONS:]:
            points.append(
                _point(
                    STEP_DURATION,
                    step["duration_s"],
                    "s",
                    ((semconv.CICD_PIPELINE_TASK_NAME, str(step.get("name"))),),
                )
            )
        return points


def _point(name: str, value: float, unit: str, attributes: tuple = ()) -> Point:
    return Point(name, float(value), unit, attributes, summarize=False)
