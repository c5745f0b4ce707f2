"""Compact telemetry in real runs: a run past its window keeps it raw and rolls the
rest up, its end packs it in a detached process, the packed file agrees with the
manifest's own aggregates, and ``otel-tracker compact`` killed at any moment leaves
the telemetry whole."""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from otel_tracker import track_run
from otel_tracker.contract.telemetry_form import (
    PACKED_NAME,
    ROLLUP_NAME,
    TELEMETRY_NAME,
    is_rollup,
    read_records,
    record_stats,
)
from otel_tracker.history.telemetry_tail import aggregate
from tests.helpers import child_env, only_manifest, otel_cli, run_script, wait_for
from tests.unit.test_telemetry_compaction import assert_agrees, write_live

LONG_RUN = """
import time
import otel_tracker.record.after_run as after_run
from otel_tracker import track_run

after_run.PACK_ABOVE_BYTES = 0  # pack even this short run's telemetry at its end
with track_run("long", steps=["a", "b"], progress="off", sample_interval=0.05,
               telemetry_window=1.0, telemetry_rollup=1.0) as run:
    for name in ("a", "b"):
        with run.step(name):
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                sum(range(20_000))
"""


def test_a_run_past_its_window_is_rolled_up_and_packed_at_its_end(root: Path) -> None:
    done = run_script(LONG_RUN, root, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = only_manifest(root)
    run_dir = root / doc["run_id"]
    wait_for(lambda: (run_dir / PACKED_NAME).exists(), what="the packed telemetry")
    wait_for(lambda: not (run_dir / TELEMETRY_NAME).exists(), what="the live files removed")
    assert not (run_dir / ROLLUP_NAME).exists()
    records = read_records(run_dir)
    rollups = [r for _, r in records if is_rollup(r)]
    assert rollups and len(records) > len(rollups)
    raw_times = [t for t, r in records if not is_rollup(r)]
    assert raw_times[-1] - raw_times[0] <= 1.0 + 1.0 + 0.2  # the window (and its bucket)
    # the packed file against the manifest's own in-memory aggregates of every sample
    for key, truth in doc["telemetry"]["run"].items():
        parts = [s[key] for _, r in records if key in (s := record_stats(r))]
        got = aggregate(parts)
        assert got["count"] == truth["count"], key
        assert got["min"] == truth["min"] and got["max"] == truth["max"], key
        # both are rounded to 6 decimals, and so is each roll-up's mean: 2e-6 apart at most
        assert math.isclose(got["mean"], truth["mean"], rel_tol=1e-5, abs_tol=2.5e-6), key
    shown = otel_cli(root, "show", doc["run_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "completed"


def test_compact_lists_packs_and_skips_live_runs(root: Path, tmp_path: Path) -> None:
    done = run_script(LONG_RUN.replace("PACK_ABOVE_BYTES = 0", "PACK_ABOVE_BYTES = 1e12"), root)
    assert done.returncode == 0, done.stderr
    run_id = only_manifest(root)["run_id"]
    run_dir = root / run_id
    assert (run_dir / TELEMETRY_NAME).exists() and (run_dir / ROLLUP_NAME).exists()
    before = read_records(run_dir)
    listed = otel_cli(root, "compact")
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout and "would pack the telemetry of 1 runs" in listed.stdout
    assert not (run_dir / PACKED_NAME).exists()
    packed = otel_cli(root, "compact", "--yes", "--window", "0", "--json")
    assert packed.returncode == 0, packed.stderr
    report = json.loads(packed.stdout)
    assert [i["run_id"] for i in report["packed"]] == [run_id]
    assert report["after"] < report["before"]
    assert read_records(run_dir) == before  # window 0: gzip only, nothing rolled up
    again = otel_cli(root, "compact", run_id, "--yes")
    assert "no live telemetry" in again.stderr


def test_compact_killed_at_random_moments_leaves_the_telemetry_whole(
    root: Path, tmp_path: Path
) -> None:
    with track_run("long", root=root, progress="off", resources=False) as run:
        pass
    run_dir = root / run.run_id
    raw, _ = write_live(run_dir, hours=24, window=0)  # a day of raw samples to roll up
    rng = random.Random(7)
    kills = 0
    for _ in range(12):
        if (run_dir / PACKED_NAME).exists() and not (run_dir / TELEMETRY_NAME).exists():
            break
        command = [sys.executable, "-m", "otel_tracker.cli", "--root", str(root)]
        child = subprocess.Popen(
            [*command, "compact", run_dir.name, "--yes", "--quiet"],
            env=child_env(root),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # once the packed file is being written, kill it at a random moment after
        wait_for(lambda c=child: c.poll() is not None or any(run_dir.glob(".*.tmp")))
        time.sleep(rng.uniform(0, 0.3))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
        assert_agrees(read_records(run_dir), raw)  # whole after every kill
    assert kills >= 3
    finished = otel_cli(root, "compact", run_dir.name, "--yes")
    assert finished.returncode == 0 or "no live telemetry" in finished.stderr
    assert (run_dir / PACKED_NAME).exists() and not (run_dir / TELEMETRY_NAME).exists()
    assert not list(run_dir.glob(".*.tmp"))
    assert_agrees(read_records(run_dir), raw)
