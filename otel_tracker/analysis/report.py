"""The run report: one dict, rendered as text, JSON or Markdown with the same content."""

from __future__ import annotations

import json
from typing import Any

from ..history.store import RunView
from ..printable import MAX_CHARS, json_text, printable
from ..timeparse import format_duration, format_local
from ..values import is_real
from .job_report import job_line, rank_table, report_job
from .series import metric_rows, user_metric_rows

REPORT_VERSION = 1


def _percent(completed: Any, total: Any) -> float | None:
    if is_real(total) and total > 0 and is_real(completed):
        return round(100.0 * completed / total, 1)
    return None


def _step_row(step: dict[str, Any], run_status: str) -> dict[str, Any]:
    p = step.get("progress") or {}
    duration = (
        step.get("duration_s") if step.get("duration_s") is not None else step.get("elapsed_s")
    )
    rate = None
    if isinstance(duration, (int, float)) and duration > 0 and p.get("completed"):
        rate = round(p["completed"] / duration, 3)
    error = step.get("error")
    skipped = step.get("status") == "skipped"
    status = step.get("status")
    if status == "running" and run_status == "aborted":
        status = "aborted"  # its process is gone: it is not running any more
    return {
        "index": step.get("index"),
        "name": step.get("name"),
        "status": status,
        "started_at": None if skipped else step.get("started_at"),
        "duration_s": None if skipped else duration,
        "expected_duration_s": step.get("expected_duration_s"),
        "completed": p.get("completed", 0),
        "total": p.get("total"),
        "unit": p.get("unit"),
        "percent": _percent(p.get("completed"), p.get("total")),
        "rate_per_s": rate,
        "skip_reason": step.get("skip_reason"),
        "error": error_text(error),
        "part": step.get("part"),
        # steps that child processes recorded from this one (joined runs)
        "substeps": [
            _step_row(sub, run_status)
            for sub in step.get("substeps") or []
            if isinstance(sub, dict)
        ],
    }


def error_text(error: Any) -> str | None:
    """``ValueError: bad input``; the type alone when there is no message
    (``KeyboardInterrupt``, a bare ``raise X``), never a dangling colon."""
    if not isinstance(error, dict):
        return None
    kind, message = error.get("type") or "error", error.get("message")
    return f"{kind}: {message}" if message not in (None, "") else str(kind)


def eta_accuracy(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The ETA shown when the second step ended vs the time that was really left."""
    from ..timeparse import parse_timestamp

    ended = parse_timestamp(doc.get("ended_at"))
    if doc.get("status") != "completed" or ended is None:
        return None
    log = (doc.get("eta") or {}).get("log") or []
    ends = [e for e in log if e.get("event") == "end"]
    if len(ends) < 2 or ends[1].get("eta_s") is None:
        return None
    entry = ends[1]
    at = parse_timestamp(entry.get("at"))
    if at is None:
        return None
    actual = max(0.0, ended - at)
    predicted = float(entry["eta_s"])
    error = None if actual <= 0 else round(100.0 * (predicted - actual) / actual, 1)
    return {
        "after_step": entry.get("step"),
        "predicted_s": predicted,
        "actual_s": round(actual, 3),
        "error_pct": error,
        "lower_bound": bool(entry.get("at_least")),
    }


def build_report(view: RunView, analysis: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything worth knowing about one run, as plain data.

    ``analysis`` (from :func:`otel_tracker.analysis.recommend.analyze`) adds the key
    figures, the baseline used and the recommendations.
    """
    doc = view.doc
    steps = [_step_row(s, view.status) for s in doc.get("steps", [])]
    timed = [
        s for s in steps if s["status"] in ("completed", "failed") and s["duration_s"] is not None
    ]
    slowest = max(timed, key=lambda s: s["duration_s"], default=None)
    artifacts = [{"step": None, **a} for a in doc.get("artifacts", [])]
    for step in doc.get("steps", []):
        artifacts += [{"step": step.get("name"), **a} for a in step.get("artifacts", [])]
    process = doc.get("process") or {}
    return {
        "report_version": REPORT_VERSION,
        "run_id": view.run_id,
        "name": doc.get("name"),
        "scenario": doc.get("scenario"),
        "kind": doc.get("kind"),
        "status": view.status,
        "recorded_status": doc.get("status"),
        "status_reason": view.inference.reason,
        "started_at": doc.get("started_at"),
        "ended_at": doc.get("ended_at"),
        "duration_s": doc.get("duration_s")
        if doc.get("duration_s") is not None
        else doc.get("elapsed_s"),
        "exit_code": doc.get("exit_code"),
        "signal": doc.get("signal"),
        "error": doc.get("error"),
        "params": doc.get("params", {}),
        "figures": {
            "steps_completed": sum(1 for s in steps if s["status"] == "completed"),
            "steps_enabled": sum(1 for s in steps if s["status"] != "skipped"),
            "steps_skipped": sum(1 for s in steps if s["status"] == "skipped"),
            "steps_failed": sum(1 for s in steps if s["status"] == "failed"),
            "step_time_s": round(sum(s["duration_s"] for s in timed), 6),
            "slowest_step": None
            if slowest is None
            else {"name": slowest["name"], "duration_s": slowest["duration_s"]},
            "last_completed_step": doc.get("last_completed_step"),
            "current_step": doc.get("current_step")
            if view.status in ("running", "stuck")
            else None,
            "eta_accuracy": eta_accuracy(doc),
        },
        "steps": steps,
        "scores": doc.get("scores", {}),
        "metrics": doc.get("metrics"),
        "user_metrics": doc.get("user_metrics"),
        "history_key": doc.get("history_key"),
        "artifacts": artifacts,
        "processes": (doc.get("telemetry") or {}).get("processes", []),
        "telemetry": _telemetry(doc.get("telemetry")),
        "host": process.get("host"),
        "pid": process.get("pid"),
        "command": process.get("command"),
        "git": doc.get("git"),
        "trace_id": (doc.get("trace") or {}).get("trace_id"),
        "files": {"run_dir": str(view.path), "manifest": str(view.manifest_path)},
        "parts": doc.get("parts", []),
        "job": report_job(doc),
        "warnings": doc.get("warnings", []),
        "analysis": analysis,
    }


def _number(value: Any) -> str:
    from .findings import format_number

    return format_number(value) if is_real(value) else "-"


def _telemetry(telemetry: Any) -> dict[str, Any] | None:
    if not isinstance(telemetry, dict):
        return None
    return {
        "interval_s": telemetry.get("interval_s"),
        "samples": telemetry.get("samples"),
        "unavailable": telemetry.get("unavailable") or {},
    }


def _telemetry_text(telemetry: dict[str, Any]) -> str:
    """``14 samples, every 0.2s; not measured: gpu (nvidia-ml-py is not installed)``."""
    said = []
    if telemetry["samples"] is not None:
        said.append(f"{telemetry['samples']:,} samples")
    if telemetry["interval_s"]:
        said.append(f"every {format_duration(telemetry['interval_s'])}")
    missing = "; ".join(f"{what} ({why})" for what, why in telemetry["unavailable"].items())
    return ", ".join(said) + (f"; not measured: {missing}" if missing else "")


def to_json(report: dict[str, Any]) -> str:
    return json_text(report, indent=2) + "\n"


def _progress_text(step: dict[str, Any]) -> str:
    if step["total"]:
        unit = f" {step['unit']}" if step["unit"] else ""
        # no percent from a file whose counters are not numbers
        percent = f" ({step['percent']:.0f}%)" if step["percent"] is not None else ""
        return f"{step['completed']}/{step['total']}{unit}{percent}"
    return str(step["completed"]) if step["completed"] else "-"


def _status_text(report: dict[str, Any]) -> str:
    status = report["status"]
    if report["status_reason"]:
        status += f" ({report['status_reason']})"
    if report["signal"]:
        status += f", {report['signal']}"
    if report["exit_code"] not in (None, 0):
        status += f", exit code {report['exit_code']}"
    return status


def step_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the step table, shared by every rendering."""
    headers = ["#", "step", "status", "started", "duration", "progress", "rate/s", "note"]
    rows: list[list[str]] = []
    for s in report["steps"]:
        _step_rows(s, str(s["index"] + 1), 0, rows)
    return headers, rows


def _step_rows(s: dict[str, Any], number: str, depth: int, rows: list[list[str]]) -> None:
    # a child process's steps follow the step that launched it, numbered 2.1, 2.2...
    note = s["error"] or (f"skipped: {s['skip_reason']}" if s["skip_reason"] else "")
    note = _clip(note, 500)
    rows.append(
        [
            number,
            "  " * depth + s["name"],
            s["status"],
            format_local(s["started_at"]),
            format_duration(s["duration_s"]),
            _progress_text(s),
            f"{s['rate_per_s']:.1f}" if s["rate_per_s"] else "-",
            note,
        ]
    )
    for i, sub in enumerate(s.get("substeps") or [], 1):
        _step_rows(sub, f"{number}.{i}", depth + 1, rows)


def key_values(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The header block: label, value."""
    f = report["figures"]
    rows = [
        ("run", report["run_id"]),
        ("name", report["name"] + (f" / {report['scenario']}" if report["scenario"] else "")),
        ("status", _status_text(report)),
        ("started", format_local(report["started_at"])),
        ("duration", format_duration(report["duration_s"])),
        (
            "steps",
            f"{f['steps_completed']}/{f['steps_enabled']} completed, {f['steps_skipped']} skipped, {f['steps_failed']} failed",
        ),
    ]
    if report["kind"]:
        rows.insert(2, ("kind", report["kind"]))
    if report.get("job"):
        rows.insert(3, ("job", job_line(report["job"])))
    if f["last_completed_step"]:
        rows.append(("last completed", f["last_completed_step"]))
    if f["current_step"]:
        rows.append(("current step", f["current_step"]))
    if f["slowest_step"]:
        rows.append(
            (
                "slowest step",
                f"{f['slowest_step']['name']} ({format_duration(f['slowest_step']['duration_s'])})",
            )
        )
    accuracy = f.get("eta_accuracy")
    if accuracy and accuracy["error_pct"] is not None:
        rows.append(
            (
                "ETA accuracy",
                f"{accuracy['error_pct']:+.0f}% after {accuracy['after_step']} "
                f"(said {format_duration(accuracy['predicted_s'])}, took {format_duration(accuracy['actual_s'])})",
            )
        )
    if report["error"]:
        rows.append(("error", _clip(error_text(report["error"]) or "-", 1000)))
    if report["params"]:
        shown = ", ".join(f"{k}={_clip(json.dumps(v), 200)}" for k, v in report["params"].items())
        rows.append(("params", _clip(shown, 2000)))
    for name, score in report["scores"].items():
        latest, best = (_number(score.get(k)) for k in ("latest", "best"))
        rows.append((f"score {name}", f"latest {latest}, best {best} ({score.get('direction')})"))
    key = report["history_key"]
    if isinstance(key, dict) and isinstance(key.get("params"), dict):
        shown = ", ".join(f"{k}={_clip(json.dumps(v), 100)}" for k, v in key["params"].items())
        rows.append(("history key", _clip(f"{shown} ({key.get('digest')})", 1000)))
    rows.extend(metric_rows(report["metrics"]))
    rows.extend(user_metric_rows(report.get("user_metrics")))
    if report["telemetry"]:
        rows.append(("telemetry", _telemetry_text(report["telemetry"])))
    if len(report["processes"]) > 1:
        rows.append(("busiest processes", _busiest(report["processes"])))
    if report["git"]:
        dirty = " (dirty)" if report["git"].get("dirty") else ""
        rows.append(("git", f"{report['git'].get('commit', '')[:12]}{dirty}"))
    rows.append(("host / pid", f"{report['host']} / {report['pid']}"))
    rows.append(("trace id", report["trace_id"] or "-"))
    rows.append(("files", report["files"]["run_dir"]))
    return rows


def _clip(text: str, limit: int) -> str:
    """A value as a summary shows it: long ones cut (a 20 MB param is data, not a line;
    wrapping it in a table takes time quadratic in its length)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more)"


def _busiest(processes: list[dict[str, Any]], n: int = 3) -> str:
    """``python3 (pid 812) 64% of CPU, 1.2 GB RSS peak; ...`` for the top ``n``."""
    parts = []
    for p in processes[:n]:
        share = p.get("cpu_share")
        cpu = f"{share * 100:.0f}% of CPU" if share is not None else f"{p['cpu_time_s']:.1f} s CPU"
        parts.append(
            f"{p.get('name') or '?'} (pid {p['pid']}) {cpu}, {_bytes(p['rss_max_bytes'])} RSS peak"
        )
    return "; ".join(parts)


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown document (step table and key figures)."""

    def cell(text: str) -> str:
        return printable(text).replace("|", "\\|")

    out = [f"# Run {cell(report['name'])} — {report['status']}", ""]
    out += ["| | |", "|---|---|"]
    out += [f"| {label} | {cell(value)} |" for label, value in key_values(report)]
    headers, rows = step_table(report)
    out += ["", "## Steps", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    if report.get("job"):
        headers, rows = rank_table(report["job"])
        out += ["", "## Ranks", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    if report["artifacts"]:
        out += ["", "## Artifacts", "", "| step | kind | path | size |", "|---|---|---|---|"]
        for a in report["artifacts"]:
            size = "-" if a.get("size_bytes") is None else f"{a['size_bytes']:,} B"
            out.append(
                f"| {cell(a['step'] or '-')} | {cell(artifact_kind(a))} | `{cell(a['path'])}` | {size} |"
            )
    if report["error"] and report["error"].get("traceback"):
        traceback = printable(report["error"]["traceback"], 4 * MAX_CHARS, lines=True)
        out += ["", "## Error", "", "```", *("  " + line for line in traceback.split("\n")), "```"]
    if report["analysis"]:
        out += _analysis_markdown(report["analysis"], cell)
    if report["warnings"]:
        out += ["", "## Warnings", ""] + [f"- {cell(w)}" for w in report["warnings"]]
    return "\n".join(out) + "\n"


def _analysis_markdown(analysis: dict[str, Any], cell: Any) -> list[str]:
    from .findings import figures_table, finding_lines

    headers, rows = figures_table(analysis)
    out = ["", "## Key figures", ""]
    out += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    out += ["", "## Anomalies and recommendations", ""]
    out += [printable(line) for line in finding_lines(analysis, markdown=True)]
    return out


def artifact_kind(artifact: dict[str, Any]) -> str:
    """An artifact's kind as shown: ``checkpoint (best)`` for the one a score chose,
    ``checkpoint (pruned 2026-12-03)`` for one ``prune --artifacts`` removed."""
    kind = str(artifact.get("kind") or "-")
    if artifact.get("best") is True:
        kind += " (best)"
    pruned = artifact.get("pruned_at")
    if isinstance(pruned, str):
        kind += f" (pruned {pruned[:10]})"
    return kind
