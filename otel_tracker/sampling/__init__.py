"""Resource sampling: process tree, system (and, next, NVIDIA GPUs), sampled once per interval."""
