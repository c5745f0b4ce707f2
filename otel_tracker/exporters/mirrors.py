"""The opt-in mirrors of one run: OTLP, Prometheus and TensorBoard.

Each is built from its optional extra; one that cannot start (extra missing, port
taken, no run directory) is logged once, noted in the manifest's warnings, and the
run goes on without it. :class:`Mirrors` hands the run its span processors and
metric readers and, at the end, a summary of what was delivered and dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
from opentelemetry.sdk.trace import SpanProcessor

from ..config import MirrorConfig
from ..errors import MissingExtraError
from ..redact.text import redact_text
from .guard import ExportGuard, report_losses

logger = logging.getLogger(__name__)

_warned_extras: set[str] = set()
_warned_lock = threading.Lock()


class Mirrors:
    """Span processors, metric readers and per-sample exporters for the enabled mirrors."""

    def __init__(self) -> None:
        self.span_processors: list[SpanProcessor] = []
        # readers pull on their own schedule, so they are made right before their provider
        self.metric_readers: list[Callable[[], MetricReader]] = []
        self.sample_exporters: list[MetricExporter] = []  # fed once per resource sample
        # given each run.log() batch the writer flushes: (key, stage, steps, values, times)
        self.series_sinks: list[Callable[..., None]] = []
        self.info: dict[str, Any] = {}
        self.problems: list[str] = []
        self.guards: list[ExportGuard] = []
        self.part_spans: Any = None  # joined children's spans, fed to the OTLP processor
        self._prometheus: Any = None

    @classmethod
    def start(
        cls,
        config: MirrorConfig,
        *,
        run_dir: Path | None,
        params: Mapping[str, Any],
        resources: bool,
    ) -> Mirrors:
        """Start every enabled mirror that can start."""
        mirrors = cls()
        if config.otlp:
            mirrors._try("OTLP", lambda: mirrors._start_otlp(config, resources))
        if config.prometheus:
            if resources:
                mirrors._try("Prometheus", lambda: mirrors._start_prometheus(config))
            else:
                mirrors._problem("Prometheus", "resource sampling is off, so it has no metrics")
        if config.tensorboard:
            mirrors._try(
                "TensorBoard", lambda: mirrors._start_tensorboard(run_dir, params, resources)
            )
        return mirrors

    def _try(self, mirror: str, start: Any) -> None:
        try:
            start()
        except MissingExtraError as exc:
            self.problems.append(f"{mirror} mirror off: {exc}")
            with _warned_lock:
                first = exc.extra not in _warned_extras
                _warned_extras.add(exc.extra)
            if first:
                logger.warning("otel-tracker: %s; the run goes on without it", exc)
        except Exception as exc:
            self._problem(mirror, str(exc) or type(exc).__name__)

    def _problem(self, mirror: str, reason: str) -> None:
        reason = redact_text(reason)  # an exporter's error may quote its endpoint
        self.problems.append(f"{mirror} mirror off: {reason}")
        logger.warning("otel-tracker %s mirror is off: %s; the run goes on", mirror, reason)

    def _start_otlp(self, config: MirrorConfig, resources: bool) -> None:
        from .handoff import PartSpans
        from .otlp import otlp_metric_reader, otlp_span_processor

        first_failure = threading.Event()  # one dead collector, one warning
        processor, traces = otlp_span_processor(config, first_failure)
        self.span_processors.append(processor)
        self.part_spans = PartSpans(processor)
        self.guards.append(traces)
        info = {"traces": traces.target}
        if resources:
            make_reader, metrics = otlp_metric_reader(config, first_failure)
            self.metric_readers.append(make_reader)
            self.guards.append(metrics)
            info["metrics"] = metrics.target
        self.info["otlp"] = info

    def _start_prometheus(self, config: MirrorConfig) -> None:
        from .prometheus import PrometheusEndpoint

        endpoint = PrometheusEndpoint(config.prometheus_host, config.prometheus_port)
        self._prometheus = endpoint
        self.metric_readers.append(endpoint.make_reader)
        self.info["prometheus"] = {"url": endpoint.url}

    def _start_tensorboard(
        self, run_dir: Path | None, params: Mapping[str, Any], resources: bool
    ) -> None:
        if run_dir is None:
            raise OSError("the run has no directory to write event files to")
        from .tensorboard import (
            TENSORBOARD_DIR,
            EventFile,
            TensorBoardMetricExporter,
            TensorBoardSpanProcessor,
        )
        from .tensorboard_series import TensorBoardSeries

        events = EventFile(run_dir / TENSORBOARD_DIR)
        series = TensorBoardSeries(run_dir / TENSORBOARD_DIR)
        self.series_sinks.append(series)
        self.span_processors.append(TensorBoardSpanProcessor(events, params, series))
        if resources:
            self.sample_exporters.append(TensorBoardMetricExporter(events))
        self.info["tensorboard"] = {"dir": TENSORBOARD_DIR}

    def summary(self) -> dict[str, Any]:
        """What the manifest records under ``tracker.mirrors``."""
        summary = {name: dict(value) for name, value in self.info.items()}
        for guard in self.guards:
            signal = "traces" if guard.mirror.endswith("traces") else "metrics"
            delivery = guard.summary()
            delivery.pop("target")
            summary.setdefault("otlp", {})[f"{signal}_delivery"] = delivery
        return summary

    def close(self) -> None:
        """Stop serving /metrics (readers and processors are shut down by their providers)."""
        if self._prometheus is not None:
            self._prometheus.close()

    def report(self, gave_up_after: float | None = None) -> str | None:
        """What the OTLP mirror lost, as one line (see :func:`report_losses`), or ``None``."""
        return report_losses("OTLP", self.guards, gave_up_after)


class NoMirrors:
    """The mirror set of a run with every mirror off."""

    span_processors: tuple[()] = ()
    metric_readers: tuple[()] = ()
    sample_exporters: tuple[()] = ()
    series_sinks: tuple[()] = ()
    guards: tuple[()] = ()

    def close(self) -> None:
        return None


NO_MIRRORS = NoMirrors()
