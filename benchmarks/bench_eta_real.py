"""ETA and rate accuracy on real work (issue 26): not a simulated clock.

    python -m benchmarks.bench_eta_real [--histories 0,1,3,10] [--scale 1.0] [--output FILE]

A pipeline of four steps whose real speed varies runs as a subprocess, again and
again under one root, so run k has k earlier runs of history:

1. ``numpy``: CPU-bound matrix products (declares its total);
2. ``io``: sleeps with ±30% jitter per item (declares its total);
3. ``slows``: items that take twice as long in the second half (declares its total);
4. ``finish``: fixed numpy work, no total.

Each measured run is observed from outside, from its files, as ``otel-tracker
status`` sees them (heartbeat 0.1 s): the run ETA after step 2 (from the manifest's
ETA log) and, in each step with a total, the step's own ETA once 10% of it is done
and its displayed rate 2 s in, against what really happened (the step's end, its
true rate). Two conditions: a quiet machine, and a CPU-bound competitor (one busy
process per core) started half-way through the measured run.
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

PIPELINE = r"""
import random, sys, time
import numpy as np
from otel_tracker import track_run
scale = float(sys.argv[1])
rng = random.Random()
a = np.random.default_rng(0).random((160, 160))
with track_run("eta-real", steps=["numpy", "io", "slows", "finish"], progress="off") as run:
    with run.step("numpy", total=int(60 * scale)) as step:
        for _ in range(int(60 * scale)):
            for _ in range(150):
                a = np.tanh(a @ a.T / 160)
            step.advance()
    with run.step("io", total=int(40 * scale)) as step:
        for _ in range(int(40 * scale)):
            time.sleep(0.05 * rng.uniform(0.7, 1.3))
            step.advance()
    with run.step("slows", total=int(40 * scale)) as step:
        for i in range(int(40 * scale)):
            time.sleep(0.03 if i < int(20 * scale) else 0.06)
            step.advance()
    with run.step("finish"):
        for _ in range(int(40 * scale)):
            a = np.tanh(a @ a.T / 160)
"""

BURNER = "while True: pass"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def observe(root: Path, scale: float, load_halfway: bool) -> dict[str, Any]:
    """Run the pipeline once, watching its manifest; what was shown and what happened."""
    from otel_tracker.config import ReaderConfig
    from otel_tracker.history.progress_view import live_progress
    from otel_tracker.history.store import RunStore
    from otel_tracker.progress.rate import read_rate
    from otel_tracker.timeparse import parse_timestamp

    env = {**os.environ, "OTEL_TRACKER_ROOT": str(root), "OTEL_TRACKER_HEARTBEAT_INTERVAL": "0.1"}
    before = set(root.glob("*")) if root.exists() else set()
    proc = subprocess.Popen([sys.executable, "-c", PIPELINE, str(scale)], env=env)
    burners: list[subprocess.Popen[bytes]] = []
    store = RunStore(config=ReaderConfig(root=root))
    step_etas: dict[str, tuple[float, float]] = {}  # step -> (shown remaining, at)
    rates: dict[str, float] = {}
    run_dir = None
    try:
        while proc.poll() is None:
            time.sleep(0.05)
            if run_dir is None:
                new = [p for p in root.glob("*") if p not in before and p.is_dir()]
                run_dir = new[0] if new else None
                continue
            doc = _read(run_dir / "manifest.json")
            if not doc:
                continue
            if load_halfway and not burners and doc.get("steps_completed", 0) >= 2:
                burners = [
                    subprocess.Popen([sys.executable, "-c", BURNER])
                    for _ in range(os.cpu_count() or 1)
                ]
            try:
                view = store.load(run_dir)
            except Exception:
                continue
            live = live_progress(view)
            step = live.step
            if step is None or not (step.get("progress") or {}).get("total"):
                continue
            name = step["name"]
            p = step["progress"]
            started = parse_timestamp(step.get("started_at"))
            now = view.run_now or time.time()
            if started is None or not p["completed"]:
                continue
            # what status, watch and the web view show (see progress.rate.read_rate)
            rate = read_rate(step, view.doc, now)
            if not rate:
                continue
            if name not in step_etas and p["completed"] >= 0.1 * p["total"]:
                step_etas[name] = ((p["total"] - p["completed"]) / rate, now)
            if name not in rates and now - started >= 2.0:
                rates[name] = rate
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
        proc.wait()
    doc = _read(run_dir / "manifest.json") if run_dir else None
    assert doc and doc["status"] == "completed", doc and doc.get("status")
    ended = {s["name"]: parse_timestamp(s["ended_at"]) for s in doc["steps"]}
    durations = {s["name"]: s["duration_s"] for s in doc["steps"]}
    totals = {s["name"]: (s.get("progress") or {}).get("total") for s in doc["steps"]}
    run_end = parse_timestamp(doc["ended_at"])
    after_step2 = next(e for e in doc["eta"]["log"] if e["event"] == "end" and e["index"] == 1)
    true_left = run_end - parse_timestamp(after_step2["at"])
    result: dict[str, Any] = {
        "history_runs": doc["eta"].get("history_runs"),
        "run_eta_after_step_2": {
            "shown_s": after_step2["eta_s"],
            "lower_bound": after_step2["at_least"],
            "true_s": round(true_left, 3),
            "error": None
            if after_step2["eta_s"] is None
            else round(abs(after_step2["eta_s"] - true_left) / true_left, 4),
        },
        "in_step_eta_at_10pct": {},
        "rate_after_2s": {},
    }
    for name, (shown, at) in step_etas.items():
        true = ended[name] - at
        result["in_step_eta_at_10pct"][name] = round(abs(shown - true) / true, 4) if true else None
    for name, rate in rates.items():
        if name == "slows":
            continue  # no single true rate: it changes half-way by design
        true_rate = totals[name] / durations[name]
        result["rate_after_2s"][name] = round(abs(rate - true_rate) / true_rate, 4)
    return result


def _stats(values: list[float]) -> dict[str, Any]:
    values = sorted(v for v in values if v is not None)
    if not values:
        return {"n": 0}
    p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
    return {"n": len(values), "median": round(statistics.median(values), 4), "p90": round(p90, 4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", default="0,1,3,10")
    parser.add_argument("--scale", type=float, default=1.0, help="work per step (1: ~2 s)")
    parser.add_argument("--conditions", default="quiet,loaded")
    parser.add_argument(
        "--repeat", type=int, default=1, help="sequences in fresh roots (more runs per figure)"
    )
    parser.add_argument("--output", default="benchmarks/results/eta_real.json")
    args = parser.parse_args(argv)
    histories = sorted({int(h) for h in args.histories.split(",")})
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for condition in [c.strip() for c in args.conditions.split(",") if c.strip()]:
            runs = []
            for sequence in range(args.repeat):
                root = Path(tmp) / f"{condition}-{sequence}"
                root.mkdir()
                for k in range(max(histories) + 1):
                    measured = k in histories
                    loaded = measured and condition == "loaded"
                    outcome = observe(root, args.scale, load_halfway=loaded)
                    if measured:
                        runs.append(outcome)
                        print(condition, sequence, k, json.dumps(outcome), flush=True)
            results[condition] = {
                "runs": runs,
                "run_eta_error_after_step_2": {
                    str(r["history_runs"]): r["run_eta_after_step_2"]["error"] for r in runs
                },
                "run_eta_error_with_3_or_more_runs": _stats(
                    [
                        r["run_eta_after_step_2"]["error"]
                        for r in runs
                        if (r["history_runs"] or 0) >= 3
                    ]
                ),
                "in_step_eta_error_without_history": _stats(
                    [
                        v
                        for r in runs
                        if r["history_runs"] == 0
                        for v in r["in_step_eta_at_10pct"].values()
                    ]
                ),
                "in_step_eta_error_all": _stats(
                    [v for r in runs for v in r["in_step_eta_at_10pct"].values()]
                ),
                # "slows" doubles its time per item half-way on purpose: at 10% nothing
                # can know that; the steady steps are what an in-step ETA can get right
                "in_step_eta_error_steady_without_history": _stats(
                    [
                        v
                        for r in runs
                        if r["history_runs"] == 0
                        for k, v in r["in_step_eta_at_10pct"].items()
                        if k != "slows"
                    ]
                ),
                "rate_error_after_2s": _stats(
                    [v for r in runs for v in r["rate_after_2s"].values()]
                ),
            }
    save(results, args.output)
    for condition, summary in results.items():
        print(condition, {k: v for k, v in summary.items() if k != "runs"})


if __name__ == "__main__":
    main()
