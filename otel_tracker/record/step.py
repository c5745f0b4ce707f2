"""``Step``: one step of a run, a child span; ``advance()`` is a plain integer add."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from .. import semconv
from ..contract.document import StepRecord
from ..errors import ConfigError
from ..redact.text import clipped, redact_exception, redact_text
from ..values import checked_name, is_whole
from . import current
from .series import NO_VALUE

if TYPE_CHECKING:
    from .run import Run


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

    __slots__ = ("_record", "_run", "_span", "_token", "completed", "total", "unit")

    def __init__(self, run: Run, record: StepRecord, total: int | None, unit: str | None) -> None:
        self._run = run
        self._record = record
        self._span: Any = None
        self._token: Any = None
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

    def add_artifact(self, path: str | os.PathLike[str], kind: str | None = None) -> None:
        """Register a file or directory this step produced."""
        self._run._add_artifact(path, kind, self._record)

    def start(self) -> Step:
        """Start the step (``with run.step(...)`` does this for you)."""
        self._run._start_step(self)
        return self

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
