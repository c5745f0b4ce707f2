"""The NVML sampler against an injected fake NVML (this machine has no NVIDIA GPU)."""

from __future__ import annotations

import pytest

from otel_tracker.sampling.gpu import NvmlSampler, visible_indices
from otel_tracker.sampling.points import Unavailable
from otel_tracker.testing import FakeNvml, GpuProc

UUIDS = ["GPU-aaaa-1111", "GPU-bbbb-2222", "GPU-cccc-3333"]


def _by_key(points: list) -> dict[str, float]:
    return {p.key: p.value for p in points}


def test_every_metric_per_device() -> None:
    nvml = FakeNvml(UUIDS[:2])
    nvml.processes[1] = [GpuProc(4242, 3 * 2**30), GpuProc(999, 5 * 2**30), GpuProc(4243, None)]
    sampler = NvmlSampler(nvml, environ={}, pids=lambda: {4242, 4243})
    unavailable = Unavailable()
    points = sampler.sample(0.0, unavailable)
    assert unavailable == {}
    dev1 = {p.name: p for p in points if ("hw.id", "GPU-bbbb-2222") in p.attributes}
    assert dev1["hw.gpu.utilization"].value == 0.51
    assert (
        dev1["hw.gpu.memory.usage"].value == 20 * 2**30
        and dev1["hw.gpu.memory.limit"].value == 80 * 2**30
    )
    assert dev1["hw.gpu.memory.utilization"].value == 0.25
    assert dev1["hw.temperature"].value == 61 and dev1["hw.temperature"].unit == "Cel"
    assert dev1["hw.power"].value == 250.0 and ("hw.type", "gpu") in dev1["hw.power"].attributes
    assert dev1["otel_tracker.process.gpu.memory.usage"].value == 3 * 2**30  # only this run's pids
    sampler.sample(1.0, unavailable)
    assert nvml.init_calls == 1  # initialised once


def test_a_failing_query_is_disabled_alone() -> None:
    nvml = FakeNvml(UUIDS[:2])
    nvml.failing = {(0, "power")}
    sampler = NvmlSampler(nvml, environ={})
    unavailable = Unavailable()
    first = sampler.sample(0.0, unavailable)
    assert (
        "hw.gpu.power[GPU-aaaa-1111]" in unavailable
        and "disabled" in unavailable["hw.gpu.power[GPU-aaaa-1111]"]
    )
    names0 = {p.name for p in first if ("hw.id", "GPU-aaaa-1111") in p.attributes}
    assert "hw.power" not in names0 and "hw.gpu.utilization" in names0
    assert any(p.name == "hw.power" and ("hw.id", "GPU-bbbb-2222") in p.attributes for p in first)
    nvml.failing = set()  # disabled stays disabled: no retry storm against a broken query
    second = sampler.sample(1.0, unavailable)
    assert not any(
        p.name == "hw.power" and ("hw.id", "GPU-aaaa-1111") in p.attributes for p in second
    )


def test_no_library_and_no_driver_are_not_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pynvml(name: str, *args: object, **kwargs: object) -> object:
        if name == "pynvml":
            raise ImportError("No module named 'pynvml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    unavailable = Unavailable()
    assert NvmlSampler(environ={}).sample(0.0, unavailable) == []
    assert "otel-tracker[gpu]" in unavailable["gpu"]
    unavailable = Unavailable()
    sampler = NvmlSampler(FakeNvml(UUIDS, init_error=True), environ={})
    assert sampler.sample(0.0, unavailable) == [] and sampler.sample(1.0, unavailable) == []
    assert unavailable["gpu"] == "NVML unavailable: Driver Not Loaded"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, [0, 1, 2]),
        ("", []),
        ("-1", []),
        ("2,0", [2, 0]),
        ("1,7,2", [1]),  # CUDA stops at the first invalid entry
        ("GPU-cccc", [2]),
        ("cccc-3333,0", [2, 0]),
        ("GPU-", []),  # ambiguous prefix
    ],
)
def test_cuda_visible_devices(spec: str | None, expected: list[int]) -> None:
    assert visible_indices(spec, UUIDS) == expected


def test_visible_devices_restrict_sampling() -> None:
    unavailable = Unavailable()
    sampler = NvmlSampler(FakeNvml(UUIDS), environ={"CUDA_VISIBLE_DEVICES": "2"})
    ids = {dict(p.attributes)["hw.id"] for p in sampler.sample(0.0, unavailable)}
    assert ids == {"GPU-cccc-3333"}
    hidden = NvmlSampler(FakeNvml(UUIDS), environ={"CUDA_VISIBLE_DEVICES": ""})
    assert hidden.sample(0.0, unavailable) == [] and "CUDA_VISIBLE_DEVICES" in unavailable["gpu"]
