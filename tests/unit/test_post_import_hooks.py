"""Post-import hooks: a hook runs once its module has run, whenever it is imported,
and nothing about the module or its import changes."""

from __future__ import annotations

import importlib.machinery
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from otel_tracker.integrations import hooks


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"hooked_pkg_{tmp_path.name.replace('-', '_')}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("VALUE = 41\n")
    (folder / "trainer.py").write_text("class Trainer:\n    ready = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    hooks.forget()
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_a_hook_runs_after_its_module_ran_and_leaves_the_loader_alone(package: str) -> None:
    seen: list[tuple[str, bool]] = []

    def hook(module: ModuleType) -> None:
        seen.append((module.__name__, module.Trainer.ready))

    hooks.when_imported(f"{package}.trainer", hook)
    assert seen == []
    imported = importlib.import_module(f"{package}.trainer")
    assert seen == [(f"{package}.trainer", True)]
    assert isinstance(imported.__loader__, importlib.machinery.SourceFileLoader)
    assert isinstance(imported.__spec__.loader, importlib.machinery.SourceFileLoader)
    importlib.reload(imported)  # once only
    assert len(seen) == 1


def test_a_module_already_imported_is_hooked_at_once(package: str) -> None:
    module = importlib.import_module(package)
    seen: list[int] = []
    hooks.when_imported(package, lambda m: seen.append(m.VALUE))
    assert seen == [41] and module.VALUE == 41


def test_a_failing_hook_is_logged_and_the_import_succeeds(
    package: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(module: ModuleType) -> None:
        raise RuntimeError("no such Trainer attribute")

    hooks.when_imported(package, broken)
    with caplog.at_level(logging.WARNING, logger="otel_tracker"):
        module = importlib.import_module(package)
    assert module.VALUE == 41
    assert "integration for" in caplog.text and "no such Trainer attribute" in caplog.text


def test_a_missing_module_fails_to_import_as_it_would_have(package: str) -> None:
    hooks.when_imported(f"{package}.absent", lambda m: None)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"{package}.absent")
