"""The Trainer callback against real ``transformers.Trainer``, a tiny model on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers  # noqa: F401  (the tests need the real package: no skip)

from tests.integrations.conftest import all_steps, metric, steps_named, train


@pytest.mark.parametrize("auto", [False, True], ids=["explicit", "auto"])
def test_a_trainer_run_has_train_and_evaluate_steps_series_params_and_checkpoints(
    root: Path, tmp_path: Path, auto: bool
) -> None:
    doc, _ = train(root, tmp_path / "work", "train_transformers.py", auto=auto)
    assert doc["status"] == "completed"
    names = ("train", "evaluate") + (("train_transformers.py", "python") if auto else ())
    steps = steps_named(doc, *names)
    train_step = steps["train"]
    # 128 samples / 16 per batch = 8 optimizer steps an epoch, 2 epochs
    assert train_step["progress"]["completed"] == train_step["progress"]["total"] == 16
    assert train_step["progress"]["unit"] == "step"
    # the evaluation after training: 32 samples in batches of 8 (the default)
    assert steps["evaluate"]["progress"]["completed"] == steps["evaluate"]["progress"]["total"] == 4
    params = doc["params"]
    assert params["learning_rate"] == 0.05 and params["num_train_epochs"] == 2
    assert params["per_device_train_batch_size"] == 16
    assert "hunter2" not in json.dumps(doc)
    assert metric(doc, "loss")["count"] == 4 and metric(doc, "loss")["direction"] == "min"
    assert metric(doc, "eval_loss")["count"] == 3  # each epoch, and the final evaluate()
    assert metric(doc, "learning_rate")["count"] == 4
    checkpoints = [a for a in doc["artifacts"] if a.get("kind") == "checkpoint"]
    folders = sorted(Path(a["path"]).name for a in checkpoints if Path(a["path"]).is_dir())
    assert folders == ["checkpoint-16", "checkpoint-8"]
    (best,) = [a for a in checkpoints if a.get("best")]
    assert Path(best["path"]).name in folders


def test_a_train_that_raises_fails_its_step_under_auto(root: Path, tmp_path: Path) -> None:
    doc, done = train(
        root,
        tmp_path / "work",
        "train_transformers.py",
        "--fail-at-call",
        "6",
        auto=True,
        exit_code=1,
    )
    assert "loss diverged" in done.stderr
    (step,) = [s for s in all_steps(doc) if s["name"] == "train"]
    assert step["status"] == "failed" and "loss diverged" in step["error"]["message"]
    assert step["progress"]["completed"] == 5  # the optimizer steps done before
    assert doc["status"] == "failed"
