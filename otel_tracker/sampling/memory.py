"""What a process tree's memory costs the machine: PSS and USS, summed over the tree.

RSS summed over a tree counts every page a forked worker shares with its parent
once per process (a parent and 8 DataLoader workers over one 500 MiB dataset read
4.7 GiB). PSS splits each shared page among the processes that map it, so the
tree's PSS is what it costs: the headline memory figure. USS is the pages no other
process maps. Both come from one read of ``/proc/PID/smaps_rollup`` on Linux
(psutil's ``memory_full_info()`` elsewhere), for which the kernel walks the
process's page tables (about 15 ms of CPU per GiB mapped, 0.3 ms for a small
Python process): they are read as often as :data:`DETAIL_CPU_BUDGET` allows, which
is every sample for an ordinary tree at the default interval.

A tree whose PSS cannot be read whole (an OS without it, a process we may not
inspect) gets no PSS point for that sample rather than a partial sum, and
``telemetry.unavailable`` says why: readers then fall back to RSS and say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .points import Point, Unavailable

# Share of one core that reading PSS/USS may take: after a read that cost c seconds of
# CPU, the next waits c / budget seconds. Nine Python processes cost about 3 ms: every
# sample at any interval from 0.75 s; nine sharing 0.5 GiB each about 80 ms: every
# 20 s. With the rest of a sample (about 3 ms) the sampler stays under 0.5% of a core
# at the default 5 s interval (benchmarks/bench_overhead.py, part 2).
DETAIL_CPU_BUDGET = 0.004
PSS = "otel_tracker.process.memory.pss"
USS = "otel_tracker.process.memory.uss"


class TreeMemory:
    """PSS and USS of one sample's tree, or ``None`` for each once a process lacks it."""

    __slots__ = ("cost", "pss", "uss")

    def __init__(self) -> None:
        self.pss: float | None = 0.0
        self.uss: float | None = 0.0
        self.cost = 0.0  # CPU seconds spent reading them

    def add(self, pss: float | None, uss: float | None) -> None:
        self.pss = None if self.pss is None or pss is None else self.pss + pss
        self.uss = None if self.uss is None or uss is None else self.uss + uss

    def points(self) -> list[Point]:
        found = []
        if self.pss is not None:
            found.append(Point(PSS, self.pss, "By"))
        if self.uss is not None:
            found.append(Point(USS, self.uss, "By"))
        return found


class MemoryReader:
    """Reads PSS/USS per process, within a CPU budget (see the module's docstring)."""

    def __init__(
        self,
        psutil_module: Any,
        *,
        smaps_root: Path | None,
        budget: float = DETAIL_CPU_BUDGET,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.psutil = psutil_module
        self.smaps_root = smaps_root  # where smaps_rollup is read (Linux); None: psutil
        self.budget = budget
        self._cpu_clock = cpu_clock
        self._next = -float("inf")

    def begin(self, now: float) -> TreeMemory | None:
        """A sum to fill for the sample at ``now``, or ``None`` when it is not due."""
        return TreeMemory() if now >= self._next else None

    def finish(self, now: float, tree: TreeMemory) -> list[Point]:
        """The sum's points; the next read waits until this one's cost is within budget."""
        self._next = now + tree.cost / self.budget
        return tree.points()

    def read(self, proc: Any, tree: TreeMemory, unavailable: Unavailable) -> None:
        """Add ``proc``'s PSS and USS to ``tree``; psutil's ``NoSuchProcess`` if it exited."""
        started = self._cpu_clock()
        try:
            pss, uss = self._read(proc, unavailable)
        finally:
            tree.cost += self._cpu_clock() - started
        tree.add(pss, uss)

    def _read(self, proc: Any, unavailable: Unavailable) -> tuple[float | None, float | None]:
        if self.smaps_root is not None:
            path = self.smaps_root / str(proc.pid) / "smaps_rollup"
            try:
                return smaps_rollup(path)
            except (FileNotFoundError, ProcessLookupError):
                raise self.psutil.NoSuchProcess(proc.pid) from None  # exited meanwhile
            except OSError as exc:
                return _neither(unavailable, f"cannot read {path}: {exc.strerror or exc}")
        try:
            info = proc.memory_full_info()
        except (AttributeError, NotImplementedError) as exc:
            return _neither(unavailable, f"not supported here ({type(exc).__name__})")
        except self.psutil.AccessDenied:
            return _neither(unavailable, f"access denied for pid {proc.pid}")
        pss = getattr(info, "pss", None)
        if pss is None:
            unavailable.note("process.pss", "this OS does not report PSS")
        return pss, getattr(info, "uss", None)


def _neither(unavailable: Unavailable, reason: str) -> tuple[None, None]:
    unavailable.note("process.pss", reason)
    unavailable.note("process.uss", reason)
    return None, None


def smaps_rollup(path: Path) -> tuple[float, float]:
    """PSS and USS (private pages) in bytes from one ``smaps_rollup`` file."""
    pss = uss = 0.0
    with open(path, "rb") as file:
        for line in file.read().splitlines():
            if line.startswith(b"Pss:"):
                pss += int(line.split()[1]) * 1024
            elif line.startswith(b"Private_"):  # Private_Clean, _Dirty, _Hugetlb
                uss += int(line.split()[1]) * 1024
    return pss, uss


def has_smaps_rollup(proc_root: Path) -> bool:
    """Whether this kernel has ``smaps_rollup`` (4.14+) and lets us read our own."""
    try:
        smaps_rollup(proc_root / "self" / "smaps_rollup")
    except (OSError, ValueError, IndexError):
        return False
    return True
