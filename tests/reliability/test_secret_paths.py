"""Secrets on the paths around the run: the OTLP endpoint's own credentials."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.conftest import only_manifest, start_script
from tests.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver

COLLECTOR_PW = "C0ll-Pw9x"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("given_as", ["argument", "OTEL_EXPORTER_OTLP_ENDPOINT"])
def test_an_otlp_endpoints_password_is_never_recorded(
    root: Path, protocol: str, given_as: str
) -> None:
    """``http://user:PW@host:port`` as the endpoint: HTTP still sends it (as basic auth),
    but PW is in no manifest field, warning, loss line, stderr line or file."""
    receiver = OtlpGrpcReceiver() if protocol == "grpc" else OtlpHttpReceiver()
    endpoint = receiver.endpoint.replace("://", f"://collector:{COLLECTOR_PW}@")
    otlp = repr(endpoint) if given_as == "argument" else "True"
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    if given_as != "argument":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    proc = start_script(
        f"""
        import time
        from otel_tracker import track_run
        with track_run("creds", steps=["a"], progress="off", sample_interval=0.1,
                       otlp={otlp}) as run:
            with run.step("a"):
                time.sleep(0.5)
        """,
        root,
        **env,
    )
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        receiver.close()
    assert proc.returncode == 0, err
    assert COLLECTOR_PW not in out + err
    leaks = [str(p) for p in root.rglob("*") if p.is_file() and COLLECTOR_PW in p.read_text()]
    assert leaks == []
    doc = only_manifest(root)
    otlp_info = doc["tracker"]["mirrors"]["otlp"]
    assert "collector:***@127.0.0.1" in otlp_info["traces"], otlp_info
    if protocol == "http/protobuf":  # the credentials still reach the collector
        auth = base64.b64encode(f"collector:{COLLECTOR_PW}".encode()).decode()
        assert any(h.get("authorization") == f"Basic {auth}" for h in receiver.received.headers)
        assert otlp_info["traces_delivery"]["delivered"].get("spans", 0) >= 1
    else:  # a gRPC target cannot carry userinfo: nothing arrives, the loss is reported
        assert any("collector:***@" in w for w in doc["warnings"]), doc["warnings"]
        assert "collector:***@" in err
