"""Secrets on the paths around the run: the OTLP endpoint's own credentials, a wrapped
command's log files, and inputs so large that redaction itself could hang the run."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import child_env, only_manifest, start_script, wrap
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


def test_a_wrapped_commands_log_files_keep_no_secret(root: Path) -> None:
    """The console shows the command's output as it is; logs/*.log keep it redacted,
    also when a secret arrives split over two reads of the pipe."""
    code = (
        "import sys, time\n"
        "print('db at postgres://app:L0gPw-9@db/x', flush=True)\n"
        "sys.stdout.write('then redis://:Sp1it'); sys.stdout.flush(); time.sleep(0.2)\n"
        "print('Pw-8@cache:6379', flush=True)\n"
        "sys.stderr.write('x' * 200000 + '\\n')\n"
        "raise ConnectionError('Authorization: Bearer Tr4ceb4ck-T0ken')\n"
    )
    proc = wrap(root, sys.executable, "-c", code, options=("--name", "logs"))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "L0gPw-9" in out and "Tr4ceb4ck-T0ken" in err  # the console: as is
    logs = {p.name: p.read_text() for p in root.glob("*/logs/*.log")}
    assert set(logs) == {"stdout.log", "stderr.log"}
    assert "postgres://app:***@db/x" in logs["stdout.log"]
    assert "redis://:***@cache:6379" in logs["stdout.log"]
    assert "Authorization: Bearer ***" in logs["stderr.log"]
    assert "x" * 200000 in logs["stderr.log"]  # a long line is kept whole
    for secret in ("L0gPw-9", "Sp1itPw-8", "Sp1it", "Tr4ceb4ck-T0ken"):
        assert not any(secret in text for text in logs.values()), secret


HUGE = """
import sys
from otel_tracker import track_run
big = "ACGT" * 5_000_000  # 20 MB, one word
try:
    with track_run("huge", steps=["a", "b", "c"], progress="off",
                   params={"ref": big, "nested": {"seqs": [big[:1000]] * 3}}) as run:
        with run.step("a"):
            pass
        run.skip("b", reason=big)
        with run.step("c"):
            raise ValueError("bad reference " + big)
except ValueError:
    print("finished", flush=True)
"""


@pytest.mark.slow
def test_twenty_megabyte_params_reasons_errors_and_argv_do_not_hang_the_run(root: Path) -> None:
    """A 20 MB param, skip reason and error message and a 120 KB argument (an argument's
    limit is 128 KB): the run finishes and its record is whole. Quadratic redaction took
    66 s for 100 KB and never finished for 20 MB; the time-out is generous, no timing."""
    done = subprocess.run(
        [sys.executable, "-c", HUGE, "--ref", "ACGT" * 30_000, "--api-key", "Arg-K3y-42"],
        env=child_env(root),
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and done.stdout.strip() == "finished", done.stderr[-2000:]
    doc = json.loads(next(root.glob("*/manifest.json")).read_text())
    assert doc["status"] == "failed"
    assert doc["params"]["ref"] == "ACGT" * 5_000_000  # params are data: kept whole
    assert [s["status"] for s in doc["steps"]] == ["completed", "skipped", "failed"]
    assert len(doc["steps"][1]["skip_reason"]) < 9000
    assert len(doc["steps"][2]["error"]["message"]) < 9000
    assert "Arg-K3y-42" not in json.dumps(doc["process"]["command"])
    assert "ACGT" * 30_000 in doc["process"]["command"]
    assert (next(root.glob("*/summary.txt"))).stat().st_size < 1_000_000
