"""Scale benchmark of the reading side: ``list`` and ``show`` over many runs.

    python -m benchmarks.bench_store [--runs 10,1000,10000] [--repeat 7] [--output FILE]

For each size N, creates N realistic run directories (cloned from a manifest written by a real
tracked run of the reference pipeline's shape, ~1 in 10 failed, a few left
``running`` by dead processes) in a temporary root, then times, side by side
and interleaved in the same process:

* ``python -c pass`` (interpreter start-up: the floor of any CLI call),
* ``otel-tracker list --limit 20``, ``show <id>``, ``show latest`` and
  ``status latest`` as subprocesses,
* ``RunStore.list(limit=20)`` in-process,
* ``list --status failed`` (a filter that has to read every manifest).

Prints a table of medians and writes JSON. Target: ``list --limit 20`` under
0.5 s at 10,000 runs on a 2-core machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks._results import save

STEPS = ["Train expert", "Collect expert trajectories", "Pretrain BC", "Fine-tune", "Evaluate"]


def template_manifest(workdir: Path) -> dict[str, Any]:
    from otel_tracker import track_run

    with track_run(
        "imitation-pipeline",
        root=workdir,
        steps=STEPS,
        params={"seed": 1, "lr": 3e-4},
        install_signal_handlers=False,
    ) as run:
        for name in STEPS:
            with run.step(name) as step:
                step.set_total(1000, unit="env steps")
                step.advance(1000)
    return json.loads(run.manifest_path.read_text())


def populate(root: Path, n: int, template: dict[str, Any]) -> list[str]:
    from otel_tracker.contract.atomic import dump_json

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = []
    for i in range(n):
        t = start + timedelta(minutes=7 * i)
        run_id = f"{t.strftime('%Y%m%dT%H%M%S')}.000Z-imitation-pipeline-{i:06x}"
        doc = copy.deepcopy(template)
        doc["run_id"] = run_id
        doc["started_at"] = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        doc["ended_at"] = (t + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        doc["heartbeat_at"] = doc["ended_at"]
        if i % 10 == 3:
            doc["status"] = "failed"
            doc["steps"][3]["status"] = "failed"
        elif i % 97 == 5:
            doc["status"] = "running"  # a dead process: inferred aborted
            doc["process"]["pid"] = 2**22 + i
        path = root / run_id
        path.mkdir()
        (path / "manifest.json").write_bytes(dump_json(doc))
        (path / ".lock").write_bytes(b"")
        ids.append(run_id)
    return ids


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_cli(root: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bench_size(workdir: Path, n: int, repeat: int, template: dict[str, Any]) -> dict[str, Any]:
    """Populate a root with ``n`` runs and time every case on it, interleaved."""
    from otel_tracker.config import ReaderConfig
    from otel_tracker.history.store import Filters, RunStore

    root = workdir / f"runs-{n}"
    root.mkdir()
    t0 = time.perf_counter()
    ids = populate(root, n, template)
    populate_s = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in root.glob("*/manifest.json"))
    store = RunStore(config=ReaderConfig.resolve(root=root))
    cases: dict[str, Callable[[], Any]] = {
        FLOOR: lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
        "otel-tracker list --limit 20": lambda: run_cli(root, "list", "--limit", "20"),
        "otel-tracker show <id>": lambda: run_cli(root, "show", ids[len(ids) // 2]),
        "otel-tracker show latest": lambda: run_cli(root, "show", "latest"),
        "otel-tracker status latest": lambda: run_cli(root, "status", "latest"),
        "RunStore.list(limit=20), in-process": lambda: store.list(limit=20),
        "RunStore.list(status=failed, limit=20), in-process": lambda: store.list(
            Filters(statuses=frozenset({"failed"})), limit=20
        ),
        "RunStore.list(status=aborted, all), in-process (full scan)": lambda: store.list(
            Filters(statuses=frozenset({"aborted"})), limit=None
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):  # interleaved, so machine noise hits every case alike
        for name, fn in cases.items():
            samples[name].append(timed(fn))
    aborted = len(store.list(Filters(statuses=frozenset({"aborted"})), limit=None))
    return {
        "runs": n,
        "manifest_bytes_total": size,
        "populate_s": round(populate_s, 2),
        "aborted_inferred": aborted,
        "median_s": {name: round(statistics.median(v), 4) for name, v in samples.items()},
        "min_s": {name: round(min(v), 4) for name, v in samples.items()},
    }


FLOOR = "python -c pass (start-up floor)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", default="10,1000,10000", help="comma-separated root sizes (default 10,1000,10000)"
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--output", default="benchmarks/results/store.json")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.runs.split(",")]

    with tempfile.TemporaryDirectory(prefix="otel-tracker-bench-") as tmp:
        template = template_manifest(Path(tmp) / "template")
        by_size = [bench_size(Path(tmp), n, args.repeat, template) for n in sizes]
    results = {
        "repeat": args.repeat,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "sizes": by_size,
    }
    names = list(by_size[0]["median_s"])
    width = max(len(n) for n in names)
    print(f"median of {args.repeat} interleaved repeats, seconds, by runs under the root:")
    print(f"  {'':<{width}}" + "".join(f"{r['runs']:>10,}" for r in by_size))
    for name in names:
        print(f"  {name:<{width}}" + "".join(f"{r['median_s'][name]:>10.4f}" for r in by_size))
    largest = by_size[-1]
    target = largest["median_s"]["otel-tracker list --limit 20"]
    verdict = "met" if target < 0.5 else "MISSED"
    print(f"target list --limit 20 < 0.5 s at {largest['runs']:,} runs: {verdict} ({target:.3f}s)")
    save(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
