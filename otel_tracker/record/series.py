"""``MetricLog``: what ``run.log()`` and ``step.log()`` record, cheaply.

The caller's thread does the least it can: turn the values into floats (so a
tensor or array changed later cannot change what was logged), take the monotonic
time and append one tuple to a bounded deque. No I/O, no OpenTelemetry call, no
lock. A background thread, started by the first ``log()``, drains the deque every
:data:`FLUSH_INTERVAL_S`: it gives default steps, checks keys once, updates the
per-key summaries the manifest shows, and appends the batch to ``metrics.jsonl``
(see :mod:`otel_tracker.contract.series`). A SIGKILL loses at most what was logged
since the last flush; the run's end flushes everything before its final manifest.

Memory is bounded whatever the call rate: at most :data:`MAX_PENDING` points wait
for the writer (beyond, the oldest are dropped, counted and reported once), and
at most :data:`MAX_KEYS` distinct keys are kept.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..contract.jsonfile import MAX_MAGNITUDE
from ..contract.series import DIRECTIONS, KeySummary, finite_or_none
from ..errors import ConfigError
from ..exporters.telemetry import TelemetryFile
from ..values import clean_text, is_whole

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
MAX_PENDING = 200_000
MAX_KEYS = 1_000
MAX_MIRRORED_KEYS = 100  # the OTLP/Prometheus gauge's series (its label values) at most
MAX_KEY_CHARS = 250
BIG = int(MAX_MAGNITUDE)  # steps every reader accepts
NO_VALUE = object()


class MetricLog:
    """One run's metric series: the buffer, its writer thread and the summaries."""

    def __init__(
        self,
        path: Path | None,
        *,
        wall_ns: Callable[[int], int],
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        warn: Callable[[str], None] = logger.warning,
        on_late: Callable[[], object] = lambda: None,
        on_flushed: Callable[[], object] = lambda: None,
        flush_interval: float | None = None,
    ) -> None:
        self._pending: deque[tuple[int, int, Any, str | None, dict[str, float]]] = deque(
            maxlen=MAX_PENDING
        )
        self._sequence = itertools.count()
        self._monotonic_ns = monotonic_ns
        self._wall_ns = wall_ns  # a monotonic reading -> the run's wall clock
        self._warn = warn
        self._on_late = on_late
        self._on_flushed = on_flushed  # the manifest's summary follows within a flush
        self._interval = FLUSH_INTERVAL_S if flush_interval is None else flush_interval
        self._file = TelemetryFile(path) if path is not None else None
        self._drain_lock = threading.Lock()
        # re-entrant: a signal's run end (close, a final manifest that reads summary())
        # may interrupt this very thread while it holds them (the first log()'s _start,
        # a manifest write outside held signals)
        self._flush_lock = threading.RLock()
        self._problems: list[str] = []  # warnings found while locked, given after
        self._sinks: list[Callable[..., None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.RLock()
        self._summaries: dict[str, KeySummary] = {}
        self._keys: dict[Any, str | None] = {}  # as logged -> as recorded (None: refused)
        self._directions: dict[str, str] = {}
        self._next_sequence = 0
        self.dropped = 0
        self._closed = False
        self._warned_keys = False
        _forget_in_forked_children(self)

    # -- the caller's thread ---------------------------------------------------------
    def log(
        self,
        values: Mapping[str, Any] | str,
        value: Any = NO_VALUE,
        step: Any = None,
        stage: str | None = None,
    ) -> None:
        """Buffer one point per key: ``log({"loss": 0.3}, step=3)`` or ``log("loss", 0.3)``."""
        if values.__class__ is str:
            if value is NO_VALUE:
                raise ConfigError(f"log({values!r}) needs a value: log({values!r}, 0.5)")
            values = {values: value}
        elif value is not NO_VALUE:
            raise ConfigError("log() takes a mapping of values, or a name and a value")
        try:
            # a float as it is; anything else through the checks (no str, bytes, bool)
            floats = {
                key: v if v.__class__ is float else _number(v)
                for key, v in values.items()  # type: ignore[union-attr]
            }
        except (TypeError, ValueError, AttributeError, OverflowError):
            raise ConfigError(_bad_values(values)) from None
        if step is not None and (step.__class__ is not int or not -BIG <= step <= BIG):
            step = _checked_step(step)
        self._pending.append((next(self._sequence), self._monotonic_ns(), step, stage, floats))
        if self._thread is None:
            self._start()

    def add_sink(self, sink: Callable[..., None]) -> None:
        """Also hand each flushed batch to ``sink(key, stage, steps, values, times)``
        (a mirror: TensorBoard), on the writer's thread."""
        self._sinks.append(sink)

    def declare(self, directions: Mapping[str, str]) -> None:
        """Which way is better per key (``"max"`` or ``"min"``), for the summary's best."""
        if not isinstance(directions, Mapping):
            raise ConfigError(
                f"direction must map keys to 'max' or 'min' ({{'loss': 'min'}}), got {directions!r}"
            )
        for key, direction in directions.items():
            if direction not in DIRECTIONS:
                raise ConfigError(f"direction of {key!r} must be 'max' or 'min', got {direction!r}")
        with self._flush_lock:
            for key, direction in directions.items():
                name = clean_text(str(key))
                self._directions[name] = direction
                if name in self._summaries:
                    self._summaries[name].declare(direction)

    def import_series(
        self,
        series: Mapping[str, Sequence[tuple[int, float, float | None]]],
        source: str,
    ) -> list[str]:
        """Record whole series read from another tool's files (TensorBoard, W&B):
        per key, ``(step, value, unix time)`` points, written at once with their own
        times and ``source`` kept with the key; one manifest refresh for them all. Not
        handed to the mirrors (the points are already in that tool's files). A key
        already recorded, invalid or one too many is refused, and so is a point whose
        step or time is beyond what every reader accepts (±1e18: a nanosecond clock
        used as a step). The keys recorded."""
        recorded: list[str] = []
        beyond = 0
        source = clean_text(source)[:MAX_KEY_CHARS]
        with self._drain_lock:
            lines = []
            with self._flush_lock:
                for key, points in series.items():
                    name = self._key(key)
                    if name is None or name in self._summaries:
                        continue
                    steps: list[int] = []
                    values: list[float | None] = []
                    times: list[float | None] = []
                    summary = KeySummary()
                    for step, raw, at in points:
                        if not -BIG <= step <= BIG:
                            beyond += 1
                            continue
                        value = finite_or_none(raw)
                        summary.add(step, value)
                        steps.append(step)
                        values.append(value)
                        times.append(round(at, 3) if at is not None and abs(at) < BIG else None)
                    if not steps:
                        continue
                    summary.source = source
                    if name in self._directions:
                        summary.declare(self._directions[name])
                    self._summaries[name] = summary
                    recorded.append(name)
                    lines.append(
                        {
                            "key": name,
                            "source": source,
                            "step": steps,
                            "value": values,
                            "time": times,
                        }
                    )
            if self._file is not None:
                for line in lines:
                    self._file.append(line)
        if beyond:
            self._problems.append(
                f"{beyond:,} points of {source} left out: their step is beyond ±1e18"
            )
        problems, self._problems = self._problems, []
        for problem in problems:
            self._warn(problem)
        if recorded:
            try:
                self._on_flushed()
            except Exception:
                logger.debug("otel-tracker manifest refresh after an import failed", exc_info=True)
        return recorded

    # -- the writer --------------------------------------------------------------------
    def _start(self) -> None:
        with self._thread_lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(
                target=self._loop, name="otel-tracker-metrics", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            try:
                drained = self.flush()
            except Exception:  # never the pipeline's problem
                logger.debug("otel-tracker metric flush failed", exc_info=True)
                drained = 0
            # a burst: come back sooner, before the bound drops points
            wait = self._interval / 20 if drained > MAX_PENDING // 20 else self._interval

    def flush(self) -> int:
        """Drain what was logged into the summaries and ``metrics.jsonl``; how many
        points that was."""
        with self._drain_lock:  # one drain at a time: the file keeps the order of points
            points = []
            take = self._pending.popleft
            try:
                while True:
                    points.append(take())
            except IndexError:
                pass
            if not points:
                return 0
            with self._flush_lock:  # the summaries (the manifest reads them under it)
                batches = self._summarise(points)
            if self._file is not None:
                for (key, stage), batch in batches.items():
                    line: dict[str, Any] = {"key": key}
                    if stage is not None:
                        line["stage"] = stage
                    self._file.append({**line, **batch})
            for sink in self._sinks:
                for (key, stage), batch in batches.items():
                    try:
                        sink(key, stage, batch["step"], batch["value"], batch["time"])
                    except Exception:  # a mirror's failure is the mirror's (it warns)
                        logger.debug("otel-tracker metric series sink failed", exc_info=True)
        # after the locks: a warning takes the record's lock, which a manifest write
        # holds while it asks for the summary
        problems, self._problems = self._problems, []
        for problem in problems:
            self._warn(problem)
        try:
            self._on_flushed()
        except Exception:
            logger.debug("otel-tracker manifest refresh after a metric flush failed", exc_info=True)
        return len(points)

    def _summarise(
        self, points: list[tuple[int, int, Any, str | None, dict[str, float]]]
    ) -> dict[tuple[str, str | None], dict[str, list[Any]]]:
        lost = points[0][0] - self._next_sequence  # the deque dropped the oldest
        self._next_sequence = points[-1][0] + 1
        if lost > 0:
            self._lost(lost)
        batches: dict[tuple[str, str | None], dict[str, list[Any]]] = {}
        for _, mono, step, stage, floats in points:
            seconds = round(self._wall_ns(mono) / 1e9, 3)
            for raw_key, raw_value in floats.items():
                key = self._key(raw_key)
                if key is None:
                    continue
                summary = self._summaries.get(key)
                if summary is None:
                    summary = self._summaries[key] = KeySummary()
                    if key in self._directions:
                        summary.declare(self._directions[key])
                at = step
                if at is None:
                    at = 0 if summary.last_step is None else summary.last_step + 1
                value = finite_or_none(raw_value)
                summary.add(at, value)
                batch = batches.get((key, stage))
                if batch is None:
                    batch = batches[(key, stage)] = {"step": [], "value": [], "time": []}
                batch["step"].append(at)
                batch["value"].append(value)
                batch["time"].append(seconds)
        return batches

    def _key(self, raw: Any) -> str | None:
        known = self._keys.get(raw, NO_VALUE)
        if known is not NO_VALUE:
            return known  # type: ignore[return-value]
        key: str | None = clean_text(raw) if isinstance(raw, str) else None
        if key is None or not key.strip():
            self._problems.append(f"metric key {raw!r} ignored: a key is a non-empty string")
            key = None
        elif len(key) > MAX_KEY_CHARS:
            self._problems.append(
                f"metric key {key[:40]!r}... ignored: longer than {MAX_KEY_CHARS} characters"
            )
            key = None
        elif key not in self._summaries and len(self._summaries) >= MAX_KEYS:
            if not self._warned_keys:
                self._warned_keys = True
                self._problems.append(
                    f"more than {MAX_KEYS} metric keys: later new keys are not recorded"
                )
            key = None
        if len(self._keys) < 4 * MAX_KEYS:  # refused keys too, but bounded
            self._keys[raw] = key
        return key

    def _lost(self, count: int) -> None:
        if not self.dropped:
            self._problems.append(
                f"metrics were logged faster than they could be written: the oldest "
                f"points beyond {MAX_PENDING:,} waiting were dropped (see metrics_dropped)"
            )
        self.dropped += count

    # -- the run's end and the manifest ----------------------------------------------
    def summary(self) -> dict[str, Any] | None:
        """The manifest's ``metrics`` section (``None`` when nothing was logged)."""
        with self._flush_lock:
            if not self._summaries and not self.dropped:
                return None
            keys = {key: s.to_dict() for key, s in sorted(self._summaries.items())}
            return {"keys": keys, "dropped": self.dropped} if self.dropped else {"keys": keys}

    def latest(self) -> dict[str, float]:
        """The last finite value of each key, at most :data:`MAX_MIRRORED_KEYS` of them
        (what the OTLP and Prometheus gauge shows: a bound on its series)."""
        with self._flush_lock:
            # a NaN or a gap keeps the key's last finite value on the dashboard
            return {
                key: s.last_finite
                for key, s in list(self._summaries.items())[:MAX_MIRRORED_KEYS]
                if s.last_finite is not None
            }

    def close(self, timeout: float = 2.0) -> None:
        """Stop the writer and flush what is left (the run is ending); later calls
        to :meth:`log` go to ``on_late``."""
        with self._thread_lock:
            self._closed = True
            thread = self._thread
        self.log = self._late  # type: ignore[method-assign]
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        # bounded: a writer stuck on a dead disk must not hold the run's end
        if self._drain_lock.acquire(timeout=timeout):
            self._drain_lock.release()
            self.flush()
        else:
            self._warn("the last metrics could not be written in time")
        if self._file is not None:
            self._file.close()

    def _late(self, *args: Any, **kwargs: Any) -> None:
        self._on_late()

    def _forget_in_child(self) -> None:
        """In a forked child: this is the parent's log; the child records nothing and
        takes none of its locks (a fork copies one held by the writer thread as held
        for ever)."""
        self._closed = True
        self._thread = None
        self._pending.clear()
        self._drain_lock = threading.Lock()
        self._flush_lock = threading.RLock()
        self._thread_lock = threading.RLock()
        self.log = self._ignore  # type: ignore[method-assign]
        self.declare = self._ignore  # type: ignore[method-assign]

    def _ignore(self, *args: Any, **kwargs: Any) -> None:
        return None


_LOGS: weakref.WeakSet[MetricLog] = weakref.WeakSet()
_fork_hook_lock = threading.Lock()
_fork_hooked = False


def _forget_in_forked_children(log: MetricLog) -> None:
    """A forked child inherits the parent's open logs, but not their writer thread:
    there they ignore what is logged (the child's own run, if any, has its own)."""
    global _fork_hooked
    with _fork_hook_lock:
        if not _fork_hooked:
            os.register_at_fork(after_in_child=_forget_all)
            _fork_hooked = True
        _LOGS.add(log)


def _forget_all() -> None:
    for log in list(_LOGS):
        log._forget_in_child()


def _number(value: Any) -> float:
    """A logged value as a float: numbers, numpy scalars, anything with __float__;
    never a string, bytes or a bool (float() would take "0.3" and True)."""
    if isinstance(value, (str, bytes, bytearray, bool)):
        raise TypeError(type(value).__name__)
    return float(value)


def _checked_step(step: Any) -> int:
    if not is_whole(step) or not -MAX_MAGNITUDE <= step <= MAX_MAGNITUDE:
        raise ConfigError(f"step must be a whole number within ±1e18, got {step!r}"[:200])
    return int(step)


def _bad_values(values: Any) -> str:
    if not isinstance(values, Mapping):
        return f"log() takes a mapping of names to numbers, got {type(values).__name__}"
    for key, value in values.items():
        try:
            _number(value)
        except (TypeError, ValueError, OverflowError):
            return (
                f"metric {key!r} must be a number (or have __float__: convert a GPU "
                f"tensor with .item() first), got {type(value).__name__} {value!r}"[:300]
            )
    return "log() values must be numbers"
