"""ruff lint and format are part of the test suite, so CI enforces them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_ruff_check() -> None:
    result = _ruff("check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_package_loads_no_sdk() -> None:
    code = "import sys, otel_tracker, otel_tracker.cli.main; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def _lint_imports(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            LINT_IMPORTS,
            "--no-cache",
            "--no-logo",
            str(REPO / "pyproject.toml"),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_hold() -> None:
    """The layers of docs/ARCHITECTURE.md, as pyproject.toml's import-linter contracts."""
    result = _lint_imports(REPO, REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 5 kept, 0 broken." in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "backward", "contract"),
    [
        # the writer reading history
        ("record/step.py", "from ..history import store", "The writer never reads history"),
        # the read side loading the OpenTelemetry SDK
        ("history/store.py", "import opentelemetry.sdk.trace", "The read side never loads"),
        # the shared contract knowing a side, and a cycle with it
        ("contract/paths.py", "from ..record import current", "The shared file contract"),
    ],
)
def test_a_backward_import_breaks_the_contracts(
    tmp_path: Path, module: str, backward: str, contract: str
) -> None:
    copy = tmp_path / "otel_tracker"
    shutil.copytree(REPO / "otel_tracker", copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / module).open("a") as file:
        file.write(f"\n{backward}  # noqa\n")
    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout, result.stdout
