"""Prometheus mirror: a ``/metrics`` endpoint serving the run's metrics while it lives.

OpenTelemetry's ``PrometheusMetricReader`` converts names the way a Prometheus
user expects (``process_memory_usage_bytes``, ``system_cpu_utilization_ratio``,
``_total`` on counters) into a registry of the run's own, which this endpoint serves
on 127.0.0.1 unless told otherwise, through a bounded server of our own
(:mod:`otel_tracker.exporters.scrape_server`). A scrape reads the sampler's cached
snapshot; it never samples.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from opentelemetry.sdk.metrics.export import MetricReader

from ..errors import MissingExtraError
from .scrape_server import ScrapeServer

logger = logging.getLogger(__name__)


class PortInUseError(OSError):
    """The configured address could not be bound."""


class PrometheusEndpoint:
    """A metric reader plus the HTTP server that exposes it."""

    def __init__(self, host: str, port: int) -> None:
        try:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import REGISTRY, CollectorRegistry
            from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
        except ImportError as exc:
            raise MissingExtraError("prometheus", "opentelemetry-exporter-prometheus") from exc
        # A registry of its own keeps concurrent runs (and the app's own metrics) apart;
        # exporter versions before ``registry=`` existed share the global one.
        if "registry" in inspect.signature(PrometheusMetricReader).parameters:
            self._registry = CollectorRegistry(auto_describe=True)
            self._reader_options: dict[str, Any] = {"registry": self._registry}
        else:  # pragma: no cover - old exporter versions
            self._registry, self._reader_options = REGISTRY, {}
        registry = self._registry
        try:
            server = ScrapeServer(
                host, port, lambda: generate_latest(registry), CONTENT_TYPE_LATEST
            )
        except OSError as exc:
            raise PortInUseError(
                f"cannot serve /metrics on {host}:{port}: {exc.strerror or exc}"
            ) from None
        self._server = server
        self._reader_class = PrometheusMetricReader
        self._reader: MetricReader | None = None
        bound_port = server.port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound_port}/metrics"

    def make_reader(self) -> MetricReader:
        """The reader to register on the run's meter provider (a scrape collects it)."""
        self._reader = self._reader_class(**self._reader_options)
        return self._reader

    def close(self) -> None:
        """Stop serving and make sure the reader left prometheus_client's registry."""
        try:
            self._server.close()
        except Exception:
            logger.debug("Prometheus endpoint close failed", exc_info=True)
        if self._reader is not None:
            try:
                self._reader.shutdown()
            except Exception:
                pass  # already shut down with its meter provider
