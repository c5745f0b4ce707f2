"""``ManifestSpanProcessor``: the run's spans, as they start and end, become ``manifest.json``.

A synchronous :class:`~opentelemetry.sdk.trace.SpanProcessor`: the manifest is
local and canonical, so it is written on the span transition itself, before any
(bounded, asynchronous) mirror exporter sees the span.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from .. import semconv
from ..contract.document import ProgressSnapshot, RunRecord, short_traceback
from ..contract.manifest_writer import ManifestFileWriter
from ..redact.text import redact_text
from ..semconv import TRACER_NAME

logger = logging.getLogger(__name__)

# (event, step index or None for the run, the document about to be written)
Listener = Callable[[str, "int | None", dict[str, Any]], None]


def span_error(span: ReadableSpan) -> dict[str, Any] | None:
    """Type, message and short traceback of the exception recorded on a span."""
    for event in reversed(span.events or ()):
        if event.name == "exception":
            attrs = event.attributes or {}
            stacktrace = attrs.get("exception.stacktrace")
            return {
                "type": str(attrs.get("exception.type", "Exception")),
                # ours are redacted already; an application may record its own on our span
                "message": redact_text(str(attrs.get("exception.message", ""))),
                "traceback": short_traceback(redact_text(str(stacktrace)) if stacktrace else None),
            }
    if span.status is not None and span.status.status_code is StatusCode.ERROR:
        attrs = span.attributes or {}
        return {
            "type": str(attrs.get(semconv.ERROR_TYPE, "error")),
            "message": redact_text(span.status.description or ""),
            "traceback": None,
        }
    return None


class ManifestSpanProcessor(SpanProcessor):
    """Keeps one run's :class:`RunRecord` in step with its spans and writes it atomically."""

    def __init__(
        self,
        record: RunRecord,
        writer: ManifestFileWriter | None,
        *,
        now_ns: Callable[[], int],
        progress: Callable[[], ProgressSnapshot] | None = None,
        listeners: list[Listener] | None = None,
    ) -> None:
        self.record = record
        # shown each transition's document with the record locked, before it is written
        # (the progress reporter; it may add to the document, e.g. its ETA log entry)
        self.listeners = listeners if listeners is not None else []
        self.writer = writer
        self._now_ns = now_ns
        self._progress = progress
        self._failed_hooks: set[str] = set()

    # -- SpanProcessor ---------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            self._on_start(span)
        except Exception:
            self._hook_failed("on_start")

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._on_end(span)
        except Exception:
            self._hook_failed("on_end")

    def shutdown(self) -> None:
        return None  # every transition was written already; the final one by the run span's end

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.write()

    # -- the manifest ----------------------------------------------------------------
    def write(self, *, durable: bool = True) -> bool:
        """Write the manifest now (step transitions and the heartbeat call this);
        ``durable=False`` for a heartbeat, which records no change of state."""
        if self.writer is None:
            return False
        return self.writer.write(self._document, durable=durable)

    def heartbeat_payload(self) -> tuple[int, bytes] | None:
        """A heartbeat encoded for the sampling helper to write (see ``heartbeat.py``),
        or ``None`` when it must be written here with ``write(durable=False)``."""
        if self.writer is None:
            return None
        return self.writer.heartbeat_payload(self._document)

    def _document(self) -> dict[str, Any]:
        now = self._now_ns()
        with self.record.lock:
            return self._locked_document(now)

    def _locked_document(self, now: int) -> dict[str, Any]:
        if self.record.ended_ns is None:
            self.record.heartbeat_ns = now  # every write while running proves life
        return self.record.merge_parts(self.record.to_dict(now_ns=now, progress=self._progress))

    def _notify(self, event: str, index: int | None, doc: dict[str, Any]) -> None:
        for listener in self.listeners:
            try:
                listener(event, index, doc)
            except Exception:
                self._hook_failed(f"listener {event}")

    def _is_ours(self, span: ReadableSpan) -> bool:
        # by the tracer that made it, never by an attribute: the SDK's limits
        # (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, 128 by default) may drop any of those
        scope = span.instrumentation_scope
        return scope is not None and scope.name == TRACER_NAME

    def _transition(self, change: Callable[[], tuple[str, int | None]]) -> None:
        """Apply one span's change to the record, show the listeners the document and
        write it: one document per transition, built under the writer's lock, so that
        transitions reach the file in the order they were made."""

        def document() -> dict[str, Any]:
            now = self._now_ns()
            with self.record.lock:
                event, index = change()
                doc = self._locked_document(now)
                self._notify(event, index, doc)
            return doc

        if self.writer is not None and self.writer.owner_pid == os.getpid():
            self.writer.write(document)
        else:  # no file to write (or a forked child's copy): the record still moves
            document()

    def _on_start(self, span: Span) -> None:
        if not self._is_ours(span):
            return
        attrs = span.attributes or {}
        index = attrs.get(semconv.STEP_INDEX)
        if index is not None and semconv.STEP_SKIP_REASON in attrs:
            return  # a skipped step has only its (zero-length) end to record
        self._transition(lambda: self._started(span, attrs, index))

    def _started(self, span: Span, attrs: Any, index: Any) -> tuple[str, int | None]:
        ctx = span.get_span_context()
        if index is None:
            self.record.started_ns = span.start_time
            self.record.trace = {
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
                "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
            }
            return "run_start", None
        step = self.record.steps[int(index)]
        step.status = "running"
        step.started_ns = span.start_time
        step.span_id = format(ctx.span_id, "016x")
        return "step_start", int(index)

    def _on_end(self, span: ReadableSpan) -> None:
        if self._is_ours(span):
            self._transition(lambda: self._ended(span))

    def _ended(self, span: ReadableSpan) -> tuple[str, int | None]:
        attrs = span.attributes or {}
        index = attrs.get(semconv.STEP_INDEX)
        if index is None:
            result = attrs.get(semconv.CICD_PIPELINE_RESULT, semconv.RESULT_SUCCESS)
            self.record.status = semconv.STATUS_FOR_RESULT.get(str(result), "failed")
            self.record.ended_ns = span.end_time
            exit_code = attrs.get(semconv.PROCESS_EXIT_CODE)
            self.record.exit_code = int(exit_code) if exit_code is not None else None  # type: ignore[arg-type]
            sig = attrs.get(semconv.RUN_SIGNAL)
            self.record.signal = str(sig) if sig is not None else None
            self.record.error = span_error(span) if self.record.status != "completed" else None
            return "run_end", None
        step = self.record.steps[int(index)]  # type: ignore[arg-type]
        result = attrs.get(semconv.CICD_PIPELINE_TASK_RUN_RESULT, semconv.RESULT_SUCCESS)
        step.status = semconv.STEP_STATUS_FOR_RESULT.get(str(result), "failed")
        if step.started_ns is None:  # a skipped step's zero-length span
            step.started_ns = span.start_time
            step.span_id = format(span.get_span_context().span_id, "016x")
        step.ended_ns = span.end_time
        reason = attrs.get(semconv.STEP_SKIP_REASON)
        step.skip_reason = str(reason) if reason is not None else None
        step.error = span_error(span) if step.status == "failed" else None
        return ("step_skip" if step.status == "skipped" else "step_end"), int(index)  # type: ignore[arg-type]

    def _hook_failed(self, hook: str) -> None:
        if hook not in self._failed_hooks:
            self._failed_hooks.add(hook)
            logger.warning("otel-tracker manifest %s failed; the run goes on", hook, exc_info=True)
