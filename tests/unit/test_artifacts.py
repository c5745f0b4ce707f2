from __future__ import annotations

import json
import os
import time
from pathlib import Path

from otel_tracker.launch.artifacts import HINTS_FILE, scan


def _touch(path: Path, data: bytes = b"x", mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_kinds_recency_and_exclusions(tmp_path: Path) -> None:
    start = time.time()
    _touch(tmp_path / "runs" / "exp1" / "events.out.tfevents.1700000000.host.1.0")
    _touch(tmp_path / "runs" / "exp1" / "events.out.tfevents.1700000001.host.1.0")
    _touch(tmp_path / "ckpt" / "model.safetensors")
    _touch(tmp_path / "ckpt" / "old.pt", mtime=start - 3600)  # from an earlier run: not ours
    (tmp_path / "wandb" / "offline-run-20261123_120000-abc").mkdir(parents=True)
    _touch(tmp_path / "train.log")
    _touch(tmp_path / ".git" / "objects" / "model.pt")  # hidden: skipped
    _touch(tmp_path / "output" / "run-tracker" / "x" / "a.log")  # the runs root: excluded
    (tmp_path / "linked").symlink_to(tmp_path / "ckpt", target_is_directory=True)
    found, problems = scan(tmp_path, since=start, exclude=(tmp_path / "output" / "run-tracker",))
    kinds = {str(a.path.relative_to(tmp_path)): a.kind for a in found}
    assert kinds == {
        "runs/exp1": "tensorboard",
        "ckpt/model.safetensors": "checkpoint",
        "wandb/offline-run-20261123_120000-abc": "wandb",
        "train.log": "log",
    }
    assert problems == []


def test_hints_are_validated(tmp_path: Path) -> None:
    _touch(tmp_path / "results" / "metrics.csv")
    (tmp_path / HINTS_FILE).write_text(
        json.dumps(
            [
                {"path": "results/metrics.csv", "kind": "metrics"},
                {"path": "../../etc/passwd", "kind": "secret"},
                {"path": "missing.bin", "kind": "model"},
                {"kind": "no-path"},
            ]
        )
    )
    found, problems = scan(tmp_path)
    assert [(a.path.name, a.kind) for a in found] == [("metrics.csv", "metrics")]
    assert len(problems) == 3
    assert any("outside" in p for p in problems) and any("does not exist" in p for p in problems)
    (tmp_path / HINTS_FILE).write_text("{not json")
    assert "not valid JSON" in scan(tmp_path)[1][0]


def test_the_walk_is_bounded(tmp_path: Path) -> None:
    for i in range(50):
        _touch(tmp_path / f"d{i}" / "x.log")
    found, problems = scan(tmp_path, max_files=20)
    assert len(found) < 50 and problems and "stopped after" in problems[0]


def test_a_hints_file_is_read_bounded_and_never_through_a_link(tmp_path: Path) -> None:
    secret = _touch(tmp_path.parent / f"{tmp_path.name}-outside.json", b'[{"path": "x"}]')
    (tmp_path / HINTS_FILE).symlink_to(secret)
    assert "symbolic link, not followed" in scan(tmp_path)[1][0]
    (tmp_path / HINTS_FILE).unlink()
    (tmp_path / HINTS_FILE).write_text("[" + " " * (2 * 1024 * 1024) + "]")
    assert "larger than" in scan(tmp_path)[1][0]
