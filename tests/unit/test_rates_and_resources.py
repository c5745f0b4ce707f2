"""Rates right from the first items and never 0 while items move, time per item for
slow steps, ETAs that say what they do not know, and the machine beside them."""

from __future__ import annotations

import pytest

from otel_tracker.progress.eta import Eta, StepTiming, estimate
from otel_tracker.progress.rate import WINDOW_S, RateEstimator, rate_text, singular
from otel_tracker.progress.resources import resource_text
from otel_tracker.record.reporter import plain_delays


def test_the_rate_is_right_from_the_first_items() -> None:
    rate = RateEstimator(started_at=100.0)
    assert rate.rate() is None
    rate.observe(100.05, 0)  # a refresh before the first item: no rate, not 0
    assert rate.rate() is None
    rate.observe(101.0, 10)  # 10 items/s from the first second (an EMA from 0 said 1/s)
    assert rate.rate() == pytest.approx(10.0)
    for second in range(2, 8):
        rate.observe(100 + second, 10 * second)
    assert rate.rate() == pytest.approx(10.0, rel=0.02)


def test_the_rate_follows_a_step_that_slows_down() -> None:
    rate = RateEstimator(started_at=0.0)
    count = 0
    for t in range(1, 61):  # 20 items/s for a minute
        count += 20
        rate.observe(float(t), count)
    for t in range(61, 61 + int(WINDOW_S) + 2):  # then 5 items/s
        count += 5
        rate.observe(float(t), count)
    assert rate.rate() == pytest.approx(5.0, rel=0.1)  # the step's average would say ~16


def test_a_slow_step_is_slow_not_stopped() -> None:
    rate = RateEstimator(started_at=0.0)
    for t in range(0, 600, 5):  # one epoch a minute, a reading every 5 s
        rate.observe(float(t), t // 60)
    # a minute per epoch (9 epochs by the reading at 540 s), never 0 between epochs
    assert rate.rate() == pytest.approx(1 / 60)
    assert rate_text(rate.rate(), "epochs") == "1.0 min/epoch"
    rate.observe(700.0, 9)  # the tenth epoch has taken 160 s so far: at least that slow
    assert rate.rate() == pytest.approx(1 / 160)


def test_one_slow_item_done_early_is_timed_by_when_it_finished() -> None:
    rate = RateEstimator(started_at=0.0)
    for t in (1.0, 2.0, 3.0):  # readings every second; the first epoch ended at ~1.5 s
        rate.observe(t, 0 if t < 1.5 else 1)
    assert rate.rate() == pytest.approx(1 / 2.0)  # 2 s (its reading), not 3 s (now)


@pytest.mark.parametrize(
    ("rate", "unit", "text"),
    [
        (812.4, "env steps", "812 env steps/s"),
        (12_345.0, None, "12,345 items/s"),
        (2.5, "batches", "2.5 batches/s"),
        (0.5, "batches", "2.0 s/batch"),
        (1 / 42, "epochs", "42 s/epoch"),
        (1 / 186, None, "3.1 min/item"),
        (1 / 7200, "runs", "2.0 h/run"),
        (None, "x", ""),
        (0.0, "x", ""),
    ],
)
def test_rates_read_as_people_say_them(rate: float | None, unit: str | None, text: str) -> None:
    assert rate_text(rate, unit) == text


def test_units_in_the_singular() -> None:
    assert [singular(u) for u in ("epochs", "batches", "boxes", "glass", "env steps", "mb")] == [
        "epoch",
        "batch",
        "box",
        "glass",
        "env step",
        "mb",
    ]


def S(status: str, expected: float | None = None, actual: float | None = None, **kw) -> StepTiming:
    return StepTiming(name="s", status=status, expected_s=expected, actual_s=actual, **kw)


def test_a_first_run_knows_the_running_step_and_says_what_it_does_not_know() -> None:
    running = S("running", None, 20, completed=20, total=80, rate=1.0)
    first_run = estimate([S("completed", None, 30), running, S("pending"), S("pending")])
    assert first_run.remaining_s == pytest.approx(60)  # the step's own 60 s left
    assert first_run.text() == "ETA ≥ 1m (2 steps without history)"
    assert first_run.source == "in-step rate"
    known = estimate([S("completed", 10, 10), S("pending", 30, source="declared")])
    assert known.text() == "ETA 30s" and known.source == "declared"
    both = estimate([S("running", 100, 10, completed=10, total=100, rate=1.0), S("pending", 50)])
    assert both.source == "history+in-step rate"
    assert Eta(5.0, at_least=True, unknown_steps=1).text() == "ETA ≥ 5s (1 step without history)"


def test_off_a_terminal_lines_come_soon_then_less_often() -> None:
    delays = plain_delays(30.0)
    assert [next(delays) for _ in range(7)] == [3.0, 6.0, 12.0, 24.0, 30.0, 30.0, 30.0]
    short = plain_delays(1.0)
    assert [next(short) for _ in range(3)] == [1.0, 1.0, 1.0]


def test_the_machine_in_one_line() -> None:
    points = {
        "process.cpu.utilization": 0.935,
        "otel_tracker.process.memory.pss": 3.1e9,
        "process.memory.usage": 3.5e9,
        "hw.gpu.utilization{hw.id=GPU-a,otel_tracker.gpu.index=0}": 0.92,
        "hw.gpu.memory.usage{hw.id=GPU-a,otel_tracker.gpu.index=0}": 14e9,
        "hw.gpu.memory.limit{hw.id=GPU-a,otel_tracker.gpu.index=0}": 80e9,
        "hw.gpu.utilization{hw.id=GPU-b,otel_tracker.gpu.index=1}": 0.10,
    }
    assert resource_text(points, 2) == "CPU 187% of 2 · PSS 3.1 GB · GPU0 92% 14/80 GB · GPU1 10%"
    assert resource_text({"process.memory.usage": 2e8}, None) == "RSS 200 MB"
    assert resource_text({}, 2) == "" and resource_text(None, 2) == ""
    starved = resource_text(points, 2, recent_gpu=[0.2, 0.3, 0.4, 0.3])
    assert "input-bound" not in starved  # at the rules' threshold (30%): not idle yet
    starved = resource_text(points, 2, recent_gpu=[0.3, 0.25, 0.35, 0.2])
    assert starved.endswith("· GPU idle 72%: input-bound?")
    idle_cpu = dict(points, **{"process.cpu.utilization": 0.1})
    assert "input-bound" not in resource_text(idle_cpu, 2, recent_gpu=[0.1, 0.1, 0.1])


def test_a_reader_times_items_by_when_the_count_last_changed() -> None:
    from otel_tracker.progress.rate import counted_rate

    # one epoch done at 1.5 s (the manifest's progress.updated_at), read at 3 s
    assert counted_rate(0.0, 1.5, 3.0, 1) == pytest.approx(1 / 1.5)
    # read at 5 s: the second epoch has taken 3.5 s already, so at least that
    assert counted_rate(0.0, 1.5, 5.0, 1) == pytest.approx(1 / 3.5)
    assert counted_rate(0.0, None, 4.0, 8) == pytest.approx(2.0)  # no stamp: the average
    assert counted_rate(0.0, 1.0, 2.0, 0) is None
