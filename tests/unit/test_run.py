"""A run in this process: spans, manifest content and its life cycle."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from otel_tracker import ConfigError, current_run, current_step, step, track_run
from otel_tracker.clock import ManualClock
from otel_tracker.contract.liveness import lock_is_held
from otel_tracker.record.noop import NoopRun
from tests.helpers import load_manifest, only_manifest, read_when, wait_for

STEPS = ["Train expert", "Collect expert trajectories", "Pretrain BC", "Fine-tune", "Evaluate"]


def _run(root: Path, **kw: Any) -> Any:
    kw.setdefault("install_signal_handlers", False)
    return track_run("imitation-pipeline", root=root, **kw)


def test_run_and_steps_are_spans_with_cicd_attributes(root: Path, in_memory_spans: Any) -> None:
    exporter, processor = in_memory_spans
    with _run(root, steps=STEPS[:2], params={"seed": 1}, span_processors=[processor]) as run:
        with run.step("Train expert") as s:
            s.advance(3)
        with run.step("Collect expert trajectories"):
            pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root_span = spans["RUN imitation-pipeline"]
    assert root_span.kind is SpanKind.SERVER
    assert root_span.parent is None
    assert root_span.attributes["cicd.pipeline.name"] == "imitation-pipeline"
    assert root_span.attributes["cicd.pipeline.run.id"] == run.run_id
    assert root_span.attributes["cicd.pipeline.result"] == "success"
    assert root_span.attributes["otel_tracker.param.seed"] == 1
    for name in STEPS[:2]:
        child = spans[name]
        assert child.parent.span_id == root_span.context.span_id
        assert child.context.trace_id == root_span.context.trace_id
        assert child.attributes["cicd.pipeline.task.name"] == name
        assert child.attributes["cicd.pipeline.task.run.result"] == "success"
    assert spans["Train expert"].attributes["otel_tracker.step.progress.completed"] == 3
    doc = only_manifest(root)
    assert doc["trace"]["trace_id"] == format(root_span.context.trace_id, "032x")
    assert doc["steps"][0]["span_id"] == format(spans["Train expert"].context.span_id, "016x")


def test_manifest_records_the_whole_run(root: Path) -> None:
    with _run(
        root,
        steps=STEPS,
        params={"seed": 1, "api_key": "sk-abcdefghijklmnopqrstu"},
        scenario="smoke",
    ) as run:
        with run.step("Train expert") as s:
            s.set_total(10, unit="iterations")
            for _ in range(10):
                s.advance()
        run.skip("Pretrain BC", reason="disabled in config")
        with run.step("Collect expert trajectories"):
            pass
    doc = load_manifest(run.manifest_path)
    assert doc["schema_version"] == 1
    assert doc["run_id"] == run.run_id == run.dir.name
    assert (doc["name"], doc["scenario"], doc["status"], doc["exit_code"]) == (
        "imitation-pipeline",
        "smoke",
        "completed",
        0,
    )
    assert doc["params"] == {"seed": 1, "api_key": "***"}
    assert [s["status"] for s in doc["steps"]] == [
        "completed",
        "completed",
        "skipped",
        "pending",
        "pending",
    ]
    progress = doc["steps"][0]["progress"]
    assert (progress["completed"], progress["total"], progress["unit"]) == (10, 10, "iterations")
    assert progress["updated_at"].endswith("Z")
    assert doc["steps"][3]["progress"]["updated_at"] is None
    assert doc["steps"][2]["skip_reason"] == "disabled in config"
    assert (doc["steps_total"], doc["steps_enabled"], doc["steps_completed"]) == (5, 4, 2)
    assert doc["last_completed_step"] == "Collect expert trajectories"
    assert doc["duration_s"] >= doc["steps"][0]["duration_s"] > 0
    assert doc["process"]["pid"] > 0 and doc["process"]["host"]
    assert doc["environment"]["packages"]["opentelemetry-sdk"]
    assert doc["ended_at"].endswith("Z") and doc["heartbeat_at"].endswith("Z")
    assert lock_is_held(run.dir / ".lock") is False


def test_exception_fails_step_and_run_and_reraises(root: Path) -> None:
    with (
        pytest.raises(ZeroDivisionError),
        _run(root, steps=STEPS[:2]) as run,
        run.step("Train expert"),
    ):
        1 / 0  # noqa: B018
    doc = load_manifest(run.manifest_path)
    assert doc["status"] == "failed"
    assert doc["error"]["type"] == "ZeroDivisionError"
    assert "division by zero" in doc["error"]["message"]
    assert "1 / 0" in doc["error"]["traceback"]
    step0, step1 = doc["steps"]
    assert step0["status"] == "failed" and step0["error"]["type"] == "ZeroDivisionError"
    assert step1["status"] == "pending"
    assert doc["last_completed_step"] is None


def test_exception_sets_span_status(root: Path, in_memory_spans: Any) -> None:
    exporter, processor = in_memory_spans
    with pytest.raises(KeyError), _run(root, span_processors=[processor]) as run, run.step("load"):
        raise KeyError("missing")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    for span in spans.values():
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "KeyError"
    assert spans["load"].attributes["cicd.pipeline.task.run.result"] == "failure"
    assert any(e.name == "exception" for e in spans["load"].events)


def test_system_exit_codes(root: Path) -> None:
    with pytest.raises(SystemExit), _run(root) as run:
        raise SystemExit(3)
    doc = load_manifest(run.manifest_path)
    assert (doc["status"], doc["exit_code"]) == ("failed", 3)
    assert doc["error"]["message"] == "exited with code 3"
    with pytest.raises(SystemExit), _run(root) as ok:
        raise SystemExit(0)
    assert load_manifest(ok.manifest_path)["status"] == "completed"


def test_undeclared_and_repeated_steps_are_appended(root: Path) -> None:
    with _run(root, steps=["a"]) as run:
        for _ in range(2):
            with run.step("epoch"):
                pass
        with run.step("a"):
            pass
    doc = load_manifest(run.manifest_path)
    assert [(s["name"], s["declared"], s["status"]) for s in doc["steps"]] == [
        ("a", True, "completed"),
        ("epoch", False, "completed"),
        ("epoch", False, "completed"),
    ]


def test_step_decorator_and_current_step(root: Path) -> None:
    @step("Train expert")
    def train(n: int) -> int:
        for _ in range(n):
            current_step().advance()
        return n

    @step
    def evaluate() -> str:
        return current_step().name

    assert train(2) == 2  # outside a run: just a function
    with _run(root, steps=["Train expert", "evaluate"]) as run:
        assert current_run() is run
        assert train(5) == 5
        assert evaluate() == "evaluate"
    assert current_run() is None
    doc = load_manifest(run.manifest_path)
    assert [s["status"] for s in doc["steps"]] == ["completed", "completed"]
    assert doc["steps"][0]["progress"]["completed"] == 5


def test_heartbeat_writes_progress_while_running(root: Path) -> None:
    with _run(root, steps=["work"], heartbeat_interval=0.05) as run, run.step("work") as s:
        s.set_total(100)
        first = wait_for(read_when(root, lambda d: d["heartbeat_at"]), what="first write")
        s.advance(42)
        doc = wait_for(
            read_when(root, lambda d: d["steps"][0]["progress"]["completed"] == 42),
            what="heartbeat with progress",
        )
        assert doc["status"] == "running" and doc["current_step"] == "work"
        assert doc["steps"][0]["elapsed_s"] is not None
        assert doc["heartbeat_at"] >= first["heartbeat_at"]
        assert lock_is_held(run.dir / ".lock") is True


def test_global_tracer_provider_is_not_clobbered(root: Path, in_memory_spans: Any) -> None:
    """The application's own provider stays global, and its spans nest under our steps."""
    from opentelemetry.sdk.trace import TracerProvider

    exporter, processor = in_memory_spans
    app_provider = TracerProvider()
    app_provider.add_span_processor(processor)
    tracer = app_provider.get_tracer("app")
    before = trace.get_tracer_provider()
    with (
        _run(root, attach_context=True) as run,
        run.step("load"),
        tracer.start_as_current_span("app-work"),
    ):
        pass
    assert trace.get_tracer_provider() is before
    (app_span,) = exporter.get_finished_spans()
    doc = load_manifest(run.manifest_path)
    assert format(app_span.context.trace_id, "032x") == doc["trace"]["trace_id"]
    assert format(app_span.parent.span_id, "016x") == doc["steps"][0]["span_id"]


def test_context_is_left_alone_without_a_global_provider(root: Path) -> None:
    """Nothing would read it, and a set context variable slows every numpy ufunc call."""
    import contextvars

    before = len(contextvars.copy_context())
    with _run(root) as run, run.step("load"):
        assert len(contextvars.copy_context()) == before
        assert not trace.get_current_span().get_span_context().is_valid
        assert current_run() is run
        assert current_step().name == "load"


def test_a_global_provider_makes_steps_the_current_span(root: Path) -> None:
    """Auto mode: with the application's global provider, its spans nest under our steps."""
    import subprocess
    import sys

    code = f"""
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider
from otel_tracker import track_run
trace.set_tracer_provider(TracerProvider())
with track_run("app", root={str(root)!r}, install_signal_handlers=False) as run:
    with run.step("load"):
        inner = trace.get_current_span().get_span_context()
        with trace.get_tracer("app").start_as_current_span("app-work") as span:
            parent = span.parent
print(json.dumps([format(inner.span_id, "016x"), format(parent.span_id, "016x"),
                  format(inner.trace_id, "032x"), str(run.manifest_path)]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    inner, parent, trace_id, manifest = json.loads(out.strip().splitlines()[-1])
    doc = load_manifest(Path(manifest))
    assert inner == parent == doc["steps"][0]["span_id"]
    assert trace_id == doc["trace"]["trace_id"]


def test_worker_threads_see_the_process_step(root: Path) -> None:
    """A thread that entered nothing itself sees the step its parent thread entered."""
    import threading

    seen: list[Any] = []

    def worker() -> None:
        current_step().advance(3)
        seen.append((current_run(), current_step().name))

    with _run(root) as run, run.step("load") as load:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert seen == [(run, "load")]
        assert load.completed == 3
    assert current_run() is None
    assert type(current_step()).__name__ == "NoopStep"


def test_injected_clock_gives_exact_durations(root: Path) -> None:
    clock = ManualClock(1_790_000_000)
    with _run(root, clock=clock) as run:
        with run.step("a"):
            clock.sleep(2.5)
        clock.sleep(0.5)
    doc = load_manifest(run.manifest_path)
    assert doc["steps"][0]["duration_s"] == 2.5
    assert doc["duration_s"] == 3.0
    assert doc["started_at"] == "2026-09-21T14:13:20.000000Z"  # 1_790_000_000 s


def test_unusable_root_degrades_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with (
        caplog.at_level(logging.WARNING),
        _run(blocker / "runs", steps=["a"]) as run,
        run.step("a") as s,
    ):
        s.advance()
    assert run.manifest_path is None
    assert run.record.status == "completed"
    assert caplog.text.count("cannot create a run directory") == 1


def test_disabled_tracking_is_a_noop(root: Path) -> None:
    with track_run("x", root=root, enabled=False, steps=["a"]) as run:
        with run.step("a") as s:
            s.set_total(3)
            s.advance()
        run.skip("b", "because")
    assert isinstance(run, NoopRun)
    assert not root.exists()


def test_bad_arguments_fail_fast(root: Path) -> None:
    with pytest.raises(ConfigError):
        track_run("", root=root)
    with pytest.raises(ConfigError):
        track_run("x", root=root, steps="Train expert")
    with pytest.raises(ConfigError):
        track_run("x", root=root, steps=["a", "a"])
    with pytest.raises(ConfigError):
        track_run("x", root=root, params=[1, 2])  # type: ignore[arg-type]
    assert not root.exists()
    with _run(root) as run:
        with pytest.raises(ConfigError):
            run.step("a", total=-1)
        with pytest.raises(ConfigError):
            run.step("")


def test_artifacts_are_recorded(root: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"0" * 123)
    with _run(root) as run:
        with run.step("train") as s:
            s.add_artifact(ckpt, kind="checkpoint")
        run.add_artifact(tmp_path, kind="directory")
    doc = load_manifest(run.manifest_path)
    assert doc["steps"][0]["artifacts"] == [
        {"path": str(ckpt), "kind": "checkpoint", "size_bytes": 123}
    ]
    assert doc["artifacts"][0]["size_bytes"] is None


def test_unserializable_params_are_kept_as_text(root: Path) -> None:
    with _run(root, params={"obj": object(), "nan": float("nan"), "nested": {"t": (1, 2)}}) as run:
        pass
    params = json.loads(run.manifest_path.read_text())["params"]
    assert params["nan"] == "nan" and params["nested"] == {"t": [1, 2]}
    assert params["obj"].startswith("<object object")


def test_scores_keep_latest_and_best_by_direction(root: Path, in_memory_spans: Any) -> None:
    exporter, processor = in_memory_spans
    with _run(root, kind="training", span_processors=[processor]) as run:
        run.log_scores({"return": 10.0, "loss": 0.9}, direction={"loss": "min"}, epoch=0)
        run.log_scores({"return": 30.0, "loss": 0.5}, epoch=1)
        run.log_scores({"return": 20.0, "loss": 0.7}, epoch=2)
        with pytest.raises(ConfigError):
            run.log_scores({"x": float("nan")})
        with pytest.raises(ConfigError):
            run.log_scores({"x": 1.0}, direction={"x": "up"})
    doc = load_manifest(run.manifest_path)
    assert doc["kind"] == "training"
    ret, loss = doc["scores"]["return"], doc["scores"]["loss"]
    assert (ret["latest"], ret["best"], ret["best_epoch"], ret["direction"]) == (
        20.0,
        30.0,
        1,
        "max",
    )
    assert (loss["latest"], loss["best"], loss["best_epoch"], loss["direction"]) == (
        0.7,
        0.5,
        1,
        "min",
    )
    assert [h["epoch"] for h in doc["score_history"]] == [0, 1, 2]
    (root_span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("RUN")]
    assert [e.attributes["score.return"] for e in root_span.events if e.name == "scores"] == [
        10.0,
        30.0,
        20.0,
    ]
    assert root_span.attributes["otel_tracker.run.kind"] == "training"


def test_kind_is_validated(root: Path) -> None:
    with pytest.raises(ConfigError):
        _run(root, kind="")


def test_the_disabled_run_has_the_whole_public_surface() -> None:
    from otel_tracker.record.noop import NoopStep
    from otel_tracker.record.run import Run, Step

    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    assert public(Run) - {
        "config",
        "record",
        "manifest_processor",
        "reporter",
        "sampler",
    } <= public(NoopRun)
    assert public(Step) <= public(NoopStep) | set(NoopStep.__slots__)


def test_a_hanging_exporter_cannot_hold_the_run_hostage(root: Path) -> None:
    """Mirrors are shut down with a hard deadline after the manifest is final."""
    import threading

    from opentelemetry.sdk.trace import SpanProcessor

    entered, release = threading.Event(), threading.Event()

    class Hangs(SpanProcessor):
        def shutdown(self) -> None:
            entered.set()
            release.wait(60)  # hangs until the test lets it go

    try:
        with _run(root, span_processors=[Hangs()], export_timeout=0.3) as run:
            pass
        # the run ended while the processor was still stuck in its shutdown
        assert entered.is_set() and not release.is_set()
        assert load_manifest(run.manifest_path)["status"] == "completed"
    finally:
        release.set()


def test_progress_can_go_to_a_logger(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    level = caplog.at_level(logging.INFO, logger="otel_tracker.progress")
    with level, _run(root, steps=["a"], progress="log") as run, run.step("a"):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "otel_tracker.progress"]
    assert lines[0].startswith("Step 1/1 – a (ETA ?") and lines[-1].startswith(
        "Run imitation-pipeline completed"
    )


def test_a_step_per_item_gets_one_warning_with_what_to_do_instead(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # nothing but transitions: they are all of the run's time, so the share is crossed
    with (
        caplog.at_level(logging.WARNING, logger="otel_tracker"),
        _run(root, progress="off", resources=False) as run,
    ):
        for i in range(120):
            with run.step(f"item-{i}"):
                pass
    warned = [r for r in caplog.records if "step transitions took" in r.getMessage()]
    assert len(warned) == 1
    doc = only_manifest(root)
    (problem,) = [w for w in doc["warnings"] if "step transitions took" in w]
    assert "over 200 step starts and ends" in problem and "step.advance()" in problem


def test_transition_cost_warns_once_past_its_share_and_step_count() -> None:
    from otel_tracker.record.transition_cost import TransitionCost

    now = [0.0]
    cost = TransitionCost(share=0.05, min_transitions=3, clock=lambda: now[0])
    now[0] = 100.0
    assert cost.add(3.0) is None  # too few transitions to judge
    assert cost.add(1.0) is None
    assert cost.add(0.5) is None  # 4.5 s of 100 s is under 5%
    message = cost.add(1.5)  # 6 s: over
    assert message is not None
    assert "6.0s of this run's 100.0s (6%) over 4 step starts and ends" in message
    assert cost.add(50.0) is None  # once


class _GateOnStepStart(SpanProcessor):
    """Holds a step's span start (after the manifest processor recorded it) until
    released: the moment a worker thread is starting a step, made to last."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if "otel_tracker.step.index" in (span.attributes or {}):
            self.entered.set()
            self.release.wait(5)


def test_a_step_starting_on_a_worker_as_the_run_ends_does_not_outlive_it(root: Path) -> None:
    gate = _GateOnStepStart()
    run = _run(root, resources=False, span_processors=[gate])
    worker = threading.Thread(target=lambda: run.step("Load shard").start())
    worker.start()
    assert gate.entered.wait(5)
    threading.Timer(0.3, gate.release.set).start()
    run.end()  # waits for the start under way, then ends the step with the run
    final = run.manifest_path.read_bytes()
    worker.join(5)
    with run.step("Too late") as late:
        late.advance()
    assert run.manifest_path.read_bytes() == final, "rewritten after the run's end"
    doc = json.loads(final)
    assert doc["status"] == "completed"
    (step,) = [s for s in doc["steps"] if s["name"] == "Load shard"]
    assert step["status"] == "failed"
    assert "while the step was running" in step["error"]["message"]
    assert step["started_at"] <= step["ended_at"] <= doc["ended_at"]
    assert [s["status"] for s in doc["steps"] if s["name"] == "Too late"] in ([], ["pending"])


def test_handles_of_one_step_name_started_together_each_get_their_own_step(
    root: Path, in_memory_spans: Any
) -> None:
    """Workers running same-named steps at once (a pool of "Download shard"s): each
    start is its own step; none shares another's record or loses its span's end."""
    exporter, processor = in_memory_spans
    with _run(root, steps=["Download shard"], resources=False, span_processors=[processor]) as run:
        first, second = run.step("Download shard"), run.step("Download shard")
        first.start()
        second.start()
        assert (first.index, second.index) == (0, 1)
        first.end()
        second.end()

        def worker() -> None:
            for _ in range(25):
                with run.step("Download shard") as s:
                    s.advance()

        workers = [threading.Thread(target=worker) for _ in range(4)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    doc = only_manifest(root)
    assert [s["status"] for s in doc["steps"]] == ["completed"] * 102
    assert [s["progress"]["completed"] for s in doc["steps"][2:]] == [1] * 100
    indices = [
        s.attributes["otel_tracker.step.index"]
        for s in exporter.get_finished_spans()
        if "otel_tracker.step.index" in s.attributes
    ]
    assert sorted(indices) == list(range(102))


def test_numpy_numbers_are_numbers_and_the_manifest_stays_valid(
    root: Path, in_memory_spans: Any
) -> None:
    """ML code hands over numpy scalars everywhere (np.float32 losses, np.int64 counts);
    they are accepted and stored as plain JSON numbers, and the manifest validates."""
    import numpy as np  # in the test extra (via 'bench' -> 'demo')

    exporter, processor = in_memory_spans
    with (
        _run(
            root,
            steps=["Train"],
            expected_durations={"Train": np.float32(60)},
            span_processors=[processor],
            sample_interval=0.1,
        ) as run,
        run.step("Train", total=np.int64(10), expected_duration=np.float64(5)) as s,
    ):
        s.advance(np.int64(3))
        s.advance(np.int32(2))
        s.advance(1.5)  # a fractional advance is counted as given, recorded as whole items
        run.set_gauge("loss", np.float32(0.25))
        run.add_count("tokens", np.int64(4096))
        run.log_scores({"acc": np.float32(0.5)}, direction={"acc": "max"})
        wait_for(lambda: run.resource_history("otel_tracker.step.items"), what="a sample")
    doc = only_manifest(root)  # validates against the published schema
    progress = doc["steps"][0]["progress"]
    assert (progress["completed"], progress["total"]) == (6, 10)
    assert type(progress["completed"]) is int and type(progress["total"]) is int
    assert doc["scores"]["acc"]["latest"] == 0.5
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "Train"]
    assert span.attributes["otel_tracker.step.progress.completed"] == 6
    assert span.attributes["otel_tracker.step.progress.total"] == 10
    with pytest.raises(ConfigError):
        track_run("x", root=root, expected_durations={"Train": "ten"})
    with pytest.raises(ConfigError):
        track_run("x", root=root, expected_durations={"Train": np.float32("nan")})


def test_params_learnt_later_are_merged_redacted_and_artifacts_are_one_per_path(
    root: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "epoch=1.ckpt"
    checkpoint.write_bytes(b"12345")
    with _run(root, params={"seed": 1}) as run:
        run.log_params({"lr": 0.01, "hub_token": "hf_hunter2", "seed": 2})
        run.add_artifact(checkpoint, kind="checkpoint")
        checkpoint.write_bytes(b"1234567")
        run.add_artifact(checkpoint, kind="checkpoint", best=True)
    doc = load_manifest(run.manifest_path)
    assert doc["params"] == {"seed": 2, "lr": 0.01, "hub_token": "***"}
    assert doc["artifacts"] == [
        {"path": str(checkpoint), "kind": "checkpoint", "size_bytes": 7, "best": True}
    ]


def test_a_stopped_clock_is_the_steps_end_whenever_it_is_ended(root: Path) -> None:
    clock = ManualClock()
    with _run(root, clock=clock, progress="off", resources=False) as run:
        step = run.step("search", total=10)
        step.__enter__()
        step.advance(4)
        clock.sleep(5)
        step.stop_clock()
        assert current_step() is not step  # it stopped being the current step at once
        clock.sleep(100)  # the program shows only now that the loop did not fail
        step.__exit__(None, None, None)
    (record,) = load_manifest(run.manifest_path)["steps"]
    assert record["status"] == "completed" and record["progress"]["completed"] == 4
    assert record["duration_s"] == 5
