"""track_run(key_params=...): history (the ETA's first guess, the analysis) comes
only from earlier runs with the same values of the params that change the work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otel_tracker import ConfigError, track_run
from otel_tracker.testing import ManualClock
from tests.helpers import load_manifest, otel_cli


def _train(root: Path, epochs: int, seed: int, key_params: Any = ("epochs",)) -> Any:
    clock = ManualClock()
    with (
        track_run(
            "train",
            root=root,
            steps=["fit"],
            params={"epochs": epochs, "seed": seed},
            key_params=key_params,
            clock=clock,
            progress="off",
            resources=False,
            summary_files=False,
        ) as run,
        run.step("fit"),
    ):
        clock.sleep(10.0 * epochs)  # the work grows with the epochs
    return run


def test_the_eta_learns_from_runs_of_the_same_configuration(root: Path) -> None:
    for seed in range(3):
        _train(root, epochs=10, seed=seed)  # 100 s each
    _train(root, epochs=1, seed=0)  # 10 s
    short = load_manifest(_train(root, epochs=1, seed=7).manifest_path)
    fit = short["steps"][0]
    # with only name and scenario the median of 100, 100, 100 and 10 s would be 100 s
    assert (fit["expected_duration_s"], fit["expected_source"]) == (10.0, "history")
    assert short["eta"]["history_runs"] == 1
    assert short["history_key"]["params"] == {"epochs": 1}
    long = load_manifest(_train(root, epochs=10, seed=9).manifest_path)
    assert long["steps"][0]["expected_duration_s"] == 100.0 and long["eta"]["history_runs"] == 3
    assert long["history_key"]["digest"] != short["history_key"]["digest"]
    shown = otel_cli(root, "show", short["run_id"])
    assert f"epochs=1 ({short['history_key']['digest']})" in shown.stdout, shown.stdout


def test_without_key_params_history_is_the_pipelines(root: Path) -> None:
    _train(root, epochs=10, seed=0, key_params=None)
    doc = load_manifest(_train(root, epochs=1, seed=0, key_params=None).manifest_path)
    assert doc["steps"][0]["expected_duration_s"] == 100.0 and "history_key" not in doc


@pytest.mark.parametrize("bad", ["epochs", [""], [1], ["epochs", None]])
def test_key_params_must_be_a_list_of_names(root: Path, bad: Any) -> None:
    with pytest.raises(ConfigError, match="key_params must be a list of param names"):
        track_run("train", root=root, params={"epochs": 1}, key_params=bad)
    assert not root.exists() or not list(root.iterdir())  # refused before any directory


def _items(root: Path, items: int, total: int | None) -> Any:
    clock = ManualClock()
    with (
        track_run(
            "etl",
            root=root,
            steps=["load"],
            clock=clock,
            progress="off",
            resources=False,
            summary_files=False,
        ) as run,
        run.step("load", total=total) as step,
    ):
        for _ in range(items):
            clock.sleep(2.0)  # two seconds an item, whatever the size
            step.advance()
    return run


def test_a_step_that_declares_its_items_is_expected_at_the_historys_pace(root: Path) -> None:
    _items(root, items=50, total=50)  # 100 s
    _items(root, items=40, total=40)  # 80 s
    small = load_manifest(_items(root, items=5, total=5).manifest_path)["steps"][0]
    # the medians of durations would say 90 s; at 2 s an item 5 items take 10 s
    assert (small["expected_duration_s"], small["expected_source"]) == (10.0, "history-items")
    unknown = load_manifest(_items(root, items=5, total=None).manifest_path)["steps"][0]
    assert (unknown["expected_duration_s"], unknown["expected_source"]) == (80.0, "history")


def test_ignore_params_keys_on_every_other_param(root: Path) -> None:
    def run(epochs: int, seed: int, data_seed: int) -> Any:
        clock = ManualClock()
        params = {"epochs": epochs, "seed": seed, "data": {"seed": data_seed, "n": 10}}
        with (
            track_run(
                "sweep",
                root=root,
                steps=["fit"],
                params=params,
                ignore_params=["seed", "data.seed"],
                clock=clock,
                progress="off",
                resources=False,
                summary_files=False,
            ) as tracked,
            tracked.step("fit"),
        ):
            clock.sleep(10.0 * epochs)
        return load_manifest(tracked.manifest_path)

    run(epochs=3, seed=1, data_seed=1)  # 30 s
    run(epochs=9, seed=1, data_seed=1)  # 90 s: another configuration
    again = run(epochs=3, seed=2, data_seed=5)  # seeds differ: the same configuration
    assert again["history_key"]["params"] == {"data.n": 10, "epochs": 3}
    assert (again["steps"][0]["expected_duration_s"], again["eta"]["history_runs"]) == (30.0, 1)


def test_key_params_and_ignore_params_are_one_or_the_other(root: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        track_run("x", root=root, params={"a": 1}, key_params=["a"], ignore_params=["b"])
    with pytest.raises(ConfigError, match="ignore_params must be a list of param names"):
        track_run("x", root=root, params={"a": 1}, ignore_params="seed")


def test_a_baseline_judges_only_runs_of_its_own_configuration(root: Path) -> None:
    """A baseline made from ten-epoch runs says nothing about a one-epoch run: it is
    filed under the configuration's digest, found only by runs with that digest, and
    runs of two configurations cannot make one baseline."""
    long = [_train(root, epochs=10, seed=s).run_id for s in range(2)]
    short = _train(root, epochs=1, seed=0).run_id
    mixed = otel_cli(root, "baseline", "create", "--from", long[0], "--from", short)
    assert mixed.returncode != 0 and "Traceback" not in mixed.stderr
    assert "different configurations (epochs=1; epochs=10)" in mixed.stderr, mixed.stderr
    made = otel_cli(root, "baseline", "create", "--from", long[0], "--from", long[1])
    assert made.returncode == 0, made.stderr
    digest = load_manifest(root / long[0] / "manifest.json")["history_key"]["digest"]
    assert f"baseline train--cfg-{digest} revision 1" in made.stdout, made.stdout
    shown = otel_cli(root, "baseline", "show", f"train--cfg-{digest}").stdout
    assert "epochs=10" in shown, shown
    refused = otel_cli(root, "baseline", "update", f"train--cfg-{digest}", "--from", short)
    assert "different configurations" in refused.stderr and refused.returncode != 0

    def baseline_of(run_id: str) -> dict[str, Any]:
        done = otel_cli(root, "summary", run_id, "--format", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["analysis"]["baseline"]

    same = _train(root, epochs=10, seed=5).run_id
    assert (baseline_of(same)["status"], baseline_of(same)["key"]) == (
        "used",
        f"train--cfg-{digest}",
    )
    other = baseline_of(short)
    assert other["status"] == "none" and "no baseline for train with epochs=1" in other["note"]
