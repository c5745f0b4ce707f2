"""The process-tree, system and GPU samplers as they run in one process (the
sampling helper's, or the run's own after a fallback)."""

from __future__ import annotations

import os
from typing import Any

from .points import Point, Unavailable


def local_samplers(pid: int | None = None, exclude: frozenset[int] = frozenset()) -> list[Any]:
    """The process-tree, system and GPU samplers, as run in this process; without
    psutil the first two only say so (GPU, throughput and the rest need none)."""
    from .gpu import NvmlSampler

    missing = psutil_missing()
    if missing is not None:
        root = os.getpid() if pid is None else pid
        return [
            ("process", MissingSampler("process", missing)),
            ("system", MissingSampler("system", missing)),
            ("gpu", NvmlSampler(pids=lambda: {root})),
        ]
    import psutil

    from .process import ProcessTreeSampler
    from .system import SystemSampler

    process = psutil.Process(pid) if pid is not None else None
    tree = ProcessTreeSampler(process, exclude=exclude)
    return [
        ("process", tree),
        ("system", SystemSampler()),
        ("gpu", NvmlSampler(pids=tree.tree_pids)),
    ]


def psutil_missing() -> str | None:
    """Why psutil cannot be used here, or ``None``."""
    try:
        import psutil  # noqa: F401
    except ImportError as exc:
        return f"psutil is not importable ({exc}; pip install psutil)"
    return None


class MissingSampler:
    """A source that cannot run here: each sample notes why, and yields nothing."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason

    def sample(self, now: float, unavailable: Unavailable) -> list[Point]:
        unavailable.note(self.what, self.reason)
        return []
