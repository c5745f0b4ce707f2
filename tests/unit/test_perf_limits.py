"""perf-test's bands, recorded-value checks, hardware classes and latency histograms:
the verdict logic, without running a scenario."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from otel_tracker.perftest.compare import threshold_level
from otel_tracker.perftest.hardware import (
    detect_hardware,
    differences,
    hardware_class,
    hardware_of,
)
from otel_tracker.perftest.histogram import bins, latency_svg
from otel_tracker.perftest.limits import Band, judge_recorded, worst
from otel_tracker.perftest.scenario import ScenarioError, Threshold, load_suite
from otel_tracker.schema import perf_test_results_schema
from otel_tracker.testing import FakeNvml

SVG = "{http://www.w3.org/2000/svg}"


def test_a_band_threshold_says_which_side_of_it_a_value_fell() -> None:
    band = Threshold(None, None, 35.0, 60.0)
    assert threshold_level(34.9, "latency_p95_ms", band) == "below-band"
    assert threshold_level(35.0, "latency_p95_ms", band) == "ok"  # bounds are inside
    assert threshold_level(60.0, "latency_p95_ms", band) == "ok"
    assert threshold_level(60.1, "latency_p95_ms", band) == "above-band"
    # a band is a band whichever way the metric is better; one side may be open
    assert threshold_level(900.0, "throughput_p50", Threshold(None, None, 1000.0, None)) == (
        "below-band"
    )
    # warn/critical levels are unchanged
    assert threshold_level(900, "latency_p95_ms", Threshold(350.0, 800.0)) == "critical"
    assert worst(["ok", "warn", "above-band"]) == "above-band"
    assert worst(["below-band", "critical"]) == "critical"


def test_recorded_values_are_judged_and_never_recorded_is_said_so() -> None:
    checks = {
        "counters": {
            "deadline_exceeded_total": Band(None, 0.0),
            "frames_total": Band(12.0, None),
            "absent_total": Band(None, 0.0),
            "absent_min_total": Band(1.0, None),
        },
        "gauges": {"fps": Band(30.0, None), "absent": Band(None, 5.0)},
        "series": {"loss": Band(None, 0.5)},
    }
    recorded = {
        "counters": {"deadline_exceeded_total": 2.0, "frames_total": 12.0},
        "gauges": {"fps": 29.5},
        "series": {"loss": 0.4},
    }
    out = judge_recorded(checks, recorded)
    levels = {(k, n): e["level"] for k, es in out.items() for n, e in es.items()}
    assert levels == {
        ("counters", "deadline_exceeded_total"): "above-band",
        ("counters", "frames_total"): "ok",
        ("counters", "absent_total"): "ok",  # never recorded = 0, and max = 0 holds
        ("counters", "absent_min_total"): "not-recorded",
        ("gauges", "fps"): "below-band",
        ("gauges", "absent"): "not-recorded",
        ("series", "loss"): "ok",
    }
    assert out["counters"]["absent_total"] == {
        "value": 0.0,
        "min": None,
        "max": 0.0,
        "note": "never recorded: counted as 0",
        "level": "ok",
    }
    assert out["gauges"]["absent"]["note"] == "never recorded"
    # a scenario that did not run to its end judges nothing
    assert {e["level"] for es in judge_recorded(checks, None).values() for e in es.values()} == {
        "no-data"
    }


def _suite(tmp_path: Path, scenario: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(f'name = "smoke"\n[[scenarios]]\nname = "fast"\n{scenario}\n')
    return path


def test_bands_and_checks_parse(tmp_path: Path) -> None:
    path = _suite(
        tmp_path,
        'entry = "m:f"\nthresholds = { latency_p95_ms = { min = 35, max = 60 } }\n'
        "counters = { deadline_exceeded_total = { max = 0 } }\n"
        'gauges = { fps = { min = 30 } }\nseries = { "val/loss" = { min = 0, max = 0.5 } }',
    )
    (sc,) = load_suite(path).scenarios
    assert sc.thresholds["latency_p95_ms"] == Threshold(None, None, 35.0, 60.0)
    assert sc.checks == {
        "counters": {"deadline_exceeded_total": Band(None, 0.0)},
        "gauges": {"fps": Band(30.0, None)},
        "series": {"val/loss": Band(0.0, 0.5)},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'entry = "m:f"\nthresholds = { latency_p95_ms = { min = 60, max = 35 } }',
            "thresholds.latency_p95_ms: min (60) is above max (35)",
        ),
        (
            'entry = "m:f"\nthresholds = { latency_p95_ms = { min = 1, critical = 5 } }',
            "give warn/critical levels or a min/max band, not both",
        ),
        (
            'entry = "m:f"\nthresholds = { latency_p95_ms = { mni = 1 } }',
            "thresholds.latency_p95_ms: unknown key 'mni'",
        ),
        (
            'entry = "m:f"\nthresholds = { latency_p95_ms = { max = "60" } }',
            "thresholds.latency_p95_ms.max must be a number, got '60'",
        ),
        ('entry = "m:f"\ncounters = { x_total = { max = true } }', "must be a number, got True"),
        ('entry = "m:f"\ngauges = { fps = { below = 3 } }', "gauges.fps: unknown key 'below'"),
        ('entry = "m:f"\ngauges = { fps = {} }', "gauges.fps must be a table with min and/or max"),
        ('entry = "m:f"\ncounters = { "Bad-Name" = { max = 0 } }', "'Bad-Name' can never be"),
        ('entry = "m:f"\nseries = [1]', "series must be a table of name = { min, max }"),
        (
            'command = ["true"]\ncounters = { x_total = { max = 0 } }',
            "counters goes with 'entry' only",
        ),
    ],
)
def test_bad_bands_and_checks_name_the_file_and_scenario(
    tmp_path: Path, body: str, message: str
) -> None:
    path = _suite(tmp_path, body)
    with pytest.raises(ScenarioError) as caught:
        load_suite(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "'fast'" in text


def test_a_command_scenario_may_assert_on_series(tmp_path: Path) -> None:
    (sc,) = load_suite(
        _suite(tmp_path, 'command = ["true"]\nseries = { loss = { max = 1 } }')
    ).scenarios
    assert sc.checks == {"series": {"loss": Band(None, 1.0)}}


def test_the_hardware_class_comes_from_cpuinfo_and_nvml(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Fake CPU 9000\n")
    nvml = FakeNvml(["GPU-aaaa", "GPU-bbbb"])
    hw = detect_hardware(nvml, cpuinfo=cpuinfo, cpu_count=16, environ={})
    assert {k: hw[k] for k in ("cpu_model", "cpu_count", "gpu_model", "gpu_count")} == {
        "cpu_model": "Fake CPU 9000",
        "cpu_count": 16,
        "gpu_model": "NVIDIA Fake 80GB",
        "gpu_count": 2,
    }
    assert hw["label"] == "Fake CPU 9000, 16 CPUs, 2x NVIDIA Fake 80GB"
    # CUDA_VISIBLE_DEVICES narrows the class to what the benchmark can use
    one = detect_hardware(
        nvml, cpuinfo=cpuinfo, cpu_count=16, environ={"CUDA_VISIBLE_DEVICES": "1"}
    )
    assert one["gpu_count"] == 1 and one["id"] != hw["id"]
    assert differences(hw, one) == ["GPU count"]
    # no driver: no GPU, never an error
    none = detect_hardware(FakeNvml([], init_error=True), cpuinfo=cpuinfo, cpu_count=16)
    assert (none["gpu_model"], none["gpu_count"]) == (None, 0)
    assert hardware_of({"hardware": hw}) == hw
    assert hardware_of({"baseline_version": 1}) is None  # a baseline from before
    assert hardware_class("Fake CPU 9000", 16, [])["id"] == none["id"]


def _bars(svg: str) -> list[int]:
    tree = ET.fromstring(svg)
    return [int(r.get("data-count")) for r in tree.iter(f"{SVG}rect") if r.get("class") == "bar"]


def test_the_latency_histogram_is_valid_svg_whose_bars_add_up() -> None:
    values = [10.0 + (i % 7) * 0.5 + (3.0 if i % 11 == 0 else 0.0) for i in range(60)]
    found = bins(values)
    assert 1 < len(found) <= 40 and sum(c for _, _, c in found) == 60
    svg = latency_svg("smoke / <fast> & co", values, baseline_ms=9.0)
    tree = ET.fromstring(svg)  # well-formed despite the name's markup characters
    assert tree.find(f"{SVG}title").text == "smoke / <fast> & co"
    assert sum(_bars(svg)) == 60 and len(_bars(svg)) == len(found)
    (line,) = [e for e in tree.iter(f"{SVG}line") if e.get("class") == "baseline"]
    assert float(line.get("x1")) < min(
        float(r.get("x")) for r in tree.iter(f"{SVG}rect") if r.get("class") == "bar"
    )  # the baseline (9 ms) is left of every bar (10 ms and up)
    assert "latency per call (ms)" in svg
    assert _bars(latency_svg("one value", [5.0, 5.0, 5.0])) == [3]


def test_results_schema_is_a_valid_schema_that_rejects_a_bad_verdict() -> None:
    schema = perf_test_results_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    check = {"$ref": "#/$defs/check", "$defs": schema["$defs"]}
    validator = jsonschema.Draft202012Validator(check)
    validator.validate({"value": 1.0, "min": None, "max": 0.0, "level": "above-band"})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"value": 1.0, "min": None, "max": 0.0, "level": "exploded"})


def test_results_files_of_version_1_are_baselines_and_newer_ones_are_refused(
    tmp_path: Path,
) -> None:
    from otel_tracker.errors import OtelTrackerError
    from otel_tracker.perftest.baselines import BaselineSource

    (sc,) = load_suite(_suite(tmp_path, 'entry = "m:f"')).scenarios
    here = hardware_class("Fake CPU", 2, [])
    entry = {"suite": "smoke", "name": "fast", "run_id": "r1"}
    old = {"kind": "otel-tracker-perf-test-results", "results_version": 1, "scenarios": [entry]}
    entry["metrics_flat"] = {"throughput_p50": 100.0, "latency_p50_ms": 10.0}
    (tmp_path / "v1.json").write_text(json.dumps(old))
    expected = BaselineSource(str(tmp_path / "v1.json"), tmp_path, here).expected("smoke", sc)
    assert expected is not None and expected.value("throughput_p50") == 100.0
    assert expected.hardware == "unknown" and "has no hardware record" in (expected.note or "")
    (tmp_path / "v9.json").write_text(json.dumps({**old, "results_version": 9}))
    with pytest.raises(OtelTrackerError, match="results_version 9 is newer than this"):
        BaselineSource(str(tmp_path / "v9.json"), tmp_path, here)
