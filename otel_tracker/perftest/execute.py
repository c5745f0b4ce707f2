"""Runs one scenario as a tracked run: a "Warm-up" and a "Measure" step, each call
timed, the whole bounded by the scenario's time budget.

An entry point runs in a worker process of its own (``perftest.worker``), so an
over-budget call can be stopped; a command runs once per repetition. Either way
the run samples the process tree like any other run, and a child that tracks its
own steps joins it (trace context in its environment).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError
from .compare import scenario_scores
from .scenario import Scenario, Suite, resolve_command

STEPS = ("Warm-up", "Measure")
KILL_GRACE_S = 2.0


class ScenarioFailed(OtelTrackerError):
    """The scenario's code failed, or it ran past its time budget."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


@dataclass
class Outcome:
    """What one scenario did: its measured calls and the run that recorded them."""

    scenario: Scenario
    status: str = "ok"  # ok, failed or timeout
    seconds: list[float] = field(default_factory=list)
    items: list[float | None] = field(default_factory=list)
    run_id: str | None = None
    run_dir: Path | None = None
    error: str | None = None
    wall_s: float = 0.0
    # what the measured calls recorded through the tracker (entry scenarios that
    # assert on it): counters added during the measured calls, the gauges' last values
    counters: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _entry_calls(
    sc: Scenario, env: dict[str, str], python: str, deadline: float
) -> Iterator[dict[str, Any]]:
    spec = {
        "entry": sc.entry,
        "args": sc.args,
        "warmup": sc.warmup,
        "repetitions": sc.repetitions,
        "cwd": str(sc.cwd),
        "name": sc.name,
        # join the run only to judge what the code records (joining costs ~0.4 s)
        "join": bool(
            sc.checks.get("counters") or sc.checks.get("gauges") or sc.checks.get("series")
        ),
    }
    proc = subprocess.Popen(
        [python, "-m", "otel_tracker.perftest.worker", json.dumps(spec)],
        cwd=sc.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="otel-tracker-perf-worker", daemon=True).start()
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise ScenarioFailed(
                    f"ran past its time budget of {sc.time_budget_s:g} s", timeout=True
                ) from None
            if line is None:
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the function's own prints to stdout
            if not isinstance(record, dict):
                continue
            if "error" in record:
                raise ScenarioFailed(str(record["error"]))
            if "phase" in record or "begin" in record:
                yield record
        if proc.wait() != 0:
            raise ScenarioFailed(f"worker exited with status {proc.returncode}")
    finally:
        _stop(proc)


def _command_calls(
    sc: Scenario, env: dict[str, str], python: str, deadline: float
) -> Iterator[dict[str, Any]]:
    assert sc.command is not None
    argv = resolve_command(sc.command, python)
    for i, phase in enumerate(["warmup"] * sc.warmup + ["measure"] * sc.repetitions):
        if i == sc.warmup:
            yield {"begin": "measure"}
        left = deadline - time.monotonic()
        if left <= 0:
            raise ScenarioFailed(
                f"ran past its time budget of {sc.time_budget_s:g} s", timeout=True
            )
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, cwd=sc.cwd, env=env, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise ScenarioFailed(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        try:
            code = proc.wait(left)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise ScenarioFailed(
                f"ran past its time budget of {sc.time_budget_s:g} s", timeout=True
            ) from None
        seconds = time.perf_counter() - start
        if code != 0:
            raise ScenarioFailed(f"command exited with status {code}")
        yield {"phase": phase, "seconds": seconds, "items": None}


class Recorder:
    """Keeps the measured calls' share of a worker's counters and the gauges' last
    values, for the checks. The run records them already: the worker joined it, and
    a joined process's counters and gauges are in its part (``user_metrics``)."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.totals: dict[str, float] = {}
        self.at_measure: dict[str, float] = {}

    def begin_measure(self) -> None:
        self.at_measure = dict(self.totals)

    def call(self, record: dict[str, Any], measured: bool) -> None:
        counters, gauges = record.get("counters"), record.get("gauges")
        if isinstance(counters, dict):
            for name, total in counters.items():
                self.totals[name] = float(total)  # add_count(name, 0) records it too
        if isinstance(gauges, dict):
            for name, value in gauges.items():
                self.outcome.gauges[name] = float(value)
        if measured:
            self.outcome.counters = {
                name: total - self.at_measure.get(name, 0.0) for name, total in self.totals.items()
            }


Judge = Callable[[Outcome], Mapping[str, float]]


def run_scenario(
    sc: Scenario,
    suite: Suite,
    *,
    root: Path,
    deadline: float,
    python: str = sys.executable,
    run_options: dict[str, Any] | None = None,
    judge: Judge | None = None,
) -> Outcome:
    """Run ``sc`` as a tracked run named after the suite; never raises for the scenario's
    own failures (they are in the outcome and in the run's manifest). ``judge`` gives
    gauges to record on the run once its calls are measured (perf-test's verdict, so
    the metric mirrors carry it)."""
    from ..api import track_run
    from ..launch.command import child_environment

    outcome = Outcome(sc)
    started = time.monotonic()
    deadline = min(deadline, started + sc.time_budget_s)
    params = {
        "metric": sc.judged,
        "repetitions": sc.repetitions,
        "warmup": sc.warmup,
        "entry": sc.entry,
        "command": list(sc.command) if sc.command else None,
        "args": sc.args or None,
        "time_budget_s": sc.time_budget_s,
    }
    with track_run(
        suite.name,
        scenario=sc.name,
        kind="perf-test",
        steps=STEPS,
        params={k: v for k, v in params.items() if v is not None},
        root=root,
        **(run_options or {}),
    ) as run:
        outcome.run_id, outcome.run_dir = run.run_id, run.dir
        env = {**child_environment(run), **sc.env}
        calls = (_entry_calls if sc.entry else _command_calls)(sc, env, python, deadline)
        warm = run.step(STEPS[0]).start() if sc.warmup else None
        if warm is None:
            run.skip(STEPS[0], "warmup = 0")
        else:
            warm.set_total(sc.warmup, unit="calls")
        current, measure = warm, None
        recorder = Recorder(outcome)
        try:
            for call in calls:
                if call.get("begin") == "measure":
                    recorder.begin_measure()
                    if warm is not None:
                        warm.end()
                    # progress counts calls (known ahead, so the ETA works); items go to scores
                    current = measure = run.step(STEPS[1]).start()
                    measure.set_total(sc.repetitions, unit="calls")
                    continue
                measured = call["phase"] == "measure" and measure is not None
                recorder.call(call, measured)
                if not measured:
                    if warm is not None:
                        warm.advance()
                    continue
                outcome.seconds.append(float(call["seconds"]))
                outcome.items.append(call.get("items") or sc.items)
                measure.advance()
            if current is not None:
                current.end()
            scores, directions = scenario_scores(sc, outcome.seconds, outcome.items)
            if scores:
                run.log_scores(scores, direction=directions)
            for name, value in (judge(outcome) if judge else {}).items():
                run.set_gauge(name, value)
        except ScenarioFailed as exc:
            outcome.status = "timeout" if exc.timeout else "failed"
            outcome.error = str(exc)
            if current is not None:
                current.end(exc)
            run.end(exc)
    outcome.wall_s = time.monotonic() - started
    return outcome
