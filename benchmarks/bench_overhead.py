"""Overhead of tracking, each figure side by side with its comparison in one run.

    python -m benchmarks.bench_overhead [--repeat 5] [--output FILE]

1. ``step.advance()`` per call vs a bare loop, ``obj.n += 1``, a minimal method,
   ``tqdm.update(1)``, rich's ``Progress.advance()`` and an OTel SDK ``Counter.add(1)``
   (net of the bare loop; medians of interleaved repeats).
2. Sampler CPU per sample (process tree + system + GPU path with a fake NVML)
   with 0, 1, 8, 16 and 32 sleeping child processes, and its share of one core at the
   default 5 s interval; and one collection of
   ``opentelemetry-instrumentation-system-metrics`` with its defaults.
3. A tight CPU-bound loop calling ``advance()`` per iteration, untracked vs tracked.
   End-to-end: the reference pipeline (quick) untracked vs tracked with default
   settings, as interleaved subprocess runs; the ratio of medians.
4. With ``--medium-demo`` (32 s a run) and ``--full-demo`` (4 min a run), the same
   on longer pipelines, where the fixed cost of importing and starting the SDK no
   longer dominates.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path
from typing import Any

from benchmarks._results import save


class _Counter:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def inc(self, k: int = 1) -> None:
        self.n += k


def _comparisons() -> tuple[dict[str, tuple[str, dict[str, Any]]], list[str]]:
    """What users would use instead of ``advance()``: tqdm, rich, an OTel counter."""
    import io

    cases: dict[str, tuple[str, dict[str, Any]]] = {}
    missing = []
    try:
        from tqdm import tqdm

        bar = tqdm(total=10**12, file=io.StringIO())  # drawn, but where nobody looks
        cases["tqdm.update(1)"] = ("update(1)", {"update": bar.update})
    except ImportError:
        missing.append("tqdm")
    from rich.console import Console
    from rich.progress import Progress

    progress = Progress(console=Console(file=io.StringIO()), auto_refresh=False)
    task = progress.add_task("loop", total=None)
    cases["rich Progress.advance()"] = (
        "advance(task)",
        {"advance": progress.advance, "task": task},
    )
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    counter = provider.get_meter("bench").create_counter("items")
    cases["OTel SDK Counter.add(1)"] = ("add(1)", {"add": counter.add})
    return cases, missing


def bench_advance(repeat: int, number: int = 2_000_000) -> dict[str, float]:
    """ns per call, net of a bare loop; the slow comparisons run 20x fewer calls."""
    from otel_tracker import track_run

    root = os.environ["BENCH_ROOT"]
    run = track_run(
        "bench", resources=False, progress="off", install_signal_handlers=False, root=root
    )
    with run, run.step("loop") as step:
        c = _Counter()
        cases = {
            "bare loop": ("pass", {}),
            "obj.n += 1": ("c.n += 1", {"c": c}),
            "minimal method": ("inc()", {"inc": c.inc}),
            "step.advance()": ("advance()", {"advance": step.advance}),
        }
        slow, missing = _comparisons()
        cases.update(slow)
        samples: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(repeat):
            for name, (stmt, glb) in cases.items():
                n = number if name not in slow else number // 20
                samples[name].append(timeit.timeit(stmt, globals=glb, number=n) / n)
    for name in missing:
        print(f"   ({name} is not installed: pip install -e '.[bench]')")
    bare = statistics.median(samples["bare loop"])
    return {
        name: round((statistics.median(v) - bare) * 1e9, 1)
        for name, v in samples.items()
        if name != "bare loop"
    }


def bench_system_metrics_instrumentation(samples: int = 30) -> dict[str, float] | None:
    """One collection of opentelemetry-instrumentation-system-metrics, with its defaults."""
    try:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    except ImportError:
        print("   (opentelemetry-instrumentation-system-metrics is not installed: '.[bench]')")
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    instrumentor = SystemMetricsInstrumentor()
    instrumentor.instrument(meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        costs, points = [], 0
        for _ in range(samples):
            t0 = time.thread_time()
            data = reader.get_metrics_data()
            costs.append(time.thread_time() - t0)
            points = sum(
                len(m.data.data_points)
                for rm in data.resource_metrics
                for sm in rm.scope_metrics
                for m in sm.metrics
            )
    finally:
        instrumentor.uninstrument()
    return {"cpu_ms_per_collection": round(statistics.median(costs[1:]) * 1e3, 3), "points": points}


def bench_tight_loop(root: Path, repeat: int, iterations: int = 3_000_000) -> dict[str, float]:
    """A CPU-bound Python loop calling ``advance()`` every iteration, untracked vs
    tracked (default settings), interleaved subprocess runs; times the loop."""
    code = f"""
import time
from otel_tracker import track_run
with track_run("tight loop", steps=["loop"]) as run:
    with run.step("loop") as step:
        advance, acc = step.advance, 0
        began = time.perf_counter()
        for i in range({iterations}):
            acc += i * i % 7
            advance()
        print(time.perf_counter() - began)
"""
    env = {**os.environ, "OTEL_TRACKER_ROOT": str(root), "OTEL_TRACKER_PROGRESS": "off"}
    off, on = [], []
    for _ in range(repeat):
        for tracked, out in ((False, off), (True, on)):
            run_env = env if tracked else {**env, "OTEL_TRACKER_DISABLED": "true"}
            proc = subprocess.run(
                [sys.executable, "-c", code],
                env=run_env,
                capture_output=True,
                text=True,
                check=True,
            )
            out.append(float(proc.stdout.split()[-1]))
    return {
        "iterations": iterations,
        "untracked_median_s": round(statistics.median(off), 3),
        "tracked_median_s": round(statistics.median(on), 3),
        "ratio": round(statistics.median(on) / statistics.median(off), 4),
    }


def _sleeping_children(children: int, shared_mib: int) -> tuple[list[int], Any]:
    """``children`` sleeping processes: fresh interpreters, or (``shared_mib`` > 0)
    forks of this process sharing a touched buffer of that size, as DataLoader or
    Pool workers share their parent's pages."""
    if not shared_mib:
        kids = [
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            for _ in range(children)
        ]
        return [k.pid for k in kids], kids
    buffer = bytearray(os.urandom(1024)) * (shared_mib * 1024)  # every page touched
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:  # the child only sleeps: its pages stay shared with ours
            time.sleep(120)
            os._exit(0)
        pids.append(pid)
    return pids, buffer


def bench_sampler(children: int, samples: int = 30, shared_mib: int = 0) -> dict[str, float]:
    import signal

    from otel_tracker.sampling.gpu import NvmlSampler
    from otel_tracker.sampling.points import Unavailable
    from otel_tracker.sampling.process import ProcessTreeSampler
    from otel_tracker.sampling.system import SystemSampler
    from otel_tracker.testing import FakeNvml

    pids, keep = _sleeping_children(children, shared_mib)
    try:
        time.sleep(0.5)
        tree = ProcessTreeSampler()
        parts = [
            tree,
            SystemSampler(),
            NvmlSampler(FakeNvml(["GPU-a", "GPU-b"]), environ={}, pids=tree.tree_pids),
        ]
        unavailable = Unavailable()
        costs = []
        values: dict[str, float] = {}
        for i in range(samples):
            t0 = time.thread_time()
            # the samplers see the default interval pass between samples: what is read
            # only as often as a CPU budget allows is read as often as it would be
            now = i * 5.0
            points = [p for part in parts for p in part.sample(now, unavailable)]
            costs.append(time.thread_time() - t0)
            values.update((p.name, p.value) for p in points if not p.attributes)
        per_sample = statistics.median(costs[1:])
        pss = values.get("otel_tracker.process.memory.pss")
        return {
            "children": children,
            "shared_mib": shared_mib,
            "processes_seen": values["otel_tracker.process.count"],
            "cpu_ms_per_sample": round(per_sample * 1e3, 3),
            # the mean counts the samples that also read PSS/USS
            "cpu_ms_mean": round(statistics.mean(costs[1:]) * 1e3, 3),
            "share_of_one_core_at_5s_pct": round(100 * per_sample / 5.0, 4),
            "rss_mib": round(values["process.memory.usage"] / 2**20, 1),
            "pss_mib": None if pss is None else round(pss / 2**20, 1),
        }
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        del keep


# About 32 s: long enough that in-step overhead shows, short enough to repeat.
MEDIUM = "Sizes(1000, 150, 300, 400, 60, 60, 32, 80)"
SIZES = {"quick": "QUICK", "medium": MEDIUM, "full": "FULL"}


def _demo(root: Path, tracked: bool, size: str = "quick") -> float:
    env = {**os.environ, "OTEL_TRACKER_ROOT": str(root), "OTEL_TRACKER_PROGRESS": "off"}
    if not tracked:
        env["OTEL_TRACKER_DISABLED"] = "true"
    code = (
        "from otel_tracker.examples.imitation import QUICK, FULL, Sizes, run_pipeline; "
        f"run_pipeline({SIZES[size]})"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def bench_end_to_end(root: Path, repeat: int, size: str = "quick") -> dict[str, float]:
    off, on = [], []
    for _ in range(repeat):  # interleaved: drift and noise hit both alike
        off.append(_demo(root, tracked=False, size=size))
        on.append(_demo(root, tracked=True, size=size))
    return {
        "untracked_median_s": round(statistics.median(off), 3),
        "tracked_median_s": round(statistics.median(on), 3),
        "ratio": round(statistics.median(on) / statistics.median(off), 4),
    }


def _print_sampler(results: dict[str, Any]) -> None:
    print("2. sampler CPU per sample (process tree + system + fake-NVML GPU path):")
    for row in results["sampler"]:
        pss = "-" if row["pss_mib"] is None else f"{row['pss_mib']:.0f}"
        kind = f"forks sharing {row['shared_mib']} MiB" if row["shared_mib"] else "children"
        print(
            f"   {row['children']:>2} {kind} ({row['processes_seen']:.0f} processes): "
            f"{row['cpu_ms_per_sample']:.2f} ms (mean {row['cpu_ms_mean']:.2f}), "
            f"{row['share_of_one_core_at_5s_pct']:.3f}% "
            f"of one core at 5 s; tree RSS {row['rss_mib']:.0f} MiB, PSS {pss} MiB"
        )
    other = results["system_metrics_instrumentation"]
    if other:
        print(
            f"   vs opentelemetry-instrumentation-system-metrics, one collection "
            f"({other['points']} points): {other['cpu_ms_per_collection']:.2f} ms"
        )


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default="benchmarks/results/overhead.json")
    parser.add_argument(
        "--medium-demo",
        action="store_true",
        help="also compare on a 32 s version of the demo (about 2 x --repeat x 32 s)",
    )
    parser.add_argument(
        "--full-demo",
        action="store_true",
        help="also compare on the full demo (about 4 min a run, 2 x --repeat runs)",
    )
    parser.add_argument("--sampler-only", action="store_true", help="part 2 only")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    results["sampler"] = [bench_sampler(n) for n in (0, 1, 8, 16, 32)]
    results["sampler"].append(bench_sampler(8, shared_mib=512))
    results["system_metrics_instrumentation"] = bench_system_metrics_instrumentation()
    _print_sampler(results)
    if args.sampler_only:
        save(results, args.output)
        return 0
    with tempfile.TemporaryDirectory(prefix="otel-tracker-overhead-") as tmp:
        os.environ["BENCH_ROOT"] = tmp
        results["advance_ns_net_of_bare_loop"] = bench_advance(args.repeat)
        results["tight_loop"] = bench_tight_loop(Path(tmp), args.repeat)
        results["end_to_end_demo_quick"] = bench_end_to_end(Path(tmp), args.repeat)
        if args.medium_demo:
            results["end_to_end_demo_medium"] = bench_end_to_end(Path(tmp), args.repeat, "medium")
        if args.full_demo:
            results["end_to_end_demo_full"] = bench_end_to_end(Path(tmp), args.repeat, "full")
    print("1. per call, net of a bare loop (ns):")
    for name, ns in results["advance_ns_net_of_bare_loop"].items():
        print(f"   {name:<16}{ns:>8.1f}")
    loop = results["tight_loop"]
    print(
        f"3a. tight loop, advance() per iteration ({loop['iterations']:,}), {args.repeat} "
        f"interleaved runs: untracked {loop['untracked_median_s']:.3f} s, "
        f"tracked {loop['tracked_median_s']:.3f} s, ratio {loop['ratio']:.3f}"
    )
    e2e = results["end_to_end_demo_quick"]
    print(
        f"3. demo pipeline (quick), {args.repeat} interleaved runs each: untracked {e2e['untracked_median_s']:.2f} s, "
        f"tracked {e2e['tracked_median_s']:.2f} s, ratio {e2e['ratio']:.3f}"
    )
    if args.medium_demo:
        medium = results["end_to_end_demo_medium"]
        print(
            f"4. demo pipeline (medium), {args.repeat} interleaved runs each: untracked {medium['untracked_median_s']:.1f} s, "
            f"tracked {medium['tracked_median_s']:.1f} s, ratio {medium['ratio']:.4f}"
        )
    if args.full_demo:
        full = results["end_to_end_demo_full"]
        print(
            f"5. demo pipeline (full), {args.repeat} interleaved runs each: untracked {full['untracked_median_s']:.1f} s, "
            f"tracked {full['tracked_median_s']:.1f} s, ratio {full['ratio']:.4f}"
        )
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
