"""Metric series through a real process: a SIGKILL, and what ``show`` prints."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from otel_tracker import track_run
from otel_tracker.status import get_run_status
from tests.helpers import child_env, otel_cli, wait_for

LOGGING_FOREVER = """
import os, sys, time
from pathlib import Path
from otel_tracker import track_run
mark = Path(sys.argv[1])
tmp = mark.with_suffix(".tmp")
with track_run("killed", progress="off", resources=False) as run:
    run.log({}, direction={"loss": "min"})
    n = 0
    while True:
        run.log({"loss": 1.0 / (n + 1)}, step=n)
        tmp.write_text(str(n))
        os.replace(tmp, mark)  # logged up to here (whole, whenever the kill lands)
        n += 1
        time.sleep(0.001)
"""


def _file_points(path: Path) -> list[int]:
    """Steps of every whole line of metrics.jsonl (a torn last line is skipped)."""
    steps: list[int] = []
    for line in path.read_bytes().split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        steps.extend(record["step"])
    return steps


def _manifest(root: Path) -> dict:
    found = list(root.glob("*/manifest.json"))
    return json.loads(found[0].read_text()) if found else {}


def test_a_sigkill_loses_only_what_was_logged_since_the_last_flush(
    root: Path, tmp_path: Path
) -> None:
    mark = tmp_path / "logged"
    proc = subprocess.Popen(
        [sys.executable, "-c", LOGGING_FOREVER, str(mark)],
        env=child_env(root, OTEL_TRACKER_HEARTBEAT_INTERVAL="0.2"),
    )
    try:
        # two flushes reached the file, and a heartbeat put the summary in the manifest
        wait_for(
            lambda: (
                len(list(root.glob("*/metrics.jsonl"))) == 1
                and len(next(root.glob("*/metrics.jsonl")).read_bytes().splitlines()) >= 2
                and (_manifest(root).get("metrics") or {}).get("keys")
            ),
            timeout=60,
            what="flushed metrics and a manifest that summarises them",
        )
        in_file_before = max(_file_points(next(root.glob("*/metrics.jsonl"))))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    logged = int(mark.read_text())
    steps = _file_points(next(root.glob("*/metrics.jsonl")))
    # whole and in order: every point from 0 to the last flushed one, none twice
    assert steps == list(range(len(steps))), steps[-5:]
    # (the kill may land between a log() and its mark: one more point at most)
    assert in_file_before <= steps[-1] <= logged + 1
    summary = _manifest(root)["metrics"]["keys"]["loss"]
    assert summary["count"] <= len(steps) and summary["direction"] == "min"
    # the reader says what happened and shows the series as the manifest last had it
    shown = otel_cli(root, "show", "latest")
    assert shown.returncode == 0, shown.stderr
    assert "aborted" in shown.stdout and "metric loss" in shown.stdout, shown.stdout
    # a batch that reached the file just before the kill (the manifest had not followed)
    # and a line the kill tore: recover summarises the file, the torn line skipped
    last = steps[-1]
    batch = {"key": "loss", "step": [last + 1, last + 2], "value": [1e-6, 0.5], "time": [1, 2]}
    with next(root.glob("*/metrics.jsonl")).open("a") as file:
        file.write(json.dumps(batch) + '\n{"key": "loss", "step": [')
    recovered = otel_cli(root, "recover", "latest")
    assert recovered.returncode == 0, recovered.stderr
    summary = _manifest(root)["metrics"]["keys"]["loss"]
    assert (summary["count"], summary["last_step"], summary["last"]) == (
        len(steps) + 2,
        last + 2,
        0.5,
    )
    assert (summary["best"], summary["best_step"], summary["direction"]) == (1e-6, last + 1, "min")
    assert summary["curve"][-1] == [last + 2, 0.5]
    assert any("summarised from metrics.jsonl" in w for w in _manifest(root)["warnings"])


def test_show_export_and_status_give_each_series(root: Path) -> None:
    code = """
from otel_tracker import track_run
with track_run("train", steps=["fit"], progress="off", resources=False) as run:
    with run.step("fit") as step:
        for epoch in range(40):
            step.log({"loss": 2.0 / (epoch + 1), "acc": epoch / 40}, step=epoch,
                     direction={"loss": "min"} if epoch == 0 else None)
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    shown = otel_cli(root, "show", "latest")
    assert shown.returncode == 0, shown.stderr
    rows = {
        line.split()[1]: line for line in shown.stdout.splitlines() if line.startswith("metric ")
    }
    assert set(rows) == {"acc", "loss"}, shown.stdout
    assert "█" in rows["loss"] and "▁" in rows["loss"]  # a falling curve, drawn
    assert "best 0.05 at step 39 (min)" in rows["loss"] and "40 points" in rows["loss"]
    report = json.loads(otel_cli(root, "export", "latest", "--format", "json", "-o", "-").stdout)
    assert report["metrics"]["keys"]["acc"]["count"] == 40
    status = get_run_status("latest", root=root)  # the typed status API
    assert status.metrics["loss"]["best"] == 0.05 and status.metrics["acc"]["count"] == 40


def test_a_wrapped_scripts_series_show_in_the_wrapping_run(root: Path) -> None:
    """``otel-tracker run -- python train.py``: the script's run joins the wrapper's,
    its points go to its own file under parts/, its summary into the run's view."""
    script = (
        "from otel_tracker import track_run\n"
        "with track_run('train', progress='off', resources=False) as run:\n"
        "    for n in range(20):\n"
        "        run.log({'loss': 1 / (n + 1)}, step=n)\n"
    )
    done = otel_cli(root, "run", "--name", "wrapped", "--", sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr
    shown = otel_cli(root, "show", "latest")
    assert shown.returncode == 0, shown.stderr
    assert "metric loss" in shown.stdout and "20 points" in shown.stdout, shown.stdout
    (run_dir,) = root.iterdir()
    (own,) = (run_dir / "parts").glob("*.metrics.jsonl")
    assert len(_file_points(own)) == 20 and not (run_dir / "metrics.jsonl").exists()


def test_one_key_logged_by_two_wrapped_scripts_counts_both(root: Path, tmp_path: Path) -> None:
    script = tmp_path / "part.py"
    script.write_text(
        "import sys\n"
        "from otel_tracker import track_run\n"
        "offset = float(sys.argv[1])\n"
        "with track_run('train', progress='off', resources=False) as run:\n"
        "    for n in range(10):\n"
        "        run.log({'loss': offset + 1 / (n + 1)}, step=n)\n"
    )
    both = f"{sys.executable} {script} 0 && {sys.executable} {script} 100"
    done = otel_cli(root, "run", "--name", "two", "--", "sh", "-c", both)
    assert done.returncode == 0, done.stderr
    listed = otel_cli(root, "list", "--json", "--columns", "loss,loss.count,loss.max,loss.min")
    (row,) = json.loads(listed.stdout)
    assert row["fields"] == {"loss": 100.1, "loss.count": 20, "loss.max": 101.0, "loss.min": 0.1}
    shown = otel_cli(root, "show", "latest")  # merged again on reading: still 20
    assert "20 points" in shown.stdout, shown.stdout


def test_the_manifest_follows_metrics_within_a_flush_not_a_heartbeat(
    root: Path, tmp_path: Path
) -> None:
    code = """
import time
from otel_tracker import track_run
with track_run("lagging", progress="off", resources=False) as run:
    for n in range(50):
        run.log({"loss": 1 / (n + 1)}, step=n)
    time.sleep(600)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=child_env(root, OTEL_TRACKER_HEARTBEAT_INTERVAL="3600"),  # no heartbeat helps
    )
    try:
        wait_for(
            lambda: (
                ((_manifest(root).get("metrics") or {}).get("keys") or {})
                .get("loss", {})
                .get("count")
                == 50
            ),
            timeout=60,
            what="the manifest's summary of the 50 points",
        )
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_exported_keys_reach_a_terminal_escaped(root: Path) -> None:
    with track_run("odd", root=root, progress="off", resources=False) as run:
        run.log({"\x1b]0;pwned\x07title": 1.0})
    out = otel_cli(root, "export", run.run_id, "--series", "-o", "-").stdout
    assert "\x1b" not in out and "\\x1b]0;pwned\\x07title" in out


SIGNAL_WHILE_LOCKED = """
import os, signal, sys, time
from otel_tracker import track_run
with track_run("locked", progress="off", resources=False) as run:
    run.log("loss", 1.0)
    lock = getattr(run.metrics, sys.argv[1])
    with lock:  # as the main thread holds it inside declare(), summary() or _start()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
"""


@pytest.mark.parametrize("lock", ["_flush_lock", "_thread_lock"])
def test_a_signal_while_the_main_thread_holds_a_series_lock_ends_the_run(
    root: Path, lock: str
) -> None:
    """The run's end (a SIGTERM handler on the main thread) flushes the series and
    reads their summary: it must not wait for a lock the interrupted frame holds."""
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_WHILE_LOCKED, lock],
        env=child_env(root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    (manifest,) = root.glob("*/manifest.json")
    doc = json.loads(manifest.read_text())
    assert (doc["status"], doc["signal"]) == ("cancelled", "SIGTERM")
    assert doc["metrics"]["keys"]["loss"]["count"] == 1
