"""``TransitionCost``: notices when step transitions become a visible share of a run.

Each step start and end rewrites the whole manifest (every step is in it), so a
step costs more the more steps the run has: about 3 ms in a 20-step run, 8 ms
at 500 steps and 26 ms at 2,000 (``benchmarks/bench_manifest.py``). Steps meant
for stages (seconds to hours) never notice; a step per item (a file, a batch)
does. Rather than slow such a pipeline in silence, the run says so once, with
what to do instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Below this many transitions (a step's start and its end are two) a share is
# noise: one slow fsync in a short run.
MIN_TRANSITIONS = 200
WARN_SHARE = 0.05


class TransitionCost:
    """Time spent in step transitions on the pipeline's threads, against wall time."""

    def __init__(
        self,
        *,
        share: float = WARN_SHARE,
        min_transitions: int = MIN_TRANSITIONS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.share = share
        self.min_transitions = min_transitions
        self.clock = clock
        self.started = clock()
        self.seconds = 0.0
        self.transitions = 0
        self.warned = False

    def add(self, seconds: float) -> str | None:
        """Count one transition; the warning, once, when transitions took more than
        ``share`` of the run so far over at least ``min_transitions`` of them."""
        self.seconds += seconds
        self.transitions += 1
        if self.warned or self.transitions < self.min_transitions:
            return None
        elapsed = self.clock() - self.started
        if elapsed <= 0 or self.seconds < self.share * elapsed:
            return None
        self.warned = True
        return (
            f"step transitions took {self.seconds:.1f}s of this run's {elapsed:.1f}s "
            f"({self.seconds / elapsed:.0%}) over {self.transitions} step starts and ends: each "
            "rewrites the manifest, which grows with every step; use fewer, longer steps and "
            "step.advance() for per-item progress"
        )
