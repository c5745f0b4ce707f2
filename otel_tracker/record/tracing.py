"""The OpenTelemetry around a run: its resource, its parent context and the limits
of its own spans."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from .. import semconv

if TYPE_CHECKING:
    from .job import JobIdentity
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
    attributes = {
        "service.name": service_name or env.get("OTEL_SERVICE_NAME") or run.name,
        "service.instance.id": run.run_id,
        semconv.CICD_PIPELINE_NAME: run.name,
        semconv.CICD_PIPELINE_RUN_ID: run.run_id,
        "host.name": process.get("host") or "",
        "process.pid": os.getpid(),
    }
    job = getattr(run, "job", None)
    if job is not None:
        # one instance per rank, as the semantic conventions want it unique per process
        attributes["service.instance.id"] = f"{run.run_id}/rank-{job.rank}"
        attributes[semconv.JOB_ID] = job.job_id
        attributes[semconv.JOB_ATTEMPT] = job.attempt
        attributes[semconv.JOB_RANK] = job.rank
        attributes[semconv.JOB_WORLD_SIZE] = job.world_size
        if job.local_rank is not None:
            attributes[semconv.JOB_LOCAL_RANK] = job.local_rank
    return attributes


class _JobRunSpanIds(IdGenerator):
    """Rank 0's ids: the job's trace id, and for the first span (the run's) the id
    every other rank derives too; random ids after it."""

    def __init__(self, trace_id: int, run_span_id: int) -> None:
        self._trace_id = trace_id
        self._run_span_id: int | None = run_span_id
        self._random = RandomIdGenerator()

    def generate_trace_id(self) -> int:
        return self._trace_id

    def generate_span_id(self) -> int:
        span_id, self._run_span_id = self._run_span_id, None
        return span_id if span_id is not None else self._random.generate_span_id()


@dataclass(frozen=True)
class JobTrace:
    ids: IdGenerator  # rank 0's
    root: Any  # rank 0's run span starts in this context: the launcher's, else none
    parent: Any  # every other rank's run span nests under this context


def job_trace_context(job: JobIdentity, environ: Mapping[str, str]) -> JobTrace:
    """One trace for every rank: the launcher's (a ``TRACEPARENT`` all ranks got from
    it), else one named by the job's digest; the run span's id from the digest.
    ``parent`` is built with ``set_span_in_context`` on an empty context, so that
    nothing of the calling thread's context leaks into it."""
    trace_id = job.trace_id
    # not the current span's: an application span open around track_run is this
    # rank's alone, and the job's trace must be the same on every rank
    root: Any = otel_context.Context()
    if environ.get("TRACEPARENT"):
        from opentelemetry.propagate import extract

        inherited = extract({"traceparent": environ["TRACEPARENT"]})
        context = trace.get_current_span(inherited).get_span_context()
        if context.is_valid:
            trace_id, root = context.trace_id, inherited
    parent = trace.set_span_in_context(
        trace.NonRecordingSpan(
            trace.SpanContext(
                trace_id,
                job.run_span_id,
                is_remote=True,
                trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
            )
        ),
        otel_context.Context(),
    )
    return JobTrace(_JobRunSpanIds(trace_id, job.run_span_id), root, parent)


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
