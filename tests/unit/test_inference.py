"""Status inference with injected clocks, hosts and pid probes (the lock is real)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from otel_tracker.contract.liveness import RunLock
from otel_tracker.contract.run_status import infer_status

T0 = 1_800_000_000.0


def _iso(ts: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _running(template: dict[str, Any], **process: Any) -> dict[str, Any]:
    doc = copy.deepcopy(template)
    doc["status"] = "running"
    doc["heartbeat_at"] = _iso(T0)
    doc["process"].update({"host": "here", "pid": 4242, "start_time": 1000.0, **process})
    return doc


def _infer(
    doc: dict[str, Any], run_dir: Path, now: float = T0 + 1, host: str = "here", probe: Any = None
) -> Any:
    return infer_status(
        doc,
        run_dir,
        now=now,
        host=host,
        stale_after=120,
        stuck_after=900,
        pid_probe=probe or (lambda pid: 1000.0),
    )


def test_finished_runs_keep_their_status(tmp_path: Path, template_manifest: dict[str, Any]) -> None:
    assert _infer(template_manifest, tmp_path).status == "completed"


def test_free_lock_means_aborted_even_if_pid_looks_alive(
    tmp_path: Path, template_manifest: dict[str, Any]
) -> None:
    (tmp_path / ".lock").write_text("")
    result = _infer(_running(template_manifest), tmp_path)
    assert (result.status, result.alive) == ("aborted", False)
    assert "run lock is released" in result.reason


def test_held_lock_means_alive(tmp_path: Path, template_manifest: dict[str, Any]) -> None:
    lock = RunLock(tmp_path / ".lock")
    assert lock.acquire()
    try:
        assert (
            _infer(_running(template_manifest), tmp_path, probe=lambda pid: False).status
            == "running"
        )
    finally:
        lock.release()


def test_pid_gone_or_reused(tmp_path: Path, template_manifest: dict[str, Any]) -> None:
    doc = _running(template_manifest)
    doc["tracker"]["lock_file"] = None  # the run could not lock: pid evidence decides
    assert _infer(doc, tmp_path, probe=lambda pid: False).status == "aborted"
    reused = _infer(doc, tmp_path, probe=lambda pid: 5000.0)
    assert reused.status == "aborted" and "another process" in reused.reason
    assert _infer(doc, tmp_path, probe=lambda pid: 1000.4).status == "running"


def test_other_host_uses_the_heartbeat(tmp_path: Path, template_manifest: dict[str, Any]) -> None:
    doc = _running(template_manifest, host="elsewhere")
    (tmp_path / ".lock").write_text("")  # a lock on another host's run proves nothing here
    assert _infer(doc, tmp_path, now=T0 + 60).status == "running"
    stale = _infer(doc, tmp_path, now=T0 + 600)
    assert stale.status == "aborted" and "no heartbeat for 10m" in stale.reason


def test_stuck_when_progress_stops(tmp_path: Path, template_manifest: dict[str, Any]) -> None:
    doc = _running(template_manifest)
    doc["tracker"]["lock_file"] = None
    step = doc["steps"][2]
    step.update(status="running", started_at=_iso(T0 - 5000))
    step["progress"].update(completed=10, total=100, updated_at=_iso(T0 - 1000))
    stuck = _infer(doc, tmp_path)
    assert stuck.status == "stuck" and "no progress in step 'c'" in stuck.reason
    step["progress"]["updated_at"] = _iso(T0 - 60)
    assert _infer(doc, tmp_path).status == "running"


def test_stuck_by_expected_duration_without_progress(
    tmp_path: Path, template_manifest: dict[str, Any]
) -> None:
    doc = _running(template_manifest)
    doc["tracker"]["lock_file"] = None
    step = doc["steps"][2]
    step.update(status="running", started_at=_iso(T0 - 1500), expected_duration_s=100.0)
    step["progress"].update(completed=0, total=None)
    assert _infer(doc, tmp_path).status == "stuck"
    step["expected_duration_s"] = None  # no progress, no expectation: never guessed stuck
    assert _infer(doc, tmp_path).status == "running"
