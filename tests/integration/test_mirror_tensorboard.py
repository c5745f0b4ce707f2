"""The TensorBoard mirror, read back with TensorBoard's own event reader."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from otel_tracker import track_run
from otel_tracker.timeparse import parse_timestamp
from tests.helpers import (
    load_manifest,
    only_manifest,
    read_when,
    run_script,
    start_script,
    wait_for,
)

SECRET = "sk-live-0123456789abcdefSECRET"


def _events(run_dir: Path) -> Any:
    files = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1, files
    # size_guidance 0 = keep everything, so counts are exact
    accumulator = event_accumulator.EventAccumulator(
        str(files[0]), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return accumulator, files[0]


def _raw_steps(path: Path) -> list[int]:
    """The x of every event in the file, in file order."""
    return [e.step for e in event_file_loader.EventFileLoader(str(path)).Load()]


def _since_start(doc: dict[str, Any], stamp: str) -> float:
    return parse_timestamp(stamp) - parse_timestamp(doc["started_at"])


def _text(accumulator: Any, tag: str) -> str:
    # the text plugin stores text under "<tag>/text_summary"
    return accumulator.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()


def test_scalars_steps_and_params_read_back(root: Path) -> None:
    with track_run(
        "boarded",
        root=root,
        steps=["load", "train"],
        params={"lr": 0.01, "env": {"name": "cartpole"}, "api_key": SECRET},
        tensorboard=True,
        sample_interval=0.1,
        progress="off",
        install_signal_handlers=False,
    ) as run:
        with run.step("load") as step:
            step.advance(5)
        with run.step("train") as step:
            for _ in range(6):
                step.advance()
                run.set_gauge("fps", 30.0)
                time.sleep(0.06)
    accumulator, path = _events(run.dir)
    tags = accumulator.Tags()
    for tag in (
        "process.cpu.utilization",
        "process.memory.usage",
        "otel_tracker.step.throughput",
        "otel_tracker.user.fps",
        "step/load/duration_s",
        "step/train/duration_s",
        "run/duration_s",
        "run/steps_completed",
    ):
        assert tag in tags["scalars"], (tag, tags["scalars"])
    assert "process.disk.io/read" in tags["scalars"]

    doc = load_manifest(run.manifest_path)
    for step in doc["steps"]:  # one tag per step, one point per run of it
        (event,) = accumulator.Scalars(f"step/{step['name']}/duration_s")
        assert abs(event.value - step["duration_s"]) < 0.01
        assert abs(event.step - _since_start(doc, step["ended_at"])) <= 1
    memory = accumulator.Scalars("process.memory.usage")
    assert len(memory) == doc["telemetry"]["samples"]
    assert all(m.value > 1_000_000 for m in memory)
    assert "otel_tracker.process.memory.pss" in tags["scalars"]
    # x is whole seconds since the run started, on every tag, never going back
    assert _raw_steps(path) == sorted(_raw_steps(path))
    assert memory[-1].step <= doc["duration_s"] <= memory[-1].step + 1
    (run_end,) = accumulator.Scalars("run/duration_s")
    assert run_end.step == int(doc["duration_s"]) or run_end.step == int(doc["duration_s"]) + 1
    assert accumulator.Scalars("run/steps_completed")[-1].value == 2

    assert "lr" in _text(accumulator, "run/params")
    assert '"result": "success"' in _text(accumulator, "step/02")
    assert _text(accumulator, "run/result") == "success"
    hparams = accumulator.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["lr"].number_value == 0.01
    assert start.session_start_info.hparams["env.name"].string_value == "cartpole"
    end = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_end_info"])
    assert end.session_end_info.status == api_pb2.STATUS_SUCCESS
    assert SECRET.encode() not in path.read_bytes()
    assert doc["tracker"]["mirrors"]["tensorboard"] == {"dir": "tensorboard"}


def test_sigterm_leaves_readable_events_up_to_the_signal(root: Path) -> None:
    proc = start_script(
        """
        import time
        from otel_tracker import track_run
        with track_run("killed-board", steps=["quick", "slow"], tensorboard=True,
                       sample_interval=0.1, progress="off") as run:
            with run.step("quick") as step:
                step.advance(3)
            with run.step("slow") as step:
                while True:
                    step.advance()
                    time.sleep(0.02)
        """,
        root,
    )
    doc = wait_for(
        read_when(root, lambda d: d["steps"][1]["status"] == "running"),
        what="the slow step to start",
    )
    # a few samples are in telemetry.jsonl, so in the event file too (written right
    # after each line): waited for, not timed
    telemetry = Path(doc["run_dir"]) / "telemetry.jsonl"
    wait_for(
        lambda: telemetry.exists() and telemetry.read_bytes().count(b"\n") >= 4,
        what="samples",
    )
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM, err  # the default action, re-raised
    doc = only_manifest(root)
    assert doc["status"] == "cancelled"
    accumulator, _ = _events(Path(doc["run_dir"]))
    assert accumulator.Scalars("step/quick/duration_s")
    assert accumulator.Scalars("step/slow/duration_s")  # the interrupted step too
    assert _text(accumulator, "run/result") == "cancellation"
    assert len(accumulator.Scalars("process.memory.usage")) >= 3


def test_each_step_is_its_own_line_on_a_seconds_axis(root: Path) -> None:
    """Issue 22 item 7: ``otel_tracker.step.duration`` held every finished step's
    duration at each sample's x (three values at x=19); now each step has a tag of
    its own, same-named steps share it, and x is seconds since the run started."""
    names = ["load", "train", "evaluate/test", "train", "load"]
    with track_run(
        "many-steps",
        root=root,
        tensorboard=True,
        sample_interval=0.05,
        progress="off",
        install_signal_handlers=False,
    ) as run:
        for i, name in enumerate(names):
            with run.step(name) as step:
                step.advance()
                time.sleep(0.05 * (i + 1))
    accumulator, path = _events(run.dir)
    doc = load_manifest(run.manifest_path)
    scalars = accumulator.Tags()["scalars"]
    assert not [t for t in scalars if t.startswith("otel_tracker.step.duration")], scalars
    assert "step/evaluate_test/duration_s" in scalars  # no "/" inside a name
    for tag_name, manifest_name in [
        ("load",) * 2,
        ("train",) * 2,
        ("evaluate_test", "evaluate/test"),
    ]:
        got = [e.value for e in accumulator.Scalars(f"step/{tag_name}/duration_s")]
        want = [s["duration_s"] for s in doc["steps"] if s["name"] == manifest_name]
        assert got == pytest.approx(want, abs=0.01), (tag_name, got, want)
    xs = _raw_steps(path)
    assert xs == sorted(xs) and xs[-1] <= doc["duration_s"] + 1
    # far more samples than seconds: x is not the sample number
    assert doc["telemetry"]["samples"] > xs[-1] + 2


# Waits for the mirror's own warning (an event, not a time) before it ends the run.
FILLS_THE_EVENT_FILE = """
import logging, time
from otel_tracker import track_run

failed = []
class Watch(logging.Handler):  # notes the mirror's warning; stderr still shows all
    def emit(self, record):
        if "TensorBoard" in record.getMessage():
            failed.append(record)
        logging.lastResort.handle(record)
logging.getLogger("otel_tracker").addHandler(Watch())

with track_run("full-disk-board", steps=["fill", "after"], tensorboard=True,
               sample_interval=0.05, progress="off") as run:
    with run.step("fill") as step:
        deadline = time.monotonic() + 90
        while not failed and time.monotonic() < deadline:
            step.advance()
            run.set_gauge("filler", 1.0)
            time.sleep(0.005)
    with run.step("after") as step:  # more events after the failure: still one warning
        step.advance()
print("pipeline done" if failed else "the event file never filled")
"""


def test_a_full_disk_is_one_warning_line_not_tracebacks(root: Path) -> None:
    """Issue 31 item 23: a full disk gave two TensorBoard tracebacks (the span
    processor's and the metric exporter's) where one warning line is documented.
    RLIMIT_FSIZE stands in for the full disk (root ignores permissions)."""
    limit = 96 * 1024  # manifests fit; the event file fills up first
    proc = run_script(FILLS_THE_EVENT_FILE, root, 120, file_size_limit=limit)
    assert proc.returncode == 0, proc.stderr
    assert "pipeline done" in proc.stdout, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    board = [line for line in proc.stderr.splitlines() if "TensorBoard" in line]
    assert len(board) == 1, proc.stderr
    assert "File too large" in board[0] and "the run goes on" in board[0], board
    doc = only_manifest(root)
    assert [s["status"] for s in doc["steps"]] == ["completed", "completed"]
    (events,) = (Path(doc["run_dir"]) / "tensorboard").glob("events.out.tfevents.*")
    assert events.stat().st_size <= limit
    # what was written before the limit still reads back
    accumulator = event_accumulator.EventAccumulator(str(events))
    accumulator.Reload()
    assert accumulator.Scalars("process.memory.usage")


def test_logged_series_are_tags_on_the_users_steps_and_hparams_metrics(root: Path) -> None:
    """run.log() keys: one scalar tag each in the `metrics` sub-run, x = the user's
    step; the HParams experiment names them (group `metrics`) beside the params."""
    with track_run(
        "board-series",
        root=root,
        params={"lr": 0.01},
        tensorboard=True,
        resources=False,
        progress="off",
        install_signal_handlers=False,
    ) as run:
        for epoch in range(0, 50, 5):
            run.log({"train/loss": 1 / (epoch + 1), "val_acc": epoch / 50}, step=epoch)
        run.log("val_acc", float("nan"), step=55)  # a gap, not a point
    files = list((run.dir / "tensorboard" / "metrics").glob("events.out.tfevents.*"))
    assert len(files) == 1, files
    series = event_accumulator.EventAccumulator(
        str(files[0]), size_guidance={event_accumulator.SCALARS: 0}
    )
    series.Reload()
    assert sorted(series.Tags()["scalars"]) == ["train/loss", "val_acc"]
    loss = series.Scalars("train/loss")
    assert [e.step for e in loss] == list(range(0, 50, 5))
    assert loss[-1].value == pytest.approx(1 / 46)
    assert [e.step for e in series.Scalars("val_acc")][-1] == 45
    accumulator, _ = _events(run.dir)
    hparams = accumulator.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/experiment"])
    metrics = {(m.name.group, m.name.tag) for m in experiment.experiment.metric_infos}
    assert {("metrics", "train/loss"), ("metrics", "val_acc"), ("", "run/duration_s")} <= metrics
    assert [h.name for h in experiment.experiment.hparam_infos] == ["lr"]
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["lr"].number_value == 0.01
