"""A training script as users write it: ``track_run`` on every rank, steps, progress
and a logged loss. The launcher's variables make the ranks one run; ``JOB_MODE``
makes one rank misbehave (the tests' cases)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import otel_tracker

RANK = int(
    os.environ.get("RANK")
    or os.environ.get("SLURM_PROCID")
    or os.environ.get("OMPI_COMM_WORLD_RANK")
    or os.environ.get("PMI_RANK")
    or 0
)
MODE = os.environ.get("JOB_MODE", "ok")
BAD_RANK = int(os.environ.get("JOB_BAD_RANK", "1"))
STEP_S = float(os.environ.get("JOB_STEP_S", "0.3"))
SIGNALS = Path(os.environ.get("JOB_SIGNALS", "."))


def main() -> int:
    with otel_tracker.track_run(
        "ddp-train", steps=["load data", "train", "save"], params={"lr": 0.1}, progress="off"
    ) as run:
        with run.step("load data"):
            time.sleep(0.05)
        with run.step("train", total=4, unit="batch") as step:
            for batch in range(4):
                if MODE == "fail" and batch == 1:
                    if RANK == BAD_RANK:
                        raise RuntimeError(f"CUDA error: an illegal memory access on rank {RANK}")
                    # the others wait on a collective the failed rank never joins
                    (SIGNALS / f"waiting-{RANK}").touch()
                    time.sleep(STEP_S * 4)
                    raise TimeoutError("NCCL watchdog: AllReduce timed out after 1800000 ms")
                if MODE == "kill" and RANK == BAD_RANK and batch == 1:
                    (SIGNALS / "victim").write_text(str(os.getpid()))
                    time.sleep(600)  # killed here
                slow = 2.5 if MODE == "slow" and RANK == BAD_RANK else 1.0
                time.sleep(STEP_S * slow)
                run.log("loss", 1.0 / (batch + 1), step=batch)
                step.advance()
        with run.step("save"):
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
