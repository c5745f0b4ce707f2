"""``otel-tracker pipeline run FILE``: real child processes per step, real signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_tracker.launch.pipeline_file import PipelineError, load_pipeline
from tests.helpers import child_env, only_manifest, otel_cli, read_when, wait_for

PY = sys.executable


def _write(tmp_path: Path, text: str, name: str = "pipeline.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_steps_run_in_order_with_env_logs_skips_and_one_trace(root: Path, tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    path = _write(
        tmp_path,
        f"""
        name = "nightly-etl"
        scenario = "smoke"
        env = {{ STAGE = "all" }}

        [[steps]]
        name = "Extract"
        command = ["{PY}", "-c", "import os; print('extract', os.environ['STAGE'], os.environ['SOURCE'])"]
        env = {{ SOURCE = "s3" }}
        expected_duration = 2

        [[steps]]
        name = "Report"
        command = ["{PY}", "-c", "import os; print(os.getcwd()); print(os.environ['TRACEPARENT'])"]
        cwd = "jobs"

        [[steps]]
        name = "Publish"
        command = "true"
        enabled = false
        """,
    )
    proc = otel_cli(root, "pipeline", "run", str(path), OTEL_TRACKER_PROGRESS="off")
    assert proc.returncode == 0, proc.stderr
    assert "extract all s3" in proc.stdout
    doc = only_manifest(root)
    assert (doc["name"], doc["scenario"], doc["status"]) == ("nightly-etl", "smoke", "completed")
    assert [s["status"] for s in doc["steps"]] == ["completed", "completed", "skipped"]
    assert doc["steps"][0]["expected_duration_s"] == 2
    assert doc["steps"][2]["skip_reason"] == "disabled in the pipeline file"
    run_dir = Path(doc["run_dir"])
    report = (run_dir / "logs" / "02-report.stdout.log").read_text().splitlines()
    assert report[0] == str(tmp_path / "jobs")
    # the child got the trace context of its own step's span
    _, trace_id, span_id, _ = report[1].split("-")
    assert trace_id == doc["trace"]["trace_id"] and span_id == doc["steps"][1]["span_id"]


def test_a_failing_step_fails_the_run_and_later_steps_stay_pending(
    root: Path, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        f"""
        name = "breaks"
        [[steps]]
        name = "Flaky"
        command = ["{PY}", "-c", "import sys; sys.exit(5)"]
        continue_on_error = true
        [[steps]]
        name = "Broken"
        command = ["{PY}", "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
        [[steps]]
        name = "Never"
        command = ["{PY}", "-c", "pass"]
        """,
    )
    proc = otel_cli(root, "pipeline", "run", str(path), OTEL_TRACKER_PROGRESS="off")
    assert proc.returncode == 3
    assert "boom" in proc.stderr
    doc = only_manifest(root)
    assert (doc["status"], doc["exit_code"]) == ("failed", 3)
    assert [s["status"] for s in doc["steps"]] == ["failed", "failed", "pending"]
    assert "code 5" in doc["steps"][0]["error"]["message"]


def test_a_step_past_its_timeout_is_stopped_and_recorded(root: Path, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"""
        name = "slow"
        [[steps]]
        name = "Hang"
        command = ["{PY}", "-c", "import time; time.sleep(60)"]
        timeout = 0.5
        """,
    )
    proc = otel_cli(root, "pipeline", "run", str(path), OTEL_TRACKER_PROGRESS="off")
    assert proc.returncode == 124
    doc = only_manifest(root)
    assert doc["status"] == "failed"
    assert doc["steps"][0]["status"] == "failed"
    assert "timed out after 0.5s" in doc["steps"][0]["error"]["message"]


def test_skip_and_only_select_steps(root: Path, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "name = 'pick'\n"
        + "".join(f"[[steps]]\nname = '{n}'\ncommand = ['true']\n" for n in "ABCD"),
    )
    assert (
        otel_cli(root, "pipeline", "run", str(path), "--only", "B", "--only", "C").returncode == 0
    )
    assert [s["status"] for s in only_manifest(root)["steps"]] == [
        "skipped",
        "completed",
        "completed",
        "skipped",
    ]
    proc = otel_cli(root, "pipeline", "run", str(path), "--skip", "Z")
    assert proc.returncode == 2 and "no step named 'Z'" in proc.stderr


def test_sigterm_goes_to_the_running_step(root: Path, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"""
        name = "stoppable"
        [[steps]]
        name = "Wait"
        command = ["{PY}", "-c", "import time; time.sleep(60)"]
        [[steps]]
        name = "After"
        command = ["true"]
        """,
    )
    proc = subprocess.Popen(
        [PY, "-m", "otel_tracker.cli", "--root", str(root), "pipeline", "run", str(path)],
        env=child_env(root, OTEL_TRACKER_PROGRESS="off"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(read_when(root, lambda d: d["steps"][0]["status"] == "running"), what="step 1")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    doc = only_manifest(root)
    assert (doc["status"], doc["signal"]) == ("cancelled", "SIGTERM")
    assert [s["status"] for s in doc["steps"]] == ["failed", "pending"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'x'\nsteps = []\n", "'steps' must be a non-empty list"),
        ("steps = [{name = 'a', command = 'true'}]\n", "'name' is required"),
        ("name = 'x'\n[[steps]]\nname = 'a'\ncomand = 'true'\n", "unknown key 'comand'"),
        ("name = 'x'\n[[steps]]\nname = 'a'\n", "'command' is required"),
        (
            "name = 'x'\n[[steps]]\nname = 'a'\ncommand = 'true'\n[[steps]]\nname = 'a'\ncommand = 'true'\n",
            "duplicate step name",
        ),
        (
            "name = 'x'\n[[steps]]\nname = 'a'\ncommand = 'true'\ntimeout = '10m'\n",
            "number of seconds",
        ),
        ("name = 'x'\n[[steps]]\nname = 'a'\ncommand = 'true'\nenabled = 'yes'\n", "true or false"),
        ("name = 'x'\n[[steps]\n", "invalid TOML"),
        (
            "name = 'x'\n[[steps]]\nname = 'a'\ncommand = 'no-such-program-xyz'\n",
            "command not found",
        ),
    ],
)
def test_a_bad_pipeline_file_is_one_line_exit_2_and_no_run(
    root: Path, tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    proc = otel_cli(root, "pipeline", "run", str(path))
    assert proc.returncode == 2
    assert message in proc.stderr
    if "command not found" not in message:
        assert str(path) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # no traceback
    assert not list(root.glob("*/manifest.json"))  # no run left behind, running or not


def test_yaml_files_and_their_syntax_errors(tmp_path: Path) -> None:
    good = _write(
        tmp_path,
        "name: etl\nsteps:\n  - name: a\n    command: [echo, hi]\n    timeout: 5\n",
        "p.yaml",
    )
    pipeline = load_pipeline(good)
    assert pipeline.steps[0].command == ("echo", "hi") and pipeline.steps[0].timeout == 5.0
    bad = _write(tmp_path, "name: etl\nsteps:\n  - name: [unclosed\n", "bad.yml")
    with pytest.raises(PipelineError, match=r"invalid YAML at line \d+, column \d+"):
        load_pipeline(bad)
    with pytest.raises(PipelineError, match=r"\.toml, \.yaml or \.yml"):
        load_pipeline(_write(tmp_path, "{}", "p.json"))
