"""Cost of the mirrors, side by side in one run: the reference pipeline (quick) with
no mirror, OTLP to a live receiver, OTLP to a black-holed endpoint, and all three
mirrors at once.

    python -m benchmarks.bench_mirrors [--repeat 5] [--output FILE]

For each configuration, interleaved subprocess runs give the median of the run's
own duration (the manifest's ``duration_s``: what the pipeline felt) and of the
exit delay (from the run's ``ended_at`` to process exit: what flushing the mirrors,
or waiting on a dead collector, adds at shutdown). The receiver is the tests' real OTLP gRPC server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._results import save
from otel_tracker.timeparse import parse_timestamp
from tests.otlp_receiver import BlackHole, OtlpGrpcReceiver

CODE = (
    "from otel_tracker.examples.imitation import run_pipeline\n"
    "print('MANIFEST', run_pipeline().manifest_path, flush=True)\n"
)


def _once(env: dict[str, str]) -> tuple[float, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    )
    exited = time.time()
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MANIFEST"))
    doc = json.loads(Path(line.split(maxsplit=1)[1]).read_text())
    # from the run's end (the manifest is final) to process exit: exporter flushes included
    return doc["duration_s"], exited - (parse_timestamp(doc["ended_at"]) or exited)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default="benchmarks/results/mirrors.json")
    args = parser.parse_args(argv)

    receiver, hole = OtlpGrpcReceiver(), BlackHole()
    with tempfile.TemporaryDirectory(prefix="otel-tracker-mirrors-") as tmp:
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            "OTEL_TRACKER_ROOT": tmp,
            "OTEL_TRACKER_PROGRESS": "off",
        }
        configs: dict[str, dict[str, str]] = {
            "no mirror": {},
            "OTLP, live receiver": {
                "OTEL_TRACKER_OTLP": "true",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            },
            "OTLP, black-holed endpoint": {
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
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
        for _ in range(args.repeat):  # interleaved: drift and noise hit every config alike
            for name, extra in configs.items():
                samples[name].append(_once({**base, **extra}))
    receiver.close()
    hole.close()

    baseline = statistics.median(d for d, _ in samples["no mirror"])
    results: dict[str, Any] = {"cpu_count": os.cpu_count(), "repeat": args.repeat, "configs": {}}
    print(f"demo pipeline (quick), {args.repeat} interleaved runs per configuration:")
    print(f"   {'configuration':<34}{'run duration':>14}{'vs none':>9}{'exit delay':>12}")
    for name, rows in samples.items():
        duration = statistics.median(d for d, _ in rows)
        delay = statistics.median(x for _, x in rows)
        results["configs"][name] = {
            "duration_median_s": round(duration, 3),
            "ratio_to_no_mirror": round(duration / baseline, 4),
            "exit_delay_median_s": round(delay, 3),
            "exit_delay_max_s": round(max(x for _, x in rows), 3),
        }
        print(f"   {name:<34}{duration:>12.2f} s{duration / baseline:>9.3f}{delay:>10.2f} s")
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
