"""What ``show``, ``summary`` and ``export`` say about real runs: the small things a
new user trips on (a dangling colon, 16-digit scores, a recommendation to install
GPU support on a CPU-only machine, CPU ``-`` for a killed step, no stdout export)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from otel_tracker import track_run
from otel_tracker.cli.main import main
from tests.helpers import child_env, otel_cli, read_when, wait_for


def _cli(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_error_without_a_message_has_no_dangling_colon(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``KeyboardInterrupt()`` or a bare ``raise SomeError`` has an empty message:
    shown as its type alone, in the step's note and in the run's error line."""
    with (
        pytest.raises(KeyboardInterrupt),
        track_run(
            "interrupted", root=root, steps=["work"], install_signal_handlers=False, progress="off"
        ) as run,
        run.step("work"),
    ):
        raise KeyboardInterrupt
    with (
        pytest.raises(RuntimeError),
        track_run("bare", root=root, steps=["work"], install_signal_handlers=False, progress="off"),
    ):
        raise RuntimeError
    for ref, row in (
        (run.run_id, r"1\s+work\s+failed\s.*\sKeyboardInterrupt"),
        ("latest", r"error\s+RuntimeError"),
    ):
        code, out, _ = _cli(capsys, root, "show", ref)
        assert code == 0
        assert any(re.fullmatch(row, line.rstrip()) for line in out.splitlines()), out
        assert "Interrupt:" not in out and "RuntimeError:" not in out, out
        code, out, _ = _cli(capsys, root, "summary", ref, "--format", "markdown")
        assert "Interrupt:" not in out and "RuntimeError:" not in out, out


def test_scores_are_rounded_for_people_and_exact_in_json(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        track_run(
            "scored", root=root, steps=["eval"], install_signal_handlers=False, progress="off"
        ) as run,
        run.step("eval"),
    ):
        run.log_scores(
            {"accuracy": 0.9043357432365418, "loss": 1234.56789}, direction={"loss": "min"}
        )
        run.log_scores({"accuracy": 0.8712345678901234})
    for args in (
        ["show", "latest"],
        ["summary", "latest"],
        ["summary", "latest", "--format", "markdown"],
    ):
        code, out, _ = _cli(capsys, root, *args)
        assert code == 0
        assert "latest 0.8712, best 0.9043 (max)" in out, (args, out)
        assert "latest 1,235, best 1,235 (min)" in out, (args, out)
        assert "0.9043357432365418" not in out
    code, out, _ = _cli(capsys, root, "summary", "latest", "--format", "json")
    assert json.loads(out)["scores"]["accuracy"]["best"] == 0.9043357432365418


def test_export_writes_to_standard_output(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (
        track_run(
            "exported", root=root, steps=["a"], install_signal_handlers=False, progress="off"
        ) as run,
        run.step("a"),
    ):
        pass
    code, out, err = _cli(capsys, root, "export", "latest", "--format", "json", "--output", "-")
    assert code == 0 and err == ""
    assert json.loads(out)["run_id"] == run.run_id  # the report, and nothing else
    assert not Path("-").exists()
    code, out, _ = _cli(capsys, root, "export", "latest", "-o", "-")
    assert code == 0 and out.startswith("# Run exported — completed")


GPU_RUN = """
from otel_tracker import track_run
with track_run("cpu-only", steps=["a"], sample_interval=0.05, progress="off") as run:
    with run.step("a"):
        import time; time.sleep(0.3)
"""


@pytest.mark.parametrize("asked", [False, True])
def test_missing_gpu_telemetry_is_a_fact_unless_the_run_asked_for_it(
    root: Path, asked: bool
) -> None:
    """A CPU-only run (no NVML installed, no GPUs chosen) gets no recommendation to
    install GPU support: ``show`` says once, in its telemetry line, that GPUs were not
    measured. A run that chose GPUs (``CUDA_VISIBLE_DEVICES``) and got no GPU
    telemetry still gets the recommendation."""
    env = {"CUDA_VISIBLE_DEVICES": "0"} if asked else {}
    proc = subprocess.run(
        [sys.executable, "-c", GPU_RUN],
        env=child_env(root, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    show = otel_cli(root, "show", "latest")
    assert show.returncode == 0, show.stderr
    (telemetry,) = [line for line in show.stdout.splitlines() if line.startswith("telemetry ")]
    assert "not measured: gpu (" in telemetry
    recommended = "telemetry-unavailable: gpu" in show.stdout
    assert recommended == asked, show.stdout
    report = json.loads(otel_cli(root, "summary", "latest", "--format", "json").stdout)
    ids = [(r["id"], r["evidence"].get("what")) for r in report["analysis"]["recommendations"]]
    assert (("telemetry-unavailable", "gpu") in ids) == asked


KILLED = """
import time
from otel_tracker import track_run
with track_run("killed", steps=["prepare", "train"], sample_interval=0.05,
               heartbeat_interval=0.05, progress="off") as run:
    with run.step("prepare"):
        pass
    with run.step("train") as step:
        step.set_total(10**9)
        while True:
            step.advance()
            sum(range(1000))
"""


def _train_samples(run_dir: Path) -> int:
    try:
        lines = (run_dir / "telemetry.jsonl").read_text().splitlines()
    except OSError:
        return 0
    return sum(1 for line in lines if '"step":"train"' in line)


def test_a_sigkilled_steps_cpu_comes_from_its_telemetry_samples(root: Path) -> None:
    """SIGKILL inside a step: the manifest never got the step's aggregates, but
    ``telemetry.jsonl`` has its samples. ``show`` rebuilds CPU and memory figures
    for the aborted step from them (and says so), and ``recover`` keeps them."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED],
        env=child_env(root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(read_when(root, lambda d: d["steps"][1]["status"] == "running"), what="train")
        run_dir = next(root.iterdir())
        wait_for(lambda: _train_samples(run_dir) >= 4, timeout=60, what="train's samples")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    doc = json.loads((run_dir / "manifest.json").read_text())
    assert doc["status"] == "running" and not doc["steps"][1].get("resources")
    show = otel_cli(root, "show", run_dir.name)
    assert show.returncode == 0, show.stderr
    (row,) = [line for line in show.stdout.splitlines() if line.startswith("train  ")]
    assert len(re.findall(r" \d+% ", row)) == 2, row  # CPU mean and max (not "-")
    assert "resource figures are rebuilt from telemetry.jsonl" in show.stdout
    report = json.loads(otel_cli(root, "summary", run_dir.name, "--format", "json").stdout)
    (train,) = [s for s in report["analysis"]["figures"]["steps"] if s["step"] == "train"]
    assert train["cpu_utilization"]["count"] >= 2 and train["rss_bytes"]["max"] > 0
    assert otel_cli(root, "recover", run_dir.name).returncode == 0
    kept = json.loads((run_dir / "manifest.json").read_text())["steps"][1]["resources"]
    assert kept["process.cpu.utilization"] == train["cpu_utilization"]
