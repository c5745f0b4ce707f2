"""``Run``: a pipeline run as a root span; its steps (``step_handle.py``) are child spans,
started and ended by :class:`~otel_tracker.record.step_spans.StepSpans`.

The run owns a private ``TracerProvider`` (the application's global one is never
touched) whose first processor is the synchronous :class:`ManifestSpanProcessor`;
mirror exporters are added after it and flushed with a hard deadline at the end.
Everything that writes checks the owning pid, so a forked child never ends or
rewrites its parent's run.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from .. import __version__, semconv
from ..analysis.summary_files import write_summary_quietly
from ..clock import AnchoredClock, Clock, SystemClock, iso_utc
from ..config import ReaderConfig, TrackerConfig
from ..contract.atomic import ManifestFileWriter
from ..contract.heartbeat import ManifestHeartbeat
from ..contract.liveness import RunLock
from ..contract.parts import PARTS_DIR
from ..contract.paths import LOCK_NAME, MANIFEST_NAME, create_run_dir, new_run_id
from ..errors import ConfigError
from ..exporters.handoff import forward_part_spans
from ..exporters.manifest import ManifestSpanProcessor
from ..values import checked_name, checked_whole, clean_text, is_real
from . import current
from .document import StepRecord, manifest_encoder
from .join import join_target
from .reporter import ProgressReporter
from .setup import (
    NO_MIRRORS,
    checked_durations,
    checked_scores,
    new_run_record,
    param_attributes,
    parent_context,
    recorded_params,
    resource_attributes,
    shut_down_by,
    tracker_span_limits,
    validate_steps,
    wants_otel_context,
)
from .signals import NO_DEFERRAL, SignalChain, process_signals, signal_name
from .step import Step, mark_error, outcome_of
from .step_spans import StepSpans
from .telemetry import RunTelemetry

logger = logging.getLogger(__name__)


class Run:
    """A tracked pipeline run; use :func:`otel_tracker.track_run` to create one."""

    def __init__(
        self,
        name: str,
        *,
        steps: Iterable[str] | None = None,
        params: Mapping[str, Any] | None = None,
        scenario: str | None = None,
        kind: str | None = None,
        expected_durations: Mapping[str, float] | None = None,
        config: TrackerConfig,
        clock: Clock | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        environ: Mapping[str, str] | None = None,
        service_name: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("a run needs a non-empty name")
        name = clean_text(name)
        recorded = recorded_params(params)
        declared = validate_steps(steps)
        durations = checked_durations(expected_durations)
        scenario = checked_name(scenario, "scenario")
        kind = checked_name(kind, "kind")
        if kind is not None and not kind.strip():
            raise ConfigError(f"kind must be a non-empty string such as 'training', got {kind!r}")
        env = os.environ if environ is None else environ
        self.name = name
        self.scenario = scenario
        self.config = config
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

        self.join = join_target(env, config.join)
        handoff: list[SpanProcessor] = []
        if self.join is not None:
            # the launcher samples the whole process tree (this process included) into
            # the run's telemetry, serves its Prometheus and TensorBoard mirrors, and
            # sends our spans to its OTLP collector (our exit never waits on it)
            handoff = self.join.span_handoff(config.mirrors)
            config = self.config = dataclasses.replace(
                config, resources=False, mirrors=self.join.mirror_config(config.mirrors)
            )
            self.run_id, self.dir = self.join.run_id, self.join.run_dir
        else:
            self.run_id, self.dir = self._make_run_dir(name)
        self.record = new_run_record(
            self.run_id,
            name,
            scenario=scenario,
            kind=kind,
            params=recorded,
            run_dir=self.dir,
            join=self.join,
            config=config,
            environ=env,
        )
        self.record.declare_steps(declared, durations)
        self._steps = StepSpans(self.record, anchored=self._anchored, owner_pid=self._owner_pid)
        if self.dir is None:
            self.record.warn(f"manifest not written: run directory under {config.root} unavailable")

        writer = (
            ManifestFileWriter(self.manifest_path, encode=manifest_encoder())
            if self.manifest_path
            else None
        )
        self.reporter = ProgressReporter(
            self.record,
            mode=config.progress,
            interval=config.progress_interval,
            now_ns=self._anchored.now_ns,
            progress=self._steps.progress,
            stuck_after=ReaderConfig.resolve(root=config.root, environ=env).stuck_after,
            label=name if self.join else None,
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

        self.mirrors = self._start_mirrors()
        self._provider = TracerProvider(
            resource=Resource.create(resource_attributes(self, service_name, env)),
            sampler=ALWAYS_ON,
            shutdown_on_exit=False,
            span_limits=tracker_span_limits(),
        )
        self._provider.add_span_processor(self.manifest_processor)
        for processor in [*self.mirrors.span_processors, *handoff, *span_processors]:
            self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer(semconv.TRACER_NAME, __version__)
        self.telemetry = RunTelemetry(
            run_id=self.run_id,
            pipeline=name,
            run_dir=self.dir,
            resource=self._provider.resource,
            interval=config.sample_interval,
            step_counters=self._steps.counters,
            current_step=self._steps.current_index,
            step_name=self._step_name,
            document=self._state_document,
            metric_readers=self.mirrors.metric_readers,
            sample_exporters=self.mirrors.sample_exporters,
            in_subprocess=config.sample_in_subprocess,
            heartbeat=ManifestHeartbeat(self.manifest_processor, config.heartbeat_interval),
            wall=lambda: self._anchored.now_ns() / 1e9,
        )

        # params first: should a limit of the SDK's drop attributes, it drops the oldest
        attributes: dict[str, Any] = {
            **param_attributes(self.record.params),
            semconv.CICD_PIPELINE_NAME: name,
            semconv.CICD_PIPELINE_RUN_ID: self.run_id,
            semconv.CICD_PIPELINE_ACTION_NAME: "RUN",
        }
        if scenario:
            attributes[semconv.RUN_SCENARIO] = scenario
        if kind:
            attributes[semconv.RUN_KIND] = kind
        if self.dir:
            attributes[semconv.RUN_DIR] = str(self.dir)
        self._span = self._tracer.start_span(
            f"RUN {name}",
            context=parent_context(env),
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=self._anchored.now_ns(),
        )
        self._context = trace.set_span_in_context(self._span)
        self._steps.bind(self._tracer, self._context, self.telemetry.step_ended)

        atexit.register(self._at_exit)
        if config.install_signal_handlers:
            # registered from any thread: a signal ends every open run of the process,
            # though only a run on the main thread can install the handlers
            self._signals = process_signals()
            self._signals.register(self._on_signal)
            self._deferring = self._signals.deferring
        with self._deferring:
            self._start_threads()

    def _start_threads(self) -> None:
        self.reporter.start()
        if self.config.resources:
            problem = self.telemetry.start()
            if problem:
                self.record.warn(problem)
            else:
                self.record.telemetry = self.telemetry.summary
        if not self.telemetry.drives_heartbeat:
            self._heartbeat_thread = threading.Thread(
                target=self._heartbeat_loop,
                name=f"otel-tracker-heartbeat-{self.run_id}",
                daemon=True,
            )
            self._heartbeat_thread.start()

    # -- public API ------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path | None:
        """Where this process's record is written: the run's manifest, or its part
        file when it joined a launcher's run (``None`` if the root was unusable)."""
        if self.join is not None:
            return self.join.part_path
        return self.dir / MANIFEST_NAME if self.dir else None

    @property
    def trace_id(self) -> str:
        return format(self._span.get_span_context().trace_id, "032x")

    @property
    def ended(self) -> bool:
        return self._steps.ended

    def step(
        self,
        name: str,
        *,
        total: int | None = None,
        unit: str | None = None,
        expected_duration: float | None = None,
    ) -> Step:
        """A step to use as ``with run.step("Train expert") as step:``.

        A declared step is matched by name; an undeclared one is appended.
        """
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("a step needs a non-empty name")
        name = clean_text(name)
        unit = checked_name(unit, "unit")
        if expected_duration is not None and not (
            is_real(expected_duration) and 0 < expected_duration < math.inf
        ):
            raise ConfigError(
                f"expected_duration must be positive seconds, got {expected_duration!r}"
            )
        if self._in_fork_child() or self._after_end(f"step {name!r}"):
            record = StepRecord(index=-1, name=name)  # a no-op step, not in the record
        else:
            with self._deferring:
                record = self.record.claim_step(name, expected_duration)
        handle = Step(self, record, None, unit)
        handle.set_total(total, unit)
        return handle

    def skip(self, name: str, reason: str = "") -> None:
        """Mark a step skipped: it leaves the enabled total and keeps its reason."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("a step needs a non-empty name")
        if self._after_end(f"skip {name!r}"):
            return
        with self._deferring:
            self._steps.skip(clean_text(name), clean_text(str(reason)))

    def add_artifact(self, path: str | os.PathLike[str], kind: str | None = None) -> None:
        """Register a file or directory the run produced."""
        self._add_artifact(path, kind, None)

    def log_scores(
        self,
        scores: Mapping[str, float],
        *,
        direction: Mapping[str, str] | None = None,
        epoch: int | None = None,
    ) -> None:
        """Record evaluation scores (per epoch or at the end).

        ``direction`` says per score whether higher (``"max"``, the default) or
        lower (``"min"``, e.g. a loss) is better, so the manifest's "best" is right.
        """
        values, directions = checked_scores(scores, direction)
        epoch = checked_whole(epoch, "epoch")
        if self._in_fork_child() or self._after_end("log_scores"):
            return
        at = iso_utc(self._anchored.now_ns())
        event: dict[str, float | int] = {f"score.{k}": v for k, v in values.items()}
        if epoch is not None:
            event["epoch"] = epoch
        with self._deferring, self._steps.transition() as live:
            if live:
                self.record.log_scores(values, directions, at, epoch)
                self._span.add_event("scores", event)
                self.manifest_processor.write()

    def set_gauge(self, name: str, value: float) -> None:
        """Record the current value of a metric of yours (FPS, episode reward...).

        Cheap: it stores a number; the sampler reports it as
        ``otel_tracker.user.<name>`` at its next sample.
        """
        if not self._in_fork_child() and not self._after_end(f"set_gauge {name!r}"):
            self.telemetry.set_gauge(name, value)

    def resource_history(self, key: str, seconds: float | None = None) -> list[tuple[float, float]]:
        """``(unix time, value)`` of one series over the last ``seconds`` (all kept: the
        last 720 samples, an hour at the default interval), for live views and
        notebooks. ``key`` is a series as in telemetry.jsonl, e.g.
        ``"process.memory.usage"`` or ``"system.cpu.utilization{cpu.logical_number=0}"``.
        """
        if self._in_fork_child():
            return []
        with self._deferring:  # it holds a lock the final manifest needs
            return self.telemetry.history(key, seconds)

    def add_count(self, name: str, n: float = 1) -> None:
        """Add ``n >= 0`` to a running total of yours (episodes, tokens...): a counter."""
        if not self._in_fork_child() and not self._after_end(f"add_count {name!r}"):
            self.telemetry.add_count(name, n)

    def end(self, error: BaseException | None = None) -> None:
        """End the run: completed, or as ``error`` dictates (see :func:`outcome_of`)."""
        result, exit_code, sig = outcome_of(error)
        self._finish(result, exit_code, sig or self._pending_signal, error)

    def end_with_signal(self, signum: int, forwarded: bool = False) -> None:
        """End the run as ended by signal ``signum`` (a wrapped command killed by it).

        SIGINT, SIGTERM and SIGHUP mean ``cancelled``; any other signal ``failed``.
        """
        name = signal_name(signum)
        cancelled = name in ("SIGINT", "SIGTERM", "SIGHUP")
        result = semconv.RESULT_CANCELLATION if cancelled else semconv.RESULT_FAILURE
        how = "forwarded to the command" if forwarded else "received by the command"
        self._finish(result, 128 + signum, name, None, f"{name} {how}")

    def _after_end(self, what: str) -> bool:
        """``True`` (and one warning per run) when the run has ended: late calls are
        ignored rather than raised, as a worker thread may race the run's end."""
        if not self._steps.ended:
            return False
        if not self._warned_after_end:
            self._warned_after_end = True
            logger.warning(
                "otel-tracker run %s has ended; %s and later calls on it are ignored",
                self.run_id,
                what,
            )
        return True

    def _in_fork_child(self) -> bool:
        """A forked child inherited this run: there it records nothing and takes none
        of its locks (a fork may copy one held by a thread that does not exist there)."""
        return os.getpid() != self._owner_pid

    def _current_span(self) -> Any:
        """The running step's span, else the run's (for trace-context propagation)."""
        return self._steps.current_span() or self._span

    def __enter__(self) -> Run:
        self._var_token = current.enter("run", self)
        if self._attach_context():
            self._run_token = otel_context.attach(self._context)
        return self

    def _attach_context(self) -> bool:
        """Whether entering the run or a step makes its span OpenTelemetry's current one."""
        return wants_otel_context(self.config.attach_context)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._run_token = self._run_token, None
        if token is not None:
            try:
                otel_context.detach(token)
            except Exception:
                pass  # detached from another context (e.g. a signal handler)
        var_token, self._var_token = self._var_token, None
        if var_token is not None:
            current.leave("run", self, var_token)
        self.end(exc)

    def __repr__(self) -> str:
        return f"<Run {self.run_id} {self.record.status}>"

    # -- steps (called by Step) ------------------------------------------------------
    def _start_step(self, step: Step) -> None:
        with self._deferring:
            self._steps.start(step)

    def _end_step(self, step: Step, error: BaseException | None) -> None:
        with self._deferring:
            self._steps.end(step, error)

    def _add_artifact(
        self, path: str | os.PathLike[str], kind: str | None, step: StepRecord | None
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"an artifact is a path, got {type(path).__name__} {path!r}")
        kind = checked_name(kind, "artifact kind")
        if self._in_fork_child() or self._after_end(f"artifact {os.fspath(path)!r}"):
            return
        p = Path(path)
        try:
            size = p.stat().st_size if p.is_file() else None
        except (OSError, ValueError):  # ValueError: a NUL in the name
            size = None
        entry = {"path": clean_text(str(p)), "kind": kind, "size_bytes": size}
        with self._deferring, self._steps.transition() as live:
            if not live:
                return  # the run ended meanwhile: its final manifest is never rewritten
            with self.record.lock:
                if step is not None:
                    step.artifacts.append(entry)
                    step.invalidate()
                else:
                    self.record.artifacts.append(entry)
            self.manifest_processor.write()

    # -- lifecycle -------------------------------------------------------------------
    def _start_mirrors(self) -> Any:
        """OTLP / Prometheus / TensorBoard as configured; each failure is a warning."""
        if not self.config.mirrors.enabled:
            return NO_MIRRORS
        from ..exporters.mirrors import Mirrors

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

    def _finish(
        self,
        result: str,
        exit_code: int | None,
        sig: str | None,
        error: BaseException | None,
        reason: str | None = None,
    ) -> None:
        if self._in_fork_child():
            return
        with self._deferring:
            self._finish_once(result, exit_code, sig, error, reason)
        if self._signals is not None and self._steps.ended:
            # only now: a fatal signal held while the run ended still reaches
            # _on_signal, which records that it ended the process
            self._signals.unregister(self._on_signal)

    def _finish_once(
        self,
        result: str,
        exit_code: int | None,
        sig: str | None,
        error: BaseException | None,
        reason: str | None,
    ) -> None:
        if not self._steps.close():
            return
        # one budget for the whole end: a dead endpoint may delay the exit by
        # export_timeout, not export_timeout plus the final sample and writes
        deadline = time.monotonic() + self.config.export_timeout
        try:
            self._stop_heartbeat.set()
            problem = self.telemetry.stop()
            if problem:
                self.record.warn(problem)
            self._steps.end_running(result, reason)
            span = self._span
            span.set_attribute(semconv.CICD_PIPELINE_RESULT, result)
            if exit_code is not None:
                span.set_attribute(semconv.PROCESS_EXIT_CODE, exit_code)
            if sig:
                span.set_attribute(semconv.RUN_SIGNAL, sig)
            mark_error(span, result, error, reason, exit_code)
            span.end(end_time=self._anchored.now_ns())
            if self.dir is not None and self.join is None and self.config.summary_files:
                # a joined child's steps are in the launcher's summary, written when it ends
                write_summary_quietly(self.dir, self.config.root)
        finally:
            self.reporter.stop()
            if self._lock is not None:
                self._lock.release()
            atexit.unregister(self._at_exit)
            if self.join is None and self.dir is not None:  # what joined children handed over
                forward_part_spans(self.mirrors, self.dir)
            self._shutdown_exporters(deadline)

    def _shutdown_exporters(self, deadline: float) -> None:
        """Flush and shut down every exporter until ``deadline`` (the manifest is
        already final): a dead endpoint must not hold the process hostage."""
        # side by side: spans must not wait behind a metric export stuck on a dead endpoint
        stuck = not shut_down_by(
            deadline,
            spans=(self._provider.shutdown,),
            metrics=(self.telemetry.shutdown, self.mirrors.close),
        )
        reported = None
        if self.mirrors.guards:
            reported = self.mirrors.report(self.config.export_timeout if stuck else None)
            if reported:
                self.record.warn(reported)
            self.record.tracker["mirrors"] = self.mirrors.summary()
            self.manifest_processor.write()
        if stuck and not reported:
            logger.warning(
                "otel-tracker exporters did not finish within %.1fs; unsent telemetry was dropped",
                self.config.export_timeout,
            )

    def _state_document(self) -> dict[str, Any]:
        return self.record.to_dict(
            now_ns=self._anchored.now_ns(), progress=self._steps.progress, with_telemetry=False
        )

    def _step_name(self, index: int | None) -> str | None:
        if index is None or not 0 <= index < len(self.record.steps):
            return None
        return self.record.steps[index].name

    def _heartbeat_loop(self) -> None:
        # Without resource sampling only (else the sampler thread beats, see heartbeat.py).
        # No fsync: each system call of this thread must win the GIL back from the
        # pipeline (benchmarks/bench_interference.py), and a heartbeat changes no state.
        while not self._stop_heartbeat.wait(self.config.heartbeat_interval):
            if self._in_fork_child():
                return
            self.manifest_processor.write(durable=False)

    def _on_signal(self, signum: int, fatal: bool) -> None:
        name = signal_name(signum)
        if self._steps.ended:
            if fatal:
                self._ended_by(signum)
            return
        self._pending_signal = name
        try:
            self._span.add_event("signal", {"signal": name})
        except Exception:
            pass
        if fatal:
            reason = f"interrupted by {name}"
            self._finish(semconv.RESULT_CANCELLATION, 128 + signum, name, None, reason)

    def _ended_by(self, signum: int) -> None:
        """A fatal signal arrived while this run was ending (say, after Ctrl-C) and
        ends the process: the record says so, not the outcome it predicted."""
        name = signal_name(signum)
        with self.record.lock:
            if self.record.signal == name or self.record.ended_ns is None:
                return
            before = self.record.signal or f"exit code {self.record.exit_code}"
            self.record.exit_code, self.record.signal = 128 + signum, name
        self.record.warn(f"{name} ended the process while the run was ending (after {before})")
        self.manifest_processor.write()

    def _at_exit(self) -> None:
        """The interpreter is exiting with the run still open."""
        if self._steps.ended or self._in_fork_child():
            return
        last = getattr(sys, "last_value", None)
        if isinstance(last, BaseException):
            self.end(last)
            return
        self.record.warn("run was not ended explicitly; it was closed at interpreter exit")
        self.end(None)
