"""A real tracked pipeline in another process that the test moves step by step
(it waits for ``go-<n>`` files), so a page can be checked between changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import child_env, start_script

DRIVEN = """
import sys, time
from pathlib import Path
from otel_tracker import track_run
gate, name = Path(sys.argv[1]), sys.argv[2]

def wait(n):
    while not (gate / f"go-{n}").exists():
        time.sleep(0.02)

with track_run(name, steps=["Prepare data", "Train model"], progress="off",
               sample_interval=0.2, params={"lr": 0.01, "api_key": "hunter2-secret"}) as run:
    with run.step("Prepare data"):
        (gate / "started").write_text(run.run_id)
        wait(1)
    with run.step("Train model", total=10, unit="batch") as step:
        for i in range(10):
            step.advance()
            step.log({"loss": 1.0 / (i + 1)})
            print(f"batch {i}", flush=True)
            if i == 4:
                (gate / "halfway").touch()
                wait(2)
"""


class DrivenRun:
    """``wrapped``: under ``otel-tracker run --`` (its steps nest under the command's
    step, its output goes to ``logs/stdout.log``)."""

    def __init__(self, root: Path, gate: Path, name: str = "driven", wrapped: bool = False):
        gate.mkdir(parents=True, exist_ok=True)
        self.gate = gate
        code = "import sys; sys.argv[1:] = " + repr([str(gate), name]) + "\n" + DRIVEN
        if wrapped:
            self.proc: subprocess.Popen[str] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "otel_tracker.cli",
                    "run",
                    "--name",
                    name,
                    "--",
                    sys.executable,
                    "-c",
                    code,
                ],
                env=child_env(root, OTEL_TRACKER_PROGRESS="off"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        else:
            self.proc = start_script(code, root)

    @property
    def run_id(self) -> str | None:
        path = self.gate / "started"
        return path.read_text() if path.exists() else None

    def go(self, n: int) -> None:
        (self.gate / f"go-{n}").touch()

    def finish(self, timeout: float = 60) -> Any:
        self.go(1)
        self.go(2)
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return out

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=30)
