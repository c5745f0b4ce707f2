"""A run's resource charts from its telemetry, read incrementally.

``telemetry.jsonl`` is appended to while the run lives (one JSON line per sample).
A :class:`TelemetryFeed` remembers how far it has read and parses only the bytes
after that offset on each call, never the whole file again; a line the writer has
not finished (no newline yet) is left for the next call. The time before the
file's first sample comes from the run's roll-ups (a long run keeps only a recent
window raw), each charted as its min and its max; when the writer drops old lines
(a new file renamed over the old one) the feed goes on in the new file after the
last sample it has, and a packed run (``telemetry.jsonl.gz``) is read once, whole
(see :mod:`otel_tracker.contract.telemetry_form`). The charts' series are
picked from each sample's points (see :data:`CHARTS`), and throughput is derived
from the running step's item count between two samples of the same step.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.jsonfile import FileProblem, open_regular
from ..contract.telemetry_form import (
    PACKED_NAME,
    ROLLUP_NAME,
    is_rollup,
    iter_records,
    record_stats,
    rollups_between,
)
from ..timeparse import parse_timestamp
from .downsample import Value, min_max_buckets

READ_BYTES = 4 * 1024 * 1024  # per read (about half a second of parsing): the worker
# thread serves other pages between the pieces of a huge file
MAX_LINE_BYTES = 1024 * 1024
HEAD_BYTES = 40  # {"t":"<time of the first sample>"
ROLLUP_TAIL_BYTES = 32 * 1024 * 1024  # roll-ups read to fill what a drop took out
MAX_SERIES = 64  # per run: hundreds of GPUs would not make a readable chart anyway
MAX_KEPT = 20_000  # samples kept per run (27 h at 5 s); beyond, the oldest are thinned
CATCH_UP_S = 2.0  # a page's first charts wait this long at most for a backlog
ITEMS = "otel_tracker.step.items"

# chart -> (title, unit, [(label, exact key or "prefix{" for one series per attribute set)])
CHARTS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "cpu": (
        "CPU (share of all cores)",
        "ratio",
        [("process tree", "process.cpu.utilization"), ("system", "system.cpu.utilization")],
    ),
    "memory": (
        "Memory",
        "bytes",
        [
            ("process tree PSS", "otel_tracker.process.memory.pss"),
            ("process tree RSS", "process.memory.usage"),
            ("system used", "system.memory.usage{system.memory.state=used}"),
        ],
    ),
    "gpu": ("GPU utilization", "ratio", [("GPU", "hw.gpu.utilization{")]),
    "gpu_memory": ("GPU memory", "bytes", [("GPU", "hw.gpu.memory.usage{")]),
    "throughput": ("Throughput", "items/s", [("items/s", "throughput")]),
}


@functools.lru_cache(maxsize=4096)  # called per point of every line: a few dozen keys
def chart_of(key: str) -> tuple[str, str] | None:
    """(chart, label) for a point key the charts show, or None."""
    for chart, (_title, _unit, picks) in CHARTS.items():
        for label, pick in picks:
            if pick.endswith("{") and key.startswith(pick):
                return chart, f"{label} {key[len(pick) : -1]}"
            if key == pick:
                return chart, label
    return None


@dataclass
class Sample:
    """One line of the file, reduced to what the charts show."""

    t: float
    step: str | None
    values: dict[str, float]


@dataclass
class TelemetryFeed:
    """Everything read so far of one run's ``telemetry.jsonl``, and where to go on."""

    path: Path
    offset: int = 0
    times: list[float] = field(default_factory=list)
    columns: dict[str, list[Value]] = field(default_factory=dict)
    skipped: int = 0
    samples: int = 0  # read in all (the columns keep at most MAX_KEPT, thinned)
    behind: bool = False  # more of the file is waiting than one read takes
    _head: bytes | None = None  # the file's first bytes when the offset was taken
    _started: bool = False  # roll-ups (or the packed file) read
    _packed_read: bool = False
    _skip_until: float | None = None  # a new file's lines up to here were read already
    _items: tuple[str | None, float, float] | None = None  # (step, t, items) of the last sample
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def catch_up(self, budget_s: float = CATCH_UP_S) -> None:
        """Read until the end of the file or ``budget_s`` seconds have passed."""
        deadline = time.monotonic() + budget_s
        self.read_new()
        while self.behind and time.monotonic() < deadline:
            self.read_new()

    def read_new(self) -> list[Sample]:
        """The samples appended since the last call (and taken into the columns), at
        most :data:`READ_BYTES` of the file at a time (``behind`` says there is more)."""
        with self._lock:
            new = self._read_start() if not self._started else []
            if self._packed_read:
                return self._took(new)  # a packed run is finished: read once, whole
            try:
                with open_regular(self.path) as file:
                    # the writer's drop renames a new file over this one: its first
                    # line is newer (an inode number alone may be reused)
                    head = file.read(HEAD_BYTES)
                    if self._head is not None and head[: len(self._head)] != self._head:
                        new += self._rolled_up_since(head)
                        self.offset = 0  # read on in the new file after our last sample
                        self._skip_until = self.times[-1] if self.times else None
                    self._head = head if len(head) == HEAD_BYTES else None
                    file.seek(self.offset)
                    data = file.read(READ_BYTES + 1)
            except FileProblem:
                return self._took(new + self._read_packed())
            self.behind = len(data) > READ_BYTES
            data = data[:READ_BYTES]
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) == READ_BYTES:  # one line longer than a read: not a sample
                    self.offset += len(data)
                    self.skipped += 1
                return self._took(new)
            self.offset += end + 1
            for line in data[: end + 1].split(b"\n"):
                if not line.strip():
                    continue
                sample = self._parse(line) if len(line) <= MAX_LINE_BYTES else None
                if sample is None:
                    self.skipped += 1
                    continue
                if self._skip_until is not None:
                    if sample.t <= self._skip_until:
                        continue
                    self._skip_until = None
                self._append(sample)
                new.append(sample)
            return self._took(new)

    def _rolled_up_since(self, head: bytes) -> list[Sample]:
        """What the writer rolled up out of the raw file since the last read: the
        roll-ups after our last sample that end before the new file's first."""
        first = parse_timestamp(head[6:33].decode("ascii", "replace"))
        if not self.times or first is None:
            return []
        new = []
        found = rollups_between(self.path.parent, self.times[-1], first, ROLLUP_TAIL_BYTES)
        for _t, record in found:
            for sample in self._rollup_samples(record):
                self._append(sample)
                new.append(sample)
        return new

    def _took(self, new: list[Sample]) -> list[Sample]:
        self.samples += len(new)
        if len(self.times) > MAX_KEPT:
            self._thin()
        return new

    def _read_start(self) -> list[Sample]:
        """The first call: the roll-ups before the raw samples, or a packed run whole."""
        self._started = True
        run_dir = self.path.parent
        if not (run_dir / ROLLUP_NAME).exists() and not (run_dir / PACKED_NAME).exists():
            return []
        if (run_dir / PACKED_NAME).exists():
            return self._read_packed()  # whole: live files beside it are a killed pack's
        new: list[Sample] = []
        for _t, record in iter_records(run_dir):
            if not is_rollup(record):
                break  # the raw lines are read incrementally
            for sample in self._rollup_samples(record):
                self._append(sample)
                new.append(sample)
        return new

    def _read_packed(self) -> list[Sample]:
        """A packed run's samples after the last one read (once: it is finished)."""
        if self._packed_read or not (self.path.parent / PACKED_NAME).exists():
            return []
        self._packed_read = True
        last = self.times[-1] if self.times else None
        new: list[Sample] = []
        for _t, record in iter_records(self.path.parent):
            found = self._rollup_samples(record) if is_rollup(record) else [self._sample(record)]
            for sample in found:
                if sample is None or (last is not None and sample.t <= last):
                    continue
                self._append(sample)
                if len(new) <= MAX_KEPT:  # beyond, the page gets the thinned charts
                    new.append(sample)
                else:
                    self.samples += 1
            if len(self.times) > 2 * MAX_KEPT:
                self._thin()  # memory stays bounded however long the packed run
        self.behind = False
        return new

    def _rollup_samples(self, record: dict[str, Any]) -> list[Sample]:
        """A roll-up as two samples: its minima at its first time, its maxima at its
        last (the envelope the charts draw); throughput from its last item count."""
        t = parse_timestamp(record.get("t"))
        last = parse_timestamp(record.get("t_last"))
        if t is None:
            return []
        step = record.get("step") if isinstance(record.get("step"), str) else None
        stats = record_stats(record)
        low = {k: float(s[0]) for k, s in stats.items() if chart_of(k) is not None}
        high = {k: float(s[2]) for k, s in stats.items() if chart_of(k) is not None}
        if ITEMS in stats:
            rate = self._rate(step, last if last is not None else t, float(stats[ITEMS][3]))
            if rate is not None:
                high["throughput"] = low["throughput"] = rate
        if last is None or last <= t:
            return [Sample(t, step, high)]
        return [Sample(t, step, low), Sample(last, step, high)]

    def _thin(self) -> None:
        """Bound memory whatever the run's length: the kept samples become the min/max
        envelope of MAX_KEPT / 4 time buckets (what a chart shows of them anyway)."""
        times, columns = min_max_buckets(self.times, self.columns, MAX_KEPT // 4)
        self.times, self.columns = times, columns

    def _parse(self, line: bytes) -> Sample | None:
        import json

        try:
            record = json.loads(line)
        except ValueError:
            return None
        return self._sample(record)

    def _sample(self, record: Any) -> Sample | None:
        if not isinstance(record, dict) or not isinstance(record.get("points"), dict):
            return None
        t = parse_timestamp(record.get("t"))
        if t is None:
            return None
        step = record.get("step") if isinstance(record.get("step"), str) else None
        values: dict[str, float] = {}
        for key, value in record["points"].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                continue
            if key == ITEMS:
                rate = self._rate(step, t, float(value))
                if rate is not None:
                    values["throughput"] = rate
            elif chart_of(key) is not None:
                values[key] = float(value)
        return Sample(t, step, values)

    def _rate(self, step: str | None, t: float, items: float) -> float | None:
        last, self._items = self._items, (step, t, items)
        if last is None or last[0] != step or t <= last[1] or items < last[2]:
            return None
        return round((items - last[2]) / (t - last[1]), 6)

    def _append(self, sample: Sample) -> None:
        if self.times and sample.t < self.times[-1]:
            sample.t = self.times[-1]  # a stepped wall clock: the axis never goes back
        row = len(self.times)
        self.times.append(sample.t)
        for key, value in list(sample.values.items()):
            column = self.columns.get(key)
            if column is None:
                if len(self.columns) >= MAX_SERIES:
                    del sample.values[key]  # not charted: not sent to the page either
                    continue
                column = self.columns[key] = [None] * row
            column.append(value)
        for column in self.columns.values():
            if len(column) <= row:
                column.append(None)

    def charts(self, buckets: int, since: float | None = None) -> dict[str, Any]:
        """The charts' data, thinned to at most ``2 * buckets`` points a series;
        ``since`` shifts the time axis (seconds from the run's start, for compare)."""
        with self._lock:
            times, columns = min_max_buckets(self.times, self.columns, buckets)
            raw = self.samples
        if since is not None:
            times = [round(t - since, 3) for t in times]
        return {
            "offset": self.offset,
            "behind": self.behind,
            "samples": raw,
            "t": times,
            "charts": chart_payload(columns),
        }


def chart_payload(columns: dict[str, list[Value]]) -> dict[str, Any]:
    """``{chart: {title, unit, series: [{key, label, values}]}}`` for non-empty charts."""
    out: dict[str, Any] = {}
    for key in sorted(columns):
        found = chart_of(key)
        if found is None:
            continue
        chart, label = found
        title, unit, _ = CHARTS[chart]
        entry = out.setdefault(chart, {"title": title, "unit": unit, "series": []})
        entry["series"].append({"key": key, "label": label, "values": columns[key]})
    return out


def sample_payload(samples: list[Sample]) -> list[dict[str, Any]]:
    """New samples as the page appends them: ``{"t", "step", "values"}``."""
    return [{"t": s.t, "step": s.step, "values": s.values} for s in samples]
