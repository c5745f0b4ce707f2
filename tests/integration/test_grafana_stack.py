"""The optional Grafana stack, proven without Docker: its files parse and agree with each
other, promtool accepts the Prometheus config and the alerting rules (and their unit
tests pass), and every PromQL expression of every shipped dashboard and alert rule
returns data from a real Prometheus scraping a tracked run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_tracker import track_run
from otel_tracker.testing import FakeNvml, GpuProc
from tests.helpers import REPO, wait_for
from tests.otlp_receiver import closed_port
from tests.prometheus_server import PrometheusServer, prometheus_tool

CONFIG = REPO / "collector-config"
DASHBOARDS = sorted((CONFIG / "grafana" / "dashboards").glob("*.json"))
ALERTS = CONFIG / "otel-tracker-alerts.yml"
ALERTS_TEST = REPO / "tests" / "integration" / "otel_tracker_alerts_test.yml"
PROMQL_WORDS = {"by", "on", "and", "or", "unless", "without", "ignoring", "offset", "bool"}
PROMQL_WORDS |= {"group_left", "group_right"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target and every query variable."""
    found = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["query"]["query"])
        assert match, variable
        found.append((f"variable {variable['name']}", match.group(1)))
    return found


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(ALERTS)["groups"] for rule in group["rules"]]


def _metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    text = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", "", text)  # range durations
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text))
    return names - PROMQL_WORDS


def _documented_prometheus_names() -> set[str]:
    """The right-hand column of docs/metrics.md's "Prometheus names" table."""
    text = (REPO / "docs" / "metrics.md").read_text().split("## Prometheus names", 1)[1]
    names: set[str] = set()
    for line in text.splitlines():
        cells = line.split("|")
        if len(cells) >= 4:
            names |= set(re.findall(r"`([a-z_:][a-z0-9_:]*)", cells[2]))
    return names


def test_promtool_checks_the_alert_rules_and_passes_their_unit_tests() -> None:
    promtool = prometheus_tool("promtool")  # a missing promtool fails, never skips
    for args in (["check", "rules", str(ALERTS)], ["test", "rules", str(ALERTS_TEST)]):
        proc = subprocess.run([promtool, *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "SUCCESS" in proc.stdout + proc.stderr


def test_alert_rules_are_loaded_and_use_only_metric_names_we_export() -> None:
    assert _yaml(CONFIG / "prometheus.yml")["rule_files"] == [ALERTS.name]
    mounts = _yaml(REPO / "docker-compose.yml")["services"]["prometheus"]["volumes"]
    assert f"./collector-config/{ALERTS.name}:/etc/prometheus/{ALERTS.name}:ro" in mounts
    rules = _alert_rules()
    assert [r["alert"] for r in rules] == [
        "OtelTrackerPerfRegression",
        "OtelTrackerStepStuck",
        "OtelTrackerRunStoppedIncomplete",
    ]
    documented = _documented_prometheus_names()
    assert "otel_tracker_user_perf_test_regression" in documented
    for rule in rules:
        names = _metric_names(rule["expr"])
        assert names and names <= documented, (rule["alert"], names - documented)
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert {"summary", "description"} <= set(rule["annotations"])


def test_promtool_accepts_the_prometheus_config() -> None:
    proc = subprocess.run(
        [prometheus_tool("promtool"), "check", "config", str(CONFIG / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_binds_loopback_pins_images_and_sets_no_default_credentials() -> None:
    compose = _yaml(REPO / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"otel-collector", "prometheus", "jaeger", "grafana"}
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: unpinned {image}"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
    env = services["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "admin" not in env["GF_SECURITY_ADMIN_PASSWORD"].split(":?")[0]


def test_collector_pipelines_use_only_defined_components_and_feed_prometheus() -> None:
    collector = _yaml(CONFIG / "otel-collector.yaml")
    for name, pipeline in collector["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in collector[kind], f"{name} uses undefined {kind} {component}"
    assert set(collector["service"]["extensions"]) <= set(collector["extensions"])
    # Prometheus scrapes the port the collector's Prometheus exporter serves
    exporter_port = collector["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    targets = _yaml(CONFIG / "prometheus.yml")["scrape_configs"][0]["static_configs"][0]
    assert targets["targets"] == [f"otel-collector:{exporter_port}"]
    # unit "1" is cleared so the collector's names equal the direct endpoint's (no _ratio)
    statements = collector["processors"]["transform/unit_one"]["metric_statements"]
    assert statements[0]["statements"] == ['set(unit, "") where unit == "1"']
    assert "transform/unit_one" in collector["service"]["pipelines"]["metrics"]["processors"]
    # the collector sends traces where Grafana's Jaeger datasource reads them
    assert collector["exporters"]["otlp/jaeger"]["endpoint"].startswith("jaeger:")


def test_dashboards_reference_the_provisioned_datasources() -> None:
    sources = _yaml(CONFIG / "grafana" / "provisioning" / "datasources" / "datasources.yaml")
    uids = {s["uid"] for s in sources["datasources"]}
    assert [d.name for d in DASHBOARDS] == [
        "otel-tracker-resources.json",
        "otel-tracker-runs.json",
        "otel-tracker-steps.json",
    ]
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] == path.stem
        text = path.read_text()
        assert set(re.findall(r'"uid": "([\w-]+)"', text)) - {dashboard["uid"]} <= uids
        assert "otel-tracker-jaeger" in text or path.stem == "otel-tracker-resources"
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        assert variables == {"pipeline", "run", "host", "rank"}
        # a distributed job's host and rank filter every query of the run
        for title, expr in _expressions(dashboard):
            if '"$run"' in expr and not title.startswith("variable "):
                assert 'host_name=~"$host", otel_tracker_job_rank=~"$rank"' in expr, expr


@pytest.mark.slow
def test_every_dashboard_query_returns_data(tmp_path: Path, monkeypatch: Any) -> None:
    # this machine has no NVIDIA GPU: the sampler gets an injected fake NVML
    nvml = FakeNvml(["GPU-0a1b2c3d"])
    nvml.processes = {0: [GpuProc(os.getpid(), 2 * 2**30)]}
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    port = closed_port()
    server = PrometheusServer(tmp_path, port)
    try:
        with track_run(
            "dashboard-check",
            root=tmp_path / "runs",
            steps=["prepare", "train", "evaluate"],
            prometheus=port,
            sample_interval=0.25,
            sample_in_subprocess=False,  # the fake NVML lives in this process
            progress="off",
            install_signal_handlers=False,
        ) as run:
            for name in ("prepare", "train"):
                with run.step(name) as step:
                    for _ in range(12):
                        step.advance(10)
                        time.sleep(0.1)
            # what perf-test records on a scenario's run it compared (test_perf_test.py)
            run.set_gauge("perf_test.regression", 0.0)
            with run.step("evaluate") as step:
                step.set_total(10_000)  # a known total and rate: the run has an ETA
                selector = f'cicd_pipeline_run_id="{run.run_id}"'

                def scraped_both_durations() -> bool:
                    step.advance()
                    time.sleep(0.1)
                    found = server.query(f"otel_tracker_step_duration_seconds{{{selector}}}")
                    return len(found) == 2

                wait_for(scraped_both_durations, timeout=30, what="both step durations scraped")
                empty = []
                checked = 0
                for path in DASHBOARDS:
                    for title, expr in _expressions(json.loads(path.read_text())):
                        promql = (
                            expr.replace("$pipeline", "dashboard-check")
                            .replace("$run", run.run_id)
                            .replace("$__range", "1h")
                            # "All": a single process's series have no such labels
                            .replace("$host", ".*")
                            .replace("$rank", ".*")
                        )
                        assert "$" not in promql, promql
                        checked += 1
                        if not server.query(promql):
                            empty.append(f"{path.stem} / {title}: {promql}")
                # each metric an alert rule selects is served under that name
                for rule in _alert_rules():
                    for name in sorted(_metric_names(rule["expr"])):
                        checked += 1
                        if not server.query(f"{name}{{{selector}}}"):
                            empty.append(f"alert {rule['alert']}: {name}")
    finally:
        server.close()
    assert checked >= 25
    assert empty == []
