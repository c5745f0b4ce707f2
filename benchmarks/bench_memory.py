"""Memory of a long run: RSS added by tracking a 24-hour run at the default interval.

    python -m benchmarks.bench_memory [--hours 24] [--output FILE]

A tracked run takes as many samples as ``--hours`` of sampling at the default
5 s interval would (17,280 for 24 h), as fast as the sampler goes, across
``--steps`` steps (5), with every consumer a default run has (telemetry.jsonl,
per-step aggregates, the ring buffer of recent snapshots; OTel metric instruments
only exist with a mirror on). Its RSS is read at the 1-hour, 6-hour and final marks and compared
with an untracked process that imported the same modules and did the same
waiting, side by side. Also reports telemetry.jsonl bytes per hour of run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._results import save

DEFAULT_INTERVAL_S = 5.0

# The child prints one JSON line per mark: samples taken and its RSS.
CHILD = """
import json, os, sys, time
import psutil
from otel_tracker import track_run
import otel_tracker.record.run  # untracked or not, the same modules are in memory

marks, interval, nsteps = json.loads(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
me = psutil.Process()
steps = [f"part {i}" for i in range(nsteps)]
with track_run("memory", steps=steps, sample_interval=interval, progress="off") as run:
    tracked = hasattr(run, "telemetry")
    total = marks[-1]
    per_step = -(-total // len(steps))
    done = 0
    for name in steps:
        with run.step(name) as step:
            goal = min(done + per_step, total)
            while done < goal:
                time.sleep(0.05)
                step.advance(10)
                # an untracked run has no sampler: it counts what the sampler would have
                done = run.telemetry.sampler.samples if tracked else done + 25
                while marks and done >= marks[0]:
                    print(json.dumps({"samples": marks.pop(0), "rss": me.memory_info().rss}),
                          flush=True)
    path = getattr(run, "manifest_path", None)
print(json.dumps({"manifest": str(path) if path else None}), flush=True)
"""


def _child(
    root: Path, marks: list[int], tracked: bool, interval: float, steps: int
) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_TRACKER_ROOT=str(root))
    if not tracked:
        env["OTEL_TRACKER_DISABLED"] = "true"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(marks), str(interval), str(steps)],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(
            f"the {'tracked' if tracked else 'untracked'} child failed:\n{proc.stderr}"
        )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument(
        "--interval", type=float, default=0.002, help="the fast sampling interval (s)"
    )
    parser.add_argument("--steps", type=int, default=5, help="steps the samples spread over")
    parser.add_argument("--output", default="benchmarks/results/memory.json")
    args = parser.parse_args(argv)

    per_hour = int(3600 / DEFAULT_INTERVAL_S)
    total = int(args.hours * per_hour)
    marks = sorted({m for m in (per_hour // 6, per_hour, 6 * per_hour, total) if m <= total})
    with tempfile.TemporaryDirectory(prefix="otel-tracker-memory-") as tmp:
        untracked = _child(Path(tmp), marks, False, args.interval, args.steps)
        tracked = _child(Path(tmp), marks, True, args.interval, args.steps)
        manifest = Path(tracked[-1]["manifest"])
        telemetry_bytes = (manifest.parent / "telemetry.jsonl").stat().st_size
        manifest_bytes = manifest.stat().st_size
    base_rss = untracked[-2]["rss"]
    rows = [
        {
            "samples": row["samples"],
            "hours_at_5s": round(row["samples"] / per_hour, 2),
            "rss_mib": round(row["rss"] / 2**20, 1),
            "added_vs_untracked_mib": round((row["rss"] - base_rss) / 2**20, 1),
        }
        for row in tracked[:-1]
    ]
    hour_mark = next(r for r in rows if r["samples"] == per_hour) if total >= per_hour else rows[0]
    growth = rows[-1]["rss_mib"] - hour_mark["rss_mib"]
    results = {
        "hours_simulated": args.hours,
        "samples": total,
        "steps": args.steps,
        "untracked_rss_mib": round(base_rss / 2**20, 1),
        "tracked": rows,
        "growth_after_first_hour_mib": round(growth, 1),
        "telemetry_jsonl_bytes": telemetry_bytes,
        "telemetry_jsonl_mib_per_hour": round(telemetry_bytes / 2**20 / (total / per_hour), 2),
        "manifest_bytes": manifest_bytes,
    }
    print(f"{total} samples ({args.hours:g} h at the default 5 s interval), {args.steps} steps:")
    print(f"   untracked process: {results['untracked_rss_mib']} MiB RSS")
    for row in rows:
        print(
            f"   tracked after {row['samples']:>6} samples ({row['hours_at_5s']:>5} h): "
            f"{row['rss_mib']:>6} MiB RSS, +{row['added_vs_untracked_mib']} MiB vs untracked"
        )
    print(f"   growth from {hour_mark['hours_at_5s']:g} h to {args.hours:g} h: {growth:+.1f} MiB")
    print(
        f"   telemetry.jsonl {telemetry_bytes / 2**20:.1f} MiB "
        f"({results['telemetry_jsonl_mib_per_hour']} MiB per hour), manifest {manifest_bytes} B"
    )
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
