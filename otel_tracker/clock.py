"""Injectable time sources.

Durations come from the monotonic clock. A run's timestamps are UTC wall-clock
time at its start plus monotonic time since (:class:`AnchoredClock`), so a system
clock stepped mid-run moves none of them. Tests pass a fake clock so ETA and
staleness logic run without sleeping, or with a wall clock that jumps.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    """What the tracker needs to know about time."""

    def monotonic_ns(self) -> int:
        """Nanoseconds from an arbitrary origin; never goes backwards."""
        ...

    def time_ns(self) -> int:
        """Nanoseconds since the Unix epoch (wall clock, UTC)."""
        ...


class SystemClock:
    """The real clocks of this machine."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def time_ns(self) -> int:
        return time.time_ns()


class AnchoredClock:
    """Wall-clock timestamps that advance with the monotonic clock.

    Span start/end times are taken from here, so a span's duration is a
    monotonic difference even if the system clock is stepped mid-run.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._wall0 = clock.time_ns()
        self._mono0 = clock.monotonic_ns()
        # the underlying reading, as cheap as it can be (hot paths take it, and convert
        # it with wall_ns_at later, off the caller's thread)
        self.monotonic_ns = (
            time.monotonic_ns if isinstance(clock, SystemClock) else clock.monotonic_ns
        )

    def now_ns(self) -> int:
        return self._wall0 + (self._clock.monotonic_ns() - self._mono0)

    def wall_ns_at(self, monotonic_ns: int) -> int:
        """The run's timestamp of an earlier :attr:`monotonic_ns` reading."""
        return self._wall0 + (monotonic_ns - self._mono0)


class ManualClock:
    """A clock that moves only when told: hours of pipeline in milliseconds, in tests
    and benchmarks. Wall and monotonic time advance together."""

    def __init__(self, start_epoch_s: float = 1_800_000_000.0) -> None:
        self._ns = int(start_epoch_s * 1e9)

    def monotonic_ns(self) -> int:
        return self._ns

    def time_ns(self) -> int:
        return self._ns

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self._ns += int(seconds * 1e9)


def iso_utc(epoch_ns: int | None) -> str | None:
    """``2026-11-23T21:37:00.123456Z`` for an epoch in nanoseconds."""
    if epoch_ns is None:
        return None
    dt = datetime.fromtimestamp(epoch_ns / 1e9, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
