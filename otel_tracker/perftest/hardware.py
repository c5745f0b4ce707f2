"""The machine a perf-test's figures belong to.

A **hardware class** is the CPU model, the logical CPU count, the GPU model and the
GPU count (the GPUs NVML reports that ``CUDA_VISIBLE_DEVICES`` leaves visible): two
machines of one class should give comparable figures. Baselines and results files
record it, and a scenario judged against a baseline of another class says so
(see :mod:`otel_tracker.perftest.baselines`). NVML is imported lazily, as the GPU
sampler does; without it (or without a driver) the class has no GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
FIELDS = ("cpu_model", "cpu_count", "gpu_model", "gpu_count")


def cpu_model(cpuinfo: Path = CPUINFO) -> str | None:
    """``model name`` of the first CPU in ``/proc/cpuinfo``, else the platform's word."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def gpu_devices(
    nvml: Any = None, environ: Mapping[str, str] | None = None
) -> list[dict[str, Any]] | str:
    """The visible NVIDIA GPUs (index, name, memory), or why there are none."""
    from ..sampling.gpu import GPU_EXTRA_HINT, visible_indices

    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return f"none detected (nvidia-ml-py not installed: {GPU_EXTRA_HINT})"
    try:
        nvml.nvmlInit()
    except Exception as exc:
        return f"none detected (NVML: {exc})"
    try:
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in handles]
        env = os.environ if environ is None else environ
        gpus = []
        for i in visible_indices(env.get("CUDA_VISIBLE_DEVICES"), uuids):
            gpus.append(
                {
                    "index": i,
                    "name": _text(nvml.nvmlDeviceGetName(handles[i])),
                    "memory_bytes": nvml.nvmlDeviceGetMemoryInfo(handles[i]).total,
                }
            )
        return gpus
    except Exception as exc:
        return f"NVML query failed: {exc}"
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def hardware_class(
    cpu: str | None, cpus: int | None, gpus: list[dict[str, Any]] | str
) -> dict[str, Any]:
    """The record: the four fields, a short ``id`` (their digest) and a ``label``."""
    names = sorted({str(g["name"]) for g in gpus}) if isinstance(gpus, list) else []
    record: dict[str, Any] = {
        "cpu_model": cpu,
        "cpu_count": cpus,
        "gpu_model": " + ".join(names) or None,
        "gpu_count": len(gpus) if isinstance(gpus, list) else 0,
    }
    return {**record, "id": hardware_id(record), "label": hardware_label(record)}


def detect_hardware(
    nvml: Any = None,
    *,
    cpuinfo: Path = CPUINFO,
    cpu_count: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """This machine's hardware class (every source injectable for tests)."""
    return hardware_class(
        cpu_model(cpuinfo),
        cpu_count if cpu_count is not None else os.cpu_count(),
        gpu_devices(nvml, environ),
    )


def hardware_id(record: Mapping[str, Any]) -> str:
    """12 hex digits naming the class: the same four fields, the same id."""
    text = json.dumps([record.get(k) for k in FIELDS], ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def hardware_label(record: Mapping[str, Any]) -> str:
    """``AMD EPYC 7B13, 2 CPUs, no GPU`` or ``..., 8x NVIDIA H100 80GB HBM3``."""
    cpus = record.get("cpu_count")
    gpu = (
        f"{record.get('gpu_count')}x {record.get('gpu_model')}"
        if record.get("gpu_count")
        else "no GPU"
    )
    return f"{record.get('cpu_model') or 'unknown CPU'}, {cpus or '?'} CPUs, {gpu}"


def hardware_of(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The hardware record of a baseline or results file, if it has a usable one."""
    hw = (doc or {}).get("hardware")
    if not isinstance(hw, Mapping) or not all(k in hw for k in FIELDS):
        return None
    return {k: hw[k] for k in FIELDS} | {"id": hardware_id(hw), "label": hardware_label(hw)}


def differences(baseline: Mapping[str, Any], here: Mapping[str, Any]) -> list[str]:
    """``["CPU count", "GPU model"]``: the fields that differ."""
    words = {
        "cpu_model": "CPU model",
        "cpu_count": "CPU count",
        "gpu_model": "GPU model",
        "gpu_count": "GPU count",
    }
    return [words[k] for k in FIELDS if baseline.get(k) != here.get(k)]


def environment(hardware: Mapping[str, Any], gpus: list[dict[str, Any]] | str) -> dict[str, Any]:
    """What the numbers depend on: Python, OS, CPU, GPUs, package versions."""
    from ..environment import collect_environment

    env = collect_environment(Path.cwd(), environ={})
    env.pop("env", None)
    env["cpu_model"] = hardware.get("cpu_model")
    env["gpus"] = gpus
    return env
