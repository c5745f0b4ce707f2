"""tqdm bars as steps, with the real tqdm: outermost bars are steps, nested ones are not,
progress is read from the bar (never hooked per update), and a bar closed early ends
its step truthfully."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import tqdm.std as tqdm_std
from tqdm import tqdm, trange
from tqdm.contrib.concurrent import thread_map

from otel_tracker import current_step, track_run
from otel_tracker.integrations import tqdm as bars
from tests.helpers import load_manifest, manifests, otel_cli

ORIGINAL_UPDATE, ORIGINAL_ITER = tqdm_std.tqdm.update, tqdm_std.tqdm.__iter__


@pytest.fixture
def capture() -> Iterator[bars.BarCapture]:
    found = bars.capture()
    yield found
    bars.release()


def _run(root: Path) -> Any:
    return track_run("bars", root=root, progress="off", resources=False, summary_files=False)


def _steps(run: Any) -> list[dict[str, Any]]:
    return load_manifest(run.manifest_path)["steps"]


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_outermost_bars_are_steps_and_nested_bars_are_their_loops(
    root: Path, capture: bars.BarCapture
) -> None:
    with _run(root) as run:
        for _ in tqdm(range(4), desc="Load files: ", unit="file", file=sys.stderr):
            pass
        for _ in trange(3, desc="Train"):
            for _ in tqdm(range(5), desc="batches", leave=False):
                pass
        for _ in tqdm(range(2)):  # no desc: named by the line that made it
            pass
    steps = _steps(run)
    line = next(
        i
        for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if "no desc: named" in text
    )
    assert [s["name"] for s in steps] == ["Load files", "Train", f"{Path(__file__).name}:{line}"]
    load, train, unnamed = steps
    assert load["progress"] | {"updated_at": None} == {
        "completed": 4,
        "total": 4,
        "unit": "file",
        "updated_at": None,
    }
    assert (train["progress"]["completed"], train["progress"]["total"]) == (3, 3)
    assert train["progress"]["unit"] is None  # tqdm's default "it" is plain items
    assert [s["status"] for s in steps] == ["completed"] * 3
    assert unnamed["progress"]["completed"] == 2


def test_progress_is_read_from_the_bar_and_nothing_hooks_its_updates(
    root: Path, capture: bars.BarCapture
) -> None:
    assert tqdm_std.tqdm.update is ORIGINAL_UPDATE and tqdm_std.tqdm.__iter__ is ORIGINAL_ITER
    with _run(root) as run, tqdm(total=10, desc="Manual", unit="row") as bar:
        bar.update(3)
        bar.update(4)
        assert current_step().read_progress() == (7, 10, "row")
        bar.total = 12  # a bar whose total grows (a streaming reader)
        assert current_step().read_progress() == (7, 12, "row")
        bar.update(5)
    (step,) = _steps(run)
    assert (step["progress"]["completed"], step["progress"]["total"]) == (12, 12)


def test_a_bar_left_by_break_completes_at_the_moment_it_closed(
    root: Path, capture: bars.BarCapture
) -> None:
    capture.grace_s = 30.0  # only the next bar settles it here
    with _run(root) as run:
        for x in tqdm(range(10), desc="Search"):
            if x == 4:
                break
        time.sleep(0.2)
        for _ in tqdm(range(2), desc="Next"):
            pass
    search, following = _steps(run)
    assert search["status"] == "completed"
    assert (search["progress"]["completed"], search["progress"]["total"]) == (4, 10)
    # its clock stopped at the break, not when the next bar settled it
    assert _at(following["started_at"]) - _at(search["ended_at"]) >= 0.15


def test_a_bar_left_by_an_exception_fails_with_it_when_the_program_exits(
    root: Path, capture: bars.BarCapture
) -> None:
    capture.grace_s = 30.0
    with _run(root) as run:
        try:
            for x in tqdm(range(10), desc="Eval"):
                if x == 6:
                    raise ValueError("bad batch")
        except ValueError as exc:
            capture.finish(exc)  # what the process run does at interpreter exit
    (step,) = _steps(run)
    assert step["status"] == "failed" and "bad batch" in step["error"]["message"]
    assert step["progress"]["completed"] == 6


def test_a_closed_early_bar_completes_after_the_grace_period(
    root: Path, capture: bars.BarCapture
) -> None:
    capture.grace_s = 0.05
    with _run(root) as run:
        for x in tqdm(range(10), desc="Early"):
            if x == 2:
                break
        step_ended = lambda: run.record.steps[0].status == "completed"  # noqa: E731
        deadline = time.monotonic() + 20
        while not step_ended() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert step_ended()


def test_a_disabled_bar_is_a_step_without_progress(root: Path, capture: bars.BarCapture) -> None:
    with _run(root) as run:
        for _ in tqdm(range(5), desc="Quiet", disable=True):
            pass
    (step,) = _steps(run)
    assert step["name"] == "Quiet" and step["status"] == "completed"
    assert step["progress"]["total"] is None and step["progress"]["completed"] == 0


def test_a_bar_inside_a_step_that_counts_nothing_is_its_progress(
    root: Path, capture: bars.BarCapture
) -> None:
    with _run(root) as run:
        with run.step("Download"):
            for _ in tqdm(range(6), unit="file"):
                pass
        with run.step("Counted", total=3) as step:
            for _ in tqdm(range(9)):  # the step counts files itself: not its progress
                pass
            step.advance(3)
    download, counted = _steps(run)
    assert (download["progress"]["completed"], download["progress"]["total"]) == (6, 6)
    assert download["progress"]["unit"] == "file"
    assert (counted["progress"]["completed"], counted["progress"]["total"]) == (3, 3)
    assert len(_steps(run)) == 2


def test_a_bar_left_open_at_its_total_does_not_swallow_later_bars(
    root: Path, capture: bars.BarCapture
) -> None:
    with _run(root) as run:
        download = tqdm(total=3, desc="Download")
        download.update(3)  # done, never closed: the script keeps the object around
        for _ in tqdm(range(2), desc="Train"):
            pass
        download.close()
    assert [(s["name"], s["status"]) for s in _steps(run)] == [
        ("Download", "completed"),
        ("Train", "completed"),
    ]


def test_a_frameworks_step_never_takes_a_bars_progress(
    root: Path, capture: bars.BarCapture
) -> None:
    from otel_tracker.integrations.metrics import close_step, open_step

    with _run(root) as run:
        fit = open_step(run, "fit", unit="batch")  # as an integration opens its stage
        for _ in tqdm(range(50), desc="tokenize"):  # the user's own loop inside it
            pass
        fit.advance(3)
        close_step(fit)
    (step,) = _steps(run)
    assert (step["progress"]["completed"], step["progress"]["total"]) == (3, None)


def test_capture_again_keeps_what_it_is_not_given(root: Path) -> None:
    first = bars.capture(program_step="the --auto step")
    try:
        assert bars.capture() is first and first.program_step == "the --auto step"
    finally:
        bars.release()


def test_thread_map_is_one_step_counting_every_item(root: Path, capture: bars.BarCapture) -> None:
    with _run(root) as run:
        results = thread_map(lambda n: n * n, range(20), desc="Squares", max_workers=4)
    assert results == [n * n for n in range(20)]
    (step,) = _steps(run)
    assert (step["name"], step["progress"]["completed"], step["progress"]["total"]) == (
        "Squares",
        20,
        20,
    )


def test_a_frameworks_own_bars_are_left_to_its_integration(
    root: Path, capture: bars.BarCapture
) -> None:
    capture.deferred_modules.add("someframework")
    framework_code = {"__name__": "someframework.loops", "tqdm": tqdm}
    with _run(root) as run:
        exec("for _ in tqdm(range(3), desc='Epoch 0'):\n    pass\n", framework_code)
        for _ in tqdm(range(2), desc="Mine"):
            pass
    assert [s["name"] for s in _steps(run)] == ["Mine"]


def test_bars_past_the_limit_are_not_steps_and_say_so_once(
    root: Path, capture: bars.BarCapture, caplog: pytest.LogCaptureFixture
) -> None:
    capture.max_steps = 3
    with caplog.at_level(logging.WARNING, logger="otel_tracker"), _run(root) as run:
        for i in range(6):
            for _ in tqdm(range(1), desc=f"file {i}"):
                pass
    assert [s["name"] for s in _steps(run)] == ["file 0", "file 1", "file 2"]
    assert sum("later bars are not captured" in r.getMessage() for r in caplog.records) == 1


def test_without_a_run_or_after_release_bars_are_plain_tqdm(root: Path) -> None:
    bars.capture()
    for _ in tqdm(range(3), desc="No run"):
        pass
    bars.release()
    assert tqdm_std.tqdm.__init__ is not None
    assert getattr(tqdm_std.tqdm.__init__, "_otel_tracker_original", None) is None
    with _run(root) as run:
        for _ in tqdm(range(3), desc="Released"):
            pass
    assert _steps(run) == []


SCRIPT = """\
import time
from tqdm.auto import tqdm, trange
for _ in tqdm(range(4), desc="Load files"):
    time.sleep(0.01)
for epoch in trange(2, desc="Train"):
    for _ in tqdm(range(5), leave=False, desc=f"epoch {epoch}"):
        time.sleep(0.01)
for x in tqdm(range(10), desc="Search"):
    if x == 4:
        break
for x in tqdm(range(10), desc="Eval"):
    if x == 6:
        raise ValueError("bad batch")
"""


def test_an_unchanged_tqdm_script_under_auto(root: Path, tmp_path: Path) -> None:
    script = tmp_path / "bars.py"
    script.write_text(SCRIPT)
    done = otel_cli(root, "run", "--auto", "--", sys.executable, str(script))
    assert done.returncode == 1, done.stderr
    (path,) = manifests(root)
    (python,) = load_manifest(path)["steps"]
    found = {s["name"]: s for s in python["substeps"]}
    assert list(found) == ["bars.py", "Load files", "Train", "Search", "Eval"]
    assert [found[n]["status"] for n in found] == [
        "failed",
        "completed",
        "completed",
        "completed",
        "failed",
    ]
    assert "bad batch" in found["Eval"]["error"]["message"]
    progress = {n: (s["progress"]["completed"], s["progress"]["total"]) for n, s in found.items()}
    assert progress["Train"] == (2, 2) and progress["Search"] == (4, 10)
    assert progress["Eval"] == (6, 10)


def test_auto_integrations_can_leave_tqdm_out(root: Path, tmp_path: Path) -> None:
    script = tmp_path / "bars.py"
    script.write_text("from tqdm import tqdm\nfor _ in tqdm(range(3), desc='Loop'):\n    pass\n")
    done = otel_cli(
        root,
        "run",
        "--auto",
        "--",
        sys.executable,
        str(script),
        OTEL_TRACKER_AUTO_INTEGRATIONS="keras,lightning",
    )
    assert done.returncode == 0, done.stderr
    (path,) = manifests(root)
    (python,) = load_manifest(path)["steps"]
    assert [s["name"] for s in python["substeps"]] == ["bars.py"]
