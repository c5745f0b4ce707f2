"""A joined child's spans survive the hand-off file as they were (ids, parent, kind,
times, attributes, events, links, status, resource, scope)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from otel_tracker.exporters.handoff import PartSpans, SpanHandoffProcessor, decode_span, encode_span


def _spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "child", "process.pid": 42}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otel_tracker", "9.9")
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "x")]),
    )
    link = Link(SpanContext(0x1, 0x2, is_remote=True), {"why": "retry"})
    with tracer.start_as_current_span(
        "RUN child",
        context=set_span_in_context(NonRecordingSpan(remote)),  # as from TRACEPARENT
        kind=SpanKind.SERVER,
        attributes={"n": 3, "x": 0.5, "ok": True, "tags": ("a", "b"), "nums": [1, 2]},
        links=[link],
    ) as run:
        run.add_event("scores", {"score.acc": 0.9, "epoch": 2})
        with tracer.start_as_current_span("fit") as step:
            step.set_status(Status(StatusCode.ERROR, "boom"))
            step.record_exception(ValueError("bad batch"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def test_a_span_survives_the_round_trip() -> None:
    for span in _spans():
        copy = decode_span(json.loads(json.dumps(encode_span(span))))
        assert json.loads(copy.to_json()) == json.loads(span.to_json())
        assert copy.context.trace_state == span.context.trace_state
        assert copy.instrumentation_scope == span.instrumentation_scope


def test_the_launcher_reads_each_finished_line_once(tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    spans = _spans()
    writer = SpanHandoffProcessor(parts / "p1.spans.jsonl")
    received: list[ReadableSpan] = []

    class Collect(SimpleSpanProcessor):
        def __init__(self) -> None:
            pass

        def on_end(self, span: ReadableSpan) -> None:
            received.append(span)

    reader = PartSpans(Collect())
    writer.on_end(spans[0])
    with open(parts / "p1.spans.jsonl", "ab") as f:
        f.write(b'{"half": ')  # a line still being written is left for later
    assert reader.forward(tmp_path) == 1
    assert reader.forward(tmp_path) == 0  # nothing twice
    with open(parts / "p1.spans.jsonl", "ab") as f:
        f.write(b'"line"}\n')  # not a span: skipped, the rest goes on
    writer.on_end(spans[1])
    writer.shutdown()
    assert reader.forward(tmp_path) == 1
    assert [s.name for s in received] == [spans[0].name, spans[1].name]


def test_the_hand_off_file_is_never_opened_through_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (tmp_path / "p.spans.jsonl").symlink_to(target)
    with pytest.raises(OSError):
        SpanHandoffProcessor(tmp_path / "p.spans.jsonl")
    assert target.read_text() == "keep"
