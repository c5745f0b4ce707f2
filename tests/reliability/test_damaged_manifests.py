"""A damaged or hand-edited manifest never crashes a reader: every field in turn."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_tracker.cli.main import main
from tests.helpers import make_run


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):
            found += _leaves(item, (*path, index))
    return found


def damaged(good: Any) -> Iterator[tuple[tuple[Any, ...], str, Any]]:
    """Copies of ``good`` with each value in turn of the wrong type, then missing."""
    for path in _leaves(good):
        for change in ("wrong type", "missing"):
            doc = copy.deepcopy(good)
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            if change == "missing":
                del parent[path[-1]]
            else:
                parent[path[-1]] = -1 if isinstance(parent[path[-1]], str) else "x"
            yield path, change, doc


@pytest.mark.slow
def test_a_field_of_the_wrong_type_anywhere_is_one_clear_error_never_a_traceback(
    root: Path, template_manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every field of a real manifest, in turn, of the wrong type or missing: ``list``
    still lists (or names the file once), ``show`` shows or says what is wrong in one
    line. A damaged or hand-edited file must never crash a reader."""
    run_dir = make_run(root, template_manifest, name="damaged")
    good = json.loads((run_dir / "manifest.json").read_text())
    mutations = 0
    for path, change, doc in damaged(good):
        if path[0] in ("schema_version", "run_id"):
            continue  # checked first of all (see test_bad_files_are_reported_once_and_skipped)
        (run_dir / "manifest.json").write_text(json.dumps(doc))
        mutations += 1
        for command in (["list"], ["show", run_dir.name]):
            code = main(["--root", str(root), *command])
            out, err = capsys.readouterr()
            where = (path, change, command)
            assert code in (0, 2), where
            if code == 2:
                assert err.startswith("otel-tracker: error: ") and err.count("\n") == 1, where
                assert "manifest.json" in err, where  # it names the file
            elif command == ["list"]:
                # listed, or left out with one line naming it
                assert (run_dir.name in out) != (err.count(run_dir.name) == 1), where
    assert mutations > 200
