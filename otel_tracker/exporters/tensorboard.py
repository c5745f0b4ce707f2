"""TensorBoard mirror: event files under ``<run>/tensorboard/``.

Written synchronously through tensorboardX's record writer and protos rather than
its ``SummaryWriter``: that one queues events for a worker thread and flushes on
a timer, so a flush at step end or in a SIGTERM handler could not promise that
the events are on disk. Here each write is appended and, at step end and run end,
fsynced. Resource metrics and throughput are scalars (x = sample number, with the
sample's wall time); step durations are ``step/duration_s`` (x = step number);
the run's (already redacted) params are hparams and text.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import semconv
from ..errors import MissingExtraError
from ..redact import clipped, redact_text
from ..run_setup import flat_attributes

logger = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"
_RUN_LABELS = frozenset(
    {semconv.CICD_PIPELINE_NAME, semconv.CICD_PIPELINE_RUN_ID, semconv.CICD_PIPELINE_TASK_NAME}
)
# attributes that only repeat what the GPU index already says in a tag
_TAG_NOISE = frozenset({"hw.name", "hw.type", "hw.id"})


def _protos() -> Any:
    try:
        import tensorboardX.summary as summary
        from tensorboardX.proto import event_pb2
        from tensorboardX.record_writer import RecordWriter
    except ImportError as exc:
        raise MissingExtraError("tensorboard", "tensorboardX") from exc
    return summary, event_pb2, RecordWriter


class EventFile:
    """One append-only event file, owned by the process that created it."""

    def __init__(self, logdir: Path) -> None:
        self._summary, self._event_pb2, record_writer = _protos()
        logdir.mkdir(parents=True, exist_ok=True)
        # TensorBoard finds files by the "tfevents" part; pid keeps forked writers apart
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = logdir / name
        self._writer = record_writer(str(self.path))
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        self._write(self._event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def scalar(self, tag: str, value: float, step: int, wall_time: float) -> None:
        self._event(self._summary.scalar(tag, value), step, wall_time)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self._event(self._summary.text(tag, text), step, time.time())

    def summary(self, summary: Any, step: int = 0) -> None:
        self._event(summary, step, time.time())

    def _event(self, summary: Any, step: int, wall_time: float) -> None:
        self._write(self._event_pb2.Event(wall_time=wall_time, step=step, summary=summary))

    def _write(self, event: Any) -> None:
        data = event.SerializeToString()
        self._locked(lambda: self._writer.write(data))

    def flush(self) -> None:
        self._locked(self._writer.flush)

    def close(self) -> None:
        def _close() -> None:
            self._closed = True
            self._writer.flush()
            self._writer.close()

        self._locked(_close)

    def _locked(self, action: Any) -> None:
        if self._closed or os.getpid() != self._pid:
            return
        # a signal handler may interrupt a write on this very thread: give up, never deadlock
        if not self._lock.acquire(timeout=0.5):
            return
        try:
            if not self._closed:
                action()
        finally:
            self._lock.release()


def _guarded(method: Any) -> Any:
    """Telemetry errors stop at the mirror: logged once, never raised into the pipeline."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception:
            if not self._warned:
                self._warned = True
                logger.warning("otel-tracker TensorBoard mirror failed", exc_info=True)
            return None

    return wrapper


class TensorBoardSpanProcessor(SpanProcessor):
    """Writes params at run start, each step's duration at its end, and closes at run end."""

    def __init__(self, events: EventFile, params: Mapping[str, Any]) -> None:
        self.events = events
        self._params = dict(params)
        self._completed = 0
        self._warned = False

    @_guarded
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if _is_run(span):
            self._write_params()

    @_guarded
    def on_end(self, span: ReadableSpan) -> None:
        attrs = span.attributes or {}
        if _is_run(span):
            self._write_run_end(span)
            self.events.close()
            return
        index = attrs.get(semconv.STEP_INDEX)
        if not isinstance(index, int) or span.start_time is None or span.end_time is None:
            return
        duration = (span.end_time - span.start_time) / 1e9
        wall = span.end_time / 1e9
        if attrs.get(semconv.CICD_PIPELINE_TASK_RUN_RESULT) == semconv.RESULT_SUCCESS:
            self._completed += 1
        self.events.scalar("step/duration_s", duration, index + 1, wall)
        outcome = {
            "step": span.name,
            "result": attrs.get(semconv.CICD_PIPELINE_TASK_RUN_RESULT),
            "duration_s": round(duration, 3),
            "items": attrs.get(semconv.STEP_PROGRESS_COMPLETED),
            # ours is redacted already; an application may set its own on our span
            "error": clipped(redact_text(span.status.description or "")) or None,
        }
        self.events.text(f"step/{index + 1:02d}", _markdown_json(outcome), index + 1)
        self.events.flush()

    def _write_params(self) -> None:
        summary = self.events._summary
        flat = flat_attributes("", self._params)
        exp, ssi, _ = summary.hparams(flat, {"run/duration_s": 0.0, "run/steps_completed": 0.0})
        self.events.summary(exp)
        self.events.summary(ssi)
        self.events.text("run/params", _markdown_json(self._params))
        self.events.flush()

    def _write_run_end(self, span: ReadableSpan) -> None:
        attrs = span.attributes or {}
        if span.start_time is not None and span.end_time is not None:
            wall = span.end_time / 1e9
            self.events.scalar("run/duration_s", (span.end_time - span.start_time) / 1e9, 0, wall)
        self.events.scalar("run/steps_completed", self._completed, 0, time.time())
        result = attrs.get(semconv.CICD_PIPELINE_RESULT)
        self.events.text("run/result", str(result))
        self.events.summary(_session_end(result == semconv.RESULT_SUCCESS))

    def shutdown(self) -> None:
        self.events.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.events.flush()
        return True


class TensorBoardMetricExporter(MetricExporter):
    """Each resource sample becomes one scalar per series, x = the sample's number."""

    def __init__(self, events: EventFile) -> None:
        super().__init__()
        self.events = events
        self._sample = 0
        self._warned = False

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            self._export(metrics_data)
        except Exception:
            if not self._warned:
                self._warned = True
                logger.warning("otel-tracker TensorBoard metrics failed", exc_info=True)
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def _export(self, metrics_data: MetricsData) -> None:
        self._sample += 1
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in getattr(metric.data, "data_points", ()):
                        wall = point.time_unix_nano / 1e9 if point.time_unix_nano else time.time()
                        tag = metric_tag(metric.name, point.attributes or {})
                        self.events.scalar(tag, float(point.value), self._sample, wall)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        self.events.flush()
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.events.close()


def metric_tag(name: str, attributes: Mapping[str, Any]) -> str:
    """``system.cpu.utilization/3``, ``hw.gpu.utilization/gpu0``; run and step are not tags."""
    parts = [name]
    for key, value in sorted(attributes.items()):
        if key in _RUN_LABELS:
            continue
        if key == "otel_tracker.gpu.index":
            parts.append(f"gpu{value}")
        elif key not in _TAG_NOISE or "otel_tracker.gpu.index" not in attributes:
            parts.append(str(value))
    return "/".join(parts)


def _is_run(span: ReadableSpan) -> bool:
    return (span.attributes or {}).get(semconv.CICD_PIPELINE_ACTION_NAME) == "RUN"


def _markdown_json(value: Any) -> str:
    # TensorBoard's text plugin renders markdown; four spaces make a code block
    text = json.dumps(value, indent=2, default=str)
    return "\n".join("    " + line for line in text.splitlines())


def _session_end(success: bool) -> Any:
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    status = Status.Value("STATUS_SUCCESS" if success else "STATUS_FAILURE")
    content = HParamsPluginData(session_end_info=SessionEndInfo(status=status), version=0)
    metadata = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(
            plugin_name="hparams", content=content.SerializeToString()
        )
    )
    return Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=metadata)])
