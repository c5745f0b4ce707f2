"""Cost of a step transition and of the manifest write as a run grows to 500 steps.

    python -m benchmarks.bench_manifest [--steps 500] [--repeat 5] [--output FILE]

1. Step transition: ``with run.step(name): pass`` (span start and end, two atomic
   manifest writes with fsync), for the first and the last 50 steps of a
   500-step run: a write must not get slower without bound as the run grows.
2. The final 500-step manifest written by a run's writer (items it encoded before
   are reused), written atomically from scratch (temp file, fsync, rename, fsync
   of the directory), without fsync, the ``json`` encoding alone, and an atomic
   write of a 100-byte document (the floor of any crash-safe write), interleaved
   in one process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._results import save


def _timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def bench_transitions(root: Path, steps: int) -> dict[str, Any]:
    from otel_tracker import track_run

    names = [f"step {i:04d}" for i in range(steps)]
    times = []
    with track_run(
        "transitions",
        steps=names,
        root=root,
        resources=False,
        progress="off",
        install_signal_handlers=False,
        params={"lr": 3e-4, "seed": 1},
    ) as run:
        for name in names:
            began = time.perf_counter()
            with run.step(name):
                pass
            times.append(time.perf_counter() - began)
    manifest = Path(run.manifest_path)
    window = min(50, steps)
    return {
        "steps": steps,
        "first_median_ms": round(statistics.median(times[:window]) * 1e3, 3),
        "last_median_ms": round(statistics.median(times[-window:]) * 1e3, 3),
        "last_p95_ms": round(sorted(times[-window:])[int(0.95 * window) - 1] * 1e3, 3),
        "manifest_bytes": manifest.stat().st_size,
        "manifest": str(manifest),
    }


def bench_writes(doc: dict[str, Any], workdir: Path, repeat: int) -> dict[str, float]:
    from otel_tracker.contract.atomic import dump_json, write_json_atomic
    from otel_tracker.contract.document import manifest_encoder
    from otel_tracker.contract.manifest_writer import ManifestFileWriter

    small = {"schema_version": 1, "status": "running", "steps": []}
    target, tiny = workdir / "manifest.json", workdir / "small.json"
    # a run's writer: steps and ETA log entries it encoded before are reused
    writer = ManifestFileWriter(workdir / "run-manifest.json", encode=manifest_encoder())
    cases: dict[str, Callable[[], Any]] = {
        "run's writer (fragments reused), fsync": lambda: writer.write(doc),
        "atomic write, fsync, whole encoding": lambda: write_json_atomic(target, doc),
        "atomic write, no fsync": lambda: write_json_atomic(target, doc, fsync=False),
        "JSON encoding only": lambda: dump_json(doc),
        "atomic write of 100 bytes, fsync": lambda: write_json_atomic(tiny, small),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat * 10):  # interleaved
        for name, fn in cases.items():
            samples[name].append(_timed(fn))
    return {name: round(statistics.median(s) * 1e3, 3) for name, s in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default="benchmarks/results/manifest.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="otel-tracker-manifest-") as tmp:
        transitions = bench_transitions(Path(tmp), args.steps)
        doc = json.loads(Path(transitions.pop("manifest")).read_text())
        writes = bench_writes(doc, Path(tmp), args.repeat)
    results = {"transitions": transitions, "write_ms_median": writes}
    print(f"1. step transition in a {args.steps}-step run (span start/end + 2 manifest writes):")
    print(
        f"   first 50 steps {transitions['first_median_ms']:.2f} ms, "
        f"last 50 {transitions['last_median_ms']:.2f} ms "
        f"(p95 {transitions['last_p95_ms']:.2f} ms); "
        f"final manifest {transitions['manifest_bytes'] / 1024:.0f} KiB"
    )
    print(f"2. writing the {args.steps}-step manifest (median ms):")
    for name, ms in writes.items():
        print(f"   {name:<40}{ms:>8.3f}")
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
