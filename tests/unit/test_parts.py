"""Part files and joining: merged idempotently, never cyclic, never joined by mistake."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from otel_tracker import track_run
from otel_tracker.contract.parts import merge_parts, merge_run_parts
from otel_tracker.history.store import RunStore
from otel_tracker.record.join import join_target


def _step(name: str, span: str, status: str = "completed") -> dict:
    return {"index": 0, "name": name, "status": status, "span_id": span, "progress": {}}


def _part(pid: int, parent: str | None, *steps: dict, status: str = "completed") -> dict:
    return {
        "name": f"part {pid}",
        "status": status,
        "process": {"pid": pid},
        "part": {"id": f"p{pid}", "parent_span_id": parent},
        "steps": list(steps),
    }


def test_parts_nest_under_their_launching_step_and_merging_twice_changes_nothing() -> None:
    doc = {"steps": [_step("outer", "a" * 16)]}
    child = _part(1, "a" * 16, _step("inner", "b" * 16))
    grandchild = _part(2, "b" * 16, _step("deepest", "c" * 16))
    merge_parts(doc, [grandchild, child])  # order of the files does not matter
    once = json.dumps(doc, sort_keys=True)
    [inner] = doc["steps"][0]["substeps"]
    assert inner["name"] == "inner" and inner["substeps"][0]["name"] == "deepest"
    assert [p["parent_step"] for p in doc["parts"]] == ["inner", "outer"]
    merge_parts(doc, [grandchild, child])
    assert json.dumps(doc, sort_keys=True) == once


def test_a_parts_params_and_artifacts_are_the_runs_once_each() -> None:
    doc = {
        "steps": [_step("outer", "a" * 16)],
        "params": {"command": ["python", "train.py"], "epochs": 3},
        "artifacts": [{"path": "/w/best.ckpt", "kind": "checkpoint", "size_bytes": 9}],
    }
    child = _part(1, "a" * 16, _step("fit", "b" * 16))
    child["params"] = {"lr": 0.1, "epochs": 99}  # the launcher's own value wins
    child["artifacts"] = [
        {"path": "/w/best.ckpt", "kind": "checkpoint", "size_bytes": 9, "best": True},
        {"path": "/w/last.ckpt", "kind": "checkpoint", "size_bytes": 9},
    ]
    merge_parts(doc, [child])
    once = json.dumps(doc, sort_keys=True)
    assert doc["params"] == {"command": ["python", "train.py"], "epochs": 3, "lr": 0.1}
    assert [(a["path"], a.get("best"), a["part"]) for a in doc["artifacts"]] == [
        ("/w/best.ckpt", True, "p1"),  # found by the launcher's scan too: one entry
        ("/w/last.ckpt", None, "p1"),
    ]
    merge_parts(doc, [child])
    assert json.dumps(doc, sort_keys=True) == once


def test_hostile_span_ids_cannot_make_a_cycle() -> None:
    doc = {"steps": [_step("outer", "a" * 16)]}
    # each names a span of the other; neither is reachable from the run's steps
    left = _part(1, "d" * 16, _step("l", "c" * 16))
    right = _part(2, "c" * 16, _step("r", "d" * 16))
    merge_parts(doc, [left, right])
    json.dumps(doc)  # no recursion
    assert "substeps" not in doc["steps"][0]
    assert [p["parent_step"] for p in doc["parts"]] == [None, None]


def test_a_running_step_of_an_aborted_part_is_failed() -> None:
    doc = {"steps": [_step("outer", "a" * 16)]}
    part = _part(1, "a" * 16, _step("fit", "b" * 16, status="running"), status="running")
    merge_parts(doc, [part], status_of=lambda p: "aborted")
    assert doc["parts"][0]["status"] == "aborted"
    assert doc["steps"][0]["substeps"][0]["status"] == "failed"


def test_a_bad_part_file_is_one_problem_and_the_rest_merge(tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "a.json").write_text("{not json")
    (parts / "b.json").write_text(json.dumps({"name": "no part section", "steps": []}))
    (parts / "c.json").write_text(json.dumps(_part(7, "a" * 16, _step("ok", "b" * 16))))
    doc = {"steps": [_step("outer", "a" * 16)]}
    problems = merge_run_parts(doc, tmp_path, now=0.0, host="h", stale_after=120, stuck_after=900)
    assert len(problems) == 2 and "a.json" in problems[0] and "b.json" in problems[1]
    assert [s["name"] for s in doc["steps"][0]["substeps"]] == ["ok"]


def test_a_finished_or_missing_run_is_not_joined(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "runs"
    with track_run("done", root=root, resources=False, progress="off") as run:
        pass
    with caplog.at_level(logging.WARNING):
        assert join_target({"OTEL_TRACKER_RUN_DIR": str(run.dir)}) is None
        assert join_target({"OTEL_TRACKER_RUN_DIR": str(tmp_path / "nowhere")}) is None
    assert "names a run that is completed" in caplog.text
    assert "is not a run directory" in caplog.text
    # a stale variable makes a run of its own, never a part of a finished one
    with track_run(
        "after",
        root=root,
        resources=False,
        progress="off",
        environ={"OTEL_TRACKER_RUN_DIR": str(run.dir)},
    ) as later:
        pass
    assert later.join is None and later.dir != run.dir
    assert len(RunStore.open(root).list()) == 2


def test_join_false_keeps_a_child_on_its_own(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    with track_run("parent", root=root, resources=False, progress="off") as parent:
        env = {"OTEL_TRACKER_RUN_DIR": str(parent.dir)}
        with track_run("joins", root=root, resources=False, progress="off", environ=env) as a:
            pass
        with track_run(
            "alone", root=root, resources=False, progress="off", environ=env, join=False
        ) as b:
            pass
    assert a.join is not None and a.manifest_path.parent == parent.dir / "parts"
    assert b.join is None
    names = sorted(v.doc["name"] for v in RunStore.open(root).list())
    assert names == ["alone", "parent"]
    parts = RunStore.open(root).get(parent.run_id).doc["parts"]
    assert [(p["name"], p["status"], p["parent_step"]) for p in parts] == [
        ("joins", "completed", None)  # no TRACEPARENT: listed, nested under no step
    ]


def test_user_metrics_add_up_over_processes_and_merging_again_counts_nothing_twice() -> None:
    from otel_tracker.contract.user_metrics import merge_user_metrics

    doc = {"user_metrics": {"counters": {"items": 1.0}, "gauges": {"fps": 10.0}}}
    parts = [
        {"user_metrics": {"counters": {"items": 2.0, "late": 1.0}, "gauges": {"fps": 20.0}}},
        {"user_metrics": {"counters": {"items": "3", True: 1}, "gauges": None}},  # damaged
        {"user_metrics": {"counters": {"items": 4.0}, "gauges": {"fps": 30.0}}},
    ]
    merge_user_metrics(doc, parts)
    merge_user_metrics(doc, parts)  # a reader merges a manifest the writer merged
    assert doc["user_metrics"]["counters"] == {"items": 7.0, "late": 1.0}
    assert doc["user_metrics"]["gauges"] == {"fps": 30.0}  # the latest process's
    assert doc["user_metrics"]["own"] == {"counters": {"items": 1.0}, "gauges": {"fps": 10.0}}


def test_a_jobs_ranks_add_onto_rank_0_and_its_joined_parts() -> None:
    from otel_tracker.contract.user_metrics import merge_user_metrics

    doc = {"user_metrics": {"counters": {"episodes": 1.0}}}
    merge_user_metrics(doc, [{"user_metrics": {"counters": {"episodes": 10.0}}}])  # joined
    ranks = [{"user_metrics": {"counters": {"episodes": 100.0}}}]
    merge_user_metrics(doc, ranks, onto_merged=True)
    assert doc["user_metrics"]["counters"] == {"episodes": 111.0}
