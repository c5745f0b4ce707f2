"""Each scenario's baseline, by hardware class as well as by suite and scenario.

A scenario's baseline lives in ``<root>/baselines/<suite>--<scenario>.json``, made
on the hardware it records (``hardware``). ``--save-baseline`` on a machine of
another class (or over a baseline from before hardware was recorded, whose
machine is unknown) starts ``<suite>--<scenario>--hw-<class id>.json`` beside it
and leaves the first as it is. A scenario is judged against its own class's
baseline when there is one, else against the plain one, with a loud note; with
``--strict-hardware`` not at all (verdict ``hardware-mismatch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.baseline import (
    MAX_BASELINE_BYTES,
    BaselineStore,
    baseline_key,
    check_baseline,
    create_baseline,
    read_baseline,
    update_baseline,
)
from ..contract.jsonfile import FileProblem, read_json
from ..errors import OtelTrackerError
from .hardware import FIELDS, differences, hardware_of
from .results_format import check_results, is_results
from .scenario import Scenario


@dataclass(frozen=True)
class Expected:
    """A scenario's baseline figures, where they came from and on what hardware."""

    figures: dict[str, float]  # flat metric name -> the baseline's value (median)
    source: str
    hardware: str  # "same", "different" or "unknown" (the baseline has no record)
    note: str | None = None  # the loud line for "different" and "unknown"

    def value(self, metric: str) -> float | None:
        return self.figures.get(metric)


def hardware_key(suite: str, scenario: str, hardware: dict[str, Any]) -> str:
    return f"{baseline_key(suite, scenario)}--hw-{hardware['id']}"


def _match(found: dict[str, Any] | None, here: dict[str, Any], name: str) -> tuple[str, str | None]:
    theirs = hardware_of(found)
    if theirs is None:
        return "unknown", (
            f"baseline {name} has no hardware record (made before otel-tracker recorded "
            f"it): compared as if made on this machine ({here['label']})"
        )
    if theirs["id"] == here["id"]:
        return "same", None
    return "different", (
        f"HARDWARE MISMATCH: baseline {name} was recorded on {theirs['label']}; this "
        f"machine is {here['label']} (another {', '.join(differences(theirs, here))})"
    )


class BaselineSource:
    """Where each scenario's expected value comes from: a previous
    ``perf_test_results.json``, one baseline file, or a directory of baselines
    (by default ``<root>/baselines``, where ``--save-baseline`` writes)."""

    def __init__(self, ref: str | None, root: Path, hardware: dict[str, Any]) -> None:
        self.hardware = hardware
        self.results: dict[str, Any] | None = None
        self.single: dict[str, Any] | None = None
        self.store: BaselineStore | None = None
        self.label = ref or str(root / "baselines")
        if ref is None:
            self.store = BaselineStore.under(root)
            return
        path = Path(ref)
        if path.is_dir():
            self.store = BaselineStore(path)
            return
        try:
            doc = read_json(path, MAX_BASELINE_BYTES)
        except FileProblem as exc:
            if exc.missing:
                raise OtelTrackerError(f"no baseline file {path}") from None
            raise
        if is_results(doc):
            self.results = check_results(doc, str(path))
        else:
            self.single = check_baseline(doc, str(path))

    def document(self, suite: str, sc: Scenario) -> dict[str, Any] | None:
        """The baseline file that covers this scenario (not for a results file): its
        own hardware class's first, else the plain one."""
        doc = self.single
        if doc is not None:
            return doc if (doc.get("pipeline"), doc.get("scenario")) == (suite, sc.name) else None
        if self.store is None:
            return None
        try:
            path = self.store.path(hardware_key(suite, sc.name, self.hardware))
            if path.exists():
                own = read_baseline(path)
                if (own.get("pipeline"), own.get("scenario")) == (suite, sc.name):
                    return own
            return self.store.find(suite, sc.name)
        except OtelTrackerError:
            return None

    def expected(self, suite: str, sc: Scenario) -> Expected | None:
        """The scenario's baseline figures, or None when it has no baseline."""
        if self.results is not None:
            return self._from_results(suite, sc)
        doc = self.document(suite, sc)
        if doc is None:
            return None
        figures = {
            name: float(score["median"])
            for name, score in (doc.get("scores") or {}).items()
            if isinstance(score, dict) and isinstance(score.get("median"), (int, float))
        }
        score = (doc.get("scores") or {}).get(sc.judged) or {}
        name = f"{doc.get('key') or baseline_key(suite, sc.name)}"
        match, note = _match(doc, self.hardware, name)
        source = f"baseline {name} revision {doc.get('revision')} ({score.get('n')} runs)"
        return Expected(figures, source, match, note)

    def _from_results(self, suite: str, sc: Scenario) -> Expected | None:
        assert self.results is not None
        for entry in self.results.get("scenarios", []):
            if not isinstance(entry, dict):
                continue
            if entry.get("suite", suite) == suite and entry.get("name") == sc.name:
                flat = entry.get("metrics_flat") or {}
                figures = {
                    k: float(v)
                    for k, v in flat.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                }
                if sc.judged not in figures:
                    return None
                match, note = _match(self.results, self.hardware, self.label)
                return Expected(figures, f"{self.label} ({entry.get('run_id')})", match, note)
        return None


def save_baseline(root: Path, doc: dict[str, Any], hardware: dict[str, Any], now: str) -> str:
    """Add a scenario run to its hardware class's baseline (see the module's text)."""
    store = BaselineStore.under(root)
    suite, scenario = str(doc["name"]), doc.get("scenario")
    plain = store.find(suite, scenario)
    own_path = store.path(hardware_key(suite, str(scenario), hardware))
    own = read_baseline(own_path) if own_path.exists() else None
    theirs = hardware_of(plain)
    if own is not None:
        new = update_baseline(own, [doc], now)
    elif plain is not None and theirs is not None and theirs["id"] == hardware["id"]:
        new = update_baseline(plain, [doc], now)
    elif plain is None:
        new = create_baseline([doc], now)
    else:  # the plain slot holds another (or an unknown) machine's figures
        new = {**create_baseline([doc], now), "key": own_path.stem}
    new["hardware"] = {k: hardware.get(k) for k in (*FIELDS, "id", "label")}
    path = store.save(new)
    return f"baseline {new['key']} revision {new['revision']}: {path}"
