"""The report a run leaves behind (summary.json/.md/.txt) and the baseline it is judged by."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.helpers import otel_cli, read_when, start_script, wait_for

SCRIPT = """
import os, time
from otel_tracker import track_run
delay = float(os.environ["DELAY"])
with track_run("reported", steps=["collect"], sample_interval=0.2, progress="off") as run:
    with run.step("collect") as s:
        s.set_total(20, unit="env steps")
        for _ in range(int(os.environ.get("N", "20"))):
            time.sleep(delay)
            s.advance()
"""


def run_once(root: Path, delay: float, n: int = 20) -> Path:
    proc = start_script(SCRIPT, root, DELAY=str(delay), N=str(n))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return newest(root)


def newest(root: Path) -> Path:
    return sorted(p for p in root.iterdir() if p.name[:1].isdigit())[-1]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_a_finished_run_leaves_its_report_in_three_forms(root: Path) -> None:
    run_dir = run_once(root, 0.01)
    report = summary(run_dir)
    assert report["status"] == "completed"
    analysis = report["analysis"]
    assert analysis["baseline"]["status"] == "none"
    assert "no baseline for reported" in analysis["baseline"]["note"]
    (step,) = analysis["figures"]["steps"]
    assert step["step"] == "collect" and step["items"] == 20 and step["throughput"] > 10
    assert analysis["thresholds"]["tolerance"] == 0.25
    md = (run_dir / "summary.md").read_text()
    assert "## Key figures" in md and "## Anomalies and recommendations" in md
    assert "no baseline for reported" in md
    txt = (run_dir / "summary.txt").read_text()
    assert "collect" in txt and "\x1b[" not in txt


@pytest.mark.slow
def test_a_slow_run_is_judged_against_the_baseline_made_from_earlier_runs(root: Path) -> None:
    fast = [run_once(root, 0.02).name for _ in range(2)]
    proc = otel_cli(root, "baseline", "create", "--from", fast[0], "--from", fast[1])
    assert proc.returncode == 0, proc.stderr
    assert "created baseline reported revision 1 from 2 run(s)" in proc.stdout
    shown = otel_cli(root, "baseline", "show", "reported")
    assert shown.returncode == 0 and "collect" in shown.stdout and "env steps/s" in shown.stdout

    slow = run_once(root, 0.1)  # ~5x slower per item: 1.6 s lost, past min_lost_s
    analysis = summary(slow)["analysis"]
    assert analysis["baseline"]["status"] == "used" and analysis["baseline"]["runs"] == 2
    (finding,) = [r for r in analysis["recommendations"] if r["id"] == "throughput-below-baseline"]
    assert finding["step"] == "collect" and finding["severity"] == "critical"
    assert finding["evidence"]["drop"] > 0.5
    assert analysis["history_runs"] == 2

    # the CLI gives the same verdict, and a looser tolerance silences it
    proc = otel_cli(root, "summary", slow.name, "--format", "json")
    assert any(
        r["id"] == "throughput-below-baseline"
        for r in json.loads(proc.stdout)["analysis"]["recommendations"]
    )
    proc = otel_cli(root, "summary", slow.name, "--format", "json", "--tolerance", "0.9")
    assert not any(
        r["id"] == "throughput-below-baseline"
        for r in json.loads(proc.stdout)["analysis"]["recommendations"]
    )
    proc = otel_cli(root, "summary", slow.name)
    assert "[critical] throughput-below-baseline (step collect)" in proc.stdout

    # update: a new revision with the slow run in it
    proc = otel_cli(root, "baseline", "update", "reported", "--from", slow.name)
    assert proc.returncode == 0 and "revision 2 (3 runs)" in proc.stdout
    proc = otel_cli(root, "baseline", "create", "--from", slow.name)
    assert proc.returncode == 2 and "exists" in proc.stderr


@pytest.mark.slow
def test_an_interrupted_run_writes_its_report_and_a_killed_one_gets_it_when_recovered(
    root: Path,
) -> None:
    proc = start_script(SCRIPT, root, DELAY="0.05", N="100000")
    doc = wait_for(read_when(root, lambda d: d["steps"][0]["progress"]["completed"] > 2))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    run_dir = root / doc["run_id"]
    assert summary(run_dir)["status"] == "cancelled"

    proc = start_script(SCRIPT, root, DELAY="0.05", N="100000")
    doc = wait_for(
        read_when(root, lambda d: d["status"] == "running" and d["run_id"] != run_dir.name)
    )
    proc.kill()
    proc.communicate(timeout=30)
    killed = root / doc["run_id"]
    assert not (killed / "summary.json").exists()
    rec = otel_cli(root, "recover", doc["run_id"])
    assert rec.returncode == 0, rec.stderr
    report = summary(killed)
    assert report["status"] == "aborted"
    assert (killed / "summary.md").exists() and (killed / "summary.txt").exists()


def test_summary_files_can_be_turned_off(root: Path) -> None:
    proc = start_script(SCRIPT, root, DELAY="0.001", OTEL_TRACKER_SUMMARY_FILES="false")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run_dir = newest(root)
    assert (run_dir / "manifest.json").exists()
    assert not list(run_dir.glob("summary.*"))
