"""A real DDP script: torch.distributed over gloo on CPU, ``track_run`` on every rank."""

from __future__ import annotations

import torch
import torch.distributed as dist

import otel_tracker

dist.init_process_group("gloo")
with otel_tracker.track_run("ddp-real", steps=["all-reduce"], progress="off") as run:
    with run.step("all-reduce", total=5, unit="batch") as step:
        for _ in range(5):
            tensor = torch.ones(1000) * dist.get_rank()
            dist.all_reduce(tensor)
            step.advance()
    run.log("sum", float(tensor[0]))
dist.destroy_process_group()
