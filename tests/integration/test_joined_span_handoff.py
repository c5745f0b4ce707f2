"""Joined children hand their spans to the launcher's OTLP mirror instead of
exporting them themselves: one trace at the collector, and with a dead collector
one bounded delay for the whole run (the launcher's), not one per process."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import load_manifest, only_manifest, otel_cli, wait_for, wrap
from tests.otlp_receiver import BlackHole, OtlpGrpcReceiver

# A stage that tracks a run of its own (it joins the pipeline's run) and reports how
# long its run's end took: everything after its last statement inside the block,
# the exporters' flush and shutdown included.
STAGE = """
import json, sys, time
from otel_tracker import track_run

with track_run(f"stage {sys.argv[1]}", steps=["work"], progress="off") as run:
    with run.step("work") as step:
        step.advance(3)
    leaving = time.monotonic()
print(json.dumps({"end_s": time.monotonic() - leaving, "part": str(run.manifest_path)}))
"""


def _pipeline(tmp_path: Path, stages: int) -> Path:
    script = tmp_path / "stage.py"
    script.write_text(textwrap.dedent(STAGE))
    path = tmp_path / "stages.toml"
    path.write_text(
        'name = "staged"\n'
        + "".join(
            f'[[steps]]\nname = "s{n}"\ncommand = ["{sys.executable}", "{script}", "{n}"]\n'
            for n in range(stages)
        )
    )
    return path


def _run_stages(root: Path, tmp_path: Path, stages: int, endpoint: str, **env: str) -> Any:
    return otel_cli(
        root,
        "pipeline",
        "run",
        str(_pipeline(tmp_path, stages)),
        "--otlp",
        endpoint,
        OTEL_TRACKER_PROGRESS="off",
        timeout=180,
        **env,
    )


def _stage_reports(run_dir: Path) -> list[dict]:
    logs = sorted((run_dir / "logs").glob("*.stdout.log"))
    return [json.loads(log.read_text().splitlines()[-1]) for log in logs]


def test_joined_spans_reach_the_collector_in_the_launchers_trace(
    root: Path, tmp_path: Path
) -> None:
    receiver = OtlpGrpcReceiver()
    try:
        proc = _run_stages(root, tmp_path, 2, receiver.endpoint)
    finally:
        receiver.close()
    assert proc.returncode == 0, proc.stderr
    doc = only_manifest(root)
    spans = receiver.received.spans
    assert {s["trace_id"] for s in spans} == {doc["trace"]["trace_id"]}
    by_id = {s["span_id"]: s for s in spans}
    for n, step in enumerate(doc["steps"]):
        # the stage's run span nests under the pipeline step that launched it...
        [stage_run] = [s for s in spans if s["name"] == f"RUN stage {n}"]
        assert stage_run["parent_span_id"] == step["span_id"]
        assert by_id[step["span_id"]]["name"] == f"s{n}"
        # ...its step under its run, with the stage process's own resource and attributes
        [work] = [
            s for s in spans if s["name"] == "work" and s["resource"] == stage_run["resource"]
        ]
        assert work["parent_span_id"] == stage_run["span_id"]
        assert work["attributes"]["cicd.pipeline.task.run.result"] == "success"
        assert stage_run["resource"]["cicd.pipeline.name"] == f"stage {n}"
        assert stage_run["resource"]["process.pid"] != doc["process"]["pid"]
    # each stage handed its spans over in its own file; it had no exporter of its own
    for report in _stage_reports(Path(doc["run_dir"])):
        part = load_manifest(Path(report["part"]))
        assert "otlp" not in part["tracker"].get("mirrors", {}), part["tracker"]
        assert Path(report["part"].replace(".json", ".spans.jsonl")).stat().st_size > 0
    # the launcher delivered them: its 3 spans and 2 of each stage
    assert doc["tracker"]["mirrors"]["otlp"]["traces_delivery"]["delivered"] == {"spans": 7}


@pytest.mark.slow
def test_a_dead_collector_costs_the_run_one_export_timeout_not_one_per_stage(
    root: Path, tmp_path: Path
) -> None:
    export_timeout = 3.0
    hole = BlackHole()
    started = time.monotonic()
    try:
        proc = _run_stages(
            root, tmp_path, 5, hole.endpoint, OTEL_TRACKER_EXPORT_TIMEOUT=str(export_timeout)
        )
    finally:
        hole.close()
    print(f"5 joined stages, dead collector, export_timeout {export_timeout}s: ", end="")
    print(f"{time.monotonic() - started:.1f}s")
    assert proc.returncode == 0, proc.stderr
    doc = only_manifest(root)
    reports = _stage_reports(Path(doc["run_dir"]))
    assert len(reports) == 5
    for report in reports:
        # a stage's end does not wait for the collector (before: the full
        # export_timeout, stage after stage), because no stage has an OTLP exporter
        assert report["end_s"] < export_timeout / 2, reports
        part = load_manifest(Path(report["part"]))
        assert "otlp" not in part["tracker"].get("mirrors", {}), part["tracker"]
    # all 16 spans went to the launcher's one pipeline, and are counted there as lost
    traces = doc["tracker"]["mirrors"]["otlp"]["traces_delivery"]
    lost = sum(traces["dropped"].values()) + sum(traces["in_flight"].values())
    assert lost == 6 + 2 * 5 and traces["delivered"] == {}, traces
    assert sum(1 for line in proc.stderr.splitlines() if "OTLP" in line) == 1, proc.stderr


LONG_CHILD = """
import os, sys, time
from otel_tracker import track_run

with track_run("long", steps=["early", "late"], progress="off") as run:
    with run.step("early"):
        pass
    while not os.path.exists(sys.argv[1]):  # until the test has seen "early" arrive
        time.sleep(0.05)
    with run.step("late"):
        pass
"""


@pytest.mark.slow
def test_a_long_running_childs_finished_steps_reach_the_collector_while_it_runs(
    root: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    script = tmp_path / "long.py"
    script.write_text(textwrap.dedent(LONG_CHILD))
    receiver = OtlpGrpcReceiver()
    try:
        proc = wrap(
            root, sys.executable, str(script), str(gate), options=("--otlp", receiver.endpoint)
        )
        try:
            wait_for(lambda: "early" in _names(receiver), timeout=60, what="the step's span")
            assert "late" not in _names(receiver)  # the child is still running
        finally:
            gate.touch()
        _, err = proc.communicate(timeout=60)
    finally:
        receiver.close()
    assert proc.returncode == 0, err
    assert {"RUN long", "early", "late"} <= _names(receiver)


def _names(receiver: Any) -> set[str]:
    return {s["name"] for s in receiver.received.spans}
