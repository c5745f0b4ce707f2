"""``otel_tracker.testing``: the fakes users test their own pipelines with."""

from __future__ import annotations

import json
from pathlib import Path

from otel_tracker import track_run
from otel_tracker.sampling.gpu import NvmlSampler
from otel_tracker.sampling.points import Unavailable
from otel_tracker.sampling.process import ProcessTreeSampler
from otel_tracker.testing import FakeNvml, FakeProcess, FakePsutil, ManualClock


def test_a_manual_clock_makes_a_step_take_what_the_test_says(root: Path) -> None:
    clock = ManualClock()
    with (
        track_run("t", root=root, clock=clock, resources=False, progress="off") as run,
        run.step("load"),
    ):
        clock.sleep(30.0)
    doc = json.loads(run.manifest_path.read_text())
    assert (doc["steps"][0]["status"], doc["steps"][0]["duration_s"]) == ("completed", 30.0)


def test_the_fakes_stand_in_for_psutil_and_nvml() -> None:
    child = FakeProcess(2, cpu=1.0, rss=200)
    tree = FakeProcess(1, cpu=3.0, rss=300, children=[child])
    sampler = ProcessTreeSampler(psutil_module=FakePsutil(tree))
    points = {p.name: p.value for p in sampler.sample(10.0, Unavailable())}
    assert points["otel_tracker.process.count"] == 2, points
    assert points["process.cpu.time"] == 4.0, points
    gpus = NvmlSampler(FakeNvml(["GPU-0a1b2c3d"]), environ={})
    uuids = {dict(p.attributes).get("hw.id") for p in gpus.sample(10.0, Unavailable())}
    assert "GPU-0a1b2c3d" in uuids, uuids
