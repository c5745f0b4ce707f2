"""`run -- CMD` and `pipeline run` own the command's whole process group: signals,
the wrapper's death and the terminal reach everything the command started, and a
process it leaves behind holding the output pipes cannot hold the record.

Real processes, real signals, a real pseudo-terminal; every wait is on a condition
(a process gone, a manifest final, a line on the screen)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import child_env, only_manifest, read_when, wait_for, wrap
from tests.terminal import Terminal

PY = sys.executable
SLEEPER = "sleep 300; echo after"  # sh waits on sleep: a signal to sh alone ends nothing


@pytest.fixture
def cleanup() -> Iterator[list[int]]:
    """Pids of processes a test started indirectly, killed at the end if still there."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:  # a child of ours left unreaped would count in a later test's process tree
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _tree(pid: int, cleanup: list[int]) -> dict[str, psutil.Process]:
    """The command's ``sleep`` under ``pid`` once it exists, and the ``sh`` running it."""

    def probe() -> dict[str, psutil.Process] | None:
        try:
            for child in psutil.Process(pid).children(recursive=True):
                if child.name() == "sleep":
                    return {"sleep": child, "sh": child.parent()}
        except psutil.Error:
            return None
        return None

    found = wait_for(probe, timeout=30, what=f"the command's sleep under {pid}")
    cleanup.extend(p.pid for p in found.values())
    return found


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _started_by(proc: psutil.Process, run_dir: str) -> bool:
    """A ``sleep 300`` that the run's command started (it has the run in its environment)."""
    try:
        return proc.info["cmdline"] == ["sleep", "300"] and (
            proc.environ().get("OTEL_TRACKER_RUN_DIR") == run_dir
        )
    except psutil.Error:
        return False


def _wait_gone(*procs: psutil.Process) -> None:
    names = ", ".join(p.name() if not _gone(p) else str(p.pid) for p in procs)
    wait_for(lambda: all(_gone(p) for p in procs), timeout=30, what=f"{names} gone")


def _final(root: Path) -> dict:
    return wait_for(read_when(root, lambda d: d["status"] != "running"), what="a final manifest")


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_one_signal_ends_the_whole_command_and_the_record_at_once(
    root: Path, cleanup: list[int], sig: int, code: int
) -> None:
    proc = wrap(root, "sh", "-c", SLEEPER)
    cleanup.append(proc.pid)
    tree = _tree(proc.pid, cleanup)
    proc.send_signal(sig)
    # before, sh alone got it: with SIGINT it went on waiting for sleep; with SIGTERM
    # the orphaned sleep held the pipes and the record waited 5 s per pipe for it
    assert proc.wait(timeout=60) == code
    _wait_gone(tree["sleep"])
    doc = only_manifest(root)
    assert (doc["status"], doc["signal"], doc["exit_code"]) == ("cancelled", sig.name, code)


def test_a_second_sigint_kills_the_group_and_the_run_is_still_cancelled(
    root: Path, cleanup: list[int]
) -> None:
    # the shell survives SIGINT (its trap), its sleeps do not
    code = 'trap "echo got-int" INT; echo ready; while :; do sleep 1; done'
    proc = wrap(root, "sh", "-c", code)
    cleanup.append(proc.pid)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    cleanup.extend(p.pid for p in psutil.Process(proc.pid).children(recursive=True))
    proc.send_signal(signal.SIGINT)
    assert proc.stdout.readline().strip() == "got-int"  # forwarded, and survived
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=60) == 130
    except subprocess.TimeoutExpired:  # say where it stands: a rare hang, not yet explained
        pytest.fail("no exit 60 s after the second SIGINT; threads:\n" + _threads(proc.pid))
    doc = only_manifest(root)
    # the operator cancelled, even though the second signal had the command killed
    assert (doc["status"], doc["signal"], doc["exit_code"]) == ("cancelled", "SIGINT", 130)
    message = doc["steps"][0]["error"]["message"]
    assert "SIGINT from the operator" in message and "SIGKILL" in message, message
    assert doc["steps"][0]["error"]["type"] == "CommandFailed"  # not an internal class path


def test_sigkill_to_the_wrapper_takes_the_command_with_it(root: Path, cleanup: list[int]) -> None:
    proc = wrap(root, "sh", "-c", SLEEPER)
    cleanup.append(proc.pid)
    tree = _tree(proc.pid, cleanup)
    wait_for(read_when(root, lambda d: d["steps"][0]["status"] == "running"), what="running")
    proc.kill()
    proc.wait(timeout=60)
    _wait_gone(tree["sh"], tree["sleep"])


def test_a_process_left_holding_the_pipes_does_not_hold_the_record(
    root: Path, cleanup: list[int]
) -> None:
    proc = wrap(root, "sh", "-c", "sleep 300 & echo started")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "started\n"
    doc = only_manifest(root)
    assert doc["status"] == "completed"
    ours = [p for p in psutil.process_iter(["cmdline"]) if _started_by(p, doc["run_dir"])]
    cleanup.extend(p.pid for p in ours)
    assert ours and all(p.is_running() for p in ours)  # left alone: the command exited normally
    # a command of milliseconds: before, the wrapper waited 5 s per pipe for the
    # leftover to close them and recorded 10.1 s
    assert doc["steps"][0]["duration_s"] < 5.0, doc["steps"][0]


def _pipeline(root: Path, tmp_path: Path, steps: str, cleanup: list[int]) -> subprocess.Popen:
    """Start ``pipeline run`` on a file of ``steps`` (TOML)."""
    pipeline = tmp_path / "p.toml"
    pipeline.write_text('name = "stages"\n' + textwrap.dedent(steps))
    proc = subprocess.Popen(
        [PY, "-m", "otel_tracker.cli", "--root", str(root), "pipeline", "run", str(pipeline)],
        env=child_env(root, OTEL_TRACKER_PROGRESS="off"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    cleanup.append(proc.pid)
    return proc


def test_pipeline_stages_get_the_same_process_group_handling(
    root: Path, tmp_path: Path, cleanup: list[int]
) -> None:
    steps = f"""
        [[steps]]
        name = "wait"
        command = ["sh", "-c", {json.dumps(SLEEPER)}]
        [[steps]]
        name = "never"
        command = ["true"]
        """
    proc = _pipeline(root, tmp_path, steps, cleanup)
    tree = _tree(proc.pid, cleanup)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    _wait_gone(tree["sleep"])
    doc = only_manifest(root)
    assert (doc["status"], doc["signal"]) == ("cancelled", "SIGTERM")
    assert [s["status"] for s in doc["steps"]] == ["failed", "pending"]


def test_a_pipeline_step_timeout_ends_the_whole_group(
    root: Path, tmp_path: Path, cleanup: list[int]
) -> None:
    pid_file = tmp_path / "sleep.pid"
    # the shell waits for its sleep: before, the timeout's signals reached the shell only
    command = f"sleep 300 & echo $! > {pid_file}; wait"
    steps = f"""
        [[steps]]
        name = "wait"
        command = ["sh", "-c", {json.dumps(command)}]
        timeout = 3
        """
    proc = _pipeline(root, tmp_path, steps, cleanup)
    assert proc.wait(timeout=60) == 124
    sleep = psutil.Process(int(pid_file.read_text()))
    cleanup.append(sleep.pid)
    _wait_gone(sleep)
    doc = _final(root)
    assert doc["steps"][0]["error"]["type"] == "StepTimeout"


def test_in_a_terminal_the_command_can_read_it_and_ctrl_c_reaches_all_of_it(
    root: Path, cleanup: list[int]
) -> None:
    """The command's group is the terminal's foreground group while it runs: it reads
    the terminal (no SIGTTIN stop) and Ctrl-C reaches sh and its sleep at once."""
    code = 'printf "name? "; read name; echo "hello $name"; sleep 300; echo after'
    env = child_env(root, TERM="xterm-256color", OTEL_TRACKER_PROGRESS="plain")
    with Terminal([PY, "-m", "otel_tracker.cli", "run", "--", "sh", "-c", code], env) as t:
        t.wait_screen(lambda rows: any("name?" in row for row in rows))
        t.write(b"ada\r")
        t.wait_screen(lambda rows: any(row.startswith("hello ada") for row in rows))
        tree = _tree(t.pid, cleanup)
        assert t.foreground_group() == tree["sh"].pid  # the command's own group
        t.write(b"\x03")
        assert t.wait() == 130
        _wait_gone(tree["sleep"])
        doc = only_manifest(root)
        assert (doc["status"], doc["signal"]) == ("cancelled", "SIGINT")


@pytest.mark.slow
def test_a_signal_at_any_moment_of_the_wrapper_leaves_a_final_record(
    root: Path, cleanup: list[int]
) -> None:
    """SIGTERM at random moments from the wrapper's start-up to the command's run: the
    record is never left `running` (read `aborted`): no run yet (the signal came
    before the wrapper could handle it), or `cancelled` with the command gone."""
    rng = random.Random(7)
    for attempt in range(8):
        attempt_root = root / str(attempt)
        proc = wrap(attempt_root, "sh", "-c", SLEEPER)
        cleanup.append(proc.pid)
        time.sleep(rng.uniform(0.0, 1.5))  # a random moment, not a wait for anything
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) in (143, -signal.SIGTERM)
        found = sorted(attempt_root.glob("*/manifest.json"))
        if not found:
            continue
        doc = json.loads(found[0].read_text())
        assert (doc["status"], doc["signal"]) == ("cancelled", "SIGTERM"), (attempt, doc["status"])
        started = [p for p in psutil.process_iter(["cmdline"]) if _started_by(p, doc["run_dir"])]
        cleanup.extend(p.pid for p in started)
        _wait_gone(*started)


def test_ctrl_z_stops_the_job_and_fg_resumes_it_in_a_real_shell(
    root: Path, cleanup: list[int]
) -> None:
    """Job control as with any command: Ctrl-Z stops the command and the shell reports
    the wrapper's job stopped; `fg` resumes both; Ctrl-C then cancels the run."""
    ticker = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done"
    env = child_env(root, TERM="xterm-256color", PS1="$ ", OTEL_TRACKER_PROGRESS="plain")
    with Terminal(["bash", "--norc", "--noprofile", "-i"], env) as t:
        t.wait_screen(lambda rows: any(row.startswith("$") for row in rows))
        t.write(f"{PY} -m otel_tracker.cli run -- sh -c '{ticker}'\r".encode())
        t.wait_screen(lambda rows: "tick 2" in rows)
        t.write(b"\x1a")  # Ctrl-Z
        t.wait_screen(lambda rows: any("Stopped" in row for row in rows))
        wrapper = next(
            p for p in psutil.Process(t.pid).children() if "otel_tracker.cli" in p.cmdline()
        )
        command = next(
            p for p in wrapper.children() if p.name() == "sh" and "tick" in " ".join(p.cmdline())
        )
        cleanup.extend([wrapper.pid, command.pid])
        wait_for(
            lambda: {wrapper.status(), command.status()} == {psutil.STATUS_STOPPED},
            what="the wrapper and the command stopped",
        )
        seen = max(int(row.split()[1]) for row in t.lines() if row.startswith("tick "))
        t.write(b"fg\r")
        t.wait_screen(lambda rows: f"tick {seen + 2}" in rows)  # running again
        t.write(b"\x03")
        t.wait_screen(lambda rows: any("cancelled" in row for row in rows))
        t.write(b"echo rc=$?\r")
        t.wait_screen(lambda rows: "rc=130" in rows)
        t.write(b"exit\r")
    doc = only_manifest(root)
    assert (doc["status"], doc["signal"]) == ("cancelled", "SIGINT")


def _threads(pid: int) -> str:
    """Each thread of ``pid``: its name, where it sleeps in the kernel, its signal masks."""
    lines = []
    for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
        try:
            status = dict(
                line.split(":\t", 1) for line in (task / "status").read_text().splitlines()
            )
            wchan = (task / "wchan").read_text()
        except OSError as exc:
            lines.append(f"{task.name}: {exc}")
            continue
        masks = " ".join(f"{k}={status.get(k, '?')}" for k in ("SigPnd", "ShdPnd", "SigBlk"))
        lines.append(
            f"{task.name} {status.get('Name', '?')} {status.get('State', '?')} {wchan} {masks}"
        )
    return "\n".join(lines)


def test_a_wrapper_holding_over_1024_descriptors_waits_for_its_command(root: Path) -> None:
    # a CI runner or scheduler that leaks inheritable descriptors: select() would refuse
    # the wait's descriptor (1,100 of them open first), poll() does not
    script = (
        "ulimit -n 4096 && for i in $(seq 1100); do exec {fd}</dev/null; done && "
        'exec "$0" -m otel_tracker.cli --root "$1" run -- sh -c "sleep 0.2; exit 3"'
    )
    proc = subprocess.run(
        ["bash", "-c", script, sys.executable, str(root)],
        env=child_env(root, OTEL_TRACKER_PROGRESS="off"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert only_manifest(root)["exit_code"] == 3
