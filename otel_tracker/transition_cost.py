"""``TransitionCost``: notices when step transitions become a visible share of a run.

Each step start and end rewrites the whole manifest (every step is in it), so a
transition costs more as steps accumulate: about 1 ms with 10 steps, 8 ms with
1,000 (benchmarks/README.md). Steps meant for stages (seconds to hours) never
notice; a step per item (a file, a batch) does. Rather than slow such a pipeline
in silence, the run says so once, with what to do instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Below this many steps a share is noise (one slow fsync in a short run).
MIN_STEPS = 100
WARN_SHARE = 0.05


class TransitionCost:
    """Time spent in step transitions on the pipeline's threads, against wall time."""

    def __init__(
        self,
        *,
        share: float = WARN_SHARE,
        min_steps: int = MIN_STEPS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.share = share
        self.min_steps = min_steps
        self.clock = clock
        self.started = clock()
        self.seconds = 0.0
        self.warned = False

    def add(self, seconds: float, steps: int) -> str | None:
        """Count one transition; the warning, once, when transitions took more than
        ``share`` of the run so far over at least ``min_steps`` steps."""
        self.seconds += seconds
        if self.warned or steps < self.min_steps:
            return None
        elapsed = self.clock() - self.started
        if elapsed <= 0 or self.seconds < self.share * elapsed:
            return None
        self.warned = True
        return (
            f"step transitions took {self.seconds:.1f}s of this run's {elapsed:.1f}s "
            f"({self.seconds / elapsed:.0%}) over {steps} steps: each one rewrites the "
            "manifest, which grows with every step; use fewer, longer steps and "
            "step.advance() for per-item progress"
        )
