"""``Step``: one step of a run, a child span; ``advance()`` is a plain integer add."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from .. import semconv
from ..contract.document import StepRecord
from ..errors import ConfigError
from ..redact.text import clipped, redact_exception, redact_text
from ..values import checked_name, is_whole, item_count
from . import current
from .series import NO_VALUE

if TYPE_CHECKING:
    from .run import Run

logger = logging.getLogger(__name__)


# An exception leaving a step or run, mapped to (result, exit code, signal name).
Outcome = tuple[str, "int | None", "str | None"]


def outcome_of(exc: BaseException | None) -> Outcome:
    """How an exception (or its absence) ends a run or a step."""
    if exc is None:
        return semconv.RESULT_SUCCESS, 0, None
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None or code == 0:
            return semconv.RESULT_SUCCESS, 0, None
        return semconv.RESULT_FAILURE, code if isinstance(code, int) else 1, None
    if isinstance(exc, KeyboardInterrupt):
        return semconv.RESULT_CANCELLATION, 130, "SIGINT"
    if isinstance(exc, TimeoutError):
        return semconv.RESULT_TIMEOUT, None, None
    return semconv.RESULT_FAILURE, None, None


class Step:
    """One step of a run. ``advance()`` is the hot path: a plain integer add."""

    __slots__ = (
        "_record",
        "_run",
        "_source",
        "_span",
        "_stopped_ns",
        "_token",
        "completed",
        "total",
        "unit",
    )

    def __init__(self, run: Run, record: StepRecord, total: int | None, unit: str | None) -> None:
        self._run = run
        self._record = record
        self._span: Any = None
        self._token: Any = None
        self._source: Callable[[], tuple[float, float | None] | None] | None = None
        self._stopped_ns: int | None = None
        self.completed = 0
        self.total = total
        self.unit = unit

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def index(self) -> int:
        return self._record.index

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done (env steps, batches, files...)."""
        self.completed += n

    def log(
        self,
        values: Mapping[str, Any] | str,
        value: Any = NO_VALUE,
        *,
        step: int | None = None,
        direction: Mapping[str, str] | None = None,
    ) -> None:
        """:meth:`Run.log <otel_tracker.record.run.Run.log>`, recorded as logged
        during this step (``metrics.jsonl`` names it)."""
        self._run._log(values, value, step, direction, self._record.name)

    def set_total(self, total: int | None, unit: str | None = None) -> None:
        """Declare how many items this step will process (``None``: unknown)."""
        if total is not None and (not is_whole(total) or total < 0):
            raise ConfigError(f"total must be a non-negative int or None, got {total!r}")
        unit = checked_name(unit, "unit")
        self.total = None if total is None else int(total)
        if unit is not None:
            self.unit = unit

    def follow(self, source: Callable[[], tuple[float, float | None] | None] | None) -> None:
        """Take progress from ``source()``, ``(completed, total)`` or ``None`` for "as
        before", whenever progress is read (by the sampler, the reporter, a manifest
        write and the step's end) instead of from :meth:`advance`: a tqdm bar or a
        trainer's own counters are read, never hooked. ``None`` stops following."""
        self._source = source

    def read_progress(self) -> tuple[int, int | None, str | None]:
        """``(completed, total, unit)`` now: the followed source's, else the counts."""
        source = self._source
        if source is not None:
            try:
                found = source()
                if found is not None:
                    completed, total = found
                    total = int(total) if total is not None and 0 <= total < math.inf else None
                    self.completed, self.total = max(0, int(completed)), total
            except Exception as exc:  # someone else's object: never the pipeline's problem
                logger.debug("otel-tracker: progress source of %s failed: %s", self.name, exc)
        return item_count(self.completed), self.total, self.unit

    def add_artifact(
        self, path: str | os.PathLike[str], kind: str | None = None, *, best: bool = False
    ) -> None:
        """Register a file or directory this step produced (see :meth:`Run.add_artifact`)."""
        self._run._add_artifact(path, kind, self._record, best)

    def start(self) -> Step:
        """Start the step (``with run.step(...)`` does this for you)."""
        self._run._start_step(self)
        return self

    def stop_clock(self) -> None:
        """The step's work ended now, though whether it succeeded is known only later:
        it stops being the current step, and the :meth:`end` that follows records this
        moment as its end (a tqdm bar closed early ends its step when the program
        shows whether it failed)."""
        if self._stopped_ns is None:
            self._stopped_ns = self._run._anchored.now_ns()
        token, self._token = self._token, None
        if token is not None:  # no longer the step that the code running now is in
            self._deactivate(token)
            current.leave_process("step", self)

    def end(self, error: BaseException | None = None) -> None:
        """End the step: completed, or failed with ``error``."""
        self._run._end_step(self, error)

    def __enter__(self) -> Step:
        self.start()
        current.enter_process("step", self)
        self._token = self._activate(self._attaches())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            self._deactivate(token)
            current.leave_process("step", self)
        self.end(exc)

    def _attaches(self) -> bool:
        """Whether entering makes the span OpenTelemetry's current one (asked once: it
        reads the environment)."""
        return self._span is not None and self._run._attach_context()

    def _activate(self, attach: bool) -> tuple[current.LocalToken, Any]:
        """Make this step current for the code running now (this task or thread), and
        its span OpenTelemetry's current one if ``attach``."""
        local = current.enter_local("step", self)
        otel = otel_context.attach(trace.set_span_in_context(self._span)) if attach else None
        return local, otel

    def _deactivate(self, token: tuple[current.LocalToken, Any]) -> None:
        local, otel = token
        if otel is not None:
            try:
                otel_context.detach(otel)
            except Exception:
                pass
        current.leave_local("step", self, local)

    def __repr__(self) -> str:
        return f"<Step {self.index}:{self.name!r} {self.completed}/{self.total}>"


def mark_error(
    span: Any,
    result: str,
    error: BaseException | None,
    reason: str | None,
    exit_code: int | None,
) -> None:
    if result in (semconv.RESULT_SUCCESS, semconv.RESULT_SKIP):
        return
    if error is not None and not (isinstance(error, SystemExit)):
        # the SDK's record_exception, but redacted: the event reaches the manifest and OTLP
        message, stacktrace = redact_exception(error)
        kind = type(error)
        module = kind.__module__
        span.add_event(
            "exception",
            {
                "exception.type": f"{module}.{kind.__qualname__}"
                if module and module != "builtins"
                else kind.__qualname__,
                "exception.message": message,
                "exception.stacktrace": stacktrace,
                "exception.escaped": "True",
            },
        )
        span.set_attribute(semconv.ERROR_TYPE, kind.__qualname__)
        span.set_status(Status(StatusCode.ERROR, f"{kind.__name__}: {message}"))
        return
    if isinstance(error, SystemExit):
        description = f"exited with code {exit_code}"
        span.set_attribute(semconv.ERROR_TYPE, "SystemExit")
    else:
        description = clipped(redact_text(reason)) if reason else result
        span.set_attribute(semconv.ERROR_TYPE, result)
    span.set_status(Status(StatusCode.ERROR, description))
