"""Wrappers that keep a failing mirror quiet and honest.

A dead collector makes the OTLP exporters log an error (and retry warnings) on
every batch. :class:`GuardedSpanExporter` and :class:`GuardedMetricExporter`
wrap any SDK exporter: exceptions never leave them, what could not be delivered
is counted, and a dead mirror is one warning: the first failure, logged with the
exporter's own reason. The total lost goes into the run's manifest at the end
(and is the warning itself if nothing failed before the end). While one of our exports runs, the exporter's own
warnings on that thread are held back (other threads, such as an application's
own OTLP exporters, are untouched).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..redact.text import redact_text
from .redacted_spans import redacted_span

logger = logging.getLogger(__name__)

# The exporter modules that log per failed batch; filtering an absent one is harmless.
QUIETED_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
)

_exporting = threading.local()


class _HeldBackOnOurThreads(logging.Filter):
    """Holds back an exporter's warnings raised inside one of our guarded exports."""

    def filter(self, record: logging.LogRecord) -> bool:
        guard: ExportGuard | None = getattr(_exporting, "guard", None)
        if guard is None or record.levelno < logging.WARNING:
            return True
        guard.last_reason = redact_text(record.getMessage())  # it may quote the endpoint
        return False


_FILTER = _HeldBackOnOurThreads()
_installed = False
_install_lock = threading.Lock()


def _install_filter() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in QUIETED_LOGGERS:
            logging.getLogger(name).addFilter(_FILTER)
        _installed = True


class ExportGuard:
    """Counts one signal's undelivered data and says so once.

    Guards that share ``first_failure`` (the traces and metrics of one OTLP
    mirror) warn once between them: one dead collector, one warning.
    """

    def __init__(
        self, mirror: str, target: str, first_failure: threading.Event | None = None
    ) -> None:
        self.mirror = mirror
        self.target = target
        self._first_failure = first_failure if first_failure is not None else threading.Event()
        self.last_reason: str | None = None
        self.dropped: dict[str, int] = {}
        self.delivered: dict[str, int] = {}
        self.in_flight: dict[str, int] = {}  # still being sent: lost if the process exits now
        self.accepted: dict[str, int] = {}  # taken by a mirror that queues (counted if told)
        self._lock = threading.Lock()
        _install_filter()

    def call(self, what: str, count: int, export: Any) -> bool:
        """Run ``export()`` (returns success) on this thread with the exporter's warnings held."""
        with self._lock:
            self.in_flight[what] = self.in_flight.get(what, 0) + count
        _exporting.guard = self
        try:
            ok = bool(export())
        except Exception as exc:
            self.last_reason = redact_text(f"{type(exc).__name__}: {exc}")
            ok = False
        finally:
            _exporting.guard = None
        with self._lock:
            self.in_flight[what] -= count
            bucket = self.delivered if ok else self.dropped
            bucket[what] = bucket.get(what, 0) + count
            first_failure = not ok and not self._first_failure.is_set()
            if first_failure:
                self._first_failure.set()
        if first_failure:
            logger.warning(
                "otel-tracker %s export to %s failed (%s); the run goes on, "
                "losses are counted in the run's manifest",
                self.mirror,
                self.target,
                self.last_reason or "no reason given",
            )
        return ok

    def accept(self, what: str, count: int) -> None:
        """``count`` items entered the mirror's queue: until an export delivers or
        refuses them, they count as in flight (lost if the process exits now)."""
        with self._lock:
            self.accepted[what] = self.accepted.get(what, 0) + count

    def _unsent(self) -> dict[str, int]:
        """In an export under way, or accepted and still queued behind one (a batch
        stuck on a dead collector holds back every later one); the lock is held."""
        unsent = {what: n for what, n in self.in_flight.items() if n}
        for what, n in self.accepted.items():
            done = self.delivered.get(what, 0) + self.dropped.get(what, 0)
            queued = n - done - self.in_flight.get(what, 0)
            if queued > 0:
                unsent[what] = unsent.get(what, 0) + queued
        return unsent

    @property
    def warned(self) -> bool:
        """Whether this mirror has said it fails (once for all guards sharing the event)."""
        return self._first_failure.is_set()

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "target": self.target,
                "delivered": dict(self.delivered),
                "dropped": dict(self.dropped),
                "in_flight": self._unsent(),
                "last_error": self.last_reason if self.dropped else None,
            }

    def losses(self) -> str | None:
        """What was lost, as words ("3 spans"), counting what is still in flight."""
        with self._lock:
            lost = dict(self.dropped)
            for what, n in self._unsent().items():
                lost[what] = lost.get(what, 0) + n
        if not lost:
            return None
        return ", ".join(f"{n} {what[:-1] if n == 1 else what}" for what, n in sorted(lost.items()))


def report_losses(
    mirror: str, guards: Sequence[ExportGuard], gave_up_after: float | None
) -> str | None:
    """What ``guards`` lost, as one line for the manifest's warnings, or ``None``.

    It is logged as a warning only if the mirror has not warned yet (everything
    was lost at the deadline): one dead mirror, one warning line.
    """
    parts = [f"{lost} to {g.target}" for g in guards if (lost := g.losses())]
    if not parts:
        return None
    message = "{} could not deliver {}{}".format(
        mirror,
        "; ".join(parts),
        f" (gave up after {gave_up_after:.1f} s)" if gave_up_after is not None else "",
    )
    level = logging.INFO if any(g.warned for g in guards) else logging.WARNING
    logger.log(level, "otel-tracker %s", message)
    return message


class GuardedSpanExporter(SpanExporter):
    """A span exporter that never raises and counts what it could not send."""

    def __init__(self, exporter: SpanExporter, guard: ExportGuard) -> None:
        self._exporter = exporter
        self.guard = guard

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        spans = [redacted_span(span) for span in spans]  # an application's own error texts
        ok = self.guard.call(
            "spans",
            len(spans),
            lambda: self._exporter.export(spans) == SpanExportResult.SUCCESS,
        )
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        try:
            self._exporter.shutdown()
        except Exception:
            logger.debug("span exporter shutdown failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return self._exporter.force_flush(timeout_millis)
        except Exception:
            return False


class GuardedMetricExporter(MetricExporter):
    """A metric exporter that never raises and counts the exports it could not send."""

    def __init__(self, exporter: MetricExporter, guard: ExportGuard) -> None:
        super().__init__(
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self._exporter = exporter
        self.guard = guard

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        ok = self.guard.call(
            "metric exports",
            1,
            lambda: (
                self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
                == MetricExportResult.SUCCESS
            ),
        )
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        try:
            return self._exporter.force_flush(timeout_millis=timeout_millis)
        except Exception:
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        try:
            self._exporter.shutdown(timeout_millis=timeout_millis, **kwargs)
        except Exception:
            logger.debug("metric exporter shutdown failed", exc_info=True)
