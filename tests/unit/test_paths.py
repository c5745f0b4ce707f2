from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from otel_tracker.contract import paths
from otel_tracker.contract.paths import RUN_ID_PATTERN, create_run_dir, new_run_id, slugify


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Imitation Pipeline", "imitation-pipeline"),
        ("../../etc/passwd", "etc-passwd"),
        ("Ünïcödé  run!", "unicode-run"),
        ("", "run"),
        ("///", "run"),
        ("x" * 100, "x" * 40),
    ],
)
def test_slug_is_safe(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_run_ids_are_unique_and_sort_by_time() -> None:
    t0 = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=timezone.utc)
    ids = [new_run_id("b" if i % 2 else "a", t0 + timedelta(milliseconds=i)) for i in range(50)]
    assert len(set(ids)) == 50
    assert sorted(ids) == ids
    assert all(RUN_ID_PATTERN.match(i) for i in ids)
    assert ids[0].startswith("20260102T030405.006Z-a-")


def test_run_dir_creation_is_exclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = "20260101T000000.000Z-x-aaaaaa"
    (tmp_path / taken).mkdir()
    ids = iter([taken, "20260101T000000.000Z-x-bbbbbb"])
    monkeypatch.setattr(paths, "new_run_id", lambda name: next(ids))
    run_id, path = create_run_dir(tmp_path, "x")
    assert run_id.endswith("bbbbbb")
    assert path.is_dir()
