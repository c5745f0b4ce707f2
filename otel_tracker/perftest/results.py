"""A perf-test invocation's results as plain data (``perf_test_results.json``;
the files are written by :mod:`otel_tracker.perftest.report`).

A scenario fails the invocation (exit status 1) when it did not run to its end,
regressed, was not compared because ``--strict-hardware`` found its baseline made
on other hardware (``hardware-mismatch``), or a threshold or check came out at a
failing level (``critical``, ``below-band``, ``above-band``, ``not-recorded``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..analysis.rules import Recommendation
from .baselines import Expected
from .compare import flat_metrics, judge, scenario_metrics, threshold_level
from .execute import Outcome
from .limits import FAILING_LEVELS, judge_recorded, worst
from .results_format import RESULTS_KIND, RESULTS_VERSION
from .scenario import Scenario

FAILING_VERDICTS = ("regression", "hardware-mismatch")
# gauges perf-test records on each scenario's run, so its metric mirrors (OTLP,
# Prometheus) carry the verdict: collector-config/otel-tracker-alerts.yml alerts on them
REGRESSION_GAUGE = "perf_test.regression"
CHANGE_GAUGE = "perf_test.change"


def _num(value: Any) -> str:
    from ..analysis.findings import format_number

    return format_number(value)


def change_text(change: float) -> str:
    return f"{change * 100:.1f}% worse" if change > 0 else f"{-change * 100:.1f}% better"


def _regression(
    result: dict[str, Any], measure: dict[str, Any] | None, cpu_count: int | None
) -> Recommendation:
    """The finding for a scenario worse than its baseline, with what its CPU did."""
    from ..analysis.figures import step_figures
    from ..analysis.rulebase import Thresholds, cpu_diagnosis

    state, action = "", "compare the code and machine with the baseline's runs"
    if measure is not None:
        state, action = cpu_diagnosis(step_figures(measure), cpu_count, Thresholds())
    better = "higher" if result["metric"].startswith("throughput") else "lower"
    return Recommendation(
        id="perf-regression",
        severity="critical" if result["change"] >= 2 * result["tolerance"] else "warning",
        step=None,
        detected=(
            f"{result['name']}: {result['metric']} {_num(result['value'])} vs baseline "
            f"{_num(result['baseline']['value'])} ({result['change'] * 100:.0f}% worse; "
            f"{better} is better){state}"
        ),
        why=f"worse than the baseline by at least the tolerance ({result['tolerance'] * 100:.0f}%)",
        action=action,
        evidence={
            "value": result["value"],
            "baseline": result["baseline"]["value"],
            "change": result["change"],
            "tolerance": result["tolerance"],
        },
    )


def verdict(
    outcome: Outcome, expected: Expected | None, tolerance: float, strict_hardware: bool
) -> tuple[str, float | None]:
    """The scenario's verdict and its change from the baseline (positive: worse)."""
    sc = outcome.scenario
    value = flat_metrics(scenario_metrics(sc, outcome.seconds, outcome.items)).get(sc.judged)
    if outcome.status != "ok" or value is None:
        return (outcome.status if outcome.status != "ok" else "no-data"), None
    base = expected.value(sc.judged) if expected is not None else None
    if expected is None or base is None:
        return "no-baseline", None
    if strict_hardware and expected.hardware != "same":
        return "hardware-mismatch", None
    return judge(value, base, sc.judged, tolerance)


def verdict_gauges(
    outcome: Outcome, expected: Expected | None, tolerance: float, strict_hardware: bool
) -> dict[str, float]:
    """``perf_test.regression`` (1 or 0) and ``perf_test.change`` for a judged scenario."""
    found, change = verdict(outcome, expected, tolerance, strict_hardware)
    if change is None:
        return {}
    return {REGRESSION_GAUGE: float(found == "regression"), CHANGE_GAUGE: round(change, 6)}


def series_last(doc: Mapping[str, Any] | None) -> dict[str, float | None]:
    """Each ``run.log()`` key's last value, over every process of the run."""
    keys = ((doc or {}).get("metrics") or {}).get("keys") or {}
    return {
        str(k): (v.get("last") if isinstance(v.get("last"), (int, float)) else None)
        for k, v in keys.items()
        if isinstance(v, Mapping)
    }


def _thresholds(sc: Scenario, flat: dict[str, float]) -> dict[str, dict[str, Any]]:
    levels = {}
    for metric, threshold in sc.thresholds.items():
        v = flat.get(metric)
        levels[metric] = {
            "value": v,
            "warn": threshold.warn,
            "critical": threshold.critical,
            "min": threshold.min,
            "max": threshold.max,
            "level": "no-data" if v is None else threshold_level(v, metric, threshold),
        }
    return levels


def scenario_result(
    outcome: Outcome,
    suite: str,
    expected: Expected | None,
    tolerance: float,
    analysis: dict[str, Any] | None,
    doc: dict[str, Any] | None,
    *,
    strict_hardware: bool = False,
) -> dict[str, Any]:
    """Everything known about one scenario, as plain data."""
    sc = outcome.scenario
    metrics = scenario_metrics(sc, outcome.seconds, outcome.items)
    flat = flat_metrics(metrics)
    value = flat.get(sc.judged)
    found, change = verdict(outcome, expected, tolerance, strict_hardware)
    levels = _thresholds(sc, flat)
    recorded = (
        None
        if outcome.status != "ok"
        else {"counters": outcome.counters, "gauges": outcome.gauges, "series": series_last(doc)}
    )
    checks = judge_recorded(sc.checks, recorded)
    every = [lv["level"] for lv in levels.values()]
    every += [c["level"] for kind in checks.values() for c in kind.values()]
    notes = []
    if expected is not None and expected.note:
        notes.append(expected.note)
        if found == "hardware-mismatch":
            notes.append("--strict-hardware: not compared with that baseline")
    base = expected.value(sc.judged) if expected is not None else None
    result = {
        "suite": suite,
        "name": sc.name,
        "status": outcome.status,
        "error": outcome.error,
        "metric": sc.judged,
        "value": value,
        "unit": "ms" if sc.metric == "latency" else metrics.get("throughput_unit"),
        "baseline": None
        if expected is None or base is None
        else {
            "value": base,
            "source": expected.source,
            "hardware": expected.hardware,
            "latency_p50_ms": expected.value("latency_p50_ms"),
        },
        "verdict": found,
        "change": None if change is None else round(change, 4),
        "tolerance": tolerance,
        "thresholds": levels,
        "checks": checks,
        "level": worst(every),
        "notes": notes,
        "metrics": metrics,
        "metrics_flat": flat,
        "latency_samples_ms": [round(s * 1000.0, 6) for s in outcome.seconds],
        "run_id": outcome.run_id,
        "run_dir": str(outcome.run_dir) if outcome.run_dir else None,
        "wall_s": round(outcome.wall_s, 3),
        # the scenario's verdict below supersedes the run's own per-step baseline finding
        "recommendations": [
            f
            for f in (analysis or {}).get("recommendations", [])
            if f["id"] != "throughput-below-baseline"
        ],
    }
    if found == "regression":
        measure = next(
            (s for s in (doc or {}).get("steps", []) if s.get("name") == "Measure"), None
        )
        cpus = ((doc or {}).get("environment") or {}).get("cpu_count")
        result["recommendations"].insert(0, _regression(result, measure, cpus).to_dict())
    return result


def failed(result: dict[str, Any]) -> bool:
    """Does this scenario make the invocation fail (exit status 1)?"""
    return (
        result["status"] != "ok"
        or result["verdict"] in FAILING_VERDICTS
        or result["level"] in FAILING_LEVELS
    )


def results_document(
    suite: Any,
    results: list[dict[str, Any]],
    tolerance: float,
    source: str,
    started: str,
    *,
    hardware: dict[str, Any],
    environment: dict[str, Any],
    strict_hardware: bool = False,
) -> dict[str, Any]:
    bad = [r for r in results if failed(r)]
    return {
        "kind": RESULTS_KIND,
        "results_version": RESULTS_VERSION,
        "suite": suite.name,
        "scenario_file": str(suite.path),
        "started_at": started,
        "tolerance": tolerance,
        "baseline_source": source,
        "hardware": hardware,
        "strict_hardware": strict_hardware,
        "passed": len(results) - len(bad),
        "failed": len(bad),
        "exit_code": 1 if bad else 0,
        "scenarios": results,
        "environment": environment,
        "pid": os.getpid(),
    }
