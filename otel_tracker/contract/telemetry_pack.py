"""Packing a finished run's telemetry: roll up what lies before the recent window,
then gzip it all into ``telemetry.jsonl.gz`` (see :mod:`.telemetry_form`).

Crash-safe by order: the packed file is written under a temporary name, synced and
renamed into place, and only then are the live files removed. A pack killed at any
moment leaves the live form whole (readers prefer it while it exists), so packing
again redoes it. gzip (level 6) was chosen over lzma, bz2 and a columnar file by
``benchmarks/bench_telemetry_compaction.py``: readers keep streaming lines, and it
packs a day of samples about as small as the others for a fraction of their cost.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import fsync_dir
from .telemetry_form import (
    PACKED_NAME,
    ROLLUP_NAME,
    TELEMETRY_NAME,
    RollupBucket,
    bucket_key,
    is_rollup,
    iter_records,
    read_records,
    telemetry_bytes,
)

GZIP_LEVEL = 6
PACK_ABOVE_BYTES = 256 * 1024  # a run's end packs only telemetry larger than this
LAST_SAMPLE_BYTES = 1024 * 1024  # the end of the files, for the last raw sample


@dataclass(frozen=True)
class Packed:
    """What packing one run did."""

    bytes_before: int
    bytes_after: int
    samples: int  # raw samples kept at full resolution
    rolled_up: int  # raw samples folded into roll-ups


def roll_up(
    records: Iterable[tuple[float, dict[str, Any]]],
    window_s: float,
    interval_s: float,
    last_t: float | None,
    folded: list[int] | None = None,
) -> Iterator[dict[str, Any]]:
    """``records`` with the raw samples older than ``window_s`` before ``last_t`` (the
    last raw sample's time) folded into ``interval_s`` roll-ups (``window_s`` 0 or no
    ``last_t``: nothing folded), oldest first; ``folded[0]`` counts the folded samples."""
    count = folded if folded is not None else [0]
    if window_s <= 0 or last_t is None:
        yield from (line for _, line in records)
        return
    cutoff = bucket_key(last_t - window_s, interval_s) * interval_s
    bucket: RollupBucket | None = None
    run_id = ""
    for t, line in records:
        if is_rollup(line) or t >= cutoff:
            if bucket is not None:
                yield bucket.line(run_id, interval_s)
                bucket = None
            yield line
            continue
        step = line.get("step") if isinstance(line.get("step"), str) else None
        key = bucket_key(t, interval_s)
        if bucket is None or bucket.key != key or bucket.step != step:
            if bucket is not None:
                yield bucket.line(run_id, interval_s)
            bucket = RollupBucket(key, step, line["t"])
            run_id = str(line.get("run_id", ""))
        bucket.add(line["t"], line["points"])
        count[0] += 1
    if bucket is not None:
        yield bucket.line(run_id, interval_s)


def pack_telemetry(run_dir: Path, *, window_s: float, interval_s: float) -> Packed | None:
    """Pack the run's live telemetry (``None`` when there is none to pack)."""
    live = [run_dir / TELEMETRY_NAME, run_dir / ROLLUP_NAME]
    if not any(p.exists() for p in live):
        return None
    with _packing(run_dir) as mine:
        if not mine:
            return None  # another process packs this run right now
        for stale in run_dir.glob(f".{PACKED_NAME}.*.tmp"):  # a killed pack's
            with contextlib.suppress(OSError):
                stale.unlink()
        return _pack(run_dir, live, window_s, interval_s)


@contextlib.contextmanager
def _packing(run_dir: Path) -> Iterator[bool]:
    """An exclusive lock on the run directory itself, for packing it."""
    fd = os.open(run_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def _pack(run_dir: Path, live: list[Path], window_s: float, interval_s: float) -> Packed:
    before = telemetry_bytes(run_dir)
    # the last raw sample, by the same rule as the full read below (a packed file
    # first, if a killed pack left one)
    tail = read_records(run_dir, tail_bytes=LAST_SAMPLE_BYTES)
    last = max((t for t, line in tail if not is_rollup(line)), default=None)
    folded = [0]
    lines = roll_up(iter_records(run_dir), window_s, interval_s, last, folded)
    samples = 0
    target = run_dir / PACKED_NAME
    temporary = run_dir / f".{PACKED_NAME}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as file:
            with gzip.GzipFile(fileobj=file, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as out:
                for line in lines:
                    samples += not is_rollup(line)
                    out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_dir(run_dir)
    for path in live:  # the packed file is whole: the live form may go
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return Packed(before, telemetry_bytes(run_dir), samples, folded[0])
