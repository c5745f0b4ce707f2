"""Steps and progress from commands in any language: a bash script calling
``otel-tracker step``, a compiled C program printing ``::otel-tracker::`` lines, a
pipeline step doing the same; the steps nest under the command's step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from otel_tracker.launch.step_control import PROTOCOL_MARK, CommandSteps, ProtocolFilter
from tests.helpers import child_env, only_manifest, otel_cli

CLI = f"{sys.executable} -m otel_tracker.cli"

BASH_JOB = f"""set -e
step() {{ {CLI} step "$@"; }}
step start "Load data" --total 3 --unit files
for i in 1 2 3; do echo "file $i"; step advance; done
step start "Train"
echo training
step end --failed --message "loss is NaN"
step start "Report"
exit 4
"""

C_PROGRAM = r"""
#include <stdio.h>
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("::otel-tracker:: step start \"Simulate\" --total 4 --unit ticks\n");
    for (int i = 0; i < 4; i++) { printf("tick %d\n", i); printf("::otel-tracker:: step advance\n"); }
    printf("::otel-tracker:: step start Summarize\n");
    printf("no newline yet...");
    printf("\n::otel-tracker:: step end\n");
    printf("::otel-tracker:: step frobnicate\n");
    return 0;
}
"""


def _substeps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    (step,) = doc["steps"]
    return step.get("substeps") or []


def _wrap(root: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "run", *argv]
    env = child_env(root, OTEL_TRACKER_PROGRESS="off")
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_bash_script_reports_steps_with_the_cli(root: Path, tmp_path: Path) -> None:
    (tmp_path / "job.sh").write_text(BASH_JOB)
    done = _wrap(root, tmp_path, "--", "bash", "job.sh")
    assert done.returncode == 4, done.stderr
    assert done.stdout.splitlines() == ["file 1", "file 2", "file 3", "training"]
    doc = only_manifest(root)
    subs = _substeps(doc)
    assert [s["name"] for s in subs] == ["Load data", "Train", "Report"]
    load, train, report = subs
    assert load["status"] == "completed"
    assert (load["progress"]["completed"], load["progress"]["total"]) == (3, 3)
    assert load["progress"]["unit"] == "files"
    assert train["status"] == "failed" and "loss is NaN" in train["error"]["message"]
    # left running when the script exited 4: failed with it
    assert report["status"] == "failed" and "exited (4)" in report["error"]["message"]
    assert doc["status"] == "failed"


def test_a_compiled_program_reports_steps_on_its_stdout(root: Path, tmp_path: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "no C compiler: scripts/test.sh installs Debian's gcc"
    (tmp_path / "prog.c").write_text(C_PROGRAM)
    subprocess.run([compiler, "-o", "prog", "prog.c"], cwd=tmp_path, check=True)
    done = _wrap(root, tmp_path, "--progress-protocol", "--", "./prog")
    assert done.returncode == 0, done.stderr
    # the protocol lines are kept out of the console and the log, the rest is as written
    expected = "tick 0\ntick 1\ntick 2\ntick 3\nno newline yet...\n"
    assert done.stdout == expected
    doc = only_manifest(root)
    (log,) = root.glob("*/logs/stdout.log")
    assert log.read_text() == expected
    subs = _substeps(doc)
    assert [(s["name"], s["status"]) for s in subs] == [
        ("Simulate", "completed"),
        ("Summarize", "completed"),
    ]
    assert subs[0]["progress"]["completed"] == 4 and subs[0]["progress"]["unit"] == "ticks"
    assert "step frobnicate" in done.stderr  # a line it cannot read: one warning
    # without the flag, the same lines are the program's output, untouched (and "./prog"
    # is run as written: it once became "prog", looked up on PATH)
    plain = _wrap(root, tmp_path, "--", "./prog")
    assert plain.stdout.count(PROTOCOL_MARK.decode()) == 8


def test_a_pipeline_step_reports_its_own_steps(root: Path, tmp_path: Path) -> None:
    (tmp_path / "pipe.toml").write_text(
        'name = "etl"\n'
        "[[steps]]\n"
        'name = "Extract"\n'
        'command = ["bash", "-c", '
        f'"{CLI} step start Fetch --total 2; {CLI} step advance 2"]\n'
        "[[steps]]\n"
        'name = "Load"\n'
        'command = ["bash", "-c", "echo \'::otel-tracker:: step start Write\'"]\n'
    )
    command = [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), "pipeline", "run"]
    done = subprocess.run(
        [*command, "--progress-protocol", str(tmp_path / "pipe.toml")],
        env=child_env(root, OTEL_TRACKER_PROGRESS="off"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    doc = only_manifest(root)
    extract, load = doc["steps"]
    assert [(s["name"], s["progress"]["completed"]) for s in extract["substeps"]] == [("Fetch", 2)]
    assert [s["name"] for s in load["substeps"]] == ["Write"]
    shown = otel_cli(root, "show", doc["run_id"])
    assert "Fetch" in shown.stdout and "Write" in shown.stdout


def test_the_cli_outside_a_tracked_command_is_a_clear_error(root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OTEL_TRACKER_CONTROL"}
    outside = subprocess.run(
        [sys.executable, "-m", "otel_tracker.cli", "step", "start", "x"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert outside.returncode == 2 and "not inside a tracked command" in outside.stderr
    gone = subprocess.run(
        [sys.executable, "-m", "otel_tracker.cli", "step", "advance"],
        env={**env, "OTEL_TRACKER_CONTROL": str(root / "no-such-socket")},
        capture_output=True,
        text=True,
    )
    assert gone.returncode == 2 and "not listening" in gone.stderr
    assert "Traceback" not in outside.stderr + gone.stderr


class _Collect:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def finish(self) -> None:
        pass


class _Steps(CommandSteps):
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._warned: set[str] = set()

    def handle(self, message: Any) -> None:
        self.seen.append(dict(message))


def test_protocol_lines_split_across_reads_are_still_recognised() -> None:
    text = (
        b"a\n::otel-tracker:: step start 'X Y' --total 2\n::otel\x00-not-a-mark\n"
        b"::otel-tracker:: step advance 2\nprogress 50%\r"
        b"progress 100%\n::otel-tracker:: step end"
    )
    for size in (1, 2, 3, 7, 16, len(text)):
        sink, steps = _Collect(), _Steps()
        filt = ProtocolFilter([sink], steps)
        for i in range(0, len(text), size):
            filt.write(text[i : i + size])
        filt.finish()
        assert sink.data == b"a\n::otel\x00-not-a-mark\nprogress 50%\rprogress 100%\n", size
        assert steps.seen == [
            {"op": "start", "name": "X Y", "total": 2, "unit": None},
            {"op": "advance", "n": 2},
            {"op": "end", "failed": False, "message": None},
        ], size
