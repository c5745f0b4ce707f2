"""What the pages show, as plain JSON-ready data, from the same read API as the CLI:
a run's row (``list``), its report (``show``/``export``) and a comparison
(``compare``). Everything here is text for the page to render as text."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.report import build_report
from ..history.progress_view import LIVE, live_line, progress_status, step_rate
from ..history.store import STATUSES, RunView
from ..timeparse import parse_timestamp
from .files import inside_run

MAX_SCORES_IN_ROW = 3


def run_row(view: RunView) -> dict[str, Any]:
    """One line of the runs page: ``list``'s row, the live step line, the running
    step's progress and rate, and a few best scores."""
    row = view.summary()
    row.pop("run_dir", None)
    live = view.status in LIVE
    progress = progress_status(view) if live else None
    row["step_line"] = live_line(view) if live else None
    row["resources"] = progress["resources"] if progress else None
    row["eta_s"] = progress["eta_s"] if progress else None
    row["eta_at_least"] = progress["eta_at_least"] if progress else None
    row["elapsed_s"] = progress["elapsed_s"] if progress else row.get("elapsed_s")
    row["progress"] = _step_progress(view) if live else None
    row["scores"] = _best_scores(view.doc)
    row["exit_code"] = view.doc.get("exit_code")
    row["signal"] = view.doc.get("signal")
    return row


def _step_progress(view: RunView) -> dict[str, Any] | None:
    running = [s for s in view.doc.get("steps") or () if s.get("status") == "running"]
    if not running:
        return None
    step = running[-1]
    p = step.get("progress") or {}
    rate = step_rate(step, view)
    return {
        "step": step.get("name"),
        "completed": p.get("completed") or 0,
        "total": p.get("total"),
        "unit": p.get("unit"),
        "rate_per_s": None if rate is None else round(rate, 3),
    }


def _best_scores(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    scores = doc.get("scores") if isinstance(doc.get("scores"), dict) else {}
    for name, score in list(scores.items())[:MAX_SCORES_IN_ROW]:
        if isinstance(score, dict):
            value = score.get("best") if score.get("best") is not None else score.get("latest")
            out.append({"name": name, "value": value, "direction": score.get("direction")})
    return out


@dataclass(frozen=True)
class RunQuery:
    """The runs page's filters, from its URL."""

    statuses: frozenset[str] = frozenset()
    name: str | None = None
    scenario: str | None = None
    since: float | None = None
    text: str | None = None

    @classmethod
    def from_params(cls, params: Any) -> RunQuery:
        from ..errors import OtelTrackerError
        from ..timeparse import parse_when

        statuses = frozenset(
            s.strip() for s in (params.get("status") or "").split(",") if s.strip() in STATUSES
        )
        since = params.get("since") or None
        try:
            since_at = parse_when(since).timestamp() if since else None
        except OtelTrackerError:  # a bad filter in a shared link shows all, not an error
            since_at = None
        return cls(
            statuses=statuses,
            name=params.get("name") or None,
            scenario=params.get("scenario") or None,
            since=since_at,
            text=(params.get("q") or "").strip().lower() or None,
        )

    def matches(self, row: dict[str, Any]) -> bool:
        if self.statuses and row.get("status") not in self.statuses:
            return False
        if self.since is not None:
            started = parse_timestamp(row.get("started_at"))
            if started is None or started < self.since:
                return False
        for key, pattern in (("name", self.name), ("scenario", self.scenario)):
            if pattern is not None and not fnmatch.fnmatchcase(str(row.get(key)), pattern):
                return False
        if self.text is not None:
            haystack = " ".join(
                str(row.get(k) or "")
                for k in ("run_id", "name", "scenario", "current_step", "status")
            ).lower()
            if self.text not in haystack:
                return False
        return True


def run_detail(view: RunView, analysis: dict[str, Any] | None) -> dict[str, Any]:
    """The run page: ``show``'s report, the live line, and the artifacts the page can
    open (``href`` for files inside the run's directory)."""
    report = build_report(view, analysis)
    report["row"] = run_row(view)
    for artifact in report.get("artifacts") or []:
        relative = inside_run(view.path, str(artifact.get("path") or ""))
        artifact["href"] = relative
    logs = []
    for name in ("stdout", "stderr"):
        if (view.path / "logs" / f"{name}.log").is_file():
            logs.append(name)
    report["logs"] = logs
    report.pop("files", None)  # local paths of the server's machine: not the page's business
    report["run_dir_name"] = Path(view.path).name
    return report
