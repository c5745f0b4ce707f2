"""Resource telemetry of one run: the sampler thread, its OTel instruments,
``telemetry.jsonl`` and the author's own gauges and counters."""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..progress.resources import samples_text
from ..sampling.custom import UserMetrics
from ..values import is_real

logger = logging.getLogger(__name__)

# The run's end must stay fast even with a helper that stopped answering (SIGTERM
# must leave a final manifest within seconds).
STOP_REPLY_TIMEOUT_S = 1.0
RECENT_SAMPLES = 6  # the GPU starvation hint looks at this many samples


class RunTelemetry:
    """Everything a run samples; each failure degrades it, never the run."""

    def __init__(
        self,
        *,
        run_id: str,
        pipeline: str | None = None,
        run_dir: Path | None,
        resource: Any,
        interval: float,
        step_counters: Callable[[], Mapping[int, tuple[str, int]]],
        current_step: Callable[[], int | None],
        step_name: Callable[[int | None], str | None],
        document: Callable[[], Mapping[str, Any]] | None = None,
        metric_readers: Sequence[Any] = (),
        sample_exporters: Sequence[Any] = (),
        in_subprocess: bool = True,
        heartbeat: Any = None,
        wall: Callable[[], float] = time.time,
        series: Callable[[], Mapping[str, float]] | None = None,
        telemetry_window: float = 0.0,
        telemetry_rollup: float = 60.0,
        sample_root: int | None = None,
        metric_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self._run_id = run_id
        # Unix seconds of the samples' timestamps: the run's clock, which a stepped
        # system clock does not move (the telemetry lines and the ETA point use it)
        self._wall = wall
        self._pipeline = pipeline
        self._run_dir = run_dir
        self._resource = resource
        self.interval = interval
        self._step_counters = step_counters
        self._current_step = current_step
        self._step_name = step_name
        self._document = document
        self._metric_readers = list(metric_readers)
        self._sample_exporters = list(sample_exporters)
        self.in_subprocess = in_subprocess
        self._heartbeat = heartbeat  # a ManifestHeartbeat: the sampler thread drives it
        self._heartbeat_shared = False
        self.user_metrics = UserMetrics()
        self._series = series  # run.log()'s latest values, mirrored as a gauge
        self._window = telemetry_window
        self._rollup = telemetry_rollup
        self._sample_root = sample_root  # None: this process's tree
        self._metric_attributes = metric_attributes
        self.sampler: Any = None
        self._helper: Any = None
        self._telemetry_file: Any = None
        self.instruments: Any = None
        self._stopped = False

    def start(self) -> str | None:
        """Start sampling; the reason if it could not start (the run goes on)."""
        try:
            from ..contract.telemetry_form import TELEMETRY_NAME
            from ..exporters.metrics import SnapshotInstruments
            from ..exporters.telemetry import (
                SampleDrivenMetricReader,
                SampleTriggeredMetricReader,
                TelemetryFile,
                telemetry_line,
            )
            from ..exporters.telemetry_window import TelemetryWindow
            from ..sampling.custom import LatestSeries, ThroughputSampler
            from ..sampling.local import local_samplers, psutil_missing
            from ..sampling.run_state import RunStateSampler
            from ..sampling.sampler import ResourceSampler
            from ..sampling.sidecar import SubprocessSampler

            telemetry = self._telemetry_file = (
                TelemetryWindow(
                    TelemetryFile(self._run_dir / TELEMETRY_NAME),
                    run_id=self._run_id,
                    window_s=self._window,
                    interval_s=self._rollup,
                )
                if self._run_dir is not None
                else None
            )
            readers = [SampleDrivenMetricReader(e) for e in self._sample_exporters]
            others = [make() for make in self._metric_readers]
            triggered = [r for r in others if isinstance(r, SampleTriggeredMetricReader)]
            missing = psutil_missing()
            if missing is not None:
                # process and system figures are off, each marked unavailable with the
                # reason (see local_samplers); throughput, GPU and the rest go on, and
                # without them a helper process would have nothing to do
                logger.warning("otel-tracker process and system metrics are off: %s", missing)
                self.in_subprocess = False
            if self.in_subprocess:
                helper = self._helper = SubprocessSampler(root=self._sample_root)
                helper.start()
                resources: list[tuple[str, Any]] = [("resources", helper)]
            else:
                resources = local_samplers(self._sample_root)

            def on_sample(snapshot: Any) -> None:
                if telemetry is not None:
                    line = telemetry_line(snapshot, self._run_id, snapshot.step_name)
                    if line is not None:
                        telemetry.append(line, snapshot.wall)
                if instruments is None:
                    return
                instruments.register(snapshot)
                for reader in readers:
                    reader.collect()
                for reader in triggered:
                    reader.on_sample()

            sampler = ResourceSampler(
                [
                    *resources,
                    ("throughput", ThroughputSampler(self._step_counters)),
                    ("user", self.user_metrics),
                    *([("series", LatestSeries(self._series))] if self._series else []),
                    *(
                        [("run", RunStateSampler(self._document, self._wall))]
                        if self._document
                        else []
                    ),
                ],
                interval=self.interval,
                current_step=self._current_step,
                step_name=self._step_name,
                wall=self._wall,
                on_sample=on_sample,
                heartbeat=self._beat if self._heartbeat is not None else None,
                heartbeat_interval=self._heartbeat.interval if self._heartbeat else None,
            )
            if self._helper is not None and self._heartbeat is not None:
                self._heartbeat_shared = self._heartbeat.share()
            # on_sample and the snapshot lambda bind late: both exist before the first sample.
            # Without a mirror nothing reads OTel metrics: no meter provider at all.
            instruments = (
                SnapshotInstruments(
                    self._resource,
                    [*readers, *others],
                    run_id=self._run_id,
                    pipeline=self._pipeline,
                    snapshot=lambda: sampler.snapshot,
                    attributes=self._metric_attributes,
                )
                if readers or others
                else None
            )
            self.instruments = instruments
            # with a helper process, the sampler thread takes the first sample: the
            # helper's start-up (about 0.1 s) is not spent on the pipeline's thread
            sampler.start(first_sample_now=not self.in_subprocess)
        except Exception as exc:
            self._close_helper()
            logger.warning("otel-tracker resource sampling is off: %s", exc)
            return f"resource sampling unavailable: {exc}"
        self.sampler = sampler
        return None

    @property
    def drives_heartbeat(self) -> bool:
        """Whether the sampler thread writes the run's heartbeats (no thread of its own)."""
        return self.sampler is not None and self._heartbeat is not None

    def _beat(self, sample_follows: bool) -> None:
        heartbeat, helper = self._heartbeat, self._helper
        if self._heartbeat_shared and helper is not None and heartbeat.path is not None:
            payload = heartbeat.payload()
            if payload is None and heartbeat.shared:
                return  # a write is under way: it refreshes the heartbeat itself
            if payload is not None and helper.heartbeat(
                heartbeat.path, payload, send_now=not sample_follows, on_error=heartbeat.report
            ):
                return
        heartbeat.write_here()

    def summary(self) -> dict[str, Any] | None:
        """The manifest's ``telemetry`` section, or ``None`` when not sampling."""
        return self.sampler.summary() if self.sampler is not None else None

    def resource_line(self) -> str:
        """``CPU 187% of 2 · PSS 3.1 GB · GPU0 92% 14/80 GB`` from the latest samples
        (see :mod:`otel_tracker.progress.resources`); ``""`` before the first."""
        if self.sampler is None:
            return ""
        recent = [{p.key: p.value for p in s.points} for s in self.sampler.latest(RECENT_SAMPLES)]
        return samples_text(recent, os.cpu_count())

    def history(self, key: str, seconds: float | None = None) -> list[tuple[float, float]]:
        """Recent values of one series (see :meth:`Run.resource_history`)."""
        return self.sampler.history(key, seconds) if self.sampler is not None else []

    def step_ended(self, index: int) -> dict[str, Any] | None:
        """Aggregates of a step that just ended (a short step still gets a sample)."""
        if self.sampler is None:
            return None
        try:
            if not self._stopped:  # else stop() took the final sample, and the helper is gone
                self.sampler.sample_if_older(min(1.0, self.interval))
            return self.sampler.close_step(index) or None
        except Exception:
            logger.warning("otel-tracker step resources failed", exc_info=True)
            return None

    def stop(self) -> str | None:
        """Stop sampling after a final sample (the last line of telemetry.jsonl); the
        problem, for the record, if a sample was still under way and was given up."""
        self._stopped = True
        if self._helper is not None:
            self._helper.reply_timeout = STOP_REPLY_TIMEOUT_S
        answered = True
        if self.sampler is not None:
            answered = self.sampler.stop(final_sample=True)
        self._close_helper(kill=not answered)
        if self._telemetry_file is not None:
            self._telemetry_file.close()
        if answered:
            return None
        from ..sampling.sampler import STOP_JOIN_S

        problem = (
            "resource sampling did not answer at the run's end (a stopped or overloaded "
            f"helper?) within {STOP_JOIN_S:g}s: the final sample is missing"
        )
        logger.warning("otel-tracker %s", problem)
        return problem

    def _close_helper(self, kill: bool = False) -> None:
        helper, self._helper = self._helper, None
        if helper is not None:
            helper.close(kill=kill)
        if self._heartbeat_shared:
            # the helper is gone (reaped or killed): no heartbeat of its can land any more
            self._heartbeat_shared = False
            self._heartbeat.unshare()

    def shutdown(self) -> None:
        """Shut the metric readers down (their final export may wait on a network)."""
        if self.instruments is not None:
            self.instruments.shutdown()

    def set_gauge(self, name: str, value: float) -> None:
        self.user_metrics.gauges[_metric_name(name)] = _finite(name, value)

    def add_count(self, name: str, n: float = 1) -> None:
        key = _metric_name(name)
        value = _finite(name, n)
        if value < 0:
            raise ConfigError(
                f"metric {name!r} is a running total: add_count needs n >= 0, got {n!r}"
            )
        self.user_metrics.add(key, value)


_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,62}$")


def _metric_name(name: str) -> str:
    if not isinstance(name, str) or not _METRIC_NAME.match(name):
        raise ConfigError(f"metric names are lower-case letters, digits, '_' and '.', got {name!r}")
    return name


def _finite(name: str, value: float) -> float:
    if not is_real(value) or not math.isfinite(value):
        raise ConfigError(f"metric {name!r} needs a finite number, got {value!r}")
    return float(value)
