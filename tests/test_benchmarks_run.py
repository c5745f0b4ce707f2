"""The benchmarks must keep working; their figures are not asserted here (see benchmarks/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def run_benchmark(module: str, output: Path, *args: str) -> object:
    """Run ``python -m benchmarks.MODULE ARGS --output OUTPUT``; return the JSON it wrote."""
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args, "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(output.read_text())


def test_store_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark("bench_store", tmp_path / "store.json", "--runs", "60", "--repeat", "1")
    assert results["runs"] == 60
    assert results["aborted_inferred"] == 1  # the one dead "running" run, found by a full scan
    assert "otel-tracker list --limit 20" in results["median_s"]


def test_eta_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark("bench_eta", tmp_path / "eta.json", "--runs", "3")
    assert [r["scenario"] for r in results][:3] == [
        "same machine",
        "1.5x slower machine",
        "one step skipped",
    ]
    assert all(r["with_eta"] == 3 for r in results)  # every run had an ETA after step 2


def test_overhead_benchmark_parts_run(tmp_path: Path, monkeypatch: object) -> None:
    import os

    from benchmarks import bench_overhead

    os.environ["BENCH_ROOT"] = str(tmp_path)
    try:
        costs = bench_overhead.bench_advance(repeat=1, number=10_000)
        sampler = bench_overhead.bench_sampler(children=2, samples=3)
    finally:
        del os.environ["BENCH_ROOT"]
    assert set(costs) == {"obj.n += 1", "minimal method", "step.advance()"}
    assert sampler["processes_seen"] >= 3 and sampler["cpu_ms_per_sample"] > 0


def test_mirrors_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark("bench_mirrors", tmp_path / "mirrors.json", "--repeat", "1")
    assert set(results["configs"]) == {
        "no mirror",
        "OTLP, live receiver",
        "OTLP, black-holed endpoint",
        "OTLP + Prometheus + TensorBoard",
    }
