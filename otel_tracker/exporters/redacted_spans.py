"""Spans as a mirror receives them: exception events and error descriptions redacted.

The tracker redacts the exceptions it records itself (``step.mark_error``), but an
application may record its own on a run's or step's span (``trace.get_current_span()
.record_exception(exc)`` while the step is the current span) or set its status with
an error's text. Before a span leaves for a collector, those are redacted too.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status

from ..redact.text import MAX_STACKTRACE, clipped, redact_text

_TEXTS = ("exception.message", "exception.stacktrace")


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    """``span`` itself if it holds no error text, else a copy with that text redacted."""
    events = tuple(span.events or ())
    description = span.status.description if span.status is not None else None
    if not description and not any(e.name == "exception" for e in events):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=[_redacted_event(e) if e.name == "exception" else e for e in events],
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code, clipped(redact_text(description)))
        if description
        else span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _redacted_event(event: Event) -> Event:
    attributes = dict(event.attributes or {})
    for name in _TEXTS:
        value = attributes.get(name)
        if isinstance(value, str):
            text = redact_text(value)
            attributes[name] = clipped(text) if name.endswith("message") else text[-MAX_STACKTRACE:]
    return Event(event.name, attributes, event.timestamp)
