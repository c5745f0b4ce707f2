"""Runs one entry-point scenario in a process of its own: ``python -m
otel_tracker.perftest.worker SPEC_JSON``. Prints one JSON line per call
(``{"phase": "warmup"|"measure", "seconds": s, "items": n}``), timed here so that
pipes and the parent's scheduling never count; an exception is one
``{"error": ...}`` line and exit status 1. The parent kills it at the time budget.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import Any


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _items(result: Any) -> float | None:
    if isinstance(result, bool) or not isinstance(result, (int, float)):
        return None  # the function returned no item count
    return float(result) if result > 0 else None


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    sys.path.insert(0, spec["cwd"])
    module_name, _, attr = spec["entry"].partition(":")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        _emit({"error": f"cannot load entry {spec['entry']!r}: {type(exc).__name__}: {exc}"})
        return 1
    kwargs = spec.get("args") or {}
    phases = ["warmup"] * spec["warmup"] + ["measure"] * spec["repetitions"]
    for phase in phases:
        try:
            start = time.perf_counter()
            result = func(**kwargs)
            seconds = time.perf_counter() - start
        except Exception as exc:
            _emit({"error": f"{type(exc).__name__}: {exc}"})
            return 1
        _emit({"phase": phase, "seconds": seconds, "items": _items(result)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
