"""The TensorBoard mirror, read back with TensorBoard's own event reader."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from otel_tracker import track_run
from tests.conftest import load_manifest, only_manifest, read_when, start_script, wait_for

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
        "step/duration_s",
        "run/duration_s",
        "run/steps_completed",
    ):
        assert tag in tags["scalars"], (tag, tags["scalars"])
    assert "process.disk.io/read" in tags["scalars"]

    durations = accumulator.Scalars("step/duration_s")
    doc = load_manifest(run.manifest_path)
    assert [d.step for d in durations] == [1, 2]
    for event, step in zip(durations, doc["steps"], strict=True):
        assert abs(event.value - step["duration_s"]) < 0.01
    memory = accumulator.Scalars("process.memory.usage")
    assert len(memory) == doc["telemetry"]["samples"]
    assert [m.step for m in memory] == list(range(1, len(memory) + 1))
    assert all(m.value > 1_000_000 for m in memory)
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
    wait_for(
        read_when(root, lambda d: d["steps"][1]["status"] == "running"),
        what="the slow step to start",
    )
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM, err  # the default action, re-raised
    doc = only_manifest(root)
    assert doc["status"] == "cancelled"
    accumulator, _ = _events(Path(doc["run_dir"]))
    durations = accumulator.Scalars("step/duration_s")
    assert [d.step for d in durations] == [1, 2]  # the interrupted step too
    assert _text(accumulator, "run/result") == "cancellation"
    assert len(accumulator.Scalars("process.memory.usage")) >= 3
