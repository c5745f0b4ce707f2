"""Key figures of a run and of each step, read from the manifest's aggregates.

The manifest keeps min/mean/max/p95 per series (``name{attr=value,...}``) for the
run (``telemetry.run``) and for every step (``steps[].resources``). This module turns
them into the handful of figures that reports and rules reason about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

_ATTR = re.compile(r"([\w.]+)=([^,}]*)")


@dataclass(frozen=True)
class Stats:
    """One series' aggregate over a step or the run."""

    count: int
    min: float
    mean: float
    max: float
    p95: float

    @classmethod
    def from_dict(cls, raw: Any) -> Stats | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                int(raw["count"]),
                float(raw["min"]),
                float(raw["mean"]),
                float(raw["max"]),
                float(raw["p95"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def _asdict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min": self.min,
            "mean": self.mean,
            "max": self.max,
            "p95": self.p95,
        }


def series(resources: dict[str, Any], key: str) -> Stats | None:
    """The aggregate of one exact series key, e.g. ``system.memory.utilization``."""
    return Stats.from_dict(resources.get(key))


def series_by_attrs(
    resources: dict[str, Any], name: str
) -> dict[tuple[tuple[str, str], ...], Stats]:
    """Every attribute set of metric ``name`` (one per GPU, say), keyed by its attributes."""
    found = {}
    prefix = name + "{"
    for key, raw in resources.items():
        if key.startswith(prefix):
            stats = Stats.from_dict(raw)
            if stats is not None:
                found[tuple(_ATTR.findall(key[len(prefix) :]))] = stats
    return found


@dataclass(frozen=True)
class GpuFigures:
    """One GPU during a step or the run."""

    index: str
    name: str | None
    utilization: Stats | None
    memory_utilization: Stats | None
    memory_used_bytes: float | None
    memory_limit_bytes: float | None
    run_memory_bytes: float | None  # held by the run's own processes (max)


@dataclass(frozen=True)
class Figures:
    """What one step (or the whole run, ``step`` None) did and used."""

    step: str | None
    status: str | None
    duration_s: float | None
    items: int | None
    unit: str | None
    throughput: float | None  # items (or, without items, steps) per second
    samples: int
    cpu_utilization: Stats | None  # the process tree's share of all cores
    system_cpu_utilization: Stats | None
    processes: Stats | None
    iowait: Stats | None
    memory_utilization: Stats | None
    swap_used_bytes: Stats | None
    rss_bytes: Stats | None  # summed over the tree: pages shared by forks counted per process
    pss_bytes: Stats | None  # shared pages split among their processes: what the tree costs
    gpus: list[GpuFigures] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies generically, 150 µs a step
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in out.items():
            if isinstance(value, Stats):
                out[key] = value._asdict()
        out["gpus"] = [
            {
                f.name: v._asdict() if isinstance(v := getattr(g, f.name), Stats) else v
                for f in fields(g)
            }
            for g in self.gpus
        ]
        return out


def _gpus(resources: dict[str, Any]) -> list[GpuFigures]:
    def by_index(name: str) -> dict[str, tuple[str | None, Stats]]:
        out = {}
        for attrs, stats in series_by_attrs(resources, name).items():
            a = dict(attrs)
            out[a.get("otel_tracker.gpu.index") or a.get("hw.id") or "?"] = (
                a.get("hw.name"),
                stats,
            )
        return out

    util = by_index("hw.gpu.utilization")
    mem_util = by_index("hw.gpu.memory.utilization")
    used = by_index("hw.gpu.memory.usage")
    limit = by_index("hw.gpu.memory.limit")
    own = by_index("otel_tracker.process.gpu.memory.usage")
    gpus = []
    for index in sorted(set(util) | set(mem_util) | set(used), key=lambda i: (len(i), i)):
        name = next((d[index][0] for d in (util, mem_util, used) if index in d), None)
        gpus.append(
            GpuFigures(
                index=index,
                name=name,
                utilization=util[index][1] if index in util else None,
                memory_utilization=mem_util[index][1] if index in mem_util else None,
                memory_used_bytes=used[index][1].max if index in used else None,
                memory_limit_bytes=limit[index][1].max if index in limit else None,
                run_memory_bytes=own[index][1].max if index in own else None,
            )
        )
    return gpus


def _figures(
    resources: dict[str, Any],
    *,
    step: str | None,
    status: str | None,
    duration: float | None,
    items: int | None,
    unit: str | None,
) -> Figures:
    throughput = None
    if isinstance(duration, (int, float)) and duration > 0:
        throughput = (items / duration) if items else (1.0 / duration if step else None)
    samples = series(resources, "otel_tracker.process.count")
    return Figures(
        step=step,
        status=status,
        duration_s=duration,
        items=items,
        unit=unit if items else ("steps" if step and throughput is not None else None),
        throughput=None if throughput is None else round(throughput, 6),
        samples=samples.count if samples else 0,
        cpu_utilization=series(resources, "process.cpu.utilization"),
        system_cpu_utilization=series(resources, "system.cpu.utilization"),
        processes=samples,
        iowait=series(resources, "otel_tracker.system.cpu.iowait"),
        memory_utilization=series(resources, "system.memory.utilization"),
        swap_used_bytes=series(resources, "system.paging.usage{system.paging.state=used}"),
        rss_bytes=series(resources, "process.memory.usage"),
        pss_bytes=series(resources, "otel_tracker.process.memory.pss"),
        gpus=_gpus(resources),
    )


def _duration(entry: dict[str, Any]) -> float | None:
    value = entry.get("duration_s")
    if value is None:
        value = entry.get("elapsed_s")
    return float(value) if isinstance(value, (int, float)) else None


def step_figures(step: dict[str, Any]) -> Figures:
    progress = step.get("progress") or {}
    completed = progress.get("completed")
    return _figures(
        step.get("resources") or {},
        step=str(step.get("name")),
        status=step.get("status"),
        duration=_duration(step),
        items=completed if isinstance(completed, int) and completed > 0 else None,
        unit=progress.get("unit"),
    )


def run_figures(doc: dict[str, Any]) -> Figures:
    return _figures(
        (doc.get("telemetry") or {}).get("run") or {},
        step=None,
        status=doc.get("status"),
        duration=_duration(doc),
        items=None,
        unit=None,
    )


def all_step_figures(doc: dict[str, Any]) -> list[Figures]:
    """Figures of every step that ran (skipped and pending steps have none)."""
    return [
        step_figures(s)
        for s in doc.get("steps", [])
        if isinstance(s, dict) and s.get("status") not in ("skipped", "pending")
    ]
