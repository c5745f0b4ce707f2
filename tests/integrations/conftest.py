"""Running a real training script the two ways a user does: with otel-tracker's
callback added by hand (``--explicit``, a run of its own), and unchanged under
``otel-tracker run --auto``. Either way the manifest is read as the readers see it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers import child_env, load_manifest, manifests

SCRIPTS = Path(__file__).resolve().parent / "scripts"


def train(
    root: Path, workdir: Path, script: str, *args: str, auto: bool, exit_code: int = 0, **env: str
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run ``scripts/<script>`` in ``workdir`` (it must exit ``exit_code``); its run's
    manifest and the process."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(SCRIPTS / script), *args]
    if auto:
        command = [sys.executable, "-m", "otel_tracker.cli", "run", "--auto", "--", *command]
    else:
        command.append("--explicit")
    done = subprocess.run(
        command,
        env=child_env(root, OTEL_TRACKER_PROGRESS="off", KERAS_BACKEND="torch", **env),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == exit_code, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = manifests(root)
    return load_manifest(path), done


def all_steps(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The run's steps and, depth first, the steps of the processes that joined it."""
    for step in doc.get("steps", []):
        yield step
        yield from all_steps({"steps": step.get("substeps", [])})


def steps_named(doc: dict[str, Any], *names: str) -> dict[str, dict[str, Any]]:
    found = {s["name"]: s for s in all_steps(doc) if s["name"] in names}
    assert sorted(found) == sorted(names), [s["name"] for s in all_steps(doc)]
    return found


def metric(doc: dict[str, Any], key: str) -> dict[str, Any]:
    keys = doc["metrics"]["keys"]
    assert key in keys, sorted(keys)
    return keys[key]
