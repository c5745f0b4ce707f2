"""How a :class:`~otel_tracker.record.run.Run` opens, phase by phase: its state, its record,
its writers, its tracing and its threads (each phase needs the one before)."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from .. import semconv
from ..clock import AnchoredClock, Clock, SystemClock
from ..config import ReaderConfig
from ..contract.document import manifest_encoder
from ..contract.heartbeat import ManifestHeartbeat
from ..contract.liveness import RunLock
from ..contract.manifest_writer import ManifestFileWriter
from ..contract.parts import HOSTS_DIR, PARTS_DIR, host_dir_name
from ..contract.paths import LOCK_NAME, create_run_dir, new_run_id
from ..contract.ranks import rank_part_name
from ..contract.series import METRICS_NAME
from ..exporters.attributes import param_attributes
from ..exporters.manifest import ManifestSpanProcessor
from ..exporters.mirrors import NO_MIRRORS, Mirrors
from ..progress.eta import StepHistory
from ..version import __version__
from .arguments import (
    new_run_record,
)
from .job import (
    JobIdentity,
    detect_job,
    launcher_agent_pid,
    next_run_of,
    rank_flush_interval,
    rank_heartbeat,
)
from .job_rendezvous import job_run
from .join import JoinTarget, join_target
from .reporter import ProgressReporter
from .series import MetricLog
from .signals import NO_DEFERRAL, SignalChain
from .telemetry import RunTelemetry
from .tracing import (
    job_trace_context,
    parent_context,
    resource_attributes,
    tracker_span_limits,
)

logger = logging.getLogger(__name__)

# What the read side lends the writer, through the composition root (api.track_run):
# the pipeline's median step durations and how many runs they come from (by name,
# scenario and history key digest), and the end-of-run report written into the
# run's directory.
PipelineHistory = Callable[[str, "str | None", "str | None"], StepHistory]
RunReport = Callable[[Path], None]


class RunOpening:
    """The opening phases of :class:`~otel_tracker.record.run.Run` (a base class of it);
    it sets the state every other part of the run uses."""

    def _init_state(self, clock: Clock | None) -> None:
        self._clock = clock or SystemClock()
        # every "now" of the run (spans, heartbeats, progress, ETA, telemetry lines) is
        # read here: a system clock stepped mid-run moves no duration (issue 31.9)
        self._anchored = AnchoredClock(self._clock)
        self._owner_pid = os.getpid()
        self._stop_heartbeat = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._signals: SignalChain | None = None
        # tracker bookkeeping on the main thread runs inside this (see signals.py)
        self._deferring = NO_DEFERRAL
        self._pending_signal: str | None = None
        self._warned_after_end = False
        self._run_token: Any = None
        self._var_token: Any = None

    def _open_record(
        self,
        params: dict[str, Any],
        scenario: str | None,
        kind: str | None,
        env: Mapping[str, str],
        history: PipelineHistory | None,
        key: dict[str, Any] | None = None,
    ) -> None:
        """The run's id and directory (or a launcher's run to join), and its first record."""
        self.join = join_target(env, self.config.join)
        found = (
            detect_job(env, self.config.job_id)
            if self.join is None and self.config.distributed
            else None
        )
        self.job = next_run_of(found) if found is not None else None
        self._handoff: list[SpanProcessor] = []
        if self.job is not None:
            self._open_job(self.job)
        elif self.join is not None:
            # the launcher samples the whole process tree (this process included) into
            # the run's telemetry, serves its Prometheus and TensorBoard mirrors, and
            # sends our spans to its OTLP collector (our exit never waits on it)
            self._handoff = self.join.span_handoff(self.config.mirrors)
            self.config = dataclasses.replace(
                self.config,
                resources=False,
                mirrors=self.join.mirror_config(self.config.mirrors),
            )
            self.run_id, self.dir = self.join.run_id, self.join.run_dir
        else:
            self.run_id, self.dir = self._make_run_dir(self.name)
        # for what the run's end hands to a detached process: the pipeline may change
        # its working directory meanwhile, and a relative root would then name another
        self.absolute_dir = self.dir.absolute() if self.dir is not None else None
        self.record = new_run_record(
            self.run_id,
            self.name,
            scenario=scenario,
            kind=kind,
            params=params,
            run_dir=self.dir,
            join=self.join,
            config=self.config,
            environ=env,
        )
        self.record.history_key = key
        if self.job is not None:
            self.record.job = self.job.section()
        if self.dir is not None and history is not None:  # else the root is unusable
            digest = key["digest"] if key else None
            found = history(self.name, scenario, digest)
            self.record.history, self.record.history_runs = found.durations, found.runs
            self.record.history_per_item = found.per_item
        if self.join is not None:
            metrics_path: Path | None = self.join.metrics_path
        else:
            metrics_path = self.dir / METRICS_NAME if self.dir is not None else None
        self.metrics = MetricLog(
            metrics_path,
            wall_ns=self._anchored.wall_ns_at,
            monotonic_ns=self._anchored.monotonic_ns,
            warn=self.record.warn,
            on_late=lambda: self._after_end("log"),
            # a refresh (no fsync, skipped while another write runs): after a SIGKILL the
            # manifest's summary lags metrics.jsonl by a flush, not a heartbeat. Not for
            # a job's other ranks: thousands of parts rewritten every second would be
            # the shared filesystem's main load; theirs follow at their heartbeat
            on_flushed=(lambda: None)
            if self.job is not None and not self.job.owner
            else lambda: self.manifest_processor.write(durable=False),
            flush_interval=None
            if self.job is None or self.job.owner
            else rank_flush_interval(self.job.world_size),
        )
        self.record.metrics = self.metrics.summary

    def _open_job(self, job: JobIdentity) -> None:
        """A rank of a distributed job: the job's run (rank 0 writes its manifest,
        any other rank its own part), sampled by one rank per host."""
        try:
            self.run_id, self.dir = job_run(self.config.root, self.name, job)
        except OSError as exc:
            logger.warning(
                "otel-tracker cannot meet the other ranks of job %s under %s (%s); "
                "this rank is tracked as a run of its own",
                job.key,
                self.config.root,
                exc,
            )
            self.job = None
            self.run_id, self.dir = self._make_run_dir(self.name)
            return
        self.config = dataclasses.replace(
            self.config, resources=self.config.resources and job.samples_host
        )
        if job.owner:
            return
        self.join = JoinTarget(
            self.dir, self.run_id, format(job.run_span_id, "016x"), rank_part_name(job.rank)
        )
        try:
            (self.dir / PARTS_DIR).mkdir(exist_ok=True)
        except OSError:
            pass  # the part's writer says so, once
        self.config = dataclasses.replace(
            self.config,
            mirrors=self.join.mirror_config(self.config.mirrors),
            # the shared filesystem's load stays bounded however many ranks write
            heartbeat_interval=rank_heartbeat(job.world_size, self.config.heartbeat_interval),
        )

    def _open_writers(self, env: Mapping[str, str]) -> None:
        """The manifest's writer, the live progress display and the run's lock."""
        writer = (
            ManifestFileWriter(self.manifest_path, encode=manifest_encoder())
            if self.manifest_path
            else None
        )
        self.reporter = ProgressReporter(
            self.record,
            mode=self.config.progress,
            interval=self.config.progress_interval,
            now_ns=self._anchored.now_ns,
            progress=self._steps.progress,
            stuck_after=ReaderConfig.resolve(root=self.config.root, environ=env).stuck_after,
            label=self.name if self.join else None,
        )
        self.manifest_processor = ManifestSpanProcessor(
            self.record,
            writer,
            now_ns=self._anchored.now_ns,
            progress=self._steps.progress,
            listeners=[self.reporter.on_transition],
        )
        if self.join is not None:
            self._lock: RunLock | None = RunLock(self.dir / PARTS_DIR / self.join.lock_name)
        else:
            self._lock = RunLock(self.dir / LOCK_NAME) if self.dir else None
        if self._lock is not None and not self._lock.acquire(f"{os.getpid()}\n"):
            # readers must not take a lock that was never held as proof of death
            self.record.tracker["lock_file"] = None

    def _open_tracing(
        self,
        span_processors: Sequence[SpanProcessor],
        service_name: str | None,
        env: Mapping[str, str],
    ) -> None:
        """Mirrors, the private tracer provider, run telemetry and the run's span."""
        self.mirrors = self._start_mirrors()
        for sink in self.mirrors.series_sinks:
            self.metrics.add_sink(sink)
        job_trace = job_trace_context(self.job, env) if self.job is not None else None
        self._provider = TracerProvider(
            resource=Resource.create(resource_attributes(self, service_name, env)),
            sampler=ALWAYS_ON,
            shutdown_on_exit=False,
            span_limits=tracker_span_limits(),
            # rank 0's run span gets the id every other rank nests its own under
            **({"id_generator": job_trace.ids} if job_trace and self.job.owner else {}),
        )
        self._provider.add_span_processor(self.manifest_processor)
        for processor in [*self.mirrors.span_processors, *self._handoff, *span_processors]:
            self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer(semconv.TRACER_NAME, __version__)
        self.telemetry = self._new_telemetry()
        # in the document too: a process that does not sample (a joined child, a
        # rank) would otherwise record its counters and gauges nowhere
        self.record.user_metrics = self.telemetry.user_metrics.snapshot
        context = parent_context(env)
        if job_trace is not None:
            context = job_trace.root if self.job.owner else job_trace.parent
        self._span = self._tracer.start_span(
            f"RUN {self.name}" if self.job is None or self.job.owner else f"RANK {self.job.rank}",
            context=context,
            kind=SpanKind.SERVER,
            attributes=self._span_attributes(),
            start_time=self._anchored.now_ns(),
        )
        self._context = trace.set_span_in_context(self._span)
        self._steps.bind(self._tracer, self._context, self.telemetry.step_ended)

    def _new_telemetry(self) -> RunTelemetry:
        return RunTelemetry(
            run_id=self.run_id,
            pipeline=self.name,
            run_dir=self._telemetry_dir(),
            resource=self._provider.resource,
            interval=self.config.sample_interval,
            step_counters=self._steps.counters,
            current_step=self._steps.current_index,
            step_name=self._step_name,
            document=self._state_document,
            metric_readers=self.mirrors.metric_readers,
            sample_exporters=self.mirrors.sample_exporters,
            in_subprocess=self.config.sample_in_subprocess,
            heartbeat=ManifestHeartbeat(self.manifest_processor, self.config.heartbeat_interval),
            wall=lambda: self._anchored.now_ns() / 1e9,
            series=self.metrics.latest,
            telemetry_window=self.config.telemetry_window,
            telemetry_rollup=self.config.telemetry_rollup,
            # a host's sampling rank samples the launcher's tree: every rank on the host
            sample_root=launcher_agent_pid() if self.job is not None else None,
            metric_attributes=None
            if self.job is None
            else {
                "host.name": str(self.record.process.get("host") or ""),
                semconv.JOB_RANK: self.job.rank,
            },
        )

    def _telemetry_dir(self) -> Path | None:
        """Where the telemetry goes: the run's directory, or for a host's sampling rank
        other than rank 0 its host's own under ``hosts/`` (one writer per file)."""
        if self.dir is None or self.job is None or self.job.owner:
            return self.dir
        host = host_dir_name(str(self.record.process.get("host") or "host"))
        path = self.dir / HOSTS_DIR / host
        if self.config.resources:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.record.warn(f"host telemetry not written: {exc}")
                return None
        return path

    def _span_attributes(self) -> dict[str, Any]:
        # params first: should a limit of the SDK's drop attributes, it drops the oldest
        attributes: dict[str, Any] = {
            **param_attributes(self.record.params),
            semconv.CICD_PIPELINE_NAME: self.name,
            semconv.CICD_PIPELINE_RUN_ID: self.run_id,
            semconv.CICD_PIPELINE_ACTION_NAME: "RUN",
        }
        if self.scenario:
            attributes[semconv.RUN_SCENARIO] = self.scenario
        if self.record.kind:
            attributes[semconv.RUN_KIND] = self.record.kind
        if self.dir:
            attributes[semconv.RUN_DIR] = str(self.dir)
        return attributes

    def _start_threads(self) -> None:
        self.reporter.start()
        if self.config.resources:
            problem = self.telemetry.start()
            if problem:
                self.record.warn(problem)
            else:
                self.record.telemetry = self.telemetry.summary
                self.reporter.resources = self.telemetry.resource_line
        if not self.telemetry.drives_heartbeat:
            self._heartbeat_thread = threading.Thread(
                target=self._heartbeat_loop,
                name=f"otel-tracker-heartbeat-{self.run_id}",
                daemon=True,
            )
            self._heartbeat_thread.start()

    def _start_mirrors(self) -> Any:
        """OTLP / Prometheus / TensorBoard as configured; each failure is a warning."""
        if not self.config.mirrors.enabled:
            return NO_MIRRORS
        mirrors = Mirrors.start(
            self.config.mirrors,
            run_dir=self.dir,
            params=self.record.params,
            resources=self.config.resources,
        )
        for problem in mirrors.problems:
            self.record.warn(problem)
        self.record.tracker["mirrors"] = mirrors.summary()
        return mirrors

    def _make_run_dir(self, name: str) -> tuple[str, Path | None]:
        try:
            return create_run_dir(self.config.root, name)
        except OSError as exc:
            logger.warning(
                "otel-tracker cannot create a run directory under %s (%s); "
                "the run goes on without a manifest",
                self.config.root,
                exc,
            )
            return new_run_id(name), None
