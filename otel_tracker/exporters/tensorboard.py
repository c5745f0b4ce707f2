"""TensorBoard mirror: event files under ``<run>/tensorboard/``.

Written synchronously through tensorboardX's record writer and protos rather than
its ``SummaryWriter``: that one queues events for a worker thread and flushes on
a timer, so a flush at step end or in a SIGTERM handler could not promise that
the events are on disk. Here each write is appended and, at step end and run end,
fsynced. Every event's x ("step" in TensorBoard) is the same axis: whole seconds
since the run started, on the monotonic clock, never decreasing within a file
(TensorBoard drops a tag's later points when its x goes back), with the true
wall time beside it. Resource metrics and throughput are scalars under their
metric names; each step's duration is its own tag, ``step/<name>/duration_s``;
the run's (already redacted) params are hparams and text.

A write that fails (a full disk, a file size limit) stops the mirror with one
warning line; the run goes on.
"""

from __future__ import annotations

import json
import logging
import os
import re
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
from ..redact.text import clipped, redact_text
from ..sampling.run_state import STEP_DURATION
from .attributes import flat_attributes

logger = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"
SERIES_GROUP = "metrics"  # the sub-run (folder) of the run.log() series: tensorboard_series
_RUN_LABELS = frozenset(
    {semconv.CICD_PIPELINE_NAME, semconv.CICD_PIPELINE_RUN_ID, semconv.CICD_PIPELINE_TASK_NAME}
)
# attributes that only repeat what the GPU index already says in a tag
_TAG_NOISE = frozenset({"hw.name", "hw.type", "hw.id"})
# a step name inside a tag: no "/" (TensorBoard groups tags by it), no control characters
_NOT_IN_TAG = re.compile(r"[\x00-\x1f\x7f/]")


def _protos() -> Any:
    try:
        import tensorboardX.summary as summary
        from tensorboardX.proto import event_pb2
        from tensorboardX.record_writer import RecordWriter
    except ImportError as exc:
        raise MissingExtraError("tensorboard", "tensorboardX") from exc
    return summary, event_pb2, RecordWriter


class EventFile:
    """One append-only event file, owned by the process that created it.

    Every event's x is :meth:`elapsed` at the moment it is written."""

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
        self.failure: str | None = None
        self._origin = time.monotonic()  # the run span's start, once start_clock() runs
        self._last_x = 0
        header = self._event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
        self._locked(lambda: self._writer.write(header.SerializeToString()))

    def start_clock(self) -> None:
        """x = 0 from now: the run's start."""
        self._origin = time.monotonic()

    def elapsed(self) -> int:
        """Whole seconds since the run started, never less than an earlier event's."""
        return max(self._last_x, int(time.monotonic() - self._origin))

    def scalar(self, tag: str, value: float, wall_time: float) -> None:
        self._event(self._summary.scalar(tag, value), wall_time)

    def scalar_at(self, tag: str, value: float, step: int, wall_time: float) -> None:
        """A point at the caller's x, not the run's seconds: only in a file of its own
        (see :mod:`otel_tracker.exporters.tensorboard_series`)."""

        def write() -> None:
            summary = self._summary.scalar(tag, value)
            event = self._event_pb2.Event(wall_time=wall_time, step=step, summary=summary)
            self._writer.write(event.SerializeToString())

        self._locked(write)

    def text(self, tag: str, text: str) -> None:
        self._event(self._summary.text(tag, text), time.time())

    def summary(self, summary: Any) -> None:
        self._event(summary, time.time())

    def _event(self, summary: Any, wall_time: float) -> None:
        def write() -> None:
            # x is taken under the lock: events reach the file in the order of their x
            self._last_x = x = self.elapsed()
            event = self._event_pb2.Event(wall_time=wall_time, step=x, summary=summary)
            self._writer.write(event.SerializeToString())

        self._locked(write)

    def flush(self) -> None:
        self._locked(self._writer.flush)

    def close(self) -> None:
        def _close() -> None:
            self._closed = True
            self._writer.flush()
            self._writer.close()

        self._locked(_close)

    def fail(self, exc: BaseException) -> None:
        """Stop writing, with one warning line for the whole mirror (the run goes on)."""
        if not self._lock.acquire(timeout=0.5):
            return
        try:
            self._fail_locked(exc)
        finally:
            self._lock.release()

    def _fail_locked(self, exc: BaseException) -> None:
        self._closed = True
        if self.failure is not None:
            return
        self.failure = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "otel-tracker TensorBoard mirror stopped: %s (%s); the run goes on",
            self.failure,
            self.path,
        )
        logger.debug("otel-tracker TensorBoard failure", exc_info=exc)
        try:
            self._writer.close()  # flushes what it holds, fails again, and closes
        except Exception:
            pass

    def _locked(self, action: Any) -> None:
        if self._closed or os.getpid() != self._pid:
            return
        # a signal handler may interrupt a write on this very thread: give up, never deadlock
        if not self._lock.acquire(timeout=0.5):
            return
        try:
            if not self._closed:
                action()
        except Exception as exc:
            self._fail_locked(exc)
        finally:
            self._lock.release()


def _guarded(method: Any) -> Any:
    """Telemetry errors stop at the mirror: one warning, never raised into the pipeline."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self.events.fail(exc)
            return None

    return wrapper


class TensorBoardSpanProcessor(SpanProcessor):
    """Writes params at run start, each step's duration at its end, and closes at run end."""

    def __init__(self, events: EventFile, params: Mapping[str, Any], series: Any = None) -> None:
        self.events = events
        self._params = dict(params)
        self._completed = 0
        self._series = series  # the run.log() tags (tensorboard_series), for HParams

    @_guarded
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if _is_run(span):
            self.events.start_clock()
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
        self.events.scalar(f"step/{step_tag(span.name)}/duration_s", duration, wall)
        outcome = {
            "step": span.name,
            "result": attrs.get(semconv.CICD_PIPELINE_TASK_RUN_RESULT),
            "duration_s": round(duration, 3),
            "items": attrs.get(semconv.STEP_PROGRESS_COMPLETED),
            # ours is redacted already; an application may set its own on our span
            "error": clipped(redact_text(span.status.description or "")) or None,
        }
        self.events.text(f"step/{index + 1:02d}", _markdown_json(outcome))
        self.events.flush()

    def _write_params(self) -> None:
        # the session's params now; the experiment (which names the metrics, among
        # them every run.log() key) at the run's end, when the keys are known
        summary = self.events._summary
        _, ssi, _ = summary.hparams(flat_attributes("", self._params), {})
        self.events.summary(ssi)
        self.events.text("run/params", _markdown_json(self._params))
        self.events.flush()

    def _write_run_end(self, span: ReadableSpan) -> None:
        attrs = span.attributes or {}
        if span.start_time is not None and span.end_time is not None:
            wall = span.end_time / 1e9
            self.events.scalar("run/duration_s", (span.end_time - span.start_time) / 1e9, wall)
        self.events.scalar("run/steps_completed", self._completed, time.time())
        result = attrs.get(semconv.CICD_PIPELINE_RESULT)
        self.events.text("run/result", str(result))
        series = self._series
        tags = list(series.tags) if series is not None else []
        flat = flat_attributes("", self._params)
        self.events.summary(hparams_experiment(self.events._summary, flat, tags))
        self.events.summary(_session_end(result == semconv.RESULT_SUCCESS))
        if series is not None:
            series.close()

    def shutdown(self) -> None:
        self.events.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.events.flush()
        return True


class TensorBoardMetricExporter(MetricExporter):
    """Each resource sample becomes one scalar per series (x: see the module's docstring)."""

    def __init__(self, events: EventFile) -> None:
        super().__init__()
        self.events = events

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            self._export(metrics_data)
        except Exception as exc:
            self.events.fail(exc)
        return MetricExportResult.FAILURE if self.events.failure else MetricExportResult.SUCCESS

    def _export(self, metrics_data: MetricsData) -> None:
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name in (STEP_DURATION, semconv.METRIC):
                        # each step has its own tag, written from its span; run.log()
                        # series are on their own steps in the metrics sub-run
                        continue
                    for point in getattr(metric.data, "data_points", ()):
                        wall = point.time_unix_nano / 1e9 if point.time_unix_nano else time.time()
                        tag = metric_tag(metric.name, point.attributes or {})
                        self.events.scalar(tag, float(point.value), wall)

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


def step_tag(name: str) -> str:
    """A step's name as one part of a tag."""
    return _NOT_IN_TAG.sub("_", name) or "_"


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


def hparams_experiment(summary: Any, flat_params: dict[str, Any], series: list[str]) -> Any:
    """The HParams experiment summary: the params, the run's own metrics and one metric
    per series tag (group ``metrics``, the sub-run that holds them)."""
    from tensorboardX.proto.api_pb2 import MetricInfo, MetricName
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    run_metrics = {"run/duration_s": 0.0, "run/steps_completed": 0.0}
    experiment, _, _ = summary.hparams(flat_params, run_metrics)
    value = experiment.value[0]
    content = HParamsPluginData.FromString(value.metadata.plugin_data.content)
    for tag in series:
        content.experiment.metric_infos.append(
            MetricInfo(name=MetricName(group=SERIES_GROUP, tag=tag), display_name=tag)
        )
    value.metadata.plugin_data.content = content.SerializeToString()
    return experiment
