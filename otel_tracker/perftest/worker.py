"""Runs one entry-point scenario in a process of its own: ``python -m
otel_tracker.perftest.worker SPEC_JSON``. Prints one JSON line per call
(``{"phase": "warmup"|"measure", "seconds": s, "items": n}``, and
``{"begin": "measure"}`` before the first measured one), timed here so that
pipes and the parent's scheduling never count; an exception is one
``{"error": ...}`` line and exit status 1. The parent kills it at the time budget.

When the scenario asserts on what its code records (``counters``, ``gauges``,
``series``), the worker joins the scenario's run (``track_run`` finds it in the
environment), so ``otel_tracker.current_run()`` in the measured function is that
run: its ``run.log()`` series go to the run's part file like any joined child's.
A joined run keeps ``add_count``/``set_gauge`` values but nothing samples them (the
launcher samples the tree), so each call's line carries the running totals and
latest gauges (``"counters"``, ``"gauges"``) for the parent to record and judge.
Joining costs the worker the OpenTelemetry SDK's import (about 0.4 s, before any
call), so a scenario that judges nothing recorded does not join.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
from contextlib import ExitStack
from typing import Any


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _items(result: Any) -> float | None:
    if isinstance(result, bool) or not isinstance(result, (int, float)):
        return None  # the function returned no item count
    return float(result) if result > 0 else None


def _exit_with_parent(parent: int, interval: float = 1.0) -> None:
    # a perf-test killed outright (SIGKILL, or SIGTERM's default action after its run
    # is finalized) must not leave a 10-minute benchmark call running behind it
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            os._exit(1)


def _join(stack: ExitStack, name: str) -> Any:
    """The scenario's run, joined (None if this process cannot join it)."""
    from otel_tracker import track_run

    run = stack.enter_context(track_run(name, progress="off"))
    return run if getattr(run, "join", None) is not None else None


def _recorded(run: Any) -> dict[str, Any]:
    # what run.add_count/set_gauge hold so far (the part's user_metrics when it ends):
    # sent after each call, so the parent can judge the measured calls' share
    metrics = getattr(getattr(run, "telemetry", None), "user_metrics", None)
    return (metrics.snapshot() if metrics is not None else None) or {}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()
    sys.path.insert(0, spec["cwd"])
    with ExitStack() as stack:
        run = _join(stack, spec.get("name") or "scenario") if spec.get("join") else None
        return _calls(spec, run)


def _calls(spec: dict[str, Any], run: Any) -> int:
    module_name, _, attr = spec["entry"].partition(":")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        _emit({"error": f"cannot load entry {spec['entry']!r}: {type(exc).__name__}: {exc}"})
        return 1
    kwargs = spec.get("args") or {}
    phases = ["warmup"] * spec["warmup"] + ["measure"] * spec["repetitions"]
    for i, phase in enumerate(phases):
        if phase == "measure" and (i == 0 or phases[i - 1] != "measure"):
            _emit({"begin": "measure"})  # before the call: a stuck first call is in Measure
        try:
            start = time.perf_counter()
            result = func(**kwargs)
            seconds = time.perf_counter() - start
        except Exception as exc:
            _emit({"error": f"{type(exc).__name__}: {exc}"})
            return 1
        record = {"phase": phase, "seconds": seconds, "items": _items(result)}
        _emit({**record, **_recorded(run)} if run is not None else record)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
