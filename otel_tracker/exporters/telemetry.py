"""``telemetry.jsonl``: one self-contained JSON line per resource sample.

Written straight from each sample's snapshot (:func:`telemetry_line`), not through
an OTel metric reader: a reader's collection keeps an SDK aggregation for every
attribute set it ever saw (each step name makes new ones) and costs the pipeline's
process a pass over every observable gauge per sample, for a file that needs
neither. The mirrors (OTLP, Prometheus, TensorBoard) still go through the SDK. The
file is append-only and owned by one pid; a line torn by a crash is cut off before
the next append, and skipped by readers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, MetricsData

from .. import semconv
from ..clock import iso_utc
from ..contract.atomic import open_owned, unlink_quietly
from ..sampling.run_state import STEP_DURATION

logger = logging.getLogger(__name__)

_TAIL_CHUNK = 65536


class TelemetryFile:
    """Append-only JSON lines; never raises (one warning per kind of failure).

    The file stays open between appends: one ``write()`` a sample. Each system call
    of the sampler thread must win the GIL back from the pipeline's main thread
    (``benchmarks/bench_interference.py``), so open and close per line would triple
    what a sample costs the pipeline.
    """

    def __init__(self, path: Path, owner_pid: int | None = None) -> None:
        self.path = path
        self.owner_pid = os.getpid() if owner_pid is None else owner_pid
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._warned: set[str] = set()
        self.lines = 0

    def append(self, record: dict[str, Any]) -> bool:
        if os.getpid() != self.owner_pid:
            return False
        try:
            data = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        except (TypeError, ValueError) as exc:
            self._warn("encode", exc)
            return False
        with self._lock:
            try:
                if self._fd is None:
                    # a line torn by a crash (or by a failed write) is cut off first
                    repair_torn_tail(self.path)
                    self._fd = open_owned(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                # one write() of a whole line: O_APPEND keeps lines whole
                written = os.write(self._fd, data)
                if written != len(data):
                    raise OSError(f"short write ({written} of {len(data)} bytes; disk full?)")
            except OSError as exc:
                self._close_locked()  # reopen, and repair the tail, on the next append
                self._warn(type(exc).__name__, exc)
                return False
        self.lines += 1
        return True

    def drop_before(self, cutoff: str) -> bool:
        """Drop the lines older than ``cutoff`` (an ISO time as the lines' ``t``): the
        rest is copied to a new file renamed over this one, so a reader sees either
        whole. ``True`` if lines were dropped."""
        if os.getpid() != self.owner_pid:
            return False
        with self._lock:
            try:
                return self._drop_before_locked(cutoff.encode())
            except OSError as exc:
                self._warn("drop", exc, "could not drop old lines from")
                return False

    def _drop_before_locked(self, cutoff: bytes) -> bool:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with os.fdopen(open_owned(self.path, os.O_RDONLY), "rb") as source:
            offset = 0
            for line in source:
                # every line starts {"t":"<27-character ISO time>"; ISO times sort as text
                if line[6:33] >= cutoff or not line.startswith(b'{"t":"'):
                    break
                offset += len(line)
            if offset == 0:
                return False
            source.seek(offset)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            try:
                with os.fdopen(open_owned(temporary, flags), "wb") as target:
                    shutil.copyfileobj(source, target)
            except OSError:
                unlink_quietly(temporary)  # disk full: the file stays whole, as it was
                raise
        self._close_locked()  # the next append opens the new file
        os.replace(temporary, self.path)
        return True

    def close(self) -> None:
        """Close the file (a later append reopens it)."""
        # a signal handler may end the run while this very thread is appending
        if not self._lock.acquire(timeout=1.0):
            return
        try:
            self._close_locked()
        finally:
            self._lock.release()

    def _close_locked(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and os.getpid() == self.owner_pid:
            try:
                os.close(fd)
            except OSError:
                pass

    def _warn(self, kind: str, exc: BaseException, what: str = "could not append to") -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning("otel-tracker %s %s: %s; the run goes on", what, self.path, exc)


def repair_torn_tail(path: Path) -> bool:
    """Cut a last line that has no newline (a write torn by a crash); ``True`` if cut."""
    try:
        fd = open_owned(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return False
        os.lseek(fd, size - 1, os.SEEK_SET)
        if os.read(fd, 1) == b"\n":
            return False
        end = size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            os.lseek(fd, start, os.SEEK_SET)
            chunk = os.read(fd, end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                os.ftruncate(fd, start + cut + 1)
                return True
            end = start
        os.ftruncate(fd, 0)
        return True
    finally:
        os.close(fd)


def telemetry_line(snapshot: Any, run_id: str, step: str | None) -> dict[str, Any] | None:
    """One sample as its ``telemetry.jsonl`` record (None when it has no points)."""
    points: dict[str, float] = {}
    for point in snapshot.points:
        if point.name in (STEP_DURATION, semconv.METRIC):
            continue  # the manifest has the steps', metrics.jsonl the run.log() series
        key = point.name
        if point.attributes:
            key += "{" + ",".join(f"{k}={v}" for k, v in sorted(point.attributes)) + "}"
        points[key] = point.value
    if not points:
        return None
    return {
        "t": iso_utc(int(snapshot.wall * 1e9)),
        "run_id": run_id,
        "step": step,
        "points": points,
    }


class SampleDrivenMetricReader(MetricReader):
    """Collects when told (after each resource sample): one export per sample."""

    def __init__(self, exporter: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self._exporter = exporter

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        if metrics_data is None:
            return
        try:
            self._exporter.export(metrics_data, timeout_millis=timeout_millis)
        except Exception:
            logger.warning("otel-tracker telemetry export failed", exc_info=True)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._exporter.shutdown(timeout_millis=timeout_millis)


class SampleTriggeredMetricReader(SampleDrivenMetricReader):
    """Exports each sample from a thread of its own, for exporters that talk to a network.

    The sampler only sets an event, so a slow or dead endpoint delays nothing but
    this thread; samples that arrive while an export is still running are
    coalesced into the next one. Each collection reads the snapshot it was
    triggered for (or a newer one), with that snapshot's step, so even a step
    shorter than the interval reaches the endpoint with its step-end sample.
    """

    def __init__(self, exporter: MetricExporter, name: str = "otel-tracker-metrics") -> None:
        super().__init__(exporter)
        self._wake = threading.Event()
        self._pending = False
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def on_sample(self) -> None:
        self._pending = True
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._pending:
                self._pending = False
                try:
                    self.collect()
                except Exception:
                    logger.debug("otel-tracker metric collection failed", exc_info=True)
            if self._stopping and not self._pending:
                return

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Send what the last sample triggered, then shut the exporter down."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_millis / 1000)
        super().shutdown(timeout_millis=timeout_millis, **kwargs)
