"""The sampling helper writes the run's heartbeats: real helper process, real files.

The claim under test (otel_tracker/contract/heartbeat.py): a heartbeat never lands over a
newer state, however its write interleaves with the run's own transitions.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from otel_tracker import config, track_run
from otel_tracker.contract.heartbeat import generation_path
from otel_tracker.sampling.points import Unavailable
from otel_tracker.sampling.sidecar import SubprocessSampler
from tests.helpers import only_manifest, wait_for


def _progress(doc: dict[str, Any]) -> tuple[int, int]:
    """How far a manifest says the run got: steps ended, then steps started."""
    steps = doc["steps"]
    ended = sum(1 for s in steps if s["status"] in ("completed", "failed", "skipped"))
    started = sum(1 for s in steps if s["status"] != "pending")
    return ended, started


def test_helper_heartbeats_never_set_the_manifest_back(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "MIN_INTERVAL_S", {})  # a stress test: heartbeats at 2 ms
    seen: list[tuple[int, int]] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader(path: Path) -> None:
        while not stop.is_set():
            try:
                seen.append(_progress(json.loads(path.read_text())))
            except FileNotFoundError:
                pass
            except ValueError as exc:  # a torn manifest
                errors.append(repr(exc))

    steps = [f"s{i}" for i in range(150)]
    local_beats = 0
    with track_run(
        "heartbeat-order",
        root=root,
        steps=steps,
        sample_interval=1000,  # heartbeats alone, sent as fast as the sampler thread can
        heartbeat_interval=0.002,
        progress="off",
        summary_files=False,
    ) as run:
        assert run.manifest_path is not None
        write = run.manifest_processor.write

        def counting(*args: Any, **kwargs: Any) -> bool:
            nonlocal local_beats
            local_beats += kwargs.get("durable") is False
            return write(*args, **kwargs)

        run.manifest_processor.write = counting  # type: ignore[method-assign]
        watcher = threading.Thread(target=reader, args=(run.manifest_path,), daemon=True)
        watcher.start()
        gen_file = generation_path(run.manifest_path)
        assert gen_file.exists()
        beats_before = json.loads(run.manifest_path.read_text())["heartbeat_at"]
        # no transition meanwhile: only the helper writes (waited for, not timed)
        wait_for(
            lambda: json.loads(run.manifest_path.read_text())["heartbeat_at"] != beats_before,
            what="a heartbeat written by the helper",
        )
        for name in steps:
            with run.step(name) as step:
                step.advance()
                time.sleep(0.001)
    stop.set()
    watcher.join(timeout=5)
    assert run.telemetry.sampler is not None
    assert local_beats == 0  # every heartbeat went through the helper
    assert not errors
    assert len(seen) > 100
    going_back = [(a, b) for a, b in itertools.pairwise(seen) if b < a]
    assert not going_back, going_back[:5]
    time.sleep(0.1)  # the helper is gone: nothing lands after the final write
    doc = only_manifest(root)
    assert doc["status"] == "completed" and _progress(doc) == (150, 150)
    assert not gen_file.exists()
    assert not list(gen_file.parent.glob(".*tmp"))


# the real helper, made slow to write heartbeats: each lands well after the next transition
SLOW_HELPER = """
import time
from otel_tracker.contract import heartbeat
write = heartbeat.HeartbeatCommitter.write
def slow(self, *args):
    time.sleep(0.03)
    return write(self, *args)
heartbeat.HeartbeatCommitter.write = slow
from otel_tracker.sampling.sidecar import main
raise SystemExit(main())
"""


def test_a_late_heartbeat_is_dropped_not_written_over_a_transition(tmp_path: Path) -> None:
    from otel_tracker.contract.manifest_writer import ManifestFileWriter

    writer = ManifestFileWriter(tmp_path / "manifest.json")
    assert writer.write({"state": 0}) and writer.share() is not None
    sampler = SubprocessSampler(command=[sys.executable, "-c", SLOW_HELPER])
    sampler.start()
    sampler.sample(time.monotonic(), Unavailable())  # the helper is up
    seen: list[int] = []
    for state in range(12):
        payload = writer.heartbeat_payload({"state": state, "beat": True})
        assert payload is not None
        assert sampler.heartbeat(writer.path, payload, send_now=True, on_error=writer.report)
        if state % 2 == 0:
            assert writer.write({"state": state + 1})  # overtakes the heartbeat in flight
        # the helper handles requests in order: once a sample is answered, the
        # heartbeat sent before it was written or dropped (an event, not a wait)
        sampler.sample(time.monotonic(), Unavailable())
        seen.append(json.loads(writer.path.read_text())["state"])
    sampler.close()
    # after an odd state's heartbeat nothing changed: it landed; after an even one the
    # transition to state + 1 did, and the heartbeat of the older state was dropped
    assert seen == [s + 1 if s % 2 == 0 else s for s in range(12)], seen
    doc = json.loads(writer.path.read_text())
    assert doc == {"state": 11, "beat": True}


def test_heartbeat_errors_in_the_helper_are_the_writers_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from otel_tracker.contract.manifest_writer import ManifestFileWriter

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    writer = ManifestFileWriter(run_dir / "manifest.json")
    assert writer.write({"a": 1}) and writer.share() is not None
    sampler = SubprocessSampler()
    sampler.start()

    def beat() -> None:
        payload = writer.heartbeat_payload({"a": 1, "beat": True})
        assert payload is not None
        assert sampler.heartbeat(writer.path, payload, send_now=False, on_error=writer.report)
        sampler.sample(time.monotonic(), Unavailable())

    try:
        beat()
        assert json.loads(writer.path.read_text()) == {"a": 1, "beat": True}
        run_dir.rename(tmp_path / "moved")  # where the helper writes is gone (root or not)
        with caplog.at_level(logging.WARNING, logger="otel_tracker"):
            for _ in range(3):
                beat()
    finally:
        sampler.close()
    assert sampler.mode == "subprocess"
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "could not write" in warned[0], warned
    assert writer.failures == 3


def test_a_helper_that_stops_reading_cannot_block_the_sampler_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Heartbeats alone get no reply: with a stuck helper the pipe fills, and then
    the write gives up after the reply timeout and sampling falls back."""
    stuck = [sys.executable, "-c", "import time; time.sleep(60)"]
    sampler = SubprocessSampler(command=stuck, reply_timeout=0.3)
    sampler.start()
    big = (0, b"x" * (1 << 20))  # more than a pipe holds
    with caplog.at_level(logging.WARNING, logger="otel_tracker"):
        sent = sampler.heartbeat(Path("/nonexistent/m.json"), big, send_now=True, on_error=print)
    assert sent is False
    # it gave up after its own timeout (the reason names it), not after a longer one
    assert sampler.mode == "thread"
    assert "took no request for 0.3s" in (sampler.fallback_reason or ""), sampler.fallback_reason
    assert sum("sampling in this process instead" in r.message for r in caplog.records) == 1
    sampler.close()


def test_a_run_without_a_helper_keeps_its_heartbeat_in_process(root: Path) -> None:
    code = """
import json, threading, time
from otel_tracker import track_run
with track_run("no-helper", sample_in_subprocess=False, heartbeat_interval=0.05,
               sample_interval=1000, progress="off") as run:
    first = json.loads(run.manifest_path.read_text())["heartbeat_at"]
    deadline = time.monotonic() + 30  # a condition waited for, not a time window
    while json.loads(run.manifest_path.read_text())["heartbeat_at"] == first:
        assert time.monotonic() < deadline, "no heartbeat in 30 s"
        time.sleep(0.01)
    names = sorted(t.name for t in threading.enumerate())
    assert not any(n.startswith("otel-tracker-heartbeat") for n in names), names
    assert not list(run.dir.glob(".*.gen"))
print("OK")
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "OTEL_TRACKER_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stderr
