"""The tracked process and its whole child tree, through an injectable psutil.

CPU utilization is the delta of each process's CPU time between two samples
over the wall time between them (children that appear or exit between samples
contribute from or until the sample that saw them).

Memory: RSS summed over the tree, and PSS/USS (see ``memory.py``): PSS is the
headline, as RSS overstates trees of forked workers.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from .memory import MemoryReader, has_smaps_rollup
from .points import Point, Unavailable

MAX_TRACKED_PROCESSES = 256  # per run; beyond it the smallest exited entry is forgotten
TOP_PROCESSES = 10


class ProcessTable:
    """Per-process usage over the run, bounded in memory."""

    def __init__(self, limit: int = MAX_TRACKED_PROCESSES) -> None:
        self.limit = limit
        self.rows: dict[tuple[int, float], dict[str, Any]] = {}
        self.forgotten = 0
        self._lock = threading.Lock()  # the sampler writes, manifest writers read

    def update(self, key: tuple[int, float], name: str | None, cpu_s: float, rss: float) -> None:
        with self._lock:
            self._update(key, name, cpu_s, rss)

    def _update(self, key: tuple[int, float], name: str | None, cpu_s: float, rss: float) -> None:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = {
                "pid": key[0],
                "name": name,
                "cpu_time_s": 0.0,
                "rss_max_bytes": 0.0,
                "samples": 0,
            }
        row["cpu_time_s"] = round(cpu_s, 3)
        row["rss_max_bytes"] = max(row["rss_max_bytes"], rss)
        row["samples"] += 1

    def mark_alive(self, alive: set[tuple[int, float]]) -> None:
        with self._lock:
            self._mark_alive(alive)

    def _mark_alive(self, alive: set[tuple[int, float]]) -> None:
        for key, row in self.rows.items():
            row["alive"] = key in alive
        excess = len(self.rows) - self.limit
        if excess > 0:
            exited = sorted(
                (k for k in self.rows if k not in alive), key=lambda k: self.rows[k]["cpu_time_s"]
            )
            for key in exited[:excess]:
                del self.rows[key]
                self.forgotten += 1

    def top(self, n: int = TOP_PROCESSES) -> list[dict[str, Any]]:
        """The ``n`` processes with the most CPU time, their share of the tree's total."""
        with self._lock:
            rows = sorted(self.rows.values(), key=lambda r: r["cpu_time_s"], reverse=True)
            total = sum(r["cpu_time_s"] for r in rows) or 1.0
            return [{**r, "cpu_share": round(r["cpu_time_s"] / total, 4)} for r in rows[:n]]


class ProcessTreeSampler:
    """Samples one root process and its descendants."""

    def __init__(
        self,
        process: Any = None,
        *,
        psutil_module: Any = None,
        proc_root: Path | None = None,
        smaps_root: Path | None = None,
        exclude: frozenset[int] = frozenset(),
        memory: MemoryReader | None = None,
    ) -> None:
        real = psutil_module is None
        if psutil_module is None:
            import psutil as psutil_module
        self.psutil = psutil_module
        self.root = process if process is not None else psutil_module.Process(os.getpid())
        self.exclude = exclude  # e.g. the sampling helper process itself
        if smaps_root is None and real and has_smaps_rollup(Path("/proc")):
            smaps_root = Path("/proc")
        self.memory = memory or MemoryReader(psutil_module, smaps_root=smaps_root)
        self.cpu_count = psutil_module.cpu_count() or 1
        self._last_cpu: dict[tuple[int, float], float] = {}
        self._last_time: float | None = None
        # The kernel's children lists (Linux) find the tree in a few reads; psutil's
        # children() reads every process on the machine, and each read waits for the
        # GIL behind a busy pipeline thread (up to 5 ms each).
        if proc_root is None and real and _has_children_files(Path("/proc")):
            proc_root = Path("/proc")
        self.proc_root = proc_root
        self._procs: dict[int, Any] = {}
        self._names: dict[tuple[int, float], str | None] = {}
        self.table = ProcessTable()
        self.last_pids: set[int] = {self.root.pid}

    def details(self) -> dict[str, Any]:
        """``telemetry.processes``: the heaviest processes of the tree so far."""
        return {"processes": self.table.top(), "processes_forgotten": self.table.forgotten}

    def tree_pids(self) -> set[int]:
        """The pids seen in the latest sample (for the GPU sampler's per-run memory)."""
        return set(self.last_pids)

    def _tree(self) -> list[Any]:
        if self.proc_root is not None:
            pids = _descendants(self.proc_root, self.root.pid)
            if pids is not None:
                return [self.root, *self._processes([p for p in pids if p not in self.exclude])]
        try:
            children = self.root.children(recursive=True)
        except self.psutil.Error:
            children = []
        return [self.root, *(c for c in children if c.pid not in self.exclude)]

    def _processes(self, pids: list[int]) -> list[Any]:
        """psutil handles for pids, kept across samples (a reused pid gets a new one)."""
        found = []
        for pid in pids:
            proc = self._procs.get(pid)
            if proc is None or not proc.is_running():
                try:
                    proc = self.psutil.Process(pid)
                except self.psutil.Error:
                    self._procs.pop(pid, None)
                    continue
                self._procs[pid] = proc
            found.append(proc)
        for gone in set(self._procs) - set(pids):
            del self._procs[gone]
        return found

    def sample(self, now: float, unavailable: Unavailable) -> list[Point]:
        """Points for the tree at monotonic time ``now`` (seconds)."""
        ps = self.psutil
        detail = self.memory.begin(now)
        totals = {
            "rss": 0.0,
            "threads": 0.0,
            "fds": 0.0,
            "read": 0.0,
            "write": 0.0,
            "vol": 0.0,
            "invol": 0.0,
        }
        seen = {"fds": False, "io": False, "ctx": False}
        cpu_time = 0.0
        cpu_delta = 0.0
        current: dict[tuple[int, float], float] = {}
        alive = 0
        for proc in self._tree():
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    key = (proc.pid, proc.create_time())
                    used = times.user + times.system
                    current[key] = used
                    cpu_time += used
                    cpu_delta += used - self._last_cpu.get(key, used)
                    rss = proc.memory_info().rss
                    totals["rss"] += rss
                    self.table.update(key, self._name(key, proc), used, rss)
                    totals["threads"] += proc.num_threads()
                    alive += 1
                    self._optional(proc, totals, seen, unavailable)
                    if detail is not None:
                        self.memory.read(proc, detail, unavailable)
            except (ps.NoSuchProcess, ps.ZombieProcess):
                continue  # exited between listing and reading: normal churn
            except ps.AccessDenied:
                unavailable.note("process", f"access denied reading pid {proc.pid}")
                continue
        points = [
            Point("otel_tracker.process.count", alive, "{process}"),
            Point("process.cpu.time", round(cpu_time, 6), "s"),
            Point("process.memory.usage", totals["rss"], "By"),
            Point("process.thread.count", totals["threads"], "{thread}"),
        ]
        if self._last_time is not None and now > self._last_time:
            utilization = max(0.0, cpu_delta) / (now - self._last_time) / self.cpu_count
            points.append(Point("process.cpu.utilization", round(utilization, 6), "1"))
        if detail is not None:
            points += self.memory.finish(now, detail)
        if seen["fds"]:
            points.append(
                Point("process.unix.file_descriptor.count", totals["fds"], "{file_descriptor}")
            )
        if seen["io"]:
            points.append(
                Point("process.disk.io", totals["read"], "By", (("disk.io.direction", "read"),))
            )
            points.append(
                Point("process.disk.io", totals["write"], "By", (("disk.io.direction", "write"),))
            )
        if seen["ctx"]:
            points.append(
                Point(
                    "process.context_switches",
                    totals["vol"],
                    "{context_switch}",
                    (("process.context_switch_type", "voluntary"),),
                )
            )
            points.append(
                Point(
                    "process.context_switches",
                    totals["invol"],
                    "{context_switch}",
                    (("process.context_switch_type", "involuntary"),),
                )
            )
        self._last_cpu = current
        self._last_time = now
        self.table.mark_alive(set(current))
        self._names = {k: v for k, v in self._names.items() if k in current}
        self.last_pids = {pid for pid, _ in current} or {self.root.pid}
        return points

    def _name(self, key: tuple[int, float], proc: Any) -> str | None:
        """The executable's short name, read once per process (never its arguments:
        command lines carry secrets)."""
        if key not in self._names:
            try:
                self._names[key] = proc.name()
            except Exception:
                self._names[key] = None
        return self._names[key]

    def _optional(
        self,
        proc: Any,
        totals: dict[str, float],
        seen: dict[str, bool],
        unavailable: Unavailable,
    ) -> None:
        """Readings some platforms or permissions lack: each degrades alone."""
        readers: dict[str, Any] = {
            "fds": lambda: {"fds": proc.num_fds()},
            "io": lambda: _io(proc.io_counters()),
            "ctx": lambda: _ctx(proc.num_ctx_switches()),
        }
        for what, read in readers.items():
            try:
                values = read()
            except (AttributeError, NotImplementedError) as exc:
                unavailable.note(f"process.{what}", f"not supported here ({type(exc).__name__})")
                continue
            except self.psutil.AccessDenied:
                unavailable.note(f"process.{what}", f"access denied for pid {proc.pid}")
                continue
            for key, value in values.items():
                totals[key] += value
            seen[what] = True


def _has_children_files(proc_root: Path) -> bool:
    tid = threading.get_native_id()
    return (proc_root / str(os.getpid()) / "task" / str(tid) / "children").exists()


def _descendants(proc_root: Path, root_pid: int) -> list[int] | None:
    """All descendants of ``root_pid`` from /proc/PID/task/TID/children; None if unreadable."""
    found: list[int] = []
    stack = [root_pid]
    seen = {root_pid}
    while stack:
        pid = stack.pop()
        try:
            tasks = os.listdir(proc_root / str(pid) / "task")
        except FileNotFoundError:
            if pid == root_pid:
                return None
            continue  # exited meanwhile
        except OSError:
            return None
        for tid in tasks:
            try:
                kids = (proc_root / str(pid) / "task" / tid / "children").read_text().split()
            except FileNotFoundError:
                continue
            except OSError:
                return None
            for kid in kids:
                child = int(kid)
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    stack.append(child)
    return found


def _io(io: Any) -> dict[str, float]:
    return {"read": io.read_bytes, "write": io.write_bytes}


def _ctx(ctx: Any) -> dict[str, float]:
    return {"vol": ctx.voluntary, "invol": ctx.involuntary}
