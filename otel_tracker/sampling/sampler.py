"""``ResourceSampler``: one thread samples once per interval into a cached snapshot.

Readers (OTel observable instruments, the manifest, live views) only read the
snapshot, so any number of them never multiplies the sampling cost. A sampler
that raises is marked unavailable with the reason and the others go on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .aggregate import Aggregates
from .points import Point, Unavailable, merged_details

logger = logging.getLogger(__name__)

# 5 s: ~2-5 ms of CPU per sample for a process tree of a few dozen processes is
# about 0.1% of one core, while still resolving steps that last a minute.
DEFAULT_INTERVAL_S = 5.0
# the ring buffer of recent snapshots for live views: an hour at the default interval
RECENT_SNAPSHOTS = 720


class Sampler(Protocol):
    def sample(self, now: float, unavailable: Unavailable) -> list[Point]: ...


@dataclass(frozen=True)
class Snapshot:
    """The latest sample: monotonic and wall time, points, current step (its index and
    its name, both taken when the sample was, so every reader of it agrees)."""

    monotonic: float
    wall: float
    points: tuple[Point, ...]
    step_index: int | None
    unavailable: dict[str, str] = field(default_factory=dict)
    step_name: str | None = None

    def value(self, key: str) -> float | None:
        for point in self.points:
            if point.key == key:
                return point.value
        return None


# How long the run's end waits for a sample under way (they take milliseconds).
STOP_JOIN_S = 0.5


class ResourceSampler:
    """Runs the samplers on a daemon thread; everything external is injectable."""

    def __init__(
        self,
        samplers: Sequence[tuple[str, Sampler]],
        *,
        interval: float = DEFAULT_INTERVAL_S,
        current_step: Callable[[], int | None] = lambda: None,
        step_name: Callable[[int | None], str | None] = lambda index: None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_sample: Callable[[Snapshot], None] | None = None,
        heartbeat: Callable[[bool], None] | None = None,
        heartbeat_interval: float | None = None,
    ) -> None:
        self.samplers = list(samplers)
        self.interval = interval
        # the run's heartbeat rides on this thread: one thread of ours waking, not two
        # (called with whether a sample follows at once, so the two can share a request)
        self._heartbeat = heartbeat
        self.heartbeat_interval = heartbeat_interval or interval
        self._current_step = current_step
        self._step_name = step_name
        self._monotonic = monotonic
        self._wall = wall
        self._on_sample = on_sample
        self.unavailable = Unavailable()
        self.aggregates = Aggregates()
        self.snapshot: Snapshot | None = None
        self.recent: deque[Snapshot] = deque(maxlen=RECENT_SNAPSHOTS)
        self.cpu_seconds = 0.0  # the sampler's own cost, for the overhead benchmark
        self.samples = 0
        self._lock = threading.Lock()
        self._sampling = threading.Lock()
        self._stop = threading.Event()
        self._closed = False  # after stop(): a sample still in flight publishes nothing
        self._thread: threading.Thread | None = None
        self._failed: set[str] = set()
        self._summary: dict[str, Any] | None = None

    def sample_once(self) -> Snapshot:
        """Take one sample now (the thread calls this every interval)."""
        with self._sampling:  # samplers keep delta state: one sample at a time
            return self._sample()

    def latest(self, count: int) -> list[Snapshot]:
        """The last ``count`` snapshots, oldest first."""
        with self._lock:
            return list(self.recent)[-count:]

    def history(self, key: str, seconds: float | None = None) -> list[tuple[float, float]]:
        """``(wall time, value)`` of one series from the ring buffer, oldest first."""
        with self._lock:
            snapshots = list(self.recent)
        since = snapshots[-1].wall - seconds if snapshots and seconds is not None else None
        series = []
        for snapshot in snapshots:
            if since is not None and snapshot.wall < since:
                continue
            value = snapshot.value(key)
            if value is not None:
                series.append((snapshot.wall, value))
        return series

    def close_step(self, index: int) -> dict[str, Any]:
        """A step's aggregates, summarized once and then dropped (see Aggregates)."""
        with self._lock:
            return self.aggregates.close_step(index)

    def sample_if_older(self, seconds: float) -> Snapshot | None:
        """Sample unless the latest snapshot is younger than ``seconds`` or a sample is
        under way (the caller is the pipeline's thread: it never waits for one)."""
        latest = self.snapshot
        if latest is not None and self._monotonic() - latest.monotonic < seconds:
            return None
        return self._sample_unless_busy(timeout=0)

    def _sample_unless_busy(self, timeout: float) -> Snapshot | None:
        """Sample unless another sample holds the lock longer than ``timeout`` seconds."""
        if not self._sampling.acquire(timeout=timeout):
            return None
        try:
            return self._sample()
        finally:
            self._sampling.release()

    def _sample(self) -> Snapshot:
        started = time.thread_time()
        now = self._monotonic()
        points: list[Point] = []
        for name, sampler in self.samplers:
            try:
                points += sampler.sample(now, self.unavailable)
            except Exception as exc:
                self.unavailable.note(name, f"sampling failed: {type(exc).__name__}: {exc}")
                if name not in self._failed:
                    self._failed.add(name)
                    logger.warning(
                        "otel-tracker %s sampling failed; the others go on", name, exc_info=True
                    )
        step = self._current_step()
        snapshot = Snapshot(
            now,
            self._wall(),
            tuple(points),
            step,
            dict(self.unavailable),
            step_name=self._step_name(step),
        )
        with self._lock:
            if self._closed:
                return snapshot
            self.snapshot = snapshot
            self.recent.append(snapshot)
            self.aggregates.add(points, step)
            self.samples += 1
        if self._on_sample is not None:
            try:
                self._on_sample(snapshot)
            except Exception:
                if "on_sample" not in self._failed:
                    self._failed.add("on_sample")
                    logger.warning("otel-tracker sample consumer failed", exc_info=True)
        self.cpu_seconds += time.thread_time() - started
        return snapshot

    def start(self, first_sample_now: bool = True) -> None:
        """Start the thread; the first sample (a baseline for rates) now or on the thread."""
        if first_sample_now:
            self.sample_once()
        self._thread = threading.Thread(
            target=self._loop,
            args=(not first_sample_now,),
            name="otel-tracker-sampler",
            daemon=True,
        )
        self._thread.start()

    def stop(self, final_sample: bool = True) -> bool:
        """Stop the thread and take the final sample; ``False`` if a sample was still
        under way after :data:`STOP_JOIN_S` (a source that does not answer): then
        there is no final sample, and that late one will publish nothing."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=STOP_JOIN_S)  # a sample takes milliseconds
        finished = thread is None or not thread.is_alive()
        if final_sample and finished:
            self._sample_unless_busy(timeout=STOP_JOIN_S)
        with self._lock:
            self._closed = True
        return finished

    def _loop(self, sample_first: bool = False) -> None:
        if sample_first:
            self.sample_once()
        start = self._monotonic()
        next_sample = start + self.interval
        next_beat = start + self.heartbeat_interval if self._heartbeat else math.inf
        # a heartbeat due this close to a sample goes with it: one wake-up for both
        slack = 0.1 * min(self.interval, self.heartbeat_interval)
        while not self._stop.wait(max(0.0, min(next_sample, next_beat) - self._monotonic())):
            now = self._monotonic()
            sample_due = now >= next_sample - slack
            if now >= next_beat - slack:
                next_beat = now + self.heartbeat_interval
                self._beat(sample_due)
            if sample_due:
                next_sample = now + self.interval
                self.sample_once()

    def _beat(self, sample_follows: bool) -> None:
        try:
            self._heartbeat(sample_follows)  # type: ignore[misc]
        except Exception:
            if "heartbeat" not in self._failed:
                self._failed.add("heartbeat")
                logger.warning("otel-tracker heartbeat failed; the run goes on", exc_info=True)

    def summary(self) -> dict[str, Any]:
        """The manifest's ``telemetry`` section (rebuilt only after a new sample).

        Every manifest write and every live redraw asks for it, while the
        aggregates change once per sample; the p95s sort each series' reservoir.
        """
        with self._lock:
            cached = self._summary
            if cached is None or cached["samples"] != self.samples:
                cached = self._summary = {
                    "interval_s": self.interval,
                    "samples": self.samples,
                    "sampler_cpu_s": round(self.cpu_seconds, 6),
                    "unavailable": dict(self.unavailable),
                    "run": self.aggregates.run_summary(),
                }
                cached.update(merged_details(self.samplers))
            return cached
