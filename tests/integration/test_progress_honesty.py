"""What a user sees of a run in progress, off a terminal and from ``status``: a
short step still gets an in-step line (with its rate and the machine beside it), and
``status`` shows the CPU and memory of a live run."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.helpers import otel_cli, start_script, wait_for

SHORT_STEP = """
import sys, time
from pathlib import Path
from otel_tracker import track_run
gate = Path(sys.argv[1])
with track_run("short", steps=["load"], sample_interval=0.2) as run:
    with run.step("load", total=100, unit="files") as step:
        step.advance(40)
        while not gate.exists():
            time.sleep(0.01)
"""


def test_a_short_step_gets_an_in_step_line_in_a_ci_log(root: Path, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    code = f"import sys; sys.argv[1:] = [{str(gate)!r}]\n" + SHORT_STEP
    # stderr is a pipe: plain lines, as in CI; an hour between lines, as configured for
    # a long pipeline: the step's first in-step line must still come within seconds
    proc = start_script(code, root, OTEL_TRACKER_PROGRESS_INTERVAL="3600")
    watchdog = threading.Timer(300, proc.kill)  # a line that never comes fails, not hangs
    watchdog.start()
    lines = []
    try:
        while True:  # the line is waited for as an event, however long the machine takes
            line = proc.stderr.readline()  # type: ignore[union-attr]
            assert line, "no in-step line: " + "".join(lines)
            lines.append(line)
            if "40/100 files (40%" in line:
                break
        gate.touch()
        _, rest = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        proc.kill()
    in_step = lines[-1]
    assert in_step.startswith("Step 1/1 – load: 40/100 files (40%, "), in_step
    assert " files/s" in in_step or " s/file" in in_step  # the step's own unit
    assert "ETA " in in_step and "without history" not in in_step  # its own rate knows
    assert " · CPU " in in_step and (" · PSS " in in_step or " · RSS " in in_step), in_step
    assert proc.returncode == 0, rest


LIVE = """
import sys, time
from pathlib import Path
from otel_tracker import track_run
gate = Path(sys.argv[1])
with track_run("live", steps=["work"], sample_interval=0.2, progress="off") as run:
    with run.step("work"):
        while not gate.exists():
            time.sleep(0.01)
"""


def test_status_shows_the_machine_of_a_live_run(root: Path, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    proc = start_script(f"import sys; sys.argv[1:] = [{str(gate)!r}]\n" + LIVE, root)
    try:
        wait_for(  # CPU is a rate: it needs two samples
            lambda: any(
                b"process.cpu.utilization" in p.read_bytes() for p in root.glob("*/telemetry.jsonl")
            ),
            what="a second resource sample",
        )
        shown = otel_cli(root, "status", "latest")
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[1].startswith("Step 1/1 – work"), lines
        assert lines[2].startswith("CPU ") and " of " in lines[2] and " MB" in lines[2], lines
        data = otel_cli(root, "status", "latest", "--json").stdout
        assert '"resources": "CPU ' in data, data
    finally:
        gate.touch()
        proc.communicate(timeout=60)
