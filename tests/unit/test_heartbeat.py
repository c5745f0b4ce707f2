"""Heartbeats written by another process never land over newer state (heartbeat.py)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from otel_tracker.contract.heartbeat import HeartbeatCommitter, generation_path
from otel_tracker.contract.manifest_writer import ManifestFileWriter


def _doc(path: Path) -> dict[str, int]:
    return json.loads(path.read_text())


def test_a_heartbeat_encoded_before_a_state_change_is_dropped(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    writer = ManifestFileWriter(manifest)
    assert writer.write({"step": 1})
    assert writer.share() == generation_path(manifest)
    helper = HeartbeatCommitter()

    early = writer.heartbeat_payload({"step": 1, "beat": 1})
    assert early is not None
    assert helper.write(manifest, *early) is True  # nothing changed since: it lands
    assert _doc(manifest) == {"step": 1, "beat": 1}

    stale = writer.heartbeat_payload({"step": 1, "beat": 2})
    assert writer.write({"step": 2})  # the step ended after that heartbeat was encoded
    assert stale is not None
    assert helper.write(manifest, *stale) is False
    assert _doc(manifest) == {"step": 2}  # not set back to step 1

    fresh = writer.heartbeat_payload({"step": 2, "beat": 3})
    assert fresh is not None
    assert helper.write(manifest, *fresh) is True
    assert _doc(manifest) == {"step": 2, "beat": 3}
    assert (helper.written, helper.dropped) == (2, 1)
    assert not list(tmp_path.glob(".*tmp"))  # the dropped one's temp file is gone too

    # a heartbeat written here changes no state: the helper's later one still lands
    assert writer.write({"step": 2, "beat": 4}, durable=False)
    later = writer.heartbeat_payload({"step": 2, "beat": 5})
    assert later is not None and helper.write(manifest, *later) is True
    helper.close()


def test_unshare_removes_the_file_and_heartbeats_come_back_here(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    writer = ManifestFileWriter(manifest)
    assert writer.heartbeat_payload({"a": 1}) is None  # not shared: write it yourself
    writer.share()
    assert writer.heartbeat_payload({"a": 1}) is not None
    writer.unshare()
    assert writer.heartbeat_payload({"a": 1}) is None
    assert not generation_path(manifest).exists()
    assert writer.write({"a": 2}) and _doc(manifest) == {"a": 2}


def test_only_the_owner_shares(tmp_path: Path) -> None:
    writer = ManifestFileWriter(tmp_path / "m.json", owner_pid=os.getpid() + 1)
    assert writer.share() is None
    assert writer.heartbeat_payload({"a": 1}) is None
    assert list(tmp_path.iterdir()) == []


def test_a_failed_helper_write_is_one_warning_with_the_writers_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = tmp_path / "m.json"
    writer = ManifestFileWriter(manifest)
    writer.share()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            writer.report(OSError(28, "No space left on device"))
    assert len(caplog.records) == 1
    assert "disk full?" in caplog.records[0].getMessage()
    assert writer.failures == 3


def test_a_refresh_never_waits_for_a_write_under_way(tmp_path: Path) -> None:
    """The sampler thread writes heartbeats and is joined at the run's end, perhaps
    by a signal handler that interrupted a transition's write on the main thread."""
    import threading

    writer = ManifestFileWriter(tmp_path / "m.json")
    writer.share()
    results: list[object] = []

    def doc() -> dict[str, int]:
        # inside a transition's write: another thread's refresh must not block
        worker = threading.Thread(
            target=lambda: results.extend(
                [writer.heartbeat_payload({"beat": 1}), writer.write({"beat": 1}, durable=False)]
            )
        )
        worker.start()
        worker.join(timeout=5)
        assert not worker.is_alive()
        return {"step": 1}

    assert writer.write(doc)
    assert results == [None, False]
    assert _doc(tmp_path / "m.json") == {"step": 1}
