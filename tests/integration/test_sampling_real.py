"""The real process tree: children that burn CPU and hold memory are seen."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from otel_tracker.sampling.points import Unavailable
from otel_tracker.sampling.process import ProcessTreeSampler

BURN = "import sys, time\nx = bytearray(150 * 2**20)\nend = time.time() + 30\nwhile time.time() < end:\n    pass\n"


def test_child_processes_cpu_and_memory_are_seen() -> None:
    children = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2)]
    try:
        sampler = ProcessTreeSampler()
        unavailable = Unavailable()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until both hold their memory
            if sum(psutil.Process(c.pid).memory_info().rss for c in children) > 2 * 150 * 2**20:
                break
            time.sleep(0.05)
        sampler.sample(time.monotonic(), unavailable)
        time.sleep(1.0)
        values = {p.key: p.value for p in sampler.sample(time.monotonic(), unavailable)}
        assert values["otel_tracker.process.count"] >= 3
        assert values["process.memory.usage"] > 2 * 150 * 2**20
        cores_busy = values["process.cpu.utilization"] * (psutil.cpu_count() or 1)
        assert cores_busy > 0.8, values  # two spinning children on this machine
        # the per-process breakdown names them, by executable, never by command line
        top = {p["pid"]: p for p in sampler.details()["processes"]}
        for child in children:
            assert top[child.pid]["rss_max_bytes"] > 150 * 2**20
            assert top[child.pid]["name"] and "import" not in top[child.pid]["name"]
            assert top[child.pid]["alive"] is True
    finally:
        for child in children:
            child.kill()
            child.wait()
