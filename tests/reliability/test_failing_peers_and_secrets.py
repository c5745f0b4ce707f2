"""Failing peers, full disks and secrets: the record survives, tells the truth, leaks nothing."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from otel_tracker import track_run
from otel_tracker.timeparse import parse_timestamp
from tests.helpers import (
    OBSTRUCT_TENSORBOARD,
    child_env,
    load_manifest,
    only_manifest,
    otel_cli,
    read_telemetry,
    read_when,
    run_script,
    start_script,
    wait_for,
    wrap,
)
from tests.otlp_receiver import BlackHole, OtlpGrpcReceiver, closed_port

SECRET = "s3cr3t-token-8c1f2a"


@pytest.mark.slow
def test_sigterm_with_a_black_holed_collector_finalizes_the_manifest_at_once(
    root: Path,
) -> None:
    hole = BlackHole()
    try:
        proc = start_script(
            """
            import time
            from otel_tracker import track_run
            with track_run("doomed", steps=["long"], sample_interval=0.2, progress="off") as run:
                with run.step("long") as step:
                    while True:
                        step.advance()
                        time.sleep(0.01)
            """,
            root,
            OTEL_TRACKER_OTLP="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=hole.endpoint,
            # long enough that "final before the exporters gave up" is an order of
            # events, not a race against a busy machine
            OTEL_TRACKER_EXPORT_TIMEOUT="8",
        )
        wait_for(read_when(root, lambda d: d["steps"][0]["status"] == "running"), what="start")
        proc.send_signal(signal.SIGTERM)
        final = wait_for(read_when(root, lambda d: d["status"] == "cancelled"), what="final")
        # the manifest never waits for an exporter: it is final while the process
        # still waits (up to export_timeout) on the black hole
        still_exporting = proc.poll() is None
        _, err = proc.communicate(timeout=60)
    finally:
        hole.close()
    assert final["signal"] == "SIGTERM" and final["exit_code"] == 143
    assert final["steps"][0]["status"] == "failed"
    assert still_exporting
    # it gave up at its deadline (not the SDK's 10-30 s), and said so once
    assert "gave up after 8.0 s" in err, err
    assert proc.returncode == -signal.SIGTERM


def test_servers_listen_on_loopback_only_by_default(root: Path) -> None:
    with track_run(
        "local", root=root, prometheus=0, install_signal_handlers=False, progress="off"
    ) as run:
        port = int(run.record.tracker["mirrors"]["prometheus"]["url"].rsplit(":", 1)[1][:-8])
        listening = [
            c
            for c in psutil.Process().net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
    assert [c.laddr.ip for c in listening] == ["127.0.0.1"]


# One secret per way in, each caught by its own rule (none of them is in the environment,
# so the scrub of known environment values cannot be what hides them).
ERR_PW = "Err0r-Pw@7/x+y"  # a password with URL-reserved characters, in an exception's DSN
BEARER = "bEaRer0Tok9876"
QTOKEN = "qT0k3n-abcdef"
SK = "sk-" + "Z9y8" * 6
OBJ = "0bjT0ken-5e1f"  # in an argparse.Namespace and a dataclass param
URLPW = "Ur1P@ss/w+rd"  # in a set of URLs
PW_GLUED = "MyPw0rd9x"  # -pPW
CURL = "CurlPw77x"  # -u admin:PW
WANDB = "wAnDb-K3y-55"
OPENAI = "0pEnAi-K3y-66"
APIKEY = "h3aDer-K3y-77"  # -H 'X-Api-Key: K'
HEX40 = "5" * 8 + "deadbeef" * 4  # a bare W&B-shaped key
SECRETS = [SECRET, ERR_PW, BEARER, QTOKEN, SK, OBJ, URLPW, PW_GLUED, CURL, WANDB, OPENAI]
SECRETS += [APIKEY, HEX40]


def test_no_secret_reaches_any_output(root: Path) -> None:
    """Secrets in the environment, in argv (every shape the README lists), in params
    (also inside objects) and in an exception's message and traceback appear in no file
    of the run directory, no OTLP payload, no /metrics text, no event file, and not in
    what ``show``, ``summary`` and ``export`` print."""
    receiver = OtlpGrpcReceiver()
    # the child takes the secret from its environment, as real code does
    child = f"""
import argparse, dataclasses, os, sys, time
from otel_tracker import track_run
token = os.environ['HF_TOKEN']
@dataclasses.dataclass
class Db:
    host: str
    db_password: str
params = {{'api_key': token, 'db': f'postgres://u:{{token}}@db/x', 'note': f'token={{token}}',
          'args': argparse.Namespace(hf_token={OBJ!r}, lr=0.1), 'cfg': Db('h', {OBJ!r}),
          'caches': {{'redis://:{URLPW}@cache:6379'}}}}
try:
    with track_run('inner', steps=['fit'], progress='off', params=params) as run:
        with run.step('fit') as step:
            step.advance()
            time.sleep(1.5)
            raise ConnectionError(
                'could not connect to postgres://app:{ERR_PW}@db/prod; '
                'Authorization: Bearer {BEARER}; GET https://api/x?token={QTOKEN}; key {SK}'
            )
except ConnectionError:
    sys.exit(3)
"""
    argv = [
        sys.executable,
        "-c",
        child,
        "--api-key",
        SECRET,
        f"--password={SECRET}",
        f"https://user:{SECRET}@example.com/data",
        f"Authorization: Bearer {SECRET}",
        f"-p{PW_GLUED}",
        "-u",
        f"admin:{CURL}",
        "--wandb-key",
        WANDB,
        "--openai-key",
        OPENAI,
        "-H",
        f"X-Api-Key: {APIKEY}",
        HEX40,
    ]
    proc = wrap(
        root,
        *argv,
        options=(
            "--name",
            "secretive",
            "--otlp",
            receiver.endpoint,
            "--prometheus",
            "0",
            "--tensorboard",
            "--sample-interval",
            "0.2",
        ),
        OTEL_TRACKER_TENSORBOARD="true",
        HF_TOKEN=SECRET,
        AWS_SECRET_ACCESS_KEY=SECRET,
        OTEL_TRACKER_ENV_ALLOWLIST="HF_TOKEN,AWS_SECRET_ACCESS_KEY",
    )
    try:
        live = wait_for(
            read_when(
                root,
                lambda d: d["name"] == "secretive" and (d["telemetry"] or {}).get("samples"),
            ),
            what="the wrapper's first sample",
        )
        with urllib.request.urlopen(live["tracker"]["mirrors"]["prometheus"]["url"]) as resp:
            exposition = resp.read()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, err
        # the child's exception reached the collector, as an event on its step's span
        wait_for(lambda: any(s["name"] == "fit" for s in receiver.received.spans), what="spans")
    finally:
        receiver.close()

    printed = [err, exposition.decode()]
    for command in (["show", "latest"], ["show", "--json", "latest"], ["summary", "latest"]):
        shown = otel_cli(root, *command)
        assert shown.returncode in (0, 1), shown.stderr
        printed += [shown.stdout, shown.stderr]
    exported = root.parent / "report.md"
    assert otel_cli(root, "export", "latest", "--output", str(exported)).returncode in (0, 1)
    files = [p for p in root.rglob("*") if p.is_file()] + [exported]
    for secret in SECRETS:
        assert [str(p) for p in files if secret.encode() in p.read_bytes()] == [], secret
        assert not any(secret.encode() in r for r in receiver.received.raw), secret
        assert not any(secret in text for text in printed), secret
    assert receiver.received.raw
    runs = {json.loads(p.read_text())["name"] for p in root.glob("*/manifest.json")}
    parts = {json.loads(p.read_text())["name"] for p in root.glob("*/parts/*.json")}
    # both the wrapper and the tracked child (which joined its run) were checked
    assert (runs, parts) == ({"secretive"}, {"inner"})
    assert list(root.glob("*/tensorboard/events.out.tfevents.*"))
    # what was hidden is still recognisable: the error kept its shape, the params their keys
    part = json.loads(next(root.glob("*/parts/*.json")).read_text())
    error = part["steps"][0]["error"]
    assert error["type"] == "ConnectionError"
    assert "postgres://app:***@db/prod" in error["message"] and "Bearer ***" in error["message"]
    assert "?token=***; key ***" in error["message"]
    assert "ConnectionError: could not connect to postgres://app:***@" in error["traceback"]
    assert part["params"]["args"] == {"hf_token": "***", "lr": 0.1}
    assert part["params"]["cfg"] == {"host": "h", "db_password": "***"}


FILLER = """
import sys, time
import otel_tracker.config; otel_tracker.config.MIN_INTERVAL_S.clear()  # stress: no floor
from otel_tracker import track_run
with track_run("capped", steps=[f"s{i}" for i in range(40)], sample_interval=0.01,
               progress="off", params={"blob": "x" * 600}) as run:
    for i in range(40):
        with run.step(f"s{i}") as step:
            step.advance()
            time.sleep(0.03)
print("pipeline done", flush=True)
sys.exit(7)
"""


def test_a_file_size_limit_degrades_telemetry_not_the_pipeline(root: Path) -> None:
    """RLIMIT_FSIZE stands in for a full disk (it works unprivileged; root ignores chmod)."""
    limit = 24 * 1024  # the first manifests fit; telemetry.jsonl and later manifests do not
    proc = run_script(FILLER, root, file_size_limit=limit)
    assert proc.returncode == 7, proc.stderr  # the pipeline's own exit code
    assert "pipeline done" in proc.stdout
    doc = only_manifest(root)  # the last good manifest: parses and validates
    assert doc["status"] == "running"  # a later write did not fit; the last one that did stays
    assert 0 < sum(s["status"] == "completed" for s in doc["steps"]) < 40
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("otel-tracker")]
    assert any("could not write" in w or "too large" in w for w in warnings), proc.stderr
    assert len(warnings) <= 3, proc.stderr  # manifest and telemetry: once each, not per write
    run_dir = Path(doc["run_dir"])
    assert (run_dir / "telemetry.jsonl").stat().st_size <= limit
    samples, skipped = read_telemetry(run_dir / "telemetry.jsonl")
    assert samples and skipped <= 1  # at most the line the limit cut, skipped on read
    assert not list(run_dir.glob(".*tmp"))  # no temp file left behind
    load_manifest(run_dir / "manifest.json")


def test_bad_settings_warn_from_the_environment_and_fail_fast_as_arguments(
    root: Path, tmp_path: Path
) -> None:
    """Malformed OTEL_* and OTEL_TRACKER_* values: a warning each and the default; the
    run completes under a root whose parents do not exist yet. Explicit arguments
    are one line and exit 2."""
    deep_root = tmp_path / "not" / "there" / "yet"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "otel_tracker.cli",
            "--root",
            str(deep_root),
            "run",
            "--",
            sys.executable,
            "-c",
            "pass",
        ],
        env=child_env(
            root,
            OTEL_TRACKER_PROGRESS="sideways",
            OTEL_TRACKER_SAMPLE_INTERVAL="0",
            OTEL_TRACKER_HEARTBEAT_INTERVAL="soon",
            OTEL_EXPORTER_PROMETHEUS_PORT="http",
            OTEL_EXPORTER_OTLP_PROTOCOL="carrier-pigeon",
            OTEL_METRIC_EXPORT_INTERVAL="-5",
            OTEL_TRACKER_RESOURCES="maybe",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "OTEL_TRACKER_PROGRESS",
        "OTEL_TRACKER_SAMPLE_INTERVAL",
        "OTEL_TRACKER_HEARTBEAT_INTERVAL",
        "OTEL_EXPORTER_PROMETHEUS_PORT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_METRIC_EXPORT_INTERVAL",
        "OTEL_TRACKER_RESOURCES",
    ):
        assert proc.stderr.count(f"ignoring {name}=") == 1, (name, proc.stderr)
    doc = only_manifest(deep_root)
    assert doc["status"] == "completed"
    assert doc["tracker"]["heartbeat_interval_s"] == 5.0
    assert doc["telemetry"]["interval_s"] == 5.0

    for args, message, status in (
        (("run", "--sample-interval", "0", "--", "true"), "must be positive", 2),
        (("run", "--prometheus", "99999", "--", "true"), "port or 'host:port'", 2),
        (("run", "--otlp", "collector:4317", "--", "true"), "a URL such as", 2),
        (("run", "--", "/no/such/program"), "command not found", 127),  # as from a shell
    ):
        bad = subprocess.run(
            [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), *args],
            env=child_env(root),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode == status, (args, bad.stderr)
        assert message in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr
    assert not list(root.glob("*/manifest.json"))  # no run was started by a bad argument


DEAD_PEERS = (
    OBSTRUCT_TENSORBOARD
    + """
import time
from otel_tracker import track_run
with track_run("dead-peers", steps=["work"], sample_interval=0.2, progress="off") as run:
    with run.step("work") as step:
        for _ in range(100):
            step.advance()
            time.sleep(0.01)
print("MANIFEST", run.manifest_path, flush=True)
"""
)


@pytest.mark.parametrize("otlp", ["refused", "blackhole"])
def test_every_mirror_dead_at_once_costs_one_warning_each(root: Path, otlp: str) -> None:
    """OTLP refused or black-holed, the Prometheus port taken and the TensorBoard
    directory unwritable, all in one run: it completes, each says so once, and the
    exit waits for the export timeout at most."""
    hole = BlackHole() if otlp == "blackhole" else None
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        proc = start_script(
            DEAD_PEERS,
            root,
            OTEL_TRACKER_OTLP="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=hole.endpoint
            if hole
            else f"http://127.0.0.1:{closed_port()}",
            OTEL_TRACKER_PROMETHEUS="true",
            OTEL_EXPORTER_PROMETHEUS_PORT=str(busy.getsockname()[1]),
            OTEL_TRACKER_TENSORBOARD="true",
        )
        try:
            out, err = proc.communicate(timeout=60)
            exited = time.time()
        finally:
            if hole:
                hole.close()
    assert proc.returncode == 0, err
    doc = load_manifest(Path(out.split("MANIFEST", 1)[1].strip()))
    assert doc["status"] == "completed" and doc["steps"][0]["status"] == "completed"
    exit_delay = exited - parse_timestamp(doc["ended_at"])
    assert exit_delay < 2.0 + 2.0, (exit_delay, err)  # export_timeout plus a loaded machine
    lines = err.splitlines()
    # one warning each: the Prometheus port, the TensorBoard dir, the OTLP endpoint
    assert sum("Prometheus mirror" in line for line in lines) == 1, err
    assert sum("TensorBoard mirror" in line for line in lines) == 1, err
    assert sum("OTLP" in line for line in lines) == 1, err
    assert len(lines) == 3, err
    assert any("OTLP could not deliver" in w for w in doc["warnings"]), doc["warnings"]
    assert "Traceback" not in err, err
    assert any("Prometheus" in w for w in doc["warnings"])
    assert any("TensorBoard" in w for w in doc["warnings"])
