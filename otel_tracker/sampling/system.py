"""The machine: CPU (total and per core), memory, swap, load, disk and network IO."""

from __future__ import annotations

import os
from typing import Any

from .points import Point, Unavailable


def _busy_and_total(times: Any) -> tuple[float, float]:
    total = sum(times)
    idle = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
    return total - idle, total


def _iowait(times: Any) -> float | None:
    # Linux only; elsewhere psutil has no such field
    value = getattr(times, "iowait", None)
    return float(value) if value is not None else None


class SystemSampler:
    """Samples system-wide figures; rates and utilizations come from deltas."""

    def __init__(self, *, psutil_module: Any = None, per_core: bool = True) -> None:
        if psutil_module is None:
            import psutil as psutil_module
        self.psutil = psutil_module
        self.per_core = per_core
        self._last_total: tuple[float, float] | None = None
        self._last_iowait: float | None = None
        self._last_cores: list[tuple[float, float]] | None = None
        self._last_io: tuple[float, Any, Any] | None = None

    def sample(self, now: float, unavailable: Unavailable) -> list[Point]:
        ps = self.psutil
        points: list[Point] = []
        times = ps.cpu_times()
        total, iowait = _busy_and_total(times), _iowait(times)
        if self._last_total is not None and total[1] > self._last_total[1]:
            elapsed = total[1] - self._last_total[1]
            busy = (total[0] - self._last_total[0]) / elapsed
            points.append(Point("system.cpu.utilization", round(min(1.0, max(0.0, busy)), 6), "1"))
            if iowait is not None and self._last_iowait is not None:
                waiting = (iowait - self._last_iowait) / elapsed
                points.append(
                    Point(
                        "otel_tracker.system.cpu.iowait", round(min(1.0, max(0.0, waiting)), 6), "1"
                    )
                )
        self._last_total, self._last_iowait = total, iowait
        if self.per_core:
            cores = [_busy_and_total(t) for t in ps.cpu_times(percpu=True)]
            if self._last_cores is not None and len(cores) == len(self._last_cores):
                for n, (cur, prev) in enumerate(zip(cores, self._last_cores, strict=True)):
                    if cur[1] > prev[1]:
                        busy = (cur[0] - prev[0]) / (cur[1] - prev[1])
                        attrs = (("cpu.logical_number", str(n)),)
                        points.append(
                            Point(
                                "system.cpu.utilization",
                                round(min(1.0, max(0.0, busy)), 6),
                                "1",
                                attrs,
                            )
                        )
            self._last_cores = cores
        mem = ps.virtual_memory()
        points += [
            Point(
                "system.memory.usage",
                mem.total - mem.available,
                "By",
                (("system.memory.state", "used"),),
            ),
            Point(
                "system.memory.usage", mem.available, "By", (("system.memory.state", "available"),)
            ),
            Point(
                "system.memory.utilization", round((mem.total - mem.available) / mem.total, 6), "1"
            ),
        ]
        try:
            swap = ps.swap_memory()
            points.append(
                Point("system.paging.usage", swap.used, "By", (("system.paging.state", "used"),))
            )
        except (OSError, RuntimeError) as exc:
            unavailable.note("system.paging", f"cannot read swap: {exc}")
        try:
            one, five, fifteen = os.getloadavg()
            for window, value in (("1m", one), ("5m", five), ("15m", fifteen)):
                points.append(
                    Point(
                        "otel_tracker.system.load_average",
                        round(value, 3),
                        "{run_queue_item}",
                        (("window", window),),
                    )
                )
        except (OSError, AttributeError):
            unavailable.note("system.load_average", "no load average on this platform")
        self._io_rates(now, points, unavailable)
        return points

    def _io_rates(self, now: float, points: list[Point], unavailable: Unavailable) -> None:
        ps = self.psutil
        try:
            disk = ps.disk_io_counters()
        except (OSError, RuntimeError):
            disk = None
        try:
            net = ps.net_io_counters()
        except (OSError, RuntimeError):
            net = None
        if disk is None:
            unavailable.note("system.disk.io", "no disk counters")
        if net is None:
            unavailable.note("system.network.io", "no network counters")
        last, self._last_io = self._last_io, (now, disk, net)
        if last is None or now <= last[0]:
            return
        dt = now - last[0]
        for name, cur, prev, fields in (
            (
                "otel_tracker.system.disk.io_rate",
                disk,
                last[1],
                (("read", "read_bytes"), ("write", "write_bytes")),
            ),
            (
                "otel_tracker.system.network.io_rate",
                net,
                last[2],
                (("receive", "bytes_recv"), ("transmit", "bytes_sent")),
            ),
        ):
            if cur is None or prev is None:
                continue
            key = "disk.io.direction" if "disk" in name else "network.io.direction"
            for direction, field in fields:
                rate = max(0.0, (getattr(cur, field) - getattr(prev, field)) / dt)
                points.append(Point(name, round(rate, 3), "By/s", ((key, direction),)))
