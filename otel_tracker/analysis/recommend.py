"""A run's analysis: its key figures, its baseline (or why there is none), and the
rules' findings. Used by the report (``summary``, ``show``, ``export``) and by the
summary files a run writes into its directory when it ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError
from ..history.pipeline_history import history_digest
from .baseline import BaselineStore, baseline_key, config_text
from .figures import all_step_figures, run_figures
from .job_findings import job_recommendations
from .rules import RuleContext, Thresholds, evaluate

logger = logging.getLogger(__name__)


def pipeline_history(store: Any, doc: dict[str, Any]) -> tuple[dict[str, list[float]], int]:
    """Durations of each completed step in this pipeline's earlier completed runs
    (the same runs the ETA learns from)."""
    from ..history.pipeline_history import earlier_runs
    from ..progress.eta import step_durations
    from ..timeparse import parse_timestamp

    earlier = earlier_runs(
        store,
        str(doc.get("name")),
        doc.get("scenario"),
        before=parse_timestamp(doc.get("started_at")),
        excluding=doc.get("run_id"),
        key=history_digest(doc),
    )
    return step_durations(earlier), len(earlier)


def _baseline(
    root: Path, doc: dict[str, Any], baseline: dict[str, Any] | str | None
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    store = BaselineStore.under(root)
    name, scenario, config = str(doc.get("name")), doc.get("scenario"), history_digest(doc)
    if isinstance(baseline, str):
        found: dict[str, Any] | None = store.load(baseline)
        source = str(store.resolve(baseline))
    elif isinstance(baseline, dict):
        found, source = baseline, "given"
    else:
        try:
            found = store.find(name, scenario, config)
        except OtelTrackerError as exc:
            return None, {"status": "unreadable", "note": f"{exc}; default thresholds used"}
        source = str(store.path(baseline_key(name, scenario, config)))
    if found is None:
        return None, {
            "status": "none",
            "note": (
                f"no baseline for {name}"
                + (f" / {scenario}" if scenario else "")
                + (f" with {config_text(doc)}" if config else "")
                + ": throughput is not judged against one, resource rules use the default "
                "thresholds (create one: otel-tracker baseline create --from RUN)"
            ),
        }
    return found, {
        "status": "used",
        "key": found.get("key"),
        "revision": found.get("revision"),
        "runs": len(found.get("source_runs", [])),
        "source": source,
    }


def gpu_expected(doc: dict[str, Any]) -> bool:
    """Whether the run meant to use a GPU: it had NVML (the ``gpu`` extra) installed,
    or picked devices with ``CUDA_VISIBLE_DEVICES``. Only then is missing GPU
    telemetry worth a recommendation."""
    environment = doc.get("environment") or {}
    visible = (environment.get("env") or {}).get("CUDA_VISIBLE_DEVICES")
    return "nvidia-ml-py" in (environment.get("packages") or {}) or visible not in (None, "", "-1")


def analyze(
    doc: dict[str, Any],
    *,
    root: Path,
    store: Any = None,
    baseline: dict[str, Any] | str | None = None,
    thresholds: Thresholds | None = None,
) -> dict[str, Any]:
    """Figures, baseline and recommendations of one run, as plain data."""
    thresholds = thresholds or Thresholds()
    base, base_info = _baseline(root, doc, baseline)
    history: dict[str, list[float]] = {}
    runs = 0
    if store is not None:
        try:
            history, runs = pipeline_history(store, doc)
        except OtelTrackerError as exc:
            logger.warning("otel-tracker could not read the run history: %s", exc)
    telemetry = doc.get("telemetry") or {}
    sampler = telemetry.get("sampler") or {}
    run = run_figures(doc)
    steps = all_step_figures(doc)
    ctx = RuleContext(
        run=run,
        steps=steps,
        cpu_count=(doc.get("environment") or {}).get("cpu_count"),
        thresholds=thresholds,
        baseline=base,
        history=history,
        history_runs=runs,
        unavailable=_unavailable(doc),
        gpu_expected=gpu_expected(doc),
        sampler_fallback=sampler.get("fallback_reason"),
        sample_interval_s=telemetry.get("interval_s"),
    )
    return {
        "baseline": base_info,
        "history_runs": runs,
        "thresholds": thresholds.to_dict(),
        "figures": {"run": run.to_dict(), "steps": [s.to_dict() for s in steps]},
        "recommendations": [r.to_dict() for r in [*job_recommendations(doc), *evaluate(ctx)]],
    }


def _unavailable(doc: dict[str, Any]) -> dict[str, str]:
    """What telemetry was unavailable and why; a run whose sampling never started
    (``telemetry`` null, the reason in its warnings) has all of it unavailable."""
    telemetry = doc.get("telemetry")
    if isinstance(telemetry, dict):
        return {str(k): str(v) for k, v in (telemetry.get("unavailable") or {}).items()}
    prefix = "resource sampling unavailable: "
    for warning in doc.get("warnings") or ():
        if isinstance(warning, str) and warning.startswith(prefix):
            return {"resources": warning[len(prefix) :]}
    return {}
