"""A finished manifest's first fields, read without parsing the rest; anything else
asks for a full read."""

from __future__ import annotations

import json
from pathlib import Path

from otel_tracker import track_run
from otel_tracker.history.manifest_head import manifest_head

QUIET = {"progress": "off", "resources": False, "summary_files": False}


def test_a_finished_manifest_gives_its_head(root: Path) -> None:
    name = 'ETL "nightly" – ünïcode'
    with track_run(name, root=root, scenario="prod\\eu", **QUIET) as run:
        pass
    head = manifest_head(run.dir)
    assert head is not None
    assert (head.run_id, head.name, head.scenario, head.status) == (
        run.run_id,
        name,
        "prod\\eu",
        "completed",
    )
    doc = json.loads(run.manifest_path.read_text())
    assert head.started_at == doc["started_at"]


def test_anything_else_needs_a_full_read(root: Path) -> None:
    with track_run("train", root=root, **QUIET) as run:
        assert manifest_head(run.dir) is None  # running: its liveness must be inferred
    doc = json.loads(run.manifest_path.read_text())
    run.manifest_path.write_text(json.dumps(doc, indent=2))  # another writer's layout
    assert manifest_head(run.dir) is not None  # whitespace is fine
    run.manifest_path.write_text(json.dumps({"run_id": doc["run_id"], **doc}))  # order
    assert manifest_head(run.dir) is None
    run.manifest_path.write_text(json.dumps({**doc, "run_id": "20200101T000000.000Z-x-abcdef"}))
    assert manifest_head(run.dir) is None  # names another run
    run.manifest_path.write_bytes(b'{"schema_version":1,"run_id":"\\ud800')
    assert manifest_head(run.dir) is None
    run.manifest_path.unlink()
    assert manifest_head(run.dir) is None
