"""Resource samplers against an injected fake psutil: every metric, and every way to fail."""

from __future__ import annotations

import logging

import pytest

from otel_tracker.sampling.aggregate import RESERVOIR, StreamingStats
from otel_tracker.sampling.memory import MemoryReader
from otel_tracker.sampling.points import Unavailable
from otel_tracker.sampling.process import ProcessTreeSampler
from otel_tracker.sampling.sampler import ResourceSampler
from otel_tracker.sampling.system import SystemSampler
from otel_tracker.testing import FakeProcess, FakePsutil


def _values(points: list) -> dict[str, float]:
    return {p.key: p.value for p in points}


def _tree() -> tuple[FakePsutil, FakeProcess, FakeProcess, FakeProcess]:
    grandchild = FakeProcess(3, cpu=1.0, rss=100)
    child = FakeProcess(2, cpu=2.0, rss=200, children=[grandchild])
    root = FakeProcess(1, cpu=3.0, rss=300, children=[child])
    return FakePsutil(root, cpus=4), root, child, grandchild


class StepClock:
    """A CPU clock that advances ``step`` seconds per reading."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_process_tree_metrics() -> None:
    ps, root, child, grandchild = _tree()
    # each process's PSS/USS read costs 0.01 s of CPU here: 0.03 s a sample, so with a
    # 1% budget the next read waits 3 s (not due at 12, due at 16)
    memory = MemoryReader(ps, smaps_root=None, budget=0.01, cpu_clock=StepClock(0.01))
    sampler = ProcessTreeSampler(psutil_module=ps, memory=memory)
    unavailable = Unavailable()
    first = _values(sampler.sample(10.0, unavailable))
    assert first["otel_tracker.process.count"] == 3
    assert first["process.cpu.time"] == 6.0
    assert first["process.memory.usage"] == 600
    assert first["otel_tracker.process.memory.uss"] == 300  # read on the first sample
    assert first["otel_tracker.process.memory.pss"] == 450
    assert first["process.thread.count"] == 6 and first["process.unix.file_descriptor.count"] == 30
    assert first["process.disk.io{disk.io.direction=read}"] == 600
    assert first["process.context_switches{process.context_switch_type=voluntary}"] == 15
    assert "process.cpu.utilization" not in first  # needs two samples
    for proc in (root, child, grandchild):
        proc.cpu += 2.0  # 6 CPU-seconds over 2 s on 4 cores = 75%
    second = _values(sampler.sample(12.0, unavailable))
    assert second["process.cpu.utilization"] == pytest.approx(0.75)
    assert "otel_tracker.process.memory.uss" not in second  # costly: within its budget
    assert "otel_tracker.process.memory.pss" not in second
    third = _values(sampler.sample(16.0, unavailable))
    assert third["otel_tracker.process.memory.pss"] == 450
    assert unavailable == {}


def test_pss_is_whole_or_absent_and_says_why() -> None:
    """A tree with one process whose PSS cannot be read gets no PSS point (not a
    partial sum); RSS stays; an OS without PSS says so."""
    ps, root, child, grandchild = _tree()
    sampler = ProcessTreeSampler(psutil_module=ps, memory=MemoryReader(ps, smaps_root=None))
    unavailable = Unavailable()
    child.denied = {"uss"}
    values = _values(sampler.sample(0.0, unavailable))
    assert "otel_tracker.process.memory.pss" not in values
    assert "otel_tracker.process.memory.uss" not in values
    assert values["process.memory.usage"] == 600
    assert unavailable["process.pss"] == "access denied for pid 2"
    child.denied = set()
    for proc in (root, child, grandchild):
        proc.has_pss = False  # macOS, say
    unavailable = Unavailable()
    values = _values(sampler.sample(100.0, unavailable))
    assert "otel_tracker.process.memory.pss" not in values
    assert values["otel_tracker.process.memory.uss"] == 300
    assert unavailable == {"process.pss": "this OS does not report PSS"}


def test_children_that_exit_or_deny_access_degrade_alone() -> None:
    ps, root, child, grandchild = _tree()
    sampler = ProcessTreeSampler(psutil_module=ps)
    unavailable = Unavailable()
    sampler.sample(0.0, unavailable)
    grandchild.gone = True  # exited between listing and reading
    child.denied = {"io"}
    root.unsupported = {"fds"}
    values = _values(sampler.sample(1.0, unavailable))
    assert values["otel_tracker.process.count"] == 2
    assert values["process.disk.io{disk.io.direction=read}"] == 100  # root only
    assert values["process.unix.file_descriptor.count"] == 10  # the child still has it
    assert unavailable == {
        "process.io": "access denied for pid 2",
        "process.fds": "not supported here (AttributeError)",
    }
    child.denied = {"cpu_times"}
    values = _values(sampler.sample(2.0, unavailable))
    assert values["otel_tracker.process.count"] == 1
    assert unavailable["process"] == "access denied reading pid 2"


def test_system_metrics_from_deltas() -> None:
    ps, *_ = _tree()
    sampler = SystemSampler(psutil_module=ps)
    unavailable = Unavailable()
    sampler.sample(0.0, unavailable)
    ps.busy = [1.0, 0.0, 0.5, 2.0]
    ps.idle = [1.0, 2.0, 1.5, 0.0]
    ps.iowait = 2.0
    ps.disk = ps.disk._replace(read_bytes=4096, write_bytes=1024)
    ps.net = ps.net._replace(bytes_recv=2000)
    values = _values(sampler.sample(2.0, unavailable))
    assert values["system.cpu.utilization"] == pytest.approx(3.5 / 10)
    assert values["system.cpu.utilization{cpu.logical_number=3}"] == 1.0
    assert values["system.cpu.utilization{cpu.logical_number=1}"] == 0.0
    assert values["otel_tracker.system.cpu.iowait"] == pytest.approx(0.2)
    assert values["system.memory.usage{system.memory.state=used}"] == 4 * 2**30
    assert values["system.memory.utilization"] == 0.25
    assert values["system.paging.usage{system.paging.state=used}"] == 2**20
    assert values["otel_tracker.system.disk.io_rate{disk.io.direction=read}"] == 2048
    assert values["otel_tracker.system.network.io_rate{network.io.direction=receive}"] == 1000
    assert "otel_tracker.system.load_average{window=1m}" in values


def test_a_failing_sampler_is_marked_unavailable_and_the_rest_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def sample(self, now: float, unavailable: Unavailable) -> list:
            raise RuntimeError("driver exploded")

    ps, *_ = _tree()
    steps = iter([0, 0, 1])
    clock = iter([0.0, 5.0, 10.0])
    sampler = ResourceSampler(
        [("gpu", Broken()), ("process", ProcessTreeSampler(psutil_module=ps))],
        current_step=lambda: next(steps),
        monotonic=lambda: next(clock),
    )
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            snapshot = sampler.sample_once()
    assert caplog.text.count("gpu sampling failed") == 1  # logged once
    assert snapshot.unavailable == {"gpu": "sampling failed: RuntimeError: driver exploded"}
    assert snapshot.value("otel_tracker.process.count") == 3 and snapshot.step_index == 1
    summary = sampler.summary()
    assert summary["samples"] == 3 and summary["run"]["process.memory.usage"]["count"] == 3
    assert sampler.aggregates.step_summary(0)["process.memory.usage"]["count"] == 2


def test_streaming_stats_stay_bounded_and_close() -> None:
    stats = StreamingStats()
    for i in range(100_000):
        stats.add(float(i % 1000))
    assert len(stats.reservoir) == RESERVOIR
    summary = stats.summary()
    assert (summary["min"], summary["max"], summary["count"]) == (0.0, 999.0, 100_000)
    assert summary["mean"] == pytest.approx(499.5)
    assert summary["p95"] == pytest.approx(950, abs=40)


def test_per_process_table_ranks_the_tree_and_stays_bounded() -> None:
    ps, _, child, grandchild = _tree()
    child.denied = {"name"}  # a name we may not read is None, the rest still counts
    sampler = ProcessTreeSampler(psutil_module=ps)
    sampler.sample(0.0, Unavailable())
    grandchild.cpu += 9.0
    sampler.sample(1.0, Unavailable())
    top = sampler.details()["processes"]
    assert [(p["pid"], p["name"]) for p in top] == [(3, "worker-3"), (1, "worker-1"), (2, None)]
    assert top[0]["cpu_time_s"] == 10.0 and top[0]["cpu_share"] == pytest.approx(10 / 15, abs=1e-4)
    assert top[0]["rss_max_bytes"] == 100 and top[0]["samples"] == 2
    assert all(p["alive"] for p in top)
    grandchild.gone = True
    sampler.sample(2.0, Unavailable())
    rows = {p["pid"]: p for p in sampler.details()["processes"]}
    assert rows[3]["alive"] is False and rows[3]["cpu_time_s"] == 10.0  # kept after exit

    from otel_tracker.sampling.process import ProcessTable

    table = ProcessTable(limit=3)
    for pid in range(6):  # six short-lived workers, one at a time
        table.update((pid, 0.0), "w", cpu_s=float(pid), rss=1.0)
        table.mark_alive({(pid, 0.0)})
    assert len(table.rows) == 3 and table.forgotten == 3
    assert [r["pid"] for r in table.top()] == [5, 4, 3]  # the smallest exited ones went


def test_the_ring_buffer_keeps_the_last_hour_for_live_views() -> None:
    from otel_tracker.sampling.sampler import RECENT_SNAPSHOTS

    ps, root, _, _ = _tree()
    clock = iter(range(10_000))
    sampler = ResourceSampler(
        [("process", ProcessTreeSampler(psutil_module=ps))],
        monotonic=lambda: float(next(clock)),
        wall=lambda: 1000.0 + sampler.samples * 5,
    )
    for i in range(RECENT_SNAPSHOTS + 30):
        root.rss = 300 + i
        sampler.sample_once()
    assert len(sampler.recent) == RECENT_SNAPSHOTS  # bounded, however long the run
    series = sampler.history("process.memory.usage")
    assert len(series) == RECENT_SNAPSHOTS and series[-1][1] == 600 + RECENT_SNAPSHOTS + 29
    last_minute = sampler.history("process.memory.usage", seconds=60)
    assert len(last_minute) == 13  # 5 s apart, both ends included
    assert sampler.history("no.such.series") == []


def test_a_closed_steps_stats_are_dropped_and_later_samples_skip_it() -> None:
    from otel_tracker.sampling.aggregate import Aggregates
    from otel_tracker.sampling.points import Point

    aggregates = Aggregates()
    point = Point("process.cpu.utilization", 0.5, "1")
    for step in range(100):
        aggregates.add([point, point], step)
        summary = aggregates.close_step(step)
        assert summary[point.key]["count"] == 2
        aggregates.add([point], step)  # a sample racing the step's end
    assert aggregates.steps == {}  # memory does not grow with the number of steps
    assert aggregates.run_summary()[point.key]["count"] == 300
