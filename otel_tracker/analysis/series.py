"""Metric series in reports: one line per key, its figures and a sparkline of its curve."""

from __future__ import annotations

from typing import Any

from ..values import is_real
from .findings import format_number

SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 32
MAX_KEYS_SHOWN = 50  # a listing of a hostile or enormous run stays readable


def sparkline(values: list[Any]) -> str:
    """``▇▅▄▃▂▂▁▁``: each value's height between the curve's min and max (a gap for a
    NaN or infinite one)."""
    if len(values) > SPARK_WIDTH:  # every n-th point, the last one included
        stride = len(values) / SPARK_WIDTH
        values = [
            values[min(len(values) - 1, round((i + 1) * stride) - 1)] for i in range(SPARK_WIDTH)
        ]
    numbers = [v for v in values if is_real(v)]
    if not numbers:
        return ""
    low, high = min(numbers), max(numbers)
    span = high - low
    out = []
    for value in values:
        if not is_real(value):
            out.append(" ")
        elif span <= 0:
            out.append(SPARKS[len(SPARKS) // 2])
        else:
            out.append(SPARKS[min(len(SPARKS) - 1, int((value - low) / span * len(SPARKS)))])
    return "".join(out)


def metric_rows(metrics: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``("metric loss", "▇▅▃▂▁ last 0.01, min 0.01, max 1, best 0.01 at step 99 ...")``."""
    keys = (metrics or {}).get("keys") or {}
    rows = []
    for name, series in list(keys.items())[:MAX_KEYS_SHOWN]:
        # every field may be missing from an older or damaged file (types are checked)
        curve = [
            p[1] if isinstance(p, list) and len(p) == 2 else None for p in series.get("curve") or ()
        ]
        figures = [f"last {format_number(series.get('last'))}"]
        figures.append(f"min {format_number(series.get('min'))}")
        figures.append(f"max {format_number(series.get('max'))}")
        if series.get("direction") and series.get("best") is not None:
            at = "" if series.get("best_step") is None else f" at step {series['best_step']}"
            figures.append(f"best {format_number(series['best'])}{at} ({series['direction']})")
        count = series.get("count") or 0
        details = [_step_range(series.get("first_step"), series.get("last_step"))]
        details.append(f"{count:,} point{'s' if count != 1 else ''}")
        if series.get("nonfinite"):
            details[-1] += f", {series['nonfinite']:,} NaN/inf"
        if isinstance(series.get("source"), str):
            details.append(f"from {source_text(series['source'])}")
        line = " ".join(part for part in (sparkline(curve), ", ".join(figures)) if part)
        rows.append((f"metric {name}", f"{line} ({', '.join(details)})"))
    if len(keys) > MAX_KEYS_SHOWN:
        rows.append(("metrics", f"{len(keys) - MAX_KEYS_SHOWN:,} more keys not shown"))
    if (metrics or {}).get("dropped"):
        rows.append(("metrics dropped", f"{metrics['dropped']:,} points (logged too fast)"))  # type: ignore[index]
    return rows


def user_metric_rows(recorded: Any) -> list[tuple[str, str]]:
    """``("counter episodes", "120")``, ``("gauge fps", "30")``: what ``run.add_count``
    and ``run.set_gauge`` recorded, over every process of the run."""
    rows: list[tuple[str, str]] = []
    if not isinstance(recorded, dict):
        return rows
    for kind, label in (("counters", "counter"), ("gauges", "gauge")):
        values = recorded.get(kind)
        if isinstance(values, dict):
            for name, value in list(sorted(values.items()))[:MAX_KEYS_SHOWN]:
                rows.append((f"{label} {name}", format_number(value)))
    return rows


TOOLS = {"tensorboard": "TensorBoard", "wandb": "W&B"}


def source_text(source: str) -> str:
    """``tensorboard:runs/exp1`` -> ``TensorBoard runs/exp1``: where an imported key came from."""
    tool, _, where = source.partition(":")
    return f"{TOOLS.get(tool, tool)} {where}".strip()


def _step_range(first: Any, last: Any) -> str:
    """``steps 0..99``; a series logged with falling steps reads ``steps 10 down to -6``."""
    if is_real(first) and is_real(last) and last < first:
        return f"steps {first} down to {last}"
    return f"steps {first}..{last}"
