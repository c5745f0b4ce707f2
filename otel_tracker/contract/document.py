"""The manifest document: one run's canonical record, as written to ``manifest.json``.

Pure data and no I/O: the span processor fills it from span lifecycle events,
the run adds what spans do not carry (declared steps, params, progress), and
:mod:`otel_tracker.contract.atomic` writes it. The published JSON Schema is
``otel_tracker/schema/manifest.schema.json``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import iso_utc
from ..config import DEFAULT_STALE_AFTER_S, DEFAULT_STUCK_AFTER_S
from ..redact.text import redact_text
from ..values import clean_text, item_count
from .atomic import FragmentEncoder
from .parts import merge_run_parts

SCHEMA_VERSION = 2  # the newest a reader understands
# A rank of a distributed job writes 2: its ``status`` is that rank's, not the job's,
# so a reader that knows no ``job`` section must refuse it, not show it as the run's.
# Every other record is still written as 1, which is what it always was.
JOB_SCHEMA_VERSION = 2
PLAIN_SCHEMA_VERSION = 1
RUN_STATUSES = ("running", "completed", "failed", "cancelled")
STEP_STATUSES = ("pending", "running", "completed", "failed", "skipped")
MAX_TRACEBACK_CHARS = 4000
MAX_TRACEBACK_LINES = 30
MAX_SCORE_HISTORY = 1000
SCORE_DIRECTIONS = ("max", "min")

ProgressSnapshot = Mapping[int, tuple[int, "int | None", "str | None"]]


def manifest_encoder() -> FragmentEncoder:
    """The manifest's encoder: steps and the ETA log are reused item by item."""
    return FragmentEncoder(("steps",), ("eta", "log"), ("score_history",))


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of plain data (what :func:`otel_tracker.redact.objects.redact_value`
    makes of params): non-finite floats and anything else that is not JSON become
    text, and text that cannot be UTF-8 is cleaned (see ``values.clean_text``)."""
    if depth > 64:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    return clean_text(str(value))


def short_traceback(stacktrace: str | None) -> str | None:
    """The last lines of a traceback, bounded in size."""
    if not stacktrace:
        return None
    lines = stacktrace.rstrip().splitlines()
    if len(lines) > MAX_TRACEBACK_LINES:
        lines = ["Traceback (most recent call last, abridged):", *lines[-MAX_TRACEBACK_LINES:]]
    text = "\n".join(lines)
    return text[-MAX_TRACEBACK_CHARS:]


def _seconds(start_ns: int | None, end_ns: int | None) -> float | None:
    if start_ns is None or end_ns is None:
        return None
    return round(max(0, end_ns - start_ns) / 1e9, 6)


@dataclass
class StepRecord:
    """One enabled, skipped or pending step."""

    index: int
    name: str
    status: str = "pending"
    declared: bool = False
    started_ns: int | None = None
    ended_ns: int | None = None
    span_id: str | None = None
    skip_reason: str | None = None
    error: dict[str, Any] | None = None
    expected_duration_s: float | None = None
    expected_source: str | None = None
    # seconds per item in the pipeline's history: a declared total scales it
    per_item_s: float | None = field(default=None, repr=False, compare=False)
    completed: int = 0
    progress_changed_ns: int | None = None
    total: int | None = None
    unit: str | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, Any] | None = None
    # a handle started (or skipped) it: handles of one name made before either
    # started must not share it (see StepSpans.start)
    claimed: bool = field(default=False, repr=False, compare=False)
    # A finished step never changes, so its dict is built once: a 500-step
    # manifest must not re-format 500 steps on every write.
    _final: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    _pending: tuple[tuple[Any, ...], dict[str, Any]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def author_estimate(self) -> float | None:
        """The expected duration the pipeline's author gave, if that is what it is."""
        return self.expected_duration_s if self.expected_source == "author" else None

    def invalidate(self) -> None:
        """Forget the cached dict (after a late change such as a new artifact)."""
        self._final = None
        self._pending = None

    def update_progress(
        self, completed: int, total: int | None, unit: str | None, now_ns: int | None
    ) -> None:
        """Take the live counters; stamp the time when ``completed`` moved."""
        completed = item_count(completed)
        if completed != self.completed:
            self.progress_changed_ns = now_ns
        if (
            total is not None
            and total != self.total
            and self.per_item_s is not None
            and self.expected_source in ("history", "history-items")
        ):
            # this run's size, at the history's pace: not a run of another size's time
            self.expected_duration_s = round(self.per_item_s * total, 6)
            self.expected_source = "history-items"
        self.completed, self.total, self.unit = completed, total, unit

    def to_dict(self, now_ns: int | None) -> dict[str, Any]:
        if self._final is not None:
            return self._final
        if self.status == "pending":
            # unchanged until it starts: the same dict while nothing it shows moved
            key = (
                self.declared,
                self.expected_duration_s,
                self.expected_source,
                self.completed,
                self.total,
                self.unit,
                self.progress_changed_ns,
                self.skip_reason,
                len(self.artifacts),
            )
            if self._pending is None or self._pending[0] != key:
                self._pending = (key, self._build(now_ns))
            return self._pending[1]
        built = self._build(now_ns)
        if self.status in ("completed", "failed", "skipped") and self.ended_ns is not None:
            self._final = built
        return built

    def _build(self, now_ns: int | None) -> dict[str, Any]:
        end = self.ended_ns if self.ended_ns is not None else now_ns
        elapsed = _seconds(self.started_ns, end) if self.status == "running" else None
        return {
            "index": self.index,
            "name": self.name,
            "status": self.status,
            "declared": self.declared,
            "started_at": iso_utc(self.started_ns),
            "ended_at": iso_utc(self.ended_ns),
            "duration_s": _seconds(self.started_ns, self.ended_ns),
            "elapsed_s": elapsed,
            "expected_duration_s": self.expected_duration_s,
            "expected_source": self.expected_source,
            "progress": {
                "completed": self.completed,
                "total": self.total,
                "unit": self.unit,
                # when a write last saw the counter move: readers tell "stuck" from it
                "updated_at": iso_utc(self.progress_changed_ns),
            },
            "skip_reason": self.skip_reason,
            "error": self.error,
            "span_id": self.span_id,
            "artifacts": list(self.artifacts),
            "resources": self.resources,
        }


@dataclass
class RunRecord:
    """The whole run; thread-safe through :attr:`lock`."""

    run_id: str
    name: str
    scenario: str | None
    params: dict[str, Any]
    process: dict[str, Any]
    environment: dict[str, Any]
    git: dict[str, Any] | None
    tracker: dict[str, Any]
    run_dir: str | None
    status: str = "running"
    started_ns: int | None = None
    ended_ns: int | None = None
    heartbeat_ns: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    error: dict[str, Any] | None = None
    trace: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kind: str | None = None
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    score_history: list[dict[str, Any]] = field(default_factory=list)
    eta_log: list[dict[str, Any]] = field(default_factory=list)
    # median step durations of earlier completed runs of this pipeline
    history: dict[str, float] = field(default_factory=dict)
    history_runs: int = 0
    history_per_item: dict[str, float] = field(default_factory=dict)  # seconds per item
    history_key: dict[str, Any] | None = None  # key_params' values and their digest
    # () -> the telemetry section (the resource sampler's summary), if sampling
    telemetry: Any = None
    metrics: Any = None  # () -> the metric series' summary (record/series.py), or None
    user_metrics: Any = None  # () -> run.add_count/set_gauge's values, or None
    # a process that joined a launcher's run: its part section (see parts.py)
    part: dict[str, Any] | None = None
    # a rank of a distributed job: its job section (record/job.py)
    job: dict[str, Any] | None = None
    # the run's own directory: its parts are merged into every write
    parts_from: Path | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def _expect(self, step: StepRecord, author_estimate: float | None) -> None:
        # history first, then the author's estimate, else unknown
        if step.name in self.history:
            step.expected_duration_s, step.expected_source = self.history[step.name], "history"
            step.per_item_s = self.history_per_item.get(step.name)
        elif author_estimate is not None:
            step.expected_duration_s, step.expected_source = float(author_estimate), "author"

    def declare_steps(
        self, names: Iterable[str], expected: Mapping[str, float] | None = None
    ) -> None:
        """Add declared steps in order, all ``pending``."""
        expected = expected or {}
        with self.lock:
            for name in names:
                step = StepRecord(index=len(self.steps), name=name, declared=True)
                self._expect(step, expected.get(name))
                self.steps.append(step)

    def claim_step(self, name: str, expected_duration_s: float | None = None) -> StepRecord:
        """The first pending step of this name no handle has started, or a new one
        appended at the end."""
        with self.lock:
            for step in self.steps:
                if step.name == name and step.status == "pending" and not step.claimed:
                    if expected_duration_s is not None and step.expected_source not in (
                        "history",
                        "history-items",
                    ):
                        self._expect(step, expected_duration_s)
                    return step
            step = StepRecord(index=len(self.steps), name=name)
            self._expect(step, expected_duration_s)
            self.steps.append(step)
            return step

    def score_direction(self, name: str) -> str:
        """The direction a score was given, else ``"max"``."""
        with self.lock:
            return str(self.scores.get(name, {}).get("direction", "max"))

    def log_scores(
        self,
        values: Mapping[str, float],
        directions: Mapping[str, str],
        at: str | None,
        epoch: int | None,
    ) -> None:
        """Update latest/best of each score; keep a bounded history."""
        with self.lock:
            for name, value in values.items():
                direction = directions.get(name) or self.scores.get(name, {}).get(
                    "direction", "max"
                )
                score = self.scores.setdefault(
                    name, {"latest": None, "best": None, "direction": direction, "count": 0}
                )
                score["direction"] = direction
                score["latest"] = value
                score["latest_at"] = at
                score["count"] += 1
                best = score["best"]
                if best is None or (value > best if direction == "max" else value < best):
                    score["best"], score["best_at"], score["best_epoch"] = value, at, epoch
            self.score_history.append({"at": at, "epoch": epoch, "values": dict(values)})
            del self.score_history[:-MAX_SCORE_HISTORY]

    def warn(self, message: str) -> None:
        """Record a telemetry problem for readers (each message once, redacted: it may
        quote an exception or an endpoint)."""
        message = redact_text(message)
        with self.lock:
            if message not in self.warnings:
                self.warnings.append(message)

    def to_dict(
        self,
        now_ns: int | None = None,
        progress: Callable[[], ProgressSnapshot] | None = None,
        with_telemetry: bool = True,
    ) -> dict[str, Any]:
        """The run as plain data, no I/O (``with_telemetry=False``: without the
        telemetry section, for the sampler itself, which must not build it per sample).
        What is written adds the joined children's parts: :meth:`merge_parts`."""
        with self.lock:
            if progress is not None:
                for index, (completed, total, unit) in progress().items():
                    if 0 <= index < len(self.steps):
                        self.steps[index].update_progress(completed, total, unit, now_ns)
            steps = [s.to_dict(now_ns) for s in self.steps]
            done = [s for s in self.steps if s.status == "completed" and s.ended_ns is not None]
            last_done = max(done, key=lambda s: (s.ended_ns, s.index), default=None)
            running = [s for s in self.steps if s.status == "running"]
            current = max(running, key=lambda s: (s.started_ns or 0, s.index), default=None)
            end = self.ended_ns if self.ended_ns is not None else now_ns
            doc = {
                "schema_version": PLAIN_SCHEMA_VERSION if self.job is None else JOB_SCHEMA_VERSION,
                "run_id": self.run_id,
                "name": self.name,
                "scenario": self.scenario,
                "status": self.status,
                "started_at": iso_utc(self.started_ns),
                "ended_at": iso_utc(self.ended_ns),
                "duration_s": _seconds(self.started_ns, self.ended_ns),
                "elapsed_s": _seconds(self.started_ns, end),
                "heartbeat_at": iso_utc(self.heartbeat_ns),
                "exit_code": self.exit_code,
                "signal": self.signal,
                "error": self.error,
                "params": self.params,
                "steps_total": len(self.steps),
                "steps_enabled": sum(1 for s in self.steps if s.status != "skipped"),
                "steps_completed": len(done),
                "last_completed_step": last_done.name if last_done else None,
                "current_step": current.name if current else None,
                "steps": steps,
                "artifacts": list(self.artifacts),
                "process": self.process,
                "trace": dict(self.trace),
                "git": self.git,
                "environment": self.environment,
                "tracker": self.tracker,
                "kind": self.kind,
                "scores": {name: dict(score) for name, score in self.scores.items()},
                "score_history": list(self.score_history),
                "eta": {"history_runs": self.history_runs, "log": list(self.eta_log)},
                "telemetry": self.telemetry()
                if with_telemetry and self.telemetry is not None
                else None,
                "run_dir": self.run_dir,
                "warnings": list(self.warnings),
            }
            if with_telemetry and self.metrics is not None:
                summary = self.metrics()
                if summary is not None:
                    doc["metrics"] = summary
            if with_telemetry and self.user_metrics is not None:  # not the sampler's
                recorded = self.user_metrics()
                if recorded is not None:
                    doc["user_metrics"] = recorded
            if self.part is not None:
                doc["part"] = dict(self.part)
            if self.job is not None:
                doc["job"] = {**self.job, "host": self.process.get("host")}
            if self.history_key is not None:
                doc["history_key"] = self.history_key
            return doc

    def merge_parts(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` with the steps of the children that joined this run nested under
        their steps (reads ``parts/``: the one place a document does I/O, once per
        write); a part's problem becomes one of the run's warnings."""
        if self.parts_from is None:
            return doc
        problems = merge_run_parts(
            doc,
            self.parts_from,
            now=time.time(),
            host=self.process.get("host"),
            stale_after=DEFAULT_STALE_AFTER_S,
            stuck_after=DEFAULT_STUCK_AFTER_S,
        )
        with self.lock:
            for problem in problems:
                if problem not in self.warnings:
                    self.warnings.append(problem)
                    doc["warnings"].append(problem)
        return doc
