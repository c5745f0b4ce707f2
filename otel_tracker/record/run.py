"""``Run``: a pipeline run as a root span; its steps (:mod:`otel_tracker.record.step`) are
child spans, started and ended by :class:`~otel_tracker.record.step_spans.StepSpans`.
How it opens is in :mod:`~otel_tracker.record.run_opening`, how it ends in
:mod:`~otel_tracker.record.run_ending`; this module is its public API.

The run owns a private ``TracerProvider`` (the application's global one is never
touched) whose first processor is the synchronous :class:`ManifestSpanProcessor`;
mirror exporters are added after it and flushed with a hard deadline at the end.
Everything that writes checks the owning pid, so a forked child never ends or
rewrites its parent's run.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import SpanProcessor

from ..clock import Clock, iso_utc
from ..config import TrackerConfig
from ..contract.document import StepRecord
from ..contract.paths import MANIFEST_NAME
from ..errors import ConfigError
from ..exporters.attributes import param_attributes
from ..values import checked_name, checked_whole, clean_text, is_real
from . import current
from .arguments import (
    checked_durations,
    checked_scores,
    history_key,
    recorded_params,
    validate_steps,
)
from .run_ending import RunEnding
from .run_opening import PipelineHistory, RunOpening, RunReport
from .series import NO_VALUE
from .signals import process_signals
from .step import Step
from .step_spans import StepSpans
from .tracing import wants_otel_context

logger = logging.getLogger(__name__)


class Run(RunOpening, RunEnding):
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
        key_params: Sequence[str] | None = None,
        ignore_params: Sequence[str] | None = None,
        config: TrackerConfig,
        clock: Clock | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        environ: Mapping[str, str] | None = None,
        service_name: str | None = None,
        history: PipelineHistory | None = None,
        report: RunReport | None = None,
        retention: str | None = None,
    ) -> None:
        """Check the arguments, then open the record, its writers, its tracing and its
        threads, in that order (each phase needs the one before).

        ``history`` and ``report`` are the read side's, handed in by the composition
        root (:func:`otel_tracker.track_run`): the pipeline's step medians for the
        ETA, and the summary files written when the run ends. ``retention`` is a
        prune policy (already checked) applied by a detached process at the end."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("a run needs a non-empty name")
        name = clean_text(name)
        recorded = recorded_params(params)
        key = history_key(recorded, key_params, ignore_params)
        declared = validate_steps(steps)
        durations = checked_durations(expected_durations)
        scenario = checked_name(scenario, "scenario")
        kind = checked_name(kind, "kind")
        if kind is not None and not kind.strip():
            raise ConfigError(f"kind must be a non-empty string such as 'training', got {kind!r}")
        env = os.environ if environ is None else environ
        self.name, self.scenario, self.config = name, scenario, config
        self._report = report
        self._retention = retention
        self._init_state(clock)
        self._open_record(recorded, scenario, kind, env, history, key)
        self.record.declare_steps(declared, durations)
        self._steps = StepSpans(self.record, anchored=self._anchored, owner_pid=self._owner_pid)
        if self.dir is None:
            self.record.warn(f"manifest not written: run directory under {config.root} unavailable")
        self._open_writers(env)
        self._open_tracing(span_processors, service_name, env)
        atexit.register(self._at_exit)
        if self.config.install_signal_handlers:
            # registered from any thread: a signal ends every open run of the process,
            # though only a run on the main thread can install the handlers
            self._signals = process_signals()
            self._signals.register(self._on_signal)
            self._deferring = self._signals.deferring
        with self._deferring:
            self._start_threads()

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

    def add_artifact(
        self, path: str | os.PathLike[str], kind: str | None = None, *, best: bool = False
    ) -> None:
        """Register a file or directory the run produced; ``best=True`` marks the one a
        score chose (the best checkpoint). Registering a path again updates its entry."""
        self._add_artifact(path, kind, None, best)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Add params learnt while the run goes (a trainer's hyperparameters): merged
        into the recorded ones like ``dict.update``, secrets redacted. The run's
        configuration key (``key_params``) stays the one it started with."""
        recorded = recorded_params(params)
        if not recorded or self._in_fork_child() or self._after_end("log_params"):
            return
        with self._deferring, self._steps.transition() as live:
            if live:
                with self.record.lock:
                    self.record.params.update(recorded)
                self._span.set_attributes(param_attributes(recorded))
                self.manifest_processor.write()

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
                # the same values as series (their curves), best by the same direction;
                # held signals: a run's end flushes the series and takes its locks
                self.metrics.declare(
                    {k: directions.get(k) or self.record.score_direction(k) for k in values}
                )
                self.metrics.log(values, NO_VALUE, epoch)
                self.record.log_scores(values, directions, at, epoch)
                self._span.add_event("scores", event)
                self.manifest_processor.write()

    def log(
        self,
        values: Mapping[str, Any] | str,
        value: Any = NO_VALUE,
        *,
        step: int | None = None,
        direction: Mapping[str, str] | None = None,
    ) -> None:
        """Record training metrics as series: ``run.log({"loss": 0.31, "acc": 0.92},
        step=epoch)`` or ``run.log("loss", 0.31)``.

        Values are numbers, numpy scalars or anything with ``__float__`` (convert a
        tensor on a GPU yourself, e.g. ``loss.item()``: we never force a device
        sync). ``step`` defaults to one more than the key's last step (from 0).
        ``direction`` says per key whether ``"max"`` or ``"min"`` is better, for the
        manifest's best. Cheap: under a microsecond for three values, no I/O; a
        background thread writes ``metrics.jsonl`` every second.
        """
        self._log(values, value, step, direction, None)

    def _log(self, values: Any, value: Any, step: Any, direction: Any, stage: str | None) -> None:
        """``log()`` for the run and its steps (``stage``: the step that logged)."""
        if direction is not None:
            with self._deferring:  # a signal's run end takes the same lock: held until after
                self.metrics.declare(direction)
        self.metrics.log(values, value, step, stage)

    def import_series(
        self, series: Mapping[str, Sequence[tuple[int, float, float | None]]], *, source: str
    ) -> list[str]:
        """Record series read from another tool's files (TensorBoard scalars, a W&B
        summary): per key, ``(step, value, unix time)`` points, with ``source`` naming
        the files (``"tensorboard:runs/exp1"``). A key already recorded is left as it
        is (what the run logged itself wins). The keys recorded."""
        if self._in_fork_child() or self._after_end("import_series"):
            return []
        with self._deferring:
            return self.metrics.import_series(series, source)

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
        self,
        path: str | os.PathLike[str],
        kind: str | None,
        step: StepRecord | None,
        best: bool = False,
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
        entry: dict[str, Any] = {"path": clean_text(str(p)), "kind": kind, "size_bytes": size}
        if best:
            entry["best"] = True
        with self._deferring, self._steps.transition() as live:
            if not live:
                return  # the run ended meanwhile: its final manifest is never rewritten
            with self.record.lock:
                entries = step.artifacts if step is not None else self.record.artifacts
                known = [i for i, a in enumerate(entries) if a.get("path") == entry["path"]]
                if known:
                    entries[known[0]] = entry
                else:
                    entries.append(entry)
                if step is not None:
                    step.invalidate()
            self.manifest_processor.write()

    def _state_document(self) -> dict[str, Any]:
        return self.record.to_dict(
            now_ns=self._anchored.now_ns(), progress=self._steps.progress, with_telemetry=False
        )

    def _step_name(self, index: int | None) -> str | None:
        if index is None or not 0 <= index < len(self.record.steps):
            return None
        return self.record.steps[index].name
