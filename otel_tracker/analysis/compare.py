"""Runs side by side: the params that differ, each series' figures, each step's
duration and resource figures, and the run's (``otel-tracker compare``)."""

from __future__ import annotations

from typing import Any

from ..printable import printable
from ..timeparse import format_duration
from ..values import is_real
from .figures import Figures, run_figures, step_figures
from .findings import format_number
from .series import source_text

SERIES_FIGURES = ("last", "best", "min", "max")
RESOURCE_FIGURES = {
    "cpu_mean": "cpu mean",
    "memory_max_bytes": "memory max",
    "gpu_mean": "gpu mean",
}
MAX_ROWS = 200  # per section: a comparison of hostile runs stays a page


def compare(views: list[Any]) -> dict[str, Any]:
    """The comparison of loaded runs (``RunView``), as plain data (``--format json``)."""
    docs = [v.doc for v in views]
    params = [_flat(d.get("params")) for d in docs]
    names = sorted({k for p in params for k in p})
    differ = {
        k: [p.get(k) for p in params] for k in names if len({_key(p.get(k)) for p in params}) > 1
    }
    same = {k: params[0].get(k) for k in names if k not in differ}
    series_keys = sorted({k for d in docs for k in ((d.get("metrics") or {}).get("keys") or {})})
    metrics = {key: [_series(d, key) for d in docs] for key in series_keys[:MAX_ROWS]}
    step_names: list[str] = []
    for d in docs:
        for s in d.get("steps") or ():
            if (
                isinstance(s, dict)
                and isinstance(s.get("name"), str)
                and s["name"] not in step_names
            ):
                step_names.append(s["name"])
    steps = {name: [_step_duration(d, name) for d in docs] for name in step_names[:MAX_ROWS]}
    step_resources = {
        name: [_step_resources(d, name) for d in docs] for name in step_names[:MAX_ROWS]
    }
    return {
        "runs": [
            {
                "run_id": v.run_id,
                "name": v.doc.get("name"),
                "scenario": v.doc.get("scenario"),
                "status": v.status,
                "started_at": v.doc.get("started_at"),
                "duration_s": v.doc.get("duration_s"),
            }
            for v in views
        ],
        "params_differ": differ,
        "params_same": same,
        "metrics": metrics,
        "steps": steps,
        "step_resources": step_resources,
        "resources": [_resources(run_figures(d)) for d in docs],
    }


def rows(comparison: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(section label, one cell per run) rows for the text and Markdown tables."""
    out: list[tuple[str, list[str]]] = []
    runs = comparison["runs"]
    out.append(("name", [printable(r["name"]) for r in runs]))
    out.append(("status", [r["status"] for r in runs]))
    out.append(("duration", [_duration(r["duration_s"]) for r in runs]))
    for key, values in list(comparison["params_differ"].items())[:MAX_ROWS]:
        out.append((f"params.{key}", [_value(v) for v in values]))
    for key, per_run in comparison["metrics"].items():
        # a key read from TensorBoard or W&B files says so: "loss (TensorBoard)"
        tools = sorted(
            {
                source_text(s["source"]).split(" ")[0]
                for s in per_run
                if s and isinstance(s.get("source"), str)
            }
        )
        named = f"{key} ({', '.join(tools)})" if tools else key
        for figure in SERIES_FIGURES:
            cells = [_number((s or {}).get(figure)) for s in per_run]
            if figure == "best" and all(c == "-" for c in cells):
                continue  # no direction declared anywhere: no best
            out.append((f"{key}.{figure}" if figure != "last" else named, cells))
    for name, durations in comparison["steps"].items():
        out.append((f"step {name}", [_duration(d) for d in durations]))
        out += _resource_rows(comparison["step_resources"].get(name) or [], f"step {name} ")
    out += _resource_rows(comparison["resources"], "")
    return [(printable(label), cells) for label, cells in out]


def _flat(params: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(params, dict):
        return out
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def _key(value: Any) -> str:
    return repr(value)


def _series(doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    series = ((doc.get("metrics") or {}).get("keys") or {}).get(key)
    if not isinstance(series, dict):
        return None
    return {
        f: series.get(f) for f in (*SERIES_FIGURES, "count", "direction", "last_step", "source")
    }


def _step_duration(doc: dict[str, Any], name: str) -> float | None:
    durations = [
        s.get("duration_s")
        for s in doc.get("steps") or ()
        if isinstance(s, dict) and s.get("name") == name and is_real(s.get("duration_s"))
    ]
    return sum(durations) if durations else None


def _resource_rows(per_run: list[dict[str, Any]], prefix: str) -> list[tuple[str, list[str]]]:
    out = []
    for figure, label in RESOURCE_FIGURES.items():
        cells = [_resource_cell((r or {}).get(figure), figure) for r in per_run]
        if any(c != "-" for c in cells):
            out.append((prefix + label, cells))
    return out


def _step_resources(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The resource figures of the step's last attempt (a retried name counts once)."""
    found = [s for s in doc.get("steps") or () if isinstance(s, dict) and s.get("name") == name]
    return _resources(step_figures(found[-1])) if found else None


def _resources(figures: Figures) -> dict[str, Any]:
    memory = figures.pss_bytes or figures.rss_bytes
    gpu = [g.utilization.mean for g in figures.gpus if g.utilization is not None]
    return {
        "cpu_mean": figures.cpu_utilization.mean if figures.cpu_utilization else None,
        "memory_max_bytes": memory.max if memory else None,
        "gpu_mean": sum(gpu) / len(gpu) if gpu else None,
    }


def _number(value: Any) -> str:
    return format_number(value) if is_real(value) else "-"


def _duration(value: Any) -> str:
    return format_duration(value) if is_real(value) else "-"


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return format_number(value) if is_real(value) else printable(str(value))[:80]


def _resource_cell(value: Any, figure: str) -> str:
    if not is_real(value):
        return "-"
    if figure == "memory_max_bytes":
        return f"{value / 2**30:.2f} GiB"
    return f"{value:.0%}"
