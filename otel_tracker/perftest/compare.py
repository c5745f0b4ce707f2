"""Statistics of a scenario's calls, its baseline, and the verdict.

Verdicts: ``pass`` (within the tolerance), ``regression`` (worse by at least the
tolerance), ``improvement`` (better by at least the tolerance), ``no-baseline``.
Threshold levels: ``ok``, ``warn``, ``critical``; for a throughput metric the
thresholds are floors, for a latency metric ceilings. A band threshold
(``{ min, max }``) is ``ok``, ``below-band`` or ``above-band`` whatever the metric.
"""

from __future__ import annotations

import math
from typing import Any

from .limits import Threshold, band_level
from .scenario import Scenario, higher_is_better

STATS = ("mean", "p50", "p95", "p99", "min", "max")


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def describe(values: list[float]) -> dict[str, Any]:
    """mean, p50, p95, p99, min, max and the sample count."""
    return {
        "mean": round(sum(values) / len(values), 6),
        "p50": round(percentile(values, 50), 6),
        "p95": round(percentile(values, 95), 6),
        "p99": round(percentile(values, 99), 6),
        "min": round(min(values), 6),
        "max": round(max(values), 6),
        "samples": len(values),
    }


def scenario_metrics(
    sc: Scenario, seconds: list[float], items: list[float | None]
) -> dict[str, Any]:
    """Latency (ms per call) and throughput (items, or calls, per second) statistics."""
    if not seconds:
        return {}
    rates = [(n or 1.0) / s for s, n in zip(seconds, items, strict=True) if s > 0]
    counted = all(n for n in items)
    return {
        "latency_ms": describe([s * 1000.0 for s in seconds]),
        "throughput": describe(rates) if rates else None,
        "throughput_unit": f"{sc.unit if counted else 'calls'}/s",
    }


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``{"latency_p95_ms": ..., "throughput_p50": ...}``: the names thresholds use."""
    flat = {}
    for stat in STATS:
        if metrics.get("latency_ms"):
            flat[f"latency_{stat}_ms"] = metrics["latency_ms"][stat]
        if metrics.get("throughput"):
            flat[f"throughput_{stat}"] = metrics["throughput"][stat]
    return flat


def scenario_scores(
    sc: Scenario, seconds: list[float], items: list[float | None]
) -> tuple[dict[str, float], dict[str, str]]:
    """The run's scores: every flat metric, with which direction is better."""
    flat = flat_metrics(scenario_metrics(sc, seconds, items))
    return flat, {k: ("max" if higher_is_better(k) else "min") for k in flat}


def judge(value: float, base: float, metric: str, tolerance: float) -> tuple[str, float]:
    """The verdict and how much worse (positive) or better (negative) than the baseline."""
    if base <= 0:
        return "no-baseline", 0.0
    change = value / base - 1.0
    worse = -change if higher_is_better(metric) else change
    if worse >= tolerance - 1e-12:
        return "regression", worse
    if worse <= -tolerance + 1e-12:
        return "improvement", worse
    return "pass", worse


def threshold_level(value: float, metric: str, threshold: Threshold | None) -> str:
    if threshold is None:
        return "ok"
    if threshold.is_band:
        return band_level(value, threshold)
    floor = higher_is_better(metric)

    def hit(limit: float | None) -> bool:
        return limit is not None and (value <= limit if floor else value >= limit)

    if hit(threshold.critical):
        return "critical"
    return "warn" if hit(threshold.warn) else "ok"
