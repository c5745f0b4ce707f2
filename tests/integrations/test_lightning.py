"""The Lightning callback against real Lightning: a tiny regressor trained on the CPU."""

from __future__ import annotations

from pathlib import Path

import lightning  # noqa: F401  (the tests need the real package: no skip)
import pytest
import pytorch_lightning  # noqa: F401

from tests.integrations.conftest import all_steps, metric, steps_named, train


@pytest.mark.parametrize("auto", [False, True], ids=["explicit", "auto"])
def test_a_lightning_fit_and_test_are_steps_with_batches_metrics_params_and_checkpoints(
    root: Path, tmp_path: Path, auto: bool
) -> None:
    doc, _ = train(root, tmp_path / "work", "train_lightning.py", "--validate", auto=auto)
    assert doc["status"] == "completed"
    names = ("fit", "test", "validate") + (("train_lightning.py", "python") if auto else ())
    steps = steps_named(doc, *names)
    fit, test = steps["fit"], steps["test"]
    validate = steps["validate"]["progress"]
    assert (validate["completed"], validate["total"], validate["unit"]) == (8, 8, "batch")
    # 256 samples / 32 per batch = 8 batches an epoch, 3 epochs
    assert (fit["status"], fit["progress"]["completed"], fit["progress"]["total"]) == (
        "completed",
        24,
        24,
    )
    assert fit["progress"]["unit"] == "batch"
    assert (test["status"], test["progress"]["completed"], test["progress"]["total"]) == (
        "completed",
        8,
        8,
    )
    assert doc["params"]["lr"] == 0.05 and doc["params"]["hidden"] == 8
    val = metric(doc, "val_loss")
    # one per epoch (the sanity check's excluded), and validate()'s, at the same global
    # step as the last epoch's (not logged again if the value is the same)
    assert val["count"] in (3, 4) and val["direction"] == "min"
    assert metric(doc, "train_loss_step")["count"] >= 6
    assert metric(doc, "test_loss")["count"] == 1
    checkpoints = [a for a in doc["artifacts"] if a.get("kind") == "checkpoint"]
    best = [a for a in checkpoints if a.get("best")]
    assert (
        len(best) == 1 and best[0]["path"].endswith(".ckpt") and Path(best[0]["path"]).is_absolute()
    )
    assert any(a["path"].endswith("last.ckpt") for a in checkpoints)
    assert Path(best[0]["path"]).exists()


def test_pytorch_lightning_unchanged_under_auto(root: Path, tmp_path: Path) -> None:
    doc, _ = train(
        root,
        tmp_path / "work",
        "train_lightning.py",
        "--package",
        "pytorch_lightning",
        "--epochs",
        "2",
        auto=True,
    )
    steps = steps_named(doc, "fit", "test", "train_lightning.py", "python")
    assert steps["fit"]["progress"]["completed"] == steps["fit"]["progress"]["total"] == 16
    assert metric(doc, "val_loss")["count"] == 2
    assert any(a.get("best") for a in doc["artifacts"])


def test_auto_integrations_false_leaves_the_trainer_alone(root: Path, tmp_path: Path) -> None:
    doc, _ = train(
        root,
        tmp_path / "work",
        "train_lightning.py",
        "--epochs",
        "1",
        auto=True,
        OTEL_TRACKER_AUTO_INTEGRATIONS="false",
    )
    assert [s["name"] for s in all_steps(doc)] == ["python", "train_lightning.py"]
    assert "lr" not in doc["params"]
    # nothing logged by the integration; what Lightning's own TensorBoard logger wrote
    # is still read into the run when the command exits, each key naming its files
    keys = doc.get("metrics", {}).get("keys", {})
    assert keys["val_loss"]["source"].endswith("lightning_logs/version_0")
    assert all(k.get("source", "").startswith("tensorboard:") for k in keys.values())
    assert doc["params"]["tensorboard"]["lr"] == 0.05


@pytest.mark.parametrize("auto", [False, True], ids=["explicit", "auto"])
def test_a_fit_that_raises_fails_its_step_and_the_run_with_the_error(
    root: Path, tmp_path: Path, auto: bool
) -> None:
    doc, done = train(
        root,
        tmp_path / "work",
        "train_lightning.py",
        "--fail-at-step",
        "11",
        auto=auto,
        exit_code=1,
    )
    assert "loss diverged" in done.stderr
    fit = next(s for s in all_steps(doc) if s["name"] == "fit")
    assert fit["status"] == "failed" and "loss diverged" in fit["error"]["message"]
    assert fit["progress"]["completed"] == 11  # the batches done before the one that raised
    assert "test" not in [s["name"] for s in all_steps(doc)]
    assert doc["status"] == "failed"
    if not auto:  # a run of its own: the script's name, its error
        assert doc["name"] == "train_lightning" and "loss diverged" in doc["error"]["message"]
