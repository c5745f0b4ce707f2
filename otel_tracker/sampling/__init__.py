"""Resource sampling (the write side): the process tree, the system and NVIDIA GPUs,
sampled once per interval on a helper process or a thread, aggregated and handed to
the run's telemetry, metrics and heartbeats."""
