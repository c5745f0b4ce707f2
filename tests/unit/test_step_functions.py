"""``@step`` and ``current_step()`` where code interleaves: asyncio tasks, generators,
async generators and threads (issue 31.10)."""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_tracker import current_run, current_step, step, track_run
from otel_tracker.clock import ManualClock
from tests.helpers import load_manifest


def _run(root: Path, **kw: Any) -> Any:
    kw.setdefault("install_signal_handlers", False)
    kw.setdefault("progress", "off")
    return track_run("interleaved", root=root, **kw)


def _steps(run: Any) -> list[dict[str, Any]]:
    assert run.manifest_path is not None
    return load_manifest(run.manifest_path)["steps"]


def _ours() -> list[str]:
    """The tracker's context variables set in the context running now."""
    return [v.name for v in contextvars.copy_context() if v.name.startswith("otel_tracker")]


@step("work")
async def _work(n: int, pause: float) -> str:
    for _ in range(n):
        current_step().advance()
        await asyncio.sleep(pause)
    return current_step().name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concurrent_async_steps_each_get_their_own_progress(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    counts = [10, 20, 30, 40, 50] if seed == 0 else [rng.randint(1, 60) for _ in range(8)]
    pauses = [0.0] * len(counts) if seed == 0 else [rng.choice([0, 0.001]) for _ in counts]

    async def main() -> Any:
        with _run(root) as run:
            names = await asyncio.gather(
                *(_work(n, p) for n, p in zip(counts, pauses, strict=True))
            )
            assert names == ["work"] * len(counts)
            return run

    run = asyncio.run(main())
    steps = _steps(run)
    assert [s["status"] for s in steps] == ["completed"] * len(counts)
    assert [s["progress"]["completed"] for s in steps] == counts


def test_tasks_started_in_a_step_count_for_it_and_nest_their_own(root: Path) -> None:
    async def fetch(inner: bool) -> None:
        if inner:
            with current_run().step("parse") as parse:  # type: ignore[union-attr]
                parse.advance(7)
                await asyncio.sleep(0)
                current_step().advance(1)
        current_step().advance()  # the enclosing task's step: "download"

    async def main() -> Any:
        with _run(root) as run:
            with run.step("download"):
                await asyncio.gather(*(fetch(i % 2 == 0) for i in range(6)))
                assert current_step().name == "download"
            assert type(current_step()).__name__ == "NoopStep"
            assert "otel_tracker_steps" not in _ours()  # unset again: numpy stops paying for it
            return run

    run = asyncio.run(main())
    assert _ours() == []
    steps = {s["name"]: s for s in _steps(run) if s["name"] == "download"}
    assert steps["download"]["progress"]["completed"] == 6
    parses = [s for s in _steps(run) if s["name"] == "parse"]
    assert [s["progress"]["completed"] for s in parses] == [8, 8, 8]


def test_a_thread_run_uses_no_context_variable(root: Path) -> None:
    # numpy looks a context variable up on every ufunc call: one set would slow it
    with _run(root) as run, run.step("sync") as sync:
        assert _ours() == []
        assert current_step() is sync
        done: list[Any] = []

        def worker() -> None:
            done.append(current_step().name)  # a thread that entered nothing: the process's
            with run.step("own") as own:
                done.append(current_step() is own)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert done == ["sync", True]
        assert current_step() is sync


def test_a_thread_of_a_task_sees_the_tasks_step_and_its_own(root: Path) -> None:
    def blocking(run: Any) -> list[str]:
        seen = [current_step().name]
        with run.step("in thread"):
            seen.append(current_step().name)
        seen.append(current_step().name)
        return seen

    async def main() -> list[str]:
        with _run(root) as run, run.step("task"):
            return await asyncio.to_thread(blocking, run)

    assert asyncio.run(main()) == ["task", "in thread", "task"]


@step("read")
def _read(n: int, clock: ManualClock, seen: list[str]) -> Iterator[int]:
    try:
        for i in range(n):
            current_step().advance()
            seen.append(current_step().name)
            clock.sleep(1)  # the generator's own work
            got = yield i
            if got is not None:
                current_step().advance(got)
    finally:
        seen.append(f"cleanup in {current_step().name}")
    return n  # a generator's return value: @step must keep it


@pytest.mark.parametrize("n", [1, 5, 40])
def test_a_generator_step_lasts_from_first_item_to_exhaustion(root: Path, n: int) -> None:
    clock = ManualClock()
    seen: list[str] = []
    with _run(root, clock=clock) as run, run.step("consume") as consume:
        items = _read(n, clock, seen)
        clock.sleep(100)  # created, not started: no step yet
        assert [s["name"] for s in _steps(run)] == ["consume"]
        total = 0
        for item in items:
            total += item
            current_step().advance()  # the consumer's own step, between items
            clock.sleep(2)
        assert total == sum(range(n)) and consume.completed == n
    read = _steps(run)[1]
    assert (read["name"], read["status"]) == ("read", "completed")
    assert read["progress"]["completed"] == n
    assert read["duration_s"] == pytest.approx(3 * n)  # its work and its consumer's
    assert seen == ["read"] * n + ["cleanup in read"]


def test_a_generator_step_keeps_send_throw_return_and_close(root: Path) -> None:
    clock = ManualClock()
    with _run(root, clock=clock) as run:
        gen = _read(10, clock, [])
        assert next(gen) == 0
        assert gen.send(5) == 1  # sent values reach the generator
        with pytest.raises(ValueError, match="bad batch"):
            gen.throw(ValueError("bad batch"))
        seen: list[str] = []
        whole = _read(2, clock, seen)
        assert list(whole) == [0, 1]
        single = _read(1, clock, [])
        assert next(single) == 0
        with pytest.raises(StopIteration) as stop:
            next(single)
        assert stop.value.value == 1  # the return value, as `yield from` sees it
        early = _read(10, clock, seen)
        next(early)
        early.close()  # a consumer that stops early: completed, cleanup inside the step
        assert seen[-1] == "cleanup in read"
    steps = _steps(run)
    assert [(s["status"], s["progress"]["completed"]) for s in steps] == [
        ("failed", 7),
        ("completed", 2),
        ("completed", 1),
        ("completed", 1),
    ]
    assert steps[0]["error"]["type"] == "ValueError"


@step("stream")
async def _stream(n: int, seen: list[str]) -> AsyncIterator[int]:
    try:
        for i in range(n):
            current_step().advance()
            await asyncio.sleep(0)
            seen.append(current_step().name)
            got = yield i
            if got is not None:
                current_step().advance(got)
    finally:
        seen.append(f"cleanup in {current_step().name}")


@pytest.mark.parametrize("n", [1, 7, 30])
def test_async_generator_steps_interleaved_in_tasks(root: Path, n: int) -> None:
    seen: list[str] = []

    async def consume(count: int) -> list[int]:
        with current_run().step("consumer"):  # type: ignore[union-attr]
            out = []
            async for item in _stream(count, seen):
                out.append(item)
                current_step().advance()  # the consumer's step, not the stream's
            return out

    async def main() -> Any:
        with _run(root) as run:
            results = await asyncio.gather(consume(n), consume(n + 3))
            assert results == [list(range(n)), list(range(n + 3))]
            gen = _stream(10, seen)
            assert await gen.__anext__() == 0
            assert await gen.asend(4) == 1
            await gen.aclose()
            return run

    run = asyncio.run(main())
    steps = _steps(run)
    by_name: dict[str, list[int]] = {}
    for s in steps:
        assert s["status"] == "completed", s
        by_name.setdefault(s["name"], []).append(s["progress"]["completed"])
    assert sorted(by_name["consumer"]) == [n, n + 3]
    assert sorted(by_name["stream"]) == sorted([n, n + 3, 6])
    assert set(seen) == {"stream", "cleanup in stream"}


def test_a_failing_async_generator_fails_its_step(root: Path) -> None:
    @step
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("disk gone")

    async def main() -> Any:
        with _run(root) as run:
            with pytest.raises(RuntimeError, match="disk gone"):
                async for _ in broken():
                    pass
            return run

    run = asyncio.run(main())
    (only,) = _steps(run)
    assert (only["name"], only["status"], only["progress"]["completed"]) == ("broken", "failed", 0)
    assert only["error"]["message"] == "disk gone"


def test_generator_steps_outside_a_run_just_iterate() -> None:
    clock = ManualClock()
    assert list(_read(3, clock, [])) == [0, 1, 2]

    async def main() -> list[int]:
        return [i async for i in _stream(3, [])]

    assert asyncio.run(main()) == [0, 1, 2]


def test_the_decorator_is_still_the_packages_step_after_a_run_started(root: Path) -> None:
    import otel_tracker
    from otel_tracker.api import step as decorator

    with _run(root):  # imports the write side: a submodule named `step` would replace it
        assert otel_tracker.step is decorator
        from otel_tracker import step as imported

        assert imported is decorator
