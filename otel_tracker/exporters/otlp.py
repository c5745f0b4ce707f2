"""OTLP mirror: the run's spans and metrics to a collector over gRPC or HTTP/protobuf.

Configured the standard way: the exporters read ``OTEL_EXPORTER_OTLP_*ENDPOINT``,
``*_HEADERS``, ``*_TIMEOUT``, ``*_COMPRESSION`` and the certificate variables
themselves; the protocol comes from ``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]PROTOCOL``
(see :class:`~otel_tracker.config.MirrorConfig`). Both signals go through an
:class:`~otel_tracker.exporters.guard.ExportGuard`, so a dead collector costs one
warning, never the pipeline's time: spans leave from the batch processor's thread,
metrics from the periodic reader's, and the run's exit bounds their final flush.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ..config import MirrorConfig
from ..errors import MissingExtraError
from ..redact.text import redact_endpoint
from .guard import ExportGuard, GuardedMetricExporter, GuardedSpanExporter
from .telemetry import SampleTriggeredMetricReader

_HTTP_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics"}


def _exporter_classes(protocol: str) -> tuple[Any, Any]:
    try:
        if protocol == "grpc":
            # A launcher forks command processes while the exporter's threads may be
            # inside gRPC (a dead collector: retries); gRPC's fork handlers then skip
            # or crash the parent (SIGSEGV seen in test_joined_span_handoff, 1 in 6).
            # The children exec at once and never use our channels: no handlers. Read
            # by grpc at its import; a user's own setting wins.
            os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise MissingExtraError("otlp", "opentelemetry-exporter-otlp") from exc
    return OTLPSpanExporter, OTLPMetricExporter


def _endpoint(config: MirrorConfig, protocol: str, signal: str) -> str | None:
    """An explicit base endpoint; HTTP wants the signal's path appended, gRPC does not."""
    if config.otlp_endpoint is None:
        return None
    if protocol == "grpc":
        return config.otlp_endpoint
    return config.otlp_endpoint.rstrip("/") + _HTTP_PATHS[signal]


def _target(exporter: Any, protocol: str) -> str:
    """Where the exporter sends, for the manifest and warnings: an endpoint's
    ``user:password@`` (HTTP sends it as basic auth) is redacted."""
    return f"{redact_endpoint(str(getattr(exporter, '_endpoint', 'the default endpoint')))} ({protocol})"


def otlp_span_processor(
    config: MirrorConfig, first_failure: threading.Event | None = None
) -> tuple[SpanProcessor, ExportGuard]:
    """A batch span processor over a guarded OTLP span exporter."""
    protocol = config.otlp_traces_protocol
    span_exporter_class, _ = _exporter_classes(protocol)
    exporter = span_exporter_class(endpoint=_endpoint(config, protocol, "traces"))
    guard = ExportGuard("OTLP traces", _target(exporter, protocol), first_failure)
    return _Counted(BatchSpanProcessor(GuardedSpanExporter(exporter, guard)), guard), guard


class _Counted(SpanProcessor):
    """Counts the spans entering the batch queue: one still queued when the end's
    deadline passes (behind a batch stuck on a dead collector) is lost, and counted."""

    def __init__(self, batch: BatchSpanProcessor, guard: ExportGuard) -> None:
        self._batch = batch
        self._guard = guard

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self._batch.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self._guard.accept("spans", 1)
        self._batch.on_end(span)

    def shutdown(self) -> None:
        self._batch.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._batch.force_flush(timeout_millis)


def otlp_metric_reader(
    config: MirrorConfig, first_failure: threading.Event | None = None
) -> tuple[Callable[[], MetricReader], ExportGuard]:
    """A reader that exports every resource sample from its own thread, or, when
    ``OTEL_METRIC_EXPORT_INTERVAL`` is set, the SDK's periodic reader at that cadence.
    The returned factory makes it: a reader's thread starts when it is made."""
    protocol = config.otlp_metrics_protocol
    _, metric_exporter_class = _exporter_classes(protocol)
    exporter = metric_exporter_class(endpoint=_endpoint(config, protocol, "metrics"))
    guard = ExportGuard("OTLP metrics", _target(exporter, protocol), first_failure)
    guarded = GuardedMetricExporter(exporter, guard)

    def make_reader() -> MetricReader:
        if config.otlp_metric_interval:
            return PeriodicExportingMetricReader(
                guarded, export_interval_millis=config.otlp_metric_interval * 1000
            )
        return SampleTriggeredMetricReader(guarded, name="otel-tracker-otlp-metrics")

    return make_reader, guard
