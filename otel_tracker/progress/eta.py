"""The ETA model: history medians, in-run correction, observed rate within a step.

Pure functions over plain data, shared by the live reporter (inside the run) and
``otel-tracker status``/``watch`` (from the files alone), so both say the same.

1. Each step's expected duration is the median of the same step in earlier
   completed runs of the same pipeline (name and scenario) under the same root,
   else the author's estimate, else unknown.
2. The ratio of observed to expected time over the steps done so far scales
   every remaining step (a slower machine is slower everywhere).
3. In a step with known progress, the observed rate predicts the remainder,
   trusted more as the step advances (blended with the scaled expectation).
4. Anything unknown makes the estimate a lower bound (``ETA ≥ 4m``) or unknown
   (``ETA ?``), never a confident wrong number.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..timeparse import format_duration, parse_timestamp
from .rate import read_rate

HISTORY_RUNS = 20
# The in-run correction is clamped: one odd step must not multiply the rest by 50.
MIN_CORRECTION, MAX_CORRECTION = 0.2, 5.0


@dataclass(frozen=True)
class StepTiming:
    """What the model needs to know about one step."""

    name: str
    status: str
    expected_s: float | None = None
    actual_s: float | None = None  # duration if finished, elapsed if running
    completed: int = 0
    total: int | None = None
    rate: float | None = None  # items per second, for the running step
    source: str | None = None  # where expected_s comes from: "history" or "declared"


@dataclass(frozen=True)
class Eta:
    """Estimated time left for the whole run."""

    remaining_s: float | None
    at_least: bool = False
    correction: float = 1.0
    unknown_steps: int = 0  # steps left whose time nothing tells (no history, no rate)
    sources: tuple[str, ...] = ()  # what the known part came from (see SOURCES)

    def text(self) -> str:
        unknown = ""
        if self.unknown_steps:
            plural = "s" if self.unknown_steps != 1 else ""
            unknown = f" ({self.unknown_steps} step{plural} without history)"
        if self.remaining_s is None:
            return f"ETA ?{unknown}"
        shown = format_duration(self.remaining_s, compact=True)
        if not self.at_least:
            return f"ETA {shown}"
        # "at least 0s" says nothing: what is known of the rest rounds to nothing
        if shown == format_duration(0, compact=True):
            return f"ETA ?{unknown}"
        return f"ETA ≥ {shown}{unknown}"

    @property
    def source(self) -> str:
        """``history``, ``in-step rate``, ``declared`` (joined by ``+``), or ``none``."""
        return "+".join(self.sources) or "none"


def correction_factor(steps: Sequence[StepTiming]) -> float:
    """Observed / expected time over the completed steps that have an expectation."""
    done = [s for s in steps if s.status == "completed" and s.expected_s and s.actual_s is not None]
    expected = sum(s.expected_s for s in done)  # type: ignore[misc]
    if not done or expected <= 0:
        return 1.0
    ratio = sum(s.actual_s for s in done) / expected  # type: ignore[misc]
    return min(MAX_CORRECTION, max(MIN_CORRECTION, ratio))


SOURCES = ("history", "declared", "in-step rate")


def _running_remaining(step: StepTiming, k: float) -> float | None:
    by_expected = None
    if step.expected_s:
        scaled = k * step.expected_s
        elapsed = step.actual_s or 0.0
        by_expected = None if elapsed > scaled else scaled - elapsed  # overrun: we don't know
    by_rate = None
    if step.total and step.rate and step.rate > 0:
        by_rate = max(step.total - step.completed, 0) / step.rate
    if by_rate is not None and step.expected_s:
        weight = min(1.0, max(0.0, step.completed / step.total))  # type: ignore[operator]
        return weight * by_rate + (1 - weight) * (
            by_expected if by_expected is not None else by_rate
        )
    return by_rate if by_rate is not None else by_expected


def estimate(steps: Sequence[StepTiming]) -> Eta:
    """The ETA of a run given its steps in order: the known part, and how many steps
    nothing is known of (then the ETA is a lower bound that says so)."""
    k = correction_factor(steps)
    remaining = 0.0
    unknown = 0
    at_least = False
    used: set[str] = set()
    for step in steps:
        if step.status == "running":
            part = _running_remaining(step, k)
            if part is not None and step.total and step.rate:
                used.add("in-step rate")
        elif step.status == "pending":
            part = k * step.expected_s if step.expected_s else None
        else:
            continue
        if part is None:
            overran = step.expected_s is not None  # known, but taking longer: "≥", no count
            unknown += 0 if overran else 1
            at_least = True
            continue
        remaining += part
        if step.expected_s:
            used.add(step.source or "history")
    sources = tuple(s for s in SOURCES if s in used)
    if at_least:
        return Eta(
            remaining if remaining > 0 else None,
            at_least=True,
            correction=k,
            unknown_steps=unknown,
            sources=sources,
        )
    return Eta(remaining, correction=k, sources=sources)


def step_durations(docs: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Each step name's durations over the completed steps of completed runs."""
    durations: dict[str, list[float]] = {}
    for doc in docs:
        if doc.get("status") != "completed":
            continue
        for step in doc.get("steps", []):
            d = step.get("duration_s")
            if step.get("status") == "completed" and isinstance(d, (int, float)) and d >= 0:
                durations.setdefault(str(step.get("name")), []).append(float(d))
    return durations


def history_medians(docs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Median duration of each step name over completed steps of completed runs."""
    return {name: statistics.median(v) for name, v in step_durations(docs).items()}


def per_item_medians(docs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Median seconds per item of each step name, over the completed steps of
    completed runs that counted items: a step that declares its total is expected
    to take that many items' worth, not the same time as a run of another size."""
    per_item: dict[str, list[float]] = {}
    for doc in docs:
        if doc.get("status") != "completed":
            continue
        for step in doc.get("steps", []):
            seconds = step.get("duration_s")
            items = (step.get("progress") or {}).get("completed")
            if (
                step.get("status") == "completed"
                and isinstance(seconds, (int, float))
                and seconds >= 0
                and isinstance(items, int)
                and items > 0
            ):
                per_item.setdefault(str(step.get("name")), []).append(seconds / items)
    return {name: statistics.median(v) for name, v in per_item.items()}


@dataclass(frozen=True)
class StepHistory:
    """What a pipeline's earlier runs say of its steps (see :func:`history_medians`)."""

    durations: dict[str, float] = field(default_factory=dict)
    per_item: dict[str, float] = field(default_factory=dict)
    runs: int = 0


def step_history(docs: list[Mapping[str, Any]]) -> StepHistory:
    return StepHistory(history_medians(docs), per_item_medians(docs), len(docs))


def timings_from_manifest(
    doc: Mapping[str, Any],
    now: float,
    rates: Mapping[int, float] | None = None,
    cache: dict[int, tuple[Any, StepTiming]] | None = None,
) -> list[StepTiming]:
    """Step timings as read from a manifest at time ``now`` (Unix seconds).

    Without a live rate, a running step's rate is its average so far. With a
    ``cache`` (a writer's, whose step dicts are never changed in place), a step
    that is not running and is the same dict as last time keeps its timing.
    """
    timings = []
    for position, step in enumerate(doc.get("steps", [])):
        status = str(step.get("status"))
        if cache is not None and status != "running":
            hit = cache.get(position)
            if hit is not None and hit[0] is step:
                timings.append(hit[1])
                continue
        progress = step.get("progress") or {}
        actual = step.get("duration_s")
        rate = None
        if status == "running":
            started = parse_timestamp(step.get("started_at"))
            actual = max(0.0, now - started) if started is not None else None
            completed = progress.get("completed") or 0
            rate = (rates or {}).get(step.get("index", -1))
            if rate is None and completed:
                rate = read_rate(step, doc, now)
        timing = StepTiming(
            name=str(step.get("name")),
            status=status,
            source="declared" if step.get("expected_source") == "author" else "history",
            expected_s=step.get("expected_duration_s"),
            actual_s=actual,
            completed=int(progress.get("completed") or 0),
            total=progress.get("total"),
            rate=rate,
        )
        if cache is not None and status != "running":
            cache[position] = (step, timing)
        timings.append(timing)
    return timings
