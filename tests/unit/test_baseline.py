"""Baselines: made from completed runs, versioned by revision, read back with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_tracker.analysis.baseline import (
    BaselineStore,
    baseline_key,
    create_baseline,
    read_baseline,
    update_baseline,
)
from otel_tracker.errors import OtelTrackerError


def run_doc(run_id: str, collect_s: float, *, status: str = "completed", **over: object) -> dict:
    return {
        "run_id": run_id,
        "name": "imitation-pipeline",
        "scenario": "nightly",
        "status": status,
        "started_at": "2026-11-20T01:00:00Z",
        "duration_s": collect_s + 10,
        "steps": [
            {
                "name": "Collect",
                "status": "completed",
                "duration_s": collect_s,
                "progress": {"completed": 12_000, "unit": "env steps"},
            },
            {"name": "Train", "status": "completed", "duration_s": 10.0, "progress": {}},
            {"name": "Fine-tune", "status": "skipped", "duration_s": None},
        ],
        "scores": {"return": {"latest": 190.0, "direction": "max"}},
        **over,
    }


def test_create_summarizes_each_step_and_score() -> None:
    doc = create_baseline([run_doc("a", 10.0), run_doc("b", 12.0), run_doc("c", 30.0)], "T1")
    assert (
        doc["key"] == "imitation-pipeline--nightly" == baseline_key("imitation-pipeline", "nightly")
    )
    assert doc["revision"] == 1 and doc["baseline_version"] == 1
    collect = doc["steps"]["Collect"]
    assert collect["runs"] == 3
    assert collect["duration_s"]["median"] == 12.0
    assert collect["throughput"] == {
        "unit": "env steps/s",
        "n": 3,
        "median": 1000.0,
        "mean": pytest.approx((1200 + 1000 + 400) / 3, abs=1e-5),
        "min": 400.0,
        "max": 1200.0,
    }
    assert "throughput" not in doc["steps"]["Train"]
    assert "Fine-tune" not in doc["steps"]  # skipped steps set no expectation
    assert doc["scores"]["return"]["median"] == 190.0
    assert [r["run_id"] for r in doc["source_runs"]] == ["a", "b", "c"]


def test_update_adds_runs_as_a_new_revision_and_replace_starts_over() -> None:
    first = create_baseline([run_doc("a", 10.0)], "T1")
    second = update_baseline(first, [run_doc("b", 20.0), run_doc("a", 10.0)], "T2")
    assert second["revision"] == 2 and second["created_at"] == "T1"
    assert [r["run_id"] for r in second["source_runs"]] == ["b", "a"]
    assert second["steps"]["Collect"]["duration_s"]["median"] == 15.0
    assert [r["runs"] for r in second["revisions"]] == [["a"], ["b", "a"]]
    third = update_baseline(second, [run_doc("c", 40.0)], "T3", replace=True)
    assert third["revision"] == 3 and [r["run_id"] for r in third["source_runs"]] == ["c"]


def test_only_completed_runs_of_one_pipeline_make_a_baseline() -> None:
    with pytest.raises(OtelTrackerError, match="run b is failed"):
        create_baseline([run_doc("a", 1.0), run_doc("b", 1.0, status="failed")], "T")
    with pytest.raises(OtelTrackerError, match="different pipelines"):
        create_baseline([run_doc("a", 1.0), run_doc("b", 1.0, scenario="smoke")], "T")
    base = create_baseline([run_doc("a", 1.0)], "T")
    with pytest.raises(OtelTrackerError, match="different pipelines"):
        update_baseline(base, [run_doc("b", 1.0, name="other")], "T")
    with pytest.raises(OtelTrackerError, match="at least one run"):
        create_baseline([], "T")


def test_store_round_trip_and_lookup(tmp_path: Path) -> None:
    store = BaselineStore.under(tmp_path)
    path = store.save(create_baseline([run_doc("a", 10.0)], "T1"))
    assert path == tmp_path / "baselines" / "imitation-pipeline--nightly.json"
    assert path.read_text().startswith("{\n  ")  # indented: meant to be read and diffed
    assert store.find("imitation-pipeline", "nightly")["revision"] == 1
    assert store.find("imitation-pipeline", None) is None
    assert store.load("imitation-pipeline--nightly")["pipeline"] == "imitation-pipeline"
    assert store.load(str(path))["key"] == "imitation-pipeline--nightly"
    with pytest.raises(
        OtelTrackerError, match=r"no baseline 'nope' .*known: imitation-pipeline--nightly"
    ):
        store.load("nope")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON \\(line 1"),
        ("[]", "not an otel-tracker baseline"),
        ('{"baseline_version": 99}', "newer than this otel-tracker reads"),
        (
            '{"baseline_version": 1, "pipeline": "p", "steps": []}',
            "not a usable baseline \\(top level: missing 'key', 'scenario', 'revision', 'source_runs'",
        ),
    ],
)
def test_bad_baseline_files_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(OtelTrackerError, match=message):
        read_baseline(path)


def test_a_baseline_file_is_plain_json_with_its_runs(tmp_path: Path) -> None:
    path = BaselineStore.under(tmp_path).save(create_baseline([run_doc("a", 10.0)], "T1"))
    doc = json.loads(path.read_text())
    assert doc["source_runs"][0]["steps"]["Collect"] == {
        "duration_s": 10.0,
        "items": 12_000,
        "unit": "env steps",
        "throughput": 1200.0,
    }
