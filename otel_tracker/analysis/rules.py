"""Recommendation rules: each one small function from a run's figures to findings.

A rule reads a :class:`RuleContext` (the run's and each step's figures, the
baseline if there is one, the pipeline's history, the thresholds) and returns
:class:`Recommendation` objects. Adding a rule is one function here, one entry
in :data:`RULES` and its test; every threshold lives in :class:`Thresholds` and
is documented in ``docs/recommendations.md``.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable

from .findings import format_number
from .rulebase import (
    SEVERITIES,
    Recommendation,
    RuleContext,
    Thresholds,
    cores_busy,
    cpu_diagnosis,
    pct,
)

__all__ = ["RULES", "Recommendation", "RuleContext", "Thresholds", "evaluate"]
logger = logging.getLogger(__name__)


def throughput_below_baseline(ctx: RuleContext) -> list[Recommendation]:
    """A step's throughput is below its baseline's median by at least the tolerance."""
    if ctx.baseline is None:
        return []
    out = []
    t = ctx.thresholds
    for step in ctx.steps:
        expected = (ctx.baseline.get("steps") or {}).get(step.step)
        if step.status != "completed" or not expected or step.throughput is None:
            continue
        base = (expected.get("throughput") or {}).get("median") if step.items else None
        if base is None and not step.items:
            median_s = (expected.get("duration_s") or {}).get("median")
            base = 1.0 / median_s if median_s else None
        if not base:
            continue
        drop = 1.0 - step.throughput / base
        lost = (step.duration_s or 0.0) * drop  # time lost against the baseline's rate
        if drop < t.tolerance or lost < t.min_lost_s:
            continue
        state, action = cpu_diagnosis(step, ctx.cpu_count, ctx.thresholds)
        unit = f"{step.unit}/s"
        out.append(
            Recommendation(
                id="throughput-below-baseline",
                severity="critical" if drop >= t.critical_tolerance else "warning",
                step=step.step,
                detected=(
                    f"{unit} {pct(drop)} below baseline ({format_number(step.throughput)} vs "
                    f"{format_number(base)}, baseline revision {ctx.baseline.get('revision')}){state}"
                ),
                why="the run is slower than the runs the baseline was made from; "
                "at this rate the step takes "
                f"{1 / (1 - drop):.2f}x as long",
                action=action,
                evidence={
                    "throughput": step.throughput,
                    "baseline_throughput": base,
                    "unit": unit,
                    "drop": round(drop, 4),
                    "tolerance": t.tolerance,
                    "cpu_utilization": step.cpu_utilization.mean if step.cpu_utilization else None,
                    "cpu_count": ctx.cpu_count,
                },
            )
        )
    return out


def cpu_saturated(ctx: RuleContext) -> list[Recommendation]:
    """The run's processes kept (nearly) every core busy."""
    out = []
    for step in ctx.long_steps():
        cpu = step.cpu_utilization
        if cpu is None or cpu.mean < ctx.thresholds.cpu_saturated:
            continue
        out.append(
            Recommendation(
                id="cpu-saturated",
                severity="warning",
                step=step.step,
                detected=f"the run's processes used {pct(cpu.mean)} of {ctx.cpu_count} cores on average",
                why="the step is CPU-bound: more work per second needs fewer CPU cycles or more cores",
                action="profile the hot loop (py-spy top), vectorize or batch it, "
                "move it to the GPU, or use a machine with more cores",
                evidence={"cpu_utilization_mean": cpu.mean, "cpu_count": ctx.cpu_count},
            )
        )
    return out


def cpu_idle_cores(ctx: RuleContext) -> list[Recommendation]:
    """Many cores stayed idle during a long step."""
    out = []
    t = ctx.thresholds
    for step in ctx.long_steps():
        cpu, cores = step.cpu_utilization, ctx.cpu_count
        if cpu is None or not cores or cpu.mean > t.cpu_idle:
            continue
        idle = cores - cpu.mean * cores
        if idle < t.min_idle_cores:
            continue
        _, action = cpu_diagnosis(step, ctx.cpu_count, ctx.thresholds)
        out.append(
            Recommendation(
                id="cpu-idle-cores",
                severity="info",
                step=step.step,
                detected=f"CPU utilization {pct(cpu.mean)} of {cores} cores "
                f"(about {idle:.0f} cores idle) for {step.duration_s:.0f} s",
                why="if the step's work can be split, the idle cores are free speed",
                action=action,
                evidence={
                    "cpu_utilization_mean": cpu.mean,
                    "cpu_count": cores,
                    "processes": step.processes.mean if step.processes else None,
                },
            )
        )
    return out


def gpu_idle_input_bound(ctx: RuleContext) -> list[Recommendation]:
    """The run's GPU sat mostly idle while its CPU side was busy: input-bound."""
    out = []
    t = ctx.thresholds
    for step in ctx.long_steps():
        busy = cores_busy(ctx, step)
        processes = step.processes.mean if step.processes else 1.0
        system = step.system_cpu_utilization
        cpu_busy = (busy is not None and busy >= t.cpu_busy_per_process * processes) or (
            system is not None and system.mean >= t.cpu_saturated
        )
        for gpu in step.gpus:
            used_by_run = gpu.run_memory_bytes is None or gpu.run_memory_bytes > 0
            if gpu.utilization is None or not used_by_run or not cpu_busy:
                continue
            if gpu.utilization.mean >= t.gpu_idle:
                continue
            out.append(
                Recommendation(
                    id="gpu-idle-input-bound",
                    severity="warning",
                    step=step.step,
                    detected=f"GPU {gpu.index} ({gpu.name or 'unknown'}) {pct(gpu.utilization.mean)} "
                    f"busy on average while the CPU side was busy ({busy or 0:.1f} cores)",
                    why="the GPU waits for its inputs: data loading or preprocessing "
                    "on the CPU is the bottleneck",
                    action="load data in parallel (DataLoader num_workers, pin_memory=True, "
                    "prefetch), move preprocessing to the GPU, or use larger batches",
                    evidence={
                        "gpu": gpu.index,
                        "gpu_utilization_mean": gpu.utilization.mean,
                        "cores_busy": busy,
                        "processes": processes,
                    },
                )
            )
    return out


def gpu_memory_near_limit(ctx: RuleContext) -> list[Recommendation]:
    """A GPU's memory was nearly full."""
    out = []
    for step in ctx.steps:
        for gpu in step.gpus:
            mem = gpu.memory_utilization
            if mem is None or mem.max < ctx.thresholds.gpu_memory_near:
                continue
            limit = gpu.memory_limit_bytes
            detail = (
                f" ({(gpu.memory_used_bytes or 0) / 2**30:.1f} of {limit / 2**30:.1f} GiB)"
                if limit
                else ""
            )
            out.append(
                Recommendation(
                    id="gpu-memory-near-limit",
                    severity="critical"
                    if mem.max >= ctx.thresholds.gpu_memory_critical
                    else "warning",
                    step=step.step,
                    detected=f"GPU {gpu.index} memory peaked at {pct(mem.max)}{detail}",
                    why="one larger batch or sequence will fail with CUDA out of memory",
                    action="reduce the batch size, use mixed precision (bf16/fp16), "
                    "gradient checkpointing or gradient accumulation",
                    evidence={
                        "gpu": gpu.index,
                        "memory_utilization_max": mem.max,
                        "memory_limit_bytes": limit,
                    },
                )
            )
    return out


def memory_pressure(ctx: RuleContext) -> list[Recommendation]:
    """System memory nearly full, or swap growing: the machine is swapping."""
    out = []
    t = ctx.thresholds
    for step in ctx.steps:
        mem, swap = step.memory_utilization, step.swap_used_bytes
        growth = (swap.max - swap.min) if swap else 0.0
        near = mem is not None and mem.max >= t.memory_near
        if not near and growth < t.swap_growth_bytes:
            continue
        parts = []
        if near:
            parts.append(f"system memory peaked at {pct(mem.max)} used")  # type: ignore[union-attr]
        if growth >= t.swap_growth_bytes:
            parts.append(f"swap in use grew by {growth / 2**20:,.0f} MiB")
        held, kind = (step.pss_bytes, "PSS") if step.pss_bytes else (step.rss_bytes, "RSS")
        rss = f"; the run's processes held up to {held.max / 2**30:.1f} GiB {kind}" if held else ""
        out.append(
            Recommendation(
                id="memory-pressure",
                severity="critical" if growth >= t.swap_growth_bytes else "warning",
                step=step.step,
                detected=" and ".join(parts) + rss,
                why="swapping slows everything by orders of magnitude, and the kernel's "
                "OOM killer ends the run without a traceback",
                action="lower memory use (smaller replay buffer or batch, stream data "
                "instead of loading it whole, fewer parallel workers) or add RAM",
                evidence={
                    "memory_utilization_max": mem.max if mem else None,
                    "swap_growth_bytes": growth,
                    "rss_max_bytes": step.rss_bytes.max if step.rss_bytes else None,
                    "pss_max_bytes": step.pss_bytes.max if step.pss_bytes else None,
                },
            )
        )
    return out


def high_io_wait(ctx: RuleContext) -> list[Recommendation]:
    """CPUs spent a large share of time waiting on IO."""
    out = []
    for step in ctx.long_steps():
        wait = step.iowait
        if wait is None or wait.mean < ctx.thresholds.iowait_high:
            continue
        out.append(
            Recommendation(
                id="high-io-wait",
                severity="warning",
                step=step.step,
                detected=f"CPUs waited on IO {pct(wait.mean)} of the time (peak {pct(wait.max)})",
                why="the step is IO-bound: faster compute will not help",
                action="read from local SSD instead of network storage, cache or "
                "pre-shard the dataset, read with more parallel workers, "
                "or write checkpoints less often",
                evidence={"iowait_mean": wait.mean, "iowait_max": wait.max},
            )
        )
    return out


def step_slower_than_history(ctx: RuleContext) -> list[Recommendation]:
    """A step took much longer than the median of this pipeline's past runs
    (for steps that no baseline covers)."""
    out = []
    t = ctx.thresholds
    if ctx.history_runs < t.min_history_runs:
        return []
    for step in ctx.steps:
        if step.step in ((ctx.baseline or {}).get("steps") or {}):
            continue  # the baseline judges this step; history is the fallback
        past = ctx.history.get(step.step or "")
        if step.status != "completed" or step.duration_s is None or not past:
            continue
        if len(past) < t.min_history_runs:
            continue
        median = statistics.median(past)
        slow = step.duration_s >= median * (1 + t.history_slower)
        if median <= 0 or not slow or step.duration_s - median < t.min_lost_s:
            continue
        _, action = cpu_diagnosis(step, ctx.cpu_count, ctx.thresholds)
        out.append(
            Recommendation(
                id="step-slower-than-history",
                severity="warning",
                step=step.step,
                detected=f"took {step.duration_s:,.1f} s, {step.duration_s / median:.1f}x its "
                f"median of {median:,.1f} s over {len(past)} earlier runs",
                why="something changed: inputs, code, the machine or its load",
                action=action,
                evidence={
                    "duration_s": step.duration_s,
                    "history_median_s": median,
                    "history_runs": len(past),
                },
            )
        )
    return out


def telemetry_unavailable(ctx: RuleContext) -> list[Recommendation]:
    """Resource telemetry was missing in whole or part: the other rules could not judge."""
    out = []
    if ctx.sampler_fallback:
        out.append(
            Recommendation(
                id="telemetry-unavailable",
                severity="info",
                step=None,
                detected=f"the sampling helper process failed ({ctx.sampler_fallback}); "
                "samples came from a thread",
                why="thread sampling can slow a CPU-bound pipeline by a few percent",
                action="check that the Python interpreter can start a child process",
                evidence={"fallback_reason": ctx.sampler_fallback},
            )
        )
    for what, reason in sorted(ctx.unavailable.items()):
        if what == "gpu" and not ctx.gpu_expected:
            continue  # a CPU-only run: nothing to act on (show's telemetry line says it)
        out.append(
            Recommendation(
                id="telemetry-unavailable",
                severity="info",
                step=None,
                detected=f"{what} telemetry unavailable: {reason}",
                why=f"rules that need {what} figures could not judge this run",
                action="install what the reason names, or ignore it if the run does not use it",
                evidence={"what": what, "reason": reason},
            )
        )
    long_run = (ctx.run.duration_s or 0) >= 2 * (ctx.sample_interval_s or math.inf)
    # process figures unavailable with a reason (no psutil): said above, not a mystery
    if ctx.run.samples == 0 and long_run and "process" not in ctx.unavailable:
        out.append(
            Recommendation(
                id="telemetry-unavailable",
                severity="warning",
                step=None,
                detected=f"no resource samples in a {ctx.run.duration_s:,.0f} s run",
                why="without samples no resource rule can judge the run",
                action="check resources=True / OTEL_TRACKER_RESOURCES and the run's warnings",
                evidence={"samples": 0},
            )
        )
    return out


Rule = Callable[[RuleContext], list[Recommendation]]

RULES: tuple[Rule, ...] = (
    throughput_below_baseline,
    step_slower_than_history,
    cpu_saturated,
    cpu_idle_cores,
    gpu_idle_input_bound,
    gpu_memory_near_limit,
    memory_pressure,
    high_io_wait,
    telemetry_unavailable,
)


def evaluate(ctx: RuleContext, rules: tuple[Rule, ...] = RULES) -> list[Recommendation]:
    """Every rule's findings, most severe first; a rule that raises is skipped, not fatal."""
    found: list[Recommendation] = []
    for rule in rules:
        try:
            found += rule(ctx)
        except Exception:
            logger.warning("otel-tracker rule %s failed; skipped", rule.__name__, exc_info=True)
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(found, key=lambda r: order[r.severity])
