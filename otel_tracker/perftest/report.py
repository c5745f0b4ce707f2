"""The files of one perf-test invocation: ``perf_test_results.json``,
``<scenario>_metrics.json``, ``<scenario>_latency.svg``, ``summary.csv``,
``report.md`` and ``environment.json``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..contract.atomic import write_text_atomic
from ..contract.paths import slugify
from .histogram import latency_svg
from .limits import KIND_WORD, Band, band_text
from .results import _num, change_text

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


def _cell(text: Any) -> str:
    """A table cell: names come from users, and a ``|`` would split the row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _limits(entry: dict[str, Any]) -> str:
    if entry.get("min") is not None or entry.get("max") is not None:
        return band_text(Band(entry.get("min"), entry.get("max")))
    levels = [f"{k} {_num(entry[k])}" for k in ("warn", "critical") if entry.get(k) is not None]
    return ", ".join(levels)


def svg_name(scenario: str) -> str:
    return f"{slugify(scenario, 'scenario')}_latency.svg"


def _checks_table(doc: dict[str, Any]) -> list[str]:
    rows = []
    for r in doc["scenarios"]:
        for metric, entry in r["thresholds"].items():
            rows.append((r["name"], f"threshold {metric}", entry))
        for kind, entries in (r.get("checks") or {}).items():
            for name, entry in entries.items():
                rows.append((r["name"], f"{KIND_WORD[kind]} {name}", entry))
    if not rows:
        return []
    lines = ["", "## Thresholds and checks", ""]
    lines += ["| scenario | what | value | limits | level |", "|---|---|---|---|---|"]
    for scenario, what, entry in rows:
        level = entry["level"] + (f" ({entry['note']})" if entry.get("note") else "")
        lines.append(
            f"| {_cell(scenario)} | {_cell(what)} | {_num(entry['value'])} | "
            f"{_limits(entry)} | {level} |"
        )
    return lines


def _markdown(doc: dict[str, Any]) -> str:
    from ..analysis.findings import finding_markdown

    lines = [
        f"# Performance smoke test: {doc['suite']}",
        "",
        f"{doc['passed']} passed, {doc['failed']} failed · tolerance {doc['tolerance'] * 100:.0f}% · "
        f"baseline {doc['baseline_source']} · exit status {doc['exit_code']}",
        "",
        f"Hardware: {doc['hardware']['label']} (class `{doc['hardware']['id']}`)"
        + (" · --strict-hardware" if doc.get("strict_hardware") else ""),
    ]
    notes: dict[str, list[str]] = {}
    for r in doc["scenarios"]:
        for note in r.get("notes") or []:
            notes.setdefault(note, []).append(r["name"])
    for note, names in notes.items():
        lines += ["", f"> **{note}** ({', '.join(names)})"]
    lines += [
        "",
        "| scenario | metric | value | baseline | change | verdict | limits | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["scenarios"]:
        change = "-" if r["change"] is None else change_text(r["change"])
        verdict = r["verdict"] + (f" ({r['error']})" if r["error"] else "")
        lines.append(
            f"| {_cell(r['name'])} | {r['metric']} | {_num(r['value'])} {r['unit'] or ''} | "
            f"{_num((r['baseline'] or {}).get('value'))} | {change} | {_cell(verdict)} | "
            f"{r['level']} | `{r['run_id'] or '-'}` |"
        )
    lines += _checks_table(doc)
    timed = [r for r in doc["scenarios"] if r.get("latency_samples_ms")]
    lines += ["", "## Latency", ""] if timed else [""]
    for r in timed:
        name = r["name"].replace("[", "(").replace("]", ")")
        lines += [f"![{name}: latency per call]({svg_name(r['name'])})", ""]
    # a run-wide finding shared by every scenario (say, no GPU telemetry) is listed once
    grouped: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
    for r in doc["scenarios"]:
        for f in r["recommendations"]:
            grouped.setdefault((f["id"], f["detected"]), (f, []))[1].append(r["name"])
    lines += ["## Recommendations", ""]
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
        if r.get("latency_samples_ms"):
            files[svg_name(r["name"])] = latency_svg(
                f"{r['suite']} / {r['name']}: {len(r['latency_samples_ms'])} calls",
                r["latency_samples_ms"],
                (r["baseline"] or {}).get("latency_p50_ms"),
            )
    paths = []
    for name, text in files.items():
        write_text_atomic(output / name, text)
        paths.append(output / name)
    return paths
