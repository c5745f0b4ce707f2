from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from otel_tracker.schema import manifest_schema
from tests.helpers import validate_manifest

SCHEMA_FILE = (
    Path(__file__).resolve().parents[2] / "otel_tracker" / "schema" / "manifest.schema.json"
)


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(manifest_schema())
    assert json.loads(SCHEMA_FILE.read_text()) == manifest_schema()


def test_schema_rejects_bad_manifests(root: Path) -> None:
    from otel_tracker import track_run

    with track_run("x", root=root, steps=["a"], install_signal_handlers=False) as run:
        pass
    good = json.loads(run.manifest_path.read_text())
    validate_manifest(good)
    for mutate in (
        lambda d: d.update(status="exploded"),
        lambda d: d.update(schema_version=99),
        lambda d: d["steps"][0].update(status="cancelled"),
        lambda d: d.pop("run_id"),
        lambda d: d.update(started_at="yesterday"),
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate_manifest(bad)
