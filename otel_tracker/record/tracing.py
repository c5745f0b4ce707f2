"""The OpenTelemetry around a run: its resource, its parent context and the limits
of its own spans."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits

from .. import semconv

if TYPE_CHECKING:
    from .run import Run


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
