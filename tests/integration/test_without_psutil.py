"""A run where psutil cannot be imported: real subprocesses, psutil hidden by a
``sitecustomize`` on their PYTHONPATH (the sampling helper inherits it too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import child_env, make_run, only_manifest, otel_cli

NO_PSUTIL = "import sys\nsys.modules['psutil'] = None  # import psutil -> ImportError\n"

PIPELINE = """
import sys, time
from otel_tracker import track_run
with track_run("no-psutil", steps=["load", "train"], sample_interval=0.05,
               sample_in_subprocess=sys.argv[1] == "helper", progress="off") as run:
    with run.step("load") as step:
        step.advance(3)
    with run.step("train") as step:
        for _ in range(30):
            step.advance()
            time.sleep(0.01)
print("pipeline done")
"""


def _hide_psutil(tmp_path: Path) -> dict[str, str]:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(NO_PSUTIL)
    return {"PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("mode", ["helper", "thread"])
def test_without_psutil_throughput_survives_and_each_source_says_why(
    root: Path, tmp_path: Path, mode: str
) -> None:
    env = child_env(root, **_hide_psutil(tmp_path))
    check = subprocess.run(
        [sys.executable, "-c", "import psutil"], env=env, capture_output=True, timeout=60
    )
    assert check.returncode != 0  # the shim works: psutil is not importable
    proc = subprocess.run(
        [sys.executable, "-c", PIPELINE, mode],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "pipeline done" in proc.stdout, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "otel-tracker" in line]
    assert len(warnings) == 1 and "psutil" in warnings[0], proc.stderr

    doc = only_manifest(root)
    assert doc["status"] == "completed"
    telemetry = doc["telemetry"]
    assert telemetry is not None and telemetry["samples"] > 0
    for source in ("process", "system"):
        assert "psutil" in telemetry["unavailable"][source], telemetry["unavailable"]
    assert "resources" not in telemetry["unavailable"]  # each source, not one lump
    assert telemetry["run"]["otel_tracker.step.throughput"]["max"] > 0
    train = doc["steps"][1]
    assert train["resources"]["otel_tracker.step.items"]["max"] > 0
    assert "fallback_reason" not in (telemetry.get("sampler") or {})

    shown = otel_cli(root, "show", doc["run_id"])
    assert shown.returncode == 0, shown.stderr
    assert "telemetry-unavailable: process telemetry unavailable: psutil" in shown.stdout
    assert "no anomalies detected" not in shown.stdout
    summary = otel_cli(root, "summary", doc["run_id"], "--format", "json")
    assert summary.returncode == 0, summary.stderr
    found = json.loads(summary.stdout)["analysis"]["recommendations"]
    unavailable = {r["evidence"].get("what") for r in found if r["id"] == "telemetry-unavailable"}
    assert {"process", "system"} <= unavailable, found
    assert not [r for r in found if "no resource samples" in r["detected"]], found


def test_a_run_whose_sampling_never_started_says_why(
    root: Path, template_manifest: dict[str, Any]
) -> None:
    """``telemetry`` null (sampling could not start; the reason is in the warnings):
    ``show`` lists it under telemetry-unavailable, not "no anomalies detected"."""
    reason = "psutil is not importable (No module named 'psutil'; pip install psutil)"
    run_dir = make_run(
        root,
        template_manifest,
        telemetry=None,
        warnings=[f"resource sampling unavailable: {reason}"],
    )
    shown = otel_cli(root, "show", run_dir.name)
    assert shown.returncode == 0, shown.stderr
    assert f"telemetry-unavailable: resources telemetry unavailable: {reason}" in shown.stdout
