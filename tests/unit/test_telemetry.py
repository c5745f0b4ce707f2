"""telemetry.jsonl: torn tails are repaired, and a run's samples carry run, step and throughput."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from otel_tracker import ConfigError, track_run
from otel_tracker.exporters.telemetry import (
    TelemetryFile,
    repair_torn_tail,
    telemetry_line,
)
from tests.helpers import read_telemetry


def test_torn_last_line_is_skipped_on_read_and_cut_before_append(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2}\n{"a":3, "tor')
    samples, skipped = read_telemetry(path)
    assert [s["a"] for s in samples] == [1, 2] and skipped == 1
    file = TelemetryFile(path)
    assert file.append({"a": 4})
    assert path.read_bytes() == b'{"a":1}\n{"a":2}\n{"a":4}\n'
    assert read_telemetry(path) == ([{"a": 1}, {"a": 2}, {"a": 4}], 0)


def test_repair_of_a_single_torn_line_and_of_a_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"only": "torn')
    assert repair_torn_tail(path) and path.read_bytes() == b""
    path.write_bytes(b'{"ok": 1}\n')
    assert not repair_torn_tail(path) and path.read_bytes() == b'{"ok": 1}\n'
    assert not repair_torn_tail(tmp_path / "missing.jsonl")


def test_a_forked_child_never_appends(tmp_path: Path) -> None:
    file = TelemetryFile(tmp_path / "t.jsonl", owner_pid=-1)
    assert not file.append({"x": 1}) and not (tmp_path / "t.jsonl").exists()


def test_run_samples_carry_run_step_throughput_and_user_metrics(root: Path) -> None:
    with track_run(
        "metered",
        root=root,
        steps=["work"],
        sample_interval=0.05,
        progress="off",
        install_signal_handlers=False,
    ) as run:
        with run.step("work") as step:
            import time

            deadline = time.monotonic() + 0.6
            while time.monotonic() < deadline:
                step.advance()
                run.set_gauge("fps", 60.0)
                run.add_count("episodes")
                time.sleep(0.001)
        with pytest.raises(ConfigError):
            run.set_gauge("Bad Name", 1.0)
        with pytest.raises(ConfigError):
            run.set_gauge("fps", float("inf"))
        with pytest.raises(ConfigError, match="running total"):
            run.add_count("episodes", -1)
    samples, skipped = read_telemetry(run.dir / "telemetry.jsonl")
    assert skipped == 0 and len(samples) >= 3
    assert {s["run_id"] for s in samples} == {run.run_id}
    in_step = [s for s in samples if s["step"] == "work"]
    assert in_step, samples
    assert any(s["points"].get("otel_tracker.step.throughput", 0) > 0 for s in in_step)
    assert any(s["points"].get("otel_tracker.user.fps") == 60.0 for s in in_step)
    assert max(s["points"].get("otel_tracker.user.episodes", 0) for s in samples) > 10
    assert all("process.memory.usage" in s["points"] for s in samples)
    # the in-memory ring buffer has what telemetry.jsonl has, for live views
    history = run.resource_history("process.memory.usage")
    assert [v for _, v in history] == [s["points"]["process.memory.usage"] for s in samples]
    doc = json.loads(run.manifest_path.read_text())
    assert doc["telemetry"]["samples"] == len(samples)
    assert doc["telemetry"]["run"]["process.memory.usage"]["count"] == len(samples)
    assert doc["steps"][0]["resources"]["otel_tracker.step.throughput"]["max"] > 0
    # no mirror: nothing reads OTel metrics, so no meter provider keeps per-step state
    assert run.telemetry.instruments is None


def test_a_telemetry_line_is_the_snapshot_with_sorted_attributes() -> None:
    from otel_tracker.sampling.points import Point
    from otel_tracker.sampling.run_state import STEP_DURATION
    from otel_tracker.sampling.sampler import Snapshot

    snapshot = Snapshot(
        monotonic=1.0,
        wall=1_795_000_000.5,
        points=(
            Point("process.memory.usage", 1024.0, "By"),
            Point("hw.gpu.utilization", 0.5, "1", (("hw.name", "A100"), ("hw.id", "GPU-1"))),
            Point(STEP_DURATION, 3.0, "s", (("step", "load"),)),
        ),
        step_index=0,
    )
    assert telemetry_line(snapshot, "run-1", "train") == {
        "t": "2026-11-18T11:06:40.500000Z",
        "run_id": "run-1",
        "step": "train",
        "points": {
            "process.memory.usage": 1024.0,
            "hw.gpu.utilization{hw.id=GPU-1,hw.name=A100}": 0.5,
        },
    }
    empty = Snapshot(monotonic=1.0, wall=0.0, points=(), step_index=None)
    assert telemetry_line(empty, "run-1", None) is None


def test_resources_can_be_turned_off(root: Path) -> None:
    with track_run(
        "quiet", root=root, resources=False, progress="off", install_signal_handlers=False
    ) as run:
        pass
    assert not (run.dir / "telemetry.jsonl").exists()
    assert json.loads(run.manifest_path.read_text())["telemetry"] is None


def test_run_state_points_say_where_the_run_stands(root: Path) -> None:
    import time

    with track_run(
        "stateful",
        root=root,
        steps=["a", "b", "c"],
        sample_interval=30,  # only the start, step-end and final samples
        progress="off",
        install_signal_handlers=False,
    ) as run:
        with run.step("a") as step:
            step.advance()
            time.sleep(0.05)
        with run.step("b") as step:
            step.set_total(4)
            step.advance(2)
            state = {p.key: p.value for p in run.telemetry.sampler.sample_once().points}
    assert state["otel_tracker.run.steps.enabled"] == 3
    assert state["otel_tracker.run.steps.completed"] == 1
    assert state["otel_tracker.step.number"] == 2
    assert state["otel_tracker.run.elapsed"] >= 0.05
    assert "otel_tracker.run.eta" in state  # half of step b done: an estimate exists
    assert state["otel_tracker.step.duration{cicd.pipeline.task.name=a}"] >= 0.05
    doc = json.loads(run.manifest_path.read_text())
    # never aggregated, and per-step durations stay out of telemetry.jsonl
    assert not any(k.startswith("otel_tracker.run.") for k in doc["telemetry"]["run"])
    assert "otel_tracker.step.duration" not in json.dumps(doc["telemetry"])
    samples, _ = read_telemetry(run.dir / "telemetry.jsonl")
    assert all(not k.startswith("otel_tracker.step.duration") for s in samples for k in s["points"])
    assert samples[-1]["points"]["otel_tracker.run.steps.completed"] == 2


def test_only_the_most_recently_finished_steps_report_their_duration() -> None:
    from otel_tracker.sampling.points import Unavailable
    from otel_tracker.sampling.run_state import (
        RECENT_STEP_DURATIONS,
        STEP_DURATION,
        RunStateSampler,
    )

    steps = [
        {
            "index": i,
            "name": f"s{i}",
            "status": "completed",
            "duration_s": 1.0,
            "ended_at": f"2026-11-24T00:{i // 60:02d}:{i % 60:02d}.000000Z",
        }
        for i in range(500)
    ]
    doc = {"steps": steps, "elapsed_s": 500.0, "steps_completed": 500}
    points = RunStateSampler(lambda: doc, lambda: 0.0).sample(0.0, Unavailable())
    names = [
        dict(p.attributes)["cicd.pipeline.task.name"] for p in points if p.name == STEP_DURATION
    ]
    assert names == [f"s{i}" for i in range(500 - RECENT_STEP_DURATIONS, 500)]


def test_the_file_stays_open_and_recovers_from_a_failed_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One write() per line on a descriptor kept open; a failed write (here: the
    descriptor closed behind its back) warns once, and the next append reopens the
    file, cutting any torn tail first."""

    path = tmp_path / "t.jsonl"
    file = TelemetryFile(path)
    assert file.append({"a": 1}) and file.append({"a": 2})
    assert file._fd is not None
    os.close(file._fd)  # the descriptor goes bad under it
    with open(path, "ab") as raw:
        raw.write(b'{"torn')  # and a crash-like torn tail
    with caplog.at_level(logging.WARNING):
        assert not file.append({"a": 3})
        assert file.append({"a": 4})
    assert caplog.text.count("could not append") == 1
    assert read_telemetry(path) == ([{"a": 1}, {"a": 2}, {"a": 4}], 0)
    file.close()
    assert file._fd is None
    assert file.append({"a": 5})  # reopened after close
    assert [s["a"] for s in read_telemetry(path)[0]] == [1, 2, 4, 5]
    file.close()


def test_add_count_from_many_threads_loses_no_update(tmp_path: Path) -> None:
    import sys
    import threading

    # switch threads as often as possible: a plain read-modify-write loses half
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with track_run(
            "counts", root=tmp_path, resources=False, progress="off", install_signal_handlers=False
        ) as run:

            def work() -> None:
                for _ in range(20_000):
                    run.add_count("items")

            threads = [threading.Thread(target=work) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            total = run.telemetry.user_metrics.counts["items"]
    finally:
        sys.setswitchinterval(previous)
    assert total == 8 * 20_000
