"""What hostile run files cost the reading commands, side by side with a normal run.

    python -m benchmarks.bench_hostile [--repeat 3] [--timeout 120] [--scale 1] [--output FILE]

Each case is one run directory cloned from a manifest written by a real tracked run:
a normal one (the comparison), a 50 MB run name, 2,000 and 10,000 steps (shown, the
terminal table bounded), 100,000 steps (refused in one line). Every command runs as a
subprocess (``--timeout`` caps one; a case that hits it is reported as ``>T``),
output to a pipe. ``--scale`` shrinks every size (the test suite runs 0.001).
Prints medians and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._results import save

STEPS = ["load", "train", "evaluate"]
COMMANDS = (["list"], ["show", "RUN"], ["summary", "RUN"], ["status", "RUN"])


def template(workdir: Path) -> dict[str, Any]:
    from otel_tracker import track_run

    with track_run(
        "hostile", root=workdir, steps=STEPS, install_signal_handlers=False, progress="off"
    ) as run:
        for name in STEPS:
            with run.step(name) as step:
                step.set_total(100, unit="items")
                step.advance(100)
    return json.loads(run.manifest_path.read_text())


def cases(doc: dict[str, Any], scale: float) -> dict[str, dict[str, Any]]:
    step = doc["steps"][0]

    def steps(n: int) -> dict[str, Any]:
        n = max(1, round(n * scale))
        return {**doc, "steps": [{**step, "index": i, "name": f"step {i}"} for i in range(n)]}

    return {
        "normal run (comparison)": doc,
        "50 MB run name": {**doc, "name": "n" * round(50_000_000 * scale)},
        "2,000 steps": steps(2_000),
        "10,000 steps": steps(10_000),
        "100,000 steps (refused)": steps(100_000),
    }


def timed(root: Path, args: list[str], timeout: float) -> float | None:
    t0 = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--output", default="benchmarks/results/hostile.json")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float | None]] = {}
    with tempfile.TemporaryDirectory(prefix="otel-tracker-bench-") as tmp:
        doc = template(Path(tmp) / "template")
        for label, case in cases(doc, args.scale).items():
            root = Path(tmp) / f"case-{len(results)}"
            run_dir = root / doc["run_id"]
            run_dir.mkdir(parents=True)
            (run_dir / "manifest.json").write_text(json.dumps(case))
            results[label] = {}
            for command in COMMANDS:
                argv_ = [doc["run_id"] if a == "RUN" else a for a in command]
                samples = [timed(root, argv_, args.timeout) for _ in range(args.repeat)]
                done = [s for s in samples if s is not None]
                median = statistics.median(done) if len(done) == len(samples) else None
                results[label][" ".join(command)] = None if median is None else round(median, 3)
    print(f"median of {args.repeat}, seconds (>{args.timeout:.0f}: hit the timeout):")
    width = max(map(len, results))
    print(f"  {'':<{width}}" + "".join(f"{' '.join(c):>14}" for c in COMMANDS))
    for label, row in results.items():
        cells = "".join(
            f"{'>' + str(int(args.timeout)) if v is None else f'{v:.3f}':>14}" for v in row.values()
        )
        print(f"  {label:<{width}}{cells}")
    info = {"repeat": args.repeat, "timeout_s": args.timeout, "scale": args.scale}
    save({**info, "median_s": results}, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
