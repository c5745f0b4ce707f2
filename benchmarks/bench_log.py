"""What logging a training metric costs the training loop: ``run.log()`` of three
values, side by side with MLflow's ``log_metrics`` (local file store) and Aim's
``Run.track``, and how long the background writer takes to put them on disk.

    python -m benchmarks.bench_log [--calls 200000] [--others-calls 2000] [--output FILE]
    python -m benchmarks.bench_log --without-others     (no MLflow/Aim installed)

1. Per call on the caller's thread (``timeit``, interleaved rounds, medians, net of a
   bare ``lambda``): ``run.log({"loss", "acc", "lr"}, step=i)``, a minimal method
   call for scale, and ``step.advance()``.
2. The same values through MLflow (``mlflow.log_metrics(d, step=i)``, file store,
   ``MLFLOW_ALLOW_FILE_STORE=true``) and Aim (``Run.track(d, step=i)``): they write
   (or queue for a writer) on the caller's thread; ``--others-calls`` calls each.
3. Our writer: 200,000 calls logged as fast as the loop can go (the bound on points
   waiting for the writer), the time the run's end takes to put them all in
   ``metrics.jsonl`` and the summaries, and what was dropped (nothing, at the bound).

The comparison needs ``pip install -e '.[compare]'`` (mlflow-skinny, aim); without
it the run fails unless ``--without-others`` is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

from benchmarks._results import save

VALUES = {"loss": 0.31, "acc": 0.92, "lr": 0.001}


def bench_ours(root: str, calls: int, rounds: int) -> dict[str, Any]:
    from otel_tracker import track_run

    class Minimal:
        def log(self, values: Any, step: Any = None) -> None:
            return None

    minimal = Minimal()
    figures: dict[str, list[float]] = {
        "run.log (3 values)": [],
        "minimal method": [],
        "step.advance()": [],
    }
    with (
        track_run("bench-log", root=root, progress="off", resources=False) as run,
        run.step("s") as step,
    ):
        log, advance = run.log, step.advance
        for _ in range(rounds):
            bare = timeit.timeit(lambda: None, number=calls)
            for name, fn in (
                ("run.log (3 values)", lambda: log(VALUES, step=1)),
                ("minimal method", lambda: minimal.log(VALUES, step=1)),
                ("step.advance()", lambda: advance()),
            ):
                figures[name].append((timeit.timeit(fn, number=calls) - bare) / calls * 1e9)
        dropped = run.metrics.dropped
    return {
        name: {"ns_median": round(statistics.median(v), 1), "ns_rounds": [round(x, 1) for x in v]}
        for name, v in figures.items()
    } | {"dropped": dropped}


def bench_mlflow(calls: int) -> float:
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as store:
        mlflow.set_tracking_uri(Path(store).as_uri())
        mlflow.set_experiment("bench-log")
        with mlflow.start_run():
            start = time.perf_counter()
            for i in range(calls):
                mlflow.log_metrics(VALUES, step=i)
            elapsed = time.perf_counter() - start
    return round(elapsed / calls * 1e9, 1)


def bench_aim(calls: int) -> float:
    from aim import Run

    # not a TemporaryDirectory: Aim's writer may still append after close()
    repo = tempfile.mkdtemp(prefix="bench-aim-")
    run = Run(repo=repo, experiment="bench-log")
    start = time.perf_counter()
    for i in range(calls):
        run.track(VALUES, step=i)
    elapsed = time.perf_counter() - start
    run.close()
    return round(elapsed / calls * 1e9, 1)


def bench_writer(root: str, points: int) -> dict[str, Any]:
    from otel_tracker import track_run

    with track_run("bench-log-writer", root=root, progress="off", resources=False) as run:
        log = run.log
        start = time.perf_counter()
        for i in range(points):
            log(VALUES, step=i)
        logged = time.perf_counter() - start
        end_started = time.perf_counter()
    flushed = time.perf_counter() - end_started
    lines = (Path(run.dir) / "metrics.jsonl").read_bytes().count(b"\n")
    keys = run.record.metrics()["keys"]
    return {
        "points": points,
        "log_loop_s": round(logged, 3),
        "run_end_s": round(flushed, 3),
        "points_recorded_per_key": {k: v["count"] for k, v in keys.items()},
        "jsonl_lines": lines,
        "dropped": run.metrics.dropped,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--others-calls", type=int, default=2_000)
    parser.add_argument("--writer-points", type=int, default=200_000)
    parser.add_argument("--without-others", action="store_true", help="skip MLflow and Aim")
    parser.add_argument("--output", default="benchmarks/results/log.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="otel-tracker-log-") as root:
        ours = bench_ours(root, args.calls, args.rounds)
        writer = bench_writer(root, args.writer_points)
    results: dict[str, Any] = {"otel-tracker": ours, "writer": writer}
    if not args.without_others:
        try:
            results["mlflow.log_metrics (3 values), ns"] = bench_mlflow(args.others_calls)
            results["aim Run.track (3 values), ns"] = bench_aim(args.others_calls)
        except ImportError as exc:
            parser.error(f"{exc}: pip install -e '.[compare]', or pass --without-others")
    print("ns per call on the caller's thread (median of rounds, net of a bare lambda):")
    for name, figures in ours.items():
        if isinstance(figures, dict):
            print(f"  {name}: {figures['ns_median']}")
    for name in ("mlflow.log_metrics (3 values), ns", "aim Run.track (3 values), ns"):
        if name in results:
            print(f"  {name.rsplit(',', 1)[0]}: {results[name]}")
    print(
        f"writer: {writer['points']:,} log() calls in {writer['log_loop_s']} s, run end "
        f"(final flush) {writer['run_end_s']} s, dropped {writer['dropped']:,}"
    )
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
