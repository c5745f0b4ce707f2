"""Reading TensorBoard event files and W&B run directories into a real run: what the
run logged itself wins, earlier runs' files are not this run's, damaged or foreign
files are read in part and said so, a long series is thinned, not dropped."""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tensorboardX import SummaryWriter

from otel_tracker import track_run
from otel_tracker.history.series_file import own_summaries
from otel_tracker.launch.artifact_content import import_artifact_content
from otel_tracker.launch.artifacts import Artifact
from otel_tracker.launch.tensorboard_content import ThinnedPoints, read_event_dir
from tests.helpers import load_manifest, validate_manifest


def _scalars(directory: Path, tag: str, values: list[float], *more: str) -> None:
    # tensorboardX names its file by the second: a suffix keeps two writers apart
    writer = SummaryWriter(str(directory), filename_suffix=f".{tag}")
    for step, value in enumerate(values):
        for name in (tag, *more):
            writer.add_scalar(name, value, step)
    writer.close()


def _import(root: Path, work: Path, artifacts: list[Artifact], **run: Any) -> dict[str, Any]:
    with track_run("train", root=root, progress="off", resources=False) as tracked:
        if "log" in run:
            tracked.log(run["log"])
        import_artifact_content(tracked, artifacts, work, since=run.get("since"))
        run_dir = Path(tracked.dir)
    return validate_manifest(load_manifest(run_dir / "manifest.json"))


def test_the_runs_own_key_wins_and_earlier_event_files_are_left_out(tmp_path: Path) -> None:
    board = tmp_path / "work" / "runs" / "exp1"
    _scalars(board, "earlier", [9.0, 8.0], "loss")  # an earlier run's file, same directory
    old = time.time() - 3600
    for path in board.iterdir():
        os.utime(path, (old, old))
    since = time.time()
    _scalars(board, "loss", [0.5, 0.25, 0.125], "lr")
    doc = _import(
        tmp_path / "runs",
        tmp_path / "work",
        [Artifact(board, "tensorboard")],
        log={"lr": 0.3},
        since=since,
    )
    keys = doc["metrics"]["keys"]
    assert (keys["loss"]["count"], keys["loss"]["max"]) == (3, 0.5)  # not the earlier 9, 8
    assert "earlier" not in keys
    assert keys["loss"]["source"] == "tensorboard:runs/exp1"
    assert keys["lr"]["count"] == 1 and "source" not in keys["lr"]  # run.log()'s own
    # recovery rebuilds an imported key's summary with its source
    rebuilt = own_summaries(Path(doc["run_dir"]), {}, [])
    assert rebuilt["loss"]["source"] == "tensorboard:runs/exp1"


def test_damaged_files_are_read_in_part_and_said_so(tmp_path: Path) -> None:
    board = tmp_path / "work" / "runs" / "exp1"
    _scalars(board, "loss", [float(v) for v in range(100)])
    events = next(board.iterdir())
    data = events.read_bytes()
    events.write_bytes(data[: len(data) * 2 // 3])  # killed mid-write
    broken = tmp_path / "work" / "wandb" / "offline-run-20261203_000000-zz99"
    (broken / "files").mkdir(parents=True)
    (broken / "files" / "wandb-summary.json").write_text('{"loss": 0.5, ')
    (broken / "files" / "config.yaml").write_text("lr: [unclosed")
    doc = _import(
        tmp_path / "runs",
        tmp_path / "work",
        [Artifact(board, "tensorboard"), Artifact(broken, "wandb")],
    )
    loss = doc["metrics"]["keys"]["loss"]
    assert 10 < loss["count"] < 100 and loss["first_step"] == 0  # the intact records
    warnings = " ".join(doc["warnings"])
    assert "W&B summary not read" in warnings and "is not YAML" in warnings
    assert doc["status"] == "completed"


def test_without_tensorboard_installed_one_warning_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = tmp_path / "work" / "runs"
    _scalars(board, "loss", [1.0])
    for name in [m for m in sys.modules if m.split(".")[0] == "tensorboard"] or ["tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    doc = _import(tmp_path / "runs", tmp_path / "work", [Artifact(board, "tensorboard")])
    assert "metrics" not in doc or "loss" not in doc["metrics"]["keys"]
    assert any("pip install 'otel-tracker[tensorboard]'" in w for w in doc["warnings"])


def test_a_long_series_is_thinned_evenly_to_its_bound_keeping_the_last_point() -> None:
    points = ThinnedPoints(limit=100)
    for step in range(10_007):
        points.append((step, float(step), None))
    kept = points.kept()
    steps = [p[0] for p in kept]
    assert len(kept) <= 100 and steps[0] == 0 and steps[-1] == 10_006
    strides = {b - a for a, b in itertools.pairwise(steps[:-1])}
    assert len(strides) == 1  # evenly spread


def test_a_wandb_history_gives_whole_series_and_the_summary_the_rest(tmp_path: Path) -> None:
    run = tmp_path / "work" / "wandb" / "run-20261203_000000-abc"
    (run / "files").mkdir(parents=True)
    rows = [{"loss": 1 / (i + 1), "_step": i, "_timestamp": 1.79e9 + i} for i in range(20)]
    (run / "files" / "wandb-history.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n{tor")
    (run / "files" / "wandb-summary.json").write_text(json.dumps({"loss": 0.05, "f1": 0.7}))
    doc = _import(tmp_path / "runs", tmp_path / "work", [Artifact(run, "wandb")])
    keys = doc["metrics"]["keys"]
    assert keys["loss"]["count"] == 20 and keys["loss"]["last_step"] == 19
    assert keys["f1"]["count"] == 1


def test_tensorboard_hparams_are_read_from_the_session_record(tmp_path: Path) -> None:
    board = tmp_path / "runs"
    writer = SummaryWriter(str(board))
    writer.add_hparams({"lr": 0.1, "layers": 3, "act": "relu", "bn": True}, {"acc": 0.5})
    writer.close()
    sessions = [p for p in board.iterdir() if p.is_dir()]
    content = read_event_dir(sessions[0], deadline=time.monotonic() + 30)
    assert content.hparams == {"lr": 0.1, "layers": 3.0, "act": "relu", "bn": True}
    assert content.series["acc"][0][:2] == (0, 0.5)


def test_a_nanosecond_step_is_left_out_and_the_run_stays_readable(tmp_path: Path) -> None:
    board = tmp_path / "work" / "runs"
    writer = SummaryWriter(str(board))
    writer.add_scalar("loss", 0.5, 1)
    writer.add_scalar("loss", 0.25, time.time_ns())  # a clock as the step: beyond ±1e18
    writer.close()
    doc = _import(tmp_path / "runs", tmp_path / "work", [Artifact(board, "tensorboard")])
    assert doc["metrics"]["keys"]["loss"]["count"] == 1  # validated: every reader opens it
    assert any("1 points of tensorboard:runs left out" in w for w in doc["warnings"])


def test_a_stopped_run_does_not_wait_on_the_import(tmp_path: Path) -> None:
    board = tmp_path / "work" / "runs"
    _scalars(board, "loss", [1.0])
    with track_run("train", root=tmp_path / "runs", progress="off", resources=False) as run:
        import_artifact_content(
            run, [Artifact(board, "tensorboard")], tmp_path / "work", stopped=lambda: True
        )
        run_dir = Path(run.dir)
    doc = load_manifest(run_dir / "manifest.json")
    assert "metrics" not in doc
    assert any("not read (the run was stopped): runs" in w for w in doc["warnings"])


def test_a_resumed_wandb_run_keeps_its_final_values(tmp_path: Path) -> None:
    work = tmp_path / "work"
    for stamp, loss, batch in (("100000", 0.9, 32), ("110000", 0.1, 64)):  # then resumed
        files = work / "wandb" / f"run-20261203_{stamp}-abc123" / "files"
        files.mkdir(parents=True)
        (files / "wandb-summary.json").write_text(json.dumps({"loss": loss, "_step": 1}))
        (files / "config.yaml").write_text(f"batch_size:\n  value: {batch}\n")
    artifacts = [Artifact(p, "wandb") for p in (work / "wandb").iterdir()]
    doc = _import(tmp_path / "runs", work, artifacts)
    assert doc["metrics"]["keys"]["loss"]["last"] == 0.1  # one run: no id prefix
    assert doc["params"]["wandb"] == {"batch_size": 64}
