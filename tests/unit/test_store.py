"""RunStore over real directories: ordering, filters, references, bad files, recovery."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from otel_tracker.config import ReaderConfig
from otel_tracker.errors import OtelTrackerError, RunNotFoundError
from otel_tracker.history.store import BadManifestError, Filters, RunStore
from otel_tracker.status import get_all_run_status, get_run_status
from tests.helpers import load_manifest, make_run

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def _store(root: Path, **kw: Any) -> RunStore:
    return RunStore(config=ReaderConfig.resolve(root=root, environ={}), **kw)


@pytest.fixture
def history(root: Path, template_manifest: dict[str, Any]) -> list[Path]:
    runs = []
    for i, (name, status, scenario) in enumerate(
        [
            ("imitation", "completed", "quick"),
            ("imitation", "failed", "full"),
            ("etl", "completed", None),
            ("imitation", "cancelled", "quick"),
            ("etl", "completed", None),
        ]
    ):
        runs.append(
            make_run(
                root,
                template_manifest,
                name=name,
                status=status,
                scenario=scenario,
                started=T0 + timedelta(days=i),
            )
        )
    return runs


def test_newest_first_and_limit(root: Path, history: list[Path]) -> None:
    views = _store(root).list(limit=3)
    assert [v.path for v in views] == history[::-1][:3]
    assert len(_store(root).list(limit=None)) == 5
    with pytest.raises(OtelTrackerError):
        _store(root).list(limit=0)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(statuses=frozenset({"failed", "cancelled"})), [3, 1]),
        (Filters(name="etl"), [4, 2]),
        (Filters(name="imi*"), [3, 1, 0]),
        (Filters(scenario="quick"), [3, 0]),
        (Filters(since=(T0 + timedelta(days=2)).timestamp()), [4, 3, 2]),
        (Filters(until=(T0 + timedelta(days=1, hours=1)).timestamp()), [1, 0]),
        (
            Filters(
                since=(T0 + timedelta(days=1)).timestamp(),
                until=(T0 + timedelta(days=3)).timestamp(),
                name="imitation",
            ),
            [3, 1],
        ),
    ],
)
def test_filters(root: Path, history: list[Path], filters: Filters, expected: list[int]) -> None:
    assert [v.path for v in _store(root).list(filters, limit=None)] == [
        history[i] for i in expected
    ]


def test_outdated(root: Path, history: list[Path]) -> None:
    now = (T0 + timedelta(days=40)).timestamp()
    store = RunStore(
        config=ReaderConfig.resolve(root=root, outdated_after=37 * 86400, environ={}),
        now=lambda: now,
    )
    assert [v.path for v in store.list(Filters(outdated=True), limit=None)] == history[:3][::-1]


def test_references(root: Path, history: list[Path]) -> None:
    store = _store(root)
    assert store.resolve("latest") == history[-1]
    assert store.resolve(history[1].name) == history[1]
    assert store.resolve(history[1].name[:12]) == history[1]  # unique prefix
    assert store.resolve(str(history[2])) == history[2]  # a path
    with pytest.raises(RunNotFoundError, match="ambiguous"):
        store.resolve("202611")
    with pytest.raises(RunNotFoundError, match="no run matches"):
        store.resolve("19990101")
    with pytest.raises(RunNotFoundError):
        _store(root / "empty").resolve("latest")


def test_bad_files_are_reported_once_and_skipped(
    root: Path, history: list[Path], tmp_path: Path
) -> None:
    bad = {
        "20261201T000000.000Z-empty-aaaaaa": b"",
        "20261201T000001.000Z-trunc-aaaaaa": b'{"schema_version": 1, "run_id": "x',
        "20261201T000002.000Z-nonjson-aaaaaa": b"\x00\xffnot json",
        "20261201T000003.000Z-list-aaaaaa": b"[1, 2]",
    }
    for name, data in bad.items():
        (root / name).mkdir()
        (root / name / "manifest.json").write_bytes(data)
    wrong = json.loads((history[0] / "manifest.json").read_text())
    for name, change in {
        "20261201T000004.000Z-future-aaaaaa": {"schema_version": 99},
        "20261201T000005.000Z-types-aaaaaa": {"steps": "many"},
        "20261201T000006.000Z-status-aaaaaa": {"status": "exploded"},
    }.items():
        (root / name).mkdir()
        (root / name / "manifest.json").write_text(json.dumps({**wrong, "run_id": name, **change}))
    empty_dir = root / "20261201T000007.000Z-nomanifest-aaaaaa"
    empty_dir.mkdir()
    os.utime(empty_dir, (0, 0))  # old: not a run that is just starting
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "manifest.json").write_text("{}")
    (root / "20261201T000008.000Z-symlink-aaaaaa").symlink_to(outside, target_is_directory=True)
    (root / ".manifest.json.123.0.tmp").write_text("{")  # stray temp file
    (root / "baselines").mkdir()  # not a run directory name: ignored silently

    store = _store(root)
    views = store.list(limit=None)
    # an old directory without a manifest is a run that died starting (see test_startup_kills)
    assert [v.path for v in views] == [empty_dir, *history[::-1]]
    assert views[0].status == "aborted" and "during start-up" in str(views[0].inference.reason)
    assert len(store.problems) == 8
    for needle in (
        "empty",
        "not valid JSON",
        "not a JSON object",
        "newer than",
        "'steps' is not a list",
        "unknown status",
        "symbolic link",
    ):
        assert any(needle in p for p in store.problems), needle
    with pytest.raises(BadManifestError, match="newer than"):
        store.get("20261201T000004")
    with pytest.raises(BadManifestError, match="empty"):
        store.get("20261201T000000")


def test_a_run_directory_being_created_is_not_a_problem(root: Path, history: list[Path]) -> None:
    (root / "20261201T000000.000Z-starting-aaaaaa").mkdir()
    store = _store(root)
    assert len(store.list(limit=None)) == 5 and store.problems == []


def test_recover_finalizes_an_aborted_run(root: Path, template_manifest: dict[str, Any]) -> None:
    steps = json.loads(json.dumps(template_manifest["steps"]))
    steps[2]["status"] = "running"
    path = make_run(root, template_manifest, status="running", steps=steps, started=T0)
    (path / ".lock").write_text("")  # lock file present but not held: the process is gone
    store = _store(root)
    view = store.get("latest")
    assert view.status == "aborted" and view.doc["last_completed_step"] == "b"
    recovered = store.recover("latest")
    doc = load_manifest(recovered.manifest_path)  # still schema-valid
    assert doc["status"] == "aborted" and recovered.status == "aborted"
    assert doc["steps"][2]["status"] == "failed" and doc["steps"][2]["error"]["type"] == "Aborted"
    assert doc["steps"][1]["progress"]["completed"] == 4  # partial data kept
    assert doc["recovered"]["reason"]
    with pytest.raises(OtelTrackerError, match="already finalized as aborted"):
        store.recover("latest")


def test_typed_status_api(
    root: Path, history: list[Path], template_manifest: dict[str, Any]
) -> None:
    st = get_run_status(history[1].name, root=root)
    assert (st.run_id, st.status, st.name, st.scenario) == (
        history[1].name,
        "failed",
        "imitation",
        "full",
    )
    assert st.work_dir == history[1]
    assert st.progress.completed == 2 and st.progress.total == 3 and st.progress.unit == "steps"
    assert st.progress.percent == pytest.approx(66.7)
    every = get_all_run_status(root)
    assert [s.work_dir for s in every] == history[::-1]
    assert [s.status for s in get_all_run_status(root, statuses=("failed",))] == ["failed"]


def test_status_reports_scores_and_early_stop(root: Path) -> None:
    from otel_tracker import track_run

    with track_run(
        "trainer",
        root=root,
        kind="training",
        steps=["train", "evaluate"],
        install_signal_handlers=False,
    ) as run:
        with run.step("train") as s:
            s.set_total(100, unit="epochs")
            s.advance(37)  # early stopping
        run.log_scores({"return": 5.0, "loss": 2.0}, direction={"loss": "min"})
        run.log_scores({"return": 3.0, "loss": 1.0})
    st = get_run_status("latest", root=root)
    assert st.kind == "training" and st.status == "completed"
    assert st.progress.early_stopped and st.progress.stopped_at == "train: 37/100 epochs"
    assert st.best_scores == {"return": 5.0, "loss": 1.0}
    assert st.latest_scores == {"return": 3.0, "loss": 1.0}
    assert st.process.pid == os.getpid() and st.updated_at
