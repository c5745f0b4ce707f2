"""NVIDIA GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``).

NVML is initialised once, on the first sample. No library, no driver or no
device is not an error: GPU metrics are marked unavailable with the reason.
Each query (utilization, memory, temperature, power, processes) that fails on
a device is disabled for that device alone; the others go on.
``CUDA_VISIBLE_DEVICES`` is respected: indices or UUID prefixes, stopping at the
first invalid entry as CUDA does; empty or ``-1`` hides every GPU.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from .points import Attributes as Attrs
from .points import Point, Unavailable

logger = logging.getLogger(__name__)
GPU_EXTRA_HINT = "pip install 'otel-tracker[gpu]'"


def visible_indices(spec: str | None, uuids: list[str]) -> list[int]:
    """Physical device indices that ``CUDA_VISIBLE_DEVICES`` leaves visible, in its order."""
    if spec is None:
        return list(range(len(uuids)))
    chosen: list[int] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if entry.isdigit() and int(entry) < len(uuids):
            index = int(entry)
        else:
            matches = [
                i
                for i, u in enumerate(uuids)
                if entry and u.startswith(entry if entry.startswith("GPU-") else "GPU-" + entry)
            ]
            if len(matches) != 1:
                break  # CUDA stops at the first entry it cannot resolve
            index = matches[0]
        if index in chosen:
            break
        chosen.append(index)
    return chosen


class NvmlSampler:
    """Per-device utilization, memory, temperature, power, and the run's own GPU memory."""

    def __init__(
        self,
        nvml: Any = None,
        *,
        environ: Mapping[str, str] | None = None,
        pids: Callable[[], set[int]] = lambda: {os.getpid()},
    ) -> None:
        self._nvml = nvml
        self._environ = os.environ if environ is None else environ
        self._pids = pids
        self._state = "new"  # new -> ready | off
        self._devices: list[tuple[int, Any, str, str]] = []  # (index, handle, uuid, name)
        self._disabled: set[tuple[str, str]] = set()

    def _start(self, unavailable: Unavailable) -> None:
        self._state = "off"
        nvml = self._nvml
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError:
                unavailable.note("gpu", f"nvidia-ml-py is not installed ({GPU_EXTRA_HINT})")
                return
        try:
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in handles]
            names = [_text(nvml.nvmlDeviceGetName(h)) for h in handles]
        except Exception as exc:
            unavailable.note("gpu", f"NVML unavailable: {exc}")
            return
        indices = visible_indices(self._environ.get("CUDA_VISIBLE_DEVICES"), uuids)
        if not indices:
            unavailable.note(
                "gpu", "no visible NVIDIA GPU" + (" (CUDA_VISIBLE_DEVICES)" if count else "")
            )
            return
        self._nvml = nvml
        self._devices = [(i, handles[i], uuids[i], names[i]) for i in indices]
        self._state = "ready"

    def sample(self, now: float, unavailable: Unavailable) -> list[Point]:
        if self._state == "new":
            self._start(unavailable)
        if self._state != "ready":
            return []
        pids = self._pids()
        points: list[Point] = []
        for index, handle, uuid, name in self._devices:
            attrs = (("hw.id", uuid), ("hw.name", name), ("otel_tracker.gpu.index", str(index)))
            for what, query in self._queries:
                if (uuid, what) in self._disabled:
                    continue
                try:
                    points += query(handle, attrs, pids)
                except Exception as exc:
                    self._disabled.add((uuid, what))
                    unavailable.note(
                        f"hw.gpu.{what}[{uuid}]", f"NVML query failed, disabled: {exc}"
                    )
        return points

    @property
    def _queries(self) -> tuple[tuple[str, Callable[[Any, Attrs, set[int]], list[Point]]], ...]:
        return (
            ("utilization", self._utilization),
            ("memory", self._memory),
            ("temperature", self._temperature),
            ("power", self._power),
            ("processes", self._process_memory),
        )

    def _utilization(self, handle: Any, attrs: Attrs, pids: set[int]) -> list[Point]:
        rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
        return [Point("hw.gpu.utilization", rates.gpu / 100.0, "1", attrs)]

    def _memory(self, handle: Any, attrs: Attrs, pids: set[int]) -> list[Point]:
        info = self._nvml.nvmlDeviceGetMemoryInfo(handle)
        used = round(info.used / info.total, 6) if info.total else 0.0
        return [
            Point("hw.gpu.memory.usage", float(info.used), "By", attrs),
            Point("hw.gpu.memory.limit", float(info.total), "By", attrs),
            Point("hw.gpu.memory.utilization", used, "1", attrs),
        ]

    def _temperature(self, handle: Any, attrs: Attrs, pids: set[int]) -> list[Point]:
        sensor = getattr(self._nvml, "NVML_TEMPERATURE_GPU", 0)
        celsius = float(self._nvml.nvmlDeviceGetTemperature(handle, sensor))
        return [Point("hw.temperature", celsius, "Cel", (*attrs, ("hw.type", "gpu")))]

    def _power(self, handle: Any, attrs: Attrs, pids: set[int]) -> list[Point]:
        watts = self._nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0  # NVML reports mW
        return [Point("hw.power", watts, "W", (*attrs, ("hw.type", "gpu")))]

    def _process_memory(self, handle: Any, attrs: Attrs, pids: set[int]) -> list[Point]:
        procs = self._nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        used = sum(p.usedGpuMemory or 0 for p in procs if p.pid in pids)
        return [Point("otel_tracker.process.gpu.memory.usage", float(used), "By", attrs)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
