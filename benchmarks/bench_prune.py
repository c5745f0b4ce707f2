"""How long ``prune`` takes: the dry run over many runs, and removing 1,000 runs beside
``rm -rf`` of the same 1,000 directories.

    python -m benchmarks.bench_prune [--runs 10000] [--remove 1000] [--repeat 5] [--output FILE]

The runs are bench_store's (a real manifest cloned, ~1 in 10 failed, a few left
``running`` by dead processes). The dry run is timed as a user runs it (a
subprocess), interleaved with ``python -c pass`` (the floor of any command) and
``list --limit 20``. Removal is timed on two identical roots of ``--remove`` runs
each: ``prune --keep-last 0 --yes`` on one (all but the newest completed run go)
and ``rm -rf`` of the same directories on the other, alternately, ``--repeat``
times with fresh roots. Target (issue 28): the dry run under 2 s at 10,000 runs;
removal bounded by the filesystem (``rm -rf``'s time).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._results import save
from benchmarks.bench_store import populate, template_manifest


def _cli(root: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _python_pass() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--remove", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default="benchmarks/results/prune.json")
    args = parser.parse_args(argv)
    results: dict[str, object] = {"runs": args.runs, "remove": args.remove}
    with tempfile.TemporaryDirectory() as work:
        workdir = Path(work)
        template = template_manifest(workdir / "template")
        root = workdir / "root"
        root.mkdir()
        populate(root, args.runs, template)
        times: dict[str, list[float]] = {"python -c pass": [], "list --limit 20": [], "prune": []}
        for _ in range(args.repeat):
            times["python -c pass"].append(_python_pass())
            times["list --limit 20"].append(_cli(root, "list", "--limit", "20"))
            times["prune"].append(_cli(root, "prune"))
        results["dry_run_median_s"] = {k: statistics.median(v) for k, v in times.items()}
        removal: dict[str, list[float]] = {"prune --keep-last 0 --yes": [], "rm -rf": []}
        for _ in range(args.repeat):
            for way in removal:
                target = workdir / "remove"
                target.mkdir()
                populate(target, args.remove, template)
                if way == "rm -rf":
                    dirs = [str(p) for p in target.iterdir()]
                    started = time.perf_counter()
                    subprocess.run(["rm", "-rf", *dirs], check=True)
                    removal[way].append(time.perf_counter() - started)
                else:
                    removal[way].append(_cli(target, "prune", "--keep-last", "0", "--yes"))
                shutil.rmtree(target)
        results["removal_median_s"] = {k: statistics.median(v) for k, v in removal.items()}
    for label, value in {**results["dry_run_median_s"], **results["removal_median_s"]}.items():  # type: ignore[dict-item]
        print(f"{label:28s} {value:6.2f} s")
    save(results, args.output)


if __name__ == "__main__":
    main()
