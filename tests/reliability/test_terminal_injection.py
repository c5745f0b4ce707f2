"""User text never drives a terminal: what a person sees, on a real pseudo-terminal.

Run, step and scenario names, errors, skip reasons and warnings come from users and
from files anyone may edit. Raw, ``ESC ] 0 ; ... BEL`` retitles the reader's
terminal, ``ESC ] 8`` plants a hyperlink, ``ESC [ 2 J`` clears it, the 8-bit CSI
``\\x9b`` does the same on terminals that honour it, U+202E reverses text, and a
newline in a step name forges a ``Run ... completed`` line. Every reader command
and the running tracker's own progress lines must show them as escapes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import child_env, make_run, run_in_pty

OSC_TITLE = "\x1b]0;pwned\x07"
OSC_LINK = "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b2J"
BIDI = "\u202e"
FORGED = "\nRun forged completed in 0s (9/9 steps)"
PAYLOAD = OSC_TITLE + OSC_LINK + CLEAR + C1_CSI + BIDI + FORGED
# bytes no output of ours contains, whatever rich draws: only user data could bring them
FORBIDDEN = [b"\x1b]", b"\x07", b"\x1b[2J", b"\xc2\x9b", BIDI.encode()]
_SGR = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def _check_screen(raw: bytes, where: Any) -> str:
    for bad in FORBIDDEN:
        assert bad not in raw, (where, bad, raw[:2000])
    text = _SGR.sub(b"", raw).decode("utf-8")
    # a line of ours starts at the left edge; quoted text (a traceback) is indented
    forged = [line for line in text.splitlines() if line.startswith("Run forged")]
    assert not forged, (where, forged)
    return text


@pytest.fixture
def hostile_runs(root: Path, template_manifest: dict[str, Any]) -> Path:
    failed = make_run(root, template_manifest, name="evil", status="failed", suffix="000001")
    doc = json.loads((failed / "manifest.json").read_text())
    doc["name"] = "evil" + PAYLOAD
    doc["scenario"] = "sc" + PAYLOAD
    doc["steps"][0]["name"] = "step" + PAYLOAD
    doc["steps"][1].update(
        status="failed",
        error={"type": "E" + PAYLOAD, "message": PAYLOAD, "traceback": "tb" + PAYLOAD},
    )
    doc["steps"][2].update(status="skipped", skip_reason="why" + PAYLOAD)
    doc["error"] = {"type": "Boom" + PAYLOAD, "message": "m" + PAYLOAD, "traceback": "T" + PAYLOAD}
    doc["warnings"] = ["w" + PAYLOAD]
    doc["params"] = {"k" + PAYLOAD: "v" + PAYLOAD}
    doc["last_completed_step"] = "step" + PAYLOAD
    doc["process"]["command"] = ["python", "x" + PAYLOAD]
    doc["steps"][0]["artifacts"] = [{"path": "a" + PAYLOAD, "kind": "k" + PAYLOAD, "size_bytes": 1}]
    (failed / "manifest.json").write_text(json.dumps(doc))
    return failed


COMMANDS = [
    ["list"],
    ["show", "RUN"],
    ["summary", "RUN"],
    ["summary", "RUN", "--format", "markdown"],
    ["summary", "RUN", "--format", "json"],
    ["show", "RUN", "--json"],
    ["status", "RUN"],
    ["status", "RUN", "--json"],
    ["watch", "RUN"],
    ["export", "RUN", "--output", "-"],
    ["list", "--json"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_readers_show_control_characters_as_escapes(
    root: Path, hostile_runs: Path, command: list[str]
) -> None:
    argv = [a.replace("RUN", hostile_runs.name) for a in command]
    code, raw = run_in_pty(
        [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), *argv],
        env={**child_env(root), "TERM": "xterm-256color", "COLUMNS": "400"},
    )
    text = _check_screen(raw, command)
    assert code in (0, 1), (command, text[-2000:])  # watch: 1 for a failed run
    if "json" not in command and "--json" not in command:
        assert "\\x1b]0;pwned\\x07" in text, (command, text[:3000])  # shown, escaped


def test_a_hostile_problem_line_and_baseline_are_escaped_too(
    root: Path, hostile_runs: Path, template_manifest: dict[str, Any]
) -> None:
    """Warnings about damaged files quote them; baselines carry pipeline and step names."""
    bad = root / "20261201T000000.000Z-bad-aaaaaa"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({"schema_version": 1, "run_id": "r" + PAYLOAD}))
    ok = make_run(root, template_manifest, name="fine", suffix="000002")
    doc = json.loads((ok / "manifest.json").read_text())
    doc["name"] = "pipe" + PAYLOAD
    doc["steps"][0]["name"] = "s" + PAYLOAD
    (ok / "manifest.json").write_text(json.dumps(doc))
    env = {**child_env(root), "TERM": "xterm-256color", "COLUMNS": "400"}
    cli = [sys.executable, "-m", "otel_tracker.cli", "--root", str(root)]
    for argv in (
        ["list"],
        ["show", bad.name],
        ["baseline", "create", "--from", ok.name],
        ["baseline", "list"],
        ["baseline", "show", "pipe-0-pwned-8-http-evil-example-click-8-2j-h"],
        ["baseline", "show", "pipe-0-pwned-8-http-evil-example-click-8-2j-h", "--json"],
        ["show", "nosuchrun" + PAYLOAD],
    ):
        code, raw = run_in_pty([*cli, *argv], env=env)
        _check_screen(raw, argv)
        assert code in (0, 2), (argv, raw[-500:])


SCRIPT = textwrap.dedent(
    """
    import sys
    from otel_tracker import track_run
    payload = sys.argv[1]
    with track_run("run" + payload, steps=["a" + payload, "skip" + payload], progress=sys.argv[2],
                   resources=False) as run:
        with run.step("a" + payload) as step:
            step.set_total(3, unit="u" + payload)
            step.advance(3)
        run.skip("skip" + payload, reason="r" + payload)
    """
)


def test_the_running_trackers_progress_lines_are_escaped(root: Path) -> None:
    """Plain lines (stderr not a terminal, e.g. a CI log) and the live view (a
    terminal) print step names, units and skip reasons escaped."""
    argv = [sys.executable, "-c", SCRIPT, PAYLOAD]
    plain = subprocess.run([*argv, "plain"], env=child_env(root), capture_output=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    text = _check_screen(plain.stderr, "plain")
    assert b"\x1b" not in plain.stderr
    assert "Step 1/2 – a\\x1b]0;pwned\\x07" in text and "Skipped skip\\x1b]0;pwned" in text
    assert text.splitlines()[-1].startswith("Run run\\x1b]0;pwned\\x07")
    code, raw = run_in_pty([*argv, "auto"], env={**child_env(root), "TERM": "xterm-256color"})
    assert code == 0, raw[-2000:]
    text = _check_screen(raw, "live")
    assert "Run run\\x1b]0;pwned\\x07" in text
