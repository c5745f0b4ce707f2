"""The Keras callback against real Keras 3 on its PyTorch backend, on the CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.integrations.conftest import all_steps, metric, steps_named, train

# the real package, never a skip (imported by the scripts, with KERAS_BACKEND=torch)
assert importlib.util.find_spec("keras") is not None, "Keras 3 is not installed"


@pytest.mark.parametrize("auto", [False, True], ids=["explicit", "auto"])
def test_keras_fit_evaluate_and_predict_are_steps_with_epoch_series(
    root: Path, tmp_path: Path, auto: bool
) -> None:
    doc, _ = train(root, tmp_path / "work", "train_keras.py", auto=auto)
    assert doc["status"] == "completed"
    names = ("fit", "evaluate", "predict") + (("train_keras.py", "python") if auto else ())
    steps = steps_named(doc, *names)
    # 192 training samples (a quarter held out) / 32 = 6 batches an epoch, 3 epochs
    fit = steps["fit"]["progress"]
    assert (fit["completed"], fit["total"], fit["unit"]) == (18, 18, "batch")
    assert steps["evaluate"]["progress"]["completed"] == steps["evaluate"]["progress"]["total"] == 8
    assert steps["predict"]["progress"]["completed"] == 2
    for key in ("loss", "mae", "val_loss", "val_mae"):
        series = metric(doc, key)
        assert series["count"] == 3 and series["direction"] == "min", key
    assert metric(doc, "evaluate_loss")["count"] == 1
    params = doc["params"]
    assert (params["epochs"], params["steps_per_epoch"]) == (3, 6)
    assert params["optimizer"] == "sgd" and params["optimizer.learning_rate"] == 0.05


@pytest.mark.parametrize("auto", [False, True], ids=["explicit", "auto"])
def test_a_fit_that_raises_fails_its_step(root: Path, tmp_path: Path, auto: bool) -> None:
    doc, done = train(
        root, tmp_path / "work", "train_keras.py", "--fail-at-epoch", "1", auto=auto, exit_code=1
    )
    assert "loss diverged" in done.stderr
    (fit,) = [s for s in all_steps(doc) if s["name"] == "fit"]
    assert fit["status"] == "failed"
    assert fit["progress"]["completed"] == 6  # the first epoch's batches
    if auto:  # the wrapper saw the exception leave fit()
        assert "loss diverged" in fit["error"]["message"]
    assert doc["status"] == "failed"
    assert "evaluate" not in [s["name"] for s in all_steps(doc)]
