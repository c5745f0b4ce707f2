"""A system clock stepped mid-run moves no duration, ETA, heartbeat or reader figure (issue 31.9).

Stepping the real clock needs root, so the run gets a clock whose wall time is
stepped while its monotonic time runs on (as the kernel's do when NTP or an
operator steps the clock); everything else is real: the run, its sampling helper
process writing the heartbeats, the files, and the CLI reading them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from otel_tracker import track_run
from otel_tracker.analysis.report import eta_accuracy
from otel_tracker.contract.heartbeat import generation_path
from otel_tracker.progress.eta import MAX_CORRECTION
from otel_tracker.timeparse import parse_timestamp
from tests.helpers import child_env, load_manifest, wait_for

HOUR, DAY = 3600.0, 86400.0
# how far a figure may exceed what the test measured around it (rounding, scheduling)
SLACK_S = 0.5
EXPECTED = {"a": 0.3, "b": 0.6, "c": 0.3}


class SteppedClock:
    """The machine's monotonic clock, and a wall clock ``offset`` seconds off true time."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def time_ns(self) -> int:
        return time.time_ns() + int(self.offset * 1e9)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _t(value: Any) -> float:
    parsed = parse_timestamp(value)
    assert parsed is not None, value
    return parsed


def _beat_age(doc: dict[str, Any]) -> float:
    """Seconds from the run's start to its latest heartbeat, by its own timestamps."""
    return _t(doc["heartbeat_at"]) - _t(doc["started_at"])


def _new_heartbeat(path: Path, after: str | None, step: str) -> Any:
    """A predicate: the manifest on disk once it holds a heartbeat newer than ``after``."""

    def probe() -> dict[str, Any] | None:
        doc = _read(path)
        if doc and doc["current_step"] == step and doc["heartbeat_at"] != after:
            return doc
        return None

    return probe


# the clock runs a day behind at the start; it is stepped back an hour, then forward
# to true time (+1 day 1 hour); and the mirror image: ahead, forward, back
@pytest.mark.parametrize("steps", [(-DAY, -DAY - HOUR, 0.0), (DAY, DAY + HOUR, -HOUR)])
def test_a_stepped_wall_clock_moves_nothing_the_run_measures(
    root: Path, capsys: pytest.CaptureFixture[str], steps: tuple[float, float, float]
) -> None:
    start_offset, first_step, second_step = steps
    clock = SteppedClock(start_offset)
    t0 = time.monotonic()
    with track_run(
        "jumps",
        root=root,
        steps=["a", "b", "c"],
        expected_durations=EXPECTED,
        clock=clock,
        progress="plain",
        heartbeat_interval=0.2,
        sample_interval=0.2,
        install_signal_handlers=False,
    ) as run:
        manifest = run.manifest_path
        assert manifest is not None
        with run.step("a", total=10) as step:
            for _ in range(10):
                step.advance()
                time.sleep(0.03)
        clock.offset = first_step
        with run.step("b", total=20) as step:
            # the heartbeats are the sampling helper's: it writes what the run encoded
            assert generation_path(manifest).exists()
            before = _read(manifest)
            assert before is not None
            for _ in range(10):
                step.advance()
            run.log_scores({"loss": 0.5})
            beat = wait_for(_new_heartbeat(manifest, before["heartbeat_at"], "b"), 30)
            assert 0 <= _beat_age(beat) <= time.monotonic() - t0
            clock.offset = second_step
            beat = wait_for(_new_heartbeat(manifest, beat["heartbeat_at"], "b"), 30)
            # what the helper wrote after the step of the clock is on the run's clock
            assert 0 <= _beat_age(beat) <= time.monotonic() - t0
            assert 0 <= beat["elapsed_s"] <= time.monotonic() - t0
            running = beat["steps"][1]
            assert 0 <= running["elapsed_s"] <= time.monotonic() - t0
            assert _t(running["started_at"]) <= _t(running["progress"]["updated_at"])
            for _ in range(10):
                step.advance()
        with run.step("c"):
            time.sleep(0.1)
    took = time.monotonic() - t0

    doc = load_manifest(manifest)
    started, ended = _t(doc["started_at"]), _t(doc["ended_at"])
    assert 0 < doc["duration_s"] <= took
    assert ended - started == pytest.approx(doc["duration_s"], abs=1e-5)
    assert started <= _t(doc["heartbeat_at"]) <= ended
    for step_doc in doc["steps"]:
        s, e = _t(step_doc["started_at"]), _t(step_doc["ended_at"])
        assert started <= s <= e <= ended
        assert e - s == pytest.approx(step_doc["duration_s"], abs=1e-5)
        moved = step_doc["progress"]["updated_at"]
        if moved is not None:
            assert s <= _t(moved) <= e
    assert started <= _t(doc["scores"]["loss"]["latest_at"]) <= ended

    log = doc["eta"]["log"]
    assert [e["elapsed_s"] for e in log] == sorted(e["elapsed_s"] for e in log)
    for entry in log:
        assert 0 <= entry["elapsed_s"] <= doc["duration_s"]
        assert _t(entry["at"]) - started == pytest.approx(entry["elapsed_s"], abs=2e-3)
        # the model scales expectations by at most MAX_CORRECTION: never hours
        assert entry["eta_s"] is None or entry["eta_s"] <= MAX_CORRECTION * sum(EXPECTED.values())
    accuracy = eta_accuracy(doc)
    assert accuracy is not None
    assert 0 <= accuracy["actual_s"] <= doc["duration_s"]

    # telemetry.jsonl's timestamps are the run's too
    lines = [json.loads(x) for x in (manifest.parent / "telemetry.jsonl").read_text().splitlines()]
    assert lines
    for line in lines:
        assert started - SLACK_S <= _t(line["t"]) <= ended + SLACK_S

    # what the run printed: every elapsed and ETA figure is seconds, not hours or days
    out = capsys.readouterr().err
    figures = re.findall(r"(?:elapsed|ETA ≥?) ?([^,)]+)[,)]", out)
    assert figures and all(re.fullmatch(r"\?|\d+s", f.strip()) for f in figures), out


def _status(root: Path, *args: str) -> str:
    """What ``otel-tracker status`` prints, read by another process with the system clock."""
    proc = subprocess.run(
        [sys.executable, "-m", "otel_tracker.cli", "status", *args],
        env=child_env(root, OTEL_TRACKER_STUCK_AFTER="600"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("offset", [-DAY, -HOUR, HOUR, DAY])
def test_status_of_a_live_run_after_the_clock_was_stepped(root: Path, offset: float) -> None:
    # The run started when the wall clock read `offset` off the time it reads now (it was
    # stepped by -offset since): its timestamps run on from there, and another process
    # reads them with the stepped clock.
    clock = SteppedClock(offset)
    t0 = time.monotonic()
    with track_run(
        "live",
        root=root,
        steps=["a", "b"],
        expected_durations={"a": 0.2, "b": 60.0},
        clock=clock,
        progress="off",
        install_signal_handlers=False,
    ) as run:
        with run.step("a"):
            pass
        with run.step("b", total=1000) as step:
            step.advance(10)
            run.manifest_processor.write()  # as a heartbeat would
            status = json.loads(_status(root, "--json"))
            text = _status(root)
            bound = time.monotonic() - t0
    assert status["status"] == "running", status
    assert 0 <= status["elapsed_s"] <= bound + SLACK_S, status
    # b: 10 of 1000 items, expected 60 s: seconds to minutes left (a day off the clock
    # made the observed rate 10 items a day: an ETA of months)
    assert status["eta_s"] is not None and 0 < status["eta_s"] < HOUR, status
    assert "STUCK" not in text and re.search(r"elapsed \d+s\)", text), text
