"""Fakes for testing code that uses otel-tracker, as the OpenTelemetry SDK ships its
in-memory exporters: a clock you move by hand, and psutil and NVML stand-ins for what a
test machine cannot show on demand (a process tree of known CPU and memory, NVIDIA GPUs).

>>> from otel_tracker import track_run
>>> from otel_tracker.testing import ManualClock
>>> clock = ManualClock()
>>> with track_run("t", root=tmp, clock=clock, resources=False) as run:  # doctest: +SKIP
...     with run.step("load"):
...         clock.sleep(30.0)  # the step takes 30 s of the run's clock

The samplers take the fakes where they take the real modules:
``NvmlSampler(FakeNvml(["GPU-0"]))``, ``ProcessTreeSampler(root, psutil_module=FakePsutil(root))`` with ``root = FakeProcess(1, cpu=3.0, rss=300)``.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from typing import Any

from .clock import ManualClock

__all__ = [
    "AccessDenied",
    "FakeNvml",
    "FakeProcess",
    "FakePsutil",
    "GpuProc",
    "ManualClock",
    "NVMLError",
    "NoSuchProcess",
    "ZombieProcess",
]

CpuTimes = namedtuple("CpuTimes", "user system")
SysCpu = namedtuple("SysCpu", "user system idle iowait")
Mem = namedtuple("Mem", "rss")
FullMem = namedtuple("FullMem", "rss uss pss")  # Linux
FullMemNoPss = namedtuple("FullMemNoPss", "rss uss")  # macOS: no PSS
Io = namedtuple("Io", "read_bytes write_bytes")
Ctx = namedtuple("Ctx", "voluntary involuntary")
VMem = namedtuple("VMem", "total available")
Swap = namedtuple("Swap", "used")
Disk = namedtuple("Disk", "read_bytes write_bytes")
Net = namedtuple("Net", "bytes_recv bytes_sent")


class Error(Exception):
    pass


class NoSuchProcess(Error):
    pass


class ZombieProcess(NoSuchProcess):
    pass


class AccessDenied(Error):
    pass


class FakeProcess:
    def __init__(
        self, pid: int, cpu: float = 0.0, rss: int = 0, children: list[FakeProcess] | None = None
    ) -> None:
        self.pid = pid
        self.cpu = cpu
        self.rss = rss
        self.kids = children or []
        self.gone = False
        self.denied: set[str] = set()
        self.unsupported: set[str] = set()
        self.has_pss = True

    def _check(self, what: str) -> None:
        if self.gone:
            raise NoSuchProcess(self.pid)
        if what in self.denied:
            raise AccessDenied(self.pid)
        if what in self.unsupported:
            raise AttributeError(what)

    def children(self, recursive: bool = False) -> list[FakeProcess]:
        out = []
        for kid in self.kids:
            out.append(kid)
            if recursive:
                out += kid.children(recursive=True)
        return out

    def oneshot(self) -> Any:
        return contextlib.nullcontext()

    def create_time(self) -> float:
        self._check("create_time")
        return 1000.0 + self.pid

    def cpu_times(self) -> CpuTimes:
        self._check("cpu_times")
        return CpuTimes(self.cpu * 0.75, self.cpu * 0.25)

    def memory_info(self) -> Mem:
        self._check("memory_info")
        return Mem(self.rss)

    def memory_full_info(self) -> FullMem | FullMemNoPss:
        self._check("uss")
        if not self.has_pss:
            return FullMemNoPss(self.rss, self.rss // 2)
        return FullMem(self.rss, self.rss // 2, self.rss * 3 // 4)

    def name(self) -> str:
        self._check("name")
        return f"worker-{self.pid}"

    def num_threads(self) -> int:
        self._check("threads")
        return 2

    def num_fds(self) -> int:
        self._check("fds")
        return 10

    def io_counters(self) -> Io:
        self._check("io")
        return Io(100 * self.pid, 10 * self.pid)

    def num_ctx_switches(self) -> Ctx:
        self._check("ctx")
        return Ctx(5, 1)


class FakePsutil:
    Error = Error
    NoSuchProcess = NoSuchProcess
    ZombieProcess = ZombieProcess
    AccessDenied = AccessDenied

    def __init__(self, root: FakeProcess, cpus: int = 4) -> None:
        self.root = root
        self.cpus = cpus
        self.busy = [0.0] * cpus
        self.idle = [0.0] * cpus
        self.iowait = 0.0  # whole machine, seconds
        self.mem = VMem(16 * 2**30, 12 * 2**30)
        self.disk = Disk(0, 0)
        self.net = Net(0, 0)

    def Process(self, pid: int | None = None) -> FakeProcess:
        return self.root

    def cpu_count(self) -> int:
        return self.cpus

    def cpu_times(self, percpu: bool = False) -> Any:
        per = [SysCpu(b * 0.5, b * 0.5, i, 0.0) for b, i in zip(self.busy, self.idle, strict=True)]
        if percpu:
            return per
        return SysCpu(
            sum(p.user for p in per), sum(p.system for p in per), sum(self.idle), self.iowait
        )

    def virtual_memory(self) -> VMem:
        return self.mem

    def swap_memory(self) -> Swap:
        return Swap(2**20)

    def disk_io_counters(self) -> Disk:
        return self.disk

    def net_io_counters(self) -> Net:
        return self.net


class NVMLError(Exception):
    pass


Util = namedtuple("Util", "gpu memory")
GpuMem = namedtuple("GpuMem", "total used free")
GpuProc = namedtuple("GpuProc", "pid usedGpuMemory")


class FakeNvml:
    """Just the NVML calls the GPU sampler makes; one flag per way to fail."""

    NVML_TEMPERATURE_GPU = 0
    NVMLError = NVMLError

    def __init__(self, uuids: list[str], *, init_error: bool = False) -> None:
        self.uuids = uuids
        self.init_error = init_error
        self.init_calls = 0
        self.failing: set[tuple[int, str]] = set()  # (device index, query)
        self.processes: dict[int, list[GpuProc]] = {}

    def _fail(self, handle: int, what: str) -> None:
        if (handle, what) in self.failing:
            raise NVMLError(f"{what} not supported")

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error:
            raise NVMLError("Driver Not Loaded")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUUID(self, h: int) -> bytes:
        return self.uuids[h].encode()

    def nvmlDeviceGetName(self, h: int) -> str:
        return "NVIDIA Fake 80GB"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Util:
        self._fail(h, "utilization")
        return Util(50 + h, 10)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> GpuMem:
        self._fail(h, "memory")
        return GpuMem(80 * 2**30, 20 * 2**30, 60 * 2**30)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        self._fail(h, "temperature")
        return 60 + h

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        self._fail(h, "power")
        return 250_000  # mW

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[GpuProc]:
        self._fail(h, "processes")
        return self.processes.get(h, [])
