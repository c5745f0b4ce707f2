"""The OTLP mirror against real receivers on 127.0.0.1 (gRPC and HTTP/protobuf), and
against endpoints that refuse or never answer: the run's exit stays bounded."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from otel_tracker.timeparse import parse_timestamp
from tests.helpers import only_manifest, start_script, wait_for
from tests.otlp_receiver import BlackHole, OtlpGrpcReceiver, OtlpHttpReceiver, closed_port

SECRET = "sk-live-0123456789abcdefSECRET"

# A two-step run in its own process, exiting the normal way.
WORKLOAD = f"""
import os, sys, time
from otel_tracker import track_run
with track_run(
    "mirrored",
    steps=["load", "train"],
    params={{"lr": 0.1, "api_key": "{SECRET}"}},
    sample_interval=0.2,
    progress="off",
) as run:
    print("RUN", run.run_id, flush=True)
    with run.step("load") as step:
        for _ in range(5):
            step.advance()
            time.sleep(0.06)
        # a test that watches the collector says when it has seen this step's metrics
        # (a loaded machine may not export within a fixed window)
        seen = os.environ.get("LOAD_SEEN_FILE")
        deadline = time.monotonic() + 30
        while seen and not os.path.exists(seen) and time.monotonic() < deadline:
            time.sleep(0.02)
    with run.step("train") as step:
        step.set_total(10)
        for _ in range(10):
            sum(range(20_000))
            step.advance()
            time.sleep(0.08)
        run.log_scores({{"reward": 1.5}})
"""


def _run_workload(root: Path, timeout: float = 60, **env: str) -> tuple[str, str, float]:
    """Run WORKLOAD; return stdout, stderr and the seconds from the run's end (its
    manifest's ``ended_at``) to process exit: exporter flushes and teardown."""
    proc = start_script(
        WORKLOAD,
        root,
        OTEL_TRACKER_OTLP="true",
        OTEL_SERVICE_NAME="otlp-test",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=ci",
        MY_SERVICE_TOKEN=SECRET,
        **env,
    )
    out, err = proc.communicate(timeout=timeout)
    exited = time.time()
    assert proc.returncode == 0, err
    ended = parse_timestamp(only_manifest(root)["ended_at"])
    assert ended is not None
    return out, err, exited - ended


def _steps_seen(got: Any) -> set[str]:
    with got.lock:
        return {
            m["attributes"].get("cicd.pipeline.task.name")
            for m in got.metrics
            if m["name"] == "otel_tracker.step.items"
        }


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(request: pytest.FixtureRequest) -> Any:
    peer = OtlpGrpcReceiver() if request.param == "grpc" else OtlpHttpReceiver()
    peer.protocol = request.param
    yield peer
    peer.close()


def test_spans_and_metrics_reach_a_real_receiver(root: Path, receiver: Any) -> None:
    seen = root.parent / "load-seen"

    def mark_load_seen() -> None:
        wait_for(lambda: _steps_seen(receiver.received) & {"load"}, 40, "the load step's metric")
        seen.touch()

    watcher = threading.Thread(target=mark_load_seen, daemon=True)
    watcher.start()
    _, err, _ = _run_workload(
        root,
        LOAD_SEEN_FILE=str(seen),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=receiver.protocol,
        OTEL_EXPORTER_OTLP_HEADERS=f"x-tenant=ml-team,authorization=Bearer {SECRET}",
    )
    doc = only_manifest(root)
    got = receiver.received

    by_name = {s["name"]: s for s in got.spans}
    assert set(by_name) == {"RUN mirrored", "load", "train"}, err
    run_span = by_name["RUN mirrored"]
    assert run_span["kind"] == 2  # SPAN_KIND_SERVER
    assert run_span["parent_span_id"] == ""
    assert run_span["trace_id"] == doc["trace"]["trace_id"]
    assert run_span["attributes"]["cicd.pipeline.run.id"] == doc["run_id"]
    assert run_span["attributes"]["cicd.pipeline.result"] == "success"
    assert run_span["attributes"]["otel_tracker.param.lr"] == 0.1
    assert "scores" in run_span["events"]
    for step in ("load", "train"):
        span = by_name[step]
        assert span["trace_id"] == run_span["trace_id"]
        assert span["parent_span_id"] == run_span["span_id"]
        assert span["attributes"]["cicd.pipeline.task.name"] == step
        assert span["attributes"]["cicd.pipeline.task.run.result"] == "success"
        assert span["span_id"] == next(s for s in doc["steps"] if s["name"] == step)["span_id"]

    resource = run_span["resource"]
    assert resource["service.name"] == "otlp-test"
    assert resource["deployment.environment.name"] == "ci"
    assert resource["service.instance.id"] == doc["run_id"]
    assert resource["cicd.pipeline.run.id"] == doc["run_id"]
    assert resource["host.name"] == doc["process"]["host"]
    assert resource["process.pid"] == doc["process"]["pid"]

    names = got.metric_names()
    for expected in (
        "process.cpu.utilization",
        "process.memory.usage",
        "system.memory.usage",
        "otel_tracker.step.items",
    ):
        assert expected in names, sorted(names)
    assert {"load", "train"} <= _steps_seen(got)
    # log_scores' values are series too: their latest value is the run.log() gauge
    logged = [
        m["value"]
        for m in got.metrics
        if m["name"] == "otel_tracker.metric"
        and m["attributes"].get("otel_tracker.metric.name") == "reward"
    ]
    assert logged and logged[-1] == 1.5, sorted(names)
    assert all(m["attributes"]["cicd.pipeline.run.id"] == doc["run_id"] for m in got.metrics)

    delivery = doc["tracker"]["mirrors"]["otlp"]
    assert delivery["traces_delivery"]["delivered"] == {"spans": 3}
    assert delivery["traces_delivery"]["dropped"] == {}
    assert delivery["metrics_delivery"]["delivered"]["metric exports"] >= 1
    assert "failed" not in err

    # the standard headers variable reaches the collector, and only the collector
    assert got.headers and all(h["x-tenant"] == "ml-team" for h in got.headers)
    assert SECRET not in repr(doc)

    # the manifest redacted the secret; the mirror must not leak it either
    assert doc["params"]["api_key"] != SECRET
    assert not any(SECRET.encode() in raw for raw in got.raw)


def _dead_endpoints() -> list[Any]:
    return [
        pytest.param("grpc", "closed", id="grpc-refused"),
        pytest.param("grpc", "blackhole", id="grpc-never-answers"),
        pytest.param("http/protobuf", "closed", id="http-refused"),
        pytest.param("http/protobuf", "blackhole", id="http-never-answers"),
    ]


@pytest.mark.parametrize(("protocol", "kind"), _dead_endpoints())
def test_a_dead_endpoint_delays_exit_by_at_most_the_export_timeout(
    root: Path, protocol: str, kind: str
) -> None:
    hole = BlackHole() if kind == "blackhole" else None
    port = hole.port if hole else closed_port()
    try:
        _, err, exit_delay = _run_workload(
            root,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_TRACKER_EXPORT_TIMEOUT="1.5",
        )
    finally:
        if hole:
            hole.close()
    # the SDK alone would wait 10-30 s here; ours gives up after export_timeout (1.5 s)
    assert exit_delay < 1.5 + 2.0, (exit_delay, err)
    doc = only_manifest(root)
    assert doc["status"] == "completed"
    assert [s["status"] for s in doc["steps"]] == ["completed", "completed"]
    # reported, not spammed: one warning line for the dead collector (its first failure,
    # or the total if everything was still in flight at the deadline)
    otlp_lines = [line for line in err.splitlines() if "OTLP" in line]
    assert len(otlp_lines) == 1, err
    assert "Transient error" not in err and "Failed to export" not in err, err
    traces = doc["tracker"]["mirrors"]["otlp"]["traces_delivery"]
    assert traces["delivered"] == {}
    # the run span and both steps: dropped, or still in flight when the deadline passed
    lost = sum(traces["dropped"].values()) + sum(traces["in_flight"].values())
    assert lost == 3, (traces, err)
    # the total is the truth in the record, whichever line was logged
    assert any("OTLP could not deliver 3 spans" in w for w in doc["warnings"]), doc["warnings"]
