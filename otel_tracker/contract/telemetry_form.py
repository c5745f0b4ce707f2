"""A run's resource telemetry on disk, in its two forms, and the one way to read it.

**Live form** (written while the run lives):

* ``telemetry.jsonl``: one line per sample, ``{"t", "run_id", "step", "points"}``, at
  full resolution; with a window set (``telemetry_window``, one hour by default) only
  the recent window is kept: the writer drops older lines now and then.
* ``telemetry.rollup.jsonl``: one line per roll-up bucket (``telemetry_rollup``
  seconds, and never across a step change) from the run's start:
  ``{"t", "t_last", "run_id", "step", "n", "rollup", "points"}`` where each point is
  ``[min, mean, max, last]`` (``[..., count]`` when the series missed samples of the
  bucket) or one number when it did not change.

**Packed form** (a finished run, see :mod:`~otel_tracker.contract.telemetry_pack`):
``telemetry.jsonl.gz``, the roll-ups that precede the raw samples and then the raw
samples, in time order, gzip-compressed. Once it exists it is whole, and it is the
run's telemetry (live files beside it are a killed pack's leftovers).

:func:`read_records` reads either form as one time-ordered list; a roll-up line is
used only for the time before the first raw sample, so nothing is counted twice.
:func:`record_stats` reads any line as ``(min, mean, max, last, count)`` per series.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..clock import iso_utc
from ..timeparse import parse_timestamp
from .jsonfile import FileProblem, loads, open_regular, read_bytes

TELEMETRY_NAME = "telemetry.jsonl"
ROLLUP_NAME = "telemetry.rollup.jsonl"
PACKED_NAME = "telemetry.jsonl.gz"
TELEMETRY_FILES = (TELEMETRY_NAME, ROLLUP_NAME, PACKED_NAME)
MAX_LINE_BYTES = 1024 * 1024  # a longer line is not a sample
MAX_PACKED_BYTES = 4 * 1024**3  # decompressed: a packed file beyond this is not ours

Stats = tuple[float, float, float, float, int]  # min, mean, max, last, count


class RollupBucket:
    """Running min/sum/max/last/count of each series over one bucket of samples.

    Its first and last times are kept as the samples' own ``t`` text: a roll-up's
    ``t_last`` then equals its last sample's exactly, never a rounding of it.
    """

    __slots__ = ("first", "key", "last", "n", "series", "step")

    def __init__(self, key: int, step: str | None, first: str) -> None:
        self.key = key
        self.step = step
        self.first = self.last = first
        self.n = 0
        self.series: dict[str, list[Any]] = {}

    def add(self, t: str, points: Mapping[str, Any]) -> None:
        """One raw sample's points (``t``: its ``t`` text; samples come in time order)."""
        self.last = max(self.last, t)
        self.n += 1
        series = self.series
        for key, value in points.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                continue
            found = series.get(key)
            if found is None:
                series[key] = [value, value, value, value, 1]
                continue
            if value < found[0]:
                found[0] = value
            found[1] += value
            if value > found[2]:
                found[2] = value
            found[3] = value
            found[4] += 1

    def line(self, run_id: str, interval: float) -> dict[str, Any]:
        """The bucket as a roll-up line."""
        points: dict[str, Any] = {}
        for key, (low, total, high, last, count) in self.series.items():
            if low == high:
                points[key] = low if count == self.n else [low, low, low, low, count]
                continue
            entry = [low, round(total / count, 6), high, last]
            if count != self.n:
                entry.append(count)
            points[key] = entry
        return {
            "t": self.first,
            "t_last": self.last,
            "run_id": run_id,
            "step": self.step,
            "n": self.n,
            "rollup": interval,
            "points": points,
        }


def iso_seconds(t: float) -> str:
    """Unix seconds as the lines' ``t``."""
    return iso_utc(round(t * 1e9)) or ""


def bucket_key(t: float, interval: float) -> int:
    return int(t // interval)


def is_rollup(record: Mapping[str, Any]) -> bool:
    return "rollup" in record


def record_stats(record: Mapping[str, Any]) -> dict[str, Stats]:
    """``{series: (min, mean, max, last, count)}`` of a raw or roll-up line (values
    that are not finite numbers skipped)."""
    out: dict[str, Stats] = {}
    n = record.get("n") if is_rollup(record) else 1
    if not _number(n) or n < 1:
        return out
    for key, value in record["points"].items():
        if _number(value):
            out[key] = (value, value, value, value, int(n))
        elif (
            isinstance(value, list)
            and len(value) in (4, 5)
            and all(_number(v) for v in value)
            and is_rollup(record)
        ):
            count = int(value[4]) if len(value) == 5 else int(n)
            if count >= 1:
                out[key] = (value[0], value[1], value[2], value[3], count)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def has_telemetry(run_dir: Path) -> bool:
    return any((run_dir / name).exists() for name in TELEMETRY_FILES)


def read_records(
    run_dir: Path,
    *,
    tail_bytes: int | None = None,
    rollup_tail_bytes: int | None = None,
    since: float | None = None,
) -> list[tuple[float, dict]]:
    """``(t, line)`` of every readable line of the run's telemetry, oldest first (see
    :func:`iter_records` for which files). ``tail_bytes`` reads only the last bytes of
    each file (a torn first line dropped; the roll-ups' and the packed file's bound,
    ``rollup_tail_bytes``, may be larger: they cover far more time per byte); lines
    that begin before ``since`` are skipped unparsed. Damaged lines are skipped."""
    if tail_bytes is None:
        return list(iter_records(run_dir))
    early = iso_seconds(since).encode() if since is not None else None
    longer = rollup_tail_bytes or tail_bytes
    raw = _valid(_lines(run_dir / TELEMETRY_NAME, tail_bytes), early)
    if os.path.lexists(run_dir / PACKED_NAME):
        packed = _valid(_packed_lines(run_dir / PACKED_NAME, longer), early)
        return packed + _after(raw, packed)
    first_raw = raw[0][0] if raw else math.inf
    return _rollups_before(_lines(run_dir / ROLLUP_NAME, longer), first_raw, early) + raw


def iter_records(run_dir: Path) -> Iterator[tuple[float, dict]]:
    """Every readable line of the run's telemetry, oldest first, one at a time (a
    packed week is never all in memory).

    A packed file, once renamed into place, is whole: it is read first, then any raw
    line newer than its last (a late sample). Live files beside it are what a killed
    pack had not yet removed. Without one: the roll-ups that end before the first raw
    sample, then the raw lines. The raw file is opened first, so should the writer
    drop old lines meanwhile, the roll-ups and the raw lines read still join up."""
    if os.path.lexists(run_dir / PACKED_NAME):
        last = -math.inf
        for t, line in _iter_valid(_packed_lines(run_dir / PACKED_NAME, None)):
            last = max(last, t)
            yield t, line
        for t, line in _iter_valid(_lines(run_dir / TELEMETRY_NAME, None)):
            if t > last and not is_rollup(line):
                yield t, line
        return
    try:
        raw = open_regular(run_dir / TELEMETRY_NAME)
    except FileProblem:  # missing, or refused (a FIFO planted): the roll-ups alone
        raw = None
    with raw if raw is not None else contextlib.nullcontext():
        first = next(_iter_valid(_bounded(raw, 100)), None) if raw is not None else None
        yield from _rollups_before(
            _lines(run_dir / ROLLUP_NAME, None), first[0] if first else math.inf
        )
        if raw is not None:
            raw.seek(0)
            yield from _iter_valid(_bounded(raw))


def _after(
    raw: list[tuple[float, dict]], packed: list[tuple[float, dict]]
) -> list[tuple[float, dict]]:
    last = max((t for t, _ in packed), default=-math.inf)
    return [(t, line) for t, line in raw if t > last and not is_rollup(line)]


def _rollups_before(
    lines: Iterator[bytes], first_raw: float, early: bytes | None = None
) -> list[tuple[float, dict]]:
    """The roll-ups that end before the first raw sample (the rest repeat raw lines)."""
    return [
        (t, line)
        for t, line in _iter_valid(lines, early)
        if is_rollup(line) and _last_t(line, t) < first_raw
    ]


def rollups_between(
    run_dir: Path, after: float, before: float, tail_bytes: int
) -> list[tuple[float, dict]]:
    """The roll-ups that begin after ``after`` and end before ``before`` (what the
    writer rolled up out of the raw file between two reads of it)."""
    early = iso_seconds(after).encode()
    return [
        (t, line)
        for t, line in _iter_valid(_lines(run_dir / ROLLUP_NAME, tail_bytes), early)
        if is_rollup(line) and t > after and _last_t(line, t) < before
    ]


def last_samples(run_dir: Path, count: int, tail_bytes: int) -> list[tuple[float, dict]]:
    """The last ``count`` raw samples, oldest first, parsing no more lines than that
    (what a live view shows of the machine now)."""
    path = run_dir / TELEMETRY_NAME
    lines = (
        _lines(path, tail_bytes)
        if path.exists()
        else _packed_lines(run_dir / PACKED_NAME, tail_bytes)
    )
    found: list[tuple[float, dict]] = []
    for line in reversed(list(lines)):
        if len(found) == count:
            break
        found += [r for r in _valid(iter([line])) if not is_rollup(r[1])]
    return found[::-1]


def _last_t(line: Mapping[str, Any], t: float) -> float:
    last = parse_timestamp(line.get("t_last"))
    return t if last is None else last


def _valid(lines: Iterator[bytes], early: bytes | None = None) -> list[tuple[float, dict]]:
    return list(_iter_valid(lines, early))


def _iter_valid(lines: Iterator[bytes], early: bytes | None = None) -> Iterator[tuple[float, dict]]:
    """The lines that are samples or roll-ups; with ``early`` (an ISO time), those
    that begin before it are skipped by their first bytes, unparsed (every line the
    writer makes starts ``{"t":"<27-character ISO time>"``, and ISO times sort as text)."""
    for line in lines:
        if not line.strip() or len(line) > MAX_LINE_BYTES:
            continue
        if early is not None and line[6:33] < early and line.startswith(b'{"t":"'):
            continue
        try:
            record = loads(line, TELEMETRY_NAME)
        except FileProblem:  # a line torn by a kill, or damaged
            continue
        if not isinstance(record, dict) or not isinstance(record.get("points"), dict):
            continue
        t = parse_timestamp(record.get("t"))
        if t is not None:
            yield t, record


def _bounded(file: Any, count: int | None = None) -> Iterator[bytes]:
    """The file's lines, never more than :data:`MAX_LINE_BYTES` of one in memory (the
    rest of a longer line is read past and dropped); at most ``count`` of them."""
    seen = 0
    while count is None or seen < count:
        line = file.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        seen += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # not a sample: skip to its end
                rest = file.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            continue
        yield line


def _lines(path: Path, tail_bytes: int | None) -> Iterator[bytes]:
    if tail_bytes is not None:
        try:
            data = read_bytes(path, tail_bytes, tail=True)
        except FileProblem:
            return
        lines = data.split(b"\n")
        if len(data) == tail_bytes:
            lines = lines[1:]  # it may start mid-line
        yield from lines
        return
    try:
        file = open_regular(path)
    except FileProblem:
        return
    with file:
        yield from _bounded(file)


def _packed_lines(path: Path, tail_bytes: int | None) -> Iterator[bytes]:
    """The packed file's lines (with ``tail_bytes``: those of its last bytes, the
    file read through once); a damaged stream ends the lines where it is damaged."""
    try:
        file = open_regular(path)
    except FileProblem:
        return
    kept: deque[bytes] = deque()
    size = total = 0
    with file, gzip.GzipFile(fileobj=file, mode="rb") as packed:
        try:
            for line in _bounded(packed):
                total += len(line)
                if total > MAX_PACKED_BYTES:
                    break
                if tail_bytes is None:
                    yield line
                    continue
                kept.append(line)
                size += len(line)
                while size > tail_bytes and kept:
                    size -= len(kept.popleft())
        except (OSError, EOFError, zlib.error):
            pass  # torn or damaged: what came before it stands
    yield from kept


def telemetry_bytes(run_dir: Path) -> int:
    """Bytes of the run's telemetry on disk, every form."""
    total = 0
    for name in TELEMETRY_FILES:
        try:
            total += os.lstat(run_dir / name).st_size
        except OSError:
            pass
    return total
