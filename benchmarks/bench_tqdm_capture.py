"""What capturing tqdm bars as steps costs a loop: ``bar.update()`` and iteration, with
the capture and without, side by side in one tracked run.

    python -m benchmarks.bench_tqdm_capture [--updates 100000] [--rounds 41] [--output FILE]

The capture wraps only ``tqdm.__init__`` and ``close``; a captured bar's step reads
``bar.n`` when the run samples. So the per-update cost should not move: each round
times a chunk of the same loop twice, back to back in alternating order, once on a
plain bar (made with the capture released) and once on a captured one (its step
open), and the figure is the median of the per-round ratios (the machine's noise
moves both halves of a short round alike). Both
halves run inside the same tracked run with its default sampling, as a user's loop
would. The cost per bar (made and closed: a step started and ended, each a manifest
write) is reported too.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from typing import Any

from benchmarks._results import save


def _bar(tqdm: Any, capture: Any, captured: bool, iterable: Any = None, total: int = 0) -> Any:
    """A bar made with the capture on (its step opens) or off (a plain bar)."""
    if captured:
        capture.capture()
    else:
        capture.release()
    return tqdm(
        iterable, total=total or None, file=io.StringIO(), desc="captured" if captured else "plain"
    )


def _time_updates(bar: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        bar.update()
    return time.perf_counter() - started


def _time_iteration(bar: Any) -> float:
    started = time.perf_counter()
    for _ in bar:
        pass
    return time.perf_counter() - started


def _bars(tqdm: Any, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        for _ in tqdm(range(1), file=io.StringIO(), desc=f"bar {i}"):
            pass
    return (time.perf_counter() - started) / n


def measure(updates: int, rounds: int, bars: int) -> dict[str, Any]:
    """Each round times a chunk on a plain bar and a chunk on a captured one, back to
    back in alternating order (bars made outside the timing)."""
    from tqdm import tqdm

    from otel_tracker import track_run
    from otel_tracker.integrations import tqdm as capture

    names = ("bar.update()", "for _ in tqdm(range(n))")
    ratios: dict[str, list[float]] = {name: [] for name in names}
    per_call: dict[str, dict[str, list[float]]] = {
        name: {"plain": [], "captured": []} for name in names
    }
    with (
        tempfile.TemporaryDirectory() as root,
        track_run("bench-tqdm", root=root, progress="off", summary_files=False),
    ):
        # two long-lived bars, one of them a step: update() on each in turn
        plain = _bar(tqdm, capture, False, total=updates * rounds)
        captured = _bar(tqdm, capture, True, total=updates * rounds)
        for round_ in range(rounds):
            times = {}
            for mode in ("plain", "captured") if round_ % 2 else ("captured", "plain"):
                times[mode] = _time_updates(plain if mode == "plain" else captured, updates)
                per_call[names[0]][mode].append(times[mode] / updates)
            ratios[names[0]].append(times["captured"] / times["plain"])
            # iteration: a fresh pair of bars each round, made before the clock starts
            loops = {
                "plain": _bar(tqdm, capture, False, range(updates)),
                "captured": _bar(tqdm, capture, True, range(updates)),
            }
            for mode in ("plain", "captured") if round_ % 2 else ("captured", "plain"):
                times[mode] = _time_iteration(loops[mode])
                per_call[names[1]][mode].append(times[mode] / updates)
            ratios[names[1]].append(times["captured"] / times["plain"])
        plain.close()
        captured.close()
        capture.capture()
        captured_bar = _bars(tqdm, bars)
        capture.release()
        plain_bar = _bars(tqdm, bars)
    return {
        "python": sys.version.split()[0],
        "updates_per_round": updates,
        "rounds": rounds,
        "ns_per_call": {
            name: {mode: statistics.median(v) * 1e9 for mode, v in modes.items()}
            for name, modes in per_call.items()
        },
        "captured_vs_plain_median_ratio": {n: statistics.median(r) for n, r in ratios.items()},
        "ratio_range": {n: [min(r), max(r)] for n, r in ratios.items()},
        "us_per_bar": {"plain": plain_bar * 1e6, "captured (a step each)": captured_bar * 1e6},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=100_000, help="per chunk")
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--bars", type=int, default=200)
    parser.add_argument("--output", default="benchmarks/results/tqdm_capture.json")
    args = parser.parse_args(argv)
    results = measure(args.updates, args.rounds, args.bars)
    for name, ratio in results["captured_vs_plain_median_ratio"].items():
        calls = results["ns_per_call"][name]
        low, high = results["ratio_range"][name]
        print(
            f"{name:28s} plain {calls['plain']:7.1f} ns  captured {calls['captured']:7.1f} ns  "
            f"captured/plain median {ratio:.3f} (rounds {low:.3f}..{high:.3f})"
        )
    bars = results["us_per_bar"]
    print(
        f"per bar made and closed: plain {bars['plain']:.0f} µs, "
        f"captured {bars['captured (a step each)']:.0f} µs"
    )
    save(results, args.output)


if __name__ == "__main__":
    main()
