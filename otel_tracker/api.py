"""The public entry points: ``track_run``, the ``step`` decorator, ``current_run``/``current_step``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .config import TrackerConfig
from .errors import ConfigError
from .record import current
from .record.noop import NoopRun, NoopStep
from .record.step_functions import step_function

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor

    from .clock import Clock
    from .record.run import Run, Step

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger(__name__)

_NOOP_STEP = NoopStep()


def track_run(
    name: str,
    *,
    steps: Iterable[str] | None = None,
    params: Mapping[str, Any] | None = None,
    scenario: str | None = None,
    kind: str | None = None,
    expected_durations: Mapping[str, float] | None = None,
    key_params: Sequence[str] | None = None,
    ignore_params: Sequence[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    enabled: bool | None = None,
    heartbeat_interval: float | None = None,
    install_signal_handlers: bool | None = None,
    export_timeout: float | None = None,
    progress: str | None = None,
    progress_interval: float | None = None,
    resources: bool | None = None,
    sample_interval: float | None = None,
    otlp: bool | str | None = None,
    prometheus: bool | int | str | None = None,
    tensorboard: bool | None = None,
    attach_context: bool | None = None,
    sample_in_subprocess: bool | None = None,
    join: bool | None = None,
    distributed: bool | None = None,
    job_id: str | None = None,
    summary_files: bool | None = None,
    retention: str | None = None,
    telemetry_window: float | None = None,
    telemetry_rollup: float | None = None,
    pack_telemetry: bool | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    service_name: str | None = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
) -> Run | NoopRun:
    """Start tracking a pipeline run; use it as a context manager.

    ``steps`` declares the pipeline's steps in order (they start ``pending``).
    ``progress`` is ``"auto"`` (a live display on a terminal, plain lines
    otherwise, on stderr), ``"live"``, ``"plain"``, ``"log"`` (the
    ``otel_tracker.progress`` logger) or ``"off"``.
    ``key_params`` names the params that change the work (``["epochs", "n"]``,
    nested ones dotted): the ETA and the analysis then learn only from earlier runs
    with the same values of them, so a 10-epoch run is never timed by 100-epoch ones;
    ``ignore_params=["seed"]`` keys on every param but those instead.
    ``kind`` says what the run is (``"training"``, ``"evaluation"``...); it is
    recorded as given and never guessed.
    Mirrors (each needs its extra): ``otlp=True`` or an endpoint URL sends
    spans and metrics to a collector; ``prometheus=True``, a port or
    ``"host:port"`` serves ``/metrics``; ``tensorboard=True`` writes event files
    under ``<run>/tensorboard/``.
    ``sample_in_subprocess=False`` samples process, system and GPU resources on a
    thread of this process instead of a helper process (which never competes
    with the pipeline for the GIL).
    In a process started by ``otel-tracker run`` or ``pipeline run`` (which put
    ``OTEL_TRACKER_RUN_DIR`` and ``TRACEPARENT`` in its environment) the run joins
    the launcher's: its steps nest under the launching step, in the same trace,
    recorded in its own part file; ``join=False`` (``OTEL_TRACKER_JOIN=false``)
    tracks it as a run of its own.
    Every rank of a ``torchrun``/``srun``/``mpirun`` job (their variables are read)
    joins one run: rank 0 writes the manifest, each other rank its part, local rank 0
    samples its host (see docs/distributed.md). ``job_id`` (``OTEL_TRACKER_JOB_ID``)
    names the job where the launcher does not, or overrides it; ``distributed=False``
    (``OTEL_TRACKER_DISTRIBUTED=false``) tracks each rank as a run of its own.
    ``summary_files=False`` (``OTEL_TRACKER_SUMMARY_FILES=false``) skips the
    report (``summary.json``/``.md``/``.txt``) a run writes into its directory when
    it ends (about 0.1-0.2 s: reading the baseline and the pipeline's history).
    ``retention="keep-last=50,older-than=90d"`` (``OTEL_TRACKER_RETENTION``) prunes
    the root when the run ends, in a detached process (see ``otel-tracker prune``).
    ``telemetry.jsonl`` keeps every resource sample of the last ``telemetry_window``
    seconds (3600; ``OTEL_TRACKER_TELEMETRY_WINDOW``; 0 keeps all) and rolls older
    ones up per ``telemetry_rollup`` seconds (60) into min/mean/max/last; a finished
    run's telemetry over 256 KiB is gzipped by a detached process unless
    ``pack_telemetry=False`` (see ``otel-tracker compact``).
    ``attach_context=True`` makes the run's and steps' spans OpenTelemetry's
    current span, so the application's own spans nest under them; the default
    does so only when a global tracer provider is installed.
    Each keyword left as ``None`` comes from its ``OTEL_TRACKER_*`` variable,
    else the default. When tracking is disabled this returns a no-op run
    with the same methods.

    >>> with track_run("demo", steps=["load", "train"], params={"seed": 1}) as run:
    ...     with run.step("load") as step:
    ...         step.advance()
    """
    config = TrackerConfig.resolve(
        root=root,
        enabled=enabled,
        heartbeat_interval=heartbeat_interval,
        install_signal_handlers=install_signal_handlers,
        export_timeout=export_timeout,
        progress=progress,
        progress_interval=progress_interval,
        resources=resources,
        sample_interval=sample_interval,
        otlp=otlp,
        prometheus=prometheus,
        tensorboard=tensorboard,
        attach_context=attach_context,
        sample_in_subprocess=sample_in_subprocess,
        join=join,
        distributed=distributed,
        job_id=job_id,
        summary_files=summary_files,
        retention=retention,
        telemetry_window=telemetry_window,
        telemetry_rollup=telemetry_rollup,
        pack_telemetry=pack_telemetry,
        environ=environ,
    )
    if not config.enabled:
        return NoopRun(name)
    retain = _retention(config)
    # the composition root: the only place where the writer is handed the read side
    from functools import partial

    from .analysis.summary_files import write_summary_quietly
    from .history.pipeline_history import step_medians
    from .record.run import Run  # the OTel SDK is imported only when a run is really tracked

    return Run(
        name,
        steps=steps,
        params=params,
        scenario=scenario,
        kind=kind,
        expected_durations=expected_durations,
        key_params=key_params,
        ignore_params=ignore_params,
        config=config,
        clock=clock,
        span_processors=span_processors,
        environ=environ,
        service_name=service_name,
        history=partial(step_medians, config.root),
        report=partial(write_summary_quietly, root=config.root),
        retention=retain,
    )


def _retention(config: TrackerConfig) -> str | None:
    """The prune policy to apply when the run ends, if one is set: a bad argument
    raises, a bad environment value warns and is ignored."""
    if config.retention is None:
        return None
    from .analysis.retention import RetentionPolicy

    try:
        RetentionPolicy.parse(config.retention)
    except ValueError as exc:
        if not config.retention_from_env:
            raise ConfigError(str(exc)) from None
        logger.warning("otel-tracker: ignoring OTEL_TRACKER_RETENTION: %s", exc)
        return None
    return config.retention


def current_run() -> Run | None:
    """The run this asyncio task or thread entered with ``with track_run(...)``, else
    the process's."""
    return current.active("run")


def current_step() -> Step | NoopStep:
    """The step this asyncio task (or a task it was started from) or thread entered,
    else the process's; a no-op step outside any."""
    found = current.active("step")
    return found if found is not None else _NOOP_STEP


@overload
def step(name: F, /) -> F: ...
@overload
def step(name: str | None = None, /, **kwargs: Any) -> Callable[[F], F]: ...


def step(name: Any = None, /, **kwargs: Any) -> Any:
    """Decorate a function as a pipeline step of the current run.

    ``@step`` uses the function's name, ``@step("Train expert", total=...)`` a
    given one. Outside a tracked run the function simply runs. Inside, use
    :func:`current_step` to ``advance()``. A coroutine function's step lasts
    while it is awaited; a generator's or async generator's from its first item
    to exhaustion, an exception or ``close()``.
    """

    def decorate(func: F, step_name: str) -> F:
        return step_function(func, step_name, kwargs)  # type: ignore[no-any-return]

    if callable(name):
        return decorate(name, name.__name__)
    return lambda func: decorate(func, name or func.__name__)
