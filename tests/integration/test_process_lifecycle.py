"""Real processes, real signals: the manifest tells the truth however a run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from otel_tracker.contract.liveness import lock_is_held
from otel_tracker.environment import DEFAULT_ENV_ALLOWLIST
from tests.helpers import (
    child_env,
    load_manifest,
    manifests,
    only_manifest,
    read_when,
    start_script,
    wait_for,
)

# Step 1 finishes, step 2 loops until killed; "in-step-2" is printed once it runs.
PIPELINE = """
import faulthandler, signal, sys, time
# a run whose end hangs (seen once in CI under load) says where: see _stacks_of
faulthandler.register(signal.SIGUSR1, all_threads=True)
from otel_tracker import track_run
with track_run("sig-test", steps=["prepare", "train", "evaluate"], heartbeat_interval=0.1) as run:
    with run.step("prepare") as s:
        s.advance(5)
    with run.step("train") as s:
        s.set_total(10**9)
        print("in-step-2", flush=True)
        while True:
            s.advance()
            time.sleep(0.001)
"""


def _in_step_2(proc: subprocess.Popen[str]) -> None:
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert line.strip() == "in-step-2", proc.stderr.read()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sig", "returncode", "name"),
    [
        (signal.SIGTERM, -signal.SIGTERM, "SIGTERM"),
        (signal.SIGINT, -signal.SIGINT, "SIGINT"),
        (signal.SIGHUP, -signal.SIGHUP, "SIGHUP"),
    ],
)
def test_signal_leaves_final_manifest_and_conventional_exit(
    root: Path, sig: int, returncode: int, name: str
) -> None:
    proc = start_script(PIPELINE, root)
    _in_step_2(proc)
    wait_for(
        read_when(root, lambda d: d["steps"][1]["progress"]["completed"] > 0),
        what="progress on disk",
    )
    proc.send_signal(sig)
    try:
        wait_for(read_when(root, lambda d: d["status"] != "running"), what="final manifest")
        code = proc.wait(timeout=30)
    except BaseException:
        pytest.fail(f"no end after {name}; the process's threads:\n{_stacks_of(proc)}")
    assert code == returncode  # 128+N in a shell: 143, 130, 129
    doc = only_manifest(root)
    assert doc["status"] == "cancelled"
    assert doc["signal"] == name
    assert doc["exit_code"] == 128 + sig
    assert [s["status"] for s in doc["steps"]] == ["completed", "failed", "pending"]
    assert doc["last_completed_step"] == "prepare"
    assert doc["steps"][1]["progress"]["completed"] > 0
    assert doc["steps"][1]["error"] is not None
    assert lock_is_held(Path(doc["run_dir"]) / ".lock") is False


def _stacks_of(proc: subprocess.Popen[str]) -> str:
    """The Python stacks of every thread of a process that did not end (its
    faulthandler prints them on SIGUSR1), then it is killed: a hung run must not
    outlive its test and load the ones after it."""
    try:
        proc.send_signal(signal.SIGUSR1)
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    return err[-20000:]


def test_sigkill_leaves_valid_manifest_with_last_completed_step(root: Path) -> None:
    proc = start_script(PIPELINE, root)
    _in_step_2(proc)
    wait_for(
        read_when(root, lambda d: d["steps"][1]["progress"]["completed"] > 0),
        what="progress on disk",
    )
    # the first resource sample comes from the helper process about 0.1 s after start
    wait_for(
        lambda: any(p.stat().st_size for p in root.glob("*/telemetry.jsonl")),
        what="first telemetry sample",
    )
    proc.kill()
    proc.wait(timeout=10)
    doc = only_manifest(root)  # parses and validates
    assert doc["status"] == "running"  # what was last written; readers infer "aborted"
    assert doc["last_completed_step"] == "prepare"
    assert doc["steps"][1]["status"] == "running"
    assert lock_is_held(Path(doc["run_dir"]) / ".lock") is False  # the proof it is dead
    run_dir = Path(doc["run_dir"])
    names = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".manifest"))
    assert names == [".lock", "manifest.json", "telemetry.jsonl"]


def test_application_signal_handler_still_runs(root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "handler-ran"
    code = f"""
import signal, sys, time
from pathlib import Path
def graceful(signum, frame):
    Path({str(marker)!r}).write_text("yes")
    sys.exit(42)
signal.signal(signal.SIGTERM, graceful)
from otel_tracker import track_run
with track_run("app-handler", steps=["work"]) as run:
    with run.step("work"):
        print("in-step-2", flush=True)
        while True:
            time.sleep(0.01)
"""
    proc = start_script(code, root)
    _in_step_2(proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 42
    assert marker.read_text() == "yes"
    doc = only_manifest(root)
    assert (doc["status"], doc["exit_code"], doc["signal"]) == ("failed", 42, "SIGTERM")
    assert doc["steps"][0]["status"] == "failed"


def test_uncaught_exception_in_subprocess(root: Path) -> None:
    code = """
from otel_tracker import track_run
with track_run("boom", steps=["a", "b"]) as run:
    with run.step("a"):
        raise RuntimeError("bad batch 17")
"""
    proc = start_script(code, root)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "RuntimeError: bad batch 17" in err  # the traceback still reaches the user
    doc = only_manifest(root)
    assert doc["status"] == "failed"
    assert doc["error"]["type"] == "RuntimeError" and doc["error"]["message"] == "bad batch 17"
    assert [s["status"] for s in doc["steps"]] == ["failed", "pending"]


def test_sys_exit_code_in_subprocess(root: Path) -> None:
    code = """
import sys
from otel_tracker import track_run
with track_run("exit3", steps=["a"]) as run:
    with run.step("a"):
        sys.exit(3)
"""
    proc = start_script(code, root)
    proc.communicate(timeout=30)
    assert proc.returncode == 3
    doc = only_manifest(root)
    assert (doc["status"], doc["exit_code"]) == ("failed", 3)
    assert doc["steps"][0]["status"] == "failed"


def test_run_not_ended_is_closed_at_exit(root: Path) -> None:
    code = """
from otel_tracker import track_run
run = track_run("forgot-end", steps=["a"])
with run.step("a"):
    pass
"""
    proc = start_script(code, root)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    doc = only_manifest(root)
    assert doc["status"] == "completed"
    assert any("not ended explicitly" in w for w in doc["warnings"])


def test_forked_child_never_touches_parent_run(root: Path, tmp_path: Path) -> None:
    spans_file = tmp_path / "spans.jsonl"
    code = f"""
import json, multiprocessing as mp, os, sys
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from otel_tracker import track_run

class FileExporter(SpanExporter):
    def export(self, spans):
        with open({str(spans_file)!r}, "a") as f:
            for s in spans:
                f.write(json.dumps({{"name": s.name, "pid": os.getpid()}}) + "\\n")
        return SpanExportResult.SUCCESS

def worker(code):
    sys.exit(code)   # a worker that exits through the inherited with-blocks' code paths

def crashing_worker():
    os._exit(7)

with track_run("forky", steps=["spawn", "after"], span_processors=[SimpleSpanProcessor(FileExporter())]) as run:
    with run.step("spawn"):
        ctx = mp.get_context("fork")
        for target, args in ((worker, (0,)), (worker, (5,)), (crashing_worker, ())):
            p = ctx.Process(target=target, args=args)
            p.start(); p.join()
            print(p.exitcode, flush=True)
        pid = os.fork()
        if pid == 0:
            sys.exit(9)   # unwinds the inherited step and run context managers in the child
        os.waitpid(pid, 0)
        doc = json.load(open(run.manifest_path))
        assert doc["status"] == "running" and doc["steps"][0]["status"] == "running", doc
    with run.step("after"):
        pass
"""
    proc = start_script(code, root)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.split() == ["0", "5", "7"]
    doc = only_manifest(root)
    assert doc["status"] == "completed"
    assert [s["status"] for s in doc["steps"]] == ["completed", "completed"]
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    assert sorted(s["name"] for s in spans) == [
        "RUN forky",
        "after",
        "spawn",
    ]  # no duplicates from children
    assert {s["pid"] for s in spans} == {doc["process"]["pid"]}


def test_concurrent_runs_get_distinct_directories(root: Path) -> None:
    code = """
from otel_tracker import track_run
with track_run("same-name", steps=["a"]) as run:
    with run.step("a") as s:
        s.advance()
"""
    procs = [start_script(code, root) for _ in range(12)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    found = manifests(root)
    assert len(found) == 12
    docs = [load_manifest(p) for p in found]
    assert len({d["run_id"] for d in docs}) == 12
    assert len({d["process"]["pid"] for d in docs}) == 12
    assert all(d["status"] == "completed" for d in docs)


def test_disabled_by_environment_writes_nothing_and_skips_the_sdk(root: Path) -> None:
    code = """
import sys
from otel_tracker import track_run
with track_run("off", steps=["a"]) as run:
    with run.step("a") as s:
        s.advance()
    run.skip("b", "x")
print(type(run).__name__, any(m.startswith("opentelemetry.sdk") for m in sys.modules))
"""
    for env in ({"OTEL_TRACKER_DISABLED": "1"}, {"OTEL_SDK_DISABLED": "true"}):
        proc = start_script(code, root, **env)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out.split() == ["NoopRun", "False"]
    assert not root.exists()


def test_secrets_on_the_command_line_never_reach_the_manifest(root: Path) -> None:
    code = """
import sys
from otel_tracker import track_run
with track_run("secret", params={"db": "postgres://u:pw-123@h/db"}):
    pass
"""
    proc = subprocess.run(
        [sys.executable, "-c", code, "--api-key", "KEY-456", "--password=pw-789", "Bearer", "tok"],
        env=child_env(root, CUDA_VISIBLE_DEVICES="0", AWS_SECRET_ACCESS_KEY="aws-999"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    raw = manifests(root)[0].read_text()
    for secret in ("KEY-456", "pw-789", "pw-123", "aws-999", "AWS_SECRET"):
        assert secret not in raw
    doc = json.loads(raw)
    recorded = doc["environment"]["env"]
    assert recorded["CUDA_VISIBLE_DEVICES"] == "0"
    assert set(recorded) <= set(DEFAULT_ENV_ALLOWLIST)
    assert "--api-key" in doc["process"]["command"]


def test_demo_command_end_to_end(root: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "otel_tracker.cli",
            "--root",
            str(root),
            "demo",
            "--sample-interval",
            "0.5",
        ],
        env=child_env(root.parent / "elsewhere"),
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    doc = only_manifest(root)  # --root beats OTEL_TRACKER_ROOT
    assert f"manifest: {manifests(root)[0]}" in proc.stdout
    assert doc["status"] == "completed"
    assert [s["name"] for s in doc["steps"]] == [
        "Train expert",
        "Collect expert trajectories",
        "Pretrain BC",
        "Fine-tune",
        "Evaluate",
    ]
    assert all(
        s["status"] == "completed" and s["progress"]["completed"] == s["progress"]["total"]
        for s in doc["steps"]
    )
    assert doc["steps"][4]["artifacts"][0]["path"].endswith("evaluation.json")
    assert doc["telemetry"]["interval_s"] == 0.5 and doc["telemetry"]["samples"] >= 5
    assert not (root.parent / "elsewhere").exists()
    assert os.listdir(root.parent) == ["runs"]  # nothing written outside the root


def test_a_child_forked_while_a_tracker_lock_is_held_does_not_hang(root: Path) -> None:
    """A fork copies a lock held by another thread as held forever. A child that uses
    the inherited run (the run's API is a no-op there) must not wait on one."""
    code = """
import os, sys, threading
from otel_tracker import track_run

with track_run("forked-under-lock", steps=["work"]) as run:
    with run.step("work") as step:
        held, release = threading.Event(), threading.Event()
        def hold():
            with run.record.lock, run.telemetry.user_metrics._adding:
                held.set()
                release.wait(30)
        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(30)
        pid = os.fork()
        if pid == 0:
            with run.step("in the child") as s:
                s.advance()
            run.skip("skipped in the child", "n/a")
            run.add_artifact(sys.executable)
            run.log_scores({"acc": 1.0})
            run.set_gauge("fps", 1.0)
            run.add_count("items", 1)
            run.resource_history("process.memory.usage")
            step.add_artifact(sys.executable)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        release.set()
        holder.join()
        print("child", os.waitstatus_to_exitcode(status), flush=True)
"""
    proc = start_script(code, root)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()  # the parent waits on the child, which keeps the pipes: kill both
        subprocess.run(["pkill", "-KILL", "-f", "forked-under-lock"], check=False)
        proc.communicate()
        pytest.fail("the forked child hung on a lock it inherited held")
    assert proc.returncode == 0, err
    assert out.split() == ["child", "0"]
    doc = only_manifest(root)
    assert doc["status"] == "completed"
    assert [s["name"] for s in doc["steps"]] == ["work"]
    assert doc["scores"] == {} and doc["artifacts"] == []
