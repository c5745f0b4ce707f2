"""perf-test's statistics, verdicts and threshold levels; YAML scenario files."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_tracker.perftest.compare import describe, judge, percentile, threshold_level
from otel_tracker.perftest.scenario import Threshold, load_suite


def test_percentiles_interpolate_like_numpy() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([7.0], 99) == 7.0
    assert describe(values) == {
        "mean": 3.0,
        "p50": 3.0,
        "p95": 4.8,
        "p99": 4.96,
        "min": 1.0,
        "max": 5.0,
        "samples": 5,
    }


@pytest.mark.parametrize(
    ("value", "base", "metric", "verdict"),
    [
        (75.0, 100.0, "throughput_p50", "regression"),  # exactly 25% below
        (76.0, 100.0, "throughput_p50", "pass"),
        (125.0, 100.0, "throughput_p50", "improvement"),
        (125.0, 100.0, "latency_p95_ms", "regression"),  # latency: higher is worse
        (74.0, 100.0, "latency_p95_ms", "improvement"),
        (110.0, 100.0, "latency_p95_ms", "pass"),
    ],
)
def test_verdicts_respect_the_metric_direction(
    value: float, base: float, metric: str, verdict: str
) -> None:
    assert judge(value, base, metric, 0.25)[0] == verdict


def test_thresholds_are_ceilings_for_latency_and_floors_for_throughput() -> None:
    latency = Threshold(warn=350.0, critical=800.0)
    assert threshold_level(300, "latency_p95_ms", latency) == "ok"
    assert threshold_level(350, "latency_p95_ms", latency) == "warn"
    assert threshold_level(900, "latency_p95_ms", latency) == "critical"
    floor = Threshold(warn=1000.0, critical=500.0)
    assert threshold_level(1200, "throughput_p50", floor) == "ok"
    assert threshold_level(800, "throughput_p50", floor) == "warn"
    assert threshold_level(400, "throughput_p50", floor) == "critical"
    assert threshold_level(1.0, "throughput_p50", None) == "ok"


def test_a_yaml_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: smoke\ntolerance: 0.1\nscenarios:\n"
        "  - name: fast\n    entry: mod:fn\n    metric: latency\n    percentile: 99\n"
        "    thresholds: {latency_p99_ms: {critical: 5}}\n"
    )
    suite = load_suite(path)
    (sc,) = suite.scenarios
    assert suite.tolerance == 0.1 and sc.judged == "latency_p99_ms"
    assert sc.thresholds["latency_p99_ms"] == Threshold(None, 5.0)
    assert (sc.repetitions, sc.warmup, sc.cwd) == (5, 1, tmp_path.resolve())
