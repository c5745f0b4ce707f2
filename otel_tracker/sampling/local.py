"""The process-tree, system and GPU samplers as they run in one process (the
sampling helper's, or the run's own after a fallback)."""

from __future__ import annotations

from typing import Any


def local_samplers(pid: int | None = None, exclude: frozenset[int] = frozenset()) -> list[Any]:
    """The process-tree, system and GPU samplers, as run in this process."""
    from .gpu import NvmlSampler
    from .process import ProcessTreeSampler
    from .system import SystemSampler

    process = None
    if pid is not None:
        import psutil

        process = psutil.Process(pid)
    tree = ProcessTreeSampler(process, exclude=exclude)
    return [
        ("process", tree),
        ("system", SystemSampler()),
        ("gpu", NvmlSampler(pids=tree.tree_pids)),
    ]
