"""The resource-sampling helper process: real subprocesses, real signals, real fallbacks."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from otel_tracker.sampling.points import Unavailable
from otel_tracker.sampling.sidecar import SubprocessSampler
from tests.conftest import only_manifest, read_when, start_script, wait_for


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # exited, not yet reaped
    except psutil.NoSuchProcess:
        return True


def _values(points: list[Any]) -> dict[str, float]:
    return {p.key: p.value for p in points}


def test_helper_samples_this_process_tree_but_not_itself() -> None:
    sampler = SubprocessSampler()
    sampler.start()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        unavailable = Unavailable()
        first = _values(sampler.sample(time.monotonic(), unavailable))
        time.sleep(0.2)
        second = _values(sampler.sample(time.monotonic(), unavailable))
        details = sampler.details()
    finally:
        child.kill()
        child.wait()
        sampler.close()
    # this process and the sleeping child; the helper (also our child) is left out
    assert first["otel_tracker.process.count"] == 2
    assert second["otel_tracker.process.count"] == 2
    assert second["process.memory.usage"] > 10 * 2**20
    assert "process.cpu.utilization" in second  # the helper kept the rate's baseline
    assert "system.memory.usage{system.memory.state=used}" in second
    assert {p["pid"] for p in details["processes"]} == {os.getpid(), child.pid}
    assert details["sampler"]["mode"] == "subprocess"
    assert details["sampler"]["helper_cpu_s"] > 0
    helper = details["sampler"]["helper_pid"]
    wait_for(lambda: _gone(helper), timeout=5, what="helper gone after close")


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ([sys.executable, "-c", "pass"], "exited"),
        ([sys.executable, "-c", "import time; time.sleep(60)"], "no reply within"),
        (["/nonexistent/python"], "could not start"),
    ],
    ids=["exits", "hangs", "missing"],
)
def test_a_broken_helper_falls_back_to_this_process(
    command: list[str], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    sampler = SubprocessSampler(command=command, reply_timeout=0.3)
    with caplog.at_level(logging.WARNING, logger="otel_tracker"):
        sampler.start()
        started = time.monotonic()
        points = sampler.sample(time.monotonic(), Unavailable())
        waited = time.monotonic() - started
        again = sampler.sample(time.monotonic(), Unavailable())
    sampler.close()
    assert waited < 3.0  # a hung helper costs one bounded wait, once
    assert _values(points)["otel_tracker.process.count"] >= 1
    assert _values(again)["otel_tracker.process.count"] >= 1
    details = sampler.details()
    assert details["sampler"]["mode"] == "thread"
    assert reason in details["sampler"]["fallback_reason"]
    warnings = [r for r in caplog.records if "sampling in this process instead" in r.message]
    assert len(warnings) == 1


TRACKED = """
import time
from otel_tracker import track_run
with track_run("helper-check", steps=["work"], heartbeat_interval=0.1,
               sample_interval=0.2, progress="off") as run:
    with run.step("work") as s:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            s.advance()
            time.sleep(0.01)
"""


def _helper_pid(root: Path) -> int:
    doc = wait_for(
        read_when(
            root, lambda d: ((d.get("telemetry") or {}).get("sampler") or {}).get("helper_pid")
        ),
        what="helper pid in the manifest",
    )
    return int(doc["telemetry"]["sampler"]["helper_pid"])


def test_helper_exits_when_the_tracked_process_is_killed(root: Path) -> None:
    proc = start_script(TRACKED, root)
    helper = _helper_pid(root)
    assert psutil.Process(helper).ppid() == proc.pid
    proc.kill()
    proc.wait(timeout=10)
    wait_for(lambda: _gone(helper), timeout=10, what="helper exit")


def test_ctrl_c_to_the_process_group_leaves_sampling_intact(root: Path) -> None:
    """A terminal's Ctrl-C reaches the helper too: it ignores it, the run ends it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", TRACKED],
        env={**os.environ, "OTEL_TRACKER_ROOT": str(root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    helper = _helper_pid(root)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=10) in (-signal.SIGINT, 130)  # died of the signal, as it should
    doc = only_manifest(root)
    assert doc["status"] == "cancelled" and doc["signal"] == "SIGINT"
    sampler = doc["telemetry"]["sampler"]
    assert sampler["mode"] == "subprocess" and "fallback_reason" not in sampler, sampler
    wait_for(lambda: _gone(helper), timeout=5, what="helper exit")
    assert "sampling in this process instead" not in proc.stderr.read()


def test_a_frozen_helper_does_not_hold_the_run_end(root: Path) -> None:
    """A helper stopped (SIGSTOP, or a machine swapping hard) while the sampler waits
    for its reply: the run's end gives that sample up, kills the helper, and says so."""
    proc = start_script(TRACKED, root)
    helper = _helper_pid(root)
    os.kill(helper, signal.SIGSTOP)
    try:
        time.sleep(0.6)  # the sampler thread's next request (every 0.2 s) is now stuck
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == -signal.SIGTERM
        took = time.monotonic() - sent
    finally:
        if not _gone(helper):
            os.kill(helper, signal.SIGCONT)
    doc = only_manifest(root)
    assert doc["status"] == "cancelled" and doc["signal"] == "SIGTERM"
    (problem,) = [w for w in doc["warnings"] if "did not answer" in w]
    assert "final sample is missing" in problem
    err = proc.stderr.read()  # type: ignore[union-attr]
    assert err.count("did not answer") == 1, err
    assert "sampling in this process instead" not in err, err
    wait_for(lambda: _gone(helper), timeout=5, what="helper killed")
    assert took < 5.0, f"exit {took:.2f}s after SIGTERM"  # the bound issue 10 sets
