"""Joined children hand their spans to the launching run instead of exporting them.

A process that joined a launcher's run (see :mod:`otel_tracker.record.join`) whose run
mirrors to OTLP does not talk to the collector itself: each export at exit would
cost it up to the export timeout with a dead collector, once per process, in
series (a 5-stage pipeline paid it six times). Its :class:`SpanHandoffProcessor`
appends every finished span, ids, parent, attributes, events, status, times,
resource and scope as they were, as one JSON line to
``<run>/parts/<part id>.spans.jsonl`` (its own file: one writer per file). The
launcher's :class:`PartSpans` reads what is new when a child exits and at its own
end, and feeds the spans to its batching OTLP processor: the child's exit never
waits on the network, the collector still sees one trace, and the whole run
pays at most one ``export_timeout``, at the launcher's end.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode

from ..contract.parts import PARTS_DIR

logger = logging.getLogger(__name__)

SPANS_SUFFIX = ".spans.jsonl"
MAX_READ_BYTES = 64 * 1024 * 1024  # per file and call: a runaway writer cannot exhaust us


def _context(trace_id: int, span_id: int, flags: int, remote: bool, state: Any) -> SpanContext:
    return SpanContext(
        trace_id,
        span_id,
        is_remote=remote,
        trace_flags=TraceFlags(flags),
        trace_state=TraceState([tuple(kv) for kv in state or ()]),
    )


def encode_span(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as plain JSON data; :func:`decode_span` restores it."""
    ctx = span.context
    parent = span.parent
    scope = span.instrumentation_scope
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "flags": int(ctx.trace_flags),
        "trace_state": list(ctx.trace_state.items()) if ctx.trace_state else [],
        "parent": None
        if parent is None
        else {
            "trace_id": f"{parent.trace_id:032x}",
            "span_id": f"{parent.span_id:016x}",
            "flags": int(parent.trace_flags),
            "remote": parent.is_remote,
        },
        "kind": span.kind.name,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "time": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
        "links": [
            {
                "trace_id": f"{link.context.trace_id:032x}",
                "span_id": f"{link.context.span_id:016x}",
                "flags": int(link.context.trace_flags),
                "attributes": dict(link.attributes or {}),
            }
            for link in span.links
        ],
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "resource": {
            "attributes": dict(span.resource.attributes),
            "schema_url": span.resource.schema_url,
        },
        "scope": None
        if scope is None
        else {"name": scope.name, "version": scope.version, "schema_url": scope.schema_url},
    }


def decode_span(data: dict[str, Any]) -> ReadableSpan:
    """The :class:`ReadableSpan` that :func:`encode_span` wrote (``KeyError``,
    ``ValueError`` or ``TypeError`` for anything else)."""
    parent = data["parent"]
    scope = data.get("scope")
    return ReadableSpan(
        name=str(data["name"]),
        context=_context(
            int(data["trace_id"], 16),
            int(data["span_id"], 16),
            int(data["flags"]),
            False,
            data.get("trace_state"),
        ),
        parent=None
        if parent is None
        else _context(
            int(parent["trace_id"], 16),
            int(parent["span_id"], 16),
            int(parent["flags"]),
            bool(parent["remote"]),
            None,
        ),
        resource=Resource(
            dict(data["resource"]["attributes"]), data["resource"].get("schema_url") or ""
        ),
        attributes=dict(data["attributes"]),
        events=tuple(
            Event(str(e["name"]), dict(e["attributes"]), int(e["time"])) for e in data["events"]
        ),
        links=tuple(
            Link(
                _context(int(lk["trace_id"], 16), int(lk["span_id"], 16), lk["flags"], True, None),
                dict(lk["attributes"]),
            )
            for lk in data["links"]
        ),
        kind=SpanKind[data["kind"]],
        status=Status(StatusCode[data["status"]["code"]], data["status"]["description"]),
        start_time=int(data["start"]),
        end_time=int(data["end"]),
        instrumentation_scope=None
        if scope is None
        else InstrumentationScope(scope["name"], scope.get("version"), scope.get("schema_url")),
    )


class SpanHandoffProcessor(SpanProcessor):
    """Appends each finished span to a file of this process's own in the run's parts.

    One ``write`` per span, so the reader never sees half a line from a finished
    write; the file is created exclusively and never through a symlink.
    """

    def __init__(self, path: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        self.path = path
        self._fd: int | None = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self._lock = threading.Lock()
        self._failed = False

    def on_end(self, span: ReadableSpan) -> None:
        try:
            line = json.dumps(encode_span(span), separators=(",", ":"), default=str) + "\n"
            with self._lock:
                if self._fd is not None:
                    os.write(self._fd, line.encode("utf-8", "surrogateescape"))
        except Exception as exc:
            if not self._failed:
                self._failed = True
                logger.warning(
                    "otel-tracker cannot hand spans to the launching run via %s (%s); "
                    "they will not reach its OTLP collector",
                    self.path,
                    exc,
                )

    def shutdown(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class PartSpans:
    """The launcher's side: new lines of every part's span file, fed to ``processor``."""

    def __init__(self, processor: SpanProcessor) -> None:
        self._processor = processor
        self._offsets: dict[str, int] = {}
        self._lock = threading.Lock()
        self._warned = False

    def forward(self, run_dir: Path) -> int:
        """Feed what the parts wrote since the last call; how many spans."""
        forwarded = bad = 0
        with self._lock:
            try:
                names = sorted(
                    e.name for e in os.scandir(run_dir / PARTS_DIR) if e.name.endswith(SPANS_SUFFIX)
                )
            except OSError:
                return 0
            for name in names:
                for line in self._new_lines(run_dir / PARTS_DIR / name, name):
                    try:
                        span = decode_span(json.loads(line))
                    except (ValueError, KeyError, TypeError, AttributeError):
                        bad += 1
                        continue
                    self._processor.on_end(span)
                    forwarded += 1
        if bad and not self._warned:
            self._warned = True
            logger.warning("otel-tracker skipped %d unreadable span lines in %s", bad, run_dir)
        return forwarded

    def _new_lines(self, path: Path, name: str) -> list[bytes]:
        offset = self._offsets.get(name, 0)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return []
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size <= offset:
                return []
            os.lseek(fd, offset, os.SEEK_SET)
            data = os.read(fd, min(info.st_size - offset, MAX_READ_BYTES))
        except OSError:
            return []
        finally:
            os.close(fd)
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self._offsets[name] = offset + len(complete)
        return complete.splitlines()


def forward_part_spans(mirrors: Any, run_dir: Path) -> int:
    """What ``run_dir``'s joined children handed over, to ``mirrors``' OTLP (if any)."""
    part_spans = getattr(mirrors, "part_spans", None)
    if part_spans is None:
        return 0
    try:
        return int(part_spans.forward(run_dir))
    except Exception:
        logger.warning("otel-tracker could not forward joined spans", exc_info=True)
        return 0
