"""What a run needs at its start and end, kept out of :mod:`otel_tracker.record.run`:
its first record, span attributes from params, the parent trace context, the
OTel resource, the pipeline's history for the ETA, argument checks, and the
bounded exporter shutdown's helpers."""

from __future__ import annotations

import getpass
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits

from .. import __version__, semconv
from ..config import ReaderConfig
from ..contract.liveness import process_identity
from ..contract.paths import LOCK_NAME
from ..environment import collect_environment, git_info, host_name
from ..errors import ConfigError
from ..progress.eta import HISTORY_RUNS, history_medians
from ..redact.text import redact_argv, redact_value, remember_environment
from ..values import clean_text, is_real
from .document import SCORE_DIRECTIONS, RunRecord, jsonable

if TYPE_CHECKING:
    from ..config import TrackerConfig
    from .join import JoinTarget
    from .run import Run

logger = logging.getLogger(__name__)


# Params on the run span: a bounded subset. The SDK keeps 128 attributes a span by
# default and drops the oldest past that; the manifest keeps every param.
MAX_PARAM_ATTRIBUTES = 64
MAX_PARAM_ATTRIBUTE_CHARS = 1024


def param_attributes(params: Mapping[str, Any]) -> dict[str, Any]:
    """The first :data:`MAX_PARAM_ATTRIBUTES` params (flattened, long strings cut) as
    span attributes, and how many were left out."""
    flat = flat_attributes(semconv.PARAM_PREFIX, params)
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if len(out) == MAX_PARAM_ATTRIBUTES:
            out[semconv.PARAMS_OMITTED] = len(flat) - MAX_PARAM_ATTRIBUTES
            break
        if isinstance(value, str) and len(value) > MAX_PARAM_ATTRIBUTE_CHARS:
            value = value[: MAX_PARAM_ATTRIBUTE_CHARS - 1] + "…"
        elif isinstance(value, list):
            value = [v[:MAX_PARAM_ATTRIBUTE_CHARS] for v in value[:MAX_PARAM_ATTRIBUTES]]
        out[key] = value
    return out


def tracker_span_limits() -> SpanLimits:
    """The limits of a run's own spans, whatever ``OTEL_SPAN_*``/``OTEL_ATTRIBUTE_*``
    say (those are for the application's spans): the manifest is built from these
    spans, so the SDK must not drop or cut what it reads. What we put on them is
    bounded by us (params above, tracebacks in ``manifest.short_traceback``)."""
    return SpanLimits(
        max_span_attributes=128,
        max_events=128,
        max_links=128,
        max_event_attributes=128,
        max_link_attributes=128,
        max_attribute_length=SpanLimits.UNSET,
        max_span_attribute_length=SpanLimits.UNSET,
    )


def flat_attributes(prefix: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as span attributes: nested keys dotted, only OTel-compatible values."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_attributes(name + ".", value))
        elif isinstance(value, (bool, int, float, str)) or (
            isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        ):
            out[name] = value
        elif value is not None:
            out[name] = str(value)
    return out


def new_run_record(
    run_id: str,
    name: str,
    *,
    scenario: str | None,
    kind: str | None,
    params: Mapping[str, Any] | None,
    run_dir: Path | None,
    join: JoinTarget | None,
    config: TrackerConfig,
    environ: Mapping[str, str],
) -> RunRecord:
    """A run's record before its span starts: who, where, what, and its history."""
    cwd = Path.cwd()
    # an error message or a wrapped command's log may quote HF_TOKEN's value verbatim
    remember_environment(environ)
    record = RunRecord(
        run_id=run_id,
        name=name,
        scenario=scenario,
        params=dict(params or {}),
        process={
            **process_identity(),
            "host": host_name(),
            "user": current_user(),
            "cwd": str(cwd),
            "command": redact_argv(getattr(sys, "orig_argv", sys.argv)),
        },
        environment=collect_environment(cwd, environ, config.env_allowlist),
        git=git_info(cwd),
        tracker={
            "version": __version__,
            "heartbeat_interval_s": config.heartbeat_interval,
            "lock_file": join.lock_name if join else LOCK_NAME,
        },
        run_dir=str(run_dir.resolve()) if run_dir else None,
        kind=kind,
    )
    if join is not None:
        record.part = {"id": join.part_id, "parent_span_id": join.parent_span_id}
    else:
        record.parts_from = run_dir
    if run_dir is not None:  # else the root is unusable, and so is its history
        record.history, record.history_runs = pipeline_history(config, name, scenario)
    return record


def recorded_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Params as the manifest records them: walked field by field into plain JSON with
    secrets redacted (see :mod:`otel_tracker.redact.objects`: bounded, cycle-safe, it
    never raises). Runs before the run directory exists."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ConfigError("params must be a mapping")
    return jsonable(redact_value(params))


def checked_scores(
    scores: Mapping[str, float], direction: Mapping[str, str] | None
) -> tuple[dict[str, float], dict[str, str]]:
    """``log_scores``' arguments as plain floats and directions, or ``ConfigError``."""
    directions = dict(direction or {})
    for name, value in directions.items():
        if value not in SCORE_DIRECTIONS:
            raise ConfigError(f"direction of {name!r} must be 'max' or 'min', got {value!r}")
    values: dict[str, float] = {}
    for name, value in scores.items():
        if not is_real(value) or not math.isfinite(value):
            raise ConfigError(f"score {name!r} must be a finite number, got {value!r}")
        values[clean_text(str(name))] = float(value)
    return values, directions


def checked_durations(expected: Mapping[str, float] | None) -> dict[str, float]:
    """``expected_durations`` as plain floats, or ``ConfigError``."""
    if expected is None:
        return {}
    if not isinstance(expected, Mapping):
        raise ConfigError("expected_durations must map step names to seconds")
    durations = {}
    for name, seconds in expected.items():
        if not is_real(seconds) or not 0 < seconds < math.inf:
            raise ConfigError(
                f"expected duration of {name!r} must be positive seconds, got {seconds!r}"
            )
        durations[clean_text(str(name))] = float(seconds)
    return durations


def validate_steps(steps: Iterable[str] | None) -> list[str]:
    if steps is None:
        return []
    if isinstance(steps, str):
        raise ConfigError("steps must be a list of step names, not a single string")
    names = list(steps)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"step names must be non-empty strings, got {name!r}")
    names = [clean_text(name) for name in names]
    if len(set(names)) != len(names):
        raise ConfigError("declared step names must be unique")
    return names


def quietly(*shutdowns: Callable[[], object]) -> None:
    for shutdown in shutdowns:
        try:
            shutdown()
        except Exception:
            logger.warning("otel-tracker exporter shutdown failed", exc_info=True)


def shut_down_by(deadline: float, **groups: Sequence[Callable[[], object]]) -> bool:
    """Run each group of shutdowns in order on its own daemon thread, the groups side
    by side, until ``time.monotonic()`` reaches ``deadline``; ``True`` if all finished."""
    workers = [
        threading.Thread(
            target=quietly, args=tuple(steps), name=f"otel-tracker-shutdown-{name}", daemon=True
        )
        for name, steps in groups.items()
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    return not any(worker.is_alive() for worker in workers)


class NoMirrors:
    span_processors: tuple[()] = ()
    metric_readers: tuple[()] = ()
    sample_exporters: tuple[()] = ()
    guards: tuple[()] = ()

    def close(self) -> None:
        return None


NO_MIRRORS = NoMirrors()


def resource_attributes(run: Run, service_name: str | None, env: Mapping[str, str]) -> dict:
    """Who sent the telemetry: service, run, host and process (``OTEL_RESOURCE_ATTRIBUTES`` merges under)."""
    process = run.record.process
    return {
        "service.name": service_name or env.get("OTEL_SERVICE_NAME") or run.name,
        "service.instance.id": run.run_id,
        semconv.CICD_PIPELINE_NAME: run.name,
        semconv.CICD_PIPELINE_RUN_ID: run.run_id,
        "host.name": process.get("host") or "",
        "process.pid": os.getpid(),
    }


def wants_otel_context(setting: bool | None) -> bool:
    """Whether runs and steps become OpenTelemetry's current span when entered.

    ``None`` (auto): only when the application installed a global tracer provider,
    so its own spans nest under our steps. Otherwise nothing would read the
    context, and a set context variable slows every numpy ufunc call (see
    :mod:`otel_tracker.record.current`).
    """
    if setting is not None:
        return setting
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def parent_context(environ: Mapping[str, str]) -> Any:
    """The active span's context, else the W3C context a launcher put in TRACEPARENT.

    A run started by ``otel-tracker run`` (or any launcher that follows the
    OpenTelemetry environment-carrier convention) joins the launcher's trace.
    """
    if trace.get_current_span().get_span_context().is_valid:
        return None  # the current context already has a parent
    traceparent = environ.get("TRACEPARENT")
    if not traceparent:
        return None
    from opentelemetry.propagate import extract

    carrier = {"traceparent": traceparent}
    if environ.get("TRACESTATE"):
        carrier["tracestate"] = environ["TRACESTATE"]
    return extract(carrier)


def pipeline_history(
    config: TrackerConfig, name: str, scenario: str | None
) -> tuple[dict[str, float], int]:
    """Median step durations of this pipeline's earlier completed runs (best effort)."""
    try:
        from ..history.store import Filters, RunStore

        store = RunStore(config=ReaderConfig(root=config.root))
        filters = Filters(
            statuses=frozenset({"completed"}), name=name, scenario=scenario, exact=True
        )
        docs = [view.doc for view in store.list(filters, limit=HISTORY_RUNS)]
        return history_medians(docs), len(docs)
    except Exception as exc:  # a root that is not a directory, a damaged file...
        logger.warning("otel-tracker could not read run history (%s); ETAs start without it", exc)
        logger.debug("reading the run history failed", exc_info=True)
        return {}, 0


def current_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
