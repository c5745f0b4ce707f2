"""Forked workers never inherit the tracker's signal handlers, and a signal that
would kill a process still kills it while the tracker is there.

Real `multiprocessing` pools, executors and processes inside tracked steps, real
SIGTERMs. Each test is bounded by a timeout: the defects they guard against are
hangs and processes that live on after a kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import child_env, only_manifest, start_script, wait_for

# Minutes of native work: the C call never returns to the interpreter meanwhile,
# so a Python-level handler cannot run until long after every timeout here.
NATIVE_FOR_MINUTES = "hashlib.pbkdf2_hmac('sha256', b'x', b'y', 2_000_000_000)"


def _run(code: str, root: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script file (``multiprocessing`` workers import its main module)."""
    script = root.parent / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        env=child_env(root, OTEL_TRACKER_PROGRESS="off"),
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_hundreds_of_fork_pools_in_a_tracked_step_never_hang(root: Path) -> None:
    # Pool.__exit__ SIGTERMs its workers; one whose SIGTERM landed just before it
    # blocked in a semaphore waited forever when it kept the tracker's handler
    code = """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from otel_tracker import track_run

    def square(x):
        return x * x

    if __name__ == "__main__":
        fork = mp.get_context("fork")
        with track_run("pools", steps=["pools", "executors"]) as run:
            with run.step("pools") as step:
                for _ in range(400):
                    with fork.Pool(2) as pool:
                        assert pool.map(square, range(8)) == [x * x for x in range(8)]
                    step.advance()
            with run.step("executors") as step:
                for _ in range(40):
                    with ProcessPoolExecutor(2, mp_context=fork) as ex:
                        assert list(ex.map(square, range(8))) == [x * x for x in range(8)]
                    step.advance()
        print("done")
    """
    proc = _run(code, root, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "done"
    doc = only_manifest(root)
    assert doc["status"] == "completed"
    assert [s["progress"]["completed"] for s in doc["steps"]] == [400, 40]


def test_forked_workers_keep_the_default_action_of_sigterm(root: Path) -> None:
    # terminate() must kill a worker wherever it waits: a lock, a semaphore, a
    # select, or a long native call that never returns to the interpreter
    code = f"""
    import hashlib, json, multiprocessing as mp, select, signal, socket, sys

    def sigterm_caught(pid):
        with open(f"/proc/{{pid}}/status") as f:
            caught = next(l for l in f if l.startswith("SigCgt:")).split()[1]
        return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)

    def in_lock(ready, lock):
        ready.set(); lock.acquire()

    def in_semaphore(ready, sem):
        ready.set(); sem.acquire()

    def in_select(ready, sock):
        ready.set(); select.select([sock], [], [])

    def in_native(ready, _):
        ready.set(); {NATIVE_FOR_MINUTES}

    if __name__ == "__main__":
        from otel_tracker import track_run
        fork = mp.get_context("fork")
        held_lock, held_sem = fork.Lock(), fork.Semaphore(0)
        held_lock.acquire()
        a, b = socket.socketpair()
        results = {{}}
        with track_run("terminate", steps=["workers"]) as run, run.step("workers"):
            for target, arg in ((in_lock, held_lock), (in_semaphore, held_sem),
                                (in_select, a), (in_native, None)):
                ready = fork.Event()
                worker = fork.Process(target=target, args=(ready, arg))
                worker.start()
                ready.wait(30)
                caught = sigterm_caught(worker.pid)
                worker.terminate()
                worker.join(30)
                alive = worker.is_alive()
                if alive:
                    worker.kill(); worker.join()
                results[target.__name__] = [caught, alive, worker.exitcode]
        print(json.dumps(results))
    """
    proc = _run(code, root, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (caught, alive, exitcode) in results.items():
        assert (caught, alive, exitcode) == (False, False, -signal.SIGTERM), name
    assert only_manifest(root)["status"] == "completed"


def _main_thread_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_sigterm_ends_a_run_whose_main_thread_is_inside_a_long_native_call(
    root: Path,
) -> None:
    # a BLAS kernel or a C++ training loop holds the main thread for minutes: the
    # default action would kill at once, so the tracker must not make it wait
    proc = start_script(
        f"""
        import hashlib
        from otel_tracker import track_run
        with track_run("native", steps=["crunch"]) as run, run.step("crunch"):
            print("crunching", flush=True)
            {NATIVE_FOR_MINUTES}
        print("finished the native call")
        """,
        root,
        OTEL_TRACKER_PROGRESS="off",
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "crunching"
        at_print = _main_thread_cpu_s(proc.pid)
        # inside the native call: the main thread burns CPU and runs no bytecode
        wait_for(lambda: _main_thread_cpu_s(proc.pid) > at_print + 0.5, 60, "the native call")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == -signal.SIGTERM, err[-2000:]
    assert "finished the native call" not in out
    assert "watchdog" in err  # one line says why the run ended from another thread
    doc = only_manifest(root)
    assert (doc["status"], doc["signal"], doc["exit_code"]) == ("cancelled", "SIGTERM", 143)
    assert doc["steps"][0]["status"] == "failed"


def test_a_signal_to_a_child_never_wakes_the_parents_watchdog(root: Path) -> None:
    # the wakeup fd is the parent's: a child that kept it would make the parent's
    # watchdog think the parent was signalled and stuck
    code = """
    import os, signal, time
    from otel_tracker import track_run
    with track_run("children", steps=["fork"]) as run, run.step("fork"):
        for _ in range(50):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        time.sleep(3)  # longer than the watchdog's grace
    print("parent alive")
    """
    proc = _run(code, root, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "parent alive"
    assert "watchdog" not in proc.stderr
    assert only_manifest(root)["status"] == "completed"


def test_every_open_run_of_the_process_ends_cancelled_on_sigterm(root: Path) -> None:
    # a nested run and a run on a worker thread are records too: none may be left
    # `running` (read back as aborted) when the process is terminated
    proc = start_script(
        """
        import threading, time
        from otel_tracker import track_run

        started = threading.Event()

        def worker():
            with track_run("threaded", steps=["loop"]) as run, run.step("loop"):
                started.set()
                time.sleep(60)

        threading.Thread(target=worker, daemon=True).start()
        started.wait(30)
        with track_run("outer", steps=["a"]) as outer, outer.step("a"):
            with track_run("inner", steps=["b"]) as inner, inner.step("b"):
                print("ready", flush=True)
                time.sleep(60)
        """,
        root,
        OTEL_TRACKER_PROGRESS="off",
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGTERM
    docs = {d["name"]: d for d in (json.loads(p.read_text()) for p in root.glob("*/manifest.json"))}
    assert set(docs) == {"outer", "inner", "threaded"}
    for name, doc in docs.items():
        assert (doc["status"], doc["signal"], doc["exit_code"]) == (
            "cancelled",
            "SIGTERM",
            143,
        ), name
        assert all(s["status"] != "running" for s in doc["steps"]), name
