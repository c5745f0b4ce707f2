"""``StepSpans``: a run's steps as child spans, each started and ended once.

Steps start and end on any thread while the run may be ended from another (the
main thread, a signal handler, ``atexit``). One lock orders them: the run's end
waits for a transition under way, and a transition that comes after it finds the
run ended and does nothing. So no step starts after the run's end, none is left
running in the final manifest, and no transition rewrites it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .. import semconv
from ..clock import AnchoredClock
from ..contract.document import ProgressSnapshot, RunRecord, StepRecord
from ..redact.text import clipped, redact_text
from .step import mark_error, outcome_of
from .transition_cost import TransitionCost

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Tracer

    from .step import Step

logger = logging.getLogger(__name__)


class StepSpans:
    """The running steps of one run and their spans."""

    def __init__(self, record: RunRecord, *, anchored: AnchoredClock, owner_pid: int) -> None:
        self.record = record
        self._anchored = anchored
        self._owner_pid = owner_pid
        # transitions and the run's end; re-entrant for a span processor that ends a step
        self._lock = threading.RLock()
        self._ended = False
        self._active: dict[int, Step] = {}
        self._cost = TransitionCost()
        self._tracer: Tracer | None = None
        self._parent: Context | None = None
        self._step_ended: Callable[[int], Any] = lambda index: None

    def bind(self, tracer: Tracer, parent: Context, step_ended: Callable[[int], Any]) -> None:
        """What steps need from the run once its span exists: the tracer, the run
        span's context, and the resource summary of an ending step."""
        self._tracer, self._parent, self._step_ended = tracer, parent, step_ended

    # -- the run's end ---------------------------------------------------------------
    def close(self) -> bool:
        """Mark the run ended once a transition under way is done; ``True`` the first time."""
        with self._lock:
            if self._ended:
                return False
            self._ended = True
            return True

    @property
    def ended(self) -> bool:
        return self._ended

    @contextmanager
    def transition(self) -> Iterator[bool]:
        """Hold the run's end off while changing what it records; yields whether
        the run is still running (when not, record nothing)."""
        with self._lock:
            yield not self._ended

    def end_running(self, result: str, reason: str | None) -> None:
        """End the steps still running as the run ends ``result``."""
        reason = reason or f"run ended ({result}) while the step was running"
        if result == semconv.RESULT_SUCCESS:
            result = semconv.RESULT_FAILURE  # the run completed but the step never did
        with self._lock:
            for step in list(self._active.values()):
                self._end(step, result, None, reason)

    # -- transitions (the run holds signals during these, see signals.py) -------------
    def start(self, step: Step) -> None:
        if step._span is not None or os.getpid() != self._owner_pid or self._tracer is None:
            return
        with self._lock:
            if self._ended:
                return
            started = self._cost.clock()
            with self.record.lock:
                if step._record.claimed:  # another handle of this name started it first
                    step._record = self.record.claim_step(step.name, step._record.author_estimate)
                step._record.claimed = True
                self._active[step.index] = step
            step._span = self._tracer.start_span(
                step.name,
                context=self._parent,
                attributes=self.attributes(step._record),
                start_time=self._anchored.now_ns(),
            )
            self._count(started)

    def end(self, step: Step, error: BaseException | None) -> None:
        span = step._span
        if os.getpid() != self._owner_pid or span is None or not span.is_recording():
            return
        result, exit_code, _ = outcome_of(error)
        with self._lock:
            if self._ended:
                return  # the run's end ended it, with the run's reason
            started = self._cost.clock()
            self._end(step, result, error, None, exit_code)
            self._count(started)

    def skip(self, name: str, reason: str) -> None:
        if os.getpid() != self._owner_pid or self._tracer is None:
            return
        with self._lock:
            if self._ended:
                return
            with self.record.lock:
                record = self.record.claim_step(name)
                record.claimed = True
            now = self._anchored.now_ns()
            span = self._tracer.start_span(
                name,
                context=self._parent,
                attributes={
                    **self.attributes(record),
                    semconv.CICD_PIPELINE_TASK_RUN_RESULT: semconv.RESULT_SKIP,
                    semconv.STEP_SKIP_REASON: clipped(redact_text(str(reason))),
                },
                start_time=now,
            )
            span.end(end_time=now)

    def attributes(self, record: StepRecord) -> dict[str, Any]:
        run_id = self.record.run_id
        return {
            semconv.CICD_PIPELINE_NAME: self.record.name,
            semconv.CICD_PIPELINE_RUN_ID: run_id,
            semconv.CICD_PIPELINE_TASK_NAME: record.name,
            semconv.CICD_PIPELINE_TASK_RUN_ID: f"{run_id}/{record.index}",
            semconv.STEP_INDEX: record.index,
        }

    def _end(
        self,
        step: Step,
        result: str,
        error: BaseException | None,
        reason: str | None,
        exit_code: int | None = None,
    ) -> None:
        span = step._span
        if span is None or self._active.get(step.index) is not step:
            return
        try:
            resources = self._step_ended(step.index)  # while it is still current
        finally:
            with self.record.lock:
                self._active.pop(step.index, None)
        completed, total, unit = step.read_progress()
        step.follow(None)  # an ended step holds no reference to a bar or a trainer
        # a stopped clock (Step.stop_clock) is the end; never before the step's start
        end_ns = max(step._stopped_ns or self._anchored.now_ns(), span.start_time or 0)
        with self.record.lock:
            step._record.resources = resources
            step._record.update_progress(completed, total, unit, end_ns)
        span.set_attribute(semconv.CICD_PIPELINE_TASK_RUN_RESULT, result)
        span.set_attribute(semconv.STEP_PROGRESS_COMPLETED, step._record.completed)
        if step.total is not None:
            span.set_attribute(semconv.STEP_PROGRESS_TOTAL, step.total)
        mark_error(span, result, error, reason, exit_code)
        span.end(end_time=end_ns)

    def _count(self, started: float) -> None:
        # timed inside the lock: the share of wall time is of transitions, which
        # run one at a time, not of threads waiting for their turn
        problem = self._cost.add(self._cost.clock() - started)
        if problem:
            logger.warning("otel-tracker %s", problem)
            self.record.warn(problem)

    # -- what the sampler, the reporter and the manifest read ---------------------------
    def progress(self) -> ProgressSnapshot:
        active = list(self._active.items())
        return {i: s.read_progress() for i, s in active}

    def counters(self) -> dict[int, tuple[str, int]]:
        return {i: (s.name, s.read_progress()[0]) for i, s in list(self._active.items())}

    def current_index(self) -> int | None:
        active = list(self._active.values())
        return active[-1].index if active else None

    def current_span(self) -> Any:
        """The most recently started running step's span, if any."""
        active = list(self._active.values())
        return active[-1]._span if active else None
