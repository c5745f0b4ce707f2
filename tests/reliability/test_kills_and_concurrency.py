"""Whatever happens to a run, its record survives and tells the truth.

OTEL_TRACKER_TEST_KILLS sets how many random SIGKILLs the kill test makes
(default 100) and OTEL_TRACKER_TEST_SIGNALS how many random SIGTERMs and SIGINTs
the signal test sends (default 24); raise them locally for a longer soak.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from otel_tracker.config import ReaderConfig
from otel_tracker.history.store import RunStore
from tests.helpers import child_env, load_manifest, read_telemetry, validate_manifest

KILLS = int(os.environ.get("OTEL_TRACKER_TEST_KILLS", "100"))
SIGNALS = int(os.environ.get("OTEL_TRACKER_TEST_SIGNALS", "24"))

# Writes the manifest all the time (a 1 ms heartbeat plus a step transition every few
# ms) and appends to telemetry.jsonl every 5 ms.
BUSY_WRITER = """
import sys, time
import otel_tracker.config; otel_tracker.config.MIN_INTERVAL_S.clear()  # stress: no floor
from otel_tracker import track_run
with track_run("busy", steps=[f"s{i}" for i in range(5)], heartbeat_interval=0.001,
               sample_interval=0.005, progress="off") as run:
    telemetry = run.dir / "telemetry.jsonl"
    while not (telemetry.exists() and telemetry.stat().st_size):
        time.sleep(0.001)  # the helper process's first sample comes about 0.1 s after start
    print("ready", flush=True)
    i = 0
    while True:
        with run.step(f"s{i % 5}" if i < 5 else f"extra-{i}") as step:
            step.set_total(50)
            for _ in range(50):
                step.advance()
            time.sleep(0.002)
        i += 1
"""


def _ready_then_wait(
    script: str, runs_root: Path, seed: int, max_delay: float, stderr: int
) -> subprocess.Popen[str]:
    """Start ``script``, wait for its "ready", then a random moment (by ``seed``)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env=child_env(runs_root),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(random.Random(seed).uniform(0.0, max_delay))
    return proc


def _kill_one(root: Path, seed: int) -> None:
    proc = _ready_then_wait(BUSY_WRITER, root / f"k{seed}", seed, 0.15, subprocess.DEVNULL)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_torn_manifest(root: Path) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda seed: _kill_one(root, seed), range(KILLS)))
    temp_files = torn_lines = 0
    for sub in sorted(root.iterdir()):
        (run_dir,) = [p for p in sub.iterdir() if p.is_dir()]
        temp_files += sum(1 for p in run_dir.iterdir() if p.name.endswith(".tmp"))
        doc = load_manifest(run_dir / "manifest.json")  # parses and validates: never torn
        assert doc["status"] == "running"  # the last complete version written
        store = RunStore(config=ReaderConfig.resolve(root=sub, environ={}))
        (view,) = store.list(limit=None)  # temp files are never runs
        assert store.problems == []
        assert view.status == "aborted"
        assert view.doc["steps_completed"] >= 0
        samples, skipped = read_telemetry(run_dir / "telemetry.jsonl")
        assert samples and skipped <= 1  # only a line the kill tore, and only the last
        torn_lines += skipped
    print(
        f"{KILLS} kills, {temp_files} interrupted temp files left behind (never read), "
        f"{torn_lines} torn telemetry lines skipped"
    )


# Every tracker call that takes a lock or changes the run, as fast as it goes, while
# the sampler thread samples and beats every 5 ms: a signal handler running Python
# code between any two bytecodes lands in the middle of one of them.
SIGNAL_CHURN = """
import otel_tracker.config; otel_tracker.config.MIN_INTERVAL_S.clear()  # stress: no floor
from otel_tracker import track_run
with track_run("churn", heartbeat_interval=0.005, sample_interval=0.005, progress="off") as run:
    print("ready", flush=True)
    i = 0
    while True:
        with run.step(f"s{i % 20}") as step:
            step.advance(3)
            step.add_artifact(__name__)
            run.set_gauge("i", i)
            run.add_count("steps")
            run.resource_history("process.memory.usage", 1.0)
        if i % 7 == 0:
            run.log_scores({"i": i})
            run.skip(f"skipped-{i % 3}")
        i += 1
"""


def _signal_one(root: Path, seed: int) -> tuple[int, str, float, str]:
    sig = (signal.SIGTERM, signal.SIGINT)[seed % 2]
    proc = _ready_then_wait(SIGNAL_CHURN, root / f"s{seed}", seed, 0.3, subprocess.PIPE)
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return sig, "hung", 15.0, err
    return sig, str(proc.returncode), time.monotonic() - sent, err


@pytest.mark.slow
def test_sigterm_and_sigint_at_random_moments_leave_a_truthful_final_manifest(
    root: Path,
) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda seed: _signal_one(root, seed), range(SIGNALS)))
    slowest = 0.0
    for seed, (sig, returncode, took, err) in enumerate(outcomes):
        name = signal.Signals(sig).name
        assert returncode == str(-sig), f"{name} #{seed}: exit {returncode}\n{err[-2000:]}"
        # SIGINT is Python's KeyboardInterrupt: one uncaught exception, that one. When it
        # lands while an exception is being handled (pathlib computes attributes that
        # way), Python prints that one too, as its context: not a second error.
        expected = 1 if sig == signal.SIGINT else 0
        uncaught = err.count("Traceback") - err.count("During handling of the above exception")
        assert uncaught == expected, err[-2000:]
        assert not expected or err.rstrip().endswith("KeyboardInterrupt"), err[-2000:]
        # no warning either (a traceback's paths may name a checkout called otel-tracker)
        assert not [line for line in err.splitlines() if line.startswith("otel-tracker")], err
        (run_dir,) = [p for p in (root / f"s{seed}").iterdir() if p.is_dir()]
        doc = load_manifest(run_dir / "manifest.json")
        assert (doc["status"], doc["signal"], doc["exit_code"]) == ("cancelled", name, 128 + sig)
        assert "running" not in [s["status"] for s in doc["steps"]], doc["steps"]
        assert doc["steps_completed"] >= 0
        slowest = max(slowest, took)
    # a hang fails above ("hung" after 15 s); how fast the exit is, is benchmarked, not
    # asserted (issue 22 item 6: wall-clock windows fail on a busy machine)
    print(f"{SIGNALS} signals, slowest exit {slowest:.2f}s after the signal")


PAIRS = (
    (signal.SIGTERM, signal.SIGINT),
    (signal.SIGINT, signal.SIGTERM),
    (signal.SIGHUP, signal.SIGTERM),
    (signal.SIGINT, signal.SIGHUP),
)


def _two_signals(root: Path, seed: int) -> tuple[str, int, int | None, str | None, str]:
    first, second = PAIRS[seed % len(PAIRS)]
    proc = _ready_then_wait(SIGNAL_CHURN, root / f"p{seed}", seed, 0.3, subprocess.PIPE)
    proc.send_signal(first)
    time.sleep(random.Random(seed).uniform(0.0, 0.02))
    try:
        proc.send_signal(second)
    except ProcessLookupError:
        pass
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    (run_dir,) = [p for p in (root / f"p{seed}").iterdir() if p.is_dir()]
    doc = load_manifest(run_dir / "manifest.json")
    code = proc.returncode
    pair = f"{first.name} then {second.name}"
    return pair, 128 - code if code < 0 else code, doc["exit_code"], doc["signal"], err


def test_two_signals_in_quick_succession_record_the_one_that_ended_the_process(
    root: Path,
) -> None:
    # the second lands while the first is being handled, or while the run ends
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda seed: _two_signals(root, seed), range(SIGNALS // 2)))
    for pair, real, recorded, name, err in outcomes:
        assert recorded == real, f"{pair}: exit {real}, recorded {recorded} ({name})\n{err}"
        assert name == signal.Signals(real - 128).name, pair


CONCURRENT = """
from otel_tracker import track_run
with track_run("crowd", steps=["a", "b", "c"], progress="off") as run:
    for name in ("a", "b", "c"):
        with run.step(name) as s:
            s.advance()
"""


@pytest.mark.slow
def test_fifty_runs_at_once_while_list_reads(root: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT],
            env=child_env(root),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(50)
    ]
    listings = 0
    seen_partial = []
    while any(p.poll() is None for p in procs):
        store = RunStore(config=ReaderConfig.resolve(root=root, environ={}))
        views = store.list(limit=None)
        seen_partial += store.problems
        for view in views:
            validate_manifest(view.doc)
        listings += 1
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert seen_partial == []  # list never saw partial JSON or any other bad file
    assert listings > 1
    store = RunStore(config=ReaderConfig.resolve(root=root, environ={}))
    views = store.list(limit=None)
    assert len(views) == 50 and len({v.run_id for v in views}) == 50
    assert all(v.status == "completed" and v.doc["steps_completed"] == 3 for v in views)


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a/b\\c", "nul\x00byte", "x" * 5000, "Ünïcødé 🚀 run", "..", "-", " "],
)
def test_hostile_names_are_data_never_paths(tmp_path: Path, name: str) -> None:
    from otel_tracker import track_run

    root = tmp_path / "root"
    before = sorted(p.name for p in tmp_path.iterdir())
    if not name.strip():
        with pytest.raises(ValueError):
            track_run(name, root=root)
        return
    with track_run(
        name, root=root, scenario=name, steps=[name], progress="off", install_signal_handlers=False
    ) as run:
        with run.step(name):
            pass
        run.skip(name + "/../x", reason=name)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "root"])
    (run_dir,) = list(root.iterdir())
    assert run_dir.parent == root and run_dir.name == run.run_id
    doc = load_manifest(run_dir / "manifest.json")
    assert doc["name"] == name and doc["scenario"] == name and doc["steps"][0]["name"] == name
    assert json.loads(json.dumps(doc))["name"] == name
    views = RunStore(config=ReaderConfig.resolve(root=root, environ={})).list(limit=None)
    assert [v.doc["name"] for v in views] == [name]
