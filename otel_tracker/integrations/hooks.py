"""Post-import hooks: run a function once a module has been imported, whenever that is.

``otel-tracker run --auto`` starts before the program imports anything, so the
integrations wait for their framework here instead of importing it: a finder first
on ``sys.meta_path`` wraps the loader of the awaited module names only, and after
the module's code has run calls the hooks with the module. The module's
``__loader__`` and ``__spec__.loader`` are the original loader again before its
code runs, so nothing the module (or ``inspect``, ``importlib.resources``) asks of
its loader sees ours. A hook that raises is logged and forgotten; the import
itself always succeeds or fails exactly as it would have.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

Hook = Callable[[ModuleType], None]

_lock = threading.Lock()
_waiting: dict[str, list[Hook]] = {}


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once ``name`` is imported: now, if it already is."""
    module = sys.modules.get(name)
    if module is not None and not _initialising(module):
        _call(hook, module)
        return
    with _lock:
        _waiting.setdefault(name, []).append(hook)
        if not any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _PostImportFinder())


def forget(name: str | None = None) -> None:
    """Drop the hooks waiting for ``name`` (all, for ``None``); tests use it."""
    with _lock:
        if name is None:
            _waiting.clear()
        else:
            _waiting.pop(name, None)
        if not _waiting:
            sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PostImportFinder)]


def _initialising(module: ModuleType) -> bool:
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _call(hook: Hook, module: ModuleType) -> None:
    try:
        hook(module)
    except Exception as exc:  # an integration's failure never breaks the program's import
        logger.warning(
            "otel-tracker: the integration for %s was not attached: %s", module.__name__, exc
        )


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for an awaited name, wraps the spec the next finder gives."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _waiting:
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, _PostImportFinder):
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _HookedLoader(spec.loader)
        return spec


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        with _lock:
            hooks = _waiting.pop(module.__name__, [])
        for hook in hooks:
            _call(hook, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
