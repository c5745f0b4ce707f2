"""The ETA model and the progress lines, on plain data and a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from otel_tracker import track_run
from otel_tracker.clock import ManualClock
from otel_tracker.progress.eta import Eta, StepTiming, estimate, history_medians
from otel_tracker.progress.render import items_text, step_line
from otel_tracker.timeparse import format_duration
from tests.helpers import load_manifest


def S(
    status: str, expected: float | None = None, actual: float | None = None, **kw: Any
) -> StepTiming:
    return StepTiming(name="s", status=status, expected_s=expected, actual_s=actual, **kw)


def test_no_history_is_unknown_not_zero() -> None:
    assert estimate([S("pending"), S("pending")]) == Eta(None, at_least=True, unknown_steps=2)
    assert Eta(None, at_least=True).text() == "ETA ?"
    assert estimate([S("pending"), S("pending")]).text() == "ETA ? (2 steps without history)"


def test_history_sums_remaining_steps() -> None:
    eta = estimate([S("completed", 60, 60), S("running", 120, 20), S("pending", 300)])
    assert eta.remaining_s == pytest.approx(100 + 300) and not eta.at_least
    assert eta.text() == "ETA 7m"


def test_slower_machine_scales_the_rest() -> None:
    eta = estimate([S("completed", 60, 90), S("completed", 40, 60), S("pending", 100)])
    assert eta.correction == pytest.approx(1.5)
    assert eta.remaining_s == pytest.approx(150)


def test_skipped_steps_count_for_nothing() -> None:
    eta = estimate([S("completed", 10, 10), S("skipped", 500), S("pending", 20)])
    assert eta.remaining_s == pytest.approx(20)


def test_observed_rate_takes_over_as_the_step_advances() -> None:
    early = estimate([S("running", 100, 10, completed=10, total=100, rate=1.0)])
    late = estimate([S("running", 100, 90, completed=90, total=100, rate=1.0)])
    # early: 10% rate (90 s) + 90% expectation (90 s); late: mostly rate (10 s)
    assert early.remaining_s == pytest.approx(90)
    assert late.remaining_s == pytest.approx(0.9 * 10 + 0.1 * 10)
    only_rate = estimate([S("running", None, 5, completed=50, total=100, rate=10.0)])
    assert only_rate.remaining_s == pytest.approx(5) and not only_rate.at_least


def test_overrun_without_rate_is_a_lower_bound() -> None:
    eta = estimate([S("running", 60, 100), S("pending", 30)])
    assert eta.at_least and eta.remaining_s == pytest.approx(30)
    assert eta.text() == "ETA ≥ 30s"


def test_correction_is_clamped() -> None:
    eta = estimate([S("completed", 1, 100), S("pending", 10)])
    assert eta.correction == 5.0 and eta.remaining_s == 50


def test_history_medians_use_only_completed_steps_of_completed_runs() -> None:
    def run(status: str, durations: list[float], step_status: str = "completed") -> dict[str, Any]:
        return {
            "status": status,
            "steps": [
                {"name": f"s{i}", "status": step_status, "duration_s": d}
                for i, d in enumerate(durations)
            ],
        }

    docs = [
        run("completed", [10, 100]),
        run("completed", [12, 110]),
        run("completed", [50, 120]),
        run("failed", [999, 999]),
    ]
    assert history_medians(docs) == {"s0": 12, "s1": 110}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0s"), (45, "45s"), (660, "11m"), (119, "2m"), (3900, "1h 05m"), (90000, "1d 01h")],
)
def test_compact_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds, compact=True) == text


def test_line_format_and_skips() -> None:
    doc = {
        "steps": [
            {"index": 0, "name": "Train expert", "status": "completed", "duration_s": 400},
            {"index": 1, "name": "Collect expert trajectories", "status": "running"},
            {"index": 2, "name": "Pretrain BC", "status": "skipped"},
            {"index": 3, "name": "Fine-tune", "status": "pending"},
            {"index": 4, "name": "Evaluate", "status": "pending"},
            {"index": 5, "name": "Report", "status": "pending"},
        ]
    }
    assert (
        step_line(doc, 1, Eta(660), 120)
        == "Step 2/5 – Collect expert trajectories (ETA 11m, elapsed 2m)"
    )
    assert (
        step_line(doc, 0, Eta(700), 400, "end")
        == "Step 1/5 – Train expert done in 7m (ETA 12m, elapsed 7m)"
    )
    assert (
        step_line(doc, 4, Eta(None, at_least=True), 5) == "Step 4/5 – Evaluate (ETA ?, elapsed 5s)"
    )


def test_items_text() -> None:
    step = {"progress": {"completed": 4000, "total": 10000, "unit": "env steps"}}
    assert items_text(step, 812.4) == "4,000/10,000 env steps (40%, 812 env steps/s)"
    assert items_text({"progress": {"completed": 7, "total": None, "unit": None}}, None) == "7"
    assert items_text({"progress": {"completed": 0, "total": None}}, None) == ""


def _pipeline(
    root: Path, clock: ManualClock, durations: dict[str, float], skip: str | None = None
) -> Any:
    steps = list(durations)
    with track_run(
        "etl", root=root, steps=steps, clock=clock, progress="plain", install_signal_handlers=False
    ) as run:
        for name, seconds in durations.items():
            if name == skip:
                run.skip(name, reason="off")
                continue
            with run.step(name):
                clock.sleep(seconds)
    return run


def test_eta_learns_from_history_on_a_fake_clock(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = ManualClock()
    base = {"extract": 60.0, "transform": 600.0, "load": 120.0}
    first = _pipeline(root, clock, base)
    out = capsys.readouterr().err
    assert "Step 1/3 – extract (ETA ? (3 steps without history), elapsed 0s)" in out
    first_doc = load_manifest(first.manifest_path)
    assert first_doc["eta"]["history_runs"] == 0
    opening = first_doc["eta"]["log"][0]  # the ETA log says what it knew, and whence
    assert (opening["source"], opening["unknown_steps"], opening["step_source"]) == (
        "none",
        3,
        "none",
    )
    _pipeline(root, clock, base)
    capsys.readouterr()
    slow = _pipeline(root, clock, {k: v * 1.5 for k, v in base.items()})  # a machine 1.5x slower
    out = capsys.readouterr().err
    assert "Step 1/3 – extract (ETA 13m, elapsed 0s)" in out  # 60+600+120 s from history
    # after step 1 took 1.5x its history, the rest is scaled by 1.5: (600+120)*1.5 = 18m
    assert "Step 1/3 – extract done in 2m (ETA 18m, elapsed 2m)" in out
    doc = load_manifest(slow.manifest_path)
    assert doc["eta"]["history_runs"] == 2
    assert [s["expected_source"] for s in doc["steps"]] == ["history"] * 3
    log = doc["eta"]["log"]
    assert [(e["event"], e["step"]) for e in log] == [
        (ev, n) for n in base for ev in ("start", "end")
    ]
    assert {(e["source"], e["step_source"]) for e in log[:-1]} == {("history", "history")}
    end2 = [e for e in log if e["event"] == "end"][1]
    assert end2["eta_s"] == pytest.approx(180.0)  # exactly what remained: 120 s * 1.5


def test_skipped_step_adjusts_total_and_eta(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock()
    base = {"a": 10.0, "b": 20.0, "c": 30.0}
    _pipeline(root, clock, base)
    capsys.readouterr()
    _pipeline(root, clock, base, skip="b")
    out = capsys.readouterr().err
    assert "Skipped b: off (2 steps enabled)" in out
    assert "Step 2/2 – c (ETA 30s, elapsed 10s)" in out
    assert "Run etl completed in 40s (2/2 steps)" in out


def test_author_estimates_and_summary_accuracy(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from otel_tracker.analysis.report import build_report
    from otel_tracker.history.store import RunStore

    clock = ManualClock()
    with track_run(
        "x",
        root=root,
        steps=["a", "b", "c"],
        expected_durations={"a": 10, "b": 10, "c": 10},
        clock=clock,
        progress="off",
        install_signal_handlers=False,
    ) as run:
        for name in ("a", "b", "c"):
            with run.step(name):
                clock.sleep(20)
    assert capsys.readouterr().err == ""  # progress off prints nothing
    doc = load_manifest(run.manifest_path)
    assert [s["expected_source"] for s in doc["steps"]] == ["author"] * 3
    report = build_report(RunStore.open(root).get("latest"))
    acc = report["figures"]["eta_accuracy"]
    # after b: a and b ran 2x -> c predicted 20 s; it took 20 s
    assert (
        acc["after_step"] == "b"
        and acc["predicted_s"] == pytest.approx(20)
        and acc["error_pct"] == pytest.approx(0)
    )


def test_live_line_flags_a_stuck_step(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACKER_STUCK_AFTER", "600")
    clock = ManualClock()
    with (
        track_run(
            "s",
            root=root,
            steps=["work"],
            clock=clock,
            progress="off",
            install_signal_handlers=False,
        ) as run,
        run.step("work") as step,
    ):
        step.set_total(100)
        step.advance(10)
        clock.sleep(5)
        assert "STUCK" not in run.reporter.current_line()
        clock.sleep(700)  # no advance() for 700 s > 600 s
        line = run.reporter.current_line()
        assert line.startswith("Step 1/1 – work: 10/100 (10%")
        assert "STUCK: no progress in step 'work' for 11m 4" in line
        step.advance()
        assert "STUCK" not in run.reporter.current_line()


@pytest.mark.parametrize("known", [0.001, 0.3, 0.49, 0.5])
def test_a_lower_bound_that_rounds_to_nothing_is_shown_as_unknown(
    root: Path, capsys: pytest.CaptureFixture[str], known: float
) -> None:
    # issue 22.10: "ETA ≥ 0s" says nothing; the first step's estimate is all that is
    # known and the second has none, so the run's ETA is "at least" that much
    clock = ManualClock()
    with track_run(
        "lb",
        root=root,
        steps=["short", "unknown"],
        expected_durations={"short": known},
        clock=clock,
        progress="plain",
        install_signal_handlers=False,
    ) as run:
        for name in ("short", "unknown"):
            with run.step(name):
                clock.sleep(2)
    out = capsys.readouterr().err
    assert "Step 1/2 – short (ETA ? (1 step without history), elapsed 0s)" in out, out
    assert "≥ 0s" not in out
    start = load_manifest(run.manifest_path)["eta"]["log"][0]
    # the data keeps what is known: a lower bound of `known` seconds
    assert start["eta_s"] == pytest.approx(known) and start["at_least"] is True
    assert Eta(known, at_least=False).text() == "ETA 0s"  # an estimate of ~0 is honest
    assert Eta(known + 1, at_least=True).text() == f"ETA ≥ {round(known + 1)}s"
