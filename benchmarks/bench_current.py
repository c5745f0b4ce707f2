"""What finding the current step costs, on a thread and in asyncio tasks, and what
the step's context variable costs a numpy-bound loop.

    python -m benchmarks.bench_current [--repeat 15] [--rollouts 200] [--output FILE]
    python -m benchmarks.bench_current --callgrind [--output FILE]

1. Per call (``timeit``, interleaved, medians, net of a bare loop):
   ``step.advance()``, ``current_step()`` and ``current_step().advance()``, in a
   step entered on a plain thread and in one entered in an asyncio task; and what
   a ``@step`` generator adds per item to a plain one.
2. The demo's cart-pole rollout loop (small numpy matrix products; numpy 2 looks
   up a context variable on every ufunc call, which walks the context when any
   variable is set) four ways: untracked, in a tracked step, and the same two
   inside an asyncio task; each tracked figure relative to its untracked twin.

Timings on a shared machine move by more than the effects measured here, so
``--callgrind`` counts instructions instead (valgrind's callgrind, deterministic):
each case runs in a child process with n and 3n units of work, and the difference
is divided by 2n, which cancels the interpreter's start and the imports. The totals
still move by a few % between configurations and checkouts (the heap's layout
changes dict probes and allocator paths), so the instructions spent in context
variable lookups (``PyContextVar_Get`` and the HAMT walk it calls) are reported
on their own: that is the cost in question. Needs valgrind; about 15 minutes.

Only the public API is used, so the same file measures an older checkout for a
before/after (copy it there and run it from that checkout's root).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._results import save

LOOPS = (
    "untracked",
    "tracked step",
    "untracked, in an asyncio task",
    "tracked step, in an asyncio task",
)
CALLS = ("step.advance()", "current_step()", "current_step().advance()")
PLACES = ("thread step", "task step")
# no sampling, printing or heartbeat: the only work of ours is finding the current step
QUIET: dict[str, Any] = {"resources": False, "progress": "off", "heartbeat_interval": 86400.0}
CALLED = CALLS[:2]
GENERATORS = (
    "plain generator",
    "@step generator",
)  # under callgrind: each case is two runs of about 40 s


def _cart_pole() -> Callable[[int], None]:
    import numpy as np

    from otel_tracker.examples.imitation import CartPole

    env = CartPole(np, np.random.default_rng(1))
    gain = np.array([[-1.0, -2.0, 30.0, 5.0]])

    def work(rollouts: int) -> None:
        for _ in range(rollouts):
            env.rollout(gain, 200)

    return work


def _in_place(root: str, loop: str, body: Callable[[], Any]) -> Any:
    """``body()`` as configuration ``loop`` runs it (see :data:`LOOPS`)."""
    from otel_tracker import track_run

    def tracked() -> Any:
        with track_run("bench", root=root, **QUIET) as r, r.step("loop"):
            return body()

    run = tracked if loop.startswith("tracked") else body
    if "task" not in loop:
        return run()

    async def task() -> Any:
        return run()

    return asyncio.run(task())


def _call_statements(step: Any, current_step: Callable[[], Any]) -> dict[str, tuple[str, Any]]:
    return {
        "step.advance()": ("advance()", {"advance": step.advance}),
        "current_step()": ("current_step()", {"current_step": current_step}),
        "current_step().advance()": ("current_step().advance()", {"current_step": current_step}),
    }


def _in_step(root: str, place: str, body: Callable[[Any], Any]) -> Any:
    """``body(step)`` inside a tracked step entered on this thread or in a task."""
    from otel_tracker import track_run

    def run() -> Any:
        with track_run("bench", root=root, **QUIET) as r, r.step("s") as s:
            return body(s)

    if place == "thread step":
        return run()

    async def task() -> Any:
        return run()

    return asyncio.run(task())


def bench_calls(root: str, repeat: int, number: int) -> dict[str, dict[str, float]]:
    """ns per call, net of a bare loop, in a thread's step and in a task's step."""
    from otel_tracker import current_step

    def measure(step: Any) -> dict[str, float]:
        cases = {"bare loop": ("pass", {}), **_call_statements(step, current_step)}
        samples: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(repeat):
            for name, (stmt, glb) in cases.items():
                samples[name].append(timeit.timeit(stmt, globals=glb, number=number) / number)
        bare = statistics.median(samples.pop("bare loop"))
        return {k: round((statistics.median(v) - bare) * 1e9, 1) for k, v in samples.items()}

    return {place: _in_step(root, place, measure) for place in PLACES}


def bench_generator_items(root: str, repeat: int, items: int = 200_000) -> dict[str, float]:
    """ns per item a ``@step`` generator adds to a plain one (its step made current
    while its code runs, per resumption), in a tracked run."""
    from otel_tracker import step, track_run

    stepped = step("items")(_numbers)
    samples: dict[str, list[float]] = {"plain": [], "@step": []}
    with track_run("bench", root=root, **QUIET):
        for _ in range(repeat):
            for name, gen in (("plain", _numbers), ("@step", stepped)):
                start = time.perf_counter()
                for _ in gen(items):
                    pass
                samples[name].append((time.perf_counter() - start) / items)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "plain generator, ns per item": round(medians["plain"] * 1e9, 1),
        "@step generator adds, ns per item": round((medians["@step"] - medians["plain"]) * 1e9, 1),
    }


def bench_numpy_loop(root: str, repeat: int, rollouts: int) -> dict[str, Any]:
    """CPU seconds of ``rollouts`` cart-pole rollouts in each configuration."""
    work = _cart_pole()

    def timed() -> float:
        start = time.thread_time()  # shared-machine load adds less to CPU than to wall time
        work(rollouts)
        return time.thread_time() - start

    timed()  # warm up
    times: dict[str, list[float]] = {k: [] for k in LOOPS}
    for _ in range(repeat):
        for loop in LOOPS:
            times[loop].append(_in_place(root, loop, timed))
    fastest = {k: min(v) for k, v in times.items()}  # the least disturbed
    return {
        "cpu_s_fastest": {k: round(v, 4) for k, v in fastest.items()},
        "cpu_s_median": {k: round(statistics.median(v), 4) for k, v in times.items()},
        **_ratios(fastest),
    }


def _ratios(figures: dict[str, float]) -> dict[str, float]:
    return {
        "tracked / untracked": round(figures[LOOPS[1]] / figures[LOOPS[0]], 4),
        "tracked / untracked, in a task": round(figures[LOOPS[3]] / figures[LOOPS[2]], 4),
    }


# -- instruction counts --------------------------------------------------------------------
def _numbers(n: int) -> Any:
    yield from range(n)


def child(case: str, n: int) -> None:
    """One case's work, ``n`` units, in this process (what callgrind counts)."""
    root = tempfile.mkdtemp(prefix="otel-tracker-current-")
    kind, _, which = case.partition(":")
    # a collection of everything the imports left would land in n or 3n at random
    gc.collect()
    gc.disable()
    if kind == "loop":
        work = _cart_pole()
        work(2)  # warm up (first-call caches) outside the difference
        _in_place(root, which, lambda: work(n))
        return
    from otel_tracker import current_step, step

    if kind == "items":  # a generator in a tracked run, as is or as a @step
        generator = _numbers if which == "plain generator" else step("items")(_numbers)
        _in_step(root, "thread step", lambda _: sum(generator(n)))
        return
    place, _, call = which.partition("|")

    def body(step: Any) -> None:
        stmt, glb = _call_statements(step, current_step)[call]
        timeit.timeit(stmt, globals=glb, number=n)

    _in_step(root, place, body)


def _instructions(case: str, n: int, out: Path) -> tuple[int, int]:
    """Instructions of the whole child, and of its context variable lookups."""
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.bench_current",
            "--child",
            case,
            str(n),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    assert match, f"no instruction total in {out}"
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # PyContextVar_Get with what it calls (the HAMT walk), inlined parts included
    lookups = sum(
        int(m.group(1).replace(",", ""))
        for m in re.finditer(r"^\s*([\d,]+) .*:PyContextVar_Get\b", annotated, re.MULTILINE)
    )
    return int(match.group(1)), lookups


def bench_callgrind(rollouts: int = 30, calls: int = 20_000) -> dict[str, Any]:
    """Instructions per rollout and per call: (count(3n) - count(n)) / 2n."""
    cases = {f"loop:{loop}": rollouts for loop in LOOPS}
    cases.update({f"call:{p}|{c}": calls for p in PLACES for c in CALLED})
    cases.update({f"items:{g}": calls for g in GENERATORS})
    per_unit: dict[str, float] = {}
    lookups: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="otel-tracker-callgrind-") as tmp:
        for case, n in cases.items():
            low = _instructions(case, n, Path(tmp) / "low.out")
            high = _instructions(case, 3 * n, Path(tmp) / "high.out")
            per_unit[case] = (high[0] - low[0]) / (2 * n)
            lookups[case] = (high[1] - low[1]) / (2 * n)
            print(
                f"  {case}: {per_unit[case]:,.0f} instructions per unit, "
                f"{lookups[case]:,.0f} in context variable lookups",
                flush=True,
            )
    loops = {loop: per_unit[f"loop:{loop}"] for loop in LOOPS}
    return {
        "instructions_per_rollout": {k: round(v) for k, v in loops.items()},
        # exact, unlike the totals: those move by a few % with the heap's layout
        "context_variable_lookups_per_rollout": {
            loop: round(lookups[f"loop:{loop}"]) for loop in LOOPS
        },
        **_ratios(loops),
        "instructions_per_call": {
            p: {c: round(per_unit[f"call:{p}|{c}"], 1) for c in CALLED} for p in PLACES
        },
        "instructions_per_item": {g: round(per_unit[f"items:{g}"], 1) for g in GENERATORS},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=1_000_000, help="calls per timing")
    parser.add_argument("--rollouts", type=int, default=200, help="work per loop (~0.4 ms each)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--output", default="benchmarks/results/current.json")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    if args.callgrind:
        results = bench_callgrind()
        for name in ("tracked / untracked", "tracked / untracked, in a task"):
            print(f"  {name}: {results[name]}")
        save({"callgrind": results}, args.output)
        return 0
    with tempfile.TemporaryDirectory(prefix="otel-tracker-current-") as root:
        calls = bench_calls(root, args.repeat, args.number)
        calls["generator step"] = bench_generator_items(root, args.repeat)
        loop = bench_numpy_loop(root, args.repeat, args.rollouts)
    print("ns per call, net of a bare loop:")
    for where, figures in calls.items():
        print(f"  {where}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    print("cart-pole rollouts, CPU s (fastest of the repeats, median):")
    for name, seconds in loop["cpu_s_fastest"].items():
        print(f"  {name}: {seconds} ({loop['cpu_s_median'][name]})")
    for name in ("tracked / untracked", "tracked / untracked, in a task"):
        print(f"  {name}: {loop[name]}")
    save({"calls": calls, "numpy_loop": loop}, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
