"""Scenario files for ``otel-tracker perf-test``, in TOML or YAML.

```toml
name = "imitation-smoke"     # the suite: each scenario is a run of this name
tolerance = 0.25              # optional: worse than the baseline by this much = regression
time_budget = 300             # optional: seconds for the whole suite

[[scenarios]]
name = "rollouts"
entry = "mypkg.bench:rollouts"  # a function, called once per repetition; it may return
                                # the number of items it processed   ... or instead:
# command = ["{python}", "bench.py"]   # run once per repetition
args = { episodes = 20 }        # optional: keyword arguments of the function
items = 4000                    # optional: items per repetition (when it returns none)
unit = "env steps"              # optional: what an item is
repetitions = 5                 # measured calls
warmup = 1                      # calls before measuring, not counted
time_budget = 60                # seconds for this scenario (warm-up included)
metric = "throughput"           # or "latency"
percentile = 50                 # the judged statistic: 50 (median), 95 or 99; or "mean"
thresholds = { latency_p95_ms = { warn = 350, critical = 800 } }   # optional; or a band:
# thresholds = { latency_p95_ms = { min = 35, max = 60 } }     # outside it fails
counters = { deadline_exceeded_total = { max = 0 } }  # optional (entry only): run.add_count
gauges = { fps = { min = 30 } }                       # optional (entry only): run.set_gauge
series = { loss = { max = 0.5 } }                     # optional: run.log, its last value
env = { OMP_NUM_THREADS = "1" } # optional
cwd = "."                       # optional, relative to this file (also on sys.path)
```

Metric names: ``throughput_<stat>`` (items per second, higher is better) and
``latency_<stat>_ms`` (milliseconds per repetition, lower is better), where
``<stat>`` is ``mean``, ``p50``, ``p95``, ``p99``, ``min`` or ``max``. Limits and
checks: :mod:`otel_tracker.perftest.limits`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..launch.pipeline_file import (
    PYTHON_PLACEHOLDER,
    PipelineError,
    _command,
    _env,
    _known_keys,
    _seconds,
    _text,
    read_settings_file,
)
from .limits import Band, Threshold, parse_checks, parse_threshold

__all__ = ["Band", "Scenario", "ScenarioError", "Suite", "Threshold", "load_suite"]

SUITE_KEYS = ("name", "description", "tolerance", "time_budget", "env", "cwd", "scenarios")
SCENARIO_KEYS = (
    "name",
    "description",
    "entry",
    "command",
    "args",
    "items",
    "unit",
    "repetitions",
    "warmup",
    "time_budget",
    "metric",
    "percentile",
    "thresholds",
    "counters",
    "gauges",
    "series",
    "env",
    "cwd",
)
METRIC_NAME = re.compile(
    r"^(throughput_(mean|p50|p95|p99|min|max)|latency_(mean|p50|p95|p99|min|max)_ms)$"
)
ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
DEFAULT_SCENARIO_BUDGET_S = 120.0
DEFAULT_SUITE_BUDGET_S = 540.0  # the default suite must end well under 10 minutes


class ScenarioError(PipelineError):
    """A scenario file that cannot be run as written."""


@dataclass(frozen=True)
class Scenario:
    """One benchmark: what to call, how often, and how to judge it."""

    name: str
    entry: str | None
    command: tuple[str, ...] | None
    args: dict[str, Any]
    items: float | None
    unit: str
    repetitions: int
    warmup: int
    time_budget_s: float
    metric: str  # "throughput" or "latency"
    statistic: str  # mean, p50, p95 or p99
    thresholds: dict[str, Threshold]
    env: dict[str, str]
    cwd: Path
    description: str | None = None
    # "counters" / "gauges" / "series" -> name -> band (perftest.limits)
    checks: dict[str, dict[str, Band]] = field(default_factory=dict)

    @property
    def judged(self) -> str:
        """The metric compared with the baseline, e.g. ``throughput_p50``."""
        if self.metric == "throughput":
            return f"throughput_{self.statistic}"
        return f"latency_{self.statistic}_ms"


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    scenarios: tuple[Scenario, ...]
    tolerance: float | None = None
    time_budget_s: float = DEFAULT_SUITE_BUDGET_S
    description: str | None = None


def higher_is_better(metric: str) -> bool:
    return metric.startswith("throughput_")


def load_suite(path: str | Path) -> Suite:
    """Read and validate a scenario file; every mistake names the file and the key."""
    path = Path(path)
    data = read_settings_file(path, "scenario file", ScenarioError)
    try:
        return _suite(path, data)
    except ScenarioError:
        raise
    except PipelineError as exc:  # from the key checks shared with pipeline files
        raise ScenarioError(str(exc)) from None


def _fail(path: Path, message: str) -> ScenarioError:
    return ScenarioError(f"{path}: {message}")


def _count(path: Path, where: str, raw: Mapping[str, Any], key: str, default: int, low: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(path, f"{where}.{key} must be a whole number >= {low}, got {value!r}")
    return value


def _fraction(path: Path, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise _fail(path, f"'{key}' must be a number between 0 and 1 (0.25 = 25%), got {value!r}")
    return float(value)


def _thresholds(path: Path, where: str, raw: Any) -> dict[str, Threshold]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _fail(
            path,
            f"{where}.thresholds must be a table of metric = {{ warn, critical }} or {{ min, max }}",
        )
    out = {}
    for metric, levels in raw.items():
        if not METRIC_NAME.match(str(metric)):
            raise _fail(
                path,
                f"{where}.thresholds: unknown metric {metric!r} "
                "(throughput_<stat> or latency_<stat>_ms; stat: mean, p50, p95, p99, min, max)",
            )
        out[str(metric)] = parse_threshold(path, f"{where}.thresholds.{metric}", levels)
    return out


def _scenario(path: Path, i: int, raw: Any, base_cwd: Path, base_env: dict[str, str]) -> Scenario:
    if not isinstance(raw, Mapping):
        raise _fail(path, f"scenarios[{i}] must be a table with a name and an entry or command")
    name = _text(path, f"scenarios[{i}].name", raw.get("name"), required=True)
    where = f"scenarios[{i}] ({name!r})"
    _known_keys(path, where, raw, SCENARIO_KEYS)
    entry, command = raw.get("entry"), raw.get("command")
    if (entry is None) == (command is None):
        raise _fail(path, f"{where}: give exactly one of 'entry' (module:function) or 'command'")
    if entry is not None and (not isinstance(entry, str) or not ENTRY.match(entry)):
        raise _fail(path, f"{where}.entry must look like 'package.module:function', got {entry!r}")
    args = raw.get("args") or {}
    if not isinstance(args, Mapping) or (args and command is not None):
        raise _fail(path, f"{where}.args must be a table, and only goes with 'entry'")
    items = raw.get("items")
    if items is not None and (
        isinstance(items, bool) or not isinstance(items, (int, float)) or items <= 0
    ):
        raise _fail(path, f"{where}.items must be a positive number, got {items!r}")
    metric = raw.get("metric", "throughput")
    if metric not in ("throughput", "latency"):
        raise _fail(path, f"{where}.metric must be 'throughput' or 'latency', got {metric!r}")
    percentile = raw.get("percentile", 50)
    statistic = {50: "p50", 95: "p95", 99: "p99", "mean": "mean"}.get(percentile)
    if statistic is None or isinstance(percentile, bool):
        raise _fail(path, f'{where}.percentile must be 50, 95, 99 or "mean", got {percentile!r}')
    budget = _seconds(path, where, "time_budget", raw) or DEFAULT_SCENARIO_BUDGET_S
    cwd = (base_cwd / _text(path, f"{where}.cwd", raw.get("cwd"), default=".")).resolve()
    return Scenario(
        name=name,
        entry=entry,
        command=_command(path, where, command) if command is not None else None,
        args=dict(args),
        items=None if items is None else float(items),
        unit=_text(path, f"{where}.unit", raw.get("unit"), default="items"),
        repetitions=_count(path, where, raw, "repetitions", 5, 1),
        warmup=_count(path, where, raw, "warmup", 1, 0),
        time_budget_s=budget,
        metric=metric,
        statistic=statistic,
        thresholds=_thresholds(path, where, raw.get("thresholds")),
        env={**base_env, **_env(path, f"{where}.env", raw.get("env"))},
        cwd=cwd,
        description=_text(path, f"{where}.description", raw.get("description")),
        checks=parse_checks(path, where, raw, command=command is not None),
    )


def _suite(path: Path, data: Any) -> Suite:
    if not isinstance(data, Mapping):
        raise _fail(path, "expected a table of suite settings at the top")
    _known_keys(path, "the suite", data, SUITE_KEYS)
    name = _text(path, "name", data.get("name"), required=True)
    base_cwd = path.parent.resolve() / _text(path, "cwd", data.get("cwd"), default=".")
    base_env = _env(path, "env", data.get("env"))
    raw = data.get("scenarios")
    if not isinstance(raw, list) or not raw:
        raise _fail(path, "'scenarios' must be a non-empty list of scenarios")
    scenarios = [_scenario(path, i, r, base_cwd, base_env) for i, r in enumerate(raw)]
    names = [s.name for s in scenarios]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise _fail(path, f"scenario name {duplicate!r} appears twice")
    return Suite(
        name=name,
        path=path,
        scenarios=tuple(scenarios),
        tolerance=_fraction(path, "tolerance", data.get("tolerance")),
        time_budget_s=_seconds(path, "the suite", "time_budget", data) or DEFAULT_SUITE_BUDGET_S,
        description=_text(path, "description", data.get("description")),
    )


def resolve_command(command: tuple[str, ...], python: str) -> list[str]:
    """The command with ``{python}`` standing for the interpreter running otel-tracker."""
    return [python if part == PYTHON_PLACEHOLDER else part for part in command]
