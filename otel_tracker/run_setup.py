"""What a run needs at its start and end, kept out of :mod:`otel_tracker.run`:
span attributes from params, the parent trace context, the OTel resource, the
pipeline's history for the ETA, and the bounded exporter shutdown's helpers."""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from . import semconv
from .config import ReaderConfig
from .errors import ConfigError
from .progress.eta import HISTORY_RUNS, history_medians

if TYPE_CHECKING:
    from .config import TrackerConfig
    from .run import Run

logger = logging.getLogger(__name__)


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


def validate_steps(steps: Iterable[str] | None) -> list[str]:
    if steps is None:
        return []
    if isinstance(steps, str):
        raise ConfigError("steps must be a list of step names, not a single string")
    names = list(steps)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"step names must be non-empty strings, got {name!r}")
    if len(set(names)) != len(names):
        raise ConfigError("declared step names must be unique")
    return names


def quietly(*shutdowns: Callable[[], object]) -> None:
    for shutdown in shutdowns:
        try:
            shutdown()
        except Exception:
            logger.warning("otel-tracker exporter shutdown failed", exc_info=True)


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
    :mod:`otel_tracker.current`).
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
        from .store import Filters, RunStore

        store = RunStore(config=ReaderConfig(root=config.root))
        filters = Filters(
            statuses=frozenset({"completed"}), name=name, scenario=scenario, exact=True
        )
        docs = [view.doc for view in store.list(filters, limit=HISTORY_RUNS)]
        return history_medians(docs), len(docs)
    except Exception:
        logger.warning(
            "otel-tracker could not read run history; ETAs start without it", exc_info=True
        )
        return {}, 0


def current_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
