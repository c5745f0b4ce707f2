"""Mirror settings (argument > environment > default) and mirrors that cannot start."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from otel_tracker import track_run
from otel_tracker.config import MirrorConfig, env_int
from otel_tracker.errors import ConfigError
from otel_tracker.exporters.tensorboard import metric_tag
from tests.helpers import load_manifest


def test_all_mirrors_are_off_by_default() -> None:
    config = MirrorConfig.resolve(environ={})
    assert not config.enabled
    assert (config.prometheus_host, config.prometheus_port) == ("127.0.0.1", 9464)
    assert config.otlp_traces_protocol == config.otlp_metrics_protocol == "grpc"


def test_standard_otel_variables_turn_mirrors_on() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp,prometheus",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "0.0.0.0",
        "OTEL_EXPORTER_PROMETHEUS_PORT": "9999",
        "OTEL_METRIC_EXPORT_INTERVAL": "15000",
    }
    config = MirrorConfig.resolve(environ=env)
    assert config.otlp and config.prometheus and not config.tensorboard
    assert config.otlp_traces_protocol == "http/protobuf"
    assert config.otlp_metrics_protocol == "grpc"
    assert (config.prometheus_host, config.prometheus_port) == ("0.0.0.0", 9999)
    assert config.otlp_metric_interval == 15.0


def test_our_variables_and_arguments_win() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_TRACKER_OTLP": "false",
        "OTEL_TRACKER_PROMETHEUS": "true",
        "OTEL_TRACKER_TENSORBOARD": "1",
    }
    config = MirrorConfig.resolve(environ=env)
    assert (config.otlp, config.prometheus, config.tensorboard) == (False, True, True)
    explicit = MirrorConfig.resolve(
        otlp="https://collector:4317", prometheus=":0", tensorboard=False, environ=env
    )
    assert explicit.otlp and explicit.otlp_endpoint == "https://collector:4317"
    assert (explicit.prometheus_host, explicit.prometheus_port) == ("127.0.0.1", 0)
    assert not explicit.tensorboard
    assert MirrorConfig.resolve(prometheus="[::1]:9000", environ={}).prometheus_host == "::1"
    assert MirrorConfig.resolve(prometheus=9100, environ={}).prometheus_port == 9100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"otlp": "collector:4317"}, "URL"),
        ({"otlp": 3}, "bool or an endpoint"),
        ({"prometheus": 70000}, "port"),
        ({"prometheus": "host:http"}, "port"),
        ({"prometheus": 1.5}, "port"),
    ],
)
def test_bad_explicit_mirror_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MirrorConfig.resolve(environ={}, **kwargs)


def test_bad_environment_values_warn_and_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_PROMETHEUS_PORT": "99999"}
    with caplog.at_level(logging.WARNING):
        config = MirrorConfig.resolve(environ=env)
    assert config.otlp_traces_protocol == "grpc"
    assert config.prometheus_port == 9464
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in caplog.text
    assert "OTEL_EXPORTER_PROMETHEUS_PORT" in caplog.text
    assert env_int("X", 3, environ={"X": "seven"}) == 3


def test_missing_extras_are_named_once_and_the_run_goes_on(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # a None entry in sys.modules makes the import fail exactly like a missing package
    for module in (
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "opentelemetry.exporter.prometheus",
        "tensorboardX",
        "tensorboardX.summary",
    ):
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr("otel_tracker.exporters.mirrors._warned_extras", set())
    docs = []
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            with (
                track_run(
                    "no-extras",
                    root=root,
                    steps=["a"],
                    otlp=True,
                    prometheus=0,
                    tensorboard=True,
                    install_signal_handlers=False,
                    progress="off",
                ) as run,
                run.step("a") as step,
            ):
                step.advance()
            docs.append(load_manifest(run.manifest_path))
    for doc in docs:
        assert doc["status"] == "completed"
        assert doc["tracker"]["mirrors"] == {}
        joined = "\n".join(doc["warnings"])
        for extra in ("otlp", "prometheus", "tensorboard"):
            assert f"pip install 'otel-tracker[{extra}]'" in joined
    # one log line per extra for the whole process, not per run
    messages = [r.getMessage() for r in caplog.records if "pip install" in r.getMessage()]
    assert len(messages) == 3, messages


def test_tensorboard_tags_name_the_series_without_run_and_step() -> None:
    assert metric_tag("system.cpu.utilization", {"cpu.logical_number": "3"}) == (
        "system.cpu.utilization/3"
    )
    gpu = {
        "hw.id": "GPU-1234",
        "hw.name": "NVIDIA H100",
        "hw.type": "gpu",
        "otel_tracker.gpu.index": "0",
        "cicd.pipeline.task.name": "train",
    }
    assert metric_tag("hw.temperature", gpu) == "hw.temperature/gpu0"
    assert metric_tag("process.memory.usage", {"cicd.pipeline.run.id": "x"}) == (
        "process.memory.usage"
    )


def test_an_unwritable_tensorboard_directory_is_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from otel_tracker.exporters.mirrors import Mirrors

    (tmp_path / "tensorboard").write_text("a file where the directory should be")
    with caplog.at_level(logging.WARNING):
        mirrors = Mirrors.start(
            MirrorConfig(tensorboard=True), run_dir=tmp_path, params={}, resources=True
        )
    assert mirrors.span_processors == [] and mirrors.sample_exporters == []
    assert len(mirrors.problems) == 1 and "TensorBoard mirror off" in mirrors.problems[0]
    assert caplog.text.count("TensorBoard mirror is off") == 1


def test_one_dead_collector_is_one_warning_and_the_total_for_the_manifest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import threading

    from otel_tracker.exporters.guard import ExportGuard, report_losses

    shared = threading.Event()
    traces = ExportGuard("OTLP traces", "127.0.0.1:4317 (grpc)", shared)
    metrics = ExportGuard("OTLP metrics", "127.0.0.1:4318 (http/protobuf)", shared)

    def refused() -> bool:
        raise ConnectionRefusedError("connection refused")

    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert traces.call("spans", 2, refused) is False
            assert metrics.call("metric exports", 1, lambda: False) is False
        assert metrics.call("metric exports", 1, lambda: True) is True
        total = report_losses("OTLP", [traces, metrics], gave_up_after=2.0)
    assert total == (
        "OTLP could not deliver 6 spans to 127.0.0.1:4317 (grpc); "
        "3 metric exports to 127.0.0.1:4318 (http/protobuf) (gave up after 2.0 s)"
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "export to 127.0.0.1:4317 (grpc) failed (ConnectionRefusedError" in warnings[0]
    # the total is still logged, below warning level: the mirror said it fails already
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        f"otel-tracker {total}"
    ]
    assert metrics.summary()["delivered"] == {"metric exports": 1}
    assert report_losses("OTLP", [ExportGuard("OTLP traces", "x")], None) is None


def test_losses_only_seen_at_the_deadline_are_the_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from otel_tracker.exporters.guard import ExportGuard, report_losses

    guard = ExportGuard("OTLP traces", "127.0.0.1:4317 (grpc)")
    guard.in_flight["spans"] = 3  # an export stuck on a black hole when the run ended
    with caplog.at_level(logging.INFO):
        total = report_losses("OTLP", [guard], gave_up_after=2.0)
    assert total == "OTLP could not deliver 3 spans to 127.0.0.1:4317 (grpc) (gave up after 2.0 s)"
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"otel-tracker {total}")
    ]
