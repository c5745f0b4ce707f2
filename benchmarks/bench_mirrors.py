"""Cost of the mirrors, side by side in one run: the reference pipeline (quick)
untracked, tracked with no mirror, OTLP to a live receiver, OTLP to a black-holed
endpoint, all three mirrors live, and all three dead at once (OTLP black-holed, the
Prometheus port taken, a file where the TensorBoard directory goes).

    python -m benchmarks.bench_mirrors [--repeat 5] [--size quick|medium] [--output FILE]

For each configuration, interleaved subprocess runs give the median of the
pipeline's own wall time (from the call of ``run_pipeline()`` in the child to the
run's ``ended_at``, when its manifest is final; to the return when untracked) and
of the exit delay (from there to process exit: what flushing the mirrors, or
waiting on a dead collector, adds at shutdown). The start cost (from the call to
the first step's start: importing the SDK and the mirrors' exporters, starting
the run) is paid once per run; "after start" is the ratio without it, what a
long pipeline converges to.
Ratios are to the untracked run. The receiver is the tests' real OTLP gRPC server.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._results import save
from benchmarks.bench_overhead import SIZES
from otel_tracker.timeparse import parse_timestamp
from tests.helpers import OBSTRUCT_TENSORBOARD
from tests.otlp_receiver import BlackHole, OtlpGrpcReceiver

CODE = """
import time
from otel_tracker.examples.imitation import QUICK, FULL, Sizes, run_pipeline
began = time.time()
run = run_pipeline({sizes})
print("PIPELINE", began, time.time(), getattr(run, "manifest_path", None), flush=True)
"""


def _once(env: dict[str, str], code: str) -> tuple[float, float, int, float]:
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    exited = time.time()
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PIPELINE"))
    _, began, returned, manifest = line.split(maxsplit=3)
    # a tracked run's work ends when its manifest is final; the bounded flush of the
    # mirrors after that is exit delay, like an untracked process's teardown
    ended, start_cost = float(returned), 0.0
    if manifest != "None":
        doc = json.loads(Path(manifest).read_text())
        ended = parse_timestamp(doc["ended_at"]) or ended
        # importing the SDK and the mirrors' exporters and starting the run: paid once
        first_step = parse_timestamp(doc["steps"][0]["started_at"])
        start_cost = first_step - float(began) if first_step else 0.0
    warnings = sum(line.startswith("otel-tracker ") for line in proc.stderr.splitlines())
    return ended - float(began), exited - ended, warnings, start_cost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="quick", help="demo size (quick 5 s, medium 32 s)"
    )
    parser.add_argument(
        "--only", help="comma-separated configurations (default: all); untracked is always run"
    )
    parser.add_argument("--output", default="benchmarks/results/mirrors.json")
    args = parser.parse_args(argv)

    receiver, hole = OtlpGrpcReceiver(), BlackHole()
    busy = socket.socket()  # holds the port the dead Prometheus mirror asks for
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    with tempfile.TemporaryDirectory(prefix="otel-tracker-mirrors-") as tmp:
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            "OTEL_TRACKER_ROOT": tmp,
            "OTEL_TRACKER_PROGRESS": "off",
        }
        configs: dict[str, dict[str, str]] = {
            "untracked": {"OTEL_TRACKER_DISABLED": "true"},
            "tracked (no mirror)": {},
            "OTLP to a live receiver": {
                "OTEL_TRACKER_OTLP": "true",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            },
            "OTLP to a black hole": {
                "OTEL_TRACKER_OTLP": "true",
                "OTEL_EXPORTER_OTLP_ENDPOINT": hole.endpoint,
            },
            "OTLP + Prometheus + TensorBoard": {
                "OTEL_TRACKER_OTLP": "true",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_TRACKER_PROMETHEUS": "true",
                "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
                "OTEL_TRACKER_TENSORBOARD": "true",
            },
            "all three dead": {
                "OTEL_TRACKER_OTLP": "true",
                "OTEL_EXPORTER_OTLP_ENDPOINT": hole.endpoint,
                "OTEL_TRACKER_PROMETHEUS": "true",
                "OTEL_EXPORTER_PROMETHEUS_PORT": str(busy.getsockname()[1]),
                "OTEL_TRACKER_TENSORBOARD": "true",
            },
        }
        if args.only:
            wanted = {"untracked", *(n.strip() for n in args.only.split(","))}
            unknown = wanted - set(configs)
            if unknown:
                parser.error(f"unknown configuration(s) {sorted(unknown)}; known: {list(configs)}")
            configs = {n: e for n, e in configs.items() if n in wanted}
        samples: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in configs}
        for _ in range(args.repeat):  # interleaved: drift and noise hit every config alike
            for name, extra in configs.items():
                code = CODE.format(sizes=SIZES[args.size])
                if name == "all three dead":
                    code = OBSTRUCT_TENSORBOARD + code
                samples[name].append(_once({**base, **extra}, code))
    receiver.close()
    hole.close()
    busy.close()

    baseline = statistics.median(r[0] for r in samples["untracked"])
    results: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "size": args.size,
        "repeat": args.repeat,
        "configs": {},
    }
    print(f"demo pipeline ({args.size}), {args.repeat} interleaved runs per configuration:")
    header = (
        f"{'pipeline':>10}{'vs untracked':>14}{'start cost':>12}{'after start':>13}"
        f"{'exit delay':>12}{'warnings':>10}"
    )
    print(f"   {'configuration':<34}{header}")
    for name, rows in samples.items():
        duration = statistics.median(r[0] for r in rows)
        delay = statistics.median(r[1] for r in rows)
        warnings = max(r[2] for r in rows)
        start = statistics.median(r[3] for r in rows)
        results["configs"][name] = {
            "pipeline_median_s": round(duration, 3),
            "ratio_to_untracked": round(duration / baseline, 4),
            "start_cost_median_s": round(start, 3),
            "ratio_after_start": round((duration - start) / baseline, 4),
            "exit_delay_median_s": round(delay, 3),
            "exit_delay_max_s": round(max(r[1] for r in rows), 3),
            "warning_lines_max": warnings,
            "pipeline_runs_s": [round(r[0], 3) for r in rows],
        }
        print(
            f"   {name:<34}{duration:>8.2f} s{duration / baseline:>14.3f}{start:>10.2f} s"
            f"{(duration - start) / baseline:>13.3f}{delay:>10.2f} s{warnings:>10}"
        )
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
