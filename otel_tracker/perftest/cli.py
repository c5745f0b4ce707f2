"""``otel-tracker perf-test``: run a scenario file, judge each scenario, write the results."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..errors import OtelTrackerError
from .scenario import Scenario, Suite, load_suite

DEFAULT_TOLERANCE = 0.25
# scenarios last seconds: sample often enough that each step has a few samples
RUN_OPTIONS = {"sample_interval": 0.5}


def default_scenario_file() -> Path:
    """The shipped smoke scenarios of the reference pipeline."""
    return Path(__file__).resolve().parent.parent / "examples" / "perf_scenarios.toml"


def _select(suite: Suite, only: list[str]) -> list[Scenario]:
    if not only:
        return list(suite.scenarios)
    names = [s.name for s in suite.scenarios]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise OtelTrackerError(
            f"no scenario {unknown[0]!r} in {suite.path} (scenarios: {', '.join(names)})"
        )
    return [s for s in suite.scenarios if s.name in only]


def _tolerance(args: argparse.Namespace, suite: Suite) -> float:
    if args.tolerance is not None:
        return float(args.tolerance)  # checked by argparse
    return suite.tolerance if suite.tolerance is not None else DEFAULT_TOLERANCE


def _line(r: dict[str, Any]) -> str:
    from ..analysis.findings import format_number as num
    from .results import change_text

    value = "-" if r["value"] is None else f"{num(r['value'])} {r['unit'] or ''}".rstrip()
    text = f"{r['name']}: {r['metric']} {value}"
    if r["baseline"] is not None and r["change"] is not None:
        text += f" vs baseline {num(r['baseline']['value'])} ({change_text(r['change'])})"
    text += f" -> {r['verdict']}"
    if r["level"] not in ("ok",):
        text += f", threshold {r['level']}"
    if r["error"]:
        text += f" ({r['error']})"
    return text


def _save_baseline(store: Any, root: Path, doc: dict[str, Any], now: str) -> str:
    from ..analysis.baseline import BaselineStore, create_baseline, update_baseline

    baselines = BaselineStore.under(root)
    existing = baselines.find(str(doc["name"]), doc.get("scenario"))
    new = update_baseline(existing, [doc], now) if existing else create_baseline([doc], now)
    path = baselines.save(new)
    return f"baseline {new['key']} revision {new['revision']}: {path}"


def run_perf_test(args: argparse.Namespace) -> int:
    from ..analysis.recommend import analyze
    from ..clock import iso_utc
    from ..history.store import RunStore
    from .compare import BaselineSource
    from .execute import Outcome, run_scenario
    from .results import results_document, scenario_result, write_results

    suite = load_suite(default_scenario_file() if args.default else args.scenario)
    scenarios = _select(suite, args.only)
    tolerance = _tolerance(args, suite)
    store = RunStore.open(args.root)
    root = store.root
    source = BaselineSource(args.baseline, root)  # a bad file fails before anything runs
    started = iso_utc(time.time_ns())
    output = Path(args.output) if args.output else root / "perf-tests" / started.replace(":", "")
    deadline = time.monotonic() + suite.time_budget_s
    results = []
    for sc in scenarios:
        if time.monotonic() >= deadline:
            outcome = Outcome(sc, status="timeout", error="the suite's time budget ran out first")
        else:
            outcome = run_scenario(sc, suite, root=root, deadline=deadline, run_options=RUN_OPTIONS)
        doc = store.load(outcome.run_dir).doc if outcome.run_dir else None
        analysis = None
        if doc is not None:
            baseline = source.document(suite.name, sc)
            analysis = analyze(doc, root=root, store=store, baseline=baseline)
        result = scenario_result(
            outcome, suite.name, source.expected(suite.name, sc), tolerance, analysis, doc
        )
        results.append(result)
        print(_line(result), flush=True)
        if args.save_baseline and doc is not None and outcome.status == "ok":
            print("  saved " + _save_baseline(store, root, doc, iso_utc(time.time_ns())))
    report = results_document(suite, results, tolerance, source.label, started)
    try:
        write_results(output, report)
    except OSError as exc:
        raise OtelTrackerError(f"cannot write results to {output}: {exc.strerror or exc}") from None
    print(
        f"{report['passed']} passed, {report['failed']} failed; "
        f"results: {output / 'perf_test_results.json'}, report: {output / 'report.md'}"
    )
    return int(report["exit_code"])
