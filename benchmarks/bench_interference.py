"""What each background wake-up of a tracked run costs the pipeline's main thread.

    python -m benchmarks.bench_interference [--repeat 3] [--rollouts 6000]

The tracker's threads (the resource sampler, which also sends the heartbeat to the
sampling helper, and the mirrors' exporters) do little work, but
each time one of them comes back from a system call it must win the GIL from the
pipeline's main thread. Against a numpy loop that itself drops the GIL many times a
millisecond, that wait lasts up to the 5 ms switch interval, and every GIL release
of the main thread meanwhile wakes the waiter (a futex system call in the main
thread). The cost therefore scales with the number of system calls our threads make
per wake-up, not with their CPU time.

The workload is the demo's cart-pole rollout loop (small numpy matrix products), a
fixed amount of it, in a subprocess per configuration, interleaved. Events are made
frequent (0.2 s) so their cost stands out of the noise; the result is the main
thread's CPU time per event, net of the untracked run, and what that is at the
default 5 s interval.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from benchmarks._results import save
from tests.otlp_receiver import OtlpGrpcReceiver

AMPLIFIED_S = 0.2
DEFAULT_S = 5.0
NEVER_S = "100000"

CHILD = r"""
import json, os, sys, time
import numpy as np
import otel_tracker
from otel_tracker.examples.imitation import CartPole

rollouts = int(sys.argv[1])
env = CartPole(np, np.random.default_rng(1))
gain = np.array([[-1.0, -2.0, 30.0, 5.0]])

def work(n):
    for _ in range(n):
        env.rollout(gain, 200)

def counted(run):
    # heartbeats and samples actually taken (a starved thread takes fewer than due)
    sampler = getattr(getattr(run, "telemetry", None), "sampler", None)
    beats = getattr(run, "_beats", 0)
    return (sampler.samples if sampler is not None else 0), beats

with otel_tracker.track_run("interference", steps=["loop"]) as run:
    processor = getattr(run, "manifest_processor", None)
    if processor is not None:
        # a heartbeat is encoded for the sampling helper, or written here (durable=False)
        def counting(method, beat=lambda kwargs: True):
            def call(*args, **kwargs):
                if beat(kwargs):
                    run._beats = getattr(run, "_beats", 0) + 1
                return method(*args, **kwargs)
            return call
        processor.write = counting(processor.write, lambda kwargs: kwargs.get("durable") is False)
        if hasattr(processor, "heartbeat_payload"):
            processor.heartbeat_payload = counting(processor.heartbeat_payload)
    with run.step("loop"):
        work(50)
        samples0, beats0 = counted(run)
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        work(rollouts)
        wall1, cpu1 = time.perf_counter(), time.thread_time()
        samples1, beats1 = counted(run)
print("RESULT " + json.dumps({
    "wall_s": wall1 - wall0, "main_cpu_s": cpu1 - cpu0,
    "samples": samples1 - samples0, "heartbeats": beats1 - beats0,
}))
"""


def _once(env: dict[str, str], rollouts: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(rollouts)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=6000, help="work per run (~1 ms each)")
    parser.add_argument("--output", default="benchmarks/results/interference.json")
    args = parser.parse_args(argv)

    receiver = OtlpGrpcReceiver()
    every = str(AMPLIFIED_S)
    with tempfile.TemporaryDirectory(prefix="otel-tracker-interference-") as tmp:
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            "OTEL_TRACKER_ROOT": tmp,
            "OTEL_TRACKER_PROGRESS": "off",
        }
        sampling = {
            "OTEL_TRACKER_SAMPLE_INTERVAL": every,
            "OTEL_TRACKER_HEARTBEAT_INTERVAL": NEVER_S,
        }
        configs: dict[str, tuple[str, dict[str, str]]] = {
            "untracked": ("", {"OTEL_TRACKER_DISABLED": "true"}),
            "heartbeat": (
                "heartbeats",
                {"OTEL_TRACKER_SAMPLE_INTERVAL": NEVER_S, "OTEL_TRACKER_HEARTBEAT_INTERVAL": every},
            ),
            "resource sample": ("samples", sampling),
            "sample + heartbeat (the defaults)": (
                "samples",
                {**sampling, "OTEL_TRACKER_HEARTBEAT_INTERVAL": every},
            ),
            "sample + TensorBoard": (
                "samples",
                {**sampling, "OTEL_TRACKER_TENSORBOARD": "true"},
            ),
            "sample + OTLP (live receiver)": (
                "samples",
                {
                    **sampling,
                    "OTEL_TRACKER_OTLP": "true",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                },
            ),
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
        for _ in range(args.repeat):  # interleaved: drift hits every configuration alike
            for name, (_, extra) in configs.items():
                runs[name].append(_once({**base, **extra}, args.rollouts))
    receiver.close()

    untracked = statistics.median(r["main_cpu_s"] for r in runs["untracked"])
    results: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "rollouts": args.rollouts,
        "repeat": args.repeat,
        "amplified_interval_s": AMPLIFIED_S,
        "configs": {},
    }
    print(f"main-thread CPU, {args.rollouts} rollouts, {args.repeat} interleaved runs each")
    print(
        f"   {'configuration':<32}{'main CPU':>10}{'events':>8}{'ms/event':>10}"
        f"{'at 5 s':>9}{'wall':>9}"
    )
    for name, rows in runs.items():
        kind = configs[name][0]
        cpu = statistics.median(r["main_cpu_s"] for r in rows)
        wall = statistics.median(r["wall_s"] for r in rows)
        events = statistics.median(r[kind] for r in rows) if kind else 0
        per_event = (cpu - untracked) / events * 1000 if events else 0.0
        share = per_event / 1000 / DEFAULT_S
        results["configs"][name] = {
            "main_cpu_median_s": round(cpu, 3),
            "wall_median_s": round(wall, 3),
            "events_median": events,
            "main_thread_ms_per_event": round(per_event, 2),
            "share_at_default_interval": round(share, 5),
            "runs": rows,
        }
        shown = f"{per_event:>10.1f}{share:>8.2%}" if kind else f"{'':>10}{'':>9}"
        print(f"   {name:<32}{cpu:>8.2f} s{events:>8}{shown}{wall:>7.2f} s")
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
