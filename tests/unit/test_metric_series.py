"""``run.log()`` / ``step.log()``: metric series in metrics.jsonl and the manifest."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from otel_tracker import ConfigError, track_run
from otel_tracker.contract.series import CURVE_POINTS, KeySummary
from otel_tracker.record import series as series_module
from tests.helpers import load_manifest


def _series(run_dir: Path) -> dict[str, list[tuple[int, float | None, str | None]]]:
    """Every point of metrics.jsonl per key: (step, value, stage), in file order."""
    out: dict[str, list[tuple[int, float | None, str | None]]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert len(record["step"]) == len(record["value"]) == len(record["time"])
        for step, value in zip(record["step"], record["value"], strict=True):
            out.setdefault(record["key"], []).append((step, value, record.get("stage")))
    return out


def _quiet(root: Path, **kwargs: Any) -> Any:
    return track_run("train", root=root, progress="off", resources=False, **kwargs)


def test_values_become_series_with_steps_stages_and_a_summary(root: Path) -> None:
    with _quiet(root, steps=["fit"]) as run:
        run.log({}, direction={"loss": "min"})
        with run.step("fit") as step:
            for epoch in range(10):
                step.log({"loss": np.float32(1 / (epoch + 1)), "acc": epoch / 10}, step=epoch)
        run.log("lr", 0.1)  # no step: one more than the key's last, from 0
        run.log("lr", 0.05)
        run.log({"lr": 0.01}, step=10)
        run.log("lr", 0.005)
    doc = load_manifest(run.manifest_path)  # schema-valid
    points = _series(run.dir)
    assert [p[0] for p in points["loss"]] == list(range(10))
    assert {p[2] for p in points["loss"]} == {"fit"} and points["lr"][0][2] is None
    assert [(s, v) for s, v, _ in points["lr"]] == [(0, 0.1), (1, 0.05), (10, 0.01), (11, 0.005)]
    loss = doc["metrics"]["keys"]["loss"]
    assert (loss["count"], loss["first_step"], loss["last_step"]) == (10, 0, 9)
    assert loss["direction"] == "min" and loss["best"] == loss["min"] == loss["last"]
    assert loss["best_step"] == 9 and loss["max"] == 1.0
    assert doc["metrics"]["keys"]["acc"]["direction"] is None  # never guessed
    assert doc["metrics"]["keys"]["acc"]["best"] is None


def test_nan_and_inf_are_kept_as_gaps_not_figures(root: Path) -> None:
    with _quiet(root) as run:
        for value in (1.0, float("nan"), float("inf"), 0.5):
            run.log("loss", value)
    doc = load_manifest(run.manifest_path)
    loss = doc["metrics"]["keys"]["loss"]
    assert [v for _, v, _ in _series(run.dir)["loss"]] == [1.0, None, None, 0.5]
    assert (loss["count"], loss["nonfinite"], loss["min"], loss["max"]) == (4, 2, 0.5, 1.0)


def test_log_scores_is_the_summary_view_of_the_same_series(root: Path) -> None:
    with _quiet(root) as run:
        for epoch, value in enumerate((0.9, 0.5, 0.7)):
            run.log_scores({"val_loss": value}, direction={"val_loss": "min"}, epoch=epoch)
    doc = load_manifest(run.manifest_path)
    assert doc["scores"]["val_loss"]["best"] == 0.5  # as before
    series = doc["metrics"]["keys"]["val_loss"]
    assert (series["best"], series["best_step"], series["direction"]) == (0.5, 1, "min")
    assert [s for s, _, _ in _series(run.dir)["val_loss"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda run: run.log({"loss": "low"}), "metric 'loss' must be a number"),
        (lambda run: run.log({"loss": [1, 2]}), "metric 'loss' must be a number"),
        (lambda run: run.log("loss"), "needs a value"),
        (lambda run: run.log(["loss", 1]), "takes a mapping"),
        (lambda run: run.log({"loss": 1}, step=1.5), "step must be a whole number"),
        (lambda run: run.log({"loss": 1}, step=True), "step must be a whole number"),
        (lambda run: run.log({"loss": 1}, direction={"loss": "down"}), "'max' or 'min'"),
    ],
)
def test_a_wrong_call_is_one_clear_error_at_the_call(root: Path, call: Any, message: str) -> None:
    with _quiet(root) as run:
        with pytest.raises(ConfigError, match=message):
            call(run)
        run.log({"ok": 1})
    assert list(load_manifest(run.manifest_path)["metrics"]["keys"]) == ["ok"]


def test_bad_keys_are_dropped_with_one_warning_each(root: Path) -> None:
    with _quiet(root) as run:
        run.log({"": 1.0, 7: 2.0, "x" * 300: 3.0, "fine": 4.0})  # type: ignore[dict-item]
        run.log({"": 1.0})
    doc = load_manifest(run.manifest_path)
    assert list(doc["metrics"]["keys"]) == ["fine"]
    assert sum("metric key" in w for w in doc["warnings"]) == 3, doc["warnings"]


def test_calls_after_the_end_are_ignored_with_one_warning(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _quiet(root) as run, run.step("a") as step:
        run.log("loss", 1.0)
    before = run.manifest_path.read_bytes()
    with caplog.at_level(logging.WARNING):
        run.log("loss", 2.0)
        step.log("loss", 3.0)
    assert run.manifest_path.read_bytes() == before
    assert sum("has ended" in r.getMessage() for r in caplog.records) == 1


def test_threads_lose_nothing(root: Path) -> None:
    with _quiet(root) as run:

        def work(i: int) -> None:
            for n in range(5_000):
                run.log({f"t{i}": n, "shared": n})

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    keys = load_manifest(run.manifest_path)["metrics"]["keys"]
    assert [keys[f"t{i}"]["count"] for i in range(4)] == [5_000] * 4
    assert keys["shared"]["count"] == 20_000 and keys["shared"]["last_step"] == 19_999
    assert sum(len(v) for v in _series(run.dir).values()) == 40_000


def test_memory_is_bounded_and_what_was_dropped_is_counted(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series_module, "MAX_PENDING", 100)
    monkeypatch.setattr(series_module, "FLUSH_INTERVAL_S", 3600.0)  # only the end flushes
    with _quiet(root) as run:
        for n in range(1_000):
            run.log("loss", n)
        assert len(run.metrics._pending) == 100
    doc = load_manifest(run.manifest_path)
    loss = doc["metrics"]["keys"]["loss"]
    assert (loss["count"], doc["metrics"]["dropped"]) == (100, 900)
    assert (loss["first_step"], loss["last"]) == (0, 999.0)  # the newest kept
    assert any("logged faster than they could be written" in w for w in doc["warnings"])


def test_a_forked_child_records_nothing_and_the_parent_everything(root: Path) -> None:
    with _quiet(root) as run:
        run.log("loss", 1.0)
        pid = os.fork()
        if pid == 0:  # the child: ignored, no thread, no hang
            try:
                for n in range(1_000):
                    run.log("loss", n)
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        run.log("loss", 2.0)
    assert [v for _, v, _ in _series(run.dir)["loss"]] == [1.0, 2.0]


def test_the_curve_spans_the_whole_series_at_one_stride() -> None:
    summary = KeySummary()
    for n in range(1_000):
        summary.add(n, float(n))
    curve = summary.to_dict()["curve"]
    steps = [step for step, _ in curve]
    assert len(curve) <= CURVE_POINTS and steps[0] == 0 and steps[-1] == 999  # both ends
    assert len({b - a for a, b in itertools.pairwise(steps[:-1])}) == 1  # evenly spaced


@pytest.mark.parametrize(
    "value", ["0.3", b"0.5", bytearray(b"7"), True, 10**400, [1.0], None, object()]
)
def test_strings_bools_and_unrepresentable_values_are_refused(root: Path, value: Any) -> None:
    with _quiet(root) as run:
        with pytest.raises(ConfigError, match="metric 'x' must be a number"):
            run.log({"x": value})
        with pytest.raises(ConfigError):
            run.log("x", value)


def test_values_beyond_what_readers_accept_are_gaps_not_an_unreadable_run(root: Path) -> None:
    from otel_tracker.status import get_run_status

    with _quiet(root) as run:
        run.log({"grad_norm": 1.0})
        run.log({"grad_norm": 3.5e19})  # an exploding gradient: a legal float
        run.log({"grad_norm": -1e300})
        with pytest.raises(ConfigError, match="within"):
            run.log({"loss": 0.5}, step=10**19)
    series = get_run_status(run.run_id, root=root).metrics["grad_norm"]  # readable
    assert (series["count"], series["nonfinite"], series["max"]) == (3, 2, 1.0)
    assert [v for _, v, _ in _series(run.dir)["grad_norm"]] == [1.0, None, None]


@pytest.mark.parametrize("direction", ["min", ["loss"], {"loss": "MIN"}])
def test_a_malformed_direction_is_a_config_error(root: Path, direction: Any) -> None:
    with _quiet(root) as run, pytest.raises(ConfigError, match="'max' or 'min'"):
        run.log({"loss": 1.0}, direction=direction)


def test_a_direction_declared_late_still_knows_the_best_step(root: Path) -> None:
    with _quiet(root) as run:
        for value in (3.0, 1.0, 2.0):
            run.log("loss", value)
        run.metrics.flush()  # the points are summarised before the declaration
        run.log({}, direction={"loss": "min"})
    loss = load_manifest(run.manifest_path)["metrics"]["keys"]["loss"]
    assert (loss["best"], loss["best_step"]) == (1.0, 1)


def test_the_dashboard_gauge_keeps_the_last_finite_value(root: Path) -> None:
    with _quiet(root) as run:
        run.log({"loss": 0.7, "other": 1.0})
        run.log({"loss": float("nan")})
        run.metrics.flush()
        assert run.metrics.latest() == {"loss": 0.7, "other": 1.0}


def test_a_child_forked_while_the_writer_holds_its_lock_does_not_hang(root: Path) -> None:
    with _quiet(root) as run:
        run.log("loss", 1.0)
        with run.metrics._flush_lock:  # as if the writer thread were summarising
            pid = os.fork()
            if pid == 0:
                signal.alarm(10)  # a hang fails the test instead of holding it
                try:
                    run.log({"loss": 2.0}, direction={"loss": "min"})
                    step = run.step("in-child")
                    step.log({"loss": 3.0}, direction={"loss": "min"})
                finally:
                    os._exit(0)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_show_says_which_way_the_steps_went() -> None:
    from otel_tracker.analysis.series import metric_rows

    def shown(first: int, last: int) -> str:
        keys = {"x": {"count": 2, "first_step": first, "last_step": last, "last": 1.0}}
        return metric_rows({"keys": keys})[0][1]

    assert "steps 0..99," in shown(0, 99)
    assert "steps 10 down to -6," in shown(10, -6)  # was "steps 10..-6"
