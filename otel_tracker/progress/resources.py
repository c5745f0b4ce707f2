"""The machine beside the progress: ``CPU 187% of 2 · PSS 3.1 GB · GPU0 92% 14/80 GB``.

One compact line from the latest resource sample (its points by key, as in
``telemetry.jsonl``), shared by the live display, the periodic lines, ``status`` and
``watch``, so all of them say the same. With the recent GPU utilization it adds the
starvation hint the recommendation rules would give now: GPUs mostly idle while the
run's processes keep a core busy reads ``GPU idle 70%: input-bound?``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_GPU = re.compile(r"^hw\.gpu\.(utilization|memory\.usage|memory\.limit)\{(.*)\}$")
_INDEX = re.compile(r"otel_tracker\.gpu\.index=([^,}]*)")
IDLE_GPU = 0.3  # mean utilization below this is idle (the default of the rules' gpu_idle)
BUSY_CPU_CORES = 0.8  # ...while the run's processes keep at least this much of a core busy


def _gb(value: float) -> str:
    return f"{value / 1e9:.1f}" if value < 10e9 else f"{value / 1e9:.0f}"


def _memory(value: float) -> str:
    return f"{value / 1e6:.0f} MB" if value < 1e9 else f"{_gb(value)} GB"


def resource_text(
    points: Mapping[str, float] | None,
    cpu_count: int | None,
    recent_gpu: Sequence[float] = (),
) -> str:
    """The line for one sample's ``points`` (``""`` when nothing was sampled);
    ``recent_gpu``: the mean GPU utilization of the last samples, for the hint."""
    if not points:
        return ""
    parts = []
    cpu = points.get("process.cpu.utilization")
    if cpu is not None and cpu_count:
        parts.append(f"CPU {cpu * cpu_count * 100:.0f}% of {cpu_count}")
    pss = points.get("otel_tracker.process.memory.pss")
    rss = points.get("process.memory.usage")
    if pss is not None:
        parts.append(f"PSS {_memory(pss)}")
    elif rss is not None:
        parts.append(f"RSS {_memory(rss)}")
    gpus: dict[str, dict[str, float]] = {}
    for key, value in points.items():
        match = _GPU.match(key)
        if match:
            index = _INDEX.search(match.group(2))
            gpus.setdefault(index.group(1) if index else "?", {})[match.group(1)] = value
    for index in sorted(gpus, key=lambda i: (len(i), i)):
        gpu = gpus[index]
        text = f"GPU{index}"
        if "utilization" in gpu:
            text += f" {gpu['utilization'] * 100:.0f}%"
        if "memory.usage" in gpu and "memory.limit" in gpu:
            text += f" {_gb(gpu['memory.usage'])}/{_gb(gpu['memory.limit'])} GB"
        parts.append(text)
    hint = _starved(recent_gpu, cpu, cpu_count)
    if hint:
        parts.append(hint)
    return " · ".join(parts)


def _starved(recent_gpu: Sequence[float], cpu: float | None, cpu_count: int | None) -> str:
    if len(recent_gpu) < 3 or cpu is None or not cpu_count:
        return ""
    mean = sum(recent_gpu) / len(recent_gpu)
    if mean < IDLE_GPU and cpu * cpu_count >= BUSY_CPU_CORES:
        return f"GPU idle {(1 - mean) * 100:.0f}%: input-bound?"
    return ""


def gpu_mean(points: Mapping[str, float]) -> float | None:
    """The mean utilization over a sample's GPUs, or None without any."""
    values = [v for k, v in points.items() if k.startswith("hw.gpu.utilization{")]
    return sum(values) / len(values) if values else None


def samples_text(samples: Sequence[Mapping[str, float]], cpu_count: int | None) -> str:
    """:func:`resource_text` of the recent samples (oldest first): the latest value of
    each key, and the GPUs' recent utilization for the starvation hint."""
    if not samples:
        return ""
    gpu = [m for m in (gpu_mean(points) for points in samples) if m is not None]
    return resource_text(latest_points(samples), cpu_count, gpu)


def latest_points(samples: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The latest value of each key over recent samples, oldest first: PSS is read
    less often than every sample (see the sampler), and must not flicker to RSS."""
    merged: dict[str, float] = {}
    for points in samples:
        merged.update(points)
    return merged
