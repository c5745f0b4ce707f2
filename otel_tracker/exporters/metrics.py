"""OTel metrics from the sampler's snapshot: observable instruments that only read the cache.

Every observation carries the pipeline, the run id and the current step
(``cicd.pipeline.name``, ``cicd.pipeline.run.id``, ``cicd.pipeline.task.name``) so
dashboards can slice by pipeline, run and step. All series are
observable gauges: tree-wide totals such as ``process.cpu.time`` drop when a
child exits, so they are not monotonic counters. The author's ``run.add_count``
totals are observable counters.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource

from .. import semconv
from ..sampling.sampler import Snapshot
from ..version import __version__

logger = logging.getLogger(__name__)


class SnapshotInstruments:
    """Creates one observable gauge per metric name the sampler produces."""

    def __init__(
        self,
        resource: Resource,
        readers: Sequence[MetricReader],
        *,
        run_id: str,
        pipeline: str | None = None,
        snapshot: Callable[[], Snapshot | None],
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self.provider = MeterProvider(
            metric_readers=list(readers), resource=resource, shutdown_on_exit=False
        )
        self._meter = self.provider.get_meter("otel_tracker", __version__)
        self._run_id = run_id
        self._pipeline = pipeline
        self._snapshot = snapshot
        # a distributed job's host and rank, as labels dashboards filter by (resource
        # attributes do not become labels on either Prometheus path)
        self._attributes = dict(attributes or {})
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def register(self, snapshot: Snapshot) -> None:
        """Make sure every metric in ``snapshot`` has its instrument."""
        with self._lock:
            for point in snapshot.points:
                if point.name in self._known:
                    continue
                self._known.add(point.name)
                create = (
                    self._meter.create_observable_counter
                    if point.monotonic
                    else self._meter.create_observable_gauge
                )
                create(point.name, callbacks=[self._callback(point.name)], unit=point.unit)

    def _callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            snapshot = self._snapshot()
            if snapshot is None:
                return []
            base: dict[str, Any] = {**self._attributes, semconv.CICD_PIPELINE_RUN_ID: self._run_id}
            if self._pipeline:
                base[semconv.CICD_PIPELINE_NAME] = self._pipeline
            step = snapshot.step_name
            if step is not None:
                base[semconv.CICD_PIPELINE_TASK_NAME] = step
            return [
                Observation(p.value, {**base, **dict(p.attributes)})
                for p in snapshot.points
                if p.name == name
            ]

        return observe

    def shutdown(self) -> None:
        try:
            self.provider.shutdown()
        except Exception:
            logger.warning("otel-tracker metric shutdown failed", exc_info=True)
