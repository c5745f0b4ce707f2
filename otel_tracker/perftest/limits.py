"""What a scenario asserts, and the level each assertion comes out at.

Two shapes of limit, both TOML tables:

- **levels**: ``{ warn = 350, critical = 800 }``: ceilings for a latency, floors for
  a throughput; ``critical`` fails the invocation, ``warn`` is reported only;
- **bands**: ``{ min = 35, max = 60 }`` (either side may be left out): a value
  inside, bounds included, is ``ok``; outside it is ``below-band`` or ``above-band``,
  and fails the invocation.

``thresholds`` (on the timing metrics) take either shape, never both in one table;
``counters``, ``gauges`` and ``series`` (what the measured code recorded through the
tracker) take bands.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..launch.pipeline_file import PipelineError

# the tracker's own rule for run.add_count / run.set_gauge names (record/telemetry.py)
RECORDED_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,62}$")
RECORDED_KINDS = ("counters", "gauges", "series")
KIND_WORD = {"counters": "counter", "gauges": "gauge", "series": "series"}

# every level a threshold or a check can come out at, least to most severe; the
# scenario's level is the worst of them
LEVELS = ("ok", "no-data", "warn", "below-band", "above-band", "not-recorded", "critical")
FAILING_LEVELS = frozenset({"below-band", "above-band", "not-recorded", "critical"})


@dataclass(frozen=True)
class Threshold:
    """warn/critical levels, or (``min``/``max``) a band: never both."""

    warn: float | None
    critical: float | None
    min: float | None = None
    max: float | None = None

    @property
    def is_band(self) -> bool:
        return self.min is not None or self.max is not None


@dataclass(frozen=True)
class Band:
    """Inclusive bounds on a recorded value; a missing side is open."""

    min: float | None
    max: float | None


def worst(levels: Any) -> str:
    return max(levels, default="ok", key=LEVELS.index)


def band_level(value: float, band: Threshold | Band) -> str:
    if band.min is not None and value < band.min:
        return "below-band"
    if band.max is not None and value > band.max:
        return "above-band"
    return "ok"


def band_text(band: Threshold | Band) -> str:
    """``35..60``, ``>= 30`` or ``<= 0``: for messages."""
    from ..analysis.findings import format_number as num

    if band.min is not None and band.max is not None:
        return f"{num(band.min)}..{num(band.max)}"
    return f">= {num(band.min)}" if band.min is not None else f"<= {num(band.max)}"


class LimitError(PipelineError):
    """A threshold or a check that cannot be judged as written."""


def _number(path: Path, where: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LimitError(f"{path}: {where} must be a number, got {value!r}")
    return float(value)


def _table(path: Path, where: str, raw: Any, keys: tuple[str, ...], what: str) -> dict[str, float]:
    if not isinstance(raw, Mapping) or not raw:
        raise LimitError(f"{path}: {where} must be a table with {what}")
    unknown = [str(k) for k in raw if k not in keys]
    if unknown:
        raise LimitError(f"{path}: {where}: unknown key {unknown[0]!r} (known: {', '.join(keys)})")
    return {k: v for k in keys if (v := _number(path, f"{where}.{k}", raw.get(k))) is not None}


def _band(path: Path, where: str, values: Mapping[str, float]) -> tuple[float | None, float | None]:
    low, high = values.get("min"), values.get("max")
    if low is not None and high is not None and low > high:
        raise LimitError(f"{path}: {where}: min ({low:g}) is above max ({high:g})")
    return low, high


def parse_threshold(path: Path, where: str, raw: Any) -> Threshold:
    """``{ warn, critical }`` or ``{ min, max }`` for one timing metric."""
    values = _table(
        path,
        where,
        raw,
        ("warn", "critical", "min", "max"),
        "warn and/or critical, or min and/or max",
    )
    if not values:
        raise LimitError(f"{path}: {where} must be a table with warn and/or critical, or min/max")
    if ({"warn", "critical"} & set(values)) and ({"min", "max"} & set(values)):
        raise LimitError(f"{path}: {where}: give warn/critical levels or a min/max band, not both")
    low, high = _band(path, where, values)
    return Threshold(values.get("warn"), values.get("critical"), low, high)


def parse_checks(
    path: Path, where: str, raw: Mapping[str, Any], command: bool
) -> dict[str, dict[str, Band]]:
    """``counters``, ``gauges`` and ``series`` of one scenario: name -> band."""
    out: dict[str, dict[str, Band]] = {}
    for kind in RECORDED_KINDS:
        table = raw.get(kind)
        if table is None:
            continue
        if not isinstance(table, Mapping) or not table:
            raise LimitError(f"{path}: {where}.{kind} must be a table of name = {{ min, max }}")
        if command and kind != "series":
            raise LimitError(
                f"{path}: {where}.{kind} goes with 'entry' only: a command's "
                "run.add_count()/set_gauge() are not kept by the run it joins "
                "(its run.log() series are: assert on 'series')"
            )
        bands = {}
        for name, limits in table.items():
            name = str(name)
            if kind != "series" and not RECORDED_NAME.match(name):
                raise LimitError(
                    f"{path}: {where}.{kind}: {name!r} can never be recorded (names are "
                    "lower-case letters, digits, '_' and '.', up to 63 characters)"
                )
            if not name:
                raise LimitError(f"{path}: {where}.{kind}: a name must not be empty")
            values = _table(
                path, f"{where}.{kind}.{name}", limits, ("min", "max"), "min and/or max"
            )
            if not values:
                raise LimitError(f"{path}: {where}.{kind}.{name} needs min and/or max")
            bands[name] = Band(*_band(path, f"{where}.{kind}.{name}", values))
        out[kind] = bands
    return out


def judge_recorded(
    checks: Mapping[str, Mapping[str, Band]],
    recorded: Mapping[str, Mapping[str, float | None]] | None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each check's value, band and level. ``recorded`` is None when the scenario
    did not run to its end (every check is then ``no-data``). A counter never
    recorded is 0 (``max = 0`` holds); a gauge or series never recorded is
    ``not-recorded``, as is a counter whose band excludes 0."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, bands in checks.items():
        found = (recorded or {}).get(kind) or {}
        judged = {}
        for name, band in bands.items():
            value = found.get(name)
            entry: dict[str, Any] = {"value": value, "min": band.min, "max": band.max}
            if recorded is None:
                entry["level"] = "no-data"
            elif value is None and kind == "counters":
                entry["value"] = 0.0
                entry["note"] = "never recorded: counted as 0"
                level = band_level(0.0, band)
                entry["level"] = "ok" if level == "ok" else "not-recorded"
            elif value is None:
                entry["level"] = "not-recorded"
                entry["note"] = "never recorded" if kind == "gauges" else "never logged"
            else:
                entry["level"] = band_level(value, band)
            judged[name] = entry
        out[kind] = judged
    return out
