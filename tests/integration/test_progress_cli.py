"""Progress as operators see it: plain lines in pipes, a live view on a terminal, status/watch."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import child_env, otel_cli, read_when, wait_for

# Runs ~2 s: one short step, then a step that reports progress, with a go-file to finish.
PIPELINE = """
import os, sys, time
from otel_tracker import track_run
go = sys.argv[1]
with track_run("watched", steps=["prepare", "train", "skipme", "evaluate"], heartbeat_interval=0.1,
               progress_interval=0.2) as run:
    with run.step("prepare") as s:
        s.advance(3)
    with run.step("train") as s:
        s.set_total(100000, unit="batches")
        while not os.path.exists(go):
            s.advance()
            time.sleep(0.0005)
    run.skip("skipme", reason="not today")
    with run.step("evaluate"):
        pass
"""


def _start(root: Path, go: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PIPELINE, str(go)],
        env=child_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_plain_lines_when_not_a_terminal(root: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    proc = _start(root, go)
    wait_for(
        read_when(root, lambda d: d["steps"][1]["progress"]["completed"] > 500), what="progress"
    )
    time.sleep(0.6)  # a few periodic lines
    go.touch()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "\x1b[" not in err
    lines = err.splitlines()
    assert lines[0] == "Step 1/4 – prepare (ETA ? (4 steps without history), elapsed 0s)"
    assert any(
        line.startswith("Step 2/4 – train: ") and " batches (" in line and "/s)" in line
        for line in lines
    )
    assert "Skipped skipme: not today (3 steps enabled)" in lines
    assert any(line.startswith("Step 3/3 – evaluate (") for line in lines)
    assert lines[-1].startswith("Run watched completed in ")


def test_live_view_on_a_terminal(root: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    go.touch()  # finish the train step at once
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", PIPELINE, str(go)],
        env={**child_env(root), "TERM": "xterm-256color"},
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=30) == 0
    out = b"".join(chunks).decode(errors="replace")
    assert "Step 1/4 – prepare" in out and "Run watched completed" in out
    assert "\x1b[" in out  # the live display draws with terminal codes


def test_status_and_watch_follow_a_run_in_another_process(root: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    proc = _start(root, go)
    try:
        wait_for(
            read_when(root, lambda d: d["steps"][1]["progress"]["completed"] > 100), what="progress"
        )
        status = otel_cli(root, "status")
        assert status.returncode == 0, status.stderr
        head, line = status.stdout.splitlines()[:2]
        assert head.endswith("watched  running")
        assert line.startswith("Step 2/4 – train: ") and "batches" in line and "ETA" in line
        as_json = otel_cli(root, "status", "--json")
        info = json.loads(as_json.stdout)
        assert info["status"] == "running" and info["current_step"] == "train"
        assert info["step_progress"]["completed"] > 100

        watch = subprocess.Popen(
            [sys.executable, "-m", "otel_tracker.cli", "watch", "--interval", "0.1"],
            env=child_env(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,  # unbuffered: reading the first line leaves the rest to communicate()
        )
        assert watch.stdout is not None
        # it found the running run (on a loaded machine its start-up can take seconds)
        first = watch.stdout.readline().decode()
        wait_for(
            read_when(root, lambda d: d["steps"][1]["progress"]["completed"] > 2000),
            what="more progress",
        )
        go.touch()
        raw, err = watch.communicate(timeout=30)
        assert watch.returncode == 0, err  # 0: the run completed
        out = first + raw.decode()
        lines = out.splitlines()
        assert lines[0].endswith("watched  running")
        assert any(line.startswith("Step 2/4 – train: ") for line in lines), lines
        assert lines[-1].startswith("Run watched completed in ")
        assert "\x1b[" not in out
    finally:
        go.touch()
        proc.communicate(timeout=30)


def test_watch_without_a_running_run_is_a_clear_error(root: Path) -> None:
    proc = otel_cli(root, "watch")
    assert proc.returncode == 2 and "no running run" in proc.stderr
