"""What rules work with: thresholds, the context they read, the findings they return,
and the CPU diagnosis several of them share."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..progress.resources import IDLE_GPU
from .figures import Figures

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Thresholds:
    """Where the rules draw their lines (docs/recommendations.md explains each)."""

    tolerance: float = 0.25  # throughput this far below the baseline is a regression
    critical_tolerance: float = 0.50  # ... and this far below, a critical one
    min_lost_s: float = 1.0  # a slow step must have lost at least this much time to matter
    min_step_s: float = 10.0  # resource rules ignore shorter steps (too few samples)
    min_samples: int = 2
    cpu_saturated: float = 0.90  # mean share of all cores used by the run's processes
    cpu_idle: float = 0.50  # at most this share of the cores busy ...
    min_idle_cores: int = 2  # ... and at least this many cores left idle
    gpu_idle: float = IDLE_GPU  # mean GPU utilization below this is idle (the live hint's too)
    cpu_busy_per_process: float = 0.80  # cores busy per process of the run for "CPU busy"
    own_cpu_share: float = 0.60  # the run used at most this share of a saturated machine:
    # the rest is competing load
    worker_target: float = 0.80  # suggested workers aim at this share of the cores
    gpu_memory_near: float = 0.92  # peak GPU memory used / GPU memory
    gpu_memory_critical: float = 0.98
    memory_near: float = 0.90  # peak system memory used / total
    swap_growth_bytes: float = 256 * 2**20  # swap in use grew this much during a step
    iowait_high: float = 0.20  # mean share of CPU time waiting on IO
    history_slower: float = 0.50  # step this much slower than its history's median
    min_history_runs: int = 3

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"threshold {name} must be a number >= 0, got {value!r}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance must be between 0 and 1, got {self.tolerance!r}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Recommendation:
    """One finding: what was detected (with numbers), why it matters, what to do."""

    id: str
    severity: str
    step: str | None
    detected: str
    why: str
    action: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RuleContext:
    """Everything a rule may look at."""

    run: Figures
    steps: list[Figures]
    cpu_count: int | None
    thresholds: Thresholds = field(default_factory=Thresholds)
    baseline: dict[str, Any] | None = None
    history: dict[str, list[float]] = field(default_factory=dict)  # step -> past durations
    history_runs: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)
    gpu_expected: bool = False  # the run had the gpu extra or chose GPUs (CUDA_VISIBLE_DEVICES)
    sampler_fallback: str | None = None
    sample_interval_s: float | None = None

    def long_steps(self) -> list[Figures]:
        """Steps long enough, and sampled often enough, to judge their resources."""
        t = self.thresholds
        return [
            s
            for s in self.steps
            if (s.duration_s or 0) >= t.min_step_s and s.samples >= t.min_samples
        ]


def pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def cores_busy(ctx: RuleContext, step: Figures) -> float | None:
    if step.cpu_utilization is None or not ctx.cpu_count:
        return None
    return step.cpu_utilization.mean * ctx.cpu_count


def cpu_diagnosis(step: Figures, cores: int | None, t: Thresholds) -> tuple[str, str]:
    """What the CPU did during a slow step, and the matching advice."""
    cpu = step.cpu_utilization
    if cpu is None or not cores or cpu.count < t.min_samples:
        return "", "compare this step's code, inputs and machine with the baseline runs"
    processes = round(step.processes.mean) if step.processes else 1
    state = f" while CPU utilization is {pct(cpu.mean)} of {cores} cores"
    machine = step.system_cpu_utilization
    if (
        machine is not None
        and machine.mean >= t.cpu_saturated
        and cpu.mean <= t.own_cpu_share * machine.mean
    ):
        others = machine.mean - cpu.mean
        return f"{state} and the machine's {pct(machine.mean)}", (
            f"other processes took {pct(others)} of the CPUs: run on an idle machine "
            "or lower the competing load (top shows which processes)"
        )
    if cpu.mean <= t.cpu_idle and cores - cpu.mean * cores >= t.min_idle_cores:
        target = min(
            cores, max(processes + 1, math.floor(processes * t.worker_target / max(cpu.mean, 0.01)))
        )
        return state, (
            f"the step leaves cores idle: increase parallel workers (env workers, "
            f"DataLoader num_workers, threads) from {processes} to about {target}"
        )
    if cpu.mean >= t.cpu_saturated:
        return state, (
            "the CPU is saturated: profile the step's hot loop, vectorize it, "
            "or run on a machine with more cores"
        )
    return state, "the CPU is not the limit: look for waits (IO, network, locks) in this step"
