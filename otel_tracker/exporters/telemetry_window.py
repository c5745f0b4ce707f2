"""Bounded telemetry for long runs: full resolution for a recent window, roll-ups
for the rest (the live form of :mod:`otel_tracker.contract.telemetry_form`).

Each sample goes to ``telemetry.jsonl`` and into the open roll-up bucket; a bucket
is appended to ``telemetry.rollup.jsonl`` when the next sample falls in another
(a new interval, or another step; until the first drop, they wait in memory). Every quarter window (at least every roll-up
interval) the raw lines older than the window are dropped, but only up to the
last bucket written: a roll-up that failed to land keeps its raw samples. All of
it runs on the sampler thread, never the pipeline's: a sample costs a few
dictionary updates more, and a drop copies one window of lines (a megabyte an
hour on a small machine) from one file to another.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..contract.telemetry_form import ROLLUP_NAME, RollupBucket, bucket_key, iso_seconds
from ..timeparse import parse_timestamp
from .telemetry import TelemetryFile

logger = logging.getLogger(__name__)

MAX_WAITING = 1000  # closed buckets held in memory before the first drop


class TelemetryWindow:
    """``telemetry.jsonl`` with a window (``window_s`` 0: everything kept raw)."""

    def __init__(
        self,
        raw: TelemetryFile,
        *,
        run_id: str,
        window_s: float,
        interval_s: float,
        rollup_path: Path | None = None,
    ) -> None:
        self.raw = raw
        self.run_id = run_id
        self.window_s = window_s
        self.interval_s = interval_s
        self.rollups = TelemetryFile(rollup_path or raw.path.with_name(ROLLUP_NAME), raw.owner_pid)
        self._bucket: RollupBucket | None = None
        self._rollup_failed = False
        # closed buckets wait here until the first drop: a run shorter than its window
        # never writes the roll-up file at all (its raw lines have everything)
        self._waiting: list[RollupBucket] | None = []
        self._oldest: float | None = None  # of the raw lines kept
        self._slack = max(interval_s, window_s / 4)
        self.dropped = 0  # times raw lines were dropped

    @property
    def path(self) -> Path:
        return self.raw.path

    @property
    def lines(self) -> int:
        return self.raw.lines

    def append(self, record: dict[str, Any], at: float) -> bool:
        """Write one sample (``at``: its time in Unix seconds, as its ``t``)."""
        written = self.raw.append(record)
        if self.window_s <= 0 or not written:
            return written
        # the time as written: the drop compares the lines' text, and a roll-up's
        # ends must be its samples' own times (a rounding could lose a bucket)
        text = record["t"]
        at = parse_timestamp(text) or at
        if self._oldest is None:
            self._oldest = at
        step = record.get("step")
        key = bucket_key(at, self.interval_s)
        bucket = self._bucket
        if bucket is None or bucket.key != key or bucket.step != step:
            if bucket is not None:
                self._write(bucket)
            bucket = self._bucket = RollupBucket(key, step, text)
        bucket.add(text, record["points"])
        if at - self._oldest > self.window_s + self._slack:
            self._drop_old(at)
        return True

    def _write(self, bucket: RollupBucket) -> None:
        if self._waiting is not None:
            self._waiting.append(bucket)
            if len(self._waiting) >= MAX_WAITING:  # a long window: memory stays bounded
                self._spill()
            return
        if self._rollup_failed:
            return
        if not self.rollups.append(bucket.line(self.run_id, self.interval_s)):
            self._rollup_failed = True  # from here on the raw lines are all there is

    def _spill(self) -> None:
        waiting, self._waiting = self._waiting or [], None
        for bucket in waiting:
            self._write(bucket)

    def _drop_old(self, now: float) -> None:
        self._spill()
        if self._rollup_failed or self._bucket is None:
            return
        # buckets never span an interval's boundary, and every bucket before the open
        # one is written: the samples before a boundary at or before the open
        # bucket's are all in roll-ups (readers use a roll-up only if it ends before
        # the first raw sample, so one of a step change within the interval is not
        # counted twice)
        cutoff = min(bucket_key(now - self.window_s, self.interval_s), self._bucket.key)
        cutoff *= self.interval_s
        if self._oldest is not None and cutoff <= self._oldest:
            return
        if self.raw.drop_before(iso_seconds(cutoff)):
            self.dropped += 1
        self._oldest = cutoff

    def close(self) -> None:
        """Write the open bucket, then close both files."""
        bucket, self._bucket = self._bucket, None
        if bucket is not None and self._waiting is None:
            self._write(bucket)
        self.raw.close()
        self.rollups.close()
