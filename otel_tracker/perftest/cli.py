"""``otel-tracker perf-test``: run a scenario file, judge each scenario, write the results."""

from __future__ import annotations

import argparse
import os
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
        text += f", limits {r['level']}"  # the worst threshold or check
    if r["error"]:
        text += f" ({r['error']})"
    return text


def _details(r: dict[str, Any]) -> list[str]:
    """Indented lines under a scenario's: each limit not met, each loud note."""
    from ..analysis.findings import format_number as num
    from .limits import KIND_WORD, Band, band_text

    words = {"below-band": "below the band", "above-band": "above the band"}
    lines = []
    entries = [(f"threshold {m}", e) for m, e in r["thresholds"].items()]
    entries += [(f"{KIND_WORD[k]} {n}", e) for k, es in r["checks"].items() for n, e in es.items()]
    for what, e in entries:
        if e["level"] in ("ok", "no-data"):
            continue
        band = band_text(Band(e.get("min"), e.get("max")))
        if e["level"] in words:
            text = f"  {what} {num(e['value'])} {words[e['level']]} {band}"
        elif e["level"] == "not-recorded":
            text = f"  {what}: {e.get('note') or 'never recorded'} (band {band})"
        else:  # warn, critical
            text = f"  {what} {num(e['value'])}: {e['level']}"
        lines.append(text)
    lines += [f"  {note}" for note in r["notes"]]
    return lines


def run_perf_test(args: argparse.Namespace) -> int:
    from ..analysis.recommend import analyze
    from ..clock import iso_utc
    from ..history.store import RunStore
    from .baselines import BaselineSource, save_baseline
    from .execute import Outcome, run_scenario
    from .hardware import cpu_model, environment, gpu_devices, hardware_class
    from .report import write_results
    from .results import results_document, scenario_result, verdict_gauges

    suite = load_suite(default_scenario_file() if args.default else args.scenario)
    scenarios = _select(suite, args.only)
    tolerance = _tolerance(args, suite)
    store = RunStore.open(args.root)
    root = store.root
    gpus = gpu_devices()
    hardware = hardware_class(cpu_model(), os.cpu_count(), gpus)
    strict = bool(getattr(args, "strict_hardware", False))
    # a bad file fails before anything runs
    source = BaselineSource(args.baseline, root, hardware)
    started = iso_utc(time.time_ns())
    output = Path(args.output) if args.output else root / "perf-tests" / started.replace(":", "")
    deadline = time.monotonic() + suite.time_budget_s
    results = []
    for sc in scenarios:
        expected = source.expected(suite.name, sc)
        if time.monotonic() >= deadline:
            outcome = Outcome(sc, status="timeout", error="the suite's time budget ran out first")
        else:
            outcome = run_scenario(
                sc,
                suite,
                root=root,
                deadline=deadline,
                run_options=RUN_OPTIONS,
                judge=lambda o, e=expected: verdict_gauges(o, e, tolerance, strict),
            )
        doc = store.load(outcome.run_dir).doc if outcome.run_dir else None
        analysis = None
        if doc is not None:
            baseline = source.document(suite.name, sc)
            if strict and expected is not None and expected.hardware != "same":
                baseline = None  # not compared, step by step either
            analysis = analyze(doc, root=root, store=store, baseline=baseline)
        result = scenario_result(
            outcome, suite.name, expected, tolerance, analysis, doc, strict_hardware=strict
        )
        results.append(result)
        print(_line(result), flush=True)
        for line in _details(result):
            print(line, flush=True)
        if args.save_baseline and doc is not None and outcome.status == "ok":
            saved = save_baseline(root, doc, hardware, iso_utc(time.time_ns()))
            print("  saved " + saved)
    report = results_document(
        suite,
        results,
        tolerance,
        source.label,
        started,
        hardware=hardware,
        environment=environment(hardware, gpus),
        strict_hardware=strict,
    )
    try:
        write_results(output, report)
    except OSError as exc:
        raise OtelTrackerError(f"cannot write results to {output}: {exc.strerror or exc}") from None
    print(
        f"{report['passed']} passed, {report['failed']} failed; "
        f"results: {output / 'perf_test_results.json'}, report: {output / 'report.md'}"
    )
    return int(report["exit_code"])
