"""Each recommendation rule fires on crafted telemetry and stays silent on healthy telemetry."""

from __future__ import annotations

from typing import Any

import pytest

from otel_tracker.analysis import rules
from otel_tracker.analysis.figures import all_step_figures, run_figures
from otel_tracker.analysis.rules import RuleContext, Thresholds, evaluate

GIB = 2**30


def agg(mean: float, *, lo: float | None = None, hi: float | None = None, n: int = 12) -> dict:
    lo = mean if lo is None else lo
    hi = mean if hi is None else hi
    return {"count": n, "min": lo, "mean": mean, "max": hi, "p95": hi}


def healthy_resources(**over: Any) -> dict[str, Any]:
    """A busy, comfortable step on a 16-core box: 10 cores busy, memory at 40%."""
    res = {
        "otel_tracker.process.count": agg(10),
        "process.cpu.utilization": agg(0.62, hi=0.7),
        "system.cpu.utilization": agg(0.66),
        "otel_tracker.system.cpu.iowait": agg(0.01),
        "system.memory.utilization": agg(0.4, hi=0.45),
        "system.paging.usage{system.paging.state=used}": agg(0, lo=0, hi=0),
        "process.memory.usage": agg(8 * GIB, hi=9 * GIB),
    }
    res.update(over)
    return {k: v for k, v in res.items() if v is not None}


def gpu(index: int, util: float, mem_util: float, own: float = 4 * GIB) -> dict[str, Any]:
    attrs = f"hw.id=GPU-{index},hw.name=NVIDIA A100,otel_tracker.gpu.index={index}"
    return {
        f"hw.gpu.utilization{{{attrs}}}": agg(util),
        f"hw.gpu.memory.utilization{{{attrs}}}": agg(mem_util, hi=mem_util),
        f"hw.gpu.memory.usage{{{attrs}}}": agg(mem_util * 80 * GIB, hi=mem_util * 80 * GIB),
        f"hw.gpu.memory.limit{{{attrs}}}": agg(80 * GIB),
        f"otel_tracker.process.gpu.memory.usage{{{attrs}}}": agg(own),
    }


def step(
    name: str, duration: float = 120.0, items: int = 0, resources: dict | None = None, **over: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "status": "completed",
        "duration_s": duration,
        "progress": {"completed": items, "total": items or None, "unit": "env steps"},
        "resources": healthy_resources() if resources is None else resources,
        **over,
    }


def context(*steps: dict, cpu_count: int = 16, **kw: Any) -> RuleContext:
    doc = {
        "status": "completed",
        "duration_s": sum(s["duration_s"] for s in steps),
        "steps": list(steps),
        "telemetry": {"run": healthy_resources(), "interval_s": 5.0},
    }
    return RuleContext(run=run_figures(doc), steps=all_step_figures(doc), cpu_count=cpu_count, **kw)


def ids(found: list) -> list[str]:
    return [r.id for r in found]


BASELINE = {
    "revision": 3,
    "steps": {
        "Collect": {
            "duration_s": {"median": 100.0},
            "throughput": {"median": 1000.0, "unit": "env steps/s"},
        },
        "Train": {"duration_s": {"median": 60.0}},
    },
}


def test_healthy_telemetry_with_baseline_and_history_raises_nothing() -> None:
    ctx = context(
        step("Collect", 100.0, 100_000),
        step("Train", 61.0),
        baseline=BASELINE,
        history={"Collect": [99.0, 101.0, 100.0], "Train": [60.0, 59.0, 62.0]},
        history_runs=3,
    )
    assert evaluate(ctx) == []


def test_throughput_below_baseline_names_the_cpu_state_and_a_worker_count() -> None:
    slow = healthy_resources(
        **{"process.cpu.utilization": agg(0.22), "otel_tracker.process.count": agg(2)}
    )
    ctx = context(step("Collect", 145.0, 100_000, slow), baseline=BASELINE)
    (found,) = rules.throughput_below_baseline(ctx)
    assert found.severity == "warning" and found.step == "Collect"
    assert found.evidence["drop"] == pytest.approx(1 - 100_000 / 145 / 1000, abs=1e-4)
    assert "31% below baseline" in found.detected
    assert "22% of 16 cores" in found.detected
    assert "from 2 to about 7" in found.action
    # a step without items is judged by its duration; 50% slower or more is critical
    ctx = context(step("Train", 125.0), baseline=BASELINE)
    (found,) = rules.throughput_below_baseline(ctx)
    assert found.severity == "critical" and "steps/s" in found.detected


def test_a_slow_step_on_a_busy_machine_blames_the_competing_load() -> None:
    crowded = healthy_resources(
        **{"process.cpu.utilization": agg(0.25), "system.cpu.utilization": agg(0.99)}
    )
    (found,) = rules.throughput_below_baseline(
        context(step("Collect", 200.0, 100_000, crowded), cpu_count=2, baseline=BASELINE)
    )
    assert "25% of 2 cores and the machine's 99%" in found.detected
    assert "other processes took 74% of the CPUs" in found.action


def test_throughput_within_tolerance_or_without_baseline_is_silent() -> None:
    assert (
        rules.throughput_below_baseline(context(step("Collect", 120.0, 100_000), baseline=BASELINE))
        == []
    )
    assert rules.throughput_below_baseline(context(step("Collect", 500.0, 100_000))) == []
    # 50% slower but only 0.5 s lost: not worth a finding
    short = {"steps": {"Collect": {"throughput": {"median": 1000.0}}}}
    assert rules.throughput_below_baseline(context(step("Collect", 1.0, 500), baseline=short)) == []
    tight = context(
        step("Collect", 120.0, 100_000), baseline=BASELINE, thresholds=Thresholds(tolerance=0.1)
    )
    assert ids(rules.throughput_below_baseline(tight)) == ["throughput-below-baseline"]


def test_cpu_saturated() -> None:
    hot = healthy_resources(**{"process.cpu.utilization": agg(0.97)})
    (found,) = rules.cpu_saturated(context(step("Train", resources=hot)))
    assert "97% of 16 cores" in found.detected
    assert rules.cpu_saturated(context(step("Train"))) == []
    # a short step has too few samples to judge
    assert rules.cpu_saturated(context(step("Train", 3.0, resources=hot))) == []


def test_cpu_idle_cores() -> None:
    idle = healthy_resources(
        **{"process.cpu.utilization": agg(0.06), "otel_tracker.process.count": agg(1)}
    )
    (found,) = rules.cpu_idle_cores(context(step("Train", resources=idle)))
    assert "about 15 cores idle" in found.detected and found.severity == "info"
    assert "from 1 to about" in found.action
    assert rules.cpu_idle_cores(context(step("Train"))) == []
    # one busy core of two leaves one idle: not worth a finding
    assert rules.cpu_idle_cores(context(step("Train", resources=idle), cpu_count=2)) == []


def test_gpu_idle_while_cpu_busy_is_input_bound() -> None:
    starved = healthy_resources(
        **{"process.cpu.utilization": agg(0.125), "otel_tracker.process.count": agg(2)},
        **gpu(0, util=0.12, mem_util=0.5),
    )
    (found,) = rules.gpu_idle_input_bound(context(step("Train", resources=starved)))
    assert found.evidence["gpu"] == "0" and "num_workers" in found.action
    busy_gpu = healthy_resources(**gpu(0, util=0.93, mem_util=0.5))
    assert rules.gpu_idle_input_bound(context(step("Train", resources=busy_gpu))) == []
    # a GPU this run does not use is allowed to idle
    other = healthy_resources(
        **{"process.cpu.utilization": agg(0.125), "otel_tracker.process.count": agg(2)},
        **gpu(0, util=0.0, mem_util=0.1, own=0),
    )
    assert rules.gpu_idle_input_bound(context(step("Train", resources=other))) == []


def test_gpu_memory_near_limit() -> None:
    full = healthy_resources(**gpu(0, 0.9, 0.5), **gpu(1, util=0.9, mem_util=0.96))
    (found,) = rules.gpu_memory_near_limit(context(step("Train", resources=full)))
    assert (
        found.evidence["gpu"] == "1"
        and "96%" in found.detected
        and "76.8 of 80.0 GiB" in found.detected
    )
    assert (
        rules.gpu_memory_near_limit(
            context(step("Train", resources=healthy_resources(**gpu(0, 0.9, 0.7))))
        )
        == []
    )


def test_memory_near_limit_and_swapping() -> None:
    near = healthy_resources(**{"system.memory.utilization": agg(0.85, hi=0.95)})
    (found,) = rules.memory_pressure(context(step("Load", resources=near)))
    assert found.severity == "warning" and "95% used" in found.detected
    swapping = healthy_resources(
        **{"system.paging.usage{system.paging.state=used}": agg(2 * GIB, lo=GIB, hi=3 * GIB)}
    )
    (found,) = rules.memory_pressure(context(step("Load", resources=swapping)))
    assert found.severity == "critical" and "2,048 MiB" in found.detected
    # swap in use but not growing is not swapping now
    steady = healthy_resources(
        **{"system.paging.usage{system.paging.state=used}": agg(GIB, lo=GIB, hi=GIB)}
    )
    assert rules.memory_pressure(context(step("Load", resources=steady))) == []


def test_high_io_wait() -> None:
    waiting = healthy_resources(**{"otel_tracker.system.cpu.iowait": agg(0.35, hi=0.6)})
    (found,) = rules.high_io_wait(context(step("Load", resources=waiting)))
    assert "35% of the time" in found.detected
    assert rules.high_io_wait(context(step("Load"))) == []


def test_step_much_slower_than_its_history() -> None:
    history = {"Train": [60.0, 58.0, 65.0]}
    (found,) = rules.step_slower_than_history(
        context(step("Train", 130.0), history=history, history_runs=3)
    )
    assert "2.2x its median of 60.0 s over 3 earlier runs" in found.detected
    assert (
        rules.step_slower_than_history(
            context(step("Train", 80.0), history=history, history_runs=3)
        )
        == []
    )
    # too little history to call anything slow
    assert (
        rules.step_slower_than_history(
            context(step("Train", 130.0), history={"Train": [60.0]}, history_runs=1)
        )
        == []
    )


def test_telemetry_unavailable() -> None:
    ctx = context(
        step("Train"),
        unavailable={"gpu": "nvidia-ml-py is not installed"},
        sampler_fallback="helper exited",
        gpu_expected=True,
    )
    found = rules.telemetry_unavailable(ctx)
    assert ids(found) == ["telemetry-unavailable"] * 2
    assert any("nvidia-ml-py" in r.detected for r in found)
    # a run that never meant to use a GPU: a fact (show's telemetry line), not advice
    ctx.gpu_expected = False
    assert [r.detected for r in rules.telemetry_unavailable(ctx)] == [found[0].detected]
    bare = step("Train", resources={})
    doc = {"status": "completed", "duration_s": 120.0, "steps": [bare], "telemetry": {}}
    ctx = RuleContext(
        run=run_figures(doc), steps=all_step_figures(doc), cpu_count=4, sample_interval_s=5.0
    )
    (found,) = rules.telemetry_unavailable(ctx)
    assert found.severity == "warning" and "no resource samples" in found.detected
    assert rules.telemetry_unavailable(context(step("Train"))) == []


def test_a_broken_rule_is_skipped_and_findings_come_most_severe_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(ctx: RuleContext) -> list:
        raise KeyError("oops")

    hot = healthy_resources(
        **{"process.cpu.utilization": agg(0.97), "otel_tracker.system.cpu.iowait": agg(0.3)}
    )
    ctx = context(step("Train", resources=hot), unavailable={"gpu": "none"}, gpu_expected=True)
    found = evaluate(ctx, (rules.telemetry_unavailable, broken, rules.cpu_saturated))
    assert [r.severity for r in found] == ["warning", "info"]
    assert "rule broken failed" in caplog.text


def test_bad_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        Thresholds(tolerance=1.5)
    with pytest.raises(ValueError, match="memory_near"):
        Thresholds(memory_near=-1)
