"""A perf-test invocation's results and the files it writes:
``perf_test_results.json``, ``<scenario>_metrics.json``, ``summary.csv``,
``report.md`` and ``environment.json``."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
from pathlib import Path
from typing import Any

from ..analysis.rules import Recommendation
from ..contract.atomic import write_text_atomic
from ..contract.paths import slugify
from .compare import RESULTS_KIND, flat_metrics, judge, scenario_metrics, threshold_level
from .execute import Outcome

RESULTS_VERSION = 1
FAILING_VERDICTS = ("regression",)


def _regression(
    result: dict[str, Any], measure: dict[str, Any] | None, cpu_count: int | None
) -> Recommendation:
    """The finding for a scenario worse than its baseline, with what its CPU did."""
    from ..analysis.figures import step_figures
    from ..analysis.rulebase import Thresholds, cpu_diagnosis

    state, action = "", "compare the code and machine with the baseline's runs"
    if measure is not None:
        state, action = cpu_diagnosis(step_figures(measure), cpu_count, Thresholds())
    better = "higher" if result["metric"].startswith("throughput") else "lower"
    return Recommendation(
        id="perf-regression",
        severity="critical" if result["change"] >= 2 * result["tolerance"] else "warning",
        step=None,
        detected=(
            f"{result['name']}: {result['metric']} {_num(result['value'])} vs baseline "
            f"{_num(result['baseline']['value'])} ({result['change'] * 100:.0f}% worse; "
            f"{better} is better){state}"
        ),
        why=f"worse than the baseline by at least the tolerance ({result['tolerance'] * 100:.0f}%)",
        action=action,
        evidence={
            "value": result["value"],
            "baseline": result["baseline"]["value"],
            "change": result["change"],
            "tolerance": result["tolerance"],
        },
    )


def scenario_result(
    outcome: Outcome,
    suite: str,
    expected: tuple[float, str] | None,
    tolerance: float,
    analysis: dict[str, Any] | None,
    doc: dict[str, Any] | None,
) -> dict[str, Any]:
    """Everything known about one scenario, as plain data."""
    sc = outcome.scenario
    metrics = scenario_metrics(sc, outcome.seconds, outcome.items)
    flat = flat_metrics(metrics)
    value = flat.get(sc.judged)
    verdict, change = "no-baseline", None
    if outcome.status != "ok" or value is None:
        verdict = outcome.status if outcome.status != "ok" else "no-data"
    elif expected is not None:
        verdict, change = judge(value, expected[0], sc.judged, tolerance)
    levels = {}
    for metric, threshold in sc.thresholds.items():
        v = flat.get(metric)
        levels[metric] = {
            "value": v,
            "warn": threshold.warn,
            "critical": threshold.critical,
            "level": "no-data" if v is None else threshold_level(v, metric, threshold),
        }
    worst = max(
        (lv["level"] for lv in levels.values()),
        default="ok",
        key=("ok", "no-data", "warn", "critical").index,
    )
    result = {
        "suite": suite,
        "name": sc.name,
        "status": outcome.status,
        "error": outcome.error,
        "metric": sc.judged,
        "value": value,
        "unit": "ms" if sc.metric == "latency" else metrics.get("throughput_unit"),
        "baseline": None if expected is None else {"value": expected[0], "source": expected[1]},
        "verdict": verdict,
        "change": None if change is None else round(change, 4),
        "tolerance": tolerance,
        "thresholds": levels,
        "level": worst,
        "metrics": metrics,
        "metrics_flat": flat,
        "run_id": outcome.run_id,
        "run_dir": str(outcome.run_dir) if outcome.run_dir else None,
        "wall_s": round(outcome.wall_s, 3),
        # the scenario's verdict below supersedes the run's own per-step baseline finding
        "recommendations": [
            f
            for f in (analysis or {}).get("recommendations", [])
            if f["id"] != "throughput-below-baseline"
        ],
    }
    if verdict == "regression":
        measure = next(
            (s for s in (doc or {}).get("steps", []) if s.get("name") == "Measure"), None
        )
        cpus = ((doc or {}).get("environment") or {}).get("cpu_count")
        result["recommendations"].insert(0, _regression(result, measure, cpus).to_dict())
    return result


def failed(result: dict[str, Any]) -> bool:
    """Does this scenario make the invocation fail (exit status 1)?"""
    return (
        result["status"] != "ok"
        or result["verdict"] in FAILING_VERDICTS
        or result["level"] == "critical"
    )


def environment() -> dict[str, Any]:
    """What the numbers depend on: Python, OS, CPU, GPUs, package versions."""
    from ..environment import collect_environment

    env = collect_environment(Path.cwd(), environ={})
    env.pop("env", None)
    env["cpu_model"] = _cpu_model()
    env["gpus"] = _gpus()
    return env


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _gpus() -> list[dict[str, Any]] | str:
    try:
        import pynvml
    except ImportError:
        return "none detected (nvidia-ml-py not installed: pip install 'otel-tracker[gpu]')"
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return f"none detected (NVML: {exc})"
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            gpus.append(
                {
                    "index": i,
                    "name": name.decode() if isinstance(name, bytes) else name,
                    "memory_bytes": memory,
                }
            )
        return gpus
    except Exception as exc:
        return f"NVML query failed: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


CSV_COLUMNS = (
    "suite",
    "scenario",
    "status",
    "metric",
    "value",
    "unit",
    "baseline",
    "change_pct",
    "verdict",
    "level",
    "mean",
    "p50",
    "p95",
    "min",
    "max",
    "samples",
    "run_id",
)


def _csv(results: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        kind = "latency_ms" if r["metric"].startswith("latency") else "throughput"
        stats = (r["metrics"] or {}).get(kind) or {}
        writer.writerow(
            [
                r["suite"],
                r["name"],
                r["status"],
                r["metric"],
                r["value"],
                r["unit"],
                (r["baseline"] or {}).get("value"),
                None if r["change"] is None else round(r["change"] * 100, 2),
                r["verdict"],
                r["level"],
                *(stats.get(k) for k in ("mean", "p50", "p95", "min", "max", "samples")),
                r["run_id"],
            ]
        )
    return out.getvalue()


def _num(value: Any) -> str:
    from ..analysis.findings import format_number

    return format_number(value)


def change_text(change: float) -> str:
    return f"{change * 100:.1f}% worse" if change > 0 else f"{-change * 100:.1f}% better"


def _markdown(doc: dict[str, Any]) -> str:
    from ..analysis.findings import finding_markdown

    lines = [
        f"# Performance smoke test: {doc['suite']}",
        "",
        f"{doc['passed']} passed, {doc['failed']} failed · tolerance {doc['tolerance'] * 100:.0f}% · "
        f"baseline {doc['baseline_source']} · exit status {doc['exit_code']}",
        "",
        "| scenario | metric | value | baseline | change | verdict | thresholds | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["scenarios"]:
        change = "-" if r["change"] is None else change_text(r["change"])
        verdict = r["verdict"] + (f" ({r['error']})" if r["error"] else "")
        lines.append(
            f"| {r['name']} | {r['metric']} | {_num(r['value'])} {r['unit'] or ''} | "
            f"{_num((r['baseline'] or {}).get('value'))} | {change} | {verdict} | {r['level']} | "
            f"`{r['run_id'] or '-'}` |"
        )
    # a run-wide finding shared by every scenario (say, no GPU telemetry) is listed once
    grouped: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
    for r in doc["scenarios"]:
        for f in r["recommendations"]:
            grouped.setdefault((f["id"], f["detected"]), (f, []))[1].append(r["name"])
    lines += ["", "## Recommendations", ""]
    if not grouped:
        lines.append("- none")
    for f, names in grouped.values():
        lines += finding_markdown(f, ", ".join(names))
    env = doc["environment"]
    lines += ["", "## Environment", ""]
    lines += [f"- {k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def write_results(output: Path, doc: dict[str, Any]) -> list[Path]:
    """Write every output file of one invocation into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    files = {
        "perf_test_results.json": json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
        "summary.csv": _csv(doc["scenarios"]),
        "report.md": _markdown(doc),
        "environment.json": json.dumps(doc["environment"], indent=2, ensure_ascii=False) + "\n",
    }
    for r in doc["scenarios"]:
        files[f"{slugify(r['name'], 'scenario')}_metrics.json"] = (
            json.dumps(
                {
                    "suite": r["suite"],
                    "scenario": r["name"],
                    "run_id": r["run_id"],
                    **(r["metrics"] or {}),
                },
                indent=2,
            )
            + "\n"
        )
    paths = []
    for name, text in files.items():
        write_text_atomic(output / name, text)
        paths.append(output / name)
    return paths


def results_document(
    suite: Any, results: list[dict[str, Any]], tolerance: float, source: str, started: str
) -> dict[str, Any]:
    bad = [r for r in results if failed(r)]
    return {
        "kind": RESULTS_KIND,
        "results_version": RESULTS_VERSION,
        "suite": suite.name,
        "scenario_file": str(suite.path),
        "started_at": started,
        "tolerance": tolerance,
        "baseline_source": source,
        "passed": len(results) - len(bad),
        "failed": len(bad),
        "exit_code": 1 if bad else 0,
        "scenarios": results,
        "environment": environment(),
        "pid": os.getpid(),
    }
