from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import pytest

from otel_tracker.contract import atomic
from otel_tracker.contract.atomic import write_json_atomic
from otel_tracker.contract.manifest_writer import ManifestFileWriter


def test_write_and_no_temp_files_left(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    for i in range(5):
        write_json_atomic(target, {"i": i})
    assert json.loads(target.read_text()) == {"i": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_nan_is_rejected_not_written(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    writer = ManifestFileWriter(target)
    assert writer.write({"x": float("nan")}) is False
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_only_the_owner_pid_writes(tmp_path: Path) -> None:
    writer = ManifestFileWriter(tmp_path / "m.json", owner_pid=os.getpid() + 1)
    assert writer.write({"a": 1}) is False
    assert not (tmp_path / "m.json").exists()


def test_unwritable_directory_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    writer = ManifestFileWriter(blocker / "m.json")
    with caplog.at_level(logging.WARNING):
        assert writer.write({"a": 1}) is False
        assert writer.write({"a": 2}) is False
    assert writer.failures == 2
    assert caplog.text.count("could not write") == 1


def test_disk_full_is_reported_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "m.json"
    writer = ManifestFileWriter(target)
    assert writer.write({"v": 1})
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "write", full)
    with caplog.at_level(logging.WARNING):
        assert writer.write({"v": 2}) is False
    assert "disk full" in caplog.text
    assert json.loads(target.read_text()) == {"v": 1}  # the previous version survives intact
    assert list(tmp_path.glob(".*tmp")) == []
    monkeypatch.setattr(atomic.os, "write", real_write)
    assert writer.write({"v": 3})
    assert json.loads(target.read_text()) == {"v": 3}


def test_overtaken_write_does_not_replace_newer_content(tmp_path: Path) -> None:
    """A write re-entered mid-write (as from a signal handler) wins over the outer one."""
    target = tmp_path / "m.json"
    writer = ManifestFileWriter(target)

    def outer_doc() -> dict[str, str]:
        writer.write({"version": "newer, written from inside"})
        return {"version": "older, serialized first"}

    assert writer.write(outer_doc)
    assert json.loads(target.read_text()) == {"version": "newer, written from inside"}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_fragment_encoder_writes_what_dump_json_writes_as_the_document_changes() -> None:
    from otel_tracker.contract.atomic import FragmentEncoder, dump_json

    encode = FragmentEncoder(("steps",), ("eta", "log"))
    steps = [{"name": f"s{i}", "status": "pending", "progress": {"completed": 0}} for i in range(5)]
    log: list[dict] = []
    for i in range(5):
        steps[i] = {**steps[i], "status": "running"}
        log.append({"event": "start", "index": i})
        doc = {"steps": list(steps), "eta": {"history_runs": 0, "log": list(log)}, "n": i}
        assert encode(doc) == dump_json(doc)
        steps[i] = {**steps[i], "status": "completed", "progress": {"completed": i}}
        doc = {"steps": list(steps), "eta": {"log": log[:2]}, "n": i}  # lists also shrink
        assert encode(doc) == dump_json(doc)
    # a value that happens to look like the encoder's mark still round-trips
    hostile = {"steps": [{"name": "\x00otel-tracker-list-0\x00"}], "eta": None}
    assert json.loads(encode(hostile)) == hostile
    assert encode({"steps": None}) == dump_json({"steps": None})


def test_fragment_encoder_reencodes_only_new_items_of_a_sliding_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A capped list drops its oldest item as it grows (the manifest's ETA log):
    its items move, and must not all be encoded again on every write."""
    from otel_tracker.contract.atomic import FragmentEncoder, dump_json

    encoded: list[object] = []
    real = atomic._compact
    monkeypatch.setattr(atomic, "_compact", lambda item: encoded.append(item) or real(item))
    encode = FragmentEncoder(("eta", "log"))
    log = [{"at": i, "event": "end"} for i in range(20)]
    encode({"eta": {"log": list(log)}})
    for i in range(20, 60):
        log.append({"at": i, "event": "end"})
        del log[:-20]
        encoded.clear()
        doc = {"eta": {"log": list(log)}}
        assert encode(doc) == dump_json(doc)
        assert encoded == [log[-1]]


def test_a_heartbeat_write_skips_fsync_but_stays_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """State changes are fsynced; a heartbeat refresh is not (each system call of the
    heartbeat thread costs the pipeline a GIL hand-off), yet still lands by rename."""
    target = tmp_path / "m.json"
    writer = ManifestFileWriter(target)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    assert writer.write({"v": 1})
    durable_syncs = len(synced)
    assert durable_syncs == 2  # the file, then its directory
    assert writer.write({"v": 2}, durable=False)
    assert len(synced) == durable_syncs
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
