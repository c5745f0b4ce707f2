"""Helpers the tests share: manifests and their checks, child processes, terminals,
and waiting on events. Fixtures are in ``conftest.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from otel_tracker.contract.shape import type_problem
from otel_tracker.schema import manifest_schema

REPO = Path(__file__).resolve().parent.parent


def validate_manifest(doc: dict[str, Any]) -> dict[str, Any]:
    """Raise unless ``doc`` satisfies the published manifest schema."""
    jsonschema.Draft202012Validator(manifest_schema()).validate(doc)
    # and the readers' own type check agrees: it never refuses a valid manifest
    assert type_problem(doc) is None, type_problem(doc)
    return doc


def load_manifest(path: Path) -> dict[str, Any]:
    return validate_manifest(json.loads(path.read_text()))


def manifests(root: Path) -> list[Path]:
    return sorted(root.glob("*/manifest.json"))


def only_manifest(root: Path) -> dict[str, Any]:
    found = manifests(root)
    assert len(found) == 1, f"expected one run under {root}, found {found}"
    return load_manifest(found[0])


# Prepended to a child's script: a file where the run's TensorBoard directory goes,
# unwritable even for root (unlike chmod). The tracker creates the run directory,
# so the obstruction is planted as it is created.
OBSTRUCT_TENSORBOARD = """
import otel_tracker.record.run_opening as run_module
from otel_tracker.contract.paths import create_run_dir

def obstructed(root, name, attempts=20):
    run_id, run_dir = create_run_dir(root, name, attempts)
    (run_dir / "tensorboard").write_text("in the way")
    return run_id, run_dir

run_module.create_run_dir = obstructed
"""


def child_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"OTEL_TRACKER_ROOT": str(root), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def start_script(
    code: str, root: Path, cwd: Path | None = None, **env: str
) -> subprocess.Popen[str]:
    """Start ``python -c code`` with the runs root in its environment."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=child_env(root, **env),
        cwd=cwd or root.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_script(
    code: str, root: Path, timeout: float = 60, *, file_size_limit: int | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` to its end with the runs root in its environment.

    ``file_size_limit``: unable to write a file past that many bytes; RLIMIT_FSIZE
    stands in for a full disk (it works unprivileged, and root ignores chmod)."""

    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=child_env(root, **env),
        cwd=root.parent,
        preexec_fn=cap if file_size_limit is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def read_when(root: Path, check: Callable[[dict[str, Any]], bool]) -> Callable[[], Any]:
    """A predicate: the single manifest under root, once ``check`` holds for it."""

    def _probe() -> dict[str, Any] | None:
        for path in manifests(root):
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            if check(doc):
                return doc
        return None

    return _probe


def make_run(
    root: Path,
    template: dict[str, Any],
    *,
    name: str = "pipeline",
    status: str = "completed",
    started: Any = None,
    scenario: str | None = None,
    suffix: str = "000000",
    **fields: Any,
) -> Path:
    """Write a synthetic but schema-valid run directory cloned from ``template``."""
    import copy
    from datetime import datetime, timedelta, timezone

    from otel_tracker.contract.atomic import write_json_atomic
    from otel_tracker.contract.paths import slugify

    started = started or datetime.now(timezone.utc)
    run_id = f"{started.strftime('%Y%m%dT%H%M%S')}.{started.microsecond // 1000:03d}Z-{slugify(name)}-{suffix}"
    doc = copy.deepcopy(template)
    ended = started + timedelta(seconds=90)
    doc.update(
        run_id=run_id,
        name=name,
        scenario=scenario,
        status=status,
        started_at=started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        ended_at=None if status == "running" else ended.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        heartbeat_at=ended.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        duration_s=None if status == "running" else 90.0,
    )
    doc.update(fields)
    path = root / run_id
    path.mkdir(parents=True)
    write_json_atomic(path / "manifest.json", validate_manifest(doc))
    return path


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, bytes]:
    """Run ``argv`` with a real pseudo-terminal as its stdout and stderr (what a
    person at a terminal sees); its exit status and every byte it wrote there."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the pty closes when the child exits
                break
            if not data:
                break
            chunks.append(data)
        return proc.wait(timeout=timeout), b"".join(chunks)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


def otel_cli(
    root: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``otel-tracker --root ROOT ARGS...`` in a subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "otel_tracker.cli", "--root", str(root), *args],
        env=child_env(root, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wrap(
    root: Path,
    *command: str,
    options: tuple[str, ...] = (),
    cwd: Path | None = None,
    **env: str,
) -> subprocess.Popen[str]:
    """Start ``otel-tracker --root ROOT run OPTIONS -- COMMAND`` (progress off)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otel_tracker.cli",
            "--root",
            str(root),
            "run",
            *options,
            "--",
            *command,
        ],
        env=child_env(root, **{"OTEL_TRACKER_PROGRESS": "off", **env}),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_telemetry(path: Path) -> tuple[list[dict[str, Any]], int]:
    """All complete samples, and how many lines were skipped as torn or bad."""
    samples: list[dict[str, Any]] = []
    skipped = 0
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(value, dict):
            samples.append(value)
        else:
            skipped += 1
    return samples, skipped
