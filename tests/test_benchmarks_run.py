"""The benchmarks must keep working; their figures are not asserted here (see benchmarks/)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

# every benchmark runs small here, each a few seconds: `pytest -m "not slow"` skips them
pytestmark = pytest.mark.slow


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
    results = run_benchmark(
        "bench_store", tmp_path / "store.json", "--runs", "10,60", "--repeat", "1"
    )
    small, large = results["sizes"]
    assert (small["runs"], large["runs"]) == (10, 60)
    assert large["aborted_inferred"] == 1  # the one dead "running" run, found by a full scan
    assert {"otel-tracker list --limit 20", "otel-tracker status latest"} <= set(large["median_s"])


def test_hostile_files_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_hostile", tmp_path / "hostile.json", "--scale", "0.001", "--repeat", "1"
    )
    assert set(results["median_s"]) >= {"normal run (comparison)", "10,000 steps"}
    assert all(v is not None for row in results["median_s"].values() for v in row.values())


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
    assert set(costs) == {
        "obj.n += 1",
        "minimal method",
        "step.advance()",
        "tqdm.update(1)",
        "rich Progress.advance()",
        "OTel SDK Counter.add(1)",
    }
    assert sampler["processes_seen"] >= 3 and sampler["cpu_ms_per_sample"] > 0
    other = bench_overhead.bench_system_metrics_instrumentation(samples=3)
    assert other is not None and other["points"] > 10
    loop = bench_overhead.bench_tight_loop(tmp_path, repeat=1, iterations=10_000)
    assert loop["tracked_median_s"] > 0 and loop["untracked_median_s"] > 0


def test_manifest_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark("bench_manifest", tmp_path / "manifest.json", "--steps", "60")
    assert results["transitions"]["steps"] == 60
    assert results["transitions"]["manifest_bytes"] > 60 * 100
    assert "run's writer (fragments reused), fsync" in results["write_ms_median"]


def test_memory_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark("bench_memory", tmp_path / "memory.json", "--hours", "0.2")
    assert results["samples"] == 144
    assert [r["samples"] for r in results["tracked"]] == [120, 144]
    assert results["telemetry_jsonl_bytes"] > 0


def test_mirrors_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark("bench_mirrors", tmp_path / "mirrors.json", "--repeat", "1")
    configs = results["configs"]
    assert set(configs) == {
        "untracked",
        "tracked (no mirror)",
        "OTLP to a live receiver",
        "OTLP to a black hole",
        "OTLP + Prometheus + TensorBoard",
        "all three dead",
    }
    assert configs["untracked"]["ratio_to_untracked"] == 1.0
    assert configs["untracked"]["warning_lines_max"] == 0
    assert configs["all three dead"]["warning_lines_max"] >= 3  # one per dead mirror at least


def test_interference_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_interference", tmp_path / "interference.json", "--repeat", "1", "--rollouts", "1000"
    )
    configs = results["configs"]
    assert set(configs) == {
        "untracked",
        "heartbeat",
        "resource sample",
        "sample + heartbeat (the defaults)",
        "sample + TensorBoard",
        "sample + OTLP (live receiver)",
    }
    # the counted events are real: about 1 s of work at a 0.2 s cadence sees some
    assert configs["resource sample"]["events_median"] >= 1
    assert configs["heartbeat"]["events_median"] >= 1
    assert configs["sample + heartbeat (the defaults)"]["events_median"] >= 1


def test_launch_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_launch", tmp_path / "launch.json", "--stages", "1", "--lines", "100", "--repeat", "1"
    )
    assert set(results["dead_collector"]["run -- sleep 0.1"]) == {
        "OTLP off",
        "OTLP live",
        "OTLP black hole",
    }
    assert set(results["terminal_output"]) == {
        "direct",
        "wrapped, live display",
        "wrapped, plain lines",
    }


def test_current_step_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_current",
        tmp_path / "current.json",
        *("--repeat", "1", "--number", "1000", "--rollouts", "2"),
    )
    assert set(results["calls"]) == {"thread step", "task step", "generator step"}
    assert set(results["numpy_loop"]["cpu_s_fastest"]) == {
        "untracked",
        "tracked step",
        "untracked, in an asyncio task",
        "tracked step, in an asyncio task",
    }


def test_redact_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_redact",
        tmp_path / "redact.json",
        "--sizes",
        "0.001,0.002",
        "--repeat",
        "1",
        "--run-size",
        "4000",
    )
    rows = results["functions"]
    assert len(rows) == 2 * 8 and all(r["redact_s"] >= 0 for r in rows)
    assert rows[0]["old_redact_s"] is not None  # the comparison ran
    assert set(results["run"]) == {"20 MB values", "small values"}


def test_scrape_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_scrape",
        tmp_path / "scrape.json",
        *("--work", "200", "--repeat", "1", "--scrapers", "4", "--slow", "2"),
    )
    assert set(results["modes"]) == {
        "untracked, not scraped",
        "tracked, not scraped",
        "tracked, storm, the tracker's server",
        "tracked, storm, a thread per connection",
    }


def test_log_benchmark_runs_small(tmp_path: Path) -> None:
    # MLflow and Aim are the `compare` extra, not the test one: ours alone, said so
    results = run_benchmark(
        "bench_log",
        tmp_path / "log.json",
        *("--without-others", "--calls", "2000", "--rounds", "1", "--writer-points", "5000"),
    )
    assert set(results) == {"otel-tracker", "writer"}
    assert results["otel-tracker"]["run.log (3 values)"]["ns_median"] > 0
    writer = results["writer"]
    assert writer["points_recorded_per_key"] == {"acc": 5000, "loss": 5000, "lr": 5000}
    assert writer["dropped"] == 0 and writer["jsonl_lines"] >= 3


def test_ui_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_ui",
        tmp_path / "ui.json",
        *("--runs", "200", "--repeat", "1", "--transitions", "2", "--clients", "3"),
        *("--seconds", "1", "--samples", "2000"),
    )
    assert results["runs_page"]["runs"] == 200
    assert results["runs_page"]["median_s"]["page first render (Chromium)"] > 0
    assert results["latency"]["transitions"] == 2 and results["latency"]["median_s"] > 0
    assert results["clients"]["clients"] == 3 and results["clients"]["messages_received"] > 0
    assert results["day"]["points_per_series_sent"] <= 1200


def test_real_eta_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_eta_real", tmp_path / "eta_real.json", "--histories", "0,1", "--scale", "0.2"
    )
    for condition in ("quiet", "loaded"):
        runs = results[condition]["runs"]
        assert [r["history_runs"] for r in runs] == [0, 1]
        assert runs[1]["run_eta_after_step_2"]["shown_s"] is not None  # history: a number


def test_tqdm_capture_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_tqdm_capture",
        tmp_path / "tqdm.json",
        "--updates",
        "2000",
        "--rounds",
        "3",
        "--bars",
        "5",
    )
    assert set(results["captured_vs_plain_median_ratio"]) == {
        "bar.update()",
        "for _ in tqdm(range(n))",
    }
    assert all(r > 0 for r in results["captured_vs_plain_median_ratio"].values())
    # the captured bars were steps: each made and closed costs a manifest write or two
    assert results["us_per_bar"]["captured (a step each)"] > results["us_per_bar"]["plain"]


def test_prune_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_prune", tmp_path / "prune.json", "--runs", "40", "--remove", "10", "--repeat", "1"
    )
    assert set(results["dry_run_median_s"]) == {"python -c pass", "list --limit 20", "prune"}
    assert set(results["removal_median_s"]) == {"prune --keep-last 0 --yes", "rm -rf"}


def test_telemetry_compaction_benchmark_runs_small(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench_telemetry_compaction",
        tmp_path / "compaction.json",
        "--hours",
        "1.5",
        "--repeat",
        "1",
        "--settings",
        "600:60",
    )
    sizes = results["bytes"]
    assert (
        sizes["compacted and packed (telemetry.jsonl.gz)"]
        < sizes["raw (every sample, no compaction)"]
    )
    for scope in ("errors_compacted_live", "errors_packed"):
        errors = results[scope]
        assert errors["min_abs"] == errors["max_abs"] == errors["count_abs"] == 0
        assert errors["mean_rel"] < 0.01
    rebuilt = results["killed_run_train_samples_rebuilt"]
    assert rebuilt["compacted"] == rebuilt["exact"]


def test_distributed_benchmark_runs_small(tmp_path: Path) -> None:
    # 2 simulated hosts of 2 ranks (unshare --uts: root, as the distributed tests)
    results = run_benchmark(
        "bench_distributed",
        tmp_path / "distributed.json",
        *("--hosts", "2", "--per-host", "2", "--steps", "2", "--step-seconds", "0.5"),
        *("--batches", "2", "--cpu-iterations", "1000", "--repeat", "1"),
        *("--readers-repeat", "1"),
    )
    assert results["world_size"] == 4
    assert results["outcome"] == {
        "status": "completed",
        "ranks": 4,
        "hosts": 2,
        "counts": {"completed": 4},
    }
    assert set(results["wall_s"]) == {"untracked", "tracked"}
    assert [len(results["rounds"][m]) for m in ("untracked", "tracked")] == [1, 1]
    assert set(results["overhead"]) == set(results["wall_s"]["tracked"])
    inventory = results["run_directory"]
    assert inventory["by_owner"]["per rank (parts/)"]["files"] >= 3  # ranks 1-3's parts
    assert inventory["rank_part_bytes_median"] > 0
    assert set(results["readers_s"]["job"]) == {
        "python -c pass",
        "otel-tracker show latest",
        "otel-tracker list",
        "RunStore.open(root).list() in-process",
    }
    assert results["on_paper"]["rank_heartbeat_s"] == 128.0  # 4,096 ranks / 32 writes/s
    writes = results["writes"]
    if shutil.which("strace") is None:
        assert writes is None
        return
    assert writes["outcome"]["status"] == "completed"
    whole = writes["whole_job"]
    assert whole["rendezvous"]["links"] == 1  # the first rank's claim; the others read it
    assert whole["manifest"]["replacements"] >= 2  # rank 0's: start and end at least
    assert whole["rank parts"]["replacements"] >= 3 * 2  # every other rank's
    assert whole["telemetry"]["appends"] >= 2  # one sampling rank per host
    assert writes["steady_phase_s"] > 0 and writes["naive_part_writes_per_s"] == 4 / 5
