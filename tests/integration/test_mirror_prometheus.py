"""The Prometheus mirror scraped by a real Prometheus server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_tracker import track_run
from tests.helpers import child_env, load_manifest, wait_for
from tests.otlp_receiver import closed_port
from tests.prometheus_server import PrometheusServer

SECRET = "sk-live-0123456789abcdefSECRET"


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[PrometheusServer, int]]:
    target_port = closed_port()
    server = PrometheusServer(tmp_path, target_port)
    yield server, target_port
    server.close()


@pytest.mark.slow
def test_prometheus_scrapes_run_cpu_memory_and_step_metrics(
    root: Path, prometheus: tuple[PrometheusServer, int]
) -> None:
    server, port = prometheus
    with track_run(
        "scraped",
        root=root,
        steps=["train"],
        params={"token": SECRET},
        prometheus=port,
        sample_interval=0.25,
        progress="off",
        install_signal_handlers=False,
    ) as run:
        url = run.record.tracker["mirrors"]["prometheus"]["url"]
        assert url == f"http://127.0.0.1:{port}/metrics"
        selector = f'cicd_pipeline_run_id="{run.run_id}",cicd_pipeline_task_name="train"'
        with run.step("train") as step:
            run.add_count("episodes", 3)
            step.log({"loss": 0.25, "acc": 0.75})  # run.log() keys: a gauge, latest value

            def scraped() -> Any:
                step.advance()
                time.sleep(0.05)
                return server.query(f"otel_tracker_step_items{{{selector}}}")

            items = wait_for(scraped, timeout=30, what="a scrape with the step's items")
            cpu = server.query(f"process_cpu_utilization{{{selector}}}")
            memory = server.query(f"process_memory_usage_bytes{{{selector}}}")
            counter = server.query(f"otel_tracker_user_episodes_total{{{selector}}}")
            up = server.query('up{job="otel-tracker"}')
            loss = wait_for(
                lambda: server.query(
                    f'otel_tracker_metric{{otel_tracker_metric_name="loss",{selector}}}'
                ),
                timeout=30,
                what="a scrape with the logged loss",
            )
            with urllib.request.urlopen(url, timeout=5) as response:
                exposition = response.read().decode()

    assert float(items[0]["value"][1]) >= 1
    assert cpu and 0 <= float(cpu[0]["value"][1]) <= os.cpu_count()
    assert memory and float(memory[0]["value"][1]) > 10_000_000
    assert counter and float(counter[0]["value"][1]) == 3
    assert up and up[0]["value"][1] == "1"
    assert float(loss[0]["value"][1]) == 0.25
    assert SECRET not in exposition and "api_key" not in exposition
    assert "# TYPE otel_tracker_user_episodes_total counter" in exposition
    doc = load_manifest(run.manifest_path)
    assert doc["tracker"]["mirrors"]["prometheus"]["url"] == url
    # the endpoint goes away with the run
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


def test_a_port_in_use_warns_once_and_the_run_goes_on(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with (
            track_run(
                "busy-port", root=root, steps=["a"], prometheus=port, install_signal_handlers=False
            ) as run,
            run.step("a") as step,
        ):
            step.advance()
    doc = load_manifest(run.manifest_path)
    assert doc["status"] == "completed"
    assert "prometheus" not in doc["tracker"]["mirrors"]
    assert any(f"127.0.0.1:{port}" in w and "Prometheus" in w for w in doc["warnings"])
    warnings = [r for r in caplog.records if "Prometheus mirror" in r.getMessage()]
    assert len(warnings) == 1


def test_port_zero_picks_a_free_port_and_the_manifest_records_it(root: Path) -> None:
    with track_run(
        "any-port", root=root, prometheus="127.0.0.1:0", install_signal_handlers=False
    ) as run:
        url = run.record.tracker["mirrors"]["prometheus"]["url"]
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert port > 0
    assert load_manifest(run.manifest_path)["tracker"]["mirrors"]["prometheus"]["url"] == url


POOL_OUTLIVES_RUN = """
import json, multiprocessing as mp, socket, sys, urllib.request
from otel_tracker import track_run

def square(x):
    return x * x

if __name__ == "__main__":
    with track_run("pooled", steps=["a"], prometheus="127.0.0.1:0", progress="off") as run:
        url = run.record.tracker["mirrors"]["prometheus"]["url"]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        pool = mp.get_context("fork").Pool(2)  # kept after the run, as a DataLoader's are
        with run.step("a"):
            assert pool.map(square, range(4)) == [0, 1, 4, 9]
    result = {}
    with socket.socket() as again:  # the next run on this port
        try:
            again.bind(("127.0.0.1", port))
            result["bind"] = "free"
        except OSError as exc:
            result["bind"] = exc.strerror
    try:
        urllib.request.urlopen(url, timeout=3)
        result["scrape"] = "answered"
    except OSError as exc:
        result["scrape"] = type(getattr(exc, "reason", exc)).__name__
    pool.terminate()
    print(json.dumps(result))
"""


def test_a_fork_pool_that_outlives_the_run_does_not_keep_its_port(root: Path) -> None:
    script = root.parent / "pooled.py"
    script.write_text(POOL_OUTLIVES_RUN)
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=child_env(root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # before: the workers held the listening socket, the port stayed bound and a
    # scrape waited on a connection nobody would ever accept
    assert result == {"bind": "free", "scrape": "ConnectionRefusedError"}


def test_slow_clients_and_a_scrape_storm_cost_no_threads_and_block_no_scrape(
    root: Path,
) -> None:
    with track_run(
        "stormed", root=root, prometheus="127.0.0.1:0", install_signal_handlers=False
    ) as run:
        url = run.record.tracker["mirrors"]["prometheus"]["url"]
        port = int(url.rsplit(":", 1)[1].split("/")[0])

        def first_sample() -> bytes:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read()

        wait_for(first_sample, 30, "the first sample on /metrics")
        threads_before = threading.active_count()
        slow = []
        for _ in range(50):  # connect, then never finish the request
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
            slow.append(sock)
        peak = threading.active_count()
        failures: list[BaseException] = []

        def scrape() -> None:
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    assert response.status == 200 and response.read()
            except BaseException as exc:
                failures.append(exc)

        storm = [threading.Thread(target=scrape) for _ in range(200)]
        for thread in storm:
            thread.start()
        for thread in storm:
            thread.join(60)
        peak = max(peak, threading.active_count() - len(storm))
        for sock in slow:
            sock.close()
    # one server thread whatever the clients do (prometheus_client's: one per connection)
    assert peak - threads_before <= 1
    assert failures == []
