"""What a real terminal SHOWS while `run -- CMD`, `pipeline run` or a tracked script
prints under the live progress display: a pseudo-terminal read by a VT100 emulator.

The child waits on gate files the test creates, so the mid-run screen is checked
while the command is provably still running; every wait is on a condition.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

from tests.helpers import child_env, only_manifest
from tests.terminal import Terminal

PY = sys.executable
STEP = Path(PY).name
CLI = (PY, "-m", "otel_tracker.cli")

# Lines on both streams, a "\r" progress bar that waits mid-line on gates, then more
# lines and a last line without a newline (green, as a training script's summary).
CHATTY = r"""
import os, sys, time

gate = sys.argv[1]

def wait_gate(n):
    while not os.path.exists(f"{gate}.{n}"):
        time.sleep(0.02)

for i in range(3):
    print(f"line {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
sys.stdout.write("\rprogress 1/3")
sys.stdout.flush()
wait_gate(1)
sys.stdout.write("\rprogress 2/3")
sys.stdout.flush()
wait_gate(2)
sys.stdout.write("\rprogress 3/3\n")
for i in range(3, 5):
    print(f"line {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
sys.stdout.write("\x1b[32mval_acc 0.8430\x1b[0m")
sys.stdout.flush()
"""


def _env(root: Path) -> dict[str, str]:
    env = child_env(root, TERM="xterm-256color")
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM_PROGRAM"):
        env.pop(name, None)
    return env


def _script(tmp_path: Path, name: str, code: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(code))
    return path


def _once(rows: list[str], text: str) -> bool:
    """``text`` is exactly one whole row of the screen (not glued to anything)."""
    return sum(1 for row in rows if row == text) == 1 and not any(
        text in row and row != text for row in rows
    )


def _count(rows: list[str], pattern: str) -> int:
    return sum(1 for row in rows if re.search(pattern, row))


def _open(gate: Path, n: int) -> None:
    Path(f"{gate}.{n}").touch()


def test_run_output_scrolls_above_the_live_display(root: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = _script(tmp_path, "chatty.py", CHATTY)

    def mid_run(rows: list[str]) -> bool:
        return (
            all(_once(rows, f"{w} {i}") for w in ("line", "err") for i in range(3))
            and _once(rows, "progress 1/3")  # the open line is visible, not buffered
            # the running step is shown once: its start is not printed above the region
            and _count(rows, f"Step 1/1 – {re.escape(STEP)}") == 1
        )

    with Terminal(
        [*CLI, "run", "--name", "echo5", "--", PY, str(script), str(gate)], _env(root)
    ) as terminal:
        terminal.wait_screen(mid_run)
        _open(gate, 1)
        terminal.wait_screen(
            lambda rows: _once(rows, "progress 2/3") and _count(rows, "progress 1/3") == 0
        )
        _open(gate, 2)
        assert terminal.wait() == 0
        rows = terminal.lines()
        for i in range(5):
            assert _once(rows, f"line {i}") and _once(rows, f"err {i}"), terminal.text()
        assert _once(rows, "progress 3/3") and _count(rows, "progress [12]/3") == 0, terminal.text()
        # the last line had no newline: it is a line of its own, not glued to what follows
        assert _once(rows, "val_acc 0.8430"), terminal.text()
        row = rows.index("val_acc 0.8430")
        assert terminal.screen.buffer[row][0].fg == "green"  # the command's colours are kept
        assert _count(rows, f"^Step 1/1 – {re.escape(STEP)} done in ") == 1, terminal.text()
        assert _count(rows, f"Step 1/1 – {re.escape(STEP)} \\(") == 0, terminal.text()
        assert rows[-1].startswith("Run echo5 completed"), terminal.text()

        # the logs keep the raw bytes
        logs = Path(only_manifest(root)["run_dir"]) / "logs"
        stdout = (logs / "stdout.log").read_bytes()
        assert b"line 2\n\rprogress 1/3\rprogress 2/3\rprogress 3/3\nline 3\n" in stdout
        assert stdout.endswith(b"\x1b[32mval_acc 0.8430\x1b[0m")
        assert (logs / "stderr.log").read_bytes() == b"".join(b"err %d\n" % i for i in range(5))


def test_pipeline_steps_output_scrolls_above_the_live_display(root: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = _script(tmp_path, "chatty.py", CHATTY)
    pipeline = tmp_path / "two.toml"
    pipeline.write_text(
        textwrap.dedent(
            f"""
            name = "two"
            [[steps]]
            name = "first"
            command = [{json.dumps(PY)}, "-c", "print('first says hi')"]
            [[steps]]
            name = "second"
            command = [{json.dumps(PY)}, {json.dumps(str(script))}, {json.dumps(str(gate))}]
            """
        )
    )
    with Terminal([*CLI, "pipeline", "run", str(pipeline)], _env(root)) as terminal:
        terminal.wait_screen(
            lambda rows: (
                _once(rows, "first says hi")
                and _count(rows, "^Step 1/2 – first done in ") == 1
                and _once(rows, "line 2")
                and _once(rows, "progress 1/3")
                and _count(rows, "Step 2/2 – second") == 1
            )
        )
        _open(gate, 1)
        _open(gate, 2)
        assert terminal.wait() == 0
        rows = terminal.lines()
        for i in range(5):
            assert _once(rows, f"line {i}") and _once(rows, f"err {i}"), terminal.text()
        assert _once(rows, "val_acc 0.8430") and _once(rows, "progress 3/3"), terminal.text()
        assert _count(rows, "^Step 2/2 – second done in ") == 1, terminal.text()
        assert _count(rows, r"Step [12]/2 – \w+ \(") == 0, terminal.text()
        assert rows[-1].startswith("Run two completed"), terminal.text()


def test_run_with_stdout_in_a_file_keeps_the_commands_stdout_raw_there(
    root: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    _open(gate, 1)
    _open(gate, 2)
    script = _script(tmp_path, "chatty.py", CHATTY)
    out = tmp_path / "out.log"
    with Terminal(
        # the shell only sets up the redirection: stderr stays the terminal
        [
            "/bin/sh",
            "-c",
            'exec "$@" > "$0"',
            str(out),
            *CLI,
            "run",
            "--",
            PY,
            str(script),
            str(gate),
        ],
        _env(root),
    ) as terminal:
        assert terminal.wait() == 0
        rows = terminal.lines()
        assert all(_once(rows, f"err {i}") for i in range(5)), terminal.text()
        assert _count(rows, "line [0-4]|val_acc|progress") == 0, terminal.text()
        assert _count(rows, f"^Step 1/1 – {re.escape(STEP)} done in ") == 1, terminal.text()
        data = out.read_bytes()
        assert data.startswith(b"line 0\nline 1\nline 2\n\rprogress 1/3"), data
        assert data.endswith(b"\x1b[32mval_acc 0.8430\x1b[0m"), data


TRACKED_PRINTER = """
import sys
from otel_tracker import track_run

with track_run("printer", steps=["work"], progress="live") as run:
    with run.step("work"):
        for i in range(3):
            print(f"result {i}", flush=True)
        print("a warning", file=sys.stderr, flush=True)
"""


def test_a_tracked_scripts_prints_stay_in_its_redirected_stdout(root: Path, tmp_path: Path) -> None:
    """``python train.py > out.log`` with a terminal on stderr: the live display is on
    the terminal, and print() still goes to out.log, not to the terminal."""
    script = _script(tmp_path, "printer.py", TRACKED_PRINTER)
    out = tmp_path / "out.log"
    with Terminal(
        ["/bin/sh", "-c", 'exec "$@" > "$0"', str(out), PY, str(script)], _env(root)
    ) as terminal:
        assert terminal.wait() == 0
        assert out.read_text() == "result 0\nresult 1\nresult 2\n"
        rows = terminal.lines()
        assert _once(rows, "a warning") and _count(rows, "result") == 0, terminal.text()
        assert rows[-1].startswith("Run printer completed"), terminal.text()


TRACKED_BAR = r"""
import logging, os, sys, time
from otel_tracker import track_run

logging.basicConfig(format="LOG %(levelname)s %(message)s")  # a handler made before the run
gate = sys.argv[1]

def wait_gate(n):
    while not os.path.exists(f"{gate}.{n}"):
        time.sleep(0.02)

with track_run("barred", steps=["fit"], progress="live") as run:
    with run.step("fit"):
        print("epoch 0", flush=True)
        for i in (1, 2, 3):  # what tqdm does on a terminal
            sys.stderr.write(f"\rbatch {i}/3")
            sys.stderr.flush()
            wait_gate(i)
        sys.stderr.write("\n")
        logging.getLogger("train").warning("loss is nan")
        print("epoch 1", flush=True)
"""


def test_a_tracked_scripts_progress_bar_and_log_lines_stay_out_of_the_display(
    root: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    script = _script(tmp_path, "barred.py", TRACKED_BAR)
    with Terminal([PY, str(script), str(gate)], _env(root)) as terminal:
        for i in (1, 2):
            terminal.wait_screen(
                lambda rows, i=i: (
                    _once(rows, "epoch 0")
                    and _once(rows, f"batch {i}/3")  # the open line: visible, once
                    and _count(rows, "batch [0-9]/3") == 1  # a flush is not a new line
                    and _count(rows, "Step 1/1 – fit") == 1
                )
            )
            _open(gate, i)
        _open(gate, 3)
        assert terminal.wait() == 0
        rows = terminal.lines()
    assert _once(rows, "batch 3/3") and _count(rows, "batch [12]/3") == 0, "\n".join(rows)
    # a log handler made before the display writes above it too, not into it
    assert _once(rows, "LOG WARNING loss is nan"), "\n".join(rows)
    assert _once(rows, "epoch 0") and _once(rows, "epoch 1"), "\n".join(rows)
    assert rows[-1].startswith("Run barred completed"), "\n".join(rows)
